//! Scoring: resolve every party against the partner table, apply the compiled policy's rules, and produce
//! the [`Decision`] with its reasons, band, action, FAST eligibility, front-of-line and random selection.
//!
//! Shipments are scored separately; the conveyance carries the riskiest shipment's score plus the
//! conveyance-level rules (a conveyance is examined if any of its shipments is). The reasons listed on the
//! decision are exactly the ones summed into `score`.

use std::sync::Arc;

use smallvec::SmallVec;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::codes::{Country, Hts};
use crate::decision::{Action, Band, ExamResult, Recalled, Role};
use crate::decision::{
    Decision, Detail, FastCondition, FastMissing, Lane, PartyView, Reason, Rule,
};
use crate::decision_json::{write_reason, DetailRef, Fields};
use crate::history::{HistoryAsOf, Watermark};
use crate::model::Line;
use crate::policy::{
    settle, Border, CompiledBand, CompiledPolicy, HistorySection, Ledger, ModelRule,
};
use crate::resumption::Resumptions;
use crate::table::{FrozenTable, PartnerTable, Partners, Standing};
use crate::time::{Date, Timestamp};
use crate::wire::{
    parse_manifest, BadInput, ErrorKind, Limits, Manifest, Mode, Partner, SealAffixer, SealClass,
    Str,
};

/// Parses, validates and decides one manifest record: the whole core path for one input, and the one entry
/// point every adapter uses. Returns the parsed manifest with its decision (the service keeps recent
/// manifests for what-if replays), or the dead-letter reason.
///
/// `lookups` is what the decision is judged against besides the manifest and the policy: the partner
/// table, and the party history as of a watermark (a `&PartnerTable` alone means no history).
pub fn process<'a>(
    policy: &CompiledPolicy,
    lookups: impl Into<Lookups<'a>>,
    bytes: &[u8],
    limits: &Limits,
) -> Result<(Manifest, Decision), BadInput> {
    process_with(policy, lookups, bytes, limits, &Resumptions::NONE)
}

/// [`process`] with the business-resumption declarations in force (the service's pipelines pass them;
/// [`process`] is this with none): a decision at a port whose declaration covers the manifest's `filed_at`
/// carries a `priority` (see [`crate::resumption`]).
pub fn process_with<'a>(
    policy: &CompiledPolicy,
    lookups: impl Into<Lookups<'a>>,
    bytes: &[u8],
    limits: &Limits,
    resumptions: &Resumptions,
) -> Result<(Manifest, Decision), BadInput> {
    let m = parse_manifest(bytes, limits)?;
    check_port(policy, &m)?;
    let d = decide_with(policy, lookups, &m, resumptions);
    Ok((m, d))
}

/// [`process_with`] with the decision written straight to JSON: appends to `out` the bytes of the decision
/// [`process_with`] gives, stamped `decided_at` (its [`Decision::write_json`]), without building the
/// [`Decision`] (see [`Evaluation::write_json`]) — for adapters that only emit the JSON. Returns the parsed
/// manifest with the decision's [`Verdict`]; a dead letter leaves `out` as it was.
pub fn process_json<'a>(
    policy: &CompiledPolicy,
    lookups: impl Into<Lookups<'a>>,
    bytes: &[u8],
    limits: &Limits,
    resumptions: &Resumptions,
    decided_at: Option<&Timestamp>,
    out: &mut Vec<u8>,
) -> Result<(Manifest, Verdict), BadInput> {
    let m = parse_manifest(bytes, limits)?;
    check_port(policy, &m)?;
    let v = write_decision(policy, lookups.into(), &m, resumptions, decided_at, out);
    Ok((m, v))
}

/// The decision on a parsed manifest written as JSON (see [`process_json`]). Its own function so that the
/// party views and the evaluation are built in its frame and read there: returned to the caller as a pair
/// ([`resolve_and_evaluate`]) they were copied out whole (~1.1 KB a manifest), and so they are when handed
/// to a closure by value (measured). The same three steps as `resolve_and_evaluate`, which the path that
/// builds a `Decision` keeps.
fn write_decision(
    policy: &CompiledPolicy,
    l: Lookups<'_>,
    m: &Manifest,
    resumptions: &Resumptions,
    decided_at: Option<&Timestamp>,
    out: &mut Vec<u8>,
) -> Verdict {
    let mut parties = SmallVec::new();
    resolve_into(policy, l.partners, m, ShipmentIds::ByIndex, &mut parties);
    let facts: PartyFacts = parties.iter().map(PartyFact::from).collect();
    let mut hits = SmallVec::new();
    let v = evaluate_into(
        policy,
        m,
        &facts,
        l.history,
        &mut Screen::default(),
        &mut hits,
    );
    write_evaluation(
        v,
        &hits,
        policy,
        m,
        &parties,
        l.history,
        resumptions,
        decided_at,
        out,
    )
}

/// The tables a decision reads: CTPAT partners and, optionally, the party history as of a watermark.
#[derive(Debug, Clone, Copy)]
pub struct Lookups<'a> {
    pub partners: Partners<'a>,
    /// `None`: no outcome is known (a policy with `[history]` then decides with an empty history, and says
    /// so: `history_as_of` is `{}`).
    pub history: Option<HistoryAsOf<'a>>,
}

impl<'a> Lookups<'a> {
    pub fn new(partners: impl Into<Partners<'a>>, history: Option<HistoryAsOf<'a>>) -> Lookups<'a> {
        Lookups {
            partners: partners.into(),
            history,
        }
    }
}

impl<'a> From<&'a Arc<PartnerTable>> for Lookups<'a> {
    fn from(partners: &'a Arc<PartnerTable>) -> Self {
        Lookups::from(&**partners)
    }
}

impl<'a> From<&'a PartnerTable> for Lookups<'a> {
    fn from(partners: &'a PartnerTable) -> Self {
        Lookups::new(partners, None)
    }
}

impl<'a> From<&'a FrozenTable> for Lookups<'a> {
    fn from(partners: &'a FrozenTable) -> Self {
        Lookups::new(partners, None)
    }
}

/// The checks of a parsed manifest that need the policy, run by every adapter before deciding. A manifest
/// whose port the policy does not know cannot be laned (`unknown_port`); one whose declared quantities are
/// beyond the policy's `[plausibility]` limits cannot be scored meaningfully (`bad_value`, see
/// [`check_plausible`]). Both are bad input, not a guess.
pub fn check_port(policy: &CompiledPolicy, m: &Manifest) -> Result<(), BadInput> {
    match policy.port(m.port_of_entry) {
        Some(_) => check_plausible(policy, m),
        None => Err(BadInput::new(
            ErrorKind::UnknownPort,
            format!(
                "port_of_entry {} is not in the policy's port table",
                m.port_of_entry
            ),
        )),
    }
}

/// Every commodity line's weight, value, quantity and value per kg within the policy's `[plausibility]`
/// limits (a limit itself is accepted). The first line beyond one is a `bad_value` naming the field, the
/// number and the limit.
pub fn check_plausible(policy: &CompiledPolicy, m: &Manifest) -> Result<(), BadInput> {
    let lim = &policy.plausibility;
    for (i, s) in m.shipments.iter().enumerate() {
        for (j, c) in s.commodities.iter().enumerate() {
            let beyond = |field: &str, v: f64, key: &str, max: f64| {
                Err(BadInput::new(
                    ErrorKind::BadValue,
                    format!(
                        "shipments[{i}].commodities[{j}].{field} is {}, above the policy's plausibility.{key} ({})",
                        Num(v),
                        Num(max)
                    ),
                ))
            };
            if let Some(w) = c.weight_kg.filter(|w| *w > lim.max_weight_kg) {
                return beyond("weight_kg", w, "max_weight_kg", lim.max_weight_kg);
            }
            if let Some(v) = c.value_usd.filter(|v| *v > lim.max_value_usd) {
                return beyond("value_usd", v, "max_value_usd", lim.max_value_usd);
            }
            if let Some(q) = c.quantity.filter(|q| *q > lim.max_quantity) {
                return beyond("quantity", q, "max_quantity", lim.max_quantity);
            }
            if let (Some(v), Some(w)) = (c.value_usd, c.weight_kg) {
                if w > 0.0 && v / w > lim.max_value_per_kg {
                    return Err(BadInput::new(
                        ErrorKind::BadValue,
                        format!(
                            "shipments[{i}].commodities[{j}] declares {} USD/kg (value_usd {} / weight_kg {}), above the policy's plausibility.max_value_per_kg ({})",
                            Num(v / w),
                            Num(v),
                            Num(w),
                            Num(lim.max_value_per_kg)
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A number in a message: plain below 10^15, in exponent form above (`1e308`, not 309 digits).
struct Num(f64);
impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.abs() < 1e15 {
            write!(f, "{}", self.0)
        } else {
            write!(f, "{:e}", self.0)
        }
    }
}

/// Decides a parsed manifest. Infallible: every manifest that parsed gets a decision.
pub fn decide<'a>(
    policy: &CompiledPolicy,
    lookups: impl Into<Lookups<'a>>,
    m: &Manifest,
) -> Decision {
    decide_with(policy, lookups, m, &Resumptions::NONE)
}

/// [`decide`] with the business-resumption declarations in force: the decision carries a `priority` when
/// one applies (see [`process_with`]).
#[inline]
pub fn decide_with<'a>(
    policy: &CompiledPolicy,
    lookups: impl Into<Lookups<'a>>,
    m: &Manifest,
    resumptions: &Resumptions,
) -> Decision {
    let l = lookups.into();
    let (parties, e) = resolve_and_evaluate(policy, l, m);
    e.into_decision_with(policy, m, parties, l.history, resumptions)
}

/// The party views and the evaluation of a parsed manifest: what a `Decision` is built from ([`decide_with`];
/// the JSON path writes from them in one frame instead, [`write_decision`]).
#[inline]
fn resolve_and_evaluate<'a>(
    policy: &'a CompiledPolicy,
    l: Lookups<'_>,
    m: &'a Manifest,
) -> (SmallVec<[PartyView; 6]>, Evaluation<'a>) {
    let parties = resolve(policy, l.partners, m);
    let facts: PartyFacts = parties.iter().map(PartyFact::from).collect();
    let e = evaluate(policy, m, &facts, l.history);
    (parties, e)
}

/// Decides a parsed manifest without its explanation: the [`Verdict`] (action, lane, band, score, the
/// flags) that [`decide`] would give, with no reason, party view or id built — what tallies and the what-if
/// replay need. The same rule evaluation as [`decide`] (see [`evaluate`]), so the two always agree.
pub fn verdict<'a>(
    policy: &CompiledPolicy,
    lookups: impl Into<Lookups<'a>>,
    m: &Manifest,
) -> Verdict {
    let l = lookups.into();
    let parties = resolve_facts(policy, l.partners, m);
    verdict_of(policy, m, &parties, l.history)
}

/// [`evaluate`]'s verdict alone, for a manifest whose parties are resolved: the same rules and hits,
/// kept in this frame and dropped here instead of returned (see `evaluate_into`).
pub fn verdict_of(
    policy: &CompiledPolicy,
    m: &Manifest,
    parties: &[PartyFact],
    history: Option<HistoryAsOf<'_>>,
) -> Verdict {
    verdict_screened(policy, m, parties, history, &mut Screen::default())
}

/// [`verdict_of`] reading or recording the manifest's matches in `screen` (see [`evaluate_screened`]).
pub fn verdict_screened(
    policy: &CompiledPolicy,
    m: &Manifest,
    parties: &[PartyFact],
    history: Option<HistoryAsOf<'_>>,
    screen: &mut Screen,
) -> Verdict {
    let mut hits = SmallVec::new();
    evaluate_into(policy, m, parties, history, screen, &mut hits)
}

/// Calls `f` on every party joined against the partner table, in the order of a decision's `parties`:
/// the carrier, then per shipment its importer, manufacturer, shipper and broker.
#[inline]
fn each_party<'m>(m: &'m Manifest, mut f: impl FnMut(Role, &'m Str, Option<(&'m Str, u16)>)) {
    if let Some(c) = &m.carrier {
        f(Role::Carrier, &c.scac, None);
    }
    for (i, s) in m.shipments.iter().enumerate() {
        let sh = Some((&s.shipment_id, i as u16));
        for (role, party) in [
            (Role::Importer, &s.importer),
            (Role::Manufacturer, &s.manufacturer),
            (Role::Shipper, &s.shipper),
            (Role::Broker, &s.broker),
        ] {
            if let Some(p) = party {
                f(role, &p.id, sh);
            }
        }
    }
}

/// How many parties [`each_party`] calls its function on.
#[inline]
fn party_count(m: &Manifest) -> usize {
    let mut n = 0;
    each_party(m, |_, _, _| n += 1);
    n
}

/// Joins one party's `id` by its role's identifier kinds and accepted entities, judging standing on `filed`,
/// and hands the partner to `f` (see [`Partners::resolve_with`]).
#[inline]
fn join_party<R>(
    policy: &CompiledPolicy,
    table: Partners<'_>,
    role: Role,
    id: &str,
    filed: Date,
    f: impl FnMut(&Partner, Standing, bool) -> R,
) -> Option<R> {
    table.resolve_with(
        &policy.join[role.index()].kinds,
        |e| policy.accepts(role, e),
        id,
        filed,
        policy.revalidation_days(),
        f,
    )
}

/// Joins every party of the manifest against the partner table, judging standing at `filed_at`.
pub fn resolve<'a>(
    policy: &CompiledPolicy,
    table: impl Into<Partners<'a>>,
    m: &Manifest,
) -> SmallVec<[PartyView; 6]> {
    let mut out = SmallVec::new();
    resolve_into(policy, table.into(), m, ShipmentIds::Shared, &mut out);
    out
}

/// Whether [`resolve_into`]'s views carry their shipment's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShipmentIds {
    /// Each view of a shipment holds its id, one `Arc` shared by them (a `Decision`'s views, which
    /// outlive the manifest).
    Shared,
    /// The views hold only the shipment's index (`shipment` is `None`); whoever writes them reads the id
    /// from the manifest. The JSON path: no allocation, no reference counts.
    ByIndex,
}

/// [`resolve`] into `out` (empty), so that the JSON path's views stay in the frame that reads them
/// (returned, the 632 bytes of inline views were copied once more); `ids` says whether the views carry
/// their shipment's id.
fn resolve_into(
    policy: &CompiledPolicy,
    table: Partners<'_>,
    m: &Manifest,
    ids: ShipmentIds,
    out: &mut SmallVec<[PartyView; 6]>,
) {
    debug_assert!(out.is_empty());
    let filed = m.filed_at.date();
    // Exactly the views to come: more than fit inline is one allocation of that size (a manifest of two
    // shipments has nine parties), not growth to 8 then 16 slots (1.7 KB, past the allocator's fast path).
    // One shipment has at most five parties, inline: not counted.
    if m.shipments.len() > 1 {
        out.reserve_exact(party_count(m));
    }
    // The current shipment's shared id: one allocation a shipment, cloned into each of its views.
    let mut shared: Option<(u16, Arc<str>)> = None;
    each_party(m, |role, id, shipment| {
        let shipment_index = shipment.map(|s| s.1);
        let shipment = match (ids, shipment) {
            (ShipmentIds::ByIndex, _) | (_, None) => None,
            (ShipmentIds::Shared, Some((sid, i))) => Some(match &shared {
                Some((at, s)) if *at == i => s.clone(),
                _ => shared.insert((i, Arc::from(sid.as_str()))).1.clone(),
            }),
        };
        // The view is written into `out` under the map's guard, straight from the partner record.
        let joined = join_party(policy, table, role, id, filed, |p, standing, lapsed| {
            out.push(PartyView {
                role,
                id: id.clone(),
                shipment: shipment.clone(),
                partner_id: Some(p.partner_id.clone()),
                status: Some(p.status),
                tier: p.tier,
                standing,
                lapsed,
                mra_program: p.mra_program.clone(),
                shipment_index,
            })
        });
        if joined.is_none() {
            out.push(PartyView {
                role,
                id: id.clone(),
                shipment,
                partner_id: None,
                status: None,
                tier: None,
                standing: Standing::None,
                lapsed: false,
                mra_program: None,
                shipment_index,
            });
        }
    });
    debug_assert_eq!(out.len(), party_count(m));
}

/// A party as the rules read it: its role, shipment and standing, no id copied. [`resolve_facts`] gives
/// them in the order of [`resolve`]'s party views (index `i` of one is index `i` of the other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartyFact {
    pub role: Role,
    /// Index of the shipment in the manifest; `None` for the carrier.
    pub shipment_index: Option<u16>,
    pub standing: Standing,
    /// Joined to a partner (only a joined party earns a CTPAT reason).
    pub joined: bool,
}

impl From<&PartyView> for PartyFact {
    #[inline]
    fn from(p: &PartyView) -> PartyFact {
        PartyFact {
            role: p.role,
            shipment_index: p.shipment_index,
            standing: p.standing,
            joined: p.partner_id.is_some(),
        }
    }
}

/// The party facts of a manifest, inline for the usual party counts.
pub type PartyFacts = SmallVec<[PartyFact; 8]>;

/// [`resolve`] without the party views: the same joins, judged the same way, copying no id.
pub fn resolve_facts<'a>(
    policy: &CompiledPolicy,
    table: impl Into<Partners<'a>>,
    m: &Manifest,
) -> PartyFacts {
    let table = table.into();
    let filed = m.filed_at.date();
    let mut out = PartyFacts::new();
    each_party(m, |role, id, shipment| {
        let standing = join_party(policy, table, role, id, filed, |_, standing, _| standing);
        out.push(PartyFact {
            role,
            shipment_index: shipment.map(|s| s.1),
            standing: standing.unwrap_or(Standing::None),
            joined: standing.is_some(),
        });
    });
    out
}

// ---------------------------------------------------------------------------------------------------------
// Rule evaluation into a scratch of hits: rule, points, floor, shipment index and the facts behind the
// reason as copies of numbers or references into the manifest and the policy. Nothing is cloned, counted or
// allocated here; [`Evaluation::into_decision`] builds the reasons from the hits only when a decision is
// wanted.

/// The outcome of a manifest without its explanation. Every field equals the [`Decision`] field of the same
/// name (`history_points`: a `history.discrepancy` or `history.seizure` reason added points).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub score: i32,
    pub band: Band,
    pub action: Action,
    pub lane: Lane,
    pub front_of_line: bool,
    pub random_exam: bool,
    pub watchlist_hit: bool,
    pub fast_missing: FastMissing,
    pub importer_standing: Standing,
    pub history_points: bool,
}

impl Verdict {
    /// The decision's `priority` under the business-resumption declarations in force (see
    /// [`crate::resumption`]).
    pub fn priority(&self, m: &Manifest, resumptions: &Resumptions) -> Option<u8> {
        resumptions
            .applies(m.port_of_entry, &m.filed_at)
            .map(|_| crate::resumption::priority(self.importer_standing))
    }
}

/// One rule that fired: a reason before its text and ids exist.
#[derive(Debug, Clone)]
struct Hit<'a> {
    rule: Rule,
    points: i32,
    floor: Option<Action>,
    /// Index of the shipment the rule fired on; `None` for conveyance-level rules.
    shipment: Option<u16>,
    fact: Fact<'a>,
}

/// The facts of a [`Hit`], borrowed from the manifest and the policy; [`Fact::detail`] makes the reason's
/// [`Detail`] of them.
#[derive(Debug, Clone)]
enum Fact<'a> {
    Country {
        country: Country,
        why: &'a Arc<str>,
    },
    Circuitous {
        transits: usize,
    },
    Chapter {
        chapter: u8,
        why: &'a Arc<str>,
    },
    Heading {
        heading: u16,
        why: &'a Arc<str>,
    },
    Vague {
        term: &'a Arc<str>,
    },
    /// `band`: the chapter's band in the policy (its `min` and `max` are the reason's).
    ValuePerKg {
        chapter: u8,
        value_per_kg: f64,
        band: &'a CompiledBand,
    },
    ZeroWeight {
        hts: Hts,
        value_usd: f64,
    },
    SealMissing {
        equipment: &'a Str,
    },
    SealClass {
        equipment: &'a Str,
        seal: &'a Str,
    },
    Late {
        lead_minutes: i64,
        required: u32,
    },
    ImporterMissing,
    Watch {
        role: Role,
        value: &'a Str,
        why: &'a Arc<str>,
    },
    /// The party at this index of the decision's parties.
    Ctpat {
        party: usize,
    },
    Random {
        mode: Mode,
        class: RandomClass,
        rate: f64,
    },
    /// The riskiest commodity line of a shipment and its probability; the attribution is computed only
    /// when the reason is built or written.
    Model {
        rule: &'a ModelRule,
        /// The shipment's index in the manifest and the line's in the shipment.
        shipment: u16,
        line: u32,
        probability: f64,
    },
    History {
        result: ExamResult,
        count: u32,
        window_days: u32,
        latest: Box<Recalled>,
    },
    CreditCap {
        credits: i32,
        cap: i32,
    },
    CreditUnused {
        allowed: i32,
        creditable: i32,
        non_creditable: i32,
    },
}

type Hits<'a> = SmallVec<[Hit<'a>; 8]>;

// Every rule pushes a hit and every evaluation's hits are read back: a fact borrows what is larger than
// a word (the watch-list value as the manifest's string, a value band as the policy's, a model line by
// its shipment's index), so a hit is 40 bytes, not 56.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Hit<'static>>() == 40);

/// The importer class a random-compliance draw was made for (its reason names it).
#[derive(Debug, Clone, Copy)]
enum RandomClass {
    Validated,
    Certified,
    NonPartner,
}

impl RandomClass {
    fn as_str(self) -> &'static str {
        match self {
            RandomClass::Validated => "validated",
            RandomClass::Certified => "certified",
            RandomClass::NonPartner => "non_partner",
        }
    }
}

/// One manifest's watch-list and vague-term matches, kept between evaluations: they depend only on the
/// tables [`CompiledPolicy::screening_key`] hashes, so a what-if comparison records them while deciding
/// under the baseline and reuses them for the candidate instead of normalising every name and scanning
/// every description again. A screen recorded under one policy is read only under a policy with the same
/// key (any other evaluates as if it had none), and only for the manifest it was recorded on.
#[derive(Debug, Default)]
pub struct Screen {
    state: ScreenState,
    key: u64,
    carrier: bool,
    drivers: SmallVec<[bool; 4]>,
    shipments: SmallVec<[ShipmentScreen; 4]>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ScreenState {
    /// Neither recorded nor read.
    #[default]
    Off,
    /// The next evaluation records its matches.
    Recording,
    /// Holds the matches of one evaluation.
    Recorded,
}

#[derive(Debug, Default, Clone, Copy)]
struct ShipmentScreen {
    /// Bit `i`: the shipment's party in slot `i` of [`SHIPMENT_PARTIES`] is listed.
    watched: u8,
    /// The first vague term found in the shipment's descriptions (its index in
    /// [`crate::policy::terms::WholeWords::terms`]).
    vague: Option<u32>,
}

/// The shipment parties screened against the watch list, in the order their hits are listed.
const SHIPMENT_PARTIES: [Role; 5] = [
    Role::Importer,
    Role::Consignee,
    Role::Shipper,
    Role::Manufacturer,
    Role::Broker,
];

impl Screen {
    /// A screen that records the matches of the evaluation it is next passed to.
    pub fn recording() -> Screen {
        Screen {
            state: ScreenState::Recording,
            ..Screen::default()
        }
    }

    /// Makes the screen readable for `policy` on `m`: a recording one is sized for `m`; a recorded one
    /// is read only if `policy` matches like the one it was recorded under.
    fn start(&mut self, policy: &CompiledPolicy, m: &Manifest) -> bool {
        match self.state {
            ScreenState::Off => false,
            ScreenState::Recording => {
                self.key = policy.screening_key;
                self.drivers.clear();
                self.drivers.resize(m.drivers.len(), false);
                self.shipments.clear();
                self.shipments
                    .resize(m.shipments.len(), ShipmentScreen::default());
                false
            }
            ScreenState::Recorded => {
                self.key == policy.screening_key
                    && self.drivers.len() == m.drivers.len()
                    && self.shipments.len() == m.shipments.len()
            }
        }
    }

    fn finish(&mut self) {
        if self.state == ScreenState::Recording {
            self.state = ScreenState::Recorded;
        }
    }

    fn recording_now(&self) -> bool {
        self.state == ScreenState::Recording
    }
}

/// A manifest's rules evaluated: the [`Verdict`] and the hits its reasons are built from.
pub struct Evaluation<'a> {
    pub verdict: Verdict,
    /// In the order of the decision's reasons.
    hits: Hits<'a>,
}

impl<'a> Evaluation<'a> {
    /// The full decision: the verdict with its reasons, the party views (the ones `parties` of
    /// [`evaluate`] came from) and the versions. `history` is the one the evaluation read.
    pub fn into_decision(
        self,
        policy: &CompiledPolicy,
        m: &Manifest,
        parties: SmallVec<[PartyView; 6]>,
        history: Option<HistoryAsOf<'_>>,
    ) -> Decision {
        self.into_decision_with(policy, m, parties, history, &Resumptions::NONE)
    }

    /// [`Self::into_decision`] with the business-resumption declarations in force: the decision's
    /// `priority` is set when one applies to the manifest (see [`crate::resumption`]).
    fn into_decision_with(
        self,
        policy: &CompiledPolicy,
        m: &Manifest,
        parties: SmallVec<[PartyView; 6]>,
        history: Option<HistoryAsOf<'_>>,
        resumptions: &Resumptions,
    ) -> Decision {
        let v = self.verdict;
        let reasons = self
            .hits
            .into_iter()
            .map(|h| h.reason(m, &parties))
            .collect();
        Decision {
            manifest_id: m.manifest_id.clone(),
            revision: m.revision,
            port_of_entry: m.port_of_entry,
            mode: m.mode,
            lane: v.lane,
            action: v.action,
            front_of_line: v.front_of_line,
            random_exam: v.random_exam,
            watchlist_hit: v.watchlist_hit,
            score: v.score,
            band: v.band,
            reasons,
            parties,
            fast_missing: v.fast_missing,
            importer_standing: v.importer_standing,
            policy_version: policy.version.clone(),
            model_version: policy.model.as_ref().map(|r| r.model.version.clone()),
            priority: v.priority(m, resumptions),
            history_as_of: policy
                .doc
                .history
                .as_ref()
                .map(|_| history.map_or_else(no_history, |h| h.as_of.clone())),
            decided_at: None,
        }
    }
}

/// Appends the JSON of the decision [`Evaluation::into_decision_with`] would build from `v` and `hits`,
/// stamped `decided_at`, to `out` — the same bytes as that decision's [`Decision::write_json`] (both go
/// through one writer) — without building it: each reason is written from its hit's facts where they are
/// (a `DetailRef`, no `Reason` built), and nothing of the policy is cloned (its version and the history's
/// watermark are written from where they are). Returns `v`.
#[allow(clippy::too_many_arguments)]
fn write_evaluation(
    v: Verdict,
    hits: &[Hit<'_>],
    policy: &CompiledPolicy,
    m: &Manifest,
    parties: &[PartyView],
    history: Option<HistoryAsOf<'_>>,
    resumptions: &Resumptions,
    decided_at: Option<&Timestamp>,
    out: &mut Vec<u8>,
) -> Verdict {
    // No history read: the empty watermark (`{}`) by reference, not an `Arc` whose reference count
    // every scoring thread would bump.
    static EMPTY: Watermark = Watermark(std::collections::BTreeMap::new());
    let history_as_of = match (&policy.doc.history, history) {
        (None, _) => None,
        (Some(_), Some(h)) => Some(&**h.as_of),
        (Some(_), None) => Some(&EMPTY),
    };
    let fields = Fields {
        manifest_id: &m.manifest_id,
        revision: m.revision,
        port_of_entry: m.port_of_entry,
        mode: m.mode,
        lane: v.lane,
        action: v.action,
        front_of_line: v.front_of_line,
        random_exam: v.random_exam,
        watchlist_hit: v.watchlist_hit,
        score: v.score,
        band: v.band,
        parties,
        shipments: &m.shipments,
        fast_missing: v.fast_missing,
        importer_standing: v.importer_standing,
        policy_version: &policy.version,
        model_version: policy.model.as_ref().map(|r| &*r.model.version),
        priority: v.priority(m, resumptions),
        history_as_of,
        decided_at,
    };
    fields.write_json(out, |out| {
        for (i, h) in hits.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Written from the hit's facts where they are: no `Reason` (nor its clones) built.
            write_reason(
                out,
                h.rule,
                h.points,
                h.shipment
                    .map(|i| &*m.shipments[usize::from(i)].shipment_id),
                h.floor,
                &h.fact.borrowed(m, parties),
            );
        }
    });
    v
}

impl Hit<'_> {
    /// The decision's reason for this hit.
    #[inline]
    fn reason(self, m: &Manifest, parties: &[PartyView]) -> Reason {
        Reason {
            rule: self.rule,
            points: self.points,
            shipment: self.shipment.map(|i| shipment_id(m, parties, i)),
            floor: self.floor,
            detail: self.fact.detail(m, parties),
        }
    }
}

/// The id shipment `i`'s party views share, if it has any party.
fn shipment_party_id(parties: &[PartyView], i: u16) -> Option<&Arc<str>> {
    parties
        .iter()
        .find(|p| p.shipment_index == Some(i))
        .and_then(|p| p.shipment.as_ref())
}

/// Shipment `i`'s shared id: the one its party views hold, or a new one for a shipment without parties.
fn shipment_id(m: &Manifest, parties: &[PartyView], i: u16) -> Arc<str> {
    shipment_party_id(parties, i)
        .cloned()
        .unwrap_or_else(|| Arc::from(m.shipments[i as usize].shipment_id.as_str()))
}

impl Fact<'_> {
    /// The reason's detail as [`Fact::detail`] gives it, borrowed from the fact, the manifest and the
    /// party views (the model's attribution is computed here, as there).
    fn borrowed<'a>(&'a self, m: &Manifest, parties: &'a [PartyView]) -> DetailRef<'a> {
        match self {
            Fact::Country { country, why } => DetailRef::Country {
                country: *country,
                why,
            },
            Fact::Circuitous { transits } => DetailRef::Circuitous {
                transits: *transits,
            },
            Fact::Chapter { chapter, why } => DetailRef::Chapter {
                chapter: *chapter,
                why,
            },
            Fact::Heading { heading, why } => DetailRef::Heading {
                heading: *heading,
                why,
            },
            Fact::Vague { term } => DetailRef::Vague { term },
            Fact::ValuePerKg {
                chapter,
                value_per_kg,
                band,
            } => DetailRef::ValuePerKg {
                chapter: *chapter,
                value_per_kg: *value_per_kg,
                min: band.min,
                max: band.max,
            },
            Fact::ZeroWeight { hts, value_usd } => DetailRef::ZeroWeight {
                hts: *hts,
                value_usd: *value_usd,
            },
            Fact::SealMissing { equipment } => DetailRef::SealMissing { equipment },
            Fact::SealClass { equipment, seal } => DetailRef::SealClass { equipment, seal },
            Fact::Late {
                lead_minutes,
                required,
            } => DetailRef::Late {
                lead_minutes: *lead_minutes,
                required: *required,
            },
            Fact::ImporterMissing => DetailRef::ImporterMissing,
            Fact::Watch { role, value, why } => DetailRef::Watch {
                role: *role,
                value,
                why,
            },
            Fact::Ctpat { party } => {
                let p = &parties[*party];
                DetailRef::Ctpat {
                    role: p.role,
                    id: &p.id,
                    partner_id: p.partner_id.as_deref().unwrap_or_default(),
                    standing: p.standing,
                    lapsed: p.lapsed,
                    mra_program: p.mra_program.as_deref(),
                }
            }
            Fact::Random { mode, class, rate } => DetailRef::Random {
                mode: *mode,
                class: class.as_str(),
                rate: *rate,
            },
            Fact::Model {
                rule,
                shipment,
                line,
                probability,
            } => {
                let shipment = &m.shipments[usize::from(*shipment)];
                let commodity = &shipment.commodities[*line as usize];
                let (_, top) = rule.model.explain_line(&Line {
                    manifest: m,
                    shipment,
                    commodity,
                });
                DetailRef::Model {
                    probability: *probability,
                    hts: commodity.hts,
                    top,
                    info: &rule.model.info,
                }
            }
            Fact::History {
                result,
                count,
                window_days,
                latest,
            } => DetailRef::History {
                result: *result,
                count: *count,
                window_days: *window_days,
                latest,
            },
            Fact::CreditCap { credits, cap } => DetailRef::CreditCap {
                credits: *credits,
                cap: *cap,
            },
            Fact::CreditUnused {
                allowed,
                creditable,
                non_creditable,
            } => DetailRef::CreditUnused {
                allowed: *allowed,
                creditable: *creditable,
                non_creditable: *non_creditable,
            },
        }
    }

    /// The reason's detail, owned (for a built [`Decision`]).
    fn detail(&self, m: &Manifest, parties: &[PartyView]) -> Detail {
        self.borrowed(m, parties).to_detail()
    }
}

/// Pushes a hit and adds its points to the ledger (non-creditable when it has a floor).
#[inline]
fn push<'a>(
    out: &mut Hits<'a>,
    total: &mut Ledger,
    rule: Rule,
    points: i32,
    floor: Option<Action>,
    shipment: Option<u16>,
    fact: Fact<'a>,
) {
    total.add(points, floor.is_none());
    out.push(Hit {
        rule,
        points,
        floor,
        shipment,
        fact,
    });
}

/// CTPAT points for one party: a credit (negative) for certified, validated and MRA partners; a penalty
/// (positive) for suspended and removed ones.
#[inline]
fn ctpat_points(policy: &CompiledPolicy, role: Role, standing: Standing) -> i32 {
    let c = &policy.credits[role.index()];
    let p = &policy.doc.ctpat.penalties;
    match standing {
        Standing::Validated { tier: 3 } => -c.tier3,
        Standing::Validated { .. } => -c.validated,
        Standing::Certified => -c.certified,
        Standing::Mra => -c.mra,
        Standing::Suspended => p.suspended,
        Standing::Removed => p.removed,
        Standing::None | Standing::Applicant => 0,
    }
}

fn ctpat_hit(
    policy: &CompiledPolicy,
    index: usize,
    p: &PartyFact,
    out: &mut Hits<'_>,
    total: &mut Ledger,
) {
    let points = ctpat_points(policy, p.role, p.standing);
    if points == 0 || !p.joined {
        return;
    }
    total.ctpat(points);
    out.push(Hit {
        rule: Rule::Ctpat(p.role),
        points,
        floor: None,
        shipment: p.shipment_index,
        fact: Fact::Ctpat { party: index },
    });
}

/// A driver's identifier when the manifest names no FAST card: the empty string, which no watch list
/// holds.
static NO_CARD: Str = Str::const_new("");

/// Watch-list hits for a party: by identifier, then by normalised name.
#[allow(clippy::too_many_arguments)]
fn watch_party<'a>(
    policy: &'a CompiledPolicy,
    role: Role,
    id: &'a Str,
    name: Option<&'a Str>,
    shipment: Option<u16>,
    known: Option<bool>,
    out: &mut Hits<'a>,
    total: &mut Ledger,
) -> bool {
    if known == Some(false) {
        return false;
    }
    let points = policy.doc.watchlist.points;
    let floor = policy.watch_floor;
    if let Some(why) = policy.watched_id(id) {
        push(
            out,
            total,
            Rule::WatchlistId,
            points,
            floor,
            shipment,
            Fact::Watch {
                role,
                value: id,
                why,
            },
        );
        return true;
    }
    if let Some(name) = name {
        if let Some(why) = policy.watched_name(name) {
            push(
                out,
                total,
                Rule::WatchlistName,
                points,
                floor,
                shipment,
                Fact::Watch {
                    role,
                    value: name,
                    why,
                },
            );
            return true;
        }
    }
    false
}

/// The model rule's points on one shipment and its riskiest line with the probability, or `None` when
/// the probability reaches no band.
fn model_hit<'a>(rule: &'a ModelRule, manifest: &Manifest, index: u16) -> Option<(i32, Fact<'a>)> {
    let shipment = &manifest.shipments[usize::from(index)];
    let (line, probability) = rule.model.riskiest_line(manifest, shipment)?;
    debug_assert!(u32::try_from(line).is_ok());
    let points = rule.points(probability);
    if points == 0 {
        return None;
    }
    Some((
        points,
        Fact::Model {
            rule,
            shipment: index,
            // Exact: 2^32 lines would be over a terabyte of parsed commodities (272 bytes each).
            line: line as u32,
            probability,
        },
    ))
}

/// Scores one shipment into `out` and its watch-list and vague-term matches into `seen`; returns (its
/// points by credit treatment, watch-list hit, a seizure or discrepancy reason listed). `known`: those
/// matches, recorded under a policy that matches alike. (`seen` is an out-parameter: returned with the
/// rest, it was copied out of the return slot whether the caller records it or not, and that copy read, as
/// one 8-byte load, bytes just written by separate smaller stores — a stalled store-to-load forward, ~4 %
/// of `core/verdict`'s samples.)
#[allow(clippy::too_many_arguments)]
fn score_shipment<'a>(
    policy: &'a CompiledPolicy,
    m: &'a Manifest,
    index: usize,
    parties: &[PartyFact],
    history: Option<HistoryAsOf<'_>>,
    known: Option<ShipmentScreen>,
    out: &mut Hits<'a>,
    seen: &mut ShipmentScreen,
) -> (Ledger, bool, bool) {
    let s = &m.shipments[index];
    let sh = Some(index as u16);
    let doc = &policy.doc;
    let mut total = Ledger::default();

    if let Some(e) = &policy.origin[s.origin_country.index()] {
        push(
            out,
            &mut total,
            Rule::OriginCountry,
            e.points,
            e.floor,
            sh,
            Fact::Country {
                country: s.origin_country,
                why: &e.why,
            },
        );
    }
    let riskiest_transit = s
        .transit_countries
        .iter()
        .filter_map(|c| policy.transit[c.index()].as_ref().map(|e| (*c, e)))
        .max_by_key(|(_, e)| e.points);
    if let Some((c, e)) = riskiest_transit {
        push(
            out,
            &mut total,
            Rule::TransitCountry,
            e.points,
            e.floor,
            sh,
            Fact::Country {
                country: c,
                why: &e.why,
            },
        );
    }
    let circuitous = policy.doc.countries.circuitous_min_transits as usize;
    if circuitous > 0 && s.transit_countries.len() >= circuitous {
        push(
            out,
            &mut total,
            Rule::CircuitousRouting,
            policy.doc.countries.circuitous_points,
            doc.countries.circuitous.floor(),
            sh,
            Fact::Circuitous {
                transits: s.transit_countries.len(),
            },
        );
    }

    // Commodity rules: the riskiest line counts once per rule.
    let mut tariff: Option<(Rule, i32, Fact<'a>, Option<Action>)> = None;
    let mut vague = None;
    let mut value = None;
    let mut zero_weight = None;
    let zero_weight_points = policy.plausibility.zero_weight_points;
    for c in &s.commodities {
        // Read from the code's digits once: the chapter is the heading's first two.
        let heading = c.hts.heading();
        let chapter = (heading / 100) as u8;
        let candidate = match policy.heading(heading) {
            Some(e) => Some((Rule::HtsHeading, e.points, e, true)),
            None => policy.chapters[usize::from(chapter)]
                .as_ref()
                .map(|e| (Rule::HtsChapter, e.points, e, false)),
        };
        if let Some((rule, points, e, is_heading)) = candidate {
            if tariff.as_ref().is_none_or(|t| points > t.1) {
                let fact = if is_heading {
                    Fact::Heading {
                        heading,
                        why: &e.why,
                    }
                } else {
                    Fact::Chapter {
                        chapter,
                        why: &e.why,
                    }
                };
                tariff = Some((rule, points, fact, e.floor));
            }
        }
        if vague.is_none() && known.is_none() {
            vague = policy.vague_term_index(&c.description);
        }
        if value.is_none() {
            if let (Some(band), Some(v), Some(w)) = (
                &policy.value_per_kg[usize::from(chapter)],
                c.value_usd,
                c.weight_kg,
            ) {
                // Weight 0 has no value per kg: a positive value at zero weight is the zero-weight rule.
                if w > 0.0 {
                    let per_kg = v / w;
                    if per_kg < band.min || per_kg > band.max {
                        value = Some((
                            band.points,
                            band.floor,
                            Fact::ValuePerKg {
                                chapter,
                                value_per_kg: per_kg,
                                band,
                            },
                        ));
                    }
                }
            }
        }
        if zero_weight.is_none() && zero_weight_points != 0 && c.weight_kg == Some(0.0) {
            if let Some(v) = c.value_usd.filter(|v| *v > 0.0) {
                zero_weight = Some(Fact::ZeroWeight {
                    hts: c.hts,
                    value_usd: v,
                });
            }
        }
    }
    if let Some((rule, points, fact, floor)) = tariff {
        push(out, &mut total, rule, points, floor, sh, fact);
    }
    let vague = known.map_or(vague, |k| k.vague.map(|i| i as usize));
    *seen = ShipmentScreen {
        watched: 0,
        vague: vague.map(|i| i as u32),
    };
    if let Some(term) = vague.and_then(|i| policy.vague.terms().get(i)) {
        push(
            out,
            &mut total,
            Rule::VagueDescription,
            doc.commodities.vague_points,
            doc.commodities.vague.floor(),
            sh,
            Fact::Vague { term },
        );
    }
    if let Some((points, floor, fact)) = value {
        push(out, &mut total, Rule::ValuePerKg, points, floor, sh, fact);
    }
    if let Some(fact) = zero_weight {
        push(
            out,
            &mut total,
            Rule::ZeroWeight,
            zero_weight_points,
            doc.plausibility.zero_weight.floor(),
            sh,
            fact,
        );
    }
    if let Some((points, fact)) = policy
        .model
        .as_ref()
        .and_then(|r| model_hit(r, m, index as u16))
    {
        push(out, &mut total, Rule::Model, points, None, sh, fact);
    }
    if s.importer.is_none() {
        push(
            out,
            &mut total,
            Rule::ImporterMissing,
            doc.parties.missing_importer_points,
            doc.parties.missing_importer.floor(),
            sh,
            Fact::ImporterMissing,
        );
    }

    let mut watched = false;
    let slots = [
        &s.importer,
        &s.consignee,
        &s.shipper,
        &s.manufacturer,
        &s.broker,
    ];
    for (slot, (role, party)) in SHIPMENT_PARTIES.into_iter().zip(slots).enumerate() {
        if let Some(p) = party {
            let hit = watch_party(
                policy,
                role,
                &p.id,
                p.name.as_ref(),
                sh,
                known.map(|k| k.watched & (1 << slot) != 0),
                out,
                &mut total,
            );
            seen.watched |= u8::from(hit) << slot;
            watched |= hit;
        }
    }

    let history_points = match (&doc.history, history) {
        (Some(section), Some(h)) => history_hits(section, h, m, index, out, &mut total),
        _ => false,
    };

    for (i, p) in parties.iter().enumerate() {
        if p.shipment_index == sh {
            ctpat_hit(policy, i, p, out, &mut total);
        }
    }
    (total, watched, history_points)
}

/// The `[history]` rules for one shipment: its parties in `history.roles` (the carrier for every
/// shipment), their distinct outcomes examined in the window before `filed_at`, as of the watermark.
/// Seizures count first, then discrepancies, together at most `max_points`; a clean record of at least
/// `clean_min_exams` exams earns the clean credit (a credit: under the cap, offsetting creditable points
/// only). Returns whether a seizure or discrepancy reason was listed (each only with points).
fn history_hits(
    section: &HistorySection,
    h: HistoryAsOf<'_>,
    m: &Manifest,
    index: usize,
    out: &mut Hits<'_>,
    total: &mut Ledger,
) -> bool {
    let s = &m.shipments[index];
    let sh = Some(index as u16);
    let roles = &section.roles;
    let mut asked: SmallVec<[(Role, &str); 5]> = SmallVec::new();
    if let Some(c) = m
        .carrier
        .as_ref()
        .filter(|_| roles.contains(&Role::Carrier))
    {
        asked.push((Role::Carrier, &c.scac));
    }
    for (role, party) in [
        (Role::Importer, &s.importer),
        (Role::Manufacturer, &s.manufacturer),
        (Role::Shipper, &s.shipper),
        (Role::Broker, &s.broker),
    ] {
        if let Some(p) = party.as_ref().filter(|_| roles.contains(&role)) {
            asked.push((role, &p.id));
        }
    }
    if asked.is_empty() {
        return false;
    }
    let r = h.history.recall(
        h.as_of,
        asked,
        m.filed_at.minus_days(section.window_days),
        m.filed_at,
    );
    let cap = i64::from(section.max_points.max(0));
    let seizure = (i64::from(r.seizures) * i64::from(section.seizure_points)).min(cap);
    let discrepancy =
        (i64::from(r.discrepancies) * i64::from(section.discrepancy_points)).min(cap - seizure);
    let mut listed = false;
    for (rule, result, count, points, guard) in [
        (
            Rule::HistorySeizure,
            ExamResult::Seizure,
            r.seizures,
            seizure,
            section.seizure,
        ),
        (
            Rule::HistoryDiscrepancy,
            ExamResult::Discrepancy,
            r.discrepancies,
            discrepancy,
            section.discrepancy,
        ),
    ] {
        let Some(latest) = r.latest(result).filter(|_| points > 0) else {
            continue;
        };
        listed = true;
        push(
            out,
            total,
            rule,
            points as i32,
            guard.floor(),
            sh,
            Fact::History {
                result,
                count,
                window_days: section.window_days,
                latest: Box::new(latest.clone()),
            },
        );
    }
    let clean = section.clean_credit > 0
        && section.clean_min_exams > 0
        && r.exams >= section.clean_min_exams
        && r.discrepancies == 0
        && r.seizures == 0;
    if let Some(latest) = r.latest_exam().filter(|_| clean) {
        total.ctpat(-section.clean_credit);
        out.push(Hit {
            rule: Rule::HistoryClean,
            points: -section.clean_credit,
            floor: None,
            shipment: sh,
            fact: Fact::History {
                result: ExamResult::NoDiscrepancy,
                count: r.exams,
                window_days: section.window_days,
                latest: Box::new(latest.clone()),
            },
        });
    }
    listed
}

/// Uniform draw in `[0, 1)` from a keyed hash of the manifest id: stable across platforms and versions,
/// and the same for every revision of a manifest (amending cannot dodge a random exam).
pub fn random_draw(manifest_id: &str, seed: u64) -> f64 {
    (xxh3_64_with_seed(manifest_id.as_bytes(), seed) >> 11) as f64 / (1u64 << 53) as f64
}

/// Scores a manifest whose parties are already resolved (see [`resolve`]).
/// `history` is the party history as of a watermark (read only when the policy has `[history]`).
pub fn score(
    policy: &CompiledPolicy,
    m: &Manifest,
    parties: SmallVec<[PartyView; 6]>,
    history: Option<HistoryAsOf<'_>>,
) -> Decision {
    let facts: PartyFacts = parties.iter().map(PartyFact::from).collect();
    evaluate(policy, m, &facts, history).into_decision(policy, m, parties, history)
}

/// Evaluates every rule of the policy on a manifest whose parties are resolved (see [`resolve_facts`], or
/// [`PartyFact::from`] of [`resolve`]'s views): the verdict, and the hits its reasons are built from.
pub fn evaluate<'a>(
    policy: &'a CompiledPolicy,
    m: &'a Manifest,
    parties: &[PartyFact],
    history: Option<HistoryAsOf<'_>>,
) -> Evaluation<'a> {
    evaluate_screened(policy, m, parties, history, &mut Screen::default())
}

/// [`evaluate`], recording the manifest's watch-list and vague-term matches into a recording `screen`, or
/// reading them from a recorded one (see [`Screen`]). The evaluation is the same either way.
pub fn evaluate_screened<'a>(
    policy: &'a CompiledPolicy,
    m: &'a Manifest,
    parties: &[PartyFact],
    history: Option<HistoryAsOf<'_>>,
    screen: &mut Screen,
) -> Evaluation<'a> {
    let mut hits = SmallVec::new();
    let verdict = evaluate_into(policy, m, parties, history, screen, &mut hits);
    Evaluation { verdict, hits }
}

/// [`evaluate_screened`] with the hits written into `hits` (empty when called), where the caller keeps
/// them, instead of returned in an [`Evaluation`]: an evaluation returned is copied whole (the hits' inline
/// room, 328 bytes; 456 before a hit shrank to 40 bytes) out of the function that built it, and those
/// copies were most of what moved memory in `core/verdict`. The paths that score every manifest
/// ([`process_json`], [`verdict_of`]) use this.
fn evaluate_into<'a>(
    policy: &'a CompiledPolicy,
    m: &'a Manifest,
    parties: &[PartyFact],
    history: Option<HistoryAsOf<'_>>,
    screen: &mut Screen,
    hits: &mut Hits<'a>,
) -> Verdict {
    let points = points_into(policy, m, parties, history, screen, hits);
    let (verdict, random) = conclude(policy, m, parties, points);
    // `push`, not `extend`: SmallVec's `extend` costs ~50 instructions even for `None`.
    if let Some(random) = random {
        hits.push(random);
    }
    verdict
}

/// A manifest's points: the settled score, whether the watch list was hit, and whether a history rule
/// (seizure or discrepancy) added points among the hits kept (the only shipment's, or the riskiest's) —
/// everything of an evaluation that the policy's bands, actions, ports and random compliance do not change,
/// and all that concluding reads (gathered as the rules run, so that it reads none of the hits again).
#[derive(Debug, Clone, Copy)]
pub struct Points {
    score: i32,
    watched: bool,
    history_points: bool,
}

/// Evaluates the rules that score (see [`Points`]); [`Points::verdict`] concludes. The hits are gathered on
/// the stack and dropped: nothing that concludes reads them.
pub fn evaluate_points(
    policy: &CompiledPolicy,
    m: &Manifest,
    parties: &[PartyFact],
    history: Option<HistoryAsOf<'_>>,
    screen: &mut Screen,
) -> Points {
    points_into(policy, m, parties, history, screen, &mut SmallVec::new())
}

/// The rules that score, their hits into `hits` (empty when called, and kept where the caller keeps them:
/// returned, ~400 bytes were copied whole on the way out); returns the manifest's [`Points`].
fn points_into<'a>(
    policy: &'a CompiledPolicy,
    m: &'a Manifest,
    parties: &[PartyFact],
    history: Option<HistoryAsOf<'_>>,
    screen: &mut Screen,
    hits: &mut Hits<'a>,
) -> Points {
    let doc = &policy.doc;
    let mut total = Ledger::default();
    let mut watched = false;
    // Set from the shipment whose hits are kept: the only one, or the riskiest.
    let mut history_points = false;
    let known = screen.start(policy, m);
    let recording = screen.recording_now();

    // Conveyance-level rules.
    if let Some(c) = &m.carrier {
        let hit = watch_party(
            policy,
            Role::Carrier,
            &c.scac,
            c.name.as_ref(),
            None,
            known.then_some(screen.carrier),
            hits,
            &mut total,
        );
        if recording {
            screen.carrier = hit;
        }
        watched |= hit;
    }
    for (i, d) in m.drivers.iter().enumerate() {
        let hit = watch_party(
            policy,
            Role::Driver,
            d.fast_card.as_ref().unwrap_or(&NO_CARD),
            Some(&d.name),
            None,
            known.then(|| screen.drivers[i]),
            hits,
            &mut total,
        );
        if recording {
            screen.drivers[i] = hit;
        }
        watched |= hit;
    }
    if policy.seal_modes & (1 << (m.mode as u32)) != 0 {
        if let Some(e) = m.equipment.iter().find(|e| e.seals.is_empty()) {
            push(
                hits,
                &mut total,
                Rule::SealMissing,
                doc.seals.missing_points,
                doc.seals.missing.floor(),
                None,
                Fact::SealMissing { equipment: &e.id },
            );
        }
        let weak = m.equipment.iter().find_map(|e| {
            e.seals
                .iter()
                .find(|s| s.iso17712 != Some(SealClass::H))
                .map(|s| (e, s))
        });
        if let Some((e, s)) = weak {
            push(
                hits,
                &mut total,
                Rule::SealNotHighSecurity,
                doc.seals.not_high_security_points,
                doc.seals.not_high_security.floor(),
                None,
                Fact::SealClass {
                    equipment: &e.id,
                    seal: &s.number,
                },
            );
        }
    }
    if let Some(eta) = &m.estimated_arrival {
        let lead = m.filed_at.minutes_until(eta);
        let required = *doc.filing.min_lead_minutes.get(m.mode);
        if lead < required as i64 {
            push(
                hits,
                &mut total,
                Rule::FilingLate,
                doc.filing.late_points,
                doc.filing.late.floor(),
                None,
                Fact::Late {
                    lead_minutes: lead,
                    required,
                },
            );
        }
    }
    for (i, p) in parties.iter().enumerate() {
        if p.shipment_index.is_none() {
            ctpat_hit(policy, i, p, hits, &mut total);
        }
    }

    // The riskiest shipment: the one whose points, settled together with the conveyance's, score most. A
    // watch-list hit on any other shipment still forces the exam, so its reason is listed too, with 0
    // points: the score is the riskiest shipment's, and the decision must say why.
    // Two buffers of hits, the riskiest shipment's so far in `bufs[best]` and the next shipment's scored
    // into the other: a new riskiest one only flips the index (swapping the buffers copied ~400 bytes
    // three times).
    let mut bufs: [Hits<'a>; 2] = [SmallVec::new(), SmallVec::new()];
    let mut best = 0usize;
    let mut best_ledger: Option<Ledger> = None;
    let mut best_history = false;
    let mut best_score = i32::MIN;
    let mut other_watch: SmallVec<[Hit<'a>; 2]> = SmallVec::new();
    // A single shipment (most manifests) is scored straight into the manifest's hits: nothing to compare
    // it with, nothing to move.
    let single = m.shipments.len() == 1;
    if single {
        let known = known.then(|| screen.shipments[0]);
        let mut seen = ShipmentScreen::default();
        let (l, w, h) = score_shipment(policy, m, 0, parties, history, known, hits, &mut seen);
        if recording {
            screen.shipments[0] = seen;
        }
        watched |= w;
        history_points = h;
        total = total.merged(l);
    }
    let others = if single { 0..0 } else { 0..m.shipments.len() };
    for i in others {
        // The buffer not holding the riskiest shipment so far: empty here.
        let cur = if best_ledger.is_some() { 1 - best } else { 0 };
        let known = known.then(|| screen.shipments[i]);
        let mut seen = ShipmentScreen::default();
        let (l, w, h) = score_shipment(
            policy,
            m,
            i,
            parties,
            history,
            known,
            &mut bufs[cur],
            &mut seen,
        );
        if recording {
            screen.shipments[i] = seen;
        }
        watched |= w;
        let s = settle(total.merged(l), policy.credit_cap).score;
        // The buffer of the shipment that is not (or no longer) the riskiest: emptied, its watch-list
        // hits kept with 0 points.
        // The first shipment is the riskiest so far whatever its score.
        let other = if best_ledger.is_none() || s > best_score {
            best_score = s;
            best_ledger = Some(l);
            best_history = h;
            best = cur;
            1 - cur
        } else {
            cur
        };
        other_watch.extend(
            bufs[other]
                .drain(..)
                .filter(|h| matches!(h.rule, Rule::WatchlistId | Rule::WatchlistName))
                .map(|h| Hit { points: 0, ..h }),
        );
    }
    if let Some(l) = best_ledger {
        total = total.merged(l);
        history_points = best_history;
        hits.extend(bufs[best].drain(..));
    }
    // Credits offset creditable points only, up to the cap; the corrections are listed so that the reasons
    // still sum to the score.
    let settled = settle(total, policy.credit_cap);
    if settled.capped > 0 {
        hits.push(Hit {
            rule: Rule::CreditCap,
            points: settled.capped,
            floor: None,
            shipment: None,
            fact: Fact::CreditCap {
                credits: total.credits,
                cap: policy.credit_cap,
            },
        });
    }
    if settled.unused > 0 {
        hits.push(Hit {
            rule: Rule::CreditUnused,
            points: settled.unused,
            floor: None,
            shipment: None,
            fact: Fact::CreditUnused {
                allowed: total.credits - settled.capped,
                creditable: total.creditable,
                non_creditable: total.non_creditable,
            },
        });
    }
    if !other_watch.is_empty() {
        hits.extend(other_watch.drain(..));
    }
    screen.finish();
    Points {
        score: settled.score,
        watched,
        history_points,
    }
}

impl Points {
    /// The verdict of these points under `policy`: the policy whose rules gave them, or one that scores
    /// alike ([`CompiledPolicy::same_points`]) — a what-if candidate that moves only bands, actions,
    /// ports or random compliance is concluded from the baseline's points.
    pub fn verdict(&self, policy: &CompiledPolicy, m: &Manifest, parties: &[PartyFact]) -> Verdict {
        conclude(policy, m, parties, *self).0
    }
}

/// The verdict under `policy` of a manifest's [`Points`] (see [`Points::verdict`]): band and action, the
/// watch-list and random-compliance exams, front of line, lane; and the random-compliance hit, listed after
/// the scoring rules' hits, when one is drawn.
fn conclude<'a>(
    policy: &CompiledPolicy,
    m: &Manifest,
    parties: &[PartyFact],
    points: Points,
) -> (Verdict, Option<Hit<'a>>) {
    let Points {
        score: total,
        watched,
        history_points,
    } = points;
    let doc = &policy.doc;
    let (band, mut action) = doc.band_action(total);
    if watched {
        action = action.max(doc.watchlist.action);
    }

    // Random compliance: stratum = mode; class = weakest importer on the manifest. Validated importers
    // (tier 2/3) are exempt. A shipment without an importer of record counts as a non-partner importer:
    // it must not ride on another shipment's exemption.
    let roll = Roll::of(m, parties);
    let importer_standing = match roll.weakest_importer {
        Some(s) if roll.importer_missing => s.min(Standing::None),
        Some(s) => s,
        None => Standing::None,
    };
    let (class, rate) = match importer_standing {
        Standing::Validated { .. } => (RandomClass::Validated, 0.0),
        Standing::Certified => (
            RandomClass::Certified,
            doc.random.rates.get(m.mode).certified,
        ),
        _ => (
            RandomClass::NonPartner,
            doc.random.rates.get(m.mode).non_partner,
        ),
    };
    let random_exam = rate > 0.0 && random_draw(&m.manifest_id, doc.random.seed) < rate;
    let random = random_exam.then(|| {
        action = action.max(doc.random.action);
        Hit {
            rule: Rule::RandomCompliance,
            points: 0,
            floor: None,
            shipment: None,
            fact: Fact::Random {
                mode: m.mode,
                class,
                rate,
            },
        }
    });

    let front_of_line = action.is_exam() && policy.front_of_line & roll.ctpat != 0;

    let port = policy.port(m.port_of_entry);
    let border = port.map_or(Border::None, |p| p.border);
    let fast_missing =
        fast_conditions(m, &roll, port.is_some_and(|p| p.fast_lanes), border, action);
    let lane = if border == Border::None {
        Lane::None
    } else if fast_missing.is_empty() {
        Lane::Fast
    } else {
        Lane::Standard
    };

    (
        Verdict {
            score: total,
            band,
            action,
            lane,
            front_of_line,
            random_exam,
            watchlist_hit: watched,
            fast_missing,
            importer_standing,
            history_points,
        },
        random,
    )
}

/// The empty watermark (no outcome read), shared so that deciding without a history allocates nothing.
fn no_history() -> Arc<Watermark> {
    static EMPTY: std::sync::OnceLock<Arc<Watermark>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| Arc::new(Watermark::default())).clone()
}

/// What a verdict reads of the joined parties, gathered in one pass over them: the roles with a party in
/// CTPAT, the roles with a party outside it, and the weakest importer's standing; and whether some
/// shipment names no importer of record (read by random compliance and by FAST alike).
struct Roll {
    /// Bit `role.index()`: some party in that role is certified or validated.
    ctpat: u32,
    /// Bit `role.index()`: some party in that role is not.
    outside: u32,
    weakest_importer: Option<Standing>,
    importer_missing: bool,
}

impl Roll {
    #[inline]
    fn of(m: &Manifest, parties: &[PartyFact]) -> Roll {
        let mut roll = Roll {
            ctpat: 0,
            outside: 0,
            weakest_importer: None,
            importer_missing: m.shipments.iter().any(|s| s.importer.is_none()),
        };
        for p in parties {
            let bit = 1 << p.role.index();
            if p.standing.is_ctpat() {
                roll.ctpat |= bit;
            } else {
                roll.outside |= bit;
            }
            if p.role == Role::Importer {
                roll.weakest_importer = Some(
                    roll.weakest_importer
                        .map_or(p.standing, |w| w.min(p.standing)),
                );
            }
        }
        roll
    }

    /// Some party in `role` is outside CTPAT.
    #[inline]
    fn outside(&self, role: Role) -> bool {
        self.outside & (1 << role.index()) != 0
    }
}

/// Every unmet FAST condition (wire.md contract 4).
fn fast_conditions(
    m: &Manifest,
    roll: &Roll,
    fast_port: bool,
    border: Border,
    action: Action,
) -> FastMissing {
    let mut missing = FastMissing::default();
    if m.mode != Mode::Truck {
        missing.add(FastCondition::TruckMode);
    }
    if !fast_port {
        missing.add(FastCondition::FastLanePort);
    }
    if action != Action::Release {
        missing.add(FastCondition::Release);
    }
    if m.drivers.is_empty()
        || m.drivers
            .iter()
            // Blank as `trim().is_empty()` says, without trimming both ends: every char white space.
            .any(|d| {
                d.fast_card
                    .as_deref()
                    .is_none_or(|c| c.chars().all(char::is_whitespace))
            })
    {
        missing.add(FastCondition::DriverFastCard);
    }
    if m.carrier.is_none() || roll.outside(Role::Carrier) {
        missing.add(FastCondition::CarrierCtpat);
    }
    if roll.importer_missing || roll.outside(Role::Importer) {
        missing.add(FastCondition::ImporterCtpat);
    }
    if border == Border::South {
        if m.shipments.iter().any(|s| s.manufacturer.is_none()) || roll.outside(Role::Manufacturer)
        {
            missing.add(FastCondition::ManufacturerCtpat);
        }
        let sealed = !m.equipment.is_empty()
            && m.equipment.iter().all(|e| {
                !e.seals.is_empty()
                    && e.seals.iter().all(|s| {
                        s.iso17712 == Some(SealClass::H)
                            && s.affixed_by == Some(SealAffixer::Manufacturer)
                    })
            });
        if !sealed {
            missing.add(FastCondition::ManufacturerSeal);
        }
    }
    missing
}
