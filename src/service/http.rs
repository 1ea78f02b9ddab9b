//! The operational HTTP endpoint: `/healthz` (the process serves), `/readyz` (200 only when the partner
//! table is complete and the manifest consumer runs) and `/metrics` (Prometheus text format).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::service::metrics::Metrics;
use crate::service::Readiness;

/// What the handlers read.
#[derive(Clone)]
pub struct AppState {
    /// Rendered by `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Answered by `/readyz`.
    pub readiness: Arc<Readiness>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    let (partners, consumer) = s.readiness.state();
    let body = format!(
        "partner_table: {}\nmanifest_consumer: {}\n",
        if partners { "complete" } else { "loading" },
        if consumer { "running" } else { "stopped" }
    );
    let status = if partners && consumer {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(router: &Router, path: &str) -> (StatusCode, String) {
        let resp = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn readiness_needs_the_table_and_the_consumer() {
        let readiness = Arc::new(Readiness::new());
        let metrics = Arc::new(Metrics::new());
        let r = router(AppState {
            metrics: metrics.clone(),
            readiness: readiness.clone(),
        });
        assert_eq!(get(&r, "/healthz").await.0, StatusCode::OK);
        let (status, body) = get(&r, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("partner_table: loading"), "{body}");
        readiness.partners_complete();
        assert_eq!(get(&r, "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
        readiness.consumer_running(true);
        assert_eq!(get(&r, "/readyz").await.0, StatusCode::OK);
        readiness.consumer_running(false);
        assert_eq!(get(&r, "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
        metrics.partner_table(3, 4);
        let (status, body) = get(&r, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("borderlane_partner_table_size 3"), "{body}");
    }
}
