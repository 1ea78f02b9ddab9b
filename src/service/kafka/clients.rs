//! librdkafka client configurations: the service's low-latency defaults, then the operator's
//! `[kafka.common]` and per-client properties, then the few properties the delivery guarantee depends on.
//!
//! Never log a `ClientConfig` with `{:?}` (rust-rdkafka prints `sasl.password`); use [`describe`].

use std::collections::BTreeMap;
use std::fmt;

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};

use borderlane_core::schema::PathError;
use borderlane_core::wire::Limits;
use serde::Deserialize;

#[cfg(test)]
use crate::service::config::Config;

/// Bytes reserved for dead-letter headers on top of the original record.
pub const DLQ_HEADROOM: usize = 16 * 1024;

/// librdkafka's own default for `message.max.bytes`.
const LIBRDKAFKA_MESSAGE_MAX_BYTES: usize = 1_000_000;

/// Defaults for every client: fail fast on a dead broker address at start-up, log through tracing.
pub const COMMON_DEFAULTS: &[(&str, &str)] = &[
    // Keep metadata fresh enough that new partitions are seen within a minute.
    ("topic.metadata.refresh.interval.ms", "60000"),
];

/// Defaults for both consumers, chosen for latency: a manifest waits for the broker at most
/// `fetch.wait.max.ms`, and a full local queue backs off 10 ms instead of librdkafka's 1 s.
pub const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("fetch.wait.max.ms", "10"),
    ("fetch.queue.backoff.ms", "10"),
    ("fetch.error.backoff.ms", "100"),
    ("reconnect.backoff.ms", "50"),
    ("reconnect.backoff.max.ms", "2000"),
];

/// Defaults for the manifest consumer (group member).
pub const MANIFEST_CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    // A new group starts from the oldest manifest: skipping what was produced before the first start
    // would lose manifests.
    ("auto.offset.reset", "earliest"),
    // Rebalances move only the partitions that change owner; the others keep flowing.
    ("partition.assignment.strategy", "cooperative-sticky"),
    // Per-partition lag for /metrics.
    ("statistics.interval.ms", "1000"),
    // librdkafka pre-fetches up to 64 MiB, which a backlog always fills: it was half of serve's peak RSS.
    // 16 MiB is still ~10 000 generated manifests, about half a second of scoring (`scripts/bench-serve
    // 300000`, default configuration, back to back at load average 3–4: peak RSS 124 → 62 MiB, backlog
    // 17.6 k/s → 21.0 k/s; docs/performance.md, "Memory").
    ("queued.max.messages.kbytes", "16384"),
];

/// `fetch.wait.max.ms` of the consumers that are idle almost always: the followers (partner consumer role)
/// and the outcome dead-letter member (see [`PARTNER_CONSUMER_DEFAULTS`]).
const FOLLOWER_FETCH_WAIT_MAX_MS: &str = "100";

/// Defaults for the partner consumer. Loading the table is CPU-bound (parse + index, ~3 µs a record) while
/// fetching runs at ~1.5 M records/s, so librdkafka's 64 MiB pre-fetch queue always fills and only costs
/// resident memory: 8 MiB is still far more than the follower parses between two fetches (measured with
/// `loadtest --partner-load` at 1 M partners: 64 → 16 MiB −20…40 MiB peak RSS, 16 → 8 MiB −20 MiB, load
/// time unchanged within noise each time).
pub const PARTNER_CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("queued.max.messages.kbytes", "8192"),
    // The followers (partners, control, outcomes) sit idle almost always; at the manifest consumer's 10 ms
    // each sent the broker ~100 empty fetches a second. With all consumers of an idle `serve` at 10 ms the
    // broker spent 4.2–4.7 CPU s per 30 s on them, at 500 ms 0.8 s (docs/performance.md, "Idle followers");
    // on two CPUs shared with the pipeline that is tail latency. 100 ms bounds how late an update is seen
    // should the broker not answer the long poll at once (it does when a record arrives).
    ("fetch.wait.max.ms", FOLLOWER_FETCH_WAIT_MAX_MS),
    // Per-partition follower lag for /metrics.
    ("statistics.interval.ms", "1000"),
];

/// Defaults for the producer: send within a millisecond, idempotent (no duplicates or reordering from
/// internal retries), and room for a dead letter of the largest accepted record.
pub const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("linger.ms", "1"),
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("message.max.bytes", "4194304"),
    ("reconnect.backoff.ms", "50"),
    ("reconnect.backoff.max.ms", "2000"),
];

/// Defaults for the decisions producer alone: statistics every second, read only by the cut-off watch
/// (`cutoff`: a producer that lost every broker for good stops the instance 30 s into the cut-off, without
/// draining, instead of failing its deliveries after `message.timeout.ms`). The other producers (the
/// loader's role, the outcome dead-letter producer) do not take them.
pub const DECISIONS_PRODUCER_DEFAULTS: &[(&str, &str)] = &[(
    "statistics.interval.ms",
    crate::service::kafka::cutoff::STATISTICS_INTERVAL_MS,
)];

/// `max.message.bytes` of the topics the service creates: matches the
/// producer default so everything the producer accepts, the broker accepts.
pub const TOPIC_MAX_MESSAGE_BYTES: &str = "4194304";

/// How outputs and input offsets are tied together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMode {
    /// Store an input offset only after its output is acknowledged (duplicates possible, losses never).
    #[default]
    AtLeastOnce,
    /// Kafka transactions (KIP-447): outputs and input offsets commit atomically; a fenced or failed
    /// instance stops without writing. Downstream readers must use `isolation.level=read_committed`.
    ExactlyOnce,
}

impl DeliveryMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryMode::AtLeastOnce => "at_least_once",
            DeliveryMode::ExactlyOnce => "exactly_once",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// `bootstrap.servers` for every client.
    #[serde(default = "default_bootstrap")]
    pub bootstrap_servers: String,
    /// Consumer group of the manifest consumer (instances of one deployment share it).
    #[serde(default = "default_group")]
    pub group_id: String,
    /// Create missing topics at start-up (else a missing topic is a start-up error).
    #[serde(default)]
    pub create_topics: bool,
    /// Partitions of topics the service creates.
    #[serde(default = "default_partitions")]
    pub topic_partitions: i32,
    /// Replication factor of topics the service creates.
    #[serde(default = "default_replication")]
    pub replication_factor: i32,
    /// Delivery guarantee: `at_least_once` or `exactly_once` (transactions).
    #[serde(default)]
    pub delivery: DeliveryMode,
    /// This instance's stable identity (required with `exactly_once`, unique per running instance, the
    /// same across its restarts): the producer's `transactional.id` is `<group_id>.<instance_id>`, so a
    /// restarted instance fences its previous incarnation.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// With an `instance_id`: the manifest consumer is a static group member (`group.instance.id` =
    /// `instance_id`, KIP-345). A restart within `session.timeout.ms` gets its partitions back without a
    /// rebalance of the others, and a second running member with the same id is fenced by the group
    /// coordinator (the older one stops with a fatal `FENCED_INSTANCE_ID`). The cost: the partitions of an
    /// instance that stops and does not come back move only after `session.timeout.ms` (static members do
    /// not leave the group on shutdown).
    #[serde(default = "default_static_membership")]
    pub static_membership: bool,
    /// `transaction.timeout.ms` of the transactional producer: the broker aborts a transaction left open
    /// longer (a stopped zombie's), and bumps the epoch so its later writes are fenced.
    #[serde(default = "default_transaction_timeout_ms")]
    pub transaction_timeout_ms: u64,
    /// Commit cadence, both modes: at most this long between two commits while input flows (exactly-once:
    /// a transaction's lifetime; at-least-once: explicit commits of the stored offsets), milliseconds.
    #[serde(default = "default_commit_interval_ms")]
    pub commit_interval_ms: u64,
    /// Exactly-once: commit the transaction once it holds this many outputs (also the in-flight bound).
    #[serde(default = "default_commit_max_records")]
    pub commit_max_records: usize,
    /// Most outputs sent but not yet acknowledged; the consumer pauses above it (bounds memory and the
    /// amount of work redone after a crash).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// At-least-once: the oldest stored input offset not yet committed may be at most this old; beyond
    /// it (commits refused while the group coordinator is away or loading, or a rebalance runs) the
    /// consumer pauses its partitions until a commit succeeds, so a crash redoes at most about this much
    /// work, in milliseconds.
    #[serde(default = "default_max_uncommitted_ms")]
    pub max_uncommitted_ms: u64,
    /// Budget for metadata, watermark and topic-creation calls at start-up, in milliseconds.
    #[serde(default = "default_startup_timeout_ms")]
    pub startup_timeout_ms: u64,
    /// How often the partner follower re-reads the partner topic's metadata to pick up partitions added
    /// after start-up, in milliseconds.
    #[serde(default = "default_partner_refresh_ms")]
    pub partner_refresh_ms: u64,
    /// Topic names.
    #[serde(default)]
    pub topics: Topics,
    /// librdkafka properties for every client (security, client.id, …).
    #[serde(default)]
    pub common: ClientProps,
    /// librdkafka properties for the consumers (manifests and partners); override `common`.
    #[serde(default)]
    pub consumer: ClientProps,
    /// librdkafka properties for the producer (decisions and dead letters); override `common`.
    #[serde(default)]
    pub producer: ClientProps,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topics {
    /// Manifests in (consumer group).
    #[serde(default = "default_manifests")]
    pub manifests: String,
    /// CTPAT partners in (compacted; read whole by every instance).
    #[serde(default = "default_partners")]
    pub partners: String,
    /// Decisions out, keyed by manifest id.
    #[serde(default = "default_decisions")]
    pub decisions: String,
    /// Dead letters out: original bytes and key, error and source headers.
    #[serde(default = "default_dlq")]
    pub dlq: String,
    /// Operators' control records (compacted; read whole by every instance): business-resumption
    /// declarations keyed `resumption/<port>`, written through the admin API.
    #[serde(default = "default_control")]
    pub control: String,
    /// Exam outcomes (complete records, docs/wire.md "Exam outcome"), keyed `<manifest_id>/<revision>`:
    /// written by `POST /outcomes` and by port systems, read whole by every instance into the party history.
    #[serde(default = "default_outcomes")]
    pub outcomes: String,
}

#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ClientProps(pub BTreeMap<String, String>);

impl fmt::Debug for ClientProps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| (k, redact(k, v))))
            .finish()
    }
}

/// Whether a property name names a secret: its value is never logged.
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "secret", "key", "token"]
        .iter()
        .any(|s| k.contains(s))
}

/// The value to show for `key` in logs.
pub fn redact<'a>(key: &str, value: &'a str) -> &'a str {
    if is_secret(key) {
        "***"
    } else {
        value
    }
}

fn default_bootstrap() -> String {
    "127.0.0.1:9092".into()
}

fn default_group() -> String {
    "borderlane".into()
}

fn default_partitions() -> i32 {
    3
}

fn default_replication() -> i32 {
    1
}

fn default_max_uncommitted_ms() -> u64 {
    500
}

fn default_max_in_flight() -> usize {
    20_000
}

fn default_static_membership() -> bool {
    true
}

fn default_transaction_timeout_ms() -> u64 {
    10_000
}

fn default_commit_interval_ms() -> u64 {
    100
}

fn default_commit_max_records() -> usize {
    5_000
}

fn default_partner_refresh_ms() -> u64 {
    5_000
}
fn default_startup_timeout_ms() -> u64 {
    30_000
}

fn default_manifests() -> String {
    "manifests".into()
}

fn default_partners() -> String {
    "ctpat-partners".into()
}

fn default_decisions() -> String {
    "decisions".into()
}

fn default_dlq() -> String {
    "manifests-dlq".into()
}

fn default_control() -> String {
    "borderlane-control".into()
}

fn default_outcomes() -> String {
    "exam-outcomes".into()
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            bootstrap_servers: default_bootstrap(),
            group_id: default_group(),
            create_topics: false,
            topic_partitions: default_partitions(),
            replication_factor: default_replication(),
            delivery: DeliveryMode::default(),
            instance_id: None,
            static_membership: default_static_membership(),
            transaction_timeout_ms: default_transaction_timeout_ms(),
            commit_interval_ms: default_commit_interval_ms(),
            commit_max_records: default_commit_max_records(),
            max_in_flight: default_max_in_flight(),
            max_uncommitted_ms: default_max_uncommitted_ms(),
            startup_timeout_ms: default_startup_timeout_ms(),
            partner_refresh_ms: default_partner_refresh_ms(),
            topics: Topics::default(),
            common: ClientProps::default(),
            consumer: ClientProps::default(),
            producer: ClientProps::default(),
        }
    }
}

impl Default for Topics {
    fn default() -> Self {
        Topics {
            manifests: default_manifests(),
            partners: default_partners(),
            decisions: default_decisions(),
            dlq: default_dlq(),
            control: default_control(),
            outcomes: default_outcomes(),
        }
    }
}

/// The property names the service sets itself, per client, with the value it needs and why.
pub const FORCED_CONSUMER: &[(&str, &str, &str)] = &[
    (
        "enable.auto.offset.store",
        "false",
        "an offset is stored only after its output is acknowledged (at-least-once)",
    ),
    (
        "enable.auto.commit",
        "false",
        "the service commits itself on its own cadence, also during rebalances, and counts failures \
         (exactly-once: offsets commit inside the transaction)",
    ),
];

/// Client overrides that would silently break the delivery guarantee: (section, property, allowed values,
/// why). `section` is `consumer` (also checked in `common`) or `producer` (also checked in `common`).
pub const GUARDED: &[(&str, &str, &[&str], &str)] = &[
    (
        "producer",
        "acks",
        &["all", "-1"],
        "an output is acknowledged only once replicated; fewer acks can lose acknowledged decisions",
    ),
    (
        "producer",
        "enable.idempotence",
        &["true"],
        "librdkafka retries would duplicate or reorder outputs",
    ),
    (
        "consumer",
        "auto.offset.reset",
        &["earliest"],
        "a new group or an expired offset would skip manifests",
    ),
];

impl KafkaConfig {
    /// Adds every problem of the `[kafka]` section to `errors` (paths from the document root): names,
    /// counts, client properties the service owns, and room for a dead letter of the largest accepted
    /// manifest (`limits`).
    pub fn validate(&self, limits: &Limits, errors: &mut Vec<PathError>) {
        let mut err = |path: &str, message: String| {
            errors.push(PathError {
                path: path.to_string(),
                message,
            })
        };
        let k = self;
        if k.bootstrap_servers.trim().is_empty() {
            err("kafka.bootstrap_servers", "must not be empty".into());
        }
        if k.group_id.trim().is_empty() {
            err("kafka.group_id", "must not be empty".into());
        }
        if k.topic_partitions < 1 {
            err("kafka.topic_partitions", "must be at least 1".into());
        }
        if k.replication_factor < 1 {
            err("kafka.replication_factor", "must be at least 1".into());
        }
        if k.max_in_flight < 1 {
            err("kafka.max_in_flight", "must be at least 1".into());
        }
        if k.partner_refresh_ms < 100 {
            err(
                "kafka.partner_refresh_ms",
                "must be at least 100 (each refresh is a metadata request to the broker)".into(),
            );
        }
        let t = &k.topics;
        let names = [
            ("kafka.topics.manifests", &t.manifests),
            ("kafka.topics.partners", &t.partners),
            ("kafka.topics.decisions", &t.decisions),
            ("kafka.topics.dlq", &t.dlq),
            ("kafka.topics.control", &t.control),
            ("kafka.topics.outcomes", &t.outcomes),
        ];
        for (i, (path, name)) in names.iter().enumerate() {
            if name.trim().is_empty() {
                err(path, "must not be empty".into());
            } else if let Some((other, _)) = names[..i].iter().find(|(_, n)| n == name) {
                err(path, format!("topic {name:?} is also {other}"));
            }
        }
        for (section, props) in [
            ("common", &k.common),
            ("consumer", &k.consumer),
            ("producer", &k.producer),
        ] {
            for key in props.0.keys() {
                if key == "bootstrap.servers" {
                    err(
                        &format!("kafka.{section}.{key}"),
                        "set kafka.bootstrap_servers instead".into(),
                    );
                }
                if key == "group.id" {
                    err(
                        &format!("kafka.{section}.{key}"),
                        "set kafka.group_id instead".into(),
                    );
                }
                if section != "producer" {
                    if let Some((_, want, why)) = FORCED_CONSUMER.iter().find(|(n, ..)| n == key) {
                        if props.0[key] != *want {
                            err(
                                &format!("kafka.{section}.{key}"),
                                format!("must be {want}: {why}"),
                            );
                        }
                    }
                }
            }
        }
        for (section, props) in [
            ("common", &k.common),
            ("consumer", &k.consumer),
            ("producer", &k.producer),
        ] {
            for (client, key, allowed, why) in GUARDED {
                if section != "common" && section != *client {
                    continue;
                }
                if let Some(v) = props.0.get(*key) {
                    if !allowed.iter().any(|a| v.trim().eq_ignore_ascii_case(a)) {
                        err(
                            &format!("kafka.{section}.{key}"),
                            format!(
                                "{v:?} is not allowed (must be {}): {why}",
                                allowed.join(" or ")
                            ),
                        );
                    }
                }
            }
            for key in ["transactional.id", "transaction.timeout.ms"] {
                if props.0.contains_key(key) {
                    err(
                        &format!("kafka.{section}.{key}"),
                        "set kafka.instance_id / kafka.transaction_timeout_ms instead".into(),
                    );
                }
            }
            if section != "producer" && props.0.contains_key("group.instance.id") {
                err(
                    &format!("kafka.{section}.group.instance.id"),
                    "set kafka.instance_id (with kafka.static_membership) instead".into(),
                );
            }
            if k.delivery == DeliveryMode::ExactlyOnce && section != "producer" {
                if let Some(v) = props.0.get("isolation.level") {
                    if v.trim() != "read_committed" {
                        err(
                            &format!("kafka.{section}.isolation.level"),
                            format!(
                                "{v:?} is not allowed with delivery = \"exactly_once\" (must be read_committed): \
                                 aborted input would be decided"
                            ),
                        );
                    }
                }
            }
        }
        if k.commit_interval_ms < 1 {
            err("kafka.commit_interval_ms", "must be at least 1".into());
        }
        if k.max_uncommitted_ms < k.commit_interval_ms.saturating_mul(2) {
            err(
                "kafka.max_uncommitted_ms",
                format!(
                    "{} ms is less than twice commit_interval_ms = {}: healthy commits would pause the input",
                    k.max_uncommitted_ms, k.commit_interval_ms
                ),
            );
        }
        if k.commit_max_records < 1 {
            err("kafka.commit_max_records", "must be at least 1".into());
        }
        if k.transaction_timeout_ms < 1000 {
            err(
                "kafka.transaction_timeout_ms",
                "must be at least 1000".into(),
            );
        }
        match (&k.delivery, &k.instance_id) {
            (_, Some(id))
                if id.trim().is_empty()
                    || !id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) =>
            {
                err(
                    "kafka.instance_id",
                    format!("{id:?} must be non-empty ASCII letters, digits, '.', '_' or '-'"),
                )
            }
            _ => {}
        }
        if k.delivery == DeliveryMode::ExactlyOnce
            && k.transaction_timeout_ms < k.commit_interval_ms.saturating_mul(3)
        {
            err(
                "kafka.transaction_timeout_ms",
                format!(
                    "{} ms leaves no room for commit_interval_ms = {} (need at least 3x)",
                    k.transaction_timeout_ms, k.commit_interval_ms
                ),
            );
        }
        let max_message = producer_max_message_bytes(self);
        match max_message {
            Ok(max) if limits.max_bytes + DLQ_HEADROOM > max => err(
                "limits.max_bytes",
                format!(
                    "{} bytes plus {} bytes of dead-letter headers exceed the producer's message.max.bytes ({max}); \
                     an oversized input could not be dead-lettered",
                    limits.max_bytes,
                    DLQ_HEADROOM
                ),
            ),
            Ok(_) => {}
            Err(e) => err("kafka.producer.message.max.bytes", e),
        }
    }
}

impl KafkaConfig {
    /// What `serve` needs besides a valid document (other commands, e.g. `produce`, share the file):
    /// with exactly-once, an instance id.
    pub fn serve_problem(&self) -> Option<String> {
        (self.delivery == DeliveryMode::ExactlyOnce && self.instance_id.is_none()).then(|| {
            "kafka.instance_id: required with delivery = \"exactly_once\": a stable id, unique per \
             running instance and the same across its restarts (e.g. BORDERLANE_KAFKA__INSTANCE_ID=borderlane-1)"
                .to_string()
        })
    }
}

/// Which client a configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Consumer-group member reading manifests.
    ManifestConsumer,
    /// Group-less reader of the whole partner topic (also the control and outcome followers).
    PartnerConsumer,
    /// Consumer-group member dead-lettering bad exam-outcome records: the manifest consumer's properties
    /// with the followers' long poll (it is idle almost always).
    OutcomeDeadLetters,
    /// Producer of decisions and dead letters.
    Producer,
    /// Topic creation and metadata.
    Admin,
    /// `borderlane produce`.
    Loader,
}

/// The effective properties for `role`, in precedence order: defaults < common < per-client < forced.
pub fn properties(k: &KafkaConfig, role: Role) -> BTreeMap<String, String> {
    let mut p: BTreeMap<String, String> = BTreeMap::new();
    let mut put = |items: &[(&str, &str)]| {
        for (n, v) in items {
            p.insert(n.to_string(), v.to_string());
        }
    };
    put(COMMON_DEFAULTS);
    match role {
        Role::ManifestConsumer => {
            put(CONSUMER_DEFAULTS);
            put(MANIFEST_CONSUMER_DEFAULTS);
        }
        Role::OutcomeDeadLetters => {
            put(CONSUMER_DEFAULTS);
            put(MANIFEST_CONSUMER_DEFAULTS);
            put(&[("fetch.wait.max.ms", FOLLOWER_FETCH_WAIT_MAX_MS)]);
        }
        Role::PartnerConsumer => {
            put(CONSUMER_DEFAULTS);
            put(PARTNER_CONSUMER_DEFAULTS);
        }
        Role::Producer => {
            put(PRODUCER_DEFAULTS);
            put(DECISIONS_PRODUCER_DEFAULTS);
        }
        Role::Loader => put(PRODUCER_DEFAULTS),
        Role::Admin => {}
    }
    p.extend(k.common.0.clone());
    match role {
        Role::ManifestConsumer | Role::OutcomeDeadLetters | Role::PartnerConsumer => {
            p.extend(k.consumer.0.clone())
        }
        Role::Producer | Role::Loader => p.extend(k.producer.0.clone()),
        Role::Admin => {}
    }
    p.insert("bootstrap.servers".into(), k.bootstrap_servers.clone());
    match role {
        Role::ManifestConsumer | Role::OutcomeDeadLetters => {
            p.insert("group.id".into(), k.group_id.clone());
            if let (true, Some(id)) = (k.static_membership, &k.instance_id) {
                p.insert("group.instance.id".into(), id.clone());
            }
            for (n, v, _) in FORCED_CONSUMER {
                p.insert(n.to_string(), v.to_string());
            }
            if k.delivery == DeliveryMode::ExactlyOnce {
                // Input written by a transactional producer: only committed records are decided.
                p.insert("isolation.level".into(), "read_committed".into());
            }
        }
        Role::PartnerConsumer => {
            // Manual assignment of every partition, never subscribed and never committing, so no group is
            // ever joined; librdkafka still wants a group.id to allow assign().
            p.insert("group.id".into(), format!("{}-partners", k.group_id));
            p.insert("enable.auto.commit".into(), "false".into());
            p.insert("enable.auto.offset.store".into(), "false".into());
            // End-of-partition events tell the follower it has read up to the start-up end offsets.
            p.insert("enable.partition.eof".into(), "true".into());
            // The partner follower asks for its topic's metadata before the service has made sure of
            // the topics: it must never have the broker create one with the broker's defaults (not
            // compacted), whatever `kafka.consumer` says (librdkafka's consumer default, kept).
            p.insert("allow.auto.create.topics".into(), "false".into());
            // Group settings mean nothing without a group; librdkafka warns about some of them.
            p.remove("partition.assignment.strategy");
            p.remove("auto.commit.interval.ms");
            p.remove("group.instance.id");
            p.remove("session.timeout.ms");
            p.remove("heartbeat.interval.ms");
            p.remove("max.poll.interval.ms");
        }
        Role::Producer if k.delivery == DeliveryMode::ExactlyOnce => {
            p.insert("transactional.id".into(), transactional_id(k));
            p.insert(
                "transaction.timeout.ms".into(),
                k.transaction_timeout_ms.to_string(),
            );
            p.insert("enable.idempotence".into(), "true".into());
            p.insert("acks".into(), "all".into());
        }
        Role::Producer | Role::Loader | Role::Admin => {}
    }
    p
}

/// The transactional producer's id: `<group_id>.<instance_id>` (stable across restarts, so a restarted
/// instance fences its previous incarnation's open transaction).
pub fn transactional_id(k: &KafkaConfig) -> String {
    format!(
        "{}.{}",
        k.group_id,
        k.instance_id.as_deref().unwrap_or("unset")
    )
}

/// A librdkafka configuration for `role`.
pub fn client_config(config: &KafkaConfig, role: Role) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in properties(config, role) {
        c.set(k, v);
    }
    // The group members read librdkafka's warnings (`pipeline::CoordinatorLoss`), which librdkafka drops
    // itself below the level rust-rdkafka takes from the log filter (e.g. `RUST_LOG=error`); the filter
    // still decides what is shown.
    if matches!(role, Role::ManifestConsumer | Role::OutcomeDeadLetters)
        && (c.log_level as i32) < (RDKafkaLogLevel::Warning as i32)
    {
        c.set_log_level(RDKafkaLogLevel::Warning);
    }
    c
}

/// `name=value` pairs for logs, secrets redacted.
pub fn describe(config: &KafkaConfig, role: Role) -> String {
    properties(config, role)
        .iter()
        .map(|(k, v)| format!("{k}={}", redact(k, v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The producer's effective `message.max.bytes`.
pub fn producer_max_message_bytes(config: &KafkaConfig) -> Result<usize, String> {
    match properties(config, Role::Producer).get("message.max.bytes") {
        None => Ok(LIBRDKAFKA_MESSAGE_MAX_BYTES),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("{v:?} is not a number of bytes")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(text: &str) -> Config {
        Config::from_text(text, Vec::new(), Path::new("")).unwrap()
    }

    #[test]
    fn the_group_members_keep_librdkafkas_warnings() {
        let k = KafkaConfig::default();
        for role in [Role::ManifestConsumer, Role::OutcomeDeadLetters] {
            let level = client_config(&k, role).log_level as i32;
            assert!(
                level >= RDKafkaLogLevel::Warning as i32,
                "{role:?}: {level}"
            );
        }
    }

    #[test]
    fn precedence_is_defaults_common_specific_forced() {
        let c = config(
            r#"
            [kafka]
            bootstrap_servers = "h:1"
            group_id = "g1"
            [kafka.common]
            "linger.ms" = "7"
            "client.id" = "c"
            "sasl.password" = "pw"
            [kafka.producer]
            "linger.ms" = "3"
            [kafka.consumer]
            "fetch.wait.max.ms" = "50"
            "session.timeout.ms" = "6000"
            "allow.auto.create.topics" = "true"
            "#,
        );
        let prod = properties(&c.kafka, Role::Producer);
        assert_eq!(prod["linger.ms"], "3");
        assert_eq!(prod["enable.idempotence"], "true");
        assert_eq!(prod["client.id"], "c");
        assert_eq!(prod["bootstrap.servers"], "h:1");
        assert!(!prod.contains_key("group.id"));
        // The decisions producer's statistics feed its cut-off watch; the loader's role (also the
        // outcomes and control producers, whose default context would log them) takes none by default.
        assert_eq!(prod["statistics.interval.ms"], "1000");
        assert!(!properties(&c.kafka, Role::Loader).contains_key("statistics.interval.ms"));
        let cons = properties(&c.kafka, Role::ManifestConsumer);
        assert_eq!(cons["fetch.wait.max.ms"], "50");
        assert_eq!(cons["linger.ms"], "7");
        assert_eq!(cons["group.id"], "g1");
        assert_eq!(cons["enable.auto.offset.store"], "false");
        assert_eq!(cons["enable.auto.commit"], "false");
        assert!(!cons.contains_key("isolation.level"));
        assert!(!prod.contains_key("transactional.id"));
        assert_eq!(cons["auto.offset.reset"], "earliest");
        let partners = properties(&c.kafka, Role::PartnerConsumer);
        assert_eq!(partners["group.id"], "g1-partners");
        assert!(!partners.contains_key("session.timeout.ms"));
        assert_eq!(partners["enable.partition.eof"], "true");
        assert_eq!(partners["enable.auto.commit"], "false");
        // It may ask for its topic's metadata before the service has made the topic: never auto-created.
        assert_eq!(partners["allow.auto.create.topics"], "false");
        assert_eq!(partners["queued.max.messages.kbytes"], "8192");
        assert_eq!(cons["queued.max.messages.kbytes"], "16384");
        // `[kafka.consumer]` is both consumers' per-client table: the operator's value wins for both.
        assert_eq!(partners["fetch.wait.max.ms"], "50");
        let d = describe(&c.kafka, Role::Producer);
        assert!(d.contains("sasl.password=***") && !d.contains("pw"), "{d}");
    }

    #[test]
    fn idle_followers_long_poll_longer_than_the_manifest_consumer() {
        let c = config("[kafka]\ngroup_id = \"g\"");
        assert_eq!(
            properties(&c.kafka, Role::ManifestConsumer)["fetch.wait.max.ms"],
            "10"
        );
        assert_eq!(
            properties(&c.kafka, Role::PartnerConsumer)["fetch.wait.max.ms"],
            "100"
        );
        assert_eq!(
            properties(&c.kafka, Role::OutcomeDeadLetters)["fetch.wait.max.ms"],
            "100"
        );
        // An operator's value wins at either level, as for every default.
        for table in ["common", "consumer"] {
            let c = config(&format!(
                "[kafka]\ngroup_id = \"g\"\n[kafka.{table}]\n\"fetch.wait.max.ms\" = \"40\""
            ));
            for role in [
                Role::ManifestConsumer,
                Role::PartnerConsumer,
                Role::OutcomeDeadLetters,
            ] {
                assert_eq!(
                    properties(&c.kafka, role)["fetch.wait.max.ms"],
                    "40",
                    "{table} {role:?}"
                );
            }
        }
    }

    fn errors(text: &str) -> Vec<String> {
        match Config::from_text(text, Vec::new(), Path::new("")) {
            Ok(_) => Vec::new(),
            Err(e) => vec![format!("{e:#}")],
        }
    }

    #[test]
    fn exactly_once_sets_the_transactional_properties() {
        let c = config(
            r#"
            [kafka]
            group_id = "g"
            delivery = "exactly_once"
            instance_id = "lane-1"
            transaction_timeout_ms = 8000
            "#,
        );
        let prod = properties(&c.kafka, Role::Producer);
        assert_eq!(prod["transactional.id"], "g.lane-1");
        assert_eq!(prod["transaction.timeout.ms"], "8000");
        assert_eq!(prod["enable.idempotence"], "true");
        let cons = properties(&c.kafka, Role::ManifestConsumer);
        assert_eq!(cons["isolation.level"], "read_committed");
        assert_eq!(cons["enable.auto.commit"], "false");
        let loader = properties(&c.kafka, Role::Loader);
        assert!(!loader.contains_key("transactional.id"));
        // Static membership by default: the group coordinator fences a second member with this id.
        assert_eq!(cons["group.instance.id"], "lane-1");
        let partners = properties(&c.kafka, Role::PartnerConsumer);
        assert!(!partners.contains_key("group.instance.id"));
    }

    #[test]
    fn static_membership_follows_the_instance_id() {
        let none = config(
            "[kafka]
group_id = \"g\"",
        );
        assert!(!properties(&none.kafka, Role::ManifestConsumer).contains_key("group.instance.id"));
        let alo = config(
            "[kafka]
instance_id = \"i0\"",
        );
        assert_eq!(
            properties(&alo.kafka, Role::ManifestConsumer)["group.instance.id"],
            "i0"
        );
        let off = config(
            "[kafka]
instance_id = \"i0\"\nstatic_membership = false",
        );
        assert!(!properties(&off.kafka, Role::ManifestConsumer).contains_key("group.instance.id"));
        for section in ["common", "consumer"] {
            let e = errors(&format!("[kafka.{section}]\n\"group.instance.id\" = \"x\""));
            assert!(
                e.iter()
                    .any(|m| m.contains(&format!("kafka.{section}.group.instance.id"))),
                "{e:?}"
            );
        }
    }

    #[test]
    fn dangerous_overrides_are_rejected() {
        let cases = [
            (
                "[kafka.producer]\n\"acks\" = \"1\"",
                "kafka.producer.acks",
            ),
            ("[kafka.common]\n\"acks\" = \"0\"", "kafka.common.acks"),
            (
                "[kafka.producer]\n\"enable.idempotence\" = \"false\"",
                "kafka.producer.enable.idempotence",
            ),
            (
                "[kafka.consumer]\n\"auto.offset.reset\" = \"latest\"",
                "kafka.consumer.auto.offset.reset",
            ),
            (
                "[kafka]\ndelivery = \"exactly_once\"\ninstance_id = \"a\"\n[kafka.consumer]\n\"isolation.level\" = \"read_uncommitted\"",
                "kafka.consumer.isolation.level",
            ),
            (
                "[kafka.producer]\n\"transactional.id\" = \"x\"",
                "kafka.producer.transactional.id",
            ),
            ("[kafka]\ninstance_id = \"a b\"", "kafka.instance_id"),
        ];
        for (text, path) in cases {
            let e = errors(text);
            assert!(
                e.iter().any(|m| m.contains(path)),
                "{text:?} must be rejected at {path}: {e:?}"
            );
        }
        let eos = config("[kafka]\ndelivery = \"exactly_once\"");
        assert!(eos
            .kafka
            .serve_problem()
            .is_some_and(|e| e.contains("kafka.instance_id")));
        assert!(config("").kafka.serve_problem().is_none());
        // The safe values pass, in any spelling librdkafka accepts.
        assert!(errors(
            "[kafka.producer]\n\"acks\" = \"-1\"\n\"enable.idempotence\" = \"true\"\n[kafka.consumer]\n\"auto.offset.reset\" = \"earliest\""
        )
        .is_empty());
        assert!(errors(
            "[kafka]\ndelivery = \"exactly_once\"\ninstance_id = \"lane-1\"\n[kafka.consumer]\n\"isolation.level\" = \"read_committed\""
        )
        .is_empty());
    }

    #[test]
    fn secrets_are_recognised() {
        for k in [
            "sasl.password",
            "ssl.key.password",
            "ssl.key.pem",
            "sasl.oauthbearer.client.secret",
            "sasl.oauthbearer.token.endpoint.url",
        ] {
            assert!(is_secret(k), "{k}");
            assert_eq!(redact(k, "s3cret"), "***");
        }
        assert!(!is_secret("linger.ms"));
        assert_eq!(redact("linger.ms", "1"), "1");
    }
}
