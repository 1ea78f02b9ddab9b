//! A small direct JSON writer: the primitives [`crate::decision::Decision::write_json`] and the adapters'
//! dead-letter writers use to append JSON to a reused buffer without going through serde.
//!
//! Every function writes exactly the bytes `serde_json`'s compact serialiser writes for the same value:
//! strings escaped with `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t` and `\u00xx` (lowercase hex) for the other
//! control characters, everything else (DEL, non-ASCII) raw; integers in decimal (`itoa`, as serde_json).
//! The property tests in `src/core/tests/json_writer.rs` hold the writer to that, byte for byte.

use std::fmt;

use crate::swar;

/// What byte `b` turns into inside a JSON string: 0 = itself, `u` = `\u00xx`, else `\` + that byte.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` escaped as the contents of a JSON string (no quotes).
#[inline]
pub fn escape_into(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    if needs_escape(bytes) {
        escape_slow(out, bytes);
    } else {
        out.extend_from_slice(bytes);
    }
}

/// Whether any byte of `bytes` is one JSON escapes: sixteen bytes at a time ([`swar::lanes16`], on x86-64),
/// then a word at a time ([`swar::json_special`]), the last bytes one at a time.
#[inline]
fn needs_escape(bytes: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    let mut bytes = bytes;
    #[cfg(target_arch = "x86_64")]
    while let Some((block, rest)) = bytes.split_first_chunk::<16>() {
        if swar::lanes16(block, 0).0 != 0 {
            return true;
        }
        bytes = rest;
    }
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        if swar::json_special(swar::word(&[
            w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7],
        ])) != 0
        {
            return true;
        }
    }
    words.remainder().iter().any(|b| ESCAPE[*b as usize] != 0)
}

fn escape_slow(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let e = ESCAPE[b as usize];
        if e == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if e == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', e]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// A short piece of JSON known when the program is built, padded to `N` bytes: [`Frag::put`] appends it as
/// one fixed-size copy and a truncate, which the compiler writes inline (a slice of a length known only
/// at run time is a call to `memcpy`, several a decision for the writer's enum names).
#[derive(Clone, Copy)]
pub(crate) struct Frag<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Frag<N> {
    /// `parts` one after another. More than `N` bytes panics: in a constant (every use here) that fails the
    /// build.
    pub(crate) const fn new(parts: &[&str]) -> Frag<N> {
        let mut bytes = [0; N];
        let mut len = 0;
        let mut i = 0;
        while i < parts.len() {
            let part = parts[i].as_bytes();
            let mut j = 0;
            while j < part.len() {
                bytes[len] = part[j];
                len += 1;
                j += 1;
            }
            i += 1;
        }
        Frag { bytes, len }
    }

    #[cfg(test)]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Appends the fragment's bytes (reserving `N`, the padded size).
    #[inline(always)]
    pub(crate) fn put(&self, out: &mut Vec<u8>) {
        let end = out.len() + self.len;
        out.extend_from_slice(&self.bytes);
        out.truncate(end);
    }
}

/// Appends `s` as a JSON string, quoted and escaped.
#[inline]
pub fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape_into(out, s);
    out.push(b'"');
}

/// Appends `s` quoted but not escaped: only for strings known to hold nothing JSON escapes (enum names,
/// rule ids, validated codes).
#[inline]
pub fn plain(out: &mut Vec<u8>, s: &str) {
    debug_assert!(s.bytes().all(|b| ESCAPE[b as usize] == 0), "{s:?}");
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// Appends an integer in decimal, as serde_json writes integers.
#[inline]
pub fn int<I: itoa::Integer>(out: &mut Vec<u8>, i: I) {
    out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
}

/// Appends `true` or `false`.
#[inline]
pub fn bool(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// A [`fmt::Write`] that escapes what is written into the buffer as JSON string contents, so `Display`
/// text goes into a JSON string without an intermediate `String` (what serde_json's `collect_str` does).
pub struct Escaper<'a>(pub &'a mut Vec<u8>);

impl fmt::Write for Escaper<'_> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

/// A [`fmt::Write`] that appends what is written unescaped: for formatted numbers inside a string (digits,
/// signs, points, `inf`, `NaN`: nothing JSON escapes).
pub struct Raw<'a>(pub &'a mut Vec<u8>);

impl fmt::Write for Raw<'_> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Appends `value`'s `Display` text as a JSON string, quoted and escaped (serde's `collect_str`).
pub fn display(out: &mut Vec<u8>, value: &(impl fmt::Display + ?Sized)) {
    use fmt::Write as _;
    out.push(b'"');
    // Writing into a Vec cannot fail; a Display impl that returns an error anyway leaves what it wrote.
    let _ = write!(Escaper(out), "{value}");
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_and_some_strings_escape_as_serde_json() {
        let mut all = String::new();
        for c in (0u32..0x80).chain([0xe9, 0x202e, 0x2028, 0x1f600]) {
            all.push(char::from_u32(c).unwrap());
        }
        for s in [
            all.as_str(),
            "",
            "plain",
            "\"",
            "\\",
            "a\u{0}b\u{1f}c\u{7f}",
        ] {
            let mut out = Vec::new();
            string(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }

    /// Every byte value at every position of strings 1 to 40 bytes long (the sixteen-byte blocks, the word
    /// scan and its remainder).
    #[test]
    fn every_byte_at_every_position() {
        for len in 1..=40 {
            for pos in 0..len {
                for b in 0u8..0x80 {
                    let mut bytes = vec![b'a'; len];
                    bytes[pos] = b;
                    let s = std::str::from_utf8(&bytes).unwrap();
                    let mut out = Vec::new();
                    string(&mut out, s);
                    assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
                }
                let mut s = "a".repeat(len - 1);
                s.insert(pos, 'é');
                let mut out = Vec::new();
                string(&mut out, &s);
                assert_eq!(out, serde_json::to_vec(&s).unwrap(), "{s:?}");
            }
        }
    }

    #[test]
    fn integers() {
        let mut out = Vec::new();
        int(&mut out, i32::MIN);
        out.push(b' ');
        int(&mut out, u64::MAX);
        assert_eq!(out, b"-2147483648 18446744073709551615");
    }
}
