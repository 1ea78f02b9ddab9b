//! The officers' listener: every route that shows decisions (the console `/`, `/feed`, `/decisions/{id}`,
//! `/api/stats`, and any route added to [`crate::service::feed::router`]) sits behind one authentication
//! layer that accepts either `Authorization: Bearer <token>` (API clients) or a console session cookie, and
//! needs a role that may read decisions (officer). Every authenticated read is written to the access log:
//! the tracing target `borderlane::access`, one event per request with the reader's token name (never the
//! secret), role, method and path with its query.
//!
//! The console logs in once: `GET /login` is a small form; `POST /login` exchanges the token for a session
//! cookie (`HttpOnly`, `SameSite=Strict`, `Secure` under TLS, `Max-Age` = `officers.session_ttl_secs`),
//! HMAC-SHA256-signed with `officers.session_key` so that every instance sharing the key accepts it. The
//! cookie names the token, its role, the tokens file's epoch (a changed file ends every session), the
//! expiry, and a random session id that `POST /logout` revokes on this instance. Failed logins are limited
//! per client address and globally per minute (429).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;
use tracing::{info, warn};

use crate::service::admin::auth::{
    bearer, from_hex, generate_secret, hex, Permission, Role, TokenStore,
};
use crate::service::feed::Feed;
use crate::service::server::Peer;

/// The session cookie's name.
pub const COOKIE: &str = "borderlane_session";

/// The access log's tracing target.
pub const ACCESS_TARGET: &str = "borderlane::access";

/// The login page.
pub const LOGIN_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>borderlane — officers' login</title>
<style>body{margin:0;background:#0e1116;color:#e6edf3;font:16px/1.4 system-ui,sans-serif;display:grid;place-items:center;height:100vh}
form{background:#161b22;border:1px solid #30363d;border-radius:8px;padding:24px;display:grid;gap:12px;min-width:320px}
input,button{background:#0b0e13;color:#e6edf3;border:1px solid #30363d;border-radius:4px;font-size:16px;padding:6px 8px}
button:focus,input:focus{outline:3px solid #58a6ff}.err{color:#f85149}</style></head>
<body><form method="post" action="/login"><h1>borderlane</h1><!--MESSAGE-->
<label for="token">Officer token</label><input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button></form>
<script>
// A login link (`/login#token=…`, printed by `demo`) fills and sends the form; the fragment never reaches
// the server or its logs, and is removed from the address bar at once.
const t = new URLSearchParams(location.hash.slice(1)).get("token");
if (t) { history.replaceState(null, "", "/login"); document.getElementById("token").value = t; document.forms[0].submit(); }
</script></body></html>"#;

fn login_page(status: StatusCode, message: Option<&str>) -> Response {
    let html = match message {
        Some(m) => LOGIN_HTML.replace("<!--MESSAGE-->", &format!("<p class=\"err\">{m}</p>")),
        None => LOGIN_HTML.to_string(),
    };
    (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

/// What a session cookie asserts, signed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Claims {
    /// Token name.
    n: String,
    /// Role.
    r: String,
    /// Tokens epoch.
    e: String,
    /// Expiry, Unix seconds.
    x: u64,
    /// Session id (revocation on logout).
    s: String,
}

/// Signs and checks session cookies.
pub struct Sessions {
    key: Vec<u8>,
    ttl: Duration,
    /// Revoked session ids with their expiry, pruned as they expire.
    revoked: Mutex<HashMap<String, u64>>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Sessions {
    /// With the configured key, or a generated one (then sessions end with the process and are valid on
    /// this instance only; a warning says so).
    pub fn new(key: Option<&str>, ttl: Duration) -> Sessions {
        let key = match key {
            Some(k) => k.as_bytes().to_vec(),
            None => {
                warn!(
                    "no officers.session_key: sessions are signed with a key generated for this process; \
                     they end when it restarts and are not accepted by other instances"
                );
                generate_secret().into_bytes()
            }
        };
        Sessions {
            key,
            ttl,
            revoked: Mutex::default(),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }

    fn sign(&self, c: &Claims) -> String {
        let payload = hex(&serde_json::to_vec(c).expect("claims serialise"));
        let mut m = self.mac();
        m.update(payload.as_bytes());
        format!("v1.{payload}.{}", hex(&m.finalize().into_bytes()))
    }

    /// A new session for token `name` with `role` under tokens `epoch`: the cookie value.
    pub fn issue(&self, name: &str, role: Role, epoch: &str) -> String {
        self.issue_until(name, role, epoch, now_secs() + self.ttl.as_secs())
    }

    /// As [`Sessions::issue`], expiring at `expires` (Unix seconds).
    pub fn issue_until(&self, name: &str, role: Role, epoch: &str, expires: u64) -> String {
        self.sign(&Claims {
            n: name.into(),
            r: role.as_str().into(),
            e: epoch.into(),
            x: expires,
            s: generate_secret(),
        })
    }

    /// The claims of a genuine, unexpired, unrevoked cookie value.
    fn verify(&self, value: &str) -> Option<Claims> {
        let rest = value.strip_prefix("v1.")?;
        let (payload, sig) = rest.split_once('.')?;
        let mut m = self.mac();
        m.update(payload.as_bytes());
        m.verify_slice(&from_hex(sig)?).ok()?;
        let c: Claims = serde_json::from_slice(&from_hex(payload)?).ok()?;
        if c.x <= now_secs() {
            return None;
        }
        let revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        (!revoked.contains_key(&c.s)).then_some(c)
    }

    fn revoke(&self, c: &Claims) {
        let now = now_secs();
        let mut r = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        r.retain(|_, x| *x > now);
        r.insert(c.s.clone(), c.x);
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

/// Fixed one-minute windows of failed logins, per client address and over all clients.
pub struct LoginLimiter {
    per_client: u32,
    global: u32,
    state: Mutex<LimiterState>,
}

struct LimiterState {
    window: Instant,
    total: u32,
    /// At most `global` entries: only failures insert.
    by_client: HashMap<IpAddr, u32>,
}

const WINDOW: Duration = Duration::from_secs(60);

impl LoginLimiter {
    pub fn new(per_client: u32, global: u32) -> LoginLimiter {
        LoginLimiter {
            per_client,
            global,
            state: Mutex::new(LimiterState {
                window: Instant::now(),
                total: 0,
                by_client: HashMap::new(),
            }),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut LimiterState) -> T) -> T {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.window.elapsed() >= WINDOW {
            s.window = Instant::now();
            s.total = 0;
            s.by_client.clear();
        }
        f(&mut s)
    }

    /// Whether `ip` may try now (false: 429).
    pub fn allowed(&self, ip: IpAddr) -> bool {
        self.with(|s| {
            s.total < self.global && s.by_client.get(&ip).copied().unwrap_or(0) < self.per_client
        })
    }

    pub fn failed(&self, ip: IpAddr) {
        self.with(|s| {
            s.total = s.total.saturating_add(1);
            *s.by_client.entry(ip).or_default() += 1;
        })
    }
}

/// Everything the officers' routes share.
#[derive(Clone)]
pub struct OfficersState {
    pub feed: Arc<Feed>,
    pub tokens: Arc<TokenStore>,
    pub sessions: Arc<Sessions>,
    pub limiter: Arc<LoginLimiter>,
    /// Set `Secure` on the cookie (the listener speaks TLS).
    pub secure: bool,
    /// `POST /outcomes` (behind the same authentication; the officer role records).
    pub outcomes: Option<crate::service::outcomes::OutcomeApi>,
}

/// Who is reading, as the handlers and the access log see it.
#[derive(Debug, Clone)]
pub struct Reader {
    pub name: String,
    pub role: Role,
    /// `bearer` or `session`.
    pub via: &'static str,
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

enum Auth {
    Ok(Reader),
    Unauthenticated,
    Forbidden(String, Role),
}

fn authenticate(s: &OfficersState, headers: &HeaderMap) -> Auth {
    let tokens = s.tokens.current();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Some(secret) = bearer(authorization) {
        return match tokens.find(secret) {
            None => Auth::Unauthenticated,
            Some(t) if t.role.allows(Permission::ReadDecisions) => Auth::Ok(Reader {
                name: t.name.clone(),
                role: t.role,
                via: "bearer",
            }),
            Some(t) => Auth::Forbidden(t.name.clone(), t.role),
        };
    }
    let Some(claims) = cookie(headers, COOKIE).and_then(|v| s.sessions.verify(v)) else {
        return Auth::Unauthenticated;
    };
    // The session holds only while the tokens are those it was issued under and its token still exists
    // with a role that may read decisions.
    match tokens.named(&claims.n) {
        Some(t)
            if claims.e == tokens.epoch()
                && t.role.as_str() == claims.r
                && t.role.allows(Permission::ReadDecisions) =>
        {
            Auth::Ok(Reader {
                name: t.name.clone(),
                role: t.role,
                via: "session",
            })
        }
        _ => Auth::Unauthenticated,
    }
}

/// The authentication layer of every decision-showing route, and the access log.
async fn require_officer(State(s): State<OfficersState>, mut req: Request, next: Next) -> Response {
    match authenticate(&s, req.headers()) {
        Auth::Ok(reader) => {
            info!(
                target: ACCESS_TARGET,
                reader = %reader.name,
                role = reader.role.as_str(),
                via = reader.via,
                method = %req.method(),
                path = %req.uri().path(),
                query = req.uri().query().unwrap_or(""),
                "decisions read"
            );
            req.extensions_mut().insert(reader);
            next.run(req).await
        }
        Auth::Unauthenticated if req.uri().path() == "/" => {
            login_page(StatusCode::UNAUTHORIZED, None)
        }
        Auth::Unauthenticated => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(
                json!({"error": "log in at /login or send a bearer token that may read decisions"}),
            ),
        )
            .into_response(),
        Auth::Forbidden(name, role) => {
            warn!(target: ACCESS_TARGET, reader = %name, role = role.as_str(), path = %req.uri().path(), "decisions read refused");
            (
                StatusCode::FORBIDDEN,
                Json(json!({"error": format!(
                    "token {name:?} has the {} role, which may not read decisions", role.as_str()
                )})),
            )
                .into_response()
        }
    }
}

/// Refuses a cross-site form post: an `Origin` header, when sent, must name the host the request is for.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host))
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login_form() -> Response {
    login_page(StatusCode::OK, None)
}

fn set_cookie(s: &OfficersState, value: &str, max_age: u64) -> HeaderValue {
    let secure = if s.secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("cookie values are hex and ASCII")
}

async fn login(
    State(s): State<OfficersState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-site login refused\n").into_response();
    }
    let ip = peer.ip();
    if !s.limiter.allowed(ip) {
        warn!(target: ACCESS_TARGET, client = %ip, "login rate limited");
        let mut r = login_page(
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many failed logins; wait a minute."),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return r;
    }
    let tokens = s.tokens.current();
    match tokens.find(form.token.trim()) {
        Some(t) if t.role.allows(Permission::ReadDecisions) => {
            let value = s.sessions.issue(&t.name, t.role, tokens.epoch());
            info!(target: ACCESS_TARGET, reader = %t.name, client = %ip, "console login");
            (
                StatusCode::SEE_OTHER,
                [
                    (
                        header::SET_COOKIE,
                        set_cookie(&s, &value, s.sessions.ttl().as_secs()),
                    ),
                    (header::LOCATION, HeaderValue::from_static("/")),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
            )
                .into_response()
        }
        Some(t) => {
            warn!(target: ACCESS_TARGET, reader = %t.name, client = %ip, "console login refused: role may not read decisions");
            login_page(
                StatusCode::FORBIDDEN,
                Some("This token's role may not read decisions."),
            )
        }
        None => {
            s.limiter.failed(ip);
            warn!(target: ACCESS_TARGET, client = %ip, "console login failed");
            login_page(StatusCode::UNAUTHORIZED, Some("Unknown token."))
        }
    }
}

async fn logout(State(s): State<OfficersState>, headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-site logout refused\n").into_response();
    }
    if let Some(c) = cookie(&headers, COOKIE).and_then(|v| s.sessions.verify(v)) {
        info!(target: ACCESS_TARGET, reader = %c.n, "console logout");
        s.sessions.revoke(&c);
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, set_cookie(&s, "", 0)),
            (header::LOCATION, HeaderValue::from_static("/login")),
        ],
    )
        .into_response()
}

/// Login form bodies are tiny.
const LOGIN_BODY: usize = 4 * 1024;

/// The officers' listener: `/login`, `/logout`, and the feed's routes behind authentication.
pub fn router(state: OfficersState) -> Router {
    let mut routes = crate::service::feed::router(state.feed.clone());
    if let Some(api) = &state.outcomes {
        routes = routes.merge(crate::service::outcomes::router(api.clone()));
    }
    let protected = routes.route_layer(middleware::from_fn_with_state(
        state.clone(),
        require_officer,
    ));
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .layer(DefaultBodyLimit::max(LOGIN_BODY))
        .with_state(state)
        .merge(protected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_signed_expire_and_revoke() {
        let s = Sessions::new(Some("k".repeat(32).as_str()), Duration::from_secs(60));
        let v = s.issue("alice", Role::Officer, "e1");
        let c = s.verify(&v).unwrap();
        assert_eq!(
            (c.n.as_str(), c.r.as_str(), c.e.as_str()),
            ("alice", "officer", "e1")
        );
        // Another key (another deployment) does not accept it; a tampered payload fails the MAC.
        let other = Sessions::new(Some("o".repeat(32).as_str()), Duration::from_secs(60));
        assert!(other.verify(&v).is_none());
        let forged = v.replacen("v1.7b", "v1.7c", 1);
        assert!(s.verify(&forged).is_none());
        // The same key (another instance) does.
        let twin = Sessions::new(Some("k".repeat(32).as_str()), Duration::from_secs(60));
        assert!(twin.verify(&v).is_some());
        assert!(s
            .verify(&s.issue_until("alice", Role::Officer, "e1", now_secs() - 1))
            .is_none());
        s.revoke(&c);
        assert!(s.verify(&v).is_none());
    }

    #[test]
    fn the_limiter_counts_per_client_and_globally() {
        let l = LoginLimiter::new(2, 3);
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            "10.0.0.3".parse().unwrap(),
        );
        l.failed(a);
        assert!(l.allowed(a));
        l.failed(a);
        assert!(!l.allowed(a) && l.allowed(b));
        l.failed(b);
        assert!(!l.allowed(c), "the global budget is spent");
    }
}
