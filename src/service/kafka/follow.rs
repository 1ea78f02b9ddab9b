//! What every group-less topic follower shares (the partner, control, exam-outcome and decision followers):
//! the topic's partitions from the broker's metadata, the start-up end offsets (retried within the start-up
//! budget), every partition assigned from its beginning, [`CatchUp`] — which partitions are still to be read
//! up to the offsets captured at start-up, after which the follower's state is complete — and
//! [`Refresh`], which adds the partitions a topic gains while the service runs (every
//! `kafka.partner_refresh_ms`), each from its beginning.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::statistics::{Partition, Statistics};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tracing::warn;

use crate::service::kafka::cutoff::CutOff;
use crate::service::kafka::topics::CallTimeouts;
use crate::service::metrics::{Client, Metrics};
use crate::service::Shutdown;

/// A follower's client context: counts client errors (librdkafka retries them itself) under `client`, and
/// exports each followed partition's lag from statistics through `lag` (a `Metrics` gauge setter; a no-op
/// for a follower without a lag gauge).
pub struct FollowerContext {
    metrics: Arc<Metrics>,
    /// The followed topic, to pick its partitions out of statistics.
    topic: String,
    client: Client,
    lag: fn(&Metrics, i32, i64),
    /// Whether the client has been left without a broker to connect to.
    cut_off: CutOff,
}

impl FollowerContext {
    pub fn new(
        metrics: Arc<Metrics>,
        topic: &str,
        client: Client,
        lag: fn(&Metrics, i32, i64),
    ) -> FollowerContext {
        FollowerContext {
            metrics,
            topic: topic.to_string(),
            client,
            lag,
            cut_off: CutOff::default(),
        }
    }

    /// The client's cut-off watch (for the end-to-end test in `cutoff`).
    #[cfg(test)]
    pub(crate) fn watch(&self) -> &CutOff {
        &self.cut_off
    }

    /// `Err` once the client has had no broker to connect to for [`CUT_OFF_AFTER`](crate::service::kafka::cutoff::CUT_OFF_AFTER) (see [`CutOff`]): the
    /// follower's loop returns it, which stops the instance. The service's shutdown is triggered first, so
    /// that the instance stops even should closing the cut-off client hang.
    pub fn cut_off(&self, shutdown: &Shutdown) -> anyhow::Result<()> {
        if !self.cut_off.tripped() {
            return Ok(());
        }
        let message = CutOff::message(&format!("follower of {}", self.topic));
        tracing::error!(topic = %self.topic, "{message}");
        self.metrics.kafka_error(self.client);
        shutdown.trigger();
        bail!(message)
    }
}

/// Records of one followed partition not yet applied, from librdkafka's statistics: the end offset (last
/// stable offset when known, else the high watermark) minus the follower's position (the low watermark
/// before anything was read). 0 once the partition's end was reached; `None` while the end is unknown.
pub fn follower_lag(p: &Partition) -> Option<i64> {
    let end = if p.ls_offset >= 0 {
        p.ls_offset
    } else {
        p.hi_offset
    };
    if end < 0 {
        return None;
    }
    if p.eof_offset >= end {
        return Some(0);
    }
    let position = if p.app_offset >= 0 {
        p.app_offset
    } else {
        p.lo_offset.max(0)
    };
    Some((end - position).max(0))
}

impl ClientContext for FollowerContext {
    fn stats(&self, stats: Statistics) {
        self.cut_off
            .watch(&stats, format_args!("follower of {}", self.topic));
        let Some(t) = stats.topics.get(&self.topic) else {
            return;
        };
        for p in t.partitions.values() {
            if p.partition < 0 || !p.desired {
                continue;
            }
            if let Some(lag) = follower_lag(p) {
                (self.lag)(&self.metrics, p.partition, lag);
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // End-of-partition is how the follower knows it caught up, not an error.
        if error.rdkafka_error_code() == Some(rdkafka::error::RDKafkaErrorCode::PartitionEOF) {
            return;
        }
        self.metrics.kafka_error(self.client);
        warn!(error = %error, reason, topic = %self.topic, "follower client error (librdkafka retries)");
    }
}

impl ConsumerContext for FollowerContext {}

/// What a follower did about a failure to read its topic's end offsets ([`Topic::end_offsets_waiting`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// Nothing: the retry comes after a logged pause.
    Nothing,
    /// It waited for what may have caused the failure (the topics being made) and that is done: the
    /// retry comes at once, unlogged, with a full time budget.
    Ready,
    /// It learned the failure will not pass (the topics could not be made): the error is returned.
    GiveUp,
}

/// A followed topic, for metadata queries and messages (`what`: e.g. "partner topic").
pub struct Topic<'a> {
    pub name: &'a str,
    pub what: &'a str,
}

impl Topic<'_> {
    /// The topic's partitions as the broker's metadata lists them now.
    pub fn partitions<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        timeout: Duration,
    ) -> anyhow::Result<BTreeSet<i32>> {
        let md = consumer
            .fetch_metadata(Some(self.name), timeout)
            .with_context(|| format!("metadata of {} {}", self.what, self.name))?;
        let t = md
            .topics()
            .iter()
            .find(|t| t.name() == self.name)
            .ok_or_else(|| anyhow!("{} {} not in metadata", self.what, self.name))?;
        if let Some(e) = t.error() {
            bail!("{} {}: {:?}", self.what, self.name, e);
        }
        Ok(t.partitions().iter().map(|p| p.id()).collect())
    }

    /// Low and high watermark of every partition, now.
    fn end_offsets<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        timeout: Duration,
    ) -> anyhow::Result<HashMap<i32, (i64, i64)>> {
        let partitions = self.partitions(consumer, timeout)?;
        if partitions.is_empty() {
            bail!("{} {} has no partitions", self.what, self.name);
        }
        let mut ends = HashMap::new();
        for p in partitions {
            let (lo, hi) = consumer
                .fetch_watermarks(self.name, p, timeout)
                .with_context(|| format!("watermarks of {}[{}]", self.name, p))?;
            ends.insert(p, (lo, hi));
        }
        Ok(ends)
    }

    /// The low and high watermark of every partition, now — metadata and watermarks can fail for a moment
    /// (leader election on a fresh topic, a coordinator still loading), so they are retried within
    /// `timeout`; `None` when the service stops first.
    pub fn end_offsets_retrying<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        timeout: Duration,
        shutdown: &Shutdown,
    ) -> anyhow::Result<Option<HashMap<i32, (i64, i64)>>> {
        self.end_offsets_waiting(consumer, timeout, shutdown, || Waited::Nothing)
    }

    /// [`Topic::end_offsets_retrying`], calling `wait` on each failure first (see [`Waited`]). Each attempt's
    /// calls (the topic's metadata, then each partition's watermarks) wait at most a few seconds
    /// ([`CallTimeouts`]), and the stop is looked at between attempts, so a stop is seen within a few
    /// seconds even when no broker answers (an attempt given the whole budget held the follower's thread,
    /// and the stop, that long).
    pub fn end_offsets_waiting<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        timeout: Duration,
        shutdown: &Shutdown,
        mut wait: impl FnMut() -> Waited,
    ) -> anyhow::Result<Option<HashMap<i32, (i64, i64)>>> {
        let mut calls = CallTimeouts::new(timeout);
        let mut warned: Option<Instant> = None;
        loop {
            if shutdown.is_triggered() {
                return Ok(None);
            }
            match self.end_offsets(consumer, calls.next_call()) {
                Ok(ends) => return Ok(Some(ends)),
                Err(_) if shutdown.is_triggered() => return Ok(None),
                Err(e) if !calls.spent() => match wait() {
                    Waited::Nothing => {
                        // Logged at most every ten seconds while it lasts.
                        if warned.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                            warn!(error = %format!("{e:#}"), "{} end offsets not available yet; retrying", self.what);
                            warned = Some(Instant::now());
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    // A full budget from here: the wait is not the topic's fault.
                    Waited::Ready => calls = CallTimeouts::new(timeout),
                    // The wait ended because the service is stopping (the topics were never made).
                    Waited::GiveUp if shutdown.is_triggered() => return Ok(None),
                    Waited::GiveUp => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
    }

    /// [`Topic::end_offsets_retrying`], then every partition assigned from its beginning. Returns the low and
    /// high watermark per partition at start-up; `None` when the service stops first.
    pub fn assign_from_beginning<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        timeout: Duration,
        shutdown: &Shutdown,
    ) -> anyhow::Result<Option<HashMap<i32, (i64, i64)>>> {
        self.assign_from_beginning_with(consumer, timeout, shutdown, || Waited::Nothing, |_| Ok(()))
    }

    /// [`Topic::assign_from_beginning`], reading the end offsets with [`Topic::end_offsets_waiting`]'s
    /// `wait` and calling `before_assign` on each partition before the assignment (the partner follower
    /// starts before the topics are known to exist, and takes each partition's fetch queue there).
    pub fn assign_from_beginning_with<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        timeout: Duration,
        shutdown: &Shutdown,
        wait: impl FnMut() -> Waited,
        mut before_assign: impl FnMut(i32) -> anyhow::Result<()>,
    ) -> anyhow::Result<Option<HashMap<i32, (i64, i64)>>> {
        let Some(ends) = self.end_offsets_waiting(consumer, timeout, shutdown, wait)? else {
            return Ok(None);
        };
        let mut tpl = TopicPartitionList::with_capacity(ends.len());
        for p in ends.keys() {
            tpl.add_partition_offset(self.name, *p, Offset::Beginning)?;
            before_assign(*p)?;
        }
        consumer
            .assign(&tpl)
            .with_context(|| format!("assigning {} {}", self.what, self.name))?;
        Ok(Some(ends))
    }
}

/// Picks up the partitions a followed topic gains after start-up: every `every`, the topic's metadata is read
/// again and each new partition is added to the consumer's assignment from its beginning (its whole content
/// is new to the follower; records of one partition are still applied in offset order).
pub struct Refresh {
    assigned: BTreeSet<i32>,
    every: Duration,
    at: Instant,
}

impl Refresh {
    /// `assigned`: the partitions assigned at start-up.
    pub fn new(assigned: impl IntoIterator<Item = i32>, every: Duration) -> Refresh {
        Refresh {
            assigned: assigned.into_iter().collect(),
            every,
            at: Instant::now(),
        }
    }

    /// Partitions followed now.
    pub fn assigned(&self) -> usize {
        self.assigned.len()
    }

    /// When a refresh is due, adds the new partitions: `Ok` with the ones added (usually none), or the
    /// error (logged by the caller; the next refresh tries again).
    pub fn tick<C: ConsumerContext>(
        &mut self,
        topic: &Topic<'_>,
        consumer: &BaseConsumer<C>,
        timeout: Duration,
    ) -> anyhow::Result<Vec<i32>> {
        self.tick_with(topic, consumer, timeout, |_| Ok(()))
    }

    /// [`Refresh::tick`], calling `before_assign` on each new partition before it is assigned.
    pub fn tick_with<C: ConsumerContext>(
        &mut self,
        topic: &Topic<'_>,
        consumer: &BaseConsumer<C>,
        timeout: Duration,
        mut before_assign: impl FnMut(i32) -> anyhow::Result<()>,
    ) -> anyhow::Result<Vec<i32>> {
        if self.at.elapsed() < self.every {
            return Ok(Vec::new());
        }
        self.at = Instant::now();
        let now = topic.partitions(consumer, self.every.min(timeout))?;
        let new: Vec<i32> = now.difference(&self.assigned).copied().collect();
        if new.is_empty() {
            return Ok(new);
        }
        let mut tpl = TopicPartitionList::with_capacity(new.len());
        for p in &new {
            tpl.add_partition_offset(topic.name, *p, Offset::Beginning)?;
            before_assign(*p)?;
        }
        consumer.incremental_assign(&tpl).with_context(|| {
            format!(
                "assigning new partitions {new:?} of {} {}",
                topic.what, topic.name
            )
        })?;
        self.assigned.extend(new.iter().copied());
        tracing::info!(
            topic = topic.name,
            added = ?new,
            partitions = self.assigned.len(),
            "{} gained partitions; following them from the beginning",
            topic.what
        );
        Ok(new)
    }
}

/// The partitions still to be read up to their start-up end offset: the state is complete when none is
/// left.
#[derive(Debug, Default)]
pub struct CatchUp {
    /// Per partition with records at start-up, its end offset then.
    remaining: HashMap<i32, i64>,
}

impl CatchUp {
    /// From the low and high watermarks at start-up: empty partitions are read already.
    pub fn new(ends: &HashMap<i32, (i64, i64)>) -> CatchUp {
        CatchUp {
            remaining: ends
                .iter()
                .filter(|(_, (lo, hi))| hi > lo)
                .map(|(p, (_, hi))| (*p, *hi))
                .collect(),
        }
    }

    /// The partitions with nothing to read at start-up, each with its end offset then (what a follower
    /// counts as applied already).
    pub fn read_already<'a>(
        &'a self,
        ends: &'a HashMap<i32, (i64, i64)>,
    ) -> impl Iterator<Item = (i32, i64)> + 'a {
        ends.iter()
            .filter(|(p, _)| !self.is_pending(**p))
            .map(|(p, (_, hi))| (*p, *hi))
    }

    /// Whether `partition` is still being read up to its start-up end offset.
    pub fn is_pending(&self, partition: i32) -> bool {
        self.remaining.contains_key(&partition)
    }

    /// A record at `offset` of `partition` was applied.
    pub fn record(&mut self, partition: i32, offset: i64) {
        if let Some(end) = self.remaining.get(&partition) {
            if offset + 1 >= *end {
                self.remaining.remove(&partition);
            }
        }
    }

    /// The partition's end: everything up to the start-up end offset has been read (that offset can be a
    /// transaction marker, never delivered, hence end-of-partition rather than the last offset). Returns that
    /// start-up end offset if the partition was still being read.
    pub fn end_of_partition(&mut self, partition: i32) -> Option<i64> {
        self.remaining.remove(&partition)
    }

    pub fn is_complete(&self) -> bool {
        self.remaining.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::kafka::cutoff::CUT_OFF_AFTER;

    /// A follower whose client has had no broker for the cut-off time returns the fatal error its loop
    /// stops the instance with, and triggers the service's shutdown; before that, nothing.
    #[test]
    fn a_follower_cut_off_for_good_returns_the_error_that_stops_the_instance() {
        let ctx = FollowerContext::new(
            Arc::new(Metrics::new()),
            "ctpat-partners",
            Client::PartnerConsumer,
            |_, _, _| {},
        );
        let t0 = Instant::now();
        let shutdown = Shutdown::new();
        ctx.cut_off.observe(t0, false);
        assert!(ctx.cut_off(&shutdown).is_ok());
        assert!(!shutdown.is_triggered());
        ctx.cut_off.observe(t0 + CUT_OFF_AFTER, false);
        let e = format!("{:#}", ctx.cut_off(&shutdown).unwrap_err());
        assert!(e.contains("follower of ctpat-partners"), "{e}");
        assert!(e.contains("librdkafka#5301"), "{e}");
        assert!(shutdown.is_triggered(), "the service is told to stop");
    }

    #[test]
    fn complete_when_every_partition_reached_its_start_up_end() {
        let ends: HashMap<i32, (i64, i64)> = [(0, (0, 3)), (1, (5, 5)), (2, (2, 4))].into();
        let mut c = CatchUp::new(&ends);
        assert!(!c.is_pending(1), "an empty partition is read already");
        assert_eq!(c.read_already(&ends).collect::<Vec<_>>(), vec![(1, 5)]);
        assert!(c.is_pending(0) && c.is_pending(2));
        c.record(0, 1);
        assert!(c.is_pending(0));
        c.record(0, 2);
        assert!(!c.is_pending(0));
        assert!(!c.is_complete());
        assert_eq!(c.end_of_partition(2), Some(4));
        assert!(c.is_complete());
        assert_eq!(c.end_of_partition(2), None);
    }
}
