//! The state every handler shares, built once by `server.rs`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
    /// `--node-name`: what `/healthz` calls this host (a console that
    /// discovers sidecars by DNS names them so).
    pub node_name: Option<String>,
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
    /// Bounds concurrent streams and log reads, one pool per kind.
    pub permits: Permits,
    pub settings: Settings,
    /// Registry answers for `GET /v1/updates`.
    pub updates: crate::updates::UpdateChecker,
    /// Recreates in flight and their journals.
    pub recreates: crate::recreates::Recreates,
}

pub type App = Arc<AppState>;

/// What a permit is for. Each kind has its own pool, so one kind filling up
/// (a viewer's log follows) never refuses another (the console's event
/// stream, an operator's pull).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    /// Log follows (`DOCKWARD_MAX_STREAMS`).
    Follow,
    /// Event streams (`DOCKWARD_MAX_EVENT_STREAMS`).
    Events,
    /// Pulls in flight (`DOCKWARD_MAX_PULLS`).
    Pull,
    /// Log tails being answered (`DOCKWARD_MAX_LOG_READS`).
    LogRead,
}

/// The permit pools.
pub struct Permits {
    follow: Arc<Semaphore>,
    events: Arc<Semaphore>,
    pull: Arc<Semaphore>,
    log_read: Arc<Semaphore>,
}

impl Permits {
    pub fn new(follow: u32, events: u32, pull: u32, log_read: u32) -> Self {
        let pool = |n: u32| Arc::new(Semaphore::new(n as usize));
        Self { follow: pool(follow), events: pool(events), pull: pool(pull), log_read: pool(log_read) }
    }

    /// A permit from `pool`, or None when all of its permits are taken.
    pub fn try_acquire(&self, pool: Pool) -> Option<OwnedSemaphorePermit> {
        let sem = match pool {
            Pool::Follow => &self.follow,
            Pool::Events => &self.events,
            Pool::Pull => &self.pull,
            Pool::LogRead => &self.log_read,
        };
        sem.clone().try_acquire_owned().ok()
    }
}
