//! The fleet as the web server assembles it and pushes it to browsers: each
//! host's status and latest data, and the changes that move it on.
//!
//! The live stream (`/api/live`) sends a page a [`Fleet`] once (`snapshot`,
//! or `resync` after a gap) and then [`Delta`]s: only what changed, cut to
//! what the page shows ([`Scope`]). The server keeps its own copy by applying
//! the very same deltas with [`Fleet::apply`], so a browser that applies
//! every delta it is sent holds exactly what the server holds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shared::{ContainerSummary, StatsSample};

use super::{Folded, Opened};

/// The state of one sidecar as the web server sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum HostStatus {
    /// Fresh data.
    Connected,
    /// No fresh data for a while; `age_s` says how old the last data is.
    Stale { age_s: u64 },
    /// Unreachable or refusing; the last error.
    Down {
        error: String,
        age_s: Option<u64>,
        /// The sidecar answers but cannot use its Docker engine: why, and the fix.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        engine: Option<shared::EngineProblem>,
    },
    /// It presented a certificate that is not pinned: nothing is sent to it
    /// (not even its secret) until its pin file names that certificate.
    IdentityChanged { presented: String },
}

impl HostStatus {
    /// Whether a page would show `other` alike: the kind and the error, and
    /// a stale host's age in steps (10 s, 30 s, 1, 5, 15 minutes, 1 hour, a
    /// day), not the ages that tick every second.
    pub fn same_as(&self, other: &HostStatus) -> bool {
        fn step(age_s: u64) -> usize {
            [10, 30, 60, 300, 900, 3_600, 86_400].iter().take_while(|s| age_s >= **s).count()
        }
        match (self, other) {
            (Self::Connected, Self::Connected) => true,
            (Self::Stale { age_s: a }, Self::Stale { age_s: b }) => step(*a) == step(*b),
            (Self::Down { error: a, engine: ea, .. }, Self::Down { error: b, engine: eb, .. }) => a == b && ea == eb,
            (Self::IdentityChanged { presented: a }, Self::IdentityChanged { presented: b }) => a == b,
            _ => false,
        }
    }
}

/// One host's latest data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostView {
    pub name: String,
    pub status: HostStatus,
    /// Reached over plain HTTP: its secret and answers cross the network in clear.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unencrypted: bool,
    pub containers: Vec<ContainerSummary>,
    /// Volume sizes by name (from the sidecar's disk report).
    #[serde(default)]
    pub volume_sizes: BTreeMap<String, i64>,
    /// CPU % per container id, one point per [`SPARK_BUCKET_MS`], the last
    /// [`SPARK_POINTS`], oldest first (for sparklines).
    #[serde(default)]
    pub cpu_history: BTreeMap<String, Vec<f32>>,
    /// The overview's healthy apps it does not hold whole, summed, by
    /// project ([`super::overview`]); empty elsewhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub folded: Vec<Folded>,
}

/// The whole fleet (or the part of it a page shows), as pushed to browsers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Fleet {
    pub hosts: Vec<HostView>,
    /// Unix milliseconds when the server assembled this.
    pub at_ms: i64,
    /// The sparkline bucket (Unix ms / [`SPARK_BUCKET_MS`]) of every
    /// sparkline's newest point.
    #[serde(default)]
    pub spark_bucket: i64,
    /// What [`super::first_screen`] left out (the overview's first render);
    /// `None` for the whole fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omitted: Option<super::Omitted>,
    /// Alerts firing (the header's count; the alerts page is server-rendered).
    #[serde(default)]
    pub alerts: u32,
}

/// Points of a sparkline…
pub const SPARK_POINTS: usize = 30;
/// …one per this much wall-clock time: 15 minutes in all.
pub const SPARK_BUCKET_MS: i64 = 30_000;

/// The sparkline bucket of a Unix time in milliseconds.
pub fn spark_bucket(at_ms: i64) -> i64 {
    at_ms.div_euclid(SPARK_BUCKET_MS)
}

/// A container's stats as the pages show them: CPU to 0.1 %, memory to 1 MiB.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LiveStats {
    pub cpu: Option<f64>,
    pub mem: u64,
    pub limit: u64,
}

const MIB: u64 = 1 << 20;

impl LiveStats {
    pub fn of(s: &StatsSample) -> Self {
        Self {
            cpu: s.cpu_percent.map(|v| (v * 10.0).round() / 10.0),
            mem: s.memory_bytes.saturating_add(MIB / 2) / MIB * MIB,
            limit: s.memory_limit_bytes,
        }
    }

    /// A sample carrying only what the pages show (the rest zero).
    pub fn sample(&self, id: &str) -> StatsSample {
        StatsSample {
            id: id.to_owned(),
            time_ms: 0,
            cpu_percent: self.cpu,
            memory_bytes: self.mem,
            memory_limit_bytes: self.limit,
            net_rx_bytes: 0,
            net_tx_bytes: 0,
            block_read_bytes: 0,
            block_write_bytes: 0,
            pids: 0,
        }
    }
}

/// One change to the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Change {
    /// A host's status changed.
    Host { host: String, status: HostStatus },
    /// A container appeared, or changed in anything but its stats (state,
    /// health, restart count, ports…). Its stats are the [`LiveStats`] ones.
    Upsert { host: String, c: Box<ContainerSummary> },
    /// A container is gone.
    Remove { host: String, id: String },
    /// A container's stats changed at display precision; `None`: it has none
    /// any more (it stopped).
    Stats { host: String, id: String, s: Option<LiveStats> },
    /// A host's volume sizes (its disk report).
    Volumes { host: String, sizes: BTreeMap<String, i64> },
    /// A container's sparkline, whole (one the overview starts to hold).
    History { host: String, id: String, h: Vec<f32> },
    /// A folded app on a host: new, or changed ([`Folded::spark`]).
    Fold { host: String, f: Box<Folded> },
    /// A folded app on a host is gone (unfolded, or it has no container left).
    Unfold { host: String, project: Option<String> },
    /// How many alerts fire (of no host: the fleet's).
    Alerts { n: u32 },
}

impl Change {
    pub fn host(&self) -> &str {
        match self {
            Self::Host { host, .. }
            | Self::Upsert { host, .. }
            | Self::Remove { host, .. }
            | Self::Stats { host, .. }
            | Self::Volumes { host, .. }
            | Self::History { host, .. }
            | Self::Fold { host, .. }
            | Self::Unfold { host, .. } => host,
            Self::Alerts { .. } => "",
        }
    }
}

/// The changes of one moment, in order. A delta with no change moves the
/// sparklines on to `bucket`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    pub at_ms: i64,
    pub bucket: i64,
    pub changes: Vec<Change>,
}

impl Fleet {
    /// Follows one event of the live stream: a `snapshot` or `resync`
    /// replaces the fleet, a `delta` moves it on. Anything else, or data
    /// that does not parse, is an error and changes nothing.
    pub fn follow(&mut self, event: &str, data: &str) -> Result<(), String> {
        match event {
            "snapshot" | "resync" => *self = serde_json::from_slice(data.as_bytes()).map_err(|e| e.to_string())?,
            "delta" => self.apply(&serde_json::from_slice(data.as_bytes()).map_err(|e| e.to_string())?),
            other => return Err(format!("not a live event: {other}")),
        }
        Ok(())
    }

    /// Moves the fleet on by one delta (the server and every browser alike).
    pub fn apply(&mut self, d: &Delta) {
        self.roll(d.bucket);
        self.at_ms = d.at_ms;
        for change in &d.changes {
            if let Change::Alerts { n } = change {
                self.alerts = *n;
                continue;
            }
            let Some(h) = self.hosts.iter_mut().find(|h| h.name == change.host()) else { continue };
            match change {
                Change::Host { status, .. } => h.status = status.clone(),
                Change::Upsert { c, .. } => match h.containers.iter_mut().find(|x| x.id == c.id) {
                    Some(x) => *x = (**c).clone(),
                    None => {
                        let at = h.containers.partition_point(|x| x.name < c.name);
                        h.containers.insert(at, (**c).clone());
                    }
                },
                Change::Remove { id, .. } => {
                    h.containers.retain(|x| &x.id != id);
                    h.cpu_history.remove(id);
                }
                Change::Stats { id, s, .. } => {
                    let Some(x) = h.containers.iter_mut().find(|x| &x.id == id) else { continue };
                    x.stats = s.map(|s| s.sample(id));
                    let cpu = s.and_then(|s| s.cpu).unwrap_or(0.0) as f32;
                    let line = h.cpu_history.entry(id.clone()).or_default();
                    match line.last_mut() {
                        Some(last) => *last = cpu,
                        None => line.push(cpu),
                    }
                }
                Change::Volumes { sizes, .. } => h.volume_sizes = sizes.clone(),
                Change::History { id, h: line, .. } => {
                    h.cpu_history.insert(id.clone(), line.clone());
                }
                Change::Fold { f, .. } => {
                    let at = h.folded.partition_point(|x| x.project < f.project);
                    match h.folded.get_mut(at).filter(|x| x.project == f.project) {
                        Some(x) => {
                            let mut spark = std::mem::take(&mut x.spark);
                            if f.spark.is_empty() {
                                match spark.last_mut() {
                                    Some(last) => *last = f.cpu as f32,
                                    None => spark.push(f.cpu as f32),
                                }
                            } else {
                                spark = f.spark.clone();
                            }
                            *x = Folded { spark, ..(**f).clone() };
                        }
                        None => h.folded.insert(at, (**f).clone()),
                    }
                }
                Change::Unfold { project, .. } => h.folded.retain(|x| &x.project != project),
                Change::Alerts { .. } => {}
            }
        }
    }

    /// Starts the sparklines' buckets up to `bucket`, each at its container's
    /// current CPU (zero without stats): a value that does not change costs
    /// no message, and still draws a line.
    fn roll(&mut self, bucket: i64) {
        if bucket <= self.spark_bucket {
            return;
        }
        let steps = if self.spark_bucket == 0 { 1 } else { (bucket - self.spark_bucket).min(SPARK_POINTS as i64) };
        self.spark_bucket = bucket;
        for h in &mut self.hosts {
            for c in &h.containers {
                let Some(line) = h.cpu_history.get_mut(&c.id) else { continue };
                let cpu = c.stats.as_ref().and_then(|s| s.cpu_percent).unwrap_or(0.0) as f32;
                line.extend(std::iter::repeat_n(cpu, steps as usize));
                let extra = line.len().saturating_sub(SPARK_POINTS);
                line.drain(..extra);
            }
            for f in h.folded.iter_mut().filter(|f| !f.spark.is_empty()) {
                f.spark.extend(std::iter::repeat_n(f.cpu as f32, steps as usize));
                let extra = f.spark.len().saturating_sub(SPARK_POINTS);
                f.spark.drain(..extra);
            }
        }
    }

    /// What of the fleet a page with `scope` shows (for the overview,
    /// [`super::overview`]: its healthy apps folded once the fleet is large).
    pub fn project(&self, scope: &Scope) -> Fleet {
        if let Scope::Overview(opened) = scope {
            return super::overview(self, opened);
        }
        let hosts = self
            .hosts
            .iter()
            .map(|h| {
                let containers: Vec<ContainerSummary> = h
                    .containers
                    .iter()
                    .filter(|c| matches!(scope, Scope::Network) || scope.keeps_container(&h.name, c))
                    .map(|c| scope.cut(c.clone()))
                    .collect();
                let cpu_history = match scope {
                    Scope::Container { .. } => containers
                        .iter()
                        .filter_map(|c| Some((c.id.clone(), h.cpu_history.get(&c.id)?.clone())))
                        .collect(),
                    _ => BTreeMap::new(),
                };
                HostView {
                    name: h.name.clone(),
                    status: h.status.clone(),
                    unencrypted: h.unencrypted,
                    volume_sizes: BTreeMap::new(),
                    containers,
                    cpu_history,
                    folded: Vec::new(),
                }
            })
            .collect();
        Fleet { hosts, at_ms: self.at_ms, spark_bucket: self.spark_bucket, omitted: self.omitted, alerts: self.alerts }
    }
}

impl Delta {
    /// The part of this delta a page with `scope` shows, if any; not for
    /// the overview, whose part depends on what it holds
    /// ([`super::follow_overview`]).
    pub fn project(&self, scope: &Scope) -> Option<Delta> {
        let changes: Vec<Change> = self
            .changes
            .iter()
            .filter(|c| scope.keeps_change(c))
            .map(|c| match c {
                Change::Upsert { host, c } => {
                    Change::Upsert { host: host.clone(), c: Box::new(scope.cut((**c).clone())) }
                }
                other => other.clone(),
            })
            .collect();
        (!changes.is_empty()).then_some(Delta { at_ms: self.at_ms, bucket: self.bucket, changes })
    }
}

/// What a page shows of the live fleet, and so what its stream carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every container with its stats and sparkline (the overview), its
    /// healthy apps folded once the fleet is large, but those it opened.
    Overview(Opened),
    /// Every container, without stats (the network map).
    Network,
    /// The hosts' statuses only (pages that show no live container).
    Hosts,
    /// One container (a name, full id or id prefix) on one host, with its
    /// stats (its detail and logs pages), and the hosts' statuses.
    Container { host: String, reference: String },
}

/// Longest host name or container reference a scope may name.
const SCOPE_NAME_MAX: usize = 128;

impl Scope {
    /// The overview as it opens: nothing opened, no filter.
    pub fn overview() -> Self {
        Self::Overview(Opened::default())
    }

    /// A scope from the stream's query (`scope`, and `host` and `id` for a
    /// container, `open` and `filter` for the overview).
    pub fn parse(scope: Option<&str>, host: Option<&str>, id: Option<&str>) -> Result<Self, String> {
        Self::parse_with(scope, host, id, None, None)
    }

    /// [`Self::parse`], with the overview's `open` and `filter`.
    pub fn parse_with(
        scope: Option<&str>,
        host: Option<&str>,
        id: Option<&str>,
        open: Option<&str>,
        filter: Option<&str>,
    ) -> Result<Self, String> {
        let name = scope.unwrap_or("overview");
        if name != "overview" && (open.is_some() || filter.is_some()) {
            return Err("only scope=overview takes open and filter".to_owned());
        }
        let named = |what: &str, v: Option<&str>| -> Result<String, String> {
            match v {
                Some(v) if !v.is_empty() && v.len() <= SCOPE_NAME_MAX && !v.chars().any(char::is_control) => {
                    Ok(v.to_owned())
                }
                Some(_) => Err(format!("{what} must be 1 to {SCOPE_NAME_MAX} printable characters")),
                None => Err(format!("scope=container needs {what}")),
            }
        };
        let plain = |s: Scope| {
            if host.is_some() || id.is_some() {
                Err("only scope=container takes host and id".to_owned())
            } else {
                Ok(s)
            }
        };
        match name {
            "overview" => plain(Scope::Overview(Opened::parse(open, filter)?)),
            "network" => plain(Scope::Network),
            "hosts" => plain(Scope::Hosts),
            "container" => Ok(Scope::Container { host: named("host", host)?, reference: named("id", id)? }),
            other => Err(format!(
                "unknown scope {:?}: one of overview, network, hosts, container",
                other.chars().take(32).collect::<String>()
            )),
        }
    }

    /// The query string naming this scope (for the stream's URL).
    pub fn query(&self) -> String {
        match self {
            Self::Overview(o) => format!("scope=overview{}", o.query()),
            Self::Network => "scope=network".into(),
            Self::Hosts => "scope=hosts".into(),
            Self::Container { host, reference } => {
                format!("scope=container&host={}&id={}", url_encode(host), url_encode(reference))
            }
        }
    }

    /// The scope as the server function `get_fleet` takes it: name, host, id.
    pub fn parts(&self) -> (String, Option<String>, Option<String>) {
        match self {
            Self::Overview(_) => ("overview".into(), None, None),
            Self::Network => ("network".into(), None, None),
            Self::Hosts => ("hosts".into(), None, None),
            Self::Container { host, reference } => ("container".into(), Some(host.clone()), Some(reference.clone())),
        }
    }

    /// Whether a page with this scope shows stats (of every host, or of one).
    pub fn stats_of(&self) -> Option<Option<&str>> {
        match self {
            Self::Overview(_) => Some(None),
            Self::Container { host, .. } => Some(Some(host)),
            Self::Network | Self::Hosts => None,
        }
    }

    fn names(&self, host: &str, id: &str, name: Option<&str>) -> bool {
        match self {
            Self::Container { host: h, reference } => {
                h == host && (id == reference || name == Some(reference.as_str()) || id.starts_with(reference.as_str()))
            }
            _ => false,
        }
    }

    fn keeps_container(&self, host: &str, c: &ContainerSummary) -> bool {
        self.names(host, &c.id, Some(&c.name))
    }

    fn keeps_change(&self, change: &Change) -> bool {
        match (self, change) {
            (_, Change::Host { .. } | Change::Alerts { .. }) | (Self::Overview(_), _) => true,
            (Self::Network, Change::Upsert { .. } | Change::Remove { .. }) => true,
            (Self::Container { .. }, Change::Upsert { host, c }) => self.keeps_container(host, c),
            (Self::Container { .. }, Change::Remove { host, id } | Change::Stats { host, id, .. }) => {
                self.names(host, id, None)
            }
            _ => false,
        }
    }

    /// A container as this scope shows it (the network map has no stats).
    fn cut(&self, mut c: ContainerSummary) -> ContainerSummary {
        if self.stats_of().is_none() {
            c.stats = None;
        }
        c
    }
}

/// Percent-encodes all but unreserved characters (RFC 3986).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{container, fleet};
    use shared::{ContainerState, Health};

    fn stats(cpu: f64, mem: u64) -> LiveStats {
        LiveStats { cpu: Some(cpu), mem, limit: 1 << 30 }
    }

    fn delta(at_ms: i64, changes: Vec<Change>) -> Delta {
        Delta { at_ms, bucket: spark_bucket(at_ms), changes }
    }

    #[test]
    fn live_stats_are_at_display_precision() {
        let mut s = LiveStats { cpu: None, mem: 0, limit: 0 }.sample("x");
        s.cpu_percent = Some(12.34);
        s.memory_bytes = (100 << 20) + 300_000;
        assert_eq!(LiveStats::of(&s), LiveStats { cpu: Some(12.3), mem: 100 << 20, limit: 0 });
        s.memory_bytes = (100 << 20) + 600_000;
        assert_eq!(LiveStats::of(&s).mem, 101 << 20);
    }

    #[test]
    fn deltas_move_a_fleet_as_a_new_snapshot_would_show_it() {
        let mut f = fleet(vec![container("web", Some("shop"), ContainerState::Running, Health::None, "Up")]);
        let t = 1_000_000 * SPARK_BUCKET_MS;
        let mut db = container("db", Some("shop"), ContainerState::Running, Health::None, "Up");
        db.stats = Some(stats(1.0, 5 << 20).sample(&db.id));
        f.apply(&delta(
            t,
            vec![
                Change::Upsert { host: "a".into(), c: Box::new(db.clone()) },
                Change::Stats { host: "a".into(), id: "web-id".into(), s: Some(stats(2.5, 10 << 20)) },
                Change::Host { host: "a".into(), status: HostStatus::Stale { age_s: 9 } },
                Change::Host { host: "nowhere".into(), status: HostStatus::Connected },
            ],
        ));
        let h = &f.hosts[0];
        assert_eq!(h.containers.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["db", "web"], "kept by name");
        assert_eq!(h.containers[1].stats.as_ref().and_then(|s| s.cpu_percent), Some(2.5));
        assert_eq!(h.cpu_history["web-id"], vec![2.5]);
        assert!(matches!(h.status, HostStatus::Stale { .. }));
        // The web container dies: an upsert; its stats go; three buckets on, its line is at zero.
        let mut dead = h.containers[1].clone();
        dead.state = ContainerState::Exited;
        f.apply(&delta(
            t + 3 * SPARK_BUCKET_MS,
            vec![
                Change::Upsert { host: "a".into(), c: Box::new(dead) },
                Change::Stats { host: "a".into(), id: "web-id".into(), s: None },
            ],
        ));
        let h = &f.hosts[0];
        assert_eq!(h.containers[1].state, ContainerState::Exited);
        assert!(h.containers[1].stats.is_none());
        assert_eq!(h.cpu_history["web-id"], vec![2.5, 2.5, 2.5, 0.0], "rolled at the last value, then set");
        f.apply(&delta(t + 3 * SPARK_BUCKET_MS, vec![Change::Remove { host: "a".into(), id: "web-id".into() }]));
        assert_eq!(f.hosts[0].containers.len(), 1);
        assert!(!f.hosts[0].cpu_history.contains_key("web-id"));
    }

    #[test]
    fn sparklines_keep_the_last_fifteen_minutes() {
        let mut f = fleet(vec![container("web", None, ContainerState::Running, Health::None, "Up")]);
        let t = 1_000_000 * SPARK_BUCKET_MS;
        f.apply(&delta(t, vec![Change::Stats { host: "a".into(), id: "web-id".into(), s: Some(stats(1.0, 0)) }]));
        f.apply(&delta(t + 100 * SPARK_BUCKET_MS, vec![]));
        assert_eq!(f.hosts[0].cpu_history["web-id"], vec![1.0; SPARK_POINTS]);
        // An old delta does not move the buckets back.
        f.apply(&delta(t, vec![Change::Stats { host: "a".into(), id: "web-id".into(), s: Some(stats(4.0, 0)) }]));
        assert_eq!(f.spark_bucket, spark_bucket(t + 100 * SPARK_BUCKET_MS));
        assert_eq!(f.hosts[0].cpu_history["web-id"].len(), SPARK_POINTS);
    }

    #[test]
    fn scopes_are_parsed_strictly() {
        assert_eq!(Scope::parse(None, None, None), Ok(Scope::overview()));
        assert!(Scope::parse_with(Some("network"), None, None, Some("app:x"), None).is_err());
        let o = Scope::parse_with(None, None, None, Some("app:x"), Some("web")).unwrap();
        assert_eq!(o.query(), "scope=overview&open=app%3Ax&filter=web");
        assert_eq!(Scope::parse(Some("network"), None, None), Ok(Scope::Network));
        assert_eq!(
            Scope::parse(Some("container"), Some("h1"), Some("web")),
            Ok(Scope::Container { host: "h1".into(), reference: "web".into() })
        );
        for (s, h, i) in [
            (Some("everything"), None, None),
            (Some("container"), Some("h1"), None),
            (Some("container"), None, Some("web")),
            (Some("container"), Some(""), Some("web")),
            (Some("container"), Some("h1"), Some("a\nb")),
            (Some("hosts"), Some("h1"), None),
        ] {
            assert!(Scope::parse(s, h, i).is_err(), "{s:?} {h:?} {i:?}");
        }
        let c = Scope::Container { host: "h 1".into(), reference: "web&x".into() };
        assert_eq!(c.query(), "scope=container&host=h%201&id=web%26x");
    }

    #[test]
    fn a_page_gets_only_what_it_shows() {
        let mut web = container("web", Some("shop"), ContainerState::Running, Health::None, "Up");
        web.stats = Some(stats(1.0, 0).sample(&web.id));
        let db = container("db", Some("shop"), ContainerState::Running, Health::None, "Up");
        let f = fleet(vec![db.clone(), web.clone()]);
        let one = Scope::Container { host: "a".into(), reference: "web".into() };
        let p = f.project(&one);
        assert_eq!(p.hosts[0].containers.len(), 1);
        assert_eq!(p.hosts[0].containers[0].name, "web");
        assert!(p.hosts[0].containers[0].stats.is_some());
        let net = f.project(&Scope::Network);
        assert_eq!(net.hosts[0].containers.len(), 2);
        assert!(net.hosts[0].containers.iter().all(|c| c.stats.is_none()), "the map shows no stats");
        assert!(f.project(&Scope::Hosts).hosts[0].containers.is_empty());

        let d = delta(
            0,
            vec![
                Change::Stats { host: "a".into(), id: "db-id".into(), s: Some(stats(3.0, 0)) },
                Change::Upsert { host: "a".into(), c: Box::new(web.clone()) },
                Change::Host { host: "a".into(), status: HostStatus::Connected },
            ],
        );
        let only = d.project(&one).unwrap();
        assert_eq!(only.changes.len(), 2, "web's upsert and the host: {only:?}");
        let net = d.project(&Scope::Network).unwrap();
        assert!(matches!(&net.changes[0], Change::Upsert { c, .. } if c.stats.is_none()));
        assert_eq!(d.project(&Scope::Hosts).unwrap().changes.len(), 1);
        let stats_only = delta(0, vec![Change::Stats { host: "a".into(), id: "db-id".into(), s: None }]);
        assert_eq!(stats_only.project(&Scope::Hosts), None);
        assert_eq!(stats_only.project(&one), None);
    }

    #[test]
    fn host_statuses_compare_without_their_ages() {
        assert!(HostStatus::Stale { age_s: 3 }.same_as(&HostStatus::Stale { age_s: 9 }));
        assert!(HostStatus::Stale { age_s: 11 }.same_as(&HostStatus::Stale { age_s: 29 }));
        assert!(!HostStatus::Stale { age_s: 29 }.same_as(&HostStatus::Stale { age_s: 30 }));
        let down = |e: &str, age| HostStatus::Down { error: e.into(), age_s: age, engine: None };
        assert!(down("x", Some(1)).same_as(&down("x", Some(5))));
        assert!(!down("x", None).same_as(&down("y", None)));
        assert!(!HostStatus::Connected.same_as(&HostStatus::Stale { age_s: 0 }));
    }
}
