//! Eight bytes at a time (SWAR), and sixteen with SSE2 on x86-64 ([`lanes16`], this module's one `unsafe`
//! block). SWAR: tests on every byte of a little-endian `u64` word at once, each giving the
//! high bit of the lanes (bytes) that match. A borrow from a matching lane can only set lanes
//! above it, so each test is exact as a yes/no and its lowest set lane is the first matching byte. The
//! manifest reader's string scan and the JSON writer's escape check share them (the same bytes: those a JSON
//! string cannot hold raw); the identifier and name checks use the constants.

pub(crate) const LO: u64 = 0x0101_0101_0101_0101;
pub(crate) const HI: u64 = 0x8080_8080_8080_8080;

/// The word of eight bytes, the first in the lowest lane.
#[inline(always)]
pub(crate) fn word(bytes: &[u8; 8]) -> u64 {
    u64::from_le_bytes(*bytes)
}

/// Lanes holding a byte below `n` (`n` at most 0x80).
#[inline(always)]
pub(crate) fn below(w: u64, n: u8) -> u64 {
    debug_assert!(n <= 0x80);
    w.wrapping_sub(LO * u64::from(n)) & !w & HI
}

/// Lanes holding `b`.
#[inline(always)]
pub(crate) fn equal(w: u64, b: u8) -> u64 {
    below(w ^ (LO * u64::from(b)), 1)
}

/// Lanes holding a byte outside `low..=b'~'` (`low` at most 0x80): below `low`, or above 0x7e (adding 1 sets
/// its high bit, or it was set). The printable checks of identifiers (`low` = `!`) and names (`low` = space).
#[inline(always)]
pub(crate) fn outside(w: u64, low: u8) -> u64 {
    (below(w, low) | w.wrapping_add(LO) | w) & HI
}

/// Lanes holding a byte a JSON string cannot hold as it is: `"`, `\` or a control character below 0x20.
#[inline(always)]
pub(crate) fn json_special(w: u64) -> u64 {
    equal(w, b'"') | equal(w, b'\\') | below(w, 0x20)
}

/// Sixteen bytes at a time (SSE2, which every x86-64 CPU has, so nothing is detected at run time): bit k of
/// each mask is byte k, exact lane by lane (a vector compare has no borrows). The first mask holds the
/// bytes [`json_special`] finds (`"`, `\`, control characters below 0x20), the second those [`outside`]
/// finds for `low` (below `low`, or above `~`; `low` at most `~`). The readers' string scan (manifests, partners, decision
/// records) takes sixteen bytes a step with it, and eight (the words above) near the end of the input;
/// the JSON writer's escape check (`json::needs_escape`) likewise.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn lanes16(bytes: &[u8; 16], low: u8) -> (u32, u32) {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_min_epu8, _mm_movemask_epi8,
        _mm_or_si128, _mm_set1_epi8,
    };
    debug_assert!(low <= b'~');
    // SAFETY: SSE2 is part of the x86-64 baseline, enabled on every x86_64 target, so its instructions
    // exist wherever this runs; the one load reads the 16 bytes `bytes` refers to (an unaligned load,
    // `loadu`), and nothing else touches memory.
    #[allow(unsafe_code)]
    unsafe {
        let x = _mm_loadu_si128(bytes.as_ptr().cast());
        let splat = |b: u8| _mm_set1_epi8(b as i8);
        // A byte is at most 0x1f exactly when min(byte, 0x1f) is the byte (unsigned).
        let control = _mm_cmpeq_epi8(_mm_min_epu8(x, splat(0x1f)), x);
        let special = _mm_or_si128(
            _mm_or_si128(
                _mm_cmpeq_epi8(x, splat(b'"')),
                _mm_cmpeq_epi8(x, splat(b'\\')),
            ),
            control,
        );
        // In `low..=b'~'` exactly when clamping the byte to that range leaves it as it is.
        let inside = _mm_cmpeq_epi8(_mm_min_epu8(_mm_max_epu8(x, splat(low)), splat(b'~')), x);
        (
            _mm_movemask_epi8(special) as u32,
            !(_mm_movemask_epi8(inside) as u32) & 0xffff,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sixteen-byte masks against their byte-wise definitions, every byte value at every lane over a
    /// background of each byte value, for both bounds the readers use and the edges of the allowed range.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn sixteen_lanes_agree_with_bytes() {
        for low in [0, 1, b' ', b'!', b'}', b'~'] {
            for background in 0..=255u8 {
                for lane in 0..16 {
                    for b in 0..=255u8 {
                        let mut bytes = [background; 16];
                        bytes[lane] = b;
                        let (special, out) = lanes16(&bytes, low);
                        for (k, &x) in bytes.iter().enumerate() {
                            let want_special = x == b'"' || x == b'\\' || x < 0x20;
                            let want_out = !(low..=b'~').contains(&x);
                            assert_eq!(special >> k & 1 == 1, want_special, "{bytes:?} lane {k}");
                            assert_eq!(out >> k & 1 == 1, want_out, "{bytes:?} low {low} lane {k}");
                        }
                        assert_eq!(special >> 16, 0);
                        assert_eq!(out >> 16, 0);
                    }
                }
            }
        }
    }

    /// Every test against its byte-wise definition, for every byte value at every lane, over a background of
    /// each byte value (so borrows and carries from every neighbour are tried): the yes/no and the lowest
    /// lane agree.
    #[test]
    fn lane_tests_agree_with_bytes() {
        type Test = (fn(u64) -> u64, fn(u8) -> bool);
        let tests: [Test; 7] = [
            (|w| below(w, 0x20), |b| b < 0x20),
            (|w| below(w, b'!'), |b| b < b'!'),
            (|w| outside(w, b'!'), |b| !(b'!'..=b'~').contains(&b)),
            (|w| outside(w, b' '), |b| !(b' '..=b'~').contains(&b)),
            (|w| equal(w, b'"'), |b| b == b'"'),
            (|w| equal(w, b'\\'), |b| b == b'\\'),
            (json_special, |b| b == b'"' || b == b'\\' || b < 0x20),
        ];
        for (test, want) in tests {
            for background in 0..=255u8 {
                for lane in 0..8 {
                    for b in 0..=255u8 {
                        let mut bytes = [background; 8];
                        bytes[lane] = b;
                        let first = bytes.iter().position(|&x| want(x));
                        let got = test(word(&bytes));
                        assert_eq!(got != 0, first.is_some(), "{bytes:?}");
                        if let Some(i) = first {
                            assert_eq!(got.trailing_zeros() / 8, i as u32, "{bytes:?}");
                        }
                    }
                }
            }
        }
    }
}
