//! The verbs' request and report types, and lifecycle events (the verbs
//! themselves are the table in [`crate::api`]).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum PruneKind {
    Containers,
    Images,
    Volumes,
    BuildCache,
}

impl PruneKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "containers" => Some(Self::Containers),
            "images" => Some(Self::Images),
            "volumes" => Some(Self::Volumes),
            "build-cache" => Some(Self::BuildCache),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Containers => "containers",
            Self::Images => "images",
            Self::Volumes => "volumes",
            Self::BuildCache => "build-cache",
        }
    }
}

/// `POST /v1/containers/{ref}/restart` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RestartReport {
    pub id: String,
    pub name: String,
    /// StartedAt after the restart (RFC 3339).
    pub started_at: Option<String>,
}

/// `POST /v1/prune/{kind}` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PruneReport {
    pub kind: PruneKind,
    /// Ids or names of what was removed.
    pub removed: Vec<String>,
    pub space_reclaimed: u64,
    /// What was left alone on purpose (protected), with the reason.
    pub skipped: Vec<String>,
}

/// `POST /v1/images/pull` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    pub image: String,
}

/// One line of the pull's streamed answer (`application/x-ndjson`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PullEvent {
    Progress {
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        layer: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        current: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    Done {
        image: String,
        digest: Option<String>,
        image_id: Option<String>,
    },
    Error {
        message: String,
    },
}

/// One item of `GET /v1/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainerEvent {
    /// `start`, `die`, `restart`, `health_status`, `oom`, `destroy`.
    pub action: String,
    pub id: String,
    pub name: Option<String>,
    /// For `health_status`: `healthy` / `unhealthy` / `starting`; for `die`: the exit code.
    pub detail: Option<String>,
    /// Unix nanoseconds.
    pub time_nano: i64,
}
