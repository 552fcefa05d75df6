//! `GET /v1/containers` and `GET /v1/containers/{ref}`.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use futures_util::StreamExt;
use shared::{ContainerDetail, ContainerSummary};

use crate::app::{App, NoQuery, RefPath};
use crate::docker::convert;
use crate::error::ApiError;

/// Every container in scope, running and stopped, with its latest stats sample.
pub async fn list(State(app): State<App>, NoQuery: NoQuery) -> Result<Json<Vec<ContainerSummary>>, ApiError> {
    let rows = app.engine.list(true, &[]).await?;
    let app2 = app.clone();
    let mut out: Vec<ContainerSummary> = futures_util::stream::iter(rows)
        .map(|row| {
            let app = app2.clone();
            async move {
                let id = row.id.clone()?;
                let mut ins = app.engine.inspect(&id).await.ok()?;
                // The cache is dropped on events; a changed state means we missed one.
                let listed = row.state.map(|s| s.to_string());
                let cached = ins.state.as_ref().and_then(|s| s.status).map(|s| s.to_string());
                if listed.is_some() && listed != cached {
                    app.engine.invalidate(&id).await;
                    ins = app.engine.inspect(&id).await.ok()?;
                }
                Some(convert::summary(&row, &ins, &app.engine.policy, app.stats.sample(&id)))
            }
        })
        .buffer_unordered(16)
        .filter_map(|x| async move { x })
        .collect()
        .await;
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(out))
}

/// One container in detail; its environment is masked here.
pub async fn inspect(
    State(app): State<App>,
    RefPath(r): RefPath,
    NoQuery: NoQuery,
) -> Result<Json<ContainerDetail>, ApiError> {
    let c = app.engine.resolve(&r).await?;
    let ins = Arc::new(app.engine.inspect_uncached(&c.id).await?);
    let summary = convert::summary(&c.row, &ins, &app.engine.policy, app.stats.sample(&c.id));
    Ok(Json(convert::detail(summary, &ins, &app.engine.policy)))
}
