//! The exact strings and numbers the wire types map to and from: every arm of
//! every small `parse`/`as_str`/`status` table (each arm was a surviving
//! mutant under cargo-mutants; see BENCHMARKS.md).

use shared::api::{Call, Method, RateClass, Role, Verb, VERBS};
use shared::{ContainerState, ErrorCode, Outcome, PruneKind};

#[test]
fn container_states_parse_every_engine_state() {
    let cases = [
        ("created", ContainerState::Created),
        ("running", ContainerState::Running),
        ("paused", ContainerState::Paused),
        ("restarting", ContainerState::Restarting),
        ("removing", ContainerState::Removing),
        ("exited", ContainerState::Exited),
        ("dead", ContainerState::Dead),
        ("zombie", ContainerState::Unknown),
        ("Running", ContainerState::Unknown),
        ("", ContainerState::Unknown),
    ];
    for (s, want) in cases {
        assert_eq!(ContainerState::parse(s), want, "{s:?}");
    }
}

#[test]
fn prune_kinds_round_trip() {
    let cases = [
        ("containers", PruneKind::Containers),
        ("images", PruneKind::Images),
        ("volumes", PruneKind::Volumes),
        ("build-cache", PruneKind::BuildCache),
    ];
    for (s, kind) in cases {
        assert_eq!(PruneKind::parse(s), Some(kind), "{s}");
        assert_eq!(kind.as_str(), s);
        // The serde name is the same string.
        assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(s));
    }
    for bad in ["", "all", "Images", "build_cache", "networks"] {
        assert_eq!(PruneKind::parse(bad), None, "{bad}");
    }
}

#[test]
fn outcomes_as_str() {
    for (o, s) in [(Outcome::Ok, "ok"), (Outcome::Denied, "denied"), (Outcome::Error, "error")] {
        assert_eq!(o.as_str(), s);
        assert_eq!(serde_json::to_value(o).unwrap(), serde_json::json!(s));
    }
}

#[test]
fn every_error_code_has_its_status() {
    let cases = [
        (ErrorCode::BadRequest, 400),
        (ErrorCode::Unauthorized, 401),
        (ErrorCode::Forbidden, 403),
        (ErrorCode::NotFound, 404),
        (ErrorCode::MethodNotAllowed, 405),
        (ErrorCode::Ambiguous, 409),
        (ErrorCode::PayloadTooLarge, 413),
        (ErrorCode::RateLimited, 429),
        (ErrorCode::Internal, 500),
        (ErrorCode::DockerError, 502),
        (ErrorCode::DockerUnavailable, 503),
    ];
    for (code, status) in cases {
        assert_eq!(code.status(), status, "{code:?}");
    }
}

#[test]
fn methods_and_verb_names() {
    assert_eq!(Method::Get.as_str(), "GET");
    assert_eq!(Method::Post.as_str(), "POST");
    assert_eq!(Verb::Healthz.as_str(), "healthz");
    assert_eq!(Verb::StatsHistory.as_str(), "stats_history");
    assert_eq!(Verb::Pull.as_str(), "pull");
    assert_eq!(Verb::Prune.audit_name(), "prune");
    // Every verb's name, audit name and role come from its own row.
    for row in VERBS {
        assert_eq!(row.verb.as_str(), row.name);
        assert_eq!(row.verb.audit_name(), row.audit);
        assert_eq!(row.verb.role(), row.role);
        assert_eq!(row.verb.is_mutation(), row.mutates);
    }
}

#[test]
fn the_health_probe_is_unlimited_and_unauthenticated() {
    let h = Verb::Healthz.spec();
    assert_eq!(h.rate, RateClass::None);
    assert!(!h.auth);
    assert_eq!((h.method, h.path, h.role), (Method::Get, "/healthz", Role::Viewer));
    // Every other read is limited and authenticated.
    for row in VERBS.iter().filter(|s| s.verb != Verb::Healthz && !s.mutates) {
        assert_eq!(row.rate, RateClass::Read, "{}", row.name);
        assert!(row.auth, "{}", row.name);
    }
}

#[test]
fn calls_query_opt_and_roles() {
    let c = Call::new(Verb::Audit, &[]).query_opt("verb", Some("restart")).query_opt("actor", None::<&str>);
    assert_eq!(c.path(), "/v1/audit?verb=restart");
    assert_eq!(c.method(), Method::Get);
    assert_eq!(Role::parse("viewer"), Some(Role::Viewer));
    assert_eq!(Role::parse("operator"), Some(Role::Operator));
    assert_eq!(Role::parse(""), None);
    assert_eq!(Role::Operator.to_string(), "operator");
    assert_eq!(Role::Admin.as_str(), "admin");
}
