//! `POST /v1/containers/{ref}/restart?timeout=N`: runs detached from the
//! connection; `restart.start` is on disk before the engine is asked, the
//! outcome after, whatever the client does.

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use bollard::query_parameters::RestartContainerOptions;
use serde::Deserialize;
use shared::{bounded, limits, ContainerRef, RestartReport, Verb};
use utoipa::IntoParams;

use crate::audit::{Caller, Draft};
use crate::error::ApiError;
use crate::extract::{Query, RefPath};
use crate::state::{App, AppState};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RestartQuery {
    /// Seconds to wait for a clean stop before killing (0–120; engine default if absent).
    timeout: Option<u64>,
}

pub async fn restart(
    State(app): State<App>,
    caller: Caller,
    RefPath(r): RefPath,
    Query(q): Query<RestartQuery>,
) -> Response {
    super::detached(async move {
        let mut draft = Draft::new(&caller, Verb::Restart.audit_name());
        draft.target(r.as_str(), None);
        let result = run(&app, &caller, &r, q, &mut draft).await.map(Json);
        super::finish(&app, draft, result).await
    })
    .await
}

async fn run(
    app: &AppState,
    caller: &Caller,
    r: &ContainerRef,
    q: RestartQuery,
    draft: &mut Draft,
) -> Result<RestartReport, ApiError> {
    if let Some(t) = q.timeout {
        draft.param("timeout", t);
    }
    let timeout = q.timeout.map(|t| bounded("timeout", t, 0, limits::RESTART_TIMEOUT_MAX)).transpose()?;
    app.engine.require_up()?;
    let c = app.engine.resolve(r).await?;
    draft.target(&c.id, Some(&c.name));
    if c.protected {
        return Err(super::protected(&c.name, "restart"));
    }
    if app.recreates.is_busy(&c.id, &c.name) {
        return Err(ApiError::Conflict(format!("{} is being recreated", c.name)));
    }
    app.limits.restart.check(&(caller.client.clone(), c.id.clone()))?;
    super::intent(app, draft).await?;
    let opts = RestartContainerOptions { t: timeout.map(|t| t as i32), signal: None };
    let result = app.engine.timed("restart_container", app.engine.client().restart_container(&c.id, Some(opts))).await;
    app.engine.invalidate(&c.id).await;
    result?;
    let ins = app.engine.inspect_uncached(&c.id).await?;
    Ok(RestartReport { id: c.id, name: c.name, started_at: ins.state.and_then(|s| s.started_at) })
}
