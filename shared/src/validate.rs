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
    /// Longest a recreate waits for the new container to become healthy, in seconds.
    pub const RECREATE_HEALTH_TIMEOUT_MAX: u64 = 600;
    /// Default of that wait.
    pub const RECREATE_HEALTH_TIMEOUT_DEFAULT: u64 = 120;
    /// Longest a container without a healthcheck must stay running after a recreate, in seconds.
    pub const RECREATE_GRACE_MAX: u64 = 120;
    /// Default of that grace period.
    pub const RECREATE_GRACE_DEFAULT: u64 = 5;
    /// Longest line of build output passed on.
    pub const BUILD_LINE_MAX: usize = 512;
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
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(pattern = "^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$", example = "web-1")
)]
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

/// Why a registry may not be contacted unless a list names it (the
/// sidecar's `DOCKWARD_PULL_REGISTRIES`, the console's
/// `DOCKWARD_TAG_REGISTRIES`): whoever connects would go wherever it
/// points, so by default only public registry names are used. Refused: IP literals (loopback,
/// private, link-local and public alike), `localhost` and `*.localhost`,
/// mDNS `*.local`, common private-network suffixes (`*.internal`,
/// `*.home.arpa`, `*.lan`, …) and single-label names (a host or service of
/// the local network). Best effort: a public-looking name that resolves to a
/// private address, or a registry that redirects there, is not seen here —
/// list your registries to close that too.
pub fn unlisted_registry_refusal(registry: &str) -> Option<&'static str> {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        // Whatever follows the last colon is a port, well-formed or not: an
        // address with a bad port (`10.0.0.5:`, `10.0.0.5:x`) is still an address.
        None => registry.rsplit_once(':').map_or(registry, |(h, _port)| h),
    };
    let host = host.to_ascii_lowercase();
    // Resolvers also read `127.1`, `0x7f.1` and `0177.0.0.1` as addresses.
    let last = host.rsplit('.').next().unwrap_or("");
    let numeric = !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit());
    let hex = host.split('.').any(|l| l.starts_with("0x"));
    if host.parse::<std::net::IpAddr>().is_ok() || numeric || hex {
        Some("an IP address")
    } else if host == "localhost" || host.ends_with(".localhost") || host == "localhost.localdomain" {
        Some("a loopback name")
    } else if host.ends_with(".local") {
        Some("a link-local (mDNS) name")
    } else if [".internal", ".home.arpa", ".lan", ".intranet", ".corp"].iter().any(|s| host.ends_with(s)) {
        Some("a private-network name")
    } else if !host.contains('.') {
        Some("a single-label (local network) name")
    } else {
        None
    }
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

    // The tests below pin every bound and branch of the validators (each was
    // a surviving mutant under cargo-mutants; see BENCHMARKS.md).

    fn image_err(input: &str) -> &'static str {
        match ImageRef::parse(input) {
            Err(ValidationError::ImageRef(m)) => m,
            other => panic!("{input:?} should be refused as an image reference, got {other:?}"),
        }
    }

    fn hex(n: usize) -> String {
        "0123456789abcdef".chars().cycle().take(n).collect()
    }

    #[test]
    fn container_ref_bounds_and_id_prefixes() {
        assert_eq!(ContainerRef::parse(&"a".repeat(128)).unwrap().as_str(), "a".repeat(128));
        assert_eq!(ContainerRef::parse(&"a".repeat(129)), Err(ValidationError::ContainerRef));
        assert_eq!(ContainerRef::parse("9").unwrap().as_str(), "9");
        for ok in ["a_b", "a.b", "a-b", "A1"] {
            assert_eq!(ContainerRef::parse(ok).unwrap().to_string(), ok);
        }
        for bad in ["a+b", "a:b", "a@b", "a~b"] {
            assert_eq!(ContainerRef::parse(bad), Err(ValidationError::ContainerRef), "{bad}");
        }
        assert!(ContainerRef::parse(&hex(64)).unwrap().could_be_id());
        assert!(!ContainerRef::parse(&hex(65)).unwrap().could_be_id());
        assert!(ContainerRef::parse("0").unwrap().could_be_id());
        assert!(ContainerRef::parse("f9").unwrap().could_be_id());
        assert!(!ContainerRef::parse("abcdeg").unwrap().could_be_id());
        assert!(!ContainerRef::parse("ABC").unwrap().could_be_id());
        assert!(!ContainerRef::parse("abc-1").unwrap().could_be_id());
    }

    #[test]
    fn image_ref_total_length_bound() {
        // 247 (name) + ':' + 128 (tag) + '@' + 'sha512:' + 128 hex = 512 bytes exactly.
        let digest = format!("sha512:{}", hex(128));
        let at_limit = format!("{}:{}@{digest}", "a".repeat(247), "t".repeat(128));
        assert_eq!(at_limit.len(), limits::IMAGE_REF_MAX);
        let r = ImageRef::parse(&at_limit).unwrap();
        assert_eq!(r.repository, format!("library/{}", "a".repeat(247)));
        assert_eq!(r.digest.as_deref(), Some(digest.as_str()));
        let over = format!("{}:{}@{digest}", "a".repeat(248), "t".repeat(128));
        assert_eq!(over.len(), limits::IMAGE_REF_MAX + 1);
        assert_eq!(image_err(&over), "too long");
        assert_eq!(image_err(""), "empty");
    }

    #[test]
    fn image_ref_name_length_bound() {
        let at_limit = "a".repeat(255);
        assert_eq!(ImageRef::parse(&at_limit).unwrap().name(), at_limit);
        assert_eq!(image_err(&"a".repeat(256)), "repository name longer than 255 characters");
        // The bound is on the name, not counting the tag.
        assert!(ImageRef::parse(&format!("{at_limit}:v1")).is_ok());
    }

    #[test]
    fn image_ref_printable_ascii_only() {
        let msg = "only printable ASCII without spaces is allowed";
        // Whitespace that is not a control character, a control character
        // that is not whitespace, both, and non-ASCII: each refused on its own.
        assert_eq!(image_err("x y"), msg);
        assert_eq!(image_err("x\x01y"), msg);
        assert_eq!(image_err("x\ty"), msg);
        assert_eq!(image_err("x\x7fy"), msg);
        assert_eq!(image_err("nginx\u{e9}"), msg);
    }

    #[test]
    fn image_ref_tags() {
        let tag_of = |s: &str| ImageRef::parse(s).unwrap().tag;
        assert_eq!(tag_of(&format!("app:{}", "t".repeat(128))), Some("t".repeat(128)));
        assert_eq!(image_err(&format!("app:{}", "t".repeat(129))), "invalid tag");
        assert_eq!(tag_of("app:_x"), Some("_x".into()));
        assert_eq!(tag_of("app:V1.2-rc_3"), Some("V1.2-rc_3".into()));
        assert_eq!(tag_of("app:9"), Some("9".into()));
        for bad in ["app:", "app:-x", "app:.x", "app:a+b", "app:a/b:", "app:a:b"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(image_err("app:a+b"), "invalid tag");
        // The tag is after the last ':' that follows the last '/': a port is no tag.
        let r = ImageRef::parse("reg.io:5000/app").unwrap();
        assert_eq!((r.registry.as_str(), r.tag), ("reg.io:5000", None));
        let r = ImageRef::parse("reg.io:5000/app:v2").unwrap();
        assert_eq!((r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()), ("reg.io:5000", "app", Some("v2")));
        // A ':' right before the last '/' belongs to the registry, not a tag.
        assert_eq!(image_err("x:/y"), "invalid registry host");
        assert!(ImageRef::parse("/x").is_err());
    }

    #[test]
    fn image_ref_digests() {
        let sha256 = format!("sha256:{}", hex(64));
        let sha512 = format!("sha512:{}", hex(128));
        for d in [&sha256, &sha512] {
            let r = ImageRef::parse(&format!("app@{d}")).unwrap();
            assert_eq!(r.digest.as_deref(), Some(d.as_str()));
            assert_eq!(r.tag, None);
            assert_eq!(r.tag_or_digest(), d);
            assert_eq!(r.to_string(), format!("docker.io/library/app@{d}"));
        }
        let msg = "invalid digest: expected sha256:<64 hex> or sha512:<128 hex>";
        for bad in [
            format!("app@sha256:{}", hex(63)),
            format!("app@sha256:{}", hex(65)),
            format!("app@sha256:{}", hex(128)),
            format!("app@sha512:{}", hex(64)),
            format!("app@sha512:{}", hex(127)),
            format!("app@sha256:{}", "A".repeat(64)),
            format!("app@sha256:{}", "g".repeat(64)),
            format!("app@sha384:{}", hex(96)),
            format!("app@{}", hex(64)),
            "app@".to_string(),
        ] {
            assert_eq!(image_err(&bad), msg, "{bad}");
        }
    }

    #[test]
    fn image_ref_registry_detection() {
        let parts = |s: &str| {
            let r = ImageRef::parse(s).unwrap();
            (r.registry, r.repository)
        };
        // A first component is a registry when it has a '.', a ':', is localhost or has an uppercase letter.
        assert_eq!(parts("a.b/c"), ("a.b".into(), "c".into()));
        assert_eq!(parts("a:1/c"), ("a:1".into(), "c".into()));
        assert_eq!(parts("localhost/c"), ("localhost".into(), "c".into()));
        assert_eq!(parts("Abc/c"), ("Abc".into(), "c".into()));
        // Otherwise it is a Docker Hub namespace.
        assert_eq!(parts("abc/c"), ("docker.io".into(), "abc/c".into()));
        assert_eq!(parts("localhostx/c"), ("docker.io".into(), "localhostx/c".into()));
        assert_eq!(parts("localhost"), ("docker.io".into(), "library/localhost".into()));
        // Only Docker Hub's single-component names get `library/`.
        assert_eq!(parts("docker.io/nginx"), ("docker.io".into(), "library/nginx".into()));
        assert_eq!(parts("docker.io/x/y"), ("docker.io".into(), "x/y".into()));
        assert_eq!(parts("ghcr.io/app"), ("ghcr.io".into(), "app".into()));
        assert_eq!(parts("ghcr.io/org/team/app"), ("ghcr.io".into(), "org/team/app".into()));
    }

    #[test]
    fn image_ref_accessors() {
        let r = ImageRef::parse("ghcr.io/org/app:v1").unwrap();
        assert_eq!(r.name(), "app");
        assert_eq!(r.familiar_repository(), "ghcr.io/org/app");
        assert_eq!(r.full_repository(), "ghcr.io/org/app");
        assert_eq!(r.to_string(), "ghcr.io/org/app:v1");
        let r = ImageRef::parse("nginx").unwrap();
        assert_eq!(r.full_repository(), "docker.io/library/nginx");
        assert_eq!(r.familiar_repository(), "nginx");
        assert_eq!(r.to_string(), "docker.io/library/nginx");
        assert_eq!(ImageRef::parse("bitnami/redis").unwrap().familiar_repository(), "bitnami/redis");
    }

    #[test]
    fn image_ref_domains() {
        let host = "invalid registry host";
        let registry = |s: &str| ImageRef::parse(s).unwrap().registry;
        // IPv6 literals.
        assert_eq!(registry("[::1]/x"), "[::1]");
        assert_eq!(registry("[fe80::1]:443/x"), "[fe80::1]:443");
        assert_eq!(registry("[FE80::A]:1/x"), "[FE80::A]:1");
        for bad in ["[]:5000/x", "[zz]:5000/x", "[::1:5000/x", "[::1]x:1/x", "[::1]:/x", "[::1]:x/x"] {
            assert_eq!(image_err(bad), host, "{bad}");
        }
        // Ports: 1 to 5 digits.
        assert_eq!(registry("reg.io:1/x"), "reg.io:1");
        assert_eq!(registry("reg.io:12345/x"), "reg.io:12345");
        for bad in ["reg.io:/x", "reg.io:123456/x", "reg.io:abc/x", "reg.io:1a/x", ":5000/x"] {
            assert_eq!(image_err(bad), host, "{bad}");
        }
        // Labels: 1 to 63 alphanumerics or '-', not starting or ending with '-'.
        let label63 = "a".repeat(63);
        assert_eq!(registry(&format!("{label63}.io/x")), format!("{label63}.io"));
        assert_eq!(image_err(&format!("{}.io/x", "a".repeat(64))), host);
        assert_eq!(registry("a-b.io/x"), "a-b.io");
        assert_eq!(registry("a--b.Example.COM/x"), "a--b.Example.COM");
        assert_eq!(registry("0.io/x"), "0.io");
        for bad in ["a..b/x", ".io/x", "io./x", "-a.io/x", "a-.io/x", "a_b.io/x", "a+b.io/x", "a.b.:1/x"] {
            assert_eq!(image_err(bad), host, "{bad}");
        }
    }

    #[test]
    fn image_ref_path_components() {
        let path = "invalid repository path: lowercase letters, digits and single separators (. _ __ -) only";
        for ok in ["a.b", "a_b", "a__b", "a-b", "a---b", "a1/b2.c_d__e-f", "0/9"] {
            let want = if ok.contains('/') { ok.to_string() } else { format!("library/{ok}") };
            assert_eq!(ImageRef::parse(ok).unwrap().repository, want, "{ok}");
        }
        for bad in ["a//b", "a/-b", "a/b-", "a/.b", "a/b.", "a...b", "a..b", "a___b", "a._b", "a-.b", "a+b", "a/B"] {
            assert_eq!(image_err(bad), path, "{bad}");
        }
    }

    #[test]
    fn limits_are_the_documented_sizes() {
        // SECURITY.md: a body of at most 64 KiB, log lines cut at 16 KiB.
        assert_eq!(limits::BODY_MAX_BYTES, 65_536);
        assert_eq!(limits::LOG_LINE_MAX_BYTES, 16_384);
    }

    #[test]
    fn bounded_is_inclusive() {
        assert_eq!(bounded("n", 0, 0, 10), Ok(0));
        assert_eq!(bounded("n", 10, 0, 10), Ok(10));
        assert_eq!(bounded("n", 3, 3, 3), Ok(3));
        assert_eq!(bounded("n", 2, 3, 10), Err(ValidationError::OutOfRange { field: "n", min: 3, max: 10 }));
        assert_eq!(bounded("n", 11, 3, 10), Err(ValidationError::OutOfRange { field: "n", min: 3, max: 10 }));
    }

    #[test]
    fn bounds() {
        assert_eq!(bounded("tail", 5, 0, 10), Ok(5));
        assert_eq!(bounded("tail", 11, 0, 10), Err(ValidationError::OutOfRange { field: "tail", min: 0, max: 10 }));
        assert_eq!(bounded("tail", 11, 0, 10).unwrap_err().to_string(), "tail must be between 0 and 10");
    }
}
