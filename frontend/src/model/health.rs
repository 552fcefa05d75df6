//! Health in one glance: a container's badge and the fleet's headline.

use serde::{Deserialize, Serialize};
use shared::health::Severity;
use shared::ContainerSummary;

use super::{Fleet, HostStatus};

/// A badge's colour class; always shown with text, never colour alone.
/// Ordered by how much it asks of the operator (an app shows its worst).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Badge {
    /// Not running, as intended (a completed one-shot, a stopped service).
    Grey,
    Green,
    Amber,
    Red,
}

impl Badge {
    pub fn class(self) -> &'static str {
        match self {
            Self::Grey => "badge-grey",
            Self::Green => "badge-green",
            Self::Amber => "badge-amber",
            Self::Red => "badge-red",
        }
    }

    /// Red or amber: what the operator should look at (never collapsed, first).
    pub fn is_problem(self) -> bool {
        matches!(self, Self::Amber | Self::Red)
    }

    fn of(severity: Severity) -> Self {
        match severity {
            Severity::Ok => Self::Green,
            Severity::Neutral => Self::Grey,
            Severity::Warning => Self::Amber,
            Severity::Problem => Self::Red,
        }
    }
}

/// One container's badge and the words for it, by the rules of [`shared::health`].
pub fn container_badge(c: &ContainerSummary) -> (Badge, String) {
    let condition = shared::health::condition(c);
    (Badge::of(condition.severity()), condition.label())
}

/// The one-line answer to "is everything green?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headline {
    pub badge: Badge,
    pub text: String,
}

pub fn headline(fleet: &Fleet) -> Headline {
    let plural = |n: usize, one: &str, many: &str| if n == 1 { format!("{n} {one}") } else { format!("{n} {many}") };
    let (mut ok, mut resting, mut warnings, mut problems) = (0, 0, 0, 0);
    for c in fleet.hosts.iter().flat_map(|h| &h.containers) {
        match shared::health::condition(c).severity() {
            Severity::Ok => ok += 1,
            Severity::Neutral => resting += 1,
            Severity::Warning => warnings += 1,
            Severity::Problem => problems += 1,
        }
    }
    // Folded apps (all healthy or resting) count as their containers would.
    for f in fleet.hosts.iter().flat_map(|h| &h.folded) {
        (ok, resting) = (ok + (f.n - f.resting.min(f.n)) as usize, resting + f.resting as usize);
    }
    // What the overview's first render left out still counts.
    if let Some(o) = &fleet.omitted {
        (ok, resting, warnings, problems) =
            (ok + o.ok, resting + o.resting, warnings + o.warnings, problems + o.problems);
    }
    let down = fleet.hosts.iter().filter(|h| !matches!(h.status, HostStatus::Connected)).count();
    let mut parts = Vec::new();
    if problems > 0 {
        parts.push(format!("{problems} need{} attention", if problems == 1 { "s" } else { "" }));
    }
    if warnings > 0 {
        parts.push(format!("{warnings} to check"));
    }
    if down > 0 {
        parts.push(format!("{} not reporting", plural(down, "host", "hosts")));
    }
    let badge = if problems > 0 {
        Badge::Red
    } else if warnings > 0 || down > 0 {
        Badge::Amber
    } else if ok + resting == 0 {
        return Headline { badge: Badge::Amber, text: "No containers yet".into() };
    } else {
        Badge::Green
    };
    if badge == Badge::Green {
        let mut text = if ok == 0 {
            "Nothing running".to_owned()
        } else {
            format!("All {} healthy", plural(ok, "container", "containers"))
        };
        if resting > 0 {
            text.push_str(&format!(" · {resting} completed or stopped"));
        }
        return Headline { badge, text };
    }
    Headline { badge, text: parts.join("; ") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{container, fleet};
    use shared::{ContainerState, Health};

    #[test]
    fn badges_follow_the_shared_rules() {
        use ContainerState::*;
        let b = |s, h, st: &str| container_badge(&container("x", None, s, h, st));
        assert_eq!(b(Running, Health::Healthy, "Up"), (Badge::Green, "healthy".into()));
        assert_eq!(b(Running, Health::None, "Up"), (Badge::Green, "running".into()));
        assert_eq!(b(Running, Health::Unhealthy, "Up"), (Badge::Red, "unhealthy".into()));
        assert_eq!(b(Running, Health::Starting, "Up"), (Badge::Amber, "starting".into()));
        assert_eq!(b(Restarting, Health::None, "").0, Badge::Red);
        assert_eq!(b(Dead, Health::None, "").0, Badge::Red);
        // Restart policy "no" (the fixture's): a one-shot that exited 0 has completed, even with a stale health.
        assert_eq!(b(Exited, Health::Unhealthy, "Exited (0) 2 minutes ago"), (Badge::Grey, "completed".into()));
        assert_eq!(b(Exited, Health::None, "Exited (137) 2 minutes ago"), (Badge::Grey, "stopped (137)".into()));
        assert_eq!(b(Exited, Health::None, "Exited (1) 2 minutes ago"), (Badge::Amber, "failed (1)".into()));
        let mut svc = container("svc", None, Exited, Health::None, "Exited (1) 1 second ago");
        svc.restart_policy = "unless-stopped".into();
        assert_eq!(container_badge(&svc), (Badge::Red, "exited (1)".into()));
    }

    #[test]
    fn a_completed_one_shot_keeps_the_headline_green() {
        use ContainerState::*;
        let mut init = container("init", Some("dockward"), Exited, Health::Unhealthy, "Exited (0) 1 minute ago");
        init.exit_code = Some(0);
        let f = fleet(vec![init.clone(), container("web", Some("dockward"), Running, Health::Healthy, "Up")]);
        assert_eq!(
            headline(&f),
            Headline { badge: Badge::Green, text: "All 1 container healthy · 1 completed or stopped".into() }
        );
        let only_done = fleet(vec![init]);
        assert_eq!(headline(&only_done).badge, Badge::Green);
        assert_eq!(headline(&only_done).text, "Nothing running · 1 completed or stopped");
        assert_eq!(headline(&fleet(vec![])).text, "No containers yet");
    }

    #[test]
    fn problems_then_warnings_then_hosts() {
        use ContainerState::*;
        let f = fleet(vec![
            container("a", None, Running, Health::Unhealthy, "Up"),
            container("b", None, Running, Health::Starting, "Up"),
            container("c", None, Running, Health::None, "Up"),
        ]);
        assert_eq!(headline(&f), Headline { badge: Badge::Red, text: "1 needs attention; 1 to check".into() });
        let f = fleet(vec![container("b", None, Running, Health::Starting, "Up")]);
        assert_eq!(headline(&f), Headline { badge: Badge::Amber, text: "1 to check".into() });
    }
}
