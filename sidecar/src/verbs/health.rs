//! `GET /healthz` (no auth: the engine probe's state) and `GET /metrics`.

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
        (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"status": "degraded"}))).into_response()
    }
}

pub async fn metrics(State(app): State<App>, NoQuery: NoQuery) -> Response {
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], app.metrics.render()).into_response()
}
