//! The chaos suite's independent verifier (`scripts/chaos` runs it after a run).
//!
//! Reads the manifest topic's end offsets, then every committed output (decisions and dead letters) with a
//! `read_committed` consumer, and maps each output to its input through the `source.partition` /
//! `source.offset` headers:
//! - **lost**: input offsets without any committed output;
//! - **duplicated**: committed outputs beyond the first for one input;
//! - **order violations**: within one output partition, a first output of an input record that comes
//!   after the first output of a later record of the same input partition (keys live in one input
//!   partition, so this is per-key order; redone work after a crash shows up as duplicates, not here).
//!   Outputs without a key (dead letters of keyless inputs, which Kafka spreads over the partitions) have
//!   no order to keep and are left out (`unkeyed_outputs` counts them);
//! - **aborted**: records a `read_uncommitted` reader sees beyond the committed ones (proof that the run
//!   hit open transactions; 0 in at-least-once).
//!
//! Prints one JSON object; exit 0 when lost = 0 (and duplicated = 0 with `--exactly-once`), else 1.

use std::collections::{HashMap, HashSet};
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

/// One output record: (topic, partition, source partition, source offset), and whether it has a key.
struct Out {
    partition: i32,
    topic_is_dlq: bool,
    source: (i32, i64),
    keyed: bool,
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
                    source: (sp, so),
                    // librdkafka's partitioners spread an empty key like a null one.
                    keyed: m.key().is_some_and(|k| !k.is_empty()),
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
    let mut examples: Vec<String> = Vec::new();
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
        examples.clear();
        for &(p, end) in &ends {
            for off in 0..end {
                match by.get(&(p, off)) {
                    None => {
                        lost += 1;
                        if examples.len() < 10 {
                            examples.push(format!("lost {p}@{off}"));
                        }
                    }
                    Some(&n) => {
                        duplicated += n - 1;
                        if n > 1 && examples.len() < 10 {
                            examples.push(format!("{n}x {p}@{off}"));
                        }
                    }
                }
            }
        }
        let dead = outputs.iter().filter(|o| o.topic_is_dlq).count();
        if lost == 0 || Instant::now() > deadline {
            break (outputs, lost, duplicated, dead);
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    let Order {
        violations: order_violations,
        examples: order_examples,
        unkeyed,
    } = order(&outputs);
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
            "unkeyed_outputs": unkeyed,
            "aborted_records": aborted,
            "examples": examples,
            "order_examples": order_examples,
        })
    );
    let ok = lost == 0 && order_violations == 0 && (!a.exactly_once || duplicated == 0);
    std::process::exit(if ok { 0 } else { 1 });
}

/// What the order check found (see [`order`]).
struct Order {
    violations: usize,
    examples: Vec<String>,
    unkeyed: usize,
}

/// Order: the manifests are keyed, so all records of a key sit in one input partition and their outputs
/// in one output partition; within an output partition, the first outputs of one input partition's
/// records must follow the input order (a redo after a crash — a duplicate — may go back, which the
/// duplicate count reports). An output without a key (the dead letter of an input without one: a line
/// whose manifest_id could not be read) has no key order to keep: Kafka spreads keyless records over the
/// partitions, so its redo after a crash may land in another partition than the first try (seen in seed
/// 19, 2026-12-06). Such outputs are counted, not ordered. `outputs` is in reading order.
fn order(outputs: &[Out]) -> Order {
    let mut seen: HashSet<(i32, i64)> = HashSet::new();
    let mut high: HashMap<(bool, i32, i32), i64> = HashMap::new();
    let mut violations = 0usize;
    let mut examples: Vec<String> = Vec::new();
    let unkeyed = outputs.iter().filter(|o| !o.keyed).count();
    for o in outputs.iter().filter(|o| o.keyed) {
        if !seen.insert(o.source) {
            continue;
        }
        let k = (o.topic_is_dlq, o.partition, o.source.0);
        let h = high.entry(k).or_insert(-1);
        if o.source.1 < *h {
            violations += 1;
            if examples.len() < 10 {
                examples.push(format!(
                    "{} partition {}: first output of {}@{} after one of {}@{}",
                    if o.topic_is_dlq {
                        "dead letters"
                    } else {
                        "decisions"
                    },
                    o.partition,
                    o.source.0,
                    o.source.1,
                    o.source.0,
                    h
                ));
            }
        } else {
            *h = o.source.1;
        }
    }
    Order {
        violations,
        examples,
        unkeyed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(dlq: bool, partition: i32, source: (i32, i64), keyed: bool) -> Out {
        Out {
            partition,
            topic_is_dlq: dlq,
            source,
            keyed,
        }
    }

    /// A keyed first output after a later input's, in one output partition, is a violation; a redo (a
    /// second output of an input) going back is not; keyless outputs are counted and never ordered; other
    /// output partitions, topics and input partitions are ordered apart.
    #[test]
    fn first_outputs_of_keyed_records_follow_the_input_order() {
        let ok = order(&[
            out(false, 0, (0, 1), true),
            out(false, 0, (0, 2), true),
            out(false, 0, (0, 1), true), // a redo
            out(false, 0, (1, 0), true), // another input partition
            out(false, 1, (0, 0), true), // another output partition
            out(true, 0, (0, 0), true),  // the dead letters apart
            out(true, 0, (0, 9), false), // keyless: counted only
            out(true, 0, (0, 5), false),
        ]);
        assert_eq!((ok.violations, ok.unkeyed), (0, 2), "{:?}", ok.examples);
        let bad = order(&[out(false, 0, (0, 2), true), out(false, 0, (0, 1), true)]);
        assert_eq!(bad.violations, 1);
        assert_eq!(
            bad.examples,
            ["decisions partition 0: first output of 0@1 after one of 0@2"]
        );
        // The same pair keyless (seed 19's dead letters) is no violation.
        let keyless = order(&[
            out(true, 2, (2, 6119), true),
            out(true, 2, (2, 6079), false),
        ]);
        assert_eq!((keyless.violations, keyless.unkeyed), (0, 1));
    }
}
