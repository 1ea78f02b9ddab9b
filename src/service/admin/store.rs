//! The policy store: the current compiled policy behind an atomic pointer swap, every version's text (kept
//! on disk beside the audit log so rollback works after a restart), and the audit entry for every change.
//!
//! Scoring takes one snapshot (`current()`) per manifest, so a swap is atomic for decisions: each decision
//! is scored entirely under one version, and its `policy_version` says which.
//!
//! Policy text becomes a compiled policy only through the one [`PolicyLoader`], which also reads the model
//! a `[model]` section names; a policy is "changed" when its version or its model's version changes, so a
//! new model file under an unchanged policy is swapped and audited like a policy change. Every swap (and
//! every rejected reload) is announced on a watch channel ([`PolicyStore::subscribe`]), which keeps the
//! policy metrics current without polling.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use std::path::PathBuf;

use arc_swap::ArcSwap;
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::schema::PathError;
use serde::Serialize;
use tokio::sync::watch;

use super::audit::{AuditLog, Entry};
use crate::clock;
use crate::load::policy::{Origin, PolicyLoader};

/// What [`PolicyStore::subscribe`] announces: the policy in force and how many reloads were rejected.
#[derive(Clone)]
pub struct PolicyState {
    pub policy: Arc<CompiledPolicy>,
    pub reload_failures: u64,
}

/// The version of a compiled policy's model, if it has one.
pub fn model_version(p: &CompiledPolicy) -> Option<String> {
    p.model.as_ref().map(|m| m.model.version.to_string())
}

/// What an install or rollback did.
#[derive(Debug, Clone, Serialize)]
pub struct Installed {
    pub old_version: String,
    pub new_version: String,
    /// The models' versions (absent without a `[model]` section).
    pub old_model_version: Option<String>,
    pub new_model_version: Option<String>,
    /// False when the policy and model versions were already current.
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
    /// One change at a time: the swap and its audit entry go together. Holds where the current text came
    /// from (its model is found, watched and re-read for that origin).
    change: Mutex<Origin>,
    /// The one policy loader (policy text + its model).
    loader: PolicyLoader,
    /// Hot reloads rejected because the file (policy or model) was invalid (a metric).
    pub reload_failures: AtomicU64,
    /// Announces every swap and every rejected reload.
    notify: watch::Sender<PolicyState>,
}

fn now() -> String {
    clock::now().map(|t| t.to_string()).unwrap_or_default()
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
    /// Starts with `text` of `origin`, compiled by `loader`. Records a `startup` audit entry when the
    /// starting policy or model version differs from the last one the audit log knows.
    pub fn new(
        text: &str,
        origin: Origin,
        loader: PolicyLoader,
        audit: Option<AuditLog>,
    ) -> Result<PolicyStore, Vec<PathError>> {
        let initial = Arc::new(loader.compile(text, origin)?);
        let model = model_version(&initial);
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
            current: Arc::new(ArcSwap::new(initial.clone())),
            texts: Mutex::new(texts),
            audit,
            change: Mutex::new(origin),
            loader,
            reload_failures: AtomicU64::new(0),
            notify: watch::channel(PolicyState {
                policy: initial,
                reload_failures: 0,
            })
            .0,
        };
        store.persist_text(&version, text);
        if let Some(a) = &store.audit {
            let last = a.read_all().ok().and_then(|v| v.last().cloned());
            let (last_version, last_model) = match last {
                Some(e) => (Some(e.new_version), e.new_model_version),
                None => (None, None),
            };
            if last_version.as_deref() != Some(version.as_str()) || last_model != model {
                let _ = a.append(&Entry {
                    time: now(),
                    actor: "startup".into(),
                    action: "startup".into(),
                    old_version: last_version,
                    new_version: version,
                    old_model_version: last_model,
                    new_model_version: model,
                    changed_keys: Vec::new(),
                    resumption: None,
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

    /// Told about every swap and every rejected reload (the current state is marked seen at subscription).
    pub fn subscribe(&self) -> watch::Receiver<PolicyState> {
        self.notify.subscribe()
    }

    /// The one loader, for compiling candidate policies (`simulate`) exactly as an install would.
    pub fn loader(&self) -> &PolicyLoader {
        &self.loader
    }

    /// The model file the current policy names, resolved for the origin of its text.
    pub fn model_file(&self) -> Option<PathBuf> {
        let origin = *self.change.lock().unwrap_or_else(|e| e.into_inner());
        self.loader.model_file(&self.current(), origin)
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

    /// Validates `text` of `origin` with its model and installs it; on error the running policy stays and
    /// every error is returned.
    pub fn install(
        &self,
        text: &str,
        origin: Origin,
        actor: &str,
        action: &str,
    ) -> Result<Installed, Vec<PathError>> {
        let new = self.loader.compile(text, origin)?;
        let mut current_origin = self.change.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.current();
        let (old_model, new_model) = (model_version(&old), model_version(&new));
        let installed = Installed {
            old_version: old.version.to_string(),
            new_version: new.version.to_string(),
            changed: old.version != new.version || old_model != new_model,
            old_model_version: old_model,
            new_model_version: new_model,
            changed_keys: changed_keys(&old, &new),
        };
        if !installed.changed {
            return Ok(installed);
        }
        *current_origin = origin;
        self.texts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(installed.new_version.clone(), text.to_string());
        self.persist_text(&installed.new_version, text);
        let new = Arc::new(new);
        self.current.store(new.clone());
        self.notify.send_modify(|s| s.policy = new);
        if let Some(a) = &self.audit {
            let entry = Entry {
                time: now(),
                actor: actor.into(),
                action: action.into(),
                old_version: Some(installed.old_version.clone()),
                new_version: installed.new_version.clone(),
                old_model_version: installed.old_model_version.clone(),
                new_model_version: installed.new_model_version.clone(),
                changed_keys: installed.changed_keys.clone(),
                resumption: None,
            };
            if let Err(e) = a.append(&entry) {
                tracing::error!(error = %e, "could not write the audit entry for a policy change");
            }
        }
        Ok(installed)
    }

    /// Re-reads the current policy's model file (same text, same origin): a changed model is swapped and
    /// audited like a policy change (`model-reload`); an invalid one keeps the running policy.
    pub fn reload_model(&self, actor: &str) -> Result<Installed, Vec<PathError>> {
        let origin = *self.change.lock().unwrap_or_else(|e| e.into_inner());
        self.install(&self.current_text(), origin, actor, "model-reload")
    }

    /// Re-installs a previous version by id. Its model is looked for as for an admin API policy (inside the
    /// model directory).
    pub fn rollback(&self, version: &str, actor: &str) -> Result<Installed, RollbackError> {
        let text = self
            .texts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(version)
            .cloned()
            .ok_or_else(|| RollbackError::UnknownVersion(version.to_string()))?;
        self.install(&text, Origin::Api, actor, "rollback")
            .map_err(RollbackError::Invalid)
    }

    /// Records a business-resumption change by `actor` (`resumption-declare` or `resumption-end`) with the
    /// policy version in force; an audit write failure is logged (the change itself is already made).
    pub fn record_resumption(
        &self,
        actor: &str,
        action: &str,
        change: super::audit::ResumptionChange,
    ) -> Option<Entry> {
        let a = self.audit.as_ref()?;
        let p = self.current();
        let entry = Entry {
            time: now(),
            actor: actor.into(),
            action: action.into(),
            old_version: None,
            new_version: p.version.to_string(),
            old_model_version: None,
            new_model_version: model_version(&p),
            changed_keys: Vec::new(),
            resumption: Some(change),
        };
        if let Err(e) = a.append(&entry) {
            tracing::error!(error = %e, "could not write the audit entry for a resumption change");
        }
        Some(entry)
    }

    /// The audit trail, oldest first (empty without an audit log).
    pub fn audit(&self) -> Vec<Entry> {
        self.audit
            .as_ref()
            .and_then(|a| a.read_all().ok())
            .unwrap_or_default()
    }

    pub fn reload_failed(&self) {
        let n = self.reload_failures.fetch_add(1, Ordering::Relaxed) + 1;
        self.notify.send_modify(|s| s.reload_failures = n);
    }
}
