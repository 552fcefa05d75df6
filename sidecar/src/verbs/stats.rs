//! `GET /v1/stats` (the cached snapshot) and `GET /v1/stats/history`.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use shared::{bounded, limits, ContainerRef, StatsHistory};
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::extract::{NoQuery, Query};
use crate::state::App;

/// Served from the refresher's latest round; never waits for the engine. A
/// request with `X-Dockward-Background` (the console's history) does not
/// count as demand. The
/// body is a [`shared::StatsSnapshot`], spliced from the round's serialised
/// samples. The round is its `ETag`: a client that sends it back in
/// `If-None-Match` gets `304 Not Modified` and no body until the next round.
pub async fn snapshot(State(app): State<App>, headers: HeaderMap, NoQuery: NoQuery) -> Response {
    // A console reading for its history is not a viewer: the window stays idle.
    if !headers.contains_key(shared::BACKGROUND_HEADER) {
        app.stats.demand();
    }
    let tag = app.stats.round_tag();
    let etag = [(header::ETAG, HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"-\"")))];
    if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == tag.as_bytes()) {
        return (StatusCode::NOT_MODIFIED, etag).into_response();
    }
    (etag, [(header::CONTENT_TYPE, "application/json")], axum::body::Body::new(app.stats.snapshot_parts()))
        .into_response()
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// The container: name, full id or unique id prefix.
    #[serde(rename = "ref")]
    reference: ContainerRef,
    /// Seconds of history, default 900, at most 3600.
    window: Option<u64>,
}

pub async fn history(State(app): State<App>, Query(q): Query<HistoryQuery>) -> Result<Json<StatsHistory>, ApiError> {
    let window = bounded("window", q.window.unwrap_or(limits::HISTORY_WINDOW_DEFAULT), 1, limits::HISTORY_WINDOW_MAX)?;
    let c = app.engine.resolve(&q.reference).await?;
    app.stats.demand();
    Ok(Json(app.stats.history(&c.id, Duration::from_secs(window))))
}
