//! Wire types of `shared/spec/wire.md` — Manifest, Partner, Decision — and the strict parser that turns
//! bytes into a validated record or a [`BadInput`] with the dead-letter reason code.
//!
//! Field names are the public interface: never rename or drop one. Unknown fields are ignored so producers
//! can add fields freely; fields that are present must be well formed.

use std::fmt;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::codes::{Country, Hts, PortCode, TAG_BAD_CODE, TAG_BAD_DATE, TAG_BAD_VALUE};
use crate::time::{Date, Timestamp};

mod fast;

/// Inline-stored string: identifiers and names up to 24 bytes never touch the heap.
pub type Str = CompactString;

/// Manifest schema versions this build understands (the optional `schema_version` field).
pub const SUPPORTED_SCHEMA_VERSIONS: &[u32] = &[1];

/// Structural limits that keep one record from costing unbounded work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest accepted record, in bytes.
    pub max_bytes: usize,
    /// Most shipments per manifest; at most [`MAX_SHIPMENTS`] count (a larger limit is read as that).
    pub max_shipments: usize,
    /// Most commodity lines per shipment.
    pub max_commodities: usize,
    /// Most drivers, equipment items, seals per item, transit countries.
    pub max_items: usize,
    /// Longest identifier (manifest id, party ids).
    pub max_id_len: usize,
    /// Deepest JSON nesting of objects and arrays, unknown fields included.
    pub max_depth: usize,
}

/// The most shipments any manifest may have, whatever [`Limits::max_shipments`] says: scoring refers to a
/// shipment by a 16-bit index (`PartyView::shipment_index`, the hits), so a 65 537th shipment would be
/// taken for the first.
pub const MAX_SHIPMENTS: usize = 1 << 16;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 1 << 20,
            max_shipments: 999,
            max_commodities: 999,
            max_items: 99,
            max_id_len: 64,
            max_depth: 32,
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Manifest

/// Transport mode of a conveyance crossing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Truck,
    Rail,
    Ocean,
    Air,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Truck, Mode::Rail, Mode::Ocean, Mode::Air];
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Truck => "truck",
            Mode::Rail => "rail",
            Mode::Ocean => "ocean",
            Mode::Air => "air",
        }
    }
}

/// One conveyance crossing with the shipments it carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Wire-format version; absent means 1. Unknown versions are dead-lettered, never guessed at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<u32>,
    pub manifest_id: Str,
    #[serde(default)]
    pub revision: u32,
    pub filed_at: Timestamp,
    pub mode: Mode,
    pub port_of_entry: PortCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_arrival: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<Carrier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conveyance: Option<Conveyance>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drivers: Vec<Driver>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub equipment: Vec<Equipment>,
    pub shipments: Vec<Shipment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Carrier {
    pub scac: Str,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Str>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conveyance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trip_number: Option<Str>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Driver {
    pub name: Str,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_card: Option<Str>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Equipment {
    pub id: Str,
    #[serde(default)]
    pub seals: Vec<Seal>,
}

/// ISO 17712 seal classification: `H` high security, `S` security, `I` indicative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SealClass {
    H,
    S,
    I,
}

/// Who affixed a seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SealAffixer {
    Manufacturer,
    Shipper,
    Carrier,
    Customs,
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seal {
    pub number: Str,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iso17712: Option<SealClass>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affixed_by: Option<SealAffixer>,
}

/// A party on a manifest, identified by the identifier CBP uses for its role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Party {
    pub id: Str,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<Country>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shipment {
    pub shipment_id: Str,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub importer: Option<Party>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consignee: Option<Party>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipper: Option<Party>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<Party>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<Party>,
    pub origin_country: Country,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transit_countries: Vec<Country>,
    /// Country the goods were last shipped from (country of export / departure), when the entry says; a
    /// learned model reads it next to the origin (origin-laundering shows as origin ≠ departure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub departure_country: Option<Country>,
    pub commodities: Vec<Commodity>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commodity {
    pub hts: Hts,
    pub description: Str,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_kg: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_usd: Option<f64>,
    /// Entry (import) type code of the entry summary line, e.g. `01` consumption, `11` KCS general import.
    /// Opaque to the rules; a learned model reads it as a category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_type: Option<Str>,
    /// Declaration process type (how the entry was filed, e.g. pre-arrival or post-arrival); a category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_type: Option<Str>,
    /// Declared use of the imported goods (resale, manufacturing input, own use, …); a category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_use: Option<Str>,
    /// Payment (settlement) type of the transaction; a category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_type: Option<Str>,
    /// Duty rate applied to the line, in percent ad valorem (`8.0` is 8 %); finite and non-negative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duty_rate: Option<f64>,
    /// Duty (tariff) type the rate comes from: general, preferential under an agreement, special; a category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duty_type: Option<Str>,
    /// Origin-preference indicator: how the origin claim is supported (certificate, exemption, none, …);
    /// a category. Preference claims are a classic misdeclaration lever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_preference: Option<Str>,
}

impl Commodity {
    /// A line with only its HTS code and description; every optional field absent.
    pub fn new(hts: Hts, description: Str) -> Self {
        Commodity {
            hts,
            description,
            quantity: None,
            unit: None,
            weight_kg: None,
            value_usd: None,
            entry_type: None,
            process_type: None,
            import_use: None,
            payment_type: None,
            duty_rate: None,
            duty_type: None,
            origin_preference: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Partner

/// CTPAT entity type of a partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    Importer,
    Exporter,
    HighwayCarrier,
    RailCarrier,
    SeaCarrier,
    AirCarrier,
    Broker,
    Consolidator,
    TerminalOperator,
    Manufacturer,
    LongHaulCarrier,
    ThirdPartyLogistics,
    MraForeign,
}

/// Kind of a partner identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum IdKind {
    Ior,
    Scac,
    Mid,
    FilerCode,
    Iata,
    Fmc,
    Duns,
    Ein,
}

impl IdKind {
    pub const COUNT: usize = 8;
    pub const ALL: [IdKind; 8] = [
        IdKind::Ior,
        IdKind::Scac,
        IdKind::Mid,
        IdKind::FilerCode,
        IdKind::Iata,
        IdKind::Fmc,
        IdKind::Duns,
        IdKind::Ein,
    ];
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }
}

/// CTPAT programme status of a partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Applicant,
    Certified,
    Validated,
    Suspended,
    Removed,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Applicant,
        Status::Certified,
        Status::Validated,
        Status::Suspended,
        Status::Removed,
    ];
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Applicant => "applicant",
            Status::Certified => "certified",
            Status::Validated => "validated",
            Status::Suspended => "suspended",
            Status::Removed => "removed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identifier {
    pub kind: IdKind,
    pub value: Str,
}

/// A partner's identifiers: most partners hold one, which sits inside the partner (no allocation of its
/// own; a 1 M-partner table is ~32 MB smaller than with a `Vec`).
pub type Identifiers = smallvec::SmallVec<[Identifier; 1]>;

/// One record of the compacted `ctpat-partners` topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partner {
    pub partner_id: Str,
    pub entity: Entity,
    pub identifiers: Identifiers,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certified_on: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validated_on: Option<Date>,
    #[serde(default)]
    pub trade_compliance: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mra_program: Option<Str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

// ---------------------------------------------------------------------------------------------------------
// Bad input

/// Why a record was dead-lettered. The string forms are the `error.kind` header values and are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Zero-length record, or a null Kafka value on the manifests topic.
    Empty,
    /// Larger than [`Limits::max_bytes`].
    Oversized,
    /// Not valid UTF-8.
    NotUtf8,
    /// JSON syntax error.
    InvalidJson,
    /// JSON that ends before the value is complete.
    TruncatedJson,
    /// Valid JSON whose top level is not an object.
    NotObject,
    /// Nesting deeper than the parser's recursion limit.
    TooDeep,
    /// A required field is absent.
    MissingField,
    /// A field has the wrong JSON type.
    WrongType,
    /// The same field appears twice in one object.
    DuplicateField,
    /// A number that does not fit its field (overflow, negative where unsigned, non-finite).
    NumberOutOfRange,
    /// A well-typed value outside its domain (negative weight, empty id, too many items, …).
    BadValue,
    /// A malformed or unknown code (country, port, HTS, mode, enum value).
    BadCode,
    /// A malformed or out-of-range date or timestamp.
    BadDate,
    /// A `schema_version` this build does not understand.
    UnsupportedVersion,
    /// A well-formed port code that the policy's port table does not know.
    UnknownPort,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 16] = [
        ErrorKind::Empty,
        ErrorKind::Oversized,
        ErrorKind::NotUtf8,
        ErrorKind::InvalidJson,
        ErrorKind::TruncatedJson,
        ErrorKind::NotObject,
        ErrorKind::TooDeep,
        ErrorKind::MissingField,
        ErrorKind::WrongType,
        ErrorKind::DuplicateField,
        ErrorKind::NumberOutOfRange,
        ErrorKind::BadValue,
        ErrorKind::BadCode,
        ErrorKind::BadDate,
        ErrorKind::UnsupportedVersion,
        ErrorKind::UnknownPort,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Empty => "empty",
            ErrorKind::Oversized => "oversized",
            ErrorKind::NotUtf8 => "not_utf8",
            ErrorKind::InvalidJson => "invalid_json",
            ErrorKind::TruncatedJson => "truncated_json",
            ErrorKind::NotObject => "not_object",
            ErrorKind::TooDeep => "too_deep",
            ErrorKind::MissingField => "missing_field",
            ErrorKind::WrongType => "wrong_type",
            ErrorKind::DuplicateField => "duplicate_field",
            ErrorKind::NumberOutOfRange => "number_out_of_range",
            ErrorKind::BadValue => "bad_value",
            ErrorKind::BadCode => "bad_code",
            ErrorKind::BadDate => "bad_date",
            ErrorKind::UnsupportedVersion => "unsupported_version",
            ErrorKind::UnknownPort => "unknown_port",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record that cannot be decided on: its reason code and a human message naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct BadInput {
    pub kind: ErrorKind,
    pub message: String,
}

impl BadInput {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> BadInput {
        BadInput {
            kind,
            message: message.into(),
        }
    }
}

/// Parses one manifest record: size, encoding, JSON shape, types, then domain checks.
///
/// A record first goes through the one-pass reader of [`fast`]; whatever it declines, and every record
/// that fails validation, is read again by [`parse_manifest_serde`], so accepted values, dead-letter kinds
/// and messages are those of the serde_json path.
pub fn parse_manifest(bytes: &[u8], limits: &Limits) -> Result<Manifest, BadInput> {
    if let Some(m) = fast_manifest(bytes, limits) {
        // The reader checked each field it kept as it read it; what is left are the checks across fields.
        if validate::<false>(&m, limits).is_ok() {
            return Ok(m);
        }
    }
    parse_manifest_serde(bytes, limits)
}

/// The fast reader alone, with the size and UTF-8 checks of [`precheck`] (it checks depth, emptiness and
/// the top-level object itself): `None` when it declines. It also declines a manifest with a field that
/// [`validate_manifest`] refuses on its own (an identifier, code or name; its numbers cannot be negative
/// or infinite), but not one that only the checks across fields refuse (counts, dates, repeated shipment
/// ids), so it is not a parser to use; the differential tests compare what it accepts with serde_json's
/// reading.
#[doc(hidden)]
pub fn fast_manifest(bytes: &[u8], limits: &Limits) -> Option<Manifest> {
    if bytes.len() > limits.max_bytes {
        return None;
    }
    fast::manifest(utf8(bytes)?, limits)
}

/// The record as text if it is valid UTF-8, checked with SIMD (`simdutf8`: for the ASCII-heavy records here
/// several times faster than `std::str::from_utf8`, the same yes/no). A record it refuses is refused again by
/// [`precheck`], whose message needs the position of the first bad byte.
#[inline]
fn utf8(bytes: &[u8]) -> Option<&str> {
    simdutf8::basic::from_utf8(bytes).ok()
}

/// The serde_json reading of a manifest record (the reference [`parse_manifest`] must agree with): size,
/// encoding, JSON shape, types, then domain checks.
pub fn parse_manifest_serde(bytes: &[u8], limits: &Limits) -> Result<Manifest, BadInput> {
    let m: Manifest = parse_json(bytes, limits)?;
    validate_manifest(&m, limits)?;
    Ok(m)
}

/// Parses one partner record (a non-null value of the partner topic).
///
/// As [`parse_manifest`]: the one-pass reader of [`fast`] first, and whatever it declines or fails
/// validation is read again by [`parse_partner_serde`], so every accepted value, dead-letter kind and
/// message is the serde_json path's.
pub fn parse_partner(bytes: &[u8], limits: &Limits) -> Result<Partner, BadInput> {
    if let Some(p) = fast_partner(bytes, limits) {
        // The reader checked each identifier as it read it (as for manifests).
        if validate_partner_with::<false>(&p, limits).is_ok() {
            return Ok(p);
        }
    }
    parse_partner_serde(bytes, limits)
}

/// The fast partner reader alone (see [`fast_manifest`]): `None` when it declines. For the differential
/// tests, not a parser to use.
#[doc(hidden)]
pub fn fast_partner(bytes: &[u8], limits: &Limits) -> Option<Partner> {
    if bytes.len() > limits.max_bytes {
        return None;
    }
    fast::partner(utf8(bytes)?, limits)
}

/// The serde_json reading of a partner record (the reference [`parse_partner`] must agree with).
pub fn parse_partner_serde(bytes: &[u8], limits: &Limits) -> Result<Partner, BadInput> {
    let p: Partner = parse_json(bytes, limits)?;
    validate_partner(&p, limits)?;
    Ok(p)
}

// ---------------------------------------------------------------------------------------------------------
// Decision records read back

/// What the outcome window keeps of a decision record as the `decisions` topic carries it (docs/wire.md,
/// "Decision"): the fields an exam outcome needs — its key, port, action and selection facts, the importer's
/// standing, the reasons' rules and points, the parties. Every other field is skipped (a decision carries
/// ~1.8 KB, most of it explanation text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionFacts {
    pub manifest_id: Str,
    pub revision: u32,
    pub port_of_entry: PortCode,
    pub action: crate::decision::Action,
    #[serde(default)]
    pub random_exam: bool,
    #[serde(default)]
    pub watchlist_hit: bool,
    pub score: i32,
    #[serde(default)]
    pub reasons: Vec<ReasonFacts>,
    #[serde(default)]
    pub parties: Vec<PartyFacts>,
    pub importer_standing: Str,
}

/// A reason of a [`DecisionFacts`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasonFacts {
    pub rule: Str,
    pub points: i32,
    #[serde(default)]
    pub shipment_id: Option<Str>,
}

/// A party of a [`DecisionFacts`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartyFacts {
    pub role: crate::decision::Role,
    pub id: Str,
    #[serde(default)]
    pub shipment_id: Option<Str>,
}

/// The limits a decision record is read under: no size limit of its own (the decisions topic's message size
/// bounds it), the default nesting depth.
pub fn decision_limits() -> Limits {
    Limits {
        max_bytes: usize::MAX,
        ..Limits::default()
    }
}

/// Reads a decision record's [`DecisionFacts`] (see [`decision_limits`]).
///
/// As [`parse_manifest`]: the one-pass reader of [`fast`] first, and whatever it declines is read again by
/// [`parse_decision_facts_serde`], so every accepted value and every refusal is the serde_json path's.
pub fn parse_decision_facts(bytes: &[u8], limits: &Limits) -> Result<DecisionFacts, BadInput> {
    match fast_decision_facts(bytes, limits) {
        Some(d) => Ok(d),
        None => parse_decision_facts_serde(bytes, limits),
    }
}

/// The fast decision-record reader alone (see [`fast_manifest`]): `None` when it declines. For the
/// differential tests, not a parser to use.
#[doc(hidden)]
pub fn fast_decision_facts(bytes: &[u8], limits: &Limits) -> Option<DecisionFacts> {
    if bytes.len() > limits.max_bytes {
        return None;
    }
    fast::decision_facts(utf8(bytes)?, limits.max_depth)
}

/// The serde_json reading of a decision record (the reference [`parse_decision_facts`] must agree with).
pub fn parse_decision_facts_serde(
    bytes: &[u8],
    limits: &Limits,
) -> Result<DecisionFacts, BadInput> {
    parse_json(bytes, limits)
}

fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    limits: &Limits,
) -> Result<T, BadInput> {
    let text = precheck(bytes, limits)?;
    serde_json::from_str::<T>(text).map_err(|e| {
        let mut bad = classify(&e);
        if let Some(path) = error_path::<T>(text) {
            bad.message = format!("{path}: {}", bad.message);
        }
        bad
    })
}

/// The checks every record gets before its fields are read: size, UTF-8, nesting depth, non-empty, and a
/// JSON object at the top level. Returns the record as text.
pub(crate) fn precheck<'a>(bytes: &'a [u8], limits: &Limits) -> Result<&'a str, BadInput> {
    if bytes.len() > limits.max_bytes {
        return Err(BadInput::new(
            ErrorKind::Oversized,
            format!(
                "record is {} bytes, limit is {}",
                bytes.len(),
                limits.max_bytes
            ),
        ));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            return Err(BadInput::new(
                ErrorKind::NotUtf8,
                format!("invalid UTF-8 at byte {}", e.valid_up_to()),
            ))
        }
    };
    if let Some(depth) = too_deep(bytes, limits.max_depth) {
        return Err(BadInput::new(
            ErrorKind::TooDeep,
            format!(
                "JSON nesting reaches depth {depth}, limit is {}",
                limits.max_depth
            ),
        ));
    }
    let first = text.trim_start().as_bytes().first().copied();
    match first {
        None => return Err(BadInput::new(ErrorKind::Empty, "record is empty")),
        Some(b'{') => {}
        Some(_) => {
            // Tell "valid JSON but not an object" apart from garbage.
            return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Ok(_) => BadInput::new(
                    ErrorKind::NotObject,
                    "top-level JSON value is not an object",
                ),
                Err(e) => classify(&e),
            });
        }
    }
    Ok(text)
}

/// The field path (`shipments[0].origin_country`) where deserialising `text` fails. serde_json's own
/// messages give only a line and column; the dead letter must name the field. Runs only on the error
/// path, so accepted records never pay for path tracking.
pub(crate) fn error_path<T: serde::de::DeserializeOwned>(text: &str) -> Option<String> {
    let mut de = serde_json::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(e) => Some(e.path().to_string()).filter(|p| p != "."),
        Ok(_) => None,
    }
}

/// Nesting depth beyond `max`, if any. serde_json skips unknown fields without recursing, so it would
/// accept arbitrarily deep junk there; we bound it. Fast path: a record with at most `max` opening brackets
/// in total cannot be deeper than `max` (one SIMD count); only larger records get the exact scan.
fn too_deep(bytes: &[u8], max: usize) -> Option<usize> {
    if memchr::memchr2_iter(b'{', b'[', bytes)
        .take(max + 1)
        .count()
        <= max
    {
        return None;
    }
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_str {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return Some(depth);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Maps a serde_json error onto a dead-letter kind. Our own validators tag their messages; serde's
/// derive and serde_json use stable message prefixes.
pub(crate) fn classify(e: &serde_json::Error) -> BadInput {
    use serde_json::error::Category;
    let msg = e.to_string();
    let kind = match e.classify() {
        Category::Eof => ErrorKind::TruncatedJson,
        Category::Io => ErrorKind::InvalidJson,
        Category::Syntax => {
            if msg.starts_with("recursion limit exceeded") {
                ErrorKind::TooDeep
            } else if msg.starts_with("number out of range") {
                ErrorKind::NumberOutOfRange
            } else {
                ErrorKind::InvalidJson
            }
        }
        Category::Data => {
            if let Some(rest) = msg.strip_prefix(TAG_BAD_CODE) {
                return BadInput::new(ErrorKind::BadCode, rest);
            } else if let Some(rest) = msg.strip_prefix(TAG_BAD_DATE) {
                return BadInput::new(ErrorKind::BadDate, rest);
            } else if let Some(rest) = msg.strip_prefix(TAG_BAD_VALUE) {
                return BadInput::new(ErrorKind::BadValue, rest);
            } else if msg.starts_with("missing field") {
                ErrorKind::MissingField
            } else if msg.starts_with("duplicate field") {
                ErrorKind::DuplicateField
            } else if msg.starts_with("unknown variant") {
                ErrorKind::BadCode
            } else if msg.starts_with("invalid value: integer")
                || msg.starts_with("number out of range")
            {
                ErrorKind::NumberOutOfRange
            } else if msg.starts_with("recursion limit exceeded") {
                ErrorKind::TooDeep
            } else {
                ErrorKind::WrongType
            }
        }
    };
    BadInput::new(kind, msg)
}

fn bad(kind: ErrorKind, msg: impl Into<String>) -> Result<(), BadInput> {
    Err(BadInput::new(kind, msg))
}

// The checks below take the field path as a closure: it is only formatted when a check fails, so valid
// records pay no allocation for messages they never need.

/// Whether [`check_id`] accepts `id` under an identifier limit of `max_len` bytes, given whether `id` is
/// all printable ASCII but the space (`!`–`~`, which the fast reader learns while it finds the string's
/// end).
#[inline]
pub(crate) fn id_ok(id: &str, max_len: usize, printable: bool) -> bool {
    debug_assert_eq!(printable, Text::Id.fast_ok(id));
    printable && !id.is_empty() && id.len() <= max_len
}

/// Whether [`check_name`] accepts `name`, given whether it is all printable ASCII (space to `~`, learnt
/// by the fast reader while it finds the string's end); a name that is not is looked at character by
/// character.
#[inline]
pub(crate) fn name_ok(name: &str, printable: bool) -> bool {
    debug_assert_eq!(printable, Text::Name.fast_ok(name));
    printable || Text::Name.first_bad(name).is_none()
}

pub(crate) fn check_id(
    path: impl Fn() -> String,
    id: &str,
    limits: &Limits,
) -> Result<(), BadInput> {
    // A first byte that is printable ASCII other than a space already makes the trimmed id non-empty.
    if !id.as_bytes().first().is_some_and(u8::is_ascii_graphic) && id.trim().is_empty() {
        return bad(ErrorKind::BadValue, format!("{} is empty", path()));
    }
    if id.len() > limits.max_id_len {
        let msg = format!(
            "{} is {} bytes, limit is {}",
            path(),
            id.len(),
            limits.max_id_len
        );
        return bad(ErrorKind::BadValue, msg);
    }
    if !Text::Id.fast_ok(id) {
        if id.chars().any(char::is_control) {
            return bad(
                ErrorKind::BadValue,
                format!("{} contains control characters", path()),
            );
        }
        return Text::Id.refuse(path, id);
    }
    Ok(())
}

/// The character set of a text field (docs/wire.md, "Identifiers and names").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Text {
    /// Identifiers and codes (manifest, trip, shipment, equipment and partner ids, SCAC, IOR/EIN, MID, filer
    /// codes, seal and FAST card numbers, units, entry-summary codes): printable ASCII without spaces,
    /// `!` (U+0021) to `~` (U+007E). Real CBP identifiers are plain ASCII.
    Id,
    /// Names and descriptions: any Unicode a real name needs (letters of every script, combining marks,
    /// zero-width joiners and non-joiners of Persian and Indic names, emoji), but no control character
    /// (category Cc), no bidirectional control and no byte-order mark: text that reorders or hides what an
    /// officer reads ("Trojan Source") is refused.
    Name,
}

impl Text {
    /// ASCII fast path: true when every byte is allowed without looking at characters. For an identifier
    /// this is the whole check; a name that is not plain printable ASCII goes on to [`Text::first_bad`].
    #[inline]
    fn fast_ok(self, s: &str) -> bool {
        let low = match self {
            Text::Id => b'!',
            Text::Name => b' ',
        };
        printable_from(s.as_bytes(), low)
    }

    fn allows(self, c: char) -> bool {
        match self {
            Text::Id => matches!(c, '!'..='~'),
            Text::Name => !c.is_control() && !is_bidi_control_or_bom(c),
        }
    }

    /// The first character not allowed, with its byte offset.
    fn first_bad(self, s: &str) -> Option<(usize, char)> {
        if self.fast_ok(s) {
            return None;
        }
        s.char_indices().find(|(_, c)| !self.allows(*c))
    }

    /// The dead letter for a field holding a character this kind refuses. The character is named by its code
    /// point (`U+202E`), never written raw, so the message itself displays honestly.
    fn refuse(self, path: impl Fn() -> String, s: &str) -> Result<(), BadInput> {
        let Some((at, c)) = self.first_bad(s) else {
            return Ok(());
        };
        let rule = match self {
            Text::Id => "identifiers are printable ASCII without spaces",
            Text::Name => {
                "names may not contain control characters, bidirectional controls or a byte-order mark"
            }
        };
        bad(
            ErrorKind::BadValue,
            format!(
                "{} contains U+{:04X} at byte {at}; {rule}",
                path(),
                c as u32
            ),
        )
    }
}

/// Whether every byte is in `low..=b'~'` (`low` is `b' '` or `b'!'`): eight bytes a word, each tested for
/// a byte below `low` or above `~`. Both tests are exact as a yes/no for bounds up to 0x80 (a borrow or a
/// carry can only flag a byte above a real match); the last bytes one at a time.
#[inline]
fn printable_from(bytes: &[u8], low: u8) -> bool {
    let mut words = bytes.chunks_exact(8);
    let mut bad = 0u64;
    for w in &mut words {
        let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        bad |= crate::swar::outside(w, low);
    }
    bad == 0 && words.remainder().iter().all(|&b| (low..=b'~').contains(&b))
}

/// Unicode's bidirectional formatting characters (property Bidi_Control: ALM U+061C, LRM/RLM
/// U+200E/U+200F, the embeddings and overrides U+202A–U+202E, the isolates U+2066–U+2069) and the
/// byte-order mark U+FEFF.
fn is_bidi_control_or_bom(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
    )
}

/// A name or description: see [`Text::Name`]. Not required to be non-empty. Also used by adapters for
/// free text people enter (e.g. a resumption declaration's reason).
pub fn check_name(path: impl Fn() -> String, name: &str) -> Result<(), BadInput> {
    Text::Name.refuse(path, name)
}

fn check_count(path: impl Fn() -> String, n: usize, max: usize) -> Result<(), BadInput> {
    if n > max {
        return bad(
            ErrorKind::BadValue,
            format!("{} has {n} items, limit is {max}", path()),
        );
    }
    Ok(())
}

fn check_amount(path: impl Fn() -> String, v: Option<f64>) -> Result<(), BadInput> {
    match v {
        Some(x) if !x.is_finite() => bad(
            ErrorKind::NumberOutOfRange,
            format!("{} is not finite", path()),
        ),
        Some(x) if x < 0.0 => bad(ErrorKind::BadValue, format!("{} is negative ({x})", path())),
        _ => Ok(()),
    }
}

fn check_party(
    path: impl Fn() -> String,
    p: &Option<Party>,
    limits: &Limits,
) -> Result<(), BadInput> {
    if let Some(p) = p {
        check_id(|| format!("{}.id", path()), &p.id, limits)?;
        if let Some(name) = &p.name {
            check_name(|| format!("{}.name", path()), name)?;
        }
    }
    Ok(())
}

/// Shipment ids are unique within a manifest: exam outcomes and amendments key on them. Pairwise for the
/// usual handful of shipments, a hash map beyond; the message names the id and both positions.
fn check_unique_shipments(m: &Manifest) -> Result<(), BadInput> {
    let dup = |first: usize, second: usize| {
        bad(
            ErrorKind::BadValue,
            format!(
                "shipments[{second}].shipment_id {:?} repeats shipments[{first}].shipment_id: shipment ids are unique within a manifest",
                m.shipments[second].shipment_id.as_str()
            ),
        )
    };
    let n = m.shipments.len();
    if n <= 16 {
        for j in 1..n {
            if let Some(i) =
                (0..j).find(|&i| m.shipments[i].shipment_id == m.shipments[j].shipment_id)
            {
                return dup(i, j);
            }
        }
    } else {
        let mut seen = std::collections::HashMap::with_capacity(n);
        for (j, s) in m.shipments.iter().enumerate() {
            if let Some(i) = seen.insert(s.shipment_id.as_str(), j) {
                return dup(i, j);
            }
        }
    }
    Ok(())
}

/// Domain checks that serde's types cannot express. The first failure is reported, with its field path.
pub fn validate_manifest(m: &Manifest, limits: &Limits) -> Result<(), BadInput> {
    validate::<true>(m, limits)
}

/// [`validate_manifest`]; with `FIELDS` false, without the checks of single fields — identifiers, codes,
/// names, descriptions and amounts — that the fast reader makes as it reads each field (it declines a
/// manifest with a field they would refuse, and its numbers are never negative or infinite), leaving the
/// checks across fields: schema version, dates, counts, drivers and mode, repeated shipment ids. Either
/// way one list of checks, in one order.
fn validate<const FIELDS: bool>(m: &Manifest, limits: &Limits) -> Result<(), BadInput> {
    if let Some(v) = m.schema_version {
        if !SUPPORTED_SCHEMA_VERSIONS.contains(&v) {
            return bad(
                ErrorKind::UnsupportedVersion,
                format!("schema_version {v} is not supported (supported: {SUPPORTED_SCHEMA_VERSIONS:?})"),
            );
        }
    }
    if FIELDS {
        check_id(|| "manifest_id".into(), &m.manifest_id, limits)?;
    }
    if let Some(eta) = &m.estimated_arrival {
        // An arrival more than a year before filing is a data error, not a late filing.
        if eta.minutes_until(&m.filed_at) > 366 * 24 * 60 {
            return bad(
                ErrorKind::BadDate,
                "estimated_arrival is more than a year before filed_at",
            );
        }
    }
    if let (true, Some(c)) = (FIELDS, &m.carrier) {
        check_id(|| "carrier.scac".into(), &c.scac, limits)?;
        if let Some(name) = &c.name {
            check_name(|| "carrier.name".into(), name)?;
        }
    }
    if let (true, Some(c)) = (FIELDS, &m.conveyance) {
        if let Some(id) = &c.id {
            check_id(|| "conveyance.id".into(), id, limits)?;
        }
        if let Some(trip) = &c.trip_number {
            check_id(|| "conveyance.trip_number".into(), trip, limits)?;
        }
    }
    if !m.drivers.is_empty() && m.mode != Mode::Truck {
        return bad(
            ErrorKind::BadValue,
            format!(
                "drivers apply to truck manifests only, mode is {}",
                m.mode.as_str()
            ),
        );
    }
    check_count(|| "drivers".into(), m.drivers.len(), limits.max_items)?;
    for (i, d) in m.drivers.iter().enumerate().filter(|_| FIELDS) {
        check_name(|| format!("drivers[{i}].name"), &d.name)?;
        // A blank card number means no card (FAST condition `driver_fast_card`), not bad input.
        if let Some(card) = d.fast_card.as_deref().filter(|c| !c.trim().is_empty()) {
            check_id(|| format!("drivers[{i}].fast_card"), card, limits)?;
        }
    }
    check_count(|| "equipment".into(), m.equipment.len(), limits.max_items)?;
    for (i, e) in m.equipment.iter().enumerate() {
        if FIELDS {
            check_id(|| format!("equipment[{i}].id"), &e.id, limits)?;
        }
        check_count(
            || format!("equipment[{i}].seals"),
            e.seals.len(),
            limits.max_items,
        )?;
        for (k, seal) in e.seals.iter().enumerate().filter(|_| FIELDS) {
            check_id(
                || format!("equipment[{i}].seals[{k}].number"),
                &seal.number,
                limits,
            )?;
        }
    }
    if m.shipments.is_empty() {
        return bad(ErrorKind::BadValue, "shipments is empty");
    }
    check_count(
        || "shipments".into(),
        m.shipments.len(),
        limits.max_shipments.min(MAX_SHIPMENTS),
    )?;
    for (i, s) in m.shipments.iter().enumerate() {
        if FIELDS {
            check_id(
                || format!("shipments[{i}].shipment_id"),
                &s.shipment_id,
                limits,
            )?;
            check_party(|| format!("shipments[{i}].importer"), &s.importer, limits)?;
            check_party(|| format!("shipments[{i}].consignee"), &s.consignee, limits)?;
            check_party(|| format!("shipments[{i}].shipper"), &s.shipper, limits)?;
            check_party(
                || format!("shipments[{i}].manufacturer"),
                &s.manufacturer,
                limits,
            )?;
            check_party(|| format!("shipments[{i}].broker"), &s.broker, limits)?;
        }
        check_count(
            || format!("shipments[{i}].transit_countries"),
            s.transit_countries.len(),
            limits.max_items,
        )?;
        if s.commodities.is_empty() {
            return bad(
                ErrorKind::BadValue,
                format!("shipments[{i}].commodities is empty"),
            );
        }
        check_count(
            || format!("shipments[{i}].commodities"),
            s.commodities.len(),
            limits.max_commodities,
        )?;
        for (j, c) in s.commodities.iter().enumerate().filter(|_| FIELDS) {
            let p = |f: &str| format!("shipments[{i}].commodities[{j}].{f}");
            check_name(|| p("description"), &c.description)?;
            check_amount(|| p("quantity"), c.quantity)?;
            check_amount(|| p("weight_kg"), c.weight_kg)?;
            check_amount(|| p("value_usd"), c.value_usd)?;
            check_amount(|| p("duty_rate"), c.duty_rate)?;
            for (name, code) in [
                ("unit", &c.unit),
                ("entry_type", &c.entry_type),
                ("process_type", &c.process_type),
                ("import_use", &c.import_use),
                ("payment_type", &c.payment_type),
                ("duty_type", &c.duty_type),
                ("origin_preference", &c.origin_preference),
            ] {
                if let Some(code) = code {
                    check_id(|| p(name), code, limits)?;
                }
            }
        }
    }
    check_unique_shipments(m)?;
    Ok(())
}

/// Domain checks for a partner record.
pub fn validate_partner(p: &Partner, limits: &Limits) -> Result<(), BadInput> {
    validate_partner_with::<true>(p, limits)
}

/// [`validate_partner`]; with `FIELDS` false, without the identifier checks the fast reader makes as it
/// reads (the partner id, each identifier's value, the MRA programme), as [`validate`] for manifests.
fn validate_partner_with<const FIELDS: bool>(p: &Partner, limits: &Limits) -> Result<(), BadInput> {
    if FIELDS {
        check_id(|| "partner_id".into(), &p.partner_id, limits)?;
    }
    check_count(
        || "identifiers".into(),
        p.identifiers.len(),
        limits.max_items,
    )?;
    for (i, id) in p.identifiers.iter().enumerate().filter(|_| FIELDS) {
        check_id(|| format!("identifiers[{i}].value"), &id.value, limits)?;
    }
    if let (true, Some(program)) = (FIELDS, &p.mra_program) {
        check_id(|| "mra_program".into(), program, limits)?;
    }
    match p.tier {
        Some(t) if !(1..=3).contains(&t) => {
            return bad(ErrorKind::BadValue, format!("tier {t} is not 1, 2 or 3"));
        }
        _ => {}
    }
    if p.entity == Entity::MraForeign && p.mra_program.is_none() {
        return bad(
            ErrorKind::MissingField,
            "mra_program is required for an mra_foreign partner",
        );
    }
    if let (Some(c), Some(v)) = (p.certified_on, p.validated_on) {
        if v < c {
            return bad(
                ErrorKind::BadDate,
                format!("validated_on {v} is before certified_on {c}"),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const EXAMPLE: &str = r#"{
      "manifest_id": "TRK-2304-20261128-000001", "revision": 0, "filed_at": "2026-11-28T04:00:00Z",
      "mode": "truck", "port_of_entry": "2304", "estimated_arrival": "2026-11-28T05:00:00Z",
      "carrier": {"scac": "ABCD", "name": "Acme Transportes"},
      "conveyance": {"id": "3AKJHHDR5KSKG1234", "trip_number": "ABCD0000123456"},
      "drivers": [{"name": "J. Perez", "fast_card": "42712345600"}],
      "equipment": [{"id": "TRLU1234567", "seals": [{"number": "MX0001234", "iso17712": "H", "affixed_by": "manufacturer"}]}],
      "shipments": [{
        "shipment_id": "ABCD0000123456-01",
        "importer": {"id": "12-3456789AB", "name": "Contoso Imports"},
        "consignee": {"id": "98-7654321CD", "name": "Contoso DC 4"},
        "shipper": {"id": "SHP-MX-0042", "name": "Maquila Norte", "country": "MX"},
        "manufacturer": {"id": "MXMAQNOR1200TIJ", "name": "Maquila Norte", "country": "MX"},
        "broker": {"id": "A1B"},
        "origin_country": "MX", "transit_countries": [],
        "commodities": [{"hts": "847130", "description": "laptop computers", "quantity": 200, "unit": "CTN", "weight_kg": 1200.0, "value_usd": 150000.0}]
      }]
    }"#;

    proptest::proptest! {
        /// The word-at-a-time printable check gives the byte-wise answer, for both bounds, on arbitrary
        /// bytes and on printable text with one byte replaced at any position (the edges of the ranges
        /// weighted up).
        #[test]
        fn printable_words_agree_with_bytes(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
            len in 0usize..40,
            at in 0usize..40,
            b in proptest::sample::select(vec![0u8, 0x1f, 0x20, 0x21, 0x7e, 0x7f, 0x80, 0xa0, 0xff, b'a']),
        ) {
            let mut text = vec![b'a'; len];
            if at < len {
                text[at] = b;
            }
            for low in [b' ', b'!'] {
                for input in [&bytes, &text] {
                    let want = input.iter().all(|&c| (low..=b'~').contains(&c));
                    proptest::prop_assert_eq!(printable_from(input, low), want, "{:?} low {}", input, low);
                }
            }
        }

        /// The SIMD UTF-8 check gives std's answer: on arbitrary bytes, and on the example record with one
        /// byte replaced (a stray continuation, a truncated sequence, a surrogate, an overlong form) at any
        /// position, in blocks long enough for its vector loop.
        #[test]
        fn utf8_check_agrees_with_std(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            at in 0usize..2048,
            b in proptest::num::u8::ANY,
            tail in proptest::sample::select(vec![&b""[..], b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", "é€😀".as_bytes()]),
        ) {
            proptest::prop_assert_eq!(utf8(&bytes).is_some(), std::str::from_utf8(&bytes).is_ok());
            let mut rec = EXAMPLE.as_bytes().to_vec();
            let at = at % rec.len();
            rec[at] = b;
            rec.splice(at..at, tail.iter().copied());
            proptest::prop_assert_eq!(utf8(&rec), std::str::from_utf8(&rec).ok());
        }
    }

    fn kind(s: &str) -> ErrorKind {
        parse_manifest(s.as_bytes(), &Limits::default())
            .unwrap_err()
            .kind
    }

    #[test]
    fn parses_spec_example() {
        let m = parse_manifest(EXAMPLE.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(m.port_of_entry.as_str(), "2304");
        assert_eq!(m.shipments[0].commodities[0].hts.chapter(), 84);
        // Round trip keeps the record.
        let again = serde_json::to_string(&m).unwrap();
        assert_eq!(
            parse_manifest(again.as_bytes(), &Limits::default()).unwrap(),
            m
        );
    }

    #[test]
    fn classifies_bad_input() {
        assert_eq!(kind(""), ErrorKind::Empty);
        assert_eq!(kind("  \n"), ErrorKind::Empty);
        assert_eq!(
            parse_manifest(b"{\"a\":\xff}", &Limits::default())
                .unwrap_err()
                .kind,
            ErrorKind::NotUtf8
        );
        assert_eq!(kind("{\"manifest_id\": }"), ErrorKind::InvalidJson);
        assert_eq!(kind(&EXAMPLE[..200]), ErrorKind::TruncatedJson);
        assert_eq!(kind("[1,2]"), ErrorKind::NotObject);
        assert_eq!(kind("nonsense"), ErrorKind::InvalidJson);
        let deep = format!("{}{}", "{\"x\":[".repeat(200), "]}".repeat(200));
        assert_eq!(kind(&deep), ErrorKind::TooDeep);
        assert_eq!(
            kind(&EXAMPLE.replace("\"mode\": \"truck\",", "")),
            ErrorKind::MissingField
        );
        assert_eq!(
            kind(&EXAMPLE.replace("\"revision\": 0", "\"revision\": \"0\"")),
            ErrorKind::WrongType
        );
        assert_eq!(
            kind(&EXAMPLE.replace("\"revision\": 0", "\"revision\": 0, \"revision\": 1")),
            ErrorKind::DuplicateField
        );
        assert_eq!(
            kind(&EXAMPLE.replace("\"revision\": 0", "\"revision\": 99999999999")),
            ErrorKind::NumberOutOfRange
        );
        assert_eq!(
            kind(&EXAMPLE.replace("\"quantity\": 200", "\"quantity\": 1e999")),
            ErrorKind::NumberOutOfRange
        );
        assert_eq!(
            kind(&EXAMPLE.replace("1200.0", "-5.0")),
            ErrorKind::BadValue
        );
        assert_eq!(
            kind(&EXAMPLE.replace("\"origin_country\": \"MX\"", "\"origin_country\": \"QQ\"")),
            ErrorKind::BadCode
        );
        assert_eq!(
            kind(&EXAMPLE.replace("\"2304\"", "\"23O4\"")),
            ErrorKind::BadCode
        );
        assert_eq!(
            kind(&EXAMPLE.replace("\"truck\"", "\"hovercraft\"")),
            ErrorKind::BadCode
        );
        assert_eq!(
            kind(&EXAMPLE.replace("2026-11-28T04:00:00Z", "2026-11-31T04:00:00Z")),
            ErrorKind::BadDate
        );
        assert_eq!(
            kind(&EXAMPLE.replace("\"revision\": 0", "\"schema_version\": 7")),
            ErrorKind::UnsupportedVersion
        );
        let limits = Limits {
            max_bytes: 100,
            ..Limits::default()
        };
        assert_eq!(
            parse_manifest(EXAMPLE.as_bytes(), &limits)
                .unwrap_err()
                .kind,
            ErrorKind::Oversized
        );
    }
}
