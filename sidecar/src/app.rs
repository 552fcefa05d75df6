//! The HTTP edge: shared state, the route table, middleware and extractors.
//! Every route the sidecar serves is listed in `router` (and in SECURITY.md).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use shared::{limits, ContainerRef, Outcome, ACTOR_HEADER, REQUEST_ID_HEADER};
use tokio::sync::Semaphore;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::audit::{AuditLog, Caller, Draft};
use crate::auth::SecretStore;
use crate::docker::Engine;
use crate::error::{ApiError, ErrorMessage};
use crate::events::EventHub;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimits;
use crate::stats::StatsCache;
use crate::verbs;

/// Settings the handlers read.
#[derive(Debug, Clone)]
pub struct Settings {
    pub log_follow_max: Duration,
    pub pull_registries: Vec<String>,
}

pub struct AppState {
    pub engine: Arc<Engine>,
    pub stats: Arc<StatsCache>,
    pub events: EventHub,
    pub audit: AuditLog,
    pub secrets: SecretStore,
    pub limits: RateLimits,
    pub metrics: Arc<Metrics>,
    pub disk: verbs::disk::DiskCache,
    /// Bounds concurrent streaming responses (log follow, events, pull).
    pub streams: Arc<Semaphore>,
    pub settings: Settings,
}

pub type App = Arc<AppState>;

/// The route table. `healthz` is the only route without authentication;
/// unknown routes and methods get JSON 404/405 (audited like any refusal).
pub fn router(app: App) -> Router {
    // Layers run outermost last-added: request id → trace → metrics → auth → denial audit → read limit → body check.
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/containers", get(verbs::containers::list))
        .route("/v1/containers/{ref}", get(verbs::containers::inspect))
        .route("/v1/containers/{ref}/logs", get(verbs::logs::logs))
        .route("/v1/containers/{ref}/restart", post(verbs::restart::restart))
        .route("/v1/stats", get(verbs::stats::snapshot))
        .route("/v1/stats/history", get(verbs::stats::history))
        .route("/v1/events", get(verbs::events::events))
        .route("/v1/disk", get(verbs::disk::disk))
        .route("/v1/audit", get(verbs::audit::audit))
        .route("/v1/audit/verify", get(verbs::audit::verify))
        .route("/v1/prune/{kind}", post(verbs::prune::prune))
        .route("/v1/images/pull", post(verbs::pull::pull))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn(refuse_unexpected_body))
        .layer(middleware::from_fn_with_state(app.clone(), read_limit))
        .layer(middleware::from_fn_with_state(app.clone(), audit_denials))
        .layer(middleware::from_fn_with_state(app.clone(), authenticate))
        .layer(middleware::from_fn_with_state(app.clone(), count_requests))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req.extensions().get::<RequestId>().map(|r| r.0.as_str()).unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::DEBUG)),
        )
        .layer(middleware::from_fn(request_id))
        .with_state(app)
}

/// The verb label of a route, for metrics and generic audit records.
fn verb_of(method: &Method, route: &str) -> &'static str {
    match (method.as_str(), route) {
        ("HEAD", route) => verb_of(&Method::GET, route),
        ("GET", "/v1/containers") => "list_containers",
        ("GET", "/v1/containers/{ref}") => "inspect_container",
        ("GET", "/v1/containers/{ref}/logs") => "logs",
        ("POST", "/v1/containers/{ref}/restart") => "restart",
        ("GET", "/v1/stats") => "stats",
        ("GET", "/v1/stats/history") => "stats_history",
        ("GET", "/v1/events") => "events",
        ("GET", "/v1/disk") => "disk",
        ("GET", "/v1/audit") => "audit",
        ("GET", "/v1/audit/verify") => "audit_verify",
        ("POST", "/v1/prune/{kind}") => "prune",
        ("POST", "/v1/images/pull") => "pull",
        ("GET", "/metrics") => "metrics",
        ("GET", "/healthz") => "healthz",
        _ => "unknown",
    }
}

async fn healthz(State(app): State<App>) -> Response {
    if app.engine.is_up() {
        Json(serde_json::json!({"status": "ok"})).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"status": "degraded"}))).into_response()
    }
}

async fn metrics(State(app): State<App>, NoQuery: NoQuery) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], app.metrics.render()).into_response()
}

/// The request id: the caller's `X-Request-Id` when it is short and plain, else a new UUID.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    resp
}

async fn count_requests(State(app): State<App>, req: Request, next: Next) -> Response {
    let verb = verb_of(req.method(), req.extensions().get::<MatchedPath>().map_or("", |m| m.as_str()));
    let resp = next.run(req).await;
    app.metrics
        .requests
        .get_or_create(&vec![("verb", verb.to_owned()), ("status", resp.status().as_u16().to_string())])
        .inc();
    resp
}

/// Only `pull` takes a body; every other verb refuses one.
async fn refuse_unexpected_body(req: Request, next: Next) -> Response {
    let takes_body = req.method() == Method::POST && req.uri().path() == "/v1/images/pull";
    let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0");
    if has_body && !takes_body {
        return ApiError::BadRequest("this verb takes no request body".into()).into_response();
    }
    next.run(req).await
}

/// Marks a response whose handler wrote its own audit record.
#[derive(Debug, Clone, Copy)]
pub struct Audited;

fn caller_base(req: &Request) -> Caller {
    Caller {
        request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default(),
        client: "anonymous".into(),
        actor: req
            .headers()
            .get(ACTOR_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().filter(|c| !c.is_control()).take(128).collect::<String>())
            .filter(|s| !s.is_empty()),
    }
}

/// Checks `Authorization: Bearer …` against the configured secrets in
/// constant time. Failures are audited and throttled per remote address.
async fn authenticate(State(app): State<App>, mut req: Request, next: Next) -> Response {
    if req.uri().path() == "/healthz" {
        return next.run(req).await;
    }
    let mut caller = caller_base(&req);
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    // An address over its failure budget is refused before any secret is
    // compared, and unaudited (one record said so when it was blocked).
    if let Some(p) = peer {
        if let Some(retry) = app.limits.auth_blocked(p.ip()) {
            app.metrics.auth_refused_blocked.inc();
            let mut resp = ApiError::RateLimited { retry_after_secs: retry }.into_response();
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return resp;
        }
    }
    // A miss re-reads changed secret files first: a client that already uses
    // a rotated-in secret is accepted at once.
    let matched = token.and_then(|t| {
        app.secrets
            .check(t.as_bytes())
            .or_else(|| app.secrets.refresh().then(|| app.secrets.check(t.as_bytes())).flatten())
    });
    if let Some(key) = matched {
        caller.client = key;
        req.extensions_mut().insert(caller);
        return next.run(req).await;
    }
    let limited = peer.map(|p| app.limits.auth_failure.check(&p.ip()));
    if let (Some(p), Some(Err(ApiError::RateLimited { retry_after_secs }))) = (peer, &limited) {
        app.limits.block_auth(p.ip(), *retry_after_secs);
    }
    let mut d = Draft::new(&caller, "auth");
    d.target(req.uri().path().chars().take(256).collect::<String>(), None);
    if let Some(p) = peer {
        d.param("remote", p.ip());
    }
    d.param("reason", if token.is_some() { "wrong secret" } else { "no bearer token" });
    let err = match limited {
        Some(Err(e)) => e,
        _ => ApiError::Unauthorized,
    };
    if let Err(e) = app.audit.commit(d, Outcome::Denied, Some(err.to_string())).await {
        return ApiError::from(e).into_response();
    }
    let mut resp = err.into_response();
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

/// Audits every refusal a handler did not audit itself (invalid input,
/// unknown parameters, rate limits on reads, missing containers).
async fn audit_denials(State(app): State<App>, req: Request, next: Next) -> Response {
    let caller = req.extensions().get::<Caller>().cloned();
    let verb = verb_of(req.method(), req.extensions().get::<MatchedPath>().map_or("", |m| m.as_str()));
    let target = req.uri().path().chars().take(256).collect::<String>();
    let query = req.uri().query().map(|q| q.chars().take(512).collect::<String>());
    let resp = next.run(req).await;
    let status = resp.status();
    if status.is_client_error() && resp.extensions().get::<Audited>().is_none() {
        if let Some(caller) = caller {
            let mut d = Draft::new(&caller, verb);
            d.target(target, None);
            if let Some(q) = query {
                d.param("query", q);
            }
            let msg = resp.extensions().get::<ErrorMessage>().map(|m| m.0.clone());
            if let Err(e) = app.audit.commit(d, Outcome::Denied, msg).await {
                return ApiError::from(e).into_response();
            }
        }
    }
    resp
}

/// Every method but POST is a read (GET routes answer HEAD too).
async fn read_limit(State(app): State<App>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        if let Some(c) = req.extensions().get::<Caller>() {
            if let Err(e) = app.limits.read.check(&c.client) {
                return e.into_response();
            }
        }
    }
    next.run(req).await
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or(ApiError::Unauthorized)
    }
}

/// Query parameters into a `deny_unknown_fields` struct: unknown, repeated or
/// malformed parameters are refused with 400.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        if q.len() > 4096 {
            return Err(ApiError::BadRequest("query string too long".into()));
        }
        serde_urlencoded::from_str(q).map(Query).map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))
    }
}

/// For verbs that take no parameters at all.
pub struct NoQuery;

impl<S: Send + Sync> FromRequestParts<S> for NoQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.uri.query() {
            None | Some("") => Ok(NoQuery),
            Some(_) => Err(ApiError::BadRequest("this verb takes no query parameters".into())),
        }
    }
}

/// The `{ref}` path segment, validated as a container reference.
pub struct RefPath(pub ContainerRef);

impl<S: Send + Sync> FromRequestParts<S> for RefPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        Ok(RefPath(ContainerRef::parse(&raw)?))
    }
}

/// A JSON body of at most `limits::BODY_MAX_BYTES`, with unknown fields refused by `T`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request<Body>, _: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json {
            return Err(ApiError::BadRequest("expected Content-Type: application/json".into()));
        }
        let bytes = axum::body::to_bytes(req.into_body(), limits::BODY_MAX_BYTES)
            .await
            .map_err(|_| ApiError::PayloadTooLarge(limits::BODY_MAX_BYTES))?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}

/// `2026-11-24T10:00:00Z` or unix seconds → unix seconds.
pub fn parse_time(field: &'static str, s: &str) -> Result<i64, ApiError> {
    if let Ok(n) = s.parse::<i64>() {
        if (0..=253_402_300_799).contains(&n) {
            return Ok(n);
        }
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| ApiError::BadRequest(format!("{field} must be unix seconds or an RFC 3339 time")))
}
