//! The per-partition, in-order acknowledgement tracker behind at-least-once delivery.
//!
//! The consumer registers every input offset before sending its output ([`AckTracker::begin`]); the
//! producer's delivery callback acknowledges it ([`AckTracker::ack`]), in whatever order the broker
//! answers. An offset becomes committable only when it and every earlier offset of its partition are
//! acknowledged: the tracker keeps the partition's outstanding offsets in consumption order and advances a
//! "ready" mark over the acknowledged prefix. [`AckTracker::take_ready`] hands the advanced marks to the
//! consumer thread, which stores them (librdkafka's auto-commit then flushes them, batched).
//!
//! Assignments carry a generation: an acknowledgement that arrives for a partition that was revoked (and
//! maybe re-assigned since) is ignored, so a stale delivery can never move a new owner's offsets.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Identifies one registered input record; returned by `begin`, consumed by `ack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// Input partition.
    pub partition: i32,
    /// Assignment generation the record was consumed under.
    pub generation: u64,
    /// Input offset.
    pub offset: i64,
}

/// One outstanding input record.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Input offset (strictly increasing along the queue).
    offset: i64,
    /// Its output was acknowledged.
    done: bool,
}

#[derive(Debug)]
struct PartitionAcks {
    /// Generation of the current assignment; tickets of other generations are stale.
    generation: u64,
    /// Registered, not yet committable records, in consumption (offset) order.
    pending: VecDeque<Slot>,
    /// Next offset to store (last committable offset + 1) not yet taken by `take_ready`.
    ready: Option<i64>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Tracked partitions of the input topic. Hashed with foldhash: every record is looked up twice (begin
    /// on the pipeline thread, ack on the delivery thread), and the keys are the broker's partition numbers.
    partitions: HashMap<i32, PartitionAcks, foldhash::fast::RandomState>,
    /// Source of assignment generations.
    next_generation: u64,
    /// Records registered and not acknowledged, over all partitions (the backpressure measure).
    in_flight: usize,
    /// Threads waiting on `progress` (changed only under the lock, so an acknowledgement that sees none
    /// cannot miss a waiter: a waiter counts itself before it checks and sleeps).
    waiters: usize,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct AckTracker {
    /// All state, behind one lock: the consumer thread and the delivery-callback thread are its only users
    /// and each holds it for a few instructions.
    inner: Mutex<Inner>,
    /// Signalled when acknowledgements lower `in_flight` (backpressure) or empty the tracker (drain).
    progress: Condvar,
}

impl AckTracker {
    pub fn new() -> AckTracker {
        AckTracker::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts tracking `partition` under a new generation, forgetting any previous state.
    pub fn assign(&self, partition: i32) -> u64 {
        let mut g = self.lock();
        g.next_generation += 1;
        let generation = g.next_generation;
        if let Some(old) = g.partitions.insert(
            partition,
            PartitionAcks {
                generation,
                pending: VecDeque::new(),
                ready: None,
            },
        ) {
            g.in_flight -= old.pending.iter().filter(|s| !s.done).count();
        }
        generation
    }

    /// Stops tracking `partition`; returns how many of its records were still unacknowledged.
    pub fn revoke(&self, partition: i32) -> usize {
        let mut g = self.lock();
        let lost = match g.partitions.remove(&partition) {
            Some(p) => p.pending.iter().filter(|s| !s.done).count(),
            None => 0,
        };
        g.in_flight -= lost;
        self.progress.notify_all();
        lost
    }

    /// Registers an input record about to be processed. Offsets of a partition must be registered in
    /// increasing order (consumption order); a partition not yet assigned is assigned implicitly.
    pub fn begin(&self, partition: i32, offset: i64) -> Ticket {
        let mut g = self.lock();
        let g = &mut *g;
        let next_generation = &mut g.next_generation;
        let p = g.partitions.entry(partition).or_insert_with(|| {
            *next_generation += 1;
            PartitionAcks {
                generation: *next_generation,
                pending: VecDeque::new(),
                ready: None,
            }
        });
        debug_assert!(
            p.pending.back().is_none_or(|s| s.offset < offset),
            "offsets must be registered in increasing order"
        );
        p.pending.push_back(Slot {
            offset,
            done: false,
        });
        g.in_flight += 1;
        Ticket {
            partition,
            generation: p.generation,
            offset,
        }
    }

    /// Marks a record's output acknowledged. Returns false for a stale or unknown ticket (its partition
    /// was revoked meanwhile), which changes nothing.
    pub fn ack(&self, t: Ticket) -> bool {
        let mut g = self.lock();
        let Some(p) = g.partitions.get_mut(&t.partition) else {
            return false;
        };
        if p.generation != t.generation {
            return false;
        }
        // Acknowledgements mostly arrive in order: the front is the usual hit.
        let idx = match p.pending.front() {
            Some(s) if s.offset == t.offset => 0,
            _ => match p.pending.binary_search_by_key(&t.offset, |s| s.offset) {
                Ok(i) => i,
                Err(_) => return false,
            },
        };
        if p.pending[idx].done {
            return false;
        }
        p.pending[idx].done = true;
        while let Some(s) = p.pending.front() {
            if !s.done {
                break;
            }
            p.ready = Some(s.offset + 1);
            p.pending.pop_front();
        }
        g.in_flight -= 1;
        // Every acknowledgement passes here; std's condition variable makes a system call for every
        // notification, waiters or not, so only a waited-on one is signalled.
        if g.waiters > 0 {
            self.progress.notify_all();
        }
        true
    }

    /// The partitions whose committable offset advanced since the last call, with the offset to store
    /// (the next offset to consume, Kafka's convention).
    pub fn take_ready(&self) -> Vec<(i32, i64)> {
        let mut g = self.lock();
        let mut out = Vec::new();
        for (&partition, p) in g.partitions.iter_mut() {
            if let Some(next) = p.ready.take() {
                out.push((partition, next));
            }
        }
        out.sort_unstable();
        out
    }

    /// Records registered and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight
    }

    /// Waits until fewer than `limit` records are in flight or `timeout` passes; true if below.
    pub fn wait_below(&self, limit: usize, timeout: Duration) -> bool {
        let mut g = self.lock();
        g.waiters += 1;
        let (mut g, _) = self
            .progress
            .wait_timeout_while(g, timeout, |g| g.in_flight >= limit)
            .unwrap_or_else(|e| e.into_inner());
        g.waiters -= 1;
        g.in_flight < limit
    }

    /// Waits until nothing is in flight or `timeout` passes; true if drained.
    pub fn wait_drained(&self, timeout: Duration) -> bool {
        self.wait_below(1, timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_is_committable_only_after_every_earlier_offset() {
        let t = AckTracker::new();
        let g = t.assign(0);
        let a = t.begin(0, 10);
        let b = t.begin(0, 11);
        let c = t.begin(0, 15); // gaps (compaction, transactions markers) are fine
        assert_eq!(a.generation, g);
        assert_eq!(t.in_flight(), 3);
        // Out of order: the later ones are acknowledged first; nothing may be stored yet.
        assert!(t.ack(c));
        assert!(t.ack(b));
        assert_eq!(t.take_ready(), vec![]);
        assert_eq!(t.in_flight(), 1);
        // The first one completes the prefix: store up to and including 15.
        assert!(t.ack(a));
        assert_eq!(t.take_ready(), vec![(0, 16)]);
        assert_eq!(t.take_ready(), vec![], "taken once");
        assert_eq!(t.in_flight(), 0);
        // A duplicate acknowledgement changes nothing.
        assert!(!t.ack(a));
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn partitions_are_independent() {
        let t = AckTracker::new();
        t.assign(0);
        t.assign(1);
        let a0 = t.begin(0, 0);
        let a1 = t.begin(1, 0);
        let b1 = t.begin(1, 1);
        assert!(t.ack(b1));
        assert!(t.ack(a1));
        assert_eq!(t.take_ready(), vec![(1, 2)]);
        assert!(t.ack(a0));
        assert_eq!(t.take_ready(), vec![(0, 1)]);
    }

    #[test]
    fn stale_acks_after_revoke_and_reassign_are_ignored() {
        let t = AckTracker::new();
        t.assign(3);
        let old = t.begin(3, 100);
        assert_eq!(t.revoke(3), 1);
        assert_eq!(t.in_flight(), 0);
        assert!(!t.ack(old), "partition no longer owned");
        // Re-assigned: the new owner re-reads from the committed offset; the old ticket is stale.
        t.assign(3);
        let new = t.begin(3, 100);
        assert!(!t.ack(old));
        assert_eq!(t.take_ready(), vec![]);
        assert!(t.ack(new));
        assert_eq!(t.take_ready(), vec![(3, 101)]);
    }

    #[test]
    fn backpressure_waits_for_acks() {
        let t = std::sync::Arc::new(AckTracker::new());
        let tickets: Vec<Ticket> = (0..4).map(|o| t.begin(0, o)).collect();
        assert!(!t.wait_below(4, Duration::from_millis(1)));
        let t2 = t.clone();
        let h = std::thread::spawn(move || {
            for k in tickets {
                t2.ack(k);
            }
        });
        assert!(t.wait_drained(Duration::from_secs(30)));
        h.join().unwrap();
        assert_eq!(t.take_ready(), vec![(0, 4)]);
    }

    /// Acknowledgements signal only when someone waits; one that comes while a thread waits wakes it
    /// (without the signal the waiter would sleep its whole ten minutes).
    #[test]
    fn an_acknowledgement_wakes_a_waiting_thread() {
        let t = std::sync::Arc::new(AckTracker::new());
        let early = t.begin(0, 6);
        let ticket = t.begin(0, 7);
        assert!(t.ack(early), "nobody waits: no signal needed");
        let (woken, wake) = std::sync::mpsc::channel();
        let waiter = {
            let t = t.clone();
            std::thread::spawn(move || {
                let drained = t.wait_drained(Duration::from_secs(600));
                let _ = woken.send(drained);
            })
        };
        while t.lock().waiters == 0 {
            std::thread::yield_now();
        }
        assert!(t.ack(ticket));
        assert_eq!(
            wake.recv_timeout(Duration::from_secs(60)),
            Ok(true),
            "the waiter was woken by the acknowledgement"
        );
        waiter.join().unwrap();
        assert_eq!(t.lock().waiters, 0);
    }
}
