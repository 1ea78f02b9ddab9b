//! The max-throughput search: the highest offered rate a system sustains — every manifest answered, p99
//! (from the scheduled send) within the bound, and no backlog left growing when sending stops. Doubling
//! from the start rate until a step fails, then bisecting (geometrically) between the highest passing
//! and the lowest failing rate until they are within the precision.

use serde::Serialize;

use crate::driver::RunStats;

/// The search state; see the module documentation.
#[derive(Debug, Clone)]
pub struct Search {
    /// First rate tried.
    start: f64,
    /// Highest rate ever tried.
    max: f64,
    /// Stop when `fail / pass <= 1 + precision`.
    precision: f64,
    /// Highest sustainable rate seen.
    pass: Option<f64>,
    /// Lowest unsustainable rate seen.
    fail: Option<f64>,
}

/// Lowest rate the search goes down to before giving up.
const MIN_RATE: f64 = 10.0;

impl Search {
    pub fn new(start: f64, max: f64, precision: f64) -> Search {
        Search {
            start,
            max,
            precision,
            pass: None,
            fail: None,
        }
    }

    /// The next rate to try, or None when the search is done.
    pub fn next_rate(&self) -> Option<f64> {
        match (self.pass, self.fail) {
            (None, None) => Some(self.start),
            (Some(p), None) => (p < self.max).then(|| (p * 2.0).min(self.max)),
            (None, Some(f)) => (f / 2.0 >= MIN_RATE).then_some(f / 2.0),
            (Some(p), Some(f)) => (f / p > 1.0 + self.precision).then(|| (p * f).sqrt().round()),
        }
    }

    /// Records the outcome of a step at `rate`.
    pub fn record(&mut self, rate: f64, sustainable: bool) {
        if sustainable {
            self.pass = Some(self.pass.map_or(rate, |p| p.max(rate)));
        } else {
            self.fail = Some(self.fail.map_or(rate, |f| f.min(rate)));
        }
    }

    /// The highest sustainable rate found.
    pub fn best(&self) -> Option<f64> {
        self.pass
    }
}

/// Why a step was or was not sustainable.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The step's outcome.
    pub sustainable: bool,
    /// The first reason it was not, or "ok".
    pub reason: String,
}

/// A step is sustainable when nothing was lost or refused, p99 ≤ `max_p99_ms`, and the backlog when the
/// last manifest was sent is at most what `max_p99_ms` of traffic would leave in flight (a system that
/// falls behind leaves a backlog growing with the run's length).
pub fn judge(stats: &RunStats, max_p99_ms: f64) -> Verdict {
    let in_flight_bound = (stats.offered_rate * max_p99_ms / 1000.0).max(50.0) as u64;
    let reason = if stats.produce_failed > 0 {
        format!("{} manifests refused by the broker", stats.produce_failed)
    } else if stats.undelivered > 0 {
        format!(
            "{} manifests never delivered to the broker",
            stats.undelivered
        )
    } else if stats.lost > 0 {
        format!("{} manifests without output after the drain", stats.lost)
    } else if stats.p99_ms > max_p99_ms {
        format!("p99 {:.1} ms > {max_p99_ms} ms", stats.p99_ms)
    } else if stats.backlog_at_end_of_send > in_flight_bound {
        format!(
            "backlog {} at the end of sending > {in_flight_bound}",
            stats.backlog_at_end_of_send
        )
    } else {
        return Verdict {
            sustainable: true,
            reason: "ok".into(),
        };
    };
    Verdict {
        sustainable: false,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives the search against a system that sustains exactly `capacity`.
    fn find(capacity: f64, start: f64) -> (Option<f64>, usize) {
        let mut s = Search::new(start, 1e6, 0.1);
        let mut steps = 0;
        while let Some(r) = s.next_rate() {
            s.record(r, r <= capacity);
            steps += 1;
            assert!(steps < 40, "search does not converge");
        }
        (s.best(), steps)
    }

    #[test]
    fn converges_within_the_precision_from_below_and_above() {
        for (cap, start) in [(7_300.0, 1_000.0), (450.0, 1_000.0), (1_000.0, 1_000.0)] {
            let (best, _) = find(cap, start);
            let best = best.unwrap();
            assert!(best <= cap && best >= cap / 1.1, "cap {cap}: found {best}");
        }
    }

    #[test]
    fn stops_at_the_ceiling_and_gives_up_below_the_floor() {
        let mut s = Search::new(1_000.0, 3_000.0, 0.1);
        while let Some(r) = s.next_rate() {
            s.record(r, true);
        }
        assert_eq!(s.best(), Some(3_000.0));
        assert_eq!(find(1.0, 1_000.0).0, None);
    }
}
