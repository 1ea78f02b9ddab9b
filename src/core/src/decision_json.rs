//! The direct decision writer: [`Decision::write_json`] appends the decision's wire JSON to a reused buffer,
//! the reason texts rendered straight into it.
//!
//! Its bytes are exactly `serde_json::to_writer` of the same decision through the `Serialize` impls in
//! [`crate::decision`] (which stay the reference): same keys in the same order, the same optional keys left
//! out, `null` for an absent value, the same escaping. `src/core/tests/json_writer.rs` proves it on
//! generated decisions and the golden cases.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::codes::{Country, Hts, PortCode};
use crate::decision::{Action, Band, Lane, Role, Rule};
use crate::decision::{Decision, Detail, ExamResult, FastMissing, PartyView, Reason, Recalled};
use crate::json::{self, Frag};
use crate::model::{ModelInfo, Top};
use crate::table::Standing;
use crate::time::Timestamp;
use crate::watermark::Watermark;
use crate::wire::{Mode, Shipment, Status, Str};

impl Decision {
    /// Appends this decision's wire JSON (what `serde_json::to_writer(out, self)` writes) to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        self.fields().write_json(out, |out| {
            for (i, r) in self.reasons.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                r.write_json(out);
            }
        });
    }

    fn fields(&self) -> Fields<'_> {
        Fields {
            manifest_id: &self.manifest_id,
            revision: self.revision,
            port_of_entry: self.port_of_entry,
            mode: self.mode,
            lane: self.lane,
            action: self.action,
            front_of_line: self.front_of_line,
            random_exam: self.random_exam,
            watchlist_hit: self.watchlist_hit,
            score: self.score,
            band: self.band,
            parties: &self.parties,
            shipments: &[],
            fast_missing: self.fast_missing,
            importer_standing: self.importer_standing,
            policy_version: &self.policy_version,
            model_version: self.model_version.as_deref(),
            priority: self.priority,
            history_as_of: self.history_as_of.as_deref(),
            decided_at: self.decided_at.as_ref(),
        }
    }
}

/// A decision's fields but its reasons, borrowed: what its JSON is written from. [`Decision::write_json`]
/// and [`crate::score::process_json`] (which writes a decision without building one) both go
/// through [`Fields::write_json`]; what each fills in is held to the same bytes by the golden cases and
/// `tests/verdict.rs`.
pub(crate) struct Fields<'a> {
    pub manifest_id: &'a str,
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
    pub parties: &'a [PartyView],
    /// Where a view without its shipment's id ([`PartyView::shipment`] `None`, its index set) finds it:
    /// the manifest's shipments on the JSON path, whose views carry only the index; empty for a
    /// `Decision`, whose views carry their ids.
    pub shipments: &'a [Shipment],
    pub fast_missing: FastMissing,
    pub importer_standing: Standing,
    pub policy_version: &'a str,
    pub model_version: Option<&'a str>,
    pub priority: Option<u8>,
    pub history_as_of: Option<&'a Watermark>,
    pub decided_at: Option<&'a Timestamp>,
}

impl Fields<'_> {
    /// Appends the decision's wire JSON; `reasons` appends the elements of its `reasons` array, comma
    /// separated.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>, reasons: impl FnOnce(&mut Vec<u8>)) {
        // Literals carry the quotes around the values that need no escaping (enum names, digits), so
        // each value costs one copy; the enum names come with the text up to the next value as padded
        // fragments (`json::Frag`: one fixed-size copy each).
        out.extend_from_slice(b"{\"manifest_id\":\"");
        json::escape_into(out, self.manifest_id);
        out.extend_from_slice(b"\",\"revision\":");
        json::int(out, self.revision);
        out.extend_from_slice(b",\"port_of_entry\":\"");
        out.extend_from_slice(self.port_of_entry.as_str().as_bytes());
        out.extend_from_slice(b"\",\"mode\":\"");
        mode_lane(self.mode).put(out);
        lane_action(self.lane).put(out);
        action_front(self.action).put(out);
        json::bool(out, self.front_of_line);
        out.extend_from_slice(b",\"random_exam\":");
        json::bool(out, self.random_exam);
        out.extend_from_slice(b",\"watchlist_hit\":");
        json::bool(out, self.watchlist_hit);
        out.extend_from_slice(b",\"score\":");
        json::int(out, self.score);
        out.extend_from_slice(b",\"band\":\"");
        band_reasons(self.band).put(out);
        reasons(out);
        out.extend_from_slice(b"],\"parties\":[");
        for (i, p) in self.parties.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let shipment = match (&p.shipment, p.shipment_index) {
                (Some(id), _) => Some(&**id),
                (None, Some(i)) => self.shipments.get(usize::from(i)).map(|s| &*s.shipment_id),
                (None, None) => None,
            };
            p.write_json(shipment, out);
        }
        out.extend_from_slice(b"],\"fast\":{\"eligible\":");
        json::bool(out, self.fast_missing.is_empty());
        out.extend_from_slice(b",\"missing\":[");
        for (i, c) in self.fast_missing.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::plain(out, c.as_str());
        }
        out.extend_from_slice(b"]},\"importer_standing\":");
        importer_standing(self.importer_standing).put(out);
        json::string(out, self.policy_version);
        if let Some(v) = self.model_version {
            out.extend_from_slice(b",\"model_version\":");
            json::string(out, v);
        }
        if let Some(p) = self.priority {
            out.extend_from_slice(b",\"priority\":");
            json::int(out, p);
        }
        if let Some(w) = self.history_as_of {
            // A map with integer keys: serde_json quotes each key.
            out.extend_from_slice(b",\"history_as_of\":{");
            for (i, (p, n)) in w.0.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.push(b'"');
                json::int(out, *p);
                out.extend_from_slice(b"\":");
                json::int(out, *n);
            }
            out.push(b'}');
        }
        if let Some(t) = self.decided_at {
            out.extend_from_slice(b",\"decided_at\":\"");
            t.write_rfc3339(out);
            out.push(b'"');
        }
        out.push(b'}');
    }
}

impl Reason {
    /// Appends this reason's wire JSON (as its `Serialize` impl writes it).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        write_reason(
            out,
            self.rule,
            self.points,
            self.shipment.as_deref(),
            self.floor,
            &self.detail.borrowed(),
        );
    }

    /// Appends the reason's [`crate::decision::ReasonText`] escaped as JSON string contents (no quotes):
    /// the `Display` text of its [`Detail`], written piece by piece (the formatting machinery only for
    /// floats), then the floor.
    pub fn write_text(&self, out: &mut Vec<u8>) {
        write_text(out, self.floor, &self.detail.borrowed());
    }
}

/// Appends a reason's wire JSON from its parts ([`Reason::write_json`]; `score::process_json` writes each
/// reason from its hit this way, building none).
pub(crate) fn write_reason(
    out: &mut Vec<u8>,
    rule: Rule,
    points: i32,
    shipment: Option<&str>,
    floor: Option<Action>,
    detail: &DetailRef<'_>,
) {
    rule_open(rule).put(out);
    json::int(out, points);
    out.extend_from_slice(b",\"detail\":\"");
    write_text(out, floor, detail);
    if let Some(sh) = shipment {
        out.extend_from_slice(b"\",\"shipment_id\":\"");
        json::escape_into(out, sh);
    }
    match floor {
        Some(a) => {
            out.extend_from_slice(b"\",\"creditable\":false,\"min_action\":\"");
            out.extend_from_slice(a.as_str().as_bytes());
            out.extend_from_slice(b"\"}");
        }
        None => out.extend_from_slice(b"\"}"),
    }
}

/// A reason's opening up to its points, `{"rule":"<rule>","points":`. One constant an arm, built from the
/// arm's own rule: a new rule (or role) cannot compile without its arm, and no table index can go stale.
#[inline(always)]
fn rule_open(rule: Rule) -> &'static Frag<48> {
    const fn open(rule: Rule) -> Frag<48> {
        Frag::new(&["{\"rule\":\"", rule.as_str(), "\",\"points\":"])
    }
    match rule {
        Rule::OriginCountry => &const { open(Rule::OriginCountry) },
        Rule::TransitCountry => &const { open(Rule::TransitCountry) },
        Rule::CircuitousRouting => &const { open(Rule::CircuitousRouting) },
        Rule::HtsChapter => &const { open(Rule::HtsChapter) },
        Rule::HtsHeading => &const { open(Rule::HtsHeading) },
        Rule::VagueDescription => &const { open(Rule::VagueDescription) },
        Rule::ValuePerKg => &const { open(Rule::ValuePerKg) },
        Rule::ZeroWeight => &const { open(Rule::ZeroWeight) },
        Rule::SealMissing => &const { open(Rule::SealMissing) },
        Rule::SealNotHighSecurity => &const { open(Rule::SealNotHighSecurity) },
        Rule::FilingLate => &const { open(Rule::FilingLate) },
        Rule::ImporterMissing => &const { open(Rule::ImporterMissing) },
        Rule::WatchlistId => &const { open(Rule::WatchlistId) },
        Rule::WatchlistName => &const { open(Rule::WatchlistName) },
        Rule::Ctpat(Role::Importer) => &const { open(Rule::Ctpat(Role::Importer)) },
        Rule::Ctpat(Role::Carrier) => &const { open(Rule::Ctpat(Role::Carrier)) },
        Rule::Ctpat(Role::Manufacturer) => &const { open(Rule::Ctpat(Role::Manufacturer)) },
        Rule::Ctpat(Role::Shipper) => &const { open(Rule::Ctpat(Role::Shipper)) },
        Rule::Ctpat(Role::Broker) => &const { open(Rule::Ctpat(Role::Broker)) },
        Rule::Ctpat(Role::Consignee) => &const { open(Rule::Ctpat(Role::Consignee)) },
        Rule::Ctpat(Role::Driver) => &const { open(Rule::Ctpat(Role::Driver)) },
        Rule::RandomCompliance => &const { open(Rule::RandomCompliance) },
        Rule::Model => &const { open(Rule::Model) },
        Rule::CreditCap => &const { open(Rule::CreditCap) },
        Rule::CreditUnused => &const { open(Rule::CreditUnused) },
        Rule::HistoryDiscrepancy => &const { open(Rule::HistoryDiscrepancy) },
        Rule::HistorySeizure => &const { open(Rule::HistorySeizure) },
        Rule::HistoryClean => &const { open(Rule::HistoryClean) },
    }
}

/// [`Reason::write_text`] from its parts.
fn write_text(out: &mut Vec<u8>, floor: Option<Action>, detail: &DetailRef<'_>) {
    write_detail(out, detail);
    if let Some(a) = floor {
        out.extend_from_slice(b" (not offset by CTPAT credits; at least ");
        out.extend_from_slice(a.as_str().as_bytes());
        out.push(b')');
    }
}

/// A [`Detail`] borrowed — the form the writer renders — so a reason can be written from facts that live
/// elsewhere (the manifest, the policy, the party views) without cloning them into a `Detail`; and the one
/// form a hit's facts are read into (`score`), a `Detail` being [`DetailRef::to_detail`] of it.
pub(crate) enum DetailRef<'a> {
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
        equipment: &'a str,
    },
    SealClass {
        equipment: &'a str,
        seal: &'a str,
    },
    Late {
        lead_minutes: i64,
        required: u32,
    },
    ImporterMissing,
    Watch {
        role: Role,
        value: &'a str,
        why: &'a Arc<str>,
    },
    Ctpat {
        role: Role,
        id: &'a str,
        partner_id: &'a str,
        standing: Standing,
        lapsed: bool,
        mra_program: Option<&'a str>,
    },
    Random {
        mode: Mode,
        class: &'static str,
        rate: f64,
    },
    Model {
        probability: f64,
        hts: Hts,
        top: Top,
        info: &'a Arc<ModelInfo>,
    },
    History {
        result: ExamResult,
        count: u32,
        window_days: u32,
        latest: &'a Recalled,
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

impl Detail {
    /// This detail borrowed, for the writer.
    pub(crate) fn borrowed(&self) -> DetailRef<'_> {
        match self {
            Detail::Country { country, why } => DetailRef::Country {
                country: *country,
                why,
            },
            Detail::Circuitous { transits } => DetailRef::Circuitous {
                transits: *transits,
            },
            Detail::Chapter { chapter, why } => DetailRef::Chapter {
                chapter: *chapter,
                why,
            },
            Detail::Heading { heading, why } => DetailRef::Heading {
                heading: *heading,
                why,
            },
            Detail::Vague { term } => DetailRef::Vague { term },
            Detail::ValuePerKg {
                chapter,
                value_per_kg,
                min,
                max,
            } => DetailRef::ValuePerKg {
                chapter: *chapter,
                value_per_kg: *value_per_kg,
                min: *min,
                max: *max,
            },
            Detail::ZeroWeight { hts, value_usd } => DetailRef::ZeroWeight {
                hts: *hts,
                value_usd: *value_usd,
            },
            Detail::SealMissing { equipment } => DetailRef::SealMissing { equipment },
            Detail::SealClass { equipment, seal } => DetailRef::SealClass { equipment, seal },
            Detail::Late {
                lead_minutes,
                required,
            } => DetailRef::Late {
                lead_minutes: *lead_minutes,
                required: *required,
            },
            Detail::ImporterMissing => DetailRef::ImporterMissing,
            Detail::Watch { role, value, why } => DetailRef::Watch {
                role: *role,
                value,
                why,
            },
            Detail::Ctpat {
                role,
                id,
                partner_id,
                standing,
                lapsed,
                mra_program,
            } => DetailRef::Ctpat {
                role: *role,
                id,
                partner_id,
                standing: *standing,
                lapsed: *lapsed,
                mra_program: mra_program.as_deref(),
            },
            Detail::Random { mode, class, rate } => DetailRef::Random {
                mode: *mode,
                class,
                rate: *rate,
            },
            Detail::Model {
                probability,
                hts,
                top,
                info,
            } => DetailRef::Model {
                probability: *probability,
                hts: *hts,
                top: *top,
                info,
            },
            Detail::History {
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
            Detail::CreditCap { credits, cap } => DetailRef::CreditCap {
                credits: *credits,
                cap: *cap,
            },
            Detail::CreditUnused {
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
}

impl DetailRef<'_> {
    /// The owned [`Detail`]: the policy's texts and the model's information shared (`Arc`), the rest copied.
    pub(crate) fn to_detail(&self) -> Detail {
        match *self {
            DetailRef::Country { country, why } => Detail::Country {
                country,
                why: why.clone(),
            },
            DetailRef::Circuitous { transits } => Detail::Circuitous { transits },
            DetailRef::Chapter { chapter, why } => Detail::Chapter {
                chapter,
                why: why.clone(),
            },
            DetailRef::Heading { heading, why } => Detail::Heading {
                heading,
                why: why.clone(),
            },
            DetailRef::Vague { term } => Detail::Vague { term: term.clone() },
            DetailRef::ValuePerKg {
                chapter,
                value_per_kg,
                min,
                max,
            } => Detail::ValuePerKg {
                chapter,
                value_per_kg,
                min,
                max,
            },
            DetailRef::ZeroWeight { hts, value_usd } => Detail::ZeroWeight { hts, value_usd },
            DetailRef::SealMissing { equipment } => Detail::SealMissing {
                equipment: equipment.into(),
            },
            DetailRef::SealClass { equipment, seal } => Detail::SealClass {
                equipment: equipment.into(),
                seal: seal.into(),
            },
            DetailRef::Late {
                lead_minutes,
                required,
            } => Detail::Late {
                lead_minutes,
                required,
            },
            DetailRef::ImporterMissing => Detail::ImporterMissing,
            DetailRef::Watch { role, value, why } => Detail::Watch {
                role,
                value: value.into(),
                why: why.clone(),
            },
            DetailRef::Ctpat {
                role,
                id,
                partner_id,
                standing,
                lapsed,
                mra_program,
            } => Detail::Ctpat {
                role,
                id: id.into(),
                partner_id: partner_id.into(),
                standing,
                lapsed,
                mra_program: mra_program.map(Str::from),
            },
            DetailRef::Random { mode, class, rate } => Detail::Random { mode, class, rate },
            DetailRef::Model {
                probability,
                hts,
                top,
                info,
            } => Detail::Model {
                probability,
                hts,
                top,
                info: info.clone(),
            },
            DetailRef::History {
                result,
                count,
                window_days,
                latest,
            } => Detail::History {
                result,
                count,
                window_days,
                latest: Box::new(latest.clone()),
            },
            DetailRef::CreditCap { credits, cap } => Detail::CreditCap { credits, cap },
            DetailRef::CreditUnused {
                allowed,
                creditable,
                non_creditable,
            } => Detail::CreditUnused {
                allowed,
                creditable,
                non_creditable,
            },
        }
    }
}

/// `n` in decimal, zero-padded to `width` digits (`{n:0width$}`).
fn padded(out: &mut Vec<u8>, n: u16, width: usize) {
    let mut b = itoa::Buffer::new();
    let digits = b.format(n);
    for _ in digits.len()..width {
        out.push(b'0');
    }
    out.extend_from_slice(digits.as_bytes());
}

/// `: why`, or nothing for an empty `why`.
fn why(out: &mut Vec<u8>, why: &str) {
    if !why.is_empty() {
        out.extend_from_slice(b": ");
        json::escape_into(out, why);
    }
}

/// A float through `fmt` (its digits need no escaping).
macro_rules! float {
    ($out:expr, $($fmt:tt)*) => {{
        let _ = write!(json::Raw($out), $($fmt)*);
    }};
}

/// [`Detail`]'s `Display` text, escaped. Every literal below is the corresponding literal of that impl
/// (a quote in it written as `\"`); the property test compares the two on every variant.
fn write_detail(out: &mut Vec<u8>, d: &DetailRef<'_>) {
    let esc = json::escape_into;
    match d {
        DetailRef::Country { country, why: w } => {
            out.extend_from_slice(b"country ");
            esc(out, country.as_str());
            why(out, w);
        }
        DetailRef::Circuitous { transits } => {
            out.extend_from_slice(b"routed through ");
            json::int(out, *transits);
            out.extend_from_slice(b" transit countries");
        }
        DetailRef::Chapter { chapter, why: w } => {
            out.extend_from_slice(b"HTS chapter ");
            padded(out, u16::from(*chapter), 2);
            why(out, w);
        }
        DetailRef::Heading { heading, why: w } => {
            out.extend_from_slice(b"HTS heading ");
            padded(out, *heading, 4);
            why(out, w);
        }
        DetailRef::Vague { term } => {
            out.extend_from_slice(b"description uses the vague term \\\"");
            esc(out, term);
            out.extend_from_slice(b"\\\"");
        }
        DetailRef::ValuePerKg {
            chapter,
            value_per_kg,
            min,
            max,
        } => {
            float!(
                out,
                "declared value {value_per_kg:.2} USD/kg is outside {min:.2}..{max:.2}"
            );
            out.extend_from_slice(b" for HTS chapter ");
            padded(out, u16::from(*chapter), 2);
        }
        DetailRef::ZeroWeight { hts, value_usd } => {
            out.extend_from_slice(b"HTS ");
            esc(out, hts.as_str());
            float!(out, " declares {value_usd:.2} USD at zero weight");
        }
        DetailRef::SealMissing { equipment } => {
            out.extend_from_slice(b"equipment ");
            esc(out, equipment);
            out.extend_from_slice(b" has no seal");
        }
        DetailRef::SealClass { equipment, seal } => {
            out.extend_from_slice(b"seal ");
            esc(out, seal);
            out.extend_from_slice(b" on ");
            esc(out, equipment);
            out.extend_from_slice(b" is not an ISO 17712 high-security (H) seal");
        }
        DetailRef::Late {
            lead_minutes,
            required,
        } => {
            out.extend_from_slice(b"filed ");
            json::int(out, *lead_minutes);
            out.extend_from_slice(b" min before estimated arrival, ");
            json::int(out, *required);
            out.extend_from_slice(b" min required");
        }
        DetailRef::ImporterMissing => {
            out.extend_from_slice(b"shipment names no importer of record")
        }
        DetailRef::Watch {
            role,
            value,
            why: w,
        } => {
            out.extend_from_slice(role.as_str().as_bytes());
            out.push(b' ');
            esc(out, value);
            out.extend_from_slice(b" is on the watch list");
            why(out, w);
        }
        DetailRef::Ctpat {
            role,
            id,
            partner_id,
            standing,
            lapsed,
            mra_program,
        } => {
            out.extend_from_slice(role.as_str().as_bytes());
            out.push(b' ');
            esc(out, id);
            out.extend_from_slice(b" is ");
            esc(out, partner_id);
            out.extend_from_slice(b", ");
            match standing {
                Standing::Validated { tier } => {
                    out.extend_from_slice(b"validated tier ");
                    json::int(out, *tier);
                }
                Standing::Certified if *lapsed => {
                    out.extend_from_slice(b"validation lapsed, counted as certified")
                }
                Standing::Certified => out.extend_from_slice(b"certified tier 1"),
                Standing::Mra => {
                    out.extend_from_slice(b"MRA partner (");
                    esc(out, mra_program.as_deref().unwrap_or("unknown programme"));
                    out.push(b')');
                }
                other => out.extend_from_slice(other.as_str().as_bytes()),
            }
        }
        DetailRef::Random { mode, class, rate } => {
            out.extend_from_slice(b"selected for a random compliance exam (");
            out.extend_from_slice(mode.as_str().as_bytes());
            out.extend_from_slice(b" stratum, ");
            esc(out, class);
            float!(out, " importer, rate {rate})");
        }
        DetailRef::Model {
            probability,
            hts,
            top,
            info,
        } => {
            out.extend_from_slice(b"model ");
            esc(out, &info.name);
            float!(out, " gives fraud probability {probability:.3} for HTS ");
            esc(out, hts.as_str());
            out.extend_from_slice(b"; top factors:");
            for (i, (feature, c)) in top.as_slice().iter().enumerate() {
                let name = info.features.get(*feature as usize).map_or("?", |n| n);
                out.extend_from_slice(if i == 0 { b" " } else { b", " });
                esc(out, name);
                float!(out, " {c:+.2}");
            }
        }
        DetailRef::History {
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
            json::int(out, *count);
            out.push(b' ');
            out.extend_from_slice(if *count == 1 { one } else { many }.as_bytes());
            out.extend_from_slice(b" within ");
            json::int(out, *window_days);
            out.extend_from_slice(b" days before filing; latest: ");
            write_recalled(out, latest);
        }
        DetailRef::CreditCap { credits, cap } => {
            out.extend_from_slice(b"CTPAT credits total ");
            json::int(out, *credits);
            out.extend_from_slice(b" points; at most ");
            json::int(out, *cap);
            out.extend_from_slice(b" count per manifest (ctpat.credit_cap)");
        }
        DetailRef::CreditUnused {
            allowed,
            creditable,
            non_creditable,
        } => {
            json::int(out, *allowed);
            out.extend_from_slice(b" points of CTPAT credit exceed the ");
            json::int(out, *creditable);
            out.extend_from_slice(b" creditable points; credits never offset the ");
            json::int(out, *non_creditable);
            out.extend_from_slice(b" non-creditable points");
        }
    }
}

/// [`Recalled`]'s `Display` text, escaped.
fn write_recalled(out: &mut Vec<u8>, r: &Recalled) {
    out.extend_from_slice(r.role.as_str().as_bytes());
    out.push(b' ');
    json::escape_into(out, &r.party);
    out.extend_from_slice(b", manifest ");
    json::escape_into(out, &r.manifest_id);
    out.extend_from_slice(b" revision ");
    json::int(out, r.revision);
    out.extend_from_slice(b" examined ");
    r.examined_at.write_rfc3339(out);
    out.extend_from_slice(b" at port ");
    json::escape_into(out, r.port.as_str());
}

// The decision's own enum names with the text up to the next value, like `rule_open`'s: one constant an
// arm, built from the arm's own value.

/// `<mode>","lane":"`.
#[inline(always)]
fn mode_lane(mode: Mode) -> &'static Frag<24> {
    const fn frag(mode: Mode) -> Frag<24> {
        Frag::new(&[mode.as_str(), "\",\"lane\":\""])
    }
    match mode {
        Mode::Truck => &const { frag(Mode::Truck) },
        Mode::Rail => &const { frag(Mode::Rail) },
        Mode::Ocean => &const { frag(Mode::Ocean) },
        Mode::Air => &const { frag(Mode::Air) },
    }
}

/// `<lane>","action":"`.
#[inline(always)]
fn lane_action(lane: Lane) -> &'static Frag<24> {
    const fn frag(lane: Lane) -> Frag<24> {
        Frag::new(&[lane.as_str(), "\",\"action\":\""])
    }
    match lane {
        Lane::Fast => &const { frag(Lane::Fast) },
        Lane::Standard => &const { frag(Lane::Standard) },
        Lane::None => &const { frag(Lane::None) },
    }
}

/// `<action>","front_of_line":`.
#[inline(always)]
fn action_front(action: Action) -> &'static Frag<40> {
    const fn frag(action: Action) -> Frag<40> {
        Frag::new(&[action.as_str(), "\",\"front_of_line\":"])
    }
    match action {
        Action::Release => &const { frag(Action::Release) },
        Action::DocumentReview => &const { frag(Action::DocumentReview) },
        Action::NiiScan => &const { frag(Action::NiiScan) },
        Action::Tailgate => &const { frag(Action::Tailgate) },
        Action::Intensive => &const { frag(Action::Intensive) },
    }
}

/// `<band>","reasons":[`.
#[inline(always)]
fn band_reasons(band: Band) -> &'static Frag<24> {
    const fn frag(band: Band) -> Frag<24> {
        Frag::new(&[band.as_str(), "\",\"reasons\":["])
    }
    match band {
        Band::Low => &const { frag(Band::Low) },
        Band::Medium => &const { frag(Band::Medium) },
        Band::High => &const { frag(Band::High) },
    }
}

/// `"<standing>","policy_version":` (the importer's standing).
#[inline(always)]
fn importer_standing(standing: Standing) -> &'static Frag<40> {
    const fn frag(standing: Standing) -> Frag<40> {
        Frag::new(&["\"", standing.as_str(), "\",\"policy_version\":"])
    }
    match standing {
        Standing::Removed => &const { frag(Standing::Removed) },
        Standing::Suspended => &const { frag(Standing::Suspended) },
        Standing::None => &const { frag(Standing::None) },
        Standing::Applicant => &const { frag(Standing::Applicant) },
        Standing::Mra => &const { frag(Standing::Mra) },
        Standing::Certified => &const { frag(Standing::Certified) },
        Standing::Validated { tier: 3 } => &const { frag(Standing::Validated { tier: 3 }) },
        // Every other tier has the same name (`Standing::as_str`).
        Standing::Validated { .. } => &const { frag(Standing::Validated { tier: 0 }) },
    }
}

// The party view's fragments, like `rule_open`'s: one constant an arm, built from the arm's own value.

/// A party view's opening up to its id, `{"role":"<role>","id":"`.
#[inline(always)]
fn role_open(role: Role) -> &'static Frag<32> {
    const fn open(role: Role) -> Frag<32> {
        Frag::new(&["{\"role\":\"", role.as_str(), "\",\"id\":\""])
    }
    match role {
        Role::Importer => &const { open(Role::Importer) },
        Role::Carrier => &const { open(Role::Carrier) },
        Role::Manufacturer => &const { open(Role::Manufacturer) },
        Role::Shipper => &const { open(Role::Shipper) },
        Role::Broker => &const { open(Role::Broker) },
        Role::Consignee => &const { open(Role::Consignee) },
        Role::Driver => &const { open(Role::Driver) },
    }
}

/// A party view's status and the key after it, `"<status>","tier":`.
#[inline(always)]
fn status_tier(status: Status) -> &'static Frag<24> {
    const fn tier(status: Status) -> Frag<24> {
        Frag::new(&["\"", status.as_str(), "\",\"tier\":"])
    }
    match status {
        Status::Applicant => &const { tier(Status::Applicant) },
        Status::Certified => &const { tier(Status::Certified) },
        Status::Validated => &const { tier(Status::Validated) },
        Status::Suspended => &const { tier(Status::Suspended) },
        Status::Removed => &const { tier(Status::Removed) },
    }
}

/// A party view's end: `,"standing":"<standing>"}`, or with `,"lapsed":true` before the brace.
#[inline(always)]
fn standing_close(standing: Standing, lapsed: bool) -> &'static Frag<48> {
    const fn close(standing: Standing) -> [Frag<48>; 2] {
        let name = standing.as_str();
        [
            Frag::new(&[",\"standing\":\"", name, "\"}"]),
            Frag::new(&[",\"standing\":\"", name, "\",\"lapsed\":true}"]),
        ]
    }
    let pair = match standing {
        Standing::Removed => &const { close(Standing::Removed) },
        Standing::Suspended => &const { close(Standing::Suspended) },
        Standing::None => &const { close(Standing::None) },
        Standing::Applicant => &const { close(Standing::Applicant) },
        Standing::Mra => &const { close(Standing::Mra) },
        Standing::Certified => &const { close(Standing::Certified) },
        Standing::Validated { tier: 3 } => &const { close(Standing::Validated { tier: 3 }) },
        // Every other tier has the same name (`Standing::as_str`).
        Standing::Validated { .. } => &const { close(Standing::Validated { tier: 0 }) },
    };
    &pair[usize::from(lapsed)]
}

impl PartyView {
    /// Appends this party's wire JSON with `shipment` as its shipment's id, whatever `self.shipment`
    /// holds: what its `Serialize` impl writes when `shipment` is `self.shipment`'s text, as
    /// [`Fields::write_json`] passes it (or, for a view that holds only the index, the manifest's
    /// shipment's id, the same text). The names of its role, status and standing come with the keys
    /// around them as padded fragments (`json::Frag`: one fixed-size copy each).
    pub fn write_json(&self, shipment: Option<&str>, out: &mut Vec<u8>) {
        role_open(self.role).put(out);
        json::escape_into(out, &self.id);
        if let Some(sh) = shipment {
            out.extend_from_slice(b"\",\"shipment_id\":\"");
            json::escape_into(out, sh);
        }
        match &self.partner_id {
            Some(p) => {
                out.extend_from_slice(b"\",\"partner_id\":\"");
                json::escape_into(out, p);
                out.extend_from_slice(b"\",\"status\":");
            }
            None => out.extend_from_slice(b"\",\"partner_id\":null,\"status\":"),
        }
        match self.status {
            Some(s) => status_tier(s).put(out),
            None => out.extend_from_slice(b"null,\"tier\":"),
        }
        match self.tier {
            Some(t) => json::int(out, t),
            None => out.extend_from_slice(b"null"),
        }
        standing_close(self.standing, self.lapsed).put(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every fragment against the pieces it stands for: each rule, each role, each status, each standing
    /// (every tier) with and without `lapsed` and as the importer's, each mode, lane, action and band.
    #[test]
    fn fragments_spell_the_names() {
        for (i, role) in Role::ALL.into_iter().enumerate() {
            assert_eq!(role.index(), i);
        }
        let names: std::collections::HashSet<_> = Rule::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), Rule::ALL.len(), "every rule once");
        for rule in Rule::ALL {
            let want = format!("{{\"rule\":\"{}\",\"points\":", rule.as_str());
            assert_eq!(rule_open(rule).as_bytes(), want.as_bytes(), "{rule:?}");
        }
        for role in Role::ALL {
            let want = format!("{{\"role\":\"{}\",\"id\":\"", role.as_str());
            assert_eq!(role_open(role).as_bytes(), want.as_bytes());
        }
        for status in Status::ALL {
            let want = format!("\"{}\",\"tier\":", status.as_str());
            assert_eq!(status_tier(status).as_bytes(), want.as_bytes());
        }
        let standings = Standing::UNTIERED
            .into_iter()
            .chain((0..=u8::MAX).map(|tier| Standing::Validated { tier }));
        for standing in standings {
            for lapsed in [false, true] {
                let lapse = if lapsed { ",\"lapsed\":true" } else { "" };
                let want = format!(",\"standing\":\"{}\"{lapse}}}", standing.as_str());
                assert_eq!(standing_close(standing, lapsed).as_bytes(), want.as_bytes());
                let mut out = b"x".to_vec();
                standing_close(standing, lapsed).put(&mut out);
                assert_eq!(out, [b"x", want.as_bytes()].concat());
            }
            let want = format!("\"{}\",\"policy_version\":", standing.as_str());
            assert_eq!(importer_standing(standing).as_bytes(), want.as_bytes());
        }
        for mode in Mode::ALL {
            let want = format!("{}\",\"lane\":\"", mode.as_str());
            assert_eq!(mode_lane(mode).as_bytes(), want.as_bytes());
        }
        for lane in Lane::ALL {
            let want = format!("{}\",\"action\":\"", lane.as_str());
            assert_eq!(lane_action(lane).as_bytes(), want.as_bytes());
        }
        for action in Action::ALL {
            let want = format!("{}\",\"front_of_line\":", action.as_str());
            assert_eq!(action_front(action).as_bytes(), want.as_bytes());
        }
        for band in Band::ALL {
            let want = format!("{}\",\"reasons\":[", band.as_str());
            assert_eq!(band_reasons(band).as_bytes(), want.as_bytes());
        }
    }
}
