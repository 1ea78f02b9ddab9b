//! Operators' tools wired into the streaming service on the real broker: the officers' feed look-up shows
//! decisions the pipeline made, a hot-reloaded policy file changes the version later decisions carry, and
//! the admin API answers on its own listener with its token.

mod common;

use std::net::SocketAddr;

use common::*;

const TOKEN: &str = "serve-admin-token-0123456789";
const OFFICER: &str = "serve-officer-token-0123456789";

#[test]
fn feed_reload_and_admin_api_in_serve() {
    let mut config = config("admin");
    let dir = std::env::temp_dir().join(unique("admin-files"));
    std::fs::create_dir_all(&dir).unwrap();
    let policy_path = dir.join("policy.toml");
    std::fs::write(&policy_path, borderlane::load::policy::DEFAULT_POLICY).unwrap();
    let tokens = dir.join("tokens.toml");
    std::fs::write(
        &tokens,
        format!(
            "[[token]]\nname = \"ops\"\nrole = \"operator\"\nsecret = \"{TOKEN}\"\n\
             [[token]]\nname = \"olga\"\nrole = \"officer\"\nsecret = \"{OFFICER}\"\n"
        ),
    )
    .unwrap();
    let admin_port = free_port();
    config.policy.file = Some(policy_path.clone());
    config.admin.tokens_file = Some(tokens);
    config.admin.listen = Some(SocketAddr::from(([127, 0, 0, 1], admin_port)));
    config.admin.reload_interval_ms = 100;
    let topics = config.kafka.topics.clone();
    create_topics(&config);
    let service = InProcess::start(config.clone());
    wait_until("ready", || {
        http_get(service.http, "/readyz").map(|r| r.0) == Some(200)
    });
    let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
    let out = Collector::start(&[&topics.decisions]);

    let send = |id: &str| {
        let m = manifest(id, 1, 1, 0);
        send_all(
            &config,
            &topics.manifests,
            &[(Some(id.as_bytes().to_vec()), Some(m.into_bytes()))],
        );
    };
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

    send("ADM-1");
    let d1 = decision_of("ADM-1");
    let v0 = d1["policy_version"].as_str().unwrap().to_string();
    // The feed's recent window has it, as the pipeline published it — on the officers' listener, for an
    // officer; not for anonymous callers nor operators, and not on the metrics listener at all.
    let officers = service.officers.expect("officers' listener runs");
    assert_eq!(http_get(officers, "/decisions/ADM-1").unwrap().0, 401);
    assert_eq!(
        http_get_auth(officers, "/decisions/ADM-1", Some(TOKEN))
            .unwrap()
            .0,
        403
    );
    assert_eq!(http_get(service.http, "/decisions/ADM-1").unwrap().0, 404);
    let (status, body) = http_get_auth(officers, "/decisions/ADM-1", Some(OFFICER)).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["manifest_id"],
        "ADM-1"
    );
    // The admin API: 401 without a token, the current version with it.
    assert_eq!(
        http_get_auth(admin, "/admin/versions", None).unwrap().0,
        401
    );
    let (status, body) = http_get_auth(admin, "/admin/versions", Some(TOKEN)).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&v0), "{body}");

    // Hot reload: the changed file becomes the policy of later decisions.
    std::fs::write(
        &policy_path,
        borderlane::load::policy::DEFAULT_POLICY.replace("late_points = 30", "late_points = 33"),
    )
    .unwrap();
    wait_until("the reloaded version", || {
        http_get_auth(admin, "/admin/versions", Some(TOKEN))
            .is_some_and(|(_, b)| !b.contains(&format!("\"current\":\"{v0}\"")))
    });
    send("ADM-2");
    let d2 = decision_of("ADM-2");
    assert_ne!(d2["policy_version"], d1["policy_version"]);
    let (_, audit) = http_get_auth(admin, "/admin/audit", Some(TOKEN)).unwrap();
    assert!(
        audit.contains("\"action\":\"reload\"") && audit.contains("filing.late_points"),
        "{audit}"
    );
    service.stop().unwrap();
}
