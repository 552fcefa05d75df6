//! The only module that talks to the Docker Engine. Every call is built here
//! from validated, typed arguments; nothing a client sent is passed through.

pub mod convert;
pub mod diagnose;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bollard::models::{ContainerInspectResponse, ContainerSummary as DockerSummary};
use bollard::query_parameters::{InspectContainerOptions, ListContainersOptions, ListNetworksOptions};
use bollard::Docker;
use moka::future::Cache;
use shared::{ContainerRef, EngineProblem};

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::policy::Policy;

/// How long an image's tags and digests are reused when deciding protection
/// for the list, inspect and the disk report (restart and prune look afresh).
pub const IMAGE_NAMES_TTL: Duration = Duration::from_secs(5);

/// How long the networks' configured subnets are reused (asked only when a
/// container's endpoint has no address, e.g. while it is stopped).
pub const NETWORK_SUBNETS_TTL: Duration = Duration::from_secs(5);

/// A container the caller named, resolved to exactly one full id.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub id: String,
    pub name: String,
    pub image: String,
    pub labels: HashMap<String, String>,
    pub protected: bool,
    /// The engine's list row (status text and the like).
    pub row: DockerSummary,
}

pub struct Engine {
    client: RwLock<Docker>,
    host: String,
    up: AtomicBool,
    negotiated: AtomicBool,
    /// Why the engine cannot be used, while it cannot (diagnose.rs).
    problem: RwLock<Option<Arc<EngineProblem>>>,
    pub policy: Arc<Policy>,
    metrics: Arc<Metrics>,
    /// Inspect results by full id; dropped on lifecycle events, short TTL as a backstop.
    inspect_cache: Cache<String, Arc<ContainerInspectResponse>>,
    /// An image's tags and digests by image id, for protection (briefly
    /// cached so the list stays fast; verbs that act look afresh).
    image_names: Cache<String, Arc<Vec<String>>>,
    /// The networks' configured subnets by network name (one entry).
    network_subnets: Cache<(), Arc<HashMap<String, convert::ConfiguredSubnets>>>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot use DOCKER_HOST {host:?}: {source}")]
pub struct ConnectError {
    host: String,
    source: bollard::errors::Error,
}

impl Engine {
    pub fn new(host: &str, policy: Arc<Policy>, metrics: Arc<Metrics>) -> Result<Self, ConnectError> {
        let client = connect(host)?;
        Ok(Self {
            client: RwLock::new(client),
            host: host.to_owned(),
            up: AtomicBool::new(false),
            negotiated: AtomicBool::new(false),
            problem: RwLock::new(None),
            policy,
            metrics,
            inspect_cache: Cache::builder().max_capacity(10_000).time_to_live(Duration::from_secs(30)).build(),
            image_names: Cache::builder().max_capacity(10_000).time_to_live(IMAGE_NAMES_TTL).build(),
            network_subnets: Cache::builder().max_capacity(1).time_to_live(NETWORK_SUBNETS_TTL).build(),
        })
    }

    pub fn client(&self) -> Docker {
        self.client.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Fails fast with 503 while the engine is known to be down.
    pub fn require_up(&self) -> Result<(), ApiError> {
        if self.is_up() {
            Ok(())
        } else {
            Err(self.unavailable())
        }
    }

    /// Why the engine cannot be used now: the last probe's diagnosis, or a fresh one.
    pub fn problem(&self) -> Option<Arc<EngineProblem>> {
        self.problem.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The 503 of a call that could not reach the engine, with the reason and
    /// the fix as the probe last found them (the probe runs each second).
    pub fn unavailable(&self) -> ApiError {
        ApiError::DockerUnavailable(self.problem())
    }

    fn set_problem(&self, problem: Option<EngineProblem>) {
        let mut slot = self.problem.write().unwrap_or_else(|e| e.into_inner());
        match (&problem, slot.as_deref()) {
            (Some(p), old) if old != Some(p) => {
                tracing::error!(kind = ?p.kind, fix = %p.fix, "the Docker engine cannot be used: {}", p.detail)
            }
            (None, Some(_)) => tracing::info!("the Docker engine is usable again"),
            _ => {}
        }
        *slot = problem.map(Arc::new);
    }

    /// One health probe: ping, and negotiate the API version the first time
    /// the engine answers (and again after it comes back), refusing engines
    /// older than [`shared::engine::MIN_API_VERSION`]. Records the diagnosis.
    pub async fn probe(&self) -> bool {
        // Not through `timed`: the diagnosis wants the client's own error, not our 503.
        let start = Instant::now();
        let ping = self.client().ping().await;
        self.metrics.docker_call("ping", start.elapsed().as_secs_f64());
        let mut problem = None;
        if let Err(e) = ping {
            // Looks at the socket (a stat and a connect): off the async workers.
            let (host, error) = (self.host.clone(), e.to_string());
            problem = Some(
                tokio::task::spawn_blocking(move || diagnose::diagnose(&host, &error))
                    .await
                    .unwrap_or_else(|e| diagnose::diagnose("", &format!("the diagnosis failed: {e}"))),
            );
        } else if !self.negotiated.load(Ordering::Relaxed) {
            match self.negotiate().await {
                Ok(()) => self.negotiated.store(true, Ordering::Relaxed),
                Err(p) => problem = Some(p),
            }
        }
        let ok = problem.is_none();
        let was = self.up.swap(ok && self.negotiated.load(Ordering::Relaxed), Ordering::Relaxed);
        if !ok {
            if was {
                tracing::warn!("the Docker engine is unreachable; serving cached data, refusing mutations");
            }
            // Negotiate again when it returns: it may be another version.
            self.negotiated.store(false, Ordering::Relaxed);
        }
        self.set_problem(problem);
        self.metrics.docker_up.set(i64::from(self.is_up()));
        self.is_up()
    }

    async fn negotiate(&self) -> Result<(), EngineProblem> {
        use shared::EngineProblemKind::Unreachable;
        let fresh =
            connect(&self.host).map_err(|e| EngineProblem::new(Unreachable, e.to_string(), "check DOCKER_HOST"))?;
        let c = fresh.negotiate_version().await.map_err(|e| {
            EngineProblem::new(Unreachable, format!("API version negotiation failed: {e}"), "check the engine's log")
        })?;
        let v = c.version().await.map_err(|e| {
            EngineProblem::new(Unreachable, format!("the engine's /version failed: {e}"), "check the engine's log")
        })?;
        let api = v.api_version.clone().unwrap_or_default();
        if let Some(p) = shared::engine::api_version_problem(&api, v.version.as_deref()) {
            return Err(p);
        }
        tracing::info!(api = %c.client_version(), engine = v.version.as_deref().unwrap_or("?"), "connected to the Docker engine");
        *self.client.write().unwrap_or_else(|e| e.into_inner()) = c;
        Ok(())
    }

    /// Runs an engine call, recording its latency, and marks the engine down
    /// when the call could not reach it.
    pub async fn timed<T>(
        &self,
        call: &'static str,
        fut: impl std::future::Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, ApiError> {
        // An engine too old answers, but not in the shapes we read: only the probe may call it.
        if call != "ping" && self.problem().is_some_and(|p| p.kind == shared::EngineProblemKind::ApiTooOld) {
            return Err(self.unavailable());
        }
        let start = Instant::now();
        let r = fut.await;
        self.metrics.docker_call(call, start.elapsed().as_secs_f64());
        r.map_err(|e| {
            let e = ApiError::from(e);
            if matches!(e, ApiError::DockerUnavailable(_)) {
                self.up.store(false, Ordering::Relaxed);
                self.negotiated.store(false, Ordering::Relaxed);
                self.metrics.docker_up.set(0);
                return self.unavailable();
            }
            e
        })
    }

    fn scope_filters(&self, extra: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
        let mut f: HashMap<String, Vec<String>> = HashMap::new();
        if let Some(s) = self.policy.scope_filter() {
            f.entry("label".into()).or_default().push(s);
        }
        for (k, v) in extra {
            f.entry((*k).into()).or_default().push((*v).into());
        }
        f
    }

    /// Lists containers in scope (`all` includes stopped ones).
    pub async fn list(&self, all: bool, extra_filters: &[(&str, &str)]) -> Result<Vec<DockerSummary>, ApiError> {
        let opts =
            ListContainersOptions { all, filters: Some(self.scope_filters(extra_filters)), ..Default::default() };
        self.timed("list_containers", self.client().list_containers(Some(opts))).await
    }

    /// Inspects a container by full id, through the cache.
    pub async fn inspect(&self, id: &str) -> Result<Arc<ContainerInspectResponse>, ApiError> {
        if let Some(hit) = self.inspect_cache.get(id).await {
            self.metrics.cache_lookup("inspect", true);
            return Ok(hit);
        }
        self.metrics.cache_lookup("inspect", false);
        let fresh = Arc::new(self.inspect_uncached(id).await?);
        self.inspect_cache.insert(id.to_owned(), fresh.clone()).await;
        Ok(fresh)
    }

    pub async fn inspect_uncached(&self, id: &str) -> Result<ContainerInspectResponse, ApiError> {
        self.timed("inspect_container", self.client().inspect_container(id, None::<InspectContainerOptions>)).await
    }

    /// Fills in the subnet of every attachment that has none (a stopped or
    /// created container's endpoint has no address) from its network's IPAM
    /// configuration: `GET /networks`, briefly cached, and only when needed.
    /// The subnets are a view's detail: when the engine cannot say, they stay
    /// unknown rather than fail the view.
    pub async fn fill_subnets(&self, containers: &mut [shared::ContainerSummary]) {
        if !convert::lacks_subnets(containers) {
            return;
        }
        let configured = match self.network_subnets.get(&()).await {
            Some(hit) => {
                self.metrics.cache_lookup("network_subnets", true);
                hit
            }
            None => {
                self.metrics.cache_lookup("network_subnets", false);
                match self.timed("list_networks", self.client().list_networks(None::<ListNetworksOptions>)).await {
                    Ok(nets) => {
                        let fresh = Arc::new(convert::configured_subnets(&nets));
                        self.network_subnets.insert((), fresh.clone()).await;
                        fresh
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot list networks; subnets of unaddressed endpoints stay unknown");
                        return;
                    }
                }
            }
        };
        convert::fill_subnets(containers, &configured);
    }

    /// Drops a container's cached inspect result (after a lifecycle event or a verb).
    pub async fn invalidate(&self, id: &str) {
        self.inspect_cache.invalidate(id).await;
    }

    /// Resolves a reference (name, full id or unique id prefix) to exactly one
    /// container in scope. Ambiguous prefixes are refused.
    pub async fn resolve(&self, r: &ContainerRef) -> Result<Resolved, ApiError> {
        let all = self.list(true, &[]).await?;
        let c = match_ref(&all, r)?;
        let labels = c.labels.clone().unwrap_or_default();
        // The engine filtered by the scope label already; this is the second lock.
        if !self.policy.in_scope(&labels) {
            return Err(ApiError::NotFound(format!("no container {:?}", r.as_str())));
        }
        let id = c.id.clone().unwrap_or_default();
        let image = c.image.clone().unwrap_or_default();
        let protected = self.is_protected(&id, Freshness::Fresh).await?;
        Ok(Resolved { id, name: convert::summary_name(c), protected, image, labels, row: c.clone() })
    }

    /// Whether a container is protected, by its full id: the one path every
    /// verb and view takes (see [`Engine::protection`]).
    pub async fn is_protected(&self, id: &str, fresh: Freshness) -> Result<bool, ApiError> {
        let ins = self.inspect(id).await?;
        self.protection(&ins, fresh).await
    }

    /// Protection is decided by [`Policy::is_protected`] from the container's
    /// labels and the image it was *created* with (inspect's `Config.Image`,
    /// not the list's `Image`, which turns into a bare id once the tag moves,
    /// say after a pull of a newer `postgres:16`). When those do not decide
    /// (the reference is an image id, `sha256:…` or short, or a name that does
    /// not match), the image's `RepoTags` and `RepoDigests` are asked.
    pub async fn protection(&self, ins: &ContainerInspectResponse, fresh: Freshness) -> Result<bool, ApiError> {
        let config = ins.config.as_ref();
        let labels = config.and_then(|c| c.labels.clone()).unwrap_or_default();
        let configured = config.and_then(|c| c.image.clone()).unwrap_or_default();
        if let Some(decided) = self.policy.protection_from_container(&configured, &labels) {
            return Ok(decided);
        }
        let image_id = ins.image.clone().filter(|i| !i.is_empty()).unwrap_or(configured.clone());
        let names = self.image_names(&image_id, fresh).await?;
        Ok(self.policy.is_protected(&configured, &labels, &names))
    }

    /// An image's tags and digests; none when the engine no longer has it.
    pub async fn image_names(&self, image_id: &str, fresh: Freshness) -> Result<Arc<Vec<String>>, ApiError> {
        if fresh == Freshness::Cached {
            if let Some(hit) = self.image_names.get(image_id).await {
                self.metrics.cache_lookup("image_names", true);
                return Ok(hit);
            }
            self.metrics.cache_lookup("image_names", false);
        }
        let names = match self.timed("inspect_image", self.client().inspect_image(image_id)).await {
            Ok(img) => img.repo_tags.into_iter().flatten().chain(img.repo_digests.into_iter().flatten()).collect(),
            Err(ApiError::NotFound(_)) => Vec::new(),
            Err(e) => return Err(e),
        };
        let names = Arc::new(names);
        self.image_names.insert(image_id.to_owned(), names.clone()).await;
        Ok(names)
    }
}

/// Whether a protection decision may reuse an image's recently read tags
/// ([`IMAGE_NAMES_TTL`]): views may, verbs that act on a container do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Cached,
    Fresh,
}

/// Picks the one container a reference names: an exact id, then an exact
/// name, then a unique id prefix. More than one match is refused.
pub fn match_ref<'a>(all: &'a [DockerSummary], r: &ContainerRef) -> Result<&'a DockerSummary, ApiError> {
    let want = r.as_str();
    if let Some(c) = all.iter().find(|c| c.id.as_deref() == Some(want)) {
        return Ok(c);
    }
    if let Some(c) = all.iter().find(|c| c.names.iter().flatten().any(|n| n.strip_prefix('/').unwrap_or(n) == want)) {
        return Ok(c);
    }
    let found: Vec<&DockerSummary> = if r.could_be_id() {
        all.iter().filter(|c| c.id.as_deref().is_some_and(|id| id.starts_with(want))).collect()
    } else {
        Vec::new()
    };
    match found.as_slice() {
        [] => Err(ApiError::NotFound(format!("no container {want:?}"))),
        [c] => Ok(c),
        many => Err(ApiError::Ambiguous(format!(
            "{want:?} matches {} containers; use more of the id or the name",
            many.len()
        ))),
    }
}

fn connect(host: &str) -> Result<Docker, ConnectError> {
    // Longer than the longest restart timeout a client may ask for, plus the start.
    const TIMEOUT_SECS: u64 = shared::limits::RESTART_TIMEOUT_MAX + 120;
    let r = if let Some(path) = host.strip_prefix("unix://") {
        Docker::connect_with_unix(path, TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        Docker::connect_with_http(host, TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
    } else {
        Err(bollard::errors::Error::UnsupportedURISchemeError { uri: "use unix:///path or tcp://host:port".into() })
    };
    r.map_err(|source| ConnectError { host: host.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, name: &str) -> DockerSummary {
        DockerSummary { id: Some(id.into()), names: Some(vec![format!("/{name}")]), ..Default::default() }
    }

    #[test]
    fn resolves_exactly_one_or_refuses() {
        let all = [row("abc111", "web"), row("abc222", "db"), row("def333", "abc")];
        let r = |s: &str| ContainerRef::parse(s).unwrap();
        assert_eq!(match_ref(&all, &r("web")).unwrap().id.as_deref(), Some("abc111"));
        assert_eq!(match_ref(&all, &r("abc222")).unwrap().id.as_deref(), Some("abc222"));
        assert_eq!(match_ref(&all, &r("abc1")).unwrap().id.as_deref(), Some("abc111"));
        // An exact name wins over an id prefix.
        assert_eq!(match_ref(&all, &r("abc")).unwrap().id.as_deref(), Some("def333"));
        assert!(matches!(match_ref(&all, &r("ab")), Err(ApiError::Ambiguous(_))));
        assert!(matches!(match_ref(&all, &r("zzz")), Err(ApiError::NotFound(_))));
        assert!(matches!(match_ref(&all, &r("we")), Err(ApiError::NotFound(_))), "no name prefixes");
    }
}
