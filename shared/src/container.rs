//! Containers as the sidecar reports them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::stats::StatsSample;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
    Unknown,
}

impl ContainerState {
    pub fn parse(s: &str) -> Self {
        match s {
            "created" => Self::Created,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "restarting" => Self::Restarting,
            "removing" => Self::Removing,
            "exited" => Self::Exited,
            "dead" => Self::Dead,
            _ => Self::Unknown,
        }
    }
}

/// The container's healthcheck status; `None` when it has no healthcheck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Health {
    None,
    Starting,
    Healthy,
    Unhealthy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PortMapping {
    pub container_port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    pub host_ip: Option<String>,
    pub host_port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NetworkAttachment {
    pub name: String,
    pub ip: Option<String>,
    /// The subnet of the container's interface, e.g. `172.18.0.0/16`; while
    /// it has no address (stopped, created), the network's configured subnet.
    pub subnet: Option<String>,
    pub ipv6: Option<String>,
    /// As `subnet`, for IPv6.
    pub subnet_v6: Option<String>,
    pub gateway: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Mount {
    /// `bind`, `volume`, `tmpfs`, `npipe`.
    pub kind: String,
    /// Volume name (volumes only).
    pub name: Option<String>,
    pub source: Option<String>,
    pub destination: String,
    pub read_write: bool,
}

/// One row of `GET /v1/containers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainerSummary {
    pub id: String,
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub state: ContainerState,
    /// Docker's human status text, e.g. `Up 5 minutes (healthy)`.
    pub status: String,
    pub health: Health,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds; `None` if never started.
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub restart_count: i64,
    /// `no`, `always`, `unless-stopped`, `on-failure[:N]`.
    pub restart_policy: String,
    /// The last exit code, once the container has stopped (`None` while it runs or before it ran).
    #[serde(default)]
    pub exit_code: Option<i64>,
    /// Whether the kernel's OOM killer ended its last run.
    #[serde(default)]
    pub oom_killed: bool,
    pub compose_project: Option<String>,
    pub compose_service: Option<String>,
    pub ports: Vec<PortMapping>,
    pub networks: Vec<NetworkAttachment>,
    pub mounts: Vec<Mount>,
    pub labels: BTreeMap<String, String>,
    /// True when the sidecar refuses mutating verbs on this container.
    pub protected: bool,
    /// Latest cached stats sample, when running.
    pub stats: Option<StatsSample>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnvVar {
    pub key: String,
    /// The value, or `None` when the sidecar masked it.
    pub value: Option<String>,
    pub masked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthcheckEntry {
    pub start: Option<String>,
    pub end: Option<String>,
    pub exit_code: Option<i64>,
    pub output: String,
}

/// `GET /v1/containers/{ref}`: the summary plus what only inspect knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainerDetail {
    #[serde(flatten)]
    pub summary: ContainerSummary,
    pub entrypoint: Vec<String>,
    pub command: Vec<String>,
    // The exit code and the OOM flag are the summary's (flattened into the same object).
    /// The engine's error text for the last start, if any.
    pub error: Option<String>,
    pub healthcheck_log: Vec<HealthcheckEntry>,
    /// Secret-looking values are masked inside the sidecar.
    pub env: Vec<EnvVar>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One log line, demultiplexed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogLine {
    pub stream: LogStream,
    /// RFC 3339 with nanoseconds, as the engine stamped it (when asked for timestamps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
    pub line: String,
    /// True when the line was longer than the sidecar keeps and was cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// `GET /v1/disk`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiskReport {
    pub volumes: Vec<VolumeUsage>,
    pub images_bytes: i64,
    pub containers_bytes: i64,
    pub build_cache_bytes: i64,
    /// Unix milliseconds at which the engine computed this report.
    pub computed_at_ms: i64,
    pub age_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VolumeUsage {
    pub name: String,
    pub driver: String,
    /// Bytes, or `None` when the engine could not size it.
    pub size: Option<i64>,
    pub ref_count: Option<i64>,
    /// Ids of the containers that mount it.
    pub containers: Vec<String>,
    /// True when one of those containers is protected (a database, usually).
    pub protected: bool,
    pub labels: BTreeMap<String, String>,
}

/// `GET /v1/containers/{ref}/logs` without `follow`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogsPage {
    pub id: String,
    pub lines: Vec<LogLine>,
    /// True when the answer was cut at the sidecar's size bound.
    pub truncated: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The detail flattens the summary into one object: no field may be in
    /// both (serde then refuses the answer as a duplicate field).
    #[test]
    fn a_detail_round_trips_through_json() {
        let summary: ContainerSummary = serde_json::from_value(serde_json::json!({
            "id": "abc", "name": "n", "image": "i", "image_id": "sha256:x", "state": "exited",
            "status": "Exited (1)", "health": "none", "created": 0, "started_at": null, "finished_at": null,
            "restart_count": 0, "restart_policy": "no", "exit_code": 1, "oom_killed": true,
            "compose_project": null, "compose_service": null, "ports": [], "networks": [], "mounts": [],
            "labels": {}, "protected": false, "stats": null
        }))
        .unwrap();
        let detail = ContainerDetail {
            summary,
            entrypoint: vec![],
            command: vec!["sh".into()],
            error: None,
            healthcheck_log: vec![],
            env: vec![],
        };
        let json = serde_json::to_string(&detail).unwrap();
        let back: ContainerDetail = serde_json::from_str(&json).expect("no duplicate fields");
        assert_eq!(back, detail);
        assert_eq!((back.summary.exit_code, back.summary.oom_killed), (Some(1), true));
    }
}
