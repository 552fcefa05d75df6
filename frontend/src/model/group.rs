//! App cards: containers grouped by compose project, and the overview's filter.

use std::collections::BTreeMap;

use shared::ContainerSummary;

use super::{container_badge, Badge, Fleet};

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
            // Folded from +0.0: a float `sum()` of nothing is -0.0 (shown as "-0.0%").
            let cpu_percent = containers.iter().filter_map(|c| c.stats.as_ref()?.cpu_percent).fold(0.0, |a, b| a + b);
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
        assert_eq!(g[0].containers[0].name, "db");
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
