//! Wire types and validators shared by the dockward sidecar and web console.
//!
//! Pure data: serde and thiserror only, so the crate builds for
//! `wasm32-unknown-unknown` and the browser uses the very same types the
//! sidecar serialises.

pub mod api;
pub mod audit;
pub mod container;
pub mod engine;
pub mod enrol;
pub mod error;
pub mod health;
pub mod stats;
pub mod text;
pub mod validate;
pub mod verbs;

pub use api::{Call, Method, RateClass, Role, Verb, VerbSpec, VERBS};
pub use audit::{AuditPage, AuditRecord, AuditVerification, Outcome};
pub use container::{
    ContainerDetail, ContainerState, ContainerSummary, DiskReport, EnvVar, Health, HealthcheckEntry, LogLine,
    LogStream, LogsPage, Mount, NetworkAttachment, PortMapping, VolumeUsage,
};
pub use engine::{EngineProblem, EngineProblemKind};
pub use enrol::{
    valid_host_name, EnrolAnswer, EnrolRequest, JoinToken, RevokeReport, OUTBOUND, TUNNEL_HOST_HEADER, TUNNEL_PATH,
    TUNNEL_PROTOCOL,
};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use stats::{HistoryPoint, StatsHistory, StatsSample, StatsSnapshot, StatsSource, StatsSourceReport};
pub use validate::{bounded, limits, unlisted_registry_refusal, ContainerRef, ImageRef, ValidationError};
pub use verbs::{
    ContainerEvent, ContainerUpdate, PruneKind, PruneReport, PullEvent, PullRequest, RecreateEvent, RecreateReport,
    RecreateStep, RestartReport, UpdateStatus, UpdatesReport,
};

/// Version prefix of the sidecar's API.
pub const API_PREFIX: &str = "/v1";
/// Header in which the caller names the acting user (recorded, never trusted).
pub const ACTOR_HEADER: &str = "x-dockward-actor";
/// Header carrying the request id, set by the sidecar on every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Sent by the console on `GET /v1/stats` when it reads for history, not
/// for a viewer: the sidecar does not count it as demand (its refresher
/// stays at its idle window).
pub const BACKGROUND_HEADER: &str = "x-dockward-background";
/// Label that protects (`true`) or explicitly un-protects (`false`) a container.
pub const PROTECT_LABEL: &str = "dockward.protect";
/// Standard compose labels.
pub const COMPOSE_PROJECT_LABEL: &str = "com.docker.compose.project";
pub const COMPOSE_SERVICE_LABEL: &str = "com.docker.compose.service";
