//! The partner follower: reads the compacted partner topic into the [`PartnerTable`] — every partition,
//! manually assigned, no consumer group — up to the end offsets captured at start-up (then the table is
//! complete and the service may decide), and keeps following it for live upserts and tombstones.
//!
//! Partitions added to the partner topic later are picked up: every `kafka.partner_refresh_ms` the follower
//! re-reads the topic's metadata and adds each new partition to its assignment from the beginning (records
//! of one partition are applied in offset order, as for the others). The lag of every partition (end offset
//! minus the follower's position, from librdkafka's statistics) is exported as
//! `borderlane_partner_follower_lag`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use borderlane_core::table::PartnerTable;
use borderlane_core::wire::{parse_partner, ErrorKind, Limits};
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use tracing::{info, warn};

use crate::service::config::Config;
use crate::service::kafka::clients::{client_config, Role};
use crate::service::kafka::follow::{CatchUp, FollowerContext, Refresh, Topic};
use crate::service::metrics::{BadPartner, Client, Metrics};
use crate::service::{Readiness, Shutdown};

/// How often the table gauges are refreshed while records flow.
const GAUGE_INTERVAL: Duration = Duration::from_millis(250);

/// See the module documentation.
pub struct PartnerFollower {
    /// Group-less consumer with every partition of the partner topic assigned.
    consumer: BaseConsumer<FollowerContext>,
    /// Partner topic name.
    topic: String,
    /// The table every scoring thread reads.
    table: Arc<PartnerTable>,
    /// Record limits for partner values.
    limits: Limits,
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
        Ok(PartnerFollower {
            consumer,
            topic: config.kafka.topics.partners.clone(),
            table,
            limits: config.limits.limits(),
            metrics,
            readiness,
            shutdown,
            timeout: Duration::from_millis(config.kafka.startup_timeout_ms),
            refresh_every: Duration::from_millis(config.kafka.partner_refresh_ms),
        })
    }

    fn topic(&self) -> Topic<'_> {
        Topic {
            name: &self.topic,
            what: "partner topic",
        }
    }

    /// Reads to the start-up end offsets, signals readiness, then follows until shutdown. Blocking.
    pub fn run(self) -> anyhow::Result<()> {
        let started = Instant::now();
        let ends =
            self.topic()
                .assign_from_beginning(&self.consumer, self.timeout, &self.shutdown)?;
        let mut refresh = Refresh::new(ends.keys().copied(), self.refresh_every);
        self.metrics.partner_partitions(refresh.assigned());
        let mut catch_up = CatchUp::new(&ends);
        let total: i64 = ends.values().map(|(lo, hi)| hi - lo).sum();
        info!(
            topic = %self.topic,
            partitions = ends.len(),
            records_at_most = total,
            "reading the partner table up to the start-up end offsets"
        );
        let mut complete = false;
        let mut records: u64 = 0;
        let mut gauges_at = Instant::now();
        loop {
            if !complete && catch_up.is_complete() {
                complete = true;
                self.metrics
                    .partner_table(self.table.len(), self.table.updates_applied());
                self.metrics.partner_table_completed();
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
            match self.consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(m)) => {
                    records += 1;
                    self.apply(&m);
                    catch_up.record(m.partition(), m.offset());
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    catch_up.end_of_partition(p);
                }
                Some(Err(e)) => {
                    self.metrics.kafka_error(Client::PartnerConsumer);
                    warn!(error = %e, "partner consumer error");
                }
            }
            if gauges_at.elapsed() >= GAUGE_INTERVAL {
                gauges_at = Instant::now();
                self.metrics
                    .partner_table(self.table.len(), self.table.updates_applied());
            }
            match refresh.tick(&self.topic(), &self.consumer, self.timeout) {
                Ok(new) if !new.is_empty() => self.metrics.partner_partitions(refresh.assigned()),
                Ok(_) => {}
                Err(e) => {
                    self.metrics.kafka_error(Client::PartnerConsumer);
                    warn!(error = %format!("{e:#}"), "partner topic refresh failed; retrying later");
                }
            }
        }
    }

    /// Applies one record: an upsert, a tombstone, or a bad record (logged, counted, skipped).
    fn apply(&self, m: &BorrowedMessage<'_>) {
        let key = match m.key().map(std::str::from_utf8) {
            None => None,
            Some(Ok(k)) => Some(k),
            Some(Err(_)) => {
                self.bad(
                    m,
                    BadPartner::Invalid(ErrorKind::NotUtf8),
                    "key is not UTF-8",
                );
                return;
            }
        };
        match m.payload() {
            None => match key {
                Some(k) => {
                    self.table.remove(k);
                }
                None => self.bad(m, BadPartner::MissingKey, "tombstone without a key"),
            },
            Some(bytes) => match parse_partner(bytes, &self.limits) {
                Ok(p) => match key {
                    Some(k) if k != p.partner_id => self.bad(
                        m,
                        BadPartner::KeyMismatch,
                        &format!("key {k:?} is not partner_id {:?}", p.partner_id),
                    ),
                    _ => self.table.upsert(p),
                },
                Err(e) => self.bad(m, BadPartner::Invalid(e.kind), &e.message),
            },
        }
    }

    fn bad(&self, m: &BorrowedMessage<'_>, why: BadPartner, message: &str) {
        self.metrics.bad_partner_record(why);
        warn!(
            topic = m.topic(),
            partition = m.partition(),
            offset = m.offset(),
            kind = why.as_str(),
            message,
            "bad partner record skipped"
        );
    }
}
