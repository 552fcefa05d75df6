//! What the sidecar decides about a container: is it in scope, is it
//! protected, which environment values are masked. Pure logic.

use std::collections::HashMap;

use shared::{ImageRef, PROTECT_LABEL};

use crate::redact::Redactor;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("invalid DOCKWARD_MASK_ENV_PATTERN: {0}")]
    MaskPattern(#[from] regex::Error),
    #[error("invalid DOCKWARD_SCOPE_LABEL {0:?}: expected key or key=value")]
    Scope(String),
    #[error("invalid DOCKWARD_PROTECT_IMAGES entry {0:?}")]
    ProtectImage(String),
}

#[derive(Debug, Clone)]
pub struct Policy {
    scope: Option<(String, Option<String>)>,
    protect_images: Vec<String>,
    redact: Redactor,
}

impl Policy {
    pub fn new(scope: Option<&str>, protect_images: &[String], mask_pattern: &str) -> Result<Self, PolicyError> {
        let scope = match scope.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => {
                let (k, v) = match s.split_once('=') {
                    Some((k, v)) => (k, Some(v.to_owned())),
                    None => (s, None),
                };
                if k.is_empty() || k.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(PolicyError::Scope(s.to_owned()));
                }
                Some((k.to_owned(), v))
            }
        };
        let mut images = Vec::new();
        for raw in protect_images.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            if !raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b)) {
                return Err(PolicyError::ProtectImage(raw.to_owned()));
            }
            images.push(raw.to_owned());
        }
        Ok(Self { scope, protect_images: images, redact: Redactor::new(mask_pattern)? })
    }

    /// The engine filter for the scope (`label=key[=value]`), if any.
    pub fn scope_filter(&self) -> Option<String> {
        self.scope.as_ref().map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
    }

    /// Refuses a verb that acts on the whole host (image and build-cache
    /// prune, pull) when the sidecar is scoped: images and build cache carry
    /// no owner the engine could filter by, so under a scope they would reach
    /// past it.
    pub fn refuse_host_wide(&self, what: &str) -> Result<(), crate::error::ApiError> {
        match self.scope_filter() {
            None => Ok(()),
            Some(scope) => Err(crate::error::ApiError::Forbidden(format!(
                "{what} acts on the whole host, and this sidecar is scoped to the label {scope}: \
                 images and build cache belong to no scope, so it refuses (run it from an unscoped sidecar)"
            ))),
        }
    }

    pub fn in_scope(&self, labels: &HashMap<String, String>) -> bool {
        match &self.scope {
            None => true,
            Some((k, None)) => labels.contains_key(k),
            Some((k, Some(v))) => labels.get(k) == Some(v),
        }
    }

    /// What the container alone says about its protection: `dockward.protect=true`
    /// or `false` decides; otherwise the image it was created with
    /// (`Config.Image`) protects it when its name is a protected one. `None`:
    /// undecided, the image's tags and digests must be looked at (the
    /// reference is an image id, or a name that does not match).
    pub fn protection_from_container(&self, configured: &str, labels: &HashMap<String, String>) -> Option<bool> {
        match labels.get(PROTECT_LABEL).map(|s| s.trim().to_ascii_lowercase()) {
            Some(v) if v == "true" => return Some(true),
            Some(v) if v == "false" => return Some(false),
            _ => {}
        }
        self.is_protected_image(configured).then_some(true)
    }

    /// The one decision: a container is protected by `dockward.protect=true`,
    /// or by running a protected (database) image, unless
    /// `dockward.protect=false` says otherwise. The image is named by the
    /// container's configured reference or, when that is an id or does not
    /// match, by any of `image_names` (the image's `RepoTags` and
    /// `RepoDigests`). [`crate::docker::Engine::is_protected`] feeds it.
    pub fn is_protected(&self, configured: &str, labels: &HashMap<String, String>, image_names: &[String]) -> bool {
        self.protection_from_container(configured, labels)
            .unwrap_or_else(|| image_names.iter().any(|n| self.is_protected_image(n)))
    }

    /// Matches on the image *name*: `postgres` matches `postgres:16`,
    /// `docker.io/library/postgres` and `myorg/postgres`, but not
    /// `postgres-exporter`. An entry with a `/` must match the whole repository.
    pub fn is_protected_image(&self, image: &str) -> bool {
        let Ok(r) = ImageRef::parse(image) else { return false };
        let familiar = r.familiar_repository();
        self.protect_images.iter().any(|p| {
            if p.contains('/') {
                *p == familiar || *p == r.repository
            } else {
                p == r.name()
            }
        })
    }

    /// Whether an environment key looks secret (its value is masked whole).
    pub fn masks(&self, env_key: &str) -> bool {
        self.redact.key_is_secret(env_key)
    }

    /// Secrets inside free text masked: URL passwords, secret flags and assignments.
    pub fn redact_text<'a>(&self, s: &'a str) -> std::borrow::Cow<'a, str> {
        self.redact.text(s)
    }

    /// An argument vector with its secrets masked (see [`crate::redact`]).
    pub fn redact_args(&self, args: &[String]) -> Vec<String> {
        self.redact.args(args)
    }
}

/// Why `pull` may not use a registry unless `DOCKWARD_PULL_REGISTRIES`
/// lists it (the rule is shared with the console's tag lookups).
pub use shared::unlisted_registry_refusal;

/// What the audit log keeps of an image reference that did not parse: its
/// length, a hash to tell repeated attempts apart, and at most 64 characters
/// escaped to printable ASCII. Never the raw client string, which could carry
/// control or bidi characters (spoofing whoever reads the log) or 64 KiB.
pub fn unparsed_reference(raw: &str) -> String {
    use sha2::{Digest, Sha256};
    const SHOWN: usize = 64;
    let digest = hex::encode(&Sha256::digest(raw.as_bytes())[..8]);
    let shown: String = raw.chars().take(SHOWN).flat_map(char::escape_default).collect();
    let more = if raw.chars().nth(SHOWN).is_some() { "..." } else { "" };
    format!("unparsed reference ({} bytes, sha256 {digest}): \"{shown}{more}\"", raw.len())
}

/// What a client is told of a failed pull: the kind of failure, never the
/// engine's text (which would turn `pull` into a port and service probe).
pub fn pull_failure_summary(engine_message: &str) -> &'static str {
    let m = engine_message.to_ascii_lowercase();
    if m.contains("manifest unknown") || m.contains("not found") {
        "the registry has no such image or tag"
    } else if m.contains("unauthorized") || m.contains("denied") || m.contains("authentication") {
        "the registry refused access"
    } else if m.contains("connection refused")
        || m.contains("no such host")
        || m.contains("timeout")
        || m.contains("dial tcp")
        || m.contains("tls")
        || m.contains("certificate")
        || m.contains("http response")
    {
        "the registry could not be reached (or does not speak the registry protocol)"
    } else {
        "the engine could not pull the image"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlisted_registries_must_be_public_names() {
        for r in [
            "127.0.0.1:5000",
            "10.0.0.5",
            "192.168.1.2:443",
            "169.254.169.254",
            "8.8.8.8",
            "[::1]:5000",
            "[fe80::1]",
            "localhost",
            "LOCALHOST:5000",
            "registry.localhost",
            "nas.local:5000",
            "myregistry:5000",
            "sidecar",
            "127.1",
            "0x7f.1:5000",
            "0177.0.0.1",
            "127.0.0.01",
            "localhost.localdomain",
            "host.docker.internal",
            "metadata.google.internal",
            "nas.home.arpa",
            "registry.lan",
        ] {
            assert!(unlisted_registry_refusal(r).is_some(), "{r} must need listing");
        }
        for r in [
            "docker.io",
            "ghcr.io",
            "registry.example.com:5000",
            "quay.io",
            "gcr.io",
            "registry.k8s.io",
            "public.ecr.aws",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "mcr.microsoft.com",
        ] {
            assert_eq!(unlisted_registry_refusal(r), None, "{r}");
        }
        assert_eq!(unlisted_registry_refusal("10.0.0.5:5000"), Some("an IP address"));
        assert_eq!(unlisted_registry_refusal("localhost:5000"), Some("a loopback name"));
    }

    #[test]
    fn unparsed_references_are_bounded_and_escaped() {
        let raw = format!("\u{202E}evil\n\u{1b}[31m\"{}", "x".repeat(10_000));
        let t = unparsed_reference(&raw);
        assert!(t.len() < 800, "{}", t.len());
        assert!(t.bytes().all(|b| (0x20..0x7f).contains(&b)), "{t}");
        assert!(t.contains("\\u{202e}evil\\n\\u{1b}[31m\\\""), "{t}");
        assert!(t.contains(&format!("({} bytes", raw.len())) && t.ends_with("...\""), "{t}");
        // The same input gives the same record; another one another hash.
        assert_eq!(t, unparsed_reference(&raw));
        assert_ne!(unparsed_reference("a b"), unparsed_reference("a  b"));
        assert!(unparsed_reference("Not A Ref").ends_with(": \"Not A Ref\""), "{}", unparsed_reference("Not A Ref"));
    }

    #[test]
    fn a_scoped_sidecar_refuses_host_wide_verbs() {
        let scoped = Policy::new(Some("team=a"), &[], DEFAULT_MASK_PATTERN).unwrap();
        let err = scoped.refuse_host_wide("prune images").unwrap_err();
        assert!(matches!(&err, crate::error::ApiError::Forbidden(m) if m.contains("team=a")), "{err}");
        assert!(policy().refuse_host_wide("pull").is_ok());
    }

    #[test]
    fn pull_failures_are_summarised_without_the_engine_text() {
        let cases = [
            ("manifest unknown: manifest unknown", "no such image"),
            ("pull access denied for x, repository does not exist", "refused access"),
            (
                "Get \"https://10.0.0.5:22/v2/\": dial tcp 10.0.0.5:22: connect: connection refused",
                "could not be reached",
            ),
            ("Get \"https://h/v2/\": http: server gave HTTP response to HTTPS client", "could not be reached"),
            ("something else entirely", "could not pull"),
        ];
        for (engine, want) in cases {
            let s = pull_failure_summary(engine);
            assert!(s.contains(want), "{engine} → {s}");
            assert!(!s.contains("10.0.0.5") && !s.contains(":22"), "{s}");
        }
    }
    use crate::config::{DEFAULT_MASK_PATTERN, DEFAULT_PROTECT_IMAGES};

    fn policy() -> Policy {
        let images: Vec<String> = DEFAULT_PROTECT_IMAGES.split(',').map(String::from).collect();
        Policy::new(None, &images, DEFAULT_MASK_PATTERN).unwrap()
    }

    fn labels(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn database_images_are_protected_by_name_not_substring() {
        let p = policy();
        for img in [
            "postgres",
            "postgres:16-alpine",
            "docker.io/library/postgres:16",
            "bitnami/redis:7",
            "mongo",
            "ghcr.io/x/valkey:8",
        ] {
            assert!(p.is_protected_image(img), "{img}");
        }
        for img in [
            "postgres-exporter",
            "myredis",
            "nginx",
            "prom/mysqld-exporter",
            "sha256:abcdef",
            "redisinsight/redisinsight",
        ] {
            assert!(!p.is_protected_image(img), "{img}");
        }
    }

    #[test]
    fn label_overrides_image() {
        let p = policy();
        let pg = ["postgres:16".to_string()];
        assert!(p.is_protected("nginx", &labels(&[("dockward.protect", "true")]), &[]));
        assert!(!p.is_protected("postgres:16", &labels(&[("dockward.protect", "false")]), &[]));
        assert!(!p.is_protected("sha256:0123", &labels(&[("dockward.protect", "false")]), &pg));
        assert!(p.is_protected("postgres:16", &labels(&[("dockward.protect", "maybe")]), &[]));
    }

    #[test]
    fn containers_created_from_an_image_id_are_matched_by_its_tags_and_digests() {
        let p = policy();
        let none = labels(&[]);
        let id = format!("sha256:{}", "ab".repeat(32));
        let short = "abababababab";
        let tags = vec!["postgres:dwtest".to_string()];
        let digests = vec![format!("postgres@sha256:{}", "cd".repeat(32))];
        let other = vec!["nginx:1.27".to_string(), "<none>:<none>".to_string(), "<none>@<none>".to_string()];
        // Undecided by the container alone: the reference is an id, or a name that does not match.
        for configured in [id.as_str(), &id[7..], short, "nginx"] {
            assert_eq!(p.protection_from_container(configured, &none), None, "{configured}");
            assert!(p.is_protected(configured, &none, &tags), "{configured} tagged postgres");
            assert!(p.is_protected(configured, &none, &digests), "{configured} with a postgres digest");
            assert!(!p.is_protected(configured, &none, &other), "{configured}");
            assert!(!p.is_protected(configured, &none, &[]), "{configured}");
        }
        // A matching name or a label decides without the image.
        assert_eq!(p.protection_from_container("postgres:16", &none), Some(true));
        assert_eq!(p.protection_from_container(&id, &labels(&[("dockward.protect", "TRUE")])), Some(true));
        assert_eq!(p.protection_from_container("postgres", &labels(&[("dockward.protect", "false")])), Some(false));
    }

    #[test]
    fn slash_entries_match_whole_repository() {
        let p = Policy::new(None, &["bitnami/postgresql".into()], DEFAULT_MASK_PATTERN).unwrap();
        assert!(p.is_protected_image("bitnami/postgresql:15"));
        assert!(!p.is_protected_image("other/postgresql"));
        assert!(Policy::new(None, &["Bad Entry".into()], DEFAULT_MASK_PATTERN).is_err());
    }

    #[test]
    fn scope() {
        let p = Policy::new(Some("team=a"), &[], DEFAULT_MASK_PATTERN).unwrap();
        assert!(p.in_scope(&labels(&[("team", "a")])));
        assert!(!p.in_scope(&labels(&[("team", "b")])));
        assert!(!p.in_scope(&labels(&[])));
        assert_eq!(p.scope_filter().as_deref(), Some("team=a"));
        let p = Policy::new(Some("managed"), &[], DEFAULT_MASK_PATTERN).unwrap();
        assert!(p.in_scope(&labels(&[("managed", "")])));
        assert!(Policy::new(Some("=x"), &[], DEFAULT_MASK_PATTERN).is_err());
    }

    #[test]
    fn masking() {
        let p = policy();
        for k in [
            "POSTGRES_PASSWORD",
            "api_key",
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "private_pem",
            "DB_CREDENTIALS",
            "DATABASE_URL",
            "SENTRY_DSN",
            "DSN",
            "MYSQL_PWD",
            "BASIC_AUTH",
            "REDIS_AUTH",
            "NPM_AUTH",
        ] {
            assert!(p.masks(k), "{k}");
        }
        for k in ["PATH", "HOME", "LANG", "PWD", "OLDPWD", "REDIS_URL", "TZ", "HOSTNAME", "NODE_ENV"] {
            assert!(!p.masks(k), "{k}");
        }
    }
}
