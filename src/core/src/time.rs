//! Timestamps (RFC 3339) and calendar dates (`YYYY-MM-DD`) as they appear on the wire.
//!
//! Date rules in the core (revalidation lapse, filing lead time) only ever compare these values with each
//! other — never with a wall clock — so a decision is a function of its inputs alone.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

use crate::codes::TAG_BAD_DATE;

/// Earliest and latest years accepted on the wire; anything outside is a `bad_date`.
const MIN_YEAR: i32 = 1970;
const MAX_YEAR: i32 = 2199;

/// An instant, normalised to UTC, with nanosecond precision.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    pub fn parse(s: &str) -> Option<Timestamp> {
        let t = match fast_utc(s.as_bytes()) {
            Some(t) => t,
            None => OffsetDateTime::parse(s, &Rfc3339)
                .ok()?
                .to_offset(UtcOffset::UTC),
        };
        (MIN_YEAR..=MAX_YEAR)
            .contains(&t.year())
            .then_some(Timestamp(t))
    }

    /// Builds a timestamp from Unix nanoseconds (adapters use this for `decided_at`).
    pub fn from_unix_nanos(nanos: i128) -> Option<Timestamp> {
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .map(Timestamp)
    }

    pub fn from_unix_seconds(secs: i64) -> Option<Timestamp> {
        OffsetDateTime::from_unix_timestamp(secs)
            .ok()
            .map(Timestamp)
    }

    pub fn unix_seconds(&self) -> i64 {
        self.0.unix_timestamp()
    }

    pub fn unix_nanos(&self) -> i128 {
        self.0.unix_timestamp_nanos()
    }

    /// The UTC calendar day of this instant.
    pub fn date(&self) -> Date {
        Date(self.0.date().to_julian_day())
    }

    /// The instant `days` whole days (of 86 400 s) earlier.
    pub fn minus_days(&self, days: u32) -> Timestamp {
        Timestamp(
            self.0
                .checked_sub(time::Duration::days(i64::from(days)))
                .unwrap_or(self.0),
        )
    }

    /// Whole minutes from `self` to `later` (negative if `later` is earlier).
    pub fn minutes_until(&self, later: &Timestamp) -> i64 {
        (later.0 - self.0).whole_minutes()
    }
}

/// The digits of `b[r]` as a number; `None` if any byte is not an ASCII digit.
#[inline(always)]
fn digits(b: &[u8], r: std::ops::Range<usize>) -> Option<u32> {
    b[r].iter().try_fold(0u32, |acc, d| {
        d.is_ascii_digit().then(|| acc * 10 + (d - b'0') as u32)
    })
}

/// The date `YYYY-MM-DD` (exactly ten bytes) without the `time` crate's format-description parser (the
/// partner table's two dates per record; the general parser is ~10x slower). `None` for any other shape,
/// which the general parser then reads: the two agree on every input (property test below).
#[inline(always)]
fn fast_date(b: &[u8]) -> Option<time::Date> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let month = time::Month::try_from(digits(b, 5..7)? as u8).ok()?;
    time::Date::from_calendar_date(digits(b, 0..4)? as i32, month, digits(b, 8..10)? as u8).ok()
}

/// The common wire shape `YYYY-MM-DDTHH:MM:SSZ`, parsed without the general RFC 3339 machinery (the
/// general parser handles fractions and offsets; this is ~5x cheaper on the hot path).
fn fast_utc(b: &[u8]) -> Option<OffsetDateTime> {
    if b.len() != 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let date = fast_date(&b[..10])?;
    let t = time::Time::from_hms(
        digits(b, 11..13)? as u8,
        digits(b, 14..16)? as u8,
        digits(b, 17..19)? as u8,
    )
    .ok()?;
    Some(date.with_time(t).assume_utc())
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.format(&Rfc3339) {
            Ok(s) => f.write_str(&s),
            Err(_) => f.write_str("invalid-timestamp"),
        }
    }
}

impl Timestamp {
    /// Appends exactly the `Display` text (RFC 3339 as the `time` crate writes it: UTC as `Z`, a fraction
    /// only when non-zero and without trailing zeros) without the formatter's `String`. Decisions write
    /// `decided_at` with it; the JSON writer's property test holds it to `Display`.
    pub fn write_rfc3339(&self, out: &mut Vec<u8>) {
        let t = self.0;
        let year = t.year();
        if !(0..10_000).contains(&year) || !t.offset().is_utc() {
            // Not reached by timestamps built in this crate (all UTC, years 1970..=2199 when parsed).
            out.extend_from_slice(self.to_string().as_bytes());
            return;
        }
        let (h, m, s, nanos) = t.to_hms_nano();
        let two = |out: &mut Vec<u8>, v: u8| out.extend_from_slice(&[b'0' + v / 10, b'0' + v % 10]);
        let y = year as u16;
        out.extend_from_slice(&[
            b'0' + (y / 1000) as u8,
            b'0' + (y / 100 % 10) as u8,
            b'0' + (y / 10 % 10) as u8,
            b'0' + (y % 10) as u8,
            b'-',
        ]);
        two(out, t.month() as u8);
        out.push(b'-');
        two(out, t.day());
        out.push(b'T');
        two(out, h);
        out.push(b':');
        two(out, m);
        out.push(b':');
        two(out, s);
        if nanos != 0 {
            let mut digits = [b'0'; 9];
            let mut n = nanos;
            for d in digits.iter_mut().rev() {
                *d = b'0' + (n % 10) as u8;
                n /= 10;
            }
            let len = 9 - digits.iter().rev().take_while(|d| **d == b'0').count();
            out.push(b'.');
            out.extend_from_slice(&digits[..len]);
        }
        out.push(b'Z');
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A calendar date, stored as its Julian day number so day arithmetic is integer subtraction.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i32);

impl Date {
    pub fn parse(s: &str) -> Option<Date> {
        let d = match fast_date(s.as_bytes()) {
            Some(d) => d,
            None => Date::parse_general(s)?,
        };
        (MIN_YEAR..=MAX_YEAR)
            .contains(&d.year())
            .then_some(Date(d.to_julian_day()))
    }

    /// The `time` crate's reading of `[year]-[month]-[day]`, the reference of the fast path.
    fn parse_general(s: &str) -> Option<time::Date> {
        time::Date::parse(s, format_description!("[year]-[month]-[day]")).ok()
    }

    /// Days from `self` to `later`.
    pub fn days_until(&self, later: Date) -> i32 {
        later.0 - self.0
    }

    pub fn plus_days(&self, days: i32) -> Date {
        Date(self.0 + days)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match time::Date::from_julian_day(self.0) {
            Ok(d) => write!(f, "{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day()),
            Err(_) => f.write_str("invalid-date"),
        }
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

macro_rules! date_serde {
    ($ty:ident, $what:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
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
                            E::custom(format_args!("{}{:?} is not {}", TAG_BAD_DATE, v, $what))
                        })
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

date_serde!(Timestamp, "an RFC 3339 timestamp between 1970 and 2199");
date_serde!(Date, "a YYYY-MM-DD date between 1970 and 2199");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let t = Timestamp::parse("2026-11-28T04:00:00Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-28T04:00:00Z");
        let u = Timestamp::parse("2026-11-27T23:00:00-05:00").unwrap();
        assert_eq!(t, u);
        assert_eq!(
            t.minutes_until(&Timestamp::parse("2026-11-28T05:00:00Z").unwrap()),
            60
        );
        assert!(Timestamp::parse("2026-11-28").is_none());
        assert!(Timestamp::parse("2026-13-28T04:00:00Z").is_none());
        assert!(Timestamp::parse("1900-01-01T00:00:00Z").is_none());
        // The fast path and the general parser agree, and the fast path rejects what RFC 3339 rejects.
        assert_eq!(
            Timestamp::parse("2024-02-29T23:59:59Z"),
            Timestamp::parse("2024-02-29T23:59:59.000+00:00")
        );
        assert!(Timestamp::parse("2023-02-29T00:00:00Z").is_none());
        assert!(Timestamp::parse("2023-01-01T24:00:00Z").is_none());
        assert!(Timestamp::parse("2023-01-01T00:00:0xZ").is_none());
    }

    #[test]
    fn dates() {
        let d = Date::parse("2019-03-04").unwrap();
        assert_eq!(d.to_string(), "2019-03-04");
        assert_eq!(d.days_until(Date::parse("2019-03-05").unwrap()), 1);
        assert!(Date::parse("2019-02-30").is_none());
        let t = Timestamp::parse("2019-03-04T23:59:59Z").unwrap();
        assert_eq!(t.date(), d);
        for s in [
            "2024-02-29",
            "2023-02-29",
            "2019-00-04",
            "2019-13-04",
            "2019-03-00",
            "2019-3-04",
        ] {
            assert_eq!(fast_date(s.as_bytes()), Date::parse_general(s), "{s}");
        }
        // A shape the fast path declines goes to the general parser (which takes a leading `+`).
        assert_eq!(fast_date(b"+2019-03-04"), None);
        assert_eq!(Date::parse("+2019-03-04"), Some(d));
    }

    proptest::proptest! {
        /// The `YYYY-MM-DD` fast path reads every text as the `time` crate's parser does (texts built from
        /// digits, `-`, `+` and a space around the date's shape, and valid-looking dates).
        #[test]
        fn fast_dates_agree(
            s in "[0-9+ -]{8,12}|[0-9]{4}-[0-9]{2}-[0-9]{2}|(19[6-9][0-9]|2[01][0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
        ) {
            if let Some(fast) = fast_date(s.as_bytes()) {
                proptest::prop_assert_eq!(Some(fast), Date::parse_general(&s), "{}", s);
            }
            let expected = Date::parse_general(&s)
                .filter(|d| (MIN_YEAR..=MAX_YEAR).contains(&d.year()))
                .map(|d| Date(d.to_julian_day()));
            proptest::prop_assert_eq!(Date::parse(&s), expected, "{}", s);
        }
    }
}
