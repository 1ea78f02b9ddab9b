//! The partner-table load benchmark (`--partner-load N`): N generated partners on a fresh compacted partner
//! topic, then — alternating, `repeat` times — a raw consume of that topic (records and bytes counted, no
//! parsing) and the service's own start-up load into its `PartnerTable` (`serve::start` until the table is
//! complete). Each measurement runs in a child process (this binary, `partner-child`), so its peak RSS
//! (`VmHWM`) is the loading process's alone, not the generator's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use borderlane::service::config::Config;
use borderlane::service::kafka::clients::{client_config, Role};
use borderlane::service::kafka::fetch::{Fetch, FetchQueue};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::cpu::{self, CpuUse};
use crate::kafka;
use crate::payload;
use crate::scenario::Scenario;

/// Which load a child measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Consume every record, count bytes, parse nothing.
    Raw,
    /// The same, taking the records in batches as the follower does
    /// (`borderlane::service::kafka::fetch`).
    RawBatch,
    /// `borderlane::service::start` until the partner table is complete.
    Table,
}

/// One child's measurement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measurement {
    /// What was measured.
    pub mode: Mode,
    /// Records consumed (raw) or partners in the table (table).
    pub records: u64,
    /// Key + value bytes consumed (raw only; 0 for table).
    pub bytes: u64,
    /// From creating the clients (raw) or calling `serve::start` (table) to the end of the topic or the
    /// complete table.
    pub elapsed_s: f64,
    /// Peak resident set of the child process at that moment, MiB (`VmHWM`).
    pub peak_rss_mib: f64,
    /// Resident set at that moment, MiB (`VmRSS`).
    pub rss_mib: f64,
    /// The CPU the measured span took, by thread group of the child (and the rest of the machine: the
    /// broker, mostly); `None` without `/proc`.
    #[serde(default)]
    pub cpu: Option<CpuUse>,
}

/// The benchmark's result.
#[derive(Debug, Clone, Serialize)]
pub struct PartnerLoadReport {
    /// Partner records on the topic.
    pub partners: usize,
    /// Partitions of the partner topic.
    pub partitions: i32,
    /// Bytes of the partner values on the topic.
    pub value_bytes: u64,
    /// Seconds to generate and produce the topic (not part of the measurement).
    pub setup_s: f64,
    /// Every raw-consume measurement.
    pub raw: Vec<Measurement>,
    /// Every batched raw-consume measurement.
    pub raw_batch: Vec<Measurement>,
    /// Every table-load measurement.
    pub table: Vec<Measurement>,
    /// Median raw-consume time, s.
    pub raw_s: f64,
    /// Median table-load time, s.
    pub table_s: f64,
    /// Partners per second, raw consume (median run).
    pub raw_per_s: f64,
    /// Partners per second into the table (median run).
    pub table_per_s: f64,
    /// table_per_s ÷ raw_per_s.
    pub rate_ratio: f64,
    /// Median batched raw-consume time, s.
    pub raw_batch_s: f64,
    /// table_per_s ÷ the batched raw consume's partners per second (median runs).
    pub batch_ratio: f64,
    /// Highest peak RSS of the table loads, MiB.
    pub table_peak_rss_mib: f64,
    /// Highest peak RSS of the raw consumes, MiB.
    pub raw_peak_rss_mib: f64,
}

/// Runs the benchmark; see the module documentation.
pub fn run(
    base: &Config,
    scenario: &Scenario,
    partners: usize,
    service_config: Option<&Path>,
) -> anyhow::Result<PartnerLoadReport> {
    let started = Instant::now();
    let prefix = kafka::unique("partnerload");
    let config = topics_config(base, &prefix);
    let policy = borderlane::service::load_policy(&config)?;
    eprintln!("partner load: generating {partners} partners ...");
    let records = payload::partner_records(&policy, scenario.seed, partners);
    let value_bytes: u64 = records.iter().map(|(_, v)| v.len() as u64).sum();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(borderlane::service::kafka::topics::ensure(&config))?;
    eprintln!(
        "partner load: producing {partners} partners ({:.0} MiB) to {} ...",
        value_bytes as f64 / 1048576.0,
        config.kafka.topics.partners
    );
    kafka::load_records(&config, &config.kafka.topics.partners, &records)?;
    drop(records);
    let setup_s = started.elapsed().as_secs_f64();

    let result = (|| -> anyhow::Result<[Vec<Measurement>; 3]> {
        let (mut raw, mut raw_batch, mut table) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..scenario.partner_load.repeat {
            for mode in [Mode::Raw, Mode::RawBatch, Mode::Table] {
                let m = child(
                    &config.kafka.bootstrap_servers,
                    &prefix,
                    mode,
                    service_config,
                )?;
                eprintln!(
                    "partner load: run {}/{} {:?}: {} records in {:.2} s, peak RSS {:.0} MiB",
                    i + 1,
                    scenario.partner_load.repeat,
                    mode,
                    m.records,
                    m.elapsed_s,
                    m.peak_rss_mib
                );
                if m.records != partners as u64 {
                    bail!(
                        "{mode:?} load saw {} records, expected {partners}",
                        m.records
                    );
                }
                match mode {
                    Mode::Raw => raw.push(m),
                    Mode::RawBatch => raw_batch.push(m),
                    Mode::Table => table.push(m),
                }
            }
        }
        Ok([raw, raw_batch, table])
    })();
    let t = &config.kafka.topics;
    kafka::delete_topics(
        &config,
        &[
            t.partners.clone(),
            t.manifests.clone(),
            t.decisions.clone(),
            t.dlq.clone(),
        ],
    );
    let [raw, raw_batch, table] = result?;
    // Every kind ran at least once (`repeat` ≥ 1, checked when the scenario loads).
    let median = |ms: &[Measurement]| median_run(ms).map_or(f64::NAN, |m| m.elapsed_s);
    let peak = |ms: &[Measurement]| ms.iter().map(|m| m.peak_rss_mib).fold(0.0, f64::max);
    let (raw_s, raw_batch_s, table_s) = (median(&raw), median(&raw_batch), median(&table));
    let (raw_per_s, table_per_s) = (partners as f64 / raw_s, partners as f64 / table_s);
    Ok(PartnerLoadReport {
        partners,
        partitions: config.kafka.topic_partitions,
        value_bytes,
        setup_s,
        raw_s,
        table_s,
        raw_per_s,
        table_per_s,
        rate_ratio: table_per_s / raw_per_s,
        raw_batch_s,
        batch_ratio: raw_batch_s / table_s,
        table_peak_rss_mib: peak(&table),
        raw_peak_rss_mib: peak(&raw).max(peak(&raw_batch)),
        raw,
        raw_batch,
        table,
    })
}

/// The run with the median time (the upper of the middle two for an even count); `None` for no run.
pub fn median_run(runs: &[Measurement]) -> Option<&Measurement> {
    let mut v: Vec<&Measurement> = runs.iter().collect();
    v.sort_by(|a, b| a.elapsed_s.total_cmp(&b.elapsed_s));
    v.get(v.len() / 2).copied()
}

/// The service configuration whose topics all start with `prefix` (the same in parent and children).
fn topics_config(base: &Config, prefix: &str) -> Config {
    let mut c = base.clone();
    c.kafka.group_id = format!("{prefix}-group");
    c.kafka.topics.partners = format!("{prefix}-partners");
    c.kafka.topics.manifests = format!("{prefix}-manifests");
    c.kafka.topics.decisions = format!("{prefix}-decisions");
    c.kafka.topics.dlq = format!("{prefix}-dlq");
    c
}

/// Runs one measurement in a child process (this binary) and reads its JSON line.
fn child(
    bootstrap: &str,
    prefix: &str,
    mode: Mode,
    service_config: Option<&Path>,
) -> anyhow::Result<Measurement> {
    let exe = std::env::current_exe().context("locating the loadtest binary")?;
    // LOADTEST_CHILD_WRAPPER="perf record -g -o /tmp/p.data --" profiles each child.
    let wrapper = std::env::var("LOADTEST_CHILD_WRAPPER").unwrap_or_default();
    let mut words = wrapper.split_whitespace();
    let mut cmd = match words.next() {
        Some(w) => {
            let mut c = Command::new(w);
            c.args(words).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    cmd.arg("partner-child")
        .arg("--bootstrap")
        .arg(bootstrap)
        .arg("--prefix")
        .arg(prefix)
        .arg("--mode")
        .arg(match mode {
            Mode::Raw => "raw",
            Mode::RawBatch => "raw-batch",
            Mode::Table => "table",
        });
    if let Some(p) = service_config {
        cmd.arg("--service-config").arg(p);
    }
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .context("running a partner-load child")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "partner-load child ({mode:?}) failed: {}: {stdout}",
            out.status
        );
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| anyhow!("no result from the partner-load child: {stdout}"))?;
    serde_json::from_str(line).context("parsing the child's result")
}

/// The child's side: measures one load and prints its [`Measurement`] as one JSON line.
pub fn child_main(
    bootstrap: &str,
    prefix: &str,
    mode: Mode,
    service_config: Option<PathBuf>,
) -> anyhow::Result<()> {
    let config = topics_config(
        &kafka::base_config(service_config.as_deref(), bootstrap)?,
        prefix,
    );
    let m = match mode {
        Mode::Raw => raw(&config)?,
        Mode::RawBatch => raw_batch(&config)?,
        Mode::Table => table(&config)?,
    };
    println!("{}", serde_json::to_string(&m)?);
    Ok(())
}

/// `VmHWM` and `VmRSS` of this process, MiB.
pub fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// A consumer context that does not log end-of-partition (expected here) as an error.
struct QuietEof;

impl rdkafka::ClientContext for QuietEof {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() != Some(rdkafka::error::RDKafkaErrorCode::PartitionEOF) {
            eprintln!("raw consumer: {error}: {reason}");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for QuietEof {}

/// A measured span: its start (wall clock and CPU counters).
struct Span {
    started: Instant,
    cpu: Option<cpu::Snapshot>,
}

impl Span {
    fn start() -> Span {
        let cpu = cpu::snapshot();
        Span {
            started: Instant::now(),
            cpu,
        }
    }

    /// The measurement ending now: time, CPU, memory.
    fn end(self, mode: Mode, records: u64, bytes: u64) -> Measurement {
        let elapsed_s = self.started.elapsed().as_secs_f64();
        let cpu = self
            .cpu
            .zip(cpu::snapshot())
            .map(|(a, b)| cpu::between(&a, &b));
        let (peak_rss_mib, rss_mib) = memory_mib();
        Measurement {
            mode,
            records,
            bytes,
            elapsed_s,
            peak_rss_mib,
            rss_mib,
            cpu,
        }
    }
}

/// A consumer with the partner follower's properties.
fn raw_consumer(config: &Config) -> anyhow::Result<BaseConsumer<QuietEof>> {
    client_config(&config.kafka, Role::PartnerConsumer)
        .create_with_context(QuietEof)
        .map_err(|e| anyhow!("creating the raw consumer: {e}"))
}

/// Assigns every partition of the partner topic from its beginning, as the follower does, calling
/// `before_assign` on each first; returns the end offset of each partition with records.
fn assign_all(
    config: &Config,
    consumer: &BaseConsumer<QuietEof>,
    mut before_assign: impl FnMut(i32) -> anyhow::Result<()>,
) -> anyhow::Result<HashMap<i32, i64>> {
    let topic = &config.kafka.topics.partners;
    let timeout = Duration::from_secs(30);
    let md = consumer.fetch_metadata(Some(topic), timeout)?;
    let mut tpl = TopicPartitionList::new();
    let mut remaining = HashMap::new();
    for p in md.topics().iter().flat_map(|t| t.partitions()) {
        let (lo, hi) = consumer.fetch_watermarks(topic, p.id(), timeout)?;
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
        before_assign(p.id())?;
        if hi > lo {
            remaining.insert(p.id(), hi);
        }
    }
    consumer.assign(&tpl)?;
    Ok(remaining)
}

/// Reads the partner topic to its start-up end offsets like the follower does (same client properties,
/// same assignment), counting records and bytes only.
fn raw(config: &Config) -> anyhow::Result<Measurement> {
    let span = Span::start();
    let consumer = raw_consumer(config)?;
    let mut remaining = assign_all(config, &consumer, |_| Ok(()))?;
    let (mut records, mut bytes) = (0u64, 0u64);
    while !remaining.is_empty() {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => {
                records += 1;
                bytes += (m.key_len() + m.payload_len()) as u64;
                if remaining
                    .get(&m.partition())
                    .is_some_and(|end| m.offset() + 1 >= *end)
                {
                    remaining.remove(&m.partition());
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                remaining.remove(&p);
            }
            Some(Err(e)) => eprintln!("raw consumer: {e}"),
        }
    }
    Ok(span.end(Mode::Raw, records, bytes))
}

/// [`raw`], with the records taken in batches through a [`FetchQueue`], as the partner follower takes them.
fn raw_batch(config: &Config) -> anyhow::Result<Measurement> {
    let span = Span::start();
    let consumer = raw_consumer(config)?;
    let fetch = FetchQueue::new(&consumer)?;
    let topic = &config.kafka.topics.partners;
    let mut remaining = assign_all(config, &consumer, |p| fetch.take_partition(topic, p))?;
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut batch = Vec::new();
    while !remaining.is_empty() {
        if span.started.elapsed() > Duration::from_secs(600) {
            bail!("batched raw consume not at the end offsets after 600 s");
        }
        // The consumer's own queue: errors, statistics, logs.
        for _ in 0..fetch.events_waiting() {
            match consumer.poll(Duration::ZERO) {
                None => {}
                Some(Err(e)) => eprintln!("raw consumer: {e}"),
                Some(Ok(m)) => bail!(
                    "a record of partition {} on the consumer's queue, not the fetch queue",
                    m.partition()
                ),
            }
        }
        batch.clear();
        fetch.consume(Duration::from_millis(100), 4096, &mut batch);
        for m in &batch {
            match m.get() {
                Fetch::Record(r) => {
                    records += 1;
                    bytes += r.size() as u64;
                    if remaining
                        .get(&r.partition)
                        .is_some_and(|end| r.offset + 1 >= *end)
                    {
                        remaining.remove(&r.partition);
                    }
                }
                Fetch::End(p) => {
                    remaining.remove(&p);
                }
                Fetch::Error(p, e) => eprintln!("raw consumer: partition {p}: {e}"),
            }
        }
    }
    drop(batch);
    Ok(span.end(Mode::RawBatch, records, bytes))
}

/// Starts the service and waits until its partner table is complete.
fn table(config: &Config) -> anyhow::Result<Measurement> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let span = Span::start();
    let running = runtime.block_on(borderlane::service::start(config.clone()))?;
    let readiness = running.readiness().clone();
    let deadline = span.started + Duration::from_secs(600);
    while !readiness.state().0 {
        if Instant::now() > deadline {
            bail!("partner table not complete after 600 s");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let measured = span.end(Mode::Table, 0, 0);
    let records = running
        .metrics()
        .render()
        .lines()
        .find_map(|l| l.strip_prefix("borderlane_partner_table_size "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0) as u64;
    runtime.block_on(running.wait(std::future::ready(())))?;
    Ok(Measurement {
        records,
        ..measured
    })
}
