//! The generator: deterministic per record, every good record decides, every bad record dead-letters with
//! exactly its kind (all 16 kinds), unique partner identifiers, and realistic shares under the default policy.

use std::collections::{BTreeMap, HashSet};

use borderlane::load::policy::default_policy;
use borderlane::traffic::gen::{GenConfig, Generator, Record};
use borderlane_core::score::process;
use borderlane_core::wire::{ErrorKind, Limits};

fn generator(bad_share: f64) -> Generator {
    Generator::new(
        GenConfig {
            partners: 5_000,
            bad_share,
            ..GenConfig::default()
        },
        &default_policy(),
    )
}

#[test]
fn records_are_pure_functions_of_seed_and_index() {
    let a = generator(0.05);
    let b = generator(0.05);
    for i in [0u64, 1, 17, 999, 123_456] {
        assert_eq!(a.record(i).to_bytes(), b.record(i).to_bytes(), "record {i}");
    }
    // Order does not matter.
    let forward: Vec<Vec<u8>> = (0..50).map(|i| a.record(i).to_bytes()).collect();
    let backward: Vec<Vec<u8>> = (0..50).rev().map(|i| a.record(i).to_bytes()).collect();
    assert_eq!(forward, backward.into_iter().rev().collect::<Vec<_>>());
    let other = Generator::new(
        GenConfig {
            partners: 5_000,
            seed: 7,
            ..GenConfig::default()
        },
        &default_policy(),
    );
    assert_ne!(a.record(3).to_bytes(), other.record(3).to_bytes());
    assert_eq!(
        serde_json::to_vec(a.partners()).unwrap(),
        serde_json::to_vec(b.partners()).unwrap()
    );
}

#[test]
fn every_record_has_its_expected_outcome() {
    let policy = default_policy();
    let g = generator(0.3);
    let table = g.partner_table();
    let limits = Limits::default();
    let mut kinds: BTreeMap<ErrorKind, u32> = BTreeMap::new();
    let (mut good, mut exams, mut fast, mut fast_port_trucks) = (0u32, 0u32, 0u32, 0u32);
    for i in 0..20_000u64 {
        let r = g.record(i);
        let outcome = process(&policy, &table, &r.to_bytes(), &limits).map(|(_, d)| d);
        match r {
            Record::Good(m) => {
                let mut d = outcome.unwrap_or_else(|e| panic!("record {i} should decide: {e}"));
                assert_eq!(d.manifest_id, m.manifest_id);
                // What the adapters emit (the direct writer) is the serde serialiser's bytes.
                d.decided_at = borderlane_core::time::Timestamp::from_unix_nanos(
                    1_795_838_400_000_000_000 + i as i128 * 1_000_123,
                );
                let mut direct = Vec::new();
                d.write_json(&mut direct);
                assert_eq!(
                    String::from_utf8_lossy(&direct),
                    String::from_utf8_lossy(&serde_json::to_vec(&d).unwrap()),
                    "record {i}"
                );
                good += 1;
                exams += d.action.is_exam() as u32;
                if d.mode == borderlane_core::wire::Mode::Truck
                    && !d
                        .fast_missing
                        .contains(borderlane_core::decision::FastCondition::FastLanePort)
                {
                    fast_port_trucks += 1;
                    fast += (d.lane == borderlane_core::decision::Lane::Fast) as u32;
                }
            }
            Record::Bad { kind, .. } => {
                let e = match outcome {
                    Err(e) => e,
                    Ok(d) => panic!(
                        "record {i}: a bad record of kind {kind} decided: {}",
                        d.manifest_id
                    ),
                };
                assert_eq!(e.kind, kind, "record {i}: {e}");
                *kinds.entry(kind).or_default() += 1;
            }
        }
    }
    for k in ErrorKind::ALL {
        assert!(
            kinds.contains_key(&k),
            "no bad record of kind {k} in 20k records: {kinds:?}"
        );
    }
    let exam_rate = exams as f64 / good as f64;
    let fast_share = fast as f64 / fast_port_trucks as f64;
    assert!((0.03..0.35).contains(&exam_rate), "exam rate {exam_rate}");
    assert!((0.05..0.5).contains(&fast_share), "FAST share {fast_share}");
}

#[test]
fn partner_identifiers_are_unique() {
    let g = generator(0.0);
    let mut seen = HashSet::new();
    for p in g.partners() {
        for id in &p.identifiers {
            assert!(
                seen.insert((id.kind, id.value.clone())),
                "{:?} {} held twice",
                id.kind,
                id.value
            );
        }
    }
    assert!(g.partners().len() > 1_000);
}
