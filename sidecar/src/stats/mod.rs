//! The stats cache: one background refresher takes a round of every running
//! container's stats once per window and publishes it as the snapshot every
//! client is served. However many clients ask, a round is taken once.
//!
//! Where a round's figures come from is the [`Source`]: the kernel's counters
//! ([`kernel`], [`cgroup`]: the engine is asked nothing but where a new
//! container's cgroup is), or the engine's one-shot stats per container. The
//! window is short while someone asks for stats and long when nobody has for
//! a while ([`StatsOptions`]). Rounds also feed a per-container ring buffer
//! for sparklines.

pub mod calc;
pub mod cgroup;
pub mod kernel;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bollard::query_parameters::StatsOptions as EngineStatsOptions;
use futures_util::StreamExt;
use shared::{HistoryPoint, StatsHistory, StatsSample, StatsSource, StatsSourceReport};
use tokio::sync::{broadcast, Notify};

use crate::docker::Engine;
use crate::events::HubMessage;
use crate::metrics::Metrics;
use calc::CpuReading;
use kernel::{Kernel, Reader, Row};

/// Longest one container's stats call may take before the round moves on.
const PER_CONTAINER_TIMEOUT: Duration = Duration::from_secs(5);
/// The engine answers a stats call at its collector's next one-second tick:
/// with the engine as the source, a window is at least this.
pub const ENGINE_MIN_WINDOW: Duration = Duration::from_secs(2);
/// Running containers are listed again at least this often (and at once
/// after an engine event).
const RELIST_EVERY: Duration = Duration::from_secs(30);

/// `--stats-source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceMode {
    /// The kernel's counters when the cgroup tree is readable, else the engine.
    Auto,
    /// The kernel's counters (containers whose cgroup cannot be read still come from the engine).
    Cgroup,
    /// The engine's stats API.
    Engine,
}

/// The refresher's settings (`config.rs`).
#[derive(Debug, Clone)]
pub struct StatsOptions {
    /// The window while someone asks for stats.
    pub window: Duration,
    /// The window when nobody has for `idle_after`.
    pub idle_window: Duration,
    pub idle_after: Duration,
    /// History kept per container, one point per `history_step`.
    pub history: Duration,
    pub history_step: Duration,
    /// Engine stats calls in flight at once.
    pub concurrency: usize,
    pub mode: SourceMode,
    pub cgroup_root: PathBuf,
    /// The host's `/proc`, for network namespace counters.
    pub proc_root: Option<PathBuf>,
    /// How often network counters are asked of the engine when `/proc` is not given.
    pub net_interval: Duration,
}

impl StatsOptions {
    /// Defaults for tests.
    #[cfg(test)]
    pub fn engine_only(window: Duration) -> Self {
        Self {
            window,
            idle_window: window,
            idle_after: Duration::from_secs(60),
            history: Duration::from_secs(60),
            history_step: window,
            concurrency: 4,
            mode: SourceMode::Engine,
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            proc_root: None,
            net_interval: Duration::from_secs(30),
        }
    }
}

struct Round {
    taken_at: Instant,
    taken_at_ms: i64,
    stale: bool,
    samples: Arc<Vec<StatsSample>>,
    /// `samples` as a JSON array, serialised once per round: a request only
    /// splices it into the envelope with the age.
    samples_json: bytes::Bytes,
    /// The round's [`StatsSourceReport`] as JSON.
    source_json: bytes::Bytes,
    /// The window in force when it was published: it is fresh for twice that.
    window: Duration,
    by_id: HashMap<String, usize>,
}

pub struct StatsCache {
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    opts: StatsOptions,
    /// The kernel source, when the mode and the cgroup tree allow it.
    kernel: Option<Kernel>,
    /// Why the kernel source is not in use, when it is not.
    no_kernel: Option<String>,
    history_len: usize,
    latest: RwLock<Arc<Round>>,
    report: RwLock<StatsSourceReport>,
    readings: Mutex<HashMap<String, CpuReading>>,
    history: Mutex<HashMap<String, VecDeque<HistoryPoint>>>,
    running: Mutex<Option<(Instant, Arc<Vec<Row>>)>>,
    /// An engine event came since the last list.
    dirty: AtomicBool,
    /// Unix ms of the last request for stats.
    last_demand_ms: AtomicI64,
    wake: Notify,
    /// The round's own thread (kernel.rs).
    reader: Reader,
}

pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl StatsCache {
    pub fn new(engine: Arc<Engine>, metrics: Arc<Metrics>, opts: StatsOptions) -> Self {
        let step = opts.history_step.max(Duration::from_millis(100));
        let history_len = (opts.history.as_millis() / step.as_millis()).max(1) as usize + 1;
        let (kernel, no_kernel) = match opts.mode {
            SourceMode::Engine => (None, Some("engine: chosen by DOCKWARD_STATS_SOURCE=engine".to_owned())),
            SourceMode::Auto | SourceMode::Cgroup => match cgroup::Hierarchy::detect(&opts.cgroup_root) {
                Ok(h) => {
                    let proc_root = opts.proc_root.clone().filter(|p| {
                        let ok = p.join("self/net/dev").is_file();
                        if !ok {
                            tracing::warn!(proc = %p.display(), "DOCKWARD_PROC_ROOT is not a readable /proc; network counters come from the engine");
                        }
                        ok
                    });
                    (Some(Kernel::new(h, proc_root)), None)
                }
                Err(why) => {
                    tracing::warn!(root = %opts.cgroup_root.display(), "stats come from the engine: {why}");
                    (None, Some(format!(
                        "engine: the cgroup root is not a readable cgroup tree (mount the host's /sys/fs/cgroup read-only and set DOCKWARD_CGROUP_ROOT){}",
                        if opts.mode == SourceMode::Cgroup { ", though DOCKWARD_STATS_SOURCE=cgroup" } else { "" }
                    )))
                }
            },
        };
        let empty = Round {
            taken_at: Instant::now(),
            taken_at_ms: 0,
            stale: true,
            samples: Arc::default(),
            samples_json: bytes::Bytes::from_static(b"[]"),
            source_json: bytes::Bytes::from_static(b"null"),
            window: opts.window,
            by_id: HashMap::new(),
        };
        let report = match &kernel {
            Some(k) => StatsSourceReport {
                source: StatsSource::Kernel,
                reason: format!("{} (no round yet)", kernel_words(opts.mode, k)),
                network: if k.net_from_proc() { StatsSource::Kernel } else { StatsSource::Engine },
                window_ms: 0,
                engine_fallbacks: 0,
            },
            None => StatsSourceReport {
                source: StatsSource::Engine,
                reason: no_kernel.clone().unwrap_or_default(),
                network: StatsSource::Engine,
                window_ms: 0,
                engine_fallbacks: 0,
            },
        };
        Self {
            engine,
            metrics,
            kernel,
            no_kernel,
            history_len,
            latest: RwLock::new(Arc::new(empty)),
            report: RwLock::new(report),
            readings: Mutex::default(),
            history: Mutex::default(),
            running: Mutex::default(),
            dirty: AtomicBool::new(true),
            last_demand_ms: AtomicI64::new(0),
            wake: Notify::new(),
            reader: Reader::start(),
            opts,
        }
    }

    fn latest(&self) -> Arc<Round> {
        self.latest.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Someone asked for stats: the short window applies (at once, when it was idle).
    pub fn demand(&self) {
        let now = now_ms();
        let before = self.last_demand_ms.swap(now, Ordering::Relaxed);
        if now.saturating_sub(before) > self.opts.idle_after.as_millis() as i64 {
            self.wake.notify_one();
        }
    }

    /// Whether nobody has asked for stats for `idle_after`.
    fn idle(&self) -> bool {
        let since = now_ms().saturating_sub(self.last_demand_ms.load(Ordering::Relaxed));
        since > self.opts.idle_after.as_millis() as i64
    }

    /// The window in effect now.
    pub fn window(&self) -> Duration {
        let active = if self.kernel.is_some() { self.opts.window } else { self.opts.window.max(ENGINE_MIN_WINDOW) };
        if self.idle() {
            self.opts.idle_window.max(active)
        } else {
            active
        }
    }

    /// Where the figures come from now, and why.
    pub fn source_report(&self) -> StatsSourceReport {
        let mut r = self.report.read().unwrap_or_else(|e| e.into_inner()).clone();
        r.window_ms = self.window().as_millis() as u64;
        r
    }

    /// The snapshot served to clients, as the JSON of a [`shared::StatsSnapshot`]
    /// built without re-serialising the samples: what `GET /v1/stats` sends.
    /// Never waits for the engine. (Tests read it whole; the route sends the parts.)
    #[cfg(test)]
    pub fn snapshot_json(&self) -> bytes::Bytes {
        let mut body = bytes::BytesMut::new();
        for part in self.snapshot_parts().0 {
            body.extend_from_slice(&part);
        }
        body.freeze()
    }

    /// [`Self::snapshot_json`] as the parts it is made of: the round's
    /// serialised samples are sent as they are, never copied per request (a
    /// thousand containers' are a quarter of a megabyte).
    pub fn snapshot_parts(&self) -> SnapshotBody {
        let r = self.latest();
        let fresh = !r.stale && r.taken_at.elapsed() <= r.window * 2;
        self.metrics.cache_lookup("stats", fresh);
        let age: u64 = r.taken_at.elapsed().as_millis().try_into().unwrap_or(u64::MAX);
        let head = format!(r#"{{"taken_at_ms":{},"age_ms":{age},"stale":{},"source":"#, r.taken_at_ms, !fresh);
        SnapshotBody(
            [
                bytes::Bytes::from(head),
                r.source_json.clone(),
                bytes::Bytes::from_static(b",\"containers\":"),
                r.samples_json.clone(),
                bytes::Bytes::from_static(b"}"),
            ]
            .into(),
        )
    }

    /// The latest round's `ETag`: a new one per round published.
    pub fn round_tag(&self) -> String {
        let r = self.latest();
        format!("\"{}-{}\"", r.taken_at_ms, u8::from(r.stale))
    }

    /// The latest sample of one container, if it was running in the last round.
    pub fn sample(&self, id: &str) -> Option<StatsSample> {
        let r = self.latest();
        r.by_id.get(id).and_then(|&i| r.samples.get(i)).cloned()
    }

    pub fn history(&self, id: &str, window: Duration) -> StatsHistory {
        let cutoff = now_ms() - window.as_millis() as i64;
        let h = lock(&self.history);
        let points: Vec<HistoryPoint> =
            h.get(id).map(|q| q.iter().filter(|p| p.time_ms >= cutoff).copied().collect()).unwrap_or_default();
        StatsHistory {
            id: id.to_owned(),
            interval_ms: self.opts.history_step.as_millis() as u64,
            memory_limit_bytes: self.sample(id).map(|s| s.memory_limit_bytes).unwrap_or(0),
            points,
        }
    }

    /// Runs forever: one round per window. A round starts early by the
    /// longest of the last few rounds (plus a margin), so a new snapshot is
    /// *published* at least once per window and the one served is never older
    /// than the window. `events` (the engine's, fanned out) say when to list
    /// again and which containers' cgroups to locate again.
    pub async fn run(self: Arc<Self>, mut events: broadcast::Receiver<HubMessage>) {
        const MARGIN: Duration = Duration::from_millis(100);
        if self.kernel.as_ref().is_some_and(|k| !k.net_from_proc()) {
            tokio::spawn(self.clone().net_loop());
        }
        let mut recent: VecDeque<Duration> = VecDeque::with_capacity(8);
        loop {
            self.take_events(&mut events);
            let start = Instant::now();
            self.refresh().await;
            if recent.len() == 8 {
                recent.pop_front();
            }
            recent.push_back(start.elapsed());
            let window = self.window();
            self.metrics.stats_window_seconds.set(window.as_secs_f64());
            let longest = recent.iter().max().copied().unwrap_or_default();
            let lead = (longest + MARGIN).min(window * 3 / 4);
            tokio::select! {
                _ = tokio::time::sleep(window.saturating_sub(lead)) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    fn take_events(&self, events: &mut broadcast::Receiver<HubMessage>) {
        loop {
            match events.try_recv() {
                Ok(HubMessage::Event(ev)) => {
                    self.dirty.store(true, Ordering::Relaxed);
                    if let Some(k) = &self.kernel {
                        if matches!(ev.action.as_str(), "start" | "restart" | "die" | "destroy" | "update") {
                            k.forget(&ev.id);
                        }
                    }
                }
                Ok(HubMessage::Resync) | Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    self.dirty.store(true, Ordering::Relaxed);
                    if let Some(k) = &self.kernel {
                        k.forget_all();
                    }
                }
                Err(_) => return,
            }
        }
    }

    /// The running containers in scope: listed again after an engine event,
    /// and at least every [`RELIST_EVERY`].
    async fn running(&self) -> Option<Arc<Vec<Row>>> {
        let cached = lock(&self.running).clone();
        let dirty = self.dirty.swap(false, Ordering::Relaxed);
        if let Some((at, rows)) = cached {
            if !dirty && at.elapsed() < RELIST_EVERY {
                return Some(rows);
            }
        }
        match self.engine.list(false, &[]).await {
            Ok(list) => {
                let rows: Arc<Vec<Row>> = Arc::new(
                    list.into_iter()
                        .filter_map(|c| {
                            let network_mode = c.host_config.and_then(|h| h.network_mode).unwrap_or_default();
                            Some(Row { id: c.id?, network_mode })
                        })
                        .collect(),
                );
                *lock(&self.running) = Some((Instant::now(), rows.clone()));
                Some(rows)
            }
            Err(e) => {
                tracing::debug!(error = %e, "stats round: listing failed");
                self.dirty.store(true, Ordering::Relaxed);
                None
            }
        }
    }

    /// One round: the running containers' figures from the source, published.
    /// On failure the last round stays, marked stale.
    pub async fn refresh(&self) {
        if !self.engine.is_up() {
            self.mark_stale();
            return;
        }
        let Some(rows) = self.running().await else {
            self.mark_stale();
            return;
        };
        let (samples, report) = match &self.kernel {
            None => {
                let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
                let reason = self.no_kernel.clone().unwrap_or_default();
                (self.engine_samples(ids).await, self.report_of(StatsSource::Engine, reason, 0))
            }
            Some(k) => {
                let round = k.round(&self.engine, &self.reader, &rows).await;
                let what = kernel_words(self.opts.mode, k);
                if round.read == 0 && !rows.is_empty() && self.opts.mode == SourceMode::Auto {
                    // Nothing readable: not the host's tree, most likely. The engine, for all.
                    let why = round.why.unwrap_or("nothing could be read");
                    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
                    let n = ids.len() as u32;
                    let reason = format!(
                        "engine: no running container's cgroup could be read under the cgroup root (is the host's /sys/fs/cgroup mounted there?): {why}"
                    );
                    (self.engine_samples(ids).await, self.report_of(StatsSource::Engine, reason, n))
                } else {
                    let n = round.fallback.len() as u32;
                    let reason = match &round.why {
                        Some(why) if n > 0 => format!("{what}; {n} from the engine: {why}"),
                        _ => what,
                    };
                    let mut samples = round.samples;
                    if !round.fallback.is_empty() {
                        samples.extend(self.engine_samples(round.fallback).await);
                    }
                    (samples, self.report_of(StatsSource::Kernel, reason, n))
                }
            }
        };
        self.publish(samples, report).await;
    }

    fn report_of(&self, source: StatsSource, reason: String, fallbacks: u32) -> StatsSourceReport {
        let network = match &self.kernel {
            Some(k) if source == StatsSource::Kernel && k.net_from_proc() => StatsSource::Kernel,
            _ => StatsSource::Engine,
        };
        StatsSourceReport { source, reason, network, window_ms: 0, engine_fallbacks: fallbacks }
    }

    /// The engine's one-shot stats for `ids`, concurrently (bounded). A
    /// container that is gone has no sample.
    async fn engine_samples(&self, ids: Vec<String>) -> Vec<StatsSample> {
        let prev = lock(&self.readings).clone();
        let prev = &prev;
        let results: Vec<(StatsSample, Option<CpuReading>)> = futures_util::stream::iter(ids)
            .map(|id: String| async move {
                let resp = self.engine_stats(&id).await?;
                Some(calc::sample(&id, &resp, prev.get(&id), now_ms()))
            })
            .buffer_unordered(self.opts.concurrency.max(1))
            .filter_map(|x| async move { x })
            .collect()
            .await;
        let mut samples = Vec::with_capacity(results.len());
        let mut readings = HashMap::with_capacity(results.len());
        for (s, r) in results {
            if let Some(r) = r {
                readings.insert(s.id.clone(), r);
            }
            samples.push(s);
        }
        *lock(&self.readings) = readings;
        samples
    }

    async fn engine_stats(&self, id: &str) -> Option<bollard::models::ContainerStatsResponse> {
        let client = self.engine.client();
        let opts = EngineStatsOptions { stream: false, one_shot: true };
        let call = self.engine.timed("stats", async { client.stats(id, Some(opts)).next().await.transpose() });
        match tokio::time::timeout(PER_CONTAINER_TIMEOUT, call).await {
            Ok(Ok(Some(resp))) => Some(resp),
            _ => None,
        }
    }

    /// With the kernel source but not the host's `/proc`: network counters
    /// from the engine, every `net_interval` while someone asks for stats.
    async fn net_loop(self: Arc<Self>) {
        let this: &Self = &self;
        let mut fetched = false;
        loop {
            // Nobody looking: the engine is asked nothing (once, to start).
            if fetched && this.idle() {
                tokio::time::sleep(this.opts.net_interval).await;
                continue;
            }
            if let (Some(k), true) = (&this.kernel, this.engine.is_up()) {
                let ids = k.engine_net_ids();
                fetched = !ids.is_empty();
                let got: HashMap<String, (u64, u64)> = futures_util::stream::iter(ids)
                    .map(|id: String| async move {
                        let r = this.engine_stats(&id).await?;
                        let (mut rx, mut tx) = (0u64, 0u64);
                        for n in r.networks.iter().flat_map(|m| m.values()) {
                            rx = rx.saturating_add(n.rx_bytes.unwrap_or(0));
                            tx = tx.saturating_add(n.tx_bytes.unwrap_or(0));
                        }
                        Some((id, (rx, tx)))
                    })
                    .buffer_unordered(this.opts.concurrency.max(1))
                    .filter_map(|x| async move { x })
                    .collect()
                    .await;
                k.set_engine_net(got);
            }
            tokio::time::sleep(this.opts.net_interval).await;
        }
    }

    async fn publish(&self, samples: Vec<StatsSample>, report: StatsSourceReport) {
        let window = self.window();
        let mut shown = report.clone();
        shown.window_ms = window.as_millis() as u64;
        // Sorting and serialising a thousand samples is the round's work, not a request's.
        let Some((samples, by_id, samples_json, source_json)) = self
            .reader
            .run(move |_| {
                let mut samples = samples;
                samples.sort_by(|a, b| a.id.cmp(&b.id));
                samples.dedup_by(|a, b| a.id == b.id);
                let by_id: HashMap<String, usize> =
                    samples.iter().enumerate().map(|(i, s)| (s.id.clone(), i)).collect();
                let samples_json = serde_json::to_vec(&samples)
                    .map(bytes::Bytes::from)
                    .unwrap_or_else(|_| bytes::Bytes::from_static(b"[]"));
                let source_json = serde_json::to_vec(&shown)
                    .map(bytes::Bytes::from)
                    .unwrap_or_else(|_| bytes::Bytes::from_static(b"null"));
                (samples, by_id, samples_json, source_json)
            })
            .await
        else {
            self.mark_stale();
            return;
        };
        self.record_history(&samples);
        self.metrics.containers_tracked.set(samples.len() as i64);
        for s in [StatsSource::Kernel, StatsSource::Engine] {
            self.metrics
                .stats_source
                .get_or_create(&vec![("source", s.as_str().to_owned())])
                .set(i64::from(report.source == s));
        }
        self.metrics.stats_engine_fallbacks.set(i64::from(report.engine_fallbacks));
        *self.report.write().unwrap_or_else(|e| e.into_inner()) = report;
        let round = Round {
            taken_at: Instant::now(),
            taken_at_ms: now_ms(),
            stale: false,
            samples: Arc::new(samples),
            samples_json,
            source_json,
            window,
            by_id,
        };
        *self.latest.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(round);
    }

    fn mark_stale(&self) {
        let mut guard = self.latest.write().unwrap_or_else(|e| e.into_inner());
        if !guard.stale {
            let r = &**guard;
            *guard = Arc::new(Round {
                taken_at: r.taken_at,
                taken_at_ms: r.taken_at_ms,
                stale: true,
                samples: r.samples.clone(),
                samples_json: r.samples_json.clone(),
                source_json: r.source_json.clone(),
                window: r.window,
                by_id: r.by_id.clone(),
            });
        }
    }

    /// One point per container per history step (rounds are more frequent
    /// while someone looks; the history's memory stays the same).
    fn record_history(&self, samples: &[StatsSample]) {
        let step = self.opts.history_step.as_millis() as i64;
        let keep_after = now_ms() - step * self.history_len as i64;
        let mut h = lock(&self.history);
        for s in samples {
            // A known container's queue is found without allocating its id again.
            if !h.contains_key(&s.id) {
                h.insert(s.id.clone(), VecDeque::with_capacity(self.history_len));
            }
            let Some(q) = h.get_mut(&s.id) else { continue };
            // A little early is on time: rounds are not exactly a step apart.
            if q.back().is_some_and(|p| s.time_ms - p.time_ms < step * 9 / 10) {
                continue;
            }
            if q.len() == self.history_len {
                q.pop_front();
            }
            q.push_back(HistoryPoint {
                time_ms: s.time_ms,
                cpu_percent: s.cpu_percent.map(|c| c as f32),
                memory_bytes: s.memory_bytes,
                net_rx_bytes: s.net_rx_bytes,
                net_tx_bytes: s.net_tx_bytes,
            });
        }
        // Containers gone for longer than the history window take no memory.
        h.retain(|_, q| q.back().is_some_and(|p| p.time_ms >= keep_after));
    }
}

/// A snapshot's JSON as a response body of shared parts, with its exact length.
pub struct SnapshotBody(pub VecDeque<bytes::Bytes>);

impl http_body::Body for SnapshotBody {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.get_mut().0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.0.iter().map(|b| b.len() as u64).sum())
    }
}

/// Why the kernel is the source, in words.
fn kernel_words(mode: SourceMode, k: &Kernel) -> String {
    format!(
        "{}: cgroup {} tree{}",
        if mode == SourceMode::Cgroup { "kernel, as DOCKWARD_STATS_SOURCE=cgroup asks" } else { "kernel" },
        if k.hierarchy.version == cgroup::Version::V2 { "v2" } else { "v1" },
        if k.net_from_proc() { ", network namespaces through the host's /proc" } else { "" },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use shared::StatsSnapshot;

    #[test]
    fn the_spliced_json_is_the_typed_snapshot() {
        let policy = Arc::new(Policy::new(None, &[], "SECRET").unwrap());
        let metrics = Arc::new(Metrics::default());
        // Never dialled: the client connects lazily, and only the cache is exercised.
        let sock = tempfile::NamedTempFile::new().unwrap();
        let host = format!("unix://{}", sock.path().display());
        let engine = Arc::new(Engine::new(&host, policy, metrics.clone()).unwrap());
        let cache = StatsCache::new(engine, metrics, StatsOptions::engine_only(Duration::from_secs(2)));
        let empty: StatsSnapshot = serde_json::from_slice(&cache.snapshot_json()).unwrap();
        assert!(empty.containers.is_empty() && empty.stale);
        let samples = vec![StatsSample {
            id: "abc".into(),
            time_ms: 1_700_000_000_000,
            cpu_percent: Some(12.5),
            memory_bytes: 1 << 20,
            memory_limit_bytes: 1 << 30,
            net_rx_bytes: 1,
            net_tx_bytes: 2,
            block_read_bytes: 3,
            block_write_bytes: 4,
            pids: 5,
        }];
        *cache.latest.write().unwrap() = Arc::new(Round {
            taken_at: Instant::now(),
            taken_at_ms: 1_700_000_000_123,
            stale: false,
            samples_json: serde_json::to_vec(&samples).unwrap().into(),
            source_json: bytes::Bytes::from_static(b"null"),
            samples: Arc::new(samples.clone()),
            window: Duration::from_secs(2),
            by_id: HashMap::new(),
        });
        let spliced: StatsSnapshot = serde_json::from_slice(&cache.snapshot_json()).unwrap();
        assert!(spliced.age_ms < 1000, "{}", spliced.age_ms);
        let expected = StatsSnapshot {
            taken_at_ms: 1_700_000_000_123,
            age_ms: spliced.age_ms,
            stale: false,
            containers: samples.clone(),
            source: None,
        };
        assert_eq!(spliced, expected);
        assert!(!spliced.stale);
    }
}
