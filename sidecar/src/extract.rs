//! Extractors that turn a request's parts into validated input, or a 400
//! (JSON error, audited by the denial middleware) when they cannot.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use shared::{limits, ContainerRef};

use crate::audit::Caller;
use crate::error::ApiError;

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
