//! Business resumption through the admin API, in process (the `demo` publisher: no Kafka): an operator's
//! `PUT /admin/ports/{code}/resumption` is validated with every error at once, applied, listed, audited
//! with who, what and when, and makes decisions at the port carry a `priority` — judged from each
//! manifest's `filed_at`, so it expires by itself; `DELETE` ends it (audited); viewers and officers may not
//! change it; and in the `demo` wiring (generated traffic) a declaration reaches the live officers' feed.
//! The real-broker path (control topic, a second instance) is `kafka_resumption.rs`.

use std::sync::Arc;

use axum::http::StatusCode;
use borderlane::service::admin::audit::AuditLog;
use borderlane::service::resumption::Board;
use borderlane_core::score::process_with;
use borderlane_core::table::PartnerTable;
use borderlane_core::time::Timestamp;
use borderlane_core::wire::Limits;

mod admin_app;
use admin_app::{app, call, OFFICER, OPERATOR, VIEWER};

/// `secs` seconds from now, as RFC 3339.
fn from_now(secs: i64) -> String {
    let now = borderlane::clock::now().unwrap().unix_seconds();
    Timestamp::from_unix_seconds(now + secs)
        .unwrap()
        .to_string()
}

/// A manifest at `port` filed at `filed_at`, importer without a partner record.
fn manifest(id: &str, port: &str, filed_at: &str) -> Vec<u8> {
    format!(
        r#"{{"manifest_id":"{id}","filed_at":"{filed_at}","mode":"truck","port_of_entry":"{port}",
        "shipments":[{{"shipment_id":"S1","importer":{{"id":"I-1"}},"origin_country":"MX",
        "commodities":[{{"hts":"850440","description":"power supplies","weight_kg":10.0,"value_usd":500.0}}]}}]}}"#
    )
    .into_bytes()
}

/// The decision's `priority` for `bytes` under the default policy and the board's declarations.
fn priority(board: &Board, bytes: &[u8]) -> serde_json::Value {
    let policy = borderlane::load::policy::default_policy();
    let (_, d) = process_with(
        &policy,
        &PartnerTable::new(),
        bytes,
        &Limits::default(),
        &board.snapshot(),
    )
    .unwrap();
    serde_json::to_value(&d).unwrap()["priority"].clone()
}

#[tokio::test]
async fn only_operators_change_resumption_and_every_error_comes_back() {
    let a = app();
    let body = format!(
        r#"{{"until":"{}","reason":"bridge reopened"}}"#,
        from_now(3600)
    );
    for (token, want) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(VIEWER), StatusCode::FORBIDDEN),
        (Some(OFFICER), StatusCode::FORBIDDEN),
    ] {
        let (s, v) = call(
            &a.router,
            "PUT",
            "/admin/ports/2304/resumption",
            token,
            &body,
        )
        .await;
        assert_eq!(s, want, "{v}");
        let (s, v) = call(
            &a.router,
            "DELETE",
            "/admin/ports/2304/resumption",
            token,
            "",
        )
        .await;
        assert_eq!(s, want, "{v}");
    }
    // Viewers read the list; officers do not.
    assert_eq!(
        call(
            &a.router,
            "GET",
            "/admin/ports/resumption",
            Some(VIEWER),
            ""
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        call(
            &a.router,
            "GET",
            "/admin/ports/resumption",
            Some(OFFICER),
            ""
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    // A port outside the policy, an end in the past, an unknown field and a reason with a bidirectional
    // override: all four at once, nothing applied, nothing audited.
    let bad = format!(
        r#"{{"until":"{}","reason":"ok\u202e","note":1}}"#,
        from_now(-60)
    );
    let (s, v) = call(
        &a.router,
        "PUT",
        "/admin/ports/9999/resumption",
        Some(OPERATOR),
        &bad,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let paths: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["port", "note", "until", "reason"], "{v}");
    // Beyond the maximum (default 168 hours) and an empty reason.
    let too_long = format!(r#"{{"until":"{}","reason":"  "}}"#, from_now(169 * 3600));
    let (s, v) = call(
        &a.router,
        "PUT",
        "/admin/ports/2304/resumption",
        Some(OPERATOR),
        &too_long,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let messages: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        messages[0].contains("more than 168 hours") && messages[1].contains("must not be empty"),
        "{v}"
    );
    assert!(a.board.snapshot().is_empty());
    assert!(a
        .store
        .audit()
        .iter()
        .all(|e| !e.action.starts_with("resumption")));
    // DELETE of a port with no declaration: 404.
    let (s, _) = call(
        &a.router,
        "DELETE",
        "/admin/ports/2304/resumption",
        Some(OPERATOR),
        "",
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn put_prioritises_by_filing_time_expires_by_itself_and_delete_ends_it_audited() {
    let a = app();
    let until = from_now(2 * 3600);
    let body = format!(r#"{{"until":"{until}","reason":"Laredo bridge reopened after closure"}}"#);
    let (s, v) = call(
        &a.router,
        "PUT",
        "/admin/ports/2304/resumption",
        Some(OPERATOR),
        &body,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["port"], "2304");
    assert_eq!(v["declared_by"], "alice");
    assert_eq!(v["until"], until.as_str());
    assert_eq!(v["active"], true);
    assert_eq!(v["applied"], true);
    let declared_at = v["declared_at"].as_str().unwrap().to_string();

    // Listed while in force.
    let (s, list) = call(
        &a.router,
        "GET",
        "/admin/ports/resumption",
        Some(VIEWER),
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["resumptions"][0]["port"], "2304", "{list}");
    assert_eq!(
        list["resumptions"][0]["reason"],
        "Laredo bridge reopened after closure"
    );
    assert_eq!(list["expired"], serde_json::json!([]));

    // Decisions: judged from each manifest's filed_at, never the clock. Filed a minute after the
    // declaration: priority 4 (no partner). Filed before it, at `until` or later, or at another port: none.
    assert_eq!(
        priority(&a.board, &manifest("M-IN", "2304", &from_now(60))),
        serde_json::json!(4)
    );
    assert_eq!(
        priority(&a.board, &manifest("M-BEFORE", "2304", &from_now(-3600))),
        serde_json::Value::Null
    );
    assert_eq!(
        priority(&a.board, &manifest("M-AT-END", "2304", &until)),
        serde_json::Value::Null,
        "until is exclusive: the declaration expired by itself"
    );
    assert_eq!(
        priority(&a.board, &manifest("M-LATER", "2304", &from_now(3 * 3600))),
        serde_json::Value::Null
    );
    assert_eq!(
        priority(&a.board, &manifest("M-OTHER", "3801", &from_now(60))),
        serde_json::Value::Null
    );

    // A second PUT replaces the first (one declaration per port).
    let shorter = from_now(3600);
    let body = format!(r#"{{"until":"{shorter}","reason":"shorter window"}}"#);
    let (s, _) = call(
        &a.router,
        "PUT",
        "/admin/ports/2304/resumption",
        Some(OPERATOR),
        &body,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(a.board.snapshot().len(), 1);
    assert_eq!(
        priority(
            &a.board,
            &manifest("M-AFTER-SHORT", "2304", &from_now(5400))
        ),
        serde_json::Value::Null
    );

    // DELETE ends it: no priority for anything filed afterwards, nothing listed.
    let (s, v) = call(
        &a.router,
        "DELETE",
        "/admin/ports/2304/resumption",
        Some(OPERATOR),
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["ended"]["reason"], "shorter window");
    assert!(a.board.snapshot().is_empty());
    assert_eq!(
        priority(&a.board, &manifest("M-ENDED", "2304", &from_now(60))),
        serde_json::Value::Null
    );
    let (_, list) = call(
        &a.router,
        "GET",
        "/admin/ports/resumption",
        Some(VIEWER),
        "",
    )
    .await;
    assert_eq!(list["resumptions"], serde_json::json!([]));

    // The audit trail: who, what, when — through the API and on disk after a restart.
    let (_, audit) = call(&a.router, "GET", "/admin/audit", Some(VIEWER), "").await;
    let changes: Vec<(String, String, String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("resumption"))
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_string(),
                e["action"].as_str().unwrap().to_string(),
                e["resumption"]["port"].as_str().unwrap().to_string(),
                e["resumption"]["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let row = |action: &str, reason: &str| {
        (
            "alice".to_string(),
            action.to_string(),
            "2304".to_string(),
            reason.to_string(),
        )
    };
    assert_eq!(
        changes,
        [
            row("resumption-declare", "Laredo bridge reopened after closure"),
            row("resumption-declare", "shorter window"),
            row("resumption-end", "shorter window"),
        ]
    );
    let first = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "resumption-declare")
        .unwrap();
    assert_eq!(first["resumption"]["declared_at"], declared_at.as_str());
    assert!(Timestamp::parse(first["time"].as_str().unwrap()).is_some());
    assert_eq!(first["new_version"], &*a.store.current().version);
    let on_disk = AuditLog::open(&a.dir.join("audit.jsonl"))
        .unwrap()
        .read_all()
        .unwrap();
    assert_eq!(
        on_disk
            .iter()
            .filter(|e| e.action.starts_with("resumption"))
            .count(),
        3
    );
}

/// `GET`/`PUT` over plain HTTP/1.1 with a bearer token: (status, body).
fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let status = buf.split(' ').nth(1).unwrap().parse().unwrap();
    (status, buf.split_once("\r\n\r\n").unwrap().1.to_string())
}

/// The `demo` wiring (generated traffic, no Kafka): a declaration made through its admin API applies in
/// process to the live traffic — decisions on the officers' feed at the port carry `priority`, the
/// counter and the mode gauge show it — and a DELETE ends it. The generated traffic is filed from the
/// test's start on (the demo's own simulated day lies in the past, before any declaration made now).
#[test]
fn in_demo_a_declaration_applies_to_the_live_feed() {
    use borderlane::service::generated::Generated;
    use borderlane::service::{config::Config, start_with, Input};
    use borderlane::traffic::gen::{GenConfig, Generator};
    use std::io::{BufRead, BufReader, Write};

    let a = app(); // for its temporary directory and tokens file
    let policy = borderlane::load::policy::default_policy();
    let start = borderlane::clock::now().unwrap();
    let gen_config = GenConfig {
        seed: 7,
        partners: 2000,
        start,
        span_secs: 600,
        ..GenConfig::default()
    };
    let g = Generator::new(gen_config.clone(), &policy);
    // The same records, to look up each decided manifest's filing time.
    let filed: std::collections::HashMap<String, Timestamp> = {
        let again = Generator::new(gen_config, &policy);
        (0..5_000)
            .filter_map(|i| match again.record(i) {
                borderlane::traffic::gen::Record::Good(m) => {
                    Some((m.manifest_id.to_string(), m.filed_at))
                }
                _ => None,
            })
            .collect()
    };
    let table = Arc::new(g.partner_table());
    let mut config = Config::default();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.officers.listen = Some("127.0.0.1:0".parse().unwrap());
    config.admin.listen = Some("127.0.0.1:0".parse().unwrap());
    config.admin.tokens_file = Some(a.dir.join("tokens.toml"));
    config.admin.audit_log = a.dir.join("demo-audit.jsonl");
    config.admin.reload_policy = false;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let running = rt
        .block_on(start_with(
            config,
            Input::Generated(Box::new(Generated {
                generator: g,
                table,
                rate: 200.0,
                first: 0,
                warm: 0..0,
            })),
        ))
        .unwrap();
    let (admin, officers, metrics) = (
        running.admin_addr().unwrap(),
        running.officers_addr().unwrap(),
        running.http_addr(),
    );
    let stop = running.shutdown_handle();
    let done = rt.spawn(running.wait(std::future::pending()));

    let until = from_now(3600);
    let (status, body) = http(
        admin,
        "PUT",
        "/admin/ports/2304/resumption",
        OPERATOR,
        &format!(r#"{{"until":"{until}","reason":"demo: Laredo reopened"}}"#),
    );
    assert_eq!(status, 200, "{body}");
    let declared = serde_json::from_str::<serde_json::Value>(&body).unwrap();
    let declared_at = Timestamp::parse(declared["declared_at"].as_str().unwrap()).unwrap();
    let until = Timestamp::parse(&until).unwrap();

    // The officers' feed at 2304: a decision carries a priority exactly when its manifest was filed in
    // [declared_at, until), and the priority follows the importer standing.
    let mut sse = std::net::TcpStream::connect(officers).unwrap();
    sse.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    write!(
        sse,
        "GET /feed?port=2304 HTTP/1.1\r\nHost: {officers}\r\nAuthorization: Bearer {OFFICER}\r\n\r\n"
    )
    .unwrap();
    let (mut with, mut without, mut seen) = (0, 0, 0);
    for line in BufReader::new(sse).lines() {
        let line = line.unwrap();
        let Some(data) = line.strip_prefix("data:") else {
            continue;
        };
        let Ok(d) = serde_json::from_str::<serde_json::Value>(data.trim()) else {
            continue;
        };
        if d.get("manifest_id").is_none() {
            continue;
        }
        assert_eq!(d["port_of_entry"], "2304");
        seen += 1;
        let at = filed[d["manifest_id"].as_str().unwrap()];
        let covered = declared_at <= at && at < until;
        // The first two may have been scored while the PUT was being applied.
        if seen > 2 {
            assert_eq!(d.get("priority").is_some(), covered, "filed {at}: {d}");
        }
        match d.get("priority") {
            Some(p) => {
                let p = p.as_u64().unwrap();
                assert!((1..=4).contains(&p), "{d}");
                let want = match d["importer_standing"].as_str().unwrap() {
                    "validated_tier3" => 1,
                    "validated" => 2,
                    "certified" => 3,
                    _ => 4,
                };
                assert_eq!(p, want, "{d}");
                with += 1;
            }
            None => without += 1,
        }
        if with >= 5 {
            break;
        }
    }
    assert!(with >= 5, "with {with}, without {without}");
    let series = |name: &str| -> f64 {
        let (_, body) = http(metrics, "GET", "/metrics", "", "");
        body.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(series("borderlane_decisions_prioritized_total{port=\"2304\"") >= 5.0);
    assert_eq!(
        series("borderlane_port_resumption_active{port=\"2304\"}"),
        1.0
    );
    assert!(declared_at >= start);
    assert_eq!(declared["until"], until.to_string());

    // DELETE ends it for the live traffic.
    let (status, body) = http(
        admin,
        "DELETE",
        "/admin/ports/2304/resumption",
        OPERATOR,
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        series("borderlane_port_resumption_active{port=\"2304\"}"),
        0.0
    );
    // (A decision scored while the DELETE was applied may still count: read after a pause.)
    std::thread::sleep(std::time::Duration::from_millis(300));
    let counted = series("borderlane_decisions_prioritized_total{port=\"2304\"");
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert_eq!(
        series("borderlane_decisions_prioritized_total{port=\"2304\""),
        counted,
        "decisions still prioritised after the DELETE"
    );
    stop.trigger();
    rt.block_on(done).unwrap().unwrap();
}
