//! The admin API and policy store: authentication and roles, every validation error returned at once, atomic
//! swap under concurrent scoring, audit entries that persist across restarts, rollback, simulate, and hot
//! reload of a valid and of an invalid file.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use borderlane::load::policy::Origin;
use borderlane::load::policy::DEFAULT_POLICY;
use borderlane::service::admin::api::AdminLimits;
use borderlane::service::admin::audit::AuditLog;
use borderlane::service::admin::PolicyStore;
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::score::decide;
use borderlane_core::table::PartnerTable;
use borderlane_core::wire::{parse_manifest, Limits, Manifest};

mod admin_app;
use admin_app::{call, loader, tempdir, App, OFFICER, OPERATOR, VIEWER};

fn manifest(id: &str, origin: &str) -> Manifest {
    let text = format!(
        r#"{{"manifest_id":"{id}","filed_at":"2026-11-28T04:00:00Z","mode":"truck","port_of_entry":"2304",
        "shipments":[{{"shipment_id":"S1","importer":{{"id":"I-1"}},"origin_country":"{origin}",
        "commodities":[{{"hts":"850440","description":"power supplies","weight_kg":10.0,"value_usd":500.0}}]}}]}}"#
    );
    parse_manifest(text.as_bytes(), &Limits::default()).unwrap()
}

/// The admin app with four manifests (two from CO, two from MX) in its what-if window.
fn app() -> App {
    app_with(AdminLimits::default())
}

fn app_with(limits: AdminLimits) -> App {
    let a = admin_app::app_with(limits);
    for (i, origin) in ["MX", "CO", "CO", "MX"].iter().enumerate() {
        a.ring.push(Arc::new(manifest(&format!("R{i}"), origin)));
    }
    a
}

#[tokio::test]
async fn authentication_and_roles() {
    let a = app();
    assert_eq!(
        call(&a.router, "GET", "/admin/policy", None, "").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(
            &a.router,
            "GET",
            "/admin/policy",
            Some("wrong-token-0123456789"),
            ""
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    let (s, v) = call(&a.router, "GET", "/admin/policy", Some(VIEWER), "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["version"], &*a.store.current().version);
    let changed = DEFAULT_POLICY.replace("late_points = 30", "late_points = 35");
    let (s, v) = call(&a.router, "PUT", "/admin/policy", Some(VIEWER), &changed).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(v["error"].as_str().unwrap().contains("bob"));
    // Officers read decisions, not the policy: 403 on every admin route.
    for (method, path) in [
        ("GET", "/admin/policy"),
        ("GET", "/admin/versions"),
        ("GET", "/admin/audit"),
        ("POST", "/admin/policy/simulate"),
        ("PUT", "/admin/policy"),
    ] {
        let (s, v) = call(&a.router, method, path, Some(OFFICER), "{}").await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method} {path}: {v}");
    }
    // The OpenAPI document is public.
    let (s, v) = call(&a.router, "GET", "/admin/openapi.json", None, "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["openapi"], "3.0.3");
}

/// The OpenAPI document lists exactly the routes the router serves, with their methods: every documented
/// route answers (401 without a token, 200 for the document itself), never 404 or 405.
#[tokio::test]
async fn the_openapi_document_lists_every_route_and_method() {
    use borderlane::service::admin::api::{OPENAPI, ROUTES};
    let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
    let documented: std::collections::BTreeMap<String, Vec<String>> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, ops)| {
            let mut methods: Vec<String> = ops.as_object().unwrap().keys().cloned().collect();
            methods.sort();
            (path.clone(), methods)
        })
        .collect();
    let served: std::collections::BTreeMap<String, Vec<String>> = ROUTES
        .iter()
        .map(|(path, methods)| {
            let mut m: Vec<String> = methods.iter().map(|m| m.to_string()).collect();
            m.sort();
            (path.to_string(), m)
        })
        .collect();
    assert_eq!(
        documented, served,
        "docs/admin-openapi.json and api::ROUTES differ"
    );
    let a = app();
    for (path, methods) in ROUTES {
        let concrete = path.replace("{code}", "2304");
        for m in *methods {
            let (status, v) = call(&a.router, &m.to_uppercase(), &concrete, None, "{}").await;
            let want = if *path == "/admin/openapi.json" {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            };
            assert_eq!(status, want, "{m} {concrete}: {v}");
        }
    }
}

#[tokio::test]
async fn validation_errors_come_back_all_at_once_and_keep_the_policy() {
    let a = app();
    let before = a.store.current().version.clone();
    let bad = DEFAULT_POLICY
        .replace("medium = 100\n", "medium = 100\nbogus = 1\n")
        .replace(
            "importer = { certified = 38,",
            "importer = { certified = 60,",
        )
        .replace("seed = 20261128", "seed = \"x\"");
    let (s, v) = call(&a.router, "PUT", "/admin/policy", Some(OPERATOR), &bad).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let paths: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"bands.bogus") && paths.contains(&"random.seed"),
        "{paths:?}"
    );
    // Schema errors first; the semantic cap error shows once the document is well typed.
    let bad2 = DEFAULT_POLICY
        .replace(
            "importer = { certified = 38,",
            "importer = { certified = 60,",
        )
        .replace("suspended = 60", "suspended = -1");
    let (s, v) = call(&a.router, "PUT", "/admin/policy", Some(OPERATOR), &bad2).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let paths: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "ctpat.credits.importer.certified",
            "ctpat.penalties.suspended"
        ]
    );
    assert_eq!(a.store.current().version, before);
}

#[tokio::test]
async fn policies_with_a_model_through_the_api() {
    let a = app();
    let kcs = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy-kcs.toml"),
    )
    .unwrap();
    let before = a.store.current().version.clone();
    // A model file that is not there: 400 listing that error with the others, nothing installed.
    let missing = kcs
        .replace("file = \"model.json\"", "file = \"missing-model.json\"")
        .replace("late_points = 30", "late_points = 31");
    let (s, v) = call(&a.router, "PUT", "/admin/policy", Some(OPERATOR), &missing).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{v}");
    assert_eq!(errors[0]["path"], "model.file");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("missing-model.json"),
        "{v}"
    );
    // Outside the model directory: refused before any file is read.
    for outside in ["/etc/passwd", "../config/model.json"] {
        let text = kcs.replace("file = \"model.json\"", &format!("file = {outside:?}"));
        let (s, v) = call(&a.router, "PUT", "/admin/policy", Some(OPERATOR), &text).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{outside}: {v}");
        assert_eq!(v["errors"][0]["path"], "model.file", "{v}");
    }
    // Simulate compiles candidates through the same loader.
    let sim = serde_json::json!({ "policy": missing }).to_string();
    let (s, v) = call(
        &a.router,
        "POST",
        "/admin/policy/simulate",
        Some(VIEWER),
        &sim,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["errors"][0]["path"], "model.file", "{v}");
    assert_eq!(a.store.current().version, before);

    // The real model: installed, its version in GET and in the audit trail.
    let (s, v) = call(&a.router, "PUT", "/admin/policy", Some(OPERATOR), &kcs).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let model_version = v["new_model_version"].as_str().unwrap().to_string();
    assert!(model_version.starts_with("sha256:"), "{v}");
    let (_, got) = call(&a.router, "GET", "/admin/policy", Some(VIEWER), "").await;
    assert_eq!(got["model_version"], model_version.as_str());
    let (_, audit) = call(&a.router, "GET", "/admin/audit", Some(VIEWER), "").await;
    let last = audit.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "put");
    assert_eq!(last["new_model_version"], model_version.as_str());
    assert!(a.store.current().model.is_some());
}

#[tokio::test]
async fn put_audit_rollback_and_persistence() {
    let a = app();
    let v0 = a.store.current().version.to_string();
    let changed = DEFAULT_POLICY.replace("late_points = 30", "late_points = 35");
    let (s, v) = call(&a.router, "PUT", "/admin/policy", Some(OPERATOR), &changed).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["old_version"], v0.as_str());
    assert_eq!(v["changed_keys"], serde_json::json!(["filing.late_points"]));
    let v1 = v["new_version"].as_str().unwrap().to_string();
    assert_eq!(&*a.store.current().version, v1);
    let (s, _) = call(
        &a.router,
        "POST",
        "/admin/policy/rollback",
        Some(OPERATOR),
        &format!("{{\"version\":\"{v0}\"}}"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(&*a.store.current().version, v0);
    let (s, _) = call(
        &a.router,
        "POST",
        "/admin/policy/rollback",
        Some(OPERATOR),
        "{\"version\":\"sha256:nope\"}",
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, audit) = call(&a.router, "GET", "/admin/audit", Some(VIEWER), "").await;
    let actions: Vec<(&str, &str)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("startup", "startup"),
            ("put", "alice"),
            ("rollback", "alice")
        ]
    );
    // A restarted store reads the same trail and can still roll forward to v1 by id.
    let audit = AuditLog::open(&a.dir.join("audit.jsonl")).unwrap();
    let restarted = PolicyStore::new(DEFAULT_POLICY, Origin::File, loader(), Some(audit)).unwrap();
    assert_eq!(
        restarted.audit().len(),
        3,
        "same version at restart: no new startup entry"
    );
    restarted.rollback(&v1, "carol").unwrap();
    assert_eq!(&*restarted.current().version, v1);
    assert_eq!(restarted.audit().last().unwrap().actor, "carol");
}

#[tokio::test]
async fn simulate_reports_on_the_recent_window() {
    let a = app();
    // Colombia's origin points doubled: the two CO manifests become exams or stay, the MX ones do not move.
    let candidate =
        DEFAULT_POLICY.replace("origin.CO = { points = 45", "origin.CO = { points = 245");
    let body = serde_json::json!({"policy": candidate, "target_exam_rate": 0.5}).to_string();
    let (s, v) = call(
        &a.router,
        "POST",
        "/admin/policy/simulate",
        Some(VIEWER),
        &body,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["manifests"], 4);
    // CO: 45 + 40 (HTS chapter 85) = 85, release; with 245 it is 285, above the tailgate escalation (280).
    assert_eq!(v["baseline"]["by_action"]["release"], 4);
    assert_eq!(v["candidate"]["by_action"]["tailgate"], 2);
    assert_eq!(v["changed"], 2);
    assert_eq!(v["changed_by_transition"]["release -> tailgate"], 2);
    assert!(v["threshold"]["high_threshold"].is_i64());
    let (s, v) = call(
        &a.router,
        "POST",
        "/admin/policy/simulate",
        Some(VIEWER),
        "{\"policy\": \"[meta]\"}",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["errors"].as_array().unwrap().len() > 3,
        "every missing section is reported: {v}"
    );
}

#[tokio::test]
async fn simulate_decides_with_the_party_history_and_judges_against_recorded_results() {
    use arc_swap::ArcSwap;
    use borderlane_core::history::{History, Position, Watermark};
    use borderlane_core::outcome::{parse_outcome, Form};

    let history = Arc::new(History::new());
    let record = |id: &str, result: &str| {
        let text = format!(
            r#"{{"manifest_id": "{id}", "revision": 0, "result": "{result}", "examined_at": "2026-11-27T00:00:00Z",
            "port": "2304", "officer": "olga", "parties": [{{"role": "importer", "id": "I-1"}}], "causes": ["band"]}}"#
        );
        parse_outcome(text.as_bytes(), &Limits::default(), Form::Record).unwrap()
    };
    // R1 (CO) seized, R3 (MX) a discrepancy; R0's outcome is beyond the published watermark.
    for (offset, (id, result)) in [("R1", "seizure"), ("R3", "discrepancy"), ("R0", "seizure")]
        .iter()
        .enumerate()
    {
        history.insert(
            Position {
                partition: 0,
                offset: offset as u64,
            },
            &record(id, result),
        );
    }
    let watermark = Arc::new(ArcSwap::from_pointee(
        Watermark::parse("0:2").expect("watermark"),
    ));
    let a = admin_app::app_built(AdminLimits::default(), |state| {
        state.with_history(history.clone(), watermark.clone())
    });
    for (i, origin) in ["MX", "CO", "CO", "MX"].iter().enumerate() {
        a.ring.push(Arc::new(manifest(&format!("R{i}"), origin)));
    }
    let candidate =
        DEFAULT_POLICY.replace("origin.CO = { points = 45", "origin.CO = { points = 245");
    let body = serde_json::json!({"policy": candidate}).to_string();
    let (s, v) = call(
        &a.router,
        "POST",
        "/admin/policy/simulate",
        Some(VIEWER),
        &body,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // The importer's seizure (history.seizure, non-creditable, at least a document review) makes every
    // manifest an exam under both policies — without the history the baseline released all four.
    assert_eq!(
        v["baseline"]["by_action"]["release"],
        serde_json::Value::Null,
        "{v}"
    );
    let k = &v["known_results"];
    assert_eq!(k["with_result"]["exams"], 2, "{v}");
    assert_eq!(k["with_result"]["hits"], 2, "{v}");
    assert_eq!(k["baseline"]["examined"]["exams"], 2, "{v}");
    assert_eq!(k["baseline"]["examined"]["hits"], 2, "{v}");
    assert_eq!(k["baseline"]["hits_released"], 0, "{v}");
    assert_eq!(k["baseline"]["by_cause"]["history"]["exams"], 2, "{v}");
    assert_eq!(k["candidate"]["examined"]["exams"], 2, "{v}");
    // Without a history the report has no judged section.
    let plain = app();
    let (_, v) = call(
        &plain.router,
        "POST",
        "/admin/policy/simulate",
        Some(VIEWER),
        &body,
    )
    .await;
    assert!(v.get("known_results").is_none(), "{v}");
}

#[tokio::test]
async fn bodies_are_capped_per_route() {
    let a = app_with(AdminLimits {
        max_policy_bytes: 64 * 1024,
        max_window: 100,
    });
    let huge = format!("{DEFAULT_POLICY}\n# {}\n", "x".repeat(70 * 1024));
    let (s, _) = call(&a.router, "PUT", "/admin/policy", Some(OPERATOR), &huge).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let body = serde_json::json!({ "policy": huge }).to_string();
    let (s, _) = call(
        &a.router,
        "POST",
        "/admin/policy/simulate",
        Some(VIEWER),
        &body,
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (s, _) = call(
        &a.router,
        "POST",
        "/admin/policy/rollback",
        Some(OPERATOR),
        &format!("{{\"version\": \"{}\"}}", "a".repeat(8 * 1024)),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    // The policy in force did not change.
    assert!(!a.store.current_text().contains("xxxx"));
}

#[test]
fn simulate_while_busy_is_429() {
    // A window large enough that one simulation takes a while on this machine.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let a = app_with(AdminLimits {
            max_policy_bytes: 256 * 1024,
            max_window: 1_000_000,
        });
        let ring = a.ring.clone();
        let m = Arc::new(manifest("B", "CO"));
        for _ in 0..200_000 {
            ring.push(m.clone());
        }
        let body = serde_json::json!({"policy": DEFAULT_POLICY}).to_string();
        let first = {
            let (router, body) = (a.router.clone(), body.clone());
            tokio::spawn(async move {
                call(
                    &router,
                    "POST",
                    "/admin/policy/simulate",
                    Some(VIEWER),
                    &body,
                )
                .await
            })
        };
        // While the first one runs, another is refused at once.
        let mut refused = false;
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            if first.is_finished() {
                break;
            }
            let (s, v) = call(
                &a.router,
                "POST",
                "/admin/policy/simulate",
                Some(VIEWER),
                &body,
            )
            .await;
            if s == StatusCode::TOO_MANY_REQUESTS {
                assert!(
                    v["error"].as_str().unwrap().contains("already running"),
                    "{v}"
                );
                refused = true;
                break;
            }
        }
        assert!(
            refused,
            "a second simulate during the first was not refused"
        );
        let (s, v) = first.await.unwrap();
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["manifests"], 200_004);
        // Once it ended, the next one runs.
        let small = app();
        let (s, _) = call(
            &small.router,
            "POST",
            "/admin/policy/simulate",
            Some(VIEWER),
            &body,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
    });
}

#[test]
fn swap_is_atomic_under_concurrent_scoring() {
    let store = Arc::new(PolicyStore::new(DEFAULT_POLICY, Origin::File, loader(), None).unwrap());
    let other = DEFAULT_POLICY
        .replace("origin.CO = { points = 45", "origin.CO = { points = 145")
        .replace("late_points = 30", "late_points = 31");
    let a = CompiledPolicy::from_toml(DEFAULT_POLICY).unwrap();
    let b = CompiledPolicy::from_toml(&other).unwrap();
    let table = PartnerTable::new();
    let m = manifest("SWAP", "CO");
    let expected_a = decide(&a, &table, &m);
    let expected_b = decide(&b, &table, &m);
    assert_ne!(expected_a.score, expected_b.score);
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                store
                    .install(
                        if n % 2 == 0 { &other } else { DEFAULT_POLICY },
                        Origin::Api,
                        "test",
                        "put",
                    )
                    .unwrap();
                n += 1;
            }
            n
        })
    };
    let mut seen = (0, 0);
    for _ in 0..20_000 {
        let p = store.current();
        let d = decide(&p, &table, &m);
        // Every decision is entirely one version's: identical to that version's own decision.
        if d.policy_version == a.version {
            assert_eq!(d, expected_a);
            seen.0 += 1;
        } else {
            assert_eq!(d.policy_version, b.version);
            assert_eq!(d, expected_b);
            seen.1 += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(swaps > 1, "the swapper ran");
    assert!(seen.0 + seen.1 == 20_000);
}

#[tokio::test]
async fn hot_reload_installs_valid_files_and_keeps_policy_on_invalid_ones() {
    let dir = tempdir();
    let path = dir.join("policy.toml");
    std::fs::write(&path, DEFAULT_POLICY).unwrap();
    let store = Arc::new(PolicyStore::new(DEFAULT_POLICY, Origin::File, loader(), None).unwrap());
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(borderlane::service::admin::reload::watch_file(
        store.clone(),
        Some(path.clone()),
        Duration::from_millis(20),
        borderlane::service::admin::flipped(shutdown),
    ));
    let v0 = store.current().version.clone();
    std::fs::write(
        &path,
        DEFAULT_POLICY.replace("late_points = 30", "late_points = 40"),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while store.current().version == v0 {
        assert!(
            std::time::Instant::now() < deadline,
            "valid file was not reloaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let v1 = store.current().version.clone();
    assert_eq!(store.current().doc.filing.late_points, 40);
    std::fs::write(&path, "this is = not [ a policy").unwrap();
    while store.reload_failures.load(Ordering::Relaxed) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "invalid file was not noticed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        store.current().version,
        v1,
        "an invalid file keeps the running policy"
    );
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}

/// Security issue item 5: a candidate policy with a multi-byte key panicked the connection task; it is a 400
/// listing the key.
#[tokio::test]
async fn simulate_lists_a_multibyte_key() {
    let a = app();
    let body = serde_json::json!({"policy": format!("\"[]é]\" = 1\n{DEFAULT_POLICY}")}).to_string();
    let (s, v) = call(
        &a.router,
        "POST",
        "/admin/policy/simulate",
        Some(VIEWER),
        &body,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["errors"][0]["path"], "[]é]", "{v}");
}
