//! The two exam-outcome followers every instance runs (group-less, every partition manually assigned,
//! `read_committed`):
//!
//! - [`OutcomeFollower`] reads the exam-outcomes topic (`kafka.topics.outcomes`) from the beginning into
//!   the party history through the [`HistoryFeed`], each record with its position (partition, offset), and
//!   raises the published watermark after each record; it reads to the end offsets captured at start-up
//!   before the manifest consumer subscribes (no decision with a partial history), then follows live. A bad
//!   record (not a complete outcome, or keyed other than `<manifest_id>/<revision>`) is skipped and counted
//!   here; its one dead letter is written by the outcome dead-letter group (see `outcome_dlq.rs`).
//! - [`DecisionFollower`] reads the committed `decisions` topic from `service.outcome_window.hours` ago into
//!   the [`DecisionWindow`], so any instance can record an outcome for any instance's decision.
//!
//! Both also follow partitions their topic gains later (every `kafka.partner_refresh_ms`, from their
//! beginning), as the partner and control followers do.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use arc_swap::ArcSwap;
use borderlane_core::history::Position;
use borderlane_core::outcome::{parse_outcome, Form};
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::wire::{ErrorKind, Limits};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use tracing::{info, warn};

use crate::service::config::Config;
use crate::service::kafka::clients::{properties, Role};
use crate::service::kafka::follow::{CatchUp, FollowerContext, Refresh, Topic};
use crate::service::metrics::{Client, Metrics};
use crate::service::outcomes::{topic_key, DecisionWindow, Examined, HistoryFeed};
use crate::service::{Readiness, Shutdown};

/// How often the hit-rate and window gauges are refreshed while records flow.
const GAUGE_INTERVAL: Duration = Duration::from_millis(500);

/// A group-less `read_committed` consumer with the partner follower's properties, under its own group id
/// (`<group_id>-<suffix>`, never joined).
fn follower_consumer(
    config: &Config,
    suffix: &str,
    metrics: Arc<Metrics>,
    topic: &str,
    lag: fn(&Metrics, i32, i64),
) -> anyhow::Result<BaseConsumer<FollowerContext>> {
    let mut cfg = rdkafka::ClientConfig::new();
    for (k, v) in properties(&config.kafka, Role::PartnerConsumer) {
        cfg.set(k, v);
    }
    cfg.set("group.id", format!("{}-{suffix}", config.kafka.group_id));
    cfg.set("isolation.level", "read_committed");
    cfg.create_with_context(FollowerContext::new(
        metrics,
        topic,
        Client::OutcomeClients,
        lag,
    ))
    .map_err(|e| anyhow!("creating the {suffix} follower: {e}"))
}

/// Why an outcome record is bad, or the outcome.
pub fn check_record(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    limits: &Limits,
) -> Result<borderlane_core::outcome::Outcome, (ErrorKind, String)> {
    let Some(bytes) = value else {
        return Err((ErrorKind::Empty, "null value on the outcomes topic".into()));
    };
    let o = parse_outcome(bytes, limits, Form::Record).map_err(|e| {
        let b = e.bad_input();
        (b.kind, b.message)
    })?;
    let want = topic_key(&o.manifest_id, o.revision);
    match key.map(std::str::from_utf8) {
        Some(Ok(k)) if k == want => Ok(o),
        Some(Ok(k)) => Err((
            ErrorKind::BadValue,
            format!("key {k:?} is not {want:?} (<manifest_id>/<revision>)"),
        )),
        Some(Err(_)) => Err((ErrorKind::NotUtf8, "key is not UTF-8".into())),
        None => Err((
            ErrorKind::BadValue,
            format!("record without a key; the key must be {want:?} (<manifest_id>/<revision>)"),
        )),
    }
}

/// See the module documentation.
pub struct OutcomeFollower {
    consumer: BaseConsumer<FollowerContext>,
    topic: String,
    feed: Arc<HistoryFeed>,
    policy: Arc<ArcSwap<CompiledPolicy>>,
    limits: Limits,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    shutdown: Shutdown,
    timeout: Duration,
    /// How often the topic's metadata is re-read for new partitions.
    refresh_every: Duration,
}

impl OutcomeFollower {
    pub fn new(
        config: &Config,
        feed: Arc<HistoryFeed>,
        policy: Arc<ArcSwap<CompiledPolicy>>,
        metrics: Arc<Metrics>,
        readiness: Arc<Readiness>,
        shutdown: Shutdown,
    ) -> anyhow::Result<OutcomeFollower> {
        let topic = config.kafka.topics.outcomes.clone();
        Ok(OutcomeFollower {
            consumer: follower_consumer(
                config,
                "outcomes",
                metrics.clone(),
                &topic,
                Metrics::outcome_follower_lag,
            )?,
            topic,
            feed,
            policy,
            limits: config.limits.limits(),
            metrics,
            readiness,
            shutdown,
            timeout: Duration::from_millis(config.kafka.startup_timeout_ms),
            refresh_every: Duration::from_millis(config.kafka.partner_refresh_ms),
        })
    }

    /// Reads to the start-up end offsets, signals readiness, then follows until shutdown. Blocking.
    pub fn run(self) -> anyhow::Result<()> {
        let started = Instant::now();
        let topic = Topic {
            name: &self.topic,
            what: "outcomes topic",
        };
        let Some(ends) =
            topic.assign_from_beginning(&self.consumer, self.timeout, &self.shutdown)?
        else {
            // Stopped before the start-up end offsets were known: nothing was read.
            return Ok(());
        };
        let mut catch_up = CatchUp::new(&ends);
        for (p, end) in catch_up.read_already(&ends) {
            self.feed.advance(p as u32, end as u64);
        }
        let mut refresh = Refresh::new(ends.keys().copied(), self.refresh_every);
        let mut complete = false;
        let mut gauges_at = Instant::now();
        let mut dirty = true;
        loop {
            if !complete && catch_up.is_complete() {
                complete = true;
                self.metrics.outcomes_completed();
                self.readiness.outcomes_complete();
                info!(
                    topic = %self.topic,
                    outcomes = self.feed.history.len(),
                    watermark = %self.feed.watermark.load(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "exam outcomes read; following live"
                );
            }
            if self.shutdown.is_triggered() {
                return Ok(());
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(m)) => {
                    self.apply(&m);
                    dirty = true;
                    catch_up.record(m.partition(), m.offset());
                }
                // Everything up to the start-up end offset has been read (that offset can be a
                // transaction marker, never delivered): the watermark may stand at it.
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    if let Some(end) = catch_up.end_of_partition(p) {
                        self.feed.advance(p as u32, end as u64);
                    }
                }
                Some(Err(e)) => {
                    self.metrics.kafka_error(Client::OutcomeClients);
                    warn!(error = %e, "outcome follower error");
                }
            }
            if let Err(e) = refresh.tick(&topic, &self.consumer, self.timeout) {
                self.metrics.kafka_error(Client::OutcomeClients);
                warn!(error = %format!("{e:#}"), "outcomes topic refresh failed; retrying later");
            }
            self.consumer.context().cut_off(&self.shutdown)?;
            if dirty && gauges_at.elapsed() >= GAUGE_INTERVAL {
                gauges_at = Instant::now();
                dirty = false;
                let policy = self.policy.load();
                self.feed.publish_gauges(&policy.doc);
            }
        }
    }

    /// Applies one record (a bad one is skipped and counted), then raises the watermark past it.
    fn apply(&self, m: &BorrowedMessage<'_>) {
        let (Ok(partition), Ok(offset)) = (u32::try_from(m.partition()), u64::try_from(m.offset()))
        else {
            return;
        };
        match check_record(m.key(), m.payload(), &self.limits) {
            Ok(o) => self.feed.apply(Position { partition, offset }, &o),
            Err((kind, message)) => {
                self.metrics.bad_outcome_record(kind);
                warn!(
                    topic = m.topic(),
                    partition,
                    offset,
                    kind = kind.as_str(),
                    message,
                    "bad exam-outcome record skipped"
                );
            }
        }
        self.feed.advance(partition, offset + 1);
    }
}

/// See the module documentation.
pub struct DecisionFollower {
    consumer: BaseConsumer<FollowerContext>,
    topic: String,
    window: Arc<DecisionWindow>,
    policy: Arc<ArcSwap<CompiledPolicy>>,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
    timeout: Duration,
    /// How often the topic's metadata is re-read for new partitions.
    refresh_every: Duration,
}

impl DecisionFollower {
    pub fn new(
        config: &Config,
        window: Arc<DecisionWindow>,
        policy: Arc<ArcSwap<CompiledPolicy>>,
        metrics: Arc<Metrics>,
        shutdown: Shutdown,
    ) -> anyhow::Result<DecisionFollower> {
        let topic = config.kafka.topics.decisions.clone();
        Ok(DecisionFollower {
            consumer: follower_consumer(
                config,
                "decisions",
                metrics.clone(),
                &topic,
                // The window has no lag gauge (the outcome follower's is for the outcomes topic only).
                |_, _, _| {},
            )?,
            topic,
            window,
            policy,
            metrics,
            shutdown,
            timeout: Duration::from_millis(config.kafka.startup_timeout_ms),
            refresh_every: Duration::from_millis(config.kafka.partner_refresh_ms),
        })
    }

    /// Assigns every partition from the window's age limit ago, then follows until shutdown. Blocking.
    pub fn run(self) -> anyhow::Result<()> {
        let topic = Topic {
            name: &self.topic,
            what: "decisions topic",
        };
        let Some(ends) =
            topic.end_offsets_retrying(&self.consumer, self.timeout, &self.shutdown)?
        else {
            // Stopped before the start-up end offsets were known: nothing was read.
            return Ok(());
        };
        let since = crate::clock::unix_millis().saturating_sub(self.window.max_age_ms());
        let mut tpl = TopicPartitionList::with_capacity(ends.len());
        for p in ends.keys() {
            tpl.add_partition_offset(&self.topic, *p, Offset::Offset(since))?;
        }
        // Offsets for the time: the first record at or after `since` per partition (the end when none).
        let start = self
            .consumer
            .offsets_for_times(tpl, self.timeout)
            .with_context(|| format!("offsets of {} for the window start", self.topic))?;
        let mut assign = TopicPartitionList::with_capacity(ends.len());
        for e in start.elements() {
            let offset = match e.offset() {
                Offset::Offset(o) if o >= 0 => Offset::Offset(o),
                _ => Offset::End,
            };
            assign.add_partition_offset(&self.topic, e.partition(), offset)?;
        }
        self.consumer
            .assign(&assign)
            .with_context(|| format!("assigning decisions topic {}", self.topic))?;
        info!(topic = %self.topic, since_ms = since, "following decisions for the outcome window");
        let mut refresh = Refresh::new(ends.keys().copied(), self.refresh_every);
        let mut gauges_at = Instant::now();
        loop {
            if self.shutdown.is_triggered() {
                return Ok(());
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(m)) => {
                    // A null record (a tombstone) is nothing to the window; the turn goes on (the
                    // refresh and the cut-off check below run whatever was polled).
                    if let Some(bytes) = m.payload() {
                        let policy = self.policy.load();
                        match Examined::of_record(bytes, &policy.doc) {
                            Ok((key, e)) => {
                                let now = crate::clock::unix_millis();
                                let at = m.timestamp().to_millis().unwrap_or(now);
                                self.window.insert(key, e, at, now);
                            }
                            Err(e) => warn!(
                                partition = m.partition(),
                                offset = m.offset(),
                                error = %e,
                                "decision record not understood; not in the outcome window"
                            ),
                        }
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) => {
                    self.metrics.kafka_error(Client::OutcomeClients);
                    warn!(error = %e, "decision follower error");
                }
            }
            if let Err(e) = refresh.tick(&topic, &self.consumer, self.timeout) {
                self.metrics.kafka_error(Client::OutcomeClients);
                warn!(error = %format!("{e:#}"), "decisions topic refresh failed; retrying later");
            }
            self.consumer.context().cut_off(&self.shutdown)?;
            if gauges_at.elapsed() >= GAUGE_INTERVAL {
                gauges_at = Instant::now();
                self.metrics.outcome_window(self.window.len());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REC: &str = r#"{"manifest_id":"M1","revision":2,"result":"seizure","examined_at":"2026-06-01T00:00:00Z","port":"2304","officer":"o1","parties":[{"role":"importer","id":"I1"}],"causes":["band"]}"#;

    #[test]
    fn a_record_is_good_only_complete_and_keyed_manifest_id_slash_revision() {
        let l = Limits::default();
        let ok = check_record(Some(b"M1/2"), Some(REC.as_bytes()), &l).unwrap();
        assert_eq!((ok.manifest_id.as_str(), ok.revision), ("M1", 2));
        let kind =
            |key: Option<&[u8]>, value: Option<&[u8]>| check_record(key, value, &l).unwrap_err().0;
        assert_eq!(kind(Some(b"M1"), Some(REC.as_bytes())), ErrorKind::BadValue);
        assert_eq!(
            kind(Some(b"M1/0"), Some(REC.as_bytes())),
            ErrorKind::BadValue
        );
        assert_eq!(kind(None, Some(REC.as_bytes())), ErrorKind::BadValue);
        assert_eq!(
            kind(Some(&[0xff, 0xfe]), Some(REC.as_bytes())),
            ErrorKind::NotUtf8
        );
        assert_eq!(kind(Some(b"M1/2"), None), ErrorKind::Empty);
        assert_eq!(kind(Some(b"M1/2"), Some(b"{")), ErrorKind::TruncatedJson);
        // A request form (no parties, no causes) is not a complete record.
        let request = r#"{"manifest_id":"M1","revision":2,"result":"seizure","examined_at":"2026-06-01T00:00:00Z","port":"2304","officer":"o1"}"#;
        assert_eq!(
            kind(Some(b"M1/2"), Some(request.as_bytes())),
            ErrorKind::MissingField
        );
    }
}
