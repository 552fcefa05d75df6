//! The console's view model: pure functions from the fleet's wire data to
//! what the pages show (groups, badges, the headline, conflicts). Compiled for
//! both the server and the browser, and unit-tested without either.

mod audit;
mod fleet;
mod fold;
mod format;
mod group;
mod health;
mod network;
mod screen;
mod text;

pub use audit::{audit_filter_from, audit_query, known_actors, utc_time, FilterSlot};
pub use fleet::{
    spark_bucket, url_encode, Change, Delta, Fleet, HostStatus, HostView, LiveStats, Scope, SPARK_BUCKET_MS,
    SPARK_POINTS,
};
pub use fold::{
    app_key, crossed, diff_overview, follow_overview, normal_filter, overview, touched_apps, Folded, Opened, Touched,
    FILTER_MAX, OPEN_APPS_MAX,
};
pub use format::{clamp_percent, count_updates, human_bytes, human_duration, human_percent, sparkline_points};
pub use group::{group_apps, matches_filter, name_and_app, AppGroup, HostShare, Member};
pub use health::{container_badge, headline, Badge, Headline};
pub use network::{networks, port_claims, subnets_overlap, NetworkView, PortClaim};
pub use screen::{
    collapse_healthy, collapsed_by_default, container_count, first_screen, Omitted, CARDS_PER_PAGE, COLLAPSE_ABOVE,
    FIRST_SCREEN_APPS, FIRST_SCREEN_CONTAINERS,
};
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
                unencrypted: false,
                containers,
                volume_sizes: Default::default(),
                cpu_history: Default::default(),
                folded: vec![],
            }],
            at_ms: 0,
            spark_bucket: 0,
            omitted: None,
            alerts: 0,
        }
    }

    /// A fleet as a large real one looks: `hosts` hosts of `per_host`
    /// containers (at least 10), each with compose labels, a port, a
    /// network, a volume, stats and a full sparkline. Every host runs the
    /// five shared apps `agent-0`…`agent-4` (two containers each, the same
    /// ids on every host, as replayed stand-ins have) and its own apps
    /// `h<i>-app<k>` of ten. The containers named in `sick` are unhealthy.
    pub fn big_fleet(hosts: usize, per_host: usize, sick: &[&str]) -> Fleet {
        let host = |i: usize| {
            let containers: Vec<ContainerSummary> = (0..per_host)
                .map(|j| {
                    let (project, service, id) = if j < 10 {
                        (format!("agent-{}", j / 2), format!("svc{}", j % 2), format!("{j:064x}"))
                    } else {
                        (
                            format!("h{i}-app{}", (j - 10) / 10),
                            format!("svc{}", j % 10),
                            format!("{:064x}", i * 100_000 + j),
                        )
                    };
                    let name = format!("{project}-{service}-1");
                    let health = if sick.contains(&format!("h{i}/{name}").as_str()) {
                        Health::Unhealthy
                    } else {
                        Health::Healthy
                    };
                    let mut c =
                        container(&name, Some(&project), ContainerState::Running, health, "Up 3 days (healthy)");
                    c.id = id;
                    c.image = format!("registry.example.com/team/{service}:1.27.3");
                    c.image_id = format!("sha256:{:064x}", j);
                    c.compose_service = Some(service.clone());
                    c.restart_policy = "unless-stopped".into();
                    c.started_at = Some(1_700_000_000);
                    c.ports = vec![shared::PortMapping {
                        container_port: 8080,
                        protocol: "tcp".into(),
                        host_ip: Some("0.0.0.0".into()),
                        host_port: Some(20_000 + j as u16),
                    }];
                    c.networks = vec![shared::NetworkAttachment {
                        name: format!("{project}_default"),
                        ip: Some(format!("172.20.{}.{}", j / 250, j % 250 + 2)),
                        subnet: Some("172.20.0.0/16".into()),
                        ipv6: None,
                        subnet_v6: None,
                        gateway: Some("172.20.0.1".into()),
                    }];
                    c.mounts = vec![shared::Mount {
                        kind: "volume".into(),
                        name: Some(format!("{project}_{service}_data")),
                        source: Some(format!("/var/lib/docker/volumes/{project}_{service}_data/_data")),
                        destination: "/data".into(),
                        read_write: true,
                    }];
                    c.protected = j % 10 == 9;
                    c.labels = [
                        ("com.docker.compose.project", project.clone()),
                        ("com.docker.compose.service", service.clone()),
                        ("com.docker.compose.container-number", "1".into()),
                        ("com.docker.compose.oneoff", "False".into()),
                        ("com.docker.compose.version", "2.29.7".into()),
                        ("com.docker.compose.config-hash", format!("{:064x}", j * 7919)),
                        ("com.docker.compose.image", format!("sha256:{j:064x}")),
                        ("com.docker.compose.project.config_files", format!("/srv/{project}/compose.yaml")),
                        ("com.docker.compose.project.working_dir", format!("/srv/{project}")),
                        ("org.opencontainers.image.source", "https://github.com/example/team".into()),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect();
                    c.stats = Some(LiveStats { cpu: Some(1.5), mem: 50 << 20, limit: 8 << 30 }.sample(&c.id));
                    c
                })
                .collect();
            let cpu_history = containers.iter().map(|c| (c.id.clone(), vec![1.5f32; SPARK_POINTS])).collect();
            let volume_sizes = containers
                .iter()
                .flat_map(|c| c.mounts.iter().filter_map(|m| Some((m.name.clone()?, 1i64 << 30))))
                .collect();
            HostView {
                name: format!("h{i}"),
                status: HostStatus::Connected,
                unencrypted: false,
                containers,
                volume_sizes,
                cpu_history,
                folded: vec![],
            }
        };
        Fleet { hosts: (0..hosts).map(host).collect(), ..Fleet::default() }
    }
}
