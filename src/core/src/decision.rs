//! The Decision record of wire.md and the reasons that explain it.
//!
//! Reasons are built on the hot path without formatting: each carries a rule id and a typed [`Detail`], and
//! the human text is rendered straight into the output buffer when the decision is serialised.

use std::fmt;
use std::sync::Arc;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize, Serializer};
use smallvec::SmallVec;

use crate::codes::{Country, Hts, PortCode};
use crate::model::{ModelInfo, Top};
use crate::table::Standing;
use crate::time::Timestamp;
use crate::watermark::Watermark;
use crate::wire::{Mode, Status, Str};

// ---------------------------------------------------------------------------------------------------------
// Vocabulary of decisions, also named by the policy

/// Examination actions, least to most severe (the derived order is the severity order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Release,
    DocumentReview,
    NiiScan,
    Tailgate,
    Intensive,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Release,
        Action::DocumentReview,
        Action::NiiScan,
        Action::Tailgate,
        Action::Intensive,
    ];
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Release => "release",
            Action::DocumentReview => "document_review",
            Action::NiiScan => "nii_scan",
            Action::Tailgate => "tailgate",
            Action::Intensive => "intensive",
        }
    }
    /// Anything but release sends the conveyance to an examination.
    pub fn is_exam(self) -> bool {
        self != Action::Release
    }
}

/// Risk band from the policy's thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    Low,
    Medium,
    High,
}

impl Band {
    pub const ALL: [Band; 3] = [Band::Low, Band::Medium, Band::High];
    pub const fn as_str(self) -> &'static str {
        match self {
            Band::Low => "low",
            Band::Medium => "medium",
            Band::High => "high",
        }
    }
}

/// The role a party plays on a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Importer,
    Carrier,
    Manufacturer,
    Shipper,
    Broker,
    Consignee,
    Driver,
}

impl Role {
    /// Roles joined against the partner table.
    pub const JOINED: [Role; 5] = [
        Role::Importer,
        Role::Carrier,
        Role::Manufacturer,
        Role::Shipper,
        Role::Broker,
    ];
    pub const COUNT: usize = 7;
    /// Every role, in declaration order (`Role::ALL[r.index()] == r`).
    pub const ALL: [Role; Role::COUNT] = [
        Role::Importer,
        Role::Carrier,
        Role::Manufacturer,
        Role::Shipper,
        Role::Broker,
        Role::Consignee,
        Role::Driver,
    ];
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Importer => "importer",
            Role::Carrier => "carrier",
            Role::Manufacturer => "manufacturer",
            Role::Shipper => "shipper",
            Role::Broker => "broker",
            Role::Consignee => "consignee",
            Role::Driver => "driver",
        }
    }
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What the exam found. The derived order is the severity order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExamResult {
    NoDiscrepancy,
    Discrepancy,
    Seizure,
}

impl ExamResult {
    pub const ALL: [ExamResult; 3] = [
        ExamResult::NoDiscrepancy,
        ExamResult::Discrepancy,
        ExamResult::Seizure,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ExamResult::NoDiscrepancy => "no_discrepancy",
            ExamResult::Discrepancy => "discrepancy",
            ExamResult::Seizure => "seizure",
        }
    }
    pub fn parse(s: &str) -> Option<ExamResult> {
        ExamResult::ALL.into_iter().find(|r| r.as_str() == s)
    }
    /// A discrepancy or a seizure: the exam found something.
    pub fn is_hit(self) -> bool {
        self != ExamResult::NoDiscrepancy
    }
}

/// One outcome found for a manifest's party: enough to name it in a reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Recalled {
    pub manifest_id: Str,
    pub revision: u32,
    pub result: ExamResult,
    pub examined_at: Timestamp,
    pub port: PortCode,
    /// The party it was found through (the first of the asked parties that it names).
    pub role: Role,
    pub party: Str,
}

impl Recalled {
    /// The later of two (by `examined_at`, then key): a total order, so the choice never depends on the
    /// order records arrived in.
    pub(crate) fn later(&self, other: &Recalled) -> bool {
        self.order() > other.order()
    }

    /// What [`Recalled::later`] orders by.
    pub(crate) fn order(&self) -> (Timestamp, &Str, u32) {
        (self.examined_at, &self.manifest_id, self.revision)
    }
}

impl fmt::Display for Recalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}, manifest {} revision {} examined {} at port {}",
            self.role.as_str(),
            self.party,
            self.manifest_id,
            self.revision,
            self.examined_at,
            self.port
        )
    }
}

/// Which rule contributed points. The string forms are the `reasons[].rule` values and are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    OriginCountry,
    TransitCountry,
    CircuitousRouting,
    HtsChapter,
    HtsHeading,
    VagueDescription,
    ValuePerKg,
    /// A commodity line declaring a positive value at zero weight (`[plausibility]`).
    ZeroWeight,
    SealMissing,
    SealNotHighSecurity,
    FilingLate,
    ImporterMissing,
    WatchlistId,
    WatchlistName,
    Ctpat(Role),
    RandomCompliance,
    /// The policy's learned model (`[model]`), on a shipment's riskiest commodity line.
    Model,
    /// Credit beyond `ctpat.credit_cap`, added back.
    CreditCap,
    /// Credit beyond the creditable points, added back: credits never offset non-creditable points.
    CreditUnused,
    /// A party's exam found a discrepancy within the `[history]` window.
    HistoryDiscrepancy,
    /// A party's exam led to a seizure within the `[history]` window.
    HistorySeizure,
    /// A party's long clean exam record (a small credit).
    HistoryClean,
}

impl Rule {
    /// Every rule: those without a role in declaration order, then `Ctpat` of each role.
    pub const ALL: [Rule; 21 + Role::COUNT] = {
        const PLAIN: [Rule; 21] = [
            Rule::OriginCountry,
            Rule::TransitCountry,
            Rule::CircuitousRouting,
            Rule::HtsChapter,
            Rule::HtsHeading,
            Rule::VagueDescription,
            Rule::ValuePerKg,
            Rule::ZeroWeight,
            Rule::SealMissing,
            Rule::SealNotHighSecurity,
            Rule::FilingLate,
            Rule::ImporterMissing,
            Rule::WatchlistId,
            Rule::WatchlistName,
            Rule::RandomCompliance,
            Rule::Model,
            Rule::CreditCap,
            Rule::CreditUnused,
            Rule::HistoryDiscrepancy,
            Rule::HistorySeizure,
            Rule::HistoryClean,
        ];
        let mut all = [Rule::Model; 21 + Role::COUNT];
        let mut i = 0;
        while i < PLAIN.len() {
            all[i] = PLAIN[i];
            i += 1;
        }
        while i < all.len() {
            all[i] = Rule::Ctpat(Role::ALL[i - PLAIN.len()]);
            i += 1;
        }
        all
    };

    pub const fn as_str(self) -> &'static str {
        match self {
            Rule::OriginCountry => "origin.country",
            Rule::TransitCountry => "routing.transit_country",
            Rule::CircuitousRouting => "routing.circuitous",
            Rule::HtsChapter => "commodity.hts_chapter",
            Rule::HtsHeading => "commodity.hts_heading",
            Rule::VagueDescription => "commodity.vague_description",
            Rule::ValuePerKg => "commodity.value_per_kg",
            Rule::ZeroWeight => "commodity.zero_weight",
            Rule::SealMissing => "seal.missing",
            Rule::SealNotHighSecurity => "seal.not_high_security",
            Rule::FilingLate => "filing.late",
            Rule::ImporterMissing => "parties.importer_missing",
            Rule::WatchlistId => "watchlist.id",
            Rule::WatchlistName => "watchlist.name",
            Rule::Ctpat(Role::Importer) => "ctpat.importer",
            Rule::Ctpat(Role::Carrier) => "ctpat.carrier",
            Rule::Ctpat(Role::Manufacturer) => "ctpat.manufacturer",
            Rule::Ctpat(Role::Shipper) => "ctpat.shipper",
            Rule::Ctpat(Role::Broker) => "ctpat.broker",
            Rule::Ctpat(Role::Consignee) => "ctpat.consignee",
            Rule::Ctpat(Role::Driver) => "ctpat.driver",
            Rule::RandomCompliance => "random.compliance",
            Rule::Model => "model.risk",
            Rule::CreditCap => "ctpat.credit_cap",
            Rule::CreditUnused => "ctpat.credit_unused",
            Rule::HistoryDiscrepancy => "history.discrepancy",
            Rule::HistorySeizure => "history.seizure",
            Rule::HistoryClean => "history.clean",
        }
    }
}

/// The facts behind a reason, rendered to text only on serialisation.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    Country {
        country: Country,
        why: Arc<str>,
    },
    Circuitous {
        transits: usize,
    },
    Chapter {
        chapter: u8,
        why: Arc<str>,
    },
    Heading {
        heading: u16,
        why: Arc<str>,
    },
    Vague {
        term: Arc<str>,
    },
    ValuePerKg {
        chapter: u8,
        value_per_kg: f64,
        min: f64,
        max: f64,
    },
    ZeroWeight {
        hts: Hts,
        value_usd: f64,
    },
    SealMissing {
        equipment: Str,
    },
    SealClass {
        equipment: Str,
        seal: Str,
    },
    Late {
        lead_minutes: i64,
        required: u32,
    },
    ImporterMissing,
    Watch {
        role: Role,
        value: Str,
        why: Arc<str>,
    },
    Ctpat {
        role: Role,
        id: Str,
        partner_id: Str,
        standing: Standing,
        lapsed: bool,
        mra_program: Option<Str>,
    },
    Random {
        mode: Mode,
        class: &'static str,
        rate: f64,
    },
    /// The model's probability for the riskiest line, that line's HTS code, and the features that pushed
    /// its log-odds most (Saabas attribution).
    Model {
        probability: f64,
        hts: Hts,
        top: Top,
        info: Arc<ModelInfo>,
    },
    /// The manifest's partners earned `credits`; at most `cap` count.
    CreditCap {
        credits: i32,
        cap: i32,
    },
    /// Party history (`[history]`): `count` distinct outcomes of `result` (for the clean credit: exams, none
    /// of which found anything) within `window_days` before filing, and the latest of them.
    History {
        result: ExamResult,
        count: u32,
        window_days: u32,
        latest: Box<Recalled>,
    },
    /// `allowed` points of credit against only `creditable` points of creditable risk; the
    /// `non_creditable` points are never offset.
    CreditUnused {
        allowed: i32,
        creditable: i32,
        non_creditable: i32,
    },
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn why(f: &mut fmt::Formatter<'_>, why: &str) -> fmt::Result {
            if why.is_empty() {
                Ok(())
            } else {
                write!(f, ": {why}")
            }
        }
        match self {
            Detail::Country { country, why: w } => {
                write!(f, "country {country}")?;
                why(f, w)
            }
            Detail::Circuitous { transits } => {
                write!(f, "routed through {transits} transit countries")
            }
            Detail::Chapter { chapter, why: w } => {
                write!(f, "HTS chapter {chapter:02}")?;
                why(f, w)
            }
            Detail::Heading { heading, why: w } => {
                write!(f, "HTS heading {heading:04}")?;
                why(f, w)
            }
            Detail::Vague { term } => write!(f, "description uses the vague term \"{term}\""),
            Detail::ValuePerKg {
                chapter,
                value_per_kg,
                min,
                max,
            } => {
                write!(f, "declared value {value_per_kg:.2} USD/kg is outside {min:.2}..{max:.2} for HTS chapter {chapter:02}")
            }
            Detail::ZeroWeight { hts, value_usd } => {
                write!(f, "HTS {hts} declares {value_usd:.2} USD at zero weight")
            }
            Detail::SealMissing { equipment } => write!(f, "equipment {equipment} has no seal"),
            Detail::SealClass { equipment, seal } => {
                write!(
                    f,
                    "seal {seal} on {equipment} is not an ISO 17712 high-security (H) seal"
                )
            }
            Detail::Late {
                lead_minutes,
                required,
            } => {
                write!(
                    f,
                    "filed {lead_minutes} min before estimated arrival, {required} min required"
                )
            }
            Detail::ImporterMissing => f.write_str("shipment names no importer of record"),
            Detail::Watch {
                role,
                value,
                why: w,
            } => {
                write!(f, "{} {value} is on the watch list", role.as_str())?;
                why(f, w)
            }
            Detail::Ctpat {
                role,
                id,
                partner_id,
                standing,
                lapsed,
                mra_program,
            } => {
                write!(f, "{} {id} is {partner_id}, ", role.as_str())?;
                match standing {
                    Standing::Validated { tier } => write!(f, "validated tier {tier}"),
                    Standing::Certified if *lapsed => {
                        f.write_str("validation lapsed, counted as certified")
                    }
                    Standing::Certified => f.write_str("certified tier 1"),
                    Standing::Mra => write!(
                        f,
                        "MRA partner ({})",
                        mra_program.as_deref().unwrap_or("unknown programme")
                    ),
                    other => f.write_str(other.as_str()),
                }
            }
            Detail::Random { mode, class, rate } => {
                write!(f, "selected for a random compliance exam ({} stratum, {class} importer, rate {rate})", mode.as_str())
            }
            Detail::Model {
                probability,
                hts,
                top,
                info,
            } => {
                write!(
                    f,
                    "model {} gives fraud probability {probability:.3} for HTS {hts}; top factors:",
                    info.name
                )?;
                for (i, (feature, c)) in top.as_slice().iter().enumerate() {
                    let name = info.features.get(*feature as usize).map_or("?", |n| n);
                    let sep = if i == 0 { " " } else { ", " };
                    write!(f, "{sep}{name} {c:+.2}")?;
                }
                Ok(())
            }
            Detail::History {
                result,
                count,
                window_days,
                latest,
            } => {
                let (one, many) = match result {
                    ExamResult::Seizure => ("seizure", "seizures"),
                    ExamResult::Discrepancy => ("exam with a discrepancy", "exams with a discrepancy"),
                    ExamResult::NoDiscrepancy => ("clean exam", "clean exams, none found anything"),
                };
                let what = if *count == 1 { one } else { many };
                write!(
                    f,
                    "{count} {what} within {window_days} days before filing; latest: {latest}"
                )
            }
            Detail::CreditCap { credits, cap } => write!(
                f,
                "CTPAT credits total {credits} points; at most {cap} count per manifest (ctpat.credit_cap)"
            ),
            Detail::CreditUnused {
                allowed,
                creditable,
                non_creditable,
            } => write!(
                f,
                "{allowed} points of CTPAT credit exceed the {creditable} creditable points; credits never \
                 offset the {non_creditable} non-creditable points"
            ),
        }
    }
}

/// One rule's contribution to the score.
#[derive(Debug, Clone, PartialEq)]
pub struct Reason {
    pub rule: Rule,
    pub points: i32,
    pub detail: Detail,
    /// The shipment the rule fired on; `None` for conveyance-level rules. Shared with the shipment's party
    /// views (see [`PartyView::shipment`]).
    pub shipment: Option<Arc<str>>,
    /// `Some(min_action)` when the rule is non-creditable: credits never offset its points, and firing it
    /// guarantees at least that action (serialised as `"creditable": false, "min_action"`).
    pub floor: Option<Action>,
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("rule", self.rule.as_str())?;
        m.serialize_entry("points", &self.points)?;
        m.serialize_entry("detail", &Display(&ReasonText(self)))?;
        if let Some(sh) = &self.shipment {
            m.serialize_entry("shipment_id", &**sh)?;
        }
        if let Some(a) = self.floor {
            m.serialize_entry("creditable", &false)?;
            m.serialize_entry("min_action", &a)?;
        }
        m.end()
    }
}

/// A reason's detail as officers read it: the facts, and for a non-creditable rule the floor it guarantees.
pub struct ReasonText<'a>(pub &'a Reason);

impl fmt::Display for ReasonText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.detail)?;
        match self.0.floor {
            Some(a) => write!(f, " (not offset by CTPAT credits; at least {})", a.as_str()),
            None => Ok(()),
        }
    }
}

struct Display<'a, T>(&'a T);
impl<T: fmt::Display> Serialize for Display<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self.0)
    }
}

/// A party of the manifest and what it joined to.
#[derive(Debug, Clone, PartialEq)]
pub struct PartyView {
    pub role: Role,
    pub id: Str,
    /// The shipment's id, one allocation shared by every view and reason of that shipment (a cloned
    /// string was one allocation a copy: ~12 a generated manifest, whose shipment ids are 28 bytes). The
    /// views of a `Decision` ([`crate::score::resolve`]) carry it; those the JSON path writes without
    /// building a decision hold `None` and only `shipment_index`, the writer reading the id from the
    /// manifest.
    pub shipment: Option<Arc<str>>,
    pub partner_id: Option<Str>,
    pub status: Option<Status>,
    pub tier: Option<u8>,
    pub standing: Standing,
    pub lapsed: bool,
    /// The MRA programme of a foreign partner (e.g. `EU-AEO`).
    pub mra_program: Option<Str>,
    /// Index of the shipment in the manifest (not serialised itself; scoring uses it, and the JSON path's
    /// writer finds the shipment's id by it).
    pub shipment_index: Option<u16>,
}

impl Serialize for PartyView {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("role", self.role.as_str())?;
        m.serialize_entry("id", &self.id)?;
        if let Some(sh) = &self.shipment {
            m.serialize_entry("shipment_id", &**sh)?;
        }
        m.serialize_entry("partner_id", &self.partner_id)?;
        m.serialize_entry("status", &self.status)?;
        m.serialize_entry("tier", &self.tier)?;
        m.serialize_entry("standing", self.standing.as_str())?;
        if self.lapsed {
            m.serialize_entry("lapsed", &true)?;
        }
        m.end()
    }
}

/// FAST-lane conditions, as bits of a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum FastCondition {
    TruckMode,
    FastLanePort,
    Release,
    DriverFastCard,
    CarrierCtpat,
    ImporterCtpat,
    ManufacturerCtpat,
    ManufacturerSeal,
}

impl FastCondition {
    pub const ALL: [FastCondition; 8] = [
        FastCondition::TruckMode,
        FastCondition::FastLanePort,
        FastCondition::Release,
        FastCondition::DriverFastCard,
        FastCondition::CarrierCtpat,
        FastCondition::ImporterCtpat,
        FastCondition::ManufacturerCtpat,
        FastCondition::ManufacturerSeal,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            FastCondition::TruckMode => "truck_mode",
            FastCondition::FastLanePort => "fast_lane_port",
            FastCondition::Release => "release",
            FastCondition::DriverFastCard => "driver_fast_card",
            FastCondition::CarrierCtpat => "carrier_ctpat",
            FastCondition::ImporterCtpat => "importer_ctpat",
            FastCondition::ManufacturerCtpat => "manufacturer_ctpat",
            FastCondition::ManufacturerSeal => "manufacturer_seal",
        }
    }
}

/// The unmet FAST conditions of a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FastMissing(pub u8);

impl FastMissing {
    pub fn add(&mut self, c: FastCondition) {
        self.0 |= 1 << (c as u8);
    }
    pub fn contains(self, c: FastCondition) -> bool {
        self.0 & (1 << (c as u8)) != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = FastCondition> {
        FastCondition::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }
}

/// Lane assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    Fast,
    Standard,
    None,
}

impl Lane {
    pub const ALL: [Lane; 3] = [Lane::Fast, Lane::Standard, Lane::None];
    pub const fn as_str(self) -> &'static str {
        match self {
            Lane::Fast => "fast",
            Lane::Standard => "standard",
            Lane::None => "none",
        }
    }
}

/// The engine's answer for one manifest revision.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub manifest_id: Str,
    pub revision: u32,
    pub port_of_entry: PortCode,
    pub mode: Mode,
    pub lane: Lane,
    pub action: Action,
    pub front_of_line: bool,
    pub random_exam: bool,
    pub watchlist_hit: bool,
    pub score: i32,
    pub band: Band,
    pub reasons: SmallVec<[Reason; 8]>,
    pub parties: SmallVec<[PartyView; 6]>,
    /// FAST eligibility: eligible exactly when `fast_missing` is empty.
    pub fast_missing: FastMissing,
    /// Weakest importer standing on the manifest (the stratum officers read the favouring by).
    pub importer_standing: Standing,
    pub policy_version: Arc<str>,
    /// Version (`sha256:` of the file) of the learned model the policy used; `None` without a model.
    pub model_version: Option<Arc<str>>,
    /// Processing order while a business-resumption declaration applies to the manifest (1 first … 4
    /// last, see [`crate::resumption::priority`]); `None` otherwise (the field is then absent on the wire).
    pub priority: Option<u8>,
    /// The party history the decision read (`history_as_of`: per outcomes partition, the next position
    /// not counted); `None` when the policy has no `[history]` section.
    pub history_as_of: Option<Arc<Watermark>>,
    /// Set by the adapter that emits the decision; excluded from determinism.
    pub decided_at: Option<Timestamp>,
}

impl Decision {
    pub fn fast_eligible(&self) -> bool {
        self.fast_missing.is_empty()
    }
}

struct FastView(FastMissing);
impl Serialize for FastView {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Missing(FastMissing);
        impl Serialize for Missing {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(None)?;
                for c in self.0.iter() {
                    seq.serialize_element(c.as_str())?;
                }
                seq.end()
            }
        }
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("eligible", &self.0.is_empty())?;
        m.serialize_entry("missing", &Missing(self.0))?;
        m.end()
    }
}

impl Serialize for Decision {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("manifest_id", &self.manifest_id)?;
        m.serialize_entry("revision", &self.revision)?;
        m.serialize_entry("port_of_entry", &self.port_of_entry)?;
        m.serialize_entry("mode", &self.mode)?;
        m.serialize_entry("lane", &self.lane)?;
        m.serialize_entry("action", &self.action)?;
        m.serialize_entry("front_of_line", &self.front_of_line)?;
        m.serialize_entry("random_exam", &self.random_exam)?;
        m.serialize_entry("watchlist_hit", &self.watchlist_hit)?;
        m.serialize_entry("score", &self.score)?;
        m.serialize_entry("band", &self.band)?;
        m.serialize_entry("reasons", &self.reasons[..])?;
        m.serialize_entry("parties", &self.parties[..])?;
        m.serialize_entry("fast", &FastView(self.fast_missing))?;
        m.serialize_entry("importer_standing", self.importer_standing.as_str())?;
        m.serialize_entry("policy_version", &*self.policy_version)?;
        if let Some(v) = &self.model_version {
            m.serialize_entry("model_version", &**v)?;
        }
        if let Some(p) = self.priority {
            m.serialize_entry("priority", &p)?;
        }
        if let Some(w) = &self.history_as_of {
            m.serialize_entry("history_as_of", &**w)?;
        }
        if let Some(t) = &self.decided_at {
            m.serialize_entry("decided_at", t)?;
        }
        m.end()
    }
}
