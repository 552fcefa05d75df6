//! The server functions (`/api/fn/*`): what the browser asks the server
//! for. The bodies run only on the server, where each checks the session and
//! role (mutations also the session's CSRF token); the browser gets a typed
//! stub that POSTs.

use leptos::prelude::*;
use shared::{LogsPage, PruneKind, PruneReport, RestartReport};

use crate::model::Fleet;
#[cfg(feature = "ssr")]
use crate::types::Role;
use crate::types::{AuditFilter, AuditView, ContainerPage, MergedLine, PullProgress, SessionInfo};

#[server(prefix = "/api/fn", endpoint = "whoami")]
pub async fn whoami() -> Result<SessionInfo, ServerFnError> {
    let user = crate::server::auth::current_user()?;
    Ok(SessionInfo { name: user.name, role: user.role, csrf: user.csrf })
}

#[server(prefix = "/api/fn", endpoint = "fleet")]
pub async fn get_fleet() -> Result<Fleet, ServerFnError> {
    crate::server::auth::current_user()?;
    Ok(crate::server::core()?.fleet.snapshot())
}

#[server(prefix = "/api/fn", endpoint = "container")]
pub async fn get_container(host: String, id: String) -> Result<ContainerPage, ServerFnError> {
    crate::server::auth::current_user()?;
    crate::server::core()?.container_page(&host, &id).await.map_err(ServerFnError::new)
}

#[server(prefix = "/api/fn", endpoint = "logs")]
pub async fn get_logs(host: String, id: String, tail: u32, timestamps: bool) -> Result<LogsPage, ServerFnError> {
    crate::server::auth::current_user()?;
    crate::server::core()?.logs(&host, &id, tail, timestamps).await.map_err(ServerFnError::new)
}

/// All containers of a compose project, their lines interleaved by time.
#[server(prefix = "/api/fn", endpoint = "app_logs")]
pub async fn get_app_logs(host: String, project: String, tail: u32) -> Result<Vec<MergedLine>, ServerFnError> {
    crate::server::auth::current_user()?;
    crate::server::core()?.app_logs(&host, &project, tail).await.map_err(ServerFnError::new)
}

#[server(prefix = "/api/fn", endpoint = "audit")]
pub async fn get_audit(host: String, filter: AuditFilter) -> Result<AuditView, ServerFnError> {
    crate::server::auth::require(Role::Admin)?;
    crate::server::core()?.audit(&host, &filter).await.map_err(ServerFnError::new)
}

#[server(prefix = "/api/fn", endpoint = "restart")]
pub async fn restart_container(host: String, id: String, csrf: String) -> Result<RestartReport, ServerFnError> {
    let user = crate::server::auth::require_mutation(Role::Operator, &csrf)?;
    crate::server::core()?.restart(&user, &host, &id).await.map_err(ServerFnError::new)
}

/// Starts a pull on the server and returns its job id; the pull goes on (and
/// is audited by the sidecar) even if the page is closed.
#[server(prefix = "/api/fn", endpoint = "pull")]
pub async fn start_pull(host: String, image: String, csrf: String) -> Result<String, ServerFnError> {
    let user = crate::server::auth::require_mutation(Role::Operator, &csrf)?;
    crate::server::core()?.start_pull(&user, &host, &image).map_err(ServerFnError::new)
}

#[server(prefix = "/api/fn", endpoint = "pull_status")]
pub async fn pull_status(job: String) -> Result<PullProgress, ServerFnError> {
    crate::server::auth::require(Role::Operator)?;
    crate::server::core()?.pulls.status(&job).ok_or_else(|| ServerFnError::new("no such pull (finished long ago?)"))
}

#[server(prefix = "/api/fn", endpoint = "prune")]
pub async fn prune(host: String, kind: PruneKind, all: bool, csrf: String) -> Result<PruneReport, ServerFnError> {
    let user = crate::server::auth::require_mutation(Role::Admin, &csrf)?;
    crate::server::core()?.prune(&user, &host, kind, all).await.map_err(ServerFnError::new)
}
