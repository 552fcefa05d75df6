//! The fan-in: one poller and one event subscription per sidecar, a merged
//! fleet view, and a broadcast of it to every connected browser. A host that
//! is down never holds up the others.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use futures_util::StreamExt;
use shared::{Call, ContainerSummary, DiskReport, HistoryPoint, Verb};
use tokio::sync::{broadcast, Notify};

use super::sidecar::Sidecar;
use crate::model::{Fleet, HostStatus, HostView};

#[derive(Default)]
struct HostState {
    containers: Vec<ContainerSummary>,
    volume_sizes: BTreeMap<String, i64>,
    last_ok: Option<Instant>,
    last_error: Option<(Instant, String, Option<shared::EngineProblem>)>,
}

/// Points kept per container for sparklines (15 minutes at a 2 s poll).
const HISTORY_POINTS: usize = 450;

pub struct FleetHub {
    pub hosts: Vec<Arc<Sidecar>>,
    state: RwLock<Vec<HostState>>,
    history: RwLock<HashMap<String, VecDeque<HistoryPoint>>>,
    wake: Vec<Notify>,
    /// Ready-made `event: fleet` frames, shared by every live client.
    tx: broadcast::Sender<Bytes>,
    /// What the last frame sent would show ([`display_signature`]): a poll
    /// that changes nothing a page shows sends nothing.
    last_sent: std::sync::Mutex<Sent>,
    /// Random per process: an event id from before a restart never matches.
    epoch: String,
    stale_after: Duration,
    poll_every: Duration,
}

impl FleetHub {
    pub fn new(hosts: Vec<Sidecar>, stale_after: Duration, poll_every: Duration) -> Self {
        let n = hosts.len();
        Self {
            hosts: hosts.into_iter().map(Arc::new).collect(),
            state: RwLock::new((0..n).map(|_| HostState::default()).collect()),
            history: RwLock::default(),
            wake: (0..n).map(|_| Notify::new()).collect(),
            tx: broadcast::channel(16).0,
            last_sent: std::sync::Mutex::new(Sent::default()),
            epoch: {
                let mut b = [0u8; 4];
                let _ = getrandom::fill(&mut b);
                hex::encode(b)
            },
            stale_after,
            poll_every,
        }
    }

    pub fn host(&self, name: &str) -> Option<&Arc<Sidecar>> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Bytes> {
        self.tx.subscribe()
    }

    /// The fleet as one Server-Sent Events frame (`event: fleet`). Built once
    /// per change and shared (reference-counted) by every live client, so a
    /// thousand clients cost one serialisation, not a thousand copies.
    pub fn frame(&self) -> Bytes {
        self.current().1
    }

    /// The fleet now, its event id (`<epoch>-<version>`: the version moves
    /// only when a page would show something new) and whether that is a new
    /// version, as one frame.
    fn versioned(&self) -> (String, Bytes, bool) {
        let fleet = self.snapshot();
        let signature = display_signature(&fleet);
        let (version, new) = {
            let mut sent = self.last_sent.lock().unwrap_or_else(|e| e.into_inner());
            let new = sent.signature.as_deref() != Some(signature.as_slice());
            if new {
                sent.version += 1;
                sent.signature = Some(signature);
            }
            (sent.version, new)
        };
        let id = format!("{}-{version}", self.epoch);
        let frame = encode(&fleet, &id);
        (id, frame, new)
    }

    /// The current event id and frame (for a client that just connected;
    /// subscribe first). A version made here is sent to the others too.
    pub fn current(&self) -> (String, Bytes) {
        let (id, frame, new) = self.versioned();
        if new {
            let _ = self.tx.send(frame.clone());
        }
        (id, frame)
    }

    /// Asks the poller of `host` to refresh now (after an action or event).
    pub fn poke(&self, host: &str) {
        if let Some(i) = self.hosts.iter().position(|h| h.name == host) {
            self.wake[i].notify_one();
        }
    }

    pub fn snapshot(&self) -> Fleet {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        let hosts = self
            .hosts
            .iter()
            .zip(state.iter())
            .map(|(h, s)| HostView {
                name: h.name.clone(),
                status: self.status(s),
                cpu_history: self.sparklines(&h.name, &s.containers),
                containers: s.containers.clone(),
                volume_sizes: s.volume_sizes.clone(),
            })
            .collect();
        Fleet { hosts, at_ms: now_ms(), ..Fleet::default() }
    }

    /// Every host's name and status, without the rest of the snapshot.
    pub fn statuses(&self) -> Vec<(&str, HostStatus)> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        self.hosts.iter().zip(state.iter()).map(|(h, s)| (h.name.as_str(), self.status(s))).collect()
    }

    fn status(&self, s: &HostState) -> HostStatus {
        let age = s.last_ok.map(|t| t.elapsed());
        match (&s.last_error, s.last_ok) {
            (Some((at, err, engine)), ok) if ok.is_none_or(|ok| *at > ok) => {
                HostStatus::Down { error: err.clone(), age_s: age.map(|a| a.as_secs()), engine: engine.clone() }
            }
            (_, Some(_)) if age.is_some_and(|a| a > self.stale_after) => {
                HostStatus::Stale { age_s: age.map(|a| a.as_secs()).unwrap_or(0) }
            }
            (_, Some(_)) => HostStatus::Connected,
            (_, None) => HostStatus::Stale { age_s: 0 },
        }
    }

    /// 30 points per container, one per 30 s of wall-clock time (the buckets
    /// stay put as samples arrive, so an idle container's sparkline does not
    /// change from one poll to the next): enough for a sparkline, small
    /// enough to push to every browser.
    fn sparklines(&self, host: &str, containers: &[ContainerSummary]) -> BTreeMap<String, Vec<f32>> {
        let h = self.history.read().unwrap_or_else(|e| e.into_inner());
        containers.iter().filter_map(|c| Some((c.id.clone(), sparkline(h.get(&format!("{host}/{}", c.id))?)))).collect()
    }

    pub fn history(&self, host: &str, id: &str) -> Vec<HistoryPoint> {
        let h = self.history.read().unwrap_or_else(|e| e.into_inner());
        h.get(&format!("{host}/{id}")).map(|q| q.iter().copied().collect()).unwrap_or_default()
    }

    /// Sends the fleet to every live client, if a page would show it
    /// differently from the last frame sent (stats compared at display
    /// precision: an idle fleet costs its clients nothing but keep-alives).
    fn publish(&self) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let (_, frame, new) = self.versioned();
        if new {
            let _ = self.tx.send(frame);
        }
    }

    /// Starts the background tasks: per host a poller and an event follower,
    /// plus a disk refresher.
    pub fn start(self: &Arc<Self>) {
        for i in 0..self.hosts.len() {
            let hub = self.clone();
            tokio::spawn(async move { hub.poll_loop(i).await });
            let hub = self.clone();
            tokio::spawn(async move { hub.events_loop(i).await });
            let hub = self.clone();
            tokio::spawn(async move { hub.disk_loop(i).await });
        }
    }

    async fn poll_loop(&self, i: usize) {
        let host = self.hosts[i].clone();
        loop {
            let result = host.call::<Vec<ContainerSummary>>(&Call::new(Verb::ListContainers, &[]), None, None).await;
            {
                let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
                let s = &mut state[i];
                match result {
                    Ok(mut containers) => {
                        // Text from containers, made safe to show once, for every view.
                        containers.iter_mut().for_each(crate::model::neutralise_container);
                        self.record_history(&host.name, &containers);
                        s.containers = containers;
                        s.last_ok = Some(Instant::now());
                        s.last_error = None;
                    }
                    Err(e) => {
                        tracing::debug!(host = %host.name, error = %e, "poll failed");
                        s.last_error = Some((Instant::now(), e.to_string(), e.engine_problem().cloned()));
                    }
                }
            }
            self.publish();
            tokio::select! {
                _ = tokio::time::sleep(self.poll_every) => {}
                _ = self.wake[i].notified() => {}
            }
        }
    }

    fn record_history(&self, host: &str, containers: &[ContainerSummary]) {
        let mut h = self.history.write().unwrap_or_else(|e| e.into_inner());
        let mut seen = Vec::with_capacity(containers.len());
        for c in containers {
            let key = format!("{host}/{}", c.id);
            if let Some(s) = &c.stats {
                let q = h.entry(key.clone()).or_default();
                if q.back().is_none_or(|p| p.time_ms < s.time_ms) {
                    if q.len() == HISTORY_POINTS {
                        q.pop_front();
                    }
                    q.push_back(HistoryPoint {
                        time_ms: s.time_ms,
                        cpu_percent: s.cpu_percent.map(|v| v as f32),
                        memory_bytes: s.memory_bytes,
                        net_rx_bytes: s.net_rx_bytes,
                        net_tx_bytes: s.net_tx_bytes,
                    });
                }
            }
            seen.push(key);
        }
        let prefix = format!("{host}/");
        h.retain(|k, _| !k.starts_with(&prefix) || seen.contains(k));
    }

    /// Follows the sidecar's events; each one wakes the poller, so a dying
    /// container shows in browsers within about a second.
    async fn events_loop(&self, i: usize) {
        let host = self.hosts[i].clone();
        loop {
            match host.stream(&Call::new(Verb::Events, &[]), None, None).await {
                Ok(resp) => {
                    let mut body = resp.bytes_stream();
                    let mut buf = Vec::new();
                    while let Some(Ok(chunk)) = body.next().await {
                        buf.extend_from_slice(&chunk);
                        while let Some(pos) = buf.windows(2).position(|w| w == b"\n\n") {
                            let block: Vec<u8> = buf.drain(..pos + 2).collect();
                            if block.starts_with(b"event: container") || block.starts_with(b"event: resync") {
                                self.wake[i].notify_one();
                            }
                        }
                        if buf.len() > 1 << 20 {
                            buf.clear();
                        }
                    }
                }
                Err(e) => tracing::debug!(host = %host.name, error = %e, "event stream unavailable"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn disk_loop(&self, i: usize) {
        let host = self.hosts[i].clone();
        loop {
            if let Ok(d) = host.call::<DiskReport>(&Call::new(Verb::Disk, &[]), None, None).await {
                let sizes = d.volumes.into_iter().filter_map(|v| Some((v.name, v.size?))).collect();
                self.state.write().unwrap_or_else(|e| e.into_inner())[i].volume_sizes = sizes;
            }
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    }
}

/// Points of a sparkline: at most this many…
const SPARK_POINTS: usize = 30;
/// …each the mean CPU of a bucket of this much wall-clock time.
const SPARK_BUCKET_MS: i64 = 30_000;

/// The mean CPU % per 30 s bucket of sample time, the newest 30 buckets, at 0.1 %.
fn sparkline(points: &VecDeque<HistoryPoint>) -> Vec<f32> {
    let mut buckets: Vec<(i64, f32, u32)> = Vec::new();
    for p in points {
        let b = p.time_ms.div_euclid(SPARK_BUCKET_MS);
        match buckets.last_mut() {
            Some((last, sum, n)) if *last == b => {
                *sum += p.cpu_percent.unwrap_or(0.0);
                *n += 1;
            }
            _ => buckets.push((b, p.cpu_percent.unwrap_or(0.0), 1)),
        }
    }
    let skip = buckets.len().saturating_sub(SPARK_POINTS);
    buckets[skip..].iter().map(|(_, sum, n)| (sum / *n as f32 * 10.0).round() / 10.0).collect()
}

/// Docker's status text ticks every second for a container's first minute
/// ("Up 12 seconds"): compared as "Up seconds", so it is no change each poll.
fn coarse_status(status: &str) -> String {
    let mut words: Vec<&str> = Vec::new();
    for w in status.split(' ') {
        if w.starts_with("second") {
            if words.last().is_some_and(|p| *p == "a" || p.chars().all(|c| c.is_ascii_digit())) {
                words.pop();
            }
            words.push("seconds");
        } else {
            words.push(w);
        }
    }
    words.join(" ")
}

/// The last version sent to live clients and what it showed.
#[derive(Default)]
struct Sent {
    version: u64,
    signature: Option<Vec<u8>>,
}

/// Whether `id` could be one of ours (`<8 hex>-<digits>`), as a `Last-Event-ID` must be.
pub fn valid_event_id(id: &str) -> bool {
    match id.split_once('-') {
        Some((epoch, version)) => {
            epoch.len() == 8
                && epoch.bytes().all(|b| b.is_ascii_hexdigit())
                && (1..=20).contains(&version.len())
                && version.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// The fleet as one Server-Sent Events frame (`event: fleet`, with its id).
fn encode(fleet: &Fleet, id: &str) -> Bytes {
    // Compact JSON has no raw newline, so it fits one `data:` line.
    let json = serde_json::to_string(fleet).unwrap_or_else(|_| "null".into());
    let mut f = String::with_capacity(json.len() + id.len() + 26);
    f.push_str("event: fleet\nid: ");
    f.push_str(id);
    f.push_str("\ndata: ");
    f.push_str(&json);
    f.push_str("\n\n");
    Bytes::from(f)
}

/// What a page shows of the fleet, as bytes to compare: no clock, stats at
/// the precision the pages display them (CPU 0.1 %, memory 1 MiB; the
/// sample's time and counters are not shown from the live fleet), and the
/// engine's status text without its ticking seconds.
pub fn display_signature(fleet: &Fleet) -> Vec<u8> {
    const MIB: u64 = 1 << 20;
    let mut f = fleet.clone();
    f.at_ms = 0;
    for c in f.hosts.iter_mut().flat_map(|h| h.containers.iter_mut()) {
        c.status = coarse_status(&c.status);
        if let Some(s) = c.stats.as_mut() {
            s.cpu_percent = s.cpu_percent.map(|v| (v * 10.0).round() / 10.0);
            s.memory_bytes = (s.memory_bytes + MIB / 2) / MIB;
            s.memory_limit_bytes /= MIB;
            (s.time_ms, s.net_rx_bytes, s.net_tx_bytes, s.block_read_bytes, s.block_write_bytes, s.pids) =
                (0, 0, 0, 0, 0, 0);
        }
    }
    serde_json::to_vec(&f).unwrap_or_default()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{container, fleet};
    use shared::{ContainerState, StatsSample};

    fn with_stats(cpu: f64, memory: u64, rx: u64) -> Fleet {
        let mut c = container("web", Some("shop"), ContainerState::Running, "Up");
        c.stats = Some(StatsSample {
            id: c.id.clone(),
            time_ms: rx as i64,
            cpu_percent: Some(cpu),
            memory_bytes: memory,
            memory_limit_bytes: 1 << 30,
            net_rx_bytes: rx,
            net_tx_bytes: rx,
            block_read_bytes: rx,
            block_write_bytes: rx,
            pids: rx,
        });
        let mut f = fleet(vec![c]);
        f.at_ms = rx as i64;
        f
    }

    #[test]
    fn event_ids_are_checked() {
        assert!(valid_event_id("0a1b2c3d-17"));
        for bad in [
            "",
            "17",
            "0a1b2c3d-",
            "0a1b2c3g-1",
            "0a1b2c3d-x",
            "0a1b2c3-1",
            "0a1b2c3d-1-2",
            "0a1b2c3d-123456789012345678901",
        ] {
            assert!(!valid_event_id(bad), "{bad}");
        }
    }

    #[test]
    fn ticking_seconds_are_not_a_change_minutes_are() {
        assert_eq!(coarse_status("Up 12 seconds"), coarse_status("Up 13 seconds"));
        assert_eq!(coarse_status("Up 1 second (health: starting)"), "Up seconds (health: starting)");
        assert_eq!(coarse_status("Up Less than a second"), "Up Less than seconds");
        assert_ne!(coarse_status("Up 2 minutes"), coarse_status("Up 3 minutes"));
        assert_eq!(coarse_status("Exited (0) 5 seconds ago"), "Exited (0) seconds ago");
    }

    #[test]
    fn sparkline_buckets_stay_put_as_samples_arrive() {
        let point = |t: i64, cpu: f32| HistoryPoint {
            time_ms: t,
            cpu_percent: Some(cpu),
            memory_bytes: 0,
            net_rx_bytes: 0,
            net_tx_bytes: 0,
        };
        let mut q: VecDeque<HistoryPoint> = (0..20).map(|i| point(i * 2_000, 1.0)).collect();
        let before = sparkline(&q);
        assert_eq!(before, vec![1.0, 1.0], "two 30 s buckets");
        // Another sample in the same bucket, at the same level: the same sparkline.
        q.push_back(point(40_000, 1.0));
        assert_eq!(sparkline(&q), before);
        // A new bucket adds a point; at most 30 are kept, the newest.
        q.push_back(point(60_000, 3.0));
        assert_eq!(sparkline(&q), vec![1.0, 1.0, 3.0]);
        let long: VecDeque<HistoryPoint> = (0..100).map(|i| point(i * 30_000, i as f32)).collect();
        let s = sparkline(&long);
        assert_eq!((s.len(), s[0], s[29]), (30, 70.0, 99.0));
    }

    #[test]
    fn what_a_page_would_not_show_differently_is_not_a_change() {
        let base = display_signature(&with_stats(12.31, 100 << 20, 1));
        // Another clock, other counters, CPU within 0.05 %, memory within half a MiB: the same.
        assert_eq!(display_signature(&with_stats(12.34, (100 << 20) + 300_000, 987_654)), base);
        // A tenth of a percent of CPU, or a MiB of memory: a change.
        assert_ne!(display_signature(&with_stats(12.41, 100 << 20, 1)), base);
        assert_ne!(display_signature(&with_stats(12.31, 101 << 20, 1)), base);
        // So is anything else the page shows: state, health, a container more.
        let mut exited = with_stats(12.31, 100 << 20, 1);
        exited.hosts[0].containers[0].state = ContainerState::Exited;
        assert_ne!(display_signature(&exited), base);
        let mut more = with_stats(12.31, 100 << 20, 1);
        more.hosts[0].containers.push(container("db", Some("shop"), ContainerState::Running, "Up"));
        assert_ne!(display_signature(&more), base);
    }
}
