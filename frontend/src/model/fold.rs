//! The overview at fleet scale, on the wire: once the fleet is large
//! ([`COLLAPSE_ABOVE`]), a healthy app that a tab has not opened travels as
//! one summary per host ([`Folded`]: counts, sums and a sparkline) instead
//! of its containers. So what an overview tab receives, at first and at
//! every change, grows with what it shows (the problems, the apps it opened,
//! its filter's matches, a line per healthy app), not with the fleet.
//!
//! [`overview`] is what a tab with [`Opened`] holds; [`diff_overview`] the
//! changes that move what it holds to what it should, for the apps a delta
//! touched ([`touched_apps`]). The server keeps one copy per distinct
//! [`Opened`] and moves it with those changes, exactly as the browsers do.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use shared::health::Severity;
use shared::{ContainerState, ContainerSummary};

use super::{container_count, matches_filter, Badge, Change, Delta, Fleet, HostView, COLLAPSE_ABOVE};

/// Apps a tab may hold open at once (it closes its oldest past this).
pub const OPEN_APPS_MAX: usize = 32;
/// Longest filter, and longest app key, a tab may send.
pub const FILTER_MAX: usize = 64;
const KEY_MAX: usize = 160;

/// What an overview tab shows beyond the default: the apps it opened (by
/// [`super::AppGroup::key`]) and its filter, whose matches it gets whole.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Opened {
    pub apps: BTreeSet<String>,
    pub filter: String,
}

impl Opened {
    /// From the stream's query: `open` (app keys, comma-separated) and `filter`.
    pub fn parse(open: Option<&str>, filter: Option<&str>) -> Result<Self, String> {
        let mut apps = BTreeSet::new();
        for key in open.unwrap_or("").split(',').filter(|k| !k.is_empty()) {
            let named = key.strip_prefix("app:").or_else(|| key.strip_prefix("standalone:"));
            if named.is_none_or(str::is_empty) || key.len() > KEY_MAX || key.chars().any(char::is_control) {
                return Err(format!(
                    "open takes app keys (app:<project> or standalone:<host>, at most {KEY_MAX} characters), comma-separated"
                ));
            }
            apps.insert(key.to_owned());
        }
        if apps.len() > OPEN_APPS_MAX {
            return Err(format!("open takes at most {OPEN_APPS_MAX} apps"));
        }
        let filter = filter.unwrap_or("");
        if filter.chars().count() > FILTER_MAX || filter.chars().any(|c| c.is_control() && !c.is_whitespace()) {
            return Err(format!("filter must be at most {FILTER_MAX} printable characters"));
        }
        Ok(Self { apps, filter: normal_filter(filter) })
    }

    /// The query parameters naming it, each with its leading `&` (none for the default).
    pub fn query(&self) -> String {
        let mut q = String::new();
        if !self.apps.is_empty() {
            let keys: Vec<&str> = self.apps.iter().map(String::as_str).collect();
            q.push_str(&format!("&open={}", super::fleet::url_encode(&keys.join(","))));
        }
        if !self.filter.is_empty() {
            q.push_str(&format!("&filter={}", super::fleet::url_encode(&self.filter)));
        }
        q
    }

    /// Opens (or closes) an app, closing the oldest-named past [`OPEN_APPS_MAX`].
    pub fn toggle(&mut self, key: &str, open: bool) {
        if !open {
            self.apps.remove(key);
            return;
        }
        if key.contains(',') || key.len() > KEY_MAX {
            return;
        }
        self.apps.insert(key.to_owned());
        while self.apps.len() > OPEN_APPS_MAX {
            let first = self.apps.iter().find(|k| *k != key).cloned();
            match first {
                Some(k) => self.apps.remove(&k),
                None => break,
            };
        }
    }
}

/// A filter as [`matches_filter`] reads it (lower case, words separated by
/// one space): filters that match alike are one view.
pub fn normal_filter(filter: &str) -> String {
    filter.to_ascii_lowercase().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A healthy app's containers on one host that a tab does not hold, summed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Folded {
    /// The compose project; `None`: the host's standalone containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Containers, of which running, and resting (completed or stopped as
    /// intended, grey); the others are healthy (green).
    pub n: u32,
    pub running: u32,
    pub resting: u32,
    /// CPU % to 0.1, memory to 1 MiB (summed), the largest memory limit.
    pub cpu: f64,
    pub mem: u64,
    pub limit: u64,
    /// The summed CPU sparkline, oldest first. Sent when the summary is
    /// new; a change to one the tab has carries none, and moves its newest
    /// point to `cpu`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spark: Vec<f32>,
}

impl Folded {
    /// Grey when all of it rests, else green (a folded app has no problem).
    pub fn badge(&self) -> Badge {
        if self.resting >= self.n {
            Badge::Grey
        } else {
            Badge::Green
        }
    }

    fn same_but_spark(&self, other: &Folded) -> bool {
        (&self.project, self.n, self.running, self.resting, self.cpu, self.mem, self.limit)
            == (&other.project, other.n, other.running, other.resting, other.cpu, other.mem, other.limit)
    }
}

/// The card a container belongs to (as [`super::AppGroup::key`] names it).
pub fn app_key(host: &str, project: Option<&str>) -> String {
    match project {
        Some(p) => format!("app:{p}"),
        None => format!("standalone:{host}"),
    }
}

/// A set of apps (cards): projects by name, standalone cards by host. Asks
/// about a container without making its key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    projects: HashSet<String>,
    standalone: HashSet<String>,
}

impl Touched {
    pub fn insert(&mut self, host: &str, project: Option<&str>) {
        match project {
            Some(p) => self.projects.insert(p.to_owned()),
            None => self.standalone.insert(host.to_owned()),
        };
    }

    pub fn contains(&self, host: &str, project: Option<&str>) -> bool {
        match project {
            Some(p) => self.projects.contains(p),
            None => self.standalone.contains(host),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.projects.is_empty() && self.standalone.is_empty()
    }

    pub fn extend(&mut self, other: Touched) {
        self.projects.extend(other.projects);
        self.standalone.extend(other.standalone);
    }
}

/// Whether a container asks for attention (amber or red).
fn is_problem(c: &ContainerSummary) -> bool {
    matches!(shared::health::condition(c).severity(), Severity::Warning | Severity::Problem)
}

/// Whether the fleet is large enough for healthy apps to fold.
fn folding(fleet: &Fleet) -> bool {
    container_count(fleet) > COLLAPSE_ABOVE
}

/// What an overview tab with `opened` holds of the whole `fleet`.
pub fn overview(fleet: &Fleet, opened: &Opened) -> Fleet {
    overview_of(fleet, opened, None)
}

/// [`overview`], for the apps in `only` (all when `None`).
fn overview_of(fleet: &Fleet, opened: &Opened, only: Option<&Touched>) -> Fleet {
    let fold = folding(fleet);
    let in_scope =
        |host: &str, c: &ContainerSummary| only.is_none_or(|o| o.contains(host, c.compose_project.as_deref()));
    // Apps with a problem on any host stay whole.
    let mut problems = Touched::default();
    if fold {
        for h in &fleet.hosts {
            for c in &h.containers {
                if in_scope(&h.name, c) && is_problem(c) {
                    problems.insert(&h.name, c.compose_project.as_deref());
                }
            }
        }
    }
    let hosts = fleet
        .hosts
        .iter()
        .map(|h| {
            let mut containers = Vec::new();
            let mut rest: BTreeMap<Option<&str>, Vec<&ContainerSummary>> = BTreeMap::new();
            for c in &h.containers {
                if !in_scope(&h.name, c) {
                    continue;
                }
                let project = c.compose_project.as_deref();
                let whole = !fold
                    || problems.contains(&h.name, project)
                    || opened.apps.contains(&app_key(&h.name, project))
                    || (!opened.filter.is_empty() && matches_filter(&h.name, c, &opened.filter));
                if whole {
                    containers.push(c.clone());
                } else {
                    rest.entry(c.compose_project.as_deref()).or_default().push(c);
                }
            }
            let folded = rest.into_iter().map(|(project, cs)| fold_of(h, project, &cs)).collect();
            let cpu_history =
                containers.iter().filter_map(|c| Some((c.id.clone(), h.cpu_history.get(&c.id)?.clone()))).collect();
            HostView {
                name: h.name.clone(),
                status: h.status.clone(),
                unencrypted: h.unencrypted,
                containers,
                volume_sizes: h.volume_sizes.clone(),
                cpu_history,
                folded,
            }
        })
        .collect();
    Fleet { hosts, at_ms: fleet.at_ms, spark_bucket: fleet.spark_bucket, omitted: fleet.omitted, alerts: fleet.alerts }
}

/// One host's containers of one app, summed.
fn fold_of(h: &HostView, project: Option<&str>, cs: &[&ContainerSummary]) -> Folded {
    let count = |f: &dyn Fn(&&ContainerSummary) -> bool| cs.iter().filter(|c| f(c)).count() as u32;
    let cpu: f64 = cs.iter().filter_map(|c| c.stats.as_ref()?.cpu_percent).fold(0.0, |a, b| a + b);
    let len = cs.iter().filter_map(|c| h.cpu_history.get(&c.id)).map(Vec::len).max().unwrap_or(0);
    let mut spark = vec![0.0f32; len];
    // Summed as the card sums its members' lines (none: none).
    for line in cs.iter().filter_map(|c| h.cpu_history.get(&c.id)) {
        for (i, v) in line.iter().enumerate() {
            spark[len - line.len() + i] += v;
        }
    }
    Folded {
        project: project.map(str::to_owned),
        n: cs.len() as u32,
        running: count(&|c| c.state == ContainerState::Running),
        resting: count(&|c| shared::health::condition(c).severity() == Severity::Neutral),
        cpu: (cpu * 10.0).round() / 10.0,
        mem: cs.iter().filter_map(|c| Some(c.stats.as_ref()?.memory_bytes)).sum(),
        limit: cs.iter().filter_map(|c| Some(c.stats.as_ref()?.memory_limit_bytes)).max().unwrap_or(0),
        spark,
    }
}

/// The apps whose containers `d` touches in `fleet` (before it applies):
/// what an overview copy must look at again.
pub fn touched_apps(fleet: &Fleet, d: &Delta) -> Touched {
    let mut out = Touched::default();
    let hosts: HashMap<&str, &HostView> = fleet.hosts.iter().map(|h| (h.name.as_str(), h)).collect();
    let project_of = |host: &str, id: &str| {
        let h = hosts.get(host)?;
        h.containers.iter().find(|c| c.id == id).map(|c| c.compose_project.clone())
    };
    for change in &d.changes {
        match change {
            Change::Upsert { host, c, .. } => {
                out.insert(host, c.compose_project.as_deref());
                if let Some(before) = project_of(host, &c.id) {
                    out.insert(host, before.as_deref());
                }
            }
            Change::Remove { host, id } | Change::Stats { host, id, .. } => {
                if let Some(p) = project_of(host, id) {
                    out.insert(host, p.as_deref());
                }
            }
            Change::Host { .. }
            | Change::Volumes { .. }
            | Change::History { .. }
            | Change::Fold { .. }
            | Change::Unfold { .. }
            | Change::Alerts { .. } => {}
        }
    }
    out
}

/// The delta that moves `held` (an overview copy with `opened`, as its tab
/// holds it) on with `d`, which `fleet` has just applied; `touched` is
/// [`touched_apps`] of `d` from before. Host statuses and volumes pass as
/// they are; containers and summaries are compared for the touched apps
/// only, unless the fleet crossed [`COLLAPSE_ABOVE`] (then for all).
pub fn follow_overview(
    fleet: &Fleet,
    held: &Fleet,
    opened: &Opened,
    d: &Delta,
    touched: &Touched,
    crossed: bool,
) -> Option<Delta> {
    let mut changes: Vec<Change> = d
        .changes
        .iter()
        .filter(|c| matches!(c, Change::Host { .. } | Change::Volumes { .. } | Change::Alerts { .. }))
        .cloned()
        .collect();
    let only = (!crossed).then_some(touched);
    if crossed || !touched.is_empty() {
        let should = overview_of(fleet, opened, only);
        changes.extend(diff_overview(held, &should, only));
    }
    (!changes.is_empty() || d.bucket > held.spark_bucket).then_some(Delta { at_ms: d.at_ms, bucket: d.bucket, changes })
}

/// Whether `d` moves the fleet across [`COLLAPSE_ABOVE`] (`before` is
/// [`container_count`] before it applied).
pub fn crossed(before: usize, fleet: &Fleet) -> bool {
    (before > COLLAPSE_ABOVE) != folding(fleet)
}

/// The changes that turn `held` into `should` for the apps in `only` (all
/// when `None`): containers upserted, removed or with new stats; summaries
/// folded or unfolded.
pub fn diff_overview(held: &Fleet, should: &Fleet, only: Option<&Touched>) -> Vec<Change> {
    let mut out = Vec::new();
    let in_scope = |host: &str, project: Option<&str>| only.is_none_or(|o| o.contains(host, project));
    for new in &should.hosts {
        let Some(old) = held.hosts.iter().find(|h| h.name == new.name) else { continue };
        let host = &new.name;
        let was: HashMap<&str, &ContainerSummary> = old
            .containers
            .iter()
            .filter(|c| in_scope(host, c.compose_project.as_deref()))
            .map(|c| (c.id.as_str(), c))
            .collect();
        let is: HashSet<&str> = new.containers.iter().map(|c| c.id.as_str()).collect();
        for id in was.keys().filter(|id| !is.contains(*id)) {
            out.push(Change::Remove { host: host.clone(), id: (*id).to_owned() });
        }
        for c in &new.containers {
            match was.get(c.id.as_str()) {
                Some(o) if *o == c => {}
                Some(o) if ContainerSummary { stats: c.stats.clone(), ..(*o).clone() } == *c => {
                    out.push(Change::Stats {
                        host: host.clone(),
                        id: c.id.clone(),
                        s: c.stats.as_ref().map(super::LiveStats::of),
                    })
                }
                Some(_) => out.push(Change::Upsert { host: host.clone(), c: Box::new(c.clone()) }),
                None => {
                    out.push(Change::Upsert { host: host.clone(), c: Box::new(c.clone()) });
                    if let Some(h) = new.cpu_history.get(&c.id) {
                        out.push(Change::History { host: host.clone(), id: c.id.clone(), h: h.clone() });
                    }
                }
            }
        }
        let was: HashMap<Option<&str>, &Folded> = old
            .folded
            .iter()
            .filter(|f| in_scope(host, f.project.as_deref()))
            .map(|f| (f.project.as_deref(), f))
            .collect();
        let is: HashSet<Option<&str>> = new.folded.iter().map(|f| f.project.as_deref()).collect();
        for project in was.keys().filter(|p| !is.contains(*p)) {
            out.push(Change::Unfold { host: host.clone(), project: project.map(str::to_owned) });
        }
        for f in &new.folded {
            match was.get(&f.project.as_deref()) {
                Some(o) if o.same_but_spark(f) => {}
                Some(_) => out
                    .push(Change::Fold { host: host.clone(), f: Box::new(Folded { spark: Vec::new(), ..f.clone() }) }),
                None => out.push(Change::Fold { host: host.clone(), f: Box::new(f.clone()) }),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{big_fleet, container, fleet};
    use crate::model::{group_apps, headline, spark_bucket, LiveStats, SPARK_BUCKET_MS};
    use shared::Health;

    /// Containers and summaries without their sparklines (a summary's is
    /// rolled, not recomputed: compared apart, roughly).
    fn shape(f: &Fleet) -> Vec<(String, Vec<ContainerSummary>, Vec<Folded>)> {
        f.hosts
            .iter()
            .map(|h| {
                let mut cs = h.containers.clone();
                cs.sort_by(|a, b| a.id.cmp(&b.id));
                let fs = h.folded.iter().map(|f| Folded { spark: Vec::new(), ..f.clone() }).collect();
                (h.name.clone(), cs, fs)
            })
            .collect()
    }

    /// Applies `d` to the whole fleet and moves a copy along as a tab would.
    fn step(full: &mut Fleet, held: &mut Fleet, opened: &Opened, d: Delta) -> Option<Delta> {
        let touched = touched_apps(full, &d);
        let before = container_count(full);
        full.apply(&d);
        let out = follow_overview(full, held, opened, &d, &touched, crossed(before, full));
        if let Some(v) = &out {
            held.apply(v);
        }
        assert_eq!(shape(held), shape(&overview(full, opened)), "the copy is what a fresh snapshot would be");
        out
    }

    fn stats(host: &str, id: &str, cpu: f64) -> Change {
        Change::Stats {
            host: host.into(),
            id: id.into(),
            s: Some(LiveStats { cpu: Some(cpu), mem: 1 << 20, limit: 1 << 30 }),
        }
    }

    #[test]
    fn a_small_fleet_travels_whole() {
        let f = fleet(vec![container("web", Some("shop"), ContainerState::Running, Health::None, "Up")]);
        assert_eq!(overview(&f, &Opened::default()), f);
    }

    /// 50 × 100: the default overview is the problems and a line per
    /// healthy app and host; its headline and cards say what the whole
    /// fleet's do; it is a small part of the whole.
    #[test]
    fn a_large_fleet_folds_its_healthy_apps() {
        let full = big_fleet(50, 100, &["h7/h7-app3-svc0-1"]);
        let v = overview(&full, &Opened::default());
        assert_eq!(headline(&v), headline(&full));
        assert_eq!(container_count(&v), container_count(&full));
        let (all, shown) = (group_apps(&full), group_apps(&v));
        let cards = |gs: &[crate::model::AppGroup]| {
            gs.iter()
                .map(|g| (g.key(), g.badge, g.hosts.clone(), g.cpu_percent.round(), g.memory_bytes))
                .collect::<Vec<_>>()
        };
        assert_eq!(cards(&shown), cards(&all));
        let whole: usize = v.hosts.iter().map(|h| h.containers.len()).sum();
        assert_eq!(whole, shown[0].containers.len(), "only the problem app's containers travel");
        let (a, b) = (serde_json::to_vec(&v).unwrap().len(), serde_json::to_vec(&full).unwrap().len());
        assert!(a * 10 < b, "{a} bytes against {b}");
        // An opened app and a filter's matches travel whole.
        let opened = Opened::parse(Some("app:h3-app1"), Some("h9-app2-svc0")).unwrap();
        let v = overview(&full, &opened);
        let g = group_apps(&v);
        let app = g.iter().find(|g| g.key() == "app:h3-app1").unwrap();
        assert_eq!((app.containers.len(), app.folded), (app.hosts.iter().map(|h| h.containers).sum(), 0));
        let m = g.iter().find(|g| g.key() == "app:h9-app2").unwrap();
        assert!(!m.containers.is_empty() && m.containers.iter().all(|c| c.c.name.contains("h9-app2-svc0")));
        assert!(m.folded > 0, "the rest of that app stays folded");
    }

    #[test]
    fn a_copy_follows_deltas_as_a_snapshot_would_show_it() {
        let mut full = big_fleet(3, 30, &[]);
        let opened = Opened::default();
        let mut held = overview(&full, &opened);
        let h = full.hosts[1].name.clone();
        let victim = full.hosts[1].containers[4].clone();
        let t = 1_000_000 * SPARK_BUCKET_MS;
        let d = |changes| Delta { at_ms: t, bucket: spark_bucket(t), changes };
        // Stats of a folded app: one summary changes, no container travels.
        let out = step(&mut full, &mut held, &opened, d(vec![stats(&h, &victim.id, 42.0)])).unwrap();
        assert!(matches!(&out.changes[..], [Change::Fold { f, .. }] if f.spark.is_empty()), "{out:?}");
        assert_eq!(
            held.hosts[1].folded.iter().find(|f| f.project == victim.compose_project).unwrap().spark.last(),
            Some(&43.5),
            "42 and the other's 1.5"
        );
        // It dies: its app unfolds, every container of it on every host travels.
        let mut dead = victim.clone();
        dead.state = ContainerState::Exited;
        dead.status = "Exited (1) 1 second ago".into();
        dead.exit_code = Some(1);
        dead.restart_policy = "always".into();
        let out =
            step(&mut full, &mut held, &opened, d(vec![Change::Upsert { host: h.clone(), c: Box::new(dead.clone()) }]))
                .unwrap();
        assert!(out.changes.iter().any(|c| matches!(c, Change::Unfold { .. })), "{out:?}");
        assert!(held.hosts[1].containers.iter().any(|c| c.id == victim.id));
        // It comes back: the app folds again.
        let out = step(
            &mut full,
            &mut held,
            &opened,
            d(vec![Change::Upsert { host: h.clone(), c: Box::new(victim.clone()) }]),
        )
        .unwrap();
        assert!(out.changes.iter().any(|c| matches!(c, Change::Fold { f, .. } if !f.spark.is_empty())), "{out:?}");
        assert!(held.hosts.iter().all(|h| h.containers.is_empty()));
        // Removed, and a new one in a new app; a bucket later.
        let mut new = container("n1", Some("fresh"), ContainerState::Running, Health::None, "Up");
        new.id = "fresh-1".into();
        step(&mut full, &mut held, &opened, d(vec![Change::Remove { host: h.clone(), id: victim.id.clone() }]));
        let later = Delta {
            at_ms: t + SPARK_BUCKET_MS,
            bucket: spark_bucket(t + SPARK_BUCKET_MS),
            changes: vec![Change::Upsert { host: h.clone(), c: Box::new(new) }],
        };
        let out = step(&mut full, &mut held, &opened, later).unwrap();
        assert_eq!(held.spark_bucket, full.spark_bucket, "{out:?}");
        // Nothing that matters: nothing to send.
        let quiet = Delta { at_ms: t + SPARK_BUCKET_MS, bucket: spark_bucket(t + SPARK_BUCKET_MS), changes: vec![] };
        assert_eq!(step(&mut full, &mut held, &opened, quiet), None);
    }

    #[test]
    fn crossing_the_threshold_folds_or_unfolds_everything() {
        let n = COLLAPSE_ABOVE;
        let mut full = big_fleet(1, n, &[]);
        let opened = Opened::default();
        let mut held = overview(&full, &opened);
        assert!(held.hosts[0].folded.is_empty());
        let mut one = container("more", Some("x"), ContainerState::Running, Health::None, "Up");
        one.id = "more-1".into();
        let d = |changes| Delta { at_ms: 0, bucket: 0, changes };
        step(&mut full, &mut held, &opened, d(vec![Change::Upsert { host: "h0".into(), c: Box::new(one) }]));
        assert!(held.hosts[0].containers.is_empty() && !held.hosts[0].folded.is_empty());
        step(&mut full, &mut held, &opened, d(vec![Change::Remove { host: "h0".into(), id: "more-1".into() }]));
        assert_eq!(held.hosts[0].containers.len(), n);
        assert!(held.hosts[0].folded.is_empty());
    }

    #[test]
    fn opened_is_parsed_strictly() {
        let o = Opened::parse(Some("app:shop,standalone:h1"), Some("  Web ")).unwrap();
        assert_eq!(o.apps.len(), 2);
        assert_eq!(o.filter, "web");
        assert_eq!(Opened::parse(None, Some("Shop\t  DB")).unwrap().filter, "shop db", "one view for filters alike");
        assert_eq!(o.query(), "&open=app%3Ashop%2Cstandalone%3Ah1&filter=web");
        assert_eq!(Opened::parse(None, None), Ok(Opened::default()));
        assert_eq!(Opened::default().query(), "");
        let many: Vec<String> = (0..=OPEN_APPS_MAX).map(|i| format!("app:a{i}")).collect();
        for (open, filter) in [
            (Some("shop".to_owned()), None),
            (Some("app:".to_owned()), None),
            (Some(many.join(",")), None),
            (None, Some("x".repeat(FILTER_MAX + 1))),
            (None, Some("a\u{7}b".to_owned())),
        ] {
            assert!(Opened::parse(open.as_deref(), filter.as_deref()).is_err(), "{open:?} {filter:?}");
        }
        let mut o = Opened::default();
        for i in 0..=OPEN_APPS_MAX {
            o.toggle(&format!("app:a{i:02}"), true);
        }
        assert_eq!(o.apps.len(), OPEN_APPS_MAX);
        assert!(o.apps.contains(&format!("app:a{OPEN_APPS_MAX:02}")));
        o.toggle("app:a05", false);
        assert!(!o.apps.contains("app:a05"));
    }
}
