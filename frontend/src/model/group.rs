//! App cards: containers grouped by compose project across hosts, and the
//! overview's filter.

use std::collections::BTreeMap;

use shared::{ContainerState, ContainerSummary};

use super::{container_badge, Badge, Fleet, Folded};

/// One container of an app card, with the host it runs on (rows link to it
/// and act on it there).
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub host: String,
    pub c: ContainerSummary,
    /// The data volume size of a protected (database) container, if known.
    pub db_size: Option<i64>,
}

/// One host's part of an app: the card's per-host breakdown.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostShare {
    pub host: String,
    pub containers: usize,
    pub running: usize,
    /// The worst badge of the app's containers on this host.
    pub badge: Badge,
}

/// An app card: the containers of one compose project on every host that
/// runs it (the same project name on several hosts is one app), or a host's
/// containers without a project ("standalone", one card per host).
#[derive(Debug, Clone, PartialEq)]
pub struct AppGroup {
    pub project: Option<String>,
    /// Its hosts, worst first, then in the fleet's order.
    pub hosts: Vec<HostShare>,
    /// By name, then by host in the fleet's order.
    pub containers: Vec<Member>,
    pub badge: Badge,
    pub cpu_percent: f64,
    pub memory_bytes: u64,
    /// The sum over its hosts of each host's largest memory limit.
    pub memory_limit_bytes: u64,
    /// The app's total CPU % over the last 15 minutes, oldest first.
    pub cpu_series: Vec<f64>,
    /// Its containers the page does not hold, folded ([`super::Folded`]):
    /// counted in its hosts, figures and badge, not in `containers`.
    pub folded: usize,
}

impl AppGroup {
    pub fn title(&self) -> &str {
        self.project.as_deref().unwrap_or("standalone")
    }

    /// A stable, unique identity for the card: the project's name, or the
    /// host of a standalone card (the prefixes keep a project named
    /// "standalone" apart from them).
    pub fn key(&self) -> String {
        match &self.project {
            Some(p) => format!("app:{p}"),
            None => format!("standalone:{}", self.hosts.first().map(|h| h.host.as_str()).unwrap_or_default()),
        }
    }

    /// An HTML id for the card, unique as [`Self::key`] is: `app-<project>`
    /// or `standalone-<host>`, letters, digits, `-` and `_` as they are and
    /// any other byte as `.` and its hex code.
    pub fn dom_id(&self) -> String {
        let (mut out, name) = match &self.project {
            Some(p) => (String::from("app-"), p.as_str()),
            None => (String::from("standalone-"), self.hosts.first().map(|h| h.host.as_str()).unwrap_or_default()),
        };
        for b in name.bytes() {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                out.push(b as char);
            } else {
                out.push_str(&format!(".{b:02x}"));
            }
        }
        out
    }

    /// Its hosts' names, space-separated (the card's `data-host`).
    pub fn host_names(&self) -> String {
        self.hosts.iter().map(|h| h.host.as_str()).collect::<Vec<_>>().join(" ")
    }

    /// The page of its containers' logs on `host`, merged.
    pub fn logs_href(&self, host: &str) -> String {
        format!("/apps/{}/{}/logs", host, self.title())
    }
}

/// The overview's cards in its default order: worst first; within a badge,
/// named projects before standalone cards, then by title and host.
pub fn group_apps(fleet: &Fleet) -> Vec<AppGroup> {
    // Members and folded parts by card (a project, or a host's standalone
    // containers), with their host's index in the fleet.
    type Card = (Option<String>, Option<usize>);
    type Parts<'a> = (Vec<(usize, Member)>, Vec<(usize, &'a Folded)>);
    let mut cards: BTreeMap<Card, Parts> = BTreeMap::new();
    let card = |p: &Option<String>, hi: usize| match p {
        Some(p) => (Some(p.clone()), None),
        None => (None, Some(hi)),
    };
    for (hi, host) in fleet.hosts.iter().enumerate() {
        for c in &host.containers {
            let db_size = c
                .protected
                .then(|| c.mounts.iter().filter_map(|m| host.volume_sizes.get(m.name.as_ref()?)).sum::<i64>());
            let member = Member { host: host.name.clone(), c: c.clone(), db_size: db_size.filter(|s| *s > 0) };
            cards.entry(card(&c.compose_project, hi)).or_default().0.push((hi, member));
        }
        for f in &host.folded {
            cards.entry(card(&f.project, hi)).or_default().1.push((hi, f));
        }
    }
    let mut out: Vec<AppGroup> =
        cards.into_iter().map(|((project, _), (members, folded))| group(fleet, project, members, &folded)).collect();
    let order = |g: &AppGroup| (std::cmp::Reverse(g.badge), g.project.is_none());
    out.sort_by(|a, b| {
        (order(a), a.title(), a.hosts.first().map(|h| &h.host)).cmp(&(
            order(b),
            b.title(),
            b.hosts.first().map(|h| &h.host),
        ))
    });
    out
}

/// One card from its members (`(host index, member)`) and folded parts.
fn group(
    fleet: &Fleet,
    project: Option<String>,
    mut members: Vec<(usize, Member)>,
    folded: &[(usize, &Folded)],
) -> AppGroup {
    members.sort_by(|a, b| (&a.1.c.name, a.0).cmp(&(&b.1.c.name, b.0)));
    let badge_of = |m: &Member| container_badge(&m.c).0;
    let badge = members.iter().map(|(_, m)| badge_of(m)).chain(folded.iter().map(|(_, f)| f.badge())).max();
    let badge = badge.unwrap_or(Badge::Green);
    // Folded from +0.0: a float `sum()` of nothing is -0.0 (shown as "-0.0%").
    let cpu_percent = members
        .iter()
        .filter_map(|(_, m)| m.c.stats.as_ref()?.cpu_percent)
        .chain(folded.iter().map(|(_, f)| f.cpu))
        .fold(0.0, |a, b| a + b);
    let memory_bytes = members
        .iter()
        .filter_map(|(_, m)| Some(m.c.stats.as_ref()?.memory_bytes))
        .chain(folded.iter().map(|(_, f)| f.mem))
        .sum();
    // Per host: its share, and its largest memory limit.
    let mut per_host: BTreeMap<usize, (HostShare, u64)> = BTreeMap::new();
    let new_share = |hi: usize| {
        (HostShare { host: fleet.hosts[hi].name.clone(), containers: 0, running: 0, badge: Badge::Grey }, 0)
    };
    for (hi, m) in &members {
        let (share, limit) = per_host.entry(*hi).or_insert_with(|| new_share(*hi));
        share.containers += 1;
        share.running += usize::from(m.c.state == ContainerState::Running);
        share.badge = share.badge.max(badge_of(m));
        *limit = (*limit).max(m.c.stats.as_ref().map_or(0, |s| s.memory_limit_bytes));
    }
    for (hi, f) in folded {
        let (share, limit) = per_host.entry(*hi).or_insert_with(|| new_share(*hi));
        share.containers += f.n as usize;
        share.running += f.running as usize;
        share.badge = share.badge.max(f.badge());
        *limit = (*limit).max(f.limit);
    }
    let memory_limit_bytes = per_host.values().map(|(_, l)| l).sum();
    let mut hosts: Vec<(usize, HostShare)> = per_host.into_iter().map(|(hi, (s, _))| (hi, s)).collect();
    hosts.sort_by_key(|(hi, s)| (std::cmp::Reverse(s.badge), *hi));
    // Sum the members' series, aligned on their newest point (every host's
    // newest point is the fleet's sparkline bucket).
    let lines: Vec<&Vec<f32>> = members
        .iter()
        .filter_map(|(hi, m)| fleet.hosts[*hi].cpu_history.get(&m.c.id))
        .chain(folded.iter().map(|(_, f)| &f.spark))
        .collect();
    let len = lines.iter().map(|l| l.len()).max().unwrap_or(0);
    let mut cpu_series = vec![0.0f64; len];
    for h in lines {
        for (i, v) in h.iter().enumerate() {
            cpu_series[len - h.len() + i] += f64::from(*v);
        }
    }
    AppGroup {
        project,
        hosts: hosts.into_iter().map(|(_, s)| s).collect(),
        containers: members.into_iter().map(|(_, m)| m).collect(),
        badge,
        cpu_percent,
        memory_bytes,
        memory_limit_bytes,
        cpu_series,
        folded: folded.iter().map(|(_, f)| f.n as usize).sum(),
    }
}

/// A container's name and app (its card's title: the compose project, else
/// "standalone") on `host`, for a page's title. `reference` is what the
/// page's URL holds: a full id, a name, or an id prefix naming one container.
pub fn name_and_app(fleet: &Fleet, host: &str, reference: &str) -> Option<(String, String)> {
    let h = fleet.hosts.iter().find(|h| h.name == host)?;
    let exact = h.containers.iter().find(|c| c.id == reference || c.name == reference);
    let c = exact.or_else(|| {
        let mut by_prefix = h.containers.iter().filter(|c| !reference.is_empty() && c.id.starts_with(reference));
        let one = by_prefix.next()?;
        by_prefix.next().is_none().then_some(one)
    })?;
    Some((c.name.clone(), c.compose_project.clone().unwrap_or_else(|| "standalone".into())))
}

/// A filter over name, image, state, host and project, case-insensitive for
/// ASCII letters (what Docker allows in names and images).
pub fn matches_filter(host: &str, c: &ContainerSummary, filter: &str) -> bool {
    let f = filter.trim().to_ascii_lowercase();
    if f.is_empty() {
        return true;
    }
    f.split_whitespace().all(|term| {
        let state = format!("{:?}", c.state).to_ascii_lowercase();
        c.name.to_ascii_lowercase().contains(term)
            || c.image.to_ascii_lowercase().contains(term)
            || state == term
            || container_badge(c).1 == term
            || host.to_ascii_lowercase().contains(term)
            || c.compose_project.as_deref().is_some_and(|p| p.to_ascii_lowercase().contains(term))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{container, fleet};
    use crate::model::{headline, Headline, HostStatus, HostView};
    use shared::{ContainerState, Health, StatsSample};

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
        assert_eq!(g[0].containers[0].c.name, "db");
        assert!((g[0].cpu_percent - 12.5).abs() < 1e-9);
        assert_eq!(headline(&f).text, "1 to check");
        let all_green = fleet(vec![
            container("a", None, Running, Health::None, "Up"),
            container("b", None, Running, Health::Healthy, "Up"),
        ]);
        assert_eq!(headline(&all_green), Headline { badge: Badge::Green, text: "All 2 containers healthy".into() });
        let mut down = all_green.clone();
        down.hosts.push(HostView {
            name: "b".into(),
            status: HostStatus::Down { error: "x".into(), age_s: None, engine: None },
            unencrypted: false,
            containers: vec![],
            volume_sizes: Default::default(),
            cpu_history: Default::default(),
            folded: Vec::new(),
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
        let db_size = |name: &str| g.containers.iter().find(|m| m.c.name == name).unwrap().db_size;
        assert_eq!(db_size("db"), Some(4096));
        assert_eq!(db_size("web"), None, "not protected");
    }

    fn host(name: &str, containers: Vec<ContainerSummary>) -> HostView {
        HostView {
            name: name.into(),
            status: HostStatus::Connected,
            unencrypted: false,
            containers,
            volume_sizes: Default::default(),
            cpu_history: Default::default(),
            folded: Vec::new(),
        }
    }

    fn with_stats(mut c: ContainerSummary, cpu: f64, mem: u64, limit: u64) -> ContainerSummary {
        c.stats = Some(crate::model::LiveStats { cpu: Some(cpu), mem, limit }.sample(&c.id));
        c
    }

    /// The same project on three hosts is one card, with each host's share
    /// and worst badge; containers without a project stay a card per host.
    #[test]
    fn the_same_app_across_hosts_is_one_card() {
        use ContainerState::*;
        let web = |health| container("shop-web-1", Some("shop"), Running, health, "Up");
        let mut f = fleet(vec![]);
        f.hosts = vec![
            host(
                "h1",
                vec![
                    with_stats(web(Health::Healthy), 1.0, 10, 100),
                    container("lone", None, Running, Health::None, "Up"),
                ],
            ),
            host(
                "h2",
                vec![
                    with_stats(web(Health::Unhealthy), 2.0, 20, 300),
                    with_stats(container("shop-db-1", Some("shop"), Running, Health::None, "Up"), 0.5, 5, 200),
                ],
            ),
            host(
                "h3",
                vec![
                    container("shop-web-1", Some("shop"), Exited, Health::None, "Exited (0) 1 minute ago"),
                    container("lone", None, Running, Health::None, "Up"),
                ],
            ),
        ];
        f.hosts[0].cpu_history.insert("shop-web-1-id".into(), vec![1.0, 1.0]);
        f.hosts[1].cpu_history.insert("shop-web-1-id".into(), vec![2.0]);
        let g = group_apps(&f);
        let keys: Vec<String> = g.iter().map(AppGroup::key).collect();
        assert_eq!(keys, ["app:shop", "standalone:h1", "standalone:h3"], "one shop card, worst (red) first");
        let shop = &g[0];
        assert_eq!(shop.badge, Badge::Red);
        assert_eq!(shop.host_names(), "h2 h1 h3", "the worst host first, then the fleet's order");
        assert_eq!(
            shop.hosts,
            [
                HostShare { host: "h2".into(), containers: 2, running: 2, badge: Badge::Red },
                HostShare { host: "h1".into(), containers: 1, running: 1, badge: Badge::Green },
                HostShare { host: "h3".into(), containers: 1, running: 0, badge: Badge::Grey },
            ]
        );
        let rows: Vec<(&str, &str)> = shop.containers.iter().map(|m| (m.c.name.as_str(), m.host.as_str())).collect();
        assert_eq!(rows, [("shop-db-1", "h2"), ("shop-web-1", "h1"), ("shop-web-1", "h2"), ("shop-web-1", "h3")]);
        assert!((shop.cpu_percent - 3.5).abs() < 1e-9);
        assert_eq!(shop.memory_bytes, 35);
        assert_eq!(shop.memory_limit_bytes, 100 + 300, "each host's largest limit, summed");
        assert_eq!(shop.cpu_series, vec![1.0, 3.0], "aligned on the newest point across hosts");
        assert_eq!(shop.logs_href("h2"), "/apps/h2/shop/logs");
        // Standalone cards stay per host; every key and DOM id is unique.
        assert_eq!(g[1].host_names(), "h1");
        assert_eq!(g[1].containers.len(), 1);
        let ids: std::collections::BTreeSet<String> = g.iter().map(AppGroup::dom_id).collect();
        assert_eq!(ids.len(), g.len());
        assert!(ids.iter().all(|id| id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))), "{ids:?}");
    }

    /// A project named "standalone" and a host's standalone containers are
    /// two cards with two keys.
    #[test]
    fn card_keys_do_not_collide() {
        use ContainerState::*;
        let mut f = fleet(vec![]);
        f.hosts = vec![host(
            "app:x",
            vec![
                container("a", Some("standalone"), Running, Health::None, "Up"),
                container("b", None, Running, Health::None, "Up"),
                container("c", Some("x y/z"), Running, Health::None, "Up"),
            ],
        )];
        let g = group_apps(&f);
        let keys: std::collections::BTreeSet<String> = g.iter().map(AppGroup::key).collect();
        let ids: std::collections::BTreeSet<String> = g.iter().map(AppGroup::dom_id).collect();
        assert_eq!((keys.len(), ids.len()), (3, 3), "{keys:?} {ids:?}");
        assert!(ids.contains("app-x.20y.2fz") && ids.contains("standalone-app.3ax"), "{ids:?}");
    }

    /// Problems come first, whatever their kind of card.
    #[test]
    fn worst_first_then_named_then_title() {
        use ContainerState::*;
        let f = fleet(vec![
            container("a", Some("alpha"), Running, Health::None, "Up"),
            container("z", None, Running, Health::Unhealthy, "Up"),
            container("b", Some("beta"), Running, Health::Starting, "Up"),
            container("g", Some("gamma"), Running, Health::None, "Up"),
        ]);
        let titles: Vec<String> = group_apps(&f).iter().map(|g| g.title().to_owned()).collect();
        assert_eq!(titles, ["standalone", "beta", "alpha", "gamma"]);
    }

    #[test]
    fn names_and_apps_for_titles() {
        use ContainerState::*;
        let mut web = container("shop-web-1", Some("shop"), Running, Health::None, "Up");
        web.id = "abc123def456".into();
        let mut lone = container("lone", None, Running, Health::None, "Up");
        lone.id = "abd999".into();
        let f = fleet(vec![web, lone]);
        let want = Some(("shop-web-1".to_owned(), "shop".to_owned()));
        assert_eq!(name_and_app(&f, "a", "abc123def456"), want);
        assert_eq!(name_and_app(&f, "a", "shop-web-1"), want);
        assert_eq!(name_and_app(&f, "a", "abc1"), want, "a unique prefix");
        assert_eq!(name_and_app(&f, "a", "ab"), None, "an ambiguous prefix");
        assert_eq!(name_and_app(&f, "a", "abd999"), Some(("lone".into(), "standalone".into())));
        assert_eq!(name_and_app(&f, "b", "abc123def456"), None, "another host");
        assert_eq!(name_and_app(&f, "a", ""), None);
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
}
