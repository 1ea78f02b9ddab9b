//! `--backlog N`: saturation measured as a drain. The same N manifests are written to a system's input
//! topic *before* it starts; the system then drains them as fast as it can, and the rate is read from its
//! outputs' own Kafka timestamps (set by its producer as it sends each one): answered manifests over the
//! span from the first output to the last.
//!
//! Why not an offered rate: on a small machine the fixed-rate sender shares the CPUs with the system it
//! measures, so at saturation it falls behind and measures itself (docs/performance.md, "Every line
//! again"). Here nothing of the harness runs while a system drains but a watermark query every 100 ms: the
//! outputs are read only once the last one is written. The passthrough baseline drains the same manifests
//! with the service's own client properties, so pipeline ÷ passthrough is what the service's work costs
//! in throughput on this machine. With `--service-bin BIN` the pipeline is `BIN serve` as a child process
//! (any build's, [`Launch::Binary`]), so two builds drain under the same harness.

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use borderlane::service::config::Config;
use borderlane::traffic::produce::Loader;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use serde::Serialize;

use crate::payload::{self, Templates};
use crate::report::Environment;
use crate::scenario::Scenario;
use crate::target::{Kind, Launch, StepTime, Target};
use crate::Data;

/// A drain that makes no progress for this long has stalled: the run fails.
const STALL: Duration = Duration::from_secs(60);
/// How often the output topics' end offsets are read while a system drains.
const WATCH_EVERY: Duration = Duration::from_millis(100);

/// One system's drain of the backlog.
#[derive(Debug, Clone, Serialize)]
pub struct DrainStats {
    /// Which system.
    pub target: Kind,
    /// Manifests written to its input before it started.
    pub backlog: u64,
    /// Seconds the harness took to write them (not part of the drain).
    pub fill_s: f64,
    /// Distinct manifests with an output (a decision or a dead letter; the passthrough's copy).
    pub answered: u64,
    /// Outputs beyond each manifest's first.
    pub duplicated: u64,
    /// Manifests of the backlog without an output.
    pub missing: u64,
    /// Outputs on the dead-letter topic (the pipeline's; the mix's malformed manifests).
    pub dead_letters: u64,
    /// Kafka timestamp of the first and the last output, ms since the Unix epoch.
    pub first_output_unix_ms: i64,
    pub last_output_unix_ms: i64,
    /// Seconds from the first output to the last.
    pub drain_s: f64,
    /// Manifests answered per second over the drain: the outputs with a timestamp, less one, over `drain_s`.
    pub rate: f64,
    /// Seconds from the system's start (the harness's clock when the backlog was written) to its last
    /// output: the drain plus start-up (the pipeline's includes its partner table's load); 0 without a
    /// timestamped output.
    pub start_to_last_s: f64,
    /// Where the CPU went from the system's start until its last output was seen (start-up included):
    /// `None` where `/proc` cannot be read.
    pub cpu: Option<crate::cpu::CpuUse>,
    /// The hosted service's pipeline thread, step by step, from its start until its last output was seen
    /// (empty for the passthrough and a child service): how long it collected batches (the scoring
    /// threads idle), waited for them, emitted.
    pub pipeline_steps: Vec<StepTime>,
}

/// The whole `--backlog` run.
#[derive(Debug, Clone, Serialize)]
pub struct DrainReport {
    pub scenario: String,
    pub delivery: String,
    /// The pipeline that ran: `in-process` (this build's service, hosted), or the binary whose `serve` ran
    /// as a child process (`--service-bin`).
    pub service: String,
    pub backlog: u64,
    pub bad_share: f64,
    pub partners: usize,
    pub partitions: i32,
    pub environment: Environment,
    pub pipeline: DrainStats,
    pub passthrough: Option<DrainStats>,
    /// Pipeline ÷ passthrough drain rate.
    pub ratio: Option<f64>,
}

/// What reading a drain's outputs found, before it becomes [`DrainStats`].
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outputs {
    /// By sequence number: its first output's Kafka timestamp (ms), or `None` without one.
    first_ts: Vec<Option<i64>>,
    answered: u64,
    duplicated: u64,
    /// Outputs whose key is not one of the backlog's (counted, otherwise ignored).
    foreign: u64,
    dead_letters: u64,
}

impl Outputs {
    pub fn new(backlog: u64) -> Outputs {
        Outputs {
            first_ts: vec![None; backlog as usize],
            ..Outputs::default()
        }
    }

    /// One output record: its key, Kafka timestamp and whether it is a dead letter.
    pub fn add(&mut self, key: &[u8], ts_ms: Option<i64>, dead_letter: bool) {
        let Some(seq) = payload::parse_id(key).filter(|s| *s < self.first_ts.len() as u64) else {
            self.foreign += 1;
            return;
        };
        match &mut self.first_ts[seq as usize] {
            Some(_) => self.duplicated += 1,
            slot => {
                // An output without a timestamp still answers its manifest; it just has no time.
                *slot = Some(ts_ms.unwrap_or(i64::MIN));
                self.answered += 1;
                if dead_letter {
                    self.dead_letters += 1;
                }
            }
        }
    }

    /// Whether every manifest of the backlog has an output.
    pub fn complete(&self) -> bool {
        self.answered == self.first_ts.len() as u64
    }

    /// The figures of a drain whose system started at `started_unix_ms`.
    pub fn stats(&self, target: Kind, fill_s: f64, started_unix_ms: i64) -> DrainStats {
        let stamped = || self.first_ts.iter().flatten().filter(|t| **t != i64::MIN);
        let first = stamped().min().copied().unwrap_or(0);
        let last = stamped().max().copied().unwrap_or(0);
        let drain_s = (last - first) as f64 / 1000.0;
        // Only outputs with a time are inside the span.
        let timed = stamped().count() as u64;
        let backlog = self.first_ts.len() as u64;
        DrainStats {
            target,
            backlog,
            fill_s,
            answered: self.answered,
            duplicated: self.duplicated,
            missing: backlog - self.answered,
            dead_letters: self.dead_letters,
            first_output_unix_ms: first,
            last_output_unix_ms: last,
            drain_s,
            rate: if drain_s > 0.0 {
                timed.saturating_sub(1) as f64 / drain_s
            } else {
                0.0
            },
            start_to_last_s: if timed > 0 {
                (last - started_unix_ms) as f64 / 1000.0
            } else {
                0.0
            },
            cpu: None,
            pipeline_steps: Vec::new(),
        }
    }
}

fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Writes manifests `0..n` (the run's ids as keys) to `topic` and waits for every delivery.
fn fill(config: &Config, topic: &str, templates: &Templates, n: u64) -> anyhow::Result<()> {
    let mut loader = Loader::new(config)?;
    let mut buf = Vec::new();
    for seq in 0..n {
        templates.fill(seq, &mut buf);
        loader.send(topic, Some(&payload::id(seq)[..]), Some(&buf), None)?;
    }
    let d = loader.flush(Duration::from_secs(600))?;
    if d.delivered != n {
        bail!("{} of {n} manifests delivered to {topic}", d.delivered);
    }
    Ok(())
}

/// Records on the output partitions so far (end offsets summed; an exactly-once service's transaction
/// markers count too, so this only says when to start reading).
fn written(consumer: &BaseConsumer, partitions: &[(String, i32)]) -> anyhow::Result<u64> {
    let mut sum = 0u64;
    for (t, p) in partitions {
        let (low, high) = consumer
            .fetch_watermarks(t, *p, Duration::from_secs(10))
            .with_context(|| format!("end offset of {t}/{p}"))?;
        sum += (high - low).max(0) as u64;
    }
    Ok(sum)
}

/// Drains `n` manifests through one system; see the module documentation.
fn drain_one(
    kind: Kind,
    launch: &Launch,
    base: &Config,
    scenario: &Scenario,
    data: &Data,
    n: u64,
    progress: bool,
) -> anyhow::Result<DrainStats> {
    let mut fill_s = 0.0;
    let mut started = (0i64, None);
    let target = Target::start_after(
        kind,
        launch,
        base,
        scenario.partitions,
        &data.partners,
        |config, input| {
            let t = Instant::now();
            fill(config, input, &data.templates, n)?;
            fill_s = t.elapsed().as_secs_f64();
            started = (now_unix_ms(), crate::cpu::snapshot());
            Ok(())
        },
    )?;
    target.run_then_stop(|target| {
        let (outputs, cpu, steps) = watch_and_read(target, n, progress)?;
        let mut stats = outputs.stats(kind, fill_s, started.0);
        stats.pipeline_steps = steps;
        stats.cpu = started
            .1
            .as_ref()
            .zip(cpu.as_ref())
            .map(|(a, b)| crate::cpu::between(a, b));
        Ok(stats)
    })
}

/// Waits until `target`'s outputs hold at least `n` records (the CPU counters read then), then reads them
/// all; fails when nothing new is written for [`STALL`] or the system stops.
fn watch_and_read(
    target: &Target,
    n: u64,
    progress: bool,
) -> anyhow::Result<(Outputs, Option<crate::cpu::Snapshot>, Vec<StepTime>)> {
    let (consumer, partitions) = target.output_reader("drain-reader")?;
    let name = target.kind.as_str();
    let mut seen = 0u64;
    let mut moved = Instant::now();
    let mut said = Instant::now();
    // While the system drains: only the end offsets, every WATCH_EVERY.
    let (cpu, steps) = loop {
        let now_written = written(&consumer, &partitions)?;
        if now_written >= n {
            break (
                crate::cpu::snapshot_with(&target.child_pids()),
                target.pipeline_steps(),
            );
        }
        if now_written > seen {
            seen = now_written;
            moved = Instant::now();
        }
        if target.failed() {
            bail!("{name}: the system stopped while draining ({seen} of {n} outputs)");
        }
        if moved.elapsed() >= STALL {
            bail!(
                "{name}: no output for {} s ({seen} of {n})",
                STALL.as_secs()
            );
        }
        if progress && said.elapsed() >= Duration::from_secs(1) {
            said = Instant::now();
            eprintln!("backlog {name}: {seen} of {n} outputs");
        }
        std::thread::sleep(WATCH_EVERY);
    };
    // Then every output, until each manifest has one (an exactly-once service's end offsets count its
    // transaction markers, so more may still be coming).
    crate::kafka::assign_from_beginning(&consumer, &partitions)?;
    let dlq = &target.config.kafka.topics.dlq;
    let mut outputs = Outputs::new(n);
    let mut moved = Instant::now();
    while !outputs.complete() {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                moved = Instant::now();
                let dead_letter = target.kind == Kind::Pipeline && m.topic() == dlq.as_str();
                outputs.add(
                    m.key().unwrap_or_default(),
                    m.timestamp().to_millis(),
                    dead_letter,
                );
            }
            Some(Err(e)) => eprintln!("loadtest: drain reader: {e}"),
            None => {
                if moved.elapsed() >= STALL || target.failed() {
                    break;
                }
            }
        }
    }
    Ok((outputs, cpu, steps))
}

/// The backlog run: the passthrough (when the scenario runs it), then the pipeline, each on fresh topics
/// with the same `n` manifests.
pub fn run(
    base: &Config,
    scenario: &Scenario,
    n: u64,
    launch: &Launch,
    progress: bool,
) -> anyhow::Result<DrainReport> {
    if n < 2 {
        bail!("--backlog needs at least 2 manifests (a rate needs a first and a last output)");
    }
    let base = &crate::with_delivery(base, scenario)?;
    let mut environment = Environment::capture(&base.kafka.bootstrap_servers);
    let policy = borderlane::service::load_policy(base)?;
    let data = Data::of(&policy, scenario);
    let passthrough = if scenario.passthrough {
        Some(drain_one(
            Kind::Passthrough,
            launch,
            base,
            scenario,
            &data,
            n,
            progress,
        )?)
    } else {
        None
    };
    let pipeline = drain_one(Kind::Pipeline, launch, base, scenario, &data, n, progress)?;
    environment.finish();
    let ratio = passthrough
        .as_ref()
        .filter(|b| b.rate > 0.0)
        .map(|b| pipeline.rate / b.rate);
    Ok(DrainReport {
        scenario: scenario.name.clone(),
        delivery: base.kafka.delivery.as_str().to_string(),
        service: match launch {
            Launch::InProcess => "in-process".to_string(),
            Launch::Binary { bin, .. } => format!("{} serve (child process)", bin.display()),
        },
        backlog: n,
        bad_share: scenario.bad_share,
        partners: scenario.partners,
        partitions: scenario.partitions,
        environment,
        pipeline,
        passthrough,
        ratio,
    })
}

impl DrainReport {
    /// Manifests of the backlog without an output, over both systems.
    pub fn missing(&self) -> u64 {
        self.pipeline.missing + self.passthrough.as_ref().map_or(0, |b| b.missing)
    }

    /// The human table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let e = &self.environment;
        let _ = writeln!(
            s,
            "backlog drain ({}): {} manifests written before each system starts ({:.0} % malformed), \
             {} partitions, {} partners, {}",
            self.scenario,
            self.backlog,
            self.bad_share * 100.0,
            self.partitions,
            self.partners,
            self.delivery
        );
        let _ = writeln!(s, "service: {}", self.service);
        let _ = writeln!(
            s,
            "machine: {} CPUs ({}), load average {} before, {} after; broker {}",
            e.nproc, e.cpu_model, e.loadavg_before, e.loadavg_after, e.bootstrap
        );
        let _ = writeln!(
            s,
            "{:<13}{:>10}{:>10}{:>14}{:>15}{:>10}{:>6}{:>9}{:>8}",
            "",
            "fill s",
            "drain s",
            "manifests/s",
            "start→last s",
            "answered",
            "dup",
            "missing",
            "dlq"
        );
        let runs = [
            ("passthrough", self.passthrough.as_ref()),
            ("pipeline", Some(&self.pipeline)),
        ];
        for (name, r) in runs {
            if let Some(r) = r {
                let _ = writeln!(
                    s,
                    "{name:<13}{:>10.2}{:>10.2}{:>14.0}{:>15.2}{:>10}{:>6}{:>9}{:>8}",
                    r.fill_s,
                    r.drain_s,
                    r.rate,
                    r.start_to_last_s,
                    r.answered,
                    r.duplicated,
                    r.missing,
                    r.dead_letters
                );
            }
        }
        if let Some(ratio) = self.ratio {
            let _ = writeln!(s, "pipeline ÷ passthrough, drain rate: {ratio:.2}");
        }
        if runs.iter().any(|(_, r)| r.is_some_and(|r| r.cpu.is_some())) {
            let _ = writeln!(
                s,
                "CPU from each system's start to its last output, s (µs a manifest answered):"
            );
        }
        for (name, r) in runs {
            if let Some((cpu, answered)) = r.and_then(|r| r.cpu.as_ref().map(|c| (c, r.answered))) {
                s.push_str(&crate::report::cpu_lines(name, cpu, answered));
            }
        }
        let p = &self.pipeline;
        if !p.pipeline_steps.is_empty() {
            let steps: Vec<String> = p
                .pipeline_steps
                .iter()
                .map(|st| {
                    format!(
                        "{} {:.2} ({:.1})",
                        st.step,
                        st.total_ms / 1000.0,
                        crate::cpu::CpuUse::per_item_us(st.total_ms / 1000.0, p.answered)
                    )
                })
                .collect();
            let _ = writeln!(
                s,
                "pipeline thread, wall s (µs a manifest answered): {}",
                steps.join(", ")
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seq: u64) -> Vec<u8> {
        payload::id(seq).to_vec()
    }

    #[test]
    fn the_rate_is_read_from_the_first_and_last_output() {
        let mut o = Outputs::new(5);
        // Out of order, one duplicate (its later timestamp ignored), one foreign key, one dead letter.
        o.add(&key(3), Some(1_000_400), false);
        o.add(&key(0), Some(1_000_000), false);
        o.add(&key(1), Some(1_000_100), true);
        o.add(&key(3), Some(1_009_000), false);
        o.add(b"probe-1", Some(1_020_000), false);
        o.add(&key(7), Some(1_030_000), false);
        assert!(!o.complete());
        o.add(&key(2), Some(1_000_200), false);
        let s = o.stats(Kind::Pipeline, 1.5, 999_000);
        assert_eq!((s.backlog, s.answered, s.missing), (5, 4, 1));
        assert_eq!((s.duplicated, s.dead_letters, o.foreign), (1, 1, 2));
        assert_eq!(
            (s.first_output_unix_ms, s.last_output_unix_ms),
            (1_000_000, 1_000_400)
        );
        assert!((s.drain_s - 0.4).abs() < 1e-9, "{s:?}");
        // Four answered over 0.4 s: three intervals.
        assert!((s.rate - 7.5).abs() < 1e-9, "{s:?}");
        assert!((s.start_to_last_s - 1.4).abs() < 1e-9, "{s:?}");
        o.add(&key(4), Some(1_000_300), false);
        assert!(o.complete());
    }

    #[test]
    fn an_output_without_a_timestamp_answers_but_has_no_time() {
        let mut o = Outputs::new(3);
        o.add(&key(0), Some(2_000), false);
        o.add(&key(1), None, false);
        o.add(&key(2), Some(3_000), false);
        let s = o.stats(Kind::Passthrough, 0.0, 1_000);
        assert_eq!(s.answered, 3);
        assert_eq!(
            (s.first_output_unix_ms, s.last_output_unix_ms),
            (2_000, 3_000)
        );
        // The two timed outputs: one interval, over the second between them.
        assert!((s.rate - 1.0).abs() < 1e-9, "{s:?}");
        // None timed: no span, no rate, no time to the last.
        let mut o = Outputs::new(2);
        o.add(&key(0), None, false);
        o.add(&key(1), None, false);
        let s = o.stats(Kind::Passthrough, 0.0, 1_000);
        assert_eq!((s.answered, s.rate, s.start_to_last_s), (2, 0.0, 0.0));
    }

    #[test]
    fn a_single_instant_has_no_rate() {
        let mut o = Outputs::new(2);
        o.add(&key(0), Some(5_000), false);
        o.add(&key(1), Some(5_000), false);
        assert_eq!(o.stats(Kind::Pipeline, 0.0, 4_000).rate, 0.0);
    }
}
