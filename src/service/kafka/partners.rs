//! The partner follower: reads the compacted partner topic into the [`PartnerTable`] — every partition,
//! manually assigned, no consumer group — up to the end offsets captured at start-up (then the table is
//! complete and the service may decide), and keeps following it for live upserts and tombstones.
//!
//! Partitions added to the partner topic later are picked up: every `kafka.partner_refresh_ms` the follower
//! re-reads the topic's metadata and adds each new partition to its assignment from the beginning (records
//! of one partition are applied in offset order, as for the others). The lag of every partition (end offset
//! minus the follower's position, from librdkafka's statistics) is exported as
//! `borderlane_partner_follower_lag`.
//!
//! Records are taken in batches (whatever librdkafka has queued, up to [`BATCH`]) and go through three
//! stages at once, each batch one stage further every round: this thread polls batch N+2 while the
//! [`Applier`]'s pool parses batch N+1 (in parallel: parsing touches no shared state) and applies batch N
//! partition by partition — each partition's records in offset order on one thread, different partitions
//! in parallel — so a tombstone after an upsert of the same partner wins, and an upsert after a tombstone.
//! A batch usually holds one partition (librdkafka hands over one fetch at a time), so without the overlap
//! one thread applied while the other waited (docs/performance.md, "Partner table").

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use borderlane_core::table::PartnerTable;
use borderlane_core::wire::{parse_partner, ErrorKind, Limits, Partner, Str};
use rayon::prelude::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use tracing::{info, warn};

use crate::service::config::Config;
use crate::service::kafka::clients::{client_config, Role};
pub use crate::service::kafka::fetch::Record;
use crate::service::kafka::fetch::{Fetch, FetchQueue, Fetched};
use crate::service::kafka::follow::{CatchUp, FollowerContext, Refresh, Topic, Waited};
use crate::service::metrics::{BadPartner, Client, Metrics};
use crate::service::{Readiness, Shutdown};

/// How often the table gauges are refreshed while records flow.
const GAUGE_INTERVAL: Duration = Duration::from_millis(250);

/// The share of the records an [`Applier`] was told are coming ([`Applier::expect`]) applied before it
/// makes room in the table for the rest: late enough that what the rest can add is small (they may all be
/// repeats of keys already read — a compacted topic's uncompacted tail — and the room is never more than
/// one new partner a record left), early enough that a last doubling due after it happens here instead,
/// while a quarter of the partners are still to be allocated.
const RESERVE_AT: (u64, u64) = (3, 4);

/// Most records taken from librdkafka's queue before they are applied: large enough that the pool's
/// hand-offs cost nothing per record, small enough that the polled messages pin little of the queue.
pub const BATCH: usize = 4096;

/// Smaller batches (live updates, the tail of a partition) are parsed by one task, not split over the
/// pool: splitting costs more than it saves.
const PARALLEL_FROM: usize = 64;

/// Records one pool task parses at least.
const PARSE_CHUNK: usize = 64;

/// How many records ahead of the one being applied the table's memory is prefetched: enough to cover a
/// miss to memory (an upsert of a 1 M-partner table costs ~0.4 µs, mostly its misses), few enough that
/// the lines are still cached when used (measured: 8 and 16 alike, 4 less; docs/performance.md).
const PREFETCH_AHEAD: usize = 8;
const _: () = assert!(
    PREFETCH_AHEAD > 0,
    "the lane loop reads `PREFETCH_AHEAD - 1` ahead"
);

/// See the module documentation.
pub struct PartnerFollower {
    /// Group-less consumer with every partition of the partner topic assigned.
    consumer: BaseConsumer<FollowerContext>,
    /// Partner topic name.
    topic: String,
    /// The table every scoring thread reads.
    table: Arc<PartnerTable>,
    /// Parses and applies the polled records.
    applier: Applier,
    /// Table size, updates, bad records.
    metrics: Arc<Metrics>,
    /// Told when the table is complete.
    readiness: Arc<Readiness>,
    /// Stops the follower.
    shutdown: Shutdown,
    /// Budget for metadata and watermark queries.
    timeout: Duration,
    /// How often the topic's metadata is re-read for new partitions.
    refresh_every: Duration,
    /// Told once the service's topics exist (dropped if they could not be made): see
    /// [`PartnerFollower::after_topics`].
    topics: Option<mpsc::Receiver<()>>,
}

impl PartnerFollower {
    pub fn new(
        config: &Config,
        table: Arc<PartnerTable>,
        metrics: Arc<Metrics>,
        readiness: Arc<Readiness>,
        shutdown: Shutdown,
    ) -> anyhow::Result<PartnerFollower> {
        let consumer = client_config(&config.kafka, Role::PartnerConsumer)
            .create_with_context(FollowerContext::new(
                metrics.clone(),
                &config.kafka.topics.partners,
                Client::PartnerConsumer,
                Metrics::partner_follower_lag,
            ))
            .map_err(|e| anyhow!("creating the partner consumer: {e}"))?;
        let applier = Applier::new(
            table.clone(),
            metrics.clone(),
            config.limits.limits(),
            &config.kafka.topics.partners,
        )?;
        Ok(PartnerFollower {
            consumer,
            topic: config.kafka.topics.partners.clone(),
            table,
            applier,
            metrics,
            readiness,
            shutdown,
            timeout: Duration::from_millis(config.kafka.startup_timeout_ms),
            refresh_every: Duration::from_millis(config.kafka.partner_refresh_ms),
            topics: None,
        })
    }

    /// Lets the follower start while the service makes sure its topics exist (`topics::ensure`, tens of
    /// milliseconds even when they do): it reads the partner topic's end offsets at once, and only if that
    /// first read fails waits for `topics` — a message once they exist (then it tries again at once), or
    /// the sender dropped if they could not be made (then it ends with the error). Without it, a failure
    /// is retried after a logged pause.
    pub fn after_topics(mut self, topics: mpsc::Receiver<()>) -> PartnerFollower {
        self.topics = Some(topics);
        self
    }

    fn topic(&self) -> Topic<'_> {
        Topic {
            name: &self.topic,
            what: "partner topic",
        }
    }

    /// Reads to the start-up end offsets, signals readiness, then follows until shutdown. Blocking.
    pub fn run(mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        // Every partition's records come through `fetch`, taken before the partition is assigned.
        let fetch = FetchQueue::new(&self.consumer)?;
        // A first failure to read the end offsets waits for the topics to exist, then retries at once, or
        // ends the follower if they could not be made; later failures are retried as any follower's.
        let mut topics = self.topics.take();
        let wait_for_topics = || {
            let Some(topics) = topics.take() else {
                return Waited::Nothing;
            };
            info!(topic = %self.topic, "partner topic not readable yet; waiting for the service to make its topics");
            match topics.recv() {
                Ok(()) => Waited::Ready,
                Err(_) => Waited::GiveUp,
            }
        };
        let Some(ends) = self.topic().assign_from_beginning_with(
            &self.consumer,
            self.timeout,
            &self.shutdown,
            wait_for_topics,
            |p| fetch.take_partition(&self.topic, p),
        )?
        else {
            // Stopped before the start-up end offsets were known: nothing was read, nothing is ready.
            return Ok(());
        };
        let mut refresh = Refresh::new(ends.keys().copied(), self.refresh_every);
        self.metrics.partner_partitions(refresh.assigned());
        let mut catch_up = CatchUp::new(&ends);
        let total: i64 = ends.values().map(|(lo, hi)| hi - lo).sum();
        self.applier.expect(total.max(0) as u64);
        info!(
            topic = %self.topic,
            partitions = ends.len(),
            records_at_most = total,
            "reading the partner table up to the start-up end offsets"
        );
        let mut complete = false;
        let mut records: u64 = 0;
        let mut gauges_at = Instant::now();
        // The batch parsed last round (with the partitions whose end came after it), applied this round;
        // the batch polled last round, parsed this round.
        let mut parsed: Option<(Parsed, Vec<i32>)> = None;
        let mut polled = Polled::default();
        loop {
            if !complete && catch_up.is_complete() {
                complete = true;
                self.metrics
                    .partner_table(self.table.len(), self.table.updates_applied());
                self.metrics.partner_table_completed();
                // Live updates from here on: nothing more to make room for (the count told was an upper
                // bound — compaction leaves gaps in the offsets — so the mark may not have been reached).
                self.applier.expect(0);
                self.readiness.partners_complete();
                info!(
                    partners = self.table.len(),
                    records,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "partner table complete; following live updates"
                );
            }
            if self.shutdown.is_triggered() {
                return Ok(());
            }
            let (next, applied) = if parsed.is_none() && polled.is_empty() {
                (self.poll_batch(&fetch, Duration::from_millis(100)), None)
            } else {
                let batch: Vec<Record<'_>> = polled
                    .messages
                    .iter()
                    .filter_map(|m| match m.get() {
                        Fetch::Record(r) => Some(r),
                        Fetch::End(_) | Fetch::Error(..) => None,
                    })
                    .collect();
                let ends = std::mem::take(&mut polled.ends_reached);
                let mut to_apply = parsed.take();
                let (parsing, next) =
                    self.applier
                        .round(to_apply.as_mut().map(|(p, _)| p), &batch, || {
                            self.poll_batch(&fetch, Duration::ZERO)
                        });
                // Ends without records (a partition empty at start-up, or whose last records came in
                // an earlier batch) still make a round, so they count a round later like any batch's.
                parsed = (!batch.is_empty() || !ends.is_empty()).then_some((parsing, ends));
                (next, to_apply)
            };
            if let Some((done, ends_reached)) = applied {
                records += done.at.len() as u64;
                for &(partition, offset) in &done.at {
                    catch_up.record(partition, offset);
                }
                // A partition's end comes after its records, which are applied now.
                for p in ends_reached {
                    catch_up.end_of_partition(p);
                }
            }
            // The messages are parsed (nothing borrows them any more): back to librdkafka.
            polled = next;
            if gauges_at.elapsed() >= GAUGE_INTERVAL {
                gauges_at = Instant::now();
                self.metrics
                    .partner_table(self.table.len(), self.table.updates_applied());
            }
            let take = |p| fetch.take_partition(&self.topic, p);
            match refresh.tick_with(&self.topic(), &self.consumer, self.timeout, take) {
                Ok(new) if !new.is_empty() => self.metrics.partner_partitions(refresh.assigned()),
                Ok(_) => {}
                Err(e) => {
                    self.metrics.kafka_error(Client::PartnerConsumer);
                    warn!(error = %format!("{e:#}"), "partner topic refresh failed; retrying later");
                }
            }
            // A client cut off for good (librdkafka#5301) would keep a stale table: the instance stops.
            self.consumer.context().cut_off(&self.shutdown)?;
        }
    }
}

/// Records polled together, and the partitions whose end was reached among them (after their records).
#[derive(Default)]
struct Polled<'q> {
    /// Records only (ends and errors are taken out when polled).
    messages: Vec<Fetched<'q>>,
    ends_reached: Vec<i32>,
}

impl Polled<'_> {
    fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.ends_reached.is_empty()
    }
}

impl PartnerFollower {
    /// Serves the events waiting on the consumer's own queue (client errors — counted and logged here —,
    /// statistics, logs), then waits up to `wait` for a first record from `fetch` and takes what
    /// librdkafka has queued already, up to a [`BATCH`]; a partition's errors come from `fetch` (counted
    /// and logged here too).
    fn poll_batch<'q>(&self, fetch: &'q FetchQueue<'_>, wait: Duration) -> Polled<'q> {
        // Each call hands over or handles one event (a log line or statistics give `None`).
        for _ in 0..fetch.events_waiting() {
            match self.consumer.poll(Duration::ZERO) {
                None => {}
                Some(Err(e)) => {
                    self.metrics.kafka_error(Client::PartnerConsumer);
                    warn!(error = %e, "partner consumer error");
                }
                // Every partition is taken by `fetch` before it is assigned, so no record comes here.
                Some(Ok(m)) => {
                    self.metrics.kafka_error(Client::PartnerConsumer);
                    tracing::error!(
                        partition = m.partition(),
                        offset = m.offset(),
                        "a partner record on the consumer's queue, not the follower's (not applied)"
                    );
                }
            }
        }
        let mut messages = Vec::new();
        fetch.consume(wait, 1, &mut messages);
        if !messages.is_empty() {
            fetch.consume(Duration::ZERO, BATCH - 1, &mut messages);
        }
        let mut ends_reached = Vec::new();
        messages.retain(|m| match m.get() {
            Fetch::Record(_) => true,
            Fetch::End(p) => {
                ends_reached.push(p);
                false
            }
            Fetch::Error(p, e) => {
                self.metrics.kafka_error(Client::PartnerConsumer);
                warn!(partition = p, error = %e, "partner topic fetch error");
                false
            }
        });
        Polled {
            messages,
            ends_reached,
        }
    }
}

/// Whether `n` more records applied after `before` pass [`RESERVE_AT`] of the `expected` ones (0: not
/// told): true for one batch only, whatever the batches' sizes.
fn passes_mark(before: u64, n: u64, expected: u64) -> bool {
    let at = (expected as u128 * RESERVE_AT.0 as u128 / RESERVE_AT.1 as u128) as u64;
    expected > 0 && before < at && before.saturating_add(n) >= at
}

/// The partners to make room for when `applied` of the `expected` records are applied and the table
/// holds `partners`: the partners a record so far times the records expected, but never more than one
/// new partner for each record still to come (a bound the rate itself keeps while the table holds no
/// more partners than records applied, as a start-up read into an empty table does).
fn room_for(applied: u64, expected: u64, partners: usize) -> usize {
    let by_rate = partners as u128 * expected as u128 / applied.max(1) as u128;
    let at_most = partners as u128 + expected.saturating_sub(applied) as u128;
    by_rate.min(at_most) as usize
}

/// What one record asks of the table; deciding it (parsing) touches no shared state.
enum Action {
    Upsert(Partner),
    Remove(Str),
    /// Logged, counted, skipped.
    Bad(BadPartner, Cow<'static, str>),
}

/// A batch parsed, waiting to be applied: where each record came from and what it asks.
#[derive(Default)]
pub struct Parsed {
    at: Vec<(i32, i64)>,
    actions: Vec<Action>,
}

/// Applies batches of partner records to the table: the records of a large batch are parsed in parallel
/// on the applier's pool, then each partition's records are applied in offset order on one thread while
/// other partitions are applied on others (the table serialises writers of one partner id, so a key that
/// ever appears in two partitions stays consistent too). A small batch is parsed in one task, not split.
/// [`Applier::parse`] and [`Applier::apply_parsed`] are the two stages the follower overlaps across
/// batches; [`Applier::apply`] is both, one batch at a time.
pub struct Applier {
    table: Arc<PartnerTable>,
    metrics: Arc<Metrics>,
    limits: Limits,
    /// For the bad-record log lines.
    topic: String,
    /// One thread per CPU; idle between batches.
    pool: rayon::ThreadPool,
    /// Records coming, as told by [`Applier::expect`] (0: not told).
    expected: AtomicU64,
    /// Records applied so far.
    applied: AtomicU64,
}

impl Applier {
    pub fn new(
        table: Arc<PartnerTable>,
        metrics: Arc<Metrics>,
        limits: Limits,
        topic: &str,
    ) -> anyhow::Result<Applier> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("partner-apply-{i}"))
            .build()
            .map_err(|e| anyhow!("starting the partner applier's threads: {e}"))?;
        Ok(Applier {
            table,
            metrics,
            limits,
            topic: topic.to_string(),
            pool,
            expected: AtomicU64::new(0),
            applied: AtomicU64::new(0),
        })
    }

    /// Tells the applier that about `records` records are coming (the start-up read's, from the end
    /// offsets). Once [`RESERVE_AT`] of them are applied, the partner-id index makes room for the partners
    /// the rest will make ([`room_for`]; [`PartnerTable::reserve_for`]), so that it does not double near
    /// the end of the read: a doubling holds the old and the new table at once, and at the end of a 1 M-
    /// partner load that came on top of every partner's memory (avoiding it lowered the load's peak RSS by
    /// 4–14 MiB).
    pub fn expect(&self, records: u64) {
        self.expected.store(records, Ordering::Relaxed);
    }

    /// Counts `n` records applied, and makes room once [`RESERVE_AT`] of those expected are (see
    /// [`Applier::expect`]).
    fn applied(&self, n: u64) {
        let before = self.applied.fetch_add(n, Ordering::Relaxed);
        let expected = self.expected.load(Ordering::Relaxed);
        if passes_mark(before, n, expected) {
            self.table
                .reserve_for(room_for(before + n, expected, self.table.len()));
        }
    }

    /// Applies `batch` (records in the order they were polled: offset order within each partition).
    pub fn apply(&self, batch: &[Record<'_>]) {
        self.apply_parsed(&mut self.parse(batch));
    }

    /// One round of the follower's pipeline: applies `to_apply` (the batch parsed last round) and parses
    /// `batch` on the pool, the two at once, while the calling thread runs `meanwhile` (the follower polls
    /// its next batch); returns `batch` parsed and what `meanwhile` returned.
    pub fn round<R>(
        &self,
        to_apply: Option<&mut Parsed>,
        batch: &[Record<'_>],
        meanwhile: impl FnOnce() -> R,
    ) -> (Parsed, R) {
        let mut parsed = None;
        let r = self.pool.in_place_scope(|scope| {
            if let Some(p) = to_apply {
                scope.spawn(move |_| self.apply_parsed(p));
            }
            if !batch.is_empty() {
                scope.spawn(|_| parsed = Some(self.parse(batch)));
            }
            meanwhile()
        });
        (parsed.unwrap_or_default(), r)
    }

    /// Applies batches held in memory in the follower's rounds ([`Applier::round`]: each batch parsed
    /// while the one before is applied), the last one applied before this returns.
    pub fn apply_in_rounds<'b, 'r: 'b>(&self, batches: impl IntoIterator<Item = &'b [Record<'r>]>) {
        let mut parsed = None;
        for batch in batches {
            let (next, ()) = self.round(parsed.as_mut(), batch, || ());
            parsed = Some(next);
        }
        if let Some(last) = parsed.as_mut() {
            self.apply_parsed(last);
        }
    }

    /// Parses `batch` (a large one in parallel on the pool).
    pub fn parse(&self, batch: &[Record<'_>]) -> Parsed {
        let actions = if batch.len() < PARALLEL_FROM || self.pool.current_num_threads() < 2 {
            batch.iter().map(|r| self.decide(r)).collect()
        } else {
            self.pool.install(|| {
                batch
                    .par_iter()
                    .with_min_len(PARSE_CHUNK)
                    .map(|r| self.decide(r))
                    .collect()
            })
        };
        Parsed {
            at: batch.iter().map(|r| (r.partition, r.offset)).collect(),
            actions,
        }
    }

    /// Applies a parsed batch (its actions are used up; its positions stay): each partition's records in
    /// offset order on one thread, partitions in parallel on the pool.
    pub fn apply_parsed(&self, parsed: &mut Parsed) {
        // Each partition's records, still in offset order.
        let mut lanes: Vec<Vec<(i32, i64, Action)>> = Vec::new();
        let mut lane_of: Vec<i32> = Vec::new();
        let mut last = usize::MAX;
        for (&(partition, offset), a) in parsed.at.iter().zip(std::mem::take(&mut parsed.actions)) {
            if lane_of.get(last) != Some(&partition) {
                last = match lane_of.iter().position(|p| *p == partition) {
                    Some(i) => i,
                    None => {
                        lane_of.push(partition);
                        lanes.push(Vec::new());
                        lanes.len() - 1
                    }
                };
            }
            lanes[last].push((partition, offset, a));
        }
        // Each record's index slots are prefetched a few records before it is applied.
        let apply_lane = |lane: Vec<(i32, i64, Action)>| {
            let mut rest = lane.into_iter();
            for (_, _, a) in rest.as_slice().iter().take(PREFETCH_AHEAD) {
                self.prefetch(a);
            }
            while let Some((partition, offset, a)) = rest.next() {
                if let Some((_, _, next)) = rest.as_slice().get(PREFETCH_AHEAD - 1) {
                    self.prefetch(next);
                }
                self.act(partition, offset, a);
            }
        };
        if lanes.len() == 1 {
            lanes.into_iter().for_each(apply_lane);
        } else {
            self.pool
                .install(|| lanes.into_par_iter().for_each(apply_lane));
        }
        self.applied(parsed.at.len() as u64);
    }

    /// What `r` asks for: an upsert, a tombstone, or a bad record.
    fn decide(&self, r: &Record<'_>) -> Action {
        let key = match r.key.map(std::str::from_utf8) {
            None => None,
            Some(Ok(k)) => Some(k),
            Some(Err(_)) => {
                return Action::Bad(
                    BadPartner::Invalid(ErrorKind::NotUtf8),
                    Cow::Borrowed("key is not UTF-8"),
                )
            }
        };
        match r.value {
            None => match key {
                Some(k) => Action::Remove(Str::from(k)),
                None => Action::Bad(
                    BadPartner::MissingKey,
                    Cow::Borrowed("tombstone without a key"),
                ),
            },
            Some(bytes) => match parse_partner(bytes, &self.limits) {
                Ok(p) => match key {
                    Some(k) if k != p.partner_id => Action::Bad(
                        BadPartner::KeyMismatch,
                        Cow::Owned(format!("key {k:?} is not partner_id {:?}", p.partner_id)),
                    ),
                    _ => Action::Upsert(p),
                },
                Err(e) => Action::Bad(BadPartner::Invalid(e.kind), Cow::Owned(e.message)),
            },
        }
    }

    /// Starts loading the table memory `action` will touch ([`PartnerTable::prefetch`]).
    fn prefetch(&self, action: &Action) {
        match action {
            Action::Upsert(p) => self.table.prefetch(p),
            Action::Remove(k) => self.table.prefetch_id(k),
            Action::Bad(..) => {}
        }
    }

    /// Carries out `action`, the record at `offset` of `partition`.
    fn act(&self, partition: i32, offset: i64, action: Action) {
        match action {
            Action::Upsert(p) => self.table.upsert(p),
            Action::Remove(k) => {
                self.table.remove(&k);
            }
            Action::Bad(why, message) => {
                self.metrics.bad_partner_record(why);
                warn!(
                    topic = %self.topic,
                    partition,
                    offset,
                    kind = why.as_str(),
                    message = &*message,
                    "bad partner record skipped"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use borderlane_core::wire::IdKind;

    /// The mark is passed by one batch only, at three quarters of the records expected, and never when
    /// the count is not told; the room is the partners a record so far times the records expected, at
    /// most one more a record left.
    #[test]
    fn room_is_made_once_for_the_partners_a_record_so_far() {
        let expected = 1_000_000;
        let at = 750_000;
        assert!(!passes_mark(0, at - 1, expected));
        assert!(passes_mark(at - 1, 1, expected));
        assert!(passes_mark(at - 4096, 4096, expected));
        assert!(passes_mark(0, expected, expected));
        assert!(!passes_mark(at, 4096, expected));
        assert!(!passes_mark(at + 1, 1, expected));
        assert!(!passes_mark(at - 1, 0, expected));
        assert!(!passes_mark(at - 1, 1, 0));
        // Batches of any sizes: exactly one passes.
        for step in [1, 7, 4096, 100_000, 999_999] {
            let passes = (0..2 * expected / step)
                .filter(|i| passes_mark(i * step, step, expected))
                .count();
            assert_eq!(passes, 1, "batches of {step}");
        }
        // Told of one record (or of none): never, as no mark lies past the first.
        assert!(!passes_mark(0, 5, 1));
        // Every record a new partner: all of them.
        assert_eq!(room_for(at, expected, at as usize), 1_000_000);
        // One in four a repeat or a tombstone: three quarters.
        assert_eq!(room_for(at, expected, 562_500), 750_000);
        assert_eq!(room_for(900_000, expected, 800_000), 888_888);
        // A table that held partners before the read: at most one more a record left.
        assert_eq!(room_for(800, 1000, 900), 1100);
        assert_eq!(room_for(0, 1000, 0), 0);
    }

    /// Told how many records are coming, an applier's partner-id index does not grow after three
    /// quarters of them: the room for the rest was made as they passed (with 4 000 partners the index's
    /// last doubling is due at ~3 584, 7/8 of 4 096 buckets however many shards, so without the room it
    /// would grow after the mark). A table told nothing doubles there, as the control. (Keys spread over
    /// the shards by a random hash, so a shard that draws more than its share may still grow: on a
    /// machine with hundreds of shards a few might; the check allows a tenth.)
    #[test]
    fn a_told_applier_makes_room_before_the_last_doubling() {
        let n = 4000;
        let records: Vec<Owned> = (0..n)
            .map(|i| {
                let id = format!("CTP-{i:06}");
                Owned {
                    partition: (i % 3) as i32,
                    offset: (i / 3) as i64,
                    key: Some(id.clone().into_bytes()),
                    value: Some(partner(&id, &format!("IOR-{i}"), "certified")),
                }
            })
            .collect();
        let all: Vec<Record<'_>> = records.iter().map(Owned::record).collect();
        for told in [true, false] {
            let table = Arc::new(PartnerTable::new());
            let applier = Applier::new(
                table.clone(),
                Arc::new(Metrics::new()),
                Limits::default(),
                "p",
            )
            .unwrap();
            if told {
                applier.expect(n as u64);
            }
            let mut after_mark = Vec::new();
            for (i, batch) in all.chunks(250).enumerate() {
                applier.apply(batch);
                if (i + 1) * 250 >= n * 3 / 4 {
                    after_mark.push(table.id_index_buckets());
                }
            }
            assert_eq!(table.len(), n);
            let (first, last) = (after_mark[0], after_mark[after_mark.len() - 1]);
            if told {
                assert!(
                    last * 10 <= first * 11,
                    "told: buckets after the mark {after_mark:?}"
                );
            } else {
                assert!(
                    last * 2 >= first * 3,
                    "not told: buckets after the mark {after_mark:?}"
                );
            }
        }
    }

    /// A record's bytes, owned by the test.
    struct Owned {
        partition: i32,
        offset: i64,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
    }

    impl Owned {
        fn record(&self) -> Record<'_> {
            Record {
                partition: self.partition,
                offset: self.offset,
                key: self.key.as_deref(),
                value: self.value.as_deref(),
            }
        }
    }

    fn partner(id: &str, ior: &str, status: &str) -> Vec<u8> {
        format!(
            r#"{{"partner_id":"{id}","entity":"importer","identifiers":[{{"kind":"ior","value":"{ior}"}}],"status":"{status}","certified_on":"2019-03-04"}}"#
        )
        .into_bytes()
    }

    /// Per partner, in offset order of its partition, a history whose outcome depends on that order:
    /// upsert / tombstone / upsert, upsert / upsert / tombstone, tombstone / upsert / tombstone / upsert /
    /// upsert, or identifiers handed from partner to partner in one partition (the last claim wins); and
    /// bad records among them. Partners are spread over three partitions; within a partition the
    /// partners' histories are interleaved (every partner's first record, then every second one, ...), and
    /// the partitions are interleaved in runs of 7 records, as a consumer polls them.
    fn records(partners: usize) -> Vec<Owned> {
        type Op = (String, Option<Vec<u8>>);
        let mut streams: Vec<Vec<Vec<Op>>> = vec![Vec::new(); 3];
        for i in 0..partners {
            let id = format!("CTP-{i:06}");
            let p = i % 3;
            let up = |ior: &str, status: &str| (id.clone(), Some(partner(&id, ior, status)));
            let tomb = (id.clone(), None);
            let (a, b, c) = (format!("A-{i}"), format!("B-{i}"), format!("C-{i}"));
            let mut ops = match i % 4 {
                0 => vec![up(&a, "certified"), tomb.clone(), up(&b, "validated")],
                1 => vec![up(&a, "certified"), up(&b, "validated"), tomb.clone()],
                2 => vec![
                    tomb.clone(),
                    up(&a, "certified"),
                    tomb.clone(),
                    up(&b, "validated"),
                    up(&c, "suspended"),
                ],
                _ => {
                    // Partners 3, 7, 11, ... of a partition claim the same few identifiers in turn.
                    let shared = format!("H-{p}-{}", i / 48);
                    vec![up(&a, "certified"), up(&shared, "validated")]
                }
            };
            if i % 50 == 7 {
                ops.insert(1, (id.clone(), Some(b"{not json".to_vec())));
                ops.push((format!("{id}-other"), Some(partner(&id, &a, "certified"))));
            }
            streams[p].push(ops);
        }
        // Bad keys: a tombstone without one, and one that is not UTF-8.
        streams[0].push(vec![(String::new(), None)]);
        streams[1].push(vec![(
            "\u{fffd}".into(),
            Some(partner("X", "X", "certified")),
        )]);
        let mut partitions: Vec<Vec<Owned>> = Vec::new();
        for (p, partners) in streams.into_iter().enumerate() {
            let mut out = Vec::new();
            let rounds = partners.iter().map(Vec::len).max().unwrap_or(0);
            for round in 0..rounds {
                for ops in &partners {
                    if let Some((key, value)) = ops.get(round) {
                        let key = match key.as_str() {
                            "" => None,
                            "\u{fffd}" => Some(vec![0xff, 0xfe]),
                            k => Some(k.as_bytes().to_vec()),
                        };
                        out.push(Owned {
                            partition: p as i32,
                            offset: out.len() as i64,
                            key,
                            value: value.clone(),
                        });
                    }
                }
            }
            partitions.push(out);
        }
        let mut polled = Vec::new();
        let mut iters: Vec<_> = partitions.into_iter().map(|v| v.into_iter()).collect();
        loop {
            let mut any = false;
            for it in &mut iters {
                for r in it.by_ref().take(7) {
                    polled.push(r);
                    any = true;
                }
            }
            if !any {
                return polled;
            }
        }
    }

    /// The table the records make applied one by one in polled order, written without the applier.
    fn one_by_one(records: &[Owned]) -> PartnerTable {
        let table = PartnerTable::new();
        let limits = Limits::default();
        for r in records {
            let Some(Ok(key)) = r.key.as_deref().map(std::str::from_utf8) else {
                continue;
            };
            match &r.value {
                None => {
                    table.remove(key);
                }
                Some(v) => {
                    if let Ok(p) = parse_partner(v, &limits) {
                        if p.partner_id == key {
                            table.upsert(p);
                        }
                    }
                }
            }
        }
        table
    }

    /// Every partner and every identifier's owner, sorted.
    fn contents(t: &PartnerTable, records: &[Owned]) -> (Vec<Partner>, Vec<(String, String)>) {
        let mut partners: Vec<Partner> = t.partners().iter().map(|p| (**p).clone()).collect();
        partners.sort_by(|a, b| a.partner_id.cmp(&b.partner_id));
        let limits = Limits::default();
        let mut owners: Vec<(String, String)> = records
            .iter()
            .filter_map(|r| parse_partner(r.value.as_deref()?, &limits).ok())
            .flat_map(|p| p.identifiers)
            .map(|i| {
                let owner = t
                    .get(i.kind, &i.value)
                    .map_or(String::new(), |p| p.partner_id.to_string());
                (i.value.to_string(), owner)
            })
            .collect();
        owners.sort();
        owners.dedup();
        (partners, owners)
    }

    fn bad_counts(m: &Metrics) -> Vec<String> {
        m.render()
            .lines()
            .filter(|l| l.starts_with("borderlane_bad_partner_records_total{"))
            .map(str::to_string)
            .collect()
    }

    /// Applies `records` in batches of `batch` with a fresh applier — one batch at a time, or `pipelined`
    /// in the follower's rounds (a batch applied while the next is parsed) —; returns the table and the
    /// metrics.
    fn applied(
        records: &[Owned],
        batch: usize,
        pipelined: bool,
    ) -> (Arc<PartnerTable>, Arc<Metrics>) {
        let table = Arc::new(PartnerTable::new());
        let metrics = Arc::new(Metrics::new());
        let applier = Applier::new(
            table.clone(),
            metrics.clone(),
            Limits::default(),
            "partners",
        )
        .unwrap();
        let all: Vec<Record<'_>> = records.iter().map(Owned::record).collect();
        if pipelined {
            applier.apply_in_rounds(all.chunks(batch));
        } else {
            for chunk in all.chunks(batch) {
                applier.apply(chunk);
            }
        }
        (table, metrics)
    }

    #[test]
    fn batches_apply_each_partition_in_offset_order() {
        let records = records(3000);
        assert!(records.len() > BATCH, "more than one full batch");
        let expected = one_by_one(&records);
        let want = contents(&expected, &records);
        // The histories leave something to compare: partners present and absent, identifiers handed on.
        assert_eq!(want.0.len(), 3000 / 4 * 3);
        assert!(want.1.iter().any(|(_, owner)| owner.is_empty()));
        assert!(want.1.iter().any(|(v, _)| v.starts_with("H-")));
        let batches = [BATCH, 1000, PARALLEL_FROM, PARALLEL_FROM - 1, 1];
        for (batch, pipelined) in batches.into_iter().flat_map(|b| [(b, false), (b, true)]) {
            let (table, metrics) = applied(&records, batch, pipelined);
            assert!(
                contents(&table, &records) == want,
                "batches of {batch}, pipelined {pipelined}"
            );
            assert_eq!(
                table.len(),
                expected.len(),
                "batches of {batch}, pipelined {pipelined}"
            );
            assert_eq!(
                table.identifier_count(),
                expected.identifier_count(),
                "batches of {batch}, pipelined {pipelined}"
            );
            assert_eq!(
                table.updates_applied(),
                expected.updates_applied(),
                "batches of {batch}, pipelined {pipelined}"
            );
            assert_eq!(
                bad_counts(&metrics),
                [
                    "borderlane_bad_partner_records_total{kind=\"invalid_json\"} 60",
                    "borderlane_bad_partner_records_total{kind=\"key_mismatch\"} 60",
                    "borderlane_bad_partner_records_total{kind=\"missing_key\"} 1",
                    "borderlane_bad_partner_records_total{kind=\"not_utf8\"} 1",
                ],
                "batches of {batch}, pipelined {pipelined}"
            );
        }
    }

    /// The same partner's upsert and tombstone adjacent in one batch, both orders, in one partition and
    /// with the other partitions' records around them.
    #[test]
    fn the_later_of_an_upsert_and_a_tombstone_wins() {
        let mut records = Vec::new();
        for i in 0..2 * PARALLEL_FROM {
            let id = format!("P{i}");
            let upsert = Some(partner(&id, &format!("I{i}"), "certified"));
            let (first, second) = if i % 2 == 0 {
                (upsert, None)
            } else {
                (None, upsert)
            };
            for value in [first, second] {
                records.push(Owned {
                    partition: (i % 3) as i32,
                    offset: records.len() as i64,
                    key: Some(id.clone().into_bytes()),
                    value,
                });
            }
        }
        // Pipelined in odd batches, so some pairs straddle two rounds (the later applied a round later).
        for (batch, pipelined) in [(records.len(), false), (PARALLEL_FROM + 1, true)] {
            let (table, _) = applied(&records, batch, pipelined);
            for i in 0..2 * PARALLEL_FROM {
                let got = table.get(IdKind::Ior, &format!("I{i}"));
                assert_eq!(got.is_some(), i % 2 == 1, "P{i}, pipelined {pipelined}");
            }
            assert_eq!(table.len(), PARALLEL_FROM);
        }
    }
}
