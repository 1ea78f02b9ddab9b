//! Criterion benches of the learned model: evaluation of one KCS manifest (features + every tree), the
//! explanation (Saabas attribution), and the whole core path (parse, score with the model, serialise) with
//! `config/policy-kcs.toml` — the figures `docs/model.md` quotes.

use std::hint::black_box;
use std::path::Path;

use borderlane::load::policy::{default_policy, load};
use borderlane_core::model::Line;
use borderlane_core::score::process;
use borderlane_core::table::PartnerTable;
use borderlane_core::wire::{parse_manifest, Limits};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// A converted KCS declaration (`borderlane import-kcs`), one line.
const KCS: &str = r#"{"manifest_id":"KCS-56839011","revision":0,"filed_at":"2021-01-01T00:00:00Z","mode":"air","port_of_entry":"4701","shipments":[{"shipment_id":"KCS-56839011-1","importer":{"id":"SHHZGSL"},"shipper":{"id":"249LO7A"},"manufacturer":{"id":"249LO7A"},"broker":{"id":"76NV527"},"origin_country":"CN","departure_country":"CN","commodities":[{"hts":"760711","description":"KCS declaration, HS6 760711","weight_kg":901.2,"value_usd":351.7735,"entry_type":"11","process_type":"B","import_use":"11","payment_type":"11","duty_rate":7.2,"duty_type":"FCN1","origin_preference":"E"}]}]}"#;

/// The core-path bench's US truck manifest (two commodity lines).
const TRUCK: &str = r#"{"manifest_id":"TRK-2304-20261128-000001","revision":0,"filed_at":"2026-11-28T04:00:00Z","mode":"truck","port_of_entry":"2304","estimated_arrival":"2026-11-28T05:00:00Z","carrier":{"scac":"ABCD","name":"Acme Transportes"},"conveyance":{"id":"3AKJHHDR5KSKG1234","trip_number":"ABCD0000123456"},"drivers":[{"name":"J. Perez","fast_card":"42712345600"}],"equipment":[{"id":"TRLU1234567","seals":[{"number":"MX0001234","iso17712":"H","affixed_by":"manufacturer"}]}],"shipments":[{"shipment_id":"ABCD0000123456-01","importer":{"id":"12-3456789AB","name":"Contoso Imports"},"consignee":{"id":"98-7654321CD","name":"Contoso DC 4"},"shipper":{"id":"SHP-MX-0042","name":"Maquila Norte","country":"MX"},"manufacturer":{"id":"MXMAQNOR1200TIJ","name":"Maquila Norte","country":"MX"},"broker":{"id":"A1B"},"origin_country":"MX","transit_countries":[],"commodities":[{"hts":"847130","description":"laptop computers","quantity":200,"unit":"CTN","weight_kg":1200.0,"value_usd":150000.0},{"hts":"850440","description":"power supplies","quantity":50,"unit":"CTN","weight_kg":300.0,"value_usd":9000.0}]}]}"#;

fn benches(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let with_model = load(&root.join("config/policy-kcs.toml")).expect("config/policy-kcs.toml");
    let without = default_policy();
    let rule = with_model.model.as_ref().expect("policy-kcs has a model");
    let model = &rule.model;
    let limits = Limits::default();
    let table = PartnerTable::new();
    let kcs = parse_manifest(KCS.as_bytes(), &limits).unwrap();
    let line = Line {
        manifest: &kcs,
        shipment: &kcs.shipments[0],
        commodity: &kcs.shipments[0].commodities[0],
    };

    let mut g = c.benchmark_group("model");
    g.throughput(Throughput::Elements(1));
    g.bench_function("eval_manifest", |b| {
        b.iter(|| model.riskiest_line(black_box(&kcs), &kcs.shipments[0]))
    });
    let mut x = [0f64; borderlane_core::model::MAX_FEATURES];
    g.bench_function("features_line", |b| {
        b.iter(|| model.features(black_box(&line), &mut x))
    });
    model.features(&line, &mut x);
    g.bench_function("trees_line", |b| b.iter(|| model.margin(black_box(&x))));
    g.bench_function("explain_line", |b| {
        b.iter(|| model.explain_line(black_box(&line)))
    });
    let mut out = Vec::with_capacity(4096);
    for (name, policy, bytes) in [
        ("core_path_kcs_with_model", &with_model, KCS),
        ("core_path_kcs_without_model", &without, KCS),
        ("core_path_truck_with_model", &with_model, TRUCK),
        ("core_path_truck_without_model", &without, TRUCK),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                let (_, d) = process(policy, &table, black_box(bytes.as_bytes()), &limits).unwrap();
                serde_json::to_writer(&mut out, &d).unwrap();
            })
        });
    }
    g.finish();
}

criterion_group!(model, benches);
criterion_main!(model);
