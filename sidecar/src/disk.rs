//! The disk-usage cache: volume sizes (the "database sizes" a dashboard
//! shows) and totals. The engine walks disks to compute them, so the answer
//! is cached (moka, `DOCKWARD_DISK_TTL`) and concurrent misses share one
//! computation.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::query_parameters::DataUsageOptions;
use moka::future::Cache;
use shared::{DiskReport, VolumeUsage};

use crate::docker::{Engine, Freshness};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::stats::now_ms;

#[derive(Clone)]
struct Computed {
    at: Instant,
    report: DiskReport,
}

pub struct DiskCache(Cache<(), Arc<Computed>>);

impl DiskCache {
    pub fn new(ttl: Duration) -> Self {
        Self(Cache::builder().max_capacity(1).time_to_live(ttl).build())
    }

    /// The cached report with its age, computing it on a miss.
    pub async fn get(&self, engine: &Engine, metrics: &Metrics) -> Result<DiskReport, ApiError> {
        let hit = self.0.contains_key(&());
        metrics.cache_lookup("disk", hit);
        let computed = self.0.try_get_with((), compute(engine)).await.map_err(|e| match &*e {
            ApiError::DockerUnavailable(p) => ApiError::DockerUnavailable(p.clone()),
            other => ApiError::Docker(other.to_string()),
        })?;
        let mut report = computed.report.clone();
        report.age_ms = computed.at.elapsed().as_millis().try_into().unwrap_or(u64::MAX);
        Ok(report)
    }
}

async fn compute(engine: &Engine) -> Result<Arc<Computed>, ApiError> {
    let df = engine.timed("df", engine.client().df(None::<DataUsageOptions>)).await?;
    let containers = engine.list(true, &[]).await?;
    // Volume → the in-scope containers that mount it, and whether any is protected.
    let mut users: HashMap<String, (Vec<String>, bool)> = HashMap::new();
    for c in &containers {
        let protected = match c.id.as_deref() {
            Some(id) => engine.is_protected(id, Freshness::Cached).await.unwrap_or(true),
            None => false,
        };
        for m in c.mounts.iter().flatten() {
            if let (Some(name), Some(id)) = (m.name.as_ref(), c.id.as_ref()) {
                let e = users.entry(name.clone()).or_default();
                e.0.push(id.clone());
                e.1 |= protected;
            }
        }
    }
    let scoped = engine.policy.scope_filter().is_some();
    let mut volumes: Vec<VolumeUsage> = df
        .volumes
        .unwrap_or_default()
        .into_iter()
        .filter(|v| !scoped || users.contains_key(&v.name) || engine.policy.in_scope(&v.labels))
        .map(|v| {
            let (containers, protected) = users.get(&v.name).cloned().unwrap_or_default();
            let usage = v.usage_data.as_ref();
            VolumeUsage {
                name: v.name,
                driver: v.driver,
                size: usage.map(|u| u.size).filter(|s| *s >= 0),
                ref_count: usage.map(|u| u.ref_count).filter(|s| *s >= 0),
                containers,
                protected: protected || v.labels.get(shared::PROTECT_LABEL).is_some_and(|l| l == "true"),
                labels: v.labels.into_iter().collect::<BTreeMap<_, _>>(),
            }
        })
        .collect();
    volumes.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.name.cmp(&b.name)));
    let report = DiskReport {
        volumes,
        images_bytes: df.images.iter().flatten().map(|i| i.size.max(0)).sum(),
        containers_bytes: df.containers.iter().flatten().filter_map(|c| c.size_rw).map(|s| s.max(0)).sum(),
        build_cache_bytes: df.build_cache.iter().flatten().filter_map(|b| b.size).map(|s| s.max(0)).sum(),
        computed_at_ms: now_ms(),
        age_ms: 0,
    };
    Ok(Arc::new(Computed { at: Instant::now(), report }))
}
