//! Dead letters for bad exam-outcome records written to the outcomes topic by port systems: exactly one
//! dead letter per bad record, whatever the number of instances.
//!
//! Every instance's history follower reads the whole outcomes topic (and skips a bad record), so the
//! dead letter cannot come from there — each instance would write one. Instead every instance is also a
//! member of one more consumer group, `<kafka.group_id>-outcome-dlq`, subscribed to the outcomes topic:
//! the group gives each partition to one instance, which checks each record with the same check as the
//! follower ([`check_record`]) and writes a dead letter (the manifests' format: original key and value,
//! `error.kind`, `error.message`, `source.*` headers) for a bad one; a valid record produces nothing.
//!
//! Offsets: exactly-once mode — each dead letter and the offset past its record commit in one transaction
//! (`transactional.id = <group_id>.<instance_id>.outcome-dlq`, offsets sent with the group metadata), so a
//! crash or a rebalance can never write a dead letter twice; at-least-once mode — the offset is committed
//! synchronously once the broker acknowledged the dead letter (a crash between the two repeats it: the
//! duplicate carries the same `source.*` headers). Offsets of valid records are committed every second,
//! synchronously (so a commit can never arrive after — and undo — a later dead letter's transactional
//! offset), and never for a partition this member may have lost: progress on valid records is dropped at
//! every rebalance (they are re-checked by the partition's owner, which writes nothing for them), so a
//! late commit cannot move another owner's partition back below a record it has already dead-lettered.
//! Any error writing a dead letter stops the instance (no bad record is skipped silently).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use borderlane_core::wire::{BadInput, Limits};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tracing::{info, warn};

use crate::service::config::{Config, DeliveryMode};
use crate::service::kafka::clients::{properties, Role};
use crate::service::kafka::outcomes::check_record;
use crate::service::kafka::pipeline::{
    consumer_error_is_transient, fatal_consumer_error, CoordinatorLoss,
};
use crate::service::kafka::sink::{Origin, Output, OutputTopics};
use crate::service::metrics::{Client, Metrics};
use crate::service::Shutdown;

/// How often offsets of valid records are committed.
const COMMIT_EVERY: Duration = Duration::from_secs(1);

/// Notes every rebalance (the callback runs inside `poll`, on the member's own thread) and when the
/// member last lost touch with its group coordinator.
#[derive(Default)]
pub struct DlqContext {
    rebalanced: AtomicBool,
    coordinator_loss: CoordinatorLoss,
}

impl ClientContext for DlqContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.coordinator_loss.log(level, fac, log_message);
    }
}

impl ConsumerContext for DlqContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, _: &Rebalance<'_>) {
        self.rebalanced.store(true, Ordering::Relaxed);
    }
}

/// See the module documentation.
pub struct OutcomeDeadLetters {
    consumer: BaseConsumer<DlqContext>,
    producer: FutureProducer,
    outputs: OutputTopics,
    topic: String,
    limits: Limits,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
    transactional: bool,
    timeout: Duration,
    /// `kafka.instance_id`, for the message of a fenced static member.
    instance_id: Option<String>,
}

impl OutcomeDeadLetters {
    pub fn new(
        config: &Config,
        metrics: Arc<Metrics>,
        shutdown: Shutdown,
    ) -> anyhow::Result<OutcomeDeadLetters> {
        let k = &config.kafka;
        let mut c = rdkafka::ClientConfig::new();
        for (name, v) in properties(k, Role::OutcomeDeadLetters) {
            c.set(name, v);
        }
        c.set("group.id", format!("{}-outcome-dlq", k.group_id));
        // `[kafka.consumer]`'s statistics are for the manifest consumer's lag gauges, stall detector and
        // cut-off watch; nothing reads this member's, and rust-rdkafka's default handler (this context's)
        // would log each report whole at INFO: ~10 KB of JSON a second in every instance's log.
        c.set("statistics.interval.ms", "0");
        // Records a port system's transaction aborted are never seen by the history follower either.
        c.set("isolation.level", "read_committed");
        let consumer: BaseConsumer<DlqContext> = c
            .create_with_context(DlqContext::default())
            .map_err(|e| anyhow!("creating the outcome dead-letter consumer: {e}"))?;
        let transactional = k.delivery == DeliveryMode::ExactlyOnce;
        let mut p = rdkafka::ClientConfig::new();
        for (name, v) in properties(k, Role::Producer) {
            p.set(name, v);
        }
        // The decisions producer's statistics are for its cut-off watch; this one has none (a dead letter
        // that cannot be delivered fails its own send), and the default handler would log them whole.
        p.set("statistics.interval.ms", "0");
        if transactional {
            p.set(
                "transactional.id",
                format!(
                    "{}.outcome-dlq",
                    crate::service::kafka::clients::transactional_id(k)
                ),
            );
        }
        let producer: FutureProducer = p
            .create()
            .map_err(|e| anyhow!("creating the outcome dead-letter producer: {e}"))?;
        Ok(OutcomeDeadLetters {
            consumer,
            producer,
            outputs: OutputTopics::new(config)?,
            topic: k.topics.outcomes.clone(),
            limits: config.limits.limits(),
            metrics,
            shutdown,
            transactional,
            timeout: Duration::from_millis(k.startup_timeout_ms),
            instance_id: k.instance_id.clone(),
        })
    }

    /// Consumes until shutdown. Blocking; runs on the blocking pool of the service's runtime.
    pub fn run(self) -> anyhow::Result<()> {
        if self.transactional {
            self.producer.init_transactions(self.timeout).map_err(|e| {
                anyhow!("init_transactions of the outcome dead-letter producer: {e}")
            })?;
        }
        self.consumer
            .subscribe(&[&self.topic])
            .with_context(|| format!("subscribing to {}", self.topic))?;
        info!(topic = %self.topic, transactional = self.transactional, "outcome dead-letter member running");
        let mut commit_at = Instant::now();
        // Next offset per partition of valid records read since the last commit.
        let mut uncommitted: HashMap<i32, i64> = HashMap::new();
        while !self.shutdown.is_triggered() {
            if let Some(fatal) = self.fatal() {
                self.metrics.kafka_error(Client::OutcomeClients);
                bail!(fatal);
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(m)) => match check_record(m.key(), m.payload(), &self.limits) {
                    Ok(_) => {
                        uncommitted.insert(m.partition(), m.offset() + 1);
                    }
                    Err((kind, message)) => {
                        uncommitted.remove(&m.partition());
                        self.dead_letter(&m, &BadInput::new(kind, message))?;
                    }
                },
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) if consumer_error_is_transient(&e) => {
                    self.metrics.kafka_error(Client::OutcomeClients);
                    warn!(error = %e, "outcome dead-letter consumer error (transient)");
                }
                Some(Err(e)) => {
                    self.metrics.kafka_error(Client::OutcomeClients);
                    if let Some(fatal) = self.fatal() {
                        bail!(fatal);
                    }
                    bail!("outcome dead-letter consumer error that may skip records: {e}");
                }
            }
            // Progress recorded before a rebalance may be for partitions now owned by another member.
            if self
                .consumer
                .context()
                .rebalanced
                .swap(false, Ordering::Relaxed)
            {
                uncommitted.clear();
            }
            if !uncommitted.is_empty() && commit_at.elapsed() >= COMMIT_EVERY {
                commit_at = Instant::now();
                self.commit(&uncommitted);
                uncommitted.clear();
            }
        }
        if !self.consumer.context().rebalanced.load(Ordering::Relaxed) {
            self.commit(&uncommitted);
        }
        Ok(())
    }

    /// The message to stop with when the consumer has a fatal error (e.g. fenced by a duplicate
    /// `kafka.instance_id`).
    fn fatal(&self) -> Option<String> {
        fatal_consumer_error(
            "outcome dead-letter",
            self.consumer.client(),
            self.instance_id.as_deref(),
            &self.consumer.context().coordinator_loss,
        )
    }

    /// Commits the offsets of valid records (a failure is logged; the records are re-checked later, which
    /// writes nothing for valid ones).
    fn commit(&self, offsets: &HashMap<i32, i64>) {
        if offsets.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::with_capacity(offsets.len());
        for (p, next) in offsets {
            if tpl
                .add_partition_offset(&self.topic, *p, Offset::Offset(*next))
                .is_err()
            {
                return;
            }
        }
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Sync) {
            warn!(error = %e, "outcome offsets not committed");
        }
    }

    /// Writes the dead letter of `m` and commits the offset past it (see the module documentation).
    fn dead_letter(&self, m: &BorrowedMessage<'_>, error: &BadInput) -> anyhow::Result<()> {
        let origin = Origin {
            topic: m.topic(),
            partition: m.partition(),
            offset: m.offset(),
            timestamp_ms: m.timestamp().to_millis(),
            key: m.key(),
        };
        let p = self.outputs.prepare(
            &origin,
            Output::DeadLetter {
                value: m.payload(),
                error,
            },
        );
        let mut record = FutureRecord::<[u8], [u8]>::to(p.topic).headers(p.headers);
        if let Some(k) = p.key {
            record = record.key(k);
        }
        if let Some(v) = p.value {
            record = record.payload(v);
        }
        let mut next = TopicPartitionList::with_capacity(1);
        next.add_partition_offset(m.topic(), m.partition(), Offset::Offset(m.offset() + 1))?;
        let handle = tokio::runtime::Handle::current();
        let where_ = format!(
            "the dead letter of {}[{}]@{}",
            m.topic(),
            m.partition(),
            m.offset()
        );
        if self.transactional {
            let t = self.timeout;
            self.producer
                .begin_transaction()
                .map_err(|e| anyhow!("begin_transaction for {where_}: {e}"))?;
            let delivery = self
                .producer
                .send_result(record)
                .map_err(|(e, _)| anyhow!("sending {where_}: {e}"))?;
            let metadata = self
                .consumer
                .group_metadata()
                .ok_or_else(|| anyhow!("no group metadata for {where_}"))?;
            self.producer
                .send_offsets_to_transaction(&next, &metadata, t)
                .map_err(|e| anyhow!("send_offsets_to_transaction for {where_}: {e}"))?;
            self.producer
                .commit_transaction(t)
                .map_err(|e| anyhow!("commit_transaction for {where_}: {e}"))?;
            handle
                .block_on(delivery)
                .map_err(|_| anyhow!("{where_}: delivery cancelled"))?
                .map_err(|(e, _)| anyhow!("{where_} not delivered: {e}"))?;
        } else {
            handle
                .block_on(self.producer.send(record, self.timeout))
                .map_err(|(e, _)| anyhow!("{where_} not delivered: {e}"))?;
            self.consumer
                .commit(&next, CommitMode::Sync)
                .with_context(|| format!("committing the offset past {where_}"))?;
        }
        self.metrics.dead_letter_acknowledged(error.kind);
        warn!(
            partition = m.partition(),
            offset = m.offset(),
            kind = error.kind.as_str(),
            "bad exam-outcome record dead-lettered"
        );
        Ok(())
    }
}
