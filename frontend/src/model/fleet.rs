//! The fleet as the web server assembles it and pushes it to browsers: each
//! host's status and latest data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shared::ContainerSummary;

/// The state of one sidecar as the web server sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum HostStatus {
    /// Fresh data.
    Connected,
    /// No fresh data for a while; `age_s` says how old the last data is.
    Stale { age_s: u64 },
    /// Unreachable or refusing; the last error.
    Down {
        error: String,
        age_s: Option<u64>,
        /// The sidecar answers but cannot use its Docker engine: why, and the fix.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        engine: Option<shared::EngineProblem>,
    },
}

/// One host's latest data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostView {
    pub name: String,
    pub status: HostStatus,
    pub containers: Vec<ContainerSummary>,
    /// Volume sizes by name (from the sidecar's disk report).
    #[serde(default)]
    pub volume_sizes: BTreeMap<String, i64>,
    /// CPU % per container id over the last 15 minutes, oldest first (for sparklines).
    #[serde(default)]
    pub cpu_history: BTreeMap<String, Vec<f32>>,
}

/// The whole fleet, as pushed to browsers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Fleet {
    pub hosts: Vec<HostView>,
    /// Unix milliseconds when the server assembled this.
    pub at_ms: i64,
}
