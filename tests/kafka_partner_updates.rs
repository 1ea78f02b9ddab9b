//! Live partner updates on the real broker: after the start-up load, an upsert and then a tombstone on
//! the partner topic change the decisions of later manifests; a bad partner record is skipped and counted
//! without stopping the service.

mod common;

use common::*;

/// The importer credit rule's detail on a decision, if any.
fn importer_credit(decision: &serde_json::Value) -> Option<String> {
    decision["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "ctpat.importer")
        .map(|r| r["detail"].as_str().unwrap().to_string())
}

#[test]
fn upserts_and_tombstones_change_later_decisions() {
    let config = config("live");
    let limits = config.limits.limits();
    let topics = config.kafka.topics.clone();
    create_topics(&config);
    let key = "CTP-LIVE-1".to_string();
    let ior = "LIVE-00001";
    let mut history: Vec<(String, Option<String>)> = vec![(
        key.clone(),
        Some(partner(&key, "importer", "ior", ior, "certified", 1)),
    )];
    let send_partner = |k: &str, v: Option<&str>| {
        send_all(
            &config,
            &topics.partners,
            &[(
                Some(k.as_bytes().to_vec()),
                v.map(|v| v.as_bytes().to_vec()),
            )],
        )
    };
    send_partner(&key, history[0].1.as_deref());

    let service = InProcess::start(config.clone());
    wait_until("ready", || {
        http_get(service.http, "/readyz").map(|r| r.0) == Some(200)
    });
    let out = Collector::start(&[&topics.decisions, &topics.dlq]);
    let updates = || metric(service.http, "borderlane_partner_updates_applied") as usize;

    // Sends one manifest, waits for its decision, checks it against the core with the table so far.
    let mut n = 0;
    let mut decide = |history: &[(String, Option<String>)]| -> serde_json::Value {
        n += 1;
        let id = format!("L-{n}");
        let m = manifest_for(&id, ior, 0, 0, 0);
        send_all(
            &config,
            &topics.manifests,
            &[(Some(id.clone().into_bytes()), Some(m.clone().into_bytes()))],
        );
        let r = out.wait_for(n).pop().unwrap();
        assert_eq!(r.key_str(), id);
        let got = without_decided_at(r.json());
        assert_eq!(
            got,
            expected(&table_of(history, &limits), &limits, m.as_bytes()).unwrap()
        );
        got
    };

    let first = decide(&history);
    assert!(
        importer_credit(&first).unwrap().contains("certified"),
        "{first}"
    );

    // Upgrade: validated tier 3. Wait until the follower applied it, then decide again.
    let applied = updates();
    let upgraded = partner(&key, "importer", "ior", ior, "validated", 3);
    send_partner(&key, Some(&upgraded));
    history.push((key.clone(), Some(upgraded)));
    wait_until("upsert applied", || updates() > applied);
    let second = decide(&history);
    assert!(
        importer_credit(&second)
            .unwrap()
            .contains("validated tier 3"),
        "{second}"
    );
    assert!(
        second["score"].as_i64() < first["score"].as_i64(),
        "more credit, lower score"
    );

    // A bad partner record is skipped and counted; the service keeps deciding.
    let bad_before = metric(
        service.http,
        "borderlane_bad_partner_records_total{kind=\"invalid_json\"}",
    );
    send_partner("CTP-JUNK", Some("{not json"));
    wait_until("bad partner counted", || {
        metric(
            service.http,
            "borderlane_bad_partner_records_total{kind=\"invalid_json\"}",
        ) > bad_before
    });

    // Tombstone: the partner is gone; the importer earns no credit any more.
    let applied = updates();
    send_partner(&key, None);
    history.push((key.clone(), None));
    wait_until("tombstone applied", || updates() > applied);
    let third = decide(&history);
    assert_eq!(importer_credit(&third), None, "{third}");
    assert!(
        third["parties"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["role"] == "importer" && p["partner_id"].is_null()),
        "{third}"
    );
    assert_eq!(metric(service.http, "borderlane_partner_table_size"), 0.0);
    assert_eq!(http_get(service.http, "/readyz").unwrap().0, 200);
    service.stop().expect("clean stop");
}
