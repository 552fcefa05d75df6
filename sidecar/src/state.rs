//! The state every handler shares, built once by `server.rs`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::audit::AuditLog;
use crate::auth::SecretStore;
use crate::disk::DiskCache;
use crate::docker::Engine;
use crate::events::EventHub;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimits;
use crate::stats::StatsCache;

/// Settings the handlers read.
#[derive(Debug, Clone)]
pub struct Settings {
    pub log_follow_max: Duration,
    pub pull_registries: Vec<String>,
}

pub struct AppState {
    pub engine: Arc<Engine>,
    pub stats: Arc<StatsCache>,
    pub events: EventHub,
    pub audit: AuditLog,
    pub secrets: SecretStore,
    pub limits: RateLimits,
    pub metrics: Arc<Metrics>,
    pub disk: DiskCache,
    /// Bounds concurrent streaming responses (log follow, events, pull).
    pub streams: Arc<Semaphore>,
    pub settings: Settings,
}

pub type App = Arc<AppState>;
