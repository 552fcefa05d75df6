//! What the browser asks the server for: roles, page data types and the
//! server functions. The bodies run only on the server (they check the
//! session and role there); the browser gets a typed stub that POSTs.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use shared::{AuditPage, ContainerDetail, HistoryPoint, LogsPage, PruneKind, PruneReport, RestartReport};

use crate::model::Fleet;

/// Roles, weakest first: viewer (read everything, logs included), operator
/// (+ restart, pull), admin (+ prune, audit page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "viewer" => Some(Self::Viewer),
            "operator" => Some(Self::Operator),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// Who is looking at the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub name: String,
    pub role: Role,
    /// Sent back with every mutation.
    pub csrf: String,
}

/// The container page: the detail plus stats history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerPage {
    pub host: String,
    pub detail: ContainerDetail,
    pub history: Vec<HistoryPoint>,
}

/// The audit page: a page of records and the chain's verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditView {
    pub host: String,
    pub page: AuditPage,
    pub verify: VerifyStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyStatus {
    pub ok: bool,
    pub records: u64,
    pub problems: Vec<String>,
}

/// One line of an app's merged log view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergedLine {
    pub container: String,
    pub line: shared::LogLine,
}

/// Filters of the audit page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    pub actor: String,
    pub verb: String,
    pub target: String,
    pub outcome: String,
    pub since: String,
    pub until: String,
    pub cursor: String,
}

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

/// Where a pull stands: the latest progress lines and, at the end, the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullProgress {
    pub image: String,
    pub lines: Vec<String>,
    pub layers_done: usize,
    pub layers_total: usize,
    /// `Ok(digest)` or `Err(message)` once finished.
    pub done: Option<Result<String, String>>,
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
