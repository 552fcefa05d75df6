//! Validators for everything a client can name: container references, image
//! references and bounded numbers. Both the sidecar (which enforces them) and
//! the web console (which checks early for a friendlier message) use these.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an input was refused. The message is safe to show to the caller: it
/// never echoes more than a bounded prefix of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("invalid container reference: must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]{{0,127}}$")]
    ContainerRef,
    #[error("invalid image reference: {0}")]
    ImageRef(&'static str),
    #[error("{field} must be between {min} and {max}")]
    OutOfRange { field: &'static str, min: u64, max: u64 },
}

/// Upper bounds shared by both sides of the wire.
pub mod limits {
    /// Default number of log lines returned by `logs` without `tail`.
    pub const LOG_TAIL_DEFAULT: u64 = 200;
    /// Largest `tail` a client may ask for.
    pub const LOG_TAIL_MAX: u64 = 10_000;
    /// Longest restart timeout, in seconds.
    pub const RESTART_TIMEOUT_MAX: u64 = 120;
    /// Largest page of audit records.
    pub const AUDIT_PAGE_MAX: u64 = 1_000;
    /// Default page of audit records.
    pub const AUDIT_PAGE_DEFAULT: u64 = 100;
    /// Longest stats history window a client may ask for, in seconds (1 hour).
    pub const HISTORY_WINDOW_MAX: u64 = 3_600;
    /// Default stats history window, in seconds (15 minutes).
    pub const HISTORY_WINDOW_DEFAULT: u64 = 900;
    /// Largest request body any verb accepts.
    pub const BODY_MAX_BYTES: usize = 64 * 1024;
    /// Longest image reference accepted (the distribution spec's name limit plus tag and digest).
    pub const IMAGE_REF_MAX: usize = 512;
    /// Longest log line kept; longer lines are cut and marked truncated.
    pub const LOG_LINE_MAX_BYTES: usize = 16 * 1024;
}

/// Checks that `value` lies in `min..=max`, naming the field in the error.
pub fn bounded(field: &'static str, value: u64, min: u64, max: u64) -> Result<u64, ValidationError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ValidationError::OutOfRange { field, min, max })
    }
}

/// A validated container reference: a name, a full id or an id prefix.
/// It is only a *reference*: the sidecar still resolves it to exactly one
/// container and acts on that container's full id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ContainerRef(String);

impl ContainerRef {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let bytes = s.as_bytes();
        let ok = !bytes.is_empty()
            && bytes.len() <= 128
            && bytes[0].is_ascii_alphanumeric()
            && bytes[1..].iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::ContainerRef)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when the reference could be (a prefix of) a container id.
    pub fn could_be_id(&self) -> bool {
        self.0.len() <= 64 && self.0.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }
}

impl fmt::Display for ContainerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ContainerRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A parsed, normalised image reference (`registry/namespace/name:tag@digest`),
/// following the grammar of the distribution reference spec.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// Registry host (and port), e.g. `docker.io` or `127.0.0.1:5000`.
    pub registry: String,
    /// Repository path below the registry, e.g. `library/nginx`.
    pub repository: String,
    pub tag: Option<String>,
    /// `algorithm:hex`, e.g. `sha256:…`.
    pub digest: Option<String>,
}

pub const DEFAULT_REGISTRY: &str = "docker.io";

impl ImageRef {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        use ValidationError::ImageRef as E;
        if input.is_empty() {
            return Err(E("empty"));
        }
        if input.len() > limits::IMAGE_REF_MAX {
            return Err(E("too long"));
        }
        if !input.is_ascii() || input.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
            return Err(E("only printable ASCII without spaces is allowed"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => (r, Some(parse_digest(d)?)),
            None => (input, None),
        };
        // A tag follows the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let (n, t) = rest.split_at(last_slash + i);
                (n, Some(parse_tag(&t[1..])?))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(E("missing repository name"));
        }
        if name.len() > 255 {
            return Err(E("repository name longer than 255 characters"));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                validate_domain(first)?;
                (first.to_owned(), path)
            }
            _ => (DEFAULT_REGISTRY.to_owned(), name),
        };
        for component in path.split('/') {
            validate_path_component(component)?;
        }
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        Ok(Self { registry, repository, tag, digest })
    }

    /// The last path component: `nginx` for `docker.io/library/nginx:1.27`.
    pub fn name(&self) -> &str {
        self.repository.rsplit('/').next().unwrap_or(&self.repository)
    }

    /// The repository as users usually write it: `nginx`, `bitnami/redis`,
    /// `ghcr.io/org/app` (no tag or digest).
    pub fn familiar_repository(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            self.repository.strip_prefix("library/").unwrap_or(&self.repository).to_owned()
        } else {
            format!("{}/{}", self.registry, self.repository)
        }
    }

    /// `registry/repository`, the value of the engine's `fromImage`.
    pub fn full_repository(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The engine's `tag` parameter: the digest if pinned, else the tag, else `latest`.
    pub fn tag_or_digest(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn parse_tag(t: &str) -> Result<String, ValidationError> {
    let b = t.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(t.to_owned())
    } else {
        Err(ValidationError::ImageRef("invalid tag"))
    }
}

fn parse_digest(d: &str) -> Result<String, ValidationError> {
    let err = ValidationError::ImageRef("invalid digest: expected sha256:<64 hex> or sha512:<128 hex>");
    let (alg, hex) = d.split_once(':').ok_or(err.clone())?;
    let want = match alg {
        "sha256" => 64,
        "sha512" => 128,
        _ => return Err(err),
    };
    if hex.len() == want && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(d.to_owned())
    } else {
        Err(err)
    }
}

fn validate_domain(d: &str) -> Result<(), ValidationError> {
    let err = ValidationError::ImageRef("invalid registry host");
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        // [IPv6]:port
        let (h, after) = rest.split_once(']').ok_or(err.clone())?;
        if h.is_empty() || !h.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(err);
        }
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(err.clone())?),
        };
        (None, port)
    } else {
        match d.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(d), None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err);
        }
    }
    if let Some(h) = host {
        if h.is_empty() {
            return Err(err);
        }
        for label in h.split('.') {
            let b = label.as_bytes();
            let ok = !b.is_empty()
                && b.len() <= 63
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-');
            if !ok {
                return Err(err);
            }
        }
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn validate_path_component(c: &str) -> Result<(), ValidationError> {
    let err = ValidationError::ImageRef(
        "invalid repository path: lowercase letters, digits and single separators (. _ __ -) only",
    );
    let b = c.as_bytes();
    if b.is_empty() || !is_lower_alnum(b[0]) || !is_lower_alnum(b[b.len() - 1]) {
        return Err(err);
    }
    let mut i = 0;
    while i < b.len() {
        if is_lower_alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__' or '-'+.
        let start = i;
        while i < b.len() && !is_lower_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return Err(err);
        }
    }
    Ok(())
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_refs() {
        for ok in ["web", "a", "my_app.web-1", "0123abcd", &"a".repeat(128)] {
            assert!(ContainerRef::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", ".x", "_x", "a/b", "a b", "../etc", "a%2f", &"a".repeat(129), "é", "a\n"] {
            assert_eq!(ContainerRef::parse(bad), Err(ValidationError::ContainerRef), "{bad:?}");
        }
        assert!(ContainerRef::parse("abc123").unwrap().could_be_id());
        assert!(!ContainerRef::parse("web").unwrap().could_be_id());
    }

    #[test]
    fn container_ref_deserialize_validates() {
        assert!(serde_json::from_str::<ContainerRef>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<ContainerRef>("\"../x\"").is_err());
    }

    #[test]
    fn image_refs_normalise() {
        let r = ImageRef::parse("nginx:1.27").unwrap();
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/nginx");
        assert_eq!(r.tag.as_deref(), Some("1.27"));
        assert_eq!(r.name(), "nginx");
        assert_eq!(r.familiar_repository(), "nginx");
        assert_eq!(r.to_string(), "docker.io/library/nginx:1.27");
        assert_eq!(r.tag_or_digest(), "1.27");

        let r = ImageRef::parse("127.0.0.1:5000/dockward/test").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "dockward/test");
        assert_eq!(r.tag_or_digest(), "latest");
        assert_eq!(r.familiar_repository(), "127.0.0.1:5000/dockward/test");

        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("ghcr.io/org/app:v1@{d}")).unwrap();
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.tag_or_digest(), d);
        assert_eq!(ImageRef::parse("localhost/app").unwrap().registry, "localhost");
        assert_eq!(ImageRef::parse("bitnami/redis").unwrap().name(), "redis");
        assert_eq!(ImageRef::parse("[::1]:5000/app").unwrap().registry, "[::1]:5000");
        assert_eq!(ImageRef::parse("a__b/c-d--e").unwrap().repository, "a__b/c-d--e");
    }

    #[test]
    fn image_refs_refused() {
        for bad in [
            "",
            "Nginx",
            "nginx:",
            "nginx:-bad",
            "nginx@sha256:123",
            "nginx@md5:abc",
            "a//b",
            "a/-b",
            "a...b",
            "-x",
            "x y",
            "x\ny",
            "reg.io:port/x",
            "reg_io.com/x",
            "?fromSrc=http://evil",
            "nginx&fromSrc=x",
            &"a".repeat(600),
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn bounds() {
        assert_eq!(bounded("tail", 5, 0, 10), Ok(5));
        assert_eq!(bounded("tail", 11, 0, 10), Err(ValidationError::OutOfRange { field: "tail", min: 0, max: 10 }));
        assert_eq!(bounded("tail", 11, 0, 10).unwrap_err().to_string(), "tail must be between 0 and 10");
    }
}
