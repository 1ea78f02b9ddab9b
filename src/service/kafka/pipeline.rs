//! The manifest pipeline: consume (consumer group) → score with the core → emit through the [`Sink`].
//!
//! One dedicated thread runs the consumer loop and scores inline: scoring costs ~1–2 µs, far less than any
//! hand-off to another thread or task would. librdkafka's rebalance callbacks run on this same thread (in
//! `poll`), so a revoke can block there until the revoked partitions' outputs are acknowledged and their
//! offsets committed, without stalling an async runtime.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use arc_swap::ArcSwap;
use borderlane_core::history::{History, HistoryAsOf, Watermark};
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::score::{process_with, Lookups};
use borderlane_core::table::PartnerTable;
use borderlane_core::wire::{BadInput, ErrorKind, Limits};
use borderlane_core::Resumptions;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;
use tracing::{debug, info, warn};

use crate::service::config::Config;
use crate::service::kafka::clients::{client_config, Role};
use crate::service::kafka::sink::{Origin, Output, Sink};
use crate::service::metrics::{Client, Metrics};
use crate::service::stall::Sample;
use crate::service::{Readiness, Shutdown, Watchers};

/// Longest pause between two offset stores while messages flow.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(5);

/// The manifest consumer's context: rebalances drain the sink; statistics feed the lag gauges and the
/// stall detector behind `/readyz`.
pub struct PipelineContext {
    /// Drained and committed on revoke; told about assignments.
    sink: Arc<Sink>,
    /// Lag gauges and error counts.
    metrics: Arc<Metrics>,
    /// Its stall detector is fed the lag and positions of the assigned partitions.
    readiness: Arc<Readiness>,
    /// Input topic, to pick its partitions out of statistics.
    topic: String,
}

impl ClientContext for PipelineContext {
    fn stats(&self, stats: Statistics) {
        let Some(t) = stats.topics.get(&self.topic) else {
            // No partition of the input topic assigned (or no statistics of it yet).
            self.readiness.stall().observe(Instant::now(), []);
            return;
        };
        self.readiness.stall().observe(
            Instant::now(),
            t.partitions
                .values()
                .filter(|p| p.partition >= 0 && p.desired)
                .map(|p| (p.partition, Sample::from_stats(p))),
        );
        for p in t.partitions.values() {
            if p.partition < 0 || !p.desired {
                continue;
            }
            let lag = if p.consumer_lag_stored >= 0 {
                p.consumer_lag_stored
            } else {
                p.consumer_lag
            };
            if lag >= 0 {
                self.metrics.consumer_lag(&self.topic, p.partition, lag);
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.metrics.kafka_error(Client::ManifestConsumer);
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
            // The consume loop reads the fatal error and stops the instance.
            tracing::error!(error = %error, reason, "fatal manifest consumer error");
        } else {
            warn!(error = %error, reason, "manifest consumer error (librdkafka retries)");
        }
    }
}

impl ConsumerContext for PipelineContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                info!(partitions = tpl.count(), "partitions assigned");
                self.sink.assigned(tpl);
            }
            Rebalance::Revoke(tpl) => {
                self.readiness.stall().forget(
                    tpl.elements_for_topic(&self.topic)
                        .iter()
                        .map(|e| e.partition()),
                );
                self.sink.revoked(consumer, tpl)
            }
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
        }
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        _offsets: &rdkafka::TopicPartitionList,
    ) {
        self.sink.commit_done(&result);
    }
}

/// Whether a consumer error reported by `poll` is known not to skip any input record (connection and
/// coordinator trouble that librdkafka retries). Every other error may stand for records the consumer
/// skipped (`_AUTO_OFFSET_RESET`, `OFFSET_OUT_OF_RANGE`, a corrupt batch, lost authorization …) and stops
/// the instance: the skipped offsets have no outcome, and continuing would commit past them. A dead
/// letter for the gap is not possible — the error does not say which offsets were skipped.
pub fn consumer_error_is_transient(e: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    match e {
        KafkaError::PartitionEOF(_) => true,
        KafkaError::MessageConsumption(code) => matches!(
            code,
            C::BrokerTransportFailure
                | C::AllBrokersDown
                | C::Resolve
                | C::OperationTimedOut
                | C::RequestTimedOut
                | C::NetworkException
                | C::NotCoordinator
                | C::CoordinatorNotAvailable
                | C::CoordinatorLoadInProgress
                | C::LeaderNotAvailable
                | C::NotLeaderForPartition
                | C::RebalanceInProgress
                | C::UnknownMemberId
                | C::IllegalGeneration
                | C::PollExceeded
                | C::BrokerDestroy
        ),
        _ => false,
    }
}

/// The message of a fatal error of a group consumer (`which`: "manifest", "outcome dead-letter"): the
/// instance stops (nothing more is consumed; a restart resumes at the committed offsets).
/// `FENCED_INSTANCE_ID` means the group coordinator gave this static member's id (`group.instance.id` =
/// `kafka.instance_id`) to a newer member: another instance runs with the same `kafka.instance_id`, or this
/// one's restart was faster than its own shutdown.
pub fn fatal_consumer_error(
    which: &str,
    code: RDKafkaErrorCode,
    reason: &str,
    instance_id: Option<&str>,
) -> String {
    if code == RDKafkaErrorCode::FencedInstanceId {
        format!(
            "the {which} consumer was fenced by a newer group member with the same group.instance.id \
             (kafka.instance_id = {:?}): ANOTHER RUNNING INSTANCE IS CONFIGURED WITH THIS \
             kafka.instance_id, which must be unique per running instance; this instance stops ({reason})",
            instance_id.unwrap_or("")
        )
    } else {
        format!("fatal {which} consumer error ({code:?}): {reason}; this instance stops")
    }
}

/// See the module documentation.
pub struct Pipeline {
    /// Group member on the manifest topic; subscribed only once the partner table is complete.
    consumer: BaseConsumer<PipelineContext>,
    /// Where decisions and dead letters go.
    sink: Arc<Sink>,
    /// Current policy; each manifest is scored against one snapshot.
    policy: Arc<ArcSwap<CompiledPolicy>>,
    /// Partner table, kept current by the follower.
    table: Arc<PartnerTable>,
    /// Record limits.
    limits: Limits,
    /// Scoring latency.
    metrics: Arc<Metrics>,
    /// Told when the consumer runs.
    readiness: Arc<Readiness>,
    /// Stops the loop.
    shutdown: Shutdown,
    /// Manifest topic.
    topic: String,
    /// Drain budget at shutdown.
    drain_timeout: Duration,
    /// Largest decision (key + JSON) the producer may send; a larger one becomes an `oversized` dead
    /// letter instead of a send error that would stop the service on every restart.
    max_decision: usize,
    /// Officers' live feed and the what-if window: told about each emitted decision (never blocks).
    watchers: Watchers,
    /// `kafka.instance_id`, for the message of a fenced static member.
    instance_id: Option<String>,
    /// Business-resumption declarations in force; each manifest is scored against one snapshot.
    resumptions: Arc<ArcSwap<Resumptions>>,
    /// The party history and the watermark its follower has applied it to; each manifest reads the
    /// history as of one watermark snapshot (recorded on the decision as `history_as_of`).
    history: Option<(Arc<History>, Arc<ArcSwap<Watermark>>)>,
}

impl Pipeline {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: &Config,
        sink: Arc<Sink>,
        policy: Arc<ArcSwap<CompiledPolicy>>,
        table: Arc<PartnerTable>,
        metrics: Arc<Metrics>,
        readiness: Arc<Readiness>,
        shutdown: Shutdown,
    ) -> anyhow::Result<Pipeline> {
        let consumer = client_config(&config.kafka, Role::ManifestConsumer)
            .create_with_context(PipelineContext {
                sink: sink.clone(),
                metrics: metrics.clone(),
                readiness: readiness.clone(),
                topic: config.kafka.topics.manifests.clone(),
            })
            .map_err(|e| anyhow!("creating the manifest consumer: {e}"))?;
        Ok(Pipeline {
            consumer,
            sink,
            policy,
            table,
            limits: config.limits.limits(),
            metrics,
            readiness,
            shutdown,
            topic: config.kafka.topics.manifests.clone(),
            drain_timeout: Duration::from_millis(config.service.shutdown_timeout_ms * 2 / 3),
            max_decision: crate::service::kafka::clients::producer_max_message_bytes(&config.kafka)
                .map_err(|e| anyhow!("kafka.producer.message.max.bytes: {e}"))?
                .saturating_sub(1024),
            watchers: Watchers::default(),
            instance_id: config.kafka.instance_id.clone(),
            resumptions: Arc::new(ArcSwap::from_pointee(Resumptions::NONE)),
            history: None,
        })
    }

    /// Scores with the business-resumption declarations behind `resumptions` (default: none).
    pub fn with_resumptions(mut self, resumptions: Arc<ArcSwap<Resumptions>>) -> Pipeline {
        self.resumptions = resumptions;
        self
    }

    /// Scores with the party history as of the published watermark (default: no history).
    pub fn with_history(
        mut self,
        history: Arc<History>,
        watermark: Arc<ArcSwap<Watermark>>,
    ) -> Pipeline {
        self.history = Some((history, watermark));
        self
    }

    /// Consumes until shutdown or a fatal sink error, then drains and commits. Blocking.
    pub fn run(self) -> anyhow::Result<()> {
        self.sink.start()?;
        self.consumer
            .subscribe(&[&self.topic])
            .with_context(|| format!("subscribing to {}", self.topic))?;
        self.readiness.consumer_running(true);
        info!(topic = %self.topic, "manifest consumer running");
        let result = self.consume();
        self.readiness.consumer_running(false);
        let drained = self.finish();
        match (result, drained) {
            (Err(e), _) => Err(e),
            (Ok(()), Err(e)) => Err(e),
            (Ok(()), Ok(())) => Ok(()),
        }
    }

    fn consume(&self) -> anyhow::Result<()> {
        let mut checkpoint_at = Instant::now();
        // Reused for every decision's JSON.
        let mut buf = Vec::with_capacity(4096);
        while !self.shutdown.is_triggered() {
            if let Some(f) = self.sink.failure() {
                bail!(f);
            }
            if let Some((code, reason)) = self.consumer.client().fatal_error() {
                self.metrics.kafka_error(Client::ManifestConsumer);
                bail!(fatal_consumer_error(
                    "manifest",
                    code,
                    &reason,
                    self.instance_id.as_deref()
                ));
            }
            self.sink.wait_for_capacity(Duration::from_millis(100));
            self.sink.gate(&self.consumer);
            self.sink.rewind_if_needed(&self.consumer)?;
            match self.consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(m)) => {
                    // A rebalance inside this poll may have aborted the transaction: this message then
                    // precedes the rewind and is read again after it.
                    let rewound = self.sink.rewind_if_needed(&self.consumer)?;
                    if !rewound {
                        self.handle(&m, &mut buf)?;
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) if consumer_error_is_transient(&e) => {
                    self.metrics.kafka_error(Client::ManifestConsumer);
                    warn!(error = %e, "manifest consumer error (transient; librdkafka retries)");
                }
                Some(Err(e)) => {
                    self.metrics.kafka_error(Client::ManifestConsumer);
                    bail!(
                        "manifest consumer error that may skip input records: {e}; stopping so that no \
                         offset past them is committed (a restart resumes at the committed offset)"
                    );
                }
            }
            if checkpoint_at.elapsed() >= CHECKPOINT_INTERVAL {
                checkpoint_at = Instant::now();
                self.sink.checkpoint(&self.consumer);
            }
        }
        Ok(())
    }

    /// Also publishes decisions to the live feed and keeps recent manifests for what-if replays.
    pub fn with_watchers(mut self, watchers: Watchers) -> Pipeline {
        self.watchers = watchers;
        self
    }

    /// Scores one manifest record and emits its decision or dead letter.
    fn handle(&self, m: &BorrowedMessage<'_>, buf: &mut Vec<u8>) -> anyhow::Result<()> {
        let origin = Origin {
            topic: m.topic(),
            partition: m.partition(),
            offset: m.offset(),
            timestamp_ms: m.timestamp().to_millis(),
            key: m.key(),
        };
        let policy = self.policy.load();
        let resumptions = self.resumptions.load();
        let as_of = self.history.as_ref().map(|(h, w)| (h, w.load_full()));
        let lookups = Lookups::new(
            &self.table,
            as_of
                .as_ref()
                .map(|(history, as_of)| HistoryAsOf { history, as_of }),
        );
        let started = Instant::now();
        let result = match m.payload() {
            None => Err(BadInput::new(
                ErrorKind::Empty,
                "null value on the manifests topic",
            )),
            Some(bytes) => process_with(&policy, lookups, bytes, &self.limits, &resumptions),
        };
        self.metrics.scored(started.elapsed());
        match result {
            Ok((manifest, mut decision)) => {
                decision.decided_at = crate::clock::now();
                buf.clear();
                decision.write_json(buf);
                let size = buf.len() + decision.manifest_id.len();
                if size > self.max_decision {
                    let error = BadInput::new(
                        ErrorKind::Oversized,
                        format!(
                            "its decision is {size} bytes, more than the producer may send ({})",
                            self.max_decision
                        ),
                    );
                    return self.sink.emit(
                        &origin,
                        Output::DeadLetter {
                            value: m.payload(),
                            error: &error,
                        },
                    );
                }
                self.sink.emit(
                    &origin,
                    Output::Decision {
                        decision: &decision,
                        json: buf,
                    },
                )?;
                self.sink.decided(&self.watchers, manifest, &decision, buf);
                Ok(())
            }
            Err(error) => {
                debug!(
                    partition = origin.partition,
                    offset = origin.offset,
                    kind = error.kind.as_str(),
                    "dead letter"
                );
                self.sink.emit(
                    &origin,
                    Output::DeadLetter {
                        value: m.payload(),
                        error: &error,
                    },
                )
            }
        }
    }

    /// Waits for in-flight outputs, stores and commits their offsets; the consumer then leaves the group
    /// when dropped (its revoke callback finds nothing left to do).
    fn finish(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        if self.sink.failure().is_none() {
            // Exactly-once: commit (or abort) the open transaction; at-least-once: nothing to do here.
            if let Err(e) = self.sink.finish(&self.consumer) {
                warn!(error = %e, "final transaction not committed");
            }
        }
        let drained = self.sink.drain(self.drain_timeout);
        self.sink.checkpoint(&self.consumer);
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => warn!(error = %e, "final commit failed; the uncommitted tail will be redone"),
        }
        info!(
            drained,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "manifest pipeline drained and committed"
        );
        if let Some(f) = self.sink.failure() {
            bail!(f);
        }
        if !drained {
            bail!(
                "shutdown: outputs still unacknowledged after {:?}; they will be redone on restart",
                self.drain_timeout
            );
        }
        Ok(())
    }
}
