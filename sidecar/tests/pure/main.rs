//! Fast tests of the sidecar's pure modules: no Docker, no network, no
//! server. They pin every bound and branch that cargo-mutants found
//! untested by the unit tests (see BENCHMARKS.md, "Mutation testing"), so
//! `cargo test -p dockward-sidecar --lib --test pure` catches what the slow
//! Docker suites alone used to.

mod auth;
mod chain;
mod extract;
mod openapi;
mod policy;
mod stats_calc;
