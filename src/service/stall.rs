//! The stall detector behind `/readyz`: an assigned manifest partition is *stalled* when it has lag but its
//! position has not moved forward for `service.stall_after_ms`, or when librdkafka has not been fetching
//! it for that long (see [`is_fetching`]: a hanging transaction's unstable offsets, seed 29).
//!
//! It is fed by the manifest consumer's statistics (librdkafka, every second, on the consumer thread) and
//! judged whenever `/readyz` or `/metrics` is read, against the time of that read: a consumer thread that is
//! stuck (no statistics arrive any more) therefore shows as stalled too, with the last lag it reported.
//! Time is always passed in, so the logic is tested with an injected clock.
//!
//! Progress is the *highest* position ever seen rising — the consumer's position (records read) or the
//! stored offset (outputs acknowledged, at-least-once) — so a consumer that rewinds after every aborted
//! transaction and reads the same records again does not count as progressing.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::statistics::Partition;

/// One partition's numbers from one statistics report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Records not yet done: the larger of "not yet read" and "read but output not yet acknowledged".
    pub lag: i64,
    /// Next offset the consumer hands to the application (-1 when none yet).
    pub consumed: i64,
    /// Next offset stored for commit (-1 when none: nothing stored yet, or exactly-once, which commits
    /// offsets through the transaction instead).
    pub stored: i64,
}

impl Sample {
    /// The sample of a manifest partition in librdkafka's statistics; `None` while its end offset or the
    /// consumer's position is unknown (nothing to judge yet; after a seek, what was known is kept).
    ///
    /// The committed offset is deliberately not used: under exactly-once the offsets are committed by the
    /// transactional producer and the consumer's `committed_offset` keeps its value from the assignment.
    pub fn from_stats(p: &Partition) -> Option<Sample> {
        let end = if p.ls_offset >= 0 {
            p.ls_offset
        } else {
            p.hi_offset
        };
        if end < 0 {
            return None;
        }
        let unread = (p.app_offset >= 0).then(|| (end - p.app_offset).max(0));
        let unacknowledged = (p.stored_offset >= 0).then(|| (end - p.stored_offset).max(0));
        let lag = match (unread, unacknowledged) {
            (None, None) => return None,
            (a, b) => a.unwrap_or(0).max(b.unwrap_or(0)),
        };
        Some(Sample {
            lag,
            consumed: p.app_offset,
            stored: p.stored_offset,
        })
    }
}

/// Whether librdkafka is fetching a manifest partition (`fetch_state` "active"). A partition assigned but
/// not being fetched waits for something: its committed offset (the state is "none" or "stopped" until the
/// group coordinator gives it), an offset look-up, a leader's epoch. That is over within a round trip,
/// except when it is not: librdkafka waits for as long as it takes for a committed offset the group
/// coordinator calls unstable (`UNSTABLE_OFFSET_COMMIT`: an offset commit inside a transaction not yet
/// completed), and a *hanging* transaction — one its coordinator no longer knows, left open on the offsets'
/// partition after a broker restart (`scripts/chaos` seed 29, 2026-12-06) — never completes. A paused
/// partition stays "active".
pub fn is_fetching(p: &Partition) -> bool {
    p.fetch_state == "active"
}

/// A stalled partition, as `/readyz` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stalled {
    pub partition: i32,
    /// -1: unknown (a partition not fetched since its assignment, so without any numbers).
    pub lag: i64,
    /// Since the last progress (or since the partition was first seen).
    pub without_progress: Duration,
}

/// What the detector knows of one assigned partition.
#[derive(Debug, Clone)]
struct Track {
    /// Latest lag; -1 while no numbers have been seen (see [`Track::known`]).
    lag: i64,
    /// Highest consumer position seen.
    max_consumed: i64,
    /// Highest stored offset seen.
    max_stored: i64,
    /// When a position last rose, the lag was last 0 or appeared, or the partition was first seen.
    progressed_at: Instant,
    /// Since when librdkafka has not been fetching the partition (see [`is_fetching`]); `None` while it
    /// is. Not being fetched for `after` is a stall whatever the lag: the numbers are stale or absent.
    unfetched_since: Option<Instant>,
    /// Whether the present stretch without fetching has been reported (see
    /// [`StallDetector::observe_fetching`]).
    unfetched_reported: bool,
}

impl Track {
    /// Whether any numbers of the partition have been seen (a sample's lag is never negative; a track made
    /// without numbers has -1, unknown).
    fn known(&self) -> bool {
        self.lag >= 0
    }
}

/// See the module documentation.
pub struct StallDetector {
    /// Lag without progress for this long is a stall.
    after: Duration,
    /// Assigned partitions by id.
    partitions: Mutex<BTreeMap<i32, Track>>,
}

impl StallDetector {
    pub fn new(after: Duration) -> StallDetector {
        StallDetector {
            after,
            partitions: Mutex::new(BTreeMap::new()),
        }
    }

    /// The configured stall time.
    pub fn after(&self) -> Duration {
        self.after
    }

    /// One statistics report: every assigned partition with its sample (`None` when its numbers are not
    /// known at the moment: what was known before is kept), each being fetched. Partitions absent from the
    /// report are no longer assigned and are forgotten.
    pub fn observe(&self, now: Instant, samples: impl IntoIterator<Item = (i32, Option<Sample>)>) {
        self.observe_fetching(now, samples.into_iter().map(|(p, s)| (p, s, true)));
    }

    /// [`StallDetector::observe`] with whether each partition is being fetched ([`is_fetching`]). Returns
    /// the partitions whose stretch without fetching reached the stall time with this report, once a
    /// stretch, for the caller to log (the stall itself is judged at read time).
    pub fn observe_fetching(
        &self,
        now: Instant,
        samples: impl IntoIterator<Item = (i32, Option<Sample>, bool)>,
    ) -> Vec<i32> {
        let mut newly_unfetched = Vec::new();
        let mut parts = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen = Vec::new();
        for (partition, s, fetching) in samples {
            seen.push(partition);
            let fresh = |s: Sample| Track {
                lag: s.lag,
                max_consumed: s.consumed,
                max_stored: s.stored,
                progressed_at: now,
                unfetched_since: None,
                unfetched_reported: false,
            };
            let t = match (parts.get_mut(&partition), s) {
                // Nothing known and being fetched (an idle partition without a position): nothing to judge.
                (None, None) if fetching => continue,
                // Nothing known and not being fetched: the clock starts now, with no numbers (lag -1).
                (None, None) => parts.entry(partition).or_insert(fresh(Sample {
                    lag: -1,
                    consumed: -1,
                    stored: -1,
                })),
                // What was known is kept (a gap in the numbers, e.g. right after a seek).
                (Some(t), None) => t,
                (None, Some(s)) => parts.entry(partition).or_insert(fresh(s)),
                // Numbers at last: the partition has been fetched, which is progress.
                (Some(t), Some(s)) if !t.known() => {
                    *t = fresh(s);
                    t
                }
                (Some(t), Some(s)) => {
                    let progressed = s.consumed > t.max_consumed || s.stored > t.max_stored;
                    // Lag that just appeared starts its clock now, not at the last progress.
                    let lag_appeared = t.lag == 0 && s.lag > 0;
                    t.max_consumed = t.max_consumed.max(s.consumed);
                    t.max_stored = t.max_stored.max(s.stored);
                    t.lag = s.lag;
                    if progressed || s.lag == 0 || lag_appeared {
                        t.progressed_at = now;
                    }
                    t
                }
            };
            if fetching {
                t.unfetched_since = None;
                t.unfetched_reported = false;
            } else {
                let since = *t.unfetched_since.get_or_insert(now);
                if !t.unfetched_reported && now.saturating_duration_since(since) >= self.after {
                    t.unfetched_reported = true;
                    newly_unfetched.push(partition);
                }
            }
        }
        parts.retain(|p, _| seen.contains(p));
        newly_unfetched
    }

    /// Forgets partitions this instance no longer owns (revoked or lost).
    pub fn forget(&self, partitions: impl IntoIterator<Item = i32>) {
        let mut parts = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        for p in partitions {
            parts.remove(&p);
        }
    }

    /// Forgets every partition (the consumer stopped).
    pub fn clear(&self) {
        self.partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Assigned partitions the detector has numbers for.
    pub fn watched(&self) -> usize {
        self.partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|t| t.known())
            .count()
    }

    /// The partitions stalled at `now`, by partition id: lag without progress for `after`, or not fetched
    /// for `after`.
    pub fn stalled(&self, now: Instant) -> Vec<Stalled> {
        let parts = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        parts
            .iter()
            .filter_map(|(p, t)| {
                let lagging = (t.lag > 0).then(|| now.saturating_duration_since(t.progressed_at));
                let unfetched = t
                    .unfetched_since
                    .map(|at| now.saturating_duration_since(at));
                let without_progress = lagging.into_iter().chain(unfetched).max()?;
                (without_progress >= self.after).then_some(Stalled {
                    partition: *p,
                    lag: t.lag,
                    without_progress,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFTER: Duration = Duration::from_secs(30);

    fn s(lag: i64, consumed: i64, stored: i64) -> Option<Sample> {
        Some(Sample {
            lag,
            consumed,
            stored,
        })
    }

    /// An injected clock: `t(n)` is n seconds after an arbitrary origin.
    fn clock() -> impl Fn(u64) -> Instant {
        let origin = Instant::now();
        move |secs| origin + Duration::from_secs(secs)
    }

    #[test]
    fn lag_with_progress_is_not_a_stall() {
        let t = clock();
        let d = StallDetector::new(AFTER);
        for i in 0..100u64 {
            let pos = 10 + i as i64;
            d.observe(t(i), [(0, s(500, pos, pos - 5))]);
        }
        assert_eq!(d.stalled(t(100)), vec![]);
    }

    #[test]
    fn lag_without_progress_stalls_after_the_configured_time_and_recovers_on_progress() {
        let t = clock();
        let d = StallDetector::new(AFTER);
        d.observe(t(0), [(0, s(40, 100, 90)), (1, s(0, 7, 7))]);
        for i in 1..=29 {
            d.observe(t(i), [(0, s(40, 100, 90)), (1, s(0, 7, 7))]);
            assert_eq!(d.stalled(t(i)), vec![], "at {i} s");
        }
        let stalled = d.stalled(t(30));
        assert_eq!(
            stalled,
            vec![Stalled {
                partition: 0,
                lag: 40,
                without_progress: Duration::from_secs(30)
            }]
        );
        assert_eq!(
            d.stalled(t(75))[0].without_progress,
            Duration::from_secs(75)
        );
        // An acknowledged output moves the stored offset: progress, ready again.
        d.observe(t(76), [(0, s(39, 100, 91)), (1, s(0, 7, 7))]);
        assert_eq!(d.stalled(t(76)), vec![]);
        assert_eq!(d.stalled(t(105)), vec![]);
        assert_eq!(d.stalled(t(106)).len(), 1);
    }

    #[test]
    fn no_lag_is_never_a_stall() {
        let t = clock();
        let d = StallDetector::new(AFTER);
        d.observe(t(0), [(3, s(0, 50, 50))]);
        d.observe(t(500), [(3, s(0, 50, 50))]);
        assert_eq!(d.stalled(t(1000)), vec![]);
        // New input arrives and is not read: the clock starts when the lag appeared.
        d.observe(t(1000), [(3, s(8, 50, 50))]);
        assert_eq!(d.stalled(t(1029)), vec![]);
        d.observe(t(1029), [(3, s(9, 50, 50))]);
        assert_eq!(d.stalled(t(1029)), vec![]);
        assert_eq!(
            d.stalled(t(1030))[0].without_progress,
            Duration::from_secs(30)
        );
    }

    #[test]
    fn silence_from_a_stuck_consumer_is_judged_at_read_time() {
        let t = clock();
        let d = StallDetector::new(AFTER);
        d.observe(t(0), [(2, s(12, 5, 5))]);
        // No report arrives any more (the consumer thread is blocked): the stall shows by time alone.
        assert_eq!(d.stalled(t(10)), vec![]);
        assert_eq!(
            d.stalled(t(31)),
            vec![Stalled {
                partition: 2,
                lag: 12,
                without_progress: Duration::from_secs(31)
            }]
        );
    }

    #[test]
    fn rewinding_and_rereading_is_not_progress() {
        let t = clock();
        let d = StallDetector::new(AFTER);
        d.observe(t(0), [(0, s(100, 200, -1))]);
        // Abort, rewind to 150, read up to 200 again, abort again ... forever.
        for round in 0..10u64 {
            d.observe(t(round * 5 + 1), [(0, s(150, 150, -1))]);
            d.observe(t(round * 5 + 3), [(0, s(100, 200, -1))]);
        }
        assert_eq!(d.stalled(t(50)).len(), 1);
        // Past the old high-water mark: progress.
        d.observe(t(51), [(0, s(99, 201, -1))]);
        assert_eq!(d.stalled(t(51)), vec![]);
    }

    #[test]
    fn revoked_partitions_are_forgotten() {
        let t = clock();
        let d = StallDetector::new(AFTER);
        d.observe(t(0), [(0, s(10, 1, 1)), (1, s(10, 1, 1)), (2, s(10, 1, 1))]);
        assert_eq!(d.watched(), 3);
        assert_eq!(d.stalled(t(40)).len(), 3);
        d.forget([1]);
        assert_eq!(
            d.stalled(t(40))
                .iter()
                .map(|s| s.partition)
                .collect::<Vec<_>>(),
            vec![0, 2]
        );
        // A report without partition 2 (no longer assigned) drops it too.
        d.observe(t(41), [(0, s(10, 1, 1))]);
        assert_eq!(d.stalled(t(80)).len(), 1);
        // Re-assigned later: a fresh start, not the old stall.
        d.observe(t(81), [(0, s(10, 1, 1)), (2, s(10, 1, 1))]);
        assert_eq!(d.stalled(t(81)).len(), 1);
        d.clear();
        assert_eq!(d.stalled(t(1000)), vec![]);
    }

    #[test]
    fn unknown_numbers_keep_what_was_known() {
        // A gap in the numbers (e.g. right after a seek) does not reset the stall clock.
        let t = clock();
        let d = StallDetector::new(AFTER);
        d.observe(t(0), [(0, s(5, 1, 1))]);
        d.observe(t(20), [(0, None)]);
        assert_eq!(d.stalled(t(30)).len(), 1);
        // An assigned partition being fetched but never sampled (idle, no position) is not judged.
        d.observe(t(31), [(0, None), (1, None)]);
        assert_eq!(d.stalled(t(100)).len(), 1);
        assert_eq!(d.watched(), 1);
    }

    /// A partition librdkafka does not fetch (its committed offset unstable for good: a hanging
    /// transaction, seed 29) stalls after `after`: with its lag unknown when it never had numbers, and
    /// whatever its stale numbers say otherwise. An idle partition being fetched without a position, and a
    /// lag-0 partition whose position a seek cleared (the exactly-once rewind), are not stalled.
    #[test]
    fn a_partition_not_fetched_stalls() {
        let t = clock();
        let d = StallDetector::new(AFTER);
        for secs in [0, 10, 20, 29] {
            let reported = d.observe_fetching(
                t(secs),
                [
                    (4, None, false),            // never fetched
                    (5, s(0, 7_050, -1), false), // stale numbers, lag 0, not fetched
                    (0, None, true),             // idle, no position
                    (1, s(0, 10_086, -1), true), // lag 0
                ],
            );
            assert_eq!(reported, Vec::<i32>::new(), "at {secs} s");
        }
        assert_eq!(d.stalled(t(29)), vec![]);
        // The seek of an exactly-once rewind clears partition 1's position: its numbers are kept. The two
        // partitions not fetched for the stall time are reported, once a stretch.
        let report = |secs| {
            d.observe_fetching(
                t(secs),
                [
                    (4, None, false),
                    (5, s(0, 7_050, -1), false),
                    (0, None, true),
                    (1, None, true),
                ],
            )
        };
        assert_eq!(report(30), vec![4, 5]);
        assert_eq!(report(30), Vec::<i32>::new(), "once a stretch");
        assert_eq!(
            d.stalled(t(30)),
            vec![
                Stalled {
                    partition: 4,
                    lag: -1,
                    without_progress: AFTER
                },
                Stalled {
                    partition: 5,
                    lag: 0,
                    without_progress: AFTER
                }
            ]
        );
        assert_eq!(d.watched(), 2, "partitions 1 and 5 have numbers");
        // Fetched again with numbers: ready.
        d.observe_fetching(
            t(31),
            [
                (4, s(2_859, 7_186, -1), true),
                (5, s(2_876, 7_050, -1), true),
                (0, None, true),
                (1, None, true),
            ],
        );
        assert_eq!(d.stalled(t(31)), vec![]);
    }

    #[test]
    fn samples_from_librdkafka_statistics() {
        let p = |hi: i64, ls: i64, app: i64, stored: i64| Partition {
            hi_offset: hi,
            ls_offset: ls,
            app_offset: app,
            stored_offset: stored,
            committed_offset: 3,
            ..Partition::default()
        };
        // Nothing known yet.
        assert_eq!(Sample::from_stats(&p(-1, -1, 10, 10)), None);
        assert_eq!(Sample::from_stats(&p(100, 100, -1, -1)), None);
        // Read to 90, acknowledged to 60: 40 not done.
        assert_eq!(Sample::from_stats(&p(100, 100, 90, 60)), s(40, 90, 60));
        // Exactly-once: no stored offset; the stale committed offset is ignored.
        assert_eq!(Sample::from_stats(&p(100, 100, 100, -1)), s(0, 100, -1));
        // read_committed: the last stable offset is the end.
        assert_eq!(Sample::from_stats(&p(120, 100, 100, 100)), s(0, 100, 100));
        assert_eq!(Sample::from_stats(&p(-1, 50, 20, -1)), s(30, 20, -1));
    }
}
