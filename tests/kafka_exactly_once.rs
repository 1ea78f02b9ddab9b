//! Exactly-once on the real broker, with the `borderlane` binary as separate OS processes in one group
//! (`kafka.delivery = "exactly_once"`):
//!
//! - `crashes_lose_and_duplicate_nothing` — the short chaos run: two instances, manifests (1 % malformed)
//!   produced at a steady rate, a random instance SIGKILLed every 1.5–3 s and restarted with its instance
//!   id; a `read_committed` reader then finds exactly one output (decision or dead letter) per input
//!   offset, mapped through the `source.*` headers, and a `read_uncommitted` reader proves transactions
//!   were actually aborted (the run was not vacuous).
//! - `a_stopped_zombie_is_fenced` — one instance is SIGSTOPped past the session and transaction timeouts,
//!   its partitions move to the other, then SIGCONT: its late writes never become visible (0 duplicates).
//! - `a_second_instance_with_the_same_id_stops_the_first` — static membership (`group.instance.id` =
//!   `kafka.instance_id`): a second instance with the same id fences the first, which stops with an error
//!   naming the duplicate id (at-least-once, so no transactional fencing is involved).
//!
//! `CHAOS_SEED` picks the kill schedule (default 1).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 6;

fn config_text(c: &borderlane::service::config::Config) -> String {
    let t = &c.kafka.topics;
    format!(
        r#"
[kafka]
group_id = "{group}"
create_topics = true
topic_partitions = {PARTITIONS}
delivery = "exactly_once"
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
[http]
console = false
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

fn env(instance: &str) -> Vec<(&'static str, String)> {
    vec![
        ("BORDERLANE_KAFKA__BOOTSTRAP_SERVERS", bootstrap()),
        ("BORDERLANE_KAFKA__INSTANCE_ID", instance.to_string()),
    ]
}

/// A small deterministic generator for the kill schedule.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Starts `borderlane produce` for `n` manifests at `rate`/s with 1 % malformed.
fn produce(text: &str, n: usize, rate: usize, seed: u64) -> std::process::Child {
    let dir = std::env::temp_dir().join(unique("produce"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("borderlane.toml");
    std::fs::write(&path, text).unwrap();
    std::process::Command::new(borderlane_bin())
        .arg("produce")
        .arg("--config")
        .arg(&path)
        .args(["--generate", &n.to_string(), "--seed", &seed.to_string()])
        .args(["--gen-partners", "2000", "--rate", &rate.to_string()])
        .args(["--bad-share", "0.01"])
        .env("BORDERLANE_KAFKA__BOOTSTRAP_SERVERS", bootstrap())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn borderlane produce")
}

/// End offsets (high watermarks) of every partition of `topic`.
fn end_offsets(topic: &str) -> Vec<(i32, i64)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .unwrap();
    (0..PARTITIONS)
        .map(|p| {
            let (_, high) = c
                .fetch_watermarks(topic, p, Duration::from_secs(30))
                .unwrap();
            (p, high)
        })
        .collect()
}

/// Records in `topics` as a `read_uncommitted` reader sees them (aborted ones included), read to the
/// current end.
fn uncommitted_count(topics: &[&str]) -> usize {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", unique("uncommitted"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_uncommitted")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut parts = 0;
    for t in topics {
        for p in 0..PARTITIONS {
            tpl.add_partition_offset(t, p, Offset::Beginning).unwrap();
            parts += 1;
        }
    }
    c.assign(&tpl).unwrap();
    let (mut n, mut eof) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while eof < parts && Instant::now() < deadline {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(_)) => n += 1,
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => eof += 1,
            _ => {}
        }
    }
    n
}

/// Outputs per input (source.partition, source.offset) among committed records.
fn outputs_by_input(out: &Collector) -> HashMap<(i32, i64), usize> {
    let mut by = HashMap::new();
    for r in out.snapshot() {
        let p: i32 = r.headers["source.partition"].parse().unwrap();
        let o: i64 = r.headers["source.offset"].parse().unwrap();
        *by.entry((p, o)).or_insert(0) += 1;
    }
    by
}

/// (lost, duplicated) over every input offset below the end offsets. Transaction markers also take
/// offsets when the input is transactional; the manifests here are produced without transactions, so
/// every offset is a record.
fn verify(ends: &[(i32, i64)], by: &HashMap<(i32, i64), usize>) -> (usize, usize) {
    let (mut lost, mut dup) = (0, 0);
    for &(p, end) in ends {
        for o in 0..end {
            match by.get(&(p, o)) {
                None => lost += 1,
                Some(&n) if n > 1 => dup += n - 1,
                _ => {}
            }
        }
    }
    (lost, dup)
}

#[test]
fn crashes_lose_and_duplicate_nothing() {
    const MANIFESTS: usize = 20_000;
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut config = config("eos-chaos");
    config.kafka.topic_partitions = PARTITIONS;
    let topics = config.kafka.topics.clone();
    create_topics(&config);
    let text = config_text(&config);
    let out = Collector::start(&[&topics.decisions, &topics.dlq]);

    let ids = ["i0", "i1"];
    let mut svcs: Vec<Option<Binary>> = ids
        .iter()
        .map(|id| Some(Binary::start(&text, &env(id), free_port())))
        .collect();
    let mut producer = produce(&text, MANIFESTS, 1_500, seed);
    wait_until("first decisions", || out.len() >= 500);

    // Kill a random instance every 1.5–3 s while manifests flow; restart it with the same instance id.
    let mut rng = Lcg(seed);
    let mut kills = 0;
    loop {
        let pause = 1_500 + rng.next() % 1_500;
        std::thread::sleep(Duration::from_millis(pause));
        if producer.try_wait().unwrap().is_some() && kills >= 4 {
            break;
        }
        let victim = (rng.next() % ids.len() as u64) as usize;
        let old = svcs[victim].take().unwrap();
        old.signal("KILL");
        assert_eq!(old.wait(), None, "killed by a signal");
        kills += 1;
        svcs[victim] = Some(Binary::start(&text, &env(ids[victim]), free_port()));
        if kills >= 12 {
            break;
        }
    }
    let status = producer.wait().unwrap();
    assert!(status.success(), "borderlane produce failed: {status}");
    let ends = end_offsets(&topics.manifests);
    let total: i64 = ends.iter().map(|(_, e)| e).sum();
    assert_eq!(total as usize, MANIFESTS);
    wait_until("every manifest has an outcome", || {
        verify(&ends, &outputs_by_input(&out)).0 == 0
    });
    std::thread::sleep(Duration::from_secs(3));
    let by = outputs_by_input(&out);
    let (lost, duplicated) = verify(&ends, &by);
    let committed = out.len();
    let seen_uncommitted = uncommitted_count(&[&topics.decisions, &topics.dlq]);
    let aborted = seen_uncommitted.saturating_sub(committed);
    let dead = out
        .snapshot()
        .iter()
        .filter(|r| r.topic == topics.dlq)
        .count();
    eprintln!(
        "CHAOS mode=exactly_once seed={seed} manifests={MANIFESTS} kills={kills} broker_restarts=0 \
         lost={lost} duplicated={duplicated} committed={committed} dead_letters={dead} \
         aborted_records={aborted}"
    );
    for s in svcs.into_iter().flatten() {
        s.signal("TERM");
        assert_eq!(s.wait(), Some(0), "SIGTERM must stop the service cleanly");
    }
    assert_eq!(lost, 0, "inputs without a committed output");
    assert_eq!(duplicated, 0, "inputs with more than one committed output");
    assert_eq!(committed, MANIFESTS, "outputs not mapped to inputs");
    assert!(kills >= 4, "too few kills: {kills}");
    assert!(dead > 0, "the malformed manifests must be dead-lettered");
    assert!(
        aborted > 0,
        "no aborted output seen by a read_uncommitted reader: the kills never hit an open transaction"
    );
}

#[test]
fn a_stopped_zombie_is_fenced() {
    const MANIFESTS: usize = 15_000;
    let mut config = config("eos-zombie");
    config.kafka.topic_partitions = PARTITIONS;
    let topics = config.kafka.topics.clone();
    create_topics(&config);
    let text = config_text(&config);
    let out = Collector::start(&[&topics.decisions, &topics.dlq]);

    let zombie = Binary::start(&text, &env("z0"), free_port());
    let mut producer = produce(&text, MANIFESTS, 1_000, 5);
    wait_until("first decisions", || out.len() >= 500);
    let other = Binary::start(&text, &env("z1"), free_port());
    // Both own partitions once the second has joined and decided something.
    wait_until("the second instance decides", || {
        http_get(other.http, "/metrics").is_some()
            && metric(
                other.http,
                "borderlane_transactions_total{outcome=\"committed\"}",
            ) >= 3.0
    });
    // Freeze the first past the session timeout (6 s) and the transaction timeout (10 s): the group
    // gives its partitions to the other, the coordinator aborts its open transaction.
    zombie.signal("STOP");
    std::thread::sleep(Duration::from_secs(14));
    zombie.signal("CONT");
    let status = producer.wait().unwrap();
    assert!(status.success(), "borderlane produce failed: {status}");
    let ends = end_offsets(&topics.manifests);
    wait_until("every manifest has an outcome", || {
        verify(&ends, &outputs_by_input(&out)).0 == 0
    });
    std::thread::sleep(Duration::from_secs(3));
    let (lost, duplicated) = verify(&ends, &outputs_by_input(&out));
    eprintln!(
        "ZOMBIE lost={lost} duplicated={duplicated} committed={}",
        out.len()
    );
    other.signal("TERM");
    assert_eq!(other.wait(), Some(0));
    // The zombie either aborted and rejoined, or was fenced and stopped with an error (exit 1).
    zombie.signal("TERM");
    let code = zombie.wait();
    assert!(code == Some(0) || code == Some(1), "zombie exit: {code:?}");
    assert_eq!(lost, 0);
    assert_eq!(duplicated, 0, "the zombie's late writes became visible");
    assert_eq!(out.len(), MANIFESTS);
}

/// `kafka.instance_id` doubles as the manifest consumer's `group.instance.id` (static membership): a
/// second running instance with the same id makes the group coordinator fence the first, which stops
/// with an error naming the duplicate id. Run in at-least-once mode, where no transactional fencing
/// exists, so only the static membership can stop it; nothing is lost meanwhile.
#[test]
fn a_second_instance_with_the_same_id_stops_the_first() {
    const MANIFESTS: usize = 4_000;
    let mut config = config("dup-id");
    config.kafka.topic_partitions = PARTITIONS;
    let topics = config.kafka.topics.clone();
    create_topics(&config);
    let text = config_text(&config).replace(
        "delivery = \"exactly_once\"",
        "delivery = \"at_least_once\"",
    );
    let out = Collector::start(&[&topics.decisions, &topics.dlq]);

    let first = Binary::start(&text, &env("same"), free_port());
    let mut producer = produce(&text, MANIFESTS, 500, 9);
    wait_until("first decisions", || out.len() >= 200);
    let second = Binary::start(&text, &env("same"), free_port());
    // The first is fenced at its next heartbeat once the second has joined.
    let log_path = first.log.clone();
    let code = first.wait();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert_eq!(code, Some(1), "the first instance must stop with an error");
    assert!(
        log.contains("ANOTHER RUNNING INSTANCE IS CONFIGURED WITH THIS kafka.instance_id"),
        "the first instance's log must name the duplicate instance id:\n{log}"
    );
    let status = producer.wait().unwrap();
    assert!(status.success(), "borderlane produce failed: {status}");
    let ends = end_offsets(&topics.manifests);
    wait_until("every manifest has an outcome", || {
        verify(&ends, &outputs_by_input(&out)).0 == 0
    });
    second.signal("TERM");
    assert_eq!(second.wait(), Some(0));
}
