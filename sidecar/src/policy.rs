//! What the sidecar decides about a container: is it in scope, is it
//! protected, which environment values are masked. Pure logic.

use std::collections::HashMap;

use regex::Regex;
use shared::{ImageRef, PROTECT_LABEL};

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
    mask: Regex,
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
        Ok(Self { scope, protect_images: images, mask: Regex::new(mask_pattern)? })
    }

    /// The engine filter for the scope (`label=key[=value]`), if any.
    pub fn scope_filter(&self) -> Option<String> {
        self.scope.as_ref().map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
    }

    pub fn in_scope(&self, labels: &HashMap<String, String>) -> bool {
        match &self.scope {
            None => true,
            Some((k, None)) => labels.contains_key(k),
            Some((k, Some(v))) => labels.get(k) == Some(v),
        }
    }

    /// A container is protected by `dockward.protect=true`, or by running a
    /// database image, unless `dockward.protect=false` says otherwise.
    pub fn is_protected(&self, image: &str, labels: &HashMap<String, String>) -> bool {
        match labels.get(PROTECT_LABEL).map(|s| s.trim().to_ascii_lowercase()) {
            Some(v) if v == "true" => return true,
            Some(v) if v == "false" => return false,
            _ => {}
        }
        self.is_protected_image(image)
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

    pub fn masks(&self, env_key: &str) -> bool {
        self.mask.is_match(env_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert!(p.is_protected("nginx", &labels(&[("dockward.protect", "true")])));
        assert!(!p.is_protected("postgres:16", &labels(&[("dockward.protect", "false")])));
        assert!(p.is_protected("postgres:16", &labels(&[("dockward.protect", "maybe")])));
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
        for k in
            ["POSTGRES_PASSWORD", "api_key", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "private_pem", "DB_CREDENTIALS"]
        {
            assert!(p.masks(k), "{k}");
        }
        for k in ["PATH", "HOME", "LANG"] {
            assert!(!p.masks(k), "{k}");
        }
    }
}
