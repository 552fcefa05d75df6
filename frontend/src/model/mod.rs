//! The console's view model: pure functions from the fleet's wire data to
//! what the pages show (groups, badges, the headline, conflicts). Compiled for
//! both the server and the browser, and unit-tested without either.

mod audit;
mod fleet;
mod format;
mod group;
mod health;
mod network;
mod text;

pub use audit::{audit_filter_from, audit_query, known_actors, utc_time, FilterSlot};
pub use fleet::{
    spark_bucket, Change, Delta, Fleet, HostStatus, HostView, LiveStats, Scope, SPARK_BUCKET_MS, SPARK_POINTS,
};
pub use format::{clamp_percent, human_bytes, human_duration, human_percent, sparkline_points};
pub use group::{group_apps, matches_filter, name_and_app, AppGroup};
pub use health::{container_badge, headline, Badge, Headline};
pub use network::{networks, port_claims, subnets_overlap, NetworkView, PortClaim};
pub use text::{ansi_spans, highlight_plain, neutralise_audit_record, neutralise_container, neutralise_detail};

/// Test fixtures shared by the model's and the pages' tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use shared::{ContainerState, ContainerSummary, Health};

    pub fn container(
        name: &str,
        project: Option<&str>,
        state: ContainerState,
        health: Health,
        status: &str,
    ) -> ContainerSummary {
        ContainerSummary {
            id: format!("{name}-id"),
            name: name.into(),
            image: "img".into(),
            image_id: "sha256:x".into(),
            state,
            status: status.into(),
            health,
            created: 0,
            started_at: None,
            finished_at: None,
            restart_count: 0,
            restart_policy: "no".into(),
            exit_code: None,
            oom_killed: false,
            compose_project: project.map(String::from),
            compose_service: None,
            ports: vec![],
            networks: vec![],
            mounts: vec![],
            labels: Default::default(),
            protected: false,
            stats: None,
        }
    }

    pub fn fleet(containers: Vec<ContainerSummary>) -> Fleet {
        Fleet {
            hosts: vec![HostView {
                name: "a".into(),
                status: HostStatus::Connected,
                containers,
                volume_sizes: Default::default(),
                cpu_history: Default::default(),
            }],
            at_ms: 0,
            spark_bucket: 0,
        }
    }
}
