//! Criterion bench of the partner follower's own work on a table load: generated partner records (the
//! load generator's, as `loadtest --partner-load` produces them), three partitions, in the order a Kafka
//! fetch delivers them, taken in batches of the follower's size and parsed and applied by its `Applier` in
//! the follower's rounds (a batch parsed while the one before is applied; records parsed in parallel, each
//! partition's applied in offset order, partitions in parallel) into an empty table. The follower's part
//! of what `loadtest --partner-load` measures, without the broker, librdkafka and the polling sharing the
//! CPUs, so changes to parsing or indexing can be compared (alternating the builds) on their own.
//!
//! `cargo bench --bench partner_apply` loads 1 M partners (`PARTNER_BENCH_RECORDS` overrides); the test
//! run of the benches (`cargo test --all-targets`) 5 000, so CI only checks that it runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use borderlane::load::policy::default_policy;
use borderlane::service::kafka::partners::{Applier, Record, BATCH};
use borderlane::service::metrics::Metrics;
use borderlane::traffic::gen::{partner_records, GenConfig};
use borderlane_core::table::PartnerTable;
use borderlane_core::wire::Limits;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};

/// Partitions of the bench's topic (the service's default).
const PARTITIONS: usize = 3;

/// librdkafka's `max.partition.fetch.bytes` default: the most of one partition a fetch response holds.
const FETCH_BYTES: usize = 1 << 20;

fn size() -> usize {
    if let Some(n) = std::env::var("PARTNER_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    if std::env::args().any(|a| a == "--bench") {
        1_000_000
    } else {
        5_000
    }
}

fn benches(c: &mut Criterion) {
    let n = size();
    let owned = partner_records(&default_policy(), GenConfig::default().seed, n);
    // Each key once, spread evenly over the partitions, each partition's offsets counting up; polled in
    // the order a Kafka load delivers them: librdkafka hands over a fetch response's records partition by
    // partition, up to `max.partition.fetch.bytes` (1 MiB by default) of each, so the records come in
    // runs of ~1 MiB of one partition (a 4 096-record batch mostly one partition's, sometimes two).
    let mut lanes: Vec<Vec<&(String, Vec<u8>)>> = vec![Vec::new(); PARTITIONS];
    for (i, r) in owned.iter().enumerate() {
        lanes[i % PARTITIONS].push(r);
    }
    let mut polled: Vec<Record<'_>> = Vec::with_capacity(n);
    let mut next = [0usize; PARTITIONS];
    while polled.len() < n {
        for (partition, lane) in lanes.iter().enumerate() {
            let mut run = 0;
            while run < FETCH_BYTES && next[partition] < lane.len() {
                let (key, value) = lane[next[partition]];
                polled.push(Record {
                    partition: partition as i32,
                    offset: next[partition] as i64,
                    key: Some(key.as_bytes()),
                    value: Some(value),
                });
                run += key.len() + value.len();
                next[partition] += 1;
            }
        }
    }

    let mut g = c.benchmark_group("partners");
    g.throughput(Throughput::Elements(n as u64));
    // A load takes ~0.5 s: ten samples of one load each.
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(10));
    // The load's wall time in the follower's rounds; the process's CPU time in a separate run of the same
    // loads (what it costs two CPUs the load shares with librdkafka and the broker); and the wall time
    // with each batch parsed, then applied, no overlap (`Applier::apply`), for comparison; and the CPU
    // time of a load whose applier is not told how many records are coming (`Applier::expect`), so its
    // partner-id index grows by rehashing, as before the follower told it.
    g.bench_function("apply", |b| {
        b.iter_custom(|iters| load(&polled, iters, wall, Load::Rounds))
    });
    g.bench_function("apply_cpu", |b| {
        b.iter_custom(|iters| load(&polled, iters, process_cpu, Load::Rounds))
    });
    g.bench_function("apply_one_batch_at_a_time", |b| {
        b.iter_custom(|iters| load(&polled, iters, wall, Load::OneBatchAtATime))
    });
    g.bench_function("apply_cpu_not_expected", |b| {
        b.iter_custom(|iters| load(&polled, iters, process_cpu, Load::NotExpected))
    });
    g.finish();
}

/// The wall clock (monotonic, since the first call; only differences are used).
fn wall() -> Duration {
    use std::sync::OnceLock;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// CPU time of the whole process (every thread: the applier's pool included).
fn process_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// How a bench load applies its records.
#[derive(Clone, Copy, PartialEq)]
enum Load {
    /// As the follower's start-up read: in rounds, the applier told how many records are coming.
    Rounds,
    /// Each batch parsed, then applied ([`Applier::apply`]), the applier told as well.
    OneBatchAtATime,
    /// In rounds, the applier not told.
    NotExpected,
}

/// `iters` loads of `polled` into a fresh table, as `how` says, each measured by `clock` (table set-up
/// and drop outside).
fn load(polled: &[Record<'_>], iters: u64, clock: fn() -> Duration, how: Load) -> Duration {
    let n = polled.len();
    let mut spent = Duration::ZERO;
    for _ in 0..iters {
        let table = Arc::new(PartnerTable::new());
        let applier = Applier::new(
            table.clone(),
            Arc::new(Metrics::new()),
            Limits::default(),
            "bench-partners",
        )
        .expect("the applier's threads");
        let started = clock();
        if how != Load::NotExpected {
            applier.expect(n as u64);
        }
        // As the follower does: each round applies the batch parsed the round before while the
        // next is parsed (it polls meanwhile; here the batches are all in memory).
        if how != Load::OneBatchAtATime {
            applier.apply_in_rounds(polled.chunks(BATCH));
        } else {
            for batch in polled.chunks(BATCH) {
                applier.apply(batch);
            }
        }
        spent += clock() - started;
        assert_eq!(table.len(), n, "every partner applied");
        // The table's drop is not the load's.
        drop(applier);
        drop(table);
    }
    spent
}

criterion_group!(partner_apply, benches);
criterion_main!(partner_apply);
