//! `GET /v1/audit`: records newest first, filtered and paginated.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use shared::{bounded, limits, AuditPage, AuditVerification, Outcome};
use utoipa::IntoParams;

use crate::audit::chain::{self, Filter};
use crate::audit::format_rfc3339;
use crate::error::ApiError;
use crate::extract::{parse_time, NoQuery, Query};
use crate::state::App;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only records from this time on: unix seconds or RFC 3339.
    since: Option<String>,
    /// Only records before this time: unix seconds or RFC 3339.
    until: Option<String>,
    /// Only records naming this acting user (at most 256 bytes).
    actor: Option<String>,
    /// Only records of this verb and its sub-verbs (`prune` matches `prune.images`; at most 256 bytes).
    verb: Option<String>,
    /// Only records whose target starts with this, or whose container name is this (at most 256 bytes).
    target: Option<String>,
    /// Only records with this outcome.
    outcome: Option<Outcome>,
    /// Records per page (default 100, at most 1 000).
    limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

fn short(field: &'static str, v: Option<String>) -> Result<Option<String>, ApiError> {
    match v {
        Some(s) if s.len() > 256 => Err(ApiError::BadRequest(format!("{field} is longer than 256 bytes"))),
        other => Ok(other.filter(|s| !s.is_empty())),
    }
}

fn time_bound(field: &'static str, v: Option<String>) -> Result<Option<String>, ApiError> {
    v.map(|s| {
        let secs = parse_time(field, &s)?;
        let t = time::OffsetDateTime::from_unix_timestamp(secs)
            .map_err(|_| ApiError::BadRequest(format!("{field} is out of range")))?;
        Ok(format_rfc3339(t))
    })
    .transpose()
}

/// Reading the log walks files; two readers at a time is plenty.
static AUDIT_READS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// `GET /v1/audit/verify`: the chain's verification, as `audit verify` reports it.
pub async fn verify(State(app): State<App>, NoQuery: NoQuery) -> Result<Json<AuditVerification>, ApiError> {
    let path = app.audit.path().to_path_buf();
    let _one_at_a_time = AUDIT_READS.acquire().await.map_err(|e| ApiError::Internal(e.to_string()))?;
    let key = app.audit.key().cloned();
    let r = tokio::task::spawn_blocking(move || chain::verify(&path, key.as_ref()))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(format!("reading the audit log: {e}")))?;
    Ok(Json(AuditVerification {
        ok: r.ok(),
        records: r.records,
        files: r.files as u64,
        last_seq: r.last_seq,
        last_hash: r.last_hash,
        pruned_through: r.pruned_through,
        problems: r.problems,
        notes: r.notes,
    }))
}

pub async fn audit(State(app): State<App>, Query(q): Query<AuditQuery>) -> Result<Json<AuditPage>, ApiError> {
    let limit = bounded("limit", q.limit.unwrap_or(limits::AUDIT_PAGE_DEFAULT), 1, limits::AUDIT_PAGE_MAX)? as usize;
    let before_seq = q
        .cursor
        .map(|c| {
            c.parse::<u64>()
                .map_err(|_| ApiError::BadRequest("cursor must be a cursor returned by a previous page".into()))
        })
        .transpose()?;
    let filter = Filter {
        since: time_bound("since", q.since)?,
        until: time_bound("until", q.until)?,
        actor: short("actor", q.actor)?,
        verb: short("verb", q.verb)?,
        target: short("target", q.target)?,
        outcome: q.outcome,
        before_seq,
    };
    let path = app.audit.path().to_path_buf();
    let _one_at_a_time = AUDIT_READS.acquire().await.map_err(|e| ApiError::Internal(e.to_string()))?;
    let (records, more) = tokio::task::spawn_blocking(move || chain::query(&path, &filter, limit))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(format!("reading the audit log: {e}")))?;
    let next_cursor = if more { records.last().map(|r| r.seq.to_string()) } else { None };
    Ok(Json(AuditPage { records, next_cursor }))
}
