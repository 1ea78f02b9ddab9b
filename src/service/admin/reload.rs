//! Hot reload: watch the policy file and install it through the same validation and swap as `PUT`. An invalid
//! file keeps the running policy, logs every error and counts a reload failure.
//!
//! The watcher polls the file's content (every `interval`), which works the same on every filesystem and
//! for editors that replace files by rename; a poll reads a few kilobytes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::store::PolicyStore;

/// Watches `path` until `shutdown` resolves; returns then.
pub async fn watch_file(
    store: Arc<PolicyStore>,
    path: PathBuf,
    interval: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let digest = |t: &str| Sha256::digest(t.as_bytes()).to_vec();
    // Nothing seen yet: the first poll installs the file if it differs from the running policy (a no-op
    // when it is the same version).
    let mut seen: Option<Vec<u8>> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = &mut shutdown => return,
        }
        let Ok(text) = tokio::fs::read_to_string(&path).await else {
            continue;
        };
        let d = digest(&text);
        if seen.as_ref() == Some(&d) {
            continue;
        }
        seen = Some(d);
        let actor = format!("file:{}", path.display());
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.install(&text, &actor, "reload")).await {
            Ok(Ok(i)) if i.changed => {
                tracing::info!(old = %i.old_version, new = %i.new_version, keys = ?i.changed_keys, "policy reloaded from file");
            }
            Ok(Ok(_)) => {}
            Ok(Err(errors)) => {
                store.reload_failed();
                for e in &errors {
                    tracing::error!(path = %e.path, message = %e.message, "policy file rejected, keeping the running policy");
                }
            }
            Err(e) => tracing::error!(error = %e, "policy reload task failed"),
        }
    }
}
