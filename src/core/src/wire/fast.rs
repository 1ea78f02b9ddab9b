//! The fast paths of [`super::parse_manifest`], [`super::parse_partner`] and
//! [`super::parse_decision_facts`]: one pass over the bytes, specialised to the record's shape, building the
//! owned [`Manifest`], [`Partner`] or [`DecisionFacts`] directly.
//!
//! It only ever *accepts* or *declines*. It declines (returns `None`) on anything it is not certain
//! serde_json would read to the very same value — any escape sequence, a negative number, an exponent, a
//! struct written as an array, a repeated field, a missing field, a malformed code, nesting deeper than
//! [`MAX_SKIP_DEPTH`] inside an unknown field, trailing bytes — and the caller then runs the serde_json path,
//! which produces the value or the exact dead letter of 917ca7d. So errors keep their kinds and messages by
//! construction; the one property to hold is: **whenever this returns `Some(m)`, serde_json returns the same
//! `m`** (the differential property tests in `src/core/tests/parse_fast.rs` and the `manifest_diff` and
//! `partner` fuzz targets check it) — and, for a manifest or partner record, `m` passes `validate_manifest`'s
//! / `validate_partner`'s checks of single fields (identifiers, codes, names, which the reader checks as it
//! reads them; amounts, which it never reads negative or infinite), so the caller leaves those checks out
//! (the same tests compare `parse_manifest`'s and `parse_partner`'s outcomes with the serde path's, which
//! runs them).
//!
//! What it reproduces of serde_json (1.0, feature `float_roundtrip`, the derive of `Manifest`):
//! - whitespace is exactly ` `, `\t`, `\n`, `\r`; strings may hold any byte ≥ 0x20 except `"` and `\`
//!   (the input is already valid UTF-8, checked by `precheck`);
//! - known fields: exact key match (keys with escapes decline), each at most once, required ones present,
//!   `null` in an `Option` field is `None`; unknown fields are skipped with the full JSON grammar (numbers,
//!   literals, nested values), as serde's `IgnoredAny` does. Keys are expected in the order writers put
//!   them (serde's: declaration order), and the expected one is matched as raw bytes before any key is
//!   read as a string (see [`P::object`]); keys in another order are found all the same, a little slower;
//! - numbers: `0|[1-9][0-9]*` optionally `.[0-9]+` — an `f64` field gets the correctly rounded value (what
//!   `float_roundtrip` and `u64 as f64` give), a `u32` field at most 9 digits with no fraction, a `u8`
//!   field the same and at most 255;
//! - enums: the exact snake_case name of a variant; `bool`: `true` or `false` (a `null` declines);
//! - decision records only: an `i32` field as the `u32` one with an optional `-` (`-0` declines: serde_json
//!   reads it as a float), and strings inside skipped values may hold escapes, checked as `IgnoredAny`
//!   checks them (a decision's explanation quotes names and terms; keys with escapes still decline).

use super::{
    Carrier, Commodity, Conveyance, DecisionFacts, Driver, Entity, Equipment, IdKind, Identifier,
    Identifiers, Manifest, Mode, Partner, Party, PartyFacts, ReasonFacts, Seal, SealAffixer,
    SealClass, Shipment, Status, Str,
};
use crate::codes::{Country, Hts, PortCode};
use crate::decision::{Action, Role};
use crate::time::{Date, Timestamp};
use crate::Limits;

/// Deepest nesting followed inside an unknown field before declining (serde_json's own limit is 128).
const MAX_SKIP_DEPTH: usize = 32;

/// The largest first block [`P::vec`] and [`P::vec_in_place`] allocate for an array of elements that fit
/// in it. glibc serves blocks up to 1 032 bytes from a per-thread cache without locking or searching its
/// bins (its `tcache`); a manifest's shipments (360 bytes each) and commodities (272) were allocated four
/// at a time, 1 440 and 1 088 bytes, just past it: every manifest's two largest blocks went through
/// `_int_malloc` and `_int_free`. Two shipments and three commodities fit (the generator's manifests hold one to four
/// shipments of one to three commodities; a longer array grows as any `Vec` does).
const FIRST_BLOCK: usize = 1024;

/// A shipment for [`P::shipment`] to fill in place: optional fields absent, lists empty, the required ones
/// placeholders (an empty id, [`Country::BLANK`]) that the reader overwrites or declines the shipment.
fn blank_shipment() -> Shipment {
    Shipment {
        shipment_id: Str::const_new(""),
        importer: None,
        consignee: None,
        shipper: None,
        manufacturer: None,
        broker: None,
        origin_country: Country::BLANK,
        transit_countries: Vec::new(),
        departure_country: None,
        commodities: Vec::new(),
    }
}

/// A commodity line for [`P::commodity`] to fill in place: optional fields absent, the required ones
/// placeholders ([`Hts::BLANK`], an empty description) that the reader overwrites or declines the line.
fn blank_commodity() -> Commodity {
    Commodity::new(Hts::BLANK, Str::const_new(""))
}

/// The room an array of `T` starts with (see [`P::vec`]).
#[inline]
fn first_capacity<T>() -> usize {
    match std::mem::size_of::<T>() {
        1 => 8,
        size => (FIRST_BLOCK / size.max(1)).clamp(1, 4),
    }
}

/// Parses a manifest from its text (already checked for size and UTF-8); `None` means "ask serde_json".
/// Nesting deeper than `limits.max_depth` declines, so what is accepted passes `precheck`'s depth check too
/// (and, starting with `{`, its empty and top-level-object checks). So does a field that
/// `validate_manifest` would refuse on its own — an identifier or code ([`P::id`]), a name or description
/// ([`P::name`]), a FAST card ([`P::card`]) — so that the caller runs only the checks across fields.
pub(super) fn manifest(text: &str, limits: &Limits) -> Option<Manifest> {
    whole(text, limits.max_depth, limits.max_id_len, P::manifest)
}

/// Parses a partner record from its text (already checked for size and UTF-8); `None` means "ask
/// serde_json", as for [`manifest`] — and as there, an identifier `validate_partner` would refuse on its
/// own (the partner id, an identifier's value, the MRA programme) declines.
pub(super) fn partner(text: &str, limits: &Limits) -> Option<Partner> {
    whole(text, limits.max_depth, limits.max_id_len, P::partner)
}

/// Reads a decision record's facts from its text (already checked for size and UTF-8); `None` means "ask
/// serde_json", as for [`manifest`].
pub(super) fn decision_facts(text: &str, max_depth: usize) -> Option<DecisionFacts> {
    whole(text, max_depth, usize::MAX, P::decision_facts)
}

/// The whole text is one value read by `read`, with whitespace around it.
#[inline]
fn whole<'a, T>(
    text: &'a str,
    max_depth: usize,
    max_id_len: usize,
    read: impl FnOnce(&mut P<'a>) -> Option<T>,
) -> Option<T> {
    let mut p = P {
        s: text,
        b: text.as_bytes(),
        i: 0,
        depth: 0,
        max_depth,
        max_id_len,
    };
    p.ws();
    let v = read(&mut p)?;
    p.ws();
    (p.i == p.b.len()).then_some(v)
}

struct P<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    /// Objects and arrays open at the cursor, and the most allowed.
    depth: usize,
    max_depth: usize,
    /// The longest identifier [`P::id`] accepts (`Limits::max_id_len`).
    max_id_len: usize,
}

/// Marks known key `i` seen; `None` when it was already (serde's "duplicate field").
#[inline]
fn first(seen: &mut u32, i: usize) -> Option<()> {
    let m = 1u32 << i;
    if *seen & m != 0 {
        return None;
    }
    *seen |= m;
    Some(())
}

/// A known key of an object as compact JSON writes it, `"name":`, read as three little-endian words, with
/// masks for the bytes it covers.
struct Key {
    name: &'static str,
    len: usize,
    words: [u64; 3],
    masks: [u64; 3],
}

/// The [`Key`] of `name` (at most 21 bytes, checked when the constant is built).
const fn key(name: &'static str) -> Key {
    let n = name.as_bytes();
    let len = n.len() + 3;
    assert!(len <= 24, "a key longer than 21 bytes");
    let mut bytes = [0u8; 24];
    bytes[0] = b'"';
    let mut j = 0;
    while j < n.len() {
        bytes[j + 1] = n[j];
        j += 1;
    }
    bytes[n.len() + 1] = b'"';
    bytes[n.len() + 2] = b':';
    let (mut words, mut masks) = ([0u64; 3], [0u64; 3]);
    let mut b = 0;
    while b < len {
        words[b / 8] |= (bytes[b] as u64) << (8 * (b % 8));
        masks[b / 8] |= 0xff << (8 * (b % 8));
        b += 1;
    }
    Key {
        name,
        len,
        words,
        masks,
    }
}

impl<'a> P<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        if self.peek()? != c {
            return None;
        }
        self.i += 1;
        Some(())
    }

    /// A string without escapes or control characters, borrowed from the input.
    #[inline]
    fn str(&mut self) -> Option<&'a str> {
        self.str_in::<false>(0).map(|(s, _)| s)
    }

    /// [`P::str`], and with `CHECK` whether every byte of the string is in `low..=b'~'` (learnt in the
    /// same pass over the bytes; without `CHECK` always false).
    #[inline(always)]
    fn str_in<const CHECK: bool>(&mut self, low: u8) -> Option<(&'a str, bool)> {
        self.eat(b'"')?;
        let start = self.i;
        let outside = self.scan::<CHECK>(low)?;
        // An escape or a control character declines; so does the end of the input.
        if *self.b.get(self.i)? != b'"' {
            return None;
        }
        let s = self.s.get(start..self.i)?;
        self.i += 1;
        Some((s, CHECK && !outside))
    }

    /// Moves the cursor to the first `"`, `\\` or control character from it (or the end of the input).
    #[inline]
    fn plain(&mut self) -> Option<()> {
        self.scan::<false>(0).map(|_| ())
    }

    /// [`P::plain`], and with `CHECK` whether any byte passed over is outside `low..=b'~'` (`low` at most
    /// `~`; without `CHECK` always false).
    #[inline(always)]
    fn scan<const CHECK: bool>(&mut self, low: u8) -> Option<bool> {
        use crate::swar::{json_special, outside, word};
        let mut out = 0u64;
        // Sixteen bytes at a time while sixteen are left: the lowest lane holding `"`, `\\` or a control
        // character is the first.
        #[cfg(target_arch = "x86_64")]
        while let Some(chunk) = self.b.get(self.i..self.i + 16) {
            let (hit, bad) = crate::swar::lanes16(chunk.try_into().ok()?, low);
            if hit != 0 {
                if CHECK {
                    // The lanes below the first hit.
                    out |= u64::from(bad & ((hit & hit.wrapping_neg()) - 1));
                }
                self.i += hit.trailing_zeros() as usize;
                return Some(out != 0);
            }
            if CHECK {
                out |= u64::from(bad);
            }
            self.i += 16;
        }
        // Eight bytes at a time: the lowest lane holding `"`, `\\` or a control character is the first.
        while let Some(chunk) = self.b.get(self.i..self.i + 8) {
            let w = word(chunk.try_into().ok()?);
            let hit = json_special(w);
            if hit != 0 {
                if CHECK {
                    // The lanes below the first hit: the lowest set bit is lane k's high bit, 8k + 7.
                    let before = ((hit & hit.wrapping_neg()) >> 7).wrapping_sub(1);
                    out |= outside(w, low) & before;
                }
                self.i += (hit.trailing_zeros() / 8) as usize;
                return Some(out != 0);
            }
            if CHECK {
                out |= outside(w, low);
            }
            self.i += 8;
        }
        // The last few bytes of the input, one at a time.
        while let Some(&c) = self.b.get(self.i) {
            if c == b'"' || c == b'\\' || c < 0x20 {
                break;
            }
            if CHECK && !(low..=b'~').contains(&c) {
                out = 1;
            }
            self.i += 1;
        }
        Some(out != 0)
    }

    /// Skips a string with escapes as serde_json's `IgnoredAny` reads one: `\\"`, `\\\\`, `\\/`, `\\b`, `\\f`,
    /// `\\n`, `\\r`, `\\t`, and `\\u` with four hex digits (any code unit, a lone surrogate too, since the
    /// value is not kept); any other escape or a control character declines.
    #[inline]
    fn skip_escaped_str(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            self.plain()?;
            match *self.b.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some(());
                }
                b'\\' => match *self.b.get(self.i + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 2,
                    b'u' => {
                        let hex = self.b.get(self.i + 2..self.i + 6)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return None;
                        }
                        self.i += 6;
                    }
                    _ => return None,
                },
                _ => return None,
            }
        }
    }

    #[inline]
    fn lit(&mut self, word: &[u8]) -> Option<()> {
        if !self.b.get(self.i..)?.starts_with(word) {
            return None;
        }
        self.i += word.len();
        Some(())
    }

    /// `null` → `Some(None)`; anything else is read by `f`.
    #[inline]
    fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.peek()? == b'n' {
            self.lit(b"null")?;
            return Some(None);
        }
        f(self).map(Some)
    }

    /// One more object or array open; declines beyond the depth limit.
    #[inline]
    fn open(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= self.max_depth).then_some(())
    }

    /// Whether the input at the cursor starts with `key`'s bytes `"name":` — three word compares, no
    /// branch per byte. False within the input's last 24 bytes (the caller then reads the key as a string).
    #[inline(always)]
    fn at(&self, key: &Key) -> bool {
        let Some(bytes) = self.b.get(self.i..).and_then(|s| s.first_chunk::<24>()) else {
            return false;
        };
        let word = |n: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[8 * n..8 * n + 8]);
            u64::from_le_bytes(w)
        };
        ((word(0) ^ key.words[0]) & key.masks[0])
            | ((word(1) ^ key.words[1]) & key.masks[1])
            | ((word(2) ^ key.words[2]) & key.masks[2])
            == 0
    }

    /// An object whose known keys are `keys`: `f` reads the value of each key, given the key's index in
    /// `keys` (`None`: a key not listed, which `f` skips); the cursor is on the value, whitespace skipped.
    /// A known key given twice declines (serde's "duplicate field").
    ///
    /// Writers put an object's keys in one order — serde's derive writes them in declaration order, which
    /// `keys` follows — so the key after the last known one is tried first, as the bytes `"name":` right at
    /// the cursor; anything else (another key, an escape, whitespace before the colon, the input's last
    /// 24 bytes) is read as a string and looked up. Either way the same key is found.
    #[inline]
    fn object(
        &mut self,
        keys: &[Key],
        mut f: impl FnMut(&mut Self, Option<usize>) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        self.open()?;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            self.depth -= 1;
            return Some(());
        }
        debug_assert!(keys.len() <= 32, "`seen` has a bit per known key");
        let mut seen = 0u32;
        let mut next = 0usize;
        loop {
            let known = match keys.get(next) {
                Some(key) if self.at(key) => {
                    self.i += key.len;
                    Some(next)
                }
                _ => {
                    let name = self.str()?;
                    self.ws();
                    self.eat(b':')?;
                    keys.iter().position(|k| k.name == name)
                }
            };
            self.ws();
            if let Some(i) = known {
                first(&mut seen, i)?;
                next = i + 1;
            }
            f(self, known)?;
            self.ws();
            match self.peek()? {
                b',' => {
                    self.i += 1;
                    self.ws();
                }
                b'}' => {
                    self.i += 1;
                    self.depth -= 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An array: `f` reads each element (the cursor is on it, whitespace skipped).
    #[inline]
    fn array(&mut self, mut f: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        self.open()?;
        self.ws();
        if self.peek()? == b']' {
            self.i += 1;
            self.depth -= 1;
            return Some(());
        }
        loop {
            f(self)?;
            self.ws();
            match self.peek()? {
                b',' => {
                    self.i += 1;
                    self.ws();
                }
                b']' => {
                    self.i += 1;
                    self.depth -= 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An array's elements, read by `f`. The first element allocates with `with_capacity`, which skips
    /// `push`'s general growth path: room for what a first `push` would make (std's smallest non-zero
    /// capacity: 8 one-byte elements, 4 up to 1 KiB, else 1), but never a block larger than
    /// [`FIRST_BLOCK`] while one element fits in it.
    fn vec<T>(&mut self, mut f: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let mut v = Vec::new();
        self.array(|p| {
            let x = f(p)?;
            if v.capacity() == 0 {
                v = Vec::with_capacity(first_capacity::<T>());
            }
            v.push(x);
            Some(())
        })?;
        Some(v)
    }

    /// [`P::vec`] for large elements, each read in place: `blank()` is pushed and `fill` completes it
    /// where it lies in the vector. Read on the stack and returned, a commodity line (272 bytes) or a
    /// shipment (360) was copied twice more on its way into the vector (~9 % of `core/parse`'s samples).
    /// An element `fill` fails on fails the array, as with [`P::vec`].
    fn vec_in_place<T>(
        &mut self,
        blank: impl Fn() -> T,
        mut fill: impl FnMut(&mut Self, &mut T) -> Option<()>,
    ) -> Option<Vec<T>> {
        let mut v = Vec::new();
        self.array(|p| {
            if v.capacity() == 0 {
                v = Vec::with_capacity(first_capacity::<T>());
            }
            v.push(blank());
            fill(p, v.last_mut()?)
        })?;
        Some(v)
    }

    /// The digits of a non-negative JSON integer part: `0` or `[1-9][0-9]*`.
    #[inline]
    fn int_digits(&mut self) -> Option<(u64, usize)> {
        let start = self.i;
        let first = self.peek()?;
        if !first.is_ascii_digit() {
            return None;
        }
        self.i += 1;
        let mut n = u64::from(first - b'0');
        if first != b'0' {
            while let Some(c @ b'0'..=b'9') = self.peek() {
                if self.i - start >= 19 {
                    return None;
                }
                n = n * 10 + u64::from(c - b'0');
                self.i += 1;
            }
        }
        Some((n, self.i - start))
    }

    /// A `u32` field: serde_json reads an integer as `u64` and serde range-checks it.
    #[inline]
    fn u32(&mut self) -> Option<u32> {
        let (n, len) = self.int_digits()?;
        if len > 9 || matches!(self.peek(), Some(b'.' | b'e' | b'E' | b'0'..=b'9')) {
            return None;
        }
        u32::try_from(n).ok()
    }

    /// An `i32` field: serde_json reads a non-negative integer as `u64` and a negative one as `i64`, and
    /// serde range-checks it; `-0` it reads as the float `-0.0`, which an integer field refuses (declined
    /// here, as are more than 9 digits).
    #[inline]
    fn i32(&mut self) -> Option<i32> {
        let negative = self.peek()? == b'-';
        if negative {
            self.i += 1;
        }
        let n = i32::try_from(self.u32()?).ok()?;
        match (negative, n) {
            (false, n) => Some(n),
            (true, 0) => None,
            (true, n) => Some(-n),
        }
    }

    /// A `u8` field (serde_json reads an integer as `u64`; serde range-checks it).
    #[inline]
    fn u8(&mut self) -> Option<u8> {
        u8::try_from(self.u32()?).ok()
    }

    #[inline]
    fn bool(&mut self) -> Option<bool> {
        match self.peek()? {
            b't' => self.lit(b"true").map(|()| true),
            b'f' => self.lit(b"false").map(|()| false),
            _ => None,
        }
    }

    /// An `f64` field: the correctly rounded value of the decimal (serde_json with `float_roundtrip`; an
    /// integer goes through `u64 as f64`, which rounds the same way). Never negative, infinite or NaN, so
    /// never what `validate_manifest`'s amount check refuses.
    #[inline]
    fn f64(&mut self) -> Option<f64> {
        let start = self.i;
        let (int, int_len) = self.int_digits()?;
        let mut sig = int;
        let mut digits = int_len;
        let mut frac = 0usize;
        if self.peek() == Some(b'.') {
            self.i += 1;
            while let Some(c @ b'0'..=b'9') = self.peek() {
                self.i += 1;
                frac += 1;
                digits += 1;
                if digits <= 19 {
                    sig = sig * 10 + u64::from(c - b'0');
                }
            }
            if frac == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E' | b'0'..=b'9')) {
            return None;
        }
        // Exact operands and one correctly rounded operation (Clinger's fast path): both fit in 53 bits.
        const POW10: [f64; 23] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
            1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
        ];
        if digits <= 15 && frac < POW10.len() {
            return Some(sig as f64 / POW10[frac]);
        }
        let v: f64 = self.s.get(start..self.i)?.parse().ok()?;
        v.is_finite().then_some(v)
    }

    /// Skips any JSON value with serde_json's grammar (strings here: no escapes, no control characters).
    #[inline]
    fn skip(&mut self, depth: usize) -> Option<()> {
        self.skip_value::<false>(depth)
    }

    /// Skips any JSON value with serde_json's grammar; strings with escapes decline unless `ESCAPES`, when
    /// they are read as [`P::skip_escaped_str`] does (keys with escapes decline either way).
    fn skip_value<const ESCAPES: bool>(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' if ESCAPES => self.skip_escaped_str(),
            b'"' => self.str().map(|_| ()),
            b'n' => self.lit(b"null"),
            b't' => self.lit(b"true"),
            b'f' => self.lit(b"false"),
            b'-' => {
                self.i += 1;
                self.skip_number()
            }
            b'0'..=b'9' => self.skip_number(),
            b'[' if depth < MAX_SKIP_DEPTH => self.array(|p| p.skip_value::<ESCAPES>(depth + 1)),
            b'{' if depth < MAX_SKIP_DEPTH => {
                self.object(&[], |p, _| p.skip_value::<ESCAPES>(depth + 1))
            }
            _ => None,
        }
    }

    fn skip_number(&mut self) -> Option<()> {
        let first = self.peek()?;
        if !first.is_ascii_digit() {
            return None;
        }
        self.i += 1;
        if first == b'0' {
            if matches!(self.peek(), Some(b'0'..=b'9')) {
                return None;
            }
        } else {
            self.digits();
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    #[inline(always)]
    fn text(&mut self) -> Option<Str> {
        self.str().map(Str::from)
    }

    /// An identifier or code of a manifest or partner record: declines what `check_id` refuses.
    #[inline(always)]
    fn id(&mut self) -> Option<Str> {
        let (s, printable) = self.str_in::<true>(b'!')?;
        super::id_ok(s, self.max_id_len, printable).then(|| Str::from(s))
    }

    /// A name or description of a manifest: declines what `check_name` refuses.
    #[inline(always)]
    fn name(&mut self) -> Option<Str> {
        let (s, printable) = self.str_in::<true>(b' ')?;
        super::name_ok(s, printable).then(|| Str::from(s))
    }

    /// A driver's FAST card number: blank means no card and is kept as it is (`validate_manifest` checks
    /// only a card that is not blank); any other declines what `check_id` refuses.
    #[inline(always)]
    fn card(&mut self) -> Option<Str> {
        let (s, printable) = self.str_in::<true>(b'!')?;
        (super::id_ok(s, self.max_id_len, printable) || s.trim().is_empty()).then(|| Str::from(s))
    }

    #[inline]
    fn country(&mut self) -> Option<Country> {
        Country::parse(self.str()?)
    }

    #[inline]
    fn timestamp(&mut self) -> Option<Timestamp> {
        Timestamp::parse(self.str()?)
    }

    #[inline]
    fn date(&mut self) -> Option<Date> {
        Date::parse(self.str()?)
    }

    fn partner(&mut self) -> Option<Partner> {
        const KEYS: [Key; 10] = [
            key("partner_id"),
            key("entity"),
            key("identifiers"),
            key("status"),
            key("tier"),
            key("certified_on"),
            key("validated_on"),
            key("trade_compliance"),
            key("mra_program"),
            key("updated_at"),
        ];
        let (mut partner_id, mut entity, mut identifiers, mut status) = (None, None, None, None);
        let (mut tier, mut certified_on, mut validated_on) = (None, None, None);
        let (mut trade_compliance, mut mra_program, mut updated_at) = (false, None, None);
        self.object(&KEYS, |p, key| {
            match key {
                Some(0) => {
                    partner_id = Some(p.id()?);
                }
                Some(1) => {
                    entity = Some(entity_named(p.str()?)?);
                }
                Some(2) => {
                    let mut ids = Identifiers::new();
                    p.array(|p| {
                        ids.push(p.identifier()?);
                        Some(())
                    })?;
                    identifiers = Some(ids);
                }
                Some(3) => {
                    status = Some(match p.str()? {
                        "applicant" => Status::Applicant,
                        "certified" => Status::Certified,
                        "validated" => Status::Validated,
                        "suspended" => Status::Suspended,
                        "removed" => Status::Removed,
                        _ => return None,
                    });
                }
                Some(4) => {
                    tier = p.opt(P::u8)?;
                }
                Some(5) => {
                    certified_on = p.opt(P::date)?;
                }
                Some(6) => {
                    validated_on = p.opt(P::date)?;
                }
                Some(7) => {
                    trade_compliance = p.bool()?;
                }
                Some(8) => {
                    mra_program = p.opt(P::id)?;
                }
                Some(9) => {
                    updated_at = p.opt(P::timestamp)?;
                }
                _ => p.skip(0)?,
            }
            Some(())
        })?;
        Some(Partner {
            partner_id: partner_id?,
            entity: entity?,
            identifiers: identifiers?,
            status: status?,
            tier,
            certified_on,
            validated_on,
            trade_compliance,
            mra_program,
            updated_at,
        })
    }

    fn identifier(&mut self) -> Option<Identifier> {
        const KEYS: [Key; 2] = [key("kind"), key("value")];
        let (mut kind, mut value) = (None, None);
        self.object(&KEYS, |p, key| {
            match key {
                Some(0) => {
                    kind = Some(match p.str()? {
                        "ior" => IdKind::Ior,
                        "scac" => IdKind::Scac,
                        "mid" => IdKind::Mid,
                        "filer_code" => IdKind::FilerCode,
                        "iata" => IdKind::Iata,
                        "fmc" => IdKind::Fmc,
                        "duns" => IdKind::Duns,
                        "ein" => IdKind::Ein,
                        _ => return None,
                    });
                }
                Some(1) => {
                    value = Some(p.id()?);
                }
                _ => p.skip(2)?,
            }
            Some(())
        })?;
        Some(Identifier {
            kind: kind?,
            value: value?,
        })
    }

    fn manifest(&mut self) -> Option<Manifest> {
        const KEYS: [Key; 12] = [
            key("schema_version"),
            key("manifest_id"),
            key("revision"),
            key("filed_at"),
            key("mode"),
            key("port_of_entry"),
            key("estimated_arrival"),
            key("carrier"),
            key("conveyance"),
            key("drivers"),
            key("equipment"),
            key("shipments"),
        ];
        let (mut schema_version, mut manifest_id, mut revision) = (None, None, None);
        let (mut filed_at, mut mode, mut port_of_entry, mut estimated_arrival) =
            (None, None, None, None);
        let (mut carrier, mut conveyance, mut drivers, mut equipment, mut shipments) =
            (None, None, None, None, None);
        self.object(&KEYS, |p, key| {
            match key {
                Some(0) => {
                    schema_version = p.opt(P::u32)?;
                }
                Some(1) => {
                    manifest_id = Some(p.id()?);
                }
                Some(2) => {
                    revision = Some(p.u32()?);
                }
                Some(3) => {
                    filed_at = Some(p.timestamp()?);
                }
                Some(4) => {
                    mode = Some(match p.str()? {
                        "truck" => Mode::Truck,
                        "rail" => Mode::Rail,
                        "ocean" => Mode::Ocean,
                        "air" => Mode::Air,
                        _ => return None,
                    });
                }
                Some(5) => {
                    port_of_entry = Some(PortCode::parse(p.str()?)?);
                }
                Some(6) => {
                    estimated_arrival = p.opt(P::timestamp)?;
                }
                Some(7) => {
                    carrier = p.opt(P::carrier)?;
                }
                Some(8) => {
                    conveyance = p.opt(P::conveyance)?;
                }
                Some(9) => {
                    drivers = Some(p.vec(P::driver)?);
                }
                Some(10) => {
                    equipment = Some(p.vec(P::equipment)?);
                }
                Some(11) => {
                    shipments = Some(p.vec_in_place(blank_shipment, P::shipment)?);
                }
                _ => p.skip(0)?,
            }
            Some(())
        })?;
        Some(Manifest {
            schema_version,
            manifest_id: manifest_id?,
            revision: revision.unwrap_or_default(),
            filed_at: filed_at?,
            mode: mode?,
            port_of_entry: port_of_entry?,
            estimated_arrival,
            carrier,
            conveyance,
            drivers: drivers.unwrap_or_default(),
            equipment: equipment.unwrap_or_default(),
            shipments: shipments?,
        })
    }

    fn carrier(&mut self) -> Option<Carrier> {
        const KEYS: [Key; 2] = [key("scac"), key("name")];
        let (mut scac, mut name) = (None, None);
        self.object(&KEYS, |p, key| {
            match key {
                Some(0) => {
                    scac = Some(p.id()?);
                }
                Some(1) => {
                    name = p.opt(P::name)?;
                }
                _ => p.skip(1)?,
            }
            Some(())
        })?;
        Some(Carrier { scac: scac?, name })
    }

    fn conveyance(&mut self) -> Option<Conveyance> {
        const KEYS: [Key; 2] = [key("id"), key("trip_number")];
        let (mut id, mut trip_number) = (None, None);
        self.object(&KEYS, |p, key| {
            match key {
                Some(0) => {
                    id = p.opt(P::id)?;
                }
                Some(1) => {
                    trip_number = p.opt(P::id)?;
                }
                _ => p.skip(1)?,
            }
            Some(())
        })?;
        Some(Conveyance { id, trip_number })
    }

    fn driver(&mut self) -> Option<Driver> {
        const KEYS: [Key; 2] = [key("name"), key("fast_card")];
        let (mut name, mut fast_card) = (None, None);
        self.object(&KEYS, |p, key| {
            match key {
                Some(0) => {
                    name = Some(p.name()?);
                }
                Some(1) => {
                    fast_card = p.opt(P::card)?;
                }
                _ => p.skip(2)?,
            }
            Some(())
        })?;
        Some(Driver {
            name: name?,
            fast_card,
        })
    }

    fn equipment(&mut self) -> Option<Equipment> {
        const KEYS: [Key; 2] = [key("id"), key("seals")];
        let (mut id, mut seals) = (None, None);
        self.object(&KEYS, |p, key| {
            match key {
                Some(0) => {
                    id = Some(p.id()?);
                }
                Some(1) => {
                    seals = Some(p.vec(P::seal)?);
                }
                _ => p.skip(2)?,
            }
            Some(())
        })?;
        Some(Equipment {
            id: id?,
            seals: seals.unwrap_or_default(),
        })
    }

    fn seal(&mut self) -> Option<Seal> {
        const KEYS: [Key; 3] = [key("number"), key("iso17712"), key("affixed_by")];
        let (mut number, mut iso17712, mut affixed_by) = (None, None, None);
        self.object(&KEYS, |p, key| {
            match key {
                Some(0) => {
                    number = Some(p.id()?);
                }
                Some(1) => {
                    iso17712 = p.opt(|p| match p.str()? {
                        "H" => Some(SealClass::H),
                        "S" => Some(SealClass::S),
                        "I" => Some(SealClass::I),
                        _ => None,
                    })?;
                }
                Some(2) => {
                    affixed_by = p.opt(|p| match p.str()? {
                        "manufacturer" => Some(SealAffixer::Manufacturer),
                        "shipper" => Some(SealAffixer::Shipper),
                        "carrier" => Some(SealAffixer::Carrier),
                        "customs" => Some(SealAffixer::Customs),
                        "other" => Some(SealAffixer::Other),
                        _ => None,
                    })?;
                }
                _ => p.skip(4)?,
            }
            Some(())
        })?;
        Some(Seal {
            number: number?,
            iso17712,
            affixed_by,
        })
    }

    fn party(&mut self) -> Option<Party> {
        const KEYS: [Key; 3] = [key("id"), key("name"), key("country")];
        let (mut id, mut name, mut country) = (None, None, None);
        self.object(&KEYS, |p, key| {
            match key {
                Some(0) => {
                    id = Some(p.id()?);
                }
                Some(1) => {
                    name = p.opt(P::name)?;
                }
                Some(2) => {
                    country = p.opt(P::country)?;
                }
                _ => p.skip(3)?,
            }
            Some(())
        })?;
        Some(Party {
            id: id?,
            name,
            country,
        })
    }

    /// Reads a shipment into `s` (a [`blank_shipment`]).
    fn shipment(&mut self, s: &mut Shipment) -> Option<()> {
        const KEYS: [Key; 10] = [
            key("shipment_id"),
            key("importer"),
            key("consignee"),
            key("shipper"),
            key("manufacturer"),
            key("broker"),
            key("origin_country"),
            key("transit_countries"),
            key("departure_country"),
            key("commodities"),
        ];
        // The fields a shipment must have, as read.
        let (mut shipment_id, mut origin_country, mut commodities) = (false, false, false);
        self.object(&KEYS, |p, key| {
            match key {
                Some(0) => {
                    s.shipment_id = p.id()?;
                    shipment_id = true;
                }
                Some(1) => {
                    s.importer = p.opt(P::party)?;
                }
                Some(2) => {
                    s.consignee = p.opt(P::party)?;
                }
                Some(3) => {
                    s.shipper = p.opt(P::party)?;
                }
                Some(4) => {
                    s.manufacturer = p.opt(P::party)?;
                }
                Some(5) => {
                    s.broker = p.opt(P::party)?;
                }
                Some(6) => {
                    s.origin_country = p.country()?;
                    origin_country = true;
                }
                Some(7) => {
                    s.transit_countries = p.vec(P::country)?;
                }
                Some(8) => {
                    s.departure_country = p.opt(P::country)?;
                }
                Some(9) => {
                    s.commodities = p.vec_in_place(blank_commodity, P::commodity)?;
                    commodities = true;
                }
                _ => p.skip(2)?,
            }
            Some(())
        })?;
        (shipment_id && origin_country && commodities).then_some(())
    }

    /// Reads a commodity line into `c` (a [`blank_commodity`]).
    fn commodity(&mut self, c: &mut Commodity) -> Option<()> {
        const KEYS: [Key; 13] = [
            key("hts"),
            key("description"),
            key("quantity"),
            key("unit"),
            key("weight_kg"),
            key("value_usd"),
            key("entry_type"),
            key("process_type"),
            key("import_use"),
            key("payment_type"),
            key("duty_rate"),
            key("duty_type"),
            key("origin_preference"),
        ];
        let (mut hts, mut description) = (None, None);
        self.object(&KEYS, |p, key| {
            match key {
                Some(0) => {
                    hts = Some(Hts::parse(p.str()?)?);
                }
                Some(1) => {
                    description = Some(p.name()?);
                }
                Some(2) => {
                    c.quantity = p.opt(P::f64)?;
                }
                Some(3) => {
                    c.unit = p.opt(P::id)?;
                }
                Some(4) => {
                    c.weight_kg = p.opt(P::f64)?;
                }
                Some(5) => {
                    c.value_usd = p.opt(P::f64)?;
                }
                Some(6) => {
                    c.entry_type = p.opt(P::id)?;
                }
                Some(7) => {
                    c.process_type = p.opt(P::id)?;
                }
                Some(8) => {
                    c.import_use = p.opt(P::id)?;
                }
                Some(9) => {
                    c.payment_type = p.opt(P::id)?;
                }
                Some(10) => {
                    c.duty_rate = p.opt(P::f64)?;
                }
                Some(11) => {
                    c.duty_type = p.opt(P::id)?;
                }
                Some(12) => {
                    c.origin_preference = p.opt(P::id)?;
                }
                _ => p.skip(3)?,
            }
            Some(())
        })?;
        c.hts = hts?;
        c.description = description?;
        Some(())
    }

    fn decision_facts(&mut self) -> Option<DecisionFacts> {
        // In the order the decision writer puts them (its other fields between are skipped).
        const KEYS: [Key; 10] = [
            key("manifest_id"),
            key("revision"),
            key("port_of_entry"),
            key("action"),
            key("random_exam"),
            key("watchlist_hit"),
            key("score"),
            key("reasons"),
            key("parties"),
            key("importer_standing"),
        ];
        let (mut manifest_id, mut revision, mut port_of_entry, mut action) =
            (None, None, None, None);
        let (mut random_exam, mut watchlist_hit, mut score) = (false, false, None);
        let (mut reasons, mut parties, mut importer_standing) = (Vec::new(), Vec::new(), None);
        self.object(&KEYS, |p, key| {
            match key {
                Some(0) => manifest_id = Some(p.text()?),
                Some(1) => revision = Some(p.u32()?),
                Some(2) => port_of_entry = Some(PortCode::parse(p.str()?)?),
                Some(3) => {
                    let name = p.str()?;
                    action = Some(*Action::ALL.iter().find(|a| a.as_str() == name)?);
                }
                Some(4) => random_exam = p.bool()?,
                Some(5) => watchlist_hit = p.bool()?,
                Some(6) => score = Some(p.i32()?),
                Some(7) => reasons = p.vec(P::reason_facts)?,
                Some(8) => parties = p.vec(P::party_facts)?,
                Some(9) => importer_standing = Some(p.text()?),
                _ => p.skip_value::<true>(0)?,
            }
            Some(())
        })?;
        Some(DecisionFacts {
            manifest_id: manifest_id?,
            revision: revision?,
            port_of_entry: port_of_entry?,
            action: action?,
            random_exam,
            watchlist_hit,
            score: score?,
            reasons,
            parties,
            importer_standing: importer_standing?,
        })
    }

    fn reason_facts(&mut self) -> Option<ReasonFacts> {
        const KEYS: [Key; 3] = [key("rule"), key("points"), key("shipment_id")];
        let (mut rule, mut points, mut shipment_id) = (None, None, None);
        self.object(&KEYS, |p, key| {
            match key {
                Some(0) => rule = Some(p.text()?),
                Some(1) => points = Some(p.i32()?),
                Some(2) => shipment_id = p.opt(P::text)?,
                _ => p.skip_value::<true>(2)?,
            }
            Some(())
        })?;
        Some(ReasonFacts {
            rule: rule?,
            points: points?,
            shipment_id,
        })
    }

    fn party_facts(&mut self) -> Option<PartyFacts> {
        const KEYS: [Key; 3] = [key("role"), key("id"), key("shipment_id")];
        let (mut role, mut id, mut shipment_id) = (None, None, None);
        self.object(&KEYS, |p, key| {
            match key {
                Some(0) => role = Some(role_named(p.str()?)?),
                Some(1) => id = Some(p.text()?),
                Some(2) => shipment_id = p.opt(P::text)?,
                _ => p.skip_value::<true>(2)?,
            }
            Some(())
        })?;
        Some(PartyFacts {
            role: role?,
            id: id?,
            shipment_id,
        })
    }
}

/// A party role by its serde name (snake_case).
fn role_named(name: &str) -> Option<Role> {
    Some(match name {
        "importer" => Role::Importer,
        "carrier" => Role::Carrier,
        "manufacturer" => Role::Manufacturer,
        "shipper" => Role::Shipper,
        "broker" => Role::Broker,
        "consignee" => Role::Consignee,
        "driver" => Role::Driver,
        _ => return None,
    })
}

/// The entity a partner record names (serde's snake_case variant names).
fn entity_named(name: &str) -> Option<Entity> {
    Some(match name {
        "importer" => Entity::Importer,
        "exporter" => Entity::Exporter,
        "highway_carrier" => Entity::HighwayCarrier,
        "rail_carrier" => Entity::RailCarrier,
        "sea_carrier" => Entity::SeaCarrier,
        "air_carrier" => Entity::AirCarrier,
        "broker" => Entity::Broker,
        "consolidator" => Entity::Consolidator,
        "terminal_operator" => Entity::TerminalOperator,
        "manufacturer" => Entity::Manufacturer,
        "long_haul_carrier" => Entity::LongHaulCarrier,
        "third_party_logistics" => Entity::ThirdPartyLogistics,
        "mra_foreign" => Entity::MraForeign,
        _ => return None,
    })
}
