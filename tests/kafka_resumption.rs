//! Business resumption on the real broker: a declaration written through the admin API of one service goes
//! to the compacted control topic; a second instance started afterwards (the first one stopped) has read it
//! before it is ready, lists it, shows the mode in `/metrics` and gives decisions at the port a `priority`
//! from the importer's standing; a `DELETE` through the second instance writes a tombstone and ends it.

mod common;

use std::net::SocketAddr;

use common::*;

const TOKEN: &str = "resume-operator-token-0123456789";

/// A manifest at `PORTS[port]` whose importer is `IOR-{importer}`, filed `secs` from now (the test's wall
/// clock, so that it falls after the declaration, which is stamped with the service's clock).
fn manifest_filed(id: &str, importer: usize, port: usize, secs: i64) -> Vec<u8> {
    let now = borderlane::clock::now().unwrap().unix_seconds();
    let at = |s: i64| {
        borderlane_core::time::Timestamp::from_unix_seconds(now + s)
            .unwrap()
            .to_string()
    };
    let mut m: serde_json::Value = serde_json::from_str(&manifest(id, importer, 1, port)).unwrap();
    m["filed_at"] = at(secs).into();
    m["estimated_arrival"] = at(secs + 3600).into();
    serde_json::to_vec(&m).unwrap()
}

fn admin_on(config: &mut borderlane::service::config::Config) -> SocketAddr {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    config.admin.listen = Some(addr);
    config.admin.audit_log = std::env::temp_dir().join(format!("{}-audit.jsonl", unique("resume")));
    addr
}

#[test]
fn a_declaration_reaches_a_later_instance_and_a_tombstone_ends_it() {
    let mut config = config("resume");
    let dir = std::env::temp_dir().join(unique("resume-files"));
    std::fs::create_dir_all(&dir).unwrap();
    let tokens = dir.join("tokens.toml");
    std::fs::write(
        &tokens,
        format!("[[token]]\nname = \"ops\"\nrole = \"operator\"\nsecret = \"{TOKEN}\"\n"),
    )
    .unwrap();
    config.admin.tokens_file = Some(tokens);
    let topics = config.kafka.topics.clone();
    create_topics(&config);
    // Importer 0 is validated tier 3, importer 2 certified (common::importer).
    send_all(
        &config,
        &topics.partners,
        &[0usize, 2]
            .iter()
            .map(|i| {
                (
                    Some(format!("CTP-IMP-{i:05}").into_bytes()),
                    Some(importer(*i).into_bytes()),
                )
            })
            .collect::<Vec<_>>(),
    );

    // Instance A: the operator declares resumption at 2304 (PORTS[0]).
    let mut config_a = config.clone();
    let admin_a = admin_on(&mut config_a);
    let a = InProcess::start(config_a);
    wait_until("A ready", || {
        http_get(a.http, "/readyz").map(|r| r.0) == Some(200)
    });
    let until = {
        let now = borderlane::clock::now().unwrap().unix_seconds();
        borderlane_core::time::Timestamp::from_unix_seconds(now + 6 * 3600)
            .unwrap()
            .to_string()
    };
    let (status, body) = http_call(
        admin_a,
        "PUT",
        "/admin/ports/2304/resumption",
        Some(TOKEN),
        &format!(r#"{{"until":"{until}","reason":"World Trade Bridge reopened"}}"#),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["applied"], true, "A applies its own write: {v}");
    assert_eq!(v["declared_by"], "ops");
    assert_eq!(
        metric(a.http, "borderlane_port_resumption_active{port=\"2304\"}"),
        1.0
    );
    let (_, audit) = http_get_auth(admin_a, "/admin/audit", Some(TOKEN)).unwrap();
    assert!(
        audit.contains("\"action\":\"resumption-declare\"") && audit.contains("\"actor\":\"ops\""),
        "{audit}"
    );
    a.stop().expect("A stops cleanly");

    // Instance B, started afterwards: it has read the control topic before it is ready.
    let mut config_b = config.clone();
    let admin_b = admin_on(&mut config_b);
    let b = InProcess::start(config_b);
    wait_until("B ready", || {
        http_get(b.http, "/readyz").map(|r| r.0) == Some(200)
    });
    let (status, list) = http_get_auth(admin_b, "/admin/ports/resumption", Some(TOKEN)).unwrap();
    assert_eq!(status, 200, "{list}");
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["resumptions"][0]["port"], "2304", "{list}");
    assert_eq!(
        list["resumptions"][0]["reason"],
        "World Trade Bridge reopened"
    );
    assert_eq!(list["resumptions"][0]["until"], until.as_str());
    assert_eq!(
        metric(b.http, "borderlane_port_resumption_active{port=\"2304\"}"),
        1.0
    );

    let out = Collector::start(&[&topics.decisions]);
    let decision_of = |id: &str| -> serde_json::Value {
        wait_until(&format!("decision for {id}"), || {
            out.snapshot().iter().any(|r| r.key_str() == id)
        });
        out.snapshot()
            .into_iter()
            .find(|r| r.key_str() == id)
            .unwrap()
            .json()
    };
    let send = |id: &str, importer: usize, port: usize| {
        send_all(
            &config,
            &topics.manifests,
            &[(
                Some(id.as_bytes().to_vec()),
                Some(manifest_filed(id, importer, port, 60)),
            )],
        );
    };
    send("RES-T3", 0, 0);
    send("RES-T1", 2, 0);
    send("RES-OTHER-PORT", 0, 3);
    assert_eq!(decision_of("RES-T3")["priority"], 1);
    assert_eq!(decision_of("RES-T1")["priority"], 3);
    let other = decision_of("RES-OTHER-PORT");
    assert_eq!(other["port_of_entry"], "3801");
    assert!(other.get("priority").is_none(), "{other}");
    wait_until("the prioritised decisions counted", || {
        metric(
            b.http,
            "borderlane_decisions_prioritized_total{port=\"2304\",priority=\"1\"}",
        ) == 1.0
            && metric(
                b.http,
                "borderlane_decisions_prioritized_total{port=\"2304\",priority=\"3\"}",
            ) == 1.0
    });

    // DELETE through B: a tombstone on the control topic, applied by B; later filings get no priority.
    let control = Collector::start(&[&topics.control]);
    let (status, body) = http_call(
        admin_b,
        "DELETE",
        "/admin/ports/2304/resumption",
        Some(TOKEN),
        "",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    wait_until("the tombstone on the control topic", || {
        control
            .snapshot()
            .iter()
            .any(|r| r.key_str() == "resumption/2304" && r.value.is_none())
    });
    let (_, list) = http_get_auth(admin_b, "/admin/ports/resumption", Some(TOKEN)).unwrap();
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["resumptions"], serde_json::json!([]), "{list}");
    assert_eq!(
        metric(b.http, "borderlane_port_resumption_active{port=\"2304\"}"),
        0.0
    );
    send("RES-AFTER-END", 0, 0);
    let after = decision_of("RES-AFTER-END");
    assert!(after.get("priority").is_none(), "{after}");
    let (_, audit) = http_get_auth(admin_b, "/admin/audit", Some(TOKEN)).unwrap();
    assert!(
        audit.contains("\"action\":\"resumption-end\"") && audit.contains("World Trade Bridge"),
        "{audit}"
    );
    b.stop().expect("B stops cleanly");
}
