//! dockward-sidecar: the one process that holds the Docker socket.
//! See ARCHITECTURE.md for the map.

pub mod audit;
pub mod auth;
pub mod config;
pub mod disk;
pub mod docker;
pub mod enrol;
pub mod error;
pub mod events;
pub mod extract;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod policy;
pub mod privilege;
pub mod provision;
pub mod ratelimit;
pub mod recreates;
pub mod redact;
pub mod router;
pub mod server;
pub mod state;
pub mod stats;
pub mod tunnel;
pub mod updates;
pub mod verbs;
