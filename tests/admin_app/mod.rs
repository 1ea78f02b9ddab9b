//! Shared helpers of the in-process admin API suites (`admin.rs`, `resumption.rs`): the three role tokens,
//! a temporary directory with the tokens file and the audit log, the router over the default policy, and
//! one request through it.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use borderlane::load::policy::{Origin, PolicyLoader, DEFAULT_POLICY};
use borderlane::service::admin::api::AdminLimits;
use borderlane::service::admin::audit::AuditLog;
use borderlane::service::admin::auth::TokenStore;
use borderlane::service::admin::{router, AdminState, ManifestRing, PolicyStore, Tokens};
use borderlane::service::resumption::Board;
use borderlane_core::table::PartnerTable;
use http_body_util::BodyExt;
use tower::ServiceExt;

pub const OPERATOR: &str = "operator-secret-0123456789";
pub const VIEWER: &str = "viewer-secret-0123456789ab";
pub const OFFICER: &str = "officer-secret-0123456789a";

/// Models resolve in `config/` (where `model.json` is), like a service whose policy file lives there.
pub fn loader() -> PolicyLoader {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    PolicyLoader::new(&config, &config)
}

/// A fresh directory under the system's temporary directory, unique per process and call.
pub fn tempdir() -> std::path::PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let d = std::env::temp_dir().join(format!(
        "borderlane-admin-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes `dir/tokens.toml` with alice (operator), bob (viewer) and olga (officer) and loads it.
pub fn tokens_in(dir: &std::path::Path) -> Tokens {
    let p = dir.join("tokens.toml");
    std::fs::write(
        &p,
        format!(
            "[[token]]\nname = \"alice\"\nrole = \"operator\"\nsecret = \"{OPERATOR}\"\n\
             [[token]]\nname = \"bob\"\nrole = \"viewer\"\nsecret = \"{VIEWER}\"\n\
             [[token]]\nname = \"olga\"\nrole = \"officer\"\nsecret = \"{OFFICER}\"\n"
        ),
    )
    .unwrap();
    Tokens::from_file(&p).unwrap()
}

/// The admin router over the default policy, with its audit log and tokens file in `dir`.
pub struct App {
    pub router: axum::Router,
    pub store: Arc<PolicyStore>,
    /// The what-if window (empty; suites push what they replay).
    pub ring: Arc<ManifestRing>,
    pub board: Arc<Board>,
    pub dir: std::path::PathBuf,
}

pub fn app() -> App {
    app_with(AdminLimits::default())
}

pub fn app_with(limits: AdminLimits) -> App {
    app_built(limits, |state| state)
}

/// [`app_with`], with `build` completing the admin state (e.g. `with_history`) before the router is made.
pub fn app_built(limits: AdminLimits, build: impl FnOnce(AdminState) -> AdminState) -> App {
    let dir = tempdir();
    let audit = AuditLog::open(&dir.join("audit.jsonl")).unwrap();
    let store =
        Arc::new(PolicyStore::new(DEFAULT_POLICY, Origin::File, loader(), Some(audit)).unwrap());
    let ring = Arc::new(ManifestRing::new(1 << 30));
    let state = AdminState::new(
        store.clone(),
        Arc::new(TokenStore::new(tokens_in(&dir))),
        ring.clone(),
        Arc::new(PartnerTable::new()),
        limits,
    );
    let board = state.resumption_board().clone();
    App {
        router: router(build(state)),
        store,
        ring,
        board,
        dir,
    }
}

/// One request with an optional bearer token; the status and the JSON body (`Null` when not JSON).
pub async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}
