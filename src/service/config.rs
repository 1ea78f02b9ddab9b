//! The `serve` configuration: a TOML file plus `BORDERLANE_<SECTION>__<KEY>` environment overrides,
//! validated as a whole so every error is reported at once with its key path.
//!
//! librdkafka properties pass through untouched (`[kafka.common]`, `[kafka.consumer]`, `[kafka.producer]`)
//! so SASL/TLS and tuning need no code change. A few properties carry the service's delivery guarantee and
//! are set by the service itself; configuring them to another value is an error, not a silent override.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use borderlane_core::schema::{from_toml, PathError};

pub use super::kafka::clients::{ClientProps, DeliveryMode, KafkaConfig, Topics};
use borderlane_core::wire::Limits;
use serde::Deserialize;

/// Prefix of environment overrides; `__` separates the key path segments.
pub const ENV_PREFIX: &str = "BORDERLANE_";

/// The whole `serve` configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Brokers, topics, consumer group and client properties.
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// The operational HTTP endpoint (health, readiness, metrics).
    #[serde(default)]
    pub http: HttpConfig,
    /// Which scoring policy to load.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Structural limits applied to every manifest and partner record.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Process-level behaviour: shutdown budget, logging.
    #[serde(default)]
    pub service: ServiceConfig,
    /// Operators' admin API, audit trail, hot reload and what-if window.
    #[serde(default)]
    pub admin: AdminConfig,
    /// The officers' listener: console, feed, decision look-up and stats, behind a login.
    #[serde(default)]
    pub officers: OfficersConfig,
    /// Directory of the config file; relative paths inside the file are resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address of `/healthz`, `/readyz` and `/metrics`, unauthenticated (port 0 picks a free port). It
    /// carries no decision contents, manifest or party ids.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Serve the officers' console (`/`), the live feed (`/feed`), `/decisions/{id}` and `/api/stats` on
    /// `officers.listen`.
    #[serde(default = "default_true")]
    pub console: bool,
    /// How many decisions a feed client may fall behind before it gets a `gap` event.
    #[serde(default = "default_feed_capacity")]
    pub feed_capacity: usize,
    /// Host names (without port) every listener accepts in the `Host` header besides its own address,
    /// `localhost`, `127.0.0.1` and `::1` (against DNS rebinding); others get 421.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Longest time a handler may take to start its response, milliseconds (408 after it).
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// A connection with no bytes read or written for this long is closed, milliseconds (also bounds a
    /// slow request head and the TLS handshake).
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// PEM certificate chain: with `tls_key`, every listener speaks HTTPS only.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Let `serve` expose the officers' or admin listener on a non-loopback address without TLS.
    #[serde(default)]
    pub allow_plaintext: bool,
}

/// A configured secret: deserialised from a string, never shown by `Debug`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// The officers' listener and its login.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfficersConfig {
    /// Address of the console, `/feed`, `/decisions/{id}` and `/api/stats`; absent disables them.
    #[serde(default = "default_officers_listen")]
    pub listen: Option<SocketAddr>,
    /// HMAC-SHA256 key signing session cookies (at least 32 characters; set it the same on every instance
    /// behind a load balancer, e.g. `BORDERLANE_OFFICERS__SESSION_KEY`). Absent: a key generated per
    /// process, so sessions neither survive a restart nor cross instances.
    #[serde(default)]
    pub session_key: Option<Secret>,
    /// How long a console session lasts, seconds.
    #[serde(default = "default_session_ttl_secs")]
    pub session_ttl_secs: u64,
    /// Failed logins per client address per minute before 429.
    #[serde(default = "default_login_failures_per_client")]
    pub login_failures_per_client: u32,
    /// Failed logins per minute over all clients before 429.
    #[serde(default = "default_login_failures_global")]
    pub login_failures_global: u32,
    /// Most concurrent `/feed` clients per instance (503 beyond).
    #[serde(default = "default_max_sse_clients")]
    pub max_sse_clients: usize,
    /// With no tokens file and no `BORDERLANE_OFFICER_TOKEN`, generate an officer token at start (`demo`
    /// prints a login for it).
    #[serde(default)]
    pub generate_token: bool,
}

fn default_officers_listen() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 9466)))
}
fn default_session_ttl_secs() -> u64 {
    8 * 3600
}
fn default_login_failures_per_client() -> u32 {
    5
}
fn default_login_failures_global() -> u32 {
    50
}
fn default_max_sse_clients() -> usize {
    64
}
fn default_request_timeout_ms() -> u64 {
    30_000
}
fn default_idle_timeout_ms() -> u64 {
    60_000
}

impl Default for OfficersConfig {
    fn default() -> Self {
        OfficersConfig {
            listen: default_officers_listen(),
            session_key: None,
            session_ttl_secs: default_session_ttl_secs(),
            login_failures_per_client: default_login_failures_per_client(),
            login_failures_global: default_login_failures_global(),
            max_sse_clients: default_max_sse_clients(),
            generate_token: false,
        }
    }
}

/// The admin API (its own listener) and what it works on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the admin API; absent disables it.
    #[serde(default = "default_admin_listen")]
    pub listen: Option<SocketAddr>,
    /// Bearer tokens of every role, for the admin API and the officers' listener (TOML `[[token]] name,
    /// role = "officer" | "viewer" | "operator", secret` or `secret_sha256`), relative to the config file;
    /// re-read when it changes (sessions then end). Without it the tokens come from
    /// `BORDERLANE_ADMIN_TOKEN` (operator) and `BORDERLANE_OFFICER_TOKEN` (officer); a listener with no
    /// token of a role that may use it is not started.
    #[serde(default)]
    pub tokens_file: Option<PathBuf>,
    /// With no tokens file and no `BORDERLANE_ADMIN_TOKEN`, generate an operator token at start (`demo`
    /// prints it); otherwise the admin API is not started without tokens.
    #[serde(default)]
    pub generate_token: bool,
    /// Where models named by policies sent through the admin API (`PUT`, `rollback`, `simulate`) must be:
    /// their `model.file` is a relative path inside it (absolute paths and `..` are refused). Relative to the
    /// config file; default: the policy file's directory (so a version first loaded from the file can be
    /// sent back through the API unchanged).
    #[serde(default)]
    pub model_dir: Option<PathBuf>,
    /// Append-only audit trail (JSON lines), relative to the config file.
    #[serde(default = "default_audit_log")]
    pub audit_log: PathBuf,
    /// Most recent manifests one what-if simulation replays.
    #[serde(default = "default_replay_window")]
    pub replay_window: usize,
    /// Memory budget of the window of recent manifests kept for simulate, estimated bytes (kept only
    /// while the admin API runs). The default, 128 MiB, holds ~30 000 typical manifests (docs/serve.md).
    #[serde(default = "default_replay_window_bytes")]
    pub replay_window_bytes: usize,
    /// Largest policy accepted by `PUT /admin/policy` and simulate, bytes (413 beyond).
    #[serde(default = "default_max_policy_bytes")]
    pub max_policy_bytes: usize,
    /// Reload `policy.file` when it changes (through the same validation and swap as `PUT`).
    #[serde(default = "default_true")]
    pub reload_policy: bool,
    /// How often the policy file is checked, milliseconds.
    #[serde(default = "default_reload_interval_ms")]
    pub reload_interval_ms: u64,
    /// Longest business resumption one `PUT /admin/ports/{code}/resumption` may declare: its `until` at
    /// most this many hours after the declaration (1 to 8760).
    #[serde(default = "default_max_resumption_hours")]
    pub max_resumption_hours: u64,
}

fn default_true() -> bool {
    true
}
fn default_feed_capacity() -> usize {
    1024
}
fn default_admin_listen() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 9465)))
}
fn default_audit_log() -> PathBuf {
    PathBuf::from("../target/borderlane/audit.jsonl")
}
fn default_replay_window() -> usize {
    100_000
}
fn default_replay_window_bytes() -> usize {
    REPLAY_WINDOW_BYTES
}
/// Default what-if window budget, 128 MiB: generated manifests measure 4 658 bytes of heap on average
/// (largest 7 568; `admin::ring` test `typical_generated_manifests_are_measured`; the estimate equals
/// glibc's own count, tests/ring_memory.rs), so it holds ~28 800.
pub const REPLAY_WINDOW_BYTES: usize = 128 << 20;
fn default_max_policy_bytes() -> usize {
    256 * 1024
}
fn default_reload_interval_ms() -> u64 {
    1000
}
fn default_max_resumption_hours() -> u64 {
    168
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: default_admin_listen(),
            tokens_file: None,
            generate_token: false,
            model_dir: None,
            audit_log: default_audit_log(),
            replay_window: default_replay_window(),
            replay_window_bytes: default_replay_window_bytes(),
            max_policy_bytes: default_max_policy_bytes(),
            reload_policy: true,
            reload_interval_ms: default_reload_interval_ms(),
            max_resumption_hours: default_max_resumption_hours(),
        }
    }
}

impl AdminConfig {
    /// The audit log path resolved against the config file's directory.
    pub fn audit_path(&self, base_dir: &std::path::Path) -> PathBuf {
        base_dir.join(&self.audit_log)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Policy file (TOML), relative to the config file; absent means the embedded default policy.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// Overrides of the core's [`Limits`]; absent keys keep the core defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest record accepted, bytes (larger ones are dead letters of kind `oversized`).
    pub max_bytes: Option<usize>,
    /// Most shipments per manifest.
    pub max_shipments: Option<usize>,
    /// Most commodity lines per shipment.
    pub max_commodities: Option<usize>,
    /// Most drivers, equipment items, seals per item, transit countries.
    pub max_items: Option<usize>,
    /// Longest identifier.
    pub max_id_len: Option<usize>,
    /// Deepest JSON nesting.
    pub max_depth: Option<usize>,
}

impl LimitsConfig {
    pub fn limits(&self) -> Limits {
        let d = Limits::default();
        Limits {
            max_bytes: self.max_bytes.unwrap_or(d.max_bytes),
            max_shipments: self.max_shipments.unwrap_or(d.max_shipments),
            max_commodities: self.max_commodities.unwrap_or(d.max_commodities),
            max_items: self.max_items.unwrap_or(d.max_items),
            max_id_len: self.max_id_len.unwrap_or(d.max_id_len),
            max_depth: self.max_depth.unwrap_or(d.max_depth),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Whole budget for a graceful shutdown (drain, commit, leave the group), in milliseconds.
    #[serde(default = "default_shutdown_timeout_ms")]
    pub shutdown_timeout_ms: u64,
    /// Log line format.
    #[serde(default)]
    pub log_format: LogFormat,
    /// `/readyz` answers 503 when an assigned manifest partition has lag and no progress for this long,
    /// in milliseconds.
    #[serde(default = "default_stall_after_ms")]
    pub stall_after_ms: u64,
    /// Threads that score manifests inside this instance (0: one per CPU). The pipeline thread polls a
    /// batch of records, the workers parse, score and encode it in parallel, and the pipeline thread emits
    /// the outputs in the order they were read, so per-partition order, the at-least-once offset tracking
    /// and the exactly-once transaction boundaries are those of a single-threaded loop. 1 scores on the
    /// pipeline thread.
    #[serde(default)]
    pub scoring_threads: usize,
    /// The decisions every instance keeps to record exam outcomes against (`POST /outcomes`).
    #[serde(default)]
    pub outcome_window: OutcomeWindowConfig,
}

/// `[service.outcome_window]`: the recent decisions (followed from the committed `decisions` topic, or
/// in process for `demo`) an officer may record an exam outcome for. Bounded by both: a decision leaves
/// the window when it is older than `hours` or when more than `decisions` are held (memory: ~0.5 KB each
/// for a generated decision — its parties, shipments and selection causes — measured by `cargo bench
/// --bench outcome_window`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeWindowConfig {
    /// Age limit, by the decision record's timestamp.
    #[serde(default = "default_window_hours")]
    pub hours: u64,
    /// Count limit.
    #[serde(default = "default_window_decisions")]
    pub decisions: usize,
}

fn default_window_hours() -> u64 {
    72
}

fn default_window_decisions() -> usize {
    200_000
}

impl Default for OutcomeWindowConfig {
    fn default() -> Self {
        OutcomeWindowConfig {
            hours: default_window_hours(),
            decisions: default_window_decisions(),
        }
    }
}

/// Default of `service.stall_after_ms`: well above a commit interval, a rebalance and a broker leader
/// election, well below the ~100 s a stuck group went unnoticed.
pub const DEFAULT_STALL_AFTER_MS: u64 = 30_000;

fn default_stall_after_ms() -> u64 {
    DEFAULT_STALL_AFTER_MS
}

/// librdkafka properties (`name = "value"`). Debug output redacts secrets.
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}
fn default_shutdown_timeout_ms() -> u64 {
    15_000
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
            console: true,
            feed_capacity: default_feed_capacity(),
            allowed_hosts: Vec::new(),
            request_timeout_ms: default_request_timeout_ms(),
            idle_timeout_ms: default_idle_timeout_ms(),
            tls_cert: None,
            tls_key: None,
            allow_plaintext: false,
        }
    }
}

impl ServiceConfig {
    /// `scoring_threads` with 0 resolved to the number of CPUs this process may use.
    pub fn scoring_threads(&self) -> usize {
        match self.scoring_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            shutdown_timeout_ms: default_shutdown_timeout_ms(),
            log_format: LogFormat::default(),
            stall_after_ms: default_stall_after_ms(),
            scoring_threads: 0,
            outcome_window: OutcomeWindowConfig::default(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            kafka: KafkaConfig::default(),
            http: HttpConfig::default(),
            policy: PolicyConfig::default(),
            limits: LimitsConfig::default(),
            service: ServiceConfig::default(),
            admin: AdminConfig::default(),
            officers: OfficersConfig::default(),
            base_dir: PathBuf::from("."),
        }
    }
}

/// Every problem found in a configuration, one per line: `key.path: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.0))]
pub struct ConfigErrors(pub Vec<PathError>);

fn render(errors: &[PathError]) -> String {
    let mut s = format!("{} configuration error(s):", errors.len());
    for e in errors {
        if e.path.is_empty() {
            s.push_str(&format!("\n  {}", e.message));
        } else {
            s.push_str(&format!("\n  {}: {}", e.path, e.message));
        }
    }
    s
}

/// The client-property maps, whose keys are librdkafka names (dots), not TOML paths.
const PROP_SECTIONS: [&str; 3] = ["common", "consumer", "producer"];

/// One applied environment override: the key path it set and the variable that set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvOverride {
    /// Key path set (lower-case segments).
    pub path: Vec<String>,
    /// The variable that set it, named in errors.
    pub var: String,
}

/// Maps `BORDERLANE_KAFKA__BOOTSTRAP_SERVERS` to `["kafka", "bootstrap_servers"]`. Inside a client-property
/// map the last segment is a librdkafka name, so `_` becomes `.`
/// (`BORDERLANE_KAFKA__COMMON__SASL_PASSWORD` → `kafka.common."sasl.password"`). Variables without `__`
/// (such as `BORDERLANE_KAFKA_CACHE`, used by `scripts/kafka`) are not overrides.
pub fn env_path(var: &str) -> Option<Vec<String>> {
    let rest = var.strip_prefix(ENV_PREFIX)?;
    if !rest.contains("__") {
        return None;
    }
    let mut path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
    if path.iter().any(String::is_empty) {
        return None;
    }
    if path.len() == 3 && path[0] == "kafka" && PROP_SECTIONS.contains(&path[1].as_str()) {
        path[2] = path[2].replace('_', ".");
    }
    Some(path)
}

/// Parses an override value: a TOML literal where it is one (`42`, `true`, `"quoted"`, `["a"]`), else the
/// raw text as a string. Client properties are always strings.
fn env_value(path: &[String], raw: &str) -> toml::Value {
    let is_prop =
        path.len() == 3 && path[0] == "kafka" && PROP_SECTIONS.contains(&path[1].as_str());
    if !is_prop {
        if let Ok(mut t) = format!("v = {raw}").parse::<toml::Table>() {
            if let Some(v) = t.remove("v") {
                if !matches!(v, toml::Value::Table(_)) {
                    return v;
                }
            }
        }
    }
    toml::Value::String(raw.to_string())
}

/// Applies overrides onto the parsed document. A path through a non-table value replaces it with a table
/// (the schema check then reports the type error at that path).
pub fn apply_env(
    doc: &mut toml::Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Vec<EnvOverride> {
    let mut applied = Vec::new();
    let mut vars: Vec<(String, String)> = vars.into_iter().collect();
    vars.sort();
    for (var, raw) in vars {
        let Some(path) = env_path(&var) else {
            continue;
        };
        let value = env_value(&path, &raw);
        let (last, init) = path
            .split_last()
            .expect("env_path never returns an empty path");
        let mut table = &mut *doc;
        for seg in init {
            let entry = table
                .entry(seg.clone())
                .or_insert_with(|| toml::Value::Table(Default::default()));
            if !entry.is_table() {
                *entry = toml::Value::Table(Default::default());
            }
            table = entry.as_table_mut().expect("just made a table");
        }
        table.insert(last.clone(), value);
        applied.push(EnvOverride { path, var });
    }
    applied
}

impl Config {
    /// Reads `path`, applies the process environment's overrides, validates.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![PathError {
                path: String::new(),
                message: format!("cannot read {}: {e}", path.display()),
            }])
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Config::from_text(&text, std::env::vars(), &base)
    }

    /// Parses `text`, applies overrides from `vars`, validates; `base_dir` anchors relative paths.
    pub fn from_text(
        text: &str,
        vars: impl IntoIterator<Item = (String, String)>,
        base_dir: &Path,
    ) -> Result<Config, ConfigErrors> {
        let mut doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            ConfigErrors(vec![PathError {
                path: String::new(),
                message: e.to_string().trim().to_string(),
            }])
        })?;
        let overrides = apply_env(&mut doc, vars);
        let merged = toml::to_string(&doc).map_err(|e| {
            ConfigErrors(vec![PathError {
                path: String::new(),
                message: format!("cannot re-serialise the configuration: {e}"),
            }])
        })?;
        let mut config: Config = match from_toml::<Config>(&merged) {
            Ok(c) => c,
            Err(errors) => return Err(ConfigErrors(annotate(errors, &overrides))),
        };
        config.base_dir = if base_dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base_dir.to_path_buf()
        };
        let errors = config.validate();
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(annotate(errors, &overrides)))
        }
    }

    /// Checks the rules serde cannot express.
    pub fn validate(&self) -> Vec<PathError> {
        let mut errors = Vec::new();
        self.kafka.validate(&self.limits.limits(), &mut errors);
        let mut err = |path: &str, message: String| {
            errors.push(PathError {
                path: path.to_string(),
                message,
            })
        };
        if self.service.shutdown_timeout_ms < 1000 {
            err(
                "service.shutdown_timeout_ms",
                "must be at least 1000 (draining in-flight work takes time)".into(),
            );
        }
        if !(1..=8760).contains(&self.admin.max_resumption_hours) {
            err(
                "admin.max_resumption_hours",
                "must be between 1 and 8760 (a year)".into(),
            );
        }
        if self.service.stall_after_ms < 2000 {
            err(
                "service.stall_after_ms",
                "must be at least 2000 (lag and progress are sampled every second)".into(),
            );
        }
        if self.service.scoring_threads > 256 {
            err(
                "service.scoring_threads",
                "must be at most 256 (0 means one per CPU)".into(),
            );
        }
        if !(1..=8760).contains(&self.service.outcome_window.hours) {
            err(
                "service.outcome_window.hours",
                "must be between 1 and 8760 (a year)".into(),
            );
        }
        if !(1..=50_000_000).contains(&self.service.outcome_window.decisions) {
            err(
                "service.outcome_window.decisions",
                "must be between 1 and 50000000 (each held decision costs a few hundred bytes)"
                    .into(),
            );
        }
        if self.http.tls_cert.is_some() != self.http.tls_key.is_some() {
            err(
                "http.tls_cert",
                "tls_cert and tls_key go together (both or neither)".into(),
            );
        }
        if let Some(k) = &self.officers.session_key {
            if k.0.len() < 32 {
                err(
                    "officers.session_key",
                    "must be at least 32 characters".into(),
                );
            }
        }
        if self.officers.session_ttl_secs == 0 {
            err("officers.session_ttl_secs", "must be at least 1".into());
        }
        if self.http.request_timeout_ms == 0 || self.http.idle_timeout_ms == 0 {
            err(
                "http.request_timeout_ms",
                "request and idle timeouts must be at least 1 ms".into(),
            );
        }
        let limits = self.limits.limits();
        for (path, v) in [
            ("limits.max_bytes", limits.max_bytes),
            ("limits.max_shipments", limits.max_shipments),
            ("limits.max_commodities", limits.max_commodities),
            ("limits.max_items", limits.max_items),
            ("limits.max_id_len", limits.max_id_len),
            ("limits.max_depth", limits.max_depth),
        ] {
            if v == 0 {
                err(path, "must be at least 1".into());
            }
        }
        if limits.max_shipments > borderlane_core::wire::MAX_SHIPMENTS {
            err(
                "limits.max_shipments",
                format!(
                    "must be at most {} (shipments are indexed by 16 bits)",
                    borderlane_core::wire::MAX_SHIPMENTS
                ),
            );
        }
        errors
    }

    /// The policy file, resolved against the config file's directory.
    pub fn policy_path(&self) -> Option<PathBuf> {
        self.policy.file.as_ref().map(|p| {
            if p.is_absolute() {
                p.clone()
            } else {
                self.base_dir.join(p)
            }
        })
    }
}

/// Names the environment variable behind an error whose path an override set.
fn annotate(mut errors: Vec<PathError>, overrides: &[EnvOverride]) -> Vec<PathError> {
    for e in &mut errors {
        if let Some(o) = overrides
            .iter()
            .find(|o| e.path == o.path.join(".") || e.path.starts_with(&(o.path.join(".") + ".")))
        {
            e.message = format!("{} (set by {})", e.message, o.var);
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn paths(e: ConfigErrors) -> Vec<String> {
        let mut p: Vec<String> = e.0.into_iter().map(|e| e.path).collect();
        p.sort();
        p
    }

    #[test]
    fn the_example_config_is_valid() {
        let text = include_str!("../../config/borderlane.toml");
        let c = Config::from_text(text, env(&[]), Path::new("config")).unwrap();
        assert!(c.kafka.create_topics);
        assert_eq!(c.kafka.topics, Topics::default());
        assert_eq!(c.kafka.producer.0["linger.ms"], "1");
        assert_eq!(c.kafka.consumer.0["fetch.queue.backoff.ms"], "10");
        // Left to the built-in per-consumer values (10 ms manifests, 100 ms followers).
        assert!(!c.kafka.consumer.0.contains_key("fetch.wait.max.ms"));
        assert_eq!(c.policy_path(), Some(PathBuf::from("config/policy.toml")));
        // Exactly-once is the example's mode, and `serve` can run it as is (one instance).
        assert_eq!(
            c.kafka.delivery,
            crate::service::kafka::clients::DeliveryMode::ExactlyOnce
        );
        assert_eq!(c.kafka.serve_problem(), None);
        assert!(c.kafka.transaction_timeout_ms <= 10_000);
    }

    #[test]
    fn empty_config_takes_defaults() {
        let c = Config::from_text("", env(&[]), Path::new("")).unwrap();
        assert_eq!(c.kafka.topics.partners, "ctpat-partners");
        assert_eq!(c.http.listen.port(), 9464);
        assert!(!c.kafka.create_topics);
        assert_eq!(c.limits.limits(), Limits::default());
        assert_eq!(c.policy_path(), None);
    }

    #[test]
    fn env_overrides_apply_with_types_and_property_names() {
        let c = Config::from_text(
            "[kafka]\nbootstrap_servers = \"a:1\"\n[kafka.common]\n\"client.id\" = \"x\"\n",
            env(&[
                ("BORDERLANE_KAFKA__BOOTSTRAP_SERVERS", "b:2"),
                ("BORDERLANE_KAFKA__TOPIC_PARTITIONS", "12"),
                ("BORDERLANE_KAFKA__CREATE_TOPICS", "true"),
                ("BORDERLANE_KAFKA__TOPICS__MANIFESTS", "m2"),
                ("BORDERLANE_KAFKA__COMMON__SASL_PASSWORD", "hunter2"),
                ("BORDERLANE_KAFKA__CONSUMER__FETCH_WAIT_MAX_MS", "5"),
                ("BORDERLANE_HTTP__LISTEN", "127.0.0.1:0"),
                ("BORDERLANE_KAFKA_CACHE", "/not/an/override"),
                ("OTHER", "x"),
            ]),
            Path::new(""),
        )
        .unwrap();
        assert_eq!(c.kafka.bootstrap_servers, "b:2");
        assert_eq!(c.kafka.topic_partitions, 12);
        assert!(c.kafka.create_topics);
        assert_eq!(c.kafka.topics.manifests, "m2");
        assert_eq!(c.kafka.common.0["sasl.password"], "hunter2");
        assert_eq!(c.kafka.common.0["client.id"], "x");
        assert_eq!(c.kafka.consumer.0["fetch.wait.max.ms"], "5");
        assert_eq!(c.http.listen.port(), 0);
        // Secrets never reach Debug output.
        let c = Config::from_text(
            "[officers]\nsession_key = \"session-key-0123456789-0123456789-abc\"\n",
            env(&[("BORDERLANE_KAFKA__COMMON__SASL_PASSWORD", "hunter2")]),
            Path::new(""),
        )
        .unwrap();
        assert_eq!(
            c.officers.session_key.as_ref().unwrap().0,
            "session-key-0123456789-0123456789-abc"
        );
        let debug = format!("{c:?}");
        assert!(!debug.contains("session-key-0123"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("\"sasl.password\": \"***\""), "{debug}");
    }

    #[test]
    fn every_error_is_reported_with_its_path() {
        let text = r#"
            bogus = 1
            [kafka]
            topic_partitions = "many"
            replication_factor = 0
            colour = "blue"
            [kafka.topics]
            decisions = "manifests"
            [kafka.consumer]
            "enable.auto.offset.store" = "true"
            "group.id" = "g"
            [http]
            listen = "not an address"
            [service]
            shutdown_timeout_ms = 10
        "#;
        let e = Config::from_text(text, env(&[]), Path::new("")).unwrap_err();
        assert_eq!(
            paths(e),
            vec![
                "bogus",
                "http.listen",
                "kafka.colour",
                "kafka.topic_partitions",
            ]
        );
        // Schema-valid documents get the semantic checks, all at once.
        let text = r#"
            [kafka]
            replication_factor = 0
            [kafka.topics]
            decisions = "manifests"
            [kafka.consumer]
            "enable.auto.offset.store" = "true"
            "group.id" = "g"
            [service]
            shutdown_timeout_ms = 10
            [limits]
            max_bytes = 100000000
            max_shipments = 65537
        "#;
        let e = Config::from_text(text, env(&[]), Path::new("")).unwrap_err();
        assert_eq!(
            paths(e),
            vec![
                "kafka.consumer.enable.auto.offset.store",
                "kafka.consumer.group.id",
                "kafka.replication_factor",
                "kafka.topics.decisions",
                "limits.max_bytes",
                "limits.max_shipments",
                "service.shutdown_timeout_ms",
            ]
        );
    }

    #[test]
    fn env_errors_name_their_variable() {
        let e = Config::from_text(
            "",
            env(&[
                ("BORDERLANE_KAFKA__NO_SUCH_KEY", "1"),
                ("BORDERLANE_KAFKA__TOPIC_PARTITIONS", "lots"),
            ]),
            Path::new(""),
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("2 configuration error(s)"), "{text}");
        assert!(
            text.contains("kafka.no_such_key: unknown field `no_such_key`")
                && text.contains("(set by BORDERLANE_KAFKA__NO_SUCH_KEY)"),
            "{text}"
        );
        assert!(
            text.contains("(set by BORDERLANE_KAFKA__TOPIC_PARTITIONS)"),
            "{text}"
        );
    }
}
