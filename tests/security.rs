//! The service's listeners as a client on the network sees them, with generated traffic (no broker): TLS
//! with a freshly generated self-signed certificate completes a handshake and serves the officers' feed
//! and the metrics; plain HTTP to a TLS listener gets nothing; `/metrics`, scraped during traffic, holds
//! none of the manifest or party ids of the decisions the feed showed; `serve` refuses to expose the
//! officers' listener beyond loopback without TLS.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use borderlane::service::config::Config;
use borderlane::service::generated::Generated;
use borderlane::service::Input;
use borderlane::traffic::gen::{GenConfig, Generator};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

const OFFICER: &str = "tls-officer-token-0123456789";
const OPERATOR: &str = "tls-operator-token-0123456789";

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "borderlane-security-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn generated(rate: f64) -> Input {
    let policy = borderlane::load::policy::default_policy();
    let g = Generator::new(
        GenConfig {
            seed: 11,
            partners: 500,
            bad_share: 0.0,
            ..GenConfig::default()
        },
        &policy,
    );
    let table = Arc::new(g.partner_table());
    Input::Generated(Box::new(Generated {
        generator: g,
        table,
        rate,
        first: 0,
        warm: 0..0,
    }))
}

async fn tls(connector: &TlsConnector, addr: SocketAddr) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// Every string under a key naming an id (`manifest_id`, `id`, `…_id`) in a decision.
fn ids(v: &serde_json::Value, key: &str, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                ids(x, k, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| ids(x, key, out)),
        serde_json::Value::String(s) if key == "id" || key.ends_with("_id") => {
            out.insert(s.clone());
        }
        _ => {}
    }
}

/// Whether `id` occurs in `text` other than inside a longer number. A party id of digits only (a DUNS
/// number such as `300000001`) can otherwise be found inside a metric's value (a sum printed as
/// `0.30000000100000003`), which leaks nothing; an occurrence with anything but a digit or a decimal point
/// beside it counts.
fn contains_token(text: &str, id: &str) -> bool {
    let numeric = |c: char| c.is_ascii_digit() || c == '.';
    text.match_indices(id).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + id.len()..].chars().next();
        !before.is_some_and(numeric) && !after.is_some_and(numeric)
    })
}

#[test]
fn tokens_are_whole() {
    assert!(contains_token("x{id=\"300000001\"} 1", "300000001"));
    assert!(contains_token("300000001", "300000001"));
    assert!(!contains_token("sum 0.30000000100000003", "300000001"));
    assert!(!contains_token("count 1300000001", "300000001"));
    assert!(contains_token("a 1\nb TRK-1 c", "TRK-1"));
    assert!(contains_token("label_x_TRK-1_y", "TRK-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listeners_and_metrics_without_ids() {
    let dir = tempdir("tls");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
    std::fs::write(
        dir.join("tokens.toml"),
        format!(
            "[[token]]\nname = \"olga\"\nrole = \"officer\"\nsecret = \"{OFFICER}\"\n\
             [[token]]\nname = \"ops\"\nrole = \"operator\"\nsecret = \"{OPERATOR}\"\n"
        ),
    )
    .unwrap();
    let mut config = Config {
        base_dir: dir.clone(),
        ..Config::default()
    };
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.http.tls_cert = Some("cert.pem".into());
    config.http.tls_key = Some("key.pem".into());
    config.officers.listen = Some("127.0.0.1:0".parse().unwrap());
    config.admin.listen = Some("127.0.0.1:0".parse().unwrap());
    config.admin.tokens_file = Some("tokens.toml".into());
    config.admin.audit_log = "audit.jsonl".into();
    config.admin.reload_policy = false;
    let running = borderlane::service::start_with(config, generated(300.0))
        .await
        .expect("service starts");
    assert_eq!(running.scheme(), "https");
    let (officers, metrics) = (running.officers_addr().unwrap(), running.http_addr());

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(cert.cert.der().to_vec()))
        .unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(client));

    // The handshake completes against the generated certificate; the feed streams decisions over it.
    let mut s = tls(&connector, officers).await.expect("TLS handshake");
    s.write_all(
        format!("GET /feed HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {OFFICER}\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut lines = BufReader::new(s).lines();
    let status = lines.next_line().await.unwrap().unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let mut seen = BTreeSet::new();
    let mut decisions = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while decisions < 200 {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .expect("200 decisions within 60 s")
            .unwrap()
            .expect("the feed stays open");
        if let Some(data) = line.strip_prefix("data:") {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(data.trim()) {
                if v.get("manifest_id").is_some() {
                    ids(&v, "", &mut seen);
                    decisions += 1;
                }
            }
        }
    }
    assert!(
        seen.len() > 200,
        "manifest and party ids collected: {}",
        seen.len()
    );

    // /metrics, scraped over TLS during the traffic, carries none of those ids.
    let mut m = tls(&connector, metrics).await.expect("TLS handshake");
    m.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    m.read_to_string(&mut body).await.unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("borderlane_decisions_total"), "{body}");
    let leaked: Vec<&String> = seen
        .iter()
        .filter(|id| id.len() >= 4 && contains_token(&body, id))
        .collect();
    assert!(leaked.is_empty(), "ids on /metrics: {leaked:?}");
    drop(lines);

    // Plain HTTP to a TLS listener gets no HTTP answer.
    let mut plain = TcpStream::connect(officers).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut buf)).await;
    assert!(
        !buf.starts_with(b"HTTP/1.1"),
        "{:?}",
        String::from_utf8_lossy(&buf)
    );

    running.shutdown_handle().trigger();
    running.wait(std::future::pending()).await.unwrap();
}

#[tokio::test]
async fn serve_refuses_plaintext_beyond_loopback() {
    let dir = tempdir("plain");
    let mut config = Config {
        base_dir: dir.clone(),
        ..Config::default()
    };
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.officers.listen = Some("0.0.0.0:0".parse().unwrap());
    config.admin.audit_log = "audit.jsonl".into();
    let e = match borderlane::service::start(config.clone()).await {
        Ok(_) => panic!("serve started a plain-text officers' listener on 0.0.0.0"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        e.contains("officers.listen") && e.contains("allow_plaintext"),
        "{e}"
    );
    config.officers.listen = Some("127.0.0.1:0".parse().unwrap());
    config.admin.listen = Some("0.0.0.0:0".parse().unwrap());
    let e = match borderlane::service::start(config).await {
        Ok(_) => panic!("serve started a plain-text admin listener on 0.0.0.0"),
        Err(e) => format!("{e:#}"),
    };
    assert!(e.contains("admin.listen"), "{e}");
}
