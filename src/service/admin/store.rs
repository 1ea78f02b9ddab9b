//! The policy store: the current compiled policy behind an atomic pointer swap, every version's text (kept
//! on disk beside the audit log so rollback works after a restart), and the audit entry for every change.
//!
//! Scoring takes one snapshot (`current()`) per manifest, so a swap is atomic for decisions: each decision
//! is scored entirely under one version, and its `policy_version` says which.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::schema::PathError;
use serde::Serialize;

use super::audit::{AuditLog, Entry};

/// Turns policy text into a compiled policy (the adapter decides how referenced files are found).
pub type Loader = Box<dyn Fn(&str) -> Result<CompiledPolicy, Vec<PathError>> + Send + Sync>;

/// What an install or rollback did.
#[derive(Debug, Clone, Serialize)]
pub struct Installed {
    pub old_version: String,
    pub new_version: String,
    /// False when the text's version was already current.
    pub changed: bool,
    pub changed_keys: Vec<String>,
}

#[derive(Debug)]
pub enum RollbackError {
    UnknownVersion(String),
    Invalid(Vec<PathError>),
}

pub struct PolicyStore {
    /// Shared with the pipelines that score: they load one snapshot per manifest.
    current: Arc<ArcSwap<CompiledPolicy>>,
    /// version → policy text, for rollback.
    texts: Mutex<BTreeMap<String, String>>,
    audit: Option<AuditLog>,
    /// One change at a time: the swap and its audit entry go together.
    change: Mutex<()>,
    loader: Loader,
    /// Hot reloads rejected because the file was invalid (a metric).
    pub reload_failures: AtomicU64,
}

fn now() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    borderlane_core::time::Timestamp::from_unix_nanos(nanos)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Dotted key paths whose values differ between two policies (leaves of their canonical JSON).
pub fn changed_keys(old: &CompiledPolicy, new: &CompiledPolicy) -> Vec<String> {
    fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, serde_json::Value>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flatten(&p, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.clone());
            }
        }
    }
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    flatten(
        "",
        &serde_json::to_value(&old.doc).unwrap_or_default(),
        &mut a,
    );
    flatten(
        "",
        &serde_json::to_value(&new.doc).unwrap_or_default(),
        &mut b,
    );
    let mut keys: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

impl PolicyStore {
    /// Starts with `text` (already validated by the caller or validated here). Records a `startup` audit entry
    /// when the starting version differs from the last one the audit log knows.
    pub fn new(
        text: &str,
        loader: Loader,
        audit: Option<AuditLog>,
    ) -> Result<PolicyStore, Vec<PathError>> {
        let initial = loader(text)?;
        let version = initial.version.to_string();
        let mut texts = BTreeMap::new();
        if let Some(a) = &audit {
            if let Ok(dir) = std::fs::read_dir(a.versions_dir()) {
                for f in dir.flatten() {
                    let name = f.file_name().to_string_lossy().to_string();
                    if let (Some(stem), Ok(t)) = (
                        name.strip_suffix(".toml"),
                        std::fs::read_to_string(f.path()),
                    ) {
                        texts.insert(format!("sha256:{stem}"), t);
                    }
                }
            }
        }
        texts.insert(version.clone(), text.to_string());
        let store = PolicyStore {
            current: Arc::new(ArcSwap::from_pointee(initial)),
            texts: Mutex::new(texts),
            audit,
            change: Mutex::new(()),
            loader,
            reload_failures: AtomicU64::new(0),
        };
        store.persist_text(&version, text);
        if let Some(a) = &store.audit {
            let last = a
                .read_all()
                .ok()
                .and_then(|v| v.last().map(|e| e.new_version.clone()));
            if last.as_deref() != Some(version.as_str()) {
                let _ = a.append(&Entry {
                    time: now(),
                    actor: "startup".into(),
                    action: "startup".into(),
                    old_version: last,
                    new_version: version,
                    changed_keys: Vec::new(),
                });
            }
        }
        Ok(store)
    }

    /// The policy to score the next manifest with.
    #[inline]
    pub fn current(&self) -> Arc<CompiledPolicy> {
        self.current.load_full()
    }

    /// The atomic pointer the store swaps, for a pipeline that loads a snapshot per manifest.
    pub fn handle(&self) -> Arc<ArcSwap<CompiledPolicy>> {
        self.current.clone()
    }

    /// The current policy's text.
    pub fn current_text(&self) -> String {
        let v = self.current().version.to_string();
        self.texts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&v)
            .cloned()
            .unwrap_or_default()
    }

    /// Known versions (installed in this process or kept on disk).
    pub fn versions(&self) -> Vec<String> {
        self.texts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    fn persist_text(&self, version: &str, text: &str) {
        if let Some(a) = &self.audit {
            let dir = a.versions_dir();
            if std::fs::create_dir_all(&dir).is_ok() {
                let hex = version.strip_prefix("sha256:").unwrap_or(version);
                let _ = std::fs::write(dir.join(format!("{hex}.toml")), text);
            }
        }
    }

    /// Validates and installs `text`; on error the running policy stays and every error is returned.
    pub fn install(
        &self,
        text: &str,
        actor: &str,
        action: &str,
    ) -> Result<Installed, Vec<PathError>> {
        let new = (self.loader)(text)?;
        let _guard = self.change.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.current();
        let installed = Installed {
            old_version: old.version.to_string(),
            new_version: new.version.to_string(),
            changed: old.version != new.version,
            changed_keys: changed_keys(&old, &new),
        };
        if !installed.changed {
            return Ok(installed);
        }
        self.texts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(installed.new_version.clone(), text.to_string());
        self.persist_text(&installed.new_version, text);
        self.current.store(Arc::new(new));
        if let Some(a) = &self.audit {
            let entry = Entry {
                time: now(),
                actor: actor.into(),
                action: action.into(),
                old_version: Some(installed.old_version.clone()),
                new_version: installed.new_version.clone(),
                changed_keys: installed.changed_keys.clone(),
            };
            if let Err(e) = a.append(&entry) {
                tracing::error!(error = %e, "could not write the audit entry for a policy change");
            }
        }
        Ok(installed)
    }

    /// Re-installs a previous version by id.
    pub fn rollback(&self, version: &str, actor: &str) -> Result<Installed, RollbackError> {
        let text = self
            .texts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(version)
            .cloned()
            .ok_or_else(|| RollbackError::UnknownVersion(version.to_string()))?;
        self.install(&text, actor, "rollback")
            .map_err(RollbackError::Invalid)
    }

    /// The audit trail, oldest first (empty without an audit log).
    pub fn audit(&self) -> Vec<Entry> {
        self.audit
            .as_ref()
            .and_then(|a| a.read_all().ok())
            .unwrap_or_default()
    }

    pub fn reload_failed(&self) {
        self.reload_failures.fetch_add(1, Ordering::Relaxed);
    }
}
