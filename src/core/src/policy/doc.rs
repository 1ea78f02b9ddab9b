//! The policy document exactly as operators write it (`config/policy.toml`): its types and its content-hash
//! version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::decision::{Action, Role};
use crate::wire::{Entity, IdKind, Mode};

/// Which land border a port sits on; `none` for sea and air ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Border {
    North,
    South,
    None,
}

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
    /// Plausibility limits of declared quantities and the zero-weight rule. Optional: a policy without the
    /// section gets [`Plausibility::default`], and a section equal to the defaults is left out of the
    /// canonical form, so the version hash of a policy written before the section existed does not change.
    #[serde(default, skip_serializing_if = "Plausibility::is_default")]
    pub plausibility: Plausibility,
    /// Optional learned risk model and how its probability maps to points. Absent: the rules alone decide
    /// (and the version hash is the same as before the section existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSection>,
    /// Optional party history (exam outcomes of earlier manifests). Absent: no history rule, no
    /// `history_as_of` on decisions, and the version hash is the same as before the section existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<HistorySection>,
}

/// The `[history]` section: points for what earlier exams found about a shipment's parties, and a small
/// credit for a long clean exam record. Judged as of the manifest's `filed_at`: only outcomes examined in
/// the `window_days` before it count, each distinct outcome once per shipment however many of its parties
/// it names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistorySection {
    /// How far back outcomes count, in days before `filed_at` (1 to 3650).
    pub window_days: u32,
    /// Roles whose history counts (joined roles: importer, carrier, manufacturer, shipper, broker). The
    /// carrier counts for every shipment it carries.
    pub roles: Vec<Role>,
    /// Points per distinct outcome that found a discrepancy.
    pub discrepancy_points: i32,
    /// Points per distinct outcome that led to a seizure (at least `discrepancy_points`).
    pub seizure_points: i32,
    /// Most points discrepancies and seizures add together per shipment (at least `seizure_points`).
    pub max_points: i32,
    /// Credit treatment of `discrepancy_points` (see [`Guard`]).
    #[serde(default, skip_serializing_if = "Guard::is_default")]
    pub discrepancy: Guard,
    /// Credit treatment of `seizure_points`: a party's own seizure record is intelligence, which a
    /// trusted-trader credit should not erase (`creditable = false` with a `min_action`).
    #[serde(default, skip_serializing_if = "Guard::is_default")]
    pub seizure: Guard,
    /// A shipment whose parties have at least this many exams in the window, none of which found
    /// anything, earns `clean_credit` (0 disables the credit).
    #[serde(default)]
    pub clean_min_exams: u32,
    /// The clean-record credit (points subtracted, at most `discrepancy_points`). It counts as a credit:
    /// it offsets creditable points only and falls under `ctpat.credit_cap`.
    #[serde(default)]
    pub clean_credit: i32,
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
    /// `false`: CTPAT credits never offset these points (see [`Guard`]). Defaults to `true`, left out of
    /// the canonical form when `true`.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub creditable: bool,
    /// The least action a firing non-creditable entry guarantees (required when `creditable = false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_action: Option<Action>,
}

impl Risk {
    pub fn guard(&self) -> Guard {
        Guard {
            creditable: self.creditable,
            min_action: self.min_action,
        }
    }
}

/// Whether CTPAT credits may offset a rule's points, and the least action the rule guarantees when they
/// may not. Table entries (`countries.origin.KP = { points, why, creditable, min_action }`) carry the two
/// keys inline; a scalar rule (`seals.missing_points`) has a sibling table named after it
/// (`seals.missing = { creditable = false, min_action = "nii_scan" }`).
///
/// Credits offset creditable points only: `score = non-creditable points + max(0, creditable points −
/// min(credits, ctpat.credit_cap))` whenever a non-creditable rule fires, so such a rule's points always
/// count in full, and validation refuses a policy whose non-creditable rule, firing alone, would score
/// below its `min_action`. The default (`creditable = true`, no `min_action`) is left out of the canonical
/// form, so a policy that does not use the keys keeps its version hash and decides as before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub creditable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_action: Option<Action>,
}

impl Default for Guard {
    fn default() -> Self {
        Guard {
            creditable: true,
            min_action: None,
        }
    }
}

impl Guard {
    pub fn is_default(&self) -> bool {
        *self == Guard::default()
    }
    /// The floor of a non-creditable rule: `Some(min_action)` when credits may not offset it.
    pub fn floor(&self) -> Option<Action> {
        if self.creditable {
            None
        } else {
            Some(self.min_action.unwrap_or(Action::Release))
        }
    }
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
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
    /// Credit treatment of `circuitous_points`.
    #[serde(default, skip_serializing_if = "Guard::is_default")]
    pub circuitous: Guard,
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
    /// Vague description terms ("FAK", "said to contain"), matched case-insensitively as whole words
    /// (a word is bounded by the text's ends or by bytes that are not ASCII letters or digits); a
    /// description's leftmost such term is its reason, the longest at that position (`policy::terms`).
    #[serde(default)]
    pub vague_terms: Vec<String>,
    #[serde(default)]
    pub vague_points: i32,
    /// Credit treatment of `vague_points`.
    #[serde(default, skip_serializing_if = "Guard::is_default")]
    pub vague: Guard,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueBand {
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    pub points: i32,
    /// `false`: CTPAT credits never offset these points (see [`Guard`]).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub creditable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_action: Option<Action>,
}

impl ValueBand {
    pub fn guard(&self) -> Guard {
        Guard {
            creditable: self.creditable,
            min_action: self.min_action,
        }
    }
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
    /// Credit treatment of `missing_points`.
    #[serde(default, skip_serializing_if = "Guard::is_default")]
    pub missing: Guard,
    /// Credit treatment of `not_high_security_points`.
    #[serde(default, skip_serializing_if = "Guard::is_default")]
    pub not_high_security: Guard,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filing {
    /// Minimum minutes between `filed_at` and `estimated_arrival`, by mode.
    pub min_lead_minutes: PerMode<u32>,
    pub late_points: i32,
    /// Credit treatment of `late_points`.
    #[serde(default, skip_serializing_if = "Guard::is_default")]
    pub late: Guard,
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
    /// Credit treatment of `missing_importer_points`.
    #[serde(default, skip_serializing_if = "Guard::is_default")]
    pub missing_importer: Guard,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watchlist {
    /// The least severe action a hit forces; must be an examination.
    pub action: Action,
    pub points: i32,
    /// `false`: CTPAT credits never offset the hits' points (their floor is `action`, forced anyway).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub creditable: bool,
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
    /// Most credit (points) one manifest's partners earn together; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_cap: Option<i32>,
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

/// The `[plausibility]` section: per commodity line, the largest weight, value, quantity and value per kg
/// that can be real. A manifest beyond any of them is dead-lettered (`bad_value`), not scored: rules that
/// compare such numbers would compare nonsense. A line declaring a positive value at zero weight is scored
/// instead (`commodity.zero_weight`). Every key has a default (these are the values of
/// `config/policy.toml`); the defaults are part of the policy format and must not change, since a policy
/// that relies on them has the same version hash before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plausibility {
    /// Largest net weight of one commodity line, kg.
    #[serde(default = "Plausibility::default_max_weight_kg")]
    pub max_weight_kg: f64,
    /// Largest declared value of one commodity line, USD.
    #[serde(default = "Plausibility::default_max_value_usd")]
    pub max_value_usd: f64,
    /// Largest quantity of one commodity line, in its unit.
    #[serde(default = "Plausibility::default_max_quantity")]
    pub max_quantity: f64,
    /// Largest declared value per kilogram of one line (USD/kg, for lines with a positive weight).
    #[serde(default = "Plausibility::default_max_value_per_kg")]
    pub max_value_per_kg: f64,
    /// Points for a shipment with a line that declares a positive value at zero weight.
    #[serde(default = "Plausibility::default_zero_weight_points")]
    pub zero_weight_points: i32,
    /// Credit treatment of `zero_weight_points`.
    #[serde(default, skip_serializing_if = "Guard::is_default")]
    pub zero_weight: Guard,
}

impl Plausibility {
    /// 500 000 t: above the deadweight of the largest ore carriers (~400 000 t), so above any one line.
    fn default_max_weight_kg() -> f64 {
        500_000_000.0
    }
    /// USD 10 billion: above the price of the most expensive single things imported (ships, aircraft).
    fn default_max_value_usd() -> f64 {
        10_000_000_000.0
    }
    /// Ten billion units (pieces, grams, litres) in one line.
    fn default_max_quantity() -> f64 {
        10_000_000_000.0
    }
    /// USD 100 million per kg: above cut diamonds and the rarest pharmaceuticals.
    fn default_max_value_per_kg() -> f64 {
        100_000_000.0
    }
    /// Like the strongest `commodities.value_per_kg` bands: a misdeclaration indicator, not proof.
    fn default_zero_weight_points() -> i32 {
        30
    }
    pub fn is_default(&self) -> bool {
        *self == Plausibility::default()
    }
}

impl Default for Plausibility {
    fn default() -> Self {
        Plausibility {
            max_weight_kg: Plausibility::default_max_weight_kg(),
            max_value_usd: Plausibility::default_max_value_usd(),
            max_quantity: Plausibility::default_max_quantity(),
            max_value_per_kg: Plausibility::default_max_value_per_kg(),
            zero_weight_points: Plausibility::default_zero_weight_points(),
            zero_weight: Guard::default(),
        }
    }
}

impl PolicyDoc {
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

/// A chapter key of the commodity tables (`"01"`..`"99"`).
pub(crate) fn parse_chapter(key: &str) -> Option<u8> {
    (key.len() == 2 && key.bytes().all(|b| b.is_ascii_digit()))
        .then(|| key.parse::<u8>().ok())
        .flatten()
        .filter(|c| *c >= 1)
}

/// A heading key of the commodity tables (`"0100"`..`"9999"`).
pub(crate) fn parse_heading(key: &str) -> Option<u16> {
    (key.len() == 4 && key.bytes().all(|b| b.is_ascii_digit()))
        .then(|| key.parse::<u16>().ok())
        .flatten()
        .filter(|h| *h >= 100)
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
pub(crate) fn normalize_into(name: &str, mut push: impl FnMut(u8)) {
    normalize_while(name, |b| {
        push(b);
        true
    });
}

/// The rules of [`normalize_name`], once: pushes the normalised bytes until `push` returns false.
#[inline]
fn normalize_while(name: &str, mut push: impl FnMut(u8) -> bool) {
    let (mut gap, mut started) = (false, false);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() {
            if gap && started && !push(b' ') {
                return;
            }
            gap = false;
            started = true;
            if !push(b.to_ascii_uppercase()) {
                return;
            }
        } else {
            gap = true;
        }
    }
}

/// Each byte as [`normalize_name`] keeps it: an ASCII letter or digit upper-cased, any other byte 0.
static KEPT: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() {
            t[b] = c.to_ascii_uppercase();
        }
        b += 1;
    }
    t
};

/// [`normalized_prefix`]`(name, 2)`, the watch list's first filter: a name that starts with two ASCII
/// letters or digits (most do) is read as those two bytes, any other the long way.
#[inline]
pub(crate) fn normalized_head(name: &str) -> u16 {
    if let [a, b, ..] = name.as_bytes() {
        let (a, b) = (KEPT[usize::from(*a)], KEPT[usize::from(*b)]);
        if a != 0 && b != 0 {
            return u16::from(a) | u16::from(b) << 8;
        }
    }
    normalized_prefix(name, 2) as u16
}

/// The first `n` (at most 8) bytes of a name's normalisation ([`normalize_name`]) as a little-endian number,
/// zero-padded when shorter: equal normalisations have equal prefixes, so a name whose prefix is no listed
/// name's is not listed — known after reading at most `n` of its letters, digits or gaps, where the full
/// comparison reads all of it.
#[inline]
pub(crate) fn normalized_prefix(name: &str, n: u32) -> u64 {
    debug_assert!((1..=8).contains(&n));
    let (mut out, mut shift) = (0u64, 0u32);
    normalize_while(name, |b| {
        out |= u64::from(b) << shift;
        shift += 8;
        shift < 8 * n
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `KEPT` (read by the watch list's inline head check) states `normalize_while`'s byte rule again;
    /// this holds the two together for every byte.
    #[test]
    fn names_keep_ascii_letters_and_digits_upper_cased_with_one_space_per_gap() {
        for b in 0..=255u8 {
            let want = if b.is_ascii_alphanumeric() {
                b.to_ascii_uppercase()
            } else {
                0
            };
            assert_eq!(KEPT[usize::from(b)], want, "byte {b}");
            let one = (b as char).to_string();
            if b.is_ascii() {
                let normal = normalize_name(&one);
                assert_eq!(
                    normal.as_bytes(),
                    &[want][..usize::from(want != 0)],
                    "byte {b}"
                );
            }
        }
        assert_eq!(normalize_name("  acme, inc. "), "ACME INC");
        assert_eq!(normalize_name("Ünï-Corp 7"), "N CORP 7");
        assert_eq!(normalize_name("!!!"), "");
    }
}
