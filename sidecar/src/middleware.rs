//! Middleware, outermost first: request id, (trace span), metrics,
//! authentication, denial audit, read rate limit, body refusal. Each reads
//! the verb table (`shared::api`) for what it needs to know about a route.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use shared::api::{RateClass, Verb, VerbSpec};
use shared::{Outcome, ACTOR_HEADER, REQUEST_ID_HEADER};

use crate::audit::{Caller, Draft};
use crate::error::{ApiError, ErrorMessage};
use crate::state::App;

/// The verb-table row of the route a request matched, if any.
fn spec_of(req: &Request) -> Option<&'static VerbSpec> {
    Verb::of_route(req.method().as_str(), req.extensions().get::<MatchedPath>()?.as_str())
}

/// The metrics and generic audit label of a request's route.
fn label_of(req: &Request) -> &'static str {
    spec_of(req).map_or(shared::audit::UNKNOWN_ROUTE_VERB, |s| s.name)
}

/// The request id: the caller's `X-Request-Id` when it is short and plain, else a new UUID.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub async fn request_id(mut req: Request, next: Next) -> Response {
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

pub async fn count_requests(State(app): State<App>, req: Request, next: Next) -> Response {
    let verb = label_of(&req);
    let resp = next.run(req).await;
    app.metrics
        .requests
        .get_or_create(&vec![("verb", verb.to_owned()), ("status", resp.status().as_u16().to_string())])
        .inc();
    resp
}

/// Only verbs whose row says `body` take one; every other request refuses one.
pub async fn refuse_unexpected_body(req: Request, next: Next) -> Response {
    let takes_body = spec_of(&req).is_some_and(|s| s.body);
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
pub async fn authenticate(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().map(|m| m.as_str());
    if shared::VERBS.iter().any(|s| !s.auth && Some(s.path) == matched) {
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
    let mut d = Draft::new(&caller, shared::audit::AUTH_VERB);
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
/// unknown parameters, rate limits, missing containers). Repeats are
/// summarised (`AuditLog::deny`): the first of a (verb, status, client key,
/// actor) in the window is recorded, the rest counted into one summary
/// record. The actor is the `X-Dockward-Actor` header, on reads as on mutations.
pub async fn audit_denials(State(app): State<App>, req: Request, next: Next) -> Response {
    let caller = req.extensions().get::<Caller>().cloned();
    let verb = label_of(&req);
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
            if let Err(e) = app.audit.deny(d, status.as_str(), msg).await {
                return ApiError::from(e).into_response();
            }
        }
    }
    resp
}

/// Spends the request's rate budget before any work (extraction,
/// validation, engine calls): a verb's class limiter, keyed by client key —
/// read verbs and unknown routes the read limit, restart the per-client
/// restart limit (the per-container one follows in the handler), prune and
/// pull theirs. A refusal is recorded through `audit_denials` (the first of
/// its kind in a window; repeats go into a `denied.summary`).
pub async fn rate_limit(State(app): State<App>, req: Request, next: Next) -> Response {
    let class = spec_of(&req).map_or(RateClass::Read, |s| s.rate);
    if let Some(c) = req.extensions().get::<Caller>() {
        let limits = &app.limits;
        let checked = match class {
            RateClass::None => Ok(()),
            RateClass::Read => limits.read.check(&c.client),
            RateClass::Restart => limits.restart_client.check(&c.client),
            RateClass::Prune => limits.prune.check(&c.client),
            RateClass::Pull => limits.pull.check(&c.client),
        };
        if let Err(e) = checked {
            return e.into_response();
        }
    }
    next.run(req).await
}
