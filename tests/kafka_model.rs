//! The learned model in the live stream, on the real broker: `serve` with a `[model]` policy decides KCS
//! manifests with `model.risk` reasons and the model's version; a model file swapped under the running
//! service changes `model_version` on later decisions; an invalid model file is refused (counted, listed
//! in the log) and the running model keeps deciding.

mod common;

use borderlane::learn::kcs::{convert, Report, Row};
use common::*;

const SAMPLE: &str = include_str!("data/kcs-sample.csv");

/// The sample's manifests at ports the policy knows (the others would be dead letters).
fn kcs_manifests(policy: &std::path::Path) -> Vec<String> {
    let policy = borderlane::load::policy::load(policy).unwrap();
    let mut reader = csv::Reader::from_reader(SAMPLE.as_bytes());
    let mut report = Report::default();
    reader
        .deserialize::<Row>()
        .map(|r| convert(&r.unwrap(), &mut report).unwrap().0)
        .filter(|m| borderlane_core::score::check_port(&policy, m).is_ok())
        .map(|m| serde_json::to_string(&m).unwrap())
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn serve_decides_with_the_model_and_hot_swaps_it() {
    let mut config = config("model");
    let dir = std::env::temp_dir().join(unique("model-files"));
    std::fs::create_dir_all(&dir).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let policy_text = std::fs::read_to_string(root.join("policy-kcs.toml")).unwrap();
    let model_bytes = std::fs::read(root.join("model.json")).unwrap();
    std::fs::write(dir.join("policy.toml"), &policy_text).unwrap();
    std::fs::write(dir.join("model.json"), &model_bytes).unwrap();
    config.policy.file = Some(dir.join("policy.toml"));
    config.admin.reload_interval_ms = 100;
    let topics = config.kafka.topics.clone();
    create_topics(&config);
    let service = InProcess::start(config.clone());
    wait_until("ready", || {
        http_get(service.http, "/readyz").map(|r| r.0) == Some(200)
    });
    let out = Collector::start(&[&topics.decisions]);
    let manifests = kcs_manifests(&root.join("policy-kcs.toml"));
    assert!(manifests.len() >= 80, "{} KCS manifests", manifests.len());
    let batch = |from: usize, n: usize| -> Vec<serde_json::Value> {
        let records: Vec<_> = manifests[from..from + n]
            .iter()
            .map(|m| {
                let id = serde_json::from_str::<serde_json::Value>(m).unwrap()["manifest_id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                (Some(id.into_bytes()), Some(m.clone().into_bytes()))
            })
            .collect();
        let before = out.len();
        send_all(&config, &topics.manifests, &records);
        out.wait_for(before + n)[before..]
            .iter()
            .map(|r| r.json())
            .collect()
    };

    // The shipped model decides: every decision names it, and it adds points to some.
    let v1 = format!("sha256:{}", sha256_hex(&model_bytes));
    let first = batch(0, 40);
    assert!(
        first.iter().all(|d| d["model_version"] == v1.as_str()),
        "{first:?}"
    );
    assert!(
        first.iter().any(|d| d["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["rule"] == "model.risk")),
        "no model.risk reason in 40 KCS decisions"
    );
    let info = |v: &str| format!("model_version=\"{v}\"");
    assert!(http_get(service.http, "/metrics")
        .unwrap()
        .1
        .contains(&info(&v1)));

    // A new model file under the same policy text: swapped, and later decisions carry its version.
    let mut changed = model_bytes.clone();
    changed.extend_from_slice(b"\n");
    let v2 = format!("sha256:{}", sha256_hex(&changed));
    std::fs::write(dir.join("model.json"), &changed).unwrap();
    wait_until("the swapped model", || {
        http_get(service.http, "/metrics").is_some_and(|(_, b)| b.contains(&info(&v2)))
    });
    let second = batch(40, 20);
    assert!(
        second.iter().all(|d| d["model_version"] == v2.as_str()),
        "{second:?}"
    );

    // An invalid model file is refused; the running model keeps deciding.
    std::fs::write(dir.join("model.json"), b"{\"format\": \"nonsense\"}").unwrap();
    wait_until("the rejected reload", || {
        metric(service.http, "borderlane_policy_reload_failures_total") >= 1.0
    });
    let third = batch(60, 20);
    assert!(
        third.iter().all(|d| d["model_version"] == v2.as_str()),
        "{third:?}"
    );
    service.stop().unwrap();
}
