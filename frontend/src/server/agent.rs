//! The console's agent port (`DOCKWARD_AGENT_LISTEN`, 7443): HTTPS with the
//! console's own identity, whose fingerprint the join command carries, so a
//! joining sidecar sends its token to this console and nothing else. It
//! serves `POST /enrol` only: a token and a fingerprint in, the host's
//! secret out, once; and `GET /tunnel`, where outbound agents dial in
//! (`tunnel`). Enrolment is unauthenticated by nature (the token is the
//! credential), so it is small: a 4 KiB body, JSON in and out, ten tries a
//! minute per address and 120 in all, every refusal audited by the enrolment store.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use shared::EnrolRequest;

use super::enrol::{EnrolError, Enrolment};
use super::tunnel::Tunnels;

/// Largest enrolment request.
const BODY_MAX: usize = 4096;

/// What the agent port needs.
pub struct Agent {
    pub enrolment: Enrolment,
    /// Woken when a host is enrolled: the fleet is rebuilt with it.
    pub changed: Arc<tokio::sync::Notify>,
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// All addresses together: many addresses cannot flood the audit log either.
    all: governor::DefaultDirectRateLimiter,
    /// Where outbound agents' tunnels are kept.
    tunnels: Arc<Tunnels>,
    /// Refused tunnels, per address; past ten a minute the address is
    /// refused unread for a minute (`blocked`).
    tunnel_refusals: DefaultKeyedRateLimiter<IpAddr>,
    blocked: std::sync::Mutex<std::collections::HashMap<IpAddr, std::time::Instant>>,
}

impl Agent {
    pub fn new(enrolment: Enrolment, changed: Arc<tokio::sync::Notify>, tunnels: Arc<Tunnels>) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN));
        let all = Quota::per_minute(NonZeroU32::new(120).unwrap_or(NonZeroU32::MIN));
        Self {
            enrolment,
            changed,
            limiter: RateLimiter::keyed(quota),
            all: RateLimiter::direct(all),
            tunnels,
            tunnel_refusals: RateLimiter::keyed(quota),
            blocked: Default::default(),
        }
    }
}

fn error(status: u16, code: &str, message: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(serde_json::json!({ "error": { "code": code, "message": message } }))).into_response()
}

impl From<EnrolError> for Response {
    fn from(e: EnrolError) -> Self {
        let code = match e.status() {
            400 => "bad_request",
            401 => "unauthorized",
            409 => "ambiguous",
            _ => "internal",
        };
        if matches!(e, EnrolError::Store { .. }) {
            tracing::error!(error = %e, "enrolment failed");
            return error(500, code, "the console could not record the enrolment; see its log".into());
        }
        error(e.status(), code, e.to_string())
    }
}

async fn enrol(
    State(agent): State<Arc<Agent>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: axum::body::Bytes,
) -> Response {
    if agent.limiter.len() > 10_000 {
        agent.limiter.retain_recent();
    }
    if agent.limiter.check_key(&peer.ip()).is_err() || agent.all.check().is_err() {
        return error(429, "rate_limited", "too many enrolment attempts; wait a minute".into());
    }
    let req: EnrolRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(400, "bad_request", format!("not an enrolment request: {e}")),
    };
    let a = agent.clone();
    let peer = peer.ip().to_string();
    // File work and fsyncs: off the async threads.
    let done = tokio::task::spawn_blocking(move || a.enrolment.redeem(&req.token, &req.fingerprint, &peer)).await;
    match done {
        Ok(Ok((host, answer))) => {
            tracing::info!(host = %host.name, fingerprint = %host.fingerprint, "a host enrolled");
            agent.changed.notify_one();
            Json(answer).into_response()
        }
        Ok(Err(e)) => e.into(),
        Err(e) => error(500, "internal", format!("enrolment task failed: {e}")),
    }
}

/// `GET /tunnel`: an outbound agent dials in (see `tunnel`). After ten
/// refusals in a minute an address is refused unread for a minute.
async fn tunnel(
    State(agent): State<Arc<Agent>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: axum::extract::Request,
) -> Response {
    let now = std::time::Instant::now();
    {
        let mut blocked = agent.blocked.lock().unwrap_or_else(|e| e.into_inner());
        if blocked.len() > 10_000 {
            blocked.retain(|_, until| *until > now);
        }
        if blocked.get(&peer.ip()).is_some_and(|until| *until > now) {
            return error(429, "rate_limited", "too many refused tunnels from this address; wait a minute".into());
        }
    }
    match super::tunnel::accept(&agent.tunnels, req, peer) {
        Ok(upgraded) => upgraded,
        Err(e) => {
            if agent.tunnel_refusals.len() > 10_000 {
                agent.tunnel_refusals.retain_recent();
            }
            if agent.tunnel_refusals.check_key(&peer.ip()).is_err() {
                let until = now + std::time::Duration::from_secs(60);
                agent.blocked.lock().unwrap_or_else(|e| e.into_inner()).insert(peer.ip(), until);
            }
            match &e {
                super::tunnel::TunnelError::Refused { host, known } => {
                    tracing::warn!(%peer, host = %host, known_host = known, "refused a tunnel: wrong host name or secret")
                }
                other => tracing::warn!(%peer, error = %other, "refused a tunnel"),
            }
            let code = if e.status() == 401 { "unauthorized" } else { "bad_request" };
            error(e.status(), code, e.to_string())
        }
    }
}

pub fn router(agent: Arc<Agent>) -> Router {
    Router::new()
        .route("/enrol", post(enrol))
        .route(shared::TUNNEL_PATH, get(tunnel))
        .layer(DefaultBodyLimit::max(BODY_MAX))
        .fallback(|| async { error(404, "not_found", "the agent port serves POST /enrol and GET /tunnel only".into()) })
        .with_state(agent)
}

/// Serves the agent port over TLS until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    identity: tls::Identity,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    agent: Arc<Agent>,
) {
    use axum::serve::ListenerExt;
    let reloading = Arc::new(tls::server::ReloadingIdentity::new(identity, cert, key));
    let config = Arc::new(tls::server::server_config(reloading));
    let listener = match tls::listener::TlsListener::new(listener, config) {
        Ok(l) => l.tap_io(|_| {}),
        Err(e) => {
            tracing::error!(error = %e, "the agent port cannot serve");
            return;
        }
    };
    let app = router(agent).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "the agent port stopped");
    }
}
