//! The verb table: the sidecar's whole API in one place.
//!
//! Every route the sidecar serves is one row of [`VERBS`]: its name, method,
//! path template, whether it mutates, its rate-limit class, its audit name and
//! the least console role that may call it. The sidecar's router, metrics
//! labels, audit records and body check, and the console's sidecar client are
//! all derived from it, and a test holds SECURITY.md's route table to it.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Every verb the sidecar knows (one per route).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verb {
    Healthz,
    Metrics,
    ListContainers,
    InspectContainer,
    Logs,
    Restart,
    Stats,
    StatsHistory,
    Events,
    Disk,
    Audit,
    AuditVerify,
    Prune,
    Pull,
    /// The API itself, as an OpenAPI document.
    OpenApi,
    /// The console revokes this host: every secret it accepts is forgotten.
    Revoke,
    /// Whether each running container's image has a newer digest in its registry.
    Updates,
    /// Replace a container by a new one from the same configuration and its
    /// image's current version, with a health gate and rollback.
    Recreate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// Which of the sidecar's rate limiters a verb counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateClass {
    /// Not limited (the unauthenticated health probe).
    None,
    /// Per client key.
    Read,
    /// Per client key and container.
    Restart,
    /// Per client key.
    Prune,
    /// Per client key.
    Pull,
}

/// Console roles, weakest first: viewer (read everything, logs included),
/// operator (+ restart, pull), admin (+ prune, the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s.trim())
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the verb table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerbSpec {
    pub verb: Verb,
    /// Metrics label and the name of generic (refusal) audit records.
    pub name: &'static str,
    pub method: Method,
    /// Path template; `{ref}` and `{kind}` are the only parameters.
    pub path: &'static str,
    pub mutates: bool,
    pub rate: RateClass,
    /// The verb of the audit record its handler writes (mutations), or of its refusals.
    pub audit: &'static str,
    /// The least console role that may have the console call it.
    pub role: Role,
    /// False only for the health probe.
    pub auth: bool,
    /// Takes a JSON request body (every other verb refuses one).
    pub body: bool,
}

const fn read(verb: Verb, name: &'static str, path: &'static str, role: Role) -> VerbSpec {
    VerbSpec {
        verb,
        name,
        method: Method::Get,
        path,
        mutates: false,
        rate: RateClass::Read,
        audit: name,
        role,
        auth: true,
        body: false,
    }
}

const fn mutation(verb: Verb, name: &'static str, path: &'static str, rate: RateClass, role: Role) -> VerbSpec {
    VerbSpec {
        verb,
        name,
        method: Method::Post,
        path,
        mutates: true,
        rate,
        audit: name,
        role,
        auth: true,
        body: matches!(verb, Verb::Pull),
    }
}

/// The table. Order is the order of SECURITY.md's route table.
pub const VERBS: &[VerbSpec] = &[
    VerbSpec { rate: RateClass::None, auth: false, ..read(Verb::Healthz, "healthz", "/healthz", Role::Viewer) },
    read(Verb::Metrics, "metrics", "/metrics", Role::Admin),
    read(Verb::ListContainers, "list_containers", "/v1/containers", Role::Viewer),
    read(Verb::InspectContainer, "inspect_container", "/v1/containers/{ref}", Role::Viewer),
    read(Verb::Logs, "logs", "/v1/containers/{ref}/logs", Role::Viewer),
    read(Verb::Stats, "stats", "/v1/stats", Role::Viewer),
    read(Verb::StatsHistory, "stats_history", "/v1/stats/history", Role::Viewer),
    read(Verb::Events, "events", "/v1/events", Role::Viewer),
    read(Verb::Disk, "disk", "/v1/disk", Role::Viewer),
    read(Verb::Audit, "audit", "/v1/audit", Role::Admin),
    read(Verb::AuditVerify, "audit_verify", "/v1/audit/verify", Role::Admin),
    mutation(Verb::Restart, "restart", "/v1/containers/{ref}/restart", RateClass::Restart, Role::Operator),
    mutation(Verb::Prune, "prune", "/v1/prune/{kind}", RateClass::Prune, Role::Admin),
    mutation(Verb::Pull, "pull", "/v1/images/pull", RateClass::Pull, Role::Operator),
    read(Verb::OpenApi, "openapi", "/v1/openapi.json", Role::Viewer),
    VerbSpec { audit: "host.revoke", ..mutation(Verb::Revoke, "revoke", "/v1/revoke", RateClass::Prune, Role::Admin) },
    read(Verb::Updates, "updates", "/v1/updates", Role::Viewer),
    mutation(Verb::Recreate, "recreate", "/v1/containers/{ref}/recreate", RateClass::Restart, Role::Operator),
];

impl Verb {
    /// This verb's row of [`VERBS`].
    pub fn spec(self) -> &'static VerbSpec {
        // Exhaustive, so a new verb does not compile without its row's index;
        // a unit test checks that every row sits at its verb's index.
        let row = match self {
            Self::Healthz => 0,
            Self::Metrics => 1,
            Self::ListContainers => 2,
            Self::InspectContainer => 3,
            Self::Logs => 4,
            Self::Stats => 5,
            Self::StatsHistory => 6,
            Self::Events => 7,
            Self::Disk => 8,
            Self::Audit => 9,
            Self::AuditVerify => 10,
            Self::Restart => 11,
            Self::Prune => 12,
            Self::Pull => 13,
            Self::OpenApi => 14,
            Self::Revoke => 15,
            Self::Updates => 16,
            Self::Recreate => 17,
        };
        &VERBS[row]
    }

    pub fn as_str(self) -> &'static str {
        self.spec().name
    }

    /// Mutating verbs are always audited and strictly rate-limited.
    pub fn is_mutation(self) -> bool {
        self.spec().mutates
    }

    pub fn audit_name(self) -> &'static str {
        self.spec().audit
    }

    pub fn role(self) -> Role {
        self.spec().role
    }

    /// The row that serves `method` on the matched route template `path`
    /// (HEAD is served by the GET row).
    pub fn of_route(method: &str, path: &str) -> Option<&'static VerbSpec> {
        let method = if method == "HEAD" { "GET" } else { method };
        VERBS.iter().find(|s| s.method.as_str() == method && s.path == path)
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode_component(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// A request to the sidecar built from the table: the verb, its path with
/// parameters filled in (percent-encoded) and its query. Nothing else builds
/// sidecar paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub verb: Verb,
    path: String,
    has_query: bool,
}

impl Call {
    /// `args` fill the template's `{…}` parameters in order; missing ones
    /// are left empty (the sidecar refuses such a path), extra ones ignored.
    pub fn new(verb: Verb, args: &[&str]) -> Self {
        let template = verb.spec().path;
        let mut path = String::with_capacity(template.len() + 32);
        let mut args = args.iter();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            path.push_str(&rest[..open]);
            let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
            if let Some(a) = args.next() {
                encode_component(a, &mut path);
            }
            rest = &rest[close..];
        }
        path.push_str(rest);
        Self { verb, path, has_query: false }
    }

    /// Appends `key=value` (both percent-encoded).
    pub fn query(mut self, key: &str, value: impl std::fmt::Display) -> Self {
        self.path.push(if self.has_query { '&' } else { '?' });
        self.has_query = true;
        encode_component(key, &mut self.path);
        self.path.push('=');
        encode_component(&value.to_string(), &mut self.path);
        self
    }

    /// Appends `key=value` unless `value` is `None`.
    pub fn query_opt(self, key: &str, value: Option<impl std::fmt::Display>) -> Self {
        match value {
            Some(v) => self.query(key, v),
            None => self,
        }
    }

    pub fn method(&self) -> Method {
        self.verb.spec().method
    }

    /// Path and query, to append to a sidecar's base URL.
    pub fn path(&self) -> &str {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Verb; 18] = [
        Verb::Healthz,
        Verb::Metrics,
        Verb::ListContainers,
        Verb::InspectContainer,
        Verb::Logs,
        Verb::Restart,
        Verb::Stats,
        Verb::StatsHistory,
        Verb::Events,
        Verb::Disk,
        Verb::Audit,
        Verb::AuditVerify,
        Verb::Prune,
        Verb::Pull,
        Verb::OpenApi,
        Verb::Revoke,
        Verb::Updates,
        Verb::Recreate,
    ];

    #[test]
    fn every_verb_has_exactly_one_row_and_routes_are_unique() {
        assert_eq!(VERBS.len(), ALL.len());
        for row in VERBS {
            assert_eq!(row.verb.spec(), row, "{:?} points at another row", row.verb);
        }
        for v in ALL {
            assert_eq!(VERBS.iter().filter(|s| s.verb == v).count(), 1, "{v:?}");
            assert_eq!(v.spec().verb, v);
        }
        for (i, a) in VERBS.iter().enumerate() {
            for b in &VERBS[i + 1..] {
                assert!(a.name != b.name, "name {} twice", a.name);
                assert!((a.method, a.path) != (b.method, b.path), "route {} twice", a.path);
            }
        }
    }

    #[test]
    fn mutations_are_posts_with_their_own_limits_and_stronger_roles() {
        for s in VERBS {
            assert_eq!(s.mutates, s.method == Method::Post, "{}", s.name);
            if s.mutates {
                assert!(!matches!(s.rate, RateClass::None | RateClass::Read), "{}", s.name);
                assert!(s.role >= Role::Operator, "{}", s.name);
                assert!(s.auth);
            }
            assert_eq!(s.body, s.verb == Verb::Pull, "{}", s.name);
            assert!(s.path.starts_with("/v1/") || !s.path.contains("v1"), "{}", s.path);
        }
        assert!(!Verb::Healthz.spec().auth);
        assert!(VERBS.iter().filter(|s| !s.auth).count() == 1);
        assert_eq!(Verb::Prune.role(), Role::Admin);
        assert_eq!(Verb::Restart.role(), Role::Operator);
        assert_eq!(Verb::Audit.role(), Role::Admin);
        assert_eq!(Verb::Logs.role(), Role::Viewer);
        assert_eq!(Verb::OpenApi.role(), Role::Viewer);
        assert!(Verb::Pull.is_mutation() && !Verb::Stats.is_mutation());
        assert_eq!(Verb::Restart.audit_name(), "restart");
    }

    #[test]
    fn routes_are_found_by_method_and_template() {
        assert_eq!(Verb::of_route("GET", "/v1/containers/{ref}/logs").map(|s| s.verb), Some(Verb::Logs));
        assert_eq!(Verb::of_route("HEAD", "/v1/stats").map(|s| s.verb), Some(Verb::Stats));
        assert_eq!(Verb::of_route("POST", "/v1/prune/{kind}").map(|s| s.verb), Some(Verb::Prune));
        assert!(Verb::of_route("GET", "/v1/prune/{kind}").is_none());
        assert!(Verb::of_route("POST", "/v1/stats").is_none());
        assert!(Verb::of_route("GET", "/v1/nope").is_none());
    }

    #[test]
    fn calls_fill_parameters_and_encode_queries() {
        let c = Call::new(Verb::Logs, &["web-1"]).query("tail", 100).query("timestamps", true);
        assert_eq!(c.path(), "/v1/containers/web-1/logs?tail=100&timestamps=true");
        assert_eq!(c.method(), Method::Get);
        let c = Call::new(Verb::Restart, &["a/b c"]).query("timeout", 10);
        assert_eq!(c.path(), "/v1/containers/a%2Fb%20c/restart?timeout=10");
        assert_eq!(c.method(), Method::Post);
        let c = Call::new(Verb::Audit, &[]).query("actor", "al&ice=1").query_opt("verb", None::<&str>);
        assert_eq!(c.path(), "/v1/audit?actor=al%26ice%3D1");
        assert_eq!(Call::new(Verb::Prune, &["build-cache"]).path(), "/v1/prune/build-cache");
        assert_eq!(Call::new(Verb::Prune, &[]).path(), "/v1/prune/");
        assert_eq!(Call::new(Verb::Stats, &["ignored"]).path(), "/v1/stats");
        let mut s = String::new();
        encode_component("é~", &mut s);
        assert_eq!(s, "%C3%A9~");
    }

    #[test]
    fn roles_order_and_parse() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(r.to_string(), r.as_str());
        }
        assert_eq!(Role::parse(" admin "), Some(Role::Admin));
        assert_eq!(Role::parse("root"), None);
    }
}
