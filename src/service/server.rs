//! One way to serve every HTTP listener (metrics, officers, admin): optional TLS (rustls) with the
//! handshake off the accept loop and bounded in time, an idle timeout on every connection (no bytes either
//! way for `http.idle_timeout_ms` closes it, which also bounds a slow request head), a request timeout
//! (408 when a handler has not answered in time), and the `Host` allow-list against DNS rebinding (421).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{anyhow, Context};
use axum::extract::{connect_info::Connected, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use axum::Router;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use super::config::HttpConfig;
use super::Shutdown;

/// How a listener serves: TLS or not, timeouts, accepted host names.
#[derive(Clone)]
pub struct Serving {
    pub tls: Option<TlsAcceptor>,
    pub request_timeout: Duration,
    pub idle_timeout: Duration,
    /// Extra accepted host names (lower case, without port).
    pub allowed_hosts: Vec<String>,
}

impl Serving {
    /// From the `[http]` section; reads the certificate and key when configured.
    pub fn from_config(http: &HttpConfig, base_dir: &Path) -> anyhow::Result<Serving> {
        let tls = match (&http.tls_cert, &http.tls_key) {
            (Some(c), Some(k)) => Some(tls_acceptor(&base_dir.join(c), &base_dir.join(k))?),
            _ => None,
        };
        Ok(Serving {
            tls,
            request_timeout: Duration::from_millis(http.request_timeout_ms),
            idle_timeout: Duration::from_millis(http.idle_timeout_ms),
            allowed_hosts: http
                .allowed_hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .collect(),
        })
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.is_tls() {
            "https"
        } else {
            "http"
        }
    }
}

/// A TLS acceptor from PEM files (certificate chain and private key).
pub fn tls_acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading http.tls_cert {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing http.tls_cert {}", cert.display()))?;
    if certs.is_empty() {
        return Err(anyhow!(
            "http.tls_cert {}: no certificate in it",
            cert.display()
        ));
    }
    // The key's parse error is not shown: it could quote key material.
    let key = PrivateKeyDer::from_pem_file(key).map_err(|_| {
        anyhow!(
            "http.tls_key {}: no readable PEM private key",
            key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("http.tls_cert and http.tls_key do not form a usable certificate")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Any connection's byte stream.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A connection that fails with `TimedOut` once no byte went either way for `timeout`.
pub struct IdleIo {
    inner: Box<dyn Io>,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl IdleIo {
    fn new(inner: Box<dyn Io>, timeout: Duration) -> IdleIo {
        IdleIo {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    fn touched(&mut self) {
        let next = Instant::now() + self.timeout;
        self.deadline.as_mut().reset(next);
    }

    fn expired(&mut self, cx: &mut TaskContext<'_>) -> bool {
        self.deadline.as_mut().poll(cx).is_ready()
    }
}

use std::future::Future;

impl AsyncRead for IdleIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.touched();
                Poll::Ready(r)
            }
            Poll::Pending if this.expired(cx) => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "idle")))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for IdleIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                this.touched();
                Poll::Ready(r)
            }
            Poll::Pending if this.expired(cx) => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "idle")))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Accepted connections, TLS already negotiated: an accept task hands them over so a slow handshake never
/// holds up the next client.
pub struct Accepted {
    rx: mpsc::Receiver<(IdleIo, SocketAddr)>,
    local: SocketAddr,
}

impl Listener for Accepted {
    type Io = IdleIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (IdleIo, SocketAddr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept task ended (shutdown): nothing more comes.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// The client's address, for handlers (`ConnectInfo<Peer>`).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, Accepted>> for Peer {
    fn connect_info(stream: IncomingStream<'_, Accepted>) -> Self {
        Peer(*stream.remote_addr())
    }
}

fn accept_loop(listener: TcpListener, serving: &Serving, stop: Shutdown) -> Accepted {
    let local = listener
        .local_addr()
        .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
    let (tx, rx) = mpsc::channel(64);
    let (tls, idle) = (serving.tls.clone(), serving.idle_timeout);
    tokio::spawn(async move {
        loop {
            let (tcp, peer): (TcpStream, SocketAddr) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        debug!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stop.triggered() => return,
            };
            let _ = tcp.set_nodelay(true);
            let tx = tx.clone();
            match &tls {
                None => {
                    if tx
                        .send((IdleIo::new(Box::new(tcp), idle), peer))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        match tokio::time::timeout(idle, acceptor.accept(tcp)).await {
                            Ok(Ok(s)) => {
                                let _ = tx.send((IdleIo::new(Box::new(s), idle), peer)).await;
                            }
                            Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                            Err(_) => debug!(%peer, "TLS handshake timed out"),
                        }
                    });
                }
            }
        }
    });
    Accepted { rx, local }
}

/// The host names a listener bound to `addr` accepts: its own address (unless unspecified), the loopback
/// names, and the configured ones.
pub fn allowed_hosts(addr: SocketAddr, extra: &[String]) -> Arc<Vec<String>> {
    let mut v: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if !addr.ip().is_unspecified() {
        v.push(addr.ip().to_string());
    }
    v.extend(extra.iter().cloned());
    Arc::new(v)
}

/// The host name of a `Host` header value, lower case, without port or IPv6 brackets.
fn host_name(value: &str) -> Option<String> {
    let v = value.trim();
    let name = if let Some(rest) = v.strip_prefix('[') {
        rest.split_once(']')?.0
    } else {
        match v.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => v,
        }
    };
    (!name.is_empty()).then(|| name.to_ascii_lowercase())
}

async fn check_host(State(allowed): State<Arc<Vec<String>>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .and_then(host_name);
    match host {
        None => (StatusCode::BAD_REQUEST, "a Host header is required\n").into_response(),
        Some(h) if allowed.contains(&h) => next.run(req).await,
        Some(h) => {
            // Parsing the name as an address handles spellings such as 127.000.000.001 uniformly.
            if let Ok(ip) = h.parse::<IpAddr>() {
                if allowed.iter().any(|a| a.parse::<IpAddr>().ok() == Some(ip)) {
                    return next.run(req).await;
                }
            }
            (
                StatusCode::MISDIRECTED_REQUEST,
                "this host name is not served here (http.allowed_hosts)\n",
            )
                .into_response()
        }
    }
}

async fn request_timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "request timed out\n").into_response(),
    }
}

/// The router with the `Host` check and the request timeout around every route.
pub fn harden(app: Router, local: SocketAddr, serving: &Serving) -> Router {
    app.layer(middleware::from_fn_with_state(
        serving.request_timeout,
        request_timeout,
    ))
    .layer(middleware::from_fn_with_state(
        allowed_hosts(local, &serving.allowed_hosts),
        check_host,
    ))
}

/// Serves `app` on `listener` until `stop`: hardened, with TLS when configured, the client address
/// available as `ConnectInfo<Peer>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    serving: Serving,
    stop: Shutdown,
) -> anyhow::Result<()> {
    let local = listener.local_addr()?;
    let app = harden(app, local, &serving);
    let accepted = accept_loop(listener, &serving, stop.clone());
    if serving.is_tls() {
        debug!(%local, "serving HTTPS");
    }
    axum::serve(accepted, app.into_make_service_with_connect_info::<Peer>())
        .with_graceful_shutdown(async move { stop.triggered().await })
        .await
        .map_err(|e| {
            warn!(%local, error = %e, "server failed");
            anyhow!("serving {local}: {e}")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_lose_port_and_brackets() {
        assert_eq!(host_name("LocalHost:8080").as_deref(), Some("localhost"));
        assert_eq!(host_name("[::1]:9464").as_deref(), Some("::1"));
        assert_eq!(host_name("127.0.0.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(
            host_name("evil.example:80").as_deref(),
            Some("evil.example")
        );
        assert_eq!(host_name(""), None);
    }
}
