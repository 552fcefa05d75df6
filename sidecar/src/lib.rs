//! dockward-sidecar: the one process that holds the Docker socket.
//! See ARCHITECTURE.md for the map.

pub mod audit;
pub mod auth;
pub mod config;
pub mod error;
pub mod metrics;
pub mod policy;
pub mod ratelimit;
