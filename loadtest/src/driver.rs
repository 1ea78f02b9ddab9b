//! One open-loop run against a started [`Target`]: a sender thread produces manifest `seq` at its
//! scheduled time `t0 + seq / rate` — never waiting for an answer, catching up at once when it fell
//! behind — and a collector thread reads every output topic and records, per manifest, the time from its
//! *scheduled* send to its output's arrival in an HDR histogram. A stalled system therefore shows its whole
//! queueing delay (no coordinated omission). Loss and duplicates are counted per sequence number.

use std::io::IsTerminal;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use borderlane::service::kafka::clients::{client_config, Role};
use hdrhistogram::Histogram;
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use serde::Serialize;

use crate::payload::{self, Templates};
use crate::target::{Kind, Target};

/// Highest latency the histograms track (an hour, in µs); larger values are clamped to it.
const MAX_LATENCY_US: u64 = 3_600_000_000;
/// Key prefix of the readiness probes sent before the clock starts.
const PROBE: &[u8] = b"PROBE-";

/// How one run is driven.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Offered load, manifests per second.
    pub rate: f64,
    /// Sent at `rate` before the measured window; counted for loss, not in the percentiles.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// How long to wait after the last send for outstanding outputs.
    pub drain_timeout: Duration,
    /// Partitions of the input topic (one readiness probe each).
    pub partitions: i32,
    /// Print a progress line every second.
    pub progress: bool,
}

/// What one run measured. Latencies are from each manifest's scheduled send time to its output's arrival
/// at the harness, over the measured window (warm-up excluded).
#[derive(Debug, Clone, Serialize)]
pub struct RunStats {
    /// Which system.
    pub target: Kind,
    /// Offered load, manifests per second.
    pub offered_rate: f64,
    /// Manifests handed to the producer (warm-up included).
    pub sent: u64,
    /// Manifests the broker did not accept (never reached the system under test).
    pub produce_failed: u64,
    /// Manifests the producer could not deliver within its flush timeout (neither accepted nor refused).
    pub undelivered: u64,
    /// Distinct manifests with an output.
    pub received: u64,
    /// Manifests accepted by the broker without any output by the end of the drain.
    pub lost: u64,
    /// Outputs beyond the first for a manifest.
    pub duplicated: u64,
    /// Manifests in the percentiles (the measured window's received ones).
    pub measured: u64,
    /// Distinct outputs per second, from the first scheduled send to the last output.
    pub throughput_per_s: f64,
    /// Median latency, ms: the typical manifest.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms: the latency target and the find-max bound.
    pub p99_ms: f64,
    /// 99.9th percentile, ms: stalls show here first.
    pub p999_ms: f64,
    /// Slowest measured manifest, ms.
    pub max_ms: f64,
    /// Mean latency, ms (with p50, shows how skewed the distribution is).
    pub mean_ms: f64,
    /// Latencies within 450–550 ms: a plateau here is librdkafka's 500 ms `fetch.wait.max.ms` default.
    pub near_500ms: u64,
    /// Latencies within 950–1050 ms: a plateau here is the 1 s `fetch.queue.backoff.ms` default.
    pub near_1s: u64,
    /// Manifests sent without an output when the last one was sent (a growing backlog = not keeping up).
    pub backlog_at_end_of_send: u64,
    /// Furthest the sender fell behind its own timetable (harness health: should stay far below p99).
    pub sender_max_behind_ms: f64,
    /// Wall time of the run from the first scheduled send to the end of the drain.
    pub elapsed_s: f64,
    /// The service's own commit counters over the whole run (warm-up included), from its metrics.
    pub commits: crate::target::CommitStats,
    /// The service's pipeline thread, per step, over the whole run (warm-up included; empty for the
    /// passthrough).
    pub pipeline_steps: Vec<crate::target::StepTime>,
    /// Every manifest's first output, by sequence number (warm-up included), for `--latencies` and the
    /// broker's GC share: not in the JSON report.
    #[serde(skip)]
    pub arrivals: Arrivals,
    /// What the broker's GC pauses did to this run, when its GC log was given (`--broker-gc-log`).
    pub broker_gc: Option<crate::gc::GcShare>,
    /// Where the run's CPU went, from the first send to the end of the drain (warm-up included): the
    /// machine, this process by thread group (the target it hosts and the harness), other processes
    /// (the broker). `None` where `/proc` cannot be read.
    pub cpu: Option<crate::cpu::CpuUse>,
}

/// Each manifest's first output: its partition, latency from its scheduled send and Kafka timestamp, by
/// sequence number.
#[derive(Clone, Default)]
pub struct Arrivals {
    /// Manifests per second the sequence numbers were scheduled at (manifest `seq` was due `seq / rate`
    /// s after the clock started).
    pub rate: f64,
    /// When the clock started (manifest 0 was due), ms since the Unix epoch: to line arrivals up with
    /// other logs (the broker's GC log, say).
    pub t0_unix_ms: f64,
    /// The first sequence number of the measured window (those before it were the warm-up).
    pub measured_from: u64,
    /// By sequence number: its output's arrival, or `None` without one (16 bytes a manifest).
    pub by_seq: Vec<Option<Arrival>>,
}

/// A manifest's first output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// From its scheduled send, µs (at least 1; clamped at ~71 minutes).
    pub latency_us: NonZeroU32,
    /// The output's partition.
    pub partition: u16,
    /// The output record's Kafka timestamp (ms since the Unix epoch; the producer sets it when the target
    /// hands the record over), 0 without one: splits a latency into the way in (scheduled send → output
    /// produced) and the way out (produced → arrived).
    pub output_ts_ms: i64,
}

impl Arrival {
    pub fn new(partition: i32, latency_us: u64) -> Arrival {
        Arrival {
            latency_us: NonZeroU32::new(latency_us.min(u32::MAX.into()) as u32)
                .unwrap_or(NonZeroU32::MIN),
            partition: u16::try_from(partition).unwrap_or(u16::MAX),
            output_ts_ms: 0,
        }
    }

    /// With the output record's Kafka timestamp (see [`Arrival::output_ts_ms`]).
    pub fn with_output_ts(mut self, ts_ms: Option<i64>) -> Arrival {
        self.output_ts_ms = ts_ms.unwrap_or(0);
        self
    }
}

impl std::fmt::Debug for Arrivals {
    /// The counts, not a line per manifest.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arrivals")
            .field("rate", &self.rate)
            .field("t0_unix_ms", &self.t0_unix_ms)
            .field("measured_from", &self.measured_from)
            .field("manifests", &self.by_seq.len())
            .field("with_output", &self.by_seq.iter().flatten().count())
            .finish()
    }
}

impl Arrivals {
    /// When manifest `seq` was due to be sent, ms after the clock started.
    pub fn due_ms(&self, seq: usize) -> f64 {
        seq as f64 * 1000.0 / self.rate
    }

    /// When manifest `seq` was due to be sent and when its output `a` arrived, ms since the Unix epoch.
    pub fn sent_and_arrived_unix_ms(&self, seq: usize, a: &Arrival) -> (f64, f64) {
        let sent = self.t0_unix_ms + self.due_ms(seq);
        (sent, sent + f64::from(a.latency_us.get()) / 1000.0)
    }

    /// CSV, one line per manifest with an output:
    /// `seq,due_ms,partition,latency_us,arrived_unix_ms,output_ts_ms` (`due_ms`: its scheduled send, ms
    /// after the clock started; `arrived_unix_ms`: when its output arrived, ms since the Unix epoch;
    /// `output_ts_ms`: the output record's Kafka timestamp, 0 without one), in sequence order, after a
    /// header line.
    pub fn write_csv(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        writeln!(
            out,
            "seq,due_ms,partition,latency_us,arrived_unix_ms,output_ts_ms"
        )?;
        for (seq, a) in self.by_seq.iter().enumerate() {
            if let Some(a) = a {
                let (partition, us) = (a.partition, a.latency_us.get());
                let due_ms = self.due_ms(seq);
                let (_, arrived) = self.sent_and_arrived_unix_ms(seq, a);
                let ts = a.output_ts_ms;
                writeln!(out, "{seq},{due_ms:.3},{partition},{us},{arrived:.3},{ts}")?;
            }
        }
        Ok(())
    }
}

/// Counters shared by the sender, the collector, the delivery callback and the progress line.
#[derive(Default)]
struct Live {
    /// Manifests handed to the producer.
    sent: AtomicU64,
    /// Manifests the broker acknowledged.
    delivered: AtomicU64,
    /// Manifests the broker refused.
    failed: AtomicU64,
    /// Distinct manifests with an output.
    received: AtomicU64,
    /// Probe outputs seen.
    probes: AtomicU64,
    /// p99 of the last second's outputs, µs (progress line).
    recent_p99_us: AtomicU64,
    /// Furthest the sender fell behind, µs.
    behind_max_us: AtomicU64,
    /// The first delivery error.
    first_error: OnceLock<String>,
}

/// Counts the harness producer's deliveries.
struct CountingContext {
    live: Arc<Live>,
}

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.live.delivered.fetch_add(1, Ordering::Relaxed),
            Err((e, _)) => {
                let _ = self.live.first_error.set(e.to_string());
                self.live.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// The timetable: manifest `seq` is due at `t0 + seq / rate`.
#[derive(Clone)]
struct Clock {
    /// Scheduled time of manifest 0; set once, just before the first send.
    t0: Arc<OnceLock<Instant>>,
    /// Nanoseconds between two scheduled sends.
    period_ns: f64,
}

impl Clock {
    fn due(&self, t0: Instant, seq: u64) -> Instant {
        t0 + Duration::from_nanos((seq as f64 * self.period_ns) as u64)
    }
}

/// What the collector saw.
struct Collected {
    /// Latencies of the measured window, µs.
    hist: Histogram<u64>,
    /// Outputs beyond the first per manifest.
    duplicated: u64,
    /// When the last output of a manifest arrived.
    last_at: Option<Instant>,
    /// Every manifest's first output (partition, latency µs, Kafka timestamp), by sequence number.
    arrivals: Vec<Option<Arrival>>,
}

pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).unwrap_or_else(|_| unreachable!())
}

/// Runs `spec` against `target`; see the module documentation.
pub fn run(target: &Target, templates: &Templates, spec: &RunSpec) -> anyhow::Result<RunStats> {
    let total = ((spec.warmup + spec.duration).as_secs_f64() * spec.rate).round() as u64;
    let warmup_n = (spec.warmup.as_secs_f64() * spec.rate).round() as u64;
    if total == 0 {
        bail!("nothing to send at {} /s", spec.rate);
    }
    let live = Arc::new(Live::default());
    let clock = Clock {
        t0: Arc::new(OnceLock::new()),
        period_ns: 1e9 / spec.rate,
    };

    // The collector reads every output topic from the beginning as a downstream consumer would (the
    // service's consumer properties, fetch.wait.max.ms etc.; read_committed, so exactly-once latency
    // includes the wait for the commit).
    let (consumer, partitions) = target.output_reader("collector")?;
    crate::kafka::assign_from_beginning(&consumer, &partitions)?;
    let stop = Arc::new(AtomicBool::new(false));
    let collector = {
        let (live, clock, stop) = (live.clone(), clock.clone(), stop.clone());
        std::thread::Builder::new()
            .name("collector".into())
            .spawn(move || collect(consumer, &live, &clock, total, warmup_n, &stop))?
    };

    let producer: Arc<ThreadedProducer<CountingContext>> = Arc::new(
        client_config(&target.config.kafka, Role::Loader)
            .create_with_context(CountingContext { live: live.clone() })
            .map_err(|e| anyhow!("creating the load producer: {e}"))?,
    );

    // Readiness: one probe per input partition; the clock starts once every probe has its output
    // (the consumer group has its assignment and every path is connected).
    for p in 0..spec.partitions {
        let key = format!("PROBE-{p}");
        producer
            .send(
                BaseRecord::<'_, [u8], [u8]>::to(&target.input)
                    .partition(p)
                    .key(key.as_bytes())
                    .payload(b"probe"),
            )
            .map_err(|(e, _)| anyhow!("sending a probe: {e}"))?;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while live.probes.load(Ordering::Relaxed) < spec.partitions as u64 {
        if Instant::now() > deadline || target.failed() {
            stop.store(true, Ordering::Relaxed);
            let _ = collector.join();
            bail!("no output for the readiness probes (system not running?)");
        }
        std::thread::sleep(Duration::from_millis(5));
    }

    let cpu_at_start = crate::cpu::snapshot();
    let t0 = Instant::now() + Duration::from_millis(20);
    let t0_unix_ms = borderlane::clock::unix_nanos() as f64 / 1e6 + 20.0;
    let _ = clock.t0.set(t0);
    let label = format!("{} {:.0}/s", target.kind.as_str(), spec.rate);
    let planned_s = (spec.warmup + spec.duration).as_secs_f64();
    let mut progress = Progress::new(spec.progress, label, t0, planned_s);
    // Scoped so the sender can borrow the templates; the progress line runs on this thread meanwhile.
    let sent_result = std::thread::scope(|s| -> anyhow::Result<()> {
        let h = std::thread::Builder::new()
            .name("sender".into())
            .spawn_scoped(s, || {
                send(
                    &producer,
                    &target.input,
                    templates,
                    &clock,
                    t0,
                    total,
                    &live,
                )
            })?;
        while !h.is_finished() {
            std::thread::sleep(Duration::from_millis(100));
            progress.tick(&live, false);
        }
        h.join().map_err(|_| anyhow!("the sender panicked"))?
    });
    if let Err(e) = sent_result {
        stop.store(true, Ordering::Relaxed);
        let _ = collector.join();
        return Err(e);
    }
    let backlog_at_end_of_send = live
        .sent
        .load(Ordering::Relaxed)
        .saturating_sub(live.received.load(Ordering::Relaxed));

    // Manifests still undelivered after this are reported as `undelivered`.
    if let Err(e) = producer.flush(Duration::from_secs(60)) {
        eprintln!("loadtest: flushing the load producer: {e}");
    }
    let probes = spec.partitions as u64;
    let drain_deadline = Instant::now() + spec.drain_timeout;
    loop {
        let delivered = live
            .delivered
            .load(Ordering::Relaxed)
            .saturating_sub(probes);
        if live.received.load(Ordering::Relaxed) >= delivered || Instant::now() > drain_deadline {
            break;
        }
        if target.failed() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        progress.tick(&live, false);
    }
    progress.tick(&live, true);
    let ended = Instant::now();
    let cpu = cpu_at_start
        .zip(crate::cpu::snapshot())
        .map(|(a, b)| crate::cpu::between(&a, &b));
    stop.store(true, Ordering::Relaxed);
    let c = collector
        .join()
        .map_err(|_| anyhow!("the collector panicked"))?;

    let sent = live.sent.load(Ordering::Relaxed);
    let produce_failed = live.failed.load(Ordering::Relaxed);
    if let Some(e) = live.first_error.get() {
        eprintln!("loadtest: {produce_failed} manifests not accepted by the broker, first: {e}");
    }
    let received = live.received.load(Ordering::Relaxed);
    // The probes were delivered too, and are not manifests.
    let delivered = live
        .delivered
        .load(Ordering::Relaxed)
        .saturating_sub(probes);
    let ms = |us: u64| us as f64 / 1000.0;
    let h = &c.hist;
    let q = |q: f64| {
        if h.is_empty() {
            0.0
        } else {
            ms(h.value_at_quantile(q))
        }
    };
    let throughput_per_s = match c.last_at {
        Some(last) if last > t0 => received as f64 / (last - t0).as_secs_f64(),
        _ => 0.0,
    };
    Ok(RunStats {
        target: target.kind,
        offered_rate: spec.rate,
        sent,
        produce_failed,
        undelivered: sent.saturating_sub(delivered + produce_failed),
        received,
        lost: delivered.saturating_sub(received),
        duplicated: c.duplicated,
        measured: h.len(),
        throughput_per_s,
        p50_ms: q(0.50),
        p90_ms: q(0.90),
        p99_ms: q(0.99),
        p999_ms: q(0.999),
        max_ms: if h.is_empty() { 0.0 } else { ms(h.max()) },
        mean_ms: if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
        near_500ms: h.count_between(450_000, 550_000),
        near_1s: h.count_between(950_000, 1_050_000),
        backlog_at_end_of_send,
        sender_max_behind_ms: ms(live.behind_max_us.load(Ordering::Relaxed)),
        elapsed_s: (ended - t0).as_secs_f64(),
        commits: crate::target::CommitStats::default(),
        pipeline_steps: Vec::new(),
        broker_gc: None,
        cpu,
        arrivals: Arrivals {
            rate: spec.rate,
            t0_unix_ms,
            measured_from: warmup_n,
            by_seq: c.arrivals,
        },
    })
}

/// The sender thread: manifest `seq` at `t0 + seq / rate`, all overdue ones at once.
fn send(
    producer: &ThreadedProducer<CountingContext>,
    topic: &str,
    templates: &Templates,
    clock: &Clock,
    t0: Instant,
    total: u64,
    live: &Live,
) -> anyhow::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    let mut behind_max = Duration::ZERO;
    let mut seq = 0u64;
    while seq < total {
        let due = clock.due(t0, seq);
        let now = Instant::now();
        if now < due {
            std::thread::sleep(due - now);
            continue;
        }
        behind_max = behind_max.max(now - due);
        templates.fill(seq, &mut buf);
        let key = payload::id(seq);
        let mut record: BaseRecord<'_, [u8], [u8]> =
            BaseRecord::to(topic).key(&key[..]).payload(&buf[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err((e, _)) => bail!("sending manifest {seq}: {e}"),
            }
        }
        seq += 1;
        live.sent.store(seq, Ordering::Relaxed);
        if seq & 255 == 0 {
            live.behind_max_us
                .fetch_max(behind_max.as_micros() as u64, Ordering::Relaxed);
        }
    }
    live.behind_max_us
        .fetch_max(behind_max.as_micros() as u64, Ordering::Relaxed);
    Ok(())
}

/// The collector thread; see the module documentation.
fn collect(
    consumer: BaseConsumer,
    live: &Live,
    clock: &Clock,
    total: u64,
    warmup_n: u64,
    stop: &AtomicBool,
) -> Collected {
    let mut hist = histogram();
    let mut recent = histogram();
    let mut recent_at = Instant::now();
    let mut arrivals = vec![None; total as usize];
    let mut duplicated = 0u64;
    let mut received = 0u64;
    let mut last_at = None;
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(20)) {
            Some(Ok(m)) => {
                let now = Instant::now();
                let key = m.key().unwrap_or_default();
                if key.starts_with(PROBE) {
                    live.probes.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let (Some(seq), Some(t0)) = (payload::parse_id(key), clock.t0.get()) else {
                    continue;
                };
                if seq >= total {
                    continue;
                }
                if arrivals[seq as usize].is_some() {
                    duplicated += 1;
                    continue;
                }
                received += 1;
                live.received.store(received, Ordering::Relaxed);
                last_at = Some(now);
                let us = now
                    .saturating_duration_since(clock.due(*t0, seq))
                    .as_micros() as u64;
                recent.saturating_record(us.max(1));
                arrivals[seq as usize] =
                    Some(Arrival::new(m.partition(), us).with_output_ts(m.timestamp().to_millis()));
                if seq >= warmup_n {
                    hist.saturating_record(us.max(1));
                }
            }
            Some(Err(e)) => eprintln!("loadtest: collector: {e}"),
            None => {}
        }
        if recent_at.elapsed() >= Duration::from_secs(1) {
            recent_at = Instant::now();
            live.recent_p99_us
                .store(recent.value_at_quantile(0.99), Ordering::Relaxed);
            recent.reset();
        }
    }
    Collected {
        hist,
        duplicated,
        last_at,
        arrivals,
    }
}

/// The progress line: once a second, on one line (`\r`) on a terminal, else one line per second.
struct Progress {
    /// Print at all.
    enabled: bool,
    /// Rewrite one line instead of printing many.
    tty: bool,
    /// What runs.
    label: String,
    /// Clock start.
    t0: Instant,
    /// Scheduled length of the send phase, seconds.
    planned_s: f64,
    /// Last print.
    printed_at: Instant,
}

impl Progress {
    fn new(enabled: bool, label: String, t0: Instant, planned_s: f64) -> Progress {
        Progress {
            enabled,
            tty: std::io::stderr().is_terminal(),
            label,
            t0,
            planned_s,
            printed_at: Instant::now(),
        }
    }

    fn tick(&mut self, live: &Live, last: bool) {
        if !self.enabled || (!last && self.printed_at.elapsed() < Duration::from_secs(1)) {
            return;
        }
        self.printed_at = Instant::now();
        let sent = live.sent.load(Ordering::Relaxed);
        let recv = live.received.load(Ordering::Relaxed);
        let line = format!(
            "[{}] {:5.1}/{:.0} s  sent {sent}  received {recv}  backlog {}  p99(last s) {:.1} ms",
            self.label,
            self.t0.elapsed().as_secs_f64(),
            self.planned_s,
            sent.saturating_sub(recv),
            live.recent_p99_us.load(Ordering::Relaxed) as f64 / 1000.0
        );
        if self.tty {
            eprint!("\r{line}\x1b[K{}", if last { "\n" } else { "" });
        } else {
            eprintln!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CSV has a line per manifest with an output, its columns in the header's order, the output's
    /// Kafka timestamp as given (0 without one).
    #[test]
    fn csv_lines_carry_each_outputs_timestamp() {
        let arrivals = Arrivals {
            rate: 1000.0,
            t0_unix_ms: 1_700_000_000_000.0,
            measured_from: 0,
            by_seq: vec![
                Some(Arrival::new(2, 1500).with_output_ts(Some(1_700_000_000_001))),
                None,
                Some(Arrival::new(0, 3000).with_output_ts(None)),
            ],
        };
        let mut csv = Vec::new();
        arrivals.write_csv(&mut csv).unwrap();
        assert_eq!(
            String::from_utf8(csv).unwrap(),
            "seq,due_ms,partition,latency_us,arrived_unix_ms,output_ts_ms\n\
             0,0.000,2,1500,1700000000001.500,1700000000001\n\
             2,2.000,0,3000,1700000000005.000,0\n"
        );
    }
}
