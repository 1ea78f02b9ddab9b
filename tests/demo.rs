//! `demo` runs the service's own wiring with generated traffic: with `--policy` naming a `[model]` policy,
//! the live decisions on the feed carry the model's version, and `/metrics` names the policy and model in
//! force. The feed is on the console listener behind the officer's token; metrics on their own listener.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

#[test]
fn demo_with_a_model_policy_decides_live_with_the_model() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let audit = std::env::temp_dir().join(format!(
        "borderlane-demo-{}/audit.jsonl",
        std::process::id()
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_borderlane"))
        .args([
            "demo",
            "--manifests",
            "300",
            "--partners",
            "500",
            "--rate",
            "200",
        ])
        .args([
            "--duration",
            "120",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .arg("--policy")
        .arg(root.join("config/policy-kcs.toml"))
        .arg("--audit")
        .arg(&audit)
        .env("BORDERLANE_ADMIN_TOKEN", "demo-test-token-0123456789")
        .env_remove("BORDERLANE_OFFICER_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut console, mut token, mut metrics_addr) = (None, None, None);
    while metrics_addr.is_none() {
        let line = lines
            .next()
            .expect("demo printed its console, login and metrics addresses")
            .unwrap();
        if let Some(rest) = line.strip_prefix("console:   http://") {
            console = Some(
                rest.split('/')
                    .next()
                    .unwrap()
                    .parse::<SocketAddr>()
                    .unwrap(),
            );
        }
        if let Some(rest) = line.strip_prefix("login:     http://") {
            let t = rest
                .split("#token=")
                .nth(1)
                .expect("a login link with the token");
            token = Some(t.split_whitespace().next().unwrap().to_string());
        }
        if let Some(rest) = line.strip_prefix("metrics:   http://") {
            metrics_addr = Some(
                rest.split('/')
                    .next()
                    .unwrap()
                    .parse::<SocketAddr>()
                    .unwrap(),
            );
        }
    }
    let (console, token, metrics_addr) = (
        console.expect("console line"),
        token.expect("login line with a generated officer token"),
        metrics_addr.unwrap(),
    );
    std::thread::spawn(move || for _ in lines {});

    // Without the token the feed is closed.
    let anonymous = get(console, "/feed");
    assert!(anonymous.starts_with("HTTP/1.1 401"), "{anonymous}");
    // The first live decision from the feed.
    let mut s = TcpStream::connect(console).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET /feed HTTP/1.1\r\nHost: {console}\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let decision: serde_json::Value = BufReader::new(s)
        .lines()
        .map(|l| l.unwrap())
        .find_map(|l| {
            let data = l.strip_prefix("data:")?.trim().to_string();
            serde_json::from_str::<serde_json::Value>(&data)
                .ok()
                .filter(|v| v.get("manifest_id").is_some())
        })
        .expect("a live decision on the feed");
    let model_version = decision["model_version"]
        .as_str()
        .unwrap_or_else(|| panic!("no model_version on a live decision: {decision}"));
    assert!(model_version.starts_with("sha256:"));
    let metrics = get(metrics_addr, "/metrics");
    assert!(
        metrics.contains(&format!("model_version=\"{model_version}\"")),
        "{metrics}"
    );
    let _ = child.kill();
    let _ = child.wait();
}
