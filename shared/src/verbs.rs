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

/// Whether a running container's image is the newest for its tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UpdateStatus {
    /// The registry's digest for the tag is one of the running image's digests.
    UpToDate,
    /// The registry's digest for the tag differs, or the tag already names a
    /// newer local image than the one running: a recreate (with pull) updates it.
    UpdateAvailable,
    /// The container runs `image@sha256:…`: it never changes by itself.
    PinnedByDigest,
    /// The image never came from a registry (built or imported here, or run by id).
    LocalOnly,
    /// Not checked yet; ask again shortly.
    Pending,
    /// The check failed (`reason` says why); other images are unaffected.
    Error,
}

/// One running container in `GET /v1/updates`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainerUpdate {
    pub id: String,
    pub name: String,
    /// The image reference the container was created from.
    pub image: String,
    pub status: UpdateStatus,
    /// The running image's digest for this repository (`sha256:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_digest: Option<String>,
    /// The registry's current digest for the tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_digest: Option<String>,
    /// When the registry was asked (Unix seconds); answers are reused for the check interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<i64>,
    /// Why the status is `error`, `local_only` or `update_available`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A compose service built here that the sidecar can rebuild from source
    /// (`recreate?build=true`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub buildable: bool,
    /// For a compose service built here that cannot be rebuilt: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_note: Option<String>,
}

/// `GET /v1/updates` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdatesReport {
    pub containers: Vec<ContainerUpdate>,
    /// How long a registry answer is reused, in seconds.
    pub check_interval_secs: u64,
}

/// A step of a recreate, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RecreateStep {
    Pull,
    Build,
    Create,
    StopOld,
    Swap,
    StartNew,
    HealthGate,
    RemoveOld,
    RollBack,
}

impl RecreateStep {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pull => "pull the image",
            Self::Build => "build the image from source",
            Self::Create => "create the new container",
            Self::StopOld => "stop the old container",
            Self::Swap => "rename the old aside and the new into place",
            Self::StartNew => "start the new container",
            Self::HealthGate => "wait for the new container to be healthy",
            Self::RemoveOld => "remove the old container",
            Self::RollBack => "roll back to the old container",
        }
    }
}

/// One line of a recreate's streamed answer (`application/x-ndjson`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RecreateEvent {
    /// A step begins (`detail` names what it waits for, when it waits).
    Step {
        step: RecreateStep,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// Pull progress (as in the pull verb).
    Progress {
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        layer: Option<String>,
    },
    Done(RecreateReport),
    /// The recreate failed; `rolled_back` says whether the old container was
    /// put back (under its name, started if it was running).
    Error {
        message: String,
        rolled_back: bool,
    },
}

/// The last line of a successful recreate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecreateReport {
    pub name: String,
    pub old_id: String,
    pub new_id: String,
    pub old_image_id: String,
    pub new_image_id: String,
    /// The new image's registry digest, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_digest: Option<String>,
    /// `healthy` (it has a healthcheck and passed it) or `running` (it stayed up for the grace period).
    pub gate: String,
}
