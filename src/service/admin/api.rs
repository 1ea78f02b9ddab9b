//! The admin HTTP API (its own listener): policy get / put / rollback, versions, audit, what-if simulate,
//! business-resumption declarations per port (put, delete, list), and the OpenAPI document. Every route but the OpenAPI document needs a bearer token whose role allows it
//! (see the matrix in [`super::auth`]); changes need the operator role. Simulate runs one at a time per
//! instance (429 while one runs), on at most `max_window` recent manifests, with a policy of at most
//! `max_policy_bytes`; request bodies are capped per route (413).

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use borderlane_core::history::{History, HistoryAsOf, Watermark};
use borderlane_core::score::Lookups;
use borderlane_core::table::PartnerTable;
use serde::Deserialize;
use serde_json::json;

use super::audit::ResumptionChange;
use super::auth::{Check, Permission, Role, TokenStore};
use super::ring::ManifestRing;
use super::store::{PolicyStore, RollbackError};
use crate::analysis::whatif;
use crate::load::policy::Origin;
use crate::service::resumption::{self as resumption, Board, ControlRecord, Published, Publisher};

/// The OpenAPI document of this API, kept in the repository.
pub const OPENAPI: &str = include_str!("../../../docs/admin-openapi.json");

#[derive(Clone)]
pub struct AdminState {
    pub store: Arc<PolicyStore>,
    pub tokens: Arc<TokenStore>,
    /// Recent manifests the simulate endpoint replays.
    pub ring: Arc<ManifestRing>,
    /// The live partner table, "as it stands", for simulate.
    pub table: Arc<PartnerTable>,
    /// Sizes the API accepts.
    pub limits: AdminLimits,
    /// One simulation at a time per instance.
    simulating: Arc<tokio::sync::Semaphore>,
    /// Business-resumption declarations: what this instance applies, and how a change reaches every
    /// instance.
    resumptions: Resumption,
    /// The party history and its published watermark: simulate decides with it (as live decisions do) and
    /// judges both policies against the recorded exam results of the replayed manifests.
    history: Option<(Arc<History>, Arc<ArcSwap<Watermark>>)>,
}

/// The admin side of business resumption.
#[derive(Clone)]
struct Resumption {
    board: Arc<Board>,
    publisher: Arc<Publisher>,
    /// Longest declaration (`admin.max_resumption_hours`).
    max: std::time::Duration,
}

/// Caps on what one request may make the service do.
#[derive(Debug, Clone, Copy)]
pub struct AdminLimits {
    /// Largest policy text accepted by `PUT /admin/policy` and `simulate`, bytes (larger: 413).
    pub max_policy_bytes: usize,
    /// Most recent manifests one simulation replays (the newest ones).
    pub max_window: usize,
}

impl Default for AdminLimits {
    fn default() -> Self {
        AdminLimits {
            max_policy_bytes: 256 * 1024,
            max_window: 100_000,
        }
    }
}

impl AdminState {
    pub fn new(
        store: Arc<PolicyStore>,
        tokens: Arc<TokenStore>,
        ring: Arc<ManifestRing>,
        table: Arc<PartnerTable>,
        limits: AdminLimits,
    ) -> AdminState {
        AdminState {
            store,
            tokens,
            ring,
            table,
            limits,
            simulating: Arc::new(tokio::sync::Semaphore::new(1)),
            resumptions: Resumption {
                board: Arc::new(Board::new()),
                publisher: Arc::new(Publisher::InProcess),
                max: std::time::Duration::from_secs(168 * 3600),
            },
            history: None,
        }
    }

    /// Declarations change through `publisher` and are read from `board` (the service's: the control
    /// topic with Kafka); at most `max` long. Without this, an in-process board of its own.
    pub fn with_resumptions(
        mut self,
        board: Arc<Board>,
        publisher: Arc<Publisher>,
        max: std::time::Duration,
    ) -> AdminState {
        self.resumptions = Resumption {
            board,
            publisher,
            max,
        };
        self
    }

    /// The declarations this API changes and lists.
    /// Simulations decide with this party history as of its watermark and report hit rates against it.
    pub fn with_history(
        mut self,
        history: Arc<History>,
        watermark: Arc<ArcSwap<Watermark>>,
    ) -> AdminState {
        self.history = Some((history, watermark));
        self
    }

    pub fn resumption_board(&self) -> &Arc<Board> {
        &self.resumptions.board
    }
}

/// Every route of this API with its methods, as the OpenAPI document must list them (a test keeps the
/// two in step).
pub const ROUTES: &[(&str, &[&str])] = &[
    ("/admin/policy", &["get", "put"]),
    ("/admin/policy/rollback", &["post"]),
    ("/admin/policy/simulate", &["post"]),
    ("/admin/versions", &["get"]),
    ("/admin/audit", &["get"]),
    ("/admin/ports/resumption", &["get"]),
    ("/admin/ports/{code}/resumption", &["put", "delete"]),
    ("/admin/openapi.json", &["get"]),
];

/// Bodies of the routes that take none, or a tiny JSON one.
const SMALL_BODY: usize = 4 * 1024;

pub fn router(state: AdminState) -> Router {
    // A simulate request is JSON with the policy text in a string: escaping may grow it, so twice the cap.
    let policy_body = state.limits.max_policy_bytes;
    let simulate_body = 2 * state.limits.max_policy_bytes + SMALL_BODY;
    Router::new()
        .route(
            "/admin/policy",
            get(get_policy)
                .put(put_policy)
                .layer(DefaultBodyLimit::max(policy_body)),
        )
        .route(
            "/admin/policy/rollback",
            post(rollback).layer(DefaultBodyLimit::max(SMALL_BODY)),
        )
        .route(
            "/admin/policy/simulate",
            post(simulate).layer(DefaultBodyLimit::max(simulate_body)),
        )
        .route("/admin/versions", get(versions))
        .route("/admin/ports/resumption", get(list_resumptions))
        .route(
            "/admin/ports/{code}/resumption",
            put(declare_resumption)
                .delete(end_resumption)
                .layer(DefaultBodyLimit::max(SMALL_BODY)),
        )
        .route("/admin/audit", get(audit))
        .route("/admin/openapi.json", get(openapi))
        .with_state(state)
}

/// Why a request was refused.
enum Refused {
    Unauthenticated,
    Forbidden(String, Role, Permission),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({"error": "a valid bearer token is required"})),
            )
                .into_response(),
            Refused::Forbidden(name, role, p) => (
                StatusCode::FORBIDDEN,
                Json(json!({"error": format!(
                    "token {name:?} has the {} role, which may not {}", role.as_str(), p.as_str()
                )})),
            )
                .into_response(),
        }
    }
}

/// The caller's token name, or why it is refused (401/403).
fn authorize(s: &AdminState, headers: &HeaderMap, needed: Permission) -> Result<String, Refused> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match s.tokens.current().check(auth, needed) {
        Check::Allowed(name, _) => Ok(name),
        Check::Unauthenticated => Err(Refused::Unauthenticated),
        Check::Forbidden(name, role) => Err(Refused::Forbidden(name, role, needed)),
    }
}

fn too_large(what: &str, limit: usize) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        Json(json!({"error": format!("{what} is larger than {limit} bytes")})),
    )
        .into_response()
}

async fn get_policy(State(s): State<AdminState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&s, &headers, Permission::ReadPolicy) {
        return r.into_response();
    }
    let p = s.store.current();
    Json(json!({
        "version": &*p.version,
        "model_version": super::store::model_version(&p),
        "name": p.doc.meta.name,
        "text": s.store.current_text(),
        "policy": p.doc,
    }))
    .into_response()
}

/// A 400 response with a message.
fn bad_request(message: impl std::fmt::Display) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": message.to_string()})),
    )
        .into_response()
}

fn errors_response(errors: &[borderlane_core::schema::PathError]) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "errors": errors }))).into_response()
}

async fn put_policy(State(s): State<AdminState>, headers: HeaderMap, body: Bytes) -> Response {
    let actor = match authorize(&s, &headers, Permission::ChangePolicy) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    let Ok(text) = String::from_utf8(body.to_vec()) else {
        return errors_response(&[borderlane_core::schema::PathError {
            path: String::new(),
            message: "the policy is not UTF-8 text".into(),
        }]);
    };
    let store = s.store.clone();
    match tokio::task::spawn_blocking(move || store.install(&text, Origin::Api, &actor, "put"))
        .await
    {
        Ok(Ok(installed)) => Json(installed).into_response(),
        Ok(Err(errors)) => errors_response(&errors),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    pub version: String,
}

/// Decodes the body of `POST /admin/policy/rollback`.
pub fn parse_rollback(body: &[u8]) -> Result<RollbackRequest, String> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

async fn rollback(State(s): State<AdminState>, headers: HeaderMap, body: Bytes) -> Response {
    let actor = match authorize(&s, &headers, Permission::ChangePolicy) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    let req = match parse_rollback(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    match s.store.rollback(&req.version, &actor) {
        Ok(installed) => Json(installed).into_response(),
        Err(RollbackError::UnknownVersion(v)) => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("unknown policy version {v}")})),
        )
            .into_response(),
        Err(RollbackError::Invalid(errors)) => errors_response(&errors),
    }
}

async fn versions(State(s): State<AdminState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&s, &headers, Permission::ReadPolicy) {
        return r.into_response();
    }
    Json(json!({"current": &*s.store.current().version, "versions": s.store.versions()}))
        .into_response()
}

async fn audit(State(s): State<AdminState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&s, &headers, Permission::ReadPolicy) {
        return r.into_response();
    }
    Json(s.store.audit()).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulateRequest {
    /// Candidate policy text (TOML).
    pub policy: String,
    #[serde(default)]
    pub target_exam_rate: Option<f64>,
    /// Changed decisions to list, at most 200.
    #[serde(default = "default_sample")]
    pub sample: usize,
}

/// Decodes and checks the body of `POST /admin/policy/simulate` (the candidate policy is compiled by the
/// handler); the sample is capped at 200.
pub fn parse_simulate(body: &[u8]) -> Result<SimulateRequest, String> {
    let mut req: SimulateRequest = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if let Some(t) = req.target_exam_rate {
        if !(0.0..=1.0).contains(&t) {
            return Err("target_exam_rate must be between 0 and 1".into());
        }
    }
    req.sample = req.sample.min(200);
    Ok(req)
}

fn default_sample() -> usize {
    20
}

async fn simulate(State(s): State<AdminState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = authorize(&s, &headers, Permission::Simulate) {
        return r.into_response();
    }
    // One simulation at a time: the permit is held until the replay ends (also if the client goes away).
    let Ok(permit) = s.simulating.clone().try_acquire_owned() else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "5")],
            Json(json!({"error": "a simulation is already running on this instance; retry later"})),
        )
            .into_response();
    };
    let req = match parse_simulate(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    if req.policy.len() > s.limits.max_policy_bytes {
        return too_large("the policy", s.limits.max_policy_bytes);
    }
    let loader = s.store.loader().clone();
    let candidate =
        match tokio::task::spawn_blocking(move || loader.compile(&req.policy, Origin::Api)).await {
            Ok(Ok(p)) => p,
            Ok(Err(errors)) => return errors_response(&errors),
            Err(e) => {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({"error": e.to_string()})),
                )
                    .into_response()
            }
        };
    let baseline = s.store.current();
    let manifests = s.ring.newest(s.limits.max_window);
    let table = s.table.clone();
    let sample = req.sample;
    let target = req.target_exam_rate;
    let history = s.history.clone();
    match tokio::task::spawn_blocking(move || {
        let as_of = history.as_ref().map(|(h, w)| (h, w.load_full()));
        let results: Option<whatif::Results> = as_of.as_ref().map(|(h, w)| {
            manifests
                .iter()
                .filter_map(|m| {
                    h.result_as_of(&m.manifest_id, m.revision, w)
                        .map(|r| ((m.manifest_id.to_string(), m.revision), r))
                })
                .collect()
        });
        let lookups = Lookups::new(
            &table,
            as_of.as_ref().map(|(h, w)| HistoryAsOf {
                history: h,
                as_of: w,
            }),
        );
        let report = whatif::compare_with(
            &manifests,
            lookups,
            &baseline,
            &candidate,
            &whatif::Options {
                sample_size: sample,
                target,
                progress: None,
                results: results.as_ref(),
            },
        );
        drop(permit);
        report
    })
    .await
    {
        Ok(report) => Json(report).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

/// One declaration as the API shows it: the control record plus whether it is in force now.
fn shown(
    d: &borderlane_core::Declaration,
    now: Option<&borderlane_core::time::Timestamp>,
) -> serde_json::Value {
    let mut v = serde_json::to_value(ControlRecord::of(d)).unwrap_or_default();
    v["active"] = json!(now.is_some_and(|n| d.covers(n)));
    v
}

async fn list_resumptions(State(s): State<AdminState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&s, &headers, Permission::ReadPolicy) {
        return r.into_response();
    }
    let now = crate::clock::now();
    let all = s.resumptions.board.snapshot();
    Json(json!({
        "resumptions": all.iter().filter(|d| now.is_some_and(|n| d.covers(&n))).map(|d| shown(d, now.as_ref())).collect::<Vec<_>>(),
        "expired": all.iter().filter(|d| !now.is_some_and(|n| d.covers(&n))).map(|d| shown(d, now.as_ref())).collect::<Vec<_>>(),
    }))
    .into_response()
}

fn unavailable(e: anyhow::Error) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"error": format!("{e:#}")})),
    )
        .into_response()
}

async fn declare_resumption(
    State(s): State<AdminState>,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let actor = match authorize(&s, &headers, Permission::ChangePolicy) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    let Some(now) = crate::clock::now() else {
        return unavailable(anyhow::anyhow!(
            "the clock is outside the representable range"
        ));
    };
    let policy = s.store.current();
    let d = match resumption::parse_request(&code, &body, &policy, now, s.resumptions.max, &actor) {
        Ok(d) => d,
        Err(errors) => return errors_response(&errors),
    };
    let r = &s.resumptions;
    let published = match r.publisher.publish(&r.board, d.port, Some(&d)).await {
        Ok(p) => p,
        Err(e) => return unavailable(e),
    };
    let entry = s.store.record_resumption(
        &actor,
        "resumption-declare",
        ResumptionChange {
            port: d.port.to_string(),
            declared_at: Some(d.declared_at.to_string()),
            until: Some(d.until.to_string()),
            reason: Some(d.reason.to_string()),
            applied: published == Published::Applied,
        },
    );
    let mut body = shown(&d, Some(&now));
    body["applied"] = json!(published == Published::Applied);
    body["audit"] = json!(entry);
    let status = match published {
        Published::Applied => StatusCode::OK,
        Published::Written => StatusCode::ACCEPTED,
    };
    (status, Json(body)).into_response()
}

async fn end_resumption(
    State(s): State<AdminState>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Response {
    let actor = match authorize(&s, &headers, Permission::ChangePolicy) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    let Some(port) = borderlane_core::codes::PortCode::parse(&code) else {
        return errors_response(&[borderlane_core::schema::PathError {
            path: "port".into(),
            message: format!("{code:?} is not a 4-digit port code"),
        }]);
    };
    let r = &s.resumptions;
    let Some(ended) = r.board.snapshot().get(port).cloned() else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no business resumption is declared for port {port}")})),
        )
            .into_response();
    };
    let published = match r.publisher.publish(&r.board, port, None).await {
        Ok(p) => p,
        Err(e) => return unavailable(e),
    };
    let entry = s.store.record_resumption(
        &actor,
        "resumption-end",
        ResumptionChange {
            port: port.to_string(),
            declared_at: Some(ended.declared_at.to_string()),
            until: Some(ended.until.to_string()),
            reason: Some(ended.reason.to_string()),
            applied: published == Published::Applied,
        },
    );
    let status = match published {
        Published::Applied => StatusCode::OK,
        Published::Written => StatusCode::ACCEPTED,
    };
    (
        status,
        Json(json!({
            "ended": shown(&ended, crate::clock::now().as_ref()),
            "applied": published == Published::Applied,
            "audit": entry,
        })),
    )
        .into_response()
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}
