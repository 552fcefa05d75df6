//! The overview at fleet scale: which cards start collapsed, how many cards
//! render at once, and the bounded first render the server sends
//! ([`first_screen`]).

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use shared::health::Severity;
use shared::ContainerSummary;

use super::{group_apps, Badge, Fleet, HostView};

/// Once the fleet has more containers than this, healthy apps (badge green
/// or grey) show collapsed: their header, badge, bars, sparkline and hosts,
/// and a button that shows their rows. About a screenful of rows: below it,
/// every row fits on a page or two and the overview looks as it always has.
pub const COLLAPSE_ABOVE: usize = 60;

/// Cards the overview renders at once; "Show more apps" adds as many again.
pub const CARDS_PER_PAGE: usize = 40;

/// Apps in the server's first render of the overview (see [`first_screen`]).
pub const FIRST_SCREEN_APPS: usize = 30;

/// Containers in the server's first render of the overview: [`first_screen`]
/// stops at the app that would take it past this (an app spanning many hosts
/// can hold hundreds), unless that app is the first.
pub const FIRST_SCREEN_CONTAINERS: usize = 400;

/// What [`first_screen`] left out of a fleet: how many apps and containers,
/// and the containers by severity, so that [`super::headline`] still speaks
/// of the whole fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Omitted {
    pub apps: usize,
    pub containers: usize,
    pub ok: usize,
    pub resting: usize,
    pub warnings: usize,
    pub problems: usize,
}

impl Omitted {
    fn count(&mut self, c: &ContainerSummary) {
        self.containers += 1;
        match shared::health::condition(c).severity() {
            Severity::Ok => self.ok += 1,
            Severity::Neutral => self.resting += 1,
            Severity::Warning => self.warnings += 1,
            Severity::Problem => self.problems += 1,
        }
    }
}

/// How many containers the fleet has, counting those [`first_screen`] left out.
pub fn container_count(fleet: &Fleet) -> usize {
    let folded: usize = fleet.hosts.iter().flat_map(|h| &h.folded).map(|f| f.n as usize).sum();
    fleet.hosts.iter().map(|h| h.containers.len()).sum::<usize>() + folded + fleet.omitted.map_or(0, |o| o.containers)
}

/// Whether healthy apps start collapsed, in a fleet of `containers`
/// ([`container_count`]) with the overview's `filter`: once the fleet has
/// more than [`COLLAPSE_ABOVE`], unless a filter asks for its matches.
pub fn collapse_healthy(containers: usize, filter: &str) -> bool {
    containers > COLLAPSE_ABOVE && filter.trim().is_empty()
}

/// Whether an app card with `badge` starts collapsed ([`collapse_healthy`]):
/// healthy apps of a large fleet do; problems never do.
pub fn collapsed_by_default(containers: usize, badge: Badge, filter: &str) -> bool {
    collapse_healthy(containers, filter) && !badge.is_problem()
}

/// The overview's first screen of `fleet`, for the server's first render of
/// the overview (only: other pages need what it cuts): every host with its
/// status, and only the containers of the first `max_apps` apps in the
/// overview's default order (problems first; at most
/// [`FIRST_SCREEN_CONTAINERS`] containers unless the first app alone has
/// more), with their sparklines and database volume sizes, each cut to what
/// the overview shows (no labels, ports or networks; the volume mounts of
/// protected containers only). What it leaves out is counted in
/// [`Fleet::omitted`], so the headline is the whole fleet's and the page can
/// say what is still to come. The live stream's snapshot (the whole fleet,
/// `omitted: None`) then replaces it: a browser holding a cut fleet must get
/// a snapshot, never deltas on top of it.
pub fn first_screen(fleet: &Fleet, max_apps: usize) -> Fleet {
    let groups = group_apps(fleet);
    let mut omitted = fleet.omitted.unwrap_or_default();
    let (mut apps, mut containers, mut full) = (0, 0, false);
    let mut keep: HashSet<(&str, &str)> = HashSet::new();
    let mut keep_folded: HashSet<String> = HashSet::new();
    for g in &groups {
        full =
            full || apps >= max_apps || (containers > 0 && containers + g.containers.len() > FIRST_SCREEN_CONTAINERS);
        if full {
            omitted.apps += 1;
            g.containers.iter().for_each(|m| omitted.count(&m.c));
            for f in folded_of(fleet, g) {
                omitted.containers += f.n as usize;
                omitted.resting += f.resting as usize;
                omitted.ok += (f.n - f.resting.min(f.n)) as usize;
            }
        } else {
            apps += 1;
            containers += g.containers.len();
            keep.extend(g.containers.iter().map(|m| (m.host.as_str(), m.c.id.as_str())));
            keep_folded.insert(g.key());
        }
    }
    let hosts = fleet
        .hosts
        .iter()
        .map(|h| {
            let containers: Vec<ContainerSummary> = h
                .containers
                .iter()
                .filter(|c| keep.contains(&(h.name.as_str(), c.id.as_str())))
                .map(overview_cut)
                .collect();
            let cpu_history =
                containers.iter().filter_map(|c| Some((c.id.clone(), h.cpu_history.get(&c.id)?.clone()))).collect();
            let folded = h
                .folded
                .iter()
                .filter(|f| keep_folded.contains(&super::app_key(&h.name, f.project.as_deref())))
                .cloned()
                .collect();
            let volumes: HashSet<&str> =
                containers.iter().flat_map(|c| c.mounts.iter().filter_map(|m| m.name.as_deref())).collect();
            let volume_sizes: BTreeMap<String, i64> = h
                .volume_sizes
                .iter()
                .filter(|(v, _)| volumes.contains(v.as_str()))
                .map(|(v, s)| (v.clone(), *s))
                .collect();
            HostView {
                name: h.name.clone(),
                status: h.status.clone(),
                unencrypted: h.unencrypted,
                containers,
                volume_sizes,
                cpu_history,
                folded,
            }
        })
        .collect();
    Fleet {
        hosts,
        at_ms: fleet.at_ms,
        spark_bucket: fleet.spark_bucket,
        omitted: (omitted != Omitted::default()).then_some(omitted),
        alerts: fleet.alerts,
    }
}

/// The folded parts of card `g` in `fleet`.
fn folded_of<'a>(fleet: &'a Fleet, g: &'a super::AppGroup) -> impl Iterator<Item = &'a super::Folded> + 'a {
    let key = g.key();
    fleet.hosts.iter().flat_map(move |h| {
        let key = key.clone();
        h.folded.iter().filter(move |f| super::app_key(&h.name, f.project.as_deref()) == key)
    })
}

/// A container with only what the overview shows of it.
fn overview_cut(c: &ContainerSummary) -> ContainerSummary {
    ContainerSummary {
        labels: BTreeMap::new(),
        ports: Vec::new(),
        networks: Vec::new(),
        mounts: if c.protected { c.mounts.iter().filter(|m| m.name.is_some()).cloned().collect() } else { Vec::new() },
        ..c.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{big_fleet, container, fleet};
    use crate::model::{headline, HostStatus};
    use shared::{ContainerState, Health};

    #[test]
    fn healthy_apps_collapse_once_the_fleet_is_large() {
        let big = COLLAPSE_ABOVE + 1;
        assert!(collapsed_by_default(big, Badge::Green, ""));
        assert!(collapsed_by_default(big, Badge::Grey, "  "), "a blank filter is no filter");
        assert!(!collapsed_by_default(COLLAPSE_ABOVE, Badge::Green, ""), "a small fleet looks as it always has");
        assert!(!collapsed_by_default(big, Badge::Red, ""), "problems stay open");
        assert!(!collapsed_by_default(big, Badge::Amber, ""));
        assert!(!collapsed_by_default(big, Badge::Green, "web"), "a filter shows its matches");
        assert!(collapse_healthy(big, "") && !collapse_healthy(big, "web") && !collapse_healthy(COLLAPSE_ABOVE, ""));
    }

    /// 50 hosts × 100 containers: the first screen keeps every host, the
    /// problems first, at most [`FIRST_SCREEN_APPS`] apps and
    /// [`FIRST_SCREEN_CONTAINERS`] containers, a JSON under 1 MB, and the
    /// very headline of the whole fleet.
    #[test]
    fn the_first_screen_is_bounded_and_keeps_the_headline() {
        let mut full = big_fleet(50, 100, &["h7/h7-app3-svc0-1", "h42/agent-4-svc1-1"]);
        full.hosts[3].status = HostStatus::Stale { age_s: 40 };
        full.hosts[9].containers[15].health = Health::Starting;
        let cut = first_screen(&full, FIRST_SCREEN_APPS);
        assert_eq!(headline(&cut), headline(&full));
        assert_eq!(headline(&full).text, "2 need attention; 1 to check; 1 host not reporting");
        assert_eq!(container_count(&cut), container_count(&full));
        assert_eq!(container_count(&full), 5000);
        let hosts = |f: &Fleet| f.hosts.iter().map(|h| (h.name.clone(), h.status.clone())).collect::<Vec<_>>();
        assert_eq!(hosts(&cut), hosts(&full), "every host and its status");
        // The first screen is the whole fleet's first cards, problems first.
        let all = group_apps(&full);
        let shown = group_apps(&cut);
        let keys = |gs: &[crate::model::AppGroup]| gs.iter().map(|g| g.key()).collect::<Vec<_>>();
        assert_eq!(keys(&shown), keys(&all[..shown.len()]));
        assert_eq!(&keys(&shown)[..3], ["app:agent-4", "app:h7-app3", "app:h9-app0"]);
        assert_eq!(shown[0].containers.len(), 100, "the app on every host, whole");
        let kept: usize = shown.iter().map(|g| g.containers.len()).sum();
        assert!(shown.len() <= FIRST_SCREEN_APPS && kept <= FIRST_SCREEN_CONTAINERS, "{} apps, {kept}", shown.len());
        let o = cut.omitted.expect("what was left out");
        assert_eq!((o.apps + shown.len(), o.containers + kept), (all.len(), 5000));
        let json = serde_json::to_string(&cut).unwrap();
        let whole = serde_json::to_string(&full).unwrap().len();
        assert!(json.len() <= 1 << 20, "{} bytes (the whole fleet: {whole})", json.len());
        eprintln!(
            "first screen: {} apps, {kept} containers, {} bytes of JSON; the whole fleet {whole}",
            shown.len(),
            json.len()
        );
        // The cut is what the overview shows: no labels, ports or networks;
        // sparklines and database sizes kept.
        let h7 = cut.hosts.iter().find(|h| h.name == "h7").unwrap();
        assert!(h7.containers.iter().all(|c| c.labels.is_empty() && c.ports.is_empty() && c.networks.is_empty()));
        assert_eq!(h7.cpu_history.len(), h7.containers.len());
        let db = shown.iter().flat_map(|g| &g.containers).find(|m| m.c.protected).expect("a database");
        assert_eq!(db.db_size, Some(1 << 30));
        assert!(h7.volume_sizes.len() < full.hosts[7].volume_sizes.len(), "only the kept containers' volumes");
    }

    /// Problems left out still count: a first screen of one app says what
    /// the whole fleet's headline says, and so does a cut of a cut.
    #[test]
    fn what_is_left_out_still_counts() {
        use ContainerState::*;
        let mut failed = container("job", Some("batch"), Exited, Health::None, "Exited (1) 1 minute ago");
        failed.restart_policy = "always".into();
        let full = fleet(vec![
            container("web", Some("shop"), Running, Health::Unhealthy, "Up"),
            container("api", Some("api"), Running, Health::Starting, "Up"),
            failed,
            container("init", Some("done"), Exited, Health::None, "Exited (0) 1 minute ago"),
            container("lone", None, Running, Health::None, "Up"),
        ]);
        assert_eq!(headline(&full).text, "2 need attention; 1 to check");
        for n in 0..=5 {
            let cut = first_screen(&full, n);
            assert_eq!(headline(&cut), headline(&full), "{n} apps");
            assert_eq!(group_apps(&cut).len(), n, "{n} apps");
            assert_eq!(container_count(&cut), 5);
            let again = first_screen(&cut, n.saturating_sub(1));
            assert_eq!(
                (headline(&again), container_count(&again)),
                (headline(&full), 5),
                "cut again to {}",
                n.saturating_sub(1)
            );
        }
        assert_eq!(first_screen(&full, 5), full, "nothing left out: the fleet as it is");
        assert_eq!(
            first_screen(&full, 1).omitted,
            Some(Omitted { apps: 4, containers: 4, ok: 1, resting: 1, warnings: 1, problems: 1 })
        );
        assert_eq!(
            headline(&first_screen(
                &fleet(vec![container("init", None, Exited, Health::None, "Exited (0) 1 minute ago")]),
                0
            ))
            .text,
            "Nothing running · 1 completed or stopped"
        );
    }

    /// The container budget stops at the app that would pass it, but the
    /// first app is always there.
    #[test]
    fn the_first_app_is_kept_even_past_the_container_budget() {
        let full = big_fleet(FIRST_SCREEN_CONTAINERS / 2 + 1, 10, &[]);
        let shown = group_apps(&first_screen(&full, FIRST_SCREEN_APPS));
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].containers.len(), 2 * (FIRST_SCREEN_CONTAINERS / 2 + 1));
    }
}
