//! `GET /v1/disk`: volume sizes, their containers and protection, and the
//! image/container/build-cache totals, from the disk cache (`crate::disk`).

use axum::extract::State;
use axum::Json;
use shared::DiskReport;

use crate::error::ApiError;
use crate::extract::NoQuery;
use crate::state::App;

pub async fn disk(State(app): State<App>, NoQuery: NoQuery) -> Result<Json<DiskReport>, ApiError> {
    Ok(Json(app.disk.get(&app.engine, &app.metrics).await?))
}
