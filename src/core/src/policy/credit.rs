//! The credit formula and what it lets a manifest reach. CTPAT lowers the odds of an exam; it never grants
//! immunity: credits offset creditable points only, their total per manifest is capped
//! (`ctpat.credit_cap`), and a non-creditable rule's points always count in full. The scorer, validation
//! and `check-policy`'s report all settle points through [`settle`], so they cannot disagree.

use crate::decision::{Action, Band, Role};

use super::doc::*;

/// Points gathered for one manifest (or one shipment of it), split by how credits may treat them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ledger {
    /// Points of rules marked `creditable = false`: never offset.
    pub non_creditable: i32,
    /// Every other rule's points, CTPAT penalties included.
    pub creditable: i32,
    /// CTPAT credits earned, as a positive number of points.
    pub credits: i32,
    /// A non-creditable rule fired (even with 0 points).
    pub non_creditable_fired: bool,
}

impl Ledger {
    /// Adds a rule's points; `creditable` as the policy marks the rule.
    #[inline]
    pub fn add(&mut self, points: i32, creditable: bool) {
        if creditable {
            self.creditable = self.creditable.saturating_add(points);
        } else {
            self.non_creditable = self.non_creditable.saturating_add(points);
            self.non_creditable_fired = true;
        }
    }

    /// Adds a CTPAT reason's points: negative is a credit, positive a penalty (creditable risk).
    #[inline]
    pub fn ctpat(&mut self, points: i32) {
        if points < 0 {
            self.credits = self.credits.saturating_sub(points);
        } else {
            self.creditable = self.creditable.saturating_add(points);
        }
    }

    pub fn merged(self, o: Ledger) -> Ledger {
        Ledger {
            non_creditable: self.non_creditable.saturating_add(o.non_creditable),
            creditable: self.creditable.saturating_add(o.creditable),
            credits: self.credits.saturating_add(o.credits),
            non_creditable_fired: self.non_creditable_fired || o.non_creditable_fired,
        }
    }
}

/// A ledger settled into a score, with the two corrections that make the listed reasons sum to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    pub score: i32,
    /// Credit beyond `ctpat.credit_cap`, disallowed (points added back; 0 when the cap does not bind).
    pub capped: i32,
    /// Allowed credit beyond the creditable points, which may not spill onto non-creditable points
    /// (points added back; 0 when no non-creditable rule fired).
    pub unused: i32,
}

/// The credit formula. Credits count up to `cap`. When a non-creditable rule fired:
/// `score = non-creditable + max(0, creditable − min(credits, cap))`; otherwise (nothing to protect)
/// `score = creditable − min(credits, cap)`, which may be negative, as before the rule existed. `score`
/// equals `non_creditable + creditable − credits + capped + unused`.
#[inline]
pub fn settle(l: Ledger, cap: i32) -> Settled {
    let allowed = l.credits.min(cap.max(0));
    let capped = l.credits.saturating_sub(allowed);
    if l.non_creditable_fired {
        let unused = allowed.saturating_sub(l.creditable).max(0);
        Settled {
            score: l
                .non_creditable
                .saturating_add(l.creditable.saturating_sub(allowed).max(0)),
            capped,
            unused,
        }
    } else {
        Settled {
            score: l
                .non_creditable
                .saturating_add(l.creditable)
                .saturating_sub(allowed),
            capped,
            unused: 0,
        }
    }
}

impl PolicyDoc {
    /// The credit cap as the scorer applies it (`i32::MAX` when the policy sets none).
    pub fn credit_cap(&self) -> i32 {
        self.ctpat.credit_cap.unwrap_or(i32::MAX)
    }

    /// The band and action a score earns from the thresholds and escalations alone (before the watch list
    /// and random compliance raise the action).
    pub fn band_action(&self, score: i32) -> (Band, Action) {
        let b = &self.bands;
        let band = if score >= b.high {
            Band::High
        } else if score >= b.medium {
            Band::Medium
        } else {
            Band::Low
        };
        let a = &self.actions;
        let mut action = match band {
            Band::Low => a.low,
            Band::Medium => a.medium,
            Band::High => a.high,
        };
        for esc in &a.escalation {
            if score >= esc.at {
                action = action.max(esc.action);
            }
        }
        (band, action)
    }

    /// The lowest score whose action is at least `action`, if any score reaches it.
    pub fn lowest_score_for(&self, action: Action) -> Option<i32> {
        let mut thresholds = vec![i32::MIN, self.bands.medium, self.bands.high];
        thresholds.extend(self.actions.escalation.iter().map(|e| e.at));
        thresholds.sort_unstable();
        thresholds
            .into_iter()
            .find(|s| self.band_action(*s).1 >= action)
    }

    /// Credit one party earns in `role` at `standing` (0 for roles without credits).
    pub fn credit_for(&self, role: Role, standing: StandingLevel) -> i32 {
        let Some(c) = self.ctpat.credits.get(&role) else {
            return 0;
        };
        match standing {
            StandingLevel::None => 0,
            StandingLevel::Certified => c.certified,
            StandingLevel::Validated => c.validated,
            StandingLevel::Tier3 => c.tier3.unwrap_or(c.validated),
        }
        .max(0)
    }

    /// The most credit one manifest can earn: every joined role once (the carrier and the scored
    /// shipment's importer, manufacturer, shipper and broker) at its best standing, MRA included.
    pub fn max_credits(&self) -> i32 {
        Role::JOINED
            .iter()
            .filter_map(|r| self.ctpat.credits.get(r))
            .map(|c| {
                c.certified
                    .max(c.validated)
                    .max(c.tier3.unwrap_or(c.validated))
                    .max(c.mra)
                    .max(0)
            })
            .fold(0i32, i32::saturating_add)
            .saturating_add(self.clean_credit())
    }

    /// The `[history]` clean-record credit (0 without the section): a credit like CTPAT's, under the cap.
    pub fn clean_credit(&self) -> i32 {
        self.history.as_ref().map_or(0, |h| h.clean_credit.max(0))
    }

    /// Every rule with points that credits may or may not offset, with where it is declared.
    pub fn guarded_rules(&self) -> Vec<GuardedRule> {
        let mut out = Vec::new();
        let c = &self.countries;
        for (kind, section, map) in [
            (RuleKind::Origin, "countries.origin", &c.origin),
            (RuleKind::Transit, "countries.transit", &c.transit),
        ] {
            for (k, r) in map {
                out.push(GuardedRule::entry(
                    kind,
                    format!("{section}.{k}"),
                    r.points,
                    r.guard(),
                ));
            }
        }
        if c.circuitous_min_transits > 0 {
            out.push(GuardedRule::scalar(
                RuleKind::Circuitous,
                "countries",
                "circuitous",
                c.circuitous_points,
                c.circuitous,
            ));
        }
        let m = &self.commodities;
        for (section, map) in [
            ("commodities.chapters", &m.chapters),
            ("commodities.headings", &m.headings),
        ] {
            for (k, r) in map {
                out.push(GuardedRule::entry(
                    RuleKind::Tariff,
                    format!("{section}.{k}"),
                    r.points,
                    r.guard(),
                ));
            }
        }
        for (k, b) in &m.value_per_kg {
            out.push(GuardedRule::entry(
                RuleKind::ValuePerKg,
                format!("commodities.value_per_kg.{k}"),
                b.points,
                b.guard(),
            ));
        }
        if !m.vague_terms.is_empty() {
            out.push(GuardedRule::scalar(
                RuleKind::Vague,
                "commodities",
                "vague",
                m.vague_points,
                m.vague,
            ));
        }
        let p = &self.plausibility;
        if p.zero_weight_points != 0 {
            out.push(GuardedRule::scalar(
                RuleKind::ZeroWeight,
                "plausibility",
                "zero_weight",
                p.zero_weight_points,
                p.zero_weight,
            ));
        }
        let s = &self.seals;
        if !s.modes.is_empty() {
            out.push(GuardedRule::scalar(
                RuleKind::SealMissing,
                "seals",
                "missing",
                s.missing_points,
                s.missing,
            ));
            out.push(GuardedRule::scalar(
                RuleKind::SealNotHighSecurity,
                "seals",
                "not_high_security",
                s.not_high_security_points,
                s.not_high_security,
            ));
        }
        out.push(GuardedRule::scalar(
            RuleKind::Late,
            "filing",
            "late",
            self.filing.late_points,
            self.filing.late,
        ));
        out.push(GuardedRule::scalar(
            RuleKind::ImporterMissing,
            "parties",
            "missing_importer",
            self.parties.missing_importer_points,
            self.parties.missing_importer,
        ));
        let w = &self.watchlist;
        if !w.ids.is_empty() || !w.names.is_empty() {
            out.push(GuardedRule {
                kind: RuleKind::Watchlist,
                path: "watchlist.creditable".into(),
                points_path: "watchlist.points".into(),
                points: w.points,
                guard: Guard {
                    creditable: w.creditable,
                    min_action: (!w.creditable).then_some(w.action),
                },
            });
        }
        if let Some(h) = &self.history {
            out.push(GuardedRule::scalar(
                RuleKind::HistoryDiscrepancy,
                "history",
                "discrepancy",
                h.discrepancy_points,
                h.discrepancy,
            ));
            out.push(GuardedRule::scalar(
                RuleKind::HistorySeizure,
                "history",
                "seizure",
                h.seizure_points,
                h.seizure,
            ));
        }
        if let Some(model) = &self.model {
            let points = match &model.curve {
                Some(c) => c.max_points,
                None => model.points.iter().map(|b| b.points).max().unwrap_or(0),
            };
            out.push(GuardedRule {
                kind: RuleKind::Model,
                path: "model".into(),
                points_path: "model".into(),
                points,
                guard: Guard::default(),
            });
        }
        out
    }

    /// What a manifest can reach under this policy: each non-creditable rule firing alone against the most
    /// credit, and for each CTPAT standing the highest score of a manifest whose every party (all five
    /// joined roles) holds it, every rule firing once at its most points.
    pub fn reach(&self) -> Reach {
        let rules = self.guarded_rules();
        let cap = self.credit_cap();
        let max_credits = self.max_credits();
        let mut alone = Vec::new();
        for r in &rules {
            let Some(min_action) = r.guard.floor() else {
                continue;
            };
            let s = settle(
                Ledger {
                    non_creditable: r.points,
                    creditable: 0,
                    credits: max_credits,
                    non_creditable_fired: true,
                },
                cap,
            );
            let (band, action) = self.band_action(s.score);
            alone.push(Alone {
                path: r.path.clone(),
                points: r.points,
                min_action,
                forced: r.kind == RuleKind::Watchlist,
                score: s.score,
                band,
                action,
            });
        }
        let mut standings = Vec::new();
        for level in StandingLevel::ALL {
            // Best entry of each rule kind, once: overall, and among non-creditable entries. A missing
            // importer and an importer's standing exclude each other.
            let (mut best_all, mut best_nc) = ([0i32; RuleKind::COUNT], [0i32; RuleKind::COUNT]);
            let mut nc_fires = false;
            for r in &rules {
                if r.kind == RuleKind::ImporterMissing && level != StandingLevel::None {
                    continue;
                }
                let k = r.kind as usize;
                best_all[k] = best_all[k].max(r.points);
                if !r.guard.creditable {
                    best_nc[k] = best_nc[k].max(r.points);
                    nc_fires = true;
                }
            }
            // Several outcomes reach `history.max_points` together (seizures first).
            if let Some(h) = &self.history {
                let (d, z) = (
                    RuleKind::HistoryDiscrepancy as usize,
                    RuleKind::HistorySeizure as usize,
                );
                best_all[z] = h.max_points;
                best_all[d] = 0;
                if !h.seizure.creditable {
                    best_nc[z] = h.max_points;
                    best_nc[d] = 0;
                } else if !h.discrepancy.creditable {
                    best_nc[d] = h.max_points;
                }
            }
            let credits: i32 = Role::JOINED
                .iter()
                .map(|role| self.credit_for(*role, level))
                .fold(0i32, i32::saturating_add);
            // (No clean-record credit here: the highest score has history points, which exclude it.)
            // Saturating: validation computes the reach of policies whose points are still out of range.
            let all = best_all.iter().copied().fold(0i32, i32::saturating_add);
            let nc = best_nc.iter().copied().fold(0i32, i32::saturating_add);
            // The most of `nc + max(0, c − credits)` and of `c − credits` over the choices is the larger
            // of (everything at its most, settled) and (only the non-creditable entries, settled).
            let everything = settle(
                Ledger {
                    non_creditable: 0,
                    creditable: all,
                    credits,
                    non_creditable_fired: false,
                },
                cap,
            )
            .score;
            let guarded = if nc_fires {
                settle(
                    Ledger {
                        non_creditable: nc,
                        creditable: 0,
                        credits,
                        non_creditable_fired: true,
                    },
                    cap,
                )
                .score
            } else {
                i32::MIN
            };
            let score = everything.max(guarded);
            let (band, action) = self.band_action(score);
            standings.push(StandingReach {
                level,
                credits,
                allowed: credits.min(cap.max(0)),
                score,
                band,
                action,
            });
        }
        Reach {
            max_credits,
            credit_cap: self.ctpat.credit_cap,
            alone,
            standings,
        }
    }
}

/// The kinds of scoring rule; a manifest's scored shipment fires each kind at most once (the watch list
/// can hit several parties; [`PolicyDoc::reach`] counts it once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    Origin,
    Transit,
    Circuitous,
    Tariff,
    ValuePerKg,
    Vague,
    ZeroWeight,
    SealMissing,
    SealNotHighSecurity,
    Late,
    ImporterMissing,
    Watchlist,
    Model,
    HistoryDiscrepancy,
    HistorySeizure,
}

impl RuleKind {
    pub const COUNT: usize = 15;
}

/// One rule (or table entry) of the policy and its credit treatment.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardedRule {
    pub kind: RuleKind,
    /// Key path of the entry (`countries.origin.KP`) or of the scalar rule's guard table (`seals.missing`).
    pub path: String,
    /// Key path of its points.
    pub points_path: String,
    pub points: i32,
    pub guard: Guard,
}

impl GuardedRule {
    fn entry(kind: RuleKind, path: String, points: i32, guard: Guard) -> GuardedRule {
        GuardedRule {
            kind,
            points_path: format!("{path}.points"),
            path,
            points,
            guard,
        }
    }
    fn scalar(kind: RuleKind, section: &str, name: &str, points: i32, guard: Guard) -> GuardedRule {
        GuardedRule {
            kind,
            path: format!("{section}.{name}"),
            points_path: format!("{section}.{name}_points"),
            points,
            guard,
        }
    }
}

/// The CTPAT standings the reach report covers (every joined party at the same standing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StandingLevel {
    None,
    Certified,
    Validated,
    Tier3,
}

impl StandingLevel {
    pub const ALL: [StandingLevel; 4] = [
        StandingLevel::None,
        StandingLevel::Certified,
        StandingLevel::Validated,
        StandingLevel::Tier3,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            StandingLevel::None => "none",
            StandingLevel::Certified => "certified",
            StandingLevel::Validated => "validated",
            StandingLevel::Tier3 => "validated_tier3",
        }
    }
}

/// A non-creditable rule firing alone against the most credit.
#[derive(Debug, Clone, PartialEq)]
pub struct Alone {
    pub path: String,
    pub points: i32,
    pub min_action: Action,
    /// The watch list forces its action whatever the score.
    pub forced: bool,
    pub score: i32,
    pub band: Band,
    pub action: Action,
}

/// The highest score at one standing.
#[derive(Debug, Clone, PartialEq)]
pub struct StandingReach {
    pub level: StandingLevel,
    /// Credit of all five joined roles at this standing, before the cap.
    pub credits: i32,
    /// After the cap.
    pub allowed: i32,
    pub score: i32,
    pub band: Band,
    pub action: Action,
}

/// What [`PolicyDoc::reach`] reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Reach {
    pub max_credits: i32,
    pub credit_cap: Option<i32>,
    pub alone: Vec<Alone>,
    pub standings: Vec<StandingReach>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(nc: i32, c: i32, k: i32, fired: bool) -> Ledger {
        Ledger {
            non_creditable: nc,
            creditable: c,
            credits: k,
            non_creditable_fired: fired,
        }
    }

    #[test]
    fn settle_follows_the_formula() {
        // The case: 380 of risk, 340 of credit, 170 of it non-creditable, cap 190.
        let s = settle(l(170, 210, 340, true), 190);
        assert_eq!(s.score, 170 + (210 - 190));
        assert_eq!(s.capped, 150);
        assert_eq!(s.unused, 0);
        // Credits beyond the creditable points do not reach the non-creditable ones.
        let s = settle(l(120, 40, 340, true), 190);
        assert_eq!((s.score, s.capped, s.unused), (120, 150, 150));
        // Nothing non-creditable fired: credits may take the score below zero (as before), up to the cap.
        let s = settle(l(0, 40, 125, false), i32::MAX);
        assert_eq!((s.score, s.capped, s.unused), (-85, 0, 0));
        let s = settle(l(0, 40, 340, false), 190);
        assert_eq!((s.score, s.capped, s.unused), (-150, 150, 0));
        // The corrections make the nominal sum equal the score.
        for (nc, c, k, f, cap) in [
            (0, 0, 0, false, 0),
            (50, -30, 200, true, 100),
            (0, 300, 10, false, 5),
            (10, 10, 10, true, i32::MAX),
        ] {
            let s = settle(l(nc, c, k, f), cap);
            assert_eq!(s.score, nc + c - k + s.capped + s.unused);
        }
    }
}
