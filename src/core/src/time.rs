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

/// An instant, normalised to UTC, with nanosecond precision: whole seconds since the Unix epoch and the
/// nanoseconds into that second (`0..1_000_000_000`), so the derived order is the instants' order. Only
/// instants the `time` crate can represent are ever built (every constructor checks), so converting back
/// for formatting cannot fail. Parsing, the day and the minutes between two instants are integer
/// arithmetic here (the wire's `filed_at` and `estimated_arrival` on every manifest); the `time` crate
/// reads the general RFC 3339 shapes and writes the text.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    secs: i64,
    nanos: u32,
}

/// The Julian day number of 1970-01-01 (the `time` crate's `to_julian_day`).
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;
const NANOS_PER_SEC: i128 = 1_000_000_000;

impl Timestamp {
    pub fn parse(s: &str) -> Option<Timestamp> {
        if let Some((year, t)) = fast_utc(s.as_bytes()) {
            return (MIN_YEAR..=MAX_YEAR).contains(&year).then_some(t);
        }
        let t = OffsetDateTime::parse(s, &Rfc3339)
            .ok()?
            .to_offset(UtcOffset::UTC);
        (MIN_YEAR..=MAX_YEAR)
            .contains(&t.year())
            .then(|| Timestamp::of(t))
    }

    fn of(t: OffsetDateTime) -> Timestamp {
        Timestamp {
            secs: t.unix_timestamp(),
            nanos: t.nanosecond(),
        }
    }

    /// The instant as the `time` crate holds it (the epoch for none: not reached, every constructor
    /// checks the range).
    fn offset_date_time(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(self.unix_nanos())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Builds a timestamp from Unix nanoseconds (adapters use this for `decided_at`).
    pub fn from_unix_nanos(nanos: i128) -> Option<Timestamp> {
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .map(Timestamp::of)
    }

    pub fn from_unix_seconds(secs: i64) -> Option<Timestamp> {
        OffsetDateTime::from_unix_timestamp(secs)
            .ok()
            .map(Timestamp::of)
    }

    pub fn unix_seconds(&self) -> i64 {
        self.secs
    }

    pub fn unix_nanos(&self) -> i128 {
        i128::from(self.secs) * NANOS_PER_SEC + i128::from(self.nanos)
    }

    /// The UTC calendar day of this instant.
    pub fn date(&self) -> Date {
        // In the `time` crate's range the day fits an `i32` (its own `to_julian_day` is one).
        Date((self.secs.div_euclid(86_400) + UNIX_EPOCH_JULIAN_DAY) as i32)
    }

    /// The instant `days` whole days (of 86 400 s) earlier; itself if that is before the earliest instant
    /// the `time` crate represents.
    pub fn minus_days(&self, days: u32) -> Timestamp {
        self.secs
            .checked_sub(i64::from(days) * 86_400)
            .and_then(Timestamp::from_unix_seconds)
            .map_or(*self, |t| Timestamp {
                nanos: self.nanos,
                ..t
            })
    }

    /// Whole minutes from `self` to `later` (negative if `later` is earlier), truncated toward zero.
    pub fn minutes_until(&self, later: &Timestamp) -> i64 {
        // Whole seconds truncated toward zero, as `time::Duration::whole_seconds`: the nanoseconds take
        // the seconds' sign.
        let mut secs = later.secs - self.secs;
        let nanos = i64::from(later.nanos) - i64::from(self.nanos);
        if secs > 0 && nanos < 0 {
            secs -= 1;
        } else if secs < 0 && nanos > 0 {
            secs += 1;
        }
        secs / 60
    }
}

/// Eight bytes of text against a template: `template`'s `0` bytes stand for any ASCII digit, its other
/// bytes for themselves. Returns each byte's digit value in its lane (the literal lanes 0), or `None` if a
/// byte does not fit. Branch-free over the eight bytes (SWAR): XOR with the template leaves a digit's value
/// in its lane and a matching literal's lane 0; every lane must then be at most 9, and the literal lanes 0.
#[inline(always)]
fn digit_lanes(bytes: [u8; 8], template: [u8; 8]) -> Option<u64> {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A lane above 9 gets its high bit from adding 0x76 (a lane of 0x80 or more has it already, and a
    // carry out of it into the next lane only flags what is refused anyway).
    const ADD: u64 = 0x7676_7676_7676_7676;
    let x = u64::from_le_bytes(bytes) ^ u64::from_le_bytes(template);
    let literal = u64::from_le_bytes(template.map(|t| if t == b'0' { 0 } else { 0xff }));
    (((x | x.wrapping_add(ADD)) & HIGH) | (x & literal) == 0).then_some(x)
}

/// Lane `k`'s value of [`digit_lanes`]' result.
#[inline(always)]
fn lane(x: u64, k: u32) -> u32 {
    (x >> (8 * k)) as u32 & 0xff
}

/// The two-digit number in lanes `k` and `k + 1` of [`digit_lanes`]' result.
#[inline(always)]
fn two(x: u64, k: u32) -> u32 {
    lane(x, k) * 10 + lane(x, k + 1)
}

/// The eight bytes of `b` from `at` (in bounds: the callers' texts have fixed lengths).
#[inline(always)]
fn word<const N: usize>(b: &[u8; N], at: usize) -> [u8; 8] {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    w
}

/// Days from 1970-01-01 to the proleptic Gregorian date `year-month-day` (already checked to exist, year
/// 0..=9999): H. Hinnant's `days_from_civil`, on years shifted by one 400-year era so that every division
/// is unsigned.
#[inline(always)]
fn days_from_civil(year: u32, month: u32, day: u32) -> i64 {
    let y = year + 400 - u32::from(month <= 2);
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    i64::from(era) * 146_097 + i64::from(doe) - 719_468 - 146_097
}

/// The proleptic Gregorian date `days` days from 1970-01-01, as year, month and day: H. Hinnant's
/// `civil_from_days`, the inverse of [`days_from_civil`], on days shifted by 25 400-year eras so that
/// every division is unsigned over the `time` crate's range (years ±9999; `None` outside it).
fn civil_from_days(days: i64) -> Option<(i64, u8, u8)> {
    const SHIFT_ERAS: u64 = 25;
    let z = u64::try_from(days + 719_468 + SHIFT_ERAS as i64 * 146_097).ok()?;
    let era = z / 146_097;
    let doe = (z - era * 146_097) as u32;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = (era as i64 - SHIFT_ERAS as i64) * 400 + i64::from(yoe) + i64::from(month <= 2);
    Some((year, month, day))
}

/// Days in `month` of `year` (proleptic Gregorian); 0 for a month outside 1..=12.
#[inline(always)]
fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        _ => 0,
    }
}

/// The date `YYYY-MM-DD` (exactly ten bytes) without the `time` crate's format-description parser (the
/// partner table's two dates per record; the general parser is ~10x slower; [`fast_utc`] reads a
/// timestamp's date the same way, through [`ymd_days`]), as
/// its year and its days from 1970-01-01: two overlapping eight-byte words against templates. `None` for
/// any other shape or a day the month does not have, which the general parser then reads (or refuses):
/// the two agree on every input (property test below).
#[inline(always)]
fn fast_date(b: &[u8]) -> Option<(i32, i64)> {
    let b = <&[u8; 10]>::try_from(b).ok()?;
    let ymd = digit_lanes(word(b, 0), *b"0000-00-")?;
    let md = digit_lanes(word(b, 2), *b"00-00-00")?;
    ymd_days(ymd, two(md, 6))
}

/// The year and the days from 1970-01-01 of the date whose `YYYY-MM-` lanes are `ymd` and whose day is
/// `day`; `None` if the month or the day does not exist.
#[inline(always)]
fn ymd_days(ymd: u64, day: u32) -> Option<(i32, i64)> {
    let year = two(ymd, 0) * 100 + two(ymd, 2);
    let month = two(ymd, 5);
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    // Four digits: the year fits an `i32`.
    Some((year as i32, days_from_civil(year, month, day)))
}

/// The common wire shape `YYYY-MM-DDTHH:MM:SSZ`, parsed without the general RFC 3339 machinery (the
/// general parser handles fractions, offsets and leap seconds; this is several times cheaper on the hot
/// path), as its year and the instant: three eight-byte words against templates (the last two overlap).
/// `None` for any other shape or an hour, minute or second out of range (the general parser then
/// decides).
#[inline]
fn fast_utc(b: &[u8]) -> Option<(i32, Timestamp)> {
    let b = <&[u8; 20]>::try_from(b).ok()?;
    let ymd = digit_lanes(word(b, 0), *b"0000-00-")?;
    let dhm = digit_lanes(word(b, 8), *b"00T00:00")?;
    let ms = digit_lanes(word(b, 12), *b"0:00:00Z")?;
    let (year, days) = ymd_days(ymd, two(dhm, 0))?;
    let (h, m, s) = (two(dhm, 3), two(dhm, 6), two(ms, 5));
    if h > 23 || m > 59 || s > 59 {
        return None;
    }
    let secs = days * 86_400 + i64::from(h * 3_600 + m * 60 + s);
    Some((year, Timestamp { secs, nanos: 0 }))
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset_date_time().format(&Rfc3339) {
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
        let Some((year @ 0..10_000, month, day)) = civil_from_days(self.secs.div_euclid(86_400))
        else {
            // Not reached by parsed timestamps (years 1970..=2199): `Display`'s text (the `time` crate's
            // RFC 3339 writer refuses such years: `invalid-timestamp`).
            out.extend_from_slice(self.to_string().as_bytes());
            return;
        };
        let of_day = self.secs.rem_euclid(86_400) as u32;
        let (h, m, s, nanos) = (
            (of_day / 3_600) as u8,
            (of_day / 60 % 60) as u8,
            (of_day % 60) as u8,
            self.nanos,
        );
        // `YYYY-MM-DDTHH:MM:SS`, then `.` and the fraction's digits up to its last non-zero one, then
        // `Z`: built on the stack and appended once.
        let mut text = *b"0000-00-00T00:00:00.000000000Z";
        let digits2 = |at: &mut [u8], v: u8| {
            at[0] = b'0' + v / 10;
            at[1] = b'0' + v % 10;
        };
        let y = year as u16;
        digits2(&mut text[0..2], (y / 100) as u8);
        digits2(&mut text[2..4], (y % 100) as u8);
        digits2(&mut text[5..7], month);
        digits2(&mut text[8..10], day);
        digits2(&mut text[11..13], h);
        digits2(&mut text[14..16], m);
        digits2(&mut text[17..19], s);
        let mut len = 19;
        if nanos != 0 {
            // Nine digits with their leading zeros: those of 1_000_000_000 + nanos (itoa, two at a time)
            // after its leading `1`.
            let mut buf = itoa::Buffer::new();
            let digits = &buf.format(1_000_000_000 + nanos).as_bytes()[1..];
            let kept = 9 - digits.iter().rev().take_while(|d| **d == b'0').count();
            text[20..20 + kept].copy_from_slice(&digits[..kept]);
            len = 20 + kept;
        }
        text[len] = b'Z';
        out.extend_from_slice(&text[..=len]);
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
        let (year, days) = match fast_date(s.as_bytes()) {
            Some(d) => d,
            None => Date::parse_general(s).map(|d| {
                (
                    d.year(),
                    i64::from(d.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY,
                )
            })?,
        };
        // Years 1970..=2199: the day fits an `i32`.
        (MIN_YEAR..=MAX_YEAR)
            .contains(&year)
            .then_some(Date((days + UNIX_EPOCH_JULIAN_DAY) as i32))
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
            assert_eq!(fast_date(s.as_bytes()), general_date(s), "{s}");
        }
        // A shape the fast path declines goes to the general parser (which takes a leading `+`).
        assert_eq!(fast_date(b"+2019-03-04"), None);
        assert_eq!(Date::parse("+2019-03-04"), Some(d));
    }

    /// The `time` crate's reading of a date as [`fast_date`] gives one: its year and days from 1970-01-01.
    fn general_date(s: &str) -> Option<(i32, i64)> {
        Date::parse_general(s).map(|d| {
            (
                d.year(),
                i64::from(d.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY,
            )
        })
    }

    /// The `time` crate's reading of a timestamp (the representation before the integer one): parsed as
    /// RFC 3339, normalised to UTC, years 1970..=2199.
    fn reference(s: &str) -> Option<OffsetDateTime> {
        OffsetDateTime::parse(s, &Rfc3339)
            .ok()
            .map(|t| t.to_offset(UtcOffset::UTC))
            .filter(|t| (MIN_YEAR..=MAX_YEAR).contains(&t.year()))
    }

    /// Timestamps of the wire's shape and its neighbours: mostly valid ones (the wire's `Z` shape, with
    /// fractions, with offsets), then out-of-range months, days, hours, minutes and seconds (a leap second
    /// too), and text that only looks like one.
    fn timestamp_texts() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        const VALID: &str = "(19[7-9][0-9]|2[01][0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]";
        const EDGY: &str = "(1969|19[7-9][0-9]|2[0-2][0-9][0-9]|0000|9999)-(0[0-9]|1[0-3])-([0-3][0-9])T([0-2][0-9]):([0-6][0-9]):([0-6][0-9])";
        const SUFFIX: &str = "Z|\\.[0-9]{1,9}Z|[+-](0[0-9]|1[0-4]):[0-5][0-9]";
        prop_oneof![
            3 => VALID.prop_map(|s| s + "Z"),
            2 => (VALID, SUFFIX).prop_map(|(s, z)| s + &z),
            2 => (EDGY, SUFFIX).prop_map(|(s, z)| s + &z),
            // One character of the wire's shape replaced by any other.
            3 => (VALID, 0..20usize, any::<char>()).prop_map(|(s, at, c)| {
                let mut chars: Vec<char> = (s + "Z").chars().collect();
                chars[at] = c;
                chars.into_iter().collect()
            }),
            1 => "[0-9TZ:+. -]{18,22}",
        ]
    }

    /// [`digit_lanes`] against its definition, every lane of every template the readers use with each
    /// of the 256 byte values, alone and beside each value of its neighbour (the lanes a carry could
    /// reach).
    #[test]
    fn digit_lanes_accept_exactly_their_templates() {
        let fits = |t: u8, v: u8| {
            if t == b'0' {
                v.is_ascii_digit()
            } else {
                v == t
            }
        };
        for template in [*b"0000-00-", *b"00-00-00", *b"00T00:00", *b"0:00:00Z"] {
            for k in 0..8 {
                for pair in [false, true] {
                    if pair && k == 7 {
                        continue;
                    }
                    for v in 0..=u8::MAX {
                        for w in 0..=if pair { u8::MAX } else { 0 } {
                            let mut bytes = template;
                            bytes[k] = v;
                            if pair {
                                bytes[k + 1] = w;
                            }
                            let want =
                                bytes
                                    .iter()
                                    .zip(template)
                                    .all(|(&b, t)| fits(t, b))
                                    .then(|| {
                                        bytes.iter().zip(template).enumerate().fold(
                                            0u64,
                                            |x, (i, (&b, t))| {
                                                let value = if t == b'0' { b - b'0' } else { 0 };
                                                x | u64::from(value) << (8 * i)
                                            },
                                        )
                                    });
                            assert_eq!(digit_lanes(bytes, template), want, "{bytes:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn instants_at_the_edges() {
        for (s, secs) in [
            ("1970-01-01T00:00:00Z", 0),
            ("1970-01-01T00:00:01Z", 1),
            ("2000-02-29T12:00:00Z", 951_825_600),
            ("2100-03-01T00:00:00Z", 4_107_542_400),
            ("2199-12-31T23:59:59Z", 7_258_118_399),
        ] {
            let t = Timestamp::parse(s).unwrap();
            assert_eq!(t.unix_seconds(), secs, "{s}");
            assert_eq!(t.to_string(), s);
        }
        assert!(Timestamp::parse("2100-02-29T00:00:00Z").is_none());
        assert!(Timestamp::parse("1969-12-31T23:59:59Z").is_none());
        assert!(Timestamp::parse("2200-01-01T00:00:00Z").is_none());
        // A leap second is the general parser's: the last nanosecond of the minute.
        let leap = Timestamp::parse("2016-12-31T23:59:60Z").unwrap();
        assert_eq!(leap.to_string(), "2016-12-31T23:59:59.999999999Z");
        // Truncated toward zero either way, as `time::Duration::whole_minutes`.
        let a = Timestamp::parse("2026-01-01T00:00:00.5Z").unwrap();
        let b = Timestamp::parse("2026-01-01T00:01:00Z").unwrap();
        assert_eq!((a.minutes_until(&b), b.minutes_until(&a)), (0, 0));
        let c = Timestamp::parse("2026-01-01T00:02:00.5Z").unwrap();
        assert_eq!((b.minutes_until(&c), c.minutes_until(&b)), (1, -1));
        assert_eq!(a.minus_days(u32::MAX), a);
    }

    proptest::proptest! {
        /// Every timestamp reads, orders, prints and counts as the `time` crate's `OffsetDateTime` of the
        /// same text did (the representation before this one): the fast path and the general one alike.
        #[test]
        fn timestamps_agree_with_the_time_crate(
            a in timestamp_texts(),
            b in timestamp_texts(),
            days in proptest::prop_oneof![0u32..800, proptest::prelude::any::<u32>()],
        ) {
            use proptest::prop_assert_eq;
            let (ta, tb) = (Timestamp::parse(&a), Timestamp::parse(&b));
            let (ra, rb) = (reference(&a), reference(&b));
            prop_assert_eq!(ta.map(|t| t.offset_date_time()), ra, "{}", a);
            prop_assert_eq!(tb.map(|t| t.offset_date_time()), rb, "{}", b);
            if let (Some(ta), Some(ra)) = (ta, ra) {
                prop_assert_eq!(ta.to_string(), ra.format(&Rfc3339).unwrap());
                prop_assert_eq!(ta.date(), Date(ra.date().to_julian_day()));
                prop_assert_eq!(ta.unix_nanos(), ra.unix_timestamp_nanos());
                prop_assert_eq!(ta.unix_seconds(), ra.unix_timestamp());
                let earlier = ra
                    .checked_sub(time::Duration::days(i64::from(days)))
                    .unwrap_or(ra);
                prop_assert_eq!(ta.minus_days(days).offset_date_time(), earlier);
                if let (Some(tb), Some(rb)) = (tb, rb) {
                    prop_assert_eq!(ta.minutes_until(&tb), (rb - ra).whole_minutes());
                    prop_assert_eq!(ta.cmp(&tb), ra.cmp(&rb));
                    prop_assert_eq!(ta == tb, ra == rb);
                }
            }
        }

        /// The day of any representable instant, before 1970 too (`from_unix_seconds`), is the `time`
        /// crate's.
        #[test]
        fn days_agree_with_the_time_crate(secs in -377_705_116_800i64..=253_402_300_799) {
            let t = Timestamp::from_unix_seconds(secs).unwrap();
            let r = OffsetDateTime::from_unix_timestamp(secs).unwrap();
            proptest::prop_assert_eq!(t.date(), Date(r.date().to_julian_day()));
        }

        /// The `YYYY-MM-DD` fast path reads every text as the `time` crate's parser does (texts built from
        /// digits, `-`, `+` and a space around the date's shape, and valid-looking dates).
        #[test]
        fn fast_dates_agree(
            s in "[0-9+ -]{8,12}|[0-9]{4}-[0-9]{2}-[0-9]{2}|(19[6-9][0-9]|2[01][0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
        ) {
            if let Some(fast) = fast_date(s.as_bytes()) {
                proptest::prop_assert_eq!(Some(fast), general_date(&s), "{}", s);
            }
            let expected = Date::parse_general(&s)
                .filter(|d| (MIN_YEAR..=MAX_YEAR).contains(&d.year()))
                .map(|d| Date(d.to_julian_day()));
            proptest::prop_assert_eq!(Date::parse(&s), expected, "{}", s);
        }
    }
}
