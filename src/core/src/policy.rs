//! The operator-tunable policy: its TOML document, whole-document validation, content-hash versioning, and
//! compilation into the lookup tables the scorer reads.
//!
//! Validation reports **every** problem at once, each with its key path: type and unknown-key errors from the
//! schema pass (eserde), then the semantic rules (codes, ranges, severity ordering, the statutory cap on
//! certified-only credit, monotonic credits so favouring can never invert).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::codes::{Country, PortCode};
use crate::model::{curve_bands, Model, ModelRule};
use crate::wire::{Entity, IdKind, Mode, Str};

// ---------------------------------------------------------------------------------------------------------
// Vocabulary shared with decisions

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
    pub fn as_str(self) -> &'static str {
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
    pub fn as_str(self) -> &'static str {
        match self {
            Band::Low => "low",
            Band::Medium => "medium",
            Band::High => "high",
        }
    }
}

/// Which land border a port sits on; `none` for sea and air ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Border {
    North,
    South,
    None,
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
    pub fn as_str(self) -> &'static str {
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

// ---------------------------------------------------------------------------------------------------------
// The document (config/policy.toml)

/// The policy document exactly as operators write it. Maps are `BTreeMap`s so the canonical serialisation,
/// and therefore the version hash, does not depend on key order or formatting in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDoc {
    pub meta: Meta,
    pub bands: Bands,
    pub actions: Actions,
    pub ports: BTreeMap<String, Port>,
    pub countries: Countries,
    pub commodities: Commodities,
    pub seals: Seals,
    pub filing: Filing,
    pub parties: Parties,
    pub watchlist: Watchlist,
    pub ctpat: Ctpat,
    pub random: Random,
    /// Optional learned risk model and how its probability maps to points. Absent: the rules alone decide
    /// (and the version hash is the same as before the section existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSection>,
}

/// The `[model]` section: which model file, and points by fraud probability — either bands (`points`) or
/// a curve on log-odds (`curve`), exactly one of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Model file, relative to the policy file. The adapter reads it; the core never touches files.
    pub file: String,
    /// Probability bands, ascending `min_probability`, non-decreasing non-negative points: the highest band
    /// a shipment's riskiest line reaches adds its points (below the first band the model adds nothing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub points: Vec<ModelBand>,
    /// Points on the log-odds scale: `clamp(round(scale · (logit p − logit p0)), 0, max_points)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve: Option<ModelCurve>,
}

/// A monotone curve from fraud probability to points, linear in log-odds above `p0` (fitted by `borderlane
/// train --policy`: `scale` is the model's weight on the rules' point scale, see `docs/model.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCurve {
    /// Probability at which the model starts adding points, in (0, 1).
    pub p0: f64,
    /// Points per unit of log-odds above `p0`; positive and finite.
    pub scale: f64,
    /// Most points the model adds.
    pub max_points: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelBand {
    pub min_probability: f64,
    pub points: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// Human name of this policy, shown in reports.
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// Score thresholds: `score >= medium` is medium, `score >= high` is high.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bands {
    pub medium: i32,
    pub high: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actions {
    pub low: Action,
    pub medium: Action,
    pub high: Action,
    /// Scores far above the high threshold escalate further (ascending `at`).
    #[serde(default)]
    pub escalation: Vec<Escalation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    pub at: i32,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Port {
    pub name: String,
    pub border: Border,
    #[serde(default)]
    pub fast_lanes: bool,
}

/// Points with the reason an officer reads on the decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Risk {
    pub points: i32,
    #[serde(default)]
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Countries {
    /// Points by country of origin.
    #[serde(default)]
    pub origin: BTreeMap<String, Risk>,
    /// Points by transit (transshipment) country; the riskiest one counts.
    #[serde(default)]
    pub transit: BTreeMap<String, Risk>,
    /// A routing through at least this many transit countries is circuitous (0 disables the rule).
    #[serde(default)]
    pub circuitous_min_transits: u32,
    #[serde(default)]
    pub circuitous_points: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commodities {
    /// Points by HTS chapter (two digits, "01" … "99").
    #[serde(default)]
    pub chapters: BTreeMap<String, Risk>,
    /// Points by HTS heading (four digits); a listed heading replaces its chapter's points.
    #[serde(default)]
    pub headings: BTreeMap<String, Risk>,
    /// Plausible declared value per kilogram by chapter; outside the band scores `points`.
    #[serde(default)]
    pub value_per_kg: BTreeMap<String, ValueBand>,
    /// Vague description terms ("FAK", "said to contain"), matched case-insensitively as whole words.
    #[serde(default)]
    pub vague_terms: Vec<String>,
    #[serde(default)]
    pub vague_points: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueBand {
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    pub points: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seals {
    /// Modes whose equipment is expected to be sealed.
    pub modes: Vec<Mode>,
    /// Equipment with no seal at all.
    pub missing_points: i32,
    /// A seal that is not ISO 17712 high security ("H").
    pub not_high_security_points: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filing {
    /// Minimum minutes between `filed_at` and `estimated_arrival`, by mode.
    pub min_lead_minutes: PerMode<u32>,
    pub late_points: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerMode<T> {
    pub truck: T,
    pub rail: T,
    pub ocean: T,
    pub air: T,
}

impl<T> PerMode<T> {
    pub fn get(&self, m: Mode) -> &T {
        match m {
            Mode::Truck => &self.truck,
            Mode::Rail => &self.rail,
            Mode::Ocean => &self.ocean,
            Mode::Air => &self.air,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parties {
    /// A shipment that names no importer of record.
    pub missing_importer_points: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watchlist {
    /// The least severe action a hit forces; must be an examination.
    pub action: Action,
    pub points: i32,
    #[serde(default)]
    pub ids: Vec<WatchId>,
    #[serde(default)]
    pub names: Vec<WatchName>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchId {
    pub id: String,
    #[serde(default)]
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchName {
    /// Compared after normalisation: ASCII letters and digits, upper case, single spaces.
    pub name: String,
    #[serde(default)]
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ctpat {
    /// A validation older than this counts as certified only (default practice: 4 years).
    pub revalidation_days: i32,
    /// Roles whose certified or validated standing puts an examined conveyance at the front of the line.
    pub front_of_line_roles: Vec<Role>,
    /// Credit (points subtracted) by role and standing.
    pub credits: BTreeMap<Role, Credit>,
    /// Penalty (points added) for a suspended or removed partner in any joined role.
    pub penalties: Penalties,
    /// How each role's party id is joined to partners: identifier kinds tried in order, accepted entities.
    pub join: BTreeMap<Role, Join>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credit {
    pub certified: i32,
    pub validated: i32,
    /// Tier 3 (validated, exceeding the minimum criteria); defaults to `validated`.
    #[serde(default)]
    pub tier3: Option<i32>,
    /// A foreign partner certified under a Mutual Recognition Arrangement.
    #[serde(default)]
    pub mra: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Penalties {
    pub suspended: i32,
    pub removed: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Join {
    pub kinds: Vec<IdKind>,
    pub entities: Vec<Entity>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Random {
    /// Key of the selection hash. Changing it re-draws every manifest.
    pub seed: u64,
    /// The action a randomly selected conveyance gets (at least).
    pub action: Action,
    /// Sampling rates by mode (the stratum) and the weakest importer standing on the manifest.
    pub rates: PerMode<Rates>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    /// Importers that are not CTPAT partners (or suspended, removed, applicants).
    pub non_partner: f64,
    /// Certified (tier 1) importers. Validated (tier 2/3) importers are always exempt.
    pub certified: f64,
}

// ---------------------------------------------------------------------------------------------------------
// Validation

/// One problem in a policy document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyError {
    /// Dotted key path, e.g. `ctpat.credits.importer.certified`; empty for document-level errors.
    pub path: String,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

struct Errors(Vec<PolicyError>);

impl Errors {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(PolicyError {
            path: path.into(),
            message: message.into(),
        });
    }
    fn check(&mut self, ok: bool, path: impl Into<String>, message: impl Into<String>) {
        if !ok {
            self.add(path, message);
        }
    }
}

const MAX_ABS_POINTS: i32 = 10_000;

/// Statutory cap (6 USC 964): certified-only credit at most this share of the high-risk threshold.
pub const CERTIFIED_CAP_SHARE: f64 = 0.20;

fn check_points(e: &mut Errors, path: &str, p: i32) {
    e.check(
        p.abs() <= MAX_ABS_POINTS,
        path,
        format!("{p} is outside -{MAX_ABS_POINTS}..={MAX_ABS_POINTS}"),
    );
}

fn check_non_negative(e: &mut Errors, path: &str, p: i32) {
    e.check(p >= 0, path, format!("must not be negative, is {p}"));
    check_points(e, path, p);
}

fn parse_chapter(key: &str) -> Option<u8> {
    (key.len() == 2 && key.bytes().all(|b| b.is_ascii_digit()))
        .then(|| key.parse::<u8>().ok())
        .flatten()
        .filter(|c| *c >= 1)
}

fn parse_heading(key: &str) -> Option<u16> {
    (key.len() == 4 && key.bytes().all(|b| b.is_ascii_digit()))
        .then(|| key.parse::<u16>().ok())
        .flatten()
        .filter(|h| *h >= 100)
}

impl PolicyDoc {
    /// Every semantic problem of an already well-typed document.
    pub fn validate(&self) -> Vec<PolicyError> {
        let mut e = Errors(Vec::new());
        let b = &self.bands;
        e.check(
            b.medium < b.high,
            "bands.medium",
            format!("medium ({}) must be below high ({})", b.medium, b.high),
        );
        e.check(
            b.high > 0,
            "bands.high",
            "the high-risk threshold must be positive",
        );
        check_points(&mut e, "bands.medium", b.medium);
        check_points(&mut e, "bands.high", b.high);

        let a = &self.actions;
        e.check(
            a.low <= a.medium,
            "actions.medium",
            "must be at least as severe as actions.low",
        );
        e.check(
            a.medium <= a.high,
            "actions.high",
            "must be at least as severe as actions.medium",
        );
        e.check(
            a.high.is_exam(),
            "actions.high",
            "a high-risk score must be examined, not released",
        );
        let (mut prev_at, mut prev_action) = (b.high, a.high);
        for (i, x) in a.escalation.iter().enumerate() {
            let p = format!("actions.escalation[{i}]");
            e.check(
                x.at > prev_at,
                format!("{p}.at"),
                format!("must be above {prev_at} (ascending, above bands.high)"),
            );
            e.check(
                x.action > prev_action,
                format!("{p}.action"),
                "must be more severe than the action below it",
            );
            prev_at = x.at;
            prev_action = x.action;
        }

        e.check(!self.ports.is_empty(), "ports", "the port table is empty");
        for (code, port) in &self.ports {
            let p = format!("ports.{code}");
            e.check(
                PortCode::parse(code).is_some(),
                &p,
                "port codes are 4 digits",
            );
            e.check(
                !(port.fast_lanes && port.border == Border::None),
                format!("{p}.fast_lanes"),
                "FAST lanes exist only at land-border ports (border north or south)",
            );
        }

        let c = &self.countries;
        for (section, map) in [
            ("countries.origin", &c.origin),
            ("countries.transit", &c.transit),
        ] {
            for (code, risk) in map {
                let p = format!("{section}.{code}");
                e.check(
                    Country::parse(code).is_some(),
                    &p,
                    "not an ISO 3166-1 alpha-2 country code",
                );
                check_points(&mut e, &format!("{p}.points"), risk.points);
            }
        }
        check_points(&mut e, "countries.circuitous_points", c.circuitous_points);

        let m = &self.commodities;
        for (k, risk) in &m.chapters {
            e.check(
                parse_chapter(k).is_some(),
                format!("commodities.chapters.{k}"),
                "HTS chapters are two digits, 01 to 99",
            );
            check_points(
                &mut e,
                &format!("commodities.chapters.{k}.points"),
                risk.points,
            );
        }
        for (k, risk) in &m.headings {
            e.check(
                parse_heading(k).is_some(),
                format!("commodities.headings.{k}"),
                "HTS headings are four digits, 0101 to 9999",
            );
            check_points(
                &mut e,
                &format!("commodities.headings.{k}.points"),
                risk.points,
            );
        }
        for (k, band) in &m.value_per_kg {
            let p = format!("commodities.value_per_kg.{k}");
            e.check(
                parse_chapter(k).is_some(),
                &p,
                "HTS chapters are two digits, 01 to 99",
            );
            for (name, v) in [("min", band.min), ("max", band.max)] {
                if let Some(v) = v {
                    e.check(
                        v.is_finite() && v >= 0.0,
                        format!("{p}.{name}"),
                        "must be a non-negative number",
                    );
                }
            }
            e.check(
                band.min.is_some() || band.max.is_some(),
                &p,
                "give min, max or both",
            );
            if let (Some(lo), Some(hi)) = (band.min, band.max) {
                e.check(lo < hi, &p, format!("min ({lo}) must be below max ({hi})"));
            }
            check_points(&mut e, &format!("{p}.points"), band.points);
        }
        for (i, t) in m.vague_terms.iter().enumerate() {
            e.check(
                !t.trim().is_empty(),
                format!("commodities.vague_terms[{i}]"),
                "empty term",
            );
        }
        check_points(&mut e, "commodities.vague_points", m.vague_points);

        check_points(&mut e, "seals.missing_points", self.seals.missing_points);
        check_points(
            &mut e,
            "seals.not_high_security_points",
            self.seals.not_high_security_points,
        );
        check_points(&mut e, "filing.late_points", self.filing.late_points);
        check_points(
            &mut e,
            "parties.missing_importer_points",
            self.parties.missing_importer_points,
        );

        let w = &self.watchlist;
        e.check(
            w.action.is_exam(),
            "watchlist.action",
            "watch-list hits are always examined: release is not allowed",
        );
        check_non_negative(&mut e, "watchlist.points", w.points);
        for (i, x) in w.ids.iter().enumerate() {
            e.check(
                !x.id.trim().is_empty(),
                format!("watchlist.ids[{i}].id"),
                "empty id",
            );
        }
        for (i, x) in w.names.iter().enumerate() {
            e.check(
                !normalize_name(&x.name).is_empty(),
                format!("watchlist.names[{i}].name"),
                "no letters or digits",
            );
        }

        let t = &self.ctpat;
        e.check(
            t.revalidation_days > 0,
            "ctpat.revalidation_days",
            "must be positive",
        );
        let cap = (b.high as f64 * CERTIFIED_CAP_SHARE).floor() as i32;
        for (role, cr) in &t.credits {
            let p = format!("ctpat.credits.{}", role.as_str());
            e.check(
                Role::JOINED.contains(role),
                &p,
                "credits apply to importer, carrier, manufacturer, shipper and broker only",
            );
            check_non_negative(&mut e, &format!("{p}.certified"), cr.certified);
            check_non_negative(&mut e, &format!("{p}.validated"), cr.validated);
            check_non_negative(&mut e, &format!("{p}.mra"), cr.mra);
            e.check(cr.certified <= cap, format!("{p}.certified"), format!(
                "certified-only credit {} exceeds the statutory cap of 20% of bands.high ({cap})", cr.certified));
            e.check(
                cr.certified <= cr.validated,
                format!("{p}.validated"),
                "must be at least the certified credit (favouring must never invert)",
            );
            if let Some(t3) = cr.tier3 {
                check_non_negative(&mut e, &format!("{p}.tier3"), t3);
                e.check(
                    t3 >= cr.validated,
                    format!("{p}.tier3"),
                    "must be at least the validated credit",
                );
            }
            e.check(
                cr.mra <= cr.validated,
                format!("{p}.mra"),
                "MRA credit may not exceed the validated credit",
            );
        }
        check_non_negative(&mut e, "ctpat.penalties.suspended", t.penalties.suspended);
        check_non_negative(&mut e, "ctpat.penalties.removed", t.penalties.removed);
        for role in Role::JOINED {
            match t.join.get(&role) {
                None => e.add(
                    format!("ctpat.join.{}", role.as_str()),
                    "missing: every joined role needs identifier kinds and entities",
                ),
                Some(j) => {
                    e.check(
                        !j.kinds.is_empty(),
                        format!("ctpat.join.{}.kinds", role.as_str()),
                        "empty",
                    );
                    e.check(
                        !j.entities.is_empty(),
                        format!("ctpat.join.{}.entities", role.as_str()),
                        "empty",
                    );
                }
            }
        }
        for role in t.join.keys().filter(|r| !Role::JOINED.contains(r)) {
            e.add(
                format!("ctpat.join.{}", role.as_str()),
                "this role is not joined against partners",
            );
        }

        let r = &self.random;
        e.check(
            r.action.is_exam(),
            "random.action",
            "a random compliance exam must be an examination",
        );
        for mode in Mode::ALL {
            let rates = r.rates.get(mode);
            let p = format!("random.rates.{}", mode.as_str());
            for (name, v) in [
                ("non_partner", rates.non_partner),
                ("certified", rates.certified),
            ] {
                e.check(
                    (0.0..=1.0).contains(&v),
                    format!("{p}.{name}"),
                    format!("{v} is not a rate between 0 and 1"),
                );
            }
            e.check(
                rates.certified <= rates.non_partner,
                format!("{p}.certified"),
                "must not exceed the non-partner rate (favouring must never invert)",
            );
        }
        if let Some(m) = &self.model {
            validate_model_section(&mut e, m);
        }
        e.0
    }

    /// Canonical content hash: SHA-256 of the canonical JSON form, so comments, order and layout in the TOML
    /// do not change the version, and every change of content does.
    pub fn version(&self) -> String {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        let digest = Sha256::digest(&canonical);
        let mut out = String::with_capacity(7 + 64);
        out.push_str("sha256:");
        for byte in digest {
            out.push_str(&format!("{byte:02x}"));
        }
        out
    }
}

/// The `[model]` section: a file name and exactly one of bands (ascending probability thresholds in
/// (0, 1], points that never fall as the probability rises and never credit) or a curve (`p0` in (0, 1),
/// finite positive `scale`, non-negative `max_points`): the model only adds risk; credits come from CTPAT.
fn validate_model_section(e: &mut Errors, m: &ModelSection) {
    e.check(!m.file.trim().is_empty(), "model.file", "empty");
    if let Some(c) = &m.curve {
        e.check(
            m.points.is_empty(),
            "model.points",
            "give either points bands or a curve, not both",
        );
        e.check(
            c.p0 > 0.0 && c.p0 < 1.0,
            "model.curve.p0",
            format!("{} is not in (0, 1)", c.p0),
        );
        e.check(
            c.scale.is_finite() && c.scale > 0.0,
            "model.curve.scale",
            format!("{} is not a finite number above 0", c.scale),
        );
        check_non_negative(e, "model.curve.max_points", c.max_points);
        return;
    }
    e.check(
        !m.points.is_empty(),
        "model.points",
        "needs at least one band (or a curve)",
    );
    let (mut prev_min, mut prev_points) = (0.0f64, 0i32);
    for (i, b) in m.points.iter().enumerate() {
        let p = format!("model.points[{i}]");
        e.check(
            b.min_probability > 0.0 && b.min_probability <= 1.0,
            format!("{p}.min_probability"),
            format!("{} is not in (0, 1]", b.min_probability),
        );
        e.check(
            i == 0 || b.min_probability > prev_min,
            format!("{p}.min_probability"),
            format!("must be above {prev_min} (ascending)"),
        );
        check_non_negative(e, &format!("{p}.points"), b.points);
        e.check(
            b.points >= prev_points,
            format!("{p}.points"),
            format!("must be at least {prev_points} (points never fall as the probability rises)"),
        );
        prev_min = b.min_probability;
        prev_points = b.points;
    }
}

/// Normalises a party name for watch-list comparison: ASCII letters and digits upper-cased, every other run
/// of characters one space, trimmed.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    normalize_into(name, |b| out.push(b as char));
    out
}

/// The normalisation of [`normalize_name`], pushing bytes to a sink so the hot path can use a stack buffer.
#[inline]
fn normalize_into(name: &str, mut push: impl FnMut(u8)) {
    let (mut gap, mut started) = (false, false);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() {
            if gap && started {
                push(b' ');
            }
            gap = false;
            started = true;
            push(b.to_ascii_uppercase());
        } else {
            gap = true;
        }
    }
}

/// Parses and validates a policy document: every schema error and every semantic error, with key paths.
pub fn parse_policy(text: &str) -> Result<PolicyDoc, Vec<PolicyError>> {
    let doc: PolicyDoc = crate::doc::from_toml(text).map_err(|errs| {
        errs.into_iter()
            .map(|e| PolicyError {
                path: e.path,
                message: e.message,
            })
            .collect::<Vec<_>>()
    })?;
    let errors = doc.validate();
    if errors.is_empty() {
        Ok(doc)
    } else {
        Err(errors)
    }
}

// ---------------------------------------------------------------------------------------------------------
// Compiled form

/// A risk entry as the scorer sees it: points and an explanation shared by every decision that cites it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub points: i32,
    pub why: Arc<str>,
}

#[derive(Debug, Clone)]
pub struct PortInfo {
    pub code: PortCode,
    pub name: Arc<str>,
    pub border: Border,
    pub fast_lanes: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct CompiledBand {
    pub min: f64,
    pub max: f64,
    pub points: i32,
}

#[derive(Debug, Clone)]
pub struct CompiledJoin {
    pub kinds: Vec<IdKind>,
    /// Bit `Entity as u32` set for each accepted entity.
    pub entities: u32,
}

/// Credits indexed `[certified, validated, tier3, mra]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompiledCredit {
    pub certified: i32,
    pub validated: i32,
    pub tier3: i32,
    pub mra: i32,
}

/// A policy compiled for evaluation: dense arrays indexed by code, one automaton for vague terms, hash sets
/// for watch lists. Built once per version; immutable and shared (`Arc`) by every scoring thread.
pub struct CompiledPolicy {
    pub doc: PolicyDoc,
    pub version: Arc<str>,
    /// `port index → 1 + position in ports`, 0 for unknown.
    port_slot: Box<[u16]>,
    pub ports: Vec<PortInfo>,
    pub origin: Box<[Option<Entry>]>,
    pub transit: Box<[Option<Entry>]>,
    pub chapters: Box<[Option<Entry>]>,
    /// Sorted by heading for binary search (few entries).
    pub headings: Vec<(u16, Entry)>,
    pub value_per_kg: Box<[Option<CompiledBand>]>,
    pub vague: Option<AhoCorasick>,
    pub vague_terms: Vec<Arc<str>>,
    pub watch_ids: HashMap<Str, Arc<str>, foldhash::fast::RandomState>,
    pub watch_names: HashMap<String, Arc<str>, foldhash::fast::RandomState>,
    pub credits: [CompiledCredit; Role::COUNT],
    pub join: [CompiledJoin; Role::COUNT],
    pub front_of_line: u32,
    pub seal_modes: u32,
    /// The learned model and its points bands, when the policy has a `[model]` section and the adapter
    /// supplied the model (see [`CompiledPolicy::compile_with_model`]).
    pub model: Option<ModelRule>,
}

impl fmt::Debug for CompiledPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledPolicy")
            .field("name", &self.doc.meta.name)
            .field("version", &self.version)
            .finish()
    }
}

fn table<const N: usize>(
    map: &BTreeMap<String, Risk>,
    index: impl Fn(&str) -> Option<usize>,
) -> Box<[Option<Entry>]> {
    let mut out: Vec<Option<Entry>> = vec![None; N];
    for (k, r) in map {
        if let Some(i) = index(k) {
            out[i] = Some(Entry {
                points: r.points,
                why: Arc::from(r.why.as_str()),
            });
        }
    }
    out.into_boxed_slice()
}

impl CompiledPolicy {
    /// Parses, validates and compiles a policy in one step.
    pub fn from_toml(text: &str) -> Result<CompiledPolicy, Vec<PolicyError>> {
        parse_policy(text).map(CompiledPolicy::compile)
    }

    /// Compiles a document with the model its `[model]` section names (read by the adapter). The model is
    /// used only when the document has a `[model]` section; without a model the section is inert.
    pub fn compile_with_model(doc: PolicyDoc, model: Option<Model>) -> CompiledPolicy {
        let rule = match (&doc.model, model) {
            (Some(section), Some(model)) => Some(ModelRule {
                model: Arc::new(model),
                bands: match &section.curve {
                    Some(c) => curve_bands(c.p0, c.scale, c.max_points),
                    None => section
                        .points
                        .iter()
                        .map(|b| (b.min_probability, b.points))
                        .collect(),
                },
            }),
            _ => None,
        };
        let mut compiled = CompiledPolicy::compile(doc);
        compiled.model = rule;
        compiled
    }

    /// Compiles a document that [`PolicyDoc::validate`] accepted. Entries that validation would reject are
    /// skipped rather than panicking, so compilation itself cannot fail. A `[model]` section needs
    /// [`CompiledPolicy::compile_with_model`]; here it stays inert.
    pub fn compile(doc: PolicyDoc) -> CompiledPolicy {
        let version: Arc<str> = Arc::from(doc.version());
        let mut port_slot = vec![0u16; 10_000].into_boxed_slice();
        let mut ports = Vec::new();
        for (code, p) in &doc.ports {
            if let Some(pc) = PortCode::parse(code) {
                ports.push(PortInfo {
                    code: pc,
                    name: Arc::from(p.name.as_str()),
                    border: p.border,
                    fast_lanes: p.fast_lanes,
                });
                port_slot[pc.index()] = ports.len() as u16;
            }
        }
        let country_index = |k: &str| Country::parse(k).map(Country::index);
        let chapter_index = |k: &str| parse_chapter(k).map(usize::from);
        let mut value_per_kg = vec![None; 100].into_boxed_slice();
        for (k, b) in &doc.commodities.value_per_kg {
            if let Some(c) = parse_chapter(k) {
                value_per_kg[c as usize] = Some(CompiledBand {
                    min: b.min.unwrap_or(0.0),
                    max: b.max.unwrap_or(f64::INFINITY),
                    points: b.points,
                });
            }
        }
        let mut headings: Vec<(u16, Entry)> = doc
            .commodities
            .headings
            .iter()
            .filter_map(|(k, r)| {
                parse_heading(k).map(|h| {
                    (
                        h,
                        Entry {
                            points: r.points,
                            why: Arc::from(r.why.as_str()),
                        },
                    )
                })
            })
            .collect();
        headings.sort_by_key(|(h, _)| *h);
        let vague_terms: Vec<Arc<str>> = doc
            .commodities
            .vague_terms
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .map(Arc::from)
            .collect();
        let vague = if vague_terms.is_empty() {
            None
        } else {
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostLongest)
                .build(vague_terms.iter().map(|t| t.as_bytes()))
                .ok()
        };
        let watch_ids = doc
            .watchlist
            .ids
            .iter()
            .map(|w| (Str::from(w.id.trim()), Arc::from(w.why.as_str())))
            .collect();
        let watch_names = doc
            .watchlist
            .names
            .iter()
            .map(|w| (normalize_name(&w.name), Arc::from(w.why.as_str())))
            .filter(|(n, _)| !n.is_empty())
            .collect();
        let mut credits = [CompiledCredit::default(); Role::COUNT];
        for (role, c) in &doc.ctpat.credits {
            credits[role.index()] = CompiledCredit {
                certified: c.certified,
                validated: c.validated,
                tier3: c.tier3.unwrap_or(c.validated),
                mra: c.mra,
            };
        }
        let join = std::array::from_fn(|i| {
            let role = [
                Role::Importer,
                Role::Carrier,
                Role::Manufacturer,
                Role::Shipper,
                Role::Broker,
                Role::Consignee,
                Role::Driver,
            ][i];
            match doc.ctpat.join.get(&role) {
                Some(j) => CompiledJoin {
                    kinds: j.kinds.clone(),
                    entities: j
                        .entities
                        .iter()
                        .fold(0u32, |acc, e| acc | (1 << (*e as u32))),
                },
                None => CompiledJoin {
                    kinds: Vec::new(),
                    entities: 0,
                },
            }
        });
        let front_of_line = doc
            .ctpat
            .front_of_line_roles
            .iter()
            .fold(0u32, |acc, r| acc | (1 << r.index()));
        let seal_modes = doc
            .seals
            .modes
            .iter()
            .fold(0u32, |acc, m| acc | (1 << (*m as u32)));
        CompiledPolicy {
            origin: table::<676>(&doc.countries.origin, country_index),
            transit: table::<676>(&doc.countries.transit, country_index),
            chapters: table::<100>(&doc.commodities.chapters, chapter_index),
            headings,
            value_per_kg,
            vague,
            vague_terms,
            watch_ids,
            watch_names,
            credits,
            join,
            front_of_line,
            seal_modes,
            port_slot,
            ports,
            version,
            doc,
            model: None,
        }
    }

    /// The port-table entry for a port code, if the policy knows it.
    #[inline]
    pub fn port(&self, code: PortCode) -> Option<&PortInfo> {
        match self.port_slot[code.index()] {
            0 => None,
            slot => self.ports.get(slot as usize - 1),
        }
    }

    #[inline]
    pub fn heading(&self, heading: u16) -> Option<&Entry> {
        self.headings
            .binary_search_by_key(&heading, |(h, _)| *h)
            .ok()
            .map(|i| &self.headings[i].1)
    }

    /// The first vague term found as a whole word in `text`.
    #[inline]
    pub fn vague_term(&self, text: &str) -> Option<&Arc<str>> {
        let ac = self.vague.as_ref()?;
        let bytes = text.as_bytes();
        ac.find_iter(bytes).find_map(|m| {
            let before_ok = m.start() == 0 || !bytes[m.start() - 1].is_ascii_alphanumeric();
            let after_ok = m.end() == bytes.len() || !bytes[m.end()].is_ascii_alphanumeric();
            (before_ok && after_ok).then(|| &self.vague_terms[m.pattern().as_usize()])
        })
    }

    /// Watch-list explanation for a party name, if its normalised form is listed.
    pub fn watched_name(&self, name: &str) -> Option<&Arc<str>> {
        if self.watch_names.is_empty() {
            return None;
        }
        // Normalise into a stack buffer; only names longer than it allocate.
        let mut buf = [0u8; 128];
        let mut len = 0usize;
        let mut overflow = false;
        normalize_into(name, |b| {
            if len < buf.len() {
                buf[len] = b;
                len += 1;
            } else {
                overflow = true;
            }
        });
        if overflow {
            return self.watch_names.get(&normalize_name(name));
        }
        // Only ASCII bytes were pushed.
        std::str::from_utf8(&buf[..len])
            .ok()
            .and_then(|n| self.watch_names.get(n))
    }

    pub fn accepts(&self, role: Role, entity: Entity) -> bool {
        self.join[role.index()].entities & (1 << (entity as u32)) != 0
    }

    pub fn revalidation_days(&self) -> i32 {
        self.doc.ctpat.revalidation_days
    }
}
