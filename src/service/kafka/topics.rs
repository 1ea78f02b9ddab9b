//! Start-up topic check: creates missing topics (when `kafka.create_topics`) with the configured partitions
//! and replication — the partner topic compacted, the control topic compacted with one partition (its few
//! records in one order), the exam-outcomes topic kept whole (no compaction, no expiry) — or fails naming every missing one; then checks that the
//! dead-letter topic takes a dead letter of the largest record the manifest topic accepts
//! ([`check_dead_letter_room`]), so no accepted input can fail its dead-letter send (a poison loop).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use tracing::info;

use crate::service::config::Config;
use crate::service::kafka::clients::{
    client_config, producer_max_message_bytes, Role, DLQ_HEADROOM, TOPIC_MAX_MESSAGE_BYTES,
};

/// A topic's partitions when created: the configured number, or one for the control topic.
fn partitions_of(config: &Config, topic: &str) -> i32 {
    if topic == config.kafka.topics.control {
        1
    } else {
        config.kafka.topic_partitions
    }
}

/// The topics the service uses and the topic-level config each gets when created.
fn wanted(config: &Config) -> Vec<(&str, Vec<(&'static str, &'static str)>)> {
    let t = &config.kafka.topics;
    vec![
        (
            t.control.as_str(),
            vec![
                ("cleanup.policy", "compact"),
                ("max.message.bytes", TOPIC_MAX_MESSAGE_BYTES),
            ],
        ),
        // Inputs accept records larger than `limits.max_bytes`, so an oversized one reaches the service and
        // becomes a dead letter instead of being refused to its producer.
        (
            t.manifests.as_str(),
            vec![("max.message.bytes", TOPIC_MAX_MESSAGE_BYTES)],
        ),
        (
            t.partners.as_str(),
            vec![
                ("cleanup.policy", "compact"),
                ("max.message.bytes", TOPIC_MAX_MESSAGE_BYTES),
            ],
        ),
        (
            t.decisions.as_str(),
            vec![("max.message.bytes", TOPIC_MAX_MESSAGE_BYTES)],
        ),
        // Exam outcomes: never compacted and never expired. Every version of an outcome stays, so a
        // decision's `history_as_of` can be replayed exactly (`score --outcomes`) even after a correction
        // replaced the version it read; the party history is the whole topic. Outcomes are a few percent
        // of manifests: the topic stays small.
        (
            t.outcomes.as_str(),
            vec![
                ("cleanup.policy", "delete"),
                ("retention.ms", "-1"),
                ("retention.bytes", "-1"),
                ("max.message.bytes", TOPIC_MAX_MESSAGE_BYTES),
            ],
        ),
        (
            t.dlq.as_str(),
            vec![("max.message.bytes", TOPIC_MAX_MESSAGE_BYTES)],
        ),
    ]
}

/// The timeouts of a start-up step's successive metadata calls: 1 s, doubling up to 4 s, never past the
/// step's budget. The step's own future can be dropped at once (a stop during it), but a blocking call it
/// started runs on until its timeout: with the whole start-up budget (30 s) as that timeout, a broker not
/// there yet held a thread, and the stop, that long. Growing, so that a broker slow to answer (a large
/// cluster's metadata) still gets calls long enough to succeed.
#[derive(Debug)]
pub struct CallTimeouts {
    deadline: Instant,
    next: Duration,
}

impl CallTimeouts {
    const FIRST: Duration = Duration::from_secs(1);
    const LONGEST: Duration = Duration::from_secs(4);

    pub fn new(budget: Duration) -> CallTimeouts {
        CallTimeouts {
            deadline: Instant::now() + budget,
            next: Self::FIRST,
        }
    }

    /// The next call's timeout (zero once the budget is spent).
    pub fn next_call(&mut self) -> Duration {
        let t = self
            .next
            .min(self.deadline.saturating_duration_since(Instant::now()));
        self.next = (self.next * 2).min(Self::LONGEST);
        t
    }

    /// Whether the budget is spent.
    pub fn spent(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

/// Topics among `names` that the cluster does not have (or has without partitions), asking for up to
/// `timeout` in calls of [`CallTimeouts`]. The metadata call blocks, so it runs on the blocking pool.
async fn missing(
    admin: &Arc<AdminClient<DefaultClientContext>>,
    names: &[&str],
    timeout: Duration,
) -> anyhow::Result<Vec<String>> {
    let mut calls = CallTimeouts::new(timeout);
    loop {
        match missing_within(admin, names, calls.next_call()).await {
            // A short pause first: a call can fail at once (no broker known yet).
            Err(_) if !calls.spent() => tokio::time::sleep(Duration::from_millis(100)).await,
            r => return r,
        }
    }
}

/// [`missing`] in one metadata call of at most `timeout`.
async fn missing_within(
    admin: &Arc<AdminClient<DefaultClientContext>>,
    names: &[&str],
    timeout: Duration,
) -> anyhow::Result<Vec<String>> {
    let admin = admin.clone();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let md = admin
            .inner()
            .fetch_metadata(None, timeout)
            .context("fetching cluster metadata")?;
        Ok(names
            .into_iter()
            .filter(|n| {
                // Present means usable: no error, partitions, each with a leader (a topic just created
                // on a fresh cluster has none for a moment).
                !md.topics().iter().any(|t| {
                    t.name() == n
                        && t.error().is_none()
                        && !t.partitions().is_empty()
                        && t.partitions()
                            .iter()
                            .all(|p| p.leader() >= 0 && p.error().is_none())
                })
            })
            .collect())
    })
    .await
    .context("metadata task")?
}

/// An admin client for one start-up step, dropped off the async runtime: rust-rdkafka's `AdminClient` drop
/// joins its polling thread, which wakes every 100 ms, so dropping it inline held the task — and the
/// partner table's load behind it — ~100 ms per client (two at every start).
struct Admin(Option<Arc<AdminClient<DefaultClientContext>>>);

impl Admin {
    fn new(config: &Config) -> anyhow::Result<Admin> {
        let client = client_config(&config.kafka, Role::Admin)
            .create()
            .map_err(|e| anyhow!("creating the admin client: {e}"))?;
        Ok(Admin(Some(Arc::new(client))))
    }

    fn client(&self) -> &Arc<AdminClient<DefaultClientContext>> {
        self.0.as_ref().expect("an admin client until dropped")
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn_blocking(move || drop(client));
                }
                Err(_) => drop(client),
            }
        }
    }
}

/// Makes sure every topic exists; see the module documentation.
pub async fn ensure(config: &Config) -> anyhow::Result<()> {
    let timeout = Duration::from_millis(config.kafka.startup_timeout_ms);
    let admin = Admin::new(config)?;
    let admin = admin.client();
    let wanted = wanted(config);
    let names: Vec<&str> = wanted.iter().map(|(n, _)| *n).collect();
    let absent = missing(admin, &names, timeout).await?;
    if absent.is_empty() {
        return Ok(());
    }
    if !config.kafka.create_topics {
        bail!(
            "missing topic(s) {} and kafka.create_topics is false",
            absent.join(", ")
        );
    }
    let new: Vec<NewTopic<'_>> = wanted
        .iter()
        .filter(|(n, _)| absent.iter().any(|a| a == n))
        .map(|(n, cfg)| {
            cfg.iter().fold(
                NewTopic::new(
                    n,
                    partitions_of(config, n),
                    TopicReplication::Fixed(config.kafka.replication_factor),
                ),
                |t, (k, v)| t.set(k, v),
            )
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(timeout));
    for r in admin
        .create_topics(new.iter(), &opts)
        .await
        .context("creating topics")?
    {
        match r {
            Ok(name) => {
                info!(topic = %name, partitions = partitions_of(config, &name), "topic created")
            }
            // Another instance won the race: fine.
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("creating topic {name}: {code}"),
        }
    }
    // Creation is asynchronous in the cluster: wait until metadata shows every topic with partitions.
    let deadline = Instant::now() + timeout;
    loop {
        let still = missing(admin, &names, timeout).await?;
        if still.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "topic(s) {} not visible {timeout:?} after creation",
                still.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Why the dead-letter topic cannot take the largest dead letter, if it cannot. The largest dead letter is
/// the largest input the manifest topic accepts (`manifests_max`, its `max.message.bytes`) plus the
/// dead-letter headers ([`DLQ_HEADROOM`]), or the producer's `message.max.bytes` when that is smaller (the
/// sink then truncates the value to fit, with `error.truncated_from`).
pub fn dead_letter_room_problem(
    manifests_max: usize,
    dlq_max: usize,
    producer_max: usize,
) -> Option<String> {
    let largest = producer_max.min(manifests_max.saturating_add(DLQ_HEADROOM));
    (dlq_max < largest).then(|| {
        format!(
            "the dead-letter topic's max.message.bytes ({dlq_max}) is smaller than the largest dead letter \
             ({largest} bytes: the manifest topic's max.message.bytes {manifests_max} plus {DLQ_HEADROOM} \
             bytes of headers, at most the producer's message.max.bytes {producer_max}); a large input \
             could not be dead-lettered and would stop the service on every restart. Raise the dead-letter \
             topic's max.message.bytes (kafka-configs --alter --add-config max.message.bytes=…) or lower \
             the manifest topic's"
        )
    })
}

/// Reads `max.message.bytes` of the manifest and dead-letter topics and fails when the dead-letter topic
/// could refuse a dead letter; see [`dead_letter_room_problem`].
pub async fn check_dead_letter_room(config: &Config) -> anyhow::Result<()> {
    let timeout = Duration::from_millis(config.kafka.startup_timeout_ms);
    let admin = Admin::new(config)?;
    let admin = admin.client();
    let t = &config.kafka.topics;
    let specs = [
        ResourceSpecifier::Topic(&t.manifests),
        ResourceSpecifier::Topic(&t.dlq),
    ];
    let opts = AdminOptions::new().request_timeout(Some(timeout));
    // A topic created a moment ago may not be known yet to the broker that answers (several brokers): it
    // then reports no entries. Retry until both topics report their limit, within the start-up budget.
    let deadline = Instant::now() + timeout;
    let sizes = loop {
        let results = admin
            .describe_configs(specs.iter(), &opts)
            .await
            .context("describing the manifest and dead-letter topics' configs")?;
        let mut sizes: Vec<Option<usize>> = vec![None, None];
        let mut last_problem = String::new();
        for r in results {
            match r {
                Ok(resource) => {
                    let name = match &resource.specifier {
                        rdkafka::admin::OwnedResourceSpecifier::Topic(n) => n.clone(),
                        _ => continue,
                    };
                    let Some(i) = [&t.manifests, &t.dlq].iter().position(|t| **t == name) else {
                        continue;
                    };
                    match resource
                        .get("max.message.bytes")
                        .and_then(|e| e.value.clone())
                    {
                        Some(v) => {
                            sizes[i] = Some(v.trim().parse().with_context(|| {
                                format!("topic {name}: max.message.bytes {v:?}")
                            })?)
                        }
                        None => last_problem = format!("topic {name} reports no max.message.bytes"),
                    }
                }
                Err(code) => last_problem = format!("describing a topic's config: {code}"),
            }
        }
        if let [Some(m), Some(d)] = sizes[..] {
            break [m, d];
        }
        if Instant::now() >= deadline {
            bail!("{last_problem} (after {timeout:?})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let producer_max =
        producer_max_message_bytes(&config.kafka).map_err(|e| anyhow!("kafka.producer: {e}"))?;
    if let Some(problem) = dead_letter_room_problem(sizes[0], sizes[1], producer_max) {
        bail!("topic {}: {problem}", t.dlq);
    }
    info!(
        manifests_max = sizes[0],
        dlq_max = sizes[1],
        producer_max,
        "dead-letter topic takes the largest dead letter"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Start-up calls wait 1 s, 2 s, then 4 s each, never past the budget; a spent budget gives no time.
    #[test]
    fn start_up_call_timeouts_grow_to_a_bound_within_the_budget() {
        let mut calls = CallTimeouts::new(Duration::from_secs(3600));
        let secs: Vec<u64> = (0..5).map(|_| calls.next_call().as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 4, 4]);
        assert!(!calls.spent());
        let mut short = CallTimeouts::new(Duration::from_millis(500));
        assert!(short.next_call() <= Duration::from_millis(500));
        let mut none = CallTimeouts::new(Duration::ZERO);
        assert!(none.spent());
        assert_eq!(none.next_call(), Duration::ZERO);
    }

    #[test]
    fn the_dead_letter_topic_must_take_the_largest_dead_letter() {
        let mib = 1 << 20;
        // The service's own topics: both 4 MiB, producer 4 MiB (the sink truncates beyond it).
        assert_eq!(dead_letter_room_problem(4 * mib, 4 * mib, 4 * mib), None);
        // A dead-letter topic left at the broker default (~1 MB) behind a 4 MiB manifest topic.
        let p = dead_letter_room_problem(4 * mib, 1_048_588, 4 * mib).unwrap();
        assert!(p.contains("1048588") && p.contains("4194304"), "{p}");
        // Equal topics but a larger producer: input + headers must fit.
        assert!(dead_letter_room_problem(mib, mib, 4 * mib).is_some());
        assert_eq!(
            dead_letter_room_problem(mib, mib + DLQ_HEADROOM, 4 * mib),
            None
        );
    }
}
