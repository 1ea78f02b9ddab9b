//! The broker and the topics of a run: finding (or starting) the broker, unique names, creating and
//! deleting topics, and loading partner records.
//!
//! The broker is `--bootstrap` when given, else `KAFKA_BOOTSTRAP`, else `scripts/kafka start` (idempotent),
//! exactly as the Kafka tests find it. An unreachable broker is an error, never a skip.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use borderlane::service::config::Config;
use borderlane::service::kafka::clients::{client_config, Role};
use borderlane::traffic::produce::Loader;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

/// The broker address; see the module documentation.
pub fn bootstrap(explicit: Option<&str>) -> anyhow::Result<String> {
    let addr = match explicit {
        Some(a) => a.trim().to_string(),
        None => match std::env::var("KAFKA_BOOTSTRAP") {
            Ok(a) if !a.trim().is_empty() => a.trim().to_string(),
            _ => start_local()?,
        },
    };
    let sock: SocketAddr = addr
        .split(',')
        .next()
        .and_then(|a| a.trim().parse().ok())
        .ok_or_else(|| anyhow!("bootstrap {addr:?} is not host:port (use an IP address)"))?;
    TcpStream::connect_timeout(&sock, Duration::from_secs(10))
        .with_context(|| format!("Kafka broker at {addr} unreachable"))?;
    Ok(addr)
}

/// `scripts/kafka start`: starts (or reuses) the project's local broker and returns its address.
fn start_local() -> anyhow::Result<String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka");
    let out = Command::new(&script)
        .arg("start")
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "{} start failed ({}): {stdout}",
            script.display(),
            out.status
        );
    }
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("KAFKA_BOOTSTRAP="))
        .map(|a| a.trim().to_string())
        .ok_or_else(|| anyhow!("no KAFKA_BOOTSTRAP= line in: {stdout}"))
}

/// The GC log of the broker `scripts/kafka` started (its state dir: `KAFKA_STATE_DIR`, else `target/kafka`),
/// when `bootstrap` is that broker's address and the log exists.
pub fn local_gc_log(bootstrap: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("KAFKA_STATE_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/kafka"),
    };
    let started = std::fs::read_to_string(dir.join("bootstrap")).ok()?;
    let log = dir.join("gc.log");
    (started.trim() == bootstrap.trim() && log.is_file()).then_some(log)
}

/// A name unique to this process and call, so runs never see each other's records.
pub fn unique(what: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!(
        "lt-{what}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn admin(config: &Config) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    client_config(&config.kafka, Role::Admin)
        .create()
        .map_err(|e| anyhow!("creating the admin client: {e}"))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building a runtime for admin calls")
}

/// Creates `names` with `partitions` partitions each (replication 1 on the local broker), waiting until
/// the broker reports them. Topics that exist already are fine.
pub fn create_topics(config: &Config, names: &[&str], partitions: i32) -> anyhow::Result<()> {
    let admin = admin(config)?;
    let new: Vec<NewTopic<'_>> = names
        .iter()
        .map(|n| {
            NewTopic::new(
                n,
                partitions,
                TopicReplication::Fixed(config.kafka.replication_factor),
            )
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = runtime()?.block_on(admin.create_topics(new.iter(), &opts))?;
    for r in results {
        match r {
            Ok(_) | Err((_, rdkafka::error::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("creating topic {name}: {code}"),
        }
    }
    wait_visible(&admin, names)
}

fn wait_visible(admin: &AdminClient<DefaultClientContext>, names: &[&str]) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let md = admin
            .inner()
            .fetch_metadata(None, Duration::from_secs(10))
            .context("fetching metadata")?;
        let missing: Vec<&&str> = names
            .iter()
            .filter(|n| {
                !md.topics()
                    .iter()
                    .any(|t| t.name() == **n && t.error().is_none() && !t.partitions().is_empty())
            })
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            bail!("topics {missing:?} not visible 30 s after creation");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Deletes the topics of a finished run (best effort: a failure is reported, not fatal), so repeated
/// runs do not fill the broker's disk.
pub fn delete_topics(config: &Config, names: &[String]) {
    let result = (|| -> anyhow::Result<()> {
        let admin = admin(config)?;
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        runtime()?.block_on(admin.delete_topics(&refs, &opts))?;
        Ok(())
    })();
    if let Err(e) = result {
        eprintln!("loadtest: warning: deleting topics {names:?}: {e:#}");
    }
}

/// Assigns `partitions` (topic, partition) to `consumer`, each from its beginning.
pub fn assign_from_beginning(
    consumer: &rdkafka::consumer::BaseConsumer,
    partitions: &[(String, i32)],
) -> anyhow::Result<()> {
    use rdkafka::consumer::Consumer;
    let mut tpl = rdkafka::TopicPartitionList::new();
    for (t, p) in partitions {
        tpl.add_partition_offset(t, *p, rdkafka::Offset::Beginning)?;
    }
    consumer.assign(&tpl).context("assigning the output topics")
}

/// Sends `records` (key, value) to `topic` with the service's own loader and waits for every delivery.
pub fn load_records(
    config: &Config,
    topic: &str,
    records: &[(String, Vec<u8>)],
) -> anyhow::Result<()> {
    let mut loader = Loader::new(config)?;
    for (k, v) in records {
        loader.send(topic, Some(k.as_bytes()), Some(v), None)?;
    }
    let d = loader.flush(Duration::from_secs(300))?;
    if d.delivered != records.len() as u64 {
        bail!(
            "{} of {} partner records delivered to {topic}",
            d.delivered,
            records.len()
        );
    }
    Ok(())
}

/// The base service configuration: `--service-config FILE` (with its environment overrides) or the
/// built-in defaults with the environment overrides (`BORDERLANE_<SECTION>__<KEY>`), on `bootstrap`.
pub fn base_config(file: Option<&std::path::Path>, bootstrap: &str) -> anyhow::Result<Config> {
    let mut c = match file {
        Some(p) => Config::load(p)?,
        None => Config::from_text("", std::env::vars(), std::path::Path::new("."))?,
    };
    c.kafka.bootstrap_servers = bootstrap.to_string();
    c.kafka.create_topics = true;
    c.http.listen = "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!());
    Ok(c)
}
