//! `GET /v1/containers` and `GET /v1/containers/{ref}`.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use futures_util::StreamExt;
use shared::{ContainerDetail, ContainerSummary};

use crate::docker::{convert, Freshness};
use crate::error::ApiError;
use crate::extract::{NoQuery, RefPath};
use crate::state::App;

/// Every container in scope, running and stopped, with its latest stats sample.
pub async fn list(State(app): State<App>, NoQuery: NoQuery) -> Result<Json<Vec<ContainerSummary>>, ApiError> {
    let rows = app.engine.list(true, &[]).await?;
    let app2 = app.clone();
    let results: Vec<Result<Option<ContainerSummary>, ApiError>> = futures_util::stream::iter(rows)
        .map(|row| {
            let app = app2.clone();
            async move {
                let Some(id) = row.id.clone() else { return Ok(None) };
                // Removed between list and inspect: not an error, just gone.
                let gone = |r: Result<_, ApiError>| match r {
                    Ok(i) => Ok(Some(i)),
                    Err(ApiError::NotFound(_)) => Ok(None),
                    Err(e) => Err(e),
                };
                let Some(mut ins) = gone(app.engine.inspect(&id).await)? else { return Ok(None) };
                // The cache is dropped on events; a changed state means we missed one.
                let listed = row.state.map(|s| s.to_string());
                let cached = ins.state.as_ref().and_then(|s| s.status).map(|s| s.to_string());
                if listed.is_some() && listed != cached {
                    app.engine.invalidate(&id).await;
                    // It may be going as we look again (a removal mid-list).
                    let Some(fresh) = gone(app.engine.inspect(&id).await)? else { return Ok(None) };
                    ins = fresh;
                }
                // When the engine cannot say, show it protected (the verbs refuse or skip it too).
                let protected = app.engine.protection(&ins, Freshness::Cached).await.unwrap_or(true);
                Ok(Some(convert::summary(&row, &ins, protected, app.stats.sample(&id))))
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        if let Some(c) = r? {
            out.push(c);
        }
    }
    app.engine.fill_subnets(&mut out).await;
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
    let mut summary = convert::summary(&c.row, &ins, c.protected, app.stats.sample(&c.id));
    app.engine.fill_subnets(std::slice::from_mut(&mut summary)).await;
    Ok(Json(convert::detail(summary, &ins, &app.engine.policy)))
}
