//! The chaos suite's independent verifier (`scripts/chaos` runs it after a run).
//!
//! Reads the manifest topic's end offsets, then every committed output (decisions and dead letters) with a
//! `read_committed` consumer, and maps each output to its input through the `source.partition` /
//! `source.offset` headers:
//! - **lost**: input offsets without any committed output;
//! - **duplicated**: committed outputs beyond the first for one input;
//! - **order violations**: within one output partition, two outputs with the same key whose inputs are
//!   out of order (per-key order);
//! - **aborted**: records a `read_uncommitted` reader sees beyond the committed ones (proof that the run
//!   hit open transactions; 0 in at-least-once).
//!
//! Prints one JSON object; exit 0 when lost = 0 (and duplicated = 0 with `--exactly-once`), else 1.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    bootstrap: String,
    #[arg(long)]
    manifests: String,
    #[arg(long)]
    decisions: String,
    #[arg(long)]
    dlq: String,
    /// Duplicates fail the check.
    #[arg(long)]
    exactly_once: bool,
    /// Keep reading until every input has an output, at most this long (seconds).
    #[arg(long, default_value_t = 120)]
    wait: u64,
}

fn consumer(bootstrap: &str, isolation: &str) -> anyhow::Result<BaseConsumer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set(
            "group.id",
            format!("chaos-verify-{}-{isolation}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "50")
        .create()?)
}

fn partitions(c: &BaseConsumer, topic: &str) -> anyhow::Result<Vec<i32>> {
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(30))?;
    let t = md.topics().first().context("no metadata")?;
    Ok(t.partitions().iter().map(|p| p.id()).collect())
}

/// One output record: (topic, partition, key, source partition, source offset).
struct Out {
    partition: i32,
    topic_is_dlq: bool,
    key: Vec<u8>,
    source: (i32, i64),
}

/// Reads `topics` from the beginning to their end at the time of the call, one topic at a time (so an
/// end-of-partition event names its partition unambiguously).
fn read_all(
    bootstrap: &str,
    isolation: &str,
    topics: &[&str],
    dlq: &str,
) -> anyhow::Result<Vec<Out>> {
    let mut out = Vec::new();
    for t in topics {
        let c = consumer(bootstrap, isolation)?;
        out.extend(read_topic(&c, t, dlq)?);
    }
    Ok(out)
}

fn read_topic(c: &BaseConsumer, topic: &str, dlq: &str) -> anyhow::Result<Vec<Out>> {
    let mut tpl = TopicPartitionList::new();
    let mut n = 0;
    for p in partitions(c, topic)? {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
        n += 1;
    }
    c.assign(&tpl)?;
    let mut out = Vec::new();
    let mut eof = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while eof.len() < n {
        if Instant::now() > deadline {
            bail!("reading the outputs did not reach their end in 300 s");
        }
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                eof.remove(&m.partition());
                let mut sp = None;
                let mut so = None;
                if let Some(h) = m.headers() {
                    for hdr in h.iter() {
                        let v = hdr
                            .value
                            .and_then(|v| std::str::from_utf8(v).ok())
                            .unwrap_or("");
                        match hdr.key {
                            "source.partition" => sp = v.parse().ok(),
                            "source.offset" => so = v.parse().ok(),
                            _ => {}
                        }
                    }
                }
                let (Some(sp), Some(so)) = (sp, so) else {
                    bail!(
                        "{}[{}]@{} has no source.partition/source.offset headers",
                        m.topic(),
                        m.partition(),
                        m.offset()
                    );
                };
                out.push(Out {
                    partition: m.partition(),
                    topic_is_dlq: m.topic() == dlq,
                    key: m.key().unwrap_or_default().to_vec(),
                    source: (sp, so),
                });
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
            }
            Some(Err(e)) => eprintln!("chaos-verify: {e}"),
            None => {}
        }
    }
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let admin = consumer(&a.bootstrap, "read_committed")?;
    let mut ends = Vec::new();
    for p in partitions(&admin, &a.manifests)? {
        let (_, high) = admin.fetch_watermarks(&a.manifests, p, Duration::from_secs(30))?;
        ends.push((p, high));
    }
    let inputs: i64 = ends.iter().map(|(_, h)| h).sum();
    let deadline = Instant::now() + Duration::from_secs(a.wait);
    let (outputs, lost, duplicated, dead) = loop {
        let outputs = read_all(
            &a.bootstrap,
            "read_committed",
            &[&a.decisions, &a.dlq],
            &a.dlq,
        )?;
        let mut by: HashMap<(i32, i64), usize> = HashMap::new();
        for o in &outputs {
            *by.entry(o.source).or_default() += 1;
        }
        let mut lost = 0usize;
        let mut duplicated = 0usize;
        for &(p, end) in &ends {
            for off in 0..end {
                match by.get(&(p, off)) {
                    None => lost += 1,
                    Some(&n) => duplicated += n - 1,
                }
            }
        }
        let dead = outputs.iter().filter(|o| o.topic_is_dlq).count();
        if lost == 0 || Instant::now() > deadline {
            break (outputs, lost, duplicated, dead);
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    // Per-key order: within an output partition, a key's outputs follow its inputs' order.
    let mut last: HashMap<(bool, i32, &[u8]), (i32, i64)> = HashMap::new();
    let mut order_violations = 0usize;
    for o in &outputs {
        if o.key.is_empty() {
            continue;
        }
        let k = (o.topic_is_dlq, o.partition, o.key.as_slice());
        if let Some(prev) = last.get(&k) {
            if prev.0 == o.source.0 && prev.1 > o.source.1 {
                order_violations += 1;
            }
        }
        last.insert(k, o.source);
    }
    let uncommitted = read_all(
        &a.bootstrap,
        "read_uncommitted",
        &[&a.decisions, &a.dlq],
        &a.dlq,
    )?
    .len();
    let aborted = uncommitted.saturating_sub(outputs.len());
    println!(
        "{}",
        serde_json::json!({
            "inputs": inputs,
            "committed_outputs": outputs.len(),
            "dead_letters": dead,
            "lost": lost,
            "duplicated": duplicated,
            "order_violations": order_violations,
            "aborted_records": aborted,
        })
    );
    let ok = lost == 0 && order_violations == 0 && (!a.exactly_once || duplicated == 0);
    std::process::exit(if ok { 0 } else { 1 });
}
