//! The what-if report on a small hand-checked case: three manifests, a candidate policy that raises the
//! medium band, and a threshold suggestion; and the same case judged against recorded exam results. And
//! the changed-decision sample of generated traffic: the least manifest ids among all changed decisions,
//! whatever the thread count.

use borderlane::analysis::whatif::{compare, compare_with, Options, Results};
use borderlane_core::decision::ExamResult;
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::score::Lookups;
use borderlane_core::table::PartnerTable;
use borderlane_core::wire::{parse_manifest, parse_partner, Limits, Manifest};

const BASE: &str = r#"{"manifest_id":"M","filed_at":"2026-11-28T04:00:00Z","mode":"truck","port_of_entry":"2304",
 "carrier":{"scac":"ABCD"},"drivers":[{"name":"J. Perez","fast_card":"42712345600"}],
 "equipment":[{"id":"TRLU1234567","seals":[{"number":"S1","iso17712":"H","affixed_by":"manufacturer"}]}],
 "shipments":[{"shipment_id":"S-01","importer":{"id":"IMP"},"origin_country":"ORIGIN",
   "commodities":[{"hts":"HTS","description":"DESC","weight_kg":100.0,"value_usd":1000.0}]}]}"#;

fn manifest(id: &str, importer: &str, origin: &str, hts: &str, desc: &str) -> Manifest {
    let text = BASE
        .replace("\"M\"", &format!("\"{id}\""))
        .replace("IMP", importer)
        .replace("ORIGIN", origin)
        .replace("HTS", hts)
        .replace("DESC", desc);
    parse_manifest(text.as_bytes(), &Limits::default()).unwrap()
}

fn policy(text: &str) -> CompiledPolicy {
    // No random selection, so the hand computation is exact.
    let text = text.replace(
        "rates.truck = { non_partner = 0.03, certified = 0.015 }",
        "rates.truck = { non_partner = 0.0, certified = 0.0 }",
    );
    CompiledPolicy::from_toml(&text).unwrap()
}

struct Case {
    baseline: CompiledPolicy,
    candidate: CompiledPolicy,
    table: PartnerTable,
    manifests: Vec<Manifest>,
}

fn case() -> Case {
    let default = borderlane::load::policy::DEFAULT_POLICY;
    let baseline = policy(default);
    // Non-creditable rules promise a document review, so their points rise with the medium band (validation
    // refuses a floor the points alone cannot reach); none of them fires on these manifests.
    let candidate = policy(
        &default
            .replace("medium = 100\n", "medium = 120\n")
            .replace("missing_points = 100\n", "missing_points = 120\n")
            .replace(
                "{ points = 100, why = \"comprehensively",
                "{ points = 120, why = \"comprehensively",
            )
            .replace(
                "{ points = 100, why = \"embargoed",
                "{ points = 120, why = \"embargoed",
            ),
    );
    let table = PartnerTable::new();
    for p in [
        r#"{"partner_id":"CTP-1","entity":"importer","identifiers":[{"kind":"ior","value":"12-3456789AB"}],"status":"validated","tier":3,"certified_on":"2019-03-04","validated_on":"2024-06-01"}"#,
        r#"{"partner_id":"CTP-2","entity":"highway_carrier","identifiers":[{"kind":"scac","value":"ABCD"}],"status":"certified","certified_on":"2020-01-01"}"#,
    ] {
        table.upsert(parse_partner(p.as_bytes(), &Limits::default()).unwrap());
    }
    let manifests = vec![
        // heading 8471 +10, validated tier-3 importer -150, certified carrier -25 = -165: release.
        manifest("M1", "12-3456789AB", "MX", "847130", "laptop computers"),
        // origin CO +45, heading 9302 +90, carrier -25 = 110: document review; release under medium = 120.
        manifest("M2", "99-0000001ZZ", "CO", "930200", "pistols"),
        // the same +35 for a vague description = 145: document review under both.
        manifest("M3", "99-0000001ZZ", "CO", "930200", "FAK"),
    ];
    Case {
        baseline,
        candidate,
        table,
        manifests,
    }
}

#[test]
fn hand_checked_report() {
    let Case {
        baseline,
        candidate,
        table,
        manifests,
    } = case();
    let r = compare(
        &manifests,
        &table,
        &baseline,
        &candidate,
        10,
        Some(0.34),
        None,
    );
    assert_eq!(r.manifests, 3);
    assert!((r.baseline.exam_rate - 2.0 / 3.0).abs() < 1e-9);
    assert!((r.candidate.exam_rate - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(r.changed, 1);
    assert_eq!(
        r.changed_by_transition.get("document_review -> release"),
        Some(&1)
    );
    assert_eq!(r.sample.len(), 1);
    assert_eq!(r.sample[0].manifest_id, "M2");
    assert_eq!(r.sample[0].baseline["score"], 110);
    assert_eq!(r.sample[0].candidate["action"], "release");
    let none_b = r.baseline.by_importer_standing["none"];
    let none_c = r.candidate.by_importer_standing["none"];
    assert_eq!((none_b.total, none_b.exams, none_c.exams), (2, 2, 1));
    assert_eq!(r.baseline.by_importer_standing["validated_tier3"].exams, 0);
    assert_eq!(r.baseline.by_port["2304"].total, 3);
    // One high-risk exam out of three: the threshold is the top score.
    let t = r.threshold.clone().unwrap();
    assert_eq!(
        (t.high_threshold, t.forced, t.below_medium),
        (145, 0, false)
    );
    assert!((t.achieved_rate - 1.0 / 3.0).abs() < 1e-9);
    // The HTML report names both policies and draws the charts.
    let html = borderlane::analysis::whatif::render_html(&r);
    assert!(html.contains(&*baseline.version) && html.contains("<svg"));
}

#[test]
fn judged_against_recorded_exam_results() {
    let c = case();
    let results: Results = [
        // Released under both policies: a known violation both would miss.
        (("M1".to_string(), 0), ExamResult::Discrepancy),
        // Examined by the baseline only (document review -> release): the candidate releases a seizure.
        (("M2".to_string(), 0), ExamResult::Seizure),
        // Examined under both, nothing found.
        (("M3".to_string(), 0), ExamResult::NoDiscrepancy),
        // Another revision: no manifest of the window, not counted.
        (("M3".to_string(), 1), ExamResult::Seizure),
    ]
    .into();
    let r = compare_with(
        &c.manifests,
        Lookups::new(&c.table, None),
        &c.baseline,
        &c.candidate,
        &Options {
            sample_size: 10,
            results: Some(&results),
            ..Options::default()
        },
    );
    let k = r.known_results.clone().expect("judged");
    assert_eq!((k.with_result.exams, k.with_result.hits), (3, 2));
    assert_eq!(
        (k.baseline.examined.exams, k.baseline.examined.hits),
        (2, 1)
    );
    assert_eq!(k.baseline.hits_released, 1);
    assert_eq!(
        (k.candidate.examined.exams, k.candidate.examined.hits),
        (1, 0)
    );
    assert_eq!(k.candidate.hits_released, 2);
    // Both exams are band exams (no watch list, random or history cause on these manifests).
    assert_eq!(k.baseline.by_cause.len(), 1);
    assert_eq!(
        (
            k.baseline.by_cause["band"].exams,
            k.baseline.by_cause["band"].hits
        ),
        (2, 1)
    );
    let text = borderlane::analysis::whatif::render(&r);
    assert!(text.contains("known violations released"), "{text}");
    assert!(text.contains("50.00% of 2"), "{text}");
    // Without results the report says nothing about them.
    let plain = compare(
        &c.manifests,
        &c.table,
        &c.baseline,
        &c.candidate,
        10,
        None,
        None,
    );
    assert!(plain.known_results.is_none());
    assert!(!borderlane::analysis::whatif::render(&plain).contains("recorded exam results"));
}

#[test]
fn the_sample_is_the_least_changed_ids_whatever_the_threads() {
    use borderlane::load::policy::{default_policy, DEFAULT_POLICY};
    use borderlane::traffic::gen::{GenConfig, Generator, Record};
    use borderlane_core::score::decide;

    let baseline = default_policy();
    // A new random-compliance seed changes decisions spread over the whole window.
    let candidate = policy(&DEFAULT_POLICY.replace("seed = 20261128", "seed = 5"));
    let g = Generator::new(
        GenConfig {
            seed: 3,
            partners: 2_000,
            ..GenConfig::default()
        },
        &baseline,
    );
    let table = g.partner_table();
    let manifests: Vec<Manifest> = (0..20_000)
        .filter_map(|i| match g.record(i) {
            Record::Good(m) => Some(*m),
            Record::Bad { .. } => None,
        })
        .collect();
    let mut changed: Vec<(String, usize)> = manifests
        .iter()
        .enumerate()
        .filter(|(_, m)| {
            let (b, c) = (decide(&baseline, &table, m), decide(&candidate, &table, m));
            b.action != c.action || b.lane != c.lane || b.front_of_line != c.front_of_line
        })
        .map(|(i, m)| (m.manifest_id.to_string(), i))
        .collect();
    changed.sort();
    assert!(changed.len() > 100, "{} changed", changed.len());
    let want: Vec<String> = changed.iter().take(20).map(|(id, _)| id.clone()).collect();
    for threads in [1, 2, 3, 8] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        let r = pool.install(|| compare(&manifests, &table, &baseline, &candidate, 20, None, None));
        assert_eq!(r.changed, changed.len() as u64, "{threads} threads");
        let got: Vec<String> = r.sample.iter().map(|c| c.manifest_id.clone()).collect();
        assert_eq!(got, want, "{threads} threads");
    }
}
