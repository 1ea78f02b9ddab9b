//! What-if replay: score a window of manifests under a baseline and a candidate policy (in parallel on every
//! core) and report what the candidate would have changed — exam rate overall, by port, by action and by the
//! importer's CTPAT standing, FAST share, how many decisions changed with a sample of them, and the
//! high-risk threshold that would have hit a target exam rate. Used by `borderlane replay` and by the admin
//! API's simulate endpoint.
//!
//! Given recorded exam results (`replay --outcomes`), the report also judges both policies against them —
//! the targeting unit's measure: of the manifests whose exam result is known, how many each policy examines,
//! its hit rate among those (overall and by selection cause), and how many known violations it would release.
//! Results exist only for manifests examined in the field, so these rates are over that subset: a policy
//! that examines other manifests is not credited or blamed for them.

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use borderlane_core::decision::{Action, ExamResult};
use borderlane_core::outcome::{causes_from, Cause, Selection};
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::score::{
    decide, evaluate_points, resolve_facts, verdict_screened, Lookups, Screen, Verdict,
};
use borderlane_core::table::Partners;
use borderlane_core::wire::{Manifest, Str};
use rayon::prelude::*;
use serde::Serialize;

use crate::analysis::summary::{Counts, Rate, Tally, STANDING_GROUPS};

/// One side (baseline or candidate) of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub policy_version: String,
    pub policy_name: String,
    pub decisions: u64,
    /// Share of decisions with any examination.
    pub exam_rate: f64,
    /// Share with an action at least as severe as the policy's high-band action ("high-risk exams").
    pub high_exam_rate: f64,
    pub fast_share: f64,
    pub by_action: BTreeMap<&'static str, u64>,
    pub by_port: BTreeMap<String, Rate>,
    pub by_importer_standing: BTreeMap<&'static str, Rate>,
}

/// A decision that changed, with both sets of reasons.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub manifest_id: String,
    pub baseline: serde_json::Value,
    pub candidate: serde_json::Value,
}

/// The high-risk threshold that would have produced a target rate of high-risk exams under the candidate.
#[derive(Debug, Clone, Serialize)]
pub struct ThresholdSuggestion {
    pub target_exam_rate: f64,
    /// Suggested `bands.high`.
    pub high_threshold: i32,
    /// The rate of high-risk exams that threshold gives on this window (ties and forced exams make an exact
    /// hit impossible in general).
    pub achieved_rate: f64,
    /// Exams forced whatever the threshold (watch-list hits, random compliance selections).
    pub forced: u64,
    /// True when the suggestion is not above `bands.medium`, so applying it also needs a lower medium band.
    pub below_medium: bool,
}

/// Recorded exam results by `(manifest_id, revision)` (the latest version of each outcome).
pub type Results = HashMap<(String, u32), ExamResult>;

/// Exams and the ones that found something (a discrepancy or a seizure).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Hits {
    pub exams: u64,
    pub hits: u64,
}

impl Hits {
    fn add(&mut self, hit: bool) {
        self.exams += 1;
        self.hits += hit as u64;
    }
    fn merge(&mut self, o: Hits) {
        self.exams += o.exams;
        self.hits += o.hits;
    }
    pub fn rate(&self) -> f64 {
        if self.exams == 0 {
            0.0
        } else {
            self.hits as f64 / self.exams as f64
        }
    }
}

/// One policy judged against the recorded results.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Judged {
    /// Manifests with a known result that this policy examines, and how many of those found something.
    pub examined: Hits,
    /// Known violations (a recorded discrepancy or seizure) that this policy releases.
    pub hits_released: u64,
    /// Of the examined, by the decision's selection cause (`band`, `escalation`, `watch_list`, `random`,
    /// `history`; an exam may have several).
    pub by_cause: BTreeMap<&'static str, Hits>,
}

impl Judged {
    fn add(&mut self, v: &Verdict, result: ExamResult, policy: &CompiledPolicy) {
        let hit = result.is_hit();
        if !v.action.is_exam() {
            self.hits_released += hit as u64;
            return;
        }
        self.examined.add(hit);
        for c in causes_from(selection(v), &policy.doc) {
            self.by_cause.entry(c.as_str()).or_default().add(hit);
        }
    }
    fn merge(&mut self, o: Judged) {
        self.examined.merge(o.examined);
        self.hits_released += o.hits_released;
        for (k, v) in o.by_cause {
            self.by_cause.entry(k).or_default().merge(v);
        }
    }
}

/// Both policies against the recorded exam results (`replay --outcomes`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct KnownResults {
    /// Manifests of the window with a recorded exam result, and how many of those found something.
    pub with_result: Hits,
    pub baseline: Judged,
    pub candidate: Judged,
}

impl KnownResults {
    fn merge(&mut self, o: KnownResults) {
        self.with_result.merge(o.with_result);
        self.baseline.merge(o.baseline);
        self.candidate.merge(o.candidate);
    }
}

/// How a comparison runs, besides the manifests and the two policies.
#[derive(Default)]
pub struct Options<'a> {
    /// Bounds the changed decisions returned.
    pub sample_size: usize,
    /// Asks for a high-risk threshold giving this exam rate.
    pub target: Option<f64>,
    /// Counts scored manifests as they go.
    pub progress: Option<&'a AtomicU64>,
    /// Recorded exam results to judge both policies against.
    pub results: Option<&'a Results>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub manifests: u64,
    pub baseline: Side,
    pub candidate: Side,
    /// Decisions whose action, lane or front-of-line changed.
    pub changed: u64,
    pub changed_by_transition: BTreeMap<String, u64>,
    pub sample: Vec<Change>,
    pub threshold: Option<ThresholdSuggestion>,
    /// Both policies against recorded exam results; `None` without them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_results: Option<KnownResults>,
}

/// The selection facts of a verdict (what [`causes_from`] reads; the same as `causes_of` of its decision).
fn selection(v: &Verdict) -> Selection {
    Selection {
        action: v.action,
        score: v.score,
        watchlist_hit: v.watchlist_hit,
        random_exam: v.random_exam,
        history_points: v.history_points,
    }
}

#[derive(Default)]
struct Acc {
    base: Counts,
    cand: Counts,
    base_high: u64,
    cand_high: u64,
    changed: u64,
    /// Changed decisions by (baseline action, candidate action).
    transitions: [[u64; Action::ALL.len()]; Action::ALL.len()],
    /// The changed decisions with the least (manifest id, position in the window) seen, at most the
    /// sample size (a max-heap: the greatest is the one to drop). The least over the whole window, merged,
    /// is the sample — the same whatever the thread count and interleaving.
    sample: BinaryHeap<(Str, usize)>,
    /// Candidate scores of manifests whose high-risk exam is not forced.
    scores: Vec<i32>,
    forced: u64,
    known: KnownResults,
}

fn changed(a: &Verdict, b: &Verdict) -> bool {
    a.action != b.action || a.lane != b.lane || a.front_of_line != b.front_of_line
}

/// Whether two policies join parties alike (same identifier kinds, entities and revalidation period):
/// then one resolution of a manifest's parties serves both.
fn same_joins(a: &CompiledPolicy, b: &CompiledPolicy) -> bool {
    a.revalidation_days() == b.revalidation_days()
        && a.join
            .iter()
            .zip(&b.join)
            .all(|(x, y)| x.kinds == y.kinds && x.entities == y.entities)
}

/// Runs the comparison against the partner table alone (no party history, no recorded results).
/// `sample_size` bounds the changed decisions returned; `target` asks for a threshold.
pub fn compare<'a, M: std::borrow::Borrow<Manifest> + Sync>(
    manifests: &[M],
    table: impl Into<Partners<'a>>,
    baseline: &CompiledPolicy,
    candidate: &CompiledPolicy,
    sample_size: usize,
    target: Option<f64>,
    progress: Option<&AtomicU64>,
) -> Report {
    compare_with(
        manifests,
        Lookups::new(table, None),
        baseline,
        candidate,
        &Options {
            sample_size,
            target,
            progress,
            results: None,
        },
    )
}

/// Runs the comparison: both policies decide every manifest against the same `lookups` (partner table and,
/// for `replay --outcomes`, the party history), judged against `options.results` when given.
///
/// Counts come from the verdicts alone ([`evaluate`] without building decisions: no reason, party view or
/// id is built); the full decisions are built only for the changed decisions put in the sample.
pub fn compare_with<M: std::borrow::Borrow<Manifest> + Sync>(
    manifests: &[M],
    lookups: Lookups<'_>,
    baseline: &CompiledPolicy,
    candidate: &CompiledPolicy,
    options: &Options<'_>,
) -> Report {
    let (sample_size, target, progress) = (options.sample_size, options.target, options.progress);
    let base_high = baseline.doc.actions.high;
    let cand_high = candidate.doc.actions.high;
    let shared_joins = same_joins(baseline, candidate);
    // A candidate that moves only bands, actions, ports or random compliance scores every manifest as
    // the baseline does: its verdicts are concluded from the baseline's points.
    let shared_points = shared_joins && baseline.same_points(candidate);
    let acc = manifests
        .par_iter()
        .enumerate()
        .fold(Acc::default, |mut acc, (i, m)| {
            let m: &Manifest = m.borrow();
            let base_parties = resolve_facts(baseline, lookups.partners, m);
            let cand_parties = if shared_joins {
                None
            } else {
                Some(resolve_facts(candidate, lookups.partners, m))
            };
            // The candidate reads the baseline's watch-list and vague-term matches when its tables are
            // the same (the screen checks); with shared points it evaluates nothing, so none is recorded.
            let mut screen = if shared_points {
                Screen::default()
            } else {
                Screen::recording()
            };
            let points = evaluate_points(baseline, m, &base_parties, lookups.history, &mut screen);
            let base = points.verdict(baseline, m, &base_parties);
            let cand = if shared_points {
                points.verdict(candidate, m, &base_parties)
            } else {
                verdict_screened(
                    candidate,
                    m,
                    cand_parties.as_deref().unwrap_or(&base_parties[..]),
                    lookups.history,
                    &mut screen,
                )
            };
            let result = options
                .results
                .and_then(|r| r.get(&(m.manifest_id.to_string(), m.revision)))
                .copied();
            if let Some(p) = progress {
                p.fetch_add(1, Ordering::Relaxed);
            }
            acc.base.add_verdict(&base, m);
            acc.cand.add_verdict(&cand, m);
            acc.base_high += (base.action >= base_high) as u64;
            acc.cand_high += (cand.action >= cand_high) as u64;
            if cand.watchlist_hit && candidate.doc.watchlist.action >= cand_high
                || cand.random_exam && candidate.doc.random.action >= cand_high
            {
                acc.forced += 1;
            } else {
                acc.scores.push(cand.score);
            }
            if let Some(r) = result {
                acc.known.with_result.add(r.is_hit());
                acc.known.baseline.add(&base, r, baseline);
                acc.known.candidate.add(&cand, r, candidate);
            }
            if changed(&base, &cand) {
                acc.changed += 1;
                acc.transitions[base.action as usize][cand.action as usize] += 1;
                if acc.sample.len() < sample_size {
                    acc.sample.push((m.manifest_id.clone(), i));
                } else if acc
                    .sample
                    .peek()
                    .is_some_and(|(id, j)| (m.manifest_id.as_str(), i) < (id.as_str(), *j))
                {
                    acc.sample.pop();
                    acc.sample.push((m.manifest_id.clone(), i));
                }
            }
            acc
        })
        .reduce(Acc::default, |mut a, b| {
            a.base.merge(&b.base);
            a.cand.merge(&b.cand);
            a.base_high += b.base_high;
            a.cand_high += b.cand_high;
            a.changed += b.changed;
            for (x, y) in a.transitions.iter_mut().zip(b.transitions) {
                for (x, y) in x.iter_mut().zip(y) {
                    *x += y;
                }
            }
            a.sample.extend(b.sample);
            while a.sample.len() > sample_size {
                a.sample.pop();
            }
            a.scores.extend(b.scores);
            a.forced += b.forced;
            a.known.merge(b.known);
            a
        });
    // The full decisions of the sample only, in (manifest id, position) order.
    let sample = acc
        .sample
        .into_sorted_vec()
        .into_iter()
        .map(|(_, i)| {
            let m: &Manifest = manifests[i].borrow();
            let base = decide(baseline, lookups, m);
            let cand = decide(candidate, lookups, m);
            Change {
                manifest_id: base.manifest_id.to_string(),
                baseline: serde_json::to_value(&base).unwrap_or_default(),
                candidate: serde_json::to_value(&cand).unwrap_or_default(),
            }
        })
        .collect();
    let n = manifests.len() as u64;
    let threshold = target.map(|t| suggest(acc.scores, acc.forced, n, t, candidate));
    let mut transitions = BTreeMap::new();
    for (b, row) in Action::ALL.iter().zip(acc.transitions) {
        for (c, count) in Action::ALL.iter().zip(row) {
            if count > 0 {
                transitions.insert(format!("{} -> {}", b.as_str(), c.as_str()), count);
            }
        }
    }
    Report {
        manifests: n,
        baseline: side(baseline, &acc.base.tally(), acc.base_high),
        candidate: side(candidate, &acc.cand.tally(), acc.cand_high),
        changed: acc.changed,
        changed_by_transition: transitions,
        sample,
        threshold,
        known_results: options.results.map(|_| acc.known),
    }
}

fn side(policy: &CompiledPolicy, t: &Tally, high: u64) -> Side {
    let rate = |x: u64| {
        if t.decisions == 0 {
            0.0
        } else {
            x as f64 / t.decisions as f64
        }
    };
    Side {
        policy_version: policy.version.to_string(),
        policy_name: policy.doc.meta.name.clone(),
        decisions: t.decisions,
        exam_rate: rate(t.exams()),
        high_exam_rate: rate(high),
        fast_share: if t.fast_port_trucks == 0 {
            0.0
        } else {
            t.fast_lane as f64 / t.fast_port_trucks as f64
        },
        by_action: t.by_action.clone(),
        by_port: t.by_port.iter().map(|(p, r)| (p.to_string(), *r)).collect(),
        by_importer_standing: t.by_importer_standing.clone(),
    }
}

/// Smallest threshold `h` whose high-risk exam rate (forced + score >= h) does not exceed the target; if
/// even the forced exams exceed it, the threshold above every score.
fn suggest(
    mut scores: Vec<i32>,
    forced: u64,
    n: u64,
    target: f64,
    policy: &CompiledPolicy,
) -> ThresholdSuggestion {
    scores.sort_unstable_by(|a, b| b.cmp(a));
    let budget = ((target * n as f64).floor() as u64).saturating_sub(forced) as usize;
    // Walk down the distinct scores while the count at or above stays within budget.
    let mut h = scores.first().map_or(policy.doc.bands.high, |s| s + 1);
    let mut i = 0;
    while i < scores.len() {
        let s = scores[i];
        let mut j = i;
        while j < scores.len() && scores[j] == s {
            j += 1;
        }
        if j > budget {
            break;
        }
        h = s;
        i = j;
    }
    let above = scores.iter().filter(|s| **s >= h).count() as u64;
    ThresholdSuggestion {
        target_exam_rate: target,
        high_threshold: h,
        achieved_rate: if n == 0 {
            0.0
        } else {
            (forced + above) as f64 / n as f64
        },
        forced,
        below_medium: h <= policy.doc.bands.medium,
    }
}

/// Exam-rate deltas as a short text report.
pub fn render(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let b = &r.baseline;
    let c = &r.candidate;
    let _ = writeln!(s, "what-if over {} manifests", r.manifests);
    let _ = writeln!(s, "  baseline  {} {}", b.policy_name, b.policy_version);
    let _ = writeln!(s, "  candidate {} {}", c.policy_name, c.policy_version);
    let _ = writeln!(
        s,
        "\n{:<34} {:>10} {:>10} {:>9}",
        "", "baseline", "candidate", "delta"
    );
    let row = |s: &mut String, name: &str, x: f64, y: f64| {
        let _ = writeln!(
            s,
            "{:<34} {:>9.2}% {:>9.2}% {:>+8.2}pp",
            name,
            100.0 * x,
            100.0 * y,
            100.0 * (y - x)
        );
    };
    row(&mut s, "exam rate", b.exam_rate, c.exam_rate);
    row(
        &mut s,
        "high-risk exam rate",
        b.high_exam_rate,
        c.high_exam_rate,
    );
    row(
        &mut s,
        "FAST share (trucks at FAST ports)",
        b.fast_share,
        c.fast_share,
    );
    let _ = writeln!(s, "\nexam rate by importer CTPAT standing:");
    for g in STANDING_GROUPS {
        let x = b.by_importer_standing.get(g).copied().unwrap_or_default();
        let y = c.by_importer_standing.get(g).copied().unwrap_or_default();
        if x.total > 0 {
            row(&mut s, &format!("  {g}"), x.rate(), y.rate());
        }
    }
    let _ = writeln!(s, "\nexam rate by port:");
    for (port, x) in &b.by_port {
        let y = c.by_port.get(port).copied().unwrap_or_default();
        row(&mut s, &format!("  {port}"), x.rate(), y.rate());
    }
    let _ = writeln!(s, "\nby action:");
    for a in Action::ALL {
        let x = b.by_action.get(a.as_str()).copied().unwrap_or(0);
        let y = c.by_action.get(a.as_str()).copied().unwrap_or(0);
        let _ = writeln!(
            s,
            "  {:<32} {:>10} {:>10} {:>+9}",
            a.as_str(),
            x,
            y,
            y as i64 - x as i64
        );
    }
    let _ = writeln!(
        s,
        "\n{} decisions changed ({:.2}%)",
        r.changed,
        if r.manifests == 0 {
            0.0
        } else {
            100.0 * r.changed as f64 / r.manifests as f64
        }
    );
    for (t, n) in &r.changed_by_transition {
        let _ = writeln!(s, "  {t:<32} {n:>10}");
    }
    if let Some(t) = &r.threshold {
        let _ = writeln!(
            s,
            "\nfor a {:.2}% high-risk exam rate: bands.high = {} (gives {:.2}%, {} exams forced by watch list or random selection){}",
            100.0 * t.target_exam_rate,
            t.high_threshold,
            100.0 * t.achieved_rate,
            t.forced,
            if t.below_medium { "; note: at or below bands.medium, lower the medium band too" } else { "" }
        );
    }
    if let Some(k) = &r.known_results {
        render_known(&mut s, k);
    }
    s
}

fn render_known(s: &mut String, k: &KnownResults) {
    use std::fmt::Write as _;
    let _ = writeln!(
        s,
        "\nagainst recorded exam results: {} manifests with a result, {} of them found something ({:.2}%)",
        k.with_result.exams,
        k.with_result.hits,
        100.0 * k.with_result.rate()
    );
    let _ = writeln!(
        s,
        "  (results exist only for manifests examined in the field: rates below are over that subset)"
    );
    let _ = writeln!(s, "{:<34} {:>16} {:>16}", "", "baseline", "candidate");
    let cell = |h: Hits| format!("{:.2}% of {}", 100.0 * h.rate(), h.exams);
    let _ = writeln!(
        s,
        "{:<34} {:>16} {:>16}",
        "examined (hit rate of N)",
        cell(k.baseline.examined),
        cell(k.candidate.examined)
    );
    let _ = writeln!(
        s,
        "{:<34} {:>16} {:>16}",
        "known violations released", k.baseline.hits_released, k.candidate.hits_released
    );
    for c in Cause::ALL {
        let x = k
            .baseline
            .by_cause
            .get(c.as_str())
            .copied()
            .unwrap_or_default();
        let y = k
            .candidate
            .by_cause
            .get(c.as_str())
            .copied()
            .unwrap_or_default();
        if x.exams + y.exams > 0 {
            let _ = writeln!(
                s,
                "{:<34} {:>16} {:>16}",
                format!("  hit rate, cause {}", c.as_str()),
                cell(x),
                cell(y)
            );
        }
    }
}

/// A self-contained HTML report (inline SVG charts, no scripts, works offline): exam rate by port and by
/// CTPAT standing, baseline against candidate.
pub fn render_html(r: &Report) -> String {
    use std::fmt::Write as _;
    fn esc(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    }
    fn chart(title: &str, rows: &[(String, f64, f64)]) -> String {
        let mut s = String::new();
        let max = rows
            .iter()
            .flat_map(|r| [r.1, r.2])
            .fold(0.0f64, f64::max)
            .max(0.01);
        let (label_w, bar_w, row_h) = (190.0, 420.0, 34.0);
        let h = 40.0 + row_h * rows.len() as f64;
        let _ = write!(
            s,
            r#"<h2>{}</h2><svg role="img" aria-label="{}" width="{}" height="{h}" font-family="system-ui,sans-serif" font-size="13">"#,
            esc(title),
            esc(title),
            label_w + bar_w + 80.0
        );
        let _ = write!(
            s,
            r##"<rect x="{label_w}" y="4" width="12" height="12" fill="#8b949e"/><text x="{}" y="15">baseline</text><rect x="{}" y="4" width="12" height="12" fill="#d29922"/><text x="{}" y="15">candidate</text>"##,
            label_w + 16.0,
            label_w + 100.0,
            label_w + 116.0
        );
        for (i, (name, b, c)) in rows.iter().enumerate() {
            let y = 30.0 + row_h * i as f64;
            let _ = write!(
                s,
                r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                label_w - 8.0,
                y + 19.0,
                esc(name)
            );
            for (k, (v, colour)) in [(*b, "#8b949e"), (*c, "#d29922")].into_iter().enumerate() {
                let w = bar_w * v / max;
                let yy = y + 3.0 + 14.0 * k as f64;
                let _ = write!(
                    s,
                    r#"<rect x="{label_w}" y="{yy}" width="{w:.1}" height="12" fill="{colour}"/><text x="{:.1}" y="{}">{:.2}%</text>"#,
                    label_w + w + 4.0,
                    yy + 11.0,
                    100.0 * v
                );
            }
        }
        s.push_str("</svg>");
        s
    }
    let b = &r.baseline;
    let c = &r.candidate;
    let ports: Vec<(String, f64, f64)> = b
        .by_port
        .iter()
        .map(|(p, x)| {
            (
                p.clone(),
                x.rate(),
                c.by_port.get(p).copied().unwrap_or_default().rate(),
            )
        })
        .collect();
    let standings: Vec<(String, f64, f64)> = STANDING_GROUPS
        .iter()
        .filter_map(|g| {
            let x = b.by_importer_standing.get(*g)?;
            let y = c.by_importer_standing.get(*g).copied().unwrap_or_default();
            Some((g.replace('_', " "), x.rate(), y.rate()))
        })
        .collect();
    let overall = vec![
        ("any exam".to_string(), b.exam_rate, c.exam_rate),
        (
            "high-risk exam".to_string(),
            b.high_exam_rate,
            c.high_exam_rate,
        ),
        ("FAST share".to_string(), b.fast_share, c.fast_share),
    ];
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>borderlane what-if report</title>
<style>body{{font:15px/1.45 system-ui,sans-serif;max-width:900px;margin:24px auto;padding:0 16px;color:#1f2328}}pre{{background:#f6f8fa;padding:12px;overflow:auto}}</style></head><body>
<h1>What-if replay: {} manifests</h1><p>baseline <b>{}</b> <code>{}</code><br>candidate <b>{}</b> <code>{}</code></p>
<p><b>{}</b> decisions change ({:.2}%).</p>"#,
        r.manifests,
        esc(&b.policy_name),
        esc(&b.policy_version),
        esc(&c.policy_name),
        esc(&c.policy_version),
        r.changed,
        if r.manifests == 0 {
            0.0
        } else {
            100.0 * r.changed as f64 / r.manifests as f64
        }
    );
    s.push_str(&chart("Overall", &overall));
    s.push_str(&chart("Exam rate by importer CTPAT standing", &standings));
    s.push_str(&chart("Exam rate by port", &ports));
    let _ = write!(
        s,
        "<h2>Full report</h2><pre>{}</pre></body></html>",
        esc(&render(r))
    );
    s
}
