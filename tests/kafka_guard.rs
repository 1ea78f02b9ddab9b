//! The shutdown guard and start-up checks: a failing task stops the whole service (no half-alive
//! process), a bad configuration is refused with every error and its key path, and a first start makes
//! its topics while the partner follower is already reading.

mod common;

use std::process::Command;

use common::*;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

#[test]
fn a_failing_task_stops_the_whole_service() {
    // Topics missing and creation disabled: the partner task fails at start-up. The guard must stop the
    // HTTP server and the (still gated) pipeline too, and report the failure.
    let mut config = config("guard");
    config.kafka.create_topics = false;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let result = runtime.block_on(async {
        let running = borderlane::service::start(config.clone()).await.unwrap();
        let http = running.http_addr();
        assert_eq!(http_get(http, "/healthz").map(|r| r.0), Some(200));
        let outcome = tokio::time::timeout(PATIENCE, running.wait(std::future::pending()))
            .await
            .expect("the guard stops the service by itself");
        (outcome, http)
    });
    let (outcome, http) = result;
    let err = format!("{:#}", outcome.expect_err("a failed task is an error"));
    assert!(err.contains("task partners failed"), "{err}");
    assert!(err.contains(&config.kafka.topics.manifests), "{err}");
    assert!(err.contains("kafka.create_topics is false"), "{err}");
    assert!(
        http_get(http, "/healthz").is_none(),
        "HTTP still serving after the guard stopped the service"
    );
}

#[test]
fn a_stop_while_no_broker_answers_at_start_up_is_clean() {
    // Nothing listens at the bootstrap address: the topics cannot be made sure of, nor the partner topic's
    // end offsets read, for the whole (long) start-up budget. A stop meanwhile must end every task within
    // the (much shorter) shutdown budget, cleanly — not wait out the start-up budget and fail the stop
    // with "shutdown timed out" (what it did while the start-up's metadata calls ignored the stop).
    let mut config = config("nobroker");
    config.kafka.bootstrap_servers = format!("127.0.0.1:{}", free_port());
    config.kafka.startup_timeout_ms = 600_000;
    config.service.shutdown_timeout_ms = 10_000;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let outcome = runtime.block_on(async {
        let running = borderlane::service::start(config).await.unwrap();
        let http = running.http_addr();
        // Started: serving health, not ready (no partner table).
        assert_eq!(http_get(http, "/healthz").map(|r| r.0), Some(200));
        assert_eq!(http_get(http, "/readyz").map(|r| r.0), Some(503));
        let stop = tokio::time::sleep(std::time::Duration::from_secs(3));
        tokio::time::timeout(PATIENCE, running.wait(stop))
            .await
            .expect("the stop ends")
    });
    // A blocking call left running must not hold the test (`serve` bounds this the same way).
    runtime.shutdown_timeout(std::time::Duration::from_secs(10));
    if let Err(e) = outcome {
        panic!("a stop during start-up without a broker failed: {e:#}");
    }
}

#[test]
fn the_binary_refuses_a_bad_config_listing_every_error() {
    let dir = std::env::temp_dir().join(unique("badcfg"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "[kafka]\ntopic_partitions = \"three\"\ncolour = 1\n[http]\nlisten = \"nowhere\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_borderlane"))
        .args(["serve", "--config"])
        .arg(&path)
        .env("BORDERLANE_SERVICE__SHUTDOWN_TIMEOUT_MS", "soon")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for needle in [
        "4 configuration error(s)",
        "kafka.topic_partitions",
        "kafka.colour",
        "http.listen",
        "service.shutdown_timeout_ms",
        "(set by BORDERLANE_SERVICE__SHUTDOWN_TIMEOUT_MS)",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
}

#[test]
fn a_dead_letter_topic_smaller_than_the_manifest_topic_is_refused_at_start_up() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;
    // The dead-letter topic exists with the broker's ~1 MB limit while the manifest topic (created by the
    // service) takes 4 MiB records: a 2 MB manifest would be accepted and could never be dead-lettered.
    let config = config("dlqsize");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .unwrap();
    let dlq = NewTopic::new(&config.kafka.topics.dlq, 3, TopicReplication::Fixed(1))
        .set("max.message.bytes", "1000000");
    let created = runtime
        .block_on(admin.create_topics([&dlq], &AdminOptions::new()))
        .unwrap();
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
    let outcome = runtime.block_on(async {
        let running = borderlane::service::start(config.clone()).await.unwrap();
        tokio::time::timeout(PATIENCE, running.wait(std::future::pending()))
            .await
            .expect("the guard stops the service by itself")
    });
    let err = format!(
        "{:#}",
        outcome.expect_err("a too small dead-letter topic is an error")
    );
    assert!(err.contains(&config.kafka.topics.dlq), "{err}");
    assert!(err.contains("max.message.bytes (1000000)"), "{err}");
    // The same topics with room for every dead letter start (the check passes on the service's own).
    let mut ok = common::config("dlqsize-ok");
    ok.kafka.create_topics = true;
    runtime
        .block_on(borderlane::service::kafka::topics::ensure(&ok))
        .unwrap();
    runtime
        .block_on(borderlane::service::kafka::topics::check_dead_letter_room(
            &ok,
        ))
        .expect("the service's own topics pass");
}

#[test]
fn a_first_start_makes_its_topics_and_follows_the_partner_topic() {
    // No topic exists yet: the partner follower, started before the service has made its topics, fails
    // its first read, waits for them, then reads — the table completes and live updates are applied.
    let config = config("fresh");
    let service = InProcess::start(config.clone());
    wait_until("/readyz 200", || {
        http_get(service.http, "/readyz").map(|r| r.0) == Some(200)
    });
    assert_eq!(metric(service.http, "borderlane_partner_partitions"), 3.0);
    // Made by the service as configured (compacted), not by the broker on the follower's request.
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.bootstrap_servers)
        .create()
        .unwrap();
    let described = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(admin.describe_configs(
            [&ResourceSpecifier::Topic(&config.kafka.topics.partners)],
            &AdminOptions::new(),
        ))
        .unwrap();
    let resource = described.into_iter().next().unwrap().unwrap();
    let cleanup = resource.get("cleanup.policy").and_then(|e| e.value.clone());
    assert_eq!(cleanup.as_deref(), Some("compact"));
    let p = partner("CTP-FRESH-1", "importer", "ior", "FRESH-1", "certified", 1);
    send_all(
        &config,
        &config.kafka.topics.partners,
        &[(Some(b"CTP-FRESH-1".to_vec()), Some(p.into_bytes()))],
    );
    wait_until("the live partner applied", || {
        metric(service.http, "borderlane_partner_table_size") == 1.0
    });
    service.stop().unwrap();
}
