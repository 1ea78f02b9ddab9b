//! Exam outcomes against real decisions: the enrichment the service attaches (the examined shipment's
//! parties and the decision's selection causes) and its round trip through the record form.

use borderlane_core::outcome::{causes_of, parse_outcome, Cause, Form, Outcome};
use borderlane_core::{decide, process, CompiledPolicy, Decision, Limits, PartnerTable, Role};
use serde_json::Value as Json;

const DEFAULT_POLICY: &str = include_str!("../../../config/policy.toml");
const MANIFEST: &str = include_str!("golden/bases/south_truck.json");

fn decide_json(policy: &CompiledPolicy, m: &Json) -> Decision {
    let bytes = serde_json::to_vec(m).unwrap();
    process(policy, &PartnerTable::new(), &bytes, &Limits::default())
        .unwrap()
        .1
}

/// The base manifest with a second shipment from another importer, shipper and manufacturer.
fn consolidated() -> Json {
    let mut m: Json = serde_json::from_str(MANIFEST).unwrap();
    let mut second = m["shipments"][0].clone();
    second["shipment_id"] = "S2".into();
    second["importer"]["id"] = "77-7777777ZZ".into();
    second["shipper"]["id"] = "SHP-2".into();
    second["manufacturer"]["id"] = "MXOTRO1200TIJ".into();
    second["broker"]["id"] = "A1B".into();
    m["shipments"].as_array_mut().unwrap().push(second);
    m
}

fn request(shipment: Option<&str>) -> Outcome {
    let mut r = serde_json::json!({
        "manifest_id": "GOLD-SOUTH-0001", "revision": 0, "result": "seizure", "findings": ["NARCOTICS"],
        "examined_at": "2026-11-28T07:00:00Z", "port": "2304", "officer": "officer-1"
    });
    if let Some(s) = shipment {
        r["shipment_id"] = s.into();
    }
    parse_outcome(
        &serde_json::to_vec(&r).unwrap(),
        &Limits::default(),
        Form::Request,
    )
    .unwrap()
}

#[test]
fn a_shipment_outcome_counts_against_that_shipments_parties_and_the_carrier() {
    let policy = CompiledPolicy::from_toml(DEFAULT_POLICY).unwrap();
    let d = decide_json(&policy, &consolidated());
    let mut o = request(Some("S2"));
    o.enrich(&d, &policy.doc).unwrap();
    let got: Vec<(Role, &str)> = o.parties.iter().map(|p| (p.role, p.id.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (Role::Importer, "77-7777777ZZ"),
            (Role::Carrier, "ABCD"),
            (Role::Manufacturer, "MXOTRO1200TIJ"),
            (Role::Shipper, "SHP-2"),
            (Role::Broker, "A1B"),
        ]
    );
    assert!(o
        .parties
        .iter()
        .all(|p| p.shipment_id.as_deref().is_none_or(|s| s == "S2")));
    // Without a shipment the outcome covers every shipment: both importers.
    let mut all = request(None);
    all.enrich(&d, &policy.doc).unwrap();
    assert_eq!(all.parties.len(), 9);
    // The enriched record is a complete record: it parses back in the record form.
    let bytes = serde_json::to_vec(&o).unwrap();
    assert_eq!(
        parse_outcome(&bytes, &Limits::default(), Form::Record).unwrap(),
        o
    );
}

#[test]
fn an_unknown_shipment_or_another_decision_is_refused() {
    let policy = CompiledPolicy::from_toml(DEFAULT_POLICY).unwrap();
    let d = decide_json(&policy, &consolidated());
    let e = request(Some("S9")).enrich(&d, &policy.doc).unwrap_err();
    assert_eq!(e.path, "shipment_id");
    let mut other = request(None);
    other.revision = 3;
    assert_eq!(
        other.enrich(&d, &policy.doc).unwrap_err().path,
        "manifest_id"
    );
}

#[test]
fn causes_follow_the_decision() {
    let policy = CompiledPolicy::from_toml(DEFAULT_POLICY).unwrap();
    let base: Json = serde_json::from_str(MANIFEST).unwrap();
    let released = decide_json(&policy, &base);
    assert!(!released.action.is_exam() || released.random_exam);
    if !released.action.is_exam() {
        assert!(causes_of(&released, &policy.doc).is_empty());
    }
    // A watched importer: watch list (and the band, if its points reach an exam band).
    let mut watched = base.clone();
    watched["shipments"][0]["importer"]["id"] = "99-0000666XX".into();
    let d = decide_json(&policy, &watched);
    let causes = causes_of(&d, &policy.doc);
    assert!(causes.contains(&Cause::WatchList), "{causes:?}");
    // A sanctioned origin with heavy commodity risk: the band, escalated far above the high threshold.
    let mut risky = base.clone();
    risky["shipments"][0]["origin_country"] = "KP".into();
    risky["shipments"][0]["commodities"][0]["hts"] = "930200".into();
    risky["shipments"][0]["commodities"][0]["description"] = "parts".into();
    risky["equipment"][0]["seals"] = serde_json::json!([]);
    let m: borderlane_core::Manifest = serde_json::from_value(risky).unwrap();
    let d = decide(&policy, &PartnerTable::new(), &m);
    let causes = causes_of(&d, &policy.doc);
    assert!(
        causes.contains(&Cause::Band),
        "{causes:?} score {}",
        d.score
    );
    let (_, action) = policy.doc.band_action(d.score);
    assert_eq!(
        causes.contains(&Cause::Escalation),
        action > policy.doc.actions.high,
        "{causes:?} score {}",
        d.score
    );
}
