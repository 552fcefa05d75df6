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
        // Compact JSON has no raw newline, so it fits one `data:` line.
        let json = serde_json::to_string(&self.snapshot()).unwrap_or_else(|_| "null".into());
        let mut f = String::with_capacity(json.len() + 22);
        f.push_str("event: fleet\ndata: ");
        f.push_str(&json);
        f.push_str("\n\n");
        Bytes::from(f)
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
        Fleet { hosts, at_ms: now_ms() }
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

    /// 30 points per container (one per 30 s of the 15-minute window): enough
    /// for a sparkline, small enough to push to every browser.
    fn sparklines(&self, host: &str, containers: &[ContainerSummary]) -> BTreeMap<String, Vec<f32>> {
        const POINTS: usize = 30;
        let h = self.history.read().unwrap_or_else(|e| e.into_inner());
        containers
            .iter()
            .filter_map(|c| {
                let q = h.get(&format!("{host}/{}", c.id))?;
                let step = q.len().div_ceil(POINTS).max(1);
                let v: Vec<f32> = q
                    .iter()
                    .collect::<Vec<_>>()
                    .chunks(step)
                    .map(|ch| ch.iter().map(|p| p.cpu_percent.unwrap_or(0.0)).sum::<f32>() / ch.len() as f32)
                    .map(|x| (x * 10.0).round() / 10.0)
                    .collect();
                Some((c.id.clone(), v))
            })
            .collect()
    }

    pub fn history(&self, host: &str, id: &str) -> Vec<HistoryPoint> {
        let h = self.history.read().unwrap_or_else(|e| e.into_inner());
        h.get(&format!("{host}/{id}")).map(|q| q.iter().copied().collect()).unwrap_or_default()
    }

    fn publish(&self) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let _ = self.tx.send(self.frame());
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

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
