//! Hot reload: watch the policy file and the model file the current policy names, and install changes
//! through the same validation and swap as `PUT`. An invalid file keeps the running policy, logs every
//! error and counts a reload failure.
//!
//! The watcher polls (every `interval`), which works the same on every filesystem and for editors that
//! replace files by rename: the policy file's content (a few kilobytes), the model file's length and
//! modification time (it may be megabytes; it is read only when they change).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use borderlane_core::schema::PathError;
use sha2::{Digest, Sha256};

use super::store::{Installed, PolicyStore};
use crate::load::policy::Origin;

/// A file's identity for change detection: length and modification time (cheap for large model files).
fn signature(path: &Path) -> Option<(u64, Option<SystemTime>)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()))
}

/// Logs an install's outcome; a rejected file counts as a reload failure and keeps the running policy.
fn report(store: &PolicyStore, what: &str, result: Result<Installed, Vec<PathError>>) {
    match result {
        Ok(i) if i.changed => tracing::info!(
            old = %i.old_version,
            new = %i.new_version,
            old_model = ?i.old_model_version,
            new_model = ?i.new_model_version,
            keys = ?i.changed_keys,
            "{what} reloaded from file"
        ),
        Ok(_) => {}
        Err(errors) => {
            store.reload_failed();
            for e in &errors {
                tracing::error!(path = %e.path, message = %e.message, "{what} file rejected, keeping the running policy");
            }
        }
    }
}

/// Watches the policy file `path` (if any) and the model file the current policy names (if any) until
/// `shutdown` resolves. A changed policy file is installed (`reload`); a changed model file re-validates
/// and swaps the model under the current policy text (`model-reload`). Either way an invalid file keeps the
/// running policy, logs every error and counts a reload failure.
pub async fn watch_file(
    store: Arc<PolicyStore>,
    path: Option<PathBuf>,
    interval: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let digest = |t: &str| Sha256::digest(t.as_bytes()).to_vec();
    // Nothing seen yet: the first poll installs the file if it differs from the running policy (a no-op
    // when it is the same version), and re-reads the model likewise.
    let mut seen: Option<Vec<u8>> = None;
    let mut seen_model = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = &mut shutdown => return,
        }
        if let Some(path) = &path {
            if let Ok(text) = tokio::fs::read_to_string(path).await {
                let d = digest(&text);
                if seen.as_ref() != Some(&d) {
                    seen = Some(d);
                    let actor = format!("file:{}", path.display());
                    let s = store.clone();
                    let r = tokio::task::spawn_blocking(move || {
                        s.install(&text, Origin::File, &actor, "reload")
                    })
                    .await;
                    match r {
                        Ok(r) => report(&store, "policy", r),
                        Err(e) => tracing::error!(error = %e, "policy reload task failed"),
                    }
                }
            }
        }
        let Some(model) = store.model_file() else {
            seen_model = None;
            continue;
        };
        let sig = (model.clone(), signature(&model));
        if seen_model.as_ref() == Some(&sig) {
            continue;
        }
        seen_model = Some(sig);
        let actor = format!("file:{}", model.display());
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.reload_model(&actor)).await {
            Ok(r) => report(&store, "model", r),
            Err(e) => tracing::error!(error = %e, "model reload task failed"),
        }
    }
}
