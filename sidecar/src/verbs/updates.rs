//! `GET /v1/updates`: for each running container, whether its image tag has
//! a newer digest in its registry (asked through [`crate::updates`]). The
//! answer compares the registry's
//! digest with the digests of the image the container *runs* (not the one
//! its tag names now), so a tag pulled but not yet recreated still shows
//! as an update.

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use shared::{ContainerUpdate, ImageRef, UpdateStatus, UpdatesReport};

use crate::docker::Freshness;
use crate::error::ApiError;
use crate::extract::NoQuery;
use crate::state::{App, AppState};

/// How long one `GET /v1/updates` waits for registry answers; the rest are
/// `pending` and keep being checked in the background.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

pub async fn updates(State(app): State<App>, NoQuery: NoQuery) -> Result<Json<UpdatesReport>, ApiError> {
    app.engine.require_up()?;
    let rows = app.engine.list(false, &[]).await?;
    let mut out = Vec::with_capacity(rows.len());
    let mut asks = Vec::new();
    for row in rows {
        let Some(id) = row.id.clone() else { continue };
        let ins = match app.engine.inspect(&id).await {
            Ok(i) => i,
            Err(ApiError::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        let configured = ins.config.as_ref().and_then(|c| c.image.clone()).unwrap_or_default();
        let image_id = ins.image.clone().unwrap_or_default();
        let mut entry = ContainerUpdate {
            name: crate::docker::convert::summary_name(&row),
            id,
            image: configured.clone(),
            status: UpdateStatus::Pending,
            local_digest: None,
            remote_digest: None,
            checked_at: None,
            reason: None,
            buildable: false,
            build_note: None,
        };
        match classify(&app, &configured, &image_id).await? {
            Local::Settled(status, reason) => {
                entry.status = status;
                entry.reason = reason;
                // A compose service's image built here: can it be rebuilt from source?
                let labels = ins.config.as_ref().and_then(|c| c.labels.clone()).unwrap_or_default();
                if status == UpdateStatus::LocalOnly && super::recreate::build::is_compose(&labels) {
                    match super::recreate::build::plan(app.recreates.build_root.as_deref(), &labels, &configured) {
                        Ok(_) => entry.buildable = true,
                        Err(e) if !e.0.contains("no build:") => entry.build_note = Some(e.0),
                        Err(_) => {}
                    }
                }
            }
            Local::Ask { image, digests } => {
                entry.local_digest = digests.first().cloned();
                let app2 = app.clone();
                // Spawned, so a check outlives a caller that stops waiting.
                let task = tokio::spawn(async move {
                    let image = image;
                    app2.updates.remote(&app2.engine, &image).await
                });
                asks.push((out.len(), digests, task));
            }
        }
        out.push(entry);
    }
    let deadline = tokio::time::Instant::now() + ANSWER_WITHIN;
    for (i, digests, task) in asks {
        let entry = &mut out[i];
        let Ok(Ok(remote)) = tokio::time::timeout_at(deadline, task).await else { continue };
        entry.checked_at = Some(remote.checked_at);
        match &remote.digest {
            Ok(d) => {
                entry.remote_digest = Some(d.clone());
                if digests.iter().any(|l| l == d) {
                    entry.status = UpdateStatus::UpToDate;
                    entry.local_digest = Some(d.clone());
                } else {
                    entry.status = UpdateStatus::UpdateAvailable;
                    entry.reason = Some("the registry has a newer image for this tag".into());
                }
            }
            Err(e) => {
                entry.status = UpdateStatus::Error;
                entry.reason = Some(e.clone());
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(UpdatesReport { containers: out, check_interval_secs: app.updates.interval().as_secs() }))
}

/// What can be said without the registry.
enum Local {
    Settled(UpdateStatus, Option<String>),
    /// Ask the registry about `image`; the running image's digests for its repository.
    Ask {
        image: ImageRef,
        digests: Vec<String>,
    },
}

async fn classify(app: &AppState, configured: &str, image_id: &str) -> Result<Local, ApiError> {
    let settled = |s, r: &str| Ok(Local::Settled(s, Some(r.to_owned())));
    let Some(image) = super::pull::configured_ref(configured, image_id) else {
        return settled(UpdateStatus::LocalOnly, "created from an image id, not a tag");
    };
    if image.digest.is_some() {
        return Ok(Local::Settled(UpdateStatus::PinnedByDigest, None));
    }
    let names = app.engine.image_names(image_id, Freshness::Cached).await?;
    let prefix = format!("{}@", image.familiar_repository());
    let digests: Vec<String> = names.iter().filter_map(|n| n.strip_prefix(&prefix).map(str::to_owned)).collect();
    if digests.is_empty() {
        return settled(UpdateStatus::LocalOnly, "the image was built or imported here: no registry has it");
    }
    if let Err(e) = super::pull::registry_allowed(app, &image) {
        return Ok(Local::Settled(UpdateStatus::Error, Some(e.to_string())));
    }
    Ok(Local::Ask { image, digests })
}
