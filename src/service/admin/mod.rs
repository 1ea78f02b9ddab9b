//! Operators tune the policy safely: a versioned policy store with atomic swap and rollback, an append-only
//! audit trail on disk, bearer-token authentication with roles, the admin HTTP API (get, put, rollback,
//! audit, what-if simulate, OpenAPI), hot reload of the policy file, and the ring of recent manifests that
//! the what-if replay scores.

pub mod api;
pub mod audit;
pub mod auth;
pub mod reload;
pub mod ring;
pub mod store;

pub use api::{router, AdminState};
pub use auth::{Role, Tokens};
pub use ring::ManifestRing;
pub use store::{Installed, PolicyStore};

/// Resolves once `rx` holds `true` (or its sender is gone): a shutdown signal as a future.
pub async fn flipped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}
