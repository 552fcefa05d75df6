//! The server functions (`/api/fn/*`): what the browser asks the server
//! for. The bodies run only on the server, where each checks the session and
//! role (mutations also the session's CSRF token); the browser gets a typed
//! stub that POSTs. The role each needs is the verb table's role of the
//! sidecar verbs it calls; every error is a [`ConsoleError`] with its status.

use leptos::prelude::*;
use shared::{LogsPage, PruneKind, PruneReport, RestartReport};

use crate::error::ConsoleError;
use crate::model::Fleet;
use crate::types::{
    AuditFilter, AuditView, ContainerPage, HostsView, JobProgress, JoinCommand, MergedLine, SessionInfo, UpdatesView,
};
#[cfg(feature = "ssr")]
use shared::Verb;

/// `start_recreate`'s `id` for a whole compose project (`app:<project>`).
pub const APP_PREFIX: &str = "app:";

#[server(prefix = "/api/fn", endpoint = "whoami")]
pub async fn whoami() -> Result<SessionInfo, ConsoleError> {
    let user = crate::server::auth::current_user()?;
    let role = user.top().ok_or(ConsoleError::NotGranted { needed: shared::Role::Viewer, on: "anything".into() })?;
    let scope = (!user.access.whole()).then(|| user.access.describe());
    Ok(SessionInfo { name: user.name, role, csrf: user.csrf, scope })
}

/// What a page shows of the fleet (its [`crate::model::Scope`], as the live
/// stream's query names it; the overview's without one).
#[server(prefix = "/api/fn", endpoint = "fleet")]
pub async fn get_fleet(scope: Option<String>, host: Option<String>, id: Option<String>) -> Result<Fleet, ConsoleError> {
    let user = crate::server::auth::require(Verb::ListContainers.role())?;
    let scope = crate::model::Scope::parse(scope.as_deref(), host.as_deref(), id.as_deref())
        .map_err(|e| ConsoleError::bad_input("scope", e))?;
    let hub = crate::server::core()?.fleet.get();
    Ok(match &scope {
        _ if user.access.whole() => hub.view(&scope),
        // Their part of the whole fleet, unfolded (as their live stream sends it).
        crate::model::Scope::Overview(_) => hub.with_fleet(|f| user.access.fleet_view(f)),
        _ => user.access.fleet_view(&hub.with_fleet(|f| f.project(&scope))),
    })
}

#[server(prefix = "/api/fn", endpoint = "container")]
pub async fn get_container(host: String, id: String) -> Result<ContainerPage, ConsoleError> {
    let user = crate::server::auth::require(Verb::InspectContainer.role())?;
    crate::server::core()?.container_page(&user, &host, &id).await
}

#[server(prefix = "/api/fn", endpoint = "logs")]
pub async fn get_logs(host: String, id: String, tail: u32, timestamps: bool) -> Result<LogsPage, ConsoleError> {
    let user = crate::server::auth::require(Verb::Logs.role())?;
    crate::server::core()?.logs(&user, &host, &id, tail, timestamps).await
}

/// All containers of a compose project, their lines interleaved by time.
#[server(prefix = "/api/fn", endpoint = "app_logs")]
pub async fn get_app_logs(host: String, project: String, tail: u32) -> Result<Vec<MergedLine>, ConsoleError> {
    let user = crate::server::auth::require(Verb::Logs.role())?;
    crate::server::core()?.app_logs(&user, &host, &project, tail).await
}

#[server(prefix = "/api/fn", endpoint = "audit")]
pub async fn get_audit(host: String, filter: AuditFilter) -> Result<AuditView, ConsoleError> {
    let user = crate::server::auth::require(Verb::Audit.role().max(Verb::AuditVerify.role()))?;
    crate::server::core()?.audit(&user, &host, &filter).await
}

#[server(prefix = "/api/fn", endpoint = "restart")]
pub async fn restart_container(host: String, id: String, csrf: String) -> Result<RestartReport, ConsoleError> {
    let user = crate::server::auth::require_mutation(Verb::Restart.role(), &csrf)?;
    crate::server::core()?.restart(&user, &host, &id).await
}

/// Starts a pull on the server and returns its job id; the pull goes on (and
/// is audited by the sidecar) even if the page is closed.
#[server(prefix = "/api/fn", endpoint = "pull")]
pub async fn start_pull(host: String, image: String, csrf: String) -> Result<String, ConsoleError> {
    let user = crate::server::auth::require_mutation(Verb::Pull.role(), &csrf)?;
    crate::server::core()?.start_pull(&user, &host, &image)
}

/// Where a pull, recreate or app update started from this console stands.
#[server(prefix = "/api/fn", endpoint = "job_status")]
pub async fn job_status(job: String) -> Result<JobProgress, ConsoleError> {
    let user = crate::server::auth::require(Verb::Pull.role().max(Verb::Recreate.role()))?;
    crate::server::core()?
        .jobs
        .status(&job, &user)
        .ok_or_else(|| ConsoleError::NotFound { what: "job (finished long ago?)".into() })
}

/// Which containers of the fleet run an image with a newer version in its
/// registry (each host's `GET /v1/updates`, reused for a minute).
#[server(prefix = "/api/fn", endpoint = "updates")]
pub async fn get_updates() -> Result<UpdatesView, ConsoleError> {
    let user = crate::server::auth::require(Verb::Updates.role())?;
    Ok(crate::server::core()?.updates(&user).await)
}

/// Starts a recreate of a container (`pull`: its image's newest version
/// first, an update; `build`: its compose service's image rebuilt from
/// source first) and returns its job id; it goes on (and is audited by
/// the sidecar) even if the page is closed. `id` may instead be
/// `app:<project>`: that compose project's containers on the host, updated
/// one by one, stopping at the first failure (with `pull`). One server
/// function for both, so the browser bundle carries one client for them.
#[server(prefix = "/api/fn", endpoint = "recreate")]
pub async fn start_recreate(
    host: String,
    id: String,
    pull: bool,
    build: bool,
    csrf: String,
) -> Result<String, ConsoleError> {
    // An update pulls, a rebuild builds: they need the pull's role too.
    let role = if pull || build { Verb::Recreate.role().max(Verb::Pull.role()) } else { Verb::Recreate.role() };
    let user = crate::server::auth::require_mutation(role, &csrf)?;
    let core = crate::server::core()?;
    match id.strip_prefix(APP_PREFIX) {
        Some(project) if pull && !build => core.start_app_update(&user, &host, project),
        Some(_) => Err(ConsoleError::bad_input("pull", "an app is updated (pull), not rebuilt or recreated")),
        None => core.start_recreate(&user, &host, &id, pull, build),
    }
}

#[server(prefix = "/api/fn", endpoint = "prune")]
pub async fn prune(host: String, kind: PruneKind, all: bool, csrf: String) -> Result<PruneReport, ConsoleError> {
    let user = crate::server::auth::require_mutation(Verb::Prune.role(), &csrf)?;
    crate::server::core()?.prune(&user, &host, kind, all).await
}

/// Every host, and the join tokens waiting (admins: the role of revoking).
#[server(prefix = "/api/fn", endpoint = "hosts")]
pub async fn hosts() -> Result<HostsView, ConsoleError> {
    let user = crate::server::auth::require(Verb::Revoke.role())?;
    crate::server::core()?.hosts_view(&user)
}

/// A one-time join token for a new host, and the one command to run there.
#[server(prefix = "/api/fn", endpoint = "add_host")]
pub async fn add_host(name: String, url: String, csrf: String) -> Result<JoinCommand, ConsoleError> {
    let user = crate::server::auth::require_mutation(Verb::Revoke.role(), &csrf)?;
    crate::server::core()?.add_host(&user, &name, &url)
}

/// Revokes an enrolled host: its sidecar forgets its secret, the console the host.
#[server(prefix = "/api/fn", endpoint = "revoke_host")]
pub async fn revoke_host(name: String, csrf: String) -> Result<String, ConsoleError> {
    let user = crate::server::auth::require_mutation(Verb::Revoke.role(), &csrf)?;
    crate::server::core()?.revoke_host(&user, &name).await
}
