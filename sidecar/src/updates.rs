//! Registry digests for `GET /v1/updates`: asked through the engine's
//! distribution endpoint (the engine's own registry configuration applies;
//! the sidecar holds no registry credentials), once per distinct image
//! reference per check interval: concurrent askers share one request, at
//! most `--update-check-concurrency` are in flight, requests to one registry
//! are spaced by `--update-registry-pace`, each takes at most 30 s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::Expiry;
use shared::ImageRef;
use tokio::sync::Semaphore;

use crate::docker::Engine;
use crate::error::ApiError;
use crate::policy;

/// How long a failed check is remembered before the registry is asked again.
pub const ERROR_RETRY: Duration = Duration::from_secs(15 * 60);
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
    pub async fn remote(&self, engine: &Engine, image: &ImageRef) -> Arc<RemoteDigest> {
        let key = image.to_string();
        let unreachable = std::sync::atomic::AtomicBool::new(false);
        let got = self
            .cache
            .optionally_get_with(key.clone(), async {
                let _permit = self.in_flight.acquire().await;
                self.paced(&image.registry).await;
                let client = engine.client();
                let asked = tokio::time::timeout(
                    CHECK_WITHIN,
                    engine.timed("distribution_inspect", client.inspect_registry_image(&key, None)),
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
