//! The service, one wiring for `serve` (Kafka) and `demo` (generated traffic): the policy store with hot
//! reload of the policy and model files, the admin API, the officers' feed and console, `/healthz`,
//! `/readyz`, `/metrics`, and the input's tasks, all as named tasks under one shutdown guard.
//!
//! Start-up on Kafka: load the policy (with its model) → bind HTTP → check/create topics → read the partner
//! topic to its start-up end offsets (not ready; the manifest consumer is not even subscribed) → subscribe
//! and decide. With generated traffic the partner table is prebuilt and the traffic task stands in for the
//! consumer. Any task ending — with an error or not — stops every other one: no half-alive service. A
//! shutdown signal does the same, and the whole stop is bounded by `service.shutdown_timeout_ms`.

pub mod admin;
pub mod config;
pub mod feed;
pub mod generated;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod officers;
pub mod outcomes;
pub mod resumption;
pub mod server;
pub mod stall;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use borderlane_core::codes::PortCode;
use borderlane_core::decision::{Action, Decision, FastCondition, Lane};
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::resumption::Resumptions;
use borderlane_core::score::Verdict;
use borderlane_core::table::{PartnerTable, Standing};
use borderlane_core::time::Timestamp;
use borderlane_core::wire::{Manifest, Mode};
use tokio::sync::watch;
use tokio::task::{Id, JoinSet};
use tracing::{error, info, warn};

pub use config::Config;

use crate::load::policy::{Origin, PolicyLoader};
use crate::service::admin::api::AdminLimits;
use crate::service::admin::audit::AuditLog;
use crate::service::admin::auth::{Permission, Role as TokenRole, TokenStore};
use crate::service::admin::store::model_version;
use crate::service::admin::{AdminState, ManifestRing, PolicyStore, Tokens};
use crate::service::feed::{Feed, FeedItem};
use crate::service::kafka::clients::Role;
use crate::service::kafka::control::ControlFollower;
use crate::service::kafka::partners::PartnerFollower;
use crate::service::kafka::pipeline::Pipeline;
use crate::service::kafka::sink::{AtLeastOnceSink, Sink};
use crate::service::metrics::Metrics;
use crate::service::officers::{LoginLimiter, OfficersState, Sessions};
use crate::service::server::Serving;

/// A cloneable stop signal, observable from async tasks and from blocking threads.
#[derive(Clone)]
pub struct Shutdown {
    /// Async waiters.
    tx: Arc<watch::Sender<bool>>,
    /// Cheap check for blocking loops.
    flag: Arc<AtomicBool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown {
            tx: Arc::new(watch::channel(false).0),
            flag: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn trigger(&self) {
        self.flag.store(true, Ordering::Release);
        self.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// A receiver that turns `true` when the service stops (for streams that must end then).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }

    /// Resolves once `trigger` was called.
    pub async fn triggered(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }
}

/// What `/readyz` reports, and the gate the manifest consumer waits behind.
pub struct Readiness {
    /// The partner table reached the start-up end offsets (never goes back to false).
    partners: watch::Sender<bool>,
    /// The control topic (business-resumption declarations) reached its start-up end offsets.
    control: watch::Sender<bool>,
    /// The exam-outcomes topic (the party history) reached its start-up end offsets.
    outcomes: watch::Sender<bool>,
    /// The manifest consumer is subscribed and polling.
    consumer: AtomicBool,
    /// Assigned manifest partitions with lag and no progress (`service.stall_after_ms`).
    stall: stall::StallDetector,
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness::new()
    }
}

/// `/readyz`'s verdict at one moment, with its reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyReport {
    /// The partner table reached the start-up end offsets.
    pub partners: bool,
    /// The control topic reached its start-up end offsets.
    pub control: bool,
    /// The exam-outcomes topic reached its start-up end offsets.
    pub outcomes: bool,
    /// The manifest consumer is subscribed and polling.
    pub consumer: bool,
    /// Assigned manifest partitions the stall detector has lag and positions for.
    pub watched: usize,
    /// Assigned manifest partitions with lag and no progress for `stall_after`.
    pub stalled: Vec<stall::Stalled>,
    /// The configured stall time.
    pub stall_after: Duration,
}

impl ReadyReport {
    pub fn is_ready(&self) -> bool {
        self.partners && self.control && self.outcomes && self.consumer && self.stalled.is_empty()
    }
}

impl Readiness {
    pub fn new() -> Readiness {
        Readiness::with_stall_after(Duration::from_millis(config::DEFAULT_STALL_AFTER_MS))
    }

    /// Readiness that reports a partition stalled after `stall_after` of lag without progress.
    pub fn with_stall_after(stall_after: Duration) -> Readiness {
        Readiness {
            partners: watch::channel(false).0,
            control: watch::channel(false).0,
            outcomes: watch::channel(false).0,
            consumer: AtomicBool::new(false),
            stall: stall::StallDetector::new(stall_after),
        }
    }

    /// The stall detector, fed by the manifest consumer's statistics.
    pub fn stall(&self) -> &stall::StallDetector {
        &self.stall
    }

    /// The verdict at `now`, with its reasons.
    pub fn report(&self, now: Instant) -> ReadyReport {
        let (partners, consumer) = self.state();
        ReadyReport {
            partners,
            control: *self.control.borrow(),
            outcomes: *self.outcomes.borrow(),
            consumer,
            watched: self.stall.watched(),
            stalled: if consumer {
                self.stall.stalled(now)
            } else {
                Vec::new()
            },
            stall_after: self.stall.after(),
        }
    }

    pub fn partners_complete(&self) {
        self.partners.send_replace(true);
    }

    /// The control topic has been read to its start-up end offsets (or there is none: `demo`).
    pub fn control_complete(&self) {
        self.control.send_replace(true);
    }

    /// The exam-outcomes topic has been read to its start-up end offsets (or there is none: `demo`).
    pub fn outcomes_complete(&self) {
        self.outcomes.send_replace(true);
    }

    /// Resolves once the exam-outcomes topic is read to its start-up end offsets.
    pub async fn outcomes_completed(&self) {
        let mut rx = self.outcomes.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }

    /// Resolves once the control topic is read to its start-up end offsets.
    pub async fn control_completed(&self) {
        let mut rx = self.control.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }

    pub fn consumer_running(&self, running: bool) {
        self.consumer.store(running, Ordering::Release);
        if !running {
            self.stall.clear();
        }
    }

    /// (partner table complete, manifest consumer running).
    pub fn state(&self) -> (bool, bool) {
        (
            *self.partners.borrow(),
            self.consumer.load(Ordering::Acquire),
        )
    }

    /// Ready now: partner table and control topic complete, consumer running, no stalled partition.
    pub fn is_ready(&self) -> bool {
        self.report(Instant::now()).is_ready()
    }

    /// Resolves once the partner table is complete.
    pub async fn partners_completed(&self) {
        let mut rx = self.partners.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }
}

/// A started service: its tasks run until [`Running::wait`] sees a signal or a task end.
pub struct Running {
    /// Where `/healthz`, `/readyz` and `/metrics` are served (the real port when configured as 0).
    http_addr: SocketAddr,
    /// Where the officers' console and feed listen, when they run.
    officers_addr: Option<SocketAddr>,
    /// Where the admin API listens, when it runs.
    admin_addr: Option<SocketAddr>,
    /// `http` or `https` (every listener alike).
    scheme: &'static str,
    /// The operator token generated at start (`admin.generate_token`), for the caller to show; never logged.
    generated_admin_token: Option<String>,
    /// The officer token generated at start (`officers.generate_token`), for the caller to show; never
    /// logged.
    generated_officer_token: Option<String>,
    /// Readiness as `/readyz` reports it.
    readiness: Arc<Readiness>,
    /// The service's metrics.
    metrics: Arc<Metrics>,
    /// The policy in force, its history and audit trail.
    store: Arc<PolicyStore>,
    /// Stops every task.
    shutdown: Shutdown,
    /// The named tasks under the guard.
    tasks: JoinSet<anyhow::Result<()>>,
    /// Task names by id, for the guard's reports.
    names: HashMap<Id, &'static str>,
    /// Budget of the whole stop.
    shutdown_timeout: Duration,
}

/// Where manifests come from. Everything else — policy store and hot reload, admin API, feed and console,
/// metrics, readiness, the shutdown guard — is the same for every input.
pub enum Input {
    /// The manifest topic (consumer group), decisions and dead letters to their topics, and the partner
    /// table followed from the partner topic (`serve`).
    Kafka,
    /// Generated traffic scored in process against a prebuilt partner table (`demo`).
    Generated(Box<generated::Generated>),
}

/// The one policy loader for this configuration: models of the policy file resolve against its directory;
/// models of policies sent through the admin API must be inside `admin.model_dir` (default: the same
/// directory).
pub fn policy_loader(config: &Config) -> PolicyLoader {
    let policy_dir = match config.policy_path() {
        Some(p) => p
            .parent()
            .map(Path::to_path_buf)
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from(".")),
        None => config.base_dir.clone(),
    };
    let model_dir = match &config.admin.model_dir {
        Some(d) => config.base_dir.join(d),
        None => policy_dir.clone(),
    };
    PolicyLoader::new(policy_dir, model_dir)
}

/// The policy text the config names (or the embedded default's).
fn policy_text(config: &Config) -> anyhow::Result<String> {
    match config.policy_path() {
        Some(p) => {
            std::fs::read_to_string(&p).with_context(|| format!("reading policy {}", p.display()))
        }
        None => Ok(crate::load::policy::DEFAULT_POLICY.to_string()),
    }
}

/// Loads the policy the config names (or the embedded default), with its model, through the one loader.
pub fn load_policy(config: &Config) -> anyhow::Result<CompiledPolicy> {
    policy_loader(config)
        .compile(&policy_text(config)?, Origin::File)
        .map_err(|e| anyhow!("policy is invalid:\n{}", crate::load::policy::render(&e)))
}

/// The tokens of every role, and the secrets generated for the caller to show (operator, officer): the
/// configured file; else `BORDERLANE_ADMIN_TOKEN` (operator) and `BORDERLANE_OFFICER_TOKEN` (officer), each
/// generated when absent and `admin.generate_token` / `officers.generate_token` ask for it.
struct StartTokens {
    tokens: Tokens,
    generated_admin: Option<String>,
    generated_officer: Option<String>,
}

fn start_tokens(config: &Config) -> anyhow::Result<StartTokens> {
    if let Some(f) = &config.admin.tokens_file {
        return Ok(StartTokens {
            tokens: Tokens::from_file(&config.base_dir.join(f))?,
            generated_admin: None,
            generated_officer: None,
        });
    }
    let mut tokens = Tokens::default();
    let mut generated = [None, None];
    for (i, (var, name, role, generate)) in [
        (
            "BORDERLANE_ADMIN_TOKEN",
            "generated-operator",
            TokenRole::Operator,
            config.admin.generate_token,
        ),
        (
            "BORDERLANE_OFFICER_TOKEN",
            "generated-officer",
            TokenRole::Officer,
            config.officers.generate_token,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        match std::env::var(var) {
            Ok(t) if !t.trim().is_empty() => {
                tokens = tokens.with(Tokens::single(&format!("env:{var}"), role, t.trim())?)?;
            }
            _ if generate => {
                let secret = crate::service::admin::auth::generate_secret();
                tokens = tokens.with(Tokens::single(name, role, &secret)?)?;
                generated[i] = Some(secret);
            }
            _ => {}
        }
    }
    let [generated_admin, generated_officer] = generated;
    Ok(StartTokens {
        tokens,
        generated_admin,
        generated_officer,
    })
}

/// Whether any token's role allows `p`.
fn any_may(tokens: &Tokens, p: Permission) -> bool {
    [TokenRole::Officer, TokenRole::Viewer, TokenRole::Operator]
        .into_iter()
        .any(|r| r.allows(p) && tokens.has_role(r))
}

/// `serve` exposes the officers' and admin listeners beyond loopback only with TLS or
/// `http.allow_plaintext`.
fn check_exposure(config: &Config) -> anyhow::Result<()> {
    if config.http.tls_cert.is_some() || config.http.allow_plaintext {
        return Ok(());
    }
    for (key, addr) in [
        (
            "officers.listen",
            config.officers.listen.filter(|_| config.http.console),
        ),
        ("admin.listen", config.admin.listen),
    ] {
        if let Some(a) = addr.filter(|a| !a.ip().is_loopback()) {
            bail!(
                "{key} {a} is not a loopback address and no TLS is configured: set http.tls_cert and \
                 http.tls_key, or http.allow_plaintext = true to serve tokens and decisions in plain text"
            );
        }
    }
    Ok(())
}

/// Re-reads the tokens file when it changes; a change ends every console session (the epoch moves).
async fn watch_tokens(
    tokens: Arc<TokenStore>,
    path: PathBuf,
    interval: Duration,
    stop: Shutdown,
) -> anyhow::Result<()> {
    let mut last = std::fs::read(&path).ok();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.triggered() => return Ok(()),
        }
        let now = std::fs::read(&path).ok();
        if now == last {
            continue;
        }
        last = now;
        match Tokens::from_file(&path) {
            Ok(t) => {
                info!(tokens = ?t, "tokens file changed: new tokens in force, sessions ended");
                tokens.replace(t);
            }
            Err(e) => {
                warn!(error = %format!("{e:#}"), "tokens file changed but is invalid; keeping the previous tokens")
            }
        }
    }
}

/// What the output's headers and the officers' feed read of a decision besides its id and JSON: a few
/// copied fields, so the pipeline keeps no decision ([`Brief::of_verdict`]: it builds none).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Brief {
    pub action: Action,
    pub lane: Lane,
    pub port: PortCode,
    pub mode: Mode,
    pub score: i32,
    pub importer_standing: Standing,
    /// Whether the manifest's port has a FAST lane (the feed counts FAST use among those trucks only).
    pub fast_lane_port: bool,
    pub priority: Option<u8>,
    /// `decided_at` in Unix seconds (0 without one).
    pub decided_secs: i64,
}

impl Brief {
    pub fn of(d: &Decision) -> Brief {
        Brief {
            action: d.action,
            lane: d.lane,
            port: d.port_of_entry,
            mode: d.mode,
            score: d.score,
            importer_standing: d.importer_standing,
            fast_lane_port: !d.fast_missing.contains(FastCondition::FastLanePort),
            priority: d.priority,
            decided_secs: d.decided_at.map_or(0, |t| t.unix_seconds()),
        }
    }

    /// [`Brief::of`] the decision whose verdict is `v` (its manifest `m`, decided under `resumptions` at
    /// `decided_at`), without the decision (see `score::process_json`).
    pub fn of_verdict(
        v: &Verdict,
        m: &Manifest,
        resumptions: &Resumptions,
        decided_at: Option<Timestamp>,
    ) -> Brief {
        Brief {
            action: v.action,
            lane: v.lane,
            port: m.port_of_entry,
            mode: m.mode,
            score: v.score,
            importer_standing: v.importer_standing,
            fast_lane_port: !v.fast_missing.contains(FastCondition::FastLanePort),
            priority: v.priority(m, resumptions),
            decided_secs: decided_at.map_or(0, |t| t.unix_seconds()),
        }
    }
}

/// Where each decision goes besides its output: the officers' live feed (never blocks) and the what-if
/// window of recent manifests. Shared by every input.
#[derive(Clone, Default)]
pub struct Watchers {
    pub feed: Option<Arc<Feed>>,
    pub ring: Option<Arc<ManifestRing>>,
    /// With [`Watchers::keep_evicted`]: what the feed's look-up window and the what-if window let go,
    /// waiting for [`Watchers::take_evicted`]. Without, it is freed where it leaves the window.
    evicted: Option<Arc<Mutex<Evicted>>>,
}

/// What the feed's look-up window and the what-if window let go, oldest first, with the manifests'
/// estimated bytes ([`crate::service::admin::ring::manifest_bytes`]).
#[derive(Default)]
struct Evicted {
    items: VecDeque<Arc<FeedItem>>,
    manifests: VecDeque<(Arc<Manifest>, usize)>,
    manifest_bytes: usize,
}

impl Evicted {
    /// The oldest beyond the bounds, taken out to be freed by the caller (after the lock).
    fn over_bounds(&mut self) -> (Vec<Arc<FeedItem>>, Vec<Arc<Manifest>>) {
        let mut items = Vec::new();
        while self.items.len() > MOST_ITEMS_PENDING {
            items.extend(self.items.pop_front());
        }
        let mut manifests = Vec::new();
        while self.manifests.len() > MOST_MANIFESTS_PENDING
            || (self.manifest_bytes > MOST_MANIFEST_BYTES_PENDING && !self.manifests.is_empty())
        {
            if let Some((m, bytes)) = self.manifests.pop_front() {
                self.manifest_bytes -= bytes;
                manifests.push(m);
            }
        }
        (items, manifests)
    }
}

/// One record's share of what the watchers let go: freed right before the record is scored (see
/// [`Watchers::keep_evicted`]).
pub type Graves = (Option<Arc<FeedItem>>, Option<Arc<Manifest>>);

/// Bounds of what waits for [`Watchers::take_evicted`]: a few batches' worth (a batch is at most 256
/// records, each letting go about one item and one manifest). Past them the oldest is freed where it left
/// its window, as without [`Watchers::keep_evicted`] — after an exactly-once commit (which tells the
/// watchers of up to `kafka.commit_max_records` decisions at once) or with a stream of very large
/// manifests. What waits is memory beyond the windows' own bounds: at most ~1 024 items (~3 MB) and
/// 16 MiB of manifests (estimated).
const MOST_ITEMS_PENDING: usize = 1024;
const MOST_MANIFESTS_PENDING: usize = 1024;
const MOST_MANIFEST_BYTES_PENDING: usize = 16 << 20;

/// What the watchers take of one decision, made ready where it was scored (on a scoring thread, not the
/// pipeline thread every record passes through): the feed's item when the feed is on, the manifest and
/// its size in the window when a what-if window is on.
#[derive(Default)]
pub struct ForWatchers {
    pub item: Option<Arc<FeedItem>>,
    pub manifest: Option<(Arc<Manifest>, usize)>,
}

impl Watchers {
    /// What [`Watchers::decided`] will take of a decision (its id, [`Brief`] and JSON, and its manifest,
    /// dropped here unless a what-if window keeps it).
    pub fn prepare(&self, manifest: Manifest, id: &str, brief: &Brief, json: &[u8]) -> ForWatchers {
        ForWatchers {
            item: self.feed.is_some().then(|| Feed::item(id, brief, json)),
            manifest: self.ring.is_some().then(|| {
                let bytes = crate::service::admin::ring::manifest_bytes(&manifest);
                (Arc::new(manifest), bytes)
            }),
        }
    }

    /// A decision was emitted: publish it on the feed and keep its manifest in the what-if window.
    pub fn decided(&self, w: ForWatchers, brief: &Brief) {
        let (mut items, mut manifests) = (Vec::new(), Vec::new());
        if let (Some(feed), Some(item)) = (&self.feed, w.item) {
            feed.publish_item(item, brief, &mut items);
        }
        if let (Some(ring), Some((m, bytes))) = (&self.ring, w.manifest) {
            ring.push_sized(m, bytes, &mut manifests);
        }
        let Some(pending) = &self.evicted else {
            return;
        };
        if items.is_empty() && manifests.is_empty() {
            return;
        }
        let over = {
            let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
            p.items.extend(items);
            for (m, bytes) in manifests {
                p.manifest_bytes += bytes;
                p.manifests.push_back((m, bytes));
            }
            p.over_bounds()
        };
        // Freed here, after the lock.
        drop(over);
    }

    /// Leaves what the feed's look-up window and the what-if window let go for
    /// [`Watchers::take_evicted`] instead of freeing it in [`Watchers::decided`] (within bounds: see
    /// [`MOST_ITEMS_PENDING`]). For a pipeline with scoring threads, which frees one record's share on the
    /// thread that scores the record, right before: a manifest's ~15 blocks and an item's 2.7 KB of JSON
    /// were built on a scoring thread, and freed on the pipeline thread they went back to the scoring
    /// threads' arenas past their allocator caches, so the scoring threads' next allocations took glibc's
    /// slow path (docs/performance.md, "The officers' configuration").
    pub fn keep_evicted(mut self) -> Watchers {
        if self.ring.is_some() || self.feed.is_some() {
            self.evicted = Some(Arc::default());
        }
        self
    }

    /// `n` records' shares of what the windows let go (oldest first, at most one item and one manifest a
    /// record; the rest waits for the next call), for the caller to free; all empty without
    /// [`Watchers::keep_evicted`].
    pub fn take_evicted(&self, n: usize) -> Vec<Graves> {
        let mut graves: Vec<Graves> = Vec::with_capacity(n);
        match &self.evicted {
            Some(pending) => {
                let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
                graves.extend((0..n).map(|_| {
                    let manifest = p.manifests.pop_front().map(|(m, bytes)| {
                        p.manifest_bytes -= bytes;
                        m
                    });
                    (p.items.pop_front(), manifest)
                }));
            }
            None => graves.resize(n, (None, None)),
        }
        graves
    }
}

/// Starts the service on Kafka (`serve`); see [`start_with`].
pub async fn start(config: Config) -> anyhow::Result<Running> {
    start_with(config, Input::Kafka).await
}

/// Starts the service: loads the policy, binds HTTP, spawns the named tasks for `input` and the shared
/// ones. Returns once the tasks run; with Kafka the partner table loads in the background (`/readyz` tells
/// when the service decides).
pub async fn start_with(config: Config, input: Input) -> anyhow::Result<Running> {
    let audit = AuditLog::open(&config.admin.audit_path(&config.base_dir))?;
    let store = Arc::new(
        PolicyStore::new(
            &policy_text(&config)?,
            Origin::File,
            policy_loader(&config),
            Some(audit),
        )
        .map_err(|e| anyhow!("policy is invalid:\n{}", crate::load::policy::render(&e)))?,
    );
    let metrics = Arc::new(Metrics::new());
    {
        let policy = store.current();
        let model = model_version(&policy);
        metrics.policy(&policy.version, &policy.doc.meta.name, model.as_deref());
        info!(
            policy = %policy.doc.meta.name,
            version = %policy.version,
            model_version = ?model,
            "policy loaded"
        );
    }
    if let Input::Kafka = input {
        check_exposure(&config)?;
        info!(
            bootstrap = %config.kafka.bootstrap_servers,
            group = %config.kafka.group_id,
            delivery = config.kafka.delivery.as_str(),
            topics = ?config.kafka.topics,
            "starting borderlane serve"
        );
        for role in [
            Role::ManifestConsumer,
            Role::PartnerConsumer,
            Role::Producer,
        ] {
            info!(client = ?role, properties = %kafka::clients::describe(&config.kafka, role), "kafka client");
        }
    }
    let readiness = Arc::new(Readiness::with_stall_after(Duration::from_millis(
        config.service.stall_after_ms,
    )));
    let shutdown = Shutdown::new();

    let serving = Serving::from_config(&config.http, &config.base_dir)?;
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("binding http.listen {}", config.http.listen))?;
    let http_addr = listener.local_addr()?;

    let StartTokens {
        tokens,
        generated_admin,
        generated_officer,
    } = start_tokens(&config)?;
    let tokens = Arc::new(TokenStore::new(tokens));
    // The admin API runs with a listener and a token that may use it; the what-if window exists only then.
    let admin_on =
        config.admin.listen.is_some() && any_may(&tokens.current(), Permission::ReadPolicy);
    let ring = Arc::new(ManifestRing::new(if admin_on {
        config.admin.replay_window_bytes
    } else {
        0
    }));
    let officers_on = config.http.console
        && config.officers.listen.is_some()
        && any_may(&tokens.current(), Permission::ReadDecisions);
    let feed = officers_on.then(|| {
        Arc::new(
            Feed::new(
                config.http.feed_capacity,
                10_000,
                &store.current(),
                shutdown.subscribe(),
            )
            .with_max_clients(config.officers.max_sse_clients),
        )
    });
    let watchers = Watchers {
        feed: feed.clone(),
        ring: admin_on.then(|| ring.clone()),
        ..Watchers::default()
    };

    // Exam outcomes: the decision window, the party history with its watermark, the hit rates, and the
    // recorder behind POST /outcomes (the outcomes topic with Kafka, in process for demo).
    let window = Arc::new(outcomes::DecisionWindow::from_config(
        &config.service.outcome_window,
    ));
    let history = Arc::new(outcomes::HistoryFeed::new(window.clone(), metrics.clone()));
    let recorder = Arc::new(match &input {
        Input::Kafka => outcomes::Recorder::kafka(&config)?,
        Input::Generated(_) => outcomes::Recorder::InProcess(std::sync::Mutex::new(0)),
    });
    if let Some(feed) = &feed {
        feed.set_hit_rates(history.clone(), store.handle());
    }

    let mut tasks = JoinSet::new();
    let mut names = HashMap::new();
    let table = match &input {
        Input::Kafka => Arc::new(PartnerTable::new()),
        Input::Generated(g) => g.table.clone(),
    };

    // Business-resumption declarations: followed from the control topic with Kafka, in process for demo.
    let board = Arc::new(resumption::Board::new());
    let app = http::router(http::AppState {
        metrics: metrics.clone(),
        readiness: readiness.clone(),
        resumptions: Some(board.clone()),
    });
    let mut officers_addr = None;
    match (&feed, config.officers.listen) {
        (Some(feed), Some(addr)) => {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding officers.listen {addr}"))?;
            officers_addr = Some(l.local_addr()?);
            let key = config.officers.session_key.as_ref().map(|k| k.0.as_str());
            let officers_app = crate::service::officers::router(OfficersState {
                feed: feed.clone(),
                tokens: tokens.clone(),
                sessions: Arc::new(Sessions::new(
                    key,
                    Duration::from_secs(config.officers.session_ttl_secs),
                )),
                limiter: Arc::new(LoginLimiter::new(
                    config.officers.login_failures_per_client,
                    config.officers.login_failures_global,
                )),
                secure: serving.is_tls(),
                outcomes: Some(outcomes::OutcomeApi {
                    window: window.clone(),
                    feed: history.clone(),
                    recorder: recorder.clone(),
                    policy: store.handle(),
                    limits: config.limits.limits(),
                }),
            });
            info!(officers_addr = ?officers_addr, "officers' console and feed listening");
            let (serving, stop) = (serving.clone(), shutdown.clone());
            let h = tasks.spawn(async move {
                server::serve(l, officers_app, serving, stop)
                    .await
                    .context("officers server")
            });
            names.insert(h.id(), "officers");
        }
        _ if config.http.console && config.officers.listen.is_some() => warn!(
            "officers' console not started: no token with the officer role (admin.tokens_file or \
             BORDERLANE_OFFICER_TOKEN)"
        ),
        _ => {}
    }
    let mut admin_addr = None;
    match config.admin.listen {
        Some(addr) if admin_on => {
            let admin_listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding admin.listen {addr}"))?;
            admin_addr = Some(admin_listener.local_addr()?);
            info!(admin_addr = ?admin_addr, "admin API listening");
            let publisher = match &input {
                Input::Kafka => {
                    resumption::Publisher::Kafka(resumption::KafkaPublisher::new(&config)?)
                }
                Input::Generated(_) => resumption::Publisher::InProcess,
            };
            let admin_app = crate::service::admin::router(
                AdminState::new(
                    store.clone(),
                    tokens.clone(),
                    ring.clone(),
                    table.clone(),
                    AdminLimits {
                        max_policy_bytes: config.admin.max_policy_bytes,
                        max_window: config.admin.replay_window,
                    },
                )
                .with_resumptions(
                    board.clone(),
                    Arc::new(publisher),
                    Duration::from_secs(config.admin.max_resumption_hours * 3600),
                )
                .with_history(history.history.clone(), history.watermark.clone()),
            );
            let (serving, stop) = (serving.clone(), shutdown.clone());
            let h = tasks.spawn(async move {
                server::serve(admin_listener, admin_app, serving, stop)
                    .await
                    .context("admin server")
            });
            names.insert(h.id(), "admin");
        }
        Some(_) => warn!(
            "admin API not started: no viewer or operator token (admin.tokens_file or \
             BORDERLANE_ADMIN_TOKEN)"
        ),
        None => {}
    }
    if let Some(f) = &config.admin.tokens_file {
        let (tokens, stop) = (tokens.clone(), shutdown.clone());
        let path = config.base_dir.join(f);
        let interval = Duration::from_millis(config.admin.reload_interval_ms.max(50));
        let h = tasks.spawn(watch_tokens(tokens, path, interval, stop));
        names.insert(h.id(), "tokens-reload");
    }
    if config.admin.reload_policy {
        let (store, stop) = (store.clone(), shutdown.clone());
        let interval = Duration::from_millis(config.admin.reload_interval_ms.max(50));
        let path = config.policy_path();
        let h = tasks.spawn(async move {
            crate::service::admin::reload::watch_file(store, path, interval, stop.triggered())
                .await;
            Ok(())
        });
        names.insert(h.id(), "policy-reload");
    }
    // The policy metrics follow the store's announcements: every swap, every rejected reload.
    let (mut changes, m, stop) = (store.subscribe(), metrics.clone(), shutdown.clone());
    let h = tasks.spawn(async move {
        loop {
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return Ok(()) },
                _ = stop.triggered() => return Ok(()),
            }
            let state = changes.borrow_and_update().clone();
            let p = &state.policy;
            m.policy(&p.version, &p.doc.meta.name, model_version(p).as_deref());
            m.policy_reload_failures(state.reload_failures);
        }
    });
    names.insert(h.id(), "policy-metrics");
    let (http_serving, stop) = (serving.clone(), shutdown.clone());
    let h = tasks.spawn(async move {
        server::serve(listener, app, http_serving, stop)
            .await
            .context("http server")
    });
    names.insert(h.id(), "http");
    info!(%http_addr, "http listening");

    match input {
        Input::Kafka => {
            let sink = Arc::new(match config.kafka.delivery {
                config::DeliveryMode::AtLeastOnce => {
                    Sink::AtLeastOnce(AtLeastOnceSink::new(&config, metrics.clone())?)
                }
                config::DeliveryMode::ExactlyOnce => {
                    Sink::ExactlyOnce(kafka::txn::ExactlyOnceSink::new(&config, metrics.clone())?)
                }
            });
            let (topics_exist, topics_known) = std::sync::mpsc::sync_channel(1);
            let follower = PartnerFollower::new(
                &config,
                table.clone(),
                metrics.clone(),
                readiness.clone(),
                shutdown.clone(),
            )?
            .after_topics(topics_known);
            let control = ControlFollower::new(
                &config,
                board.clone(),
                metrics.clone(),
                readiness.clone(),
                shutdown.clone(),
            )?;
            let pipeline = Pipeline::new(
                &config,
                sink,
                store.handle(),
                table.clone(),
                metrics.clone(),
                readiness.clone(),
                shutdown.clone(),
            )?
            .with_watchers(watchers)
            .with_resumptions(board.handle())
            .with_history(history.history.clone(), history.watermark.clone());
            let outcome_follower = kafka::outcomes::OutcomeFollower::new(
                &config,
                history.clone(),
                store.handle(),
                metrics.clone(),
                readiness.clone(),
                shutdown.clone(),
            )?;
            let outcome_dead_letters = kafka::outcome_dlq::OutcomeDeadLetters::new(
                &config,
                metrics.clone(),
                shutdown.clone(),
            )?;
            let decision_follower = kafka::outcomes::DecisionFollower::new(
                &config,
                window.clone(),
                store.handle(),
                metrics.clone(),
                shutdown.clone(),
            )?;

            // The partner follower starts at once (it waits for the topics only if its topic is not
            // there yet), the other followers once the topics exist and the dead-letter topic is known
            // to take the largest dead letter as well (the pipeline waits for them, so no decision comes
            // before that check): making sure of the topics and the check's round trips overlap the
            // partner table's load, the longest part of a start.
            let (topics_ok, mut topics_ready) = watch::channel(false);
            let outcome_topics_ready = topics_ready.clone();
            let topics_config = config.clone();
            let stop = shutdown.clone();
            let h = tasks.spawn(async move {
                let follower = tokio::task::spawn_blocking(move || follower.run());
                let joined = |follower: tokio::task::JoinHandle<anyhow::Result<()>>| async move {
                    follower
                        .await
                        .map_err(|e| anyhow!("partner follower thread: {e}"))?
                };
                // A stop while the topics are made sure of and checked (a broker not there yet holds
                // both for up to kafka.startup_timeout_ms) ends them at once: a follower waiting for the
                // topics is let go (the sender dropped), one already loading ends at the shutdown.
                let ensured = tokio::select! {
                    r = kafka::topics::ensure(&topics_config) => r,
                    _ = stop.triggered() => {
                        drop(topics_exist);
                        return joined(follower).await;
                    }
                };
                if let Err(e) = ensured {
                    // The task's error stops the service (the guard); a follower waiting for the topics
                    // ends at once, one already loading at the shutdown.
                    drop(topics_exist);
                    return Err(e);
                }
                // Capacity 1, sent once: never blocks.
                let _ = topics_exist.send(());
                let checked = tokio::select! {
                    r = kafka::topics::check_dead_letter_room(&topics_config) => r,
                    _ = stop.triggered() => return joined(follower).await,
                };
                if let Err(e) = checked {
                    // The service stops: the follower first (it watches the shutdown), so that its
                    // thread ends within the shutdown budget instead of after it.
                    stop.trigger();
                    let _ = follower.await;
                    return Err(e);
                }
                topics_ok.send_replace(true);
                joined(follower).await
            });
            names.insert(h.id(), "partners");

            let stop = shutdown.clone();
            let h = tasks.spawn(async move {
                tokio::select! {
                    r = topics_ready.wait_for(|v| *v) => if r.is_err() { return Ok(()) },
                    _ = stop.triggered() => return Ok(()),
                }
                tokio::task::spawn_blocking(move || control.run())
                    .await
                    .map_err(|e| anyhow!("control follower thread: {e}"))?
            });
            names.insert(h.id(), "control");

            type Blocking = Box<dyn FnOnce() -> anyhow::Result<()> + Send>;
            let mut blocking: Vec<(&'static str, Blocking)> = vec![
                ("outcomes", Box::new(move || outcome_follower.run())),
                (
                    "outcome-dead-letters",
                    Box::new(move || outcome_dead_letters.run()),
                ),
            ];
            // The decision window serves POST /outcomes only: without the officers' listener this
            // instance does not read the decisions topic back (hit rates by standing say `unknown`).
            if officers_addr.is_some() {
                blocking.push(("decision-window", Box::new(move || decision_follower.run())));
            }
            for (name, run) in blocking {
                let stop = shutdown.clone();
                let mut ready = outcome_topics_ready.clone();
                let h = tasks.spawn(async move {
                    tokio::select! {
                        r = ready.wait_for(|v| *v) => if r.is_err() { return Ok(()) },
                        _ = stop.triggered() => return Ok(()),
                    }
                    tokio::task::spawn_blocking(run)
                        .await
                        .map_err(|e| anyhow!("{name} follower thread: {e}"))?
                });
                names.insert(h.id(), name);
            }

            let gate = readiness.clone();
            let stop = shutdown.clone();
            let h = tasks.spawn(async move {
                // No decision before the partner table and the resumption declarations are complete.
                tokio::select! {
                    _ = async {
                        gate.partners_completed().await;
                        gate.control_completed().await;
                        gate.outcomes_completed().await;
                    } => {}
                    _ = stop.triggered() => return Ok(()),
                }
                tokio::task::spawn_blocking(move || pipeline.run())
                    .await
                    .map_err(|e| anyhow!("pipeline thread: {e}"))?
            });
            names.insert(h.id(), "pipeline");
        }
        Input::Generated(g) => {
            // The table is complete before the first decision, and the traffic stands in for the consumer.
            metrics.partner_table(table.len(), table.updates_applied());
            metrics.partner_table_completed();
            readiness.partners_complete();
            metrics.control_completed();
            readiness.control_complete();
            metrics.outcomes_completed();
            readiness.outcomes_complete();
            readiness.consumer_running(true);
            let traffic = generated::Traffic {
                input: *g,
                policy: store.handle(),
                limits: config.limits.limits(),
                metrics: metrics.clone(),
                watchers,
                shutdown: shutdown.clone(),
                resumptions: board.handle(),
                history: history.clone(),
                recorder: recorder.clone(),
            };
            let h = tasks.spawn(traffic.run());
            names.insert(h.id(), "traffic");
        }
    }

    Ok(Running {
        http_addr,
        officers_addr,
        admin_addr,
        scheme: serving.scheme(),
        generated_admin_token: generated_admin.filter(|_| admin_addr.is_some()),
        generated_officer_token: generated_officer.filter(|_| officers_addr.is_some()),
        readiness,
        metrics,
        store,
        shutdown,
        tasks,
        names,
        shutdown_timeout: Duration::from_millis(config.service.shutdown_timeout_ms),
    })
}

impl Running {
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Where the admin API listens, when it runs.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Where the officers' console, `/feed`, `/decisions/{id}` and `/api/stats` listen, when they run.
    pub fn officers_addr(&self) -> Option<SocketAddr> {
        self.officers_addr
    }

    /// `http` or `https`: how every listener speaks.
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// The operator token generated at start (`admin.generate_token`), for the caller to show once.
    pub fn generated_admin_token(&self) -> Option<&str> {
        self.generated_admin_token.as_deref()
    }

    /// The officer token generated at start (`officers.generate_token`), for the caller to show once.
    pub fn generated_officer_token(&self) -> Option<&str> {
        self.generated_officer_token.as_deref()
    }

    /// The policy store (current policy, versions, audit trail).
    pub fn store(&self) -> &Arc<PolicyStore> {
        &self.store
    }

    pub fn readiness(&self) -> &Arc<Readiness> {
        &self.readiness
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// A handle that stops this service when triggered.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// The shutdown guard: runs until `signal` resolves or any task ends, then stops every task within
    /// the shutdown budget. Ok only for a signalled stop in which every task ended cleanly.
    pub async fn wait(mut self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        let mut failures: Vec<String> = Vec::new();
        tokio::select! {
            _ = signal => info!("shutdown requested"),
            _ = self.shutdown.triggered() => info!("shutdown requested"),
            Some(r) = self.tasks.join_next_with_id() => {
                let (name, outcome) = self.outcome(r);
                let why = match outcome {
                    Ok(()) if self.shutdown.is_triggered() => None,
                    Ok(()) => Some(format!("task {name} exited unexpectedly")),
                    Err(e) => Some(format!("task {name} failed: {e:#}")),
                };
                match &why {
                    Some(e) => error!(task = name, error = %e, "a task ended; stopping the service"),
                    None => info!(task = name, "shutdown requested"),
                }
                failures.extend(why);
            }
        }
        self.shutdown.trigger();
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.tasks.join_next_with_id()).await {
                Ok(None) => break,
                Ok(Some(r)) => {
                    let (name, outcome) = self.outcome(r);
                    match outcome {
                        Ok(()) => info!(task = name, "task stopped"),
                        Err(e) => {
                            warn!(task = name, error = %format!("{e:#}"), "task failed while stopping");
                            failures.push(format!("task {name} failed: {e:#}"));
                        }
                    }
                }
                Err(_) => {
                    let left: Vec<&str> = self.names.values().copied().collect();
                    failures.push(format!(
                        "shutdown timed out after {:?}; still running: {}",
                        self.shutdown_timeout,
                        left.join(", ")
                    ));
                    self.tasks.abort_all();
                    break;
                }
            }
        }
        if failures.is_empty() {
            info!("stopped cleanly");
            Ok(())
        } else {
            bail!(failures.join("; "))
        }
    }

    fn outcome(
        &mut self,
        r: Result<(Id, anyhow::Result<()>), tokio::task::JoinError>,
    ) -> (&'static str, anyhow::Result<()>) {
        match r {
            Ok((id, res)) => (self.names.remove(&id).unwrap_or("?"), res),
            Err(e) => {
                let name = self.names.remove(&e.id()).unwrap_or("?");
                (name, Err(anyhow!("task panicked or was cancelled: {e}")))
            }
        }
    }
}

/// Runs the service until `signal` resolves (or a task ends); see [`Running::wait`].
pub async fn run(config: Config, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
    start(config).await?.wait(signal).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::gen::Generator;
    use borderlane_core::wire::{Limits, Manifest, Str};

    fn decisions(n: u64) -> Vec<(Manifest, borderlane_core::Decision)> {
        let policy = crate::load::policy::default_policy();
        let g = Generator::seeded(5, 0.0, &policy);
        let table = g.partner_table();
        (0..n)
            .map(|i| {
                borderlane_core::process_with(
                    &policy,
                    borderlane_core::Lookups::new(&table, None),
                    &g.record(i).to_bytes(),
                    &Limits::default(),
                    &borderlane_core::Resumptions::NONE,
                )
                .unwrap()
            })
            .collect()
    }

    /// Tells `w` of a decision; returns weak references to what it handed over.
    fn tell(
        w: &Watchers,
        (manifest, decision): &(Manifest, borderlane_core::Decision),
    ) -> (std::sync::Weak<FeedItem>, std::sync::Weak<Manifest>) {
        let mut json = Vec::new();
        decision.write_json(&mut json);
        let brief = Brief::of(decision);
        let item = Feed::item(&decision.manifest_id, &brief, &json);
        let m = Arc::new(manifest.clone());
        let weak = (Arc::downgrade(&item), Arc::downgrade(&m));
        let bytes = crate::service::admin::ring::manifest_bytes(manifest);
        w.decided(
            ForWatchers {
                item: Some(item),
                manifest: Some((m, bytes)),
            },
            &brief,
        );
        weak
    }

    /// With `keep_evicted`, what the feed's look-up window and the what-if window let go waits for
    /// `take_evicted`, oldest first, one item and one manifest a record, the rest for the next call; the
    /// windows themselves hold the same as without. Without it nothing waits.
    #[test]
    fn what_the_windows_let_go_waits_for_the_scoring_threads_only_when_asked() {
        let policy = crate::load::policy::default_policy();
        let ds = decisions(40);
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        // The what-if window holds about three manifests: older ones leave through its eviction loop.
        let budget: usize = ds[..3]
            .iter()
            .map(|(m, _)| crate::service::admin::ring::manifest_bytes(m))
            .sum();
        let watchers = |keep: bool| {
            let w = Watchers {
                feed: Some(Arc::new(Feed::new(4, 10, &policy, stopped.clone()))),
                ring: Some(Arc::new(ManifestRing::new(budget))),
                ..Watchers::default()
            };
            if keep {
                w.keep_evicted()
            } else {
                w
            }
        };
        let (kept, freed) = (watchers(true), watchers(false));
        let ids: Vec<Str> = ds.iter().map(|(_, d)| d.manifest_id.clone()).collect();
        for d in &ds {
            tell(&kept, d);
            tell(&freed, d);
        }
        let in_ring = |w: &Watchers| -> Vec<Str> {
            let ring = w.ring.as_ref().unwrap();
            ring.snapshot()
                .iter()
                .map(|m| m.manifest_id.clone())
                .collect()
        };
        let ring_kept = in_ring(&kept);
        assert!(!ring_kept.is_empty() && ring_kept.len() < 10);
        assert_eq!(ring_kept, in_ring(&freed));
        let let_go = ids.len() - ring_kept.len();
        // 40 items into a look-up window of 10: the first 30 let go; the manifests before the ring's.
        let first = kept.take_evicted(25);
        assert_eq!(first.len(), 25);
        assert!(first.iter().all(|(i, m)| i.is_some() && m.is_some()));
        let second = kept.take_evicted(25);
        assert_eq!(second.len(), 25);
        let item_ids: Vec<Str> = first
            .iter()
            .chain(&second)
            .filter_map(|(i, _)| i.as_ref().map(|i| i.manifest_id.clone()))
            .collect();
        let manifest_ids: Vec<Str> = first
            .iter()
            .chain(&second)
            .filter_map(|(_, m)| m.as_ref().map(|m| m.manifest_id.clone()))
            .collect();
        assert_eq!(item_ids, ids[..30]);
        assert_eq!(manifest_ids, ids[..let_go]);
        assert!(kept
            .take_evicted(8)
            .iter()
            .all(|g| g.0.is_none() && g.1.is_none()));
        // Both feeds still look up the newest ten, and nothing waits without keep_evicted.
        for w in [&kept, &freed] {
            let feed = w.feed.as_ref().unwrap();
            assert!(feed.lookup(&ids[39]).is_some() && feed.lookup(&ids[30]).is_some());
            assert!(feed.lookup(&ids[29]).is_none());
        }
        let none = freed.take_evicted(50);
        assert_eq!(none.len(), 50);
        assert!(none.iter().all(|g| g.0.is_none() && g.1.is_none()));
    }

    /// What waits is bounded: past the bounds the oldest is freed as the windows let go of more (an
    /// exactly-once commit tells the watchers of thousands of decisions at once), the newest wait.
    #[test]
    fn what_waits_for_the_scoring_threads_is_bounded() {
        let policy = crate::load::policy::default_policy();
        let ds = decisions(40);
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        let w = Watchers {
            feed: Some(Arc::new(Feed::new(4, 1, &policy, stopped.clone()))),
            ring: Some(Arc::new(ManifestRing::new(1))),
            ..Watchers::default()
        }
        .keep_evicted();
        let n = MOST_ITEMS_PENDING + 300;
        let told: Vec<_> = (0..n).map(|i| tell(&w, &ds[i % ds.len()])).collect();
        // Items: the look-up window keeps the newest one; manifests: all let go (1-byte budget).
        let alive_items = told.iter().filter(|(i, _)| i.upgrade().is_some()).count();
        let alive_manifests = told.iter().filter(|(_, m)| m.upgrade().is_some()).count();
        assert_eq!(alive_items, MOST_ITEMS_PENDING + 1);
        assert!(alive_manifests <= MOST_MANIFESTS_PENDING);
        let bytes: usize = told
            .iter()
            .filter_map(|(_, m)| m.upgrade())
            .map(|m| crate::service::admin::ring::manifest_bytes(&m))
            .sum();
        assert!(bytes <= MOST_MANIFEST_BYTES_PENDING, "{bytes}");
        // The oldest went first; the newest wait.
        assert!(told[..n - MOST_ITEMS_PENDING - 1]
            .iter()
            .all(|(i, _)| i.upgrade().is_none()));
        assert!(told[n - MOST_ITEMS_PENDING - 1].0.upgrade().is_some());
        assert!(told[n - 10..].iter().all(|(_, m)| m.upgrade().is_some()));
    }
}
