//! Scoring: resolve every party against the partner table, apply the compiled policy's rules, and produce
//! the [`Decision`] with its reasons, band, action, FAST eligibility, front-of-line and random selection.
//!
//! Shipments are scored separately; the conveyance carries the riskiest shipment's score plus the
//! conveyance-level rules (a conveyance is examined if any of its shipments is). The reasons listed on the
//! decision are exactly the ones summed into `score`.

use std::sync::Arc;

use smallvec::SmallVec;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::decision::ExamResult;
use crate::decision::{Action, Role};
use crate::decision::{
    Decision, Detail, FastCondition, FastMissing, Lane, PartyView, Reason, Rule,
};
use crate::history::{HistoryAsOf, Watermark};
use crate::model::Line;
use crate::policy::{settle, Border, CompiledPolicy, HistorySection, Ledger, ModelRule};
use crate::resumption::{prioritize, Resumptions};
use crate::table::{PartnerTable, Standing};
use crate::wire::{
    parse_manifest, BadInput, ErrorKind, Limits, Manifest, Mode, Party, SealAffixer, SealClass, Str,
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
    let mut d = decide(policy, lookups, &m);
    prioritize(&mut d, &m, resumptions);
    Ok((m, d))
}

/// The tables a decision reads: CTPAT partners and, optionally, the party history as of a watermark.
#[derive(Debug, Clone, Copy)]
pub struct Lookups<'a> {
    pub partners: &'a PartnerTable,
    /// `None`: no outcome is known (a policy with `[history]` then decides with an empty history, and says
    /// so: `history_as_of` is `{}`).
    pub history: Option<HistoryAsOf<'a>>,
}

impl<'a> Lookups<'a> {
    pub fn new(partners: &'a PartnerTable, history: Option<HistoryAsOf<'a>>) -> Lookups<'a> {
        Lookups { partners, history }
    }
}

impl<'a> From<&'a Arc<PartnerTable>> for Lookups<'a> {
    fn from(partners: &'a Arc<PartnerTable>) -> Self {
        Lookups::from(&**partners)
    }
}

impl<'a> From<&'a PartnerTable> for Lookups<'a> {
    fn from(partners: &'a PartnerTable) -> Self {
        Lookups {
            partners,
            history: None,
        }
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
    let l = lookups.into();
    let parties = resolve(policy, l.partners, m);
    score(policy, m, parties, l.history)
}

/// Joins every party of the manifest against the partner table, judging standing at `filed_at`.
pub fn resolve(
    policy: &CompiledPolicy,
    table: &PartnerTable,
    m: &Manifest,
) -> SmallVec<[PartyView; 6]> {
    let filed = m.filed_at.date();
    let reval = policy.revalidation_days();
    let mut out = SmallVec::new();
    let mut push = |role: Role, id: &Str, shipment: Option<(&Str, u16)>| {
        let join = &policy.join[role.index()];
        let r = table.resolve(&join.kinds, |e| policy.accepts(role, e), id, filed, reval);
        out.push(match r {
            Some(r) => PartyView {
                role,
                id: id.clone(),
                shipment: shipment.map(|s| s.0.clone()),
                partner_id: Some(r.partner_id),
                status: Some(r.status),
                tier: r.tier,
                standing: r.standing,
                lapsed: r.lapsed,
                mra_program: r.mra_program,
                shipment_index: shipment.map(|s| s.1),
            },
            None => PartyView {
                role,
                id: id.clone(),
                shipment: shipment.map(|s| s.0.clone()),
                partner_id: None,
                status: None,
                tier: None,
                standing: Standing::None,
                lapsed: false,
                mra_program: None,
                shipment_index: shipment.map(|s| s.1),
            },
        });
    };
    if let Some(c) = &m.carrier {
        push(Role::Carrier, &c.scac, None);
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
                push(role, &p.id, sh);
            }
        }
    }
    out
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

fn ctpat_reason(
    policy: &CompiledPolicy,
    p: &PartyView,
    out: &mut SmallVec<[Reason; 8]>,
    total: &mut Ledger,
) {
    let points = ctpat_points(policy, p.role, p.standing);
    if points == 0 {
        return;
    }
    if let Some(partner_id) = &p.partner_id {
        total.ctpat(points);
        out.push(Reason {
            rule: Rule::Ctpat(p.role),
            points,
            detail: Detail::Ctpat {
                role: p.role,
                id: p.id.clone(),
                partner_id: partner_id.clone(),
                standing: p.standing,
                lapsed: p.lapsed,
                mra_program: p.mra_program.clone(),
            },
            shipment: p.shipment.clone(),
            floor: None,
        });
    }
}

/// Watch-list hits for a party: by identifier, then by normalised name.
fn watch_party(
    policy: &CompiledPolicy,
    role: Role,
    id: &str,
    name: Option<&str>,
    shipment: Option<&Str>,
    out: &mut SmallVec<[Reason; 8]>,
    total: &mut Ledger,
) -> bool {
    let points = policy.doc.watchlist.points;
    let floor = policy.watch_floor;
    if let Some(why) = policy.watch_ids.get(id) {
        total.add(points, floor.is_none());
        out.push(Reason {
            rule: Rule::WatchlistId,
            points,
            detail: Detail::Watch {
                role,
                value: id.into(),
                why: why.clone(),
            },
            shipment: shipment.cloned(),
            floor,
        });
        return true;
    }
    if let Some(name) = name {
        if let Some(why) = policy.watched_name(name) {
            total.add(points, floor.is_none());
            out.push(Reason {
                rule: Rule::WatchlistName,
                points,
                detail: Detail::Watch {
                    role,
                    value: name.into(),
                    why: why.clone(),
                },
                shipment: shipment.cloned(),
                floor,
            });
            return true;
        }
    }
    false
}

fn watch_opt(
    policy: &CompiledPolicy,
    role: Role,
    party: &Option<Party>,
    shipment: &Str,
    out: &mut SmallVec<[Reason; 8]>,
    total: &mut Ledger,
) -> bool {
    match party {
        Some(p) => watch_party(
            policy,
            role,
            &p.id,
            p.name.as_deref(),
            Some(shipment),
            out,
            total,
        ),
        None => false,
    }
}

/// The model rule's contribution to one shipment: its riskiest line's points and the explanation, or `None`
/// when the probability reaches no band.
fn model_reason(
    rule: &ModelRule,
    manifest: &Manifest,
    shipment: &crate::wire::Shipment,
) -> Option<(i32, Detail)> {
    let (index, probability) = rule.model.riskiest_line(manifest, shipment)?;
    let points = rule.points(probability);
    if points == 0 {
        return None;
    }
    let line = Line {
        manifest,
        shipment,
        commodity: &shipment.commodities[index],
    };
    let (_, top) = rule.model.explain_line(&line);
    Some((
        points,
        Detail::Model {
            probability,
            hts: shipment.commodities[index].hts,
            top,
            info: rule.model.info.clone(),
        },
    ))
}

/// Scores one shipment into `out`; returns (its points by credit treatment, watch-list hit).
fn score_shipment(
    policy: &CompiledPolicy,
    m: &Manifest,
    index: usize,
    parties: &[PartyView],
    history: Option<HistoryAsOf<'_>>,
    out: &mut SmallVec<[Reason; 8]>,
) -> (Ledger, bool) {
    let s = &m.shipments[index];
    let sid = &s.shipment_id;
    let doc = &policy.doc;
    let mut total = Ledger::default();
    let push = |out: &mut SmallVec<[Reason; 8]>,
                total: &mut Ledger,
                rule,
                points,
                detail,
                floor: Option<Action>| {
        total.add(points, floor.is_none());
        out.push(Reason {
            rule,
            points,
            detail,
            shipment: Some(sid.clone()),
            floor,
        });
    };

    if let Some(e) = &policy.origin[s.origin_country.index()] {
        push(
            out,
            &mut total,
            Rule::OriginCountry,
            e.points,
            Detail::Country {
                country: s.origin_country,
                why: e.why.clone(),
            },
            e.floor,
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
            Detail::Country {
                country: c,
                why: e.why.clone(),
            },
            e.floor,
        );
    }
    let circuitous = policy.doc.countries.circuitous_min_transits as usize;
    if circuitous > 0 && s.transit_countries.len() >= circuitous {
        let points = policy.doc.countries.circuitous_points;
        push(
            out,
            &mut total,
            Rule::CircuitousRouting,
            points,
            Detail::Circuitous {
                transits: s.transit_countries.len(),
            },
            doc.countries.circuitous.floor(),
        );
    }

    // Commodity rules: the riskiest line counts once per rule.
    let mut tariff: Option<(Rule, i32, Detail, Option<Action>)> = None;
    let mut vague = None;
    let mut value = None;
    let mut zero_weight = None;
    let zero_weight_points = policy.plausibility.zero_weight_points;
    for c in &s.commodities {
        let candidate = match policy.heading(c.hts.heading()) {
            Some(e) => Some((Rule::HtsHeading, e.points, e, true)),
            None => policy.chapters[c.hts.chapter() as usize]
                .as_ref()
                .map(|e| (Rule::HtsChapter, e.points, e, false)),
        };
        if let Some((rule, points, e, is_heading)) = candidate {
            if tariff.as_ref().is_none_or(|t| points > t.1) {
                let detail = if is_heading {
                    Detail::Heading {
                        heading: c.hts.heading(),
                        why: e.why.clone(),
                    }
                } else {
                    Detail::Chapter {
                        chapter: c.hts.chapter(),
                        why: e.why.clone(),
                    }
                };
                tariff = Some((rule, points, detail, e.floor));
            }
        }
        if vague.is_none() {
            vague = policy.vague_term(&c.description).cloned();
        }
        if value.is_none() {
            if let (Some(band), Some(v), Some(w)) = (
                &policy.value_per_kg[c.hts.chapter() as usize],
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
                            Detail::ValuePerKg {
                                chapter: c.hts.chapter(),
                                value_per_kg: per_kg,
                                min: band.min,
                                max: band.max,
                            },
                        ));
                    }
                }
            }
        }
        if zero_weight.is_none() && zero_weight_points != 0 && c.weight_kg == Some(0.0) {
            if let Some(v) = c.value_usd.filter(|v| *v > 0.0) {
                zero_weight = Some(Detail::ZeroWeight {
                    hts: c.hts,
                    value_usd: v,
                });
            }
        }
    }
    if let Some((rule, points, detail, floor)) = tariff {
        push(out, &mut total, rule, points, detail, floor);
    }
    if let Some(term) = vague {
        push(
            out,
            &mut total,
            Rule::VagueDescription,
            doc.commodities.vague_points,
            Detail::Vague { term },
            doc.commodities.vague.floor(),
        );
    }
    if let Some((points, floor, detail)) = value {
        push(out, &mut total, Rule::ValuePerKg, points, detail, floor);
    }
    if let Some(detail) = zero_weight {
        push(
            out,
            &mut total,
            Rule::ZeroWeight,
            zero_weight_points,
            detail,
            doc.plausibility.zero_weight.floor(),
        );
    }
    if let Some((points, detail)) = policy.model.as_ref().and_then(|r| model_reason(r, m, s)) {
        push(out, &mut total, Rule::Model, points, detail, None);
    }
    if s.importer.is_none() {
        push(
            out,
            &mut total,
            Rule::ImporterMissing,
            doc.parties.missing_importer_points,
            Detail::ImporterMissing,
            doc.parties.missing_importer.floor(),
        );
    }

    let mut watched = false;
    for (role, party) in [
        (Role::Importer, &s.importer),
        (Role::Consignee, &s.consignee),
        (Role::Shipper, &s.shipper),
        (Role::Manufacturer, &s.manufacturer),
        (Role::Broker, &s.broker),
    ] {
        watched |= watch_opt(policy, role, party, sid, out, &mut total);
    }

    if let (Some(section), Some(h)) = (&doc.history, history) {
        history_reasons(section, h, m, s, out, &mut total);
    }

    for p in parties
        .iter()
        .filter(|p| p.shipment_index == Some(index as u16))
    {
        ctpat_reason(policy, p, out, &mut total);
    }
    (total, watched)
}

/// The `[history]` rules for one shipment: its parties in `history.roles` (the carrier for every
/// shipment), their distinct outcomes examined in the window before `filed_at`, as of the watermark.
/// Seizures count first, then discrepancies, together at most `max_points`; a clean record of at least
/// `clean_min_exams` exams earns the clean credit (a credit: under the cap, offsetting creditable points
/// only).
fn history_reasons(
    section: &HistorySection,
    h: HistoryAsOf<'_>,
    m: &Manifest,
    s: &crate::wire::Shipment,
    out: &mut SmallVec<[Reason; 8]>,
    total: &mut Ledger,
) {
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
        return;
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
        let points = points as i32;
        let floor = guard.floor();
        total.add(points, floor.is_none());
        out.push(Reason {
            rule,
            points,
            detail: Detail::History {
                result,
                count,
                window_days: section.window_days,
                latest: Box::new(latest.clone()),
            },
            shipment: Some(s.shipment_id.clone()),
            floor,
        });
    }
    let clean = section.clean_credit > 0
        && section.clean_min_exams > 0
        && r.exams >= section.clean_min_exams
        && r.discrepancies == 0
        && r.seizures == 0;
    if let Some(latest) = r.latest_exam().filter(|_| clean) {
        total.ctpat(-section.clean_credit);
        out.push(Reason {
            rule: Rule::HistoryClean,
            points: -section.clean_credit,
            detail: Detail::History {
                result: ExamResult::NoDiscrepancy,
                count: r.exams,
                window_days: section.window_days,
                latest: Box::new(latest.clone()),
            },
            shipment: Some(s.shipment_id.clone()),
            floor: None,
        });
    }
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
    let doc = &policy.doc;
    let mut reasons: SmallVec<[Reason; 8]> = SmallVec::new();
    let mut total = Ledger::default();
    let mut watched = false;

    // Conveyance-level rules.
    if let Some(c) = &m.carrier {
        watched |= watch_party(
            policy,
            Role::Carrier,
            &c.scac,
            c.name.as_deref(),
            None,
            &mut reasons,
            &mut total,
        );
    }
    for d in &m.drivers {
        watched |= watch_party(
            policy,
            Role::Driver,
            d.fast_card.as_deref().unwrap_or(""),
            Some(&d.name),
            None,
            &mut reasons,
            &mut total,
        );
    }
    if policy.seal_modes & (1 << (m.mode as u32)) != 0 {
        if let Some(e) = m.equipment.iter().find(|e| e.seals.is_empty()) {
            let floor = doc.seals.missing.floor();
            total.add(doc.seals.missing_points, floor.is_none());
            reasons.push(Reason {
                rule: Rule::SealMissing,
                points: doc.seals.missing_points,
                detail: Detail::SealMissing {
                    equipment: e.id.clone(),
                },
                shipment: None,
                floor,
            });
        }
        let weak = m.equipment.iter().find_map(|e| {
            e.seals
                .iter()
                .find(|s| s.iso17712 != Some(SealClass::H))
                .map(|s| (e, s))
        });
        if let Some((e, s)) = weak {
            let floor = doc.seals.not_high_security.floor();
            total.add(doc.seals.not_high_security_points, floor.is_none());
            reasons.push(Reason {
                rule: Rule::SealNotHighSecurity,
                points: doc.seals.not_high_security_points,
                detail: Detail::SealClass {
                    equipment: e.id.clone(),
                    seal: s.number.clone(),
                },
                shipment: None,
                floor,
            });
        }
    }
    if let Some(eta) = &m.estimated_arrival {
        let lead = m.filed_at.minutes_until(eta);
        let required = *doc.filing.min_lead_minutes.get(m.mode);
        if lead < required as i64 {
            let floor = doc.filing.late.floor();
            total.add(doc.filing.late_points, floor.is_none());
            reasons.push(Reason {
                rule: Rule::FilingLate,
                points: doc.filing.late_points,
                detail: Detail::Late {
                    lead_minutes: lead,
                    required,
                },
                shipment: None,
                floor,
            });
        }
    }
    for p in parties.iter().filter(|p| p.shipment_index.is_none()) {
        ctpat_reason(policy, p, &mut reasons, &mut total);
    }

    // The riskiest shipment: the one whose points, settled together with the conveyance's, score most. A
    // watch-list hit on any other shipment still forces the exam, so its reason is listed too, with 0
    // points: the score is the riskiest shipment's, and the decision must say why.
    let mut best: SmallVec<[Reason; 8]> = SmallVec::new();
    let mut best_ledger: Option<Ledger> = None;
    let mut best_score = i32::MIN;
    let mut scratch: SmallVec<[Reason; 8]> = SmallVec::new();
    let mut other_watch: SmallVec<[Reason; 2]> = SmallVec::new();
    for i in 0..m.shipments.len() {
        scratch.clear();
        let (l, w) = score_shipment(policy, m, i, &parties, history, &mut scratch);
        watched |= w;
        let s = settle(total.merged(l), policy.credit_cap).score;
        if s > best_score {
            best_score = s;
            best_ledger = Some(l);
            std::mem::swap(&mut best, &mut scratch);
        }
        // `scratch` now holds a shipment that is not (or no longer) the riskiest.
        other_watch.extend(
            scratch
                .iter()
                .filter(|r| matches!(r.rule, Rule::WatchlistId | Rule::WatchlistName))
                .map(|r| Reason {
                    points: 0,
                    ..r.clone()
                }),
        );
    }
    if let Some(l) = best_ledger {
        total = total.merged(l);
        reasons.extend(best);
    }
    // Credits offset creditable points only, up to the cap; the corrections are listed so that the reasons
    // still sum to the score.
    let settled = settle(total, policy.credit_cap);
    if settled.capped > 0 {
        reasons.push(Reason {
            rule: Rule::CreditCap,
            points: settled.capped,
            detail: Detail::CreditCap {
                credits: total.credits,
                cap: policy.credit_cap,
            },
            shipment: None,
            floor: None,
        });
    }
    if settled.unused > 0 {
        reasons.push(Reason {
            rule: Rule::CreditUnused,
            points: settled.unused,
            detail: Detail::CreditUnused {
                allowed: total.credits - settled.capped,
                creditable: total.creditable,
                non_creditable: total.non_creditable,
            },
            shipment: None,
            floor: None,
        });
    }
    reasons.extend(other_watch);
    let total = settled.score;

    let (band, mut action) = doc.band_action(total);
    if watched {
        action = action.max(doc.watchlist.action);
    }

    // Random compliance: stratum = mode; class = weakest importer on the manifest. Validated importers
    // (tier 2/3) are exempt. A shipment without an importer of record counts as a non-partner importer:
    // it must not ride on another shipment's exemption.
    let importer_missing = m.shipments.iter().any(|s| s.importer.is_none());
    let importer_standing = parties
        .iter()
        .filter(|p| p.role == Role::Importer)
        .map(|p| p.standing)
        .chain(importer_missing.then_some(Standing::None))
        .min()
        .unwrap_or(Standing::None);
    let (class, rate) = match importer_standing {
        Standing::Validated { .. } => ("validated", 0.0),
        Standing::Certified => ("certified", doc.random.rates.get(m.mode).certified),
        _ => ("non_partner", doc.random.rates.get(m.mode).non_partner),
    };
    let random_exam = rate > 0.0 && random_draw(&m.manifest_id, doc.random.seed) < rate;
    if random_exam {
        action = action.max(doc.random.action);
        reasons.push(Reason {
            rule: Rule::RandomCompliance,
            points: 0,
            detail: Detail::Random {
                mode: m.mode,
                class,
                rate,
            },
            shipment: None,
            floor: None,
        });
    }

    let front_of_line = action.is_exam()
        && parties
            .iter()
            .any(|p| policy.front_of_line & (1 << p.role.index()) != 0 && p.standing.is_ctpat());

    let port = policy.port(m.port_of_entry);
    let border = port.map_or(Border::None, |p| p.border);
    let fast_missing = fast_conditions(
        m,
        &parties,
        port.is_some_and(|p| p.fast_lanes),
        border,
        action,
    );
    let lane = if border == Border::None {
        Lane::None
    } else if fast_missing.is_empty() {
        Lane::Fast
    } else {
        Lane::Standard
    };

    Decision {
        manifest_id: m.manifest_id.clone(),
        revision: m.revision,
        port_of_entry: m.port_of_entry,
        mode: m.mode,
        lane,
        action,
        front_of_line,
        random_exam,
        watchlist_hit: watched,
        score: total,
        band,
        reasons,
        parties,
        fast_missing,
        importer_standing,
        policy_version: policy.version.clone(),
        model_version: policy.model.as_ref().map(|r| r.model.version.clone()),
        priority: None,
        history_as_of: doc
            .history
            .as_ref()
            .map(|_| history.map_or_else(no_history, |h| h.as_of.clone())),
        decided_at: None,
    }
}

/// The empty watermark (no outcome read), shared so that deciding without a history allocates nothing.
fn no_history() -> Arc<Watermark> {
    static EMPTY: std::sync::OnceLock<Arc<Watermark>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| Arc::new(Watermark::default())).clone()
}

/// Every unmet FAST condition (wire.md contract 4).
fn fast_conditions(
    m: &Manifest,
    parties: &[PartyView],
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
            .any(|d| d.fast_card.as_deref().is_none_or(|c| c.trim().is_empty()))
    {
        missing.add(FastCondition::DriverFastCard);
    }
    let ctpat = |role: Role| {
        parties
            .iter()
            .filter(move |p| p.role == role)
            .map(|p| p.standing.is_ctpat())
    };
    if m.carrier.is_none() || !ctpat(Role::Carrier).all(|ok| ok) {
        missing.add(FastCondition::CarrierCtpat);
    }
    if m.shipments.iter().any(|s| s.importer.is_none()) || !ctpat(Role::Importer).all(|ok| ok) {
        missing.add(FastCondition::ImporterCtpat);
    }
    if border == Border::South {
        if m.shipments.iter().any(|s| s.manufacturer.is_none())
            || !ctpat(Role::Manufacturer).all(|ok| ok)
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
