//! Resource usage samples.

use serde::{Deserialize, Serialize};

/// One container's usage at one moment, computed the way `docker stats` does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatsSample {
    pub id: String,
    /// Unix milliseconds of the engine's reading.
    pub time_ms: i64,
    /// CPU percent of one core (100 = one full core), like `docker stats`;
    /// `None` for a container's first sample (a delta needs two).
    pub cpu_percent: Option<f64>,
    /// Memory in use minus page cache (inactive file), like `docker stats`.
    pub memory_bytes: u64,
    /// The container's memory limit (the host's memory when unlimited).
    pub memory_limit_bytes: u64,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
    pub block_read_bytes: u64,
    pub block_write_bytes: u64,
    pub pids: u64,
}

/// `GET /v1/stats`: all running containers at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatsSnapshot {
    /// Unix milliseconds when the refresher finished this round.
    pub taken_at_ms: i64,
    /// How old the snapshot was when served.
    pub age_ms: u64,
    /// True when the engine could not be reached for the latest round and
    /// this is the last good snapshot.
    pub stale: bool,
    pub containers: Vec<StatsSample>,
    /// Where this round's figures came from (absent from older sidecars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<StatsSourceReport>,
}

/// Where a sidecar reads stats from, and why: in `/healthz`, each stats
/// snapshot and the console's hosts page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatsSourceReport {
    pub source: StatsSource,
    /// Why this source, in words (no paths: `/healthz` is open).
    pub reason: String,
    /// Where network counters come from.
    pub network: StatsSource,
    /// The refresher's window now: short while someone asks for stats, longer when nobody does.
    pub window_ms: u64,
    /// Containers of the last round read from the engine because their cgroup could not be.
    #[serde(default)]
    pub engine_fallbacks: u32,
}

/// A stats source: the kernel's counters, or the engine's stats API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StatsSource {
    /// cgroup files (CPU, memory, pids, block I/O) or network namespace counters (network).
    Kernel,
    /// The engine's stats API.
    Engine,
}

impl StatsSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kernel => "kernel",
            Self::Engine => "engine",
        }
    }
}

/// A compact history point for sparklines.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryPoint {
    pub time_ms: i64,
    pub cpu_percent: Option<f32>,
    pub memory_bytes: u64,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
}

/// `GET /v1/stats/history?ref=&window=`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatsHistory {
    pub id: String,
    pub interval_ms: u64,
    pub memory_limit_bytes: u64,
    /// Oldest first.
    pub points: Vec<HistoryPoint>,
}
