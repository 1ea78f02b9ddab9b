//! The operational HTTP endpoint: `/healthz` (the process serves), `/readyz` (200 only when the partner
//! table is complete, the manifest consumer runs and no assigned partition is stalled — lag without
//! progress for `service.stall_after_ms`; the body says why) and `/metrics` (Prometheus text format).
//! Both `/readyz` and `/metrics` evaluate readiness at the time of the request and update
//! `borderlane_ready` and `borderlane_stalled_partitions`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::service::metrics::Metrics;
use crate::service::{Readiness, ReadyReport};

/// What the handlers read.
#[derive(Clone)]
pub struct AppState {
    /// Rendered by `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Answered by `/readyz`.
    pub readiness: Arc<Readiness>,
    /// Business-resumption declarations, whose mode per port `/metrics` shows at the time of the scrape.
    pub resumptions: Option<Arc<crate::service::resumption::Board>>,
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

/// Evaluates readiness now and mirrors it into the gauges.
fn evaluate(s: &AppState) -> ReadyReport {
    let report = s.readiness.report(Instant::now());
    s.metrics.readiness(report.stalled.len(), report.is_ready());
    report
}

/// The `/readyz` body: one `name: value` line per condition, then one line per stalled partition.
pub fn render_report(r: &ReadyReport) -> String {
    let mut body = format!(
        "partner_table: {}\ncontrol_topic: {}\noutcomes_topic: {}\nmanifest_consumer: {}\nwatched_partitions: {}\nstalled_partitions: {}\n",
        if r.partners { "complete" } else { "loading" },
        if r.control { "complete" } else { "loading" },
        if r.outcomes { "complete" } else { "loading" },
        if r.consumer { "running" } else { "stopped" },
        r.watched,
        r.stalled.len()
    );
    for p in &r.stalled {
        // A partition never fetched has no numbers (see `stall::Stalled`).
        let lag = if p.lag < 0 {
            "unknown".to_string()
        } else {
            p.lag.to_string()
        };
        let _ = writeln!(
            body,
            "stalled: partition={} lag={} seconds_without_progress={} stall_after_seconds={}",
            p.partition,
            lag,
            p.without_progress.as_secs(),
            r.stall_after.as_secs()
        );
    }
    body
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    let report = evaluate(&s);
    let status = if report.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, render_report(&report))
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    evaluate(&s);
    if let (Some(board), Some(now)) = (&s.resumptions, crate::clock::now()) {
        s.metrics.port_resumption(&board.active_at(&now));
    }
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
            resumptions: None,
        });
        assert_eq!(get(&r, "/healthz").await.0, StatusCode::OK);
        let (status, body) = get(&r, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("partner_table: loading"), "{body}");
        readiness.partners_complete();
        assert_eq!(get(&r, "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
        readiness.consumer_running(true);
        let (status, body) = get(&r, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("control_topic: loading"), "{body}");
        readiness.control_complete();
        let (status, body) = get(&r, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("outcomes_topic: loading"), "{body}");
        readiness.outcomes_complete();
        assert_eq!(get(&r, "/readyz").await.0, StatusCode::OK);
        readiness.consumer_running(false);
        assert_eq!(get(&r, "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
        metrics.partner_table(3, 4);
        let (status, body) = get(&r, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("borderlane_partner_table_size 3"), "{body}");
    }

    #[tokio::test]
    async fn a_stalled_partition_makes_readyz_503_with_the_reason_until_progress() {
        use crate::service::stall::Sample;
        use std::time::Duration;
        let readiness = Arc::new(Readiness::with_stall_after(Duration::from_secs(30)));
        let metrics = Arc::new(Metrics::new());
        let r = router(AppState {
            metrics: metrics.clone(),
            readiness: readiness.clone(),
            resumptions: None,
        });
        readiness.partners_complete();
        readiness.control_complete();
        readiness.outcomes_complete();
        readiness.consumer_running(true);
        let sample = |lag, consumed, stored| {
            Some(Sample {
                lag,
                consumed,
                stored,
            })
        };
        // Last progress of partition 4 was 90 s ago (the detector is told the time of each report);
        // partition 1 is caught up.
        let Some(then) = Instant::now().checked_sub(Duration::from_secs(90)) else {
            return; // a machine up for less than 90 s cannot express the past report
        };
        readiness
            .stall()
            .observe(then, [(1, sample(0, 10, 10)), (4, sample(17, 300, 283))]);
        let (status, body) = get(&r, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(body.contains("watched_partitions: 2\n"), "{body}");
        assert!(body.contains("stalled_partitions: 1\n"), "{body}");
        let line = body
            .lines()
            .find(|l| l.starts_with("stalled: partition=4 lag=17 seconds_without_progress="))
            .unwrap_or_else(|| panic!("no reason line for partition 4 in {body}"));
        let secs: u64 = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("seconds_without_progress="))
            .unwrap()
            .parse()
            .unwrap();
        assert!(secs >= 90, "{line}");
        assert!(line.ends_with("stall_after_seconds=30"), "{line}");
        let m = get(&r, "/metrics").await.1;
        assert!(m.contains("borderlane_stalled_partitions 1"), "{m}");
        assert!(m.contains("borderlane_ready 0"), "{m}");
        // Progress: an output acknowledged on partition 4.
        readiness.stall().observe(
            Instant::now(),
            [(1, sample(0, 10, 10)), (4, sample(16, 300, 284))],
        );
        let (status, body) = get(&r, "/readyz").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.contains("stalled_partitions: 0\n"), "{body}");
        let m = get(&r, "/metrics").await.1;
        assert!(m.contains("borderlane_stalled_partitions 0"), "{m}");
        assert!(m.contains("borderlane_ready 1"), "{m}");
        // A stopped consumer is not ready, whatever its partitions did.
        readiness.consumer_running(false);
        assert_eq!(get(&r, "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
    }
}
