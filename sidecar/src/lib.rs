//! dockward-sidecar: the one process that holds the Docker socket.
//! See ARCHITECTURE.md for the map.

pub mod app;
pub mod audit;
pub mod auth;
pub mod config;
pub mod docker;
pub mod error;
pub mod events;
pub mod metrics;
pub mod policy;
pub mod provision;
pub mod ratelimit;
pub mod server;
pub mod stats;
pub mod verbs;
