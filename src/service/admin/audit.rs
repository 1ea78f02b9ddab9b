//! The audit trail: an append-only JSON-lines file (time, actor, action, old → new version, changed keys; for
//! a business-resumption change the declaration), flushed and synced on every entry so it survives crashes
//! and restarts.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// RFC 3339, UTC.
    pub time: String,
    /// The token name (never the secret), `file:<path>` for hot reload, `startup`.
    pub actor: String,
    /// `startup`, `put`, `reload`, `model-reload`, `rollback`; `resumption-declare`, `resumption-end`.
    pub action: String,
    pub old_version: Option<String>,
    pub new_version: String,
    /// The models' versions, when the policies have a `[model]` section (absent in entries written before
    /// models were audited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_model_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_model_version: Option<String>,
    /// Dotted key paths whose value differs between the two versions.
    pub changed_keys: Vec<String>,
    /// A business-resumption change (`resumption-*` actions; the versions are then the policy in force,
    /// unchanged): the port and the declaration made or ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumption: Option<ResumptionChange>,
}

/// What a `resumption-declare` or `resumption-end` entry records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumptionChange {
    pub port: String,
    /// The declaration made (declare) or ended (end; absent when the port had none on this instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// False when the control topic took the change but this instance had not applied it when the
    /// entry was written (it applies it when its follower reads it).
    pub applied: bool,
}

pub struct AuditLog {
    path: PathBuf,
    /// Serialises appends so entries never interleave.
    file: Mutex<File>,
}

impl AuditLog {
    /// Opens (creating if needed) the log for appending.
    pub fn open(path: &Path) -> anyhow::Result<AuditLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening audit log {}", path.display()))?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    pub fn append(&self, e: &Entry) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(e)?;
        line.push(b'\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(&line)?;
        f.sync_data()?;
        Ok(())
    }

    /// Every entry, oldest first. Lines that do not parse (a torn last write) are skipped.
    pub fn read_all(&self) -> anyhow::Result<Vec<Entry>> {
        let f = File::open(&self.path)?;
        Ok(BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect())
    }

    /// Where the policy texts of installed versions are kept, for rollback after a restart.
    pub fn versions_dir(&self) -> PathBuf {
        self.path.with_extension("versions")
    }
}
