//! Rebalances on the real broker: a second instance joins the group mid-stream (partitions move from the
//! first to the second), then the first stops gracefully (all partitions move to the second). Revoked
//! partitions are drained and committed before they move, so every manifest gets exactly one decision —
//! not even a duplicate, since no instance crashed.

mod common;

use std::collections::HashMap;

use common::*;

const MANIFESTS: usize = 20_000;

#[test]
fn graceful_handovers_neither_lose_nor_duplicate() {
    let config = config("rebalance");
    let topics = config.kafka.topics.clone();
    create_topics(&config);
    send_all(
        &config,
        &topics.partners,
        &(0..30)
            .map(|i| {
                (
                    Some(format!("CTP-IMP-{i:05}").into_bytes()),
                    Some(importer(i).into_bytes()),
                )
            })
            .collect::<Vec<Kv>>(),
    );
    let out = Collector::start(&[&topics.decisions, &topics.dlq]);

    // Manifests arrive throughout, in batches.
    let producer = {
        let config = config.clone();
        let topic = topics.manifests.clone();
        std::thread::spawn(move || {
            let mut loader = borderlane::traffic::produce::Loader::new(&config).unwrap();
            for batch in 0..40 {
                for j in 0..MANIFESTS / 40 {
                    let i = batch * (MANIFESTS / 40) + j;
                    let id = format!("G-{i:06}");
                    let m = manifest(&id, i % 40, i % 9, i);
                    loader
                        .send(&topic, Some(id.as_bytes()), Some(m.as_bytes()), None)
                        .unwrap();
                }
                loader.flush(PATIENCE).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        })
    };

    let a = InProcess::start(config.clone());
    wait_until("first decisions", || out.len() >= 2_000);
    let b = InProcess::start(config.clone());
    let assigned_to_b = || {
        let (_, body) = http_get(b.http, "/metrics").unwrap();
        body.lines()
            .filter(|l| l.starts_with("borderlane_consumer_lag{"))
            .count()
    };
    wait_until("the second instance owns partitions", || {
        assigned_to_b() > 0
    });
    let b_before = metric(b.http, "borderlane_offsets_stored_total");
    wait_until("the second instance decides", || {
        metric(b.http, "borderlane_offsets_stored_total") > b_before
    });
    a.stop().expect("first instance stops cleanly");
    producer.join().unwrap();
    let records = out.wait_for(MANIFESTS);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let records = {
        let more = out.snapshot();
        assert!(more.len() >= records.len());
        more
    };
    let mut ids: HashMap<String, usize> = HashMap::new();
    for r in &records {
        assert_eq!(r.topic, topics.decisions);
        *ids.entry(r.key_str()).or_insert(0) += 1;
    }
    for i in 0..MANIFESTS {
        let id = format!("G-{i:06}");
        assert!(ids.contains_key(&id), "{id} was lost");
    }
    let duplicated: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicated.is_empty(),
        "{} manifests decided twice across graceful handovers, e.g. {:?}",
        duplicated.len(),
        duplicated.iter().take(3).collect::<Vec<_>>()
    );
    assert_eq!(records.len(), MANIFESTS);
    b.stop().expect("second instance stops cleanly");
}
