//! Why a sidecar cannot use its Docker engine, and what to do about it.
//!
//! The sidecar diagnoses the failure where it happens (it alone can see the
//! socket); the console shows the words in the host's panel, so the fix is on
//! the page and not only in a log.

use serde::{Deserialize, Serialize};

/// The oldest Engine API the sidecar is tested against and accepts (Docker 20.10).
pub const MIN_API_VERSION: (u32, u32) = (1, 41);

/// What kind of trouble, so a client can pick an icon or a rule without parsing text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EngineProblemKind {
    /// The socket exists but this process may not open it.
    PermissionDenied,
    /// There is no socket where the sidecar looks.
    SocketMissing,
    /// Nothing answers on the socket or address (engine stopped or starting).
    EngineDown,
    /// The engine answers but speaks an API older than [`MIN_API_VERSION`].
    ApiTooOld,
    /// Anything else (a timeout, a TCP error): the detail says what.
    Unreachable,
}

/// One diagnosis: what is wrong (`detail`, facts only) and the fix (`fix`, an instruction).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EngineProblem {
    pub kind: EngineProblemKind,
    pub detail: String,
    pub fix: String,
}

impl EngineProblem {
    pub fn new(kind: EngineProblemKind, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { kind, detail: detail.into(), fix: fix.into() }
    }

    /// A few words for a chip or a headline.
    pub fn title(&self) -> &'static str {
        match self.kind {
            EngineProblemKind::PermissionDenied => "no permission on the Docker socket",
            EngineProblemKind::SocketMissing => "no Docker socket",
            EngineProblemKind::EngineDown => "Docker engine not running",
            EngineProblemKind::ApiTooOld => "Docker engine too old",
            EngineProblemKind::Unreachable => "Docker engine unreachable",
        }
    }
}

/// `"1.41"` → `(1, 41)`; `None` for anything else.
pub fn parse_api_version(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The problem with an engine that speaks API `version`, if it is too old or unreadable.
pub fn api_version_problem(version: &str, engine_release: Option<&str>) -> Option<EngineProblem> {
    let (major, minor) = MIN_API_VERSION;
    let release = engine_release.map(|r| format!(" (Docker {r})")).unwrap_or_default();
    match parse_api_version(version) {
        Some(v) if v >= MIN_API_VERSION => None,
        Some(_) => Some(EngineProblem::new(
            EngineProblemKind::ApiTooOld,
            format!("the engine speaks API {version}{release}; dockward needs API {major}.{minor} or newer"),
            "upgrade the Docker engine on this host to 20.10 or newer",
        )),
        None => Some(EngineProblem::new(
            EngineProblemKind::ApiTooOld,
            format!("the engine reports an API version dockward cannot read: {version:?}{release}"),
            "check that DOCKER_HOST points at a Docker engine (20.10 or newer)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions() {
        assert_eq!(parse_api_version("1.41"), Some((1, 41)));
        assert_eq!(parse_api_version(" 1.9 "), Some((1, 9)));
        assert_eq!(parse_api_version("1"), None);
        assert_eq!(parse_api_version("1.x"), None);
        assert!(api_version_problem("1.41", None).is_none());
        assert!(api_version_problem("1.47", None).is_none());
        assert!(api_version_problem("2.0", None).is_none());
        // 1.9 is older than 1.41 (numeric, not string, comparison).
        let p = api_version_problem("1.9", Some("1.9.1")).expect("too old");
        assert_eq!(p.kind, EngineProblemKind::ApiTooOld);
        assert!(p.detail.contains("API 1.9 (Docker 1.9.1)") && p.detail.contains("1.41"), "{}", p.detail);
        let p = api_version_problem("1.40", None).expect("too old");
        assert!(p.fix.contains("upgrade"), "{}", p.fix);
        assert_eq!(api_version_problem("garbage", None).map(|p| p.kind), Some(EngineProblemKind::ApiTooOld));
    }

    #[test]
    fn serialises_in_snake_case() {
        let p = EngineProblem::new(EngineProblemKind::PermissionDenied, "d", "f");
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v, serde_json::json!({"kind": "permission_denied", "detail": "d", "fix": "f"}));
        assert_eq!(p.title(), "no permission on the Docker socket");
    }
}
