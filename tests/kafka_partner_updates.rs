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

/// Partitions added to the partner topic after the service is ready are followed: a suspension written
/// into a new partition changes the next manifest's decision, and the follower exports its lag for the new
/// partition.
#[test]
fn partitions_added_after_start_are_followed() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use rdkafka::ClientConfig;
    use std::time::Duration;

    let mut config = config("newparts");
    config.kafka.partner_refresh_ms = 500;
    let limits = config.limits.limits();
    let topics = config.kafka.topics.clone();
    create_topics(&config);
    let key = "CTP-NEWPART-1".to_string();
    let ior = "NEWP-00001";
    let mut history: Vec<(String, Option<String>)> = vec![(
        key.clone(),
        Some(partner(&key, "importer", "ior", ior, "certified", 1)),
    )];
    send_all(
        &config,
        &topics.partners,
        &[(
            Some(key.clone().into_bytes()),
            history[0].1.clone().map(String::into_bytes),
        )],
    );

    let service = InProcess::start(config.clone());
    wait_until("ready", || {
        http_get(service.http, "/readyz").map(|r| r.0) == Some(200)
    });
    assert_eq!(metric(service.http, "borderlane_partner_partitions"), 3.0);
    let out = Collector::start(&[&topics.decisions, &topics.dlq]);
    let mut n = 0;
    let mut decide = |history: &[(String, Option<String>)]| -> serde_json::Value {
        n += 1;
        let id = format!("NP-{n}");
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

    // The partner topic grows from 3 to 6 partitions while the service runs.
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", bootstrap());
    let admin: AdminClient<DefaultClientContext> = client.create().unwrap();
    let results = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(admin.create_partitions(
            &[NewPartitions::new(&topics.partners, 6)],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        ))
        .expect("create_partitions");
    for r in results {
        r.expect("partitions added");
    }
    let probe: BaseConsumer = client.create().unwrap();
    wait_until("6 partner partitions in metadata", || {
        probe
            .fetch_metadata(Some(&topics.partners), Duration::from_secs(5))
            .map(|md| md.topics()[0].partitions().len() == 6)
            .unwrap_or(false)
    });

    // The suspension goes into partition 5, which did not exist when the service started.
    let applied = metric(service.http, "borderlane_partner_updates_applied");
    let suspended = partner(&key, "importer", "ior", ior, "suspended", 1);
    let producer: BaseProducer = client.clone().set("acks", "all").create().unwrap();
    producer
        .send(
            BaseRecord::to(&topics.partners)
                .partition(5)
                .key(key.as_bytes())
                .payload(suspended.as_bytes()),
        )
        .map_err(|(e, _)| e)
        .expect("queued");
    producer.flush(PATIENCE).expect("suspension delivered");
    history.push((key.clone(), Some(suspended)));

    wait_until("new partitions followed", || {
        metric(service.http, "borderlane_partner_partitions") == 6.0
    });
    wait_until("suspension applied", || {
        metric(service.http, "borderlane_partner_updates_applied") > applied
    });
    let second = decide(&history);
    assert_ne!(
        importer_credit(&second),
        importer_credit(&first),
        "the suspension in the new partition changed nothing: {second}"
    );
    assert!(
        second["score"].as_i64() > first["score"].as_i64(),
        "a suspended importer earns no credit: {first} vs {second}"
    );
    // Lag is exported for the new partition too, and reaches 0 once it is read.
    wait_until("follower lag of partition 5 exported as 0", || {
        http_get(service.http, "/metrics")
            .unwrap()
            .1
            .lines()
            .any(|l| l == "borderlane_partner_follower_lag{partition=\"5\"} 0")
    });
    service.stop().expect("clean stop");
}
