//! Live partner updates on the real broker: after the start-up load, an upsert and then a tombstone on
//! the partner topic change the decisions of later manifests; a bad partner record is skipped and counted
//! without stopping the service; histories of upserts and tombstones interleaved on the topic load, in the
//! follower's parallel batches, exactly as applied one by one in offset order.

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

/// Round `round` of partner `i`'s history: records whose outcome depends on their order (upsert /
/// tombstone / upsert, upsert / upsert / tombstone, tombstone / upsert / tombstone / upsert), the
/// identifier and status changing with every upsert.
fn history_round(i: usize, round: usize) -> Vec<(String, Option<String>)> {
    let id = format!("CTP-ORD-{i:05}");
    let up = |n: usize, status: &str| {
        (
            id.clone(),
            Some(partner(
                &id,
                "importer",
                "ior",
                &format!("ORD-{i:05}-{round}-{n}"),
                status,
                3,
            )),
        )
    };
    let tomb = (id.clone(), None);
    match (i + round) % 3 {
        0 => vec![up(0, "certified"), tomb, up(1, "validated")],
        1 => vec![up(0, "validated"), up(1, "certified"), tomb],
        _ => vec![tomb.clone(), up(0, "suspended"), tomb, up(1, "certified")],
    }
}

/// Every partner's round-`round` history, interleaved: every partner's first record, then every second
/// one, and so on (so the records of one partner are far apart on the topic and in the follower's batches).
fn interleaved(partners: usize, round: usize) -> Vec<(String, Option<String>)> {
    let histories: Vec<_> = (0..partners).map(|i| history_round(i, round)).collect();
    let steps = histories.iter().map(Vec::len).max().unwrap();
    (0..steps)
        .flat_map(|s| histories.iter().filter_map(move |h| h.get(s).cloned()))
        .collect()
}

/// Every partner of `t`, and the owner of every identifier the records name, sorted.
fn contents(
    t: &borderlane_core::table::PartnerTable,
    records: &[(String, Option<String>)],
    limits: &borderlane_core::wire::Limits,
) -> (Vec<borderlane_core::wire::Partner>, Vec<(String, String)>) {
    let mut partners: Vec<_> = t.partners().iter().map(|p| (**p).clone()).collect();
    partners.sort_by(|a, b| a.partner_id.cmp(&b.partner_id));
    let mut owners: Vec<(String, String)> = records
        .iter()
        .filter_map(|(_, v)| {
            borderlane_core::wire::parse_partner(v.as_ref()?.as_bytes(), limits).ok()
        })
        .flat_map(|p| p.identifiers)
        .map(|i| {
            let owner = t
                .get(i.kind, &i.value)
                .map_or(String::new(), |p| p.partner_id.to_string());
            (i.value.to_string(), owner)
        })
        .collect();
    owners.sort();
    owners.dedup();
    (partners, owners)
}

#[test]
fn interleaved_upserts_and_tombstones_load_in_offset_order() {
    use borderlane::service::kafka::partners::{PartnerFollower, BATCH};
    use borderlane::service::metrics::Metrics;
    use borderlane::service::{Readiness, Shutdown};
    use std::sync::Arc;

    let config = config("order");
    let limits = config.limits.limits();
    let topics = config.kafka.topics.clone();
    create_topics(&config);
    let partners = 4000;
    let kv = |records: &[(String, Option<String>)]| -> Vec<Kv> {
        records
            .iter()
            .map(|(k, v)| {
                (
                    Some(k.clone().into_bytes()),
                    v.clone().map(String::into_bytes),
                )
            })
            .collect()
    };
    let mut sent = interleaved(partners, 0);
    assert!(
        sent.len() > 2 * BATCH,
        "the start-up load takes several full batches"
    );
    send_all(&config, &topics.partners, &kv(&sent));

    let table = Arc::new(borderlane_core::table::PartnerTable::new());
    let metrics = Arc::new(Metrics::new());
    let readiness = Arc::new(Readiness::new());
    let shutdown = Shutdown::new();
    let follower = PartnerFollower::new(
        &config,
        table.clone(),
        metrics,
        readiness.clone(),
        shutdown.clone(),
    )
    .expect("partner follower");
    let running = std::thread::spawn(move || follower.run());
    wait_until("partner table complete", || readiness.state().0);
    let expected = table_of(&sent, &limits);
    let want = contents(&expected, &sent, &limits);
    // Each kind of history leaves its mark: the partners whose history ends in a tombstone are gone.
    assert_eq!(want.0.len(), (0..partners).filter(|i| i % 3 != 1).count());
    assert!(contents(&table, &sent, &limits) == want, "start-up load");
    assert_eq!(table.updates_applied(), expected.updates_applied());

    // Live: a second round, the other history for each partner, while the follower runs.
    let live = interleaved(partners, 1);
    send_all(&config, &topics.partners, &kv(&live));
    sent.extend(live);
    let expected = table_of(&sent, &limits);
    wait_until("live round applied", || {
        table.updates_applied() >= expected.updates_applied()
    });
    assert_eq!(table.updates_applied(), expected.updates_applied());
    assert!(
        contents(&table, &sent, &limits) == contents(&expected, &sent, &limits),
        "live round"
    );
    shutdown.trigger();
    running.join().unwrap().expect("follower stops cleanly");
}
