//! Where something applies: the whole fleet, one host, one compose project
//! (on one host or on any), or the containers carrying a label. Alert rules
//! and silences are scoped by it, and so are grants (`access.rs`), which
//! take every form but a label.

use serde::{Deserialize, Serialize};
use shared::ContainerSummary;

/// Where a rule looks: every host, one host, one compose project (on one
/// host or any), or containers carrying a label (with a value, or any).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Scope {
    Fleet,
    Host(String),
    App { host: Option<String>, project: String },
    Label { key: String, value: Option<String> },
}

impl Scope {
    /// `fleet`, `host:<name>`, `app:<project>`, `app:<host>/<project>`,
    /// `label:<key>` or `label:<key>=<value>`.
    pub fn parse(s: &str) -> Result<Scope, String> {
        let s = s.trim();
        let (kind, rest) = s.split_once(':').unwrap_or((s, ""));
        let scope = match kind {
            "fleet" | "" if rest.is_empty() => Scope::Fleet,
            "host" => Scope::Host(host_name(rest)?),
            "app" => {
                let (host, project) = match rest.split_once('/') {
                    Some((h, p)) => (Some(host_name(h)?), p),
                    None => (None, rest),
                };
                Scope::App { host, project: project_name(project)? }
            }
            "label" => {
                let (key, value) = match rest.split_once('=') {
                    Some((k, v)) => (k, Some(v)),
                    None => (rest, None),
                };
                let key_ok = !key.is_empty()
                    && key.len() <= 128
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c));
                if !key_ok {
                    return Err("a label key is 1–128 of A–Z, a–z, 0–9, '.', '_', '/', '-'".into());
                }
                if value.is_some_and(|v| v.len() > 256 || v.chars().any(char::is_control)) {
                    return Err("a label value is at most 256 characters, without control characters".into());
                }
                Scope::Label { key: key.to_owned(), value: value.map(str::to_owned) }
            }
            _ => return Err(
                "must be fleet, host:<name>, app:<project>, app:<host>/<project>, label:<key> or label:<key>=<value>"
                    .into(),
            ),
        };
        Ok(scope)
    }

    /// Whether a container of `host` is in scope.
    pub fn holds(&self, host: &str, c: &ContainerSummary) -> bool {
        match self {
            Scope::Fleet => true,
            Scope::Host(h) => h == host,
            Scope::App { host: h, project } => {
                h.as_deref().is_none_or(|h| h == host) && c.compose_project.as_deref() == Some(project.as_str())
            }
            Scope::Label { key, value } => match (c.labels.get(key), value) {
                (Some(v), Some(want)) => v == want,
                (Some(_), None) => true,
                (None, _) => false,
            },
        }
    }

    /// Whether a host itself is in scope (host rules).
    pub fn holds_host(&self, host: &str) -> bool {
        match self {
            Scope::Fleet => true,
            Scope::Host(h) => h == host,
            _ => false,
        }
    }

    /// Whether an incident at `host`, in `app`, is in scope (silences).
    pub fn covers(&self, host: &str, app: Option<&str>) -> bool {
        match self {
            Scope::Fleet => true,
            Scope::Host(h) => h == host,
            Scope::App { host: h, project } => h.as_deref().is_none_or(|h| h == host) && app == Some(project.as_str()),
            Scope::Label { .. } => false,
        }
    }
}

fn host_name(s: &str) -> Result<String, String> {
    if shared::enrol::valid_host_name(s) {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?} is not a host name"))
    }
}

fn project_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?} is not a compose project name (a–z, 0–9, '_', '-'; at most 64)"))
    }
}

impl TryFrom<String> for Scope {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Scope::parse(&s)
    }
}

impl From<Scope> for String {
    fn from(s: Scope) -> String {
        s.to_string()
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Fleet => f.write_str("fleet"),
            Scope::Host(h) => write!(f, "host:{h}"),
            Scope::App { host: Some(h), project } => write!(f, "app:{h}/{project}"),
            Scope::App { host: None, project } => write!(f, "app:{project}"),
            Scope::Label { key, value: Some(v) } => write!(f, "label:{key}={v}"),
            Scope::Label { key, value: None } => write!(f, "label:{key}"),
        }
    }
}
