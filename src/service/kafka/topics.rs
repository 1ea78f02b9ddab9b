//! Start-up topic check: creates missing topics (when `kafka.create_topics`) with the configured partitions
//! and replication — the partner topic compacted — or fails naming every missing one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use tracing::info;

use crate::service::config::Config;
use crate::service::kafka::clients::{client_config, Role, TOPIC_MAX_MESSAGE_BYTES};

/// The topics the service uses and the topic-level config each gets when created.
fn wanted(config: &Config) -> Vec<(&str, Vec<(&'static str, &'static str)>)> {
    let t = &config.kafka.topics;
    vec![
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
        (
            t.dlq.as_str(),
            vec![("max.message.bytes", TOPIC_MAX_MESSAGE_BYTES)],
        ),
    ]
}

/// Topics among `names` that the cluster does not have (or has without partitions). The metadata call
/// blocks, so it runs on the blocking pool.
async fn missing(
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

/// Makes sure every topic exists; see the module documentation.
pub async fn ensure(config: &Config) -> anyhow::Result<()> {
    let timeout = Duration::from_millis(config.kafka.startup_timeout_ms);
    let admin: Arc<AdminClient<DefaultClientContext>> = Arc::new(
        client_config(&config.kafka, Role::Admin)
            .create()
            .map_err(|e| anyhow!("creating the admin client: {e}"))?,
    );
    let wanted = wanted(config);
    let names: Vec<&str> = wanted.iter().map(|(n, _)| *n).collect();
    let absent = missing(&admin, &names, timeout).await?;
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
                    config.kafka.topic_partitions,
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
                info!(topic = %name, partitions = config.kafka.topic_partitions, "topic created")
            }
            // Another instance won the race: fine.
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("creating topic {name}: {code}"),
        }
    }
    // Creation is asynchronous in the cluster: wait until metadata shows every topic with partitions.
    let deadline = Instant::now() + timeout;
    loop {
        let still = missing(&admin, &names, timeout).await?;
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
