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
