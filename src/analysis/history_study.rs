//! The history study of `demo`: generated traffic over several days with a hidden ground truth
//! (`traffic::gen::truth`), scored day by day; every exam produces its outcome record, which goes into the
//! party history before the next day is scored. Run once with the policy's `[history]` and once without
//! it, it shows how fast history shifts selection toward the planted violators, and the hit rate of exams
//! by selection cause (the random-exam hit rate being the unbiased estimate of the violation rate).
//!
//! Deterministic: each day's manifests are decided in parallel against the history as of the watermark
//! reached at the end of the previous day, and outcomes are inserted in manifest order.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;

use borderlane_core::decision::{ExamResult, Role};
use borderlane_core::history::{History, HistoryAsOf, Position, Watermark};
use borderlane_core::outcome::Cause;
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::score::{decide, Lookups};
use borderlane_core::table::PartnerTable;
use borderlane_core::wire::{Manifest, Str};
use rayon::prelude::*;

use crate::traffic::gen::{GenConfig, Generator, Record};

/// Manifests and exams of one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rate {
    pub manifests: u64,
    pub examined: u64,
}

impl Rate {
    fn add(&mut self, examined: bool) {
        self.manifests += 1;
        self.examined += u64::from(examined);
    }
    pub fn rate(&self) -> f64 {
        self.examined as f64 / (self.manifests as f64).max(1.0)
    }
}

/// Exams by selection cause and what they found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hits {
    pub exams: u64,
    pub discrepancies: u64,
    pub seizures: u64,
}

impl Hits {
    pub fn hit_rate(&self) -> f64 {
        (self.discrepancies + self.seizures) as f64 / (self.exams as f64).max(1.0)
    }
}

/// One run of the study (with or without `[history]`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Run {
    /// Manifests with a rogue importer (hidden truth), first and second half of the period.
    pub rogue: [Rate; 2],
    /// Every other manifest, by half.
    pub others: [Rate; 2],
    /// Manifests with a party (in the policy's history roles, or importer, manufacturer and shipper) that an
    /// earlier exam found something on, and the rest (second half).
    pub flagged: Rate,
    pub unflagged: Rate,
    /// Planted violations by half, and how many were examined and found.
    pub violations: [u64; 2],
    pub violations_examined: [u64; 2],
    pub violations_found: [u64; 2],
    /// By cause, in [`Cause::ALL`] order.
    pub by_cause: [Hits; 5],
    pub all: Hits,
    /// Outcome records inserted.
    pub outcomes: u64,
}

/// Both runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Study {
    pub days: u32,
    pub manifests: u64,
    pub with_history: Run,
    pub without_history: Run,
}

/// Runs the study: `manifests` generated over `days` days (seed and pools of `base`).
pub fn run(
    policy: &CompiledPolicy,
    base: &GenConfig,
    table: &PartnerTable,
    manifests: u64,
    days: u32,
) -> Study {
    let cfg = GenConfig {
        span_secs: i64::from(days.max(1)) * 86_400,
        bad_share: 0.0,
        ..base.clone()
    };
    let g = Generator::new(cfg.clone(), policy);
    let mut ms: Vec<Manifest> = (0..manifests)
        .into_par_iter()
        .filter_map(|i| match g.record(i) {
            Record::Good(m) => Some(*m),
            Record::Bad { .. } => None,
        })
        .collect();
    ms.sort_by_key(|m| m.filed_at);
    let start = cfg.start.unix_seconds();
    let day_of = |m: &Manifest| ((m.filed_at.unix_seconds() - start).max(0) / 86_400) as u32;
    let mut by_day: Vec<Vec<&Manifest>> = vec![Vec::new(); days.max(1) as usize];
    for m in &ms {
        let d = (day_of(m) as usize).min(by_day.len() - 1);
        by_day[d].push(m);
    }
    let without = policy.without_history();
    Study {
        days,
        manifests: ms.len() as u64,
        with_history: one_run(policy, &g, table, &by_day),
        without_history: one_run(&without, &g, table, &by_day),
    }
}

fn one_run(
    policy: &CompiledPolicy,
    g: &Generator,
    table: &PartnerTable,
    by_day: &[Vec<&Manifest>],
) -> Run {
    let history = History::new();
    let mut next: u64 = 0;
    let mut run = Run::default();
    let roles: Vec<Role> = policy
        .doc
        .history
        .as_ref()
        .map(|h| h.roles.clone())
        .unwrap_or_else(|| vec![Role::Importer, Role::Manufacturer, Role::Shipper]);
    let mut found_parties: HashSet<(Role, Str)> = HashSet::new();
    let half = by_day.len().div_ceil(2);
    for (day, manifests) in by_day.iter().enumerate() {
        let h = usize::from(day >= half);
        let as_of = Arc::new(Watermark::parse(&next.to_string()).unwrap_or_default());
        let decisions: Vec<_> = manifests
            .par_iter()
            .map(|m| {
                let lookups = Lookups::new(
                    table,
                    Some(HistoryAsOf {
                        history: &history,
                        as_of: &as_of,
                    }),
                );
                decide(policy, lookups, m)
            })
            .collect();
        let mut found_today = Vec::new();
        for (m, d) in manifests.iter().zip(&decisions) {
            let examined = d.action.is_exam();
            if g.has_rogue_importer(m) {
                run.rogue[h].add(examined);
            } else {
                run.others[h].add(examined);
            }
            if h == 1 {
                let flagged = d.parties.iter().any(|p| {
                    roles.contains(&p.role) && found_parties.contains(&(p.role, p.id.clone()))
                });
                if flagged {
                    run.flagged.add(examined);
                } else {
                    run.unflagged.add(examined);
                }
            }
            let truth = g.truth(m);
            if truth.is_some() {
                run.violations[h] += 1;
                run.violations_examined[h] += u64::from(examined);
            }
            let Some(o) = g.exam_outcome(m, d, &policy.doc) else {
                continue;
            };
            let tally = |hits: &mut Hits| {
                hits.exams += 1;
                match o.result {
                    ExamResult::NoDiscrepancy => {}
                    ExamResult::Discrepancy => hits.discrepancies += 1,
                    ExamResult::Seizure => hits.seizures += 1,
                }
            };
            tally(&mut run.all);
            for c in &o.causes {
                tally(&mut run.by_cause[*c as usize]);
            }
            if o.result.is_hit() {
                run.violations_found[h] += 1;
                found_today.extend(o.parties.iter().map(|p| (p.role, p.id.clone())));
            }
            history.insert(
                Position {
                    partition: 0,
                    offset: next,
                },
                &o,
            );
            next += 1;
            run.outcomes += 1;
        }
        found_parties.extend(found_today);
    }
    run
}

fn pct(x: f64) -> String {
    format!("{:5.1} %", 100.0 * x)
}

impl Study {
    pub fn render(&self) -> String {
        let mut s = String::new();
        let (w, o) = (&self.with_history, &self.without_history);
        let _ = writeln!(
            s,
            "history study: {} manifests over {} days, hidden truth: {:.0} % of importer identities rogue; \
             exam outcomes feed the party history day by day",
            self.manifests,
            self.days,
            100.0 * crate::traffic::gen::ROGUE_SHARE
        );
        let _ = writeln!(
            s,
            "                                              with [history]   without"
        );
        for (label, a, b) in [
            (
                "exam rate, rogue importers, first half",
                w.rogue[0],
                o.rogue[0],
            ),
            (
                "exam rate, rogue importers, second half",
                w.rogue[1],
                o.rogue[1],
            ),
            (
                "exam rate, other importers, first half",
                w.others[0],
                o.others[0],
            ),
            (
                "exam rate, other importers, second half",
                w.others[1],
                o.others[1],
            ),
            ("2nd half, parties found before", w.flagged, o.flagged),
            ("2nd half, parties never found", w.unflagged, o.unflagged),
        ] {
            let _ = writeln!(
                s,
                "  {label:<44} {} ({:>6}) {} ({:>6})",
                pct(a.rate()),
                a.manifests,
                pct(b.rate()),
                b.manifests
            );
        }
        for (label, f) in [
            ("planted violations examined, first half", 0usize),
            ("planted violations examined, second half", 1),
        ] {
            let r =
                |run: &Run| run.violations_examined[f] as f64 / (run.violations[f] as f64).max(1.0);
            let _ = writeln!(
                s,
                "  {label:<44} {} ({:>6}) {} ({:>6})",
                pct(r(w)),
                w.violations[f],
                pct(r(o)),
                o.violations[f]
            );
        }
        for (label, f) in [
            ("planted violations found, first half", 0usize),
            ("planted violations found, second half", 1),
        ] {
            let r =
                |run: &Run| run.violations_found[f] as f64 / (run.violations[f] as f64).max(1.0);
            let _ = writeln!(s, "  {label:<44} {}          {}", pct(r(w)), pct(r(o)));
        }
        let _ = writeln!(
            s,
            "hit rate of exams by selection cause (with [history]; an exam may have several causes):"
        );
        for c in Cause::ALL {
            let h = w.by_cause[c as usize];
            let _ = writeln!(
                s,
                "  {:<12} {:>7} exams  {:>6} discrepancies  {:>5} seizures  hit rate {}{}",
                c.as_str(),
                h.exams,
                h.discrepancies,
                h.seizures,
                pct(h.hit_rate()),
                if c == Cause::Random {
                    "  (random exams: the unbiased estimate of the violation rate among non-exempt manifests)"
                } else {
                    ""
                }
            );
        }
        let _ = writeln!(
            s,
            "  {:<12} {:>7} exams  {:>6} discrepancies  {:>5} seizures  hit rate {}  ({} outcome records)",
            "all",
            w.all.exams,
            w.all.discrepancies,
            w.all.seizures,
            pct(w.all.hit_rate()),
            w.outcomes
        );
        s
    }
}
