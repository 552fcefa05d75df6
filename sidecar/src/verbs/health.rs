//! `GET /healthz` (no auth: the engine probe's state and, when down, the
//! kind of trouble) and `GET /metrics`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::extract::NoQuery;
use crate::state::App;

pub async fn healthz(State(app): State<App>) -> Response {
    if app.engine.is_up() {
        Json(serde_json::json!({"status": "ok"})).into_response()
    } else {
        // The kind of trouble only: the words and the fix go to authenticated callers (every 503).
        let engine = app.engine.problem().map(|p| p.kind);
        (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"status": "degraded", "engine": engine})))
            .into_response()
    }
}

pub async fn metrics(State(app): State<App>, NoQuery: NoQuery) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], app.metrics.render()).into_response()
}
