//! `GET /healthz` (no auth: the engine probe's state and, when down, the
//! kind of trouble) and `GET /metrics`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::extract::NoQuery;
use crate::state::App;

/// `GET /healthz`: 200 with `ok` while the engine answers its probe, 503
/// with `degraded` while it does not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct HealthReport {
    pub status: HealthStatus,
    /// While degraded: the kind of engine trouble (never its detail: this route is open).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<shared::EngineProblemKind>,
    /// This host's name, when the sidecar was given one (`DOCKWARD_NODE_NAME`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Where stats come from now, and why.
    pub stats: shared::StatsSourceReport,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
    Degraded,
}

pub async fn healthz(State(app): State<App>) -> Response {
    let node = app.settings.node_name.clone();
    let stats = app.stats.source_report();
    if app.engine.is_up() {
        Json(HealthReport { status: HealthStatus::Ok, engine: None, node, stats }).into_response()
    } else {
        // The kind of trouble only: the words and the fix go to authenticated callers (every 503).
        let engine = app.engine.problem().map(|p| p.kind);
        (StatusCode::SERVICE_UNAVAILABLE, Json(HealthReport { status: HealthStatus::Degraded, engine, node, stats }))
            .into_response()
    }
}

pub async fn metrics(State(app): State<App>, NoQuery: NoQuery) -> Response {
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], app.metrics.render()).into_response()
}
