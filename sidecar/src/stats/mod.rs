//! The stats cache: one background refresher asks the engine for every
//! running container's stats once per window (concurrently, with a bound) and
//! publishes the round as the snapshot every client is served. However many
//! clients ask, the engine sees one stats call per container per window.
//! Rounds also feed a per-container ring buffer for sparklines.

pub mod calc;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bollard::query_parameters::StatsOptions;
use futures_util::StreamExt;
use shared::{HistoryPoint, StatsHistory, StatsSample};

use crate::docker::Engine;
use crate::metrics::Metrics;
use calc::CpuReading;

/// Longest one container's stats call may take before the round moves on.
const PER_CONTAINER_TIMEOUT: Duration = Duration::from_secs(5);

struct Round {
    taken_at: Instant,
    taken_at_ms: i64,
    stale: bool,
    samples: Arc<Vec<StatsSample>>,
    /// `samples` as a JSON array, serialised once per round: a request only
    /// splices it into the envelope with the age.
    samples_json: bytes::Bytes,
    by_id: HashMap<String, usize>,
}

pub struct StatsCache {
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    window: Duration,
    concurrency: usize,
    history_len: usize,
    latest: RwLock<Arc<Round>>,
    readings: Mutex<HashMap<String, CpuReading>>,
    history: Mutex<HashMap<String, VecDeque<HistoryPoint>>>,
}

pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

impl StatsCache {
    pub fn new(
        engine: Arc<Engine>,
        metrics: Arc<Metrics>,
        window: Duration,
        history: Duration,
        concurrency: usize,
    ) -> Self {
        let history_len = (history.as_millis() / window.as_millis().max(1)).max(1) as usize + 1;
        let empty = Round {
            taken_at: Instant::now(),
            taken_at_ms: 0,
            stale: true,
            samples: Arc::default(),
            samples_json: bytes::Bytes::from_static(b"[]"),
            by_id: HashMap::new(),
        };
        Self {
            engine,
            metrics,
            window,
            concurrency: concurrency.max(1),
            history_len,
            latest: RwLock::new(Arc::new(empty)),
            readings: Mutex::default(),
            history: Mutex::default(),
        }
    }

    fn latest(&self) -> Arc<Round> {
        self.latest.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The snapshot served to clients, as the JSON of a [`StatsSnapshot`]
    /// built without re-serialising the samples: what `GET /v1/stats` sends.
    /// Never waits for the engine.
    pub fn snapshot_json(&self) -> bytes::Bytes {
        let r = self.latest();
        let fresh = !r.stale && r.taken_at.elapsed() <= self.window * 2;
        self.metrics.cache_lookup("stats", fresh);
        let age: u64 = r.taken_at.elapsed().as_millis().try_into().unwrap_or(u64::MAX);
        let head = format!(r#"{{"taken_at_ms":{},"age_ms":{age},"stale":{},"containers":"#, r.taken_at_ms, !fresh);
        let mut body = bytes::BytesMut::with_capacity(head.len() + r.samples_json.len() + 1);
        body.extend_from_slice(head.as_bytes());
        body.extend_from_slice(&r.samples_json);
        body.extend_from_slice(b"}");
        body.freeze()
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
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let points: Vec<HistoryPoint> =
            h.get(id).map(|q| q.iter().filter(|p| p.time_ms >= cutoff).copied().collect()).unwrap_or_default();
        StatsHistory {
            id: id.to_owned(),
            interval_ms: self.window.as_millis() as u64,
            memory_limit_bytes: self.sample(id).map(|s| s.memory_limit_bytes).unwrap_or(0),
            points,
        }
    }

    /// Runs forever: one round per window. A round starts early by the
    /// longest of the last few rounds (plus a margin), so a new snapshot is
    /// *published* at least once per window and the one served is never older
    /// than the window. (Rounds vary: the engine answers a stats call at its
    /// collector's next one-second tick.)
    pub async fn run(self: Arc<Self>) {
        const MARGIN: Duration = Duration::from_millis(100);
        let mut recent: VecDeque<Duration> = VecDeque::with_capacity(8);
        loop {
            let start = Instant::now();
            self.refresh().await;
            if recent.len() == 8 {
                recent.pop_front();
            }
            recent.push_back(start.elapsed());
            let longest = recent.iter().max().copied().unwrap_or_default();
            let lead = (longest + MARGIN).min(self.window * 3 / 4);
            tokio::time::sleep(self.window.saturating_sub(lead)).await;
        }
    }

    /// One round: list running containers, fetch all their stats
    /// concurrently (bounded), publish. On failure the last round stays, marked stale.
    pub async fn refresh(&self) {
        if !self.engine.is_up() {
            self.mark_stale();
            return;
        }
        let running = match self.engine.list(false, &[]).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "stats round: listing failed");
                self.mark_stale();
                return;
            }
        };
        let ids: Vec<String> = running.into_iter().filter_map(|c| c.id).collect();
        let prev = self.readings.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let prev = &prev;
        let results: Vec<(StatsSample, Option<CpuReading>)> = futures_util::stream::iter(ids)
            .map(|id| async move {
                let client = self.engine.client();
                let opts = StatsOptions { stream: false, one_shot: true };
                let call = self.engine.timed("stats", async { client.stats(&id, Some(opts)).next().await.transpose() });
                match tokio::time::timeout(PER_CONTAINER_TIMEOUT, call).await {
                    Ok(Ok(Some(resp))) => Some(calc::sample(&id, &resp, prev.get(&id), now_ms())),
                    Ok(Ok(None)) | Ok(Err(_)) | Err(_) => None,
                }
            })
            .buffer_unordered(self.concurrency)
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
        samples.sort_by(|a, b| a.id.cmp(&b.id));
        self.record_history(&samples);
        *self.readings.lock().unwrap_or_else(|e| e.into_inner()) = readings;
        self.metrics.containers_tracked.set(samples.len() as i64);
        let by_id = samples.iter().enumerate().map(|(i, s)| (s.id.clone(), i)).collect();
        let samples_json =
            serde_json::to_vec(&samples).map(bytes::Bytes::from).unwrap_or_else(|_| bytes::Bytes::from_static(b"[]"));
        let round = Round {
            taken_at: Instant::now(),
            taken_at_ms: now_ms(),
            stale: false,
            samples: Arc::new(samples),
            samples_json,
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
                by_id: r.by_id.clone(),
            });
        }
    }

    fn record_history(&self, samples: &[StatsSample]) {
        let keep_after = now_ms() - (self.window.as_millis() as i64) * self.history_len as i64;
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        for s in samples {
            let q = h.entry(s.id.clone()).or_insert_with(|| VecDeque::with_capacity(self.history_len));
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
        let cache = StatsCache::new(engine, metrics, Duration::from_secs(2), Duration::from_secs(60), 4);
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
            samples: Arc::new(samples.clone()),
            by_id: HashMap::new(),
        });
        let spliced: StatsSnapshot = serde_json::from_slice(&cache.snapshot_json()).unwrap();
        assert!(spliced.age_ms < 1000, "{}", spliced.age_ms);
        let expected = StatsSnapshot {
            taken_at_ms: 1_700_000_000_123,
            age_ms: spliced.age_ms,
            stale: false,
            containers: samples.clone(),
        };
        assert_eq!(spliced, expected);
        assert!(!spliced.stale);
    }
}
