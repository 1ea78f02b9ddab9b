//! `POST /outcomes` on the officers' listener, in process (the demo's recorder): the role checks, the
//! officer as the logged-in identity, 400 with every error, 404 outside the decision window, the parties of
//! the examined shipment and the causes attached, 201 then 200 for a repeat that replaces (and never counts
//! twice), the hit rates in `/api/stats` — and the recorded outcome changing the same importer's next
//! decision when scored against the history as of the published watermark.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use borderlane::service::admin::auth::{TokenStore, Tokens};
use borderlane::service::feed::Feed;
use borderlane::service::metrics::Metrics;
use borderlane::service::officers::{self, LoginLimiter, OfficersState, Sessions};
use borderlane::service::outcomes::{DecisionWindow, Examined, HistoryFeed, OutcomeApi, Recorder};
use borderlane::service::server::Peer;
use borderlane_core::decision::{Decision, Rule};
use borderlane_core::history::HistoryAsOf;
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::score::{decide, Lookups};
use borderlane_core::table::PartnerTable;
use borderlane_core::wire::{parse_manifest, Limits};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::watch;
use tower::ServiceExt;

const OFFICER: &str = "officer-secret-0123456789abcdef";
const OFFICER2: &str = "officer-secret-fedcba9876543210";
const VIEWER: &str = "viewer-secret-0123456789abcdef";
const KEY: &str = "session-key-0123456789abcdef0123456789";

fn tokens() -> Tokens {
    Tokens::parse(
        &format!(
            "[[token]]\nname = \"olga\"\nrole = \"officer\"\nsecret = \"{OFFICER}\"\n\
             [[token]]\nname = \"otto\"\nrole = \"officer\"\nsecret = \"{OFFICER2}\"\n\
             [[token]]\nname = \"vic\"\nrole = \"viewer\"\nsecret = \"{VIEWER}\"\n"
        ),
        "test",
    )
    .unwrap()
}

/// A consolidated truck manifest: shipment S1 of importer `imp`, shipment S2 of importer I-OTHER.
fn manifest(id: &str, imp: &str, filed_at: &str, risky: bool) -> borderlane_core::wire::Manifest {
    let (origin, hts) = if risky {
        ("KP", "930200")
    } else {
        ("MX", "847130")
    };
    let text = format!(
        r#"{{"manifest_id":"{id}","filed_at":"{filed_at}","mode":"truck","port_of_entry":"2304",
        "shipments":[
          {{"shipment_id":"S1","importer":{{"id":"{imp}"}},"origin_country":"{origin}",
            "commodities":[{{"hts":"{hts}","description":"goods"}}]}},
          {{"shipment_id":"S2","importer":{{"id":"I-OTHER"}},"origin_country":"MX",
            "commodities":[{{"hts":"847130","description":"laptops"}}]}}]}}"#
    );
    parse_manifest(text.as_bytes(), &Limits::default()).unwrap()
}

struct Setup {
    app: axum::Router,
    feed: Arc<HistoryFeed>,
    policy: Arc<ArcSwap<CompiledPolicy>>,
    officers_feed: Arc<Feed>,
}

fn setup(decisions: &[&Decision]) -> Setup {
    let policy = Arc::new(ArcSwap::from_pointee(
        borderlane::load::policy::default_policy(),
    ));
    let window = Arc::new(DecisionWindow::new(1000, Duration::from_secs(3600)));
    let now = borderlane::clock::unix_millis();
    for d in decisions {
        window.insert(
            (d.manifest_id.clone(), d.revision),
            Examined::of_decision(d, &policy.load().doc),
            now,
            now,
        );
    }
    let feed = Arc::new(HistoryFeed::new(window.clone(), Arc::new(Metrics::new())));
    let (stop, shutdown) = watch::channel(false);
    std::mem::forget(stop);
    let officers_feed = Arc::new(Feed::new(8, 8, &policy.load(), shutdown));
    officers_feed.set_hit_rates(feed.clone(), policy.clone());
    let state = OfficersState {
        feed: officers_feed.clone(),
        tokens: Arc::new(TokenStore::new(tokens())),
        sessions: Arc::new(Sessions::new(Some(KEY), Duration::from_secs(600))),
        limiter: Arc::new(LoginLimiter::new(10, 100)),
        secure: false,
        outcomes: Some(OutcomeApi {
            window,
            feed: feed.clone(),
            recorder: Arc::new(Recorder::InProcess(std::sync::Mutex::new(0))),
            policy: policy.clone(),
            limits: Limits::default(),
        }),
    };
    Setup {
        app: officers::router(state),
        feed,
        policy,
        officers_feed,
    }
}

fn request(method: &str, path: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "localhost:8080")
        .extension(ConnectInfo(Peer(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            40000,
        )))))
}

async fn post(app: &axum::Router, token: Option<&str>, body: &str) -> (StatusCode, Value) {
    let mut r = request("POST", "/outcomes").header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        r = r.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let resp = app
        .clone()
        .oneshot(r.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned())),
    )
}

fn body(manifest_id: &str, extra: &str) -> String {
    format!(
        r#"{{"manifest_id":"{manifest_id}","revision":0,"result":"seizure","findings":["WEAPONS"],
        "examined_at":"2026-11-28T06:00:00Z","port":"2304"{extra}}}"#
    )
}

fn decided(policy: &CompiledPolicy, id: &str, imp: &str, filed_at: &str, risky: bool) -> Decision {
    decide(
        policy,
        &PartnerTable::new(),
        &manifest(id, imp, filed_at, risky),
    )
}

#[tokio::test]
async fn roles_officer_identity_errors_and_window() {
    let p = borderlane::load::policy::default_policy();
    let d = decided(&p, "M-1", "I-1", "2026-11-28T04:00:00Z", true);
    let s = setup(&[&d]);
    // No token: 401; a viewer (may not read decisions, let alone record): 403.
    assert_eq!(
        post(&s.app, None, &body("M-1", "")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&s.app, Some(VIEWER), &body("M-1", "")).await.0,
        StatusCode::FORBIDDEN
    );
    // An officer may not record in another officer's name.
    let (status, v) = post(&s.app, Some(OFFICER), &body("M-1", r#","officer":"otto""#)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(s.feed.history.is_empty());
    // Malformed: 400 with every error, each with its path.
    let (status, v) = post(
        &s.app,
        Some(OFFICER),
        r#"{"manifest_id":"","revision":-1,"result":"lost","examined_at":"yesterday","port":"23"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let paths: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    for want in ["manifest_id", "revision", "result", "examined_at", "port"] {
        assert!(paths.contains(&want), "{want} missing in {v}");
    }
    // Parties are the service's to attach, never the officer's.
    let (status, v) = post(
        &s.app,
        Some(OFFICER),
        &body("M-1", r#","parties":[{"role":"importer","id":"X"}]"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    // Not JSON at all.
    assert_eq!(
        post(&s.app, Some(OFFICER), "not json").await.0,
        StatusCode::BAD_REQUEST
    );
    // Unknown manifest, and a known manifest's unknown revision: 404.
    let (status, v) = post(&s.app, Some(OFFICER), &body("M-NOPE", "")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    let (status, _) = post(
        &s.app,
        Some(OFFICER),
        &body("M-1", "").replace(r#""revision":0"#, r#""revision":3"#),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // An unknown shipment: 400 at shipment_id.
    let (status, v) = post(
        &s.app,
        Some(OFFICER),
        &body("M-1", r#","shipment_id":"S9""#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["errors"][0]["path"], "shipment_id");
    assert!(s.feed.history.is_empty(), "nothing recorded by refusals");
}

#[tokio::test]
async fn a_recorded_outcome_counts_once_and_changes_the_importers_next_decision() {
    let p = borderlane::load::policy::default_policy();
    let d = decided(&p, "M-1", "I-1", "2026-11-28T04:00:00Z", true);
    assert!(d.action.is_exam());
    let s = setup(&[&d]);

    // The officer is filled from the identity; the seizure counts against shipment S1's parties (and the
    // conveyance's), not against I-OTHER on S2.
    let (status, v) = post(
        &s.app,
        Some(OFFICER),
        &body("M-1", r#","shipment_id":"S1""#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["officer"], "olga");
    let ids: Vec<&str> = v["parties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"I-1"), "{v}");
    assert!(!ids.contains(&"I-OTHER"), "{v}");
    assert!(!v["causes"].as_array().unwrap().is_empty(), "{v}");
    // The same officer named explicitly is accepted; a repeat replaces: 200, still one outcome.
    let (status, v) = post(
        &s.app,
        Some(OFFICER),
        &body("M-1", r#","shipment_id":"S1","officer":"olga""#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(s.feed.history.len(), 1);
    let stats = s.officers_feed.stats();
    let hits = stats.hit_rates.expect("hit rates in /api/stats");
    assert_eq!(hits.outcomes, 1, "a repeated outcome never counts twice");
    assert_eq!(hits.overall.seizures, 1);
    assert_eq!(hits.by_port["2304"].exams, 1);
    assert_eq!(hits.by_standing["none"].exams, 1);
    let json = serde_json::to_value(&hits).unwrap();
    assert_eq!(json["random_estimate"]["validated"], "n/a (exempt)");

    // The same importer's next manifest, scored as of the published watermark, carries the history
    // reason; as of the empty watermark (before the outcome) it does not.
    let policy = s.policy.load();
    let next = manifest("M-2", "I-1", "2026-11-29T04:00:00Z", false);
    let as_of = s.feed.watermark.load_full();
    let with = decide(
        &policy,
        Lookups::new(
            &PartnerTable::new(),
            Some(HistoryAsOf {
                history: &s.feed.history,
                as_of: &as_of,
            }),
        ),
        &next,
    );
    let before = Arc::new(borderlane_core::history::Watermark::default());
    let without = decide(
        &policy,
        Lookups::new(
            &PartnerTable::new(),
            Some(HistoryAsOf {
                history: &s.feed.history,
                as_of: &before,
            }),
        ),
        &next,
    );
    assert!(
        with.reasons.iter().any(|r| r.rule == Rule::HistorySeizure),
        "{:?}",
        with.reasons
    );
    assert!(!without
        .reasons
        .iter()
        .any(|r| r.rule == Rule::HistorySeizure));
    assert!(with.score > without.score);
    assert_eq!(with.history_as_of.as_deref(), Some(&*as_of));
    // The seizure counted once although it was recorded twice: the points are one seizure's.
    let seizure_points: i32 = with
        .reasons
        .iter()
        .filter(|r| r.rule == Rule::HistorySeizure)
        .map(|r| r.points)
        .sum();
    assert_eq!(
        seizure_points,
        policy.doc.history.as_ref().unwrap().seizure_points
    );
    // I-OTHER (shipment S2, not examined) has no history.
    let other = manifest("M-3", "I-OTHER", "2026-11-29T04:00:00Z", false);
    let o = decide(
        &policy,
        Lookups::new(
            &PartnerTable::new(),
            Some(HistoryAsOf {
                history: &s.feed.history,
                as_of: &as_of,
            }),
        ),
        &other,
    );
    assert!(!o
        .reasons
        .iter()
        .any(|r| matches!(r.rule, Rule::HistorySeizure | Rule::HistoryDiscrepancy)));
}
