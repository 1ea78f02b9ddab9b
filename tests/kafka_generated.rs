//! End to end with generated traffic (`borderlane::traffic::gen`, as `produce --generate` sends it): realistic
//! partners and manifests with 10 % malformed records of every kind. Exactly one outcome per record: good
//! ones a decision equal to the core's with the generator's partner table, bad ones a dead letter whose
//! kind is the one the generator made and the core reports.

mod common;

use std::collections::HashMap;

use borderlane::traffic::gen::Record;
use borderlane::traffic::produce;
use common::*;

const N: u64 = 4_000;

#[test]
fn generated_traffic_gets_one_correct_outcome_per_record() {
    let mut config = config("gen");
    config.limits.max_bytes = Some(64 * 1024);
    let limits = config.limits.limits();
    let topics = config.kafka.topics.clone();
    create_topics(&config);
    let g = produce::generator(&config, 7, 3_000, 0.1).unwrap();
    let mut loader = produce::Loader::new(&config).unwrap();
    let sent = produce::generated_partners(&mut loader, &config, &g).unwrap();
    assert_eq!(sent.partners as usize, g.partners().len());

    let service = InProcess::start(config.clone());
    let sent = produce::generated_manifests(&mut loader, &config, &g, N, 0).unwrap();
    assert_eq!(sent.manifests, N);
    assert!(sent.bad > N / 20, "too few malformed records: {}", sent.bad);

    let table = borderlane_core::table::PartnerTable::new();
    for p in g.partners() {
        table.upsert(p.clone());
    }
    let mut good: HashMap<String, Vec<u8>> = HashMap::new();
    let mut bad_kinds: HashMap<&'static str, usize> = HashMap::new();
    for i in 0..N {
        match g.record(i) {
            r @ Record::Good(_) => {
                let id = r.key().unwrap().to_string();
                assert!(good.insert(id, r.to_bytes()).is_none(), "duplicate id");
            }
            Record::Bad { kind, .. } => *bad_kinds.entry(kind.as_str()).or_insert(0) += 1,
        }
    }
    assert_eq!(good.len() as u64 + sent.bad, N);

    let out = Collector::start(&[&topics.decisions, &topics.dlq]);
    let records = out.exactly(N as usize);
    let mut dead_kinds: HashMap<String, usize> = HashMap::new();
    let mut decided = 0;
    for r in &records {
        if r.topic == topics.decisions {
            let id = r.key_str();
            let bytes = good
                .get(&id)
                .unwrap_or_else(|| panic!("decision for unknown {id}"));
            let want = expected(&table, &limits, bytes).unwrap();
            assert_eq!(without_decided_at(r.json()), want, "{id}");
            decided += 1;
        } else {
            let kind = r.headers["error.kind"].clone();
            let value = r.value.clone().unwrap_or_default();
            let core = expected(&table, &limits, &value).unwrap_err().kind;
            assert_eq!(
                kind,
                core.as_str(),
                "dead letter kind differs from the core's"
            );
            *dead_kinds.entry(kind).or_insert(0) += 1;
        }
    }
    assert_eq!(decided, good.len());
    let bad_kinds: HashMap<String, usize> = bad_kinds
        .into_iter()
        .map(|(k, n)| (k.to_string(), n))
        .collect();
    assert_eq!(
        dead_kinds, bad_kinds,
        "dead letters by kind differ from what was generated"
    );
    service.stop().expect("clean stop");
}
