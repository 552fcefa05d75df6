//! The console's view model: pure functions from the fleet's wire data to
//! what the pages show (groups, badges, the headline, conflicts). Compiled for
//! both the server and the browser, and unit-tested without either.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use shared::{ContainerState, ContainerSummary, Health};

/// The state of one sidecar as the web server sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum HostStatus {
    /// Fresh data.
    Connected,
    /// No fresh data for a while; `age_s` says how old the last data is.
    Stale { age_s: u64 },
    /// Unreachable or refusing; the last error.
    Down { error: String, age_s: Option<u64> },
}

/// One host's latest data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostView {
    pub name: String,
    pub status: HostStatus,
    pub containers: Vec<ContainerSummary>,
    /// Volume sizes by name (from the sidecar's disk report).
    #[serde(default)]
    pub volume_sizes: BTreeMap<String, i64>,
    /// CPU % per container id over the last 15 minutes, oldest first (for sparklines).
    #[serde(default)]
    pub cpu_history: BTreeMap<String, Vec<f32>>,
}

/// The whole fleet, as pushed to browsers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Fleet {
    pub hosts: Vec<HostView>,
    /// Unix milliseconds when the server assembled this.
    pub at_ms: i64,
}

/// A badge's colour class; always shown with text, never colour alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Badge {
    Green,
    Amber,
    Red,
}

impl Badge {
    pub fn class(self) -> &'static str {
        match self {
            Self::Green => "badge-green",
            Self::Amber => "badge-amber",
            Self::Red => "badge-red",
        }
    }
}

/// One container's badge and the words for it.
pub fn container_badge(c: &ContainerSummary) -> (Badge, &'static str) {
    match (c.state, c.health) {
        (_, Health::Unhealthy) => (Badge::Red, "unhealthy"),
        (ContainerState::Restarting, _) => (Badge::Red, "restarting"),
        (ContainerState::Dead, _) => (Badge::Red, "dead"),
        (ContainerState::Exited, _) if exit_code_from_status(&c.status) != Some(0) => (Badge::Red, "exited"),
        (ContainerState::Exited, _) => (Badge::Green, "stopped"),
        (_, Health::Starting) => (Badge::Amber, "starting"),
        (ContainerState::Created, _) => (Badge::Amber, "created"),
        (ContainerState::Paused, _) => (Badge::Amber, "paused"),
        (ContainerState::Running, Health::Healthy) => (Badge::Green, "healthy"),
        (ContainerState::Running, _) => (Badge::Green, "running"),
        _ => (Badge::Amber, "unknown"),
    }
}

/// `Exited (137) 5 minutes ago` → 137.
pub fn exit_code_from_status(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest.split(')').next()?.trim().parse().ok()
}

/// Containers grouped as app cards: one per compose project on a host,
/// the rest under "standalone".
#[derive(Debug, Clone, PartialEq)]
pub struct AppGroup {
    pub host: String,
    pub project: Option<String>,
    pub containers: Vec<ContainerSummary>,
    pub badge: Badge,
    pub cpu_percent: f64,
    pub memory_bytes: u64,
    pub memory_limit_bytes: u64,
    /// The app's total CPU % over the last 15 minutes, oldest first.
    pub cpu_series: Vec<f64>,
    /// Data volume size of each protected (database) container, by container id.
    pub db_sizes: BTreeMap<String, i64>,
}

impl AppGroup {
    pub fn title(&self) -> &str {
        self.project.as_deref().unwrap_or("standalone")
    }

    /// A stable DOM id for the card.
    pub fn key(&self) -> String {
        format!("{}/{}", self.host, self.title())
    }
}

pub fn group_apps(fleet: &Fleet) -> Vec<AppGroup> {
    let mut out = Vec::new();
    for host in &fleet.hosts {
        let mut groups: BTreeMap<Option<String>, Vec<ContainerSummary>> = BTreeMap::new();
        for c in &host.containers {
            groups.entry(c.compose_project.clone()).or_default().push(c.clone());
        }
        for (project, mut containers) in groups {
            containers.sort_by(|a, b| a.name.cmp(&b.name));
            let badge = containers.iter().map(|c| container_badge(c).0).max().unwrap_or(Badge::Green);
            let cpu_percent = containers.iter().filter_map(|c| c.stats.as_ref()?.cpu_percent).sum();
            let memory_bytes = containers.iter().filter_map(|c| Some(c.stats.as_ref()?.memory_bytes)).sum();
            let memory_limit_bytes =
                containers.iter().filter_map(|c| Some(c.stats.as_ref()?.memory_limit_bytes)).max().unwrap_or(0);
            // Sum the members' series, aligned on their newest point.
            let len = containers.iter().filter_map(|c| host.cpu_history.get(&c.id)).map(Vec::len).max().unwrap_or(0);
            let mut cpu_series = vec![0.0f64; len];
            for c in &containers {
                if let Some(h) = host.cpu_history.get(&c.id) {
                    for (i, v) in h.iter().enumerate() {
                        cpu_series[len - h.len() + i] += f64::from(*v);
                    }
                }
            }
            let db_sizes = containers
                .iter()
                .filter(|c| c.protected)
                .map(|c| {
                    let size = c.mounts.iter().filter_map(|m| host.volume_sizes.get(m.name.as_ref()?)).sum::<i64>();
                    (c.id.clone(), size)
                })
                .filter(|(_, s)| *s > 0)
                .collect();
            out.push(AppGroup {
                host: host.name.clone(),
                project,
                containers,
                badge,
                cpu_percent,
                memory_bytes,
                memory_limit_bytes,
                cpu_series,
                db_sizes,
            });
        }
    }
    // Named projects first, then standalone; worst first within each.
    out.sort_by(|a, b| {
        (a.project.is_none(), std::cmp::Reverse(a.badge), a.title(), &a.host).cmp(&(
            b.project.is_none(),
            std::cmp::Reverse(b.badge),
            b.title(),
            &b.host,
        ))
    });
    out
}

/// The one-line answer to "is everything green?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headline {
    pub badge: Badge,
    pub text: String,
}

pub fn headline(fleet: &Fleet) -> Headline {
    let total: usize = fleet.hosts.iter().map(|h| h.containers.len()).sum();
    let attention =
        fleet.hosts.iter().flat_map(|h| &h.containers).filter(|c| container_badge(c).0 != Badge::Green).count();
    let down = fleet.hosts.iter().filter(|h| !matches!(h.status, HostStatus::Connected)).count();
    let plural = |n: usize, one: &str, many: &str| if n == 1 { format!("{n} {one}") } else { format!("{n} {many}") };
    match (attention, down) {
        (0, 0) if total == 0 => Headline { badge: Badge::Amber, text: "No containers yet".into() },
        (0, 0) => {
            Headline { badge: Badge::Green, text: format!("All {} healthy", plural(total, "container", "containers")) }
        }
        (0, d) => Headline { badge: Badge::Amber, text: format!("{} not reporting", plural(d, "host", "hosts")) },
        (a, 0) => {
            Headline { badge: Badge::Red, text: format!("{} need{} attention", a, if a == 1 { "s" } else { "" }) }
        }
        (a, d) => Headline {
            badge: Badge::Red,
            text: format!(
                "{} need{} attention; {} not reporting",
                a,
                if a == 1 { "s" } else { "" },
                plural(d, "host", "hosts")
            ),
        },
    }
}

/// Case-insensitive filter over name, image, state, host and project.
pub fn matches_filter(host: &str, c: &ContainerSummary, filter: &str) -> bool {
    let f = filter.trim().to_lowercase();
    if f.is_empty() {
        return true;
    }
    f.split_whitespace().all(|term| {
        let state = format!("{:?}", c.state).to_lowercase();
        c.name.to_lowercase().contains(term)
            || c.image.to_lowercase().contains(term)
            || state == term
            || container_badge(c).1 == term
            || host.to_lowercase().contains(term)
            || c.compose_project.as_deref().is_some_and(|p| p.to_lowercase().contains(term))
    })
}

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

/// `1536` → `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// `3725` → `1h 2m`.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// SVG polyline points for a sparkline of `values` in a `w`×`h` box.
pub fn sparkline_points(values: &[f64], w: f64, h: f64) -> String {
    if values.is_empty() {
        return String::new();
    }
    let max = values.iter().copied().fold(f64::MIN, f64::max).max(1e-9);
    let step = if values.len() > 1 { w / (values.len() - 1) as f64 } else { 0.0 };
    values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", i as f64 * step, h - (v / max).clamp(0.0, 1.0) * h))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Test fixtures shared by the model's and the pages' tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{container, fleet};
    use super::*;
    use shared::{PortMapping, StatsSample};

    #[test]
    fn badges() {
        use ContainerState::*;
        let b = |s, h, st: &str| container_badge(&container("x", None, s, h, st)).0;
        assert_eq!(b(Running, Health::Healthy, "Up"), Badge::Green);
        assert_eq!(b(Running, Health::None, "Up"), Badge::Green);
        assert_eq!(b(Running, Health::Unhealthy, "Up"), Badge::Red);
        assert_eq!(b(Running, Health::Starting, "Up"), Badge::Amber);
        assert_eq!(b(Restarting, Health::None, ""), Badge::Red);
        assert_eq!(b(Dead, Health::None, ""), Badge::Red);
        assert_eq!(b(Exited, Health::None, "Exited (137) 2 minutes ago"), Badge::Red);
        assert_eq!(b(Exited, Health::None, "Exited (0) 2 minutes ago"), Badge::Green);
    }

    #[test]
    fn groups_and_headline() {
        use ContainerState::*;
        let mut web = container("web", Some("shop"), Running, Health::Healthy, "Up");
        web.stats = Some(StatsSample {
            id: "web-id".into(),
            time_ms: 0,
            cpu_percent: Some(12.5),
            memory_bytes: 100,
            memory_limit_bytes: 1000,
            net_rx_bytes: 0,
            net_tx_bytes: 0,
            block_read_bytes: 0,
            block_write_bytes: 0,
            pids: 1,
        });
        let db = container("db", Some("shop"), Running, Health::Starting, "Up");
        let lone = container("lone", None, Running, Health::None, "Up");
        let f = fleet(vec![web, db, lone]);
        let g = group_apps(&f);
        assert_eq!(g.iter().map(|g| g.title()).collect::<Vec<_>>(), ["shop", "standalone"]);
        assert_eq!(g[0].badge, Badge::Amber);
        assert_eq!(g[0].containers[0].name, "db");
        assert!((g[0].cpu_percent - 12.5).abs() < 1e-9);
        assert_eq!(headline(&f).text, "1 needs attention");
        let all_green = fleet(vec![
            container("a", None, Running, Health::None, "Up"),
            container("b", None, Running, Health::Healthy, "Up"),
        ]);
        assert_eq!(headline(&all_green), Headline { badge: Badge::Green, text: "All 2 containers healthy".into() });
        let mut down = all_green.clone();
        down.hosts.push(HostView {
            name: "b".into(),
            status: HostStatus::Down { error: "x".into(), age_s: None },
            containers: vec![],
            volume_sizes: Default::default(),
            cpu_history: Default::default(),
        });
        assert_eq!(headline(&down).text, "1 host not reporting");
    }

    #[test]
    fn sparkline_series_and_database_sizes() {
        use ContainerState::*;
        let mut db = container("db", Some("shop"), Running, Health::None, "Up");
        db.protected = true;
        db.mounts = vec![shared::Mount {
            kind: "volume".into(),
            name: Some("pgdata".into()),
            source: None,
            destination: "/data".into(),
            read_write: true,
        }];
        let web = container("web", Some("shop"), Running, Health::None, "Up");
        let mut f = fleet(vec![db, web]);
        f.hosts[0].volume_sizes.insert("pgdata".into(), 4096);
        f.hosts[0].cpu_history.insert("db-id".into(), vec![1.0, 2.0, 3.0]);
        f.hosts[0].cpu_history.insert("web-id".into(), vec![10.0]);
        let g = &group_apps(&f)[0];
        assert_eq!(g.cpu_series, vec![1.0, 2.0, 13.0], "aligned on the newest point");
        assert_eq!(g.db_sizes.get("db-id"), Some(&4096));
        assert!(!g.db_sizes.contains_key("web-id"));
    }

    #[test]
    fn filter() {
        let c = container("shop-web-1", Some("shop"), ContainerState::Exited, Health::None, "Exited (1) now");
        assert!(matches_filter("a", &c, "WEB"));
        assert!(matches_filter("a", &c, "exited"));
        assert!(matches_filter("a", &c, "shop web"));
        assert!(!matches_filter("a", &c, "db"));
        assert!(matches_filter("a", &c, "  "));
    }

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

    #[test]
    fn humans() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_duration(3725), "1h 2m");
        assert_eq!(human_duration(59), "59s");
        assert_eq!(sparkline_points(&[0.0, 1.0], 10.0, 10.0), "0.0,10.0 10.0,0.0");
        assert_eq!(exit_code_from_status("Exited (137) 5 minutes ago"), Some(137));
    }
}

/// Case-insensitive plain-text highlighting: (matched?, piece).
pub fn highlight_plain(text: &str, q: &str) -> Vec<(bool, String)> {
    if q.is_empty() {
        return vec![(false, text.to_owned())];
    }
    let lower = text.to_lowercase();
    let ql = q.to_lowercase();
    // Lowercasing can change byte lengths outside ASCII; fall back to no highlight there.
    if lower.len() != text.len() {
        return vec![(lower.contains(&ql), text.to_owned())];
    }
    let mut out = Vec::new();
    let mut last = 0;
    for (i, _) in lower.match_indices(&ql) {
        if i < last || !text.is_char_boundary(i) || !text.is_char_boundary(i + ql.len()) {
            continue;
        }
        if i > last {
            out.push((false, text[last..i].to_owned()));
        }
        out.push((true, text[i..i + ql.len()].to_owned()));
        last = i + ql.len();
    }
    if last < text.len() {
        out.push((false, text[last..].to_owned()));
    }
    out
}

/// Splits a log line on ANSI SGR escapes into (CSS classes, text) pieces; the
/// escapes themselves are dropped, and every other control character too.
pub fn ansi_spans(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut fg: Option<u8> = None;
    let mut bold = false;
    let mut cur = String::new();
    let class = |fg: Option<u8>, bold: bool| {
        let mut c = String::from("ansi");
        if let Some(f) = fg {
            c.push_str(&format!(" fg{f}"));
        }
        if bold {
            c.push_str(" bold");
        }
        c
    };
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                let mut params = String::new();
                let mut fin = None;
                for c in chars.by_ref() {
                    if c.is_ascii_digit() || c == ';' {
                        params.push(c);
                    } else {
                        fin = Some(c);
                        break;
                    }
                }
                if fin == Some('m') {
                    if !cur.is_empty() {
                        out.push((class(fg, bold), std::mem::take(&mut cur)));
                    }
                    for p in params.split(';') {
                        match p.parse::<u8>().unwrap_or(0) {
                            0 => {
                                fg = None;
                                bold = false;
                            }
                            1 => bold = true,
                            22 => bold = false,
                            n @ 30..=37 => fg = Some(n - 30),
                            n @ 90..=97 => fg = Some(n - 90 + 8),
                            39 => fg = None,
                            _ => {}
                        }
                    }
                }
            }
            continue;
        }
        if ch.is_control() && ch != '\t' {
            continue;
        }
        cur.push(ch);
    }
    if !cur.is_empty() || out.is_empty() {
        out.push((class(fg, bold), cur));
    }
    out
}

#[cfg(test)]
mod text_tests {
    use super::*;

    #[test]
    fn ansi_is_parsed_and_dropped() {
        let spans = ansi_spans("\u{1b}[31mred\u{1b}[0m plain \u{1b}[1;32mbold green");
        assert_eq!(
            spans,
            vec![
                ("ansi fg1".to_owned(), "red".to_owned()),
                ("ansi".to_owned(), " plain ".to_owned()),
                ("ansi fg2 bold".to_owned(), "bold green".to_owned())
            ]
        );
        // Other escapes and control characters vanish; markup stays text.
        let spans = ansi_spans("<script>\u{1b}[2Kx\u{7}</script>");
        assert_eq!(spans, vec![("ansi".to_owned(), "<script>x</script>".to_owned())]);
    }

    #[test]
    fn plain_highlight() {
        assert_eq!(
            highlight_plain("Error: BAD error", "error"),
            vec![(true, "Error".into()), (false, ": BAD ".into()), (true, "error".into())]
        );
        assert_eq!(highlight_plain("abc", ""), vec![(false, "abc".into())]);
    }
}
