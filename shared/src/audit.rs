//! Audit records as stored (one JSON line each) and served.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Denied,
    Error,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Self::Ok, Self::Denied, Self::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Denied => "denied",
            Self::Error => "error",
        }
    }
}

/// The verb of a failed authentication's record.
pub const AUTH_VERB: &str = "auth";
/// The verb of a record counting repeated refusals of one kind.
pub const DENIED_SUMMARY_VERB: &str = "denied.summary";
/// The verb of a refusal on a route outside the verb table.
pub const UNKNOWN_ROUTE_VERB: &str = "unknown";

/// The verbs to filter the audit log by, as the filter takes them (a name
/// also matches its dotted narrowings: `prune` matches `prune.images.start`):
/// the verb table's audit names in its order, then the verbs written outside
/// it. The log's own records (`audit.keyed`, `audit.retention`, …) fall
/// under `audit`.
pub fn filter_verbs() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for v in crate::api::VERBS.iter().map(|s| s.audit).chain([AUTH_VERB, DENIED_SUMMARY_VERB, UNKNOWN_ROUTE_VERB]) {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// One line of the audit log. `prev` is the SHA-256 (hex) of the previous
/// line's exact bytes, so editing, deleting or reordering lines breaks the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRecord {
    /// Position in the chain, from 1, continuous across rotated files.
    pub seq: u64,
    /// RFC 3339 UTC with milliseconds.
    pub time: String,
    pub request_id: String,
    /// Id of the client key used (`key:<fingerprint>`), or `anonymous`.
    pub client: String,
    /// The user the caller named (recorded, never trusted).
    pub actor: Option<String>,
    /// The verb, e.g. `restart`, `prune.images`, `pull`, `auth`.
    pub verb: String,
    /// Full container id, image reference or route.
    pub target: Option<String>,
    /// Container name, when the target is a container.
    pub target_name: Option<String>,
    pub params: BTreeMap<String, String>,
    pub outcome: Outcome,
    pub message: Option<String>,
    pub duration_ms: u64,
    pub prev: String,
    /// HMAC-SHA256 (hex), keyed with the sidecar's audit key, of this line as
    /// serialised without `mac`: only the key's holder can forge a record.
    /// Absent on records written before the log was keyed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// `GET /v1/audit`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
    /// Pass as `cursor` to get the next (older) page; `None` at the end.
    pub next_cursor: Option<String>,
}

/// `GET /v1/audit/verify`: the chain's verification, as `audit verify` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditVerification {
    /// True when nothing in `problems` breaks the chain.
    pub ok: bool,
    pub records: u64,
    pub files: u64,
    pub last_seq: u64,
    /// SHA-256 (hex) of the last line.
    pub last_hash: Option<String>,
    /// Records before this seq were deleted by retention (and a record proves it).
    pub pruned_through: Option<u64>,
    /// Breaks (the log is not intact), one line each; empty when `ok`.
    pub problems: Vec<String>,
    /// Facts worth knowing that are not breaks (retention, records that predate the key).
    pub notes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_verbs_are_the_table_and_the_rest_once_each() {
        let verbs = filter_verbs();
        for spec in crate::api::VERBS {
            assert!(verbs.contains(&spec.audit), "{} missing", spec.audit);
        }
        for v in [AUTH_VERB, DENIED_SUMMARY_VERB, UNKNOWN_ROUTE_VERB] {
            assert!(verbs.contains(&v), "{v} missing");
        }
        let mut unique = verbs.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), verbs.len(), "{verbs:?}");
        assert_eq!(verbs.first(), Some(&crate::api::VERBS[0].audit), "in the table's order");
    }
}
