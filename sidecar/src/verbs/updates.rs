//! `GET /v1/updates`: for each running container, whether its image tag has
//! a newer digest in its registry.
//!
//! The registry is asked through the engine's distribution endpoint (the
//! engine's own registry configuration applies; the sidecar holds no
//! registry credentials), once per distinct image reference per check
//! interval ([`UpdateChecker`]): concurrent askers share one request, at most
//! `--update-check-concurrency` are in flight, and requests to one registry
//! are spaced by `--update-registry-pace`. The answer compares the registry's
//! digest with the digests of the image the container *runs* (not the one
//! its tag names now), so a tag pulled but not yet recreated still shows
//! as an update.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::Json;
use moka::future::Cache;
use moka::Expiry;
use shared::{ContainerUpdate, ImageRef, UpdateStatus, UpdatesReport};
use tokio::sync::Semaphore;

use crate::docker::Freshness;
use crate::error::ApiError;
use crate::extract::NoQuery;
use crate::policy;
use crate::state::{App, AppState};

/// How long a failed check is remembered before the registry is asked again.
pub const ERROR_RETRY: Duration = Duration::from_secs(15 * 60);
/// How long one `GET /v1/updates` waits for registry answers; the rest are
/// `pending` and keep being checked in the background.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// Longest one registry check may take (a hung registry holds no permit longer).
const CHECK_WITHIN: Duration = Duration::from_secs(30);
/// Most distinct image references remembered.
const CACHE_MAX: u64 = 10_000;

/// One registry answer for an image reference.
#[derive(Debug, Clone)]
pub struct RemoteDigest {
    pub digest: Result<String, String>,
    /// Unix seconds.
    pub checked_at: i64,
}

struct ByOutcome {
    ok: Duration,
}

impl Expiry<String, Arc<RemoteDigest>> for ByOutcome {
    fn expire_after_create(&self, _: &String, v: &Arc<RemoteDigest>, _: std::time::Instant) -> Option<Duration> {
        Some(if v.digest.is_ok() { self.ok } else { ERROR_RETRY.min(self.ok) })
    }
}

/// The registry answers, cached, bounded and paced.
pub struct UpdateChecker {
    cache: Cache<String, Arc<RemoteDigest>>,
    interval: Duration,
    in_flight: Arc<Semaphore>,
    pace: Duration,
    /// The earliest time the next request to each registry may start.
    next_slot: Mutex<HashMap<String, Instant>>,
}

impl UpdateChecker {
    pub fn new(interval: Duration, concurrency: u32, pace: Duration) -> Self {
        Self {
            cache: Cache::builder().max_capacity(CACHE_MAX).expire_after(ByOutcome { ok: interval }).build(),
            interval,
            in_flight: Arc::new(Semaphore::new(concurrency.max(1) as usize)),
            pace,
            next_slot: Mutex::new(HashMap::new()),
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The cached answer for `image`, if there is one.
    pub async fn cached(&self, image: &ImageRef) -> Option<Arc<RemoteDigest>> {
        self.cache.get(&image.to_string()).await
    }

    /// Waits for this registry's next free slot (spacing requests by the pace).
    async fn paced(&self, registry: &str) {
        let wait = {
            let mut slots = self.next_slot.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if slots.len() > 1_000 {
                slots.retain(|_, t| *t > now);
            }
            let slot = slots.get(registry).copied().filter(|t| *t > now).unwrap_or(now);
            slots.insert(registry.to_owned(), slot + self.pace);
            slot - now
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// The registry's digest for `image` (a tag), from the cache or asked
    /// once for everyone waiting on it. An engine that cannot be reached is
    /// said, not remembered.
    pub async fn remote(&self, app: &AppState, image: &ImageRef) -> Arc<RemoteDigest> {
        let key = image.to_string();
        let unreachable = std::sync::atomic::AtomicBool::new(false);
        let got = self
            .cache
            .optionally_get_with(key.clone(), async {
                let _permit = self.in_flight.acquire().await;
                self.paced(&image.registry).await;
                let client = app.engine.client();
                let asked = tokio::time::timeout(
                    CHECK_WITHIN,
                    app.engine.timed("distribution_inspect", client.inspect_registry_image(&key, None)),
                )
                .await
                .unwrap_or_else(|_| {
                    Err(ApiError::Docker(format!("the registry did not answer within {} s", CHECK_WITHIN.as_secs())))
                });
                let digest = match asked {
                    Ok(d) => d.descriptor.digest.ok_or_else(|| "the registry answered without a digest".to_owned()),
                    Err(ApiError::Docker(m) | ApiError::NotFound(m)) => {
                        // The engine's own words stay in the sidecar's log (as for pulls).
                        tracing::info!(image = %key, error = %m, "update check failed");
                        Err(policy::pull_failure_summary(&m).to_owned())
                    }
                    Err(e) => {
                        unreachable.store(true, std::sync::atomic::Ordering::Relaxed);
                        Err(e.to_string())
                    }
                };
                (!unreachable.load(std::sync::atomic::Ordering::Relaxed))
                    .then(|| Arc::new(RemoteDigest { digest, checked_at: now_unix() }))
            })
            .await;
        got.unwrap_or_else(|| {
            let why = "the Docker engine could not be asked; asked again at the next look";
            Arc::new(RemoteDigest { digest: Err(why.into()), checked_at: now_unix() })
        })
    }
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

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
                    app2.updates.remote(&app2, &image).await
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
