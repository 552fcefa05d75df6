//! The data the pages show and the server sends them: roles, the session,
//! the container, log and audit pages, pull progress. Plain serde types: no
//! server calls here, so the server code and the server functions both
//! import them without importing each other.

use serde::{Deserialize, Serialize};
use shared::{AuditPage, ContainerDetail, HistoryPoint};

pub use shared::Role;

/// Who is looking at the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub name: String,
    /// The strongest role held anywhere.
    pub role: Role,
    /// For a user whose grants are not fleet-wide, what they are
    /// (`operator on app:shop`); the server checks each target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
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

/// Where a background job (a pull, a recreate, an app's update) stands: the
/// latest progress lines and, at the end, the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobProgress {
    /// What it works on (the image of a pull, the container of a recreate).
    pub title: String,
    pub lines: Vec<String>,
    pub layers_done: usize,
    pub layers_total: usize,
    /// `Ok(digest)` or `Err(message)` once finished.
    pub done: Option<Result<String, String>>,
}

/// What the browser needs of every host's update check (`GET /v1/updates`,
/// reduced on the server to lists of `host/id` keys: the bundle carries no
/// decoder of its own for it). What else there is to say (newer versions,
/// why a rebuild is not possible) is said on the pages that ask before
/// acting, rendered on the server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdatesView {
    /// Containers with an update available.
    pub update: Vec<String>,
    /// Compose services built here: "Rebuild…" leads to the page that
    /// rebuilds them, or says why it cannot.
    pub rebuild: Vec<String>,
}

impl UpdatesView {
    pub fn key(host: &str, id: &str) -> String {
        format!("{host}/{id}")
    }

    /// Whether the container `id` on `host` has an update.
    pub fn has_update(&self, host: &str, id: &str) -> bool {
        let k = Self::key(host, id);
        self.update.contains(&k)
    }

    pub fn can_rebuild(&self, host: &str, id: &str) -> bool {
        let k = Self::key(host, id);
        self.rebuild.contains(&k)
    }

    /// How many containers of the fleet have one.
    pub fn available(&self) -> usize {
        self.update.len()
    }
}

/// Newer tags of a version-tagged image (`1.27.3`): the newest within its
/// major, and the newest overall (each only when newer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewerVersions {
    pub same_major: Option<String>,
    pub newest: Option<String>,
}

/// The hosts panel (admins): every host and where it comes from, and the
/// join tokens still waiting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HostsView {
    pub hosts: Vec<HostEntry>,
    /// Hosts with a join token waiting, and when it expires (Unix seconds).
    pub pending: Vec<(String, u64)>,
    /// Whether the agent port is on (enrolment possible).
    pub agent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEntry {
    pub name: String,
    pub url: String,
    /// Enrolled through the console (and so revocable here), or configured.
    pub enrolled: bool,
    /// The fingerprints it is pinned by (empty for `http://` and outbound hosts).
    pub pins: Vec<String>,
    /// For an outbound host (its sidecar dials the console): where its
    /// tunnel comes from, `None` while it is not connected.
    pub outbound: Option<Option<String>>,
    /// Where its sidecar reads stats from (`kernel` or `engine`) and why, once it has said.
    #[serde(default)]
    pub stats: Option<(String, String)>,
}

/// A join token as shown once: the command to run on the new host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinCommand {
    pub host: String,
    pub expires_at: u64,
    pub command: String,
}
