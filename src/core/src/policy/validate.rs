//! Whole-document validation of a policy: every problem at once, each with its key path — type and
//! unknown-key errors from the schema pass ([`crate::schema`]), then the semantic rules (codes, ranges,
//! severity ordering, the statutory cap on certified-only credit, monotonic credits so favouring can never
//! invert).

use crate::codes::{Country, PortCode};
use crate::decision::Role;
use crate::schema::PathError;
use crate::wire::Mode;

use super::credit::RuleKind;
use super::doc::*;

struct Errors(Vec<PathError>);

impl Errors {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(PathError {
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
        (-MAX_ABS_POINTS..=MAX_ABS_POINTS).contains(&p),
        path,
        format!("{p} is outside -{MAX_ABS_POINTS}..={MAX_ABS_POINTS}"),
    );
}

fn check_non_negative(e: &mut Errors, path: &str, p: i32) {
    e.check(p >= 0, path, format!("must not be negative, is {p}"));
    check_points(e, path, p);
}

impl PolicyDoc {
    /// Every semantic problem of an already well-typed document.
    pub fn validate(&self) -> Vec<PathError> {
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
        if let Some(cap) = t.credit_cap {
            check_non_negative(&mut e, "ctpat.credit_cap", cap);
        }
        validate_guards(&mut e, self);
        validate_plausibility(&mut e, &self.plausibility);
        if let Some(m) = &self.model {
            validate_model_section(&mut e, m);
        }
        if let Some(h) = &self.history {
            validate_history(&mut e, h);
        }
        e.0
    }
}

/// Credit treatment of every rule: `min_action` only on non-creditable rules and required there, an
/// examination; non-creditable points never negative; and no non-creditable rule that, firing alone against
/// the most credit any manifest can earn, would score below its `min_action` (the watch list forces its
/// `action` whatever the score, so it only needs `creditable`).
fn validate_guards(e: &mut Errors, doc: &PolicyDoc) {
    let reach = doc.reach();
    for r in doc.guarded_rules() {
        if r.kind == RuleKind::Watchlist || r.kind == RuleKind::Model {
            continue;
        }
        let at = format!("{}.min_action", r.path);
        match (r.guard.creditable, r.guard.min_action) {
            (true, Some(_)) => e.add(
                at,
                "only a non-creditable rule declares a min_action (set creditable = false)",
            ),
            (true, None) => {}
            (false, None) => e.add(
                at,
                "a non-creditable rule must declare the least action it guarantees (min_action)",
            ),
            (false, Some(a)) => {
                e.check(
                    a.is_exam(),
                    &at,
                    "must be an examination: a non-creditable rule exists so that no standing releases it",
                );
                e.check(
                    r.points >= 0,
                    &r.points_path,
                    format!("a non-creditable rule adds risk; {} is negative", r.points),
                );
                let Some(x) = reach.alone.iter().find(|x| x.path == r.path) else {
                    continue;
                };
                if x.action < a && a.is_exam() {
                    let need = match doc.lowest_score_for(a) {
                        Some(s) => format!("at least {s} points"),
                        None => "a score no band or escalation gives".to_string(),
                    };
                    let cap = match doc.ctpat.credit_cap {
                        Some(c) => format!(", capped at {c}"),
                        None => String::new(),
                    };
                    e.add(
                        at,
                        format!(
                            "firing alone against the most credit ({}{cap}) it scores {} ({} band, {}), below its min_action {}, which needs {need}; raise {} or lower min_action",
                            reach.max_credits,
                            x.score,
                            x.band.as_str(),
                            x.action.as_str(),
                            a.as_str(),
                            r.points_path,
                        ),
                    );
                }
            }
        }
    }
}

/// The `[plausibility]` section: every limit a positive finite number, the zero-weight points a risk (never a
/// credit).
fn validate_plausibility(e: &mut Errors, p: &Plausibility) {
    for (key, v) in [
        ("max_weight_kg", p.max_weight_kg),
        ("max_value_usd", p.max_value_usd),
        ("max_quantity", p.max_quantity),
        ("max_value_per_kg", p.max_value_per_kg),
    ] {
        e.check(
            v.is_finite() && v > 0.0,
            format!("plausibility.{key}"),
            format!("{v} is not a positive finite number"),
        );
    }
    check_non_negative(e, "plausibility.zero_weight_points", p.zero_weight_points);
}

/// The `[history]` section: a window of 1 to 3650 days; joined roles, each once; non-negative points that
/// are monotone (a seizure never costs less than a discrepancy, the cap takes at least one seizure); a
/// clean-record credit no larger than one discrepancy, and only with a number of exams to earn it. The
/// guards of `history.discrepancy` / `history.seizure` are checked with every other rule's.
fn validate_history(e: &mut Errors, h: &HistorySection) {
    e.check(
        (1..=3650).contains(&h.window_days),
        "history.window_days",
        format!("{} is not in 1..=3650", h.window_days),
    );
    e.check(!h.roles.is_empty(), "history.roles", "names no role");
    for (i, r) in h.roles.iter().enumerate() {
        e.check(
            Role::JOINED.contains(r),
            format!("history.roles[{i}]"),
            format!(
                "{} is not a joined role (importer, carrier, manufacturer, shipper, broker)",
                r.as_str()
            ),
        );
        e.check(
            !h.roles[..i].contains(r),
            format!("history.roles[{i}]"),
            format!("{} is listed twice", r.as_str()),
        );
    }
    check_non_negative(e, "history.discrepancy_points", h.discrepancy_points);
    check_non_negative(e, "history.seizure_points", h.seizure_points);
    check_non_negative(e, "history.max_points", h.max_points);
    check_non_negative(e, "history.clean_credit", h.clean_credit);
    e.check(
        h.seizure_points >= h.discrepancy_points,
        "history.seizure_points",
        format!(
            "{} is below discrepancy_points ({}): a seizure must never cost less than a discrepancy",
            h.seizure_points, h.discrepancy_points
        ),
    );
    e.check(
        h.max_points >= h.seizure_points,
        "history.max_points",
        format!(
            "{} is below seizure_points ({}): one seizure must count in full",
            h.max_points, h.seizure_points
        ),
    );
    e.check(
        h.clean_credit <= h.discrepancy_points,
        "history.clean_credit",
        format!(
            "{} is above discrepancy_points ({}): a clean record may not earn more than one discrepancy costs",
            h.clean_credit, h.discrepancy_points
        ),
    );
    e.check(
        h.clean_credit == 0 || h.clean_min_exams > 0,
        "history.clean_min_exams",
        "a clean_credit needs the number of exams that earns it (at least 1)",
    );
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

/// Parses and validates a policy document: every schema error and every semantic error, with key paths.
pub fn parse_policy(text: &str) -> Result<PolicyDoc, Vec<PathError>> {
    let doc: PolicyDoc = crate::schema::from_toml(text).map_err(|errs| {
        errs.into_iter()
            .map(|e| PathError {
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
