//! Engine models → wire types. Pure functions.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bollard::models::{
    ContainerInspectResponse, ContainerSummary as DockerSummary, EndpointSettings, HealthStatusEnum, MountPoint,
    Network,
};
use shared::{
    ContainerDetail, ContainerState, ContainerSummary, EnvVar, Health, HealthcheckEntry, Mount, NetworkAttachment,
    PortMapping, StatsSample, COMPOSE_PROJECT_LABEL, COMPOSE_SERVICE_LABEL,
};

use crate::policy::Policy;

pub fn summary_name(c: &DockerSummary) -> String {
    c.names.iter().flatten().next().map(|n| n.strip_prefix('/').unwrap_or(n).to_owned()).unwrap_or_default()
}

/// Unix seconds from the engine's RFC 3339 time; `None` for the zero time.
pub fn unix_seconds(s: Option<&str>) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s?, &time::format_description::well_known::Rfc3339).ok()?;
    (t.year() > 1).then(|| t.unix_timestamp())
}

/// The network address of `ip/prefix`, e.g. `172.18.0.5/16` → `172.18.0.0/16`.
pub fn subnet_of(ip: &str, prefix: i64) -> Option<String> {
    let addr: IpAddr = ip.parse().ok()?;
    match addr {
        IpAddr::V4(v4) if (0..=32).contains(&prefix) => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
            Some(format!("{}/{prefix}", Ipv4Addr::from(u32::from(v4) & mask)))
        }
        IpAddr::V6(v6) if (0..=128).contains(&prefix) => {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
            Some(format!("{}/{prefix}", Ipv6Addr::from(u128::from(v6) & mask)))
        }
        _ => None,
    }
}

/// A network's configured subnets (its IPAM configuration): the first IPv4
/// and the first IPv6 one, each in network form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfiguredSubnets {
    pub v4: Option<String>,
    pub v6: Option<String>,
}

/// Each network's configured subnets, by name: what a container's endpoint
/// lacks while the container is not running (the engine gives a stopped or
/// created container's endpoint no address, so no prefix to derive a subnet
/// from, though its network has one).
pub fn configured_subnets(networks: &[Network]) -> HashMap<String, ConfiguredSubnets> {
    let mut out = HashMap::new();
    for n in networks {
        let Some(name) = n.name.as_ref().filter(|n| !n.is_empty()) else { continue };
        let mut subnets = ConfiguredSubnets::default();
        for cidr in
            n.ipam.as_ref().and_then(|i| i.config.as_ref()).into_iter().flatten().filter_map(|c| c.subnet.as_ref())
        {
            // The engine's text, checked and put in network form.
            let Some((ip, prefix)) = cidr.split_once('/') else { continue };
            let Some(net) = prefix.parse().ok().and_then(|p| subnet_of(ip, p)) else { continue };
            let slot = if net.contains(':') { &mut subnets.v6 } else { &mut subnets.v4 };
            slot.get_or_insert(net);
        }
        out.insert(name.clone(), subnets);
    }
    out
}

/// Whether any of `containers` is attached to a network without knowing its
/// subnet (then [`fill_subnets`] needs the networks' configuration).
pub fn lacks_subnets(containers: &[ContainerSummary]) -> bool {
    containers.iter().flat_map(|c| &c.networks).any(|n| n.subnet.is_none() && n.subnet_v6.is_none())
}

/// Gives every attachment without a subnet its network's configured one.
/// An attachment with an address keeps the subnet derived from it.
pub fn fill_subnets(containers: &mut [ContainerSummary], configured: &HashMap<String, ConfiguredSubnets>) {
    for n in containers.iter_mut().flat_map(|c| c.networks.iter_mut()) {
        if n.subnet.is_some() || n.subnet_v6.is_some() {
            continue;
        }
        if let Some(c) = configured.get(&n.name) {
            n.subnet.clone_from(&c.v4);
            n.subnet_v6.clone_from(&c.v6);
        }
    }
}

fn non_empty(s: Option<&String>) -> Option<String> {
    s.filter(|s| !s.is_empty()).cloned()
}

fn network(name: &str, e: &EndpointSettings) -> NetworkAttachment {
    let ip = non_empty(e.ip_address.as_ref());
    let ipv6 = non_empty(e.global_ipv6_address.as_ref());
    NetworkAttachment {
        name: name.to_owned(),
        subnet: ip.as_deref().and_then(|ip| subnet_of(ip, e.ip_prefix_len.unwrap_or(-1))),
        subnet_v6: ipv6.as_deref().and_then(|ip| subnet_of(ip, e.global_ipv6_prefix_len.unwrap_or(-1))),
        gateway: non_empty(e.gateway.as_ref()),
        ip,
        ipv6,
    }
}

fn mount(m: &MountPoint) -> Mount {
    Mount {
        kind: m.typ.map(|t| t.to_string()).unwrap_or_default(),
        name: non_empty(m.name.as_ref()),
        source: non_empty(m.source.as_ref()),
        destination: m.destination.clone().unwrap_or_default(),
        read_write: m.rw.unwrap_or(false),
    }
}

fn health(h: Option<HealthStatusEnum>) -> Health {
    match h {
        Some(HealthStatusEnum::STARTING) => Health::Starting,
        Some(HealthStatusEnum::HEALTHY) => Health::Healthy,
        Some(HealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
        _ => Health::None,
    }
}

/// The summary of one container: the list row gives the status text, inspect
/// the rest; `protected` is the engine's decision ([`super::Engine::protection`]).
pub fn summary(
    row: &DockerSummary,
    ins: &ContainerInspectResponse,
    protected: bool,
    stats: Option<StatsSample>,
) -> ContainerSummary {
    let labels = ins.config.as_ref().and_then(|c| c.labels.clone()).unwrap_or_default();
    let image = ins.config.as_ref().and_then(|c| c.image.clone()).or_else(|| row.image.clone()).unwrap_or_default();
    let state = ins.state.as_ref();
    let host = ins.host_config.as_ref();
    let mut ports: Vec<PortMapping> = ins
        .network_settings
        .as_ref()
        .and_then(|n| n.ports.as_ref())
        .into_iter()
        .flatten()
        .flat_map(|(key, bindings)| {
            let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
            let container_port = port.parse().unwrap_or(0);
            let bindings = bindings.as_deref().unwrap_or_default();
            if bindings.is_empty() {
                vec![PortMapping { container_port, protocol: proto.to_owned(), host_ip: None, host_port: None }]
            } else {
                bindings
                    .iter()
                    .map(|b| PortMapping {
                        container_port,
                        protocol: proto.to_owned(),
                        host_ip: non_empty(b.host_ip.as_ref()),
                        host_port: b.host_port.as_deref().and_then(|p| p.parse().ok()),
                    })
                    .collect()
            }
        })
        .collect();
    ports.sort_by(|a, b| {
        (a.container_port, &a.protocol, a.host_port).cmp(&(b.container_port, &b.protocol, b.host_port))
    });
    let mut networks: Vec<NetworkAttachment> = ins
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .into_iter()
        .flatten()
        .map(|(name, e)| network(name, e))
        .collect();
    networks.sort_by(|a, b| a.name.cmp(&b.name));
    let restart_policy = host
        .and_then(|h| h.restart_policy.as_ref())
        .map(|p| {
            let name = p.name.map(|n| n.to_string()).filter(|n| !n.is_empty()).unwrap_or_else(|| "no".into());
            match p.maximum_retry_count {
                Some(n) if n > 0 && name == "on-failure" => format!("{name}:{n}"),
                _ => name,
            }
        })
        .unwrap_or_else(|| "no".into());
    let status =
        state.and_then(|s| s.status).map(|s| ContainerState::parse(s.as_ref())).unwrap_or(ContainerState::Unknown);
    ContainerSummary {
        id: ins.id.clone().unwrap_or_default(),
        name: ins
            .name
            .as_deref()
            .map(|n| n.strip_prefix('/').unwrap_or(n).to_owned())
            .unwrap_or_else(|| summary_name(row)),
        image,
        image_id: ins.image.clone().unwrap_or_default(),
        state: status,
        status: row.status.clone().unwrap_or_default(),
        health: health(state.and_then(|s| s.health.as_ref()).and_then(|h| h.status)),
        created: unix_seconds(ins.created.as_deref()).unwrap_or_default(),
        started_at: unix_seconds(state.and_then(|s| s.started_at.as_deref())),
        finished_at: unix_seconds(state.and_then(|s| s.finished_at.as_deref())),
        restart_count: ins.restart_count.unwrap_or_default(),
        restart_policy,
        // The engine keeps the last exit code while a container runs again; only a stopped one has one.
        exit_code: state
            .filter(|_| matches!(status, ContainerState::Exited | ContainerState::Dead))
            .and_then(|s| s.exit_code),
        oom_killed: state.and_then(|s| s.oom_killed).unwrap_or(false),
        compose_project: labels.get(COMPOSE_PROJECT_LABEL).cloned(),
        compose_service: labels.get(COMPOSE_SERVICE_LABEL).cloned(),
        ports,
        networks,
        mounts: ins.mounts.iter().flatten().map(mount).collect(),
        labels: labels.into_iter().collect::<BTreeMap<_, _>>(),
        protected,
        stats: if status == ContainerState::Running { stats } else { None },
    }
}

const HEALTH_OUTPUT_MAX: usize = 4096;

/// The detail view. Secrets are masked here, so they never leave the sidecar
/// ([`crate::redact`]): environment values whose key looks secret whole; in
/// every other value, in the entrypoint and command, the healthcheck output
/// and the engine's error, URL passwords and the values of secret-looking
/// flags and assignments.
pub fn detail(summary: ContainerSummary, ins: &ContainerInspectResponse, policy: &Policy) -> ContainerDetail {
    let config = ins.config.as_ref();
    let state = ins.state.as_ref();
    let env = config
        .and_then(|c| c.env.as_ref())
        .into_iter()
        .flatten()
        .map(|kv| {
            let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
            let masked = policy.masks(key);
            EnvVar { key: key.to_owned(), value: (!masked).then(|| policy.redact_text(value).into_owned()), masked }
        })
        .collect();
    let healthcheck_log = state
        .and_then(|s| s.health.as_ref())
        .and_then(|h| h.log.as_ref())
        .into_iter()
        .flatten()
        .map(|r| HealthcheckEntry {
            start: r.start.clone(),
            end: r.end.clone(),
            exit_code: r.exit_code,
            // Masked whole, then cut: a cut first could split a secret from its flag.
            output: truncate(&policy.redact_text(r.output.as_deref().unwrap_or_default()), HEALTH_OUTPUT_MAX),
        })
        .collect();
    ContainerDetail {
        summary,
        entrypoint: policy.redact_args(config.and_then(|c| c.entrypoint.as_deref()).unwrap_or_default()),
        command: policy.redact_args(config.and_then(|c| c.cmd.as_deref()).unwrap_or_default()),
        error: state.and_then(|s| non_empty(s.error.as_ref())).map(|e| policy.redact_text(&e).into_owned()),
        healthcheck_log,
        env,
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        assert_eq!(subnet_of("172.18.0.5", 16).as_deref(), Some("172.18.0.0/16"));
        assert_eq!(subnet_of("10.1.2.3", 24).as_deref(), Some("10.1.2.0/24"));
        assert_eq!(subnet_of("10.1.2.3", 0).as_deref(), Some("0.0.0.0/0"));
        assert_eq!(subnet_of("fd00::1:2", 64).as_deref(), Some("fd00::/64"));
        assert_eq!(subnet_of("10.1.2.3", 40), None);
        assert_eq!(subnet_of("nope", 8), None);
    }

    fn net(name: &str, subnets: &[&str]) -> Network {
        Network {
            name: Some(name.into()),
            ipam: Some(bollard::models::Ipam {
                config: Some(
                    subnets
                        .iter()
                        .map(|s| bollard::models::IpamConfig { subnet: Some((*s).into()), ..Default::default() })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn attached(name: &str, subnet: Option<&str>) -> ContainerSummary {
        let mut c = blank();
        c.networks = vec![NetworkAttachment {
            name: name.into(),
            ip: subnet.map(|_| "172.17.0.2".into()),
            subnet: subnet.map(String::from),
            subnet_v6: None,
            ipv6: None,
            gateway: None,
        }];
        c
    }

    fn blank() -> ContainerSummary {
        summary(&DockerSummary::default(), &ContainerInspectResponse::default(), false, None)
    }

    /// A stopped container's endpoint has no address: its network's
    /// configured subnet stands in (the default bridge showed "no subnet").
    #[test]
    fn attachments_without_an_address_get_the_networks_configured_subnet() {
        let configured = configured_subnets(&[
            net("bridge", &["172.17.0.0/16"]),
            net("dual", &["fd00:1::/64", "10.9.0.0/24", "10.10.0.0/24"]),
            net("odd", &["10.1.2.3/24", "junk", "10.0.0.0/99"]),
            net("none", &[]),
        ]);
        assert_eq!(configured["bridge"], ConfiguredSubnets { v4: Some("172.17.0.0/16".into()), v6: None });
        assert_eq!(
            configured["dual"],
            ConfiguredSubnets { v4: Some("10.9.0.0/24".into()), v6: Some("fd00:1::/64".into()) },
            "the first of each family"
        );
        assert_eq!(configured["odd"].v4.as_deref(), Some("10.1.2.0/24"), "in network form; junk skipped");
        assert_eq!(configured["none"], ConfiguredSubnets::default());

        let mut cs = vec![attached("bridge", None), attached("dual", Some("10.9.0.0/16")), attached("gone", None)];
        assert!(lacks_subnets(&cs));
        fill_subnets(&mut cs, &configured);
        assert_eq!(cs[0].networks[0].subnet.as_deref(), Some("172.17.0.0/16"));
        assert_eq!(cs[1].networks[0].subnet.as_deref(), Some("10.9.0.0/16"), "an address's own subnet stays");
        assert_eq!(cs[1].networks[0].subnet_v6, None);
        assert_eq!(cs[2].networks[0].subnet, None, "a network the engine no longer lists");
        assert!(!lacks_subnets(&cs[..2]));
    }

    #[test]
    fn times() {
        assert_eq!(unix_seconds(Some("1970-01-01T00:01:00Z")), Some(60));
        assert_eq!(unix_seconds(Some("2026-11-24T02:00:00.123456789Z")).map(|s| s > 0), Some(true));
        assert_eq!(unix_seconds(Some("0001-01-01T00:00:00Z")), None);
        assert_eq!(unix_seconds(Some("garbage")), None);
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }

    #[test]
    fn env_is_masked() {
        let policy = Policy::new(None, &[], crate::config::DEFAULT_MASK_PATTERN).unwrap();
        let ins = ContainerInspectResponse {
            config: Some(bollard::models::ContainerConfig {
                env: Some(vec!["DB_PASSWORD=hunter2".into(), "PATH=/bin".into(), "EMPTY".into()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let s = summary(&DockerSummary::default(), &ins, false, None);
        let d = detail(s, &ins, &policy);
        let json = serde_json::to_string(&d).unwrap();
        assert!(!json.contains("hunter2"), "{json}");
        assert_eq!(d.env[0], EnvVar { key: "DB_PASSWORD".into(), value: None, masked: true });
        assert_eq!(d.env[1].value.as_deref(), Some("/bin"));
        assert_eq!(d.env[2], EnvVar { key: "EMPTY".into(), value: Some(String::new()), masked: false });
    }

    #[test]
    fn secrets_in_arguments_health_output_errors_and_urls_are_masked() {
        use bollard::models::{ContainerState as State, Health as H, HealthcheckResult};
        let policy = Policy::new(None, &[], crate::config::DEFAULT_MASK_PATTERN).unwrap();
        let ins = ContainerInspectResponse {
            config: Some(bollard::models::ContainerConfig {
                env: Some(vec![
                    "DATABASE_URL=postgres://app:s3cret-db@db/app".into(),
                    "CACHE=redis://:s3cret-cache@cache:6379".into(),
                    "SENTRY_DSN=https://key@o1.ingest.sentry.io/1".into(),
                    "JAVA_OPTS=-Xmx1g -Dspring.datasource.password=s3cret-java".into(),
                    "UPSTREAM=https://example.com/api".into(),
                ]),
                entrypoint: Some(vec!["docker-entrypoint.sh".into()]),
                cmd: Some(vec![
                    "redis-server".into(),
                    "--requirepass".into(),
                    "s3cret-redis".into(),
                    "--password=s3cret-eq".into(),
                    "--port".into(),
                    "6379".into(),
                ]),
                ..Default::default()
            }),
            state: Some(State {
                error: Some("dial postgres://u:s3cret-err@db:5432 failed".into()),
                health: Some(H {
                    log: Some(vec![HealthcheckResult {
                        output: Some("mysqladmin -uroot -ps3cret-health ping: ok".into()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let d = detail(summary(&DockerSummary::default(), &ins, false, None), &ins, &policy);
        let json = serde_json::to_string(&d).unwrap();
        assert!(!json.contains("s3cret"), "a secret left the sidecar: {json}");
        let value = |k: &str| d.env.iter().find(|e| e.key == k).unwrap().value.clone();
        assert_eq!(value("DATABASE_URL"), None, "masked whole by its key");
        assert_eq!(value("SENTRY_DSN"), None);
        assert_eq!(value("CACHE").as_deref(), Some("redis://:***@cache:6379"));
        assert_eq!(value("UPSTREAM").as_deref(), Some("https://example.com/api"), "nothing secret, untouched");
        assert_eq!(d.command, ["redis-server", "--requirepass", "***", "--password=***", "--port", "6379"]);
        assert_eq!(d.entrypoint, ["docker-entrypoint.sh"]);
        assert_eq!(d.error.as_deref(), Some("dial postgres://u:***@db:5432 failed"));
        assert_eq!(d.healthcheck_log[0].output, "mysqladmin -uroot -p*** ping: ok");
    }
}
