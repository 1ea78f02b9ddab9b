//! Exam outcomes on the real broker. A port system writes an outcome to the outcomes topic: the instance's
//! follower applies it, and the same importer's next manifest is decided with a `history.seizure` reason and
//! a `history_as_of` covering the record. An officer records an outcome with `POST /outcomes` on the
//! officers' listener: the decision is found in the window followed from the committed decisions topic, the
//! complete record (parties, causes, the officer's identity) goes to the topic, keyed
//! `<manifest_id>/<revision>`; a repeat answers 200 and, like a port system's repeated record, never counts
//! twice. A bad record is skipped and counted. A second instance started later has read every outcome
//! before it is ready. A bad record gets exactly one dead letter across instances.

mod common;

use common::*;

const OFFICER: &str = "outcomes-officer-token-0123456789";

/// A manifest of importer `IOR-{importer}` (a non-partner: no partner record is loaded) filed at `filed_at`.
fn manifest_at(id: &str, importer: usize, filed_at: &str) -> Vec<u8> {
    let mut m: serde_json::Value = serde_json::from_str(&manifest(id, importer, 1, 0)).unwrap();
    m["filed_at"] = filed_at.into();
    m["estimated_arrival"] = "2026-12-01T05:00:00Z".into();
    serde_json::to_vec(&m).unwrap()
}

fn seizure_reasons(d: &serde_json::Value) -> usize {
    d["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["rule"] == "history.seizure")
        .count()
}

#[test]
fn outcomes_change_the_importers_next_decision_and_never_count_twice() {
    run(config("outcomes"));
}

/// The same in exactly-once mode: the dead letter and the offset past the bad record commit in one
/// transaction.
#[test]
fn exactly_once_outcome_dead_letters() {
    let mut c = config("outcomes-eos");
    c.kafka.delivery = borderlane::service::config::DeliveryMode::ExactlyOnce;
    c.kafka.instance_id = Some("outcomes-eos-1".into());
    run(c);
}

fn run(mut config: borderlane::service::config::Config) {
    let dir = std::env::temp_dir().join(unique("outcomes-files"));
    std::fs::create_dir_all(&dir).unwrap();
    let tokens = dir.join("tokens.toml");
    std::fs::write(
        &tokens,
        format!("[[token]]\nname = \"olga\"\nrole = \"officer\"\nsecret = \"{OFFICER}\"\n"),
    )
    .unwrap();
    config.admin.tokens_file = Some(tokens);
    config.admin.listen = None;
    let topics = config.kafka.topics.clone();
    create_topics(&config);

    let a = InProcess::start(config.clone());
    let officers = a.officers.expect("officers' listener");
    wait_until("A ready", || {
        http_get(a.http, "/readyz").map(|r| r.0) == Some(200)
    });
    let out = Collector::start(&[&topics.decisions]);
    let decision_of = |id: &str| -> serde_json::Value {
        wait_until(&format!("decision for {id}"), || {
            out.snapshot().iter().any(|r| r.key_str() == id)
        });
        out.snapshot()
            .into_iter()
            .find(|r| r.key_str() == id)
            .unwrap()
            .json()
    };
    let send = |id: &str, filed_at: &str| {
        send_all(
            &config,
            &topics.manifests,
            &[(
                Some(id.as_bytes().to_vec()),
                Some(manifest_at(id, 7, filed_at)),
            )],
        );
    };

    // Before any outcome: no history reason, and the watermark names nothing read.
    send("OUT-1", "2026-11-28T04:00:00Z");
    let first = decision_of("OUT-1");
    assert_eq!(seizure_reasons(&first), 0, "{first}");

    // A port system writes a seizure of OUT-1 to the topic (a complete record, keyed as required), and a
    // bad record.
    let record = serde_json::json!({
        "manifest_id": "OUT-1", "revision": 0, "result": "seizure", "findings": ["UNDECLARED"],
        "examined_at": "2026-11-28T06:00:00Z", "port": "2304", "officer": "port-system-7",
        "parties": [{"role": "importer", "id": "IOR-00007", "shipment_id": "OUT-1-01"}],
        "causes": []
    });
    send_all(
        &config,
        &topics.outcomes,
        &[
            (
                Some(b"OUT-1/0".to_vec()),
                Some(serde_json::to_vec(&record).unwrap()),
            ),
            (
                Some(b"BAD/0".to_vec()),
                Some(b"{\"manifest_id\": 5}".to_vec()),
            ),
        ],
    );
    wait_until("the outcome applied", || {
        metric(a.http, "borderlane_history_outcomes") == 1.0
            && metric(
                a.http,
                "borderlane_bad_outcome_records_total{kind=\"wrong_type\"}",
            ) + metric(
                a.http,
                "borderlane_bad_outcome_records_total{kind=\"missing_field\"}",
            ) >= 1.0
    });

    // The same importer's next manifest: the seizure counts, and the decision says which history it read.
    send("OUT-2", "2026-11-29T04:00:00Z");
    let second = decision_of("OUT-2");
    assert_eq!(seizure_reasons(&second), 1, "{second}");
    assert!(second["score"].as_i64() > first["score"].as_i64());
    let as_of = &second["history_as_of"];
    let covered: u64 = as_of
        .as_object()
        .expect("history_as_of")
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(covered >= 1, "{as_of}");

    // An officer records a seizure of OUT-2 through the officers' listener (the decision reaches the
    // window through the committed decisions topic). The officer is the logged-in identity.
    let body = r#"{"manifest_id":"OUT-2","revision":0,"result":"seizure","findings":["WEAPONS"],
        "examined_at":"2026-11-29T06:00:00Z","port":"2304"}"#;
    let mut created = None;
    wait_until("OUT-2 in the outcome window", || {
        let r = http_call(officers, "POST", "/outcomes", Some(OFFICER), body).unwrap();
        if r.0 == 404 {
            return false;
        }
        created = Some(r);
        true
    });
    let (status, text) = created.unwrap();
    assert_eq!(status, 201, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["officer"], "olga");
    assert!(
        v["parties"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == "IOR-00007"),
        "{v}"
    );
    // The request came back only once this instance had applied it.
    assert_eq!(metric(a.http, "borderlane_history_outcomes"), 2.0);
    // A repeat replaces: 200; and the port system repeats its record too. Still two outcomes.
    let (status, text) = http_call(officers, "POST", "/outcomes", Some(OFFICER), body).unwrap();
    assert_eq!(status, 200, "{text}");
    send_all(
        &config,
        &topics.outcomes,
        &[(
            Some(b"OUT-1/0".to_vec()),
            Some(serde_json::to_vec(&record).unwrap()),
        )],
    );
    let on_topic = Collector::start(&[&topics.outcomes]);
    wait_until("every outcome record on the topic", || on_topic.len() >= 5);
    let keys: Vec<String> = on_topic.snapshot().iter().map(|r| r.key_str()).collect();
    assert_eq!(
        keys.iter().filter(|k| *k == "OUT-2/0").count(),
        2,
        "{keys:?}"
    );
    wait_until("the repeated record applied", || {
        let (_, stats) = http_get_auth(officers, "/api/stats", Some(OFFICER)).unwrap();
        let s: serde_json::Value = serde_json::from_str(&stats).unwrap_or_default();
        s["hit_rates"]["outcomes"] == 2 && s["hit_rates"]["overall"]["seizures"] == 2
    });
    assert_eq!(metric(a.http, "borderlane_history_outcomes"), 2.0);

    // The importer's third manifest: two distinct seizures, not four.
    send("OUT-3", "2026-11-30T04:00:00Z");
    let third = decision_of("OUT-3");
    let seizure = third["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "history.seizure")
        .cloned()
        .unwrap_or_default();
    assert!(
        seizure["detail"]
            .as_str()
            .unwrap_or("")
            .starts_with("2 seizures within"),
        "two seizures: {seizure}"
    );
    a.stop().expect("A stops cleanly");

    // A second instance has read every outcome before it is ready.
    let b = InProcess::start(config.clone());
    wait_until("B ready", || {
        http_get(b.http, "/readyz").map(|r| r.0) == Some(200)
    });
    assert_eq!(metric(b.http, "borderlane_history_outcomes"), 2.0);
    assert_eq!(metric(b.http, "borderlane_outcomes_complete"), 1.0);
    // The bad record has exactly one dead letter, although two instances have read it (the dead-letter
    // group gave its partition to one member, which committed past it); valid outcomes have none.
    let dlq = Collector::start(&[&topics.dlq]);
    wait_until("the outcome dead letter", || {
        dlq.snapshot()
            .iter()
            .any(|r| r.headers.get("source.topic") == Some(&topics.outcomes))
    });
    std::thread::sleep(std::time::Duration::from_secs(3));
    let letters: Vec<_> = dlq
        .snapshot()
        .into_iter()
        .filter(|r| r.headers.get("source.topic") == Some(&topics.outcomes))
        .collect();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].key_str(), "BAD/0");
    assert_eq!(
        letters[0].value.as_deref(),
        Some(&b"{\"manifest_id\": 5}"[..])
    );
    assert!(letters[0].headers.contains_key("error.kind"), "{letters:?}");
    assert!(letters[0].headers.contains_key("error.message"));
    b.stop().expect("B stops cleanly");
}

/// An outcome written to a partition the outcomes topic gained after the instance started is followed (from
/// the partition's beginning) and counts in the importer's next decision, whose `history_as_of` names the
/// new partition.
#[test]
fn an_outcome_in_a_partition_added_after_start_counts() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use rdkafka::ClientConfig;
    use std::time::Duration;

    let mut config = config("outcomes-newparts");
    config.kafka.partner_refresh_ms = 500;
    let topics = config.kafka.topics.clone();
    create_topics(&config);
    let a = InProcess::start(config.clone());
    wait_until("ready", || {
        http_get(a.http, "/readyz").map(|r| r.0) == Some(200)
    });
    let out = Collector::start(&[&topics.decisions]);
    let decide = |id: &str, filed_at: &str| -> serde_json::Value {
        send_all(
            &config,
            &topics.manifests,
            &[(
                Some(id.as_bytes().to_vec()),
                Some(manifest_at(id, 8, filed_at)),
            )],
        );
        wait_until(&format!("decision for {id}"), || {
            out.snapshot().iter().any(|r| r.key_str() == id)
        });
        out.snapshot()
            .into_iter()
            .find(|r| r.key_str() == id)
            .unwrap()
            .json()
    };
    let first = decide("NPO-1", "2026-11-28T04:00:00Z");
    assert_eq!(seizure_reasons(&first), 0, "{first}");

    // The outcomes topic grows by one partition while the service runs.
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", bootstrap());
    let probe: BaseConsumer = client.create().unwrap();
    let partitions = |probe: &BaseConsumer| {
        probe
            .fetch_metadata(Some(&topics.outcomes), Duration::from_secs(5))
            .map(|md| md.topics()[0].partitions().len())
            .unwrap_or(0)
    };
    let before = partitions(&probe);
    assert!(before > 0);
    let admin: AdminClient<DefaultClientContext> = client.create().unwrap();
    let results = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(admin.create_partitions(
            &[NewPartitions::new(&topics.outcomes, before + 1)],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        ))
        .expect("create_partitions");
    for r in results {
        r.expect("partition added");
    }
    wait_until("the new partition in metadata", || {
        partitions(&probe) == before + 1
    });

    // A seizure of NPO-1, written straight into the new partition.
    let record = serde_json::json!({
        "manifest_id": "NPO-1", "revision": 0, "result": "seizure", "findings": [],
        "examined_at": "2026-11-28T06:00:00Z", "port": "2304", "officer": "port-system-8",
        "parties": [{"role": "importer", "id": "IOR-00008"}], "causes": []
    });
    let bytes = serde_json::to_vec(&record).unwrap();
    let producer: BaseProducer = client.clone().set("acks", "all").create().unwrap();
    producer
        .send(
            BaseRecord::to(&topics.outcomes)
                .partition(before as i32)
                .key("NPO-1/0")
                .payload(&bytes),
        )
        .map_err(|(e, _)| e)
        .expect("queued");
    producer.flush(PATIENCE).expect("outcome delivered");
    wait_until("the outcome in the new partition applied", || {
        metric(a.http, "borderlane_history_outcomes") == 1.0
    });

    let second = decide("NPO-2", "2026-11-29T04:00:00Z");
    assert_eq!(seizure_reasons(&second), 1, "{second}");
    assert_eq!(
        second["history_as_of"][before.to_string()],
        1,
        "the new partition's record is named: {second}"
    );
}
