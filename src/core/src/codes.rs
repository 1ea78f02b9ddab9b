//! Validated fixed-width codes used on the wire: ISO 3166-1 country codes, CBP port codes, HTS codes.
//!
//! Each code is a small `Copy` value that can only be built from a well-formed string, so the rest of the
//! core never re-checks shapes. Parsing failures carry the error kind the dead-letter contract names.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// All officially assigned ISO 3166-1 alpha-2 codes (249), concatenated.
const ISO_3166_ALPHA2: &str = "ADAEAFAGAIALAMAOAQARASATAUAWAXAZBABBBDBEBFBGBHBIBJBLBMBNBOBQBRBSBTBVBWBYBZCACCCDCFCGCHCICKCLCMCNCOCRCUCVCWCXCYCZDEDJDKDMDODZECEEEGEHERESETFIFJFKFMFOFRGAGBGDGEGFGGGHGIGLGMGNGPGQGRGSGTGUGWGYHKHMHNHRHTHUIDIEILIMINIOIQIRISITJEJMJOJPKEKGKHKIKMKNKPKRKWKYKZLALBLCLILKLRLSLTLULVLYMAMCMDMEMFMGMHMKMLMMMNMOMPMQMRMSMTMUMVMWMXMYMZNANCNENFNGNINLNONPNRNUNZOMPAPEPFPGPHPKPLPMPNPRPSPTPWPYQARERORSRURWSASBSCSDSESGSHSISJSKSLSMSNSOSRSSSTSVSXSYSZTCTDTFTGTHTJTKTLTMTNTOTRTTTVTWTZUAUGUMUSUYUZVAVCVEVGVIVNVUWFWSYEYTZAZMZW";

/// Bitmap over the 676 two-letter combinations: bit set for each assigned code. Built at compile time.
const ASSIGNED: [u64; 11] = {
    let mut bits = [0u64; 11];
    let codes = ISO_3166_ALPHA2.as_bytes();
    let mut k = 0;
    while k < codes.len() {
        let i = (codes[k] - b'A') as usize * 26 + (codes[k + 1] - b'A') as usize;
        bits[i / 64] |= 1 << (i % 64);
        k += 2;
    }
    bits
};

/// Error prefix tags, read back by [`crate::wire`] to classify a serde error into a dead-letter kind.
pub(crate) const TAG_BAD_CODE: &str = "bad_code: ";
pub(crate) const TAG_BAD_DATE: &str = "bad_date: ";
pub(crate) const TAG_BAD_VALUE: &str = "bad_value: ";

/// An ISO 3166-1 alpha-2 country code, stored as two uppercase ASCII letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

impl Country {
    /// A valid code (`US`) for a reader to overwrite: what a shipment read in place starts with, before
    /// its own origin is read.
    pub(crate) const BLANK: Country = Country(*b"US");

    /// Parses an assigned ISO 3166-1 alpha-2 code (uppercase only, as the wire format requires).
    pub fn parse(s: &str) -> Option<Country> {
        let b = s.as_bytes();
        if b.len() != 2 || !b[0].is_ascii_uppercase() || !b[1].is_ascii_uppercase() {
            return None;
        }
        let c = Country([b[0], b[1]]);
        let i = c.index();
        (ASSIGNED[i / 64] & (1 << (i % 64)) != 0).then_some(c)
    }

    /// Dense index in `0..676` used by compiled policy tables.
    #[inline]
    pub fn index(self) -> usize {
        (self.0[0] - b'A') as usize * 26 + (self.0[1] - b'A') as usize
    }

    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII uppercase letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

/// A 4-digit CBP Schedule D port code, e.g. `2304` (Laredo).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortCode([u8; 4]);

impl PortCode {
    pub fn parse(s: &str) -> Option<PortCode> {
        let b = s.as_bytes();
        (b.len() == 4 && b.iter().all(u8::is_ascii_digit))
            .then(|| PortCode([b[0], b[1], b[2], b[3]]))
    }

    /// The code as a number in `0..10000`, the index into compiled port tables.
    #[inline]
    pub fn index(self) -> usize {
        self.0
            .iter()
            .fold(0usize, |acc, d| acc * 10 + (d - b'0') as usize)
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("????")
    }
}

/// A Harmonized Tariff Schedule code of 6 to 10 digits; scoring uses chapter (2), heading (4) and
/// subheading (6).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hts {
    digits: [u8; 10],
    len: u8,
}

impl Hts {
    /// A valid code (`010000`) for a reader to overwrite: what a commodity line read in place starts
    /// with, before its own code is read.
    pub(crate) const BLANK: Hts = Hts {
        digits: *b"0100000000",
        len: 6,
    };

    pub fn parse(s: &str) -> Option<Hts> {
        let b = s.as_bytes();
        if !(6..=10).contains(&b.len()) || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut digits = [b'0'; 10];
        digits[..b.len()].copy_from_slice(b);
        let hts = Hts {
            digits,
            len: b.len() as u8,
        };
        (hts.chapter() >= 1).then_some(hts)
    }

    fn num(&self, n: usize) -> u32 {
        self.digits[..n]
            .iter()
            .fold(0u32, |acc, d| acc * 10 + (d - b'0') as u32)
    }

    /// HTS chapter, `1..=99`.
    #[inline]
    pub fn chapter(&self) -> u8 {
        self.num(2) as u8
    }

    /// HTS heading (4 digits), `100..=9999`.
    #[inline]
    pub fn heading(&self) -> u16 {
        self.num(4) as u16
    }

    /// HTS subheading (6 digits).
    #[inline]
    pub fn subheading(&self) -> u32 {
        self.num(6)
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.digits[..self.len as usize]).unwrap_or("")
    }
}

macro_rules! code_serde {
    ($ty:ident, $what:literal) => {
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($ty), self.as_str())
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        $ty::parse(v).ok_or_else(|| {
                            E::custom(format_args!("{}{:?} is not {}", TAG_BAD_CODE, v, $what))
                        })
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

code_serde!(Country, "an ISO 3166-1 alpha-2 country code");
code_serde!(PortCode, "a 4-digit CBP port code");
code_serde!(Hts, "an HTS code of 6 to 10 digits");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanks_are_valid_codes() {
        assert_eq!(Some(Hts::BLANK), Hts::parse("010000"));
        assert_eq!(Some(Country::BLANK), Country::parse("US"));
    }

    #[test]
    fn country_codes() {
        assert_eq!(ISO_3166_ALPHA2.len(), 249 * 2);
        assert!(Country::parse("MX").is_some());
        assert!(Country::parse("ZW").is_some());
        assert!(Country::parse("XX").is_none());
        assert!(Country::parse("mx").is_none());
        assert!(Country::parse("MEX").is_none());
        assert_eq!(Country::parse("AA"), None);
        assert_eq!(Country::parse("ZZ"), None);
        assert_eq!(Country::parse("US").unwrap().as_str(), "US");
    }

    #[test]
    fn port_and_hts() {
        assert_eq!(PortCode::parse("2304").unwrap().index(), 2304);
        assert_eq!(PortCode::parse("0901").unwrap().index(), 901);
        assert!(PortCode::parse("230").is_none());
        assert!(PortCode::parse("23a4").is_none());
        let h = Hts::parse("847130").unwrap();
        assert_eq!(
            (h.chapter(), h.heading(), h.subheading()),
            (84, 8471, 847130)
        );
        assert_eq!(Hts::parse("8471300000").unwrap().heading(), 8471);
        assert!(Hts::parse("84713").is_none());
        assert!(Hts::parse("001234").is_none());
    }
}
