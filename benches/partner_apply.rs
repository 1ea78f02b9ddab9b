//! Criterion bench of the partner follower's own work on a table load: generated partner records (the
//! load generator's, as `loadtest --partner-load` produces them), three partitions, taken in batches of
//! the follower's size and parsed and applied by its `Applier` in the follower's rounds (a batch parsed
//! while the one before is applied; records parsed in parallel, each partition's applied in offset order,
//! partitions in parallel) into an empty table. What `loadtest
//! --partner-load` measures less the broker and librdkafka, so a change to parsing or indexing shows
//! without the Kafka run's spread.
//!
//! `cargo bench --bench partner_apply` loads 1 M partners (`PARTNER_BENCH_RECORDS` overrides); the test
//! run of the benches (`cargo test --all-targets`) 5 000, so CI only checks that it runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use borderlane::load::policy::default_policy;
use borderlane::service::kafka::partners::{Applier, Record, BATCH};
use borderlane::service::metrics::Metrics;
use borderlane::traffic::gen::{GenConfig, Generator};
use borderlane_core::table::PartnerTable;
use borderlane_core::wire::Limits;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Partitions of the bench's topic (the service's default).
const PARTITIONS: usize = 3;

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

/// `n` partner records as (key, JSON value); a generator's pool is about a third partners.
fn records(n: usize) -> Vec<(String, Vec<u8>)> {
    let policy = default_policy();
    let mut pool = n.saturating_mul(3).max(50);
    loop {
        let g = Generator::new(
            GenConfig {
                partners: pool,
                ..GenConfig::default()
            },
            &policy,
        );
        if g.partners().len() >= n {
            return g.partners()[..n]
                .iter()
                .map(|p| {
                    let value = serde_json::to_vec(p).expect("a partner serialises");
                    (p.partner_id.to_string(), value)
                })
                .collect();
        }
        pool = pool.saturating_mul(2);
    }
}

fn benches(c: &mut Criterion) {
    let n = size();
    let owned = records(n);
    // Spread evenly over the partitions (each key once), each partition's offsets counting up; polled
    // in arrival order.
    let mut next_offset = [0i64; PARTITIONS];
    let polled: Vec<Record<'_>> = owned
        .iter()
        .enumerate()
        .map(|(i, (key, value))| {
            let partition = i % PARTITIONS;
            let offset = next_offset[partition];
            next_offset[partition] += 1;
            Record {
                partition: partition as i32,
                offset,
                key: Some(key.as_bytes()),
                value: Some(value),
            }
        })
        .collect();

    let mut g = c.benchmark_group("partners");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    // Wall time, what the follower's load takes; and the process's CPU time over the same span, what it
    // costs the machine (the measure that decides a Kafka load on two CPUs shared with librdkafka and the
    // broker, and steadier on a shared machine than the wall time).
    g.bench_function("apply", |b| {
        b.iter_custom(|iters| load(&polled, iters, wall))
    });
    g.bench_function("apply_cpu", |b| {
        b.iter_custom(|iters| load(&polled, iters, process_cpu))
    });
    g.finish();
}

/// The wall clock.
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

/// `iters` loads of `polled` into a fresh table, each measured by `clock` (table set-up and drop outside).
fn load(polled: &[Record<'_>], iters: u64, clock: fn() -> Duration) -> Duration {
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
        // As the follower does: each round applies the batch parsed the round before while the
        // next is parsed (it polls meanwhile; here the batches are all in memory).
        let mut parsed = None;
        for batch in polled.chunks(BATCH) {
            let (next, ()) = applier.round(parsed.as_mut(), batch, || ());
            parsed = Some(next);
        }
        if let Some(last) = parsed.as_mut() {
            applier.apply_parsed(last);
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
