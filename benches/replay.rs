//! Criterion bench of the what-if replay (`whatif::compare`): a window of parsed manifests decided under a
//! baseline and a candidate policy, tallied and compared — the work behind `borderlane replay` and
//! `POST /admin/policy/simulate`. The target is 1 M manifests with two policies in ≤ 2 s.
//!
//! `cargo bench --bench replay` uses 1 M generated manifests (`REPLAY_BENCH_MANIFESTS` overrides); the test
//! run of the benches (`cargo test --all-targets`) uses 2 000, so CI only checks that it runs.

use std::hint::black_box;
use std::time::Duration;

use borderlane::analysis::whatif::compare;
use borderlane::load::policy::{default_policy, DEFAULT_POLICY};
use borderlane::traffic::gen::{Generator, Record};
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::table::{PartnerTable, Partners};
use borderlane_core::wire::Manifest;
mod support;
use support::gen_config;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn size() -> usize {
    if let Some(n) = std::env::var("REPLAY_BENCH_MANIFESTS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    if std::env::args().any(|a| a == "--bench") {
        1_000_000
    } else {
        2_000
    }
}

fn benches(c: &mut Criterion) {
    let baseline = default_policy();
    // A threshold moved (the candidate's verdicts are concluded from the baseline's points), and a weight
    // moved (every rule evaluated under both; only the watch-list and vague-term matches are shared).
    let threshold = CompiledPolicy::from_toml(&DEFAULT_POLICY.replace("high = 190", "high = 200"))
        .expect("candidate policy");
    let weight = CompiledPolicy::from_toml(
        &DEFAULT_POLICY.replace("vague_points = 35", "vague_points = 40"),
    )
    .expect("candidate policy");
    assert!(baseline.same_points(&threshold) && !baseline.same_points(&weight));
    let n = size();
    let generator = Generator::new(gen_config(), &baseline);
    let table = PartnerTable::new();
    for p in generator.partners() {
        table.upsert(p.clone());
    }
    // As `borderlane replay` reads it (the admin API's simulation reads the live table: `_live`).
    let frozen = PartnerTable::new();
    for p in generator.partners() {
        frozen.upsert(p.clone());
    }
    let frozen = frozen.freeze();
    let manifests: Vec<Box<Manifest>> = (0..)
        .filter_map(|i| match generator.record(i) {
            Record::Good(m) => Some(m),
            Record::Bad { .. } => None,
        })
        .take(n)
        .collect();

    let mut g = c.benchmark_group("whatif");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(30));
    for (name, candidate, table) in [
        ("", &threshold, Partners::from(&frozen)),
        ("_weight", &weight, Partners::from(&frozen)),
        ("_live", &threshold, Partners::from(&table)),
    ] {
        g.bench_function(format!("compare_{n}_manifests_two_policies{name}"), |b| {
            b.iter(|| {
                compare(
                    black_box(&manifests),
                    table,
                    &baseline,
                    candidate,
                    20,
                    Some(0.03),
                    None,
                )
            })
        });
    }
    g.finish();
}

criterion_group!(replay, benches);
criterion_main!(replay);
