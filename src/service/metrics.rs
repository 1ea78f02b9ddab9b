//! Every metric the service exposes on `/metrics`, in one explicit [`Registry`] (no globals, so several
//! services can run in one process, as the tests do), each behind a typed method.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use borderlane_core::codes::PortCode;
use borderlane_core::decision::Action;
use borderlane_core::decision::Lane;
use borderlane_core::wire::ErrorKind;
use prometheus::{
    exponential_buckets, Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Why a partner record was skipped (`kind` label of `borderlane_bad_partner_records_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadPartner {
    /// The value failed the core's partner parser.
    Invalid(ErrorKind),
    /// A tombstone (null value) without a key: nothing to delete.
    MissingKey,
    /// The record key is not the value's `partner_id`: compaction and tombstones would misbehave.
    KeyMismatch,
}

impl BadPartner {
    pub fn as_str(self) -> &'static str {
        match self {
            BadPartner::Invalid(k) => k.as_str(),
            BadPartner::MissingKey => "missing_key",
            BadPartner::KeyMismatch => "key_mismatch",
        }
    }
}

/// Which Kafka client reported an error (`client` label of `borderlane_kafka_errors_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    ManifestConsumer,
    PartnerConsumer,
    ControlConsumer,
    /// The exam-outcome, decision-window and outcome dead-letter clients.
    OutcomeClients,
    Producer,
}

impl Client {
    fn as_str(self) -> &'static str {
        match self {
            Client::ManifestConsumer => "manifest_consumer",
            Client::PartnerConsumer => "partner_consumer",
            Client::ControlConsumer => "control_consumer",
            Client::OutcomeClients => "outcome_clients",
            Client::Producer => "producer",
        }
    }
}

/// The service's metrics.
pub struct Metrics {
    /// Owns every metric below; `/metrics` encodes it.
    registry: Registry,
    /// Decisions acknowledged by the broker, by action, lane and port of entry.
    decisions: IntCounterVec,
    /// Label handles of `decisions`, so the delivery callback does not hash label strings per message.
    decision_handles: Mutex<HashMap<(Action, Lane, PortCode), IntCounter>>,
    /// Dead letters acknowledged by the broker, by `error.kind`.
    dead_letters: IntCounterVec,
    /// Pre-resolved `dead_letters` children, indexed like `ErrorKind::ALL`.
    dead_letter_handles: Vec<IntCounter>,
    /// Time spent in the core (parse, validate, decide, write the decision's JSON) per manifest.
    scoring_seconds: Histogram,
    /// Records per batch the pipeline scored, and whether on the scoring threads.
    scoring_batch_records: HistogramVec,
    /// Time the pipeline thread spends per step (where its tail latency comes from).
    pipeline_step_seconds: HistogramVec,
    /// Manifest's Kafka timestamp to its decision or dead letter being acknowledged.
    end_to_end_seconds: Histogram,
    /// Partners in the table now.
    partner_table_size: IntGauge,
    /// Upserts and tombstones applied to the table since start.
    partner_updates_applied: IntGauge,
    /// Partner records skipped as bad, by reason.
    bad_partner_records: IntCounterVec,
    /// 1 once the partner table reached the start-up end offsets.
    partner_table_complete: IntGauge,
    /// High watermark minus stored offset, per manifest partition (from librdkafka statistics).
    consumer_lag: IntGaugeVec,
    /// Always 1; the labels name the policy and model in force.
    policy_info: IntGaugeVec,
    /// Hot reloads (policy or model file) rejected since start; the running policy stayed.
    policy_reload_failures: IntCounter,
    /// Outputs sent and not yet acknowledged.
    in_flight: IntGauge,
    /// Outputs the broker did not accept (each stops the service: its input offset is never stored).
    delivery_failures: IntCounter,
    /// Errors reported by the Kafka clients (most are transient and retried by librdkafka).
    kafka_errors: IntCounterVec,
    /// Input offsets handed to the consumer for commit after their outputs were acknowledged.
    offsets_stored: IntCounter,
    /// Offset commits (at-least-once) the broker refused or that timed out.
    offset_commit_failures: IntCounter,
    /// At-least-once: time of each interval offset commit (on the committer thread).
    offset_commit_seconds: Histogram,
    /// Exactly-once transactions by outcome (`committed`, `aborted`).
    transactions: IntCounterVec,
    /// Exactly-once: time of send_offsets_to_transaction + commit_transaction.
    transaction_commit_seconds: Histogram,
    /// Exactly-once: time of each blocking transactional call (`send_offsets_to_transaction`,
    /// `commit_transaction`), the pipeline thread waiting on the broker.
    transaction_call_seconds: HistogramVec,
    /// Exactly-once: outputs per committed transaction.
    transaction_records: Histogram,
    /// At-least-once: 1 while the input is paused because offset commits are overdue.
    input_paused: IntGauge,
    /// Partner records not yet applied, per partner partition (end offset minus the follower's position).
    partner_follower_lag: IntGaugeVec,
    /// Partitions of the partner topic the follower reads (grows when partitions are added).
    partner_partitions: IntGauge,
    /// Assigned manifest partitions with lag and no progress for `service.stall_after_ms`.
    stalled_partitions: IntGauge,
    /// 1 when `/readyz` answers 200, else 0 (evaluated at every scrape and readiness probe).
    ready: IntGauge,
    /// Per port that has had a business-resumption declaration since start: 1 while one is in force by
    /// the wall clock (evaluated at every scrape), else 0. Decisions judge by `filed_at`, not by this.
    port_resumption_active: IntGaugeVec,
    /// Decisions acknowledged with a `priority` (a resumption covered them), by port and priority.
    decisions_prioritized: IntCounterVec,
    /// Control-topic records skipped as bad.
    bad_control_records: IntCounter,
    /// 1 once the control topic has been read up to its start-up end offsets.
    control_complete: IntGauge,
    /// Outcome keys in the party history.
    history_outcomes: IntGauge,
    /// 1 once the outcomes topic has been read up to its start-up end offsets.
    outcomes_complete: IntGauge,
    /// Outcome records not yet applied, per outcomes partition.
    outcome_follower_lag: IntGaugeVec,
    /// Outcome records the follower skipped as bad, by reason.
    bad_outcome_records: IntCounterVec,
    /// Outcomes recorded through `POST /outcomes` on this instance.
    outcomes_recorded: IntCounter,
    /// Decisions held in the outcome window.
    outcome_window_decisions: IntGauge,
    /// Distinct exam outcomes by grouping (`cause`, `port`, `standing`) and group.
    exam_outcomes: IntGaugeVec,
    /// Of those, the ones that found something, by result (`discrepancy`, `seizure`).
    exam_findings: IntGaugeVec,
    /// Random-exam estimate of the violation rate per importer standing group (absent while a group has
    /// had no random exam, and for exempt groups).
    random_exam_violation_rate: GaugeVec,
    /// Name and type of every metric family registered, with the registry's prefix.
    families: Vec<(String, MetricType)>,
}

/// A metric family's type, as the exposition format names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Other,
}

/// The registry's namespace: every exported name starts with `borderlane_`.
const PREFIX: &str = "borderlane";

/// The blocking transactional calls timed by `borderlane_transaction_call_seconds`.
pub const TXN_CALLS: [&str; 2] = ["send_offsets_to_transaction", "commit_transaction"];

fn must<T>(r: prometheus::Result<T>) -> T {
    // Metric definitions are static: an error here is a programming error caught by the unit test.
    r.unwrap_or_else(|e| unreachable!("invalid metric definition: {e}"))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some(PREFIX.into()), None)
            .unwrap_or_else(|e| unreachable!("registry prefix is valid: {e}"));
        let decisions = must(IntCounterVec::new(
            Opts::new(
                "decisions_total",
                "Decisions acknowledged by the broker, by action, lane and port of entry.",
            ),
            &["action", "lane", "port"],
        ));
        let dead_letters = must(IntCounterVec::new(
            Opts::new(
                "dead_letters_total",
                "Dead letters acknowledged by the broker, by error.kind.",
            ),
            &["kind"],
        ));
        let scoring_seconds = must(Histogram::with_opts(
            HistogramOpts::new(
                "scoring_seconds",
                "Core time per manifest: parse, validate, decide and write the decision's JSON.",
            )
            .buckets(must(exponential_buckets(1e-6, 2.0, 16))),
        ));
        let scoring_batch_records = must(HistogramVec::new(
            HistogramOpts::new(
                "scoring_batch_records",
                "Records per batch the pipeline polled and scored; threads=\"parallel\" when the scoring \
                 threads scored it, \"pipeline\" when the pipeline thread did (small batches).",
            )
            .buckets(vec![1.0, 4.0, 16.0, 31.0, 64.0, 128.0, 256.0]),
            &["threads"],
        ));
        let pipeline_step_seconds = must(HistogramVec::new(
            HistogramOpts::new(
                "pipeline_step_seconds",
                "Time the manifest pipeline thread spends per step, each time it runs: collect (a batch \
                 polled, the wait for its first record and the callbacks served meanwhile included; the \
                 scoring threads are idle), score (a batch scored \
                 inline, or the wait for the scoring threads while it emits a batch they score), emit (a \
                 batch's outputs handed to the producer), \
                 checkpoint (offsets stored; at-least-once asks the offset-commit thread for the interval \
                 commit, exactly-once commits the transaction), \
                 stats (librdkafka statistics: lag gauges and stall detector), rebalance (a callback). \
                 Records that arrive meanwhile wait.",
            )
            .buckets(must(exponential_buckets(1e-5, 2.0, 17))),
            &["step"],
        ));
        let end_to_end_seconds = must(Histogram::with_opts(
            HistogramOpts::new(
                "end_to_end_seconds",
                "Manifest's Kafka timestamp to its decision or dead letter acknowledged by the broker.",
            )
            .buckets(must(exponential_buckets(0.00025, 2.0, 18))),
        ));
        let partner_table_size = must(IntGauge::new(
            "partner_table_size",
            "Partners in the table.",
        ));
        let partner_updates_applied = must(IntGauge::new(
            "partner_updates_applied",
            "Partner upserts and tombstones applied since start.",
        ));
        let bad_partner_records = must(IntCounterVec::new(
            Opts::new(
                "bad_partner_records_total",
                "Partner records skipped, by reason.",
            ),
            &["kind"],
        ));
        let partner_table_complete = must(IntGauge::new(
            "partner_table_complete",
            "1 once the partner table has read the partner topic up to its start-up end offsets.",
        ));
        let consumer_lag = must(IntGaugeVec::new(
            Opts::new(
                "consumer_lag",
                "Manifests not yet acknowledged: high watermark minus stored offset, per partition.",
            ),
            &["topic", "partition"],
        ));
        let policy_info = must(IntGaugeVec::new(
            Opts::new(
                "policy_info",
                "The policy and model in force (value is always 1; model_version empty without a model).",
            ),
            &["version", "name", "model_version"],
        ));
        let policy_reload_failures = must(IntCounter::new(
            "policy_reload_failures_total",
            "Hot reloads of the policy or model file rejected since start (the running policy stayed).",
        ));
        let in_flight = must(IntGauge::new(
            "in_flight",
            "Outputs sent and not yet acknowledged by the broker.",
        ));
        let delivery_failures = must(IntCounter::new(
            "delivery_failures_total",
            "Outputs the broker did not accept.",
        ));
        let kafka_errors = must(IntCounterVec::new(
            Opts::new("kafka_errors_total", "Errors reported by Kafka clients."),
            &["client"],
        ));
        let offsets_stored = must(IntCounter::new(
            "offsets_stored_total",
            "Input offset advances handed to the consumer for commit.",
        ));
        let offset_commit_failures = must(IntCounter::new(
            "offset_commit_failures_total",
            "Offset commits that failed (the uncommitted tail is redone after a crash or rebalance).",
        ));
        let offset_commit_seconds = must(Histogram::with_opts(
            HistogramOpts::new(
                "offset_commit_seconds",
                "At-least-once: one interval commit of the stored input offsets, a round trip to the group \
                 coordinator on the committer thread (the pipeline thread does not wait for it).",
            )
            .buckets(must(exponential_buckets(0.000_1, 2.0, 16))),
        ));
        let transactions = must(IntCounterVec::new(
            Opts::new(
                "transactions_total",
                "Exactly-once transactions by outcome (committed, aborted).",
            ),
            &["outcome"],
        ));
        for o in ["committed", "aborted"] {
            transactions.with_label_values(&[o]);
        }
        let transaction_commit_seconds = must(Histogram::with_opts(
            HistogramOpts::new(
                "transaction_commit_seconds",
                "Exactly-once: sending the input offsets and committing one transaction.",
            )
            .buckets(must(exponential_buckets(0.000_5, 2.0, 14))),
        ));
        let transaction_call_seconds = must(HistogramVec::new(
            HistogramOpts::new(
                "transaction_call_seconds",
                "Exactly-once: one blocking transactional call on the pipeline thread, by call.",
            )
            .buckets(must(exponential_buckets(0.000_5, 2.0, 14))),
            &["call"],
        ));
        for c in TXN_CALLS {
            transaction_call_seconds.with_label_values(&[c]);
        }
        let transaction_records = must(Histogram::with_opts(
            HistogramOpts::new(
                "transaction_records",
                "Exactly-once: outputs (decisions and dead letters) per committed transaction.",
            )
            .buckets(must(exponential_buckets(1.0, 2.0, 14))),
        ));
        let input_paused = must(IntGauge::new(
            "input_paused",
            "At-least-once: 1 while the input is paused because offset commits are overdue \
             (kafka.max_uncommitted_ms).",
        ));
        let partner_follower_lag = must(IntGaugeVec::new(
            Opts::new(
                "partner_follower_lag",
                "Partner records not yet applied to the table, per partner partition.",
            ),
            &["partition"],
        ));
        let partner_partitions = must(IntGauge::new(
            "partner_partitions",
            "Partitions of the partner topic the follower reads.",
        ));
        let stalled_partitions = must(IntGauge::new(
            "stalled_partitions",
            "Assigned manifest partitions with lag and no progress for service.stall_after_ms.",
        ));
        let ready = must(IntGauge::new(
            "ready",
            "1 when /readyz answers 200 (partner table complete, consumer running, nothing stalled).",
        ));
        let port_resumption_active = must(IntGaugeVec::new(
            Opts::new(
                "port_resumption_active",
                "1 while a business-resumption declaration is in force at the port (wall clock), 0 after it \
                 ended or expired; ports that never had one are absent.",
            ),
            &["port"],
        ));
        let decisions_prioritized = must(IntCounterVec::new(
            Opts::new(
                "decisions_prioritized_total",
                "Decisions acknowledged with a business-resumption priority, by port and priority (1 = tier 3 \
                 first … 4 = non-partners).",
            ),
            &["port", "priority"],
        ));
        let bad_control_records = must(IntCounter::new(
            "bad_control_records_total",
            "Control-topic records skipped as bad (logged with their offset).",
        ));
        let control_complete = must(IntGauge::new(
            "control_complete",
            "1 once the control topic has been read up to its start-up end offsets.",
        ));
        let history_outcomes = must(IntGauge::new(
            "history_outcomes",
            "Exam outcomes (distinct manifest_id/revision keys) in the party history.",
        ));
        let outcomes_complete = must(IntGauge::new(
            "outcomes_complete",
            "1 once the exam-outcomes topic has been read up to its start-up end offsets.",
        ));
        let outcome_follower_lag = must(IntGaugeVec::new(
            Opts::new(
                "outcome_follower_lag",
                "Exam-outcome records not yet applied to the party history, per outcomes partition.",
            ),
            &["partition"],
        ));
        let bad_outcome_records = must(IntCounterVec::new(
            Opts::new(
                "bad_outcome_records_total",
                "Exam-outcome records the history follower skipped as bad, by error.kind (each is \
                 dead-lettered once by the manifest consumer group).",
            ),
            &["kind"],
        ));
        let outcomes_recorded = must(IntCounter::new(
            "outcomes_recorded_total",
            "Exam outcomes recorded through POST /outcomes on this instance.",
        ));
        let outcome_window_decisions = must(IntGauge::new(
            "outcome_window_decisions",
            "Decisions held in the outcome window (service.outcome_window).",
        ));
        let exam_outcomes = must(IntGaugeVec::new(
            Opts::new(
                "exam_outcomes",
                "Distinct exam outcomes counted (a corrected outcome once, in its latest version), by \
                 grouping (cause, port, standing) and group; hit rate = exam_findings / exam_outcomes.",
            ),
            &["by", "group"],
        ));
        let exam_findings = must(IntGaugeVec::new(
            Opts::new(
                "exam_findings",
                "Exam outcomes that found a discrepancy or made a seizure, by grouping, group and result.",
            ),
            &["by", "group", "result"],
        ));
        let random_exam_violation_rate = must(GaugeVec::new(
            Opts::new(
                "random_exam_violation_rate",
                "Random-exam estimate of the violation rate (discrepancy or seizure) per importer standing \
                 group; absent for exempt groups and before a group's first random exam.",
            ),
            &["standing"],
        ));
        let mut families = Vec::new();
        for c in [
            Box::new(decisions.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(offset_commit_failures.clone()),
            Box::new(offset_commit_seconds.clone()),
            Box::new(transactions.clone()),
            Box::new(transaction_commit_seconds.clone()),
            Box::new(transaction_call_seconds.clone()),
            Box::new(transaction_records.clone()),
            Box::new(input_paused.clone()),
            Box::new(dead_letters.clone()),
            Box::new(scoring_seconds.clone()),
            Box::new(scoring_batch_records.clone()),
            Box::new(pipeline_step_seconds.clone()),
            Box::new(end_to_end_seconds.clone()),
            Box::new(partner_table_size.clone()),
            Box::new(partner_updates_applied.clone()),
            Box::new(bad_partner_records.clone()),
            Box::new(partner_table_complete.clone()),
            Box::new(consumer_lag.clone()),
            Box::new(policy_info.clone()),
            Box::new(policy_reload_failures.clone()),
            Box::new(in_flight.clone()),
            Box::new(delivery_failures.clone()),
            Box::new(kafka_errors.clone()),
            Box::new(offsets_stored.clone()),
            Box::new(partner_follower_lag.clone()),
            Box::new(partner_partitions.clone()),
            Box::new(stalled_partitions.clone()),
            Box::new(ready.clone()),
            Box::new(port_resumption_active.clone()),
            Box::new(decisions_prioritized.clone()),
            Box::new(bad_control_records.clone()),
            Box::new(control_complete.clone()),
            Box::new(history_outcomes.clone()),
            Box::new(outcomes_complete.clone()),
            Box::new(outcome_follower_lag.clone()),
            Box::new(bad_outcome_records.clone()),
            Box::new(outcomes_recorded.clone()),
            Box::new(outcome_window_decisions.clone()),
            Box::new(exam_outcomes.clone()),
            Box::new(exam_findings.clone()),
            Box::new(random_exam_violation_rate.clone()),
        ] {
            // Every family the collector yields, children or not (`gather` prunes empty vectors).
            for mf in c.collect() {
                let t = match mf.get_field_type() {
                    prometheus::proto::MetricType::COUNTER => MetricType::Counter,
                    prometheus::proto::MetricType::GAUGE => MetricType::Gauge,
                    prometheus::proto::MetricType::HISTOGRAM => MetricType::Histogram,
                    _ => MetricType::Other,
                };
                families.push((format!("{PREFIX}_{}", mf.name()), t));
            }
            must(registry.register(c));
        }
        let dead_letter_handles = ErrorKind::ALL
            .iter()
            .map(|k| dead_letters.with_label_values(&[k.as_str()]))
            .collect();
        Metrics {
            registry,
            decisions,
            decision_handles: Mutex::new(HashMap::new()),
            dead_letters,
            dead_letter_handles,
            scoring_seconds,
            scoring_batch_records,
            pipeline_step_seconds,
            end_to_end_seconds,
            partner_table_size,
            partner_updates_applied,
            bad_partner_records,
            partner_table_complete,
            consumer_lag,
            policy_info,
            policy_reload_failures,
            in_flight,
            delivery_failures,
            kafka_errors,
            offsets_stored,
            offset_commit_failures,
            offset_commit_seconds,
            transactions,
            transaction_commit_seconds,
            transaction_call_seconds,
            transaction_records,
            input_paused,
            partner_follower_lag,
            partner_partitions,
            stalled_partitions,
            ready,
            port_resumption_active,
            decisions_prioritized,
            bad_control_records,
            control_complete,
            history_outcomes,
            outcomes_complete,
            outcome_follower_lag,
            bad_outcome_records,
            outcomes_recorded,
            outcome_window_decisions,
            exam_outcomes,
            exam_findings,
            random_exam_violation_rate,
            families,
        }
    }

    /// Every metric family this registry exports (name with the `borderlane_` prefix, and type), whether
    /// or not it has a sample yet. Alert rules and dashboards are checked against it.
    pub fn families(&self) -> &[(String, MetricType)] {
        &self.families
    }

    /// Every series name a query may use: each family's name, and for histograms its `_bucket`, `_sum`
    /// and `_count` series.
    pub fn series_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for (name, t) in &self.families {
            names.push(name.clone());
            if *t == MetricType::Histogram {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.push(format!("{name}{suffix}"));
                }
            }
        }
        names
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    pub fn decision_acknowledged(&self, action: Action, lane: Lane, port: PortCode) {
        let mut handles = self
            .decision_handles
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        handles
            .entry((action, lane, port))
            .or_insert_with(|| {
                self.decisions
                    .with_label_values(&[action.as_str(), lane.as_str(), port.as_str()])
            })
            .inc();
    }

    pub fn dead_letter_acknowledged(&self, kind: ErrorKind) {
        match ErrorKind::ALL.iter().position(|k| *k == kind) {
            Some(i) => self.dead_letter_handles[i].inc(),
            None => self.dead_letters.with_label_values(&[kind.as_str()]).inc(),
        }
    }

    pub fn scored(&self, elapsed: Duration) {
        self.scoring_seconds.observe(elapsed.as_secs_f64());
    }

    /// A batch of `records` was scored, on the scoring threads or not.
    pub fn scoring_batch(&self, records: usize, parallel: bool) {
        self.scoring_batch_records
            .with_label_values(&[if parallel { "parallel" } else { "pipeline" }])
            .observe(records as f64);
    }

    /// The pipeline thread spent `elapsed` in `step` (see `pipeline_step_seconds`).
    pub fn pipeline_step(&self, step: &str, elapsed: Duration) {
        self.pipeline_step_seconds
            .with_label_values(&[step])
            .observe(elapsed.as_secs_f64());
    }

    pub fn end_to_end(&self, elapsed: Duration) {
        self.end_to_end_seconds.observe(elapsed.as_secs_f64());
    }

    pub fn partner_table(&self, size: usize, updates_applied: u64) {
        self.partner_table_size.set(size as i64);
        self.partner_updates_applied.set(updates_applied as i64);
    }

    pub fn bad_partner_record(&self, why: BadPartner) {
        self.bad_partner_records
            .with_label_values(&[why.as_str()])
            .inc();
    }

    pub fn partner_table_completed(&self) {
        self.partner_table_complete.set(1);
    }

    pub fn consumer_lag(&self, topic: &str, partition: i32, lag: i64) {
        self.consumer_lag
            .with_label_values(&[topic, &partition.to_string()])
            .set(lag);
    }

    /// Drops the lag series of a partition this instance no longer owns.
    pub fn forget_partition(&self, topic: &str, partition: i32) {
        let _ = self
            .consumer_lag
            .remove_label_values(&[topic, &partition.to_string()]);
    }

    /// Rejected hot reloads so far (the store counts them).
    pub fn policy_reload_failures(&self, n: u64) {
        let seen = self.policy_reload_failures.get();
        if n > seen {
            self.policy_reload_failures.inc_by(n - seen);
        }
    }

    /// The policy and model in force.
    pub fn policy(&self, version: &str, name: &str, model_version: Option<&str>) {
        self.policy_info.reset();
        self.policy_info
            .with_label_values(&[version, name, model_version.unwrap_or("")])
            .set(1);
    }

    pub fn in_flight(&self, n: usize) {
        self.in_flight.set(n as i64);
    }

    pub fn delivery_failed(&self) {
        self.delivery_failures.inc();
    }

    pub fn kafka_error(&self, client: Client) {
        self.kafka_errors
            .with_label_values(&[client.as_str()])
            .inc();
    }

    pub fn offsets_stored(&self, n: usize) {
        self.offsets_stored.inc_by(n as u64);
    }

    pub fn offset_commit_failed(&self) {
        self.offset_commit_failures.inc();
    }

    pub fn offset_commit_seconds(&self, elapsed: Duration) {
        self.offset_commit_seconds.observe(elapsed.as_secs_f64());
    }

    pub fn transaction_committed(&self, elapsed: Duration, records: usize) {
        self.transactions.with_label_values(&["committed"]).inc();
        self.transaction_commit_seconds
            .observe(elapsed.as_secs_f64());
        self.transaction_records.observe(records as f64);
    }

    /// One blocking transactional call (`call` is one of [`TXN_CALLS`]).
    pub fn transaction_call(&self, call: &'static str, elapsed: Duration) {
        self.transaction_call_seconds
            .with_label_values(&[call])
            .observe(elapsed.as_secs_f64());
    }

    pub fn input_paused(&self, paused: bool) {
        self.input_paused.set(i64::from(paused));
    }

    pub fn transaction_aborted(&self) {
        self.transactions.with_label_values(&["aborted"]).inc();
    }

    pub fn partner_follower_lag(&self, partition: i32, lag: i64) {
        self.partner_follower_lag
            .with_label_values(&[&partition.to_string()])
            .set(lag);
    }

    pub fn partner_partitions(&self, n: usize) {
        self.partner_partitions.set(n as i64);
    }

    /// A decision with a business-resumption priority was acknowledged.
    pub fn decision_prioritized(&self, port: PortCode, priority: u8) {
        let p = [b'0' + priority.min(9)];
        self.decisions_prioritized
            .with_label_values(&[port.as_str(), std::str::from_utf8(&p).unwrap_or("?")])
            .inc();
    }

    /// The resumption mode per port (see [`crate::service::resumption::Board::active_at`]).
    pub fn port_resumption(&self, ports: &[(PortCode, bool)]) {
        for (port, active) in ports {
            self.port_resumption_active
                .with_label_values(&[port.as_str()])
                .set(i64::from(*active));
        }
    }

    pub fn bad_control_record(&self) {
        self.bad_control_records.inc();
    }

    pub fn control_completed(&self) {
        self.control_complete.set(1);
    }

    pub fn history_outcomes(&self, n: usize) {
        self.history_outcomes.set(n as i64);
    }

    pub fn outcomes_completed(&self) {
        self.outcomes_complete.set(1);
    }

    pub fn outcome_follower_lag(&self, partition: i32, lag: i64) {
        self.outcome_follower_lag
            .with_label_values(&[&partition.to_string()])
            .set(lag);
    }

    pub fn bad_outcome_record(&self, kind: ErrorKind) {
        self.bad_outcome_records
            .with_label_values(&[kind.as_str()])
            .inc();
    }

    pub fn outcome_recorded(&self) {
        self.outcomes_recorded.inc();
    }

    pub fn outcome_window(&self, decisions: usize) {
        self.outcome_window_decisions.set(decisions as i64);
    }

    /// Mirrors the hit rates into their gauges.
    pub fn hit_rates(&self, v: &crate::service::outcomes::HitRatesView) {
        use crate::service::outcomes::Estimate;
        let groups = v
            .by_cause
            .iter()
            .map(|(k, h)| ("cause", *k, h))
            .chain(v.by_port.iter().map(|(k, h)| ("port", k.as_str(), h)))
            .chain(v.by_standing.iter().map(|(k, h)| ("standing", *k, h)));
        for (by, group, h) in groups {
            self.exam_outcomes
                .with_label_values(&[by, group])
                .set(h.exams as i64);
            self.exam_findings
                .with_label_values(&[by, group, "discrepancy"])
                .set(h.discrepancies as i64);
            self.exam_findings
                .with_label_values(&[by, group, "seizure"])
                .set(h.seizures as i64);
        }
        for (standing, e) in &v.random_estimate {
            if let Estimate::Sampled {
                violation_rate: Some(r),
                ..
            } = e
            {
                self.random_exam_violation_rate
                    .with_label_values(&[standing])
                    .set(*r);
            }
        }
    }

    /// Readiness as last evaluated: stalled manifest partitions and the `/readyz` verdict.
    pub fn readiness(&self, stalled: usize, ready: bool) {
        self.stalled_partitions.set(stalled as i64);
        self.ready.set(i64::from(ready));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_typed_labels() {
        let m = Metrics::new();
        let port = PortCode::parse("2304").unwrap();
        m.decision_acknowledged(Action::Release, Lane::Fast, port);
        m.decision_acknowledged(Action::Release, Lane::Fast, port);
        m.dead_letter_acknowledged(ErrorKind::InvalidJson);
        m.scored(Duration::from_micros(3));
        m.end_to_end(Duration::from_millis(2));
        m.partner_table(5, 7);
        m.bad_partner_record(BadPartner::KeyMismatch);
        m.bad_partner_record(BadPartner::Invalid(ErrorKind::BadCode));
        m.partner_table_completed();
        m.consumer_lag("manifests", 0, 12);
        m.policy("sha256:abc", "default", None);
        m.policy("sha256:def", "default", Some("sha256:m1"));
        m.policy_reload_failures(2);
        m.kafka_error(Client::Producer);
        m.decision_prioritized(port, 1);
        m.port_resumption(&[(port, true), (PortCode::parse("0901").unwrap(), false)]);
        let text = m.render();
        for line in [
            "borderlane_decisions_total{action=\"release\",lane=\"fast\",port=\"2304\"} 2",
            "borderlane_dead_letters_total{kind=\"invalid_json\"} 1",
            "borderlane_dead_letters_total{kind=\"unknown_port\"} 0",
            "borderlane_scoring_seconds_count 1",
            "borderlane_end_to_end_seconds_count 1",
            "borderlane_partner_table_size 5",
            "borderlane_partner_updates_applied 7",
            "borderlane_bad_partner_records_total{kind=\"key_mismatch\"} 1",
            "borderlane_bad_partner_records_total{kind=\"bad_code\"} 1",
            "borderlane_partner_table_complete 1",
            "borderlane_consumer_lag{partition=\"0\",topic=\"manifests\"} 12",
            "borderlane_policy_info{model_version=\"sha256:m1\",name=\"default\",version=\"sha256:def\"} 1",
            "borderlane_policy_reload_failures_total 2",
            "borderlane_kafka_errors_total{client=\"producer\"} 1",
            "borderlane_decisions_prioritized_total{port=\"2304\",priority=\"1\"} 1",
            "borderlane_port_resumption_active{port=\"2304\"} 1",
            "borderlane_port_resumption_active{port=\"0901\"} 0",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(
            !text.contains("sha256:abc"),
            "old policy version still exported"
        );
        m.forget_partition("manifests", 0);
        assert!(!m.render().contains("borderlane_consumer_lag{"));
    }
}
