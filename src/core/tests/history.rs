//! Properties of party history (policy `[history]`): more discrepancies or seizures never lower a score
//! (monotone), a replaced outcome never counts twice, and a decision read as of a watermark is exactly the
//! decision made from the records below it (what arrives later cannot change it).

use std::sync::Arc;

use borderlane_core::outcome::{Cause, ExamResult, Outcome, OutcomeParty};
use borderlane_core::time::Timestamp;
use borderlane_core::wire::parse_partner;
use borderlane_core::{
    decide, CompiledPolicy, Decision, History, HistoryAsOf, Limits, Lookups, Manifest,
    PartnerTable, Position, Role, Watermark,
};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};

const DEFAULT_POLICY: &str = include_str!("../../../config/policy.toml");
const MANIFEST: &str = include_str!("golden/bases/south_truck.json");

/// Parties outcomes may name: the base manifest's five, and two strangers.
const PARTIES: [(Role, &str); 7] = [
    (Role::Importer, "12-3456789AB"),
    (Role::Manufacturer, "MXMAQNOR1200TIJ"),
    (Role::Shipper, "081234567"),
    (Role::Carrier, "ABCD"),
    (Role::Broker, "A1B"),
    (Role::Importer, "99-1111111ZZ"),
    (Role::Shipper, "12-3456789AB"),
];

fn policy() -> &'static CompiledPolicy {
    static P: std::sync::OnceLock<CompiledPolicy> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        // Carriers and brokers count too, so every party kind is exercised.
        let text = DEFAULT_POLICY.replace(
            "roles = [\"importer\", \"manufacturer\", \"shipper\"]",
            "roles = [\"importer\", \"manufacturer\", \"shipper\", \"carrier\", \"broker\"]",
        );
        assert_ne!(text, DEFAULT_POLICY);
        CompiledPolicy::from_toml(&text).expect("policy")
    })
}

fn manifest() -> Manifest {
    serde_json::from_str(MANIFEST).unwrap()
}

/// No partners, or every party a validated partner (credits and the cap in play).
fn table(validated: bool) -> PartnerTable {
    let t = PartnerTable::new();
    if validated {
        for (entity, kind, id) in [
            ("importer", "ior", "12-3456789AB"),
            ("highway_carrier", "scac", "ABCD"),
            ("manufacturer", "mid", "MXMAQNOR1200TIJ"),
            ("exporter", "duns", "081234567"),
            ("broker", "filer_code", "A1B"),
        ] {
            let rec = format!(
                r#"{{"partner_id": "P-{id}", "entity": "{entity}", "identifiers": [{{"kind": "{kind}", "value": "{id}"}}],
                "status": "validated", "tier": 3, "certified_on": "2019-03-04", "validated_on": "2024-06-01"}}"#
            );
            t.upsert(parse_partner(rec.as_bytes(), &Limits::default()).unwrap());
        }
    }
    t
}

/// An outcome spec: key number, revision, result, days before filing (negative: after), parties (bit set
/// over `PARTIES`).
type Spec = (u8, u8, u8, i16, u8);

fn spec() -> impl Strategy<Value = Spec> {
    (0u8..12, 0u8..2, 0u8..3, -30i16..800, 1u8..128)
}

fn outcome(s: Spec) -> Outcome {
    let (key, revision, result, days, parties) = s;
    let filed = Timestamp::parse("2026-11-28T04:00:00Z").unwrap();
    let at =
        Timestamp::from_unix_seconds(filed.unix_seconds() - i64::from(days) * 86_400 - 60).unwrap();
    Outcome {
        manifest_id: format!("PAST-{key}").into(),
        revision: u32::from(revision),
        shipment_id: None,
        result: ExamResult::ALL[usize::from(result)],
        findings: Vec::new(),
        examined_at: at,
        port: borderlane_core::codes::PortCode::parse("2304").unwrap(),
        officer: "o1".into(),
        parties: PARTIES
            .iter()
            .enumerate()
            .filter(|(i, _)| parties & (1 << i) != 0)
            .map(|(_, (role, id))| OutcomeParty {
                role: *role,
                id: (*id).into(),
                shipment_id: None,
            })
            .collect(),
        causes: vec![Cause::Band],
    }
}

fn pos(offset: usize) -> Position {
    Position {
        partition: 0,
        offset: offset as u64,
    }
}

/// Decides the base manifest against `records` (inserted at positions 0, 1, …) as of `as_of`.
fn decide_with(records: &[Outcome], as_of: Watermark, validated: bool) -> Decision {
    let h = History::new();
    for (i, o) in records.iter().enumerate() {
        h.insert(pos(i), o);
    }
    let t = table(validated);
    let w = Arc::new(as_of);
    decide(
        policy(),
        Lookups::new(
            &t,
            Some(HistoryAsOf {
                history: &h,
                as_of: &w,
            }),
        ),
        &manifest(),
    )
}

fn all(n: usize) -> Watermark {
    Watermark::parse(&n.to_string()).unwrap()
}

/// The decision without its watermark (which names how many records were read, not what counted).
fn content(d: &Decision) -> serde_json::Value {
    let mut v = serde_json::to_value(d).unwrap();
    v.as_object_mut().unwrap().remove("history_as_of");
    v
}

/// Only the last version of each key, in the order the keys last appeared.
fn latest_versions(records: &[Outcome]) -> Vec<Outcome> {
    let mut out: Vec<Outcome> = Vec::new();
    for o in records {
        out.retain(|x| x.key() != o.key());
        out.push(o.clone());
    }
    out
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        max_shrink_iters: 2000,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(300))]

    /// One more discrepancy or seizure (a new key naming a party of the manifest, in the window) never
    /// lowers the score; neither does a key's replacement by a more severe result.
    #[test]
    fn more_discrepancies_or_seizures_never_lower_the_score(
        records in prop::collection::vec(spec(), 0..10),
        extra in spec(),
        seizure in any::<bool>(),
        validated in any::<bool>(),
    ) {
        let before: Vec<Outcome> = records.iter().map(|s| outcome(*s)).collect();
        let d0 = decide_with(&before, all(before.len()), validated);

        // A new outcome (a key never generated above).
        let mut added = before.clone();
        let mut o = outcome(extra);
        o.manifest_id = "PAST-NEW".into();
        o.result = if seizure { ExamResult::Seizure } else { ExamResult::Discrepancy };
        added.push(o);
        let d1 = decide_with(&added, all(added.len()), validated);
        prop_assert!(d1.score >= d0.score, "{} → {}\n{:#}\n{:#}", d0.score, d1.score, content(&d0), content(&d1));
        prop_assert!(d1.action >= d0.action);

        // Every winning version made more severe (same key, parties and date, a later position).
        let mut upgraded = before.clone();
        for o in latest_versions(&before) {
            let mut worse = o.clone();
            worse.result = match o.result {
                ExamResult::NoDiscrepancy => ExamResult::Discrepancy,
                _ => ExamResult::Seizure,
            };
            upgraded.push(worse);
        }
        let d2 = decide_with(&upgraded, all(upgraded.len()), validated);
        prop_assert!(d2.score >= d0.score, "{} → {}", d0.score, d2.score);
        prop_assert!(d2.action >= d0.action);
    }

    /// A replaced outcome never counts twice: every version of every key, read in order, decides exactly
    /// as the last versions alone; and reading a record again (a re-delivered position) changes nothing.
    #[test]
    fn replacement_never_double_counts(
        records in prop::collection::vec(spec(), 0..14),
        validated in any::<bool>(),
    ) {
        let all_versions: Vec<Outcome> = records.iter().map(|s| outcome(*s)).collect();
        let last = latest_versions(&all_versions);
        let a = decide_with(&all_versions, all(all_versions.len()), validated);
        let b = decide_with(&last, all(last.len()), validated);
        prop_assert_eq!(content(&a), content(&b));

        let h = History::new();
        for (i, o) in all_versions.iter().enumerate() {
            h.insert(pos(i), o);
        }
        for (i, o) in all_versions.iter().enumerate() {
            prop_assert!(!h.insert(pos(i), o));
        }
        let t = table(validated);
        let w = Arc::new(all(all_versions.len()));
        let again = decide(policy(), Lookups::new(&t, Some(HistoryAsOf { history: &h, as_of: &w })), &manifest());
        prop_assert_eq!(serde_json::to_value(&again).unwrap(), serde_json::to_value(&a).unwrap());
    }

    /// Exactness: the decision read as of a watermark on a history that already holds later records is
    /// the decision made from the records below the watermark alone, `history_as_of` included.
    #[test]
    fn a_watermark_reproduces_the_decision_exactly(
        records in prop::collection::vec(spec(), 0..14),
        cut in 0usize..15,
        validated in any::<bool>(),
    ) {
        let outcomes: Vec<Outcome> = records.iter().map(|s| outcome(*s)).collect();
        let cut = cut.min(outcomes.len());
        let live = decide_with(&outcomes, all(cut), validated);
        let replay = decide_with(&outcomes[..cut], all(cut), validated);
        prop_assert_eq!(serde_json::to_value(&live).unwrap(), serde_json::to_value(&replay).unwrap());
        prop_assert_eq!(
            serde_json::to_value(&live).unwrap()["history_as_of"].clone(),
            serde_json::json!({"0": cut})
        );
    }
}

#[test]
fn a_policy_without_history_keeps_its_version_and_reads_nothing() {
    // The default policy before [history] existed had this version; without the section it still has.
    let text = DEFAULT_POLICY
        .split("\n[history]\n")
        .next()
        .expect("the default policy has a [history] section");
    let without = CompiledPolicy::from_toml(text).unwrap();
    assert_eq!(
        &*without.version,
        "sha256:87c70d9da07a13e03036ee9afac2977e8445daf93ae0d1f34ab3898ee5c81b23"
    );
    assert_ne!(
        without.version,
        CompiledPolicy::from_toml(DEFAULT_POLICY).unwrap().version
    );
    // Outcomes given or not, the decision is the same and carries no history_as_of.
    let h = History::new();
    h.insert(pos(0), &outcome((1, 0, 2, 10, 0b1)));
    let w = Arc::new(all(1));
    let t = PartnerTable::new();
    let with_history = decide(
        &without,
        Lookups::new(
            &t,
            Some(HistoryAsOf {
                history: &h,
                as_of: &w,
            }),
        ),
        &manifest(),
    );
    let plain = decide(&without, &t, &manifest());
    assert_eq!(
        serde_json::to_value(&with_history).unwrap(),
        serde_json::to_value(&plain).unwrap()
    );
    assert!(serde_json::to_value(&plain)
        .unwrap()
        .get("history_as_of")
        .is_none());
    // With the section and no history given: an empty history, and the decision says so.
    let d = decide(policy(), &t, &manifest());
    assert_eq!(
        serde_json::to_value(&d).unwrap()["history_as_of"],
        serde_json::json!({})
    );
}
