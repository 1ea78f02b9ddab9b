//! The live decision feed: filters, gap events for a slow reader, streams that end at shutdown, look-up of
//! the latest decision by manifest id, and the embedded console page.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use borderlane::service::feed::{router, Feed, Filter};
use borderlane_core::decision::Decision;
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::score::decide;
use borderlane_core::table::PartnerTable;
use borderlane_core::wire::{parse_manifest, Limits};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use tokio::sync::watch;
use tower::ServiceExt;

fn policy() -> CompiledPolicy {
    borderlane::load::policy::default_policy()
}

/// A decision for a manifest at `port` whose origin makes it an exam (`risky`) or a release.
fn decision(policy: &CompiledPolicy, id: &str, port: &str, risky: bool) -> (Decision, Vec<u8>) {
    let (origin, hts) = if risky {
        ("KP", "930200")
    } else {
        ("MX", "847130")
    };
    let text = format!(
        r#"{{"manifest_id":"{id}","filed_at":"2026-11-28T04:00:00Z","mode":"truck","port_of_entry":"{port}",
        "shipments":[{{"shipment_id":"S1","importer":{{"id":"I-1"}},"origin_country":"{origin}",
        "commodities":[{{"hts":"{hts}","description":"goods"}}]}}]}}"#
    );
    let m = parse_manifest(text.as_bytes(), &Limits::default()).unwrap();
    let d = decide(policy, &PartnerTable::new(), &m);
    let json = serde_json::to_vec(&d).unwrap();
    (d, json)
}

async fn next_event(
    stream: &mut (impl futures_util::Stream<
        Item = Result<axum::response::sse::Event, std::convert::Infallible>,
    > + Unpin),
) -> Option<String> {
    let ev = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("no event within 10 s")?;
    // Render the event the way it goes on the wire.
    let body = axum::response::sse::Sse::new(futures_util::stream::iter(vec![ev]));
    let resp = axum::response::IntoResponse::into_response(body);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Some(String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn filters_select_decisions() {
    let p = policy();
    let (_stop, shutdown) = watch::channel(false);
    let feed = Feed::new(64, 100, &p, shutdown);
    let filter = Filter {
        port: Some("2304".into()),
        action: Some("exam".into()),
        ..Filter::default()
    };
    let mut stream = Box::pin(borderlane::service::feed::events(&feed, filter));
    for (id, port, risky) in [
        ("A", "3801", true),
        ("B", "2304", false),
        ("C", "2304", true),
    ] {
        let (d, json) = decision(&p, id, port, risky);
        assert_eq!(d.action.is_exam(), risky, "fixture {id}");
        feed.publish(&d, &json, 1_700_000_000);
    }
    let ev = next_event(&mut stream).await.unwrap();
    assert!(ev.starts_with("event: decision\n"), "{ev}");
    assert!(
        ev.contains("\"manifest_id\":\"C\""),
        "only C is an exam at 2304: {ev}"
    );
}

#[tokio::test]
async fn slow_reader_gets_a_gap_and_never_blocks_publishing() {
    let p = policy();
    let (_stop, shutdown) = watch::channel(false);
    let feed = Feed::new(4, 100, &p, shutdown);
    let mut stream = Box::pin(borderlane::service::feed::events(&feed, Filter::default()));
    // Publish far more than the client's capacity without reading: publish must not block.
    for i in 0..20 {
        let (d, json) = decision(&p, &format!("M{i}"), "2304", false);
        feed.publish(&d, &json, 1_700_000_000);
    }
    let first = next_event(&mut stream).await.unwrap();
    assert!(first.starts_with("event: gap\n"), "{first}");
    assert!(first.contains("\"missed\":16"), "{first}");
    // Then the last four decisions, in order.
    let next = next_event(&mut stream).await.unwrap();
    assert!(next.contains("\"manifest_id\":\"M16\""), "{next}");
}

#[tokio::test]
async fn shutdown_ends_streams() {
    let p = policy();
    let (stop, shutdown) = watch::channel(false);
    let feed = Feed::new(8, 100, &p, shutdown);
    let mut stream = Box::pin(borderlane::service::feed::events(&feed, Filter::default()));
    let reader = tokio::spawn(async move { stream.next().await.is_none() });
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.send(true).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("stream did not end")
        .unwrap();
    assert!(ended, "the stream yielded an item instead of ending");
}

#[tokio::test]
async fn routes_serve_console_lookup_and_stats() {
    let p = policy();
    let (_stop, shutdown) = watch::channel(false);
    let feed = Arc::new(Feed::new(8, 2, &p, shutdown));
    for id in ["X1", "X2", "X3"] {
        let (d, json) = decision(&p, id, "2304", id == "X3");
        feed.publish(&d, &json, 1_700_000_000);
    }
    let app = router(feed.clone());
    let get = |path: &str| {
        app.clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
    };
    let r = get("/decisions/X3").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["manifest_id"], "X3");
    // The window keeps two manifests: X1 has been evicted.
    assert_eq!(
        get("/decisions/X1").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let r = get("/").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&html).contains("EventSource(\"/feed?"));
    let r = get("/api/stats").await.unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&r.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(v["minutes"][0]["decisions"], 3);
    assert_eq!(v["minutes"][0]["exams"], 1);
    assert_eq!(v["by_standing"]["none"]["total"], 3);
    assert!(v["ports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["code"] == "2304"));
    // Unknown filter keys are rejected, not ignored.
    assert_eq!(
        get("/feed?prot=2304").await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
}
