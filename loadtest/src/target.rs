//! The systems under test, each on its own fresh topics: the real service (`borderlane::service`, in-process
//! on its own runtime, exactly as `borderlane serve` runs it) and the passthrough baseline — a consumer
//! that produces every record's unchanged key and bytes to one output topic, with the service's own client
//! properties (`serve::clients`), so the difference between the two is what the service adds. The service
//! can also be another build's `borderlane serve`, run as a child process ([`Launch::Binary`]): the same
//! harness then measures two builds alike, whatever their load generators were.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use borderlane::service::config::Config;
use borderlane::service::kafka::clients::{client_config, Role};
use borderlane::service::Shutdown;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde::Serialize;

use crate::kafka;

/// Which system a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `borderlane serve`: parse, score against the partner table, decide, produce.
    Pipeline,
    /// Consume → produce the unchanged bytes.
    Passthrough,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pipeline => "pipeline",
            Kind::Passthrough => "passthrough",
        }
    }
}

/// How the pipeline runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Launch {
    /// `borderlane::service` hosted in this process, on its own runtime (this build's service).
    #[default]
    InProcess,
    /// `<bin> serve` as a child process (any build's): on `config` (the `--service-config` file) or an
    /// empty file (that build's defaults), with the run's settings given as `BORDERLANE_*` overrides. Its
    /// CPU is counted with this process's ([`Target::child_pids`]).
    Binary {
        bin: PathBuf,
        config: Option<PathBuf>,
    },
}

/// A started system under test.
pub struct Target {
    /// Which one.
    pub kind: Kind,
    /// The configuration its clients use (the harness's clients use the same properties).
    pub config: Config,
    /// Where the harness sends manifests.
    pub input: String,
    /// Where its outputs appear (decisions and dead letters, or the passthrough's copy).
    pub outputs: Vec<String>,
    /// Every topic of the run, deleted at the end.
    topics: Vec<String>,
    /// The running system.
    inner: Inner,
}

/// The running system, by kind.
enum Inner {
    /// `borderlane::service` on its own runtime.
    Service {
        /// Owns the service's tasks.
        runtime: tokio::runtime::Runtime,
        /// Stops it: the guard's shutdown signal (a clean, signalled stop).
        stop: tokio::sync::oneshot::Sender<()>,
        /// Stops it from outside the guard (start-up failures).
        shutdown: Shutdown,
        /// The guard's outcome.
        done: tokio::task::JoinHandle<anyhow::Result<()>>,
        /// Its metrics registry (commit counters for the report).
        metrics: Arc<borderlane::service::metrics::Metrics>,
    },
    /// `borderlane serve` of another binary.
    Child(ChildService),
    /// The baseline's thread.
    Passthrough(Passthrough),
}

impl Inner {
    /// `borderlane::service` started on `runtime` with `config`, once it is ready.
    fn hosted(runtime: tokio::runtime::Runtime, config: &Config) -> anyhow::Result<Inner> {
        let running = runtime.block_on(borderlane::service::start(config.clone()))?;
        let readiness = running.readiness().clone();
        let shutdown = running.shutdown_handle();
        let metrics = running.metrics().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = runtime.spawn(running.wait(async move {
            let _ = stopped.await;
        }));
        let deadline = Instant::now() + Duration::from_secs(120);
        while !readiness.is_ready() {
            if done.is_finished() {
                let r = runtime.block_on(done);
                bail!("the service stopped while starting: {r:?}");
            }
            if Instant::now() > deadline {
                shutdown.trigger();
                bail!("the service was not ready within 120 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Inner::Service {
            runtime,
            stop,
            shutdown,
            done,
            metrics,
        })
    }
}

impl Target {
    /// Creates fresh topics (`partitions` each), loads `partners` onto the partner topic (pipeline only),
    /// starts the system and waits until it is ready.
    pub fn start(
        kind: Kind,
        base: &Config,
        partitions: i32,
        partners: &[(String, Vec<u8>)],
    ) -> anyhow::Result<Target> {
        Target::start_after(
            kind,
            &Launch::InProcess,
            base,
            partitions,
            partners,
            |_, _| Ok(()),
        )
    }

    /// [`Target::start`], calling `before` with the run's configuration and its input topic once every
    /// topic exists (and the partner records are loaded), right before the system starts: what it sends
    /// to the input is waiting there when the system's consumer first polls (a backlog).
    pub fn start_after(
        kind: Kind,
        launch: &Launch,
        base: &Config,
        partitions: i32,
        partners: &[(String, Vec<u8>)],
        before: impl FnOnce(&Config, &str) -> anyhow::Result<()>,
    ) -> anyhow::Result<Target> {
        let id = kafka::unique(kind.as_str());
        let mut config = base.clone();
        config.kafka.group_id = format!("{id}-group");
        config.kafka.topic_partitions = partitions;
        config.kafka.topics.manifests = format!("{id}-manifests");
        config.kafka.topics.partners = format!("{id}-partners");
        config.kafka.topics.decisions = format!("{id}-decisions");
        config.kafka.topics.dlq = format!("{id}-dlq");
        let t = config.kafka.topics.clone();
        let topics = match kind {
            Kind::Pipeline => vec![
                t.manifests.clone(),
                t.partners.clone(),
                t.decisions.clone(),
                t.dlq.clone(),
            ],
            Kind::Passthrough => vec![t.manifests.clone(), t.decisions.clone()],
        };
        // Whatever fails once topics may exist (creating them, the partner records, `before`, the system's
        // start) deletes them again, as `stop` does after a run.
        let cleanup = config.clone();
        let started = (|| match (kind, launch) {
            (Kind::Pipeline, _) => {
                let runtime = match launch {
                    // The hosted service's runtime.
                    Launch::InProcess => tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .thread_name("service")
                        .enable_all()
                        .build(),
                    // Only for creating the topics.
                    Launch::Binary { .. } => tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build(),
                }
                .context("building the service runtime")?;
                // Topics first (as the service would create them), so the partner table is there before
                // it starts; a child, told to create topics, finds them there.
                runtime.block_on(borderlane::service::kafka::topics::ensure(&config))?;
                kafka::load_records(&config, &t.partners, partners)?;
                before(&config, &t.manifests)?;
                let inner = match launch {
                    Launch::InProcess => Inner::hosted(runtime, &config)?,
                    Launch::Binary { bin, config: file } => {
                        Inner::Child(ChildService::start(bin, file.as_deref(), &config)?)
                    }
                };
                Ok(Target {
                    kind,
                    input: t.manifests.clone(),
                    outputs: vec![t.decisions.clone(), t.dlq.clone()],
                    topics: topics.clone(),
                    config,
                    inner,
                })
            }
            (Kind::Passthrough, _) => {
                kafka::create_topics(&config, &[&t.manifests, &t.decisions], partitions)?;
                before(&config, &t.manifests)?;
                let p = Passthrough::start(&config, &t.manifests, &t.decisions)?;
                Ok(Target {
                    kind,
                    input: t.manifests.clone(),
                    outputs: vec![t.decisions.clone()],
                    topics: topics.clone(),
                    config,
                    inner: Inner::Passthrough(p),
                })
            }
        })();
        if started.is_err() {
            kafka::delete_topics(&cleanup, &topics);
        }
        started
    }

    /// Runs `f` on the started system, then stops it (and deletes its topics) whatever `f` returned: `f`'s
    /// error (followed by the stop's, when that failed too), else the stop's.
    pub fn run_then_stop<R>(
        self,
        f: impl FnOnce(&Target) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        let result = f(&self);
        let stopped = self.stop();
        match (result, stopped) {
            (Ok(r), Ok(())) => Ok(r),
            (Err(e), Ok(())) | (Ok(_), Err(e)) => Err(e),
            // Why the run failed is often in why the system then did not stop cleanly (a child service's
            // exit status and output).
            (Err(e), Err(s)) => Err(anyhow!("{e:#}; stopping the system then: {s:#}")),
        }
    }

    /// A group-less reader of the outputs (`name` in its group id), as a downstream consumer reads them:
    /// the service's consumer properties, `read_committed` (an exactly-once service's outputs count once
    /// committed: librdkafka's default, made explicit), and every output partition, found in the
    /// metadata — for the caller to assign from where it needs.
    pub fn output_reader(&self, name: &str) -> anyhow::Result<(BaseConsumer, Vec<(String, i32)>)> {
        let mut cc = client_config(&self.config.kafka, Role::PartnerConsumer);
        cc.set("group.id", kafka::unique(name));
        cc.set("enable.partition.eof", "false");
        cc.set("isolation.level", "read_committed");
        let consumer: BaseConsumer = cc
            .create()
            .map_err(|e| anyhow!("creating the {name}: {e}"))?;
        let mut partitions = Vec::new();
        for t in &self.outputs {
            let md = consumer
                .fetch_metadata(Some(t), Duration::from_secs(30))
                .with_context(|| format!("metadata of {t}"))?;
            for p in md.topics().iter().flat_map(|t| t.partitions()) {
                partitions.push((t.clone(), p.id()));
            }
        }
        Ok((consumer, partitions))
    }

    /// A failure the system reported while running (it stopped), if any.
    pub fn failed(&self) -> bool {
        match &self.inner {
            Inner::Service { done, .. } => done.is_finished(),
            Inner::Child(c) => c.exited(),
            Inner::Passthrough(p) => p.thread.as_ref().is_none_or(JoinHandle::is_finished),
        }
    }

    /// The service's commit counters so far (zero for the passthrough and a child service).
    pub fn commit_stats(&self) -> CommitStats {
        match &self.inner {
            Inner::Service { metrics, .. } => CommitStats::from_metrics(&metrics.render()),
            // Only the drain runs a child, and it reports neither these nor the steps.
            Inner::Child(_) | Inner::Passthrough(_) => CommitStats::default(),
        }
    }

    /// Where the service's pipeline thread spent its time so far (empty for the passthrough and a child
    /// service).
    pub fn pipeline_steps(&self) -> Vec<StepTime> {
        match &self.inner {
            Inner::Service { metrics, .. } => StepTime::from_metrics(&metrics.render()),
            Inner::Child(_) | Inner::Passthrough(_) => Vec::new(),
        }
    }

    /// The processes besides this one that the system runs in (the child service's), for the CPU split.
    pub fn child_pids(&self) -> Vec<u32> {
        match &self.inner {
            Inner::Child(c) => vec![c.pid],
            _ => Vec::new(),
        }
    }

    /// Stops the system and deletes the run's topics.
    pub fn stop(self) -> anyhow::Result<()> {
        let result = match self.inner {
            Inner::Service {
                runtime,
                stop,
                shutdown,
                done,
                ..
            } => {
                if stop.send(()).is_err() {
                    shutdown.trigger();
                }
                runtime
                    .block_on(async { tokio::time::timeout(Duration::from_secs(60), done).await })
                    .map_err(|_| anyhow!("the service did not stop within 60 s"))
                    .and_then(|r| r.map_err(|e| anyhow!("service guard task: {e}")))
                    .and_then(|r| r)
            }
            Inner::Child(c) => c.stop(),
            Inner::Passthrough(p) => p.stop(),
        };
        kafka::delete_topics(&self.config, &self.topics);
        result
    }
}

/// The passthrough baseline: one thread polls a consumer-group member (the service's manifest-consumer
/// properties) and hands every record unchanged to a threaded producer (the service's producer
/// properties), storing the offset once sent, like the service's consume → produce path minus the core.
pub struct Passthrough {
    /// Stops the loop.
    stop: Arc<AtomicBool>,
    /// The loop; its error, if any, is the baseline's failure.
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Passthrough {
    pub fn start(config: &Config, input: &str, output: &str) -> anyhow::Result<Passthrough> {
        let consumer: BaseConsumer = client_config(&config.kafka, Role::ManifestConsumer)
            .create()
            .map_err(|e| anyhow!("creating the passthrough consumer: {e}"))?;
        // The service's producer properties, but without the statistics its cut-off watch reads: nothing
        // here reads them, and the default context would parse and log each report.
        let producer: ThreadedProducer<DefaultProducerContext> =
            client_config(&config.kafka, Role::Producer)
                .set("statistics.interval.ms", "0")
                .create()
                .map_err(|e| anyhow!("creating the passthrough producer: {e}"))?;
        consumer
            .subscribe(&[input])
            .with_context(|| format!("subscribing to {input}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let output = output.to_string();
        let thread = std::thread::Builder::new()
            .name("passthrough".into())
            .spawn(move || -> anyhow::Result<()> {
                while !flag.load(Ordering::Relaxed) {
                    let m = match consumer.poll(Duration::from_millis(100)) {
                        None | Some(Err(KafkaError::PartitionEOF(_))) => continue,
                        Some(Err(e)) => {
                            eprintln!("passthrough: consumer error: {e}");
                            continue;
                        }
                        Some(Ok(m)) => m,
                    };
                    let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&output);
                    if let Some(k) = m.key() {
                        record = record.key(k);
                    }
                    if let Some(v) = m.payload() {
                        record = record.payload(v);
                    }
                    loop {
                        match producer.send(record) {
                            Ok(()) => break,
                            Err((
                                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                                r,
                            )) => {
                                record = r;
                                std::thread::sleep(Duration::from_millis(1));
                            }
                            Err((e, _)) => bail!("passthrough: cannot send: {e}"),
                        }
                    }
                    if let Err(e) = consumer.store_offset_from_message(&m) {
                        eprintln!("passthrough: storing an offset: {e}");
                    }
                }
                producer
                    .flush(Duration::from_secs(30))
                    .map_err(|e| anyhow!("passthrough: flushing: {e}"))?;
                Ok(())
            })
            .context("spawning the passthrough thread")?;
        Ok(Passthrough {
            stop,
            thread: Some(thread),
        })
    }

    fn stop(mut self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| anyhow!("the passthrough thread panicked"))?,
            None => Ok(()),
        }
    }
}

/// The child service's output (stdout and stderr), in its directory.
const CHILD_LOG: &str = "serve.log";

/// `borderlane serve` of a given binary, as a child process; see [`Launch::Binary`].
pub struct ChildService {
    /// The process.
    child: Mutex<std::process::Child>,
    /// Its id (for the CPU split).
    pid: u32,
    /// Its working directory: the empty configuration file (when none is given, with what the defaults'
    /// relative paths write) and its output (`serve.log`).
    dir: PathBuf,
}

impl ChildService {
    /// Starts `bin serve` with `config`'s run settings (topics, group, partitions, delivery, broker) over
    /// `file` or that build's defaults, and waits until `/readyz` answers 200. Whatever fails before the
    /// child is up removes its directory; a child that stops or never gets ready is reported with its
    /// output's last lines (and, when it is still running, its directory is kept and named).
    fn start(bin: &Path, file: Option<&Path>, config: &Config) -> anyhow::Result<ChildService> {
        let dir = std::env::temp_dir().join(kafka::unique("loadtest-serve"));
        let spawned = (|| {
            // Without a file: an empty one two levels down, so that the defaults' relative paths (the
            // admin audit log's "../target/borderlane/audit.jsonl") stay inside `dir`.
            let file = match file {
                Some(f) => f.to_path_buf(),
                None => {
                    let conf = dir.join("config");
                    std::fs::create_dir_all(&conf)
                        .with_context(|| format!("creating {}", conf.display()))?;
                    let f = conf.join("empty.toml");
                    std::fs::write(&f, "").with_context(|| format!("writing {}", f.display()))?;
                    f
                }
            };
            // A port free now (the child binds it a moment later: if another process took it meanwhile,
            // the child stops on its bind error and is reported with its output).
            let http = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .context("finding a free port for the child's HTTP listener")?;
            let log = dir.join(CHILD_LOG);
            let out = std::fs::File::create(&log)
                .with_context(|| format!("creating {}", log.display()))?;
            let err = out.try_clone().context("duplicating the log file")?;
            let overrides = run_overrides(config, http);
            let mut cmd = Command::new(bin);
            cmd.arg("serve").arg("--config").arg(&file);
            // Our overrides replace any inherited variable for the same key, whatever its case (the
            // service folds the case of a variable's path).
            for (inherited, _) in std::env::vars() {
                if overrides
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case(&inherited) && *k != inherited)
                {
                    cmd.env_remove(&inherited);
                }
            }
            let child = cmd
                .envs(overrides)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .with_context(|| format!("starting {} serve", bin.display()))?;
            anyhow::Ok((child, http))
        })();
        let (child, http) = match spawned {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let c = ChildService {
            pid: child.id(),
            child: Mutex::new(child),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if c.exited() {
                let tail = c.log_tail();
                let _ = std::fs::remove_dir_all(&c.dir);
                bail!(
                    "{} serve stopped while starting; its output:\n{tail}",
                    bin.display()
                );
            }
            if http_status(http, "/readyz").is_ok_and(|status| status == 200) {
                return Ok(c);
            }
            if Instant::now() > deadline {
                let (tail, log) = (c.log_tail(), c.log());
                let stopped = c.stop();
                bail!(
                    "{} serve was not ready within 120 s ({}; stopping it: {}); its output ({}):\n{tail}",
                    bin.display(),
                    "an HTTPS-only http listener is not supported",
                    stopped.map_or_else(|e| format!("{e:#}"), |()| "stopped".into()),
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process has ended.
    fn exited(&self) -> bool {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        !matches!(child.try_wait(), Ok(None))
    }

    /// Its output's file.
    fn log(&self) -> PathBuf {
        self.dir.join(CHILD_LOG)
    }

    /// The last lines of its output.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// A signalled stop (SIGTERM, as an orchestrator stops it), waiting up to 60 s; it must exit 0. Its
    /// directory is removed when it did, and kept (named in the error) when it did not.
    fn stop(self) -> anyhow::Result<()> {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!(
                        "the child service did not stop within 60 s (killed); its output: {}",
                        self.log().display()
                    );
                }
                Err(e) => bail!(
                    "waiting for the child service: {e}; its output: {}",
                    self.log().display()
                ),
            }
        };
        if !status.success() {
            bail!(
                "the child service exited with {status}; its output ({}):\n{}",
                self.log().display(),
                self.log_tail()
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }
}

/// A child still running when dropped without [`ChildService::stop`] (the harness panicked) is killed: it
/// must not keep its consumer group and CPU after the run.
impl Drop for ChildService {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The run's settings as `BORDERLANE_*` overrides (TOML literals, so no value is read as a number): what
/// the harness sets on its base configuration, whatever the child's build defaults to.
fn run_overrides(config: &Config, http: SocketAddr) -> Vec<(String, String)> {
    let k = &config.kafka;
    let text = |v: &str| toml::Value::String(v.to_string()).to_string();
    let mut vars = vec![
        ("KAFKA__BOOTSTRAP_SERVERS", text(&k.bootstrap_servers)),
        ("KAFKA__CREATE_TOPICS", k.create_topics.to_string()),
        ("KAFKA__GROUP_ID", text(&k.group_id)),
        ("KAFKA__TOPIC_PARTITIONS", k.topic_partitions.to_string()),
        ("KAFKA__DELIVERY", text(k.delivery.as_str())),
        ("KAFKA__TOPICS__MANIFESTS", text(&k.topics.manifests)),
        ("KAFKA__TOPICS__PARTNERS", text(&k.topics.partners)),
        ("KAFKA__TOPICS__DECISIONS", text(&k.topics.decisions)),
        ("KAFKA__TOPICS__DLQ", text(&k.topics.dlq)),
        ("HTTP__LISTEN", text(&http.to_string())),
    ];
    if let Some(id) = &k.instance_id {
        vars.push(("KAFKA__INSTANCE_ID", text(id)));
    }
    vars.into_iter()
        .map(|(k, v)| (format!("{}{k}", borderlane::service::config::ENV_PREFIX), v))
        .collect()
}

/// The status of `GET path` on `addr` over plain HTTP/1.0. For the child's unauthenticated `/readyz` only.
fn http_status(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    s.read_to_string(&mut response)?;
    response
        .split_ascii_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status line"))
}

/// How the service committed during a run, read from its Prometheus metrics: what exactly-once's
/// commits cost the pipeline thread, and how often at-least-once commits failed.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CommitStats {
    /// Exactly-once: transactions committed.
    pub transactions: u64,
    /// Exactly-once: transactions aborted.
    pub aborted: u64,
    /// Exactly-once: mean outputs per committed transaction.
    pub records_mean: f64,
    /// Exactly-once: mean `send_offsets_to_transaction` time, ms.
    pub send_offsets_mean_ms: f64,
    /// Exactly-once: mean `commit_transaction` time, ms.
    pub commit_call_mean_ms: f64,
    /// Exactly-once: the histogram bucket bound holding the 99th percentile of the two calls together, ms.
    pub commit_p99_le_ms: f64,
    /// At-least-once: offset commits that failed.
    pub offset_commit_failures: u64,
}

impl CommitStats {
    /// From the text exposition of `borderlane::service::metrics::Metrics::render`.
    pub fn from_metrics(text: &str) -> CommitStats {
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0.0)
        };
        let mean = |sum: &str, count: &str| {
            let n = value(count);
            if n > 0.0 {
                value(sum) / n
            } else {
                0.0
            }
        };
        let call = |c: &str, what: &str| {
            format!("borderlane_transaction_call_seconds_{what}{{call=\"{c}\"}}")
        };
        // Buckets are cumulative: the first bound holding 99 % of the observations.
        let total = value("borderlane_transaction_commit_seconds_count");
        let commit_p99_le_ms = text
            .lines()
            .filter_map(|l| l.strip_prefix("borderlane_transaction_commit_seconds_bucket{le=\""))
            .filter_map(|l| {
                let (le, rest) = l.split_once('"')?;
                let n: f64 = rest.trim_start_matches('}').trim().parse().ok()?;
                Some((le.parse::<f64>().unwrap_or(f64::INFINITY), n))
            })
            .find(|(_, n)| total > 0.0 && *n >= 0.99 * total)
            .map_or(0.0, |(le, _)| le * 1000.0);
        CommitStats {
            transactions: value("borderlane_transactions_total{outcome=\"committed\"}") as u64,
            aborted: value("borderlane_transactions_total{outcome=\"aborted\"}") as u64,
            records_mean: mean(
                "borderlane_transaction_records_sum",
                "borderlane_transaction_records_count",
            ),
            send_offsets_mean_ms: 1000.0
                * mean(
                    &call("send_offsets_to_transaction", "sum"),
                    &call("send_offsets_to_transaction", "count"),
                ),
            commit_call_mean_ms: 1000.0
                * mean(
                    &call("commit_transaction", "sum"),
                    &call("commit_transaction", "count"),
                ),
            commit_p99_le_ms,
            offset_commit_failures: value("borderlane_offset_commit_failures_total") as u64,
        }
    }
}

/// Where the service's pipeline thread spent its time during a run, per step, from
/// `borderlane_pipeline_step_seconds{step}` (what the service's tail latency is made of: records polled
/// while a step runs wait for it).
#[derive(Debug, Clone, Default, Serialize)]
pub struct StepTime {
    /// The step (`collect`, `score`, `emit`, `checkpoint`, `stats`, `rebalance`).
    pub step: String,
    /// Times it ran.
    pub count: u64,
    /// Total time, ms.
    pub total_ms: f64,
    /// The bound of the lowest histogram bucket that holds every run: the slowest took at most this, ms.
    pub slowest_le_ms: f64,
    /// Runs longer than 5.12 ms (a histogram bound; ~10 records' worth of arrivals at 2 000/s).
    pub over_5ms: u64,
}

impl StepTime {
    /// Every step in the text exposition of `borderlane::service::metrics::Metrics::render`, in the order
    /// they first appear.
    pub fn from_metrics(text: &str) -> Vec<StepTime> {
        const PREFIX: &str = "borderlane_pipeline_step_seconds";
        // Per step: its cumulative buckets (bound in seconds, runs at or below it).
        let mut steps: Vec<(StepTime, Vec<(f64, u64)>)> = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(PREFIX) else {
                continue;
            };
            let Some((kind, rest)) = rest.split_once('{') else {
                continue;
            };
            let Some((labels, value)) = rest.split_once('}') else {
                continue;
            };
            let Ok(value) = value.trim().parse::<f64>() else {
                continue;
            };
            let label = |name: &str| {
                labels.split(',').find_map(|l| {
                    l.strip_prefix(name)
                        .and_then(|v| v.strip_prefix("=\""))
                        .and_then(|v| v.strip_suffix('"'))
                })
            };
            let Some(step) = label("step") else { continue };
            let at = match steps.iter().position(|(s, _)| s.step == step) {
                Some(i) => i,
                None => {
                    let s = StepTime {
                        step: step.to_string(),
                        ..StepTime::default()
                    };
                    steps.push((s, Vec::new()));
                    steps.len() - 1
                }
            };
            let (s, buckets) = &mut steps[at];
            match kind {
                "_count" => s.count = value as u64,
                "_sum" => s.total_ms = value * 1000.0,
                "_bucket" => {
                    let le =
                        label("le").map_or(f64::INFINITY, |v| v.parse().unwrap_or(f64::INFINITY));
                    buckets.push((le, value as u64));
                }
                _ => {}
            }
        }
        steps
            .into_iter()
            .map(|(mut s, mut buckets)| {
                buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                s.slowest_le_ms = buckets
                    .iter()
                    .find(|(_, n)| *n >= s.count)
                    .map_or(0.0, |(le, _)| le * 1000.0);
                let within_5ms = buckets
                    .iter()
                    .take_while(|(le, _)| *le <= 0.006)
                    .last()
                    .map_or(0, |(_, n)| *n);
                s.over_5ms = s.count.saturating_sub(within_5ms);
                s
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use borderlane::service::config::DeliveryMode;
    use borderlane::service::metrics::Metrics;

    /// The child reads the run's settings back as they were set, values that look like other TOML types
    /// (a numeric group id, a topic name with a dot) included; and the listener it is told to bind.
    #[test]
    fn a_child_reads_the_run_settings_back_from_its_overrides() {
        let mut c = Config::from_text("", [], Path::new(".")).unwrap();
        c.kafka.bootstrap_servers = "127.0.0.1:49013".into();
        c.kafka.create_topics = false;
        c.kafka.group_id = "12345".into();
        c.kafka.topic_partitions = 5;
        c.kafka.delivery = DeliveryMode::ExactlyOnce;
        c.kafka.instance_id = Some("true".into());
        c.kafka.topics.manifests = "run.1-manifests".into();
        c.kafka.topics.partners = "run-1-partners".into();
        c.kafka.topics.decisions = "run-1 \"decisions\" C:\\out".into();
        c.kafka.topics.dlq = "1e3".into();
        let http: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        let vars = run_overrides(&c, http);
        assert!(
            vars.iter().all(|(k, _)| k.starts_with("BORDERLANE_")),
            "{vars:?}"
        );
        let back = Config::from_text("", vars, Path::new(".")).unwrap();
        let (k, b) = (&c.kafka, &back.kafka);
        assert_eq!(b.bootstrap_servers, k.bootstrap_servers);
        assert_eq!(b.create_topics, k.create_topics);
        assert_eq!(b.group_id, k.group_id);
        assert_eq!(b.topic_partitions, k.topic_partitions);
        assert_eq!(b.delivery, k.delivery);
        assert_eq!(b.instance_id, k.instance_id);
        assert_eq!(
            [
                &b.topics.manifests,
                &b.topics.partners,
                &b.topics.decisions,
                &b.topics.dlq
            ],
            [
                &k.topics.manifests,
                &k.topics.partners,
                &k.topics.decisions,
                &k.topics.dlq
            ]
        );
        assert_eq!(back.http.listen, http);
        // At-least-once sets no instance id.
        c.kafka.delivery = DeliveryMode::AtLeastOnce;
        c.kafka.instance_id = None;
        let vars = run_overrides(&c, http);
        assert!(
            !vars.iter().any(|(k, _)| k.contains("INSTANCE_ID")),
            "{vars:?}"
        );
    }

    #[test]
    fn step_times_are_read_from_the_service_metrics() {
        let m = Metrics::new();
        for ms in [1, 2, 3, 7, 40] {
            m.pipeline_step("emit", Duration::from_millis(ms));
        }
        m.pipeline_step("score", Duration::from_micros(30));
        let steps = StepTime::from_metrics(&m.render());
        let emit = steps.iter().find(|s| s.step == "emit").expect("emit");
        assert_eq!(emit.count, 5);
        assert!((emit.total_ms - 53.0).abs() < 1e-6, "{emit:?}");
        // 40 ms lies in the (40.96 ms] bucket; 7 and 40 ms are over 5.12 ms.
        assert!((emit.slowest_le_ms - 40.96).abs() < 1e-6, "{emit:?}");
        assert_eq!(emit.over_5ms, 2);
        let score = steps.iter().find(|s| s.step == "score").expect("score");
        assert_eq!((score.count, score.over_5ms), (1, 0));
        assert!((score.slowest_le_ms - 0.04).abs() < 1e-6, "{score:?}");
    }
}
