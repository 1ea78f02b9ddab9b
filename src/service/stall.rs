//! The stall detector behind `/readyz`: an assigned manifest partition is *stalled* when it has lag but its
//! position has not moved forward for `service.stall_after_ms`.
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
    /// The sample of a manifest partition in librdkafka's statistics; `None` while its end offset is
    /// unknown (nothing to judge yet).
    ///
    /// While the consumer has no position in the partition yet (nothing read or stored since the
    /// assignment), the lag counts from the committed offset, or — while that is not known either — from
    /// the partition's first offset, the most there can be to do. A partition that never gets a position
    /// is thereby judged, and stalls: librdkafka waits for as long as it takes for a committed offset the
    /// group coordinator calls unstable (`UNSTABLE_OFFSET_COMMIT`: an offset commit inside a transaction
    /// not yet completed), and a *hanging* transaction — one its coordinator no longer knows, left open on
    /// the offsets' partition after a broker restart (seen in `scripts/chaos` seed 29, 2026-12-06) — never
    /// completes, so the partition would otherwise sit unread forever with `/readyz` ready.
    ///
    /// Once there is a position the committed offset is not used: under exactly-once the offsets are
    /// committed by the transactional producer and the consumer's `committed_offset` keeps its value from
    /// the assignment.
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
            (None, None) if p.committed_offset >= 0 => (end - p.committed_offset).max(0),
            (None, None) => (end - p.lo_offset.max(0)).max(0),
            (a, b) => a.unwrap_or(0).max(b.unwrap_or(0)),
        };
        Some(Sample {
            lag,
            consumed: p.app_offset,
            stored: p.stored_offset,
        })
    }
}

/// A stalled partition, as `/readyz` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stalled {
    pub partition: i32,
    /// -1: unknown (a partition assigned for `stall_after_ms` without any numbers: never fetched).
    pub lag: i64,
    /// Since the last progress (or since the partition was first seen).
    pub without_progress: Duration,
}

/// What the detector knows of one assigned partition.
#[derive(Debug, Clone)]
struct Track {
    /// Latest lag.
    lag: i64,
    /// Highest consumer position seen.
    max_consumed: i64,
    /// Highest stored offset seen.
    max_stored: i64,
    /// When a position last rose, the lag was last 0 or appeared, or the partition was first seen.
    progressed_at: Instant,
    /// Whether any numbers of the partition have been seen. A partition assigned whose numbers never come
    /// is not being fetched (its end offset comes with every fetch, ~every `fetch.wait.max.ms`): e.g.
    /// librdkafka waiting for a committed offset the group coordinator calls unstable for good (a hanging
    /// transaction's offset commit; seen in `scripts/chaos` seed 29, 2026-12-06) holds the whole
    /// assignment unfetched. It stalls after `after` with its lag unknown.
    known: bool,
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
    /// known at the moment: what was known before is kept). Partitions absent from the report are no
    /// longer assigned and are forgotten.
    pub fn observe(&self, now: Instant, samples: impl IntoIterator<Item = (i32, Option<Sample>)>) {
        let mut parts = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen = Vec::new();
        for (partition, s) in samples {
            seen.push(partition);
            let fresh = |s: Sample| Track {
                lag: s.lag,
                max_consumed: s.consumed,
                max_stored: s.stored,
                progressed_at: now,
                known: true,
            };
            match (parts.get_mut(&partition), s) {
                // Assigned, no numbers yet: the clock starts now.
                (None, None) => {
                    parts.insert(
                        partition,
                        Track {
                            lag: -1,
                            max_consumed: -1,
                            max_stored: -1,
                            progressed_at: now,
                            known: false,
                        },
                    );
                }
                // What was known is kept (a gap in the numbers, e.g. right after a seek).
                (Some(_), None) => {}
                (None, Some(s)) => {
                    parts.insert(partition, fresh(s));
                }
                // Numbers at last: the partition is being fetched, which is progress.
                (Some(t), Some(s)) if !t.known => *t = fresh(s),
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
                }
            }
        }
        parts.retain(|p, _| seen.contains(p));
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
            .filter(|t| t.known)
            .count()
    }

    /// The partitions stalled at `now`, by partition id.
    pub fn stalled(&self, now: Instant) -> Vec<Stalled> {
        let parts = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        parts
            .iter()
            .filter_map(|(p, t)| {
                let without_progress = now.saturating_duration_since(t.progressed_at);
                ((t.lag > 0 || !t.known) && without_progress >= self.after).then_some(Stalled {
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
        // An assigned partition without any numbers is judged too, its lag unknown: it is not being
        // fetched. It is not among the watched ones.
        d.observe(t(31), [(0, None), (1, None)]);
        assert_eq!(d.watched(), 1);
        assert_eq!(d.stalled(t(60)).len(), 1, "partition 1 for 29 s");
        assert_eq!(
            d.stalled(t(61))[1],
            Stalled {
                partition: 1,
                lag: -1,
                without_progress: Duration::from_secs(30)
            }
        );
        // Its first numbers are progress.
        d.observe(t(62), [(0, None), (1, s(3, 10, 10))]);
        assert_eq!(d.watched(), 2);
        assert_eq!(
            d.stalled(t(62))
                .iter()
                .map(|s| s.partition)
                .collect::<Vec<_>>(),
            vec![0]
        );
    }

    /// A partition assigned but never given a position (its committed offset unstable for good: a hanging
    /// transaction) stalls; an idle one at its committed offset does not.
    #[test]
    fn a_partition_that_never_gets_a_position_stalls() {
        let t = clock();
        let d = StallDetector::new(AFTER);
        let stuck = Partition {
            lo_offset: 0,
            hi_offset: 10_045,
            ls_offset: 10_045,
            app_offset: -1001,
            stored_offset: -1001,
            committed_offset: -1001,
            ..Partition::default()
        };
        let idle = Partition {
            committed_offset: 10_074,
            ..stuck.clone()
        };
        let idle = Partition {
            hi_offset: 10_074,
            ls_offset: 10_074,
            ..idle
        };
        for secs in [0, 10, 20, 31] {
            d.observe(
                t(secs),
                [
                    (4, Sample::from_stats(&stuck)),
                    (0, Sample::from_stats(&idle)),
                ],
            );
        }
        assert_eq!(d.watched(), 2);
        let stalled = d.stalled(t(31));
        assert_eq!(stalled.len(), 1, "{stalled:?}");
        assert_eq!((stalled[0].partition, stalled[0].lag), (4, 10_045));
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
        // The end not known yet.
        assert_eq!(Sample::from_stats(&p(-1, -1, 10, 10)), None);
        // No position yet: from the committed offset (3).
        assert_eq!(Sample::from_stats(&p(100, 100, -1, -1)), s(97, -1, -1));
        // Nor a committed offset (librdkafka's -1001 while it waits for an unstable one): from the first
        // offset; an empty partition has nothing to do.
        let waiting = |lo: i64, end: i64| Partition {
            lo_offset: lo,
            hi_offset: end,
            ls_offset: end,
            app_offset: -1001,
            stored_offset: -1001,
            committed_offset: -1001,
            ..Partition::default()
        };
        assert_eq!(Sample::from_stats(&waiting(40, 100)), s(60, -1001, -1001));
        assert_eq!(Sample::from_stats(&waiting(100, 100)), s(0, -1001, -1001));
        // Read to 90, acknowledged to 60: 40 not done.
        assert_eq!(Sample::from_stats(&p(100, 100, 90, 60)), s(40, 90, 60));
        // Exactly-once: no stored offset; the stale committed offset is ignored.
        assert_eq!(Sample::from_stats(&p(100, 100, 100, -1)), s(0, 100, -1));
        // read_committed: the last stable offset is the end.
        assert_eq!(Sample::from_stats(&p(120, 100, 100, 100)), s(0, 100, 100));
        assert_eq!(Sample::from_stats(&p(-1, 50, 20, -1)), s(30, 20, -1));
    }
}
