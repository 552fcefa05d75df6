//! Health in one glance: a container's badge and the fleet's headline.

use serde::{Deserialize, Serialize};
use shared::{ContainerState, ContainerSummary, Health};

use super::{Fleet, HostStatus};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::container;

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
}
