//! Readiness gating on the real broker: with a large partner topic (200k records), the service decides
//! nothing before its table reached the start-up end offsets. Manifests waiting on the topic from the
//! start depend on the LAST records of the partner topic (an applicant upgraded to validated tier 3 at the
//! very end); each gets the credit. `/readyz` is 503 before and 200 after.

mod common;

use common::*;

const BULK: usize = 200_000;
const LAST: usize = 6;

#[test]
fn no_decision_before_the_partner_table_is_complete() {
    let config = config("ready");
    let limits = config.limits.limits();
    let topics = config.kafka.topics.clone();
    create_topics(&config);

    let last_id = |k: usize| format!("CTP-LAST-{k}");
    let last_ior = |k: usize| format!("LAST-{k:05}");
    let mut partners: Vec<(String, Option<String>)> = Vec::with_capacity(BULK + 2 * LAST);
    for k in 0..LAST {
        let p = partner(&last_id(k), "importer", "ior", &last_ior(k), "applicant", 1);
        partners.push((last_id(k), Some(p)));
    }
    for i in 0..BULK {
        let id = format!("CTP-BULK-{i:06}");
        let p = partner(
            &id,
            "importer",
            "ior",
            &format!("BULK-{i:06}"),
            "certified",
            1,
        );
        partners.push((id, Some(p)));
    }
    for k in 0..LAST {
        let p = partner(&last_id(k), "importer", "ior", &last_ior(k), "validated", 3);
        partners.push((last_id(k), Some(p)));
    }
    send_all(
        &config,
        &topics.partners,
        &partners
            .iter()
            .map(|(k, v)| {
                (
                    Some(k.clone().into_bytes()),
                    v.clone().map(String::into_bytes),
                )
            })
            .collect::<Vec<_>>(),
    );

    // The manifests are waiting before the service starts: an ungated consumer would decide them at once.
    let manifests: Vec<(String, String)> = (0..120)
        .map(|i| {
            let id = format!("R-{i:04}");
            let m = manifest_for(&id, &last_ior(i % LAST), i, i % 7, i);
            (id, m)
        })
        .collect();
    send_all(
        &config,
        &topics.manifests,
        &manifests
            .iter()
            .map(|(id, m)| (Some(id.clone().into_bytes()), Some(m.clone().into_bytes())))
            .collect::<Vec<_>>(),
    );

    let service = InProcess::start(config.clone());
    let (status, body) = http_get(service.http, "/readyz").expect("http is up when start returns");
    assert_eq!(status, 503, "ready before reading 200k partners: {body}");
    assert!(body.contains("partner_table: loading"), "{body}");

    let out = Collector::start(&[&topics.decisions, &topics.dlq]);
    let decisions = out.exactly(manifests.len());
    let table = table_of(&partners, &limits);
    assert_eq!(table.len(), BULK + LAST);
    for r in &decisions {
        assert_eq!(
            r.topic, topics.decisions,
            "unexpected dead letter {:?}",
            r.headers
        );
        let id = r.key_str();
        let (_, m) = manifests.iter().find(|(i, _)| *i == id).unwrap();
        let got = without_decided_at(r.json());
        assert_eq!(
            got,
            expected(&table, &limits, m.as_bytes()).unwrap(),
            "{id}"
        );
        let credit = got["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rule"] == "ctpat.importer")
            .unwrap_or_else(|| panic!("{id} decided without the last partner record: {got}"));
        assert!(
            credit["detail"]
                .as_str()
                .unwrap()
                .contains("validated tier 3"),
            "{id}: {credit}"
        );
    }
    wait_until("/readyz 200", || {
        http_get(service.http, "/readyz").map(|r| r.0) == Some(200)
    });
    assert_eq!(
        metric(service.http, "borderlane_partner_table_size") as usize,
        BULK + LAST
    );
    assert_eq!(
        metric(service.http, "borderlane_partner_table_complete"),
        1.0
    );
    service.stop().expect("clean stop");
}

/// `/readyz` and the readiness gauges on the real broker: the stall detector is fed the lag and positions
/// of the partitions the consumer really owns (`watched_partitions`), a service that decides everything is
/// ready with `stalled_partitions: 0`, and the gauges agree with the verdict. (A stall of lag without
/// progress is not produced here: on a single broker no fault holds outputs unacknowledged without failing
/// them — a `min.insync.replicas` above the replication factor is capped by the broker — so that logic is
/// tested in `service::stall` and `service::http` with an injected clock; a partition never fetched is
/// produced in the next test.)
#[test]
fn readyz_reports_its_reasons_and_watches_the_assigned_partitions() {
    let mut config = config("readyreasons");
    config.service.stall_after_ms = 2000;
    let topics = config.kafka.topics.clone();
    create_topics(&config);
    let service = InProcess::start(config.clone());
    wait_until("ready", || {
        http_get(service.http, "/readyz").map(|r| r.0) == Some(200)
    });
    let out = Collector::start(&[&topics.decisions, &topics.dlq]);
    let records: Vec<Kv> = (0..30)
        .map(|i| {
            let id = format!("RR-{i:04}");
            let m = manifest(&id, i, i, i);
            (Some(id.into_bytes()), Some(m.into_bytes()))
        })
        .collect();
    send_all(&config, &topics.manifests, &records);
    out.wait_for(30);
    let mut body = String::new();
    wait_until("the three assigned partitions watched", || {
        let (status, b) = http_get(service.http, "/readyz").unwrap();
        body = b;
        status == 200 && body.contains("watched_partitions: 3\n")
    });
    assert_eq!(
        body,
        "partner_table: complete\ncontrol_topic: complete\noutcomes_topic: complete\nmanifest_consumer: running\nwatched_partitions: 3\n\
         stalled_partitions: 0\n"
    );
    // Longer than stall_after with nothing to do: idle is not stalled.
    std::thread::sleep(std::time::Duration::from_millis(3000));
    let (status, body) = http_get(service.http, "/readyz").unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(metric(service.http, "borderlane_stalled_partitions"), 0.0);
    assert_eq!(metric(service.http, "borderlane_ready"), 1.0);
    let shutdown = service.stop();
    shutdown.expect("clean stop");
}

/// What the hanging transaction chaos seed 29 found (docs/reliability.md) does to the group, reproduced on
/// the real broker with a transaction left open on the group's offsets. A transactional producer of some
/// other client adds offsets for all three manifest partitions to a transaction and neither commits nor
/// aborts it, so the group's committed offsets stay unstable (the broker answers `UNSTABLE_OFFSET_COMMIT` to
/// a `read_committed` consumer's offset fetch, and librdkafka asks again forever): the service is assigned
/// every partition, fetches none, decides nothing — and `/readyz` must say so, naming the stalled partitions,
/// rather than report a healthy service. Ending the transaction (here its own producer aborts it; in
/// production the operator's `TransactionsCommand abort`, docs/serve.md) lets the service start fetching,
/// answer every manifest and become ready again without a restart.
#[test]
fn an_open_transaction_on_the_groups_offsets_is_reported_stalled_until_it_ends() {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::producer::{BaseProducer, Producer};
    use rdkafka::{Offset, TopicPartitionList};
    use std::time::Duration;

    let mut config = config("opentxn");
    config.service.stall_after_ms = 2000;
    let topics = config.kafka.topics.clone();
    create_topics(&config);

    // The open transaction: offsets for every manifest partition, committed by no one.
    let timeout = Duration::from_secs(30);
    let txn: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.bootstrap_servers)
        .set(
            "transactional.id",
            format!("{}-stranger", config.kafka.group_id),
        )
        // Far longer than the test, so the coordinator does not end it for us.
        .set("transaction.timeout.ms", "600000")
        .create()
        .unwrap();
    txn.init_transactions(timeout).unwrap();
    txn.begin_transaction().unwrap();
    // Should the test fail before its own abort, the transaction is aborted on the way out rather than
    // left open on `__consumer_offsets` for its ten minutes.
    struct AbortOnDrop(BaseProducer, bool);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            if !self.1 {
                let _ = self.0.abort_transaction(Duration::from_secs(10));
            }
        }
    }
    let mut txn = AbortOnDrop(txn, false);
    let group: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.bootstrap_servers)
        .set("group.id", &config.kafka.group_id)
        .create()
        .unwrap();
    let metadata = group.group_metadata().expect("group metadata");
    let mut offsets = TopicPartitionList::new();
    for p in 0..3 {
        offsets
            .add_partition_offset(&topics.manifests, p, Offset::Offset(0))
            .unwrap();
    }
    txn.0
        .send_offsets_to_transaction(&offsets, &metadata, timeout)
        .unwrap();
    drop(group);

    let out = Collector::start(&[&topics.decisions, &topics.dlq]);
    let records: Vec<Kv> = (0..30)
        .map(|i| {
            let id = format!("OT-{i:04}");
            let m = manifest(&id, i, i, i);
            (Some(id.into_bytes()), Some(m.into_bytes()))
        })
        .collect();
    send_all(&config, &topics.manifests, &records);

    let service = InProcess::start(config.clone());
    let mut body = String::new();
    wait_until("the three unfetched partitions reported stalled", || {
        let (status, b) = http_get(service.http, "/readyz").unwrap();
        body = b;
        status == 503 && body.contains("stalled_partitions: 3\n")
    });
    // Never fetched, so no numbers: stalled with `lag=unknown`, not counted as watched (docs/serve.md).
    assert!(body.contains("watched_partitions: 0\n"), "{body}");
    for p in 0..3 {
        assert!(
            body.contains(&format!("stalled: partition={p} lag=unknown ")),
            "{body}"
        );
    }
    assert_eq!(metric(service.http, "borderlane_stalled_partitions"), 3.0);
    assert_eq!(metric(service.http, "borderlane_ready"), 0.0);
    assert_eq!(
        out.len(),
        0,
        "decided while the group's offsets were unstable"
    );

    txn.0.abort_transaction(timeout).unwrap();
    txn.1 = true;
    out.exactly(records.len());
    wait_until("ready again", || {
        http_get(service.http, "/readyz").map(|r| r.0) == Some(200)
    });
    let (_, body) = http_get(service.http, "/readyz").unwrap();
    assert!(body.contains("stalled_partitions: 0\n"), "{body}");
    assert_eq!(metric(service.http, "borderlane_stalled_partitions"), 0.0);
    service.stop().expect("clean stop");
}
