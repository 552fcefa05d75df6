//! `sidecar::policy`: every decision at each of its branches.

use std::collections::HashMap;

use sidecar::config::{DEFAULT_MASK_PATTERN, DEFAULT_PROTECT_IMAGES};
use sidecar::policy::{pull_failure_summary, unlisted_registry_refusal, Policy};

fn labels(kv: &[(&str, &str)]) -> HashMap<String, String> {
    kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn defaults() -> Policy {
    let images: Vec<String> = DEFAULT_PROTECT_IMAGES.split(',').map(String::from).collect();
    Policy::new(None, &images, DEFAULT_MASK_PATTERN).unwrap()
}

#[test]
fn no_scope_means_everything_is_in_scope() {
    let p = defaults();
    assert_eq!(p.scope_filter(), None);
    assert!(p.in_scope(&labels(&[])));
    assert!(p.in_scope(&labels(&[("team", "b")])));
    // A blank scope is no scope.
    let p = Policy::new(Some("  "), &[], DEFAULT_MASK_PATTERN).unwrap();
    assert_eq!(p.scope_filter(), None);
    assert!(p.in_scope(&labels(&[])));
}

#[test]
fn key_only_and_key_value_scopes() {
    let p = Policy::new(Some(" managed "), &[], DEFAULT_MASK_PATTERN).unwrap();
    assert_eq!(p.scope_filter().as_deref(), Some("managed"));
    assert!(p.in_scope(&labels(&[("managed", "anything")])));
    assert!(!p.in_scope(&labels(&[("other", "managed")])));
    let p = Policy::new(Some("team=a"), &[], DEFAULT_MASK_PATTERN).unwrap();
    assert_eq!(p.scope_filter().as_deref(), Some("team=a"));
    assert!(p.in_scope(&labels(&[("team", "a"), ("x", "y")])));
    assert!(!p.in_scope(&labels(&[("team", "")])));
    let p = Policy::new(Some("team="), &[], DEFAULT_MASK_PATTERN).unwrap();
    assert_eq!(p.scope_filter().as_deref(), Some("team="));
    assert!(p.in_scope(&labels(&[("team", "")])));
    assert!(!p.in_scope(&labels(&[("team", "a")])));
    for bad in ["=a", "te am", "team\t=a", "a\u{1}b"] {
        assert!(Policy::new(Some(bad), &[], DEFAULT_MASK_PATTERN).is_err(), "{bad:?}");
    }
}

#[test]
fn protect_label_decides_before_the_image() {
    let p = defaults();
    for v in ["true", " TRUE ", "True"] {
        assert!(p.is_protected("nginx", &labels(&[("dockward.protect", v)]), &[]), "{v:?}");
    }
    for v in ["false", "FALSE ", "False"] {
        assert!(!p.is_protected("postgres", &labels(&[("dockward.protect", v)]), &[]), "{v:?}");
    }
    // Any other value falls back to the image, both ways.
    for v in ["maybe", "", "1", "yes"] {
        assert!(!p.is_protected("nginx", &labels(&[("dockward.protect", v)]), &[]), "{v:?}");
        assert!(p.is_protected("postgres", &labels(&[("dockward.protect", v)]), &[]), "{v:?}");
    }
    // No label: the image decides.
    assert!(p.is_protected("redis:7", &labels(&[]), &[]));
    assert!(!p.is_protected("nginx:1", &labels(&[("other", "true")]), &[]));
    // The label decides over the image's names too.
    let pg = ["postgres:16".to_string()];
    assert!(!p.is_protected("nginx", &labels(&[("dockward.protect", "false")]), &pg));
    assert!(p.is_protected("nginx", &labels(&[("dockward.protect", "true")]), &["nginx:1".to_string()]));
}

#[test]
fn an_image_id_is_protected_by_the_images_names() {
    let p = defaults();
    let none = labels(&[]);
    let id = format!("sha256:{}", "ab".repeat(32));
    let tagged = ["postgres:16".to_string()];
    let digested = [format!("docker.io/library/postgres@sha256:{}", "cd".repeat(32))];
    let unrelated = [
        "nginx:1.27".to_string(),
        "postgres-exporter:1".to_string(),
        "<none>:<none>".to_string(),
        "<none>@<none>".into(),
    ];
    for configured in [id.as_str(), &id[7..], &id[7..19], "nginx", "myorg/app:2"] {
        // The container alone does not decide…
        assert_eq!(p.protection_from_container(configured, &none), None, "{configured}");
        // …the image's tags or digests do.
        assert!(p.is_protected(configured, &none, &tagged), "{configured} tagged postgres:16");
        assert!(p.is_protected(configured, &none, &digested), "{configured} with a postgres digest");
        let mut some = unrelated.to_vec();
        some.push("postgres:16".into());
        assert!(p.is_protected(configured, &none, &some), "{configured}: any one name suffices");
        assert!(!p.is_protected(configured, &none, &unrelated), "{configured}");
        assert!(!p.is_protected(configured, &none, &[]), "{configured}");
        // An explicit label still wins over the names.
        assert!(!p.is_protected(configured, &labels(&[("dockward.protect", "false")]), &tagged), "{configured}");
    }
    // A protected configured name decides without looking at the names.
    assert_eq!(p.protection_from_container("postgres:16", &none), Some(true));
    assert!(p.is_protected("postgres:16", &none, &["nginx:1".to_string()]));
    assert_eq!(p.protection_from_container(&id, &labels(&[("dockward.protect", " True ")])), Some(true));
    assert_eq!(p.protection_from_container("postgres", &labels(&[("dockward.protect", "FALSE")])), Some(false));
    assert_eq!(p.protection_from_container("postgres", &labels(&[("dockward.protect", "maybe")])), Some(true));
    // With nothing to protect, no name protects.
    let bare = Policy::new(None, &[], DEFAULT_MASK_PATTERN).unwrap();
    assert!(!bare.is_protected(&id, &none, &tagged));
}

#[test]
fn slash_entries_match_the_familiar_or_the_full_repository() {
    let entries = ["library/postgres".to_string(), "ghcr.io/org/db".to_string(), "redis".to_string()];
    let p = Policy::new(None, &entries, DEFAULT_MASK_PATTERN).unwrap();
    // Matches only the repository (`library/postgres`), not the familiar name (`postgres`).
    assert!(p.is_protected_image("postgres:16"));
    // Matches only the familiar name (`ghcr.io/org/db`), not the repository (`org/db`).
    assert!(p.is_protected_image("ghcr.io/org/db:1"));
    assert!(!p.is_protected_image("org/db"));
    assert!(!p.is_protected_image("ghcr.io/other/db"));
    // A bare entry matches the last component.
    assert!(p.is_protected_image("quay.io/x/redis"));
    assert!(!p.is_protected_image("redis-commander"));
    // An unparsable reference is not protected by image (the label still can be).
    assert!(!p.is_protected_image("Redis"));
    assert!(!p.is_protected_image(""));
    // Entries are trimmed, blank ones ignored, anything but [a-z0-9._/-] refused.
    let p = Policy::new(None, &[" mongo ".into(), "".into()], DEFAULT_MASK_PATTERN).unwrap();
    assert!(p.is_protected_image("mongo"));
    for bad in ["Mongo", "mon go", "mongo:7", "mongo@sha256"] {
        assert!(Policy::new(None, &[bad.into()], DEFAULT_MASK_PATTERN).is_err(), "{bad}");
    }
    assert!(Policy::new(None, &[], "(").is_err());
}

#[test]
fn masks_follow_the_pattern() {
    let p = Policy::new(None, &[], "^X_").unwrap();
    assert!(p.masks("X_ANY"));
    assert!(!p.masks("Y_X_"));
}

#[test]
fn each_kind_of_unlisted_registry_gets_its_own_reason() {
    let ip = Some("an IP address");
    // Parsed as an address only, numeric last label only, hex label only.
    assert_eq!(unlisted_registry_refusal("[::1]:5000"), ip);
    assert_eq!(unlisted_registry_refusal("[fe80::1]"), ip);
    assert_eq!(unlisted_registry_refusal("127.1"), ip);
    // A malformed port does not hide the address in front of it.
    assert_eq!(unlisted_registry_refusal("10.0.0.5:"), ip);
    assert_eq!(unlisted_registry_refusal("10.0.0.5:x"), ip);
    assert_eq!(unlisted_registry_refusal("localhost:"), Some("a loopback name"));
    assert_eq!(unlisted_registry_refusal("0x7f000001"), ip);
    assert_eq!(unlisted_registry_refusal("0x7f000001:5000"), ip);
    assert_eq!(unlisted_registry_refusal("10.0.0.5:5000"), ip);
    let loopback = Some("a loopback name");
    assert_eq!(unlisted_registry_refusal("localhost"), loopback);
    assert_eq!(unlisted_registry_refusal("localhost:5000"), loopback);
    assert_eq!(unlisted_registry_refusal("Registry.LOCALHOST"), loopback);
    assert_eq!(unlisted_registry_refusal("localhost.localdomain"), loopback);
    assert_eq!(unlisted_registry_refusal("nas.local:5000"), Some("a link-local (mDNS) name"));
    for r in ["host.docker.internal", "nas.home.arpa", "registry.lan", "x.intranet", "reg.corp"] {
        assert_eq!(unlisted_registry_refusal(r), Some("a private-network name"), "{r}");
    }
    for r in ["myregistry:5000", "sidecar", "registry"] {
        assert_eq!(unlisted_registry_refusal(r), Some("a single-label (local network) name"), "{r}");
    }
    for r in ["docker.io", "registry.example.com:5000", "localhost.example.com", "io.local.example", "v2.example"] {
        assert_eq!(unlisted_registry_refusal(r), None, "{r}");
    }
}

#[test]
fn each_kind_of_pull_failure_is_recognised_on_its_own() {
    let missing = "the registry has no such image or tag";
    let refused = "the registry refused access";
    let unreachable = "the registry could not be reached (or does not speak the registry protocol)";
    let cases = [
        ("manifest unknown", missing),
        ("image NOT FOUND", missing),
        ("401 Unauthorized", refused),
        ("access denied", refused),
        ("authentication required", refused),
        ("connection refused", unreachable),
        ("lookup x: no such host", unreachable),
        ("i/o timeout", unreachable),
        ("dial tcp 10.0.0.5:22", unreachable),
        ("remote error: TLS handshake failure", unreachable),
        ("x509: certificate signed by unknown authority", unreachable),
        ("server gave HTTP response to HTTPS client", unreachable),
        ("something else", "the engine could not pull the image"),
        ("", "the engine could not pull the image"),
    ];
    for (engine, want) in cases {
        assert_eq!(pull_failure_summary(engine), want, "{engine}");
    }
}
