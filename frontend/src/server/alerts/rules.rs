//! Alert rules: what to watch for, where, and whom to tell. Read from input
//! once ([`Rule::parse`]: every field bounded, a refusal names its field),
//! stored as JSON, evaluated by [`super::engine`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::input::{bad, Input};
use crate::error::ConsoleError;

/// Most rules kept.
pub const RULES_MAX: usize = 200;
/// A log pattern's longest source.
pub const PATTERN_MAX: usize = 200;
/// A log pattern's largest compiled program (bytes): no pattern may cost more.
pub const PATTERN_SIZE_MAX: usize = 256 * 1024;

pub use crate::server::scope::Scope;

/// What a rule watches for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Condition {
    /// Unhealthy (its healthcheck) for at least `for_s`.
    Unhealthy { for_s: u32 },
    /// At least `restarts` restarts within `window_s`; over once none for `window_s`.
    RestartLoop { restarts: u32, window_s: u32 },
    /// The kernel's OOM killer ended its last run.
    OomKilled,
    /// Stopped with a non-zero code, or stopped at all while its restart
    /// policy (`always`, `unless-stopped`) says it should run. A one-shot
    /// job that exits 0 never fires this.
    Exited,
    /// The host's sidecar unreachable for at least `for_s`, or presenting a
    /// certificate that is not pinned (at once).
    HostDown { for_s: u32 },
    /// CPU above `percent` (of one core) for at least `for_s`.
    Cpu { percent: f64, for_s: u32 },
    /// Memory above `percent` of its limit for at least `for_s`.
    Memory { percent: f64, for_s: u32 },
    /// Its image has a newer build under the same tag.
    UpdateAvailable,
    /// A log line matched `pattern`; over `hold_s` after the last match.
    LogMatch { pattern: String, hold_s: u32 },
    /// The host's sidecar audit chain does not verify.
    AuditBroken,
}

pub const KINDS: &[(&str, &str)] = &[
    ("exited", "Exited non-zero (or stopped while it should run)"),
    ("unhealthy", "Unhealthy for a while"),
    ("restart_loop", "Restart loop"),
    ("oom_killed", "OOM-killed"),
    ("host_down", "Host unreachable or identity changed"),
    ("cpu", "CPU above a threshold"),
    ("memory", "Memory above a threshold"),
    ("update_available", "Update available"),
    ("log_match", "Log line matches a pattern"),
    ("audit_broken", "Audit chain broken"),
];

impl Condition {
    pub fn kind(&self) -> &'static str {
        match self {
            Condition::Unhealthy { .. } => "unhealthy",
            Condition::RestartLoop { .. } => "restart_loop",
            Condition::OomKilled => "oom_killed",
            Condition::Exited => "exited",
            Condition::HostDown { .. } => "host_down",
            Condition::Cpu { .. } => "cpu",
            Condition::Memory { .. } => "memory",
            Condition::UpdateAvailable => "update_available",
            Condition::LogMatch { .. } => "log_match",
            Condition::AuditBroken => "audit_broken",
        }
    }

    /// Whether it is about hosts rather than containers.
    pub fn of_hosts(&self) -> bool {
        matches!(self, Condition::HostDown { .. } | Condition::AuditBroken)
    }
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    pub enabled: bool,
    #[serde(flatten)]
    pub condition: Condition,
    pub scope: Scope,
    /// Channels told (ids); none: every enabled channel.
    #[serde(default)]
    pub channels: Vec<i64>,
}

/// The fields a rule may have.
const FIELDS: &[&str] =
    &["name", "enabled", "kind", "scope", "channels", "for_s", "restarts", "window_s", "percent", "pattern", "hold_s"];

impl Rule {
    /// A rule from a client's object; every refusal names its field.
    pub fn parse(v: &Value) -> Result<Rule, ConsoleError> {
        let i = Input::of(v)?;
        i.only(FIELDS)?;
        let name = i.required("name", 80)?;
        let kind = i.required("kind", 40)?;
        let for_s = || i.number("for_s", 0, 86_400, 60).map(|n| n as u32);
        let condition = match kind.as_str() {
            "unhealthy" => Condition::Unhealthy { for_s: for_s()? },
            "restart_loop" => Condition::RestartLoop {
                restarts: i.number("restarts", 2, 1000, 3)? as u32,
                window_s: i.number("window_s", 10, 86_400, 600)? as u32,
            },
            "oom_killed" => Condition::OomKilled,
            "exited" => Condition::Exited,
            "host_down" => Condition::HostDown { for_s: for_s()? },
            "cpu" => Condition::Cpu { percent: i.decimal("percent", 1.0, 10_000.0, 90.0)?, for_s: for_s()? },
            "memory" => Condition::Memory { percent: i.decimal("percent", 1.0, 100.0, 90.0)?, for_s: for_s()? },
            "update_available" => Condition::UpdateAvailable,
            "log_match" => {
                let pattern = i.required("pattern", PATTERN_MAX)?;
                compile(&pattern).map_err(|e| bad("pattern", e))?;
                Condition::LogMatch { pattern, hold_s: i.number("hold_s", 10, 86_400, 300)? as u32 }
            }
            "audit_broken" => Condition::AuditBroken,
            other => {
                let known: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
                return Err(bad("kind", format!("{other:?} is not a rule kind (known: {})", known.join(", "))));
            }
        };
        let scope = match i.text("scope", 400)? {
            Some(s) => Scope::parse(&s).map_err(|e| bad("scope", e))?,
            None => Scope::Fleet,
        };
        if condition.of_hosts() && !matches!(scope, Scope::Fleet | Scope::Host(_)) {
            return Err(bad("scope", "a host rule's scope is the fleet or one host"));
        }
        if matches!(condition, Condition::LogMatch { .. }) && !matches!(scope, Scope::App { .. }) {
            return Err(bad("scope", "a log rule follows one app's containers: its scope is app:<project>"));
        }
        Ok(Rule { name, enabled: i.flag("enabled", true)?, condition, scope, channels: i.ids("channels", 16)? })
    }

    /// Its fields as a client sends them (the form's values, the API's body).
    pub fn fields(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.insert("scope".into(), Value::String(self.scope.to_string()));
        }
        v
    }
}

/// A log pattern, compiled within bounds (size, nesting).
pub fn compile(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(PATTERN_SIZE_MAX)
        .dfa_size_limit(PATTERN_SIZE_MAX)
        .nest_limit(32)
        .build()
        .map_err(|e| format!("is not a usable pattern: {}", e.to_string().lines().last().unwrap_or("invalid")))
}

/// The rules a fresh install starts with, every one editable.
pub fn defaults() -> Vec<Rule> {
    let rule = |name: &str, condition| Rule {
        name: name.into(),
        enabled: true,
        condition,
        scope: Scope::Fleet,
        channels: vec![],
    };
    vec![
        rule("Container exited with an error", Condition::Exited),
        rule("Container unhealthy", Condition::Unhealthy { for_s: 60 }),
        rule("Restart loop", Condition::RestartLoop { restarts: 3, window_s: 600 }),
        rule("Out of memory", Condition::OomKilled),
        rule("Host unreachable", Condition::HostDown { for_s: 60 }),
        rule("Audit chain broken", Condition::AuditBroken),
        Rule { enabled: false, ..rule("High CPU", Condition::Cpu { percent: 90.0, for_s: 300 }) },
        Rule { enabled: false, ..rule("High memory", Condition::Memory { percent: 90.0, for_s: 300 }) },
        Rule { enabled: false, ..rule("Update available", Condition::UpdateAvailable) },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_rule_reads_and_writes_alike() {
        let r = Rule::parse(
            &json!({"name": "slow", "kind": "unhealthy", "for_s": "30", "scope": "app:h1/shop", "channels": "2, 1"}),
        )
        .expect("a rule");
        assert_eq!(r.condition, Condition::Unhealthy { for_s: 30 });
        assert_eq!(r.scope, Scope::App { host: Some("h1".into()), project: "shop".into() });
        assert_eq!(r.channels, vec![1, 2]);
        let stored = serde_json::to_string(&r).expect("json");
        assert_eq!(serde_json::from_str::<Rule>(&stored).expect("back"), r);
        assert_eq!(Rule::parse(&r.fields()).expect("again"), r);
    }

    #[test]
    fn refusals_name_their_field() {
        let cases = [
            (json!({"kind": "exited"}), "name"),
            (json!({"name": "x", "kind": "telepathy"}), "kind"),
            (json!({"name": "x", "kind": "unhealthy", "for_s": 90_000}), "for_s"),
            (json!({"name": "x", "kind": "unhealthy", "for_s": -1}), "for_s"),
            (json!({"name": "x", "kind": "cpu", "percent": "lots"}), "percent"),
            (json!({"name": "x", "kind": "memory", "percent": 101}), "percent"),
            (json!({"name": "x", "kind": "restart_loop", "restarts": 1}), "restarts"),
            (json!({"name": "x", "kind": "log_match", "scope": "app:shop", "pattern": "(unclosed"}), "pattern"),
            (json!({"name": "x", "kind": "log_match", "scope": "app:shop", "pattern": "a{1000}{1000}"}), "pattern"),
            (json!({"name": "x", "kind": "log_match", "pattern": "panic"}), "scope"),
            (json!({"name": "x", "kind": "exited", "scope": "planet:mars"}), "scope"),
            (json!({"name": "x", "kind": "exited", "scope": "host:bad host"}), "scope"),
            (json!({"name": "x", "kind": "host_down", "scope": "app:shop"}), "scope"),
            (json!({"name": "x", "kind": "exited", "channels": "one"}), "channels"),
            (json!({"name": "x", "kind": "exited", "colour": "red"}), "colour"),
            (json!({"name": "x\u{7}", "kind": "exited"}), "name"),
        ];
        for (input, want) in cases {
            assert_eq!(
                super::super::input::refused_field(Rule::parse(&input).expect_err(&input.to_string())),
                want,
                "{input}"
            );
        }
    }

    #[test]
    fn scopes_hold_what_they_name() {
        let mut c = crate::testing::container("web-1", Some("shop"), shared::ContainerState::Running, "Up");
        c.labels.insert("team".into(), "pay".into());
        assert!(Scope::Fleet.holds("h1", &c));
        assert!(Scope::parse("host:h1").expect("scope").holds("h1", &c));
        assert!(!Scope::parse("host:h2").expect("scope").holds("h1", &c));
        assert!(Scope::parse("app:shop").expect("scope").holds("h2", &c));
        assert!(!Scope::parse("app:h2/shop").expect("scope").holds("h1", &c));
        assert!(Scope::parse("label:team=pay").expect("scope").holds("h1", &c));
        assert!(Scope::parse("label:team").expect("scope").holds("h1", &c));
        assert!(!Scope::parse("label:team=ops").expect("scope").holds("h1", &c));
    }

    #[test]
    fn the_defaults_are_valid_rules() {
        for r in defaults() {
            assert_eq!(Rule::parse(&r.fields()).expect(&r.name), r);
        }
    }
}
