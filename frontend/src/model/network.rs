//! The network map: published ports (and who claims one twice), networks
//! and overlapping subnets.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::Fleet;

/// A published host port and who claims it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortClaim {
    pub host: String,
    pub host_ip: String,
    pub host_port: u16,
    pub protocol: String,
    pub container: String,
    pub container_id: String,
    pub container_port: u16,
    pub project: Option<String>,
    /// More than one container claims this host port.
    pub conflict: bool,
}

pub fn port_claims(fleet: &Fleet) -> Vec<PortClaim> {
    let mut claims = Vec::new();
    for h in &fleet.hosts {
        for c in &h.containers {
            for p in &c.ports {
                let Some(hp) = p.host_port else { continue };
                claims.push(PortClaim {
                    host: h.name.clone(),
                    host_ip: p.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into()),
                    host_port: hp,
                    protocol: p.protocol.clone(),
                    container: c.name.clone(),
                    container_id: c.id.clone(),
                    container_port: p.container_port,
                    project: c.compose_project.clone(),
                    conflict: false,
                });
            }
        }
    }
    // The engine lists IPv4 and IPv6 bindings of one publish separately: count containers, not rows.
    let mut owners: HashMap<(String, u16, String), Vec<String>> = HashMap::new();
    for c in &claims {
        let ids = owners.entry((c.host.clone(), c.host_port, c.protocol.clone())).or_default();
        if !ids.contains(&c.container_id) {
            ids.push(c.container_id.clone());
        }
    }
    for c in &mut claims {
        c.conflict = owners.get(&(c.host.clone(), c.host_port, c.protocol.clone())).is_some_and(|v| v.len() > 1);
    }
    // One row per container and port, whatever order the bindings came in.
    let mut seen = std::collections::HashSet::new();
    claims.retain(|c| seen.insert((c.host.clone(), c.host_port, c.protocol.clone(), c.container_id.clone())));
    claims.sort_by(|a, b| {
        (&a.host, a.host_port, &a.protocol, &a.host_ip).cmp(&(&b.host, b.host_port, &b.protocol, &b.host_ip))
    });
    claims
}

/// A network on a host with its subnet and members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkView {
    pub host: String,
    pub name: String,
    pub subnet: Option<String>,
    pub members: Vec<(String, Option<String>)>,
    /// Another network on the same host has an overlapping subnet.
    pub overlaps_with: Vec<String>,
}

pub fn networks(fleet: &Fleet) -> Vec<NetworkView> {
    let mut out: Vec<NetworkView> = Vec::new();
    for h in &fleet.hosts {
        let mut by_name: BTreeMap<String, NetworkView> = BTreeMap::new();
        for c in &h.containers {
            for n in &c.networks {
                let v = by_name.entry(n.name.clone()).or_insert_with(|| NetworkView {
                    host: h.name.clone(),
                    name: n.name.clone(),
                    subnet: n.subnet.clone(),
                    members: Vec::new(),
                    overlaps_with: Vec::new(),
                });
                if v.subnet.is_none() {
                    v.subnet = n.subnet.clone();
                }
                v.members.push((c.name.clone(), n.ip.clone()));
            }
        }
        let mut nets: Vec<NetworkView> = by_name.into_values().collect();
        for i in 0..nets.len() {
            for j in 0..nets.len() {
                if i == j {
                    continue;
                }
                if let (Some(a), Some(b)) = (&nets[i].subnet, &nets[j].subnet) {
                    if subnets_overlap(a, b) {
                        let other = nets[j].name.clone();
                        nets[i].overlaps_with.push(other);
                    }
                }
            }
        }
        out.extend(nets);
    }
    out
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, len) = s.split_once('/')?;
    Some((ip.parse().ok()?, len.parse().ok()?))
}

/// True when two CIDRs share any address.
pub fn subnets_overlap(a: &str, b: &str) -> bool {
    let (Some((ia, la)), Some((ib, lb))) = (parse_cidr(a), parse_cidr(b)) else { return false };
    let prefix = la.min(lb);
    match (ia, ib) {
        (IpAddr::V4(x), IpAddr::V4(y)) if prefix <= 32 => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
            u32::from(x) & mask == u32::from(y) & mask
        }
        (IpAddr::V6(x), IpAddr::V6(y)) if prefix <= 128 => {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
            u128::from(x) & mask == u128::from(y) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{container, fleet};
    use shared::{ContainerState, Health, PortMapping};

    #[test]
    fn port_conflicts() {
        let mut a = container("a", None, ContainerState::Running, Health::None, "Up");
        let pm = |hp, ip: &str| PortMapping {
            container_port: 80,
            protocol: "tcp".into(),
            host_ip: Some(ip.into()),
            host_port: Some(hp),
        };
        a.ports = vec![pm(8080, "0.0.0.0"), pm(8080, "::")];
        let mut b = container("b", None, ContainerState::Running, Health::None, "Up");
        b.ports = vec![pm(8080, "127.0.0.1"), pm(9090, "0.0.0.0")];
        let claims = port_claims(&fleet(vec![a, b]));
        let c8080: Vec<_> = claims.iter().filter(|c| c.host_port == 8080).collect();
        assert!(c8080.iter().all(|c| c.conflict));
        assert_eq!(c8080.len(), 2, "IPv4/IPv6 rows of one container collapse");
        assert!(!claims.iter().find(|c| c.host_port == 9090).unwrap().conflict);
    }

    #[test]
    fn overlaps() {
        assert!(subnets_overlap("172.18.0.0/16", "172.18.5.0/24"));
        assert!(!subnets_overlap("172.18.0.0/16", "172.19.0.0/16"));
        assert!(subnets_overlap("10.0.0.0/8", "10.200.0.0/16"));
        assert!(!subnets_overlap("fd00::/64", "10.0.0.0/8"));
        assert!(!subnets_overlap("junk", "10.0.0.0/8"));
    }
}
