//! Tallies of decisions and dead letters, and the human summary that `score` and `demo` print: counts by
//! action and lane, exam rate by the importer's CTPAT standing (the favouring, in numbers), dead letters by
//! kind. Tallies merge, so parallel workers count separately and combine.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use borderlane_core::codes::PortCode;
use borderlane_core::decision::Action;
use borderlane_core::decision::{Decision, Lane};
use borderlane_core::table::Standing;
use borderlane_core::wire::{ErrorKind, Mode};
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
    match s {
        Standing::Validated { tier: 3 } => "validated_tier3",
        Standing::Validated { .. } => "validated",
        Standing::Certified => "certified",
        Standing::Suspended | Standing::Removed => "suspended_or_removed",
        Standing::None | Standing::Applicant | Standing::Mra => "none",
    }
}

impl Tally {
    pub fn add(&mut self, d: &Decision) {
        let exam = d.action.is_exam();
        self.decisions += 1;
        *self.by_action.entry(d.action.as_str()).or_default() += 1;
        *self.by_lane.entry(d.lane.as_str()).or_default() += 1;
        self.by_importer_standing
            .entry(standing_group(d.importer_standing))
            .or_default()
            .add(exam);
        self.by_port.entry(d.port_of_entry).or_default().add(exam);
        self.by_mode.entry(d.mode.as_str()).or_default().add(exam);
        self.random_exams += d.random_exam as u64;
        self.watchlist_hits += d.watchlist_hit as u64;
        self.front_of_line += d.front_of_line as u64;
        if d.mode == Mode::Truck
            && !d
                .fast_missing
                .contains(borderlane_core::decision::FastCondition::FastLanePort)
        {
            self.fast_port_trucks += 1;
            self.fast_lane += (d.lane == Lane::Fast) as u64;
        }
    }

    pub fn add_dead_letter(&mut self, kind: ErrorKind) {
        *self.dead_letters.entry(kind.as_str()).or_default() += 1;
    }

    pub fn merge(&mut self, o: Tally) {
        self.decisions += o.decisions;
        for (k, v) in o.by_action {
            *self.by_action.entry(k).or_default() += v;
        }
        for (k, v) in o.by_lane {
            *self.by_lane.entry(k).or_default() += v;
        }
        for (k, v) in o.by_importer_standing {
            self.by_importer_standing.entry(k).or_default().merge(v);
        }
        for (k, v) in o.by_port {
            self.by_port.entry(k).or_default().merge(v);
        }
        for (k, v) in o.by_mode {
            self.by_mode.entry(k).or_default().merge(v);
        }
        self.random_exams += o.random_exams;
        self.watchlist_hits += o.watchlist_hits;
        self.front_of_line += o.front_of_line;
        self.fast_port_trucks += o.fast_port_trucks;
        self.fast_lane += o.fast_lane;
        for (k, v) in o.dead_letters {
            *self.dead_letters.entry(k).or_default() += v;
        }
    }

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
