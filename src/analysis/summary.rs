//! Tallies of decisions and dead letters, and the human summary that `score` and `demo` print: counts by
//! action and lane, exam rate by the importer's CTPAT standing (the favouring, in numbers), dead letters by
//! kind. Tallies merge, so parallel workers count separately and combine.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use borderlane_core::codes::PortCode;
use borderlane_core::decision::{Action, Decision, FastCondition, FastMissing, Lane};
use borderlane_core::score::Verdict;
use borderlane_core::table::Standing;
use borderlane_core::wire::{ErrorKind, Manifest, Mode};
use serde::Serialize;

/// Exams and total for one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Rate {
    pub total: u64,
    pub exams: u64,
}

impl Rate {
    fn add(&mut self, exam: bool) {
        self.total += 1;
        self.exams += exam as u64;
    }
    fn merge(&mut self, o: Rate) {
        self.total += o.total;
        self.exams += o.exams;
    }
    /// Share examined, 0 when empty.
    pub fn rate(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.exams as f64 / self.total as f64
        }
    }
}

/// Everything counted over a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    pub decisions: u64,
    pub by_action: BTreeMap<&'static str, u64>,
    pub by_lane: BTreeMap<&'static str, u64>,
    /// Exam rate by the weakest importer standing on the manifest.
    pub by_importer_standing: BTreeMap<&'static str, Rate>,
    /// By port of entry (serialised as the 4-digit code; the byte order of the codes is their text order).
    pub by_port: BTreeMap<PortCode, Rate>,
    pub by_mode: BTreeMap<&'static str, Rate>,
    pub random_exams: u64,
    pub watchlist_hits: u64,
    pub front_of_line: u64,
    /// Trucks at ports with FAST lanes, and how many of them got the FAST lane.
    pub fast_port_trucks: u64,
    pub fast_lane: u64,
    pub dead_letters: BTreeMap<&'static str, u64>,
}

/// The standing groups in report order, weakest first.
pub const STANDING_GROUPS: [&str; 5] = [
    "none",
    "suspended_or_removed",
    "certified",
    "validated",
    "validated_tier3",
];

/// Coarse standing groups for reporting; tier 3 stays separate because it is its own benefit level.
pub fn standing_group(s: Standing) -> &'static str {
    STANDING_GROUPS[standing_group_index(s)]
}

/// [`standing_group`] as its index in [`STANDING_GROUPS`].
pub fn standing_group_index(s: Standing) -> usize {
    match s {
        Standing::None | Standing::Applicant | Standing::Mra => 0,
        Standing::Suspended | Standing::Removed => 1,
        Standing::Certified => 2,
        Standing::Validated { tier: 3 } => 4,
        Standing::Validated { .. } => 3,
    }
}

/// What a run counts, as it counts it: arrays indexed like the enums' `ALL` lists and a small port map, so
/// counting a decision allocates nothing and compares no string. [`Counts::tally`] gives the [`Tally`] the
/// reports print (only the keys that occurred, as counting into its maps would have given).
#[derive(Debug, Clone, Default)]
pub struct Counts {
    decisions: u64,
    by_action: [u64; Action::ALL.len()],
    by_lane: [u64; Lane::ALL.len()],
    /// By standing group (index in [`STANDING_GROUPS`]).
    by_standing: [Rate; STANDING_GROUPS.len()],
    by_port: BTreeMap<PortCode, Rate>,
    by_mode: [Rate; Mode::ALL.len()],
    random_exams: u64,
    watchlist_hits: u64,
    front_of_line: u64,
    fast_port_trucks: u64,
    fast_lane: u64,
    dead_letters: [u64; ErrorKind::ALL.len()],
}

/// Index of `x` in `all` (every enum value is in its `ALL` list; 0 would only count a value missing there).
#[inline]
fn index_in<T: PartialEq>(all: &[T], x: &T) -> usize {
    all.iter().position(|a| a == x).unwrap_or(0)
}

impl Counts {
    /// Counts a decision.
    pub fn add(&mut self, d: &Decision) {
        self.count(Outcome {
            action: d.action,
            lane: d.lane,
            importer_standing: d.importer_standing,
            port: d.port_of_entry,
            mode: d.mode,
            random_exam: d.random_exam,
            watchlist_hit: d.watchlist_hit,
            front_of_line: d.front_of_line,
            fast_missing: d.fast_missing,
        });
    }

    /// Counts the decision `v` stands for (its manifest `m`), as [`Counts::add`] of that decision would.
    pub fn add_verdict(&mut self, v: &Verdict, m: &Manifest) {
        self.count(Outcome {
            action: v.action,
            lane: v.lane,
            importer_standing: v.importer_standing,
            port: m.port_of_entry,
            mode: m.mode,
            random_exam: v.random_exam,
            watchlist_hit: v.watchlist_hit,
            front_of_line: v.front_of_line,
            fast_missing: v.fast_missing,
        });
    }

    #[inline]
    fn count(&mut self, o: Outcome) {
        let exam = o.action.is_exam();
        self.decisions += 1;
        self.by_action[index_in(&Action::ALL, &o.action)] += 1;
        self.by_lane[index_in(&Lane::ALL, &o.lane)] += 1;
        self.by_standing[standing_group_index(o.importer_standing)].add(exam);
        self.by_port.entry(o.port).or_default().add(exam);
        self.by_mode[index_in(&Mode::ALL, &o.mode)].add(exam);
        self.random_exams += o.random_exam as u64;
        self.watchlist_hits += o.watchlist_hit as u64;
        self.front_of_line += o.front_of_line as u64;
        if o.mode == Mode::Truck && !o.fast_missing.contains(FastCondition::FastLanePort) {
            self.fast_port_trucks += 1;
            self.fast_lane += (o.lane == Lane::Fast) as u64;
        }
    }

    pub fn add_dead_letter(&mut self, kind: ErrorKind) {
        self.dead_letters[index_in(&ErrorKind::ALL, &kind)] += 1;
    }

    pub fn merge(&mut self, o: &Counts) {
        fn sum<const N: usize>(a: &mut [u64; N], b: &[u64; N]) {
            a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
        }
        fn rates<const N: usize>(a: &mut [Rate; N], b: &[Rate; N]) {
            a.iter_mut().zip(b).for_each(|(a, b)| a.merge(*b));
        }
        self.decisions += o.decisions;
        sum(&mut self.by_action, &o.by_action);
        sum(&mut self.by_lane, &o.by_lane);
        rates(&mut self.by_standing, &o.by_standing);
        for (k, v) in &o.by_port {
            self.by_port.entry(*k).or_default().merge(*v);
        }
        rates(&mut self.by_mode, &o.by_mode);
        self.random_exams += o.random_exams;
        self.watchlist_hits += o.watchlist_hits;
        self.front_of_line += o.front_of_line;
        self.fast_port_trucks += o.fast_port_trucks;
        self.fast_lane += o.fast_lane;
        sum(&mut self.dead_letters, &o.dead_letters);
    }

    /// The report of what was counted: every key that occurred, none that did not.
    pub fn tally(&self) -> Tally {
        fn counted<K: Ord, V: Copy>(
            keys: impl IntoIterator<Item = K>,
            values: &[V],
            occurred: impl Fn(&V) -> bool,
        ) -> BTreeMap<K, V> {
            keys.into_iter()
                .zip(values)
                .filter(|(_, v)| occurred(v))
                .map(|(k, v)| (k, *v))
                .collect()
        }
        let some = |n: &u64| *n > 0;
        let rate = |r: &Rate| r.total > 0;
        Tally {
            decisions: self.decisions,
            by_action: counted(Action::ALL.map(Action::as_str), &self.by_action, some),
            by_lane: counted(Lane::ALL.map(Lane::as_str), &self.by_lane, some),
            by_importer_standing: counted(STANDING_GROUPS, &self.by_standing, rate),
            by_port: self.by_port.clone(),
            by_mode: counted(Mode::ALL.map(Mode::as_str), &self.by_mode, rate),
            random_exams: self.random_exams,
            watchlist_hits: self.watchlist_hits,
            front_of_line: self.front_of_line,
            fast_port_trucks: self.fast_port_trucks,
            fast_lane: self.fast_lane,
            dead_letters: counted(
                ErrorKind::ALL.map(ErrorKind::as_str),
                &self.dead_letters,
                some,
            ),
        }
    }
}

/// What [`Counts`] reads of one decision.
struct Outcome {
    action: Action,
    lane: Lane,
    importer_standing: Standing,
    port: PortCode,
    mode: Mode,
    random_exam: bool,
    watchlist_hit: bool,
    front_of_line: bool,
    fast_missing: FastMissing,
}

impl Tally {
    pub fn dead_letter_total(&self) -> u64 {
        self.dead_letters.values().sum()
    }

    pub fn exams(&self) -> u64 {
        self.by_action
            .iter()
            .filter(|(a, _)| **a != Action::Release.as_str())
            .map(|(_, n)| n)
            .sum()
    }

    /// The favouring in one number per standing: how many times less often partners are examined than
    /// non-partners (exam rate of `none` over the standing's exam rate).
    pub fn favouring(&self) -> Favouring {
        let get = |g: &str| {
            self.by_importer_standing
                .get(g)
                .copied()
                .unwrap_or_default()
        };
        let mut partners = Rate::default();
        for g in ["certified", "validated", "validated_tier3"] {
            partners.merge(get(g));
        }
        Favouring {
            non_partner: get("none"),
            partners,
            by_standing: ["certified", "validated", "validated_tier3"]
                .into_iter()
                .map(|g| (g, get(g)))
                .filter(|(_, r)| r.total > 0)
                .collect(),
        }
    }

    /// The human summary.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let pct = |n: u64, d: u64| {
            if d == 0 {
                0.0
            } else {
                100.0 * n as f64 / d as f64
            }
        };
        let inputs = self.decisions + self.dead_letter_total();
        let _ = writeln!(
            s,
            "inputs {inputs}: decisions {}, dead letters {}",
            self.decisions,
            self.dead_letter_total()
        );
        let _ = writeln!(
            s,
            "exams {} ({:.1}%), random compliance {}, watch-list hits {}, front of line {}",
            self.exams(),
            pct(self.exams(), self.decisions),
            self.random_exams,
            self.watchlist_hits,
            self.front_of_line
        );
        let _ = writeln!(s, "\nby action:");
        for a in Action::ALL {
            let n = self.by_action.get(a.as_str()).copied().unwrap_or(0);
            let _ = writeln!(
                s,
                "  {:<16} {:>9}  {:>5.1}%",
                a.as_str(),
                n,
                pct(n, self.decisions)
            );
        }
        let _ = writeln!(s, "\nby lane:");
        for (l, n) in &self.by_lane {
            let _ = writeln!(s, "  {:<16} {:>9}  {:>5.1}%", l, n, pct(*n, self.decisions));
        }
        let _ = writeln!(
            s,
            "  FAST share of trucks at FAST ports: {}/{} ({:.1}%)",
            self.fast_lane,
            self.fast_port_trucks,
            pct(self.fast_lane, self.fast_port_trucks)
        );
        let _ = writeln!(s, "\nexam rate by importer CTPAT standing:");
        for g in STANDING_GROUPS {
            if let Some(r) = self.by_importer_standing.get(g) {
                let _ = writeln!(
                    s,
                    "  {:<22} {:>6.2}%  ({} of {})",
                    g,
                    100.0 * r.rate(),
                    r.exams,
                    r.total
                );
            }
        }
        if let Some(line) = self.favouring().render() {
            let _ = writeln!(s, "{line}");
        }
        if !self.dead_letters.is_empty() {
            let _ = writeln!(s, "\ndead letters by kind:");
            for (k, n) in &self.dead_letters {
                let _ = writeln!(s, "  {:<22} {:>7}", k, n);
            }
        }
        s
    }
}

/// Exam rates of non-partners and of certified and validated partners, and their ratios.
#[derive(Debug, Clone, Serialize)]
pub struct Favouring {
    pub non_partner: Rate,
    /// Certified, validated and tier 3 importers together.
    pub partners: Rate,
    pub by_standing: Vec<(&'static str, Rate)>,
}

impl Favouring {
    /// Exam rate of non-partners over `r`'s: `None` when either group is empty, infinite when partners are
    /// never examined (favouring that blinds).
    pub fn ratio(&self, r: Rate) -> Option<f64> {
        (self.non_partner.total > 0 && r.total > 0).then(|| {
            if r.exams == 0 {
                f64::INFINITY
            } else {
                self.non_partner.rate() / r.rate()
            }
        })
    }

    /// One line for the summary, when both groups have manifests.
    pub fn render(&self) -> Option<String> {
        let fmt = |x: f64| {
            if x.is_finite() {
                format!("{x:.1}x")
            } else {
                "never examined".to_string()
            }
        };
        let all = self.ratio(self.partners)?;
        let parts: Vec<String> = self
            .by_standing
            .iter()
            .filter_map(|(g, r)| self.ratio(*r).map(|x| format!("{g} {}", fmt(x))))
            .collect();
        Some(format!(
            "  favouring: non-partners examined {:.2}%, certified and validated partners {:.2}%: \
             ratio {} ({})",
            100.0 * self.non_partner.rate(),
            100.0 * self.partners.rate(),
            fmt(all),
            parts.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::gen::{GenConfig, Generator};
    use borderlane_core::score::{process, verdict};
    use borderlane_core::wire::{parse_manifest, Limits};

    /// The counts of generated traffic (decisions of every action, lane, standing, mode and port, and dead
    /// letters of several kinds), in two halves merged, give the tally of the plain count below; and
    /// counting the verdicts gives what counting the decisions gives.
    #[test]
    fn counts_tally_as_a_plain_count_and_verdicts_as_decisions() {
        let policy = crate::load::policy::default_policy();
        let g = Generator::new(
            GenConfig {
                seed: 7,
                bad_share: 0.05,
                ..GenConfig::default()
            },
            &policy,
        );
        let table = g.partner_table();
        let limits = Limits::default();
        let (mut halves, mut from_verdicts) =
            ([Counts::default(), Counts::default()], Counts::default());
        let mut plain = Tally::default();
        for i in 0..3000u64 {
            let bytes = g.record(i).to_bytes();
            let counts = &mut halves[(i % 2) as usize];
            match process(&policy, &table, &bytes, &limits) {
                Ok((m, d)) => {
                    counts.add(&d);
                    let exam = d.action.is_exam();
                    plain.decisions += 1;
                    *plain.by_action.entry(d.action.as_str()).or_default() += 1;
                    *plain.by_lane.entry(d.lane.as_str()).or_default() += 1;
                    plain
                        .by_importer_standing
                        .entry(match d.importer_standing {
                            Standing::Validated { tier: 3 } => "validated_tier3",
                            Standing::Validated { .. } => "validated",
                            Standing::Certified => "certified",
                            Standing::Suspended | Standing::Removed => "suspended_or_removed",
                            Standing::None | Standing::Applicant | Standing::Mra => "none",
                        })
                        .or_default()
                        .add(exam);
                    plain.by_port.entry(d.port_of_entry).or_default().add(exam);
                    plain.by_mode.entry(d.mode.as_str()).or_default().add(exam);
                    plain.random_exams += d.random_exam as u64;
                    plain.watchlist_hits += d.watchlist_hit as u64;
                    plain.front_of_line += d.front_of_line as u64;
                    if d.mode == Mode::Truck
                        && !d.fast_missing.contains(FastCondition::FastLanePort)
                    {
                        plain.fast_port_trucks += 1;
                        plain.fast_lane += (d.lane == Lane::Fast) as u64;
                    }
                    let parsed = parse_manifest(&bytes, &limits).unwrap();
                    assert_eq!(parsed, m);
                    from_verdicts.add_verdict(&verdict(&policy, &table, &m), &m);
                }
                Err(e) => {
                    counts.add_dead_letter(e.kind);
                    *plain.dead_letters.entry(e.kind.as_str()).or_default() += 1;
                }
            }
        }
        let [mut counts, other] = halves;
        counts.merge(&other);
        let json = |t: &Tally| serde_json::to_value(t).unwrap();
        let tally = counts.tally();
        assert_eq!(json(&tally), json(&plain));
        // Enough variety for the comparison to mean something.
        assert!(
            tally.by_action.len() >= 4 && tally.by_importer_standing.len() >= 4,
            "{tally:?}"
        );
        assert!(
            tally.by_mode.len() == 4 && tally.dead_letters.len() >= 3,
            "{tally:?}"
        );
        let decided = Tally {
            dead_letters: BTreeMap::new(),
            ..tally
        };
        assert_eq!(json(&from_verdicts.tally()), json(&decided));
    }

    #[test]
    fn favouring_ratio_by_standing() {
        let mut t = Tally::default();
        t.by_importer_standing.insert(
            "none",
            Rate {
                total: 1000,
                exams: 100,
            },
        );
        t.by_importer_standing.insert(
            "certified",
            Rate {
                total: 400,
                exams: 10,
            },
        );
        t.by_importer_standing.insert(
            "validated",
            Rate {
                total: 100,
                exams: 0,
            },
        );
        let f = t.favouring();
        assert_eq!(
            f.partners,
            Rate {
                total: 500,
                exams: 10
            }
        );
        assert_eq!(f.ratio(f.partners), Some(0.1 / 0.02));
        let line = f.render().unwrap();
        assert!(line.contains("ratio 5.0x"), "{line}");
        assert!(line.contains("certified 4.0x"), "{line}");
        assert!(line.contains("validated never examined"), "{line}");
        assert!(Tally::default().favouring().render().is_none());
    }
}
