//! Criterion benches of the core path: parse, partner lookups, scoring, decision serialisation, and all
//! four together on ~1 KB manifests (the figure `docs/performance.md` quotes). `serialize` is serde_json
//! through the `Serialize` impls (the reference), `serialize_direct` the writer the adapters use; and the
//! counts-only path of the what-if replay (`lookups_facts`, `verdict`: the same joins and rules, no decision
//! built).
//!
//! Every bench above reads the same manifest again and again, so its bytes, its partners and every branch
//! the reader and the rules take are learned after a few rounds. `core_path_generated` and
//! `core_path_generated_1kb` take a different generated manifest each time (the load generator's and
//! `borderlane score`'s mix, ~1.7 KB on average, and its single-shipment ones, ~1.1 KB, against the
//! generator's partner table): the per-core rate traffic gets. The `core_path*` benches run what the
//! adapters run (`process_json`: the decision's JSON written without building a `Decision`);
//! `core_path_via_decision` writes the same bytes through a built `Decision`, for comparison. `cargo bench` cycles through 20 000 of them;
//! the test run of the benches (`cargo test --all-targets`) through 500, so CI only checks that they run.

use std::fmt::Write as _;
use std::hint::black_box;

use borderlane::load::policy::default_policy;
use borderlane::traffic::gen::{Generator, Record};
use borderlane_core::decision::ReasonText;
use borderlane_core::json;
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::resumption::Resumptions;
use borderlane_core::score::{process, process_json, resolve, resolve_facts, score, verdict_of};
use borderlane_core::table::PartnerTable;
use borderlane_core::wire::{parse_manifest, parse_manifest_serde, parse_partner, Limits};
mod support;
use support::gen_config;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const MANIFEST: &str = r#"{"manifest_id":"TRK-2304-20261128-000001","revision":0,"filed_at":"2026-11-28T04:00:00Z","mode":"truck","port_of_entry":"2304","estimated_arrival":"2026-11-28T05:00:00Z","carrier":{"scac":"ABCD","name":"Acme Transportes"},"conveyance":{"id":"3AKJHHDR5KSKG1234","trip_number":"ABCD0000123456"},"drivers":[{"name":"J. Perez","fast_card":"42712345600"}],"equipment":[{"id":"TRLU1234567","seals":[{"number":"MX0001234","iso17712":"H","affixed_by":"manufacturer"}]}],"shipments":[{"shipment_id":"ABCD0000123456-01","importer":{"id":"12-3456789AB","name":"Contoso Imports"},"consignee":{"id":"98-7654321CD","name":"Contoso DC 4"},"shipper":{"id":"SHP-MX-0042","name":"Maquila Norte","country":"MX"},"manufacturer":{"id":"MXMAQNOR1200TIJ","name":"Maquila Norte","country":"MX"},"broker":{"id":"A1B"},"origin_country":"MX","transit_countries":[],"commodities":[{"hts":"847130","description":"laptop computers","quantity":200,"unit":"CTN","weight_kg":1200.0,"value_usd":150000.0},{"hts":"850440","description":"power supplies","quantity":50,"unit":"CTN","weight_kg":300.0,"value_usd":9000.0}]}]}"#;

fn table() -> PartnerTable {
    let t = PartnerTable::new();
    let limits = Limits::default();
    for i in 0..100_000u32 {
        let p = format!(
            r#"{{"partner_id":"CTP-{i:07}","entity":"importer","identifiers":[{{"kind":"ior","value":"{:02}-{:07}AB"}}],"status":"certified","certified_on":"2019-03-04"}}"#,
            i % 100,
            i
        );
        t.upsert(parse_partner(p.as_bytes(), &limits).unwrap());
    }
    for p in [
        r#"{"partner_id":"CTP-0001234","entity":"importer","identifiers":[{"kind":"ior","value":"12-3456789AB"}],"status":"validated","tier":3,"certified_on":"2019-03-04","validated_on":"2023-06-01"}"#,
        r#"{"partner_id":"CTP-1000002","entity":"highway_carrier","identifiers":[{"kind":"scac","value":"ABCD"}],"status":"certified","certified_on":"2020-01-01"}"#,
        r#"{"partner_id":"CTP-1000003","entity":"manufacturer","identifiers":[{"kind":"mid","value":"MXMAQNOR1200TIJ"}],"status":"validated","tier":2,"certified_on":"2020-01-01","validated_on":"2024-01-01"}"#,
    ] {
        t.upsert(parse_partner(p.as_bytes(), &limits).unwrap());
    }
    t
}

fn benches(c: &mut Criterion) {
    let policy = default_policy();
    let table = table();
    let limits = Limits::default();
    let bytes = MANIFEST.as_bytes();
    let manifest = parse_manifest(bytes, &limits).unwrap();
    let parties = resolve(&policy, &table, &manifest);
    let decision = score(&policy, &manifest, parties.clone(), None);

    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse", |b| {
        b.iter(|| parse_manifest(black_box(bytes), &limits).unwrap())
    });
    // The serde_json reading alone (what `parse` was at 917ca7d; `parse` now tries the one-pass reader
    // first and falls back to this).
    g.bench_function("parse_serde", |b| {
        b.iter(|| parse_manifest_serde(black_box(bytes), &limits).unwrap())
    });
    g.bench_function("parse_sonic", |b| {
        b.iter(|| {
            sonic_rs::from_slice::<borderlane_core::wire::Manifest>(black_box(bytes)).unwrap()
        })
    });
    g.bench_function("parse_value", |b| {
        b.iter(|| serde_json::from_slice::<serde::de::IgnoredAny>(black_box(bytes)).unwrap())
    });
    g.bench_function("lookups", |b| {
        b.iter(|| resolve(&policy, &table, black_box(&manifest)))
    });
    g.bench_function("score", |b| {
        b.iter(|| score(&policy, black_box(&manifest), parties.clone(), None))
    });
    // The counts-only path (what-if replay): the same rules without building the decision.
    let facts = resolve_facts(&policy, &table, &manifest);
    g.bench_function("lookups_facts", |b| {
        b.iter(|| resolve_facts(&policy, &table, black_box(&manifest)))
    });
    // The same joins against the table frozen, as `score` and `replay` read it (no lock per lookup).
    let frozen = self::table().freeze();
    g.bench_function("lookups_facts_frozen", |b| {
        b.iter(|| resolve_facts(&policy, &frozen, black_box(&manifest)))
    });
    g.bench_function("verdict", |b| {
        b.iter(|| verdict_of(&policy, black_box(&manifest), &facts, None))
    });
    let mut out = Vec::with_capacity(4096);
    g.bench_function("serialize", |b| {
        b.iter(|| {
            out.clear();
            serde_json::to_writer(&mut out, black_box(&decision)).unwrap();
        })
    });
    g.bench_function("serialize_direct", |b| {
        b.iter(|| {
            out.clear();
            black_box(&decision).write_json(&mut out);
        })
    });
    // The reason texts alone: through their Display impls into an escaping fmt::Write (what serde's
    // collect_str does), and written directly (what write_json does).
    g.bench_function("reason_text_fmt", |b| {
        b.iter(|| {
            out.clear();
            for r in &black_box(&decision).reasons {
                let _ = write!(json::Escaper(&mut out), "{}", ReasonText(r));
            }
        })
    });
    g.bench_function("reason_text_direct", |b| {
        b.iter(|| {
            out.clear();
            for r in &black_box(&decision).reasons {
                r.write_text(&mut out);
            }
        })
    });
    // What `score` and `serve` run: the decision's JSON written without building the decision.
    g.bench_function("core_path", |b| {
        b.iter(|| {
            out.clear();
            json_path(&policy, &table, black_box(bytes), &limits, &mut out);
        })
    });
    // The same bytes through a built `Decision` (the adapters' path before `process_json`).
    g.bench_function("core_path_via_decision", |b| {
        b.iter(|| {
            out.clear();
            let (_, d) = process(&policy, &table, black_box(bytes), &limits).unwrap();
            d.write_json(&mut out);
        })
    });
    g.finish();
}

/// The core path as the adapters run it: parse, join, score and write the decision's JSON to `out`.
#[inline]
fn json_path(
    policy: &CompiledPolicy,
    table: &PartnerTable,
    bytes: &[u8],
    limits: &Limits,
    out: &mut Vec<u8>,
) {
    process_json(policy, table, bytes, limits, &Resumptions::NONE, None, out).unwrap();
}

/// How many generated manifests the `core_path_generated*` benches cycle through.
fn generated_count() -> usize {
    if std::env::args().any(|a| a == "--bench") || training_rounds() > 0 {
        20_000
    } else {
        500
    }
}

/// `BORDERLANE_BENCH_ROUNDS=N`: before criterion runs, every generated manifest goes through each
/// `core_path_generated*` routine N times — a fixed amount of work, where criterion's own iteration counts
/// follow the clock. `scripts/pgo-train` runs the bench this way, so that the counts it trains on do not
/// depend on how fast the instrumented build ran.
fn training_rounds() -> usize {
    std::env::var("BORDERLANE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The core path over a different generated manifest each time (see the module documentation).
fn generated(c: &mut Criterion) {
    let policy = default_policy();
    let limits = Limits::default();
    let generator = Generator::new(gen_config(), &policy);
    let table = generator.partner_table();
    let n = generated_count();
    let all: Vec<Vec<u8>> = (0..)
        .filter_map(|i| match generator.record(i) {
            good @ Record::Good(_) => Some(good.to_bytes()),
            Record::Bad { .. } => None,
        })
        .take(n)
        .collect();
    // About a third of generated manifests have one shipment; the bound only keeps a changed generator
    // from searching forever.
    let single: Vec<Vec<u8>> = (0..50 * n as u64)
        .filter_map(|i| match generator.record(i) {
            Record::Good(m) if m.shipments.len() == 1 => Some(Record::Good(m).to_bytes()),
            _ => None,
        })
        .take(n)
        .collect();
    assert_eq!(
        single.len(),
        n,
        "too few single-shipment manifests generated"
    );
    // Criterion's test mode (`cargo test --all-targets`) runs each routine once; every input is still
    // checked to go through the core path here.
    for bytes in all.iter().chain(&single) {
        if let Err(e) = process(&policy, &table, bytes, &limits) {
            panic!("a generated manifest was refused: {e:?}");
        }
    }
    let mut out = Vec::with_capacity(4096);
    for inputs in [&all, &single] {
        for _ in 0..training_rounds() {
            for bytes in inputs {
                out.clear();
                json_path(&policy, &table, black_box(bytes), &limits, &mut out);
            }
        }
    }
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(1));
    for (name, inputs) in [
        ("core_path_generated", &all),
        ("core_path_generated_1kb", &single),
    ] {
        let mut next = inputs.iter().cycle();
        g.bench_function(name, |b| {
            b.iter(|| {
                let bytes = next.next().expect("a generated manifest");
                out.clear();
                json_path(&policy, &table, black_box(bytes), &limits, &mut out);
            })
        });
    }
    g.finish();
}

criterion_group!(core, benches, generated);
criterion_main!(core);
