//! The new container's configuration, made from the old one's inspect (pure;
//! unit-tested here, proven against the engine by `tests/recreate.rs`).
//!
//! Everything the container was given is kept: name, environment, labels
//! (compose's included), command, user, mounts, networks with their aliases
//! and static addresses, published ports, restart policy, healthcheck,
//! resources. What it merely inherited from its old image (environment,
//! labels, command, entrypoint, working directory, user, healthcheck,
//! exposed ports, volumes, stop signal) is left out, so the new image's
//! defaults apply, as `docker compose up` does. Anonymous volumes are
//! mounted into the new container by name, so their data carries over.

use std::collections::{HashMap, HashSet};

use bollard::models::{
    ContainerConfig, ContainerCreateBody, ContainerInspectResponse, EndpointSettings, HostConfig, ImageConfig, Mount,
    MountPointTypeEnum, MountTypeEnum, NetworkingConfig,
};

/// Why a container cannot be recreated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{0} is removed when it stops (--rm): it cannot be put back if the new one fails")]
    AutoRemove(String),
    #[error("the engine's answer for this container has no {0}")]
    Missing(&'static str),
}

/// How to make the new container.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The container's name, without the leading `/`.
    pub name: String,
    pub create: ContainerCreateBody,
    /// Networks to connect after create, before start (the engine takes one
    /// network at create on the API versions this must support).
    pub extra_networks: Vec<(String, EndpointSettings)>,
    /// Anonymous volumes carried over, by name.
    pub carried_volumes: Vec<String>,
}

/// The old container's aside name and the new one's name until the swap.
pub fn aside_name(name: &str) -> String {
    format!("{name}-dockward-old")
}

pub fn temp_name(name: &str) -> String {
    format!("{name}-dockward-new")
}

fn nonempty<T>(v: Option<Vec<T>>) -> Option<Vec<T>> {
    v.filter(|v| !v.is_empty())
}

/// `value` unless it is what the image gave anyway.
fn unless_inherited<T: PartialEq>(value: Option<T>, image: Option<&T>) -> Option<T> {
    match (&value, image) {
        (Some(v), Some(i)) if v == i => None,
        _ => value,
    }
}

pub fn plan(old: &ContainerInspectResponse, image: Option<&ImageConfig>) -> Result<Plan, PlanError> {
    let id = old.id.as_deref().ok_or(PlanError::Missing("id"))?;
    let name = old.name.as_deref().ok_or(PlanError::Missing("name"))?.trim_start_matches('/').to_owned();
    let config = old.config.clone().ok_or(PlanError::Missing("configuration"))?;
    let mut host = old.host_config.clone().ok_or(PlanError::Missing("host configuration"))?;
    if host.auto_remove == Some(true) {
        return Err(PlanError::AutoRemove(name));
    }
    let short_id = &id[..id.len().min(12)];
    let mut create = container_body(config, image, short_id);
    // Sharing another's network namespace (or the host's), the container
    // has no hostname, MAC, ports or DNS of its own: the engine refuses them.
    let mode = host.network_mode.as_deref().unwrap_or("default");
    if mode == "host" || mode.starts_with("container:") {
        (create.hostname, create.domainname, create.mac_address, create.exposed_ports) = (None, None, None, None);
        if mode.starts_with("container:") {
            (host.dns, host.dns_options, host.dns_search, host.extra_hosts) = (None, None, None, None);
            host.port_bindings = None;
            host.publish_all_ports = None;
        }
    }
    let carried_volumes = carry_anonymous_volumes(old, &mut host);
    let (primary, extra_networks) = networks(old, &host, id);
    Ok(Plan {
        name,
        create: ContainerCreateBody {
            host_config: Some(host),
            networking_config: primary
                .map(|(net, ep)| NetworkingConfig { endpoints_config: Some(HashMap::from([(net, ep)])) }),
            ..create
        },
        extra_networks,
        carried_volumes,
    })
}

fn container_body(c: ContainerConfig, image: Option<&ImageConfig>, short_id: &str) -> ContainerCreateBody {
    let empty = ImageConfig::default();
    let img = image.unwrap_or(&empty);
    let image_env: HashSet<&String> = img.env.iter().flatten().collect();
    let env: Vec<String> = c.env.unwrap_or_default().into_iter().filter(|e| !image_env.contains(e)).collect();
    let image_labels = img.labels.clone().unwrap_or_default();
    let labels: HashMap<String, String> =
        c.labels.unwrap_or_default().into_iter().filter(|(k, v)| image_labels.get(k) != Some(v)).collect();
    let image_ports: HashSet<&String> = img.exposed_ports.iter().flat_map(|p| p.keys()).collect();
    let ports: HashMap<_, _> =
        c.exposed_ports.unwrap_or_default().into_iter().filter(|(p, _)| !image_ports.contains(p)).collect();
    let image_volumes: HashSet<&String> = img.volumes.iter().flat_map(|v| v.keys()).collect();
    let volumes: HashMap<_, _> =
        c.volumes.unwrap_or_default().into_iter().filter(|(v, _)| !image_volumes.contains(v)).collect();
    // Docker's rule: an entrypoint given at create drops the image's command.
    let (entrypoint, cmd) = if nonempty(c.entrypoint.clone()) == nonempty(img.entrypoint.clone()) {
        (None, unless_inherited(nonempty(c.cmd), nonempty(img.cmd.clone()).as_ref()))
    } else {
        (c.entrypoint, c.cmd)
    };
    ContainerCreateBody {
        // The engine names a container's host after its short id unless told otherwise.
        hostname: c.hostname.filter(|h| h != short_id && !h.is_empty()),
        domainname: c.domainname.filter(|d| !d.is_empty()),
        user: unless_inherited(c.user.filter(|u| !u.is_empty()), img.user.as_ref()),
        attach_stdin: c.attach_stdin,
        attach_stdout: c.attach_stdout,
        attach_stderr: c.attach_stderr,
        exposed_ports: (!ports.is_empty()).then_some(ports),
        tty: c.tty,
        open_stdin: c.open_stdin,
        stdin_once: c.stdin_once,
        env: (!env.is_empty()).then_some(env),
        cmd,
        healthcheck: unless_inherited(c.healthcheck, img.healthcheck.as_ref()),
        args_escaped: None,
        image: c.image,
        volumes: (!volumes.is_empty()).then_some(volumes),
        working_dir: unless_inherited(c.working_dir.filter(|w| !w.is_empty()), img.working_dir.as_ref()),
        entrypoint,
        network_disabled: c.network_disabled,
        mac_address: c.mac_address.filter(|m| !m.is_empty()),
        on_build: None,
        labels: (!labels.is_empty()).then_some(labels),
        stop_signal: unless_inherited(c.stop_signal.filter(|s| !s.is_empty()), img.stop_signal.as_ref()),
        stop_timeout: c.stop_timeout,
        shell: unless_inherited(nonempty(c.shell), nonempty(img.shell.clone()).as_ref()),
        host_config: None,
        networking_config: None,
    }
}

/// The destination of a `-v` bind (`src:dst[:opts]`, or a lone `dst`).
fn bind_destination(bind: &str) -> Option<&str> {
    let mut parts = bind.split(':');
    let first = parts.next()?;
    Some(parts.next().unwrap_or(first))
}

/// Mounts the old container's anonymous volumes (by name) where they were,
/// so the new container has their data; answers their names.
fn carry_anonymous_volumes(old: &ContainerInspectResponse, host: &mut HostConfig) -> Vec<String> {
    let named: HashSet<String> = host
        .binds
        .iter()
        .flatten()
        .filter_map(|b| bind_destination(b).map(str::to_owned))
        .chain(
            host.mounts
                .iter()
                .flatten()
                .filter(|m| m.source.as_deref().is_some_and(|s| !s.is_empty()))
                .filter_map(|m| m.target.clone()),
        )
        .collect();
    let mut carried = Vec::new();
    for mp in old.mounts.iter().flatten() {
        let (Some(MountPointTypeEnum::VOLUME), Some(vol), Some(dest)) =
            (mp.typ, mp.name.as_ref(), mp.destination.as_ref())
        else {
            continue;
        };
        if named.contains(dest) {
            continue;
        }
        let mounts = host.mounts.get_or_insert_with(Vec::new);
        match mounts.iter_mut().find(|m| m.target.as_deref() == Some(dest)) {
            // `--mount type=volume,target=…` without a source: name it now.
            Some(m) => m.source = Some(vol.clone()),
            None => mounts.push(Mount {
                target: Some(dest.clone()),
                source: Some(vol.clone()),
                typ: Some(MountTypeEnum::VOLUME),
                read_only: mp.rw.map(|rw| !rw).filter(|ro| *ro),
                ..Default::default()
            }),
        }
        carried.push(vol.clone());
    }
    carried
}

/// The network to create the container on, with its endpoint settings, and
/// the others to connect before it starts.
#[allow(clippy::type_complexity)]
fn networks(
    old: &ContainerInspectResponse,
    host: &HostConfig,
    id: &str,
) -> (Option<(String, EndpointSettings)>, Vec<(String, EndpointSettings)>) {
    let mode = host.network_mode.as_deref().unwrap_or("default");
    if mode == "host" || mode == "none" || mode.starts_with("container:") {
        return (None, Vec::new());
    }
    let primary_name = if mode == "default" { "bridge" } else { mode };
    let short_id = &id[..id.len().min(12)];
    let mut primary = None;
    let mut extra = Vec::new();
    let mut nets: Vec<(&String, &EndpointSettings)> =
        old.network_settings.as_ref().and_then(|n| n.networks.as_ref()).into_iter().flatten().collect();
    nets.sort_by(|a, b| a.0.cmp(b.0));
    for (net, ep) in nets {
        let aliases: Vec<String> =
            ep.aliases.iter().flatten().filter(|a| *a != short_id && *a != id).cloned().collect();
        let settings = EndpointSettings {
            ipam_config: ep.ipam_config.clone().filter(|c| {
                c.ipv4_address.as_deref().is_some_and(|a| !a.is_empty())
                    || c.ipv6_address.as_deref().is_some_and(|a| !a.is_empty())
                    || c.link_local_ips.as_ref().is_some_and(|l| !l.is_empty())
            }),
            links: nonempty(ep.links.clone()),
            aliases: (!aliases.is_empty()).then_some(aliases),
            driver_opts: ep.driver_opts.clone().filter(|d| !d.is_empty()),
            ..Default::default()
        };
        let is_primary = net == primary_name || ep.network_id.as_deref().is_some_and(|n| n == primary_name);
        if is_primary && primary.is_none() {
            primary = Some((net.clone(), settings));
        } else {
            extra.push((net.clone(), settings));
        }
    }
    (primary, extra)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{EndpointIpamConfig, MountPoint, NetworkSettings};

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn old() -> ContainerInspectResponse {
        ContainerInspectResponse {
            id: Some(ID.into()),
            name: Some("/web".into()),
            config: Some(ContainerConfig {
                hostname: Some("0123456789ab".into()),
                image: Some("registry.example/app:1".into()),
                env: Some(vec!["PATH=/bin".into(), "MODE=prod".into()]),
                labels: Some(HashMap::from([
                    ("com.docker.compose.project".into(), "shop".into()),
                    ("org.opencontainers.image.version".into(), "1".into()),
                ])),
                cmd: Some(vec!["serve".into()]),
                entrypoint: Some(vec!["/entry".into()]),
                working_dir: Some("/app".into()),
                volumes: Some(HashMap::from([("/cache".into(), HashMap::new()), ("/data".into(), HashMap::new())])),
                ..Default::default()
            }),
            host_config: Some(HostConfig {
                network_mode: Some("shop_default".into()),
                binds: Some(vec!["named:/data".into()]),
                ..Default::default()
            }),
            mounts: Some(vec![
                MountPoint {
                    typ: Some(MountPointTypeEnum::VOLUME),
                    name: Some("named".into()),
                    destination: Some("/data".into()),
                    rw: Some(true),
                    ..Default::default()
                },
                MountPoint {
                    typ: Some(MountPointTypeEnum::VOLUME),
                    name: Some("f00dfeed".into()),
                    destination: Some("/cache".into()),
                    rw: Some(true),
                    ..Default::default()
                },
            ]),
            network_settings: Some(NetworkSettings {
                networks: Some(HashMap::from([
                    (
                        "shop_default".into(),
                        EndpointSettings {
                            aliases: Some(vec!["0123456789ab".into(), "web".into()]),
                            ipam_config: Some(EndpointIpamConfig {
                                ipv4_address: Some("172.30.0.10".into()),
                                ..Default::default()
                            }),
                            ip_address: Some("172.30.0.10".into()),
                            ..Default::default()
                        },
                    ),
                    ("backend".into(), EndpointSettings { aliases: Some(vec!["api".into()]), ..Default::default() }),
                ])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn image() -> ImageConfig {
        ImageConfig {
            env: Some(vec!["PATH=/bin".into()]),
            labels: Some(HashMap::from([("org.opencontainers.image.version".into(), "1".into())])),
            cmd: Some(vec!["serve".into()]),
            entrypoint: Some(vec!["/entry".into()]),
            working_dir: Some("/app".into()),
            volumes: Some(HashMap::from([("/cache".into(), HashMap::new())])),
            ..Default::default()
        }
    }

    #[test]
    fn keeps_what_was_given_and_drops_what_the_image_gave() {
        let p = plan(&old(), Some(&image())).unwrap();
        let c = &p.create;
        assert_eq!(p.name, "web");
        assert_eq!(c.image.as_deref(), Some("registry.example/app:1"));
        assert_eq!(c.env, Some(vec!["MODE=prod".to_owned()]));
        let labels = c.labels.clone().unwrap();
        assert_eq!(labels.get("com.docker.compose.project").map(String::as_str), Some("shop"));
        assert!(!labels.contains_key("org.opencontainers.image.version"), "the image's label stays the image's");
        assert_eq!((c.cmd.clone(), c.entrypoint.clone(), c.working_dir.clone()), (None, None, None));
        assert_eq!(c.hostname, None, "the generated hostname is not carried");
        // Only the user's volume is declared; the image's comes with the new image.
        assert_eq!(c.volumes.as_ref().map(|v| v.keys().cloned().collect::<Vec<_>>()), Some(vec!["/data".to_owned()]));
    }

    #[test]
    fn an_overridden_entrypoint_keeps_its_command() {
        let mut o = old();
        o.config.as_mut().unwrap().entrypoint = Some(vec!["/other".into()]);
        let p = plan(&o, Some(&image())).unwrap();
        assert_eq!(p.create.entrypoint, Some(vec!["/other".to_owned()]));
        assert_eq!(p.create.cmd, Some(vec!["serve".to_owned()]));
    }

    #[test]
    fn anonymous_volumes_are_carried_by_name_and_named_ones_left_to_their_binds() {
        let p = plan(&old(), Some(&image())).unwrap();
        assert_eq!(p.carried_volumes, vec!["f00dfeed".to_owned()]);
        let host = p.create.host_config.unwrap();
        assert_eq!(host.binds, Some(vec!["named:/data".to_owned()]));
        let mounts = host.mounts.unwrap();
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].source.as_deref(), Some("f00dfeed"));
        assert_eq!(mounts[0].target.as_deref(), Some("/cache"));
        assert_eq!(mounts[0].typ, Some(MountTypeEnum::VOLUME));
    }

    #[test]
    fn networks_keep_aliases_and_addresses_but_not_the_old_id() {
        let p = plan(&old(), None).unwrap();
        let primary = p.create.networking_config.unwrap().endpoints_config.unwrap();
        let ep = &primary["shop_default"];
        assert_eq!(ep.aliases, Some(vec!["web".to_owned()]));
        assert_eq!(ep.ipam_config.as_ref().and_then(|c| c.ipv4_address.as_deref()), Some("172.30.0.10"));
        assert_eq!(ep.ip_address, None, "runtime state is not configuration");
        assert_eq!(p.extra_networks.len(), 1);
        assert_eq!(p.extra_networks[0].0, "backend");
        assert_eq!(p.extra_networks[0].1.aliases, Some(vec!["api".to_owned()]));
    }

    #[test]
    fn host_networking_has_no_endpoints_and_auto_remove_is_refused() {
        let mut o = old();
        o.host_config.as_mut().unwrap().network_mode = Some("host".into());
        o.config.as_mut().unwrap().hostname = Some("the-host".into());
        let p = plan(&o, None).unwrap();
        assert!(p.create.networking_config.is_none() && p.extra_networks.is_empty());
        assert_eq!(p.create.hostname, None, "the host's name is not the container's to set");
        o.host_config.as_mut().unwrap().network_mode = Some("container:abc".into());
        o.host_config.as_mut().unwrap().dns = Some(vec!["1.1.1.1".into()]);
        let p = plan(&o, None).unwrap();
        assert_eq!(p.create.host_config.as_ref().unwrap().dns, None, "the engine refuses DNS with container:");
        o.host_config.as_mut().unwrap().auto_remove = Some(true);
        assert!(matches!(plan(&o, None), Err(PlanError::AutoRemove(_))));
    }

    #[test]
    fn bind_destinations() {
        assert_eq!(bind_destination("data:/data:ro"), Some("/data"));
        assert_eq!(bind_destination("/host:/in"), Some("/in"));
        assert_eq!(bind_destination("/lone"), Some("/lone"));
    }
}
