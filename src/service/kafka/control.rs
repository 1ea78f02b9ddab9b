//! The control follower: reads the compacted control topic (`kafka.topics.control`) into the resumption
//! [`Board`] — every partition, manually assigned, no consumer group, from the beginning — up to the end
//! offsets captured at start-up (then the control state is complete and the manifest consumer may start),
//! and keeps following it, so a declaration any instance writes reaches every instance, and a restarted
//! instance reads back every declaration still on the topic. The topic is created with one partition;
//! partitions added later are followed too (every `kafka.partner_refresh_ms`, from their beginning).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use tracing::{info, warn};

use crate::service::config::Config;
use crate::service::kafka::clients::{properties, Role};
use crate::service::kafka::follow::{CatchUp, FollowerContext, Refresh, Topic};
use crate::service::metrics::{Client, Metrics};
use crate::service::resumption::{decode, port_of_key, Board};
use crate::service::{Readiness, Shutdown};

/// See the module documentation.
pub struct ControlFollower {
    /// Group-less consumer with every partition of the control topic assigned.
    consumer: BaseConsumer<FollowerContext>,
    topic: String,
    /// Where declarations are applied.
    board: Arc<Board>,
    metrics: Arc<Metrics>,
    /// Told when the control state is complete.
    readiness: Arc<Readiness>,
    shutdown: Shutdown,
    /// Budget for metadata and watermark queries.
    timeout: Duration,
    /// How often the topic's metadata is re-read for new partitions.
    refresh_every: Duration,
}

impl ControlFollower {
    pub fn new(
        config: &Config,
        board: Arc<Board>,
        metrics: Arc<Metrics>,
        readiness: Arc<Readiness>,
        shutdown: Shutdown,
    ) -> anyhow::Result<ControlFollower> {
        // The partner follower's properties (no group joined, no commits, partition EOF events), under
        // a group id of its own.
        let mut cfg = rdkafka::ClientConfig::new();
        for (k, v) in properties(&config.kafka, Role::PartnerConsumer) {
            cfg.set(k, v);
        }
        cfg.set("group.id", format!("{}-control", config.kafka.group_id));
        // The followers' context: librdkafka's end-of-partition events (how the follower knows it has
        // caught up) are not logged as client errors; other client errors are counted. No lag gauge.
        let consumer = cfg
            .create_with_context(FollowerContext::new(
                metrics.clone(),
                &config.kafka.topics.control,
                Client::ControlConsumer,
                |_, _, _| {},
            ))
            .map_err(|e| anyhow!("creating the control consumer: {e}"))?;
        Ok(ControlFollower {
            consumer,
            topic: config.kafka.topics.control.clone(),
            board,
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
            what: "control topic",
        };
        let Some(ends) =
            topic.assign_from_beginning(&self.consumer, self.timeout, &self.shutdown)?
        else {
            // Stopped before the start-up end offsets were known: nothing was read.
            return Ok(());
        };
        let mut catch_up = CatchUp::new(&ends);
        // Partitions already read to their end count as applied up to it (a writer may wait on them).
        for (p, end) in catch_up.read_already(&ends) {
            self.board.applied_up_to(p, end);
        }
        let mut refresh = Refresh::new(ends.keys().copied(), self.refresh_every);
        let mut complete = false;
        loop {
            if !complete && catch_up.is_complete() {
                complete = true;
                self.metrics.control_completed();
                self.readiness.control_complete();
                info!(
                    topic = %self.topic,
                    declarations = self.board.snapshot().len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "control topic read; following live changes"
                );
            }
            if self.shutdown.is_triggered() {
                return Ok(());
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(m)) => {
                    self.apply(&m);
                    self.board.applied_up_to(m.partition(), m.offset() + 1);
                    catch_up.record(m.partition(), m.offset());
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    catch_up.end_of_partition(p);
                }
                Some(Err(e)) => {
                    self.metrics.kafka_error(Client::ControlConsumer);
                    warn!(error = %e, "control consumer error");
                }
            }
            if let Err(e) = refresh.tick(&topic, &self.consumer, self.timeout) {
                self.metrics.kafka_error(Client::ControlConsumer);
                warn!(error = %format!("{e:#}"), "control topic refresh failed; retrying later");
            }
            self.consumer.context().cut_off(&self.shutdown)?;
        }
    }

    /// Applies one record: a declaration, a tombstone, or a bad record (logged, counted, skipped).
    fn apply(&self, m: &BorrowedMessage<'_>) {
        let key = match m.key().map(std::str::from_utf8) {
            Some(Ok(k)) => k,
            Some(Err(_)) => return self.bad(m, "key is not UTF-8"),
            None => return self.bad(m, "record without a key"),
        };
        let port = match port_of_key(key) {
            Ok(Some(p)) => p,
            // Another kind of control record (none yet): not for this follower.
            Ok(None) => return,
            Err(e) => return self.bad(m, &e),
        };
        match m.payload() {
            None => {
                info!(port = %port, offset = m.offset(), "business resumption ended");
                self.board.apply(port, None);
            }
            Some(bytes) => match decode(port, bytes) {
                Ok(d) => {
                    info!(
                        port = %port,
                        declared_at = %d.declared_at,
                        until = %d.until,
                        declared_by = %d.declared_by,
                        "business resumption declared"
                    );
                    self.board.apply(port, Some(d));
                }
                Err(e) => self.bad(m, &e),
            },
        }
    }

    fn bad(&self, m: &BorrowedMessage<'_>, message: &str) {
        self.metrics.bad_control_record();
        warn!(
            topic = m.topic(),
            partition = m.partition(),
            offset = m.offset(),
            message,
            "bad control record skipped"
        );
    }
}
