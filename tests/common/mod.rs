//! Shared helpers of the `tests/kafka_*.rs` suites: the real broker (started once per test binary through
//! `scripts/kafka start`, or `KAFKA_BOOTSTRAP` when set), unique topic names, the service in-process or as
//! the binary, a background collector of output records, HTTP probes and hand-written fixtures.
//!
//! A broker that cannot be started or reached FAILS the test, locally and in CI: it never skips.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use borderlane::service::config::Config;
use borderlane::service::{Running, Shutdown};
use borderlane::traffic::produce::Loader;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Generous bound for anything a test waits for (never asserted as a duration).
pub const PATIENCE: Duration = Duration::from_secs(120);

static BOOTSTRAP: OnceLock<String> = OnceLock::new();

/// The broker address: `KAFKA_BOOTSTRAP` if set, else `scripts/kafka start` (idempotent). Panics — the
/// test fails — when the broker cannot be started or reached.
pub fn bootstrap() -> String {
    BOOTSTRAP
        .get_or_init(|| {
            let addr = match std::env::var("KAFKA_BOOTSTRAP") {
                Ok(a) if !a.trim().is_empty() => a.trim().to_string(),
                _ => {
                    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka");
                    let out = Command::new(&script)
                        .arg("start")
                        .stderr(Stdio::inherit())
                        .output()
                        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
                    let stdout = String::from_utf8_lossy(&out.stdout);
                    assert!(
                        out.status.success(),
                        "scripts/kafka start failed ({}): {stdout}; a real broker is required \
                         (CI={:?})",
                        out.status,
                        std::env::var("CI").ok()
                    );
                    stdout
                        .lines()
                        .find_map(|l| l.strip_prefix("KAFKA_BOOTSTRAP="))
                        .unwrap_or_else(|| panic!("no KAFKA_BOOTSTRAP in: {stdout}"))
                        .trim()
                        .to_string()
                }
            };
            let sock: SocketAddr = addr
                .split(',')
                .next()
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("KAFKA_BOOTSTRAP {addr:?} is not host:port"));
            TcpStream::connect_timeout(&sock, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("Kafka broker at {addr} unreachable: {e}"));
            addr
        })
        .clone()
}

/// A name unique to this run and test, so tests share one broker in parallel.
pub fn unique(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "t-{name}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Routes the in-process service's logs to the test harness (shown only for a failing test).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_test_writer()
        .try_init();
}

/// A service configuration on the test broker with topics and group unique to `name`.
pub fn config(name: &str) -> Config {
    init_logs();
    let id = unique(name);
    let mut c = Config::default();
    c.kafka.bootstrap_servers = bootstrap();
    c.kafka.group_id = format!("{id}-group");
    c.kafka.create_topics = true;
    c.kafka.topic_partitions = 3;
    c.kafka.topics.manifests = format!("{id}-manifests");
    c.kafka.topics.partners = format!("{id}-partners");
    c.kafka.topics.decisions = format!("{id}-decisions");
    c.kafka.topics.dlq = format!("{id}-dlq");
    c.kafka.topics.control = format!("{id}-control");
    c.kafka.topics.outcomes = format!("{id}-outcomes");
    c.http.listen = "127.0.0.1:0".parse().unwrap();
    // Each service keeps its own audit trail; the admin API starts only where a test gives it tokens.
    c.admin.audit_log = std::env::temp_dir().join(format!("{id}-audit.jsonl"));
    c.admin.listen = Some("127.0.0.1:0".parse().unwrap());
    c.officers.listen = Some("127.0.0.1:0".parse().unwrap());
    c
}

/// Creates the service's topics now (as the service would), so tests can fill them before it starts.
pub fn create_topics(config: &Config) {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(borderlane::service::kafka::topics::ensure(config))
        .expect("creating topics");
}

/// The service running in-process on its own runtime.
pub struct InProcess {
    /// Owns the service's tasks.
    runtime: tokio::runtime::Runtime,
    /// The guard's outcome.
    done: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// Stops the service.
    shutdown: Shutdown,
    /// Where /readyz and /metrics are.
    pub http: SocketAddr,
    /// Where the officers' console and feed are, when they run (they need an officer token).
    pub officers: Option<SocketAddr>,
}

impl InProcess {
    pub fn start(config: Config) -> InProcess {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let running: Running = runtime
            .block_on(borderlane::service::start(config))
            .expect("service starts");
        let http = running.http_addr();
        let officers = running.officers_addr();
        let shutdown = running.shutdown_handle();
        // A service that stops by itself says why at once (the test then times out on its outputs).
        let done = runtime.spawn(async move {
            let r = running.wait(std::future::pending()).await;
            if let Err(e) = &r {
                eprintln!("in-process service stopped with an error: {e:#}");
            }
            r
        });
        InProcess {
            runtime,
            done: Some(done),
            shutdown,
            http,
            officers,
        }
    }

    /// Signals shutdown and returns the guard's outcome.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.trigger();
        let done = self.done.take().unwrap();
        self.runtime
            .block_on(async { tokio::time::timeout(PATIENCE, done).await })
            .expect("service stops within the patience bound")
            .expect("guard task")
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// `borderlane serve` as a child process.
pub struct Binary {
    /// The process.
    pub child: Child,
    /// Its /readyz and /metrics.
    pub http: SocketAddr,
    /// Its log (stderr), shown when the test fails.
    pub log: PathBuf,
}

impl Binary {
    /// Writes `config_text` to a file and starts the binary on it with extra environment overrides.
    pub fn start(config_text: &str, env: &[(&str, String)], port: u16) -> Binary {
        let dir = std::env::temp_dir().join(unique("cfg"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("borderlane.toml");
        std::fs::write(&path, config_text).unwrap();
        let mut cmd = Command::new(borderlane_bin());
        cmd.arg("serve").arg("--config").arg(&path);
        cmd.env("BORDERLANE_HTTP__LISTEN", format!("127.0.0.1:{port}"));
        cmd.env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let log = dir.join("serve.log");
        let file = std::fs::File::create(&log).unwrap();
        cmd.stdout(Stdio::null()).stderr(file);
        let child = cmd.spawn().expect("spawn borderlane serve");
        Binary {
            child,
            http: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        }
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits for the process to exit (bounded) and returns its exit code (None if killed by a signal).
    pub fn wait(mut self) -> Option<i32> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "borderlane serve did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            eprintln!("--- tail of {} ---", self.log.display());
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `borderlane` binary to run: `BORDERLANE_BIN` when set (a copy of this worktree's build, safe from
/// other worktrees writing the same shared target directory), else the one cargo built for this test.
pub fn borderlane_bin() -> PathBuf {
    match std::env::var_os("BORDERLANE_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_borderlane")),
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` over plain HTTP/1.1: (status, body); None when nothing listens yet.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    http_get_auth(addr, path, None)
}

/// `GET path` with an optional bearer token.
pub fn http_get_auth(addr: SocketAddr, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split(' ').nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// `method path` with an optional bearer token and JSON body: (status, body); None when nothing listens.
pub fn http_call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split(' ').nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// The value of one metric line (`name{labels}` exactly as exported), 0 when absent.
pub fn metric(addr: SocketAddr, series: &str) -> f64 {
    let (_, body) = http_get(addr, "/metrics").expect("metrics reachable");
    body.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// Polls `cond` until true; panics (test failure) after the patience bound.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One record read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: HashMap<String, String>,
}

impl Record {
    pub fn key_str(&self) -> String {
        String::from_utf8_lossy(self.key.as_deref().unwrap_or_default()).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(self.value.as_deref().expect("value")).expect("JSON value")
    }
}

/// Reads topics from the beginning on a background thread (group-less, every partition).
pub struct Collector {
    /// Records so far, in arrival order.
    records: Arc<Mutex<Vec<Record>>>,
    /// Stops the thread.
    stop: Arc<AtomicBool>,
    /// The reading thread.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Collector {
    pub fn start(topics: &[&str]) -> Collector {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap())
            .set("group.id", unique("collector"))
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "10")
            .set("isolation.level", "read_committed")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for t in topics {
            let md = consumer
                .fetch_metadata(Some(t), Duration::from_secs(30))
                .unwrap();
            let parts = md.topics()[0].partitions();
            assert!(!parts.is_empty(), "topic {t} has no partitions");
            for p in parts {
                tpl.add_partition_offset(t, p.id(), Offset::Beginning)
                    .unwrap();
            }
        }
        consumer.assign(&tpl).unwrap();
        let records = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (records.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match consumer.poll(Duration::from_millis(50)) {
                    Some(Ok(m)) => {
                        let mut headers = HashMap::new();
                        if let Some(h) = m.headers() {
                            for hdr in h.iter() {
                                headers.insert(
                                    hdr.key.to_string(),
                                    String::from_utf8_lossy(hdr.value.unwrap_or_default())
                                        .into_owned(),
                                );
                            }
                        }
                        r.lock().unwrap().push(Record {
                            topic: m.topic().to_string(),
                            partition: m.partition(),
                            offset: m.offset(),
                            key: m.key().map(<[u8]>::to_vec),
                            value: m.payload().map(<[u8]>::to_vec),
                            headers,
                        });
                    }
                    Some(Err(e)) => eprintln!("collector: {e}"),
                    None => {}
                }
            }
        });
        Collector {
            records,
            stop,
            thread: Some(thread),
        }
    }

    pub fn len(&self) -> usize {
        self.records.lock().unwrap().len()
    }

    pub fn snapshot(&self) -> Vec<Record> {
        self.records.lock().unwrap().clone()
    }

    /// Waits until at least `n` records arrived (bounded).
    pub fn wait_for(&self, n: usize) -> Vec<Record> {
        wait_until(&format!("{n} records (have {})", self.len()), || {
            self.len() >= n
        });
        self.snapshot()
    }

    /// Waits for `n` records, then keeps reading a while to catch any extra (duplicate) record.
    pub fn exactly(&self, n: usize) -> Vec<Record> {
        self.wait_for(n);
        std::thread::sleep(Duration::from_secs(2));
        let all = self.snapshot();
        assert_eq!(all.len(), n, "more records than expected arrived");
        all
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A record to send: (key, value); a `None` value is a null value (tombstone).
pub type Kv = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Sends records with the service's own loader; waits for every delivery.
pub fn send_all(config: &Config, topic: &str, records: &[Kv]) {
    let mut loader = Loader::new(config).unwrap();
    for (k, v) in records {
        loader
            .send(topic, k.as_deref(), v.as_deref(), None)
            .unwrap();
    }
    let d = loader.flush(PATIENCE).unwrap();
    assert_eq!(d.delivered, records.len() as u64);
}

// ---------------------------------------------------------------------------------------------------------
// Fixtures (hand-written; the generator of `borderlane generate` replaces them once it lands).

/// A partner record.
pub fn partner(id: &str, entity: &str, kind: &str, value: &str, status: &str, tier: u8) -> String {
    serde_json::json!({
        "partner_id": id,
        "entity": entity,
        "identifiers": [{"kind": kind, "value": value}],
        "status": status,
        "tier": tier,
        "certified_on": "2019-03-04",
        "validated_on": if status == "validated" { serde_json::json!("2024-06-01") } else { serde_json::Value::Null },
        "trade_compliance": false,
        "mra_program": null,
        "updated_at": "2026-11-01T00:00:00Z"
    })
    .to_string()
}

/// The importer partner of index `i`: statuses and tiers cycle so decisions differ.
pub fn importer(i: usize) -> String {
    let (status, tier) = [
        ("validated", 3),
        ("validated", 2),
        ("certified", 1),
        ("suspended", 1),
        ("applicant", 1),
        ("removed", 1),
    ][i % 6];
    partner(
        &format!("CTP-IMP-{i:05}"),
        "importer",
        "ior",
        &format!("IOR-{i:05}"),
        status,
        tier,
    )
}

/// The carrier partner of index `i`.
pub fn carrier(i: usize) -> String {
    let status = ["validated", "certified", "suspended"][i % 3];
    partner(
        &format!("CTP-CAR-{i:03}"),
        "highway_carrier",
        "scac",
        &format!("SC{i:02}"),
        status,
        2,
    )
}

pub const PORTS: [&str; 8] = [
    "2304", "2506", "2301", "3801", "3310", "2704", "4701", "0901",
];

/// A well-formed manifest: importer `IOR-{importer}`, carrier `SC{carrier}`, port `PORTS[port]`.
pub fn manifest(id: &str, importer: usize, carrier: usize, port: usize) -> String {
    manifest_for(id, &format!("IOR-{importer:05}"), importer, carrier, port)
}

/// A well-formed manifest whose importer id is `importer_id`; `variant` picks origin and commodity.
pub fn manifest_for(
    id: &str,
    importer_id: &str,
    variant: usize,
    carrier: usize,
    port: usize,
) -> String {
    let importer = variant;
    let port = PORTS[port % PORTS.len()];
    let mode = match port {
        "2704" => "ocean",
        "4701" => "air",
        _ => "truck",
    };
    let origin = ["MX", "CN", "CA", "DE"][importer % 4];
    let hts = ["847130", "851712", "610910", "940360"][importer % 4];
    let mut m = serde_json::json!({
        "manifest_id": id,
        "revision": 0,
        "filed_at": "2026-11-28T04:00:00Z",
        "mode": mode,
        "port_of_entry": port,
        "estimated_arrival": "2026-11-28T05:00:00Z",
        "carrier": {"scac": format!("SC{carrier:02}"), "name": "Acme Transportes"},
        "conveyance": {"id": "3AKJHHDR5KSKG1234", "trip_number": "ABCD0000123456"},
        "equipment": [{"id": "TRLU1234567", "seals": [{"number": "MX0001234", "iso17712": "H", "affixed_by": "manufacturer"}]}],
        "shipments": [{
            "shipment_id": format!("{id}-01"),
            "importer": {"id": importer_id, "name": "Contoso Imports"},
            "consignee": {"id": "98-7654321CD", "name": "Contoso DC 4"},
            "shipper": {"id": "SHP-MX-0042", "name": "Maquila Norte", "country": "MX"},
            "manufacturer": {"id": "MXMAQNOR1200TIJ", "name": "Maquila Norte", "country": "MX"},
            "broker": {"id": "A1B"},
            "origin_country": origin,
            "transit_countries": [],
            "commodities": [{"hts": hts, "description": "laptop computers", "quantity": 200, "unit": "CTN", "weight_kg": 1200.0, "value_usd": 150000.0}]
        }]
    });
    if mode == "truck" {
        m["drivers"] = serde_json::json!([{"name": "J. Perez", "fast_card": "42712345600"}]);
    }
    m.to_string()
}

/// A partner table built from records applied in order (`None` value = tombstone of the key).
pub fn table_of(
    partners: &[(String, Option<String>)],
    limits: &borderlane_core::wire::Limits,
) -> borderlane_core::table::PartnerTable {
    let table = borderlane_core::table::PartnerTable::new();
    for (k, v) in partners {
        match v {
            // Bad partner records are skipped, as the service does.
            Some(v) => {
                if let Ok(p) = borderlane_core::wire::parse_partner(v.as_bytes(), limits) {
                    table.upsert(p)
                }
            }
            None => {
                table.remove(k);
            }
        }
    }
    table
}

/// The core's verdict for `bytes` with `table` and the embedded default policy, as JSON without
/// `decided_at`.
pub fn expected(
    table: &borderlane_core::table::PartnerTable,
    limits: &borderlane_core::wire::Limits,
    bytes: &[u8],
) -> Result<serde_json::Value, borderlane_core::wire::BadInput> {
    static POLICY: OnceLock<borderlane_core::policy::CompiledPolicy> = OnceLock::new();
    let policy = POLICY.get_or_init(borderlane::load::policy::default_policy);
    borderlane_core::score::process(policy, table, bytes, limits)
        .map(|(_, d)| serde_json::to_value(&d).unwrap())
}

/// A decision as JSON without its `decided_at`.
pub fn without_decided_at(mut v: serde_json::Value) -> serde_json::Value {
    let had = v.as_object_mut().unwrap().remove("decided_at");
    assert!(had.is_some(), "decision has no decided_at: {v}");
    v
}
