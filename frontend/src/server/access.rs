//! Who may see and do what. A user holds grants: each a role on a scope —
//! the fleet, one host, or one compose project (on one host, or on every
//! host). [`Access`] answers every question the console asks of them, on
//! the server, before any page, stream, server function or export reads or
//! acts: what role the user has on a host, on a container's app, on a
//! scope; which hosts and containers they see. An API token's access is its
//! owner's, cut to the token's scope and capped at its role ([`Access::within`]).
//!
//! A host's name and status are seen by anyone with a grant that applies on
//! that host (an app grant on every host applies on every host); its
//! containers only where a grant covers their app; host-wide things (prune,
//! pull, the host's audit log, volumes) need a grant on the host or fleet;
//! fleet-wide things (hosts, metrics, alert rules and channels, grants) a
//! grant on the fleet.

use std::fmt;

use serde::{Deserialize, Serialize};
use shared::{ContainerSummary, Role};

use super::scope::Scope;
use crate::error::ConsoleError;
use crate::model::{Change, Delta, Fleet, HostView};

/// Most grants one user (or token) holds.
pub const GRANTS_MAX: usize = 64;

/// A role on a scope (never a label scope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub role: Role,
    pub on: Scope,
}

impl Grant {
    /// A grant from its parts as typed (`operator`, `app:shop`).
    pub fn parse(role: &str, on: &str) -> Result<Self, String> {
        let role = Role::parse(role).ok_or_else(|| format!("{role:?} is not a role: use viewer, operator or admin"))?;
        let on = Scope::parse(on)?;
        Grant::new(role, on)
    }

    pub fn new(role: Role, on: Scope) -> Result<Self, String> {
        if matches!(on, Scope::Label { .. }) {
            return Err("a grant is on the fleet, host:<name>, app:<project> or app:<host>/<project>".into());
        }
        Ok(Grant { role, on })
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.role, self.on)
    }
}

/// Everything one request may see and do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    grants: Vec<Grant>,
}

/// The part two scopes share, if any.
fn overlap(a: &Scope, b: &Scope) -> Option<Scope> {
    use Scope::*;
    match (a, b) {
        (Label { .. }, _) | (_, Label { .. }) => None,
        (Fleet, x) | (x, Fleet) => Some(x.clone()),
        (Host(h1), Host(h2)) => (h1 == h2).then(|| Host(h1.clone())),
        (Host(h), App { host, project }) | (App { host, project }, Host(h)) => {
            host.as_deref().is_none_or(|x| x == h).then(|| App { host: Some(h.clone()), project: project.clone() })
        }
        (App { host: h1, project: p1 }, App { host: h2, project: p2 }) => {
            let host = match (h1, h2) {
                (Some(a), Some(b)) if a != b => return None,
                (a, b) => a.clone().or_else(|| b.clone()),
            };
            (p1 == p2).then(|| App { host, project: p1.clone() })
        }
    }
}

/// Whether `inner` lies wholly within `outer`.
fn within(inner: &Scope, outer: &Scope) -> bool {
    overlap(inner, outer).as_ref() == Some(inner)
}

impl Access {
    /// Grants as given (label scopes dropped; at most [`GRANTS_MAX`]).
    pub fn new(grants: impl IntoIterator<Item = Grant>) -> Self {
        let grants =
            grants.into_iter().filter(|g| !matches!(g.on, Scope::Label { .. })).take(GRANTS_MAX).collect::<Vec<_>>();
        Access { grants }
    }

    /// `role` on the whole fleet.
    pub fn fleet(role: Role) -> Self {
        Access { grants: vec![Grant { role, on: Scope::Fleet }] }
    }

    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }

    /// The strongest role held anywhere (what the pages offer; every
    /// action is checked again on its own target).
    pub fn top(&self) -> Option<Role> {
        self.grants.iter().map(|g| g.role).max()
    }

    /// The strongest role covering all of `target`.
    pub fn on(&self, target: &Scope) -> Option<Role> {
        self.grants.iter().filter(|g| within(target, &g.on)).map(|g| g.role).max()
    }

    /// The role on the fleet as a whole: fleet-wide things need it.
    pub fn on_fleet(&self) -> Option<Role> {
        self.on(&Scope::Fleet)
    }

    /// The role on a host as a whole: host-wide things need it.
    pub fn on_host(&self, host: &str) -> Option<Role> {
        self.on(&Scope::Host(host.to_owned()))
    }

    /// The role on a compose project's containers on `host` (a standalone
    /// container, `None`, is covered by host and fleet grants only).
    pub fn on_app(&self, host: &str, project: Option<&str>) -> Option<Role> {
        let app = project.map(|p| self.on(&Scope::App { host: Some(host.to_owned()), project: p.to_owned() }));
        app.unwrap_or_else(|| self.on_host(host))
    }

    /// The role on one container.
    pub fn on_container(&self, host: &str, c: &ContainerSummary) -> Option<Role> {
        self.on_app(host, c.compose_project.as_deref())
    }

    /// Sees everything: no view needs cutting.
    pub fn whole(&self) -> bool {
        self.on_fleet().is_some()
    }

    /// Sees the host's name and status: some grant applies on it.
    pub fn sees_host(&self, host: &str) -> bool {
        self.grants.iter().any(|g| overlap(&g.on, &Scope::Host(host.to_owned())).is_some())
    }

    /// Whether some grant overlaps `on` (the user sees part of it).
    pub fn touches(&self, on: &Scope) -> bool {
        self.grants.iter().any(|g| overlap(&g.on, on).is_some())
    }

    /// Whether the user holds at least `role` over all of `target`.
    pub fn allows(&self, role: Role, target: &Scope) -> bool {
        self.on(target).is_some_and(|r| r >= role)
    }

    /// At least `role` on `target`, or the refusal that says what is needed.
    pub fn need(&self, role: Role, target: &Scope) -> Result<(), ConsoleError> {
        if self.allows(role, target) {
            Ok(())
        } else {
            Err(ConsoleError::NotGranted { needed: role, on: target.to_string() })
        }
    }

    /// A token's access: each of the owner's grants cut to `on`, its role
    /// capped at `role`. What the owner loses, the token loses with them.
    pub fn within(&self, role: Role, on: &Scope) -> Access {
        let grants = self
            .grants
            .iter()
            .filter_map(|g| Some(Grant { role: g.role.min(role), on: overlap(&g.on, on)? }))
            .collect::<Vec<_>>();
        Access { grants }
    }

    /// The fleet as this user may see it: hosts with a grant that applies
    /// on them, containers whose app a grant covers, host-wide figures
    /// (volume sizes) only with a grant on the host. Copies what it keeps only.
    pub fn fleet_view(&self, fleet: &Fleet) -> Fleet {
        if self.whole() {
            return fleet.clone();
        }
        let hosts = fleet
            .hosts
            .iter()
            .filter(|h| self.sees_host(&h.name))
            .map(|h| {
                if self.on_host(&h.name).is_some() {
                    return h.clone();
                }
                let containers: Vec<ContainerSummary> =
                    h.containers.iter().filter(|c| self.on_container(&h.name, c).is_some()).cloned().collect();
                let cpu_history =
                    containers.iter().filter_map(|c| Some((c.id.clone(), h.cpu_history.get(&c.id)?.clone()))).collect();
                let folded =
                    h.folded.iter().filter(|f| self.on_app(&h.name, f.project.as_deref()).is_some()).cloned().collect();
                HostView {
                    name: h.name.clone(),
                    status: h.status.clone(),
                    unencrypted: h.unencrypted,
                    containers,
                    volume_sizes: Default::default(),
                    cpu_history,
                    folded,
                }
            })
            .collect();
        Fleet {
            hosts,
            at_ms: fleet.at_ms,
            spark_bucket: fleet.spark_bucket,
            omitted: fleet.omitted,
            alerts: fleet.alerts,
        }
    }

    /// The part of a delta this user sees. `seen` holds the ids of the
    /// containers the stream has shown (updated here): a removal or stats
    /// change of any other is not sent.
    pub fn delta_view(&self, d: &Delta, seen: &mut std::collections::HashSet<(String, String)>) -> Option<Delta> {
        let mut changes = Vec::new();
        for c in &d.changes {
            let keep = match c {
                Change::Alerts { .. } => true,
                Change::Host { host, .. } => self.sees_host(host),
                Change::Volumes { host, .. } => self.on_host(host).is_some(),
                Change::Upsert { host, c } => {
                    let visible = self.on_container(host, c).is_some();
                    let key = (host.clone(), c.id.clone());
                    if visible {
                        seen.insert(key);
                    } else if seen.remove(&key) {
                        // Moved out of the user's apps: gone, as far as they know.
                        changes.push(Change::Remove { host: host.clone(), id: c.id.clone() });
                    }
                    visible
                }
                Change::Remove { host, id } => seen.remove(&(host.clone(), id.clone())),
                Change::Stats { host, id, .. } | Change::History { host, id, .. } => {
                    seen.contains(&(host.clone(), id.clone()))
                }
                Change::Fold { host, f } => self.on_app(host, f.project.as_deref()).is_some(),
                Change::Unfold { host, project } => self.on_app(host, project.as_deref()).is_some(),
            };
            if keep {
                changes.push(c.clone());
            }
        }
        (!changes.is_empty() || d.changes.is_empty()).then_some(Delta { at_ms: d.at_ms, bucket: d.bucket, changes })
    }

    /// One line: `operator on app:shop, viewer on host:h1`.
    pub fn describe(&self) -> String {
        if self.grants.is_empty() {
            return "no grants".into();
        }
        self.grants.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    }
}

/// The ids a fleet view shows, to seed [`Access::delta_view`].
pub fn seen_in(fleet: &Fleet) -> std::collections::HashSet<(String, String)> {
    fleet.hosts.iter().flat_map(|h| h.containers.iter().map(|c| (h.name.clone(), c.id.clone()))).collect()
}

/// The one container `reference` (its full id, its name, or an id prefix
/// of at least 4) names on `host` in `fleet`; `None` when none or several do.
pub fn find<'a>(fleet: &'a Fleet, host: &str, reference: &str) -> Option<&'a ContainerSummary> {
    let h = fleet.hosts.iter().find(|h| h.name == host)?;
    let by_name = h.containers.iter().find(|c| c.id == reference || c.name == reference);
    if by_name.is_some() {
        return by_name;
    }
    if reference.len() < 4 {
        return None;
    }
    let mut prefixed = h.containers.iter().filter(|c| c.id.starts_with(reference));
    match (prefixed.next(), prefixed.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(role: Role, on: &str) -> Grant {
        Grant { role, on: Scope::parse(on).expect("scope") }
    }

    fn s(on: &str) -> Scope {
        Scope::parse(on).expect("scope")
    }

    #[test]
    fn roles_on_scopes() {
        let a = Access::new([g(Role::Operator, "app:shop"), g(Role::Viewer, "host:h2"), g(Role::Admin, "app:h3/db")]);
        assert_eq!(a.on_fleet(), None);
        assert!(!a.whole());
        assert_eq!(a.top(), Some(Role::Admin));
        assert_eq!(a.on_app("h1", Some("shop")), Some(Role::Operator), "an app grant on every host");
        assert_eq!(a.on_app("h1", Some("blog")), None);
        assert_eq!(a.on_app("h1", None), None, "a standalone container needs the host");
        assert_eq!(a.on_app("h2", Some("blog")), Some(Role::Viewer), "the host grant covers its apps");
        assert_eq!(a.on_app("h2", Some("shop")), Some(Role::Operator), "the strongest applies");
        assert_eq!(a.on_app("h3", Some("db")), Some(Role::Admin));
        assert_eq!(a.on_app("h1", Some("db")), None, "that app grant is for h3 only");
        assert_eq!(a.on_host("h1"), None, "an app grant is not the host");
        assert_eq!(a.on_host("h2"), Some(Role::Viewer));
        assert!(a.sees_host("h1") && a.sees_host("h2") && a.sees_host("h3"));
        assert_eq!(a.on(&s("app:shop")), Some(Role::Operator));
        assert_eq!(a.on(&s("app:db")), None, "db on every host is more than h3's");
        assert!(a.need(Role::Operator, &s("app:h1/shop")).is_ok());
        let refused = a.need(Role::Operator, &s("app:h1/blog")).unwrap_err();
        assert_eq!(refused.status(), 403);
        assert!(refused.to_string().contains("operator") && refused.to_string().contains("app:h1/blog"));
        let narrow = Access::new([g(Role::Viewer, "app:h1/shop")]);
        assert!(narrow.sees_host("h1") && !narrow.sees_host("h2"));
        let admin = Access::fleet(Role::Admin);
        assert!(admin.whole() && admin.allows(Role::Admin, &s("host:anything")));
    }

    #[test]
    fn a_tokens_access_is_cut_and_capped() {
        let owner = Access::new([g(Role::Admin, "host:h1"), g(Role::Operator, "app:shop")]);
        let t = owner.within(Role::Operator, &s("app:shop"));
        assert_eq!(t.on_app("h1", Some("shop")), Some(Role::Operator), "capped at the token's role");
        assert_eq!(t.on_app("h2", Some("shop")), Some(Role::Operator));
        assert_eq!(t.on_app("h1", Some("blog")), None, "cut to the token's scope");
        assert_eq!(t.on_host("h1"), None);
        let t = owner.within(Role::Admin, &s("host:h1"));
        assert_eq!(t.on_host("h1"), Some(Role::Admin));
        assert_eq!(t.on_app("h2", Some("shop")), None);
        let t = owner.within(Role::Admin, &s("host:h9"));
        assert_eq!(t.on_app("h9", Some("shop")), Some(Role::Operator), "the owner's app grant, on that host");
        assert_eq!(t.on_host("h9"), None);
        assert!(Access::new([g(Role::Viewer, "app:h1/shop")]).within(Role::Admin, &s("app:h2/shop")).is_empty());
        assert!(Access::default().within(Role::Admin, &Scope::Fleet).is_empty(), "nothing from nothing");
    }

    #[test]
    fn grants_are_never_on_labels() {
        assert!(Grant::parse("operator", "label:team=shop").is_err());
        assert!(Grant::parse("boss", "fleet").is_err());
        assert!(Grant::parse("operator", "app:Bad Name").is_err());
        assert_eq!(Grant::parse("operator", "app:shop").unwrap().to_string(), "operator on app:shop");
    }

    fn container(id: &str, project: Option<&str>) -> ContainerSummary {
        let mut c =
            crate::model::fixtures::container(id, project, shared::ContainerState::Running, shared::Health::None, "Up");
        c.id = id.to_owned();
        c.name = format!("n-{id}");
        c
    }

    fn fleet() -> Fleet {
        let host = |name: &str, cs: Vec<ContainerSummary>| crate::model::HostView {
            name: name.into(),
            status: crate::model::HostStatus::Connected,
            unencrypted: false,
            cpu_history: cs.iter().map(|c| (c.id.clone(), vec![1.0])).collect(),
            containers: cs,
            volume_sizes: [("v".to_owned(), 1)].into(),
            folded: Vec::new(),
        };
        Fleet {
            hosts: vec![
                host(
                    "h1",
                    vec![container("aaaa1", Some("shop")), container("bbbb1", Some("blog")), container("cccc1", None)],
                ),
                host("h2", vec![container("aaaa2", Some("shop"))]),
            ],
            ..Fleet::default()
        }
    }

    #[test]
    fn the_fleet_and_its_deltas_are_cut_to_the_grants() {
        let a = Access::new([g(Role::Operator, "app:h1/shop")]);
        let v = a.fleet_view(&fleet());
        assert_eq!(v.hosts.len(), 1, "h2 is not theirs");
        let ids: Vec<&str> = v.hosts[0].containers.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["aaaa1"]);
        assert_eq!(v.hosts[0].cpu_history.keys().collect::<Vec<_>>(), ["aaaa1"]);
        assert!(v.hosts[0].volume_sizes.is_empty(), "volumes are the host's");
        assert_eq!(Access::fleet(Role::Viewer).fleet_view(&fleet()), fleet());

        let mut seen = seen_in(&v);
        let stats = |host: &str, id: &str| Change::Stats { host: host.into(), id: id.into(), s: None };
        let d = Delta {
            at_ms: 1,
            bucket: 1,
            changes: vec![
                stats("h1", "aaaa1"),
                stats("h1", "bbbb1"),
                Change::Host { host: "h2".into(), status: crate::model::HostStatus::Connected },
                Change::Upsert { host: "h1".into(), c: Box::new(container("dddd1", Some("blog"))) },
                Change::Upsert { host: "h1".into(), c: Box::new(container("eeee1", Some("shop"))) },
                Change::Remove { host: "h1".into(), id: "bbbb1".into() },
                Change::Alerts { n: 2 },
            ],
        };
        let out = a.delta_view(&d, &mut seen).expect("a part");
        assert_eq!(out.changes.len(), 3, "{:?}", out.changes);
        assert_eq!(out.changes[0], stats("h1", "aaaa1"));
        assert!(matches!(&out.changes[1], Change::Upsert { c, .. } if c.id == "eeee1"));
        assert_eq!(out.changes[2], Change::Alerts { n: 2 });
        assert!(seen.contains(&("h1".to_owned(), "eeee1".to_owned())));
        // A container of theirs moves to another project: removed for them.
        let moved = Delta {
            at_ms: 2,
            bucket: 1,
            changes: vec![Change::Upsert { host: "h1".into(), c: Box::new(container("aaaa1", Some("blog"))) }],
        };
        let out = a.delta_view(&moved, &mut seen).expect("a part");
        assert_eq!(out.changes, vec![Change::Remove { host: "h1".into(), id: "aaaa1".into() }]);
        let other = Delta { at_ms: 3, bucket: 1, changes: vec![stats("h2", "aaaa2")] };
        assert_eq!(a.delta_view(&other, &mut seen), None, "nothing of theirs");
        let tick = Delta { at_ms: 4, bucket: 2, changes: vec![] };
        assert!(a.delta_view(&tick, &mut seen).is_some(), "a bucket tick moves every sparkline");
    }

    #[test]
    fn a_reference_names_one_container() {
        let f = fleet();
        assert_eq!(find(&f, "h1", "aaaa1").map(|c| c.id.as_str()), Some("aaaa1"));
        assert_eq!(find(&f, "h1", "n-bbbb1").map(|c| c.id.as_str()), Some("bbbb1"));
        assert_eq!(find(&f, "h1", "cccc").map(|c| c.id.as_str()), Some("cccc1"));
        assert_eq!(find(&f, "h1", "aaa"), None, "too short a prefix");
        assert_eq!(find(&f, "h2", "bbbb1"), None, "another host's");
        assert_eq!(find(&f, "h9", "aaaa1"), None);
    }
}
