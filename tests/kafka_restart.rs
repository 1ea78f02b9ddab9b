//! Restarts on the real broker, with the `borderlane` binary: while `borderlane produce --generate` keeps
//! sending manifests, the service is stopped gracefully (SIGTERM: exit code 0), started again, killed
//! outright (SIGKILL: a crash), and started again. Every manifest still gets a decision — duplicates are
//! allowed, losses never.

mod common;

use std::collections::HashMap;

use common::*;

const MANIFESTS: usize = 30_000;

fn config_text(c: &borderlane::service::config::Config) -> String {
    let t = &c.kafka.topics;
    format!(
        r#"
[kafka]
group_id = "{group}"
create_topics = true
topic_partitions = 3
[kafka.topics]
manifests = "{m}"
partners = "{p}"
decisions = "{d}"
dlq = "{q}"
control = "{c}"
outcomes = "{o}"
[kafka.consumer]
# A killed instance's partitions move on after 6 s instead of 45 s.
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "1000"
[service]
shutdown_timeout_ms = 20000
"#,
        group = c.kafka.group_id,
        m = t.manifests,
        p = t.partners,
        d = t.decisions,
        q = t.dlq,
        c = t.control,
        o = t.outcomes,
    )
}

/// Distinct manifest ids decided so far.
fn decided(out: &Collector) -> HashMap<String, usize> {
    let mut ids = HashMap::new();
    for r in out.snapshot() {
        *ids.entry(r.key_str()).or_insert(0) += 1;
    }
    ids
}

#[test]
fn stop_kill_and_restart_lose_nothing() {
    let config = config("restart");
    let topics = config.kafka.topics.clone();
    create_topics(&config);
    let text = config_text(&config);
    let env = [("BORDERLANE_KAFKA__BOOTSTRAP_SERVERS", bootstrap())];
    let out = Collector::start(&[&topics.decisions, &topics.dlq]);

    // Manifests arrive throughout — `borderlane produce --generate`, paced — while the service is stopped
    // and started.
    let cfg_dir = std::env::temp_dir().join(unique("produce"));
    std::fs::create_dir_all(&cfg_dir).unwrap();
    let cfg_path = cfg_dir.join("borderlane.toml");
    std::fs::write(&cfg_path, &text).unwrap();
    let mut producer = std::process::Command::new(env!("CARGO_BIN_EXE_borderlane"))
        .arg("produce")
        .arg("--config")
        .arg(&cfg_path)
        .args(["--generate", &MANIFESTS.to_string(), "--seed", "11"])
        .args(["--gen-partners", "2000", "--rate", "2500"])
        .env("BORDERLANE_KAFKA__BOOTSTRAP_SERVERS", bootstrap())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn borderlane produce");
    let wanted: Vec<String> = {
        let g = borderlane::traffic::produce::generator(&config, 11, 2000, 0.0).unwrap();
        (0..MANIFESTS as u64)
            .map(|i| g.record(i).key().unwrap().to_string())
            .collect()
    };

    // 1. Graceful stop mid-stream: exit code 0.
    let port = free_port();
    let svc = Binary::start(&text, &env, port);
    wait_until("first decisions", || out.len() >= 2_000);
    svc.signal("TERM");
    let log = svc.log.clone();
    assert_eq!(svc.wait(), Some(0), "SIGTERM must stop the service cleanly");
    // Reaching the end of a followed partition (the empty control topic here) is how a follower knows it
    // caught up: librdkafka reports it as an event, and it must not reach the log as a client error.
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        !logged.contains("PartitionEOF"),
        "an end-of-partition event logged as an error:\n{logged}"
    );
    let after_stop = decided(&out).len();
    assert!(
        after_stop < MANIFESTS,
        "stopped after everything was decided: not mid-stream"
    );

    // 2. Restart, then crash mid-stream.
    let svc = Binary::start(&text, &env, free_port());
    wait_until("progress after restart", || {
        decided(&out).len() >= after_stop + 2_000
    });
    svc.signal("KILL");
    assert_eq!(svc.wait(), None, "killed by a signal");

    // 3. Restart after the crash and let it finish.
    let svc = Binary::start(&text, &env, free_port());
    let status = producer.wait().unwrap();
    assert!(status.success(), "borderlane produce failed: {status}");
    wait_until("every manifest decided", || {
        decided(&out).len() >= MANIFESTS
    });
    wait_until("ready", || {
        http_get(svc.http, "/readyz").map(|r| r.0) == Some(200)
    });
    svc.signal("TERM");
    assert_eq!(svc.wait(), Some(0));

    let ids = decided(&out);
    for id in &wanted {
        assert!(ids.contains_key(id), "{id} was lost");
    }
    assert_eq!(ids.len(), MANIFESTS, "outputs for manifests never sent");
    let dead = out
        .snapshot()
        .iter()
        .filter(|r| r.topic == topics.dlq)
        .count();
    assert_eq!(dead, 0, "good manifests were dead-lettered");
    let duplicates: usize = ids.values().map(|n| n - 1).sum();
    eprintln!(
        "restart test: {MANIFESTS} manifests, {duplicates} duplicate decisions after the crash"
    );
}
