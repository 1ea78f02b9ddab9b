//! Criterion bench of the outcome window's follower work: each decision record read back from the
//! `decisions` topic (`Examined::of_record`) and held in the window of recent decisions
//! (`DecisionWindow::insert`), which at the default `service.outcome_window.decisions` holds 200 000 and
//! lets the oldest go on every insert. With the officers' listener on, `serve` does this once per decision
//! it emits, on its decision-follower thread.
//!
//! Besides the times it prints what a full window holds on the heap (a counting allocator wraps the
//! system's): bytes asked for and blocks live, per decision held.
//!
//! `cargo bench --bench outcome_window` fills the default 200 000; the test run of the benches (`cargo test
//! --all-targets`) fills 2 000, so CI only checks that it runs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};
use std::time::Duration;

use borderlane::load::policy::default_policy;
use borderlane::service::outcomes::{DecisionWindow, Examined};
use borderlane::traffic::gen::{GenConfig, Generator, Record};
use borderlane_core::table::PartnerTable;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// The system allocator, counting the bytes and blocks live.
struct Counting;

static BYTES: AtomicIsize = AtomicIsize::new(0);
static BLOCKS: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        BYTES.fetch_add(l.size() as isize, Relaxed);
        BLOCKS.fetch_add(1, Relaxed);
        // SAFETY: as the caller's contract for `GlobalAlloc::alloc`.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        BYTES.fetch_sub(l.size() as isize, Relaxed);
        BLOCKS.fetch_sub(1, Relaxed);
        // SAFETY: `p` came from `alloc` above with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        BYTES.fetch_add(new as isize - l.size() as isize, Relaxed);
        // SAFETY: as the caller's contract for `GlobalAlloc::realloc`.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> (isize, isize) {
    (BYTES.load(Relaxed), BLOCKS.load(Relaxed))
}

fn held() -> usize {
    if std::env::args().any(|a| a == "--bench") {
        200_000
    } else {
        2_000
    }
}

const DAY_MS: i64 = 24 * 3600 * 1000;

fn benches(c: &mut Criterion) {
    let policy = default_policy();
    let generator = Generator::new(GenConfig::default(), &policy);
    let table = PartnerTable::new();
    for p in generator.partners() {
        table.upsert(p.clone());
    }
    // 20 000 decision records as `serve` writes them (with `decided_at`).
    let records: Vec<Vec<u8>> = (0..)
        .filter_map(|i| match generator.record(i) {
            Record::Good(m) => Some(m),
            Record::Bad { .. } => None,
        })
        .take(20_000)
        .map(|m| {
            let mut d = borderlane_core::score::decide(&policy, &table, &m);
            d.decided_at = Some(m.filed_at);
            let mut out = Vec::new();
            d.write_json(&mut out);
            out
        })
        .collect();
    let doc = &policy.doc;

    // A window filled to its bound; every later insert lets the oldest go. Each entry gets a revision of its
    // own, so the keys never repeat.
    let n = held();
    let window = DecisionWindow::new(n, Duration::from_secs(72 * 3600));
    let before = live();
    let mut revision = 0u32;
    let mut insert = |i: usize| {
        let (key, e) = Examined::of_record(&records[i % records.len()], doc).expect("a decision");
        window.insert((key.0, revision), e, DAY_MS, DAY_MS);
        revision += 1;
    };
    for i in 0..n {
        insert(i);
    }
    let after = live();
    eprintln!(
        "outcome window: {} decisions held, {:.0} bytes asked for and {:.2} blocks live a decision",
        window.len(),
        (after.0 - before.0) as f64 / n as f64,
        (after.1 - before.1) as f64 / n as f64,
    );

    let mut g = c.benchmark_group("outcomes");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(5));
    let mut i = 0usize;
    g.bench_function("of_record", |b| {
        b.iter(|| {
            i += 1;
            black_box(Examined::of_record(black_box(&records[i % records.len()]), doc).is_ok())
        })
    });
    let mut i = n;
    g.bench_function(format!("of_record_and_insert_{n}_held"), |b| {
        b.iter(|| {
            i += 1;
            insert(i);
        })
    });
    g.finish();
}

criterion_group!(outcome_window, benches);
criterion_main!(outcome_window);
