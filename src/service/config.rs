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
    /// Directory of the config file; relative paths inside the file are resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address of `/healthz`, `/readyz` and `/metrics` (port 0 picks a free port).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Also serve the officers' console (`/`), the live feed (`/feed`), `/decisions/{id}` and `/api/stats`.
    #[serde(default = "default_true")]
    pub console: bool,
    /// How many decisions a feed client may fall behind before it gets a `gap` event.
    #[serde(default = "default_feed_capacity")]
    pub feed_capacity: usize,
}

/// The admin API (its own listener) and what it works on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the admin API; absent disables it.
    #[serde(default = "default_admin_listen")]
    pub listen: Option<SocketAddr>,
    /// Bearer tokens (TOML `[[token]] name, role, secret`), relative to the config file. Without it the
    /// token comes from `BORDERLANE_ADMIN_TOKEN` (operator role); with neither, the admin API is not started.
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
    /// Recent manifests kept for the what-if simulate (memory: ~1–2 KB each).
    #[serde(default = "default_replay_window")]
    pub replay_window: usize,
    /// Reload `policy.file` when it changes (through the same validation and swap as `PUT`).
    #[serde(default = "default_true")]
    pub reload_policy: bool,
    /// How often the policy file is checked, milliseconds.
    #[serde(default = "default_reload_interval_ms")]
    pub reload_interval_ms: u64,
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
fn default_reload_interval_ms() -> u64 {
    1000
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
            reload_policy: true,
            reload_interval_ms: default_reload_interval_ms(),
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
        }
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            shutdown_timeout_ms: default_shutdown_timeout_ms(),
            log_format: LogFormat::default(),
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
        assert_eq!(c.kafka.consumer.0["fetch.wait.max.ms"], "10");
        assert_eq!(c.policy_path(), Some(PathBuf::from("config/policy.toml")));
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
        let debug = format!("{c:?}");
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
