//! `POST /v1/prune/{containers|images|volumes|build-cache}?all=&until=`.
//! Runs detached from the connection: `prune.<kind>.start` is on disk before
//! the engine is asked, the outcome (what was removed) after, whatever the
//! client does.
//!
//! Containers and volumes are pruned by the sidecar itself (list, decide,
//! remove one by one) so that protected containers and their volumes are
//! never touched and the scope label is honoured. Images and build cache
//! use the engine's prune with filters the sidecar builds; they belong to the
//! whole host, so a scoped sidecar refuses them (403, audited).

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use bollard::query_parameters::{
    DataUsageOptions, ListContainersOptions, ListVolumesOptions, PruneBuildOptions, PruneImagesOptions,
    RemoveContainerOptions, RemoveVolumeOptions,
};
use serde::Deserialize;
use shared::{PruneKind, PruneReport, Verb, PROTECT_LABEL};
use utoipa::IntoParams;

use crate::audit::{Caller, Draft};
use crate::docker::Freshness;
use crate::error::ApiError;
use crate::extract::{parse_time, Query};
use crate::state::{App, AppState};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PruneQuery {
    /// images: all unused images, not only dangling ones; volumes: named volumes too; build-cache: all of it.
    all: Option<bool>,
    /// Only what was created before this time (unix seconds or RFC 3339).
    until: Option<String>,
}

pub async fn prune(
    State(app): State<App>,
    caller: Caller,
    Path(kind): Path<String>,
    Query(q): Query<PruneQuery>,
) -> Response {
    super::detached(async move {
        let mut draft = Draft::new(&caller, Verb::Prune.audit_name());
        draft.target(kind.chars().take(32).flat_map(char::escape_default).collect::<String>(), None);
        let result = run(&app, &kind, q, &mut draft).await.map(Json);
        super::finish(&app, draft, result).await
    })
    .await
}

async fn run(app: &AppState, kind: &str, q: PruneQuery, draft: &mut Draft) -> Result<PruneReport, ApiError> {
    let kind = PruneKind::parse(kind).ok_or_else(|| {
        ApiError::NotFound("unknown prune kind: use containers, images, volumes or build-cache".into())
    })?;
    draft.verb_suffix(kind.as_str());
    let all = q.all.unwrap_or(false);
    if q.all.is_some() {
        draft.param("all", all);
    }
    let until = q.until.as_deref().map(|u| parse_time("until", u)).transpose()?;
    if let Some(u) = until {
        draft.param("until", u);
    }
    if kind == PruneKind::Containers && q.all.is_some() {
        return Err(ApiError::BadRequest("`all` does not apply to containers".into()));
    }
    if matches!(kind, PruneKind::Images | PruneKind::BuildCache) {
        app.engine.policy.refuse_host_wide(&format!("prune {}", kind.as_str()))?;
    }
    app.engine.require_up()?;
    // The prune rate limit is spent before any work, by `middleware::rate_limit`.
    super::intent(app, draft).await?;
    match kind {
        PruneKind::Containers => containers(app, until).await,
        PruneKind::Images => images(app, all, until).await,
        PruneKind::Volumes => volumes(app, all, until).await,
        PruneKind::BuildCache => build_cache(app, all, until).await,
    }
}

fn report(kind: PruneKind) -> PruneReport {
    PruneReport { kind, removed: Vec::new(), space_reclaimed: 0, skipped: Vec::new() }
}

/// Stopped containers in scope, except protected ones.
async fn containers(app: &AppState, until: Option<i64>) -> Result<PruneReport, ApiError> {
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    filters.insert("status".into(), vec!["exited".into(), "created".into(), "dead".into()]);
    if let Some(s) = app.engine.policy.scope_filter() {
        filters.insert("label".into(), vec![s]);
    }
    let opts = ListContainersOptions { all: true, size: true, filters: Some(filters), ..Default::default() };
    let stopped = app.engine.timed("list_containers", app.engine.client().list_containers(Some(opts))).await?;
    let mut out = report(PruneKind::Containers);
    for c in stopped {
        let Some(id) = c.id.clone() else { continue };
        let name = crate::docker::convert::summary_name(&c);
        let labels = c.labels.clone().unwrap_or_default();
        if !app.engine.policy.in_scope(&labels) {
            continue;
        }
        // A recreate's old (stopped, aside) or new (created) container is its to remove.
        if app.recreates.is_busy(&id, &name) {
            out.skipped.push(format!("{name}: being recreated"));
            continue;
        }
        // When in doubt (the engine cannot say), keep it.
        if app.engine.is_protected(&id, Freshness::Fresh).await.unwrap_or(true) {
            out.skipped.push(format!("{name}: protected"));
            continue;
        }
        if until.is_some_and(|u| c.created.unwrap_or(i64::MAX) >= u) {
            continue;
        }
        let rm = RemoveContainerOptions { v: false, force: false, link: false };
        match app.engine.timed("remove_container", app.engine.client().remove_container(&id, Some(rm))).await {
            Ok(()) => {
                out.space_reclaimed += c.size_rw.unwrap_or(0).max(0) as u64;
                out.removed.push(id);
            }
            Err(e) => out.skipped.push(format!("{name}: {e}")),
        }
    }
    Ok(out)
}

async fn images(app: &AppState, all: bool, until: Option<i64>) -> Result<PruneReport, ApiError> {
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    filters.insert("dangling".into(), vec![if all { "false" } else { "true" }.into()]);
    if let Some(u) = until {
        filters.insert("until".into(), vec![u.to_string()]);
    }
    let r = app
        .engine
        .timed("prune_images", app.engine.client().prune_images(Some(PruneImagesOptions { filters: Some(filters) })))
        .await?;
    let mut out = report(PruneKind::Images);
    for d in r.images_deleted.unwrap_or_default() {
        out.removed.extend(d.deleted.or(d.untagged));
    }
    out.space_reclaimed = r.space_reclaimed.unwrap_or(0).max(0) as u64;
    Ok(out)
}

/// A volume is anonymous when the engine named it with 64 hex digits (or labelled it so).
fn anonymous(name: &str, labels: &HashMap<String, String>) -> bool {
    labels.contains_key("com.docker.volume.anonymous")
        || (name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Unused volumes: anonymous ones, or named ones too with `all=true`. Never a
/// volume labelled `dockward.protect=true`, never one a container still uses.
async fn volumes(app: &AppState, all: bool, until: Option<i64>) -> Result<PruneReport, ApiError> {
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    filters.insert("dangling".into(), vec!["true".into()]);
    let opts = ListVolumesOptions { filters: Some(filters) };
    let list = app.engine.timed("list_volumes", app.engine.client().list_volumes(Some(opts))).await?;
    // Sizes, for the space reclaimed (the engine only computes them in df).
    let sizes: HashMap<String, i64> =
        match app.engine.timed("df", app.engine.client().df(None::<DataUsageOptions>)).await {
            Ok(df) => df
                .volumes
                .unwrap_or_default()
                .into_iter()
                .filter_map(|v| v.usage_data.map(|u| (v.name, u.size.max(0))))
                .collect(),
            Err(_) => HashMap::new(),
        };
    let scoped = app.engine.policy.scope_filter().is_some();
    let mut out = report(PruneKind::Volumes);
    for v in list.volumes.unwrap_or_default() {
        if v.labels.get(PROTECT_LABEL).is_some_and(|l| l.trim().eq_ignore_ascii_case("true")) {
            out.skipped.push(format!("{}: protected", v.name));
            continue;
        }
        if scoped && !app.engine.policy.in_scope(&v.labels) {
            continue;
        }
        if !all && !anonymous(&v.name, &v.labels) {
            continue;
        }
        let created = v.created_at.as_deref().and_then(|t| crate::docker::convert::unix_seconds(Some(t)));
        if let Some(u) = until {
            if created.is_none_or(|c| c >= u) {
                continue;
            }
        }
        let rm = RemoveVolumeOptions { force: false };
        match app.engine.timed("remove_volume", app.engine.client().remove_volume(&v.name, Some(rm))).await {
            Ok(()) => {
                out.space_reclaimed += sizes.get(&v.name).copied().unwrap_or(0) as u64;
                out.removed.push(v.name);
            }
            Err(e) => out.skipped.push(format!("{}: {e}", v.name)),
        }
    }
    Ok(out)
}

async fn build_cache(app: &AppState, all: bool, until: Option<i64>) -> Result<PruneReport, ApiError> {
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    if let Some(u) = until {
        // The builder's `until` takes a duration before now.
        let age = (crate::stats::now_ms() / 1000 - u).max(0);
        filters.insert("until".into(), vec![format!("{age}s")]);
    }
    let opts = PruneBuildOptions { all: Some(all), filters: Some(filters), ..Default::default() };
    let r = app.engine.timed("prune_build", app.engine.client().prune_build(Some(opts))).await?;
    let mut out = report(PruneKind::BuildCache);
    out.removed = r.caches_deleted.unwrap_or_default();
    out.space_reclaimed = r.space_reclaimed.unwrap_or(0).max(0) as u64;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_volumes() {
        let none = HashMap::new();
        assert!(anonymous(&"a1".repeat(32), &none));
        assert!(!anonymous("pgdata", &none));
        assert!(anonymous("x", &[("com.docker.volume.anonymous".to_string(), String::new())].into()));
    }
}
