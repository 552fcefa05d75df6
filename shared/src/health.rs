//! How a container is doing, by the rules people run Docker with: one table,
//! used for the console's badges and headline (and later its alerts).
//!
//! - Health status counts only while a container runs (an exited container
//!   keeps its last, stale health status).
//! - A container that exited 0 and is not meant to run on (restart policy
//!   `no` or `on-failure`, a one-shot job) has *completed*: neutral.
//! - One ended by a signal (130, 137, 143: `docker stop`, `compose stop`,
//!   Ctrl-C) and not by the OOM killer was *stopped*: neutral, whatever its
//!   policy (under `always` the engine restarts anything it did not stop on
//!   purpose, so an exited container there was stopped by someone).
//! - Exited with another non-zero code while its policy says it should run or
//!   retry (retries exhausted, a failed start), restarting, unhealthy,
//!   OOM-killed and dead are *problems*.
//! - A job that failed (non-zero, policy `no`) is a *warning*.

use serde::{Deserialize, Serialize};

use crate::{ContainerState, ContainerSummary, Health};

/// How much a condition asks of the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Running as it should.
    Ok,
    /// Not running, and that is how it was meant (completed, stopped).
    Neutral,
    /// Worth a look, probably passing (starting, paused, created, a failed job).
    Warning,
    /// Something is wrong.
    Problem,
}

/// One container's condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "condition")]
pub enum Condition {
    Healthy,
    Running,
    Starting,
    Unhealthy,
    Paused,
    Restarting,
    Created,
    Removing,
    /// Exited 0 and not meant to run on (a one-shot).
    Completed,
    /// Stopped on purpose: exited 0 under a policy that would have restarted a
    /// crash, or ended by a signal (`docker stop`) with no restart policy.
    Stopped {
        exit_code: Option<i64>,
    },
    /// A job that failed: exited non-zero with restart policy `no`.
    Failed {
        exit_code: Option<i64>,
    },
    /// Exited non-zero (or with no code) while its policy says it should run.
    Exited {
        exit_code: Option<i64>,
    },
    OomKilled,
    Dead,
    Unknown,
}

/// Exit codes of a process ended by SIGINT, SIGKILL or SIGTERM (128 + n).
const SIGNAL_EXITS: [i64; 3] = [130, 137, 143];

/// `always` and `unless-stopped`: the engine restarts it whatever its exit.
fn should_run(policy: &str) -> bool {
    matches!(policy, "always" | "unless-stopped")
}

/// `on-failure[:N]`: the engine retries non-zero exits.
fn retries_failures(policy: &str) -> bool {
    policy == "on-failure" || policy.starts_with("on-failure:")
}

/// `Exited (137) 5 minutes ago` → 137 (for summaries from before `exit_code`).
pub fn exit_code_from_status(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest.split(')').next()?.trim().parse().ok()
}

/// The whole rule table.
pub fn condition(c: &ContainerSummary) -> Condition {
    use ContainerState as S;
    match c.state {
        S::Running => match c.health {
            Health::Unhealthy => Condition::Unhealthy,
            Health::Starting => Condition::Starting,
            Health::Healthy => Condition::Healthy,
            Health::None => Condition::Running,
        },
        S::Restarting => Condition::Restarting,
        S::Paused => Condition::Paused,
        S::Created => Condition::Created,
        S::Removing => Condition::Removing,
        S::Dead => Condition::Dead,
        S::Exited if c.oom_killed => Condition::OomKilled,
        S::Exited => {
            let code = c.exit_code.or_else(|| exit_code_from_status(&c.status));
            let policy = c.restart_policy.as_str();
            match code {
                Some(0) if should_run(policy) => Condition::Stopped { exit_code: code },
                Some(0) => Condition::Completed,
                Some(n) if SIGNAL_EXITS.contains(&n) => Condition::Stopped { exit_code: code },
                _ if should_run(policy) || retries_failures(policy) => Condition::Exited { exit_code: code },
                _ => Condition::Failed { exit_code: code },
            }
        }
        S::Unknown => Condition::Unknown,
    }
}

impl Condition {
    pub fn severity(self) -> Severity {
        match self {
            Self::Healthy | Self::Running => Severity::Ok,
            Self::Completed | Self::Stopped { .. } | Self::Removing => Severity::Neutral,
            Self::Starting | Self::Paused | Self::Created | Self::Failed { .. } | Self::Unknown => Severity::Warning,
            Self::Unhealthy | Self::Restarting | Self::Exited { .. } | Self::OomKilled | Self::Dead => {
                Severity::Problem
            }
        }
    }

    /// The badge's words.
    pub fn label(self) -> String {
        let code = |word: &str, c: Option<i64>| match c {
            Some(c) => format!("{word} ({c})"),
            None => word.to_owned(),
        };
        match self {
            Self::Healthy => "healthy".into(),
            Self::Running => "running".into(),
            Self::Starting => "starting".into(),
            Self::Unhealthy => "unhealthy".into(),
            Self::Paused => "paused".into(),
            Self::Restarting => "restarting".into(),
            Self::Created => "created".into(),
            Self::Removing => "removing".into(),
            Self::Completed => "completed".into(),
            Self::Stopped { exit_code } => code("stopped", exit_code.filter(|c| *c != 0)),
            Self::Failed { exit_code } => code("failed", exit_code),
            Self::Exited { exit_code } => code("exited", exit_code),
            Self::OomKilled => "OOM-killed".into(),
            Self::Dead => "dead".into(),
            Self::Unknown => "unknown".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(state: ContainerState, health: Health, policy: &str, exit: Option<i64>, oom: bool) -> ContainerSummary {
        ContainerSummary {
            id: "id".into(),
            name: "n".into(),
            image: "img".into(),
            image_id: String::new(),
            state,
            status: String::new(),
            health,
            created: 0,
            started_at: None,
            finished_at: None,
            restart_count: 0,
            restart_policy: policy.into(),
            exit_code: exit,
            oom_killed: oom,
            compose_project: None,
            compose_service: None,
            ports: vec![],
            networks: vec![],
            mounts: vec![],
            labels: Default::default(),
            protected: false,
            stats: None,
        }
    }

    /// The whole table: (state, health, policy, exit code, OOM) → condition, severity, label.
    #[test]
    fn the_rule_table() {
        use ContainerState::*;
        use Health as H;
        use Severity::*;
        type Row = (ContainerState, Health, &'static str, Option<i64>, bool, Condition, Severity, &'static str);
        let rows: &[Row] = &[
            // Running: health decides.
            (Running, H::Healthy, "always", None, false, Condition::Healthy, Ok, "healthy"),
            (Running, H::None, "no", None, false, Condition::Running, Ok, "running"),
            (Running, H::Starting, "no", None, false, Condition::Starting, Warning, "starting"),
            (Running, H::Unhealthy, "no", None, false, Condition::Unhealthy, Problem, "unhealthy"),
            // A stale health status of a stopped container does not count.
            (Exited, H::Unhealthy, "no", Some(0), false, Condition::Completed, Neutral, "completed"),
            (
                Exited,
                H::Healthy,
                "always",
                Some(1),
                false,
                Condition::Exited { exit_code: Some(1) },
                Problem,
                "exited (1)",
            ),
            // One-shots that exit 0 are done, whatever their health said.
            (Exited, H::None, "no", Some(0), false, Condition::Completed, Neutral, "completed"),
            (Exited, H::None, "on-failure", Some(0), false, Condition::Completed, Neutral, "completed"),
            (Exited, H::None, "on-failure:3", Some(0), false, Condition::Completed, Neutral, "completed"),
            // Exit 0 under always/unless-stopped: someone stopped it.
            (Exited, H::None, "always", Some(0), false, Condition::Stopped { exit_code: Some(0) }, Neutral, "stopped"),
            (
                Exited,
                H::None,
                "unless-stopped",
                Some(0),
                false,
                Condition::Stopped { exit_code: Some(0) },
                Neutral,
                "stopped",
            ),
            // Non-zero while the policy says run or retry: a problem.
            (
                Exited,
                H::None,
                "always",
                Some(1),
                false,
                Condition::Exited { exit_code: Some(1) },
                Problem,
                "exited (1)",
            ),
            (
                Exited,
                H::None,
                "unless-stopped",
                Some(127),
                false,
                Condition::Exited { exit_code: Some(127) },
                Problem,
                "exited (127)",
            ),
            // Ended by a signal (docker stop, compose stop): stopped on purpose, under any policy.
            (
                Exited,
                H::None,
                "unless-stopped",
                Some(143),
                false,
                Condition::Stopped { exit_code: Some(143) },
                Neutral,
                "stopped (143)",
            ),
            (
                Exited,
                H::None,
                "always",
                Some(137),
                false,
                Condition::Stopped { exit_code: Some(137) },
                Neutral,
                "stopped (137)",
            ),
            (
                Exited,
                H::None,
                "on-failure:3",
                Some(130),
                false,
                Condition::Stopped { exit_code: Some(130) },
                Neutral,
                "stopped (130)",
            ),
            (
                Exited,
                H::None,
                "on-failure:5",
                Some(2),
                false,
                Condition::Exited { exit_code: Some(2) },
                Problem,
                "exited (2)",
            ),
            (Exited, H::None, "always", None, false, Condition::Exited { exit_code: None }, Problem, "exited"),
            // No policy: a failed job is a warning; a signal is a stop.
            (Exited, H::None, "no", Some(1), false, Condition::Failed { exit_code: Some(1) }, Warning, "failed (1)"),
            (Exited, H::None, "no", None, false, Condition::Failed { exit_code: None }, Warning, "failed"),
            (
                Exited,
                H::None,
                "no",
                Some(137),
                false,
                Condition::Stopped { exit_code: Some(137) },
                Neutral,
                "stopped (137)",
            ),
            (
                Exited,
                H::None,
                "no",
                Some(143),
                false,
                Condition::Stopped { exit_code: Some(143) },
                Neutral,
                "stopped (143)",
            ),
            (
                Exited,
                H::None,
                "no",
                Some(130),
                false,
                Condition::Stopped { exit_code: Some(130) },
                Neutral,
                "stopped (130)",
            ),
            // The OOM killer wins over every policy and code.
            (Exited, H::None, "no", Some(137), true, Condition::OomKilled, Problem, "OOM-killed"),
            (Exited, H::None, "always", Some(0), true, Condition::OomKilled, Problem, "OOM-killed"),
            // The other states.
            (Restarting, H::None, "always", Some(1), false, Condition::Restarting, Problem, "restarting"),
            (Dead, H::None, "no", None, false, Condition::Dead, Problem, "dead"),
            (Paused, H::Healthy, "no", None, false, Condition::Paused, Warning, "paused"),
            (Created, H::None, "no", None, false, Condition::Created, Warning, "created"),
            (Removing, H::None, "no", None, false, Condition::Removing, Neutral, "removing"),
            (Unknown, H::None, "no", None, false, Condition::Unknown, Warning, "unknown"),
        ];
        for (i, (state, health, policy, exit, oom, want, sev, label)) in rows.iter().enumerate() {
            let got = condition(&c(*state, *health, policy, *exit, *oom));
            assert_eq!((got, got.severity(), got.label().as_str()), (*want, *sev, *label), "row {i}");
        }
    }

    #[test]
    fn the_status_text_is_the_fallback_for_the_exit_code() {
        let mut x = c(ContainerState::Exited, Health::None, "always", None, false);
        x.status = "Exited (0) 2 minutes ago".into();
        assert_eq!(condition(&x), Condition::Stopped { exit_code: Some(0) });
        x.exit_code = Some(3);
        assert_eq!(condition(&x), Condition::Exited { exit_code: Some(3) }, "the engine's field wins");
        assert_eq!(exit_code_from_status("Exited (137) 5 minutes ago"), Some(137));
        assert_eq!(exit_code_from_status("Up 5 minutes"), None);
    }
}
