//! One module per verb: its handler, the validation of its input, the engine
//! call it makes and the audit record it writes. Which handler serves which
//! row of the verb table (`shared::api::VERBS`) is [`handler`].

pub mod audit;
pub mod containers;
pub mod disk;
pub mod events;
pub mod health;
pub mod logs;
pub mod openapi;
pub mod prune;
pub mod pull;
pub mod recreate;
pub mod restart;
pub mod revoke;
pub mod stats;
pub mod updates;

use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use shared::api::{Method, Verb, VerbSpec};
use shared::Outcome;

use crate::audit::Draft;
use crate::error::ApiError;
use crate::middleware::Audited;
use crate::state::{App, AppState, Pool};

pub fn method_filter(m: Method) -> MethodFilter {
    match m {
        Method::Get => MethodFilter::GET,
        Method::Post => MethodFilter::POST,
    }
}

/// The handler of a verb-table row, on the row's method (GET answers HEAD too).
pub fn handler(spec: &VerbSpec) -> MethodRouter<App> {
    let m = method_filter(spec.method);
    match spec.verb {
        Verb::Healthz => on(m, health::healthz),
        Verb::Metrics => on(m, health::metrics),
        Verb::ListContainers => on(m, containers::list),
        Verb::InspectContainer => on(m, containers::inspect),
        Verb::Logs => on(m, logs::logs),
        Verb::Restart => on(m, restart::restart),
        Verb::Stats => on(m, stats::snapshot),
        Verb::StatsHistory => on(m, stats::history),
        Verb::Events => on(m, events::events),
        Verb::Disk => on(m, disk::disk),
        Verb::Audit => on(m, audit::audit),
        Verb::AuditVerify => on(m, audit::verify),
        Verb::Prune => on(m, prune::prune),
        Verb::Pull => on(m, pull::pull),
        Verb::OpenApi => on(m, openapi::openapi),
        Verb::Revoke => on(m, revoke::revoke),
        Verb::Updates => on(m, updates::updates),
        Verb::Recreate => on(m, recreate::recreate),
    }
}

/// Writes the verb's audit record (fsync'd) and only then turns its result
/// into the response. If the record cannot be written the caller gets 500.
pub async fn finish<T: IntoResponse>(app: &AppState, draft: Draft, result: Result<T, ApiError>) -> Response {
    if let Err(e) = app.audit.commit_result(draft, &result).await {
        return ApiError::from(e).into_response();
    }
    let mut resp = result.into_response();
    resp.extensions_mut().insert(Audited);
    resp
}

/// Writes a mutation's intent record, `<verb>.start` with the same target
/// and parameters (fsync'd), before the engine is asked: a crash or a cut
/// between the engine call and the outcome record still leaves a trace.
pub async fn intent(app: &AppState, draft: &Draft) -> Result<(), ApiError> {
    let mut start = draft.clone();
    start.verb_suffix("start");
    app.audit.commit(start, Outcome::Ok, None).await.map(|_| ()).map_err(ApiError::from)
}

/// Runs a mutating verb to completion in its own task, so dropping the
/// request (a client hanging up, a proxy timing out) cannot cut it between
/// its intent record, the engine call and its outcome record.
pub async fn detached(fut: impl std::future::Future<Output = Response> + Send + 'static) -> Response {
    tokio::spawn(fut).await.unwrap_or_else(|e| ApiError::Internal(format!("verb task failed: {e}")).into_response())
}

/// A streamed answer (`application/x-ndjson`): one JSON line per item sent
/// on `rx`, marked as audited by its handler (pull, recreate).
pub fn ndjson<T: serde::Serialize + Send + 'static>(rx: tokio::sync::mpsc::Receiver<T>) -> Response {
    use futures_util::StreamExt;
    let body = tokio_stream::wrappers::ReceiverStream::new(rx).map(|ev| {
        let mut line =
            serde_json::to_vec(&ev).unwrap_or_else(|_| b"{\"type\":\"error\",\"message\":\"encoding\"}".to_vec());
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(line)
    });
    let mut resp = ([(axum::http::header::CONTENT_TYPE, "application/x-ndjson")], axum::body::Body::from_stream(body))
        .into_response();
    resp.extensions_mut().insert(Audited);
    resp
}

/// The refusal of a verb that changes a protected container.
pub fn protected(name: &str, verb: &str) -> ApiError {
    ApiError::Forbidden(format!(
        "{name} is protected (a database image or the {} label); dockward does not {verb} it",
        shared::PROTECT_LABEL
    ))
}

/// A permit from `pool` for a stream or a log read, or 429 when that pool
/// is full. Pools are separate: follows cannot take the places of event
/// streams or pulls.
pub fn stream_permit(app: &AppState, pool: Pool) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    app.permits
        .try_acquire(pool)
        .ok_or(ApiError::RateLimited { retry_after_secs: if pool == Pool::LogRead { 1 } else { 5 } })
}
