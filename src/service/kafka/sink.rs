//! Where outputs go and how input progress follows them: the [`Sink`].
//!
//! Two modes behind the same operations (`emit`, `checkpoint`, `assigned`, `revoked` + `drain`):
//! [`AtLeastOnceSink`] produces with an idempotent producer, the delivery callback acknowledges outputs in
//! the [`AckTracker`], the consumer thread stores the input offsets the tracker releases, and the
//! `offset-commit` thread ([`Sink::run_committer`]) commits them every `kafka.commit_interval_ms`; the
//! exactly-once sink (`txn.rs`) produces inside a transaction and sends the offsets with it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use borderlane_core::codes::PortCode;
use borderlane_core::decision::Action;
use borderlane_core::decision::Lane;
use borderlane_core::wire::{BadInput, ErrorKind};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tracing::{debug, error, info, warn};

use crate::service::config::Config;
use crate::service::kafka::ack::{AckTracker, Ticket};
use crate::service::kafka::cutoff::CutOff;
use crate::service::metrics::{Client, Metrics};
use crate::service::{Brief, ForWatchers, Watchers};

/// The input record an output answers.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// Input topic.
    pub topic: &'a str,
    /// Input partition.
    pub partition: i32,
    /// Input offset.
    pub offset: i64,
    /// Kafka timestamp of the input (ms since the epoch), for the end-to-end latency.
    pub timestamp_ms: Option<i64>,
    /// Input key, copied to the dead letter.
    pub key: Option<&'a [u8]>,
}

/// What to emit for one input.
#[derive(Debug)]
pub enum Output<'a> {
    /// A decision: its manifest's id (the record key), what its headers and metrics read, its JSON.
    Decision {
        id: &'a str,
        brief: &'a Brief,
        json: &'a [u8],
    },
    /// The input could not be decided: original value (null stays null) and why.
    DeadLetter {
        value: Option<&'a [u8]>,
        error: &'a BadInput,
    },
}

/// The sink of the pipeline, by delivery mode.
pub enum Sink {
    AtLeastOnce(AtLeastOnceSink),
    ExactlyOnce(crate::service::kafka::txn::ExactlyOnceSink),
}

/// The result of an asynchronous offset commit (at-least-once), from the consumer's commit callback:
/// failures are logged and counted (`borderlane_offset_commit_failures_total`).
pub fn commit_result(metrics: &Metrics, result: &rdkafka::error::KafkaResult<()>) {
    match result {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(e) => {
            metrics.offset_commit_failed();
            warn!(error = %e, "offset commit failed; retried at the next interval (a crash before then redoes the tail)");
        }
    }
}

impl Sink {
    /// Sends the output of one input record. An error is fatal for the pipeline.
    pub fn emit(&self, origin: &Origin<'_>, output: Output<'_>) -> anyhow::Result<()> {
        match self {
            Sink::AtLeastOnce(s) => s.emit(origin, output),
            Sink::ExactlyOnce(s) => s.emit(origin, output),
        }
    }

    /// Hands finished input progress to the consumer.
    pub fn checkpoint<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) {
        match self {
            Sink::AtLeastOnce(s) => s.checkpoint(consumer),
            Sink::ExactlyOnce(s) => s.checkpoint(consumer),
        }
    }

    /// Runs the at-least-once interval commits on the calling thread until [`Sink::stop_committer`]
    /// (returns at once in exactly-once mode, where offsets commit inside the transaction).
    pub fn run_committer<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) {
        match self {
            Sink::AtLeastOnce(s) => s.run_committer(consumer),
            Sink::ExactlyOnce(_) => {}
        }
    }

    /// Ends [`Sink::run_committer`] once the commit it runs, if any, finished.
    pub fn stop_committer(&self) {
        match self {
            Sink::AtLeastOnce(s) => s.stop_committer(),
            Sink::ExactlyOnce(_) => {}
        }
    }

    /// Partitions of the input topic were assigned to this instance.
    pub fn assigned(&self, tpl: &TopicPartitionList) {
        match self {
            Sink::AtLeastOnce(s) => s.assigned(tpl),
            Sink::ExactlyOnce(_) => {}
        }
    }

    /// Partitions are being taken away: finish their work and commit before they go.
    pub fn revoked<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
    ) {
        match self {
            Sink::AtLeastOnce(s) => s.revoked(consumer, tpl),
            Sink::ExactlyOnce(s) => s.revoked(consumer, tpl),
        }
    }

    /// Waits until every output sent is acknowledged (or failed); true if all were.
    pub fn drain(&self, timeout: Duration) -> bool {
        match self {
            Sink::AtLeastOnce(s) => s.drain(timeout),
            Sink::ExactlyOnce(_) => true,
        }
    }

    /// At-least-once: pauses the assigned input partitions while the oldest stored offset has gone
    /// uncommitted for longer than `kafka.max_uncommitted_ms`, and resumes them once a commit succeeded.
    pub fn gate<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) {
        match self {
            Sink::AtLeastOnce(s) => s.gate(consumer),
            Sink::ExactlyOnce(_) => {}
        }
    }

    /// The result of an offset commit reported by the consumer's commit callback (librdkafka calls it for
    /// commits it makes itself; the service's own commits are synchronous and counted where they run).
    pub fn commit_done(&self, result: &rdkafka::error::KafkaResult<()>) {
        match self {
            Sink::AtLeastOnce(s) => commit_result(&s.shared.metrics, result),
            Sink::ExactlyOnce(s) => s.commit_result(result),
        }
    }

    /// Blocks while too much work is in flight; returns at the latest after `timeout`.
    pub fn wait_for_capacity(&self, timeout: Duration) {
        match self {
            Sink::AtLeastOnce(s) => s.wait_for_capacity(timeout),
            Sink::ExactlyOnce(_) => {}
        }
    }

    /// A fatal error seen by the sink (delivery failure, fatal producer error), if any.
    pub fn failure(&self) -> Option<String> {
        match self {
            Sink::AtLeastOnce(s) => s.shared.failure(),
            Sink::ExactlyOnce(s) => s.failure(),
        }
    }

    /// Runs on the pipeline thread before the first poll (exactly-once: `init_transactions`, which also
    /// fences a previous incarnation of this instance).
    pub fn start(&self) -> anyhow::Result<()> {
        match self {
            Sink::AtLeastOnce(_) => Ok(()),
            Sink::ExactlyOnce(s) => s.start(),
        }
    }

    /// A decision was emitted: tell the watchers now (at-least-once) or once its transaction commits
    /// (exactly-once), so the feed and the what-if window never see a decision that was rolled back.
    /// `w` is what [`Watchers::prepare`] made of it on the scoring thread.
    pub fn decided(&self, watchers: &Watchers, w: ForWatchers, brief: &Brief) {
        match self {
            Sink::AtLeastOnce(_) => watchers.decided(w, brief),
            Sink::ExactlyOnce(s) => s.decided(watchers, w, brief),
        }
    }

    /// Exactly-once: after an aborted transaction the consumer must go back to the committed offsets
    /// before anything else is processed. Returns true when it rewound (a message polled before the rewind
    /// must then be dropped: it will be read again).
    pub fn rewind_if_needed<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
    ) -> anyhow::Result<bool> {
        match self {
            Sink::AtLeastOnce(_) => Ok(false),
            Sink::ExactlyOnce(s) => s.rewind_if_needed(consumer),
        }
    }

    /// Final step at shutdown: at-least-once waits for acknowledgements (see `drain`); exactly-once commits
    /// the open transaction (or aborts it).
    pub fn finish<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) -> anyhow::Result<()> {
        match self {
            Sink::AtLeastOnce(_) => Ok(()),
            Sink::ExactlyOnce(s) => s.finish(consumer),
        }
    }

    /// The configured mode.
    pub fn mode(&self) -> crate::service::kafka::clients::DeliveryMode {
        match self {
            Sink::AtLeastOnce(_) => crate::service::kafka::clients::DeliveryMode::AtLeastOnce,
            Sink::ExactlyOnce(_) => crate::service::kafka::clients::DeliveryMode::ExactlyOnce,
        }
    }
}

/// Longest `error.message` header a dead letter carries (cut on a char boundary): the message may quote
/// the input, and an unbounded one could make a dead letter larger than the input (a poison loop).
pub const MAX_ERROR_MESSAGE: usize = 1024;

/// Bytes librdkafka/Kafka add per record besides key, value and header bytes (record batch overhead,
/// varints, per-header framing); generous, so the size check errs on the safe side.
const RECORD_OVERHEAD: usize = 512;

/// Bytes a header costs in a record besides its key and value.
const HEADER_OVERHEAD: usize = 10;

/// `s` cut to at most `max` bytes on a char boundary.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// How outputs become records: topics and the size bound of the producer. Shared by both sinks.
pub struct OutputTopics {
    /// Output topic of decisions.
    decisions: String,
    /// Output topic of dead letters.
    dlq: String,
    /// The producer's `message.max.bytes`: key + value + headers + overhead of one record must fit.
    max_record: usize,
}

/// One output ready to send.
pub struct Prepared<'a> {
    pub topic: &'a str,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: OwnedHeaders,
    pub what: Outcome,
}

fn header_bytes(headers: &[(&str, &str)]) -> usize {
    headers
        .iter()
        .map(|(k, v)| k.len() + v.len() + HEADER_OVERHEAD)
        .sum()
}

impl OutputTopics {
    pub fn new(config: &Config) -> anyhow::Result<OutputTopics> {
        Ok(OutputTopics {
            decisions: config.kafka.topics.decisions.clone(),
            dlq: config.kafka.topics.dlq.clone(),
            max_record: crate::service::kafka::clients::producer_max_message_bytes(&config.kafka)
                .map_err(|e| anyhow!("kafka.producer.message.max.bytes: {e}"))?,
        })
    }

    /// The record for one output. Every output carries `source.topic`, `source.partition` and
    /// `source.offset`, so each maps to exactly one input. A dead letter's `error.message` is cut to
    /// [`MAX_ERROR_MESSAGE`] bytes, and when key + value + headers would not fit the producer's
    /// `message.max.bytes` (an `oversized` input, possible when the manifests topic accepts larger
    /// records than the producer may send, or when its producer compressed it under the topic's limit),
    /// the value keeps its first bytes and the header `error.truncated_from` gives the original size.
    pub fn prepare<'a>(&'a self, origin: &Origin<'a>, output: Output<'a>) -> Prepared<'a> {
        // Formatted on the stack: the headers copy their values (every record passes here, on the pipeline
        // thread).
        let (mut partition, mut offset) = (itoa::Buffer::new(), itoa::Buffer::new());
        let source = [
            ("source.topic", origin.topic),
            ("source.partition", partition.format(origin.partition)),
            ("source.offset", offset.format(origin.offset)),
        ];
        match output {
            Output::Decision { id, brief, json } => {
                let mut headers = OwnedHeaders::new_with_capacity(3);
                for (k, v) in source {
                    headers = headers.insert(Header {
                        key: k,
                        value: Some(v),
                    });
                }
                Prepared {
                    topic: &self.decisions,
                    key: Some(id.as_bytes()),
                    value: Some(json),
                    headers,
                    what: Outcome::Decision {
                        action: brief.action,
                        lane: brief.lane,
                        port: brief.port,
                        priority: brief.priority,
                    },
                }
            }
            Output::DeadLetter { value, error } => {
                let message = truncate_utf8(&error.message, MAX_ERROR_MESSAGE);
                let mut fixed: Vec<(&str, &str)> = vec![
                    ("error.kind", error.kind.as_str()),
                    ("error.message", message),
                ];
                fixed.extend(source);
                let key_len = origin.key.map_or(0, <[u8]>::len);
                let value_len = value.map_or(0, <[u8]>::len);
                // Room for the value once key, headers (including a possible error.truncated_from) and
                // the record overhead are counted.
                let room = self.max_record.saturating_sub(
                    key_len
                        + header_bytes(&fixed)
                        + header_bytes(&[("error.truncated_from", "18446744073709551615")])
                        + RECORD_OVERHEAD,
                );
                let (value, truncated) = match value {
                    Some(v) if value_len > room => (Some(&v[..room]), Some(v.len().to_string())),
                    v => (v, None),
                };
                let mut headers = OwnedHeaders::new_with_capacity(fixed.len() + 1);
                for (k, v) in fixed {
                    headers = headers.insert(Header {
                        key: k,
                        value: Some(v),
                    });
                }
                if let Some(original) = &truncated {
                    warn!(
                        partition = origin.partition,
                        offset = origin.offset,
                        bytes = original.as_str(),
                        "dead letter too large for the producer: value truncated"
                    );
                    headers = headers.insert(Header {
                        key: "error.truncated_from",
                        value: Some(original.as_str()),
                    });
                }
                Prepared {
                    topic: &self.dlq,
                    key: origin.key,
                    value,
                    headers,
                    what: Outcome::DeadLetter(error.kind),
                }
            }
        }
    }
}

/// What the delivery callback needs to finish one output (opaque outside this module).
pub struct Pending {
    /// The input record to acknowledge.
    ticket: Ticket,
    /// Input Kafka timestamp, for the end-to-end latency.
    timestamp_ms: Option<i64>,
    /// What was sent, for the outcome metrics.
    what: Outcome,
}

#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Decision {
        action: Action,
        lane: Lane,
        port: PortCode,
        /// The business-resumption priority, when the decision carries one.
        priority: Option<u8>,
    },
    DeadLetter(ErrorKind),
}

impl Outcome {
    /// Counts an acknowledged (or committed) output.
    pub fn count(self, m: &Metrics) {
        match self {
            Outcome::Decision {
                action,
                lane,
                port,
                priority,
            } => {
                m.decision_acknowledged(action, lane, port);
                if let Some(p) = priority {
                    m.decision_prioritized(port, p);
                }
            }
            Outcome::DeadLetter(kind) => m.dead_letter_acknowledged(kind),
        }
    }
}

/// State shared by the pipeline thread and the producer's delivery-callback thread.
pub struct Shared {
    /// In-order acknowledgement of input offsets.
    tracker: AckTracker,
    /// Outcome counters and latencies are recorded at acknowledgement.
    metrics: Arc<Metrics>,
    /// Fast check for `failure`.
    failed: AtomicBool,
    /// The first fatal error; the pipeline stops on it and its input offset is never stored.
    failure: Mutex<Option<String>>,
}

impl Shared {
    fn fail(&self, why: String) {
        let mut f = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if f.is_none() {
            error!(error = %why, "output failed; stopping (the input offset is not committed)");
            *f = Some(why);
        }
        self.failed.store(true, Ordering::Release);
    }

    fn failure(&self) -> Option<String> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The producer's context: delivery reports acknowledge inputs.
pub struct DeliveryContext {
    /// The tracker to acknowledge, the metrics to count, the failure to raise.
    shared: Arc<Shared>,
    /// Whether the producer has been left without a broker to connect to.
    cut_off: CutOff,
}

impl ClientContext for DeliveryContext {
    /// The producer's statistics serve the cut-off watch alone: a producer cut off for good fails the
    /// pipeline, which stops the instance with nothing of the unacknowledged outputs' inputs committed.
    fn stats_raw(&self, statistics: &[u8]) {
        if self.cut_off.watch_raw(statistics, "decisions producer") {
            self.shared.metrics.kafka_error(Client::Producer);
            self.shared.fail(CutOff::message("decisions producer"));
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.shared.metrics.kafka_error(Client::Producer);
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
            self.shared
                .fail(format!("fatal producer error: {error}: {reason}"));
        } else {
            warn!(error = %error, reason, "producer error (librdkafka retries)");
        }
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<Pending>;

    fn delivery(&self, result: &DeliveryResult<'_>, pending: Box<Pending>) {
        match result {
            Ok(_) => {
                if !self.shared.tracker.ack(pending.ticket) {
                    debug!(ticket = ?pending.ticket, "acknowledgement for a revoked partition ignored");
                }
                let m = &self.shared.metrics;
                pending.what.count(m);
                if let Some(ts) = pending.timestamp_ms {
                    let now = crate::clock::unix_millis();
                    m.end_to_end(Duration::from_millis(now.saturating_sub(ts).max(0) as u64));
                }
            }
            Err((e, msg)) => {
                self.shared.metrics.delivery_failed();
                self.shared.fail(format!(
                    "delivery to {} failed for input partition {} offset {}: {e}",
                    msg.topic(),
                    pending.ticket.partition,
                    pending.ticket.offset
                ));
            }
        }
    }
}

/// The at-least-once interval commit, between the pipeline thread (asks) and the committer thread (runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CommitState {
    /// None asked for since the last one, asked for at this instant (at start: the start).
    Idle(Instant),
    /// Asked for at this instant, not started.
    Asked(Instant),
    /// Running; asked for at this instant.
    Running(Instant),
    /// The pipeline is stopping: the committer thread returns.
    Stop,
}

/// At-least-once: see the module documentation.
pub struct AtLeastOnceSink {
    /// Sends decisions and dead letters; its own thread serves delivery callbacks.
    producer: ThreadedProducer<DeliveryContext>,
    /// Tracker, metrics and failure state, shared with the delivery callback.
    shared: Arc<Shared>,
    /// Input topic (offsets are stored for it).
    input_topic: String,
    /// How outputs become records.
    topics: OutputTopics,
    /// Backpressure threshold: outputs sent and not acknowledged.
    max_in_flight: usize,
    /// How long a revoke waits for in-flight outputs before giving the partitions up.
    revoke_timeout: Duration,
    /// Explicit commits of the stored offsets, at most this far apart.
    commit_interval: Duration,
    /// The interval commit the committer thread is asked for or running, with when it was asked for.
    commit: Mutex<CommitState>,
    /// Wakes the committer thread.
    commit_wake: Condvar,
    /// Stored input offsets not yet known to be committed, per partition, oldest first: (next offset,
    /// when stored). A commit's success pops what it covered.
    uncommitted: Mutex<HashMap<i32, VecDeque<(i64, Instant)>>>,
    /// The gate: the oldest uncommitted store may be at most this old.
    max_uncommitted: Duration,
    /// The input partitions are paused by the gate.
    paused: AtomicBool,
}

impl AtLeastOnceSink {
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> anyhow::Result<AtLeastOnceSink> {
        let shared = Arc::new(Shared {
            tracker: AckTracker::new(),
            metrics,
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
        });
        let producer = crate::service::kafka::clients::client_config(
            &config.kafka,
            crate::service::kafka::clients::Role::Producer,
        )
        .create_with_context(DeliveryContext {
            shared: shared.clone(),
            cut_off: CutOff::default(),
        })
        .map_err(|e| anyhow!("creating the producer: {e}"))?;
        Ok(AtLeastOnceSink {
            producer,
            shared,
            input_topic: config.kafka.topics.manifests.clone(),
            topics: OutputTopics::new(config)?,
            max_in_flight: config.kafka.max_in_flight,
            revoke_timeout: Duration::from_millis(config.service.shutdown_timeout_ms / 2),
            commit_interval: Duration::from_millis(config.kafka.commit_interval_ms),
            commit: Mutex::new(CommitState::Idle(Instant::now())),
            commit_wake: Condvar::new(),
            uncommitted: Mutex::new(HashMap::new()),
            max_uncommitted: Duration::from_millis(config.kafka.max_uncommitted_ms),
            paused: AtomicBool::new(false),
        })
    }

    fn uncommitted(&self) -> MutexGuard<'_, HashMap<i32, VecDeque<(i64, Instant)>>> {
        self.uncommitted.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Age of the oldest stored offset not yet committed.
    fn uncommitted_age(&self, now: Instant) -> Option<Duration> {
        self.uncommitted()
            .values()
            .filter_map(|q| q.front())
            .map(|(_, at)| now.saturating_duration_since(*at))
            .max()
    }

    /// A synchronous commit of the stored offsets finished: failures are logged and counted; on success
    /// (or "nothing to commit") every offset stored before `asked` is safe — all of them when `asked` is
    /// `None` (the commit ran on the thread that stores, so nothing was stored since). librdkafka commits
    /// what is stored when it takes the request, which is after it was asked for: offsets stored in between
    /// may be committed too, but stay counted as uncommitted until the next commit.
    fn commit_finished(
        &self,
        result: &rdkafka::error::KafkaResult<()>,
        at: &str,
        asked: Option<Instant>,
    ) {
        match result {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => match asked {
                None => self.uncommitted().values_mut().for_each(VecDeque::clear),
                Some(asked) => self
                    .uncommitted()
                    .values_mut()
                    .for_each(|q| q.retain(|(_, stored)| *stored > asked)),
            },
            Err(e) => {
                self.shared.metrics.offset_commit_failed();
                warn!(error = %e, at, "offset commit failed; retried at the next interval (a crash before then redoes the uncommitted tail)");
            }
        }
    }

    /// See [`Sink::gate`]. Runs on the consumer thread before every poll; while paused it re-pauses the
    /// whole assignment (partitions assigned meanwhile included), which costs nothing when nothing flows.
    fn gate<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) {
        let age = self.uncommitted_age(Instant::now());
        let over = age.is_some_and(|a| a > self.max_uncommitted);
        let paused = self.paused.load(Ordering::Relaxed);
        if !over && !paused {
            return;
        }
        let assignment = match consumer.assignment() {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "gate: reading the assignment failed");
                return;
            }
        };
        if over {
            if let Err(e) = consumer.pause(&assignment) {
                warn!(error = %e, "gate: pausing the input failed");
            }
            if !paused {
                self.paused.store(true, Ordering::Relaxed);
                self.shared.metrics.input_paused(true);
                warn!(
                    uncommitted_ms = age.map_or(0, |a| a.as_millis() as u64),
                    "offset commits overdue: input paused until a commit succeeds (bounds the work a \
                     crash redoes)"
                );
            }
        } else {
            if let Err(e) = consumer.resume(&assignment) {
                warn!(error = %e, "gate: resuming the input failed");
            }
            self.paused.store(false, Ordering::Relaxed);
            self.shared.metrics.input_paused(false);
            info!("offsets committed again: input resumed");
        }
    }

    fn emit(&self, origin: &Origin<'_>, output: Output<'_>) -> anyhow::Result<()> {
        let ticket = self.shared.tracker.begin(origin.partition, origin.offset);
        let Prepared {
            topic,
            key,
            value,
            headers,
            what,
        } = self.topics.prepare(origin, output);
        let pending = Box::new(Pending {
            ticket,
            timestamp_ms: origin.timestamp_ms,
            what,
        });
        let mut record: BaseRecord<'_, [u8], [u8], Box<Pending>> =
            BaseRecord::with_opaque_to(topic, pending);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(v) = value {
            record = record.payload(v);
        }
        record = record.headers(headers);
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    // librdkafka's queue is full: wait for deliveries to make room.
                    if let Some(f) = self.shared.failure() {
                        bail!(f);
                    }
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => {
                    // The ticket stays pending, so no later offset of this partition is ever stored.
                    let why = format!(
                        "cannot send to {topic} for input partition {} offset {}: {e}",
                        origin.partition, origin.offset
                    );
                    self.shared.fail(why.clone());
                    bail!(why);
                }
            }
        }
        Ok(())
    }

    fn checkpoint<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) {
        let ready = self.shared.tracker.take_ready();
        self.shared
            .metrics
            .in_flight(self.shared.tracker.in_flight());
        if ready.is_empty() {
            self.commit_due();
            return;
        }
        let mut tpl = TopicPartitionList::with_capacity(ready.len());
        for (p, next) in &ready {
            if let Err(e) = tpl.add_partition_offset(&self.input_topic, *p, Offset::Offset(*next)) {
                warn!(error = %e, partition = p, "cannot build offset list");
            }
        }
        match consumer.store_offsets(&tpl) {
            Ok(()) => {
                self.shared.metrics.offsets_stored(ready.len());
                let now = Instant::now();
                let mut u = self.uncommitted();
                for (p, next) in &ready {
                    u.entry(*p).or_default().push_back((*next, now));
                }
            }
            // A partition revoked between take_ready and here: its new owner re-reads (duplicates only).
            Err(e) => warn!(error = %e, "storing offsets failed"),
        }
        self.commit_due();
    }

    /// Explicit commit of the stored offsets every `commit_interval` (librdkafka's auto-commit is off: it
    /// skips commits while a rebalance runs). Synchronous: librdkafka reports the result of an
    /// asynchronous `rd_kafka_commit` only to an `offset_commit_cb`, which rust-rdkafka does not set, so
    /// an asynchronous commit's failure would go unseen and the gate could never learn what is committed.
    /// It costs one round trip to the group coordinator per interval (~1–2 ms on the local broker), and
    /// fails at once while there is no coordinator (`_WAIT_COORD`).
    /// Asks the committer thread for the interval commit, unless the last one is still running. The
    /// commit is synchronous — librdkafka reports the result of an asynchronous one only to an
    /// `offset_commit_cb`, which rust-rdkafka's event API never sets (docs/reliability.md) — but it runs
    /// off the pipeline thread: run here, its round trip to the group coordinator held every record polled
    /// meanwhile (measured at 2 000/s on the shared 2-CPU machine: 86 of 5 378 commits over 5 ms, the
    /// slowest over 160 ms — the largest part of the service's tail; docs/performance.md).
    fn commit_due(&self) {
        let mut state = self.commit_state();
        match *state {
            CommitState::Idle(last) if last.elapsed() >= self.commit_interval => {
                *state = CommitState::Asked(Instant::now());
                self.commit_wake.notify_one();
            }
            _ => {}
        }
    }

    fn commit_state(&self) -> MutexGuard<'_, CommitState> {
        self.commit.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The committer thread: runs each interval commit the pipeline thread asks for, until [`Self::stop_committer`].
    fn run_committer<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) {
        loop {
            let mut state = self.commit_state();
            let asked = loop {
                match *state {
                    CommitState::Stop => return,
                    CommitState::Asked(asked) => break asked,
                    CommitState::Idle(_) | CommitState::Running(_) => {
                        state = self
                            .commit_wake
                            .wait(state)
                            .unwrap_or_else(|e| e.into_inner());
                    }
                }
            };
            *state = CommitState::Running(asked);
            drop(state);
            let started = Instant::now();
            let result = consumer.commit_consumer_state(CommitMode::Sync);
            self.shared.metrics.offset_commit_seconds(started.elapsed());
            self.commit_finished(&result, "interval", Some(asked));
            let mut state = self.commit_state();
            if *state == CommitState::Running(asked) {
                *state = CommitState::Idle(asked);
            }
        }
    }

    fn stop_committer(&self) {
        *self.commit_state() = CommitState::Stop;
        self.commit_wake.notify_all();
    }

    fn assigned(&self, tpl: &TopicPartitionList) {
        for e in tpl.elements_for_topic(&self.input_topic) {
            self.shared.tracker.assign(e.partition());
        }
    }

    fn revoked<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>, tpl: &TopicPartitionList) {
        let lost = consumer.assignment_lost();
        // Not `flush`: rust-rdkafka's flush polls in 100 ms rounds a queue this producer's own thread
        // serves (see txn.rs), so every revoke with outputs in flight waited 100 ms longer.
        if !crate::service::kafka::txn::wait_delivered(&self.producer, self.revoke_timeout) {
            warn!("revoke: outputs still unacknowledged; the next owner redoes them");
        }
        self.checkpoint(consumer);
        if !lost {
            let result = consumer.commit_consumer_state(CommitMode::Sync);
            self.commit_finished(&result, "revoke", None);
        }
        // A pause is a flag on librdkafka's partition object, which outlives the assignment: a partition
        // given up while the gate paused it would come back paused, and never be resumed (found by
        // scripts/chaos: its input stopped for good after a broker restart).
        if self.paused.load(Ordering::Relaxed) {
            if let Err(e) = consumer.resume(tpl) {
                warn!(error = %e, "revoke: resuming the revoked partitions failed");
            }
        }
        let mut dropped = 0;
        for e in tpl.elements_for_topic(&self.input_topic) {
            self.uncommitted().remove(&e.partition());
            dropped += self.shared.tracker.revoke(e.partition());
            self.shared
                .metrics
                .forget_partition(&self.input_topic, e.partition());
        }
        info!(
            partitions = tpl.count(),
            lost, dropped, "partitions revoked after draining"
        );
    }

    fn drain(&self, timeout: Duration) -> bool {
        if self.producer.context().cut_off.tripped() {
            // Cut off for good (`cutoff`): nothing more will be delivered, so waiting would only delay
            // the stop. The unacknowledged outputs' inputs stay uncommitted and are redone.
            return false;
        }
        let flushed = self.producer.flush(timeout).is_ok();
        flushed && self.shared.tracker.wait_drained(Duration::from_millis(100))
    }

    fn wait_for_capacity(&self, timeout: Duration) {
        if self.shared.tracker.in_flight() >= self.max_in_flight {
            self.shared.tracker.wait_below(self.max_in_flight, timeout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::kafka::cutoff::CUT_OFF_AFTER;
    use std::path::Path;

    fn sink() -> AtLeastOnceSink {
        let config = Config::from_text(
            "[kafka]\ntopics.manifests = \"in\"",
            Vec::new(),
            Path::new(""),
        )
        .unwrap();
        AtLeastOnceSink::new(&config, Arc::new(Metrics::new())).unwrap()
    }

    /// A producer statistics report without any broker, librdkafka's shape.
    const NO_BROKER_STATS: &[u8] = br#"{"name":"rdkafka#producer-1","type":"producer",
        "brokers":{"GroupCoordinator":{"name":"GroupCoordinator","nodeid":-1,"source":"logical",
        "state":"TRY_CONNECT"}},"topics":{}}"#;

    /// The producer's statistics handler, cut off for the cut-off time, fails the pipeline with the cause
    /// (which stops the instance, nothing of the unacknowledged outputs' inputs committed); a report
    /// listing a broker before that does not.
    #[test]
    fn a_producer_cut_off_for_good_fails_the_pipeline() {
        let s = sink();
        // A context of its own: the sink's real producer reports statistics every second meanwhile.
        let ctx = DeliveryContext {
            shared: s.shared.clone(),
            cut_off: CutOff::default(),
        };
        let long_ago = Instant::now()
            .checked_sub(CUT_OFF_AFTER + Duration::from_secs(1))
            .expect("the machine has been up for a while");
        ctx.cut_off.observe(long_ago, false);
        ctx.stats_raw(br#"{"brokers":{"b":{"source":"learned","state":"INIT"}}}"#);
        assert!(s.shared.failure().is_none(), "a broker listed again");
        ctx.cut_off.observe(long_ago, false);
        ctx.stats_raw(NO_BROKER_STATS);
        let f = s.shared.failure().expect("the pipeline fails");
        assert!(
            f.contains("decisions producer") && f.contains("librdkafka#5301"),
            "{f}"
        );
    }

    #[test]
    fn only_a_successful_commit_releases_the_gate() {
        let s = sink();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let fill = || {
            let mut u = s.uncommitted();
            u.entry(0)
                .or_default()
                .extend([(10, t0), (20, t0 + ms(50))]);
            u.entry(1).or_default().push_back((5, t0 + ms(10)));
        };
        fill();
        // The oldest store of any partition decides.
        assert_eq!(s.uncommitted_age(t0 + ms(100)), Some(ms(100)));
        // A refused commit releases nothing and is counted.
        s.commit_finished(
            &Err(KafkaError::ConsumerCommit(
                RDKafkaErrorCode::RebalanceInProgress,
            )),
            "test",
            None,
        );
        assert_eq!(s.uncommitted_age(t0 + ms(100)), Some(ms(100)));
        assert!(s
            .shared
            .metrics
            .render()
            .contains("borderlane_offset_commit_failures_total 1"));
        s.commit_finished(&Ok(()), "test", None);
        assert_eq!(s.uncommitted_age(t0 + ms(100)), None);
        // "Nothing to commit" means nothing stored is at risk.
        fill();
        s.commit_finished(
            &Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)),
            "test",
            None,
        );
        assert_eq!(s.uncommitted_age(t0 + ms(100)), None);
    }

    #[test]
    fn a_commit_asked_for_earlier_releases_only_what_was_stored_before_it() {
        let s = sink();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        {
            let mut u = s.uncommitted();
            u.entry(0)
                .or_default()
                .extend([(10, t0), (20, t0 + ms(50)), (30, t0 + ms(70))]);
            u.entry(1).or_default().push_back((5, t0 + ms(60)));
        }
        // The committer was asked at 55 ms: 10 and 20 were stored before; 30 and partition 1's 5 after.
        s.commit_finished(&Ok(()), "test", Some(t0 + ms(55)));
        assert_eq!(
            s.uncommitted()[&0].iter().map(|e| e.0).collect::<Vec<_>>(),
            [30]
        );
        assert_eq!(s.uncommitted()[&1].len(), 1);
        assert_eq!(s.uncommitted_age(t0 + ms(100)), Some(ms(40)));
        // "Nothing to commit" the same way; a failure releases nothing.
        s.commit_finished(
            &Err(KafkaError::ConsumerCommit(
                RDKafkaErrorCode::WaitingForCoordinator,
            )),
            "test",
            Some(t0 + ms(100)),
        );
        assert_eq!(s.uncommitted_age(t0 + ms(100)), Some(ms(40)));
        s.commit_finished(
            &Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)),
            "test",
            Some(t0 + ms(65)),
        );
        assert_eq!(s.uncommitted_age(t0 + ms(100)), Some(ms(30)));
        s.commit_finished(&Ok(()), "test", Some(t0 + ms(100)));
        assert_eq!(s.uncommitted_age(t0 + ms(100)), None);
    }
}
