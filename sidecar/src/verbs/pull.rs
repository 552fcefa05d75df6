//! `POST /v1/images/pull` with `{"image": "nginx:1.27"}`.
//!
//! The reference is parsed with the distribution grammar and checked against
//! the registry allow-list; the sidecar then builds the engine's image-create
//! call itself from the parsed parts (`fromImage` + `tag`), so nothing else of
//! that endpoint (`fromSrc`, imports, odd queries) is reachable.
//!
//! The answer streams `application/x-ndjson` lines of `PullEvent`. The pull
//! runs in its own task, so a client that disconnects does not cut it short
//! or skip its audit record; progress to a slow client is dropped, never queued
//! without bound. The final line is sent only after the record is on disk.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bollard::query_parameters::CreateImageOptions;
use futures_util::StreamExt;
use shared::{ImageRef, Outcome, PullEvent, PullRequest, Verb};
use tokio::sync::mpsc;

use crate::audit::{Caller, Draft};
use crate::error::ApiError;
use crate::extract::{JsonBody, NoQuery};
use crate::policy;
use crate::state::{App, AppState};

pub async fn pull(
    State(app): State<App>,
    caller: Caller,
    NoQuery: NoQuery,
    JsonBody(req): JsonBody<PullRequest>,
) -> Response {
    let mut draft = Draft::new(&caller, Verb::Pull.audit_name());
    // The record names the parsed, normalised reference; a string that does
    // not parse is kept only bounded and escaped.
    let parsed = ImageRef::parse(&req.image);
    match &parsed {
        Ok(image) => draft.target(image.to_string(), None),
        Err(_) => draft.target(policy::unparsed_reference(&req.image), None),
    };
    let image = match parsed.map_err(ApiError::from).and_then(|i| check(&app, i)) {
        Ok(i) => i,
        Err(e) => return super::finish(&app, draft, Err::<(), _>(e)).await,
    };
    let permit = match super::stream_permit(&app, crate::state::Pool::Pull) {
        Ok(p) => p,
        Err(e) => return super::finish(&app, draft, Err::<(), _>(e)).await,
    };
    // The start is on disk before the engine is asked or anything is answered.
    if let Err(e) = super::intent(&app, &draft).await {
        return e.into_response();
    }
    let (tx, rx) = mpsc::channel::<PullEvent>(64);
    let app2 = app.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let progress = |ev: PullEvent| {
            // Dropped when the client reads slowly: progress is advisory.
            let _ = tx.try_send(ev);
        };
        let last = match run(&app2, &image, &progress).await {
            Ok(done) => {
                let r = app2.audit.commit(draft, Outcome::Ok, None).await;
                r.map(|_| done).unwrap_or_else(|e| PullEvent::Error { message: e.to_string() })
            }
            Err(e) => {
                let msg = e.to_string();
                let outcome = if e.is_denial() { Outcome::Denied } else { Outcome::Error };
                match app2.audit.commit(draft, outcome, Some(msg.clone())).await {
                    Ok(_) => PullEvent::Error { message: msg },
                    Err(ae) => PullEvent::Error { message: format!("{msg}; {ae}") },
                }
            }
        };
        let _ = tx.send(last).await;
    });
    super::ndjson(rx)
}

fn check(app: &AppState, image: ImageRef) -> Result<ImageRef, ApiError> {
    // An image, once pulled, is the whole host's: no scope owns it.
    app.engine.policy.refuse_host_wide("pull")?;
    registry_allowed(app, &image)?;
    app.engine.require_up()?;
    // The pull rate limit is spent before any work, by `middleware::rate_limit`.
    Ok(image)
}

/// Whether the engine may be sent to `image`'s registry (pulls, recreates
/// with a pull, update checks): the allow-list when there is one, else any
/// registry but local and private addresses.
pub fn registry_allowed(app: &AppState, image: &ImageRef) -> Result<(), ApiError> {
    let allowed = &app.settings.pull_registries;
    if !allowed.is_empty() && !allowed.iter().any(|r| r.eq_ignore_ascii_case(&image.registry)) {
        return Err(ApiError::Forbidden(format!("registry {} is not in DOCKWARD_PULL_REGISTRIES", image.registry)));
    }
    if allowed.is_empty() {
        if let Some(why) = policy::unlisted_registry_refusal(&image.registry) {
            return Err(ApiError::Forbidden(format!(
                "registry {} is {why}: list it in DOCKWARD_PULL_REGISTRIES to pull from it",
                image.registry
            )));
        }
    }
    Ok(())
}

/// The image reference a container was created from (`Config.Image`), as a
/// tag or digest reference; `None` when it was created from an image id
/// (`sha256:…` or a prefix of its image's id), which has nothing to pull.
pub fn configured_ref(configured: &str, image_id: &str) -> Option<ImageRef> {
    let hex = configured.strip_prefix("sha256:").unwrap_or(configured);
    let is_id = configured.starts_with("sha256:")
        || (!hex.is_empty()
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
            && image_id.strip_prefix("sha256:").unwrap_or(image_id).starts_with(hex));
    if is_id {
        return None;
    }
    ImageRef::parse(configured).ok()
}

/// Pulls `image` (already checked), handing each progress line to
/// `progress`; answers the `done` line. Used by `pull` and `recreate`.
pub async fn run(
    app: &AppState,
    image: &ImageRef,
    progress: &(dyn Fn(PullEvent) + Send + Sync),
) -> Result<PullEvent, ApiError> {
    let opts = CreateImageOptions {
        from_image: Some(image.full_repository()),
        tag: Some(image.tag_or_digest().to_owned()),
        ..Default::default()
    };
    let client = app.engine.client();
    let started = std::time::Instant::now();
    let mut stream = client.create_image(Some(opts), None, None);
    let mut digest = None;
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| match ApiError::from(e) {
            ApiError::Docker(m) | ApiError::NotFound(m) => {
                // The engine's own words stay in the sidecar's log.
                tracing::warn!(image = %image, error = %m, "pull failed");
                ApiError::Docker(policy::pull_failure_summary(&m).to_owned())
            }
            other => other,
        })?;
        let status = info.status.unwrap_or_default();
        if let Some(d) = status.strip_prefix("Digest: ") {
            digest = Some(d.trim().to_owned());
        }
        let detail = info.progress_detail.as_ref();
        progress(PullEvent::Progress {
            status: crate::docker::convert::truncate(&status, 512),
            layer: info.id.map(|i| crate::docker::convert::truncate(&i, 128)),
            current: detail.and_then(|p| p.current).and_then(|v| u64::try_from(v).ok()),
            total: detail.and_then(|p| p.total).and_then(|v| u64::try_from(v).ok()),
        });
    }
    app.engine.metrics().docker_call("create_image", started.elapsed().as_secs_f64());
    let pulled = match &image.digest {
        Some(d) => format!("{}@{d}", image.full_repository()),
        None => format!("{}:{}", image.full_repository(), image.tag_or_digest()),
    };
    let inspected = app.engine.timed("inspect_image", client.inspect_image(&pulled)).await?;
    if digest.is_none() {
        let prefix = format!("{}@", image.familiar_repository());
        digest = inspected.repo_digests.iter().flatten().find_map(|d| d.strip_prefix(&prefix).map(str::to_owned));
    }
    Ok(PullEvent::Done { image: image.to_string(), digest, image_id: inspected.id })
}

#[cfg(test)]
mod tests {
    use super::configured_ref;

    #[test]
    fn image_ids_are_not_references() {
        let id = "sha256:3f2a1b9c0d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";
        assert!(configured_ref(id, id).is_none());
        assert!(configured_ref("3f2a1b9c", id).is_none(), "a prefix of its image's id");
        assert_eq!(
            configured_ref("nginx:1.27", id).map(|r| r.to_string()).as_deref(),
            Some("docker.io/library/nginx:1.27")
        );
        assert!(configured_ref("cafe", id).is_some(), "hex, but not its image's id: a name");
    }
}
