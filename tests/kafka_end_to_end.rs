//! End to end on the real broker: partners and manifests in — good ones and one bad record of every
//! dead-letter kind — and exactly one outcome per manifest out: a decision equal to the core's for the same
//! input and table, or a dead letter with the right kind, the original bytes and key, and source headers.

mod common;

use std::collections::{HashMap, HashSet};

use borderlane_core::wire::{ErrorKind, Limits};
use common::*;

/// One bad record per dead-letter kind that can occur on Kafka: (kind, value). `None` is a null value.
fn bad_records(limits: &Limits) -> Vec<(ErrorKind, Option<Vec<u8>>)> {
    let good = manifest("BAD-BASE", 0, 0, 0);
    let swap = |from: &str, to: &str| {
        assert!(good.contains(from), "{from} not in fixture");
        Some(good.replacen(from, to, 1).into_bytes())
    };
    let big =
        manifest("BAD-BIG", 0, 0, 0).replace("laptop computers", &"x".repeat(limits.max_bytes + 1));
    vec![
        (ErrorKind::Empty, None),
        (ErrorKind::Empty, Some(Vec::new())),
        (ErrorKind::Oversized, Some(big.into_bytes())),
        (
            ErrorKind::NotUtf8,
            Some(b"{\"manifest_id\": \"\xff\xfe\"}".to_vec()),
        ),
        (
            ErrorKind::InvalidJson,
            Some(b"{\"manifest_id\": }".to_vec()),
        ),
        (
            ErrorKind::TruncatedJson,
            Some(good.as_bytes()[..good.len() / 2].to_vec()),
        ),
        (ErrorKind::NotObject, Some(b"[1, 2, 3]".to_vec())),
        (
            ErrorKind::TooDeep,
            Some(format!("{}{}", "{\"x\":[".repeat(100), "]}".repeat(100)).into_bytes()),
        ),
        (ErrorKind::MissingField, swap("\"mode\":", "\"mood\":")),
        (
            ErrorKind::WrongType,
            swap("\"revision\":0", "\"revision\":\"0\""),
        ),
        (
            ErrorKind::DuplicateField,
            swap("\"revision\":0", "\"revision\":0,\"revision\":1"),
        ),
        (
            ErrorKind::NumberOutOfRange,
            swap("\"revision\":0", "\"revision\":99999999999"),
        ),
        (
            ErrorKind::BadValue,
            swap("\"weight_kg\":1200.0", "\"weight_kg\":-5.0"),
        ),
        (
            ErrorKind::BadCode,
            swap("\"origin_country\":\"MX\"", "\"origin_country\":\"QQ\""),
        ),
        (
            ErrorKind::BadDate,
            swap(
                "\"filed_at\":\"2026-11-28T04:00:00Z\"",
                "\"filed_at\":\"2026-11-31T04:00:00Z\"",
            ),
        ),
        (
            ErrorKind::UnsupportedVersion,
            swap("\"revision\":0", "\"revision\":0,\"schema_version\":7"),
        ),
        (
            ErrorKind::UnknownPort,
            swap("\"port_of_entry\":\"2304\"", "\"port_of_entry\":\"9999\""),
        ),
    ]
}

#[test]
fn every_manifest_gets_exactly_one_decision_or_dead_letter() {
    let mut config = config("e2e");
    config.limits.max_bytes = Some(16 * 1024);
    let limits = config.limits.limits();
    let topics = config.kafka.topics.clone();
    create_topics(&config);

    // Partners: importers and carriers of every standing, plus one bad record the follower must skip.
    let mut partners: Vec<(String, Option<String>)> = (0..60)
        .map(|i| (format!("CTP-IMP-{i:05}"), Some(importer(i))))
        .chain((0..12).map(|i| (format!("CTP-CAR-{i:03}"), Some(carrier(i)))))
        .collect();
    partners.push(("CTP-BROKEN".into(), Some("{\"partner_id\": 5}".into())));
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
    let table = table_of(&partners, &limits);

    // Manifests: good ones (some parties unknown to the table) and every bad kind, interleaved.
    let good: Vec<(String, String)> = (0..300)
        .map(|i| {
            let id = format!("M-{i:05}");
            let m = manifest(&id, i % 75, i % 15, i);
            (id, m)
        })
        .collect();
    let bad = bad_records(&limits);
    for (kind, value) in &bad {
        let got = match value {
            None => ErrorKind::Empty,
            Some(v) => expected(&table, &limits, v).unwrap_err().kind,
        };
        assert_eq!(got, *kind, "fixture for {kind} is classified as {got}");
    }
    let mut records: Vec<Kv> = Vec::new();
    let mut bad_iter = bad.iter().enumerate();
    for (i, (id, m)) in good.iter().enumerate() {
        records.push((Some(id.clone().into_bytes()), Some(m.clone().into_bytes())));
        if i % 17 == 5 {
            if let Some((j, (kind, v))) = bad_iter.next() {
                records.push((Some(format!("bad-{j}-{kind}").into_bytes()), v.clone()));
            }
        }
    }
    for (j, (kind, v)) in bad_iter {
        records.push((Some(format!("bad-{j}-{kind}").into_bytes()), v.clone()));
    }
    let total = records.len();
    assert_eq!(total, good.len() + bad.len());

    let service = InProcess::start(config.clone());
    send_all(&config, &topics.manifests, &records);

    let out = Collector::start(&[&topics.decisions, &topics.dlq]);
    let outputs = out.exactly(total);

    // Decisions: one per good manifest, equal to the core's.
    let decisions: Vec<&Record> = outputs
        .iter()
        .filter(|r| r.topic == topics.decisions)
        .collect();
    assert_eq!(decisions.len(), good.len());
    let by_id: HashMap<String, &Record> = decisions.iter().map(|r| (r.key_str(), *r)).collect();
    assert_eq!(by_id.len(), good.len(), "a manifest got two decisions");
    let mut credited = 0;
    for (id, m) in &good {
        let r = by_id
            .get(id)
            .unwrap_or_else(|| panic!("no decision for {id}"));
        let got = without_decided_at(r.json());
        let want = expected(&table, &limits, m.as_bytes()).unwrap();
        assert_eq!(got, want, "decision for {id} differs from the core's");
        if got["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["rule"] == "ctpat.importer")
        {
            credited += 1;
        }
    }
    assert!(credited > 0, "no decision used the partner table");

    // Dead letters: original bytes and key, kind and source headers pointing at the original record.
    let originals = Collector::start(&[&topics.manifests]).wait_for(total);
    let by_position: HashMap<(i32, i64), &Record> = originals
        .iter()
        .map(|r| ((r.partition, r.offset), r))
        .collect();
    let dead: Vec<&Record> = outputs.iter().filter(|r| r.topic == topics.dlq).collect();
    assert_eq!(dead.len(), bad.len());
    let mut kinds_seen = HashSet::new();
    for d in &dead {
        let key = d.key_str();
        let j: usize = key.split('-').nth(1).unwrap().parse().unwrap();
        let (kind, value) = &bad[j];
        assert_eq!(d.headers["error.kind"], kind.as_str(), "{key}");
        assert!(!d.headers["error.message"].is_empty(), "{key}");
        assert_eq!(
            d.value, *value,
            "{key}: dead letter must carry the original bytes"
        );
        assert_eq!(d.headers["source.topic"], topics.manifests);
        let pos = (
            d.headers["source.partition"].parse::<i32>().unwrap(),
            d.headers["source.offset"].parse::<i64>().unwrap(),
        );
        let original = by_position[&pos];
        assert_eq!(original.key, d.key, "{key}: source headers point elsewhere");
        assert_eq!(original.value, d.value);
        assert!(kinds_seen.insert(j), "{key} dead-lettered twice");
    }
    let all_kinds: HashSet<ErrorKind> = bad.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        all_kinds.len(),
        ErrorKind::ALL.len(),
        "every dead-letter kind is exercised"
    );

    // The metrics agree with what reached the topics.
    let http = service.http;
    let decided: f64 = {
        let (_, body) = http_get(http, "/metrics").unwrap();
        body.lines()
            .filter(|l| l.starts_with("borderlane_decisions_total{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    assert_eq!(decided as usize, good.len());
    assert_eq!(
        metric(http, "borderlane_dead_letters_total{kind=\"empty\"}") as usize,
        2
    );
    assert_eq!(
        metric(http, "borderlane_dead_letters_total{kind=\"unknown_port\"}") as usize,
        1
    );
    assert_eq!(
        metric(
            http,
            "borderlane_bad_partner_records_total{kind=\"wrong_type\"}"
        ) as usize,
        1
    );
    assert_eq!(
        metric(http, "borderlane_partner_table_size") as usize,
        table.len()
    );
    assert_eq!(
        metric(http, "borderlane_end_to_end_seconds_count") as usize,
        total
    );
    assert_eq!(http_get(http, "/readyz").unwrap().0, 200);
    service.stop().expect("clean stop");
}

#[test]
fn a_dead_letter_too_large_for_the_producer_is_truncated_not_a_poison_loop() {
    // The manifests topic takes a 200 kB record, but this service's producer may send at most 100 kB.
    let mut config = config("e2e-big");
    config.limits.max_bytes = Some(50_000);
    config
        .kafka
        .producer
        .0
        .insert("message.max.bytes".into(), "100000".into());
    let topics = config.kafka.topics.clone();
    create_topics(&config);
    let loader_config = {
        let mut c = config.clone();
        c.kafka.producer.0.clear();
        c
    };
    let huge = vec![b'x'; 200_000];
    let good = manifest("AFTER-BIG", 0, 0, 0);
    let service = InProcess::start(config.clone());
    send_all(
        &loader_config,
        &topics.manifests,
        &[
            (Some(b"big".to_vec()), Some(huge.clone())),
            (Some(b"AFTER-BIG".to_vec()), Some(good.into_bytes())),
        ],
    );
    let out = Collector::start(&[&topics.decisions, &topics.dlq]);
    let records = out.exactly(2);
    let dead = records.iter().find(|r| r.topic == topics.dlq).unwrap();
    assert_eq!(dead.headers["error.kind"], "oversized");
    assert_eq!(dead.headers["error.truncated_from"], "200000");
    let kept = dead.value.as_ref().unwrap();
    // Cut to what fits the producer's 100 kB once key, headers and record overhead are counted (a few
    // hundred bytes to ~2 KiB with the 1 KiB error.message cap), no more.
    assert!(
        (100_000 - 4096..100_000).contains(&kept.len()),
        "kept {} bytes",
        kept.len()
    );
    assert!(dead.headers["error.message"].len() <= 1024);
    assert_eq!(kept[..], huge[..kept.len()]);
    // The service went on: the next manifest was decided.
    assert!(records
        .iter()
        .any(|r| r.topic == topics.decisions && r.key_str() == "AFTER-BIG"));
    service.stop().expect("clean stop");
}

#[test]
fn a_backlog_scored_on_many_threads_keeps_each_manifests_revisions_in_order() {
    // A backlog is polled in full batches, which the scoring threads score in parallel (more threads than
    // this machine has cores, so they interleave); the outputs must still leave in input order: every
    // manifest's revisions in order on the decisions topic, each exactly once, dead letters beside them.
    let mut config = config("threads");
    config.service.scoring_threads = 4;
    let topics = config.kafka.topics.clone();
    create_topics(&config);
    let ids = 40;
    let revisions = 50;
    let mut records: Vec<Kv> = Vec::new();
    for r in 0..revisions {
        for i in 0..ids {
            let id = format!("M-{i:03}");
            let mut m: serde_json::Value =
                serde_json::from_str(&manifest(&id, i, i % 15, i)).unwrap();
            m["revision"] = serde_json::json!(r);
            records.push((Some(id.into_bytes()), Some(serde_json::to_vec(&m).unwrap())));
        }
        records.push((
            Some(format!("bad-{r}").into_bytes()),
            Some(b"{\"manifest_id\": 5}".to_vec()),
        ));
    }
    let total = records.len();
    send_all(&config, &topics.manifests, &records);
    let service = InProcess::start(config.clone());
    let outputs = Collector::start(&[&topics.decisions, &topics.dlq]).exactly(total);

    let mut seen: HashMap<String, Vec<i64>> = HashMap::new();
    for r in outputs.iter().filter(|r| r.topic == topics.decisions) {
        seen.entry(r.key_str())
            .or_default()
            .push(r.json()["revision"].as_i64().unwrap());
    }
    assert_eq!(seen.len(), ids);
    let in_order: Vec<i64> = (0..revisions as i64).collect();
    for (id, got) in &seen {
        assert_eq!(got, &in_order, "decisions of {id} out of order or repeated");
    }
    let dead = outputs.iter().filter(|r| r.topic == topics.dlq).count();
    assert_eq!(dead, revisions);
    let parallel = metric(
        service.http,
        "borderlane_scoring_batch_records_count{threads=\"parallel\"}",
    );
    assert!(
        parallel > 0.0,
        "no batch was scored on the scoring threads, so this test proved nothing"
    );
    service.stop().expect("clean stop");
}
