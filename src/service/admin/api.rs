//! The admin HTTP API (its own listener): policy get / put / rollback, versions, audit, what-if simulate, and
//! the OpenAPI document. Every route but the OpenAPI document needs a bearer token; changes need the
//! operator role.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use borderlane_core::table::PartnerTable;
use serde::Deserialize;
use serde_json::json;

use super::auth::{Check, Role, Tokens};
use super::ring::ManifestRing;
use super::store::{PolicyStore, RollbackError};
use crate::analysis::whatif;

/// The OpenAPI document of this API, kept in the repository.
pub const OPENAPI: &str = include_str!("../../../docs/admin-openapi.json");

#[derive(Clone)]
pub struct AdminState {
    pub store: Arc<PolicyStore>,
    pub tokens: Arc<Tokens>,
    /// Recent manifests the simulate endpoint replays.
    pub ring: Arc<ManifestRing>,
    /// The live partner table, "as it stands", for simulate.
    pub table: Arc<PartnerTable>,
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/admin/policy", get(get_policy).put(put_policy))
        .route("/admin/policy/rollback", post(rollback))
        .route("/admin/policy/simulate", post(simulate))
        .route("/admin/versions", get(versions))
        .route("/admin/audit", get(audit))
        .route("/admin/openapi.json", get(openapi))
        .with_state(state)
}

/// Why a request was refused.
enum Refused {
    Unauthenticated,
    Forbidden(String, Role),
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
            Refused::Forbidden(name, role) => (
                StatusCode::FORBIDDEN,
                Json(json!({"error": format!("token {name:?} does not have the {role:?} role")})),
            )
                .into_response(),
        }
    }
}

/// The caller's token name, or why it is refused (401/403).
fn authorize(s: &AdminState, headers: &HeaderMap, role: Role) -> Result<String, Refused> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match s.tokens.check(auth, role) {
        Check::Allowed(name) => Ok(name),
        Check::Unauthenticated => Err(Refused::Unauthenticated),
        Check::Forbidden(name) => Err(Refused::Forbidden(name, role)),
    }
}

async fn get_policy(State(s): State<AdminState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&s, &headers, Role::Viewer) {
        return r.into_response();
    }
    let p = s.store.current();
    Json(json!({
        "version": &*p.version,
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
    let actor = match authorize(&s, &headers, Role::Operator) {
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
    match tokio::task::spawn_blocking(move || store.install(&text, &actor, "put")).await {
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
    let actor = match authorize(&s, &headers, Role::Operator) {
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
    if let Err(r) = authorize(&s, &headers, Role::Viewer) {
        return r.into_response();
    }
    Json(json!({"current": &*s.store.current().version, "versions": s.store.versions()}))
        .into_response()
}

async fn audit(State(s): State<AdminState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&s, &headers, Role::Viewer) {
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
    if let Err(r) = authorize(&s, &headers, Role::Viewer) {
        return r.into_response();
    }
    let req = match parse_simulate(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    let candidate = match borderlane_core::policy::CompiledPolicy::from_toml(&req.policy) {
        Ok(p) => p,
        Err(errors) => return errors_response(&errors),
    };
    let baseline = s.store.current();
    let manifests = s.ring.snapshot();
    let table = s.table.clone();
    let sample = req.sample;
    let target = req.target_exam_rate;
    match tokio::task::spawn_blocking(move || {
        whatif::compare(
            &manifests, &table, &baseline, &candidate, sample, target, None,
        )
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

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}
