//! Wire contract 3 with the learned model on: raising a party's CTPAT standing never raises the score and
//! never makes the action more severe (`config/policy-kcs.toml`, KCS manifests from the test sample), and
//! the shipped `[model] curve` only adds points, non-decreasing in the probability.

use std::path::Path;
use std::sync::LazyLock;

use borderlane::learn::kcs::{convert, Report, Row};
use borderlane::load::policy::load;
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::score::decide;
use borderlane_core::table::PartnerTable;
use borderlane_core::wire::{parse_partner, Limits, Manifest};
use proptest::prelude::*;

const SAMPLE: &str = include_str!("data/kcs-sample.csv");

static MANIFESTS: LazyLock<Vec<Manifest>> = LazyLock::new(manifests);
static POLICY: LazyLock<CompiledPolicy> = LazyLock::new(policy);

fn manifests() -> Vec<Manifest> {
    let mut reader = csv::Reader::from_reader(SAMPLE.as_bytes());
    let mut report = Report::default();
    reader
        .deserialize::<Row>()
        .map(|r| convert(&r.unwrap(), &mut report).unwrap().0)
        .collect()
}

fn policy() -> CompiledPolicy {
    load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy-kcs.toml")).unwrap()
}

/// Standing levels: 0 none, 1 certified, 2 validated tier 2, 3 validated tier 3.
fn partner(id: &str, entity: &str, kind: &str, level: u8) -> Option<String> {
    let standing = match level {
        0 => return None,
        1 => r#""status":"certified","tier":1,"certified_on":"2018-01-01""#.to_string(),
        l => format!(
            r#""status":"validated","tier":{l},"certified_on":"2018-01-01","validated_on":"2019-06-01""#
        ),
    };
    Some(format!(
        r#"{{"partner_id":"P-{entity}-{id}","entity":"{entity}","identifiers":[{{"kind":"{kind}","value":"{id}"}}],{standing}}}"#
    ))
}

/// A partner table giving the manifest's importer, seller (shipper and manufacturer), broker and carrier
/// the standings `levels`.
fn table(m: &Manifest, levels: [u8; 4]) -> PartnerTable {
    let t = PartnerTable::new();
    let s = &m.shipments[0];
    let ids = [
        (
            s.importer.as_ref().map(|p| p.id.to_string()),
            "importer",
            "ior",
        ),
        (
            s.manufacturer.as_ref().map(|p| p.id.to_string()),
            "manufacturer",
            "mid",
        ),
        (
            s.broker.as_ref().map(|p| p.id.to_string()),
            "broker",
            "filer_code",
        ),
        (
            m.carrier.as_ref().map(|c| c.scac.to_string()),
            "air_carrier",
            "scac",
        ),
    ];
    for ((id, entity, kind), level) in ids.into_iter().zip(levels) {
        if let Some(p) = id.and_then(|id| partner(&id, entity, kind, level)) {
            t.upsert(parse_partner(p.as_bytes(), &Limits::default()).unwrap());
        }
    }
    t
}

#[test]
fn the_model_fires_on_the_sample() {
    // Otherwise the property below would not exercise the model at all.
    let fired = MANIFESTS
        .iter()
        .map(|m| decide(&POLICY, &PartnerTable::new(), m))
        .filter(|d| {
            d.reasons
                .iter()
                .any(|r| r.rule.as_str() == "model.risk" && r.points >= 100)
        })
        .count();
    assert!(
        fired >= 10,
        "the model gave ≥ 100 points to only {fired} of 400 sample manifests"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn raising_a_standing_never_raises_score_or_action(
        row in 0usize..400,
        levels in proptest::array::uniform4(0u8..=3),
        role in 0usize..4,
    ) {
        let policy = &*POLICY;
        let m = &MANIFESTS[row];
        let mut raised = levels;
        raised[role] = (raised[role] + 1).min(3);
        let before = decide(policy, &table(m, levels), m);
        let after = decide(policy, &table(m, raised), m);
        prop_assert!(after.score <= before.score, "score {} → {}", before.score, after.score);
        prop_assert!(after.action <= before.action, "action {:?} → {:?}", before.action, after.action);
        let model = |d: &borderlane_core::Decision| {
            d.reasons.iter().find(|r| r.rule.as_str() == "model.risk").map(|r| (r.points, r.detail.to_string()))
        };
        prop_assert_eq!(model(&before), model(&after));
    }
}

#[test]
fn the_shipped_curve_adds_non_negative_points_non_decreasing_in_probability() {
    let rule = POLICY.model.as_ref().expect("policy-kcs.toml has a model");
    assert!(POLICY.doc.model.as_ref().unwrap().curve.is_some());
    let mut prev = 0;
    for i in 0..=200_000 {
        let p = f64::from(i) / 200_000.0;
        let points = rule.points(p);
        assert!(points >= prev, "points fall at p = {p}: {prev} → {points}");
        prev = points;
    }
    assert_eq!(rule.points(0.0), 0);
    assert!(rule.points(1.0) > 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn any_valid_curve_is_monotone_and_non_negative(
        p0 in 0.001f64..0.999,
        scale in 0.1f64..500.0,
        max_points in 0i32..2_000,
        a in 0.0f64..=1.0,
        b in 0.0f64..=1.0,
    ) {
        let rule = borderlane_core::policy::ModelRule {
            model: POLICY.model.as_ref().unwrap().model.clone(),
            bands: borderlane_core::policy::curve_bands(p0, scale, max_points),
        };
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let (pl, ph) = (rule.points(lo), rule.points(hi));
        prop_assert!(pl >= 0 && ph <= max_points);
        prop_assert!(pl <= ph, "p {lo} → {pl}, p {hi} → {ph}");
    }
}
