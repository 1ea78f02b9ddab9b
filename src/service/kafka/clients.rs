//! librdkafka client configurations: the service's low-latency defaults, then the operator's
//! `[kafka.common]` and per-client properties, then the few properties the delivery guarantee depends on.
//!
//! Never log a `ClientConfig` with `{:?}` (rust-rdkafka prints `sasl.password`); use [`describe`].

use std::collections::BTreeMap;

use rdkafka::config::ClientConfig;

use crate::service::config::{redact, Config, FORCED_CONSUMER};

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
    // Stored (acknowledged) offsets are flushed every second: the window of duplicates after a crash.
    ("auto.commit.interval.ms", "1000"),
    // Rebalances move only the partitions that change owner; the others keep flowing.
    ("partition.assignment.strategy", "cooperative-sticky"),
    // Per-partition lag for /metrics.
    ("statistics.interval.ms", "1000"),
];

/// Defaults for the partner consumer. Loading the table is CPU-bound (parse + index, ~3 µs a record) while
/// fetching runs at ~1.5 M records/s, so librdkafka's 64 MiB pre-fetch queue always fills and only costs
/// resident memory: 8 MiB is still far more than the follower parses between two fetches (measured with
/// `loadtest --partner-load` at 1 M partners: 64 → 16 MiB −20…40 MiB peak RSS, 16 → 8 MiB −20 MiB, load
/// time unchanged within noise each time).
pub const PARTNER_CONSUMER_DEFAULTS: &[(&str, &str)] = &[("queued.max.messages.kbytes", "8192")];

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

/// `max.message.bytes` of the topics the service creates: matches the
/// producer default so everything the producer accepts, the broker accepts.
pub const TOPIC_MAX_MESSAGE_BYTES: &str = "4194304";

/// Which client a configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Consumer-group member reading manifests.
    ManifestConsumer,
    /// Group-less reader of the whole partner topic.
    PartnerConsumer,
    /// Producer of decisions and dead letters.
    Producer,
    /// Topic creation and metadata.
    Admin,
    /// `borderlane produce`.
    Loader,
}

/// The effective properties for `role`, in precedence order: defaults < common < per-client < forced.
pub fn properties(config: &Config, role: Role) -> BTreeMap<String, String> {
    let k = &config.kafka;
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
        Role::PartnerConsumer => {
            put(CONSUMER_DEFAULTS);
            put(PARTNER_CONSUMER_DEFAULTS);
        }
        Role::Producer | Role::Loader => put(PRODUCER_DEFAULTS),
        Role::Admin => {}
    }
    p.extend(k.common.0.clone());
    match role {
        Role::ManifestConsumer | Role::PartnerConsumer => p.extend(k.consumer.0.clone()),
        Role::Producer | Role::Loader => p.extend(k.producer.0.clone()),
        Role::Admin => {}
    }
    p.insert("bootstrap.servers".into(), k.bootstrap_servers.clone());
    match role {
        Role::ManifestConsumer => {
            p.insert("group.id".into(), k.group_id.clone());
            for (n, v, _) in FORCED_CONSUMER {
                p.insert(n.to_string(), v.to_string());
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
            // Group settings mean nothing without a group; librdkafka warns about some of them.
            p.remove("partition.assignment.strategy");
            p.remove("auto.commit.interval.ms");
            p.remove("group.instance.id");
            p.remove("session.timeout.ms");
            p.remove("heartbeat.interval.ms");
            p.remove("max.poll.interval.ms");
            p.remove("statistics.interval.ms");
        }
        Role::Producer | Role::Loader | Role::Admin => {}
    }
    p
}

/// A librdkafka configuration for `role`.
pub fn client_config(config: &Config, role: Role) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in properties(config, role) {
        c.set(k, v);
    }
    c
}

/// `name=value` pairs for logs, secrets redacted.
pub fn describe(config: &Config, role: Role) -> String {
    properties(config, role)
        .iter()
        .map(|(k, v)| format!("{k}={}", redact(k, v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The producer's effective `message.max.bytes`.
pub fn producer_max_message_bytes(config: &Config) -> Result<usize, String> {
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
            "#,
        );
        let prod = properties(&c, Role::Producer);
        assert_eq!(prod["linger.ms"], "3");
        assert_eq!(prod["enable.idempotence"], "true");
        assert_eq!(prod["client.id"], "c");
        assert_eq!(prod["bootstrap.servers"], "h:1");
        assert!(!prod.contains_key("group.id"));
        let cons = properties(&c, Role::ManifestConsumer);
        assert_eq!(cons["fetch.wait.max.ms"], "50");
        assert_eq!(cons["linger.ms"], "7");
        assert_eq!(cons["group.id"], "g1");
        assert_eq!(cons["enable.auto.offset.store"], "false");
        assert_eq!(cons["enable.auto.commit"], "true");
        assert_eq!(cons["auto.offset.reset"], "earliest");
        let partners = properties(&c, Role::PartnerConsumer);
        assert_eq!(partners["group.id"], "g1-partners");
        assert!(!partners.contains_key("session.timeout.ms"));
        assert_eq!(partners["enable.partition.eof"], "true");
        assert_eq!(partners["enable.auto.commit"], "false");
        assert_eq!(partners["queued.max.messages.kbytes"], "8192");
        assert!(!cons.contains_key("queued.max.messages.kbytes"));
        let d = describe(&c, Role::Producer);
        assert!(d.contains("sasl.password=***") && !d.contains("pw"), "{d}");
    }
}
