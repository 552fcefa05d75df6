//! The fan-in: per sidecar a poller and an event follower, one versioned
//! fleet, and the live stream of its changes to every browser. A host that
//! is down never holds up the others.
//!
//! What each call costs is set by what changed and by who looks, not by the
//! fleet's size:
//! - containers are listed when a host's event stream says something
//!   happened, and at least every [`RELIST_EVERY`] as a safety net (every poll
//!   while the event stream is down);
//! - stats are fetched only while some live page shows them (the overview:
//!   every host; a container's page: its host), and an unchanged round costs
//!   a `304` (the sidecar's `ETag`); otherwise a poll is a `/healthz` heartbeat;
//!   the rounds read are published together once per poll window (one stats
//!   frame per client per window, however many hosts);
//! - every result is compared with the published fleet at display precision
//!   and only the difference becomes a [`Delta`], applied to the published
//!   fleet and sent to the live clients, each cut to its page's [`Scope`];
//! - the overview's part is kept per distinct view (what its tabs opened,
//!   their filter: [`Opened`]) as a copy moved with the same changes the
//!   browsers get ([`crate::model::follow_overview`]): once the fleet is
//!   large, healthy apps travel folded, so a tab's bytes follow what it shows;
//! - a client that reconnects with `Last-Event-ID` gets the deltas it missed
//!   from a bounded replay buffer, or a `resync` snapshot; a client too slow
//!   for the broadcast ring is resynced, and dropped if it keeps falling behind.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use shared::{Call, ContainerSummary, DiskReport, StatsSnapshot, StatsSourceReport, Verb};
use tokio::sync::{broadcast, Notify};

use super::access::Access;
use super::history::Recorder;
use super::sidecar::Sidecar;
use crate::model::{spark_bucket, Change, Delta, Fleet, HostStatus, HostView, LiveStats, Opened, Scope};

/// Containers are listed at least this often, events or not.
pub const RELIST_EVERY: Duration = Duration::from_secs(30);
/// Deltas kept for clients that reconnect…
const REPLAY_FRAMES: usize = 512;
/// …holding at most this many changes in all.
const REPLAY_CHANGES: usize = 8_192;
/// Frames a live client may fall behind before it is resynced.
const BROADCAST_FRAMES: usize = 256;
/// Resyncs a client may need for falling behind before it is dropped (its
/// browser reconnects, and says "reconnecting" meanwhile).
const LAG_RESYNCS_MAX: u32 = 3;
/// Changes gathered are published at most this often (one frame each).
pub const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// Live overview streams with a view of their own (apps opened, a filter)
/// one user may hold at once; another is a 429 until one closes.
pub const VIEWS_PER_USER: usize = 16;
/// Distinct overview views (opened apps and filters) kept at once; a tab
/// asking for another meanwhile gets a 503.
pub const VIEWS_MAX: usize = 256;

/// A host's last failed call.
struct Failure {
    at: Instant,
    error: String,
    engine: Option<shared::EngineProblem>,
    /// The certificate it presented instead of a pinned one.
    identity: Option<String>,
}

#[derive(Default)]
struct HostState {
    last_ok: Option<Instant>,
    last_error: Option<Failure>,
    last_list: Option<Instant>,
    /// When stats were last read.
    last_stats: Option<Instant>,
    /// The sidecar's `ETag` of the last stats round read.
    stats_etag: Option<String>,
    /// The last stats round read and not yet published.
    pending_stats: Option<StatsSnapshot>,
    /// Where the sidecar says its stats come from (its `/healthz`, its stats rounds).
    stats_source: Option<StatsSourceReport>,
}

/// One published delta, encoded at most once per shared scope.
pub struct Frame {
    seq: u64,
    delta: Delta,
    /// Network, hosts.
    encoded: [OnceLock<Option<Bytes>>; 2],
    /// Each overview view's part, encoded when published; a view missing
    /// here did not exist then (its clients need a resync).
    views: HashMap<Opened, Option<Bytes>>,
}

impl Frame {
    /// The frame as a page with `scope` gets it: `Err` when that page's
    /// view did not exist when it was published.
    fn bytes(&self, epoch: &str, scope: &Scope) -> Result<Option<Bytes>, ()> {
        let encode = || self.delta.project(scope).map(|d| delta_frame(epoch, self.seq, &d));
        Ok(match scope {
            Scope::Overview(o) => return self.views.get(o).cloned().ok_or(()),
            Scope::Network => self.encoded[0].get_or_init(encode).clone(),
            Scope::Hosts => self.encoded[1].get_or_init(encode).clone(),
            Scope::Container { .. } => encode(),
        })
    }
}

/// An overview view: what its tabs hold, and how many follow it.
struct View {
    fleet: Fleet,
    users: usize,
    /// The published version it was made at: a tab that last saw a version
    /// no later than this followed another copy (one gone with its last
    /// tab), so it gets a resync, never deltas made for this one.
    born: u64,
    /// Its snapshot's JSON while it does not change, shared by the clients
    /// that connect meanwhile.
    snapshot: Option<Bytes>,
}

/// The published fleet, its version and the recent deltas.
struct Live {
    fleet: Fleet,
    seq: u64,
    replay: VecDeque<Arc<Frame>>,
    replay_changes: usize,
    /// The overview as each distinct view holds it (the default always).
    views: HashMap<Opened, View>,
    /// Changes applied to `fleet` and not yet published.
    pending: Option<Pending>,
}

/// What [`FleetHub::update`] gathered for the next [`FleetHub::publish`].
#[derive(Default)]
struct Pending {
    changes: Vec<Change>,
    /// The apps the changes touched, found before each applied.
    touched: crate::model::Touched,
    /// The fleet's container count before the first of them.
    before: usize,
    at_ms: i64,
    bucket: i64,
}

pub struct FleetHub {
    pub hosts: Vec<Arc<Sidecar>>,
    state: Mutex<Vec<HostState>>,
    live: Mutex<Live>,
    wake: Vec<Notify>,
    /// Whether each host's event stream is connected (lifecycle comes from it).
    events_up: Vec<AtomicBool>,
    /// Live pages showing every host's stats, and each host's alone.
    stats_all: AtomicUsize,
    stats_host: Vec<AtomicUsize>,
    /// Per user, their live overview streams with a view other than the default.
    own_views: Mutex<HashMap<String, usize>>,
    tx: broadcast::Sender<Arc<Frame>>,
    /// Random per process: an event id from before a restart never matches.
    epoch: String,
    stale_after: Duration,
    poll_every: Duration,
    /// Its tasks, stopped when the host set changes and a new hub takes over.
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
    /// True once stopped: its live streams end, and their clients reconnect to the new hub.
    stopped: tokio::sync::watch::Sender<bool>,
    /// History: fed every list and stats round read; while no page shows a
    /// host's stats they are still read every [`HISTORY_EVERY`] for it.
    recorder: Option<Recorder>,
}

/// How often a host's stats are read for history when no page shows them:
/// the sidecar's idle window, asked without counting as a viewer.
const HISTORY_EVERY: Duration = Duration::from_secs(10);

/// The hub of the current host set. Enrolling or revoking a host builds a
/// new hub for the new set and stops the old one, whose live clients
/// reconnect (their event ids name the old hub's epoch: they get a snapshot).
pub struct FleetSlot {
    current: std::sync::RwLock<Arc<FleetHub>>,
}

impl FleetSlot {
    pub fn new(hub: Arc<FleetHub>) -> Self {
        Self { current: std::sync::RwLock::new(hub) }
    }

    pub fn get(&self) -> Arc<FleetHub> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Starts `hub` and puts it in place of the current one, which stops.
    pub fn replace(&self, hub: Arc<FleetHub>) {
        hub.start();
        let old = std::mem::replace(&mut *self.current.write().unwrap_or_else(|e| e.into_inner()), hub);
        old.stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FleetHub {
    pub fn new(hosts: Vec<Sidecar>, stale_after: Duration, poll_every: Duration) -> Self {
        let n = hosts.len();
        let fleet = Fleet {
            hosts: hosts
                .iter()
                .map(|h| HostView {
                    name: h.name.clone(),
                    status: HostStatus::Stale { age_s: 0 },
                    unencrypted: h.unencrypted(),
                    containers: Vec::new(),
                    volume_sizes: BTreeMap::new(),
                    cpu_history: BTreeMap::new(),
                    folded: Vec::new(),
                })
                .collect(),
            at_ms: now_ms(),
            spark_bucket: spark_bucket(now_ms()),
            omitted: None,
            alerts: 0,
        };
        Self {
            hosts: hosts.into_iter().map(Arc::new).collect(),
            state: Mutex::new((0..n).map(|_| HostState::default()).collect()),
            live: Mutex::new(Live {
                views: HashMap::from([(
                    Opened::default(),
                    View { fleet: fleet.project(&Scope::overview()), users: 0, snapshot: None, born: 0 },
                )]),
                fleet,
                seq: 0,
                replay: VecDeque::new(),
                replay_changes: 0,
                pending: None,
            }),
            wake: (0..n).map(|_| Notify::new()).collect(),
            events_up: (0..n).map(|_| AtomicBool::new(false)).collect(),
            stats_all: AtomicUsize::new(0),
            stats_host: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            own_views: Mutex::new(HashMap::new()),
            tx: broadcast::channel(BROADCAST_FRAMES).0,
            epoch: {
                let mut b = [0u8; 4];
                let _ = getrandom::fill(&mut b);
                hex::encode(b)
            },
            stale_after,
            poll_every,
            tasks: Mutex::new(Vec::new()),
            stopped: tokio::sync::watch::channel(false).0,
            recorder: None,
        }
    }

    /// Records history through `recorder`.
    pub fn with_recorder(mut self, recorder: Recorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    pub fn host(&self, name: &str) -> Option<Arc<Sidecar>> {
        self.hosts.iter().find(|h| h.name == name).cloned()
    }

    /// Where each host's stats come from, as its sidecar last said, in host order.
    pub fn stats_sources(&self) -> Vec<Option<StatsSourceReport>> {
        lock(&self.state).iter().map(|s| s.stats_source.clone()).collect()
    }

    /// The hosts' names, in order.
    pub fn names(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.name.clone()).collect()
    }

    /// Stops its tasks and ends its live streams.
    pub fn stop(&self) {
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
        self.stopped.send_replace(true);
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        lock(&self.tasks).push(tokio::spawn(task).abort_handle());
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.hosts.iter().position(|h| h.name == name)
    }

    /// Asks the poller of `host` to list its containers now (after an action or event).
    pub fn poke(&self, host: &str) {
        if let Some(i) = self.index(host) {
            self.wake[i].notify_one();
        }
    }

    /// The published fleet, whole.
    pub fn snapshot(&self) -> Fleet {
        lock(&self.live).fleet.clone()
    }

    /// What a page with `scope` shows of the published fleet; for the
    /// overview, its first screen (`model::first_screen`: the live stream's
    /// snapshot brings the rest).
    pub fn view(&self, scope: &Scope) -> Fleet {
        let live = lock(&self.live);
        match scope {
            Scope::Overview(o) => {
                let first = |f: &Fleet| crate::model::first_screen(f, crate::model::FIRST_SCREEN_APPS);
                match live.views.get(o) {
                    Some(v) => first(&v.fleet),
                    None => first(&live.fleet.project(scope)),
                }
            }
            _ => live.fleet.project(scope),
        }
    }

    /// `f` of the published fleet, under its lock (keep it short: no copy is made).
    pub fn with_fleet<R>(&self, f: impl FnOnce(&Fleet) -> R) -> R {
        f(&lock(&self.live).fleet)
    }

    /// Sets the count of alerts firing, sent to every page when it changes.
    pub fn set_alerts(&self, n: i64) {
        let n = u32::try_from(n.max(0)).unwrap_or(u32::MAX);
        self.update(None, |f| if f.alerts == n { Vec::new() } else { vec![Change::Alerts { n }] });
    }

    /// Every host's name and status, without the rest of the snapshot.
    pub fn statuses(&self) -> Vec<(String, HostStatus)> {
        lock(&self.live).fleet.hosts.iter().map(|h| (h.name.clone(), h.status.clone())).collect()
    }

    /// The host's status from its last answers.
    fn status(&self, i: usize) -> HostStatus {
        let state = lock(&self.state);
        let s = &state[i];
        let age = s.last_ok.map(|t| t.elapsed());
        match (&s.last_error, s.last_ok) {
            (Some(f), ok) if ok.is_none_or(|ok| f.at > ok) => match &f.identity {
                Some(presented) => HostStatus::IdentityChanged { presented: presented.clone() },
                None => HostStatus::Down {
                    error: f.error.clone(),
                    age_s: age.map(|a| a.as_secs()),
                    engine: f.engine.clone(),
                },
            },
            (_, Some(_)) if age.is_some_and(|a| a > self.stale_after) => {
                HostStatus::Stale { age_s: age.map(|a| a.as_secs()).unwrap_or(0) }
            }
            (_, Some(_)) => HostStatus::Connected,
            (_, None) => HostStatus::Stale { age_s: 0 },
        }
    }

    /// Compares what `diff` finds against the fleet and applies the
    /// difference (with host `i`'s status, when it changed, and the
    /// sparklines' next bucket, when one began) at once, under the lock;
    /// [`Self::publish`] sends what gathered meanwhile as one delta. Idempotent
    /// changes make this safe: a client that joins between the two gets a
    /// snapshot that already holds what the next delta brings again.
    fn update(&self, i: Option<usize>, diff: impl FnOnce(&Fleet) -> Vec<Change>) {
        let status = i.map(|i| self.status(i));
        let now = now_ms();
        let mut live = lock(&self.live);
        let mut changes = Vec::new();
        if let (Some(i), Some(status)) = (i, status) {
            if !live.fleet.hosts[i].status.same_as(&status) {
                changes.push(Change::Host { host: self.hosts[i].name.clone(), status });
            }
        }
        changes.extend(diff(&live.fleet));
        let bucket = spark_bucket(now);
        if changes.is_empty() && bucket <= live.fleet.spark_bucket {
            return;
        }
        // A new sparkline bucket starts a new frame: a browser rolls its
        // lines before it applies a delta's changes, as the fleet did.
        if live.pending.as_ref().is_some_and(|p| p.bucket < bucket) {
            self.publish_locked(&mut live);
        }
        let delta = Delta { at_ms: now, bucket, changes };
        let touched = crate::model::touched_apps(&live.fleet, &delta);
        let before = crate::model::container_count(&live.fleet);
        live.fleet.apply(&delta);
        let p = live.pending.get_or_insert_with(|| Pending { before, ..Pending::default() });
        p.touched.extend(touched);
        p.at_ms = now;
        p.bucket = p.bucket.max(bucket);
        p.changes.extend(delta.changes);
    }

    /// Publishes what [`Self::update`] gathered since the last call as one
    /// delta (at most one frame per [`PUBLISH_EVERY`], however busy the
    /// fleet): each overview view's part made and applied to its copy, the
    /// frame kept for replay and broadcast.
    fn publish(&self) {
        self.publish_locked(&mut lock(&self.live));
    }

    /// [`Self::publish`], under the lock its caller holds.
    fn publish_locked(&self, live: &mut Live) {
        let Some(p) = live.pending.take() else { return };
        live.seq += 1;
        let delta = Delta { at_ms: p.at_ms, bucket: p.bucket, changes: p.changes };
        let crossed = crate::model::crossed(p.before, &live.fleet);
        // Each overview view moves on as its tabs will.
        let Live { fleet, views, seq, .. } = live;
        let views = views
            .iter_mut()
            .map(|(opened, v)| {
                let part = crate::model::follow_overview(fleet, &v.fleet, opened, &delta, &p.touched, crossed);
                let bytes = part.map(|d| {
                    v.fleet.apply(&d);
                    v.snapshot = None;
                    delta_frame(&self.epoch, *seq, &d)
                });
                (opened.clone(), bytes)
            })
            .collect();
        let frame = Arc::new(Frame { seq: live.seq, delta, encoded: Default::default(), views });
        live.replay_changes += frame.delta.changes.len();
        live.replay.push_back(frame.clone());
        while live.replay.len() > REPLAY_FRAMES || (live.replay_changes > REPLAY_CHANGES && live.replay.len() > 1) {
            if let Some(old) = live.replay.pop_front() {
                live.replay_changes -= old.delta.changes.len();
            }
        }
        let _ = self.tx.send(frame);
    }

    /// Starts the background tasks: per host a poller, an event follower and
    /// a disk refresher; one clock for staleness and sparkline buckets.
    pub fn start(self: &Arc<Self>) {
        for i in 0..self.hosts.len() {
            let hub = self.clone();
            self.spawn(async move { hub.poll_loop(i).await });
            let hub = self.clone();
            self.spawn(async move { hub.events_loop(i).await });
            let hub = self.clone();
            self.spawn(async move { hub.disk_loop(i).await });
        }
        let hub = self.clone();
        self.spawn(async move {
            loop {
                tokio::time::sleep(PUBLISH_EVERY).await;
                hub.publish();
            }
        });
        let hub = self.clone();
        self.spawn(async move {
            loop {
                tokio::time::sleep(hub.poll_every).await;
                hub.flush_stats();
            }
        });
        let hub = self.clone();
        self.spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                for i in 0..hub.hosts.len() {
                    hub.update(Some(i), |_| Vec::new());
                }
            }
        });
    }

    /// Publishes the stats rounds read since the last flush, every host's in
    /// one delta: at most one stats frame per client per poll window.
    fn flush_stats(&self) {
        let rounds: Vec<(usize, StatsSnapshot)> =
            lock(&self.state).iter_mut().enumerate().filter_map(|(i, s)| Some((i, s.pending_stats.take()?))).collect();
        if !rounds.is_empty() {
            self.update(None, |f| rounds.iter().flat_map(|(i, r)| stats_changes(&f.hosts[*i], r)).collect());
        }
    }

    fn stats_wanted(&self, i: usize) -> bool {
        self.stats_all.load(Ordering::Relaxed) > 0 || self.stats_host[i].load(Ordering::Relaxed) > 0
    }

    fn ok(&self, i: usize) {
        let mut state = lock(&self.state);
        state[i].last_ok = Some(Instant::now());
        state[i].last_error = None;
    }

    fn failed(&self, i: usize, e: &super::sidecar::SidecarError) {
        tracing::debug!(host = %self.hosts[i].name, error = %e, "poll failed");
        lock(&self.state)[i].last_error = Some(Failure {
            at: Instant::now(),
            error: e.to_string(),
            engine: e.engine_problem().cloned(),
            identity: e.identity_changed().map(str::to_owned),
        });
    }

    async fn poll_loop(&self, i: usize) {
        let relist = RELIST_EVERY.max(self.poll_every);
        // With history on, the loop also wakes for its reads when polls are rarer.
        let tick = match self.recorder {
            Some(_) => self.poll_every.min(HISTORY_EVERY),
            None => self.poll_every,
        };
        let mut poked = true;
        let mut last_beat: Option<Instant> = None;
        loop {
            let last_list = lock(&self.state)[i].last_list;
            let listed = if poked
                || !self.events_up[i].load(Ordering::Relaxed)
                || last_list.is_none_or(|t| t.elapsed() >= relist)
            {
                self.list(i).await
            } else {
                false
            };
            let history_due =
                self.recorder.is_some() && lock(&self.state)[i].last_stats.is_none_or(|t| t.elapsed() >= HISTORY_EVERY);
            if self.stats_wanted(i) {
                self.poll_stats(i, false).await;
            } else if history_due {
                self.poll_stats(i, true).await;
            } else if !listed && last_beat.is_none_or(|t| t.elapsed() >= self.poll_every) {
                last_beat = Some(Instant::now());
                self.heartbeat(i).await;
            }
            poked = tokio::select! {
                _ = tokio::time::sleep(tick) => false,
                _ = self.wake[i].notified() => true,
            };
        }
    }

    /// Lists the host's containers and publishes what changed; whether it answered.
    async fn list(&self, i: usize) -> bool {
        let host = &self.hosts[i];
        let result = host.call::<Vec<ContainerSummary>>(&Call::new(Verb::ListContainers, &[]), None, None).await;
        lock(&self.state)[i].last_list = Some(Instant::now());
        match result {
            Ok(mut containers) => {
                // Text from containers, made safe to show once, for every view.
                containers.iter_mut().for_each(crate::model::neutralise_container);
                if let Some(r) = &self.recorder {
                    r.containers(&host.name, &containers);
                }
                self.ok(i);
                self.update(Some(i), |f| list_changes(&f.hosts[i], containers));
                true
            }
            Err(e) => {
                self.failed(i, &e);
                self.update(Some(i), |_| Vec::new());
                false
            }
        }
    }

    /// The stats round, if it is not the one read last (`If-None-Match`).
    /// `background`: for history only; the sidecar does not count it as a
    /// viewer (its refresher stays at its idle window).
    async fn poll_stats(&self, i: usize, background: bool) {
        let host = &self.hosts[i];
        let etag = {
            let mut state = lock(&self.state);
            state[i].last_stats = Some(Instant::now());
            state[i].stats_etag.clone()
        };
        match host.call_if_changed::<StatsSnapshot>(&Call::new(Verb::Stats, &[]), etag.as_deref(), background).await {
            Ok(None) => self.ok(i),
            Ok(Some((snapshot, etag))) => {
                if let Some(r) = &self.recorder {
                    r.stats(&host.name, &snapshot.containers);
                }
                let mut state = lock(&self.state);
                state[i].stats_etag = etag;
                if snapshot.source.is_some() {
                    state[i].stats_source = snapshot.source.clone();
                }
                // Published with every host's by the next flush: one stats delta per window.
                state[i].pending_stats = Some(snapshot);
                drop(state);
                self.ok(i);
            }
            Err(e) => {
                self.failed(i, &e);
                self.update(Some(i), |_| Vec::new());
            }
        }
    }

    /// Whether the host answers, when nothing else asked it this poll. A
    /// sidecar that answers but cannot use its engine is listed at once, for
    /// the diagnosis its refusal carries.
    async fn heartbeat(&self, i: usize) {
        match self.hosts[i].call::<serde_json::Value>(&Call::new(Verb::Healthz, &[]), None, None).await {
            Ok(health) => {
                if let Ok(source) = serde_json::from_value::<StatsSourceReport>(health["stats"].clone()) {
                    lock(&self.state)[i].stats_source = Some(source);
                }
                self.ok(i);
                self.update(Some(i), |_| Vec::new());
            }
            Err(_) => {
                self.list(i).await;
            }
        }
    }

    /// Follows the sidecar's events; each one wakes the poller, so a dying
    /// container shows in browsers within about a second.
    async fn events_loop(&self, i: usize) {
        let host = self.hosts[i].clone();
        loop {
            match host.stream(&Call::new(Verb::Events, &[]), None, None).await {
                Ok(resp) => {
                    self.events_up[i].store(true, Ordering::Relaxed);
                    // Whatever happened while the stream was down: list once.
                    self.wake[i].notify_one();
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
                    self.events_up[i].store(false, Ordering::Relaxed);
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
                let sizes: BTreeMap<String, i64> =
                    d.volumes.into_iter().filter_map(|v| Some((v.name, v.size?))).collect();
                self.update(None, |f| {
                    let h = &f.hosts[i];
                    if h.volume_sizes == sizes {
                        Vec::new()
                    } else {
                        vec![Change::Volumes { host: h.name.clone(), sizes }]
                    }
                });
            }
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    }

    /// A live client's stream for a page with `scope`: a snapshot, or, for
    /// a client reconnecting with `last_id`, what it missed; then the deltas
    /// its page shows. While it lives the client counts as a viewer of the
    /// stats its page shows.
    pub fn live(
        self: &Arc<Self>,
        user: &str,
        access: &Access,
        scope: Scope,
        last_id: Option<&str>,
    ) -> Result<std::pin::Pin<Box<dyn Stream<Item = Bytes> + Send + 'static>>, TooManyViews> {
        if !access.whole() {
            // Each cut stream is a view of its own: it counts against its user's share.
            let owned = self.own_view(user)?;
            return Ok(Box::pin(self.live_cut(access.clone(), scope, last_id, owned)));
        }
        // A view of its own counts against its user's share (the default is everyone's).
        let owned = match &scope {
            Scope::Overview(o) if *o != Opened::default() => self.own_view(user)?,
            _ => Owned { hub: self.clone(), owner: None },
        };
        let (first, rx, seen, view) = {
            let mut live = lock(&self.live);
            let (view, born) = match &scope {
                Scope::Overview(o) => (Some(o.clone()), Some(self.join_view(&mut live, o)?)),
                _ => (None, None),
            };
            // Subscribed under the lock that publishing holds: no delta falls between.
            let rx = self.tx.subscribe();
            let last = last_id
                .and_then(|id| parse_event_id(id))
                .filter(|(epoch, _)| *epoch == self.epoch)
                .filter(|(_, seq)| born.is_none_or(|born| *seq > born));
            let missed = |seq: u64| -> Option<Vec<Bytes>> {
                live.replay.front().filter(|f| f.seq <= seq + 1)?;
                let frames = live.replay.iter().filter(|f| f.seq > seq);
                let parts = frames.map(|f| f.bytes(&self.epoch, &scope)).collect::<Result<Vec<_>, ()>>().ok()?;
                Some(parts.into_iter().flatten().collect())
            };
            let first = match last {
                Some((_, seq)) if seq == live.seq => Vec::new(),
                Some((_, seq)) if seq < live.seq && missed(seq).is_some() => missed(seq).unwrap_or_default(),
                Some(_) => self.snapshot_frame(&mut live, &scope, "resync"),
                None if last_id.is_some() => self.snapshot_frame(&mut live, &scope, "resync"),
                None => self.snapshot_frame(&mut live, &scope, "snapshot"),
            };
            (first, rx, live.seq, view)
        };
        let demand = Demand::new(self.clone(), &scope, view);
        let state = Follow { hub: self.clone(), scope, rx, seen, resyncs: 0, _demand: demand, _owned: owned };
        let rest = futures_util::stream::unfold(state, |mut s| async move {
            loop {
                match s.rx.recv().await {
                    Ok(frame) if frame.seq <= s.seen => continue,
                    Ok(frame) => {
                        s.seen = frame.seq;
                        match frame.bytes(&s.hub.epoch, &s.scope) {
                            Ok(Some(bytes)) => return Some((futures_util::stream::iter(vec![bytes]), s)),
                            Ok(None) => {}
                            // Its view is always there while it follows; never, then.
                            Err(()) => {
                                let pieces = s.hub.snapshot_frame(&mut lock(&s.hub.live), &s.scope, "resync");
                                return Some((futures_util::stream::iter(pieces), s));
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        s.resyncs += 1;
                        if s.resyncs > LAG_RESYNCS_MAX {
                            tracing::debug!("a live client fell behind too often: dropped");
                            return None;
                        }
                        let (pieces, seq) = {
                            let mut live = lock(&s.hub.live);
                            (s.hub.snapshot_frame(&mut live, &s.scope, "resync"), live.seq)
                        };
                        s.seen = seq;
                        return Some((futures_util::stream::iter(pieces), s));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .flatten();
        let mut stopped = self.stopped.subscribe();
        let stop = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        Ok(Box::pin(futures_util::stream::iter(first).chain(rest).take_until(stop).fuse()))
    }

    /// One more stream with a view of its own for `user`, released when dropped.
    fn own_view(self: &Arc<Self>, user: &str) -> Result<Owned, TooManyViews> {
        let mut own = lock(&self.own_views);
        let n = own.entry(user.to_owned()).or_default();
        if *n >= VIEWS_PER_USER {
            return Err(TooManyViews);
        }
        *n += 1;
        Ok(Owned { hub: self.clone(), owner: Some(user.to_owned()) })
    }

    /// Counts a client in overview view `opened`, made from the published
    /// fleet if it is new (at most [`VIEWS_MAX`] at once).
    /// Returns the view's [`View::born`].
    fn join_view(&self, live: &mut Live, opened: &Opened) -> Result<u64, TooManyViews> {
        if !live.views.contains_key(opened) {
            if live.views.len() >= VIEWS_MAX {
                return Err(TooManyViews);
            }
            let fleet = live.fleet.project(&Scope::Overview(opened.clone()));
            let born = live.seq;
            live.views.insert(opened.clone(), View { fleet, users: 0, snapshot: None, born });
        }
        let v = live.views.get_mut(opened).ok_or(TooManyViews)?;
        v.users += 1;
        Ok(v.born)
    }

    /// A client leaves overview view `opened`; the last one takes it along
    /// (not the default view, which the first render uses).
    fn leave_view(&self, opened: &Opened) {
        let mut live = lock(&self.live);
        let Some(v) = live.views.get_mut(opened) else { return };
        v.users = v.users.saturating_sub(1);
        if v.users == 0 && *opened != Opened::default() {
            live.views.remove(opened);
        }
    }

    /// A snapshot event (`snapshot` or `resync`) of the published fleet as
    /// `scope` shows it, in pieces; an overview view's JSON is made once per version.
    fn snapshot_frame(&self, live: &mut Live, scope: &Scope, event: &str) -> Vec<Bytes> {
        let json = match scope {
            Scope::Overview(o) => match live.views.get_mut(o) {
                Some(v) => v
                    .snapshot
                    .get_or_insert_with(|| Bytes::from(serde_json::to_vec(&v.fleet).unwrap_or_default()))
                    .clone(),
                None => Bytes::from(serde_json::to_vec(&live.fleet.project(scope)).unwrap_or_default()),
            },
            _ => Bytes::from(serde_json::to_vec(&live.fleet.project(scope)).unwrap_or_default()),
        };
        snapshot_pieces(&self.epoch, live.seq, event, json)
    }

    /// A live stream for a user who sees part of the fleet (`access.rs`):
    /// the snapshot and each delta cut to their grants and encoded for them
    /// alone (the shared encodings are of the whole fleet). Their overview
    /// is their part of the fleet unfolded; a reconnect gets a resync.
    fn live_cut(
        self: &Arc<Self>,
        access: Access,
        scope: Scope,
        last_id: Option<&str>,
        owned: Owned,
    ) -> impl Stream<Item = Bytes> + Send + 'static {
        let event = if last_id.is_some() { "resync" } else { "snapshot" };
        let (fleet, rx, seen) = {
            let live = lock(&self.live);
            let rx = self.tx.subscribe();
            (cut(&live, &access, &scope), rx, live.seq)
        };
        // Encoded with the lock released: a cut stream costs its own client only.
        let (first, ids) = self.cut_snapshot(&fleet, seen, event);
        let demand = Demand::new(self.clone(), &scope, None);
        let state =
            CutFollow { hub: self.clone(), access, scope, rx, seen, ids, resyncs: 0, _demand: demand, _owned: owned };
        let rest = futures_util::stream::unfold(state, |mut s| async move {
            loop {
                match s.rx.recv().await {
                    Ok(frame) if frame.seq <= s.seen => continue,
                    Ok(frame) => {
                        s.seen = frame.seq;
                        let part = match &s.scope {
                            Scope::Overview(_) => Some(frame.delta.clone()),
                            other => frame.delta.project(other),
                        };
                        if let Some(d) = part.and_then(|d| s.access.delta_view(&d, &mut s.ids)) {
                            let bytes = delta_frame(&s.hub.epoch, frame.seq, &d);
                            return Some((futures_util::stream::iter(vec![bytes]), s));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        s.resyncs += 1;
                        if s.resyncs > LAG_RESYNCS_MAX {
                            return None;
                        }
                        let (fleet, seq) = {
                            let live = lock(&s.hub.live);
                            (cut(&live, &s.access, &s.scope), live.seq)
                        };
                        let (pieces, ids) = s.hub.cut_snapshot(&fleet, seq, "resync");
                        s.seen = seq;
                        s.ids = ids;
                        return Some((futures_util::stream::iter(pieces), s));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .flatten();
        let mut stopped = self.stopped.subscribe();
        let stop = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        futures_util::stream::iter(first).chain(rest).take_until(stop).fuse()
    }

    /// A snapshot event of a user's part of the fleet, and the containers it shows.
    fn cut_snapshot(&self, fleet: &Fleet, seq: u64, event: &str) -> (Vec<Bytes>, Seen) {
        let json = Bytes::from(serde_json::to_vec(fleet).unwrap_or_default());
        (snapshot_pieces(&self.epoch, seq, event, json), super::access::seen_in(fleet))
    }
}

/// The user's part of the published fleet, as a page with `scope` shows it
/// (their overview unfolded).
fn cut(live: &Live, access: &Access, scope: &Scope) -> Fleet {
    match scope {
        Scope::Overview(_) => access.fleet_view(&live.fleet),
        other => access.fleet_view(&live.fleet.project(other)),
    }
}

/// The containers a cut stream has shown, by host and id.
type Seen = std::collections::HashSet<(String, String)>;

/// A cut live client's place in the stream ([`FleetHub::live_cut`]).
struct CutFollow {
    hub: Arc<FleetHub>,
    access: Access,
    scope: Scope,
    rx: broadcast::Receiver<Arc<Frame>>,
    seen: u64,
    ids: Seen,
    resyncs: u32,
    _demand: Demand,
    _owned: Owned,
}

/// A snapshot event (`snapshot` or `resync`) around a fleet's JSON.
fn snapshot_pieces(epoch: &str, seq: u64, event: &str, json: Bytes) -> Vec<Bytes> {
    let head = format!("event: {event}\nid: {epoch}-{seq}\ndata: ");
    // Compact JSON has no raw newline, so it fits one `data:` line.
    vec![Bytes::from(head), json, Bytes::from_static(b"\n\n")]
}

/// More distinct overview views than [`VIEWS_MAX`] are open.
#[derive(Debug, thiserror::Error)]
#[error("too many overview views are open (at most {VIEWS_PER_USER} per user, {VIEWS_MAX} in all); try again shortly")]
pub struct TooManyViews;

/// A live client's place in the stream.
struct Follow {
    hub: Arc<FleetHub>,
    scope: Scope,
    rx: broadcast::Receiver<Arc<Frame>>,
    seen: u64,
    resyncs: u32,
    _demand: Demand,
    _owned: Owned,
}

/// A stream counted in its user's share of views, while it lives.
struct Owned {
    hub: Arc<FleetHub>,
    owner: Option<String>,
}

impl Drop for Owned {
    fn drop(&mut self) {
        let Some(user) = self.owner.take() else { return };
        let mut own = lock(&self.hub.own_views);
        if let Some(n) = own.get_mut(&user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                own.remove(&user);
            }
        }
    }
}

/// A live page counted as a viewer of the stats it shows, while it lives.
struct Demand {
    hub: Arc<FleetHub>,
    host: Option<Option<usize>>,
    /// The overview view it is counted in.
    view: Option<Opened>,
}

impl Demand {
    fn new(hub: Arc<FleetHub>, scope: &Scope, view: Option<Opened>) -> Self {
        let host = scope.stats_of().map(|h| h.and_then(|h| hub.index(h)));
        let first = match host {
            Some(None) => hub.stats_all.fetch_add(1, Ordering::Relaxed) == 0,
            Some(Some(i)) => hub.stats_host[i].fetch_add(1, Ordering::Relaxed) == 0,
            None => false,
        };
        if first {
            // The first viewer: stats now, not at the next poll.
            for (i, w) in hub.wake.iter().enumerate() {
                if host == Some(None) || host == Some(Some(i)) {
                    w.notify_one();
                }
            }
        }
        Self { hub, host, view }
    }
}

impl Drop for Demand {
    fn drop(&mut self) {
        if let Some(opened) = self.view.take() {
            self.hub.leave_view(&opened);
        }
        match self.host {
            Some(None) => self.hub.stats_all.fetch_sub(1, Ordering::Relaxed),
            Some(Some(i)) => self.hub.stats_host[i].fetch_sub(1, Ordering::Relaxed),
            None => 0,
        };
    }
}

/// What a new list of a host's containers changes, at display precision
/// (labels dropped):
/// added, removed, changed in anything a page shows (the engine's status text
/// compared without its ticking times), and stats.
fn list_changes(h: &HostView, containers: Vec<ContainerSummary>) -> Vec<Change> {
    let listed: std::collections::HashSet<String> = containers.iter().map(|c| c.id.clone()).collect();
    let mut changes: Vec<Change> = h
        .containers
        .iter()
        .filter(|o| !listed.contains(&o.id))
        .map(|o| Change::Remove { host: h.name.clone(), id: o.id.clone() })
        .collect();
    for mut c in containers {
        // No page reads a container's labels from the fleet (the detail page
        // asks its sidecar): not kept, not sent.
        c.labels = BTreeMap::new();
        let live = c.stats.as_ref().map(LiveStats::of);
        c.stats = live.map(|s| s.sample(&c.id));
        let old = h.containers.iter().find(|o| o.id == c.id);
        let id = c.id.clone();
        if !old.is_some_and(|o| same_but_stats(o, &c)) {
            changes.push(Change::Upsert { host: h.name.clone(), c: Box::new(c) });
        }
        // After the upsert: the sparkline follows the stats changes alone.
        if old.and_then(|o| o.stats.as_ref().map(LiveStats::of)) != live || (old.is_none() && live.is_some()) {
            changes.push(Change::Stats { host: h.name.clone(), id, s: live });
        }
    }
    changes
}

/// What a stats round changes at display precision (containers it no longer
/// has lose their stats).
fn stats_changes(h: &HostView, snapshot: &StatsSnapshot) -> Vec<Change> {
    let by_id: std::collections::HashMap<&str, LiveStats> =
        snapshot.containers.iter().map(|s| (s.id.as_str(), LiveStats::of(s))).collect();
    h.containers
        .iter()
        .filter_map(|c| {
            let was = c.stats.as_ref().map(LiveStats::of);
            let now = by_id.get(c.id.as_str()).copied();
            (was != now).then(|| Change::Stats { host: h.name.clone(), id: c.id.clone(), s: now })
        })
        .collect()
}

/// Two summaries a page would show alike, apart from their stats.
fn same_but_stats(a: &ContainerSummary, b: &ContainerSummary) -> bool {
    if status_kind(&a.status) != status_kind(&b.status) {
        return false;
    }
    let strip = |c: &ContainerSummary| {
        let mut c = c.clone();
        c.stats = None;
        c.status.clear();
        c
    };
    strip(a) == strip(b)
}

/// Docker's status text without its times ("Up 5 minutes (healthy)" →
/// "Up (healthy)"), which tick by themselves: compared so, an ageing
/// container is no change (the text is as of its last real one).
fn status_kind(status: &str) -> String {
    const TIME_WORDS: &[&str] = &[
        "a", "an", "about", "less", "than", "ago", "second", "seconds", "minute", "minutes", "hour", "hours", "day",
        "days", "week", "weeks", "month", "months", "year", "years",
    ];
    status
        .split(' ')
        .filter(|w| {
            !w.is_empty()
                && !w.bytes().all(|b| b.is_ascii_digit())
                && !TIME_WORDS.contains(&w.to_ascii_lowercase().as_str())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `event: delta` with its id.
fn delta_frame(epoch: &str, seq: u64, delta: &Delta) -> Bytes {
    let json = serde_json::to_string(delta).unwrap_or_else(|_| "null".into());
    Bytes::from(format!("event: delta\nid: {epoch}-{seq}\ndata: {json}\n\n"))
}

/// `<8 hex epoch>-<seq>`, as a `Last-Event-ID` must be.
fn parse_event_id(id: &str) -> Option<(&str, u64)> {
    let (epoch, seq) = id.split_once('-')?;
    let ok = epoch.len() == 8 && epoch.bytes().all(|b| b.is_ascii_hexdigit()) && (1..=20).contains(&seq.len());
    ok.then_some(())?;
    Some((epoch, seq.parse().ok().filter(|_| seq.bytes().all(|b| b.is_ascii_digit()))?))
}

/// Whether `id` could be one of ours (`<8 hex>-<digits>`), as a `Last-Event-ID` must be.
pub fn valid_event_id(id: &str) -> bool {
    parse_event_id(id).is_some()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::container;
    use shared::{ContainerState, Health, StatsSample};

    fn hub(names: &[&str]) -> Arc<FleetHub> {
        let dir = tempfile::tempdir().unwrap();
        let spec: Vec<String> = names
            .iter()
            .map(|n| {
                std::fs::write(dir.path().join(n), "a-secret-0123456789abcdef0123456789abcdef").unwrap();
                format!("{n}=http://127.0.0.1:9")
            })
            .collect();
        let hosts = super::super::sidecar::parse_hosts(&spec.join(","), dir.path(), &Default::default()).unwrap();
        Arc::new(FleetHub::new(hosts, Duration::from_secs(10), Duration::from_secs(2)))
    }

    fn running(name: &str, cpu: f64) -> ContainerSummary {
        let mut c = container(name, Some("shop"), ContainerState::Running, Health::None, "Up 3 minutes");
        c.stats = Some(StatsSample {
            id: c.id.clone(),
            time_ms: 1,
            cpu_percent: Some(cpu),
            memory_bytes: 10 << 20,
            memory_limit_bytes: 1 << 30,
            net_rx_bytes: 5,
            net_tx_bytes: 5,
            block_read_bytes: 5,
            block_write_bytes: 5,
            pids: 3,
        });
        c
    }

    /// Publishes `containers` as host `i`'s list, as a poll would.
    fn list(hub: &FleetHub, i: usize, containers: Vec<ContainerSummary>) {
        hub.update(Some(i), |f| list_changes(&f.hosts[i], containers));
        hub.publish();
    }

    /// The SSE events of `bytes`: (event, id, data).
    fn events(bytes: &[Bytes]) -> Vec<(String, String, String)> {
        let text: String = bytes.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect();
        text.split("\n\n")
            .filter(|b| !b.is_empty())
            .map(|b| {
                let field = |k: &str| b.lines().find_map(|l| l.strip_prefix(k)).unwrap_or_default().to_owned();
                (field("event: "), field("id: "), field("data: "))
            })
            .collect()
    }

    /// What the stream has ready now (without waiting for more).
    async fn ready(s: &mut (impl Stream<Item = Bytes> + Unpin)) -> Vec<Bytes> {
        let mut out = Vec::new();
        while let Ok(Some(b)) = tokio::time::timeout(Duration::from_millis(50), s.next()).await {
            out.push(b);
        }
        out
    }

    /// A browser's copy: the snapshot, then every delta applied.
    fn follow(copy: &mut Fleet, evs: &[(String, String, String)]) {
        for (event, _, data) in evs {
            match event.as_str() {
                "snapshot" | "resync" => *copy = serde_json::from_str(data).unwrap(),
                "delta" => copy.apply(&serde_json::from_str(data).unwrap()),
                other => panic!("unexpected event {other}"),
            }
        }
    }

    #[test]
    fn a_list_changes_only_what_a_page_would_show_differently() {
        let mut h = hub(&["a"]).snapshot().hosts.remove(0);
        let first = list_changes(&h, vec![running("web", 1.0), running("db", 2.0)]);
        assert_eq!(first.len(), 4, "two upserts, two stats: {first:?}");
        let mut f = Fleet { hosts: vec![h.clone()], ..Default::default() };
        f.apply(&Delta { at_ms: 1, bucket: 1, changes: first });
        h = f.hosts[0].clone();
        // The same again, ageing ("Up 4 minutes"), other counters, CPU within 0.05: nothing.
        let mut again = vec![running("web", 1.04), running("db", 2.0)];
        again[0].status = "Up 4 minutes".into();
        again[1].stats.as_mut().unwrap().net_rx_bytes = 999;
        assert_eq!(list_changes(&h, again), vec![]);
        // web exits, db's CPU moves a tenth, a container goes, one comes.
        let mut web = running("web", 1.0);
        (web.state, web.status, web.stats) = (ContainerState::Exited, "Exited (1) 2 seconds ago".into(), None);
        let changes = list_changes(&h, vec![web, running("db", 2.1), running("new", 0.0)]);
        let kinds: Vec<String> = changes
            .iter()
            .map(|c| match c {
                Change::Upsert { c, .. } => format!("upsert {}", c.name),
                Change::Stats { id, s, .. } => format!("stats {id} {:?}", s.and_then(|s| s.cpu)),
                Change::Remove { id, .. } => format!("remove {id}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            ["upsert web", "stats web-id None", "stats db-id Some(2.1)", "upsert new", "stats new-id Some(0.0)"]
        );
        let gone = list_changes(&h, vec![running("web", 1.0)]);
        assert_eq!(gone, vec![Change::Remove { host: "a".into(), id: "db-id".into() }]);
    }

    #[test]
    fn a_stats_round_changes_only_what_moved_at_display_precision() {
        let hub = hub(&["a"]);
        list(&hub, 0, vec![running("web", 1.0), running("db", 2.0)]);
        let h = hub.snapshot().hosts.remove(0);
        let sample = |c: &ContainerSummary, cpu: f64, mem: u64| {
            let mut s = c.stats.clone().unwrap();
            (s.cpu_percent, s.memory_bytes) = (Some(cpu), mem);
            s
        };
        let round =
            |samples| StatsSnapshot { taken_at_ms: 2, age_ms: 0, stale: false, containers: samples, source: None };
        let (web, db) = (&h.containers[1], &h.containers[0]);
        assert_eq!(
            stats_changes(&h, &round(vec![sample(web, 1.02, 10 << 20), sample(db, 2.0, (10 << 20) + 1000)])),
            vec![]
        );
        let moved = stats_changes(&h, &round(vec![sample(web, 1.0, 11 << 20)]));
        assert_eq!(
            moved,
            vec![
                Change::Stats { host: "a".into(), id: "db-id".into(), s: None },
                Change::Stats {
                    host: "a".into(),
                    id: "web-id".into(),
                    s: Some(LiveStats { cpu: Some(1.0), mem: 11 << 20, limit: 1 << 30 })
                },
            ]
        );
    }

    #[test]
    fn status_text_is_compared_without_its_times() {
        assert_eq!(status_kind("Up 5 minutes (healthy)"), "Up (healthy)");
        assert_eq!(status_kind("Up About an hour"), "Up");
        assert_eq!(status_kind("Up Less than a second"), "Up");
        assert_eq!(status_kind("Exited (137) 3 days ago"), "Exited (137)");
        assert_ne!(status_kind("Up 5 minutes (healthy)"), status_kind("Up 5 minutes (unhealthy)"));
        assert_ne!(status_kind("Exited (0) 1 second ago"), status_kind("Exited (1) 1 second ago"));
    }

    #[test]
    fn event_ids_are_checked() {
        assert_eq!(parse_event_id("0a1b2c3d-17"), Some(("0a1b2c3d", 17)));
        for bad in [
            "",
            "17",
            "0a1b2c3d-",
            "0a1b2c3g-1",
            "0a1b2c3d-x",
            "0a1b2c3d-+1",
            "0a1b2c3-1",
            "0a1b2c3d-1-2",
            "0a1b2c3d-123456789012345678901",
        ] {
            assert!(!valid_event_id(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_client_gets_a_snapshot_then_only_changes_and_holds_what_the_server_holds() {
        let hub = hub(&["a", "b"]);
        list(&hub, 0, vec![running("web", 1.0)]);
        let mut s = Box::pin(
            hub.live("t", &super::super::access::Access::fleet(shared::Role::Viewer), Scope::overview(), None).unwrap(),
        );
        let first = events(&ready(&mut s).await);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].0, "snapshot");
        let mut copy = Fleet::default();
        follow(&mut copy, &first);
        // Nothing changes: nothing is sent.
        list(&hub, 0, vec![running("web", 1.0)]);
        assert!(ready(&mut s).await.is_empty());
        // A change: one small delta, and the copy is the server's fleet again.
        list(&hub, 1, vec![running("api", 5.0)]);
        let next = events(&ready(&mut s).await);
        assert_eq!(next.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(), ["delta"]);
        assert!(next[0].2.len() < 2_000, "{}", next[0].2);
        follow(&mut copy, &next);
        assert_eq!(copy, hub.view(&Scope::overview()));
    }

    #[tokio::test]
    async fn every_hosts_stats_go_out_in_one_frame_per_window() {
        let hub = hub(&["a", "b"]);
        list(&hub, 0, vec![running("web", 1.0)]);
        list(&hub, 1, vec![running("api", 1.0)]);
        let mut s = Box::pin(
            hub.live("t", &super::super::access::Access::fleet(shared::Role::Viewer), Scope::overview(), None).unwrap(),
        );
        let _ = ready(&mut s).await;
        for (i, id) in [(0, "web-id"), (1, "api-id")] {
            let mut sample = running("x", 5.0).stats.unwrap();
            sample.id = id.into();
            lock(&hub.state)[i].pending_stats =
                Some(StatsSnapshot { taken_at_ms: 1, age_ms: 0, stale: false, containers: vec![sample], source: None });
        }
        assert!(ready(&mut s).await.is_empty(), "nothing until the flush");
        hub.flush_stats();
        hub.publish();
        let evs = events(&ready(&mut s).await);
        assert_eq!(evs.len(), 1, "{evs:?}");
        assert!(evs[0].2.contains("web-id") && evs[0].2.contains("api-id"), "{}", evs[0].2);
        hub.flush_stats();
        hub.publish();
        assert!(ready(&mut s).await.is_empty(), "a round is published once");
        // Lists of two hosts within one publishing window: one frame.
        hub.update(Some(0), |f| list_changes(&f.hosts[0], vec![running("web", 1.0), running("web2", 1.0)]));
        hub.update(Some(1), |f| list_changes(&f.hosts[1], vec![]));
        hub.publish();
        let evs = events(&ready(&mut s).await);
        assert_eq!(evs.len(), 1, "{evs:?}");
        assert!(evs[0].2.contains("web2-id") && evs[0].2.contains(r#""k":"remove""#), "{}", evs[0].2);
    }

    #[tokio::test]
    async fn a_reconnecting_client_gets_exactly_what_it_missed_or_a_resync() {
        let hub = hub(&["a"]);
        list(&hub, 0, vec![running("web", 1.0)]);
        let mut s = Box::pin(
            hub.live("t", &super::super::access::Access::fleet(shared::Role::Viewer), Scope::overview(), None).unwrap(),
        );
        let first = events(&ready(&mut s).await);
        let mut copy = Fleet::default();
        follow(&mut copy, &first);
        let last = first[0].1.clone();
        drop(s);
        // Missed: two changes. Back with its last id: exactly those two deltas.
        list(&hub, 0, vec![running("web", 1.0), running("db", 2.0)]);
        list(&hub, 0, vec![running("web", 7.0), running("db", 2.0)]);
        let mut s = Box::pin(
            hub.live("t", &super::super::access::Access::fleet(shared::Role::Viewer), Scope::overview(), Some(&last))
                .unwrap(),
        );
        let missed = events(&ready(&mut s).await);
        assert_eq!(missed.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(), ["delta", "delta"]);
        follow(&mut copy, &missed);
        assert_eq!(copy, hub.view(&Scope::overview()), "no gap");
        // Up to date: nothing to send.
        let now = missed[1].1.clone();
        assert!(ready(&mut Box::pin(
            hub.live("t", &super::super::access::Access::fleet(shared::Role::Viewer), Scope::overview(), Some(&now))
                .unwrap()
        ))
        .await
        .is_empty());
        // Another process's id, or one from the future: a resync.
        for stale in ["00000000-1".to_owned(), format!("{}-999999", hub.epoch)] {
            let evs = events(
                &ready(&mut Box::pin(
                    hub.live(
                        "t",
                        &super::super::access::Access::fleet(shared::Role::Viewer),
                        Scope::overview(),
                        Some(&stale),
                    )
                    .unwrap(),
                ))
                .await,
            );
            assert_eq!(evs.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(), ["resync"], "{stale}");
        }
        // Further behind than the replay buffer keeps: a resync, never a gap.
        for i in 0..REPLAY_FRAMES + 5 {
            list(&hub, 0, vec![running("web", i as f64)]);
        }
        let evs = events(
            &ready(&mut Box::pin(
                hub.live(
                    "t",
                    &super::super::access::Access::fleet(shared::Role::Viewer),
                    Scope::overview(),
                    Some(&now),
                )
                .unwrap(),
            ))
            .await,
        );
        assert_eq!(evs.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(), ["resync"]);
        let mut copy = Fleet::default();
        follow(&mut copy, &evs);
        assert_eq!(copy, hub.view(&Scope::overview()));
    }

    #[tokio::test]
    async fn a_container_page_gets_that_container_only() {
        let hub = hub(&["a"]);
        list(&hub, 0, vec![running("web", 1.0), running("db", 2.0)]);
        let scope = Scope::Container { host: "a".into(), reference: "web".into() };
        let mut s = Box::pin(
            hub.live("t", &super::super::access::Access::fleet(shared::Role::Viewer), scope.clone(), None).unwrap(),
        );
        let first = events(&ready(&mut s).await);
        let mut copy = Fleet::default();
        follow(&mut copy, &first);
        assert_eq!(copy.hosts[0].containers.len(), 1);
        list(&hub, 0, vec![running("web", 1.0), running("db", 9.0)]);
        assert!(ready(&mut s).await.is_empty(), "db's stats are not this page's");
        list(&hub, 0, vec![running("web", 3.0), running("db", 9.0)]);
        let next = events(&ready(&mut s).await);
        assert_eq!(next.len(), 1);
        assert!(!next[0].2.contains("db-id"), "{}", next[0].2);
        follow(&mut copy, &next);
        assert_eq!(copy, hub.view(&scope));
        // It counts as a viewer of its host's stats while it lives.
        assert_eq!(hub.stats_host[0].load(Ordering::Relaxed), 1);
        assert!(hub.stats_wanted(0));
        drop(s);
        assert!(!hub.stats_wanted(0));
    }

    #[tokio::test]
    async fn a_client_that_falls_behind_is_resynced_then_dropped() {
        let hub = hub(&["a"]);
        let mut s = Box::pin(
            hub.live("t", &super::super::access::Access::fleet(shared::Role::Viewer), Scope::overview(), None).unwrap(),
        );
        let mut copy = Fleet::default();
        follow(&mut copy, &events(&ready(&mut s).await));
        // The client reads nothing while more than the broadcast ring is published.
        let mut n = 0.0;
        let mut flood = |hub: &FleetHub| {
            for _ in 0..BROADCAST_FRAMES + 10 {
                n += 1.0;
                list(hub, 0, vec![running("web", n)]);
            }
        };
        flood(&hub);
        let evs = events(&ready(&mut s).await);
        assert_eq!(evs.first().map(|e| e.0.as_str()), Some("resync"), "{:?}", evs.len());
        follow(&mut copy, &evs);
        assert_eq!(copy, hub.view(&Scope::overview()), "resynced to the present");
        for _ in 1..LAG_RESYNCS_MAX {
            flood(&hub);
            let evs = events(&ready(&mut s).await);
            assert_eq!(evs.first().map(|e| e.0.as_str()), Some("resync"));
        }
        flood(&hub);
        assert_eq!(s.next().await, None, "dropped after falling behind too often");
    }

    /// A large fleet: the default overview gets the problem app whole and
    /// the healthy ones folded; a tab that opens an app gets it whole, and
    /// follows it exactly; the view goes with its last tab; views are bounded.
    #[tokio::test]
    async fn an_overview_tab_gets_what_it_opened_and_the_rest_folded() {
        let hub = hub(&["a", "b"]);
        let app = |p: &str, n: usize| -> Vec<ContainerSummary> {
            (0..n)
                .map(|j| {
                    let mut c = running(&format!("{p}-{j}"), 1.0);
                    c.id = format!("{p}-{j}-id");
                    c.compose_project = Some(p.into());
                    c
                })
                .collect()
        };
        let mut a = app("shop", 40);
        a.extend(app("blog", 30));
        list(&hub, 0, a.clone());
        list(&hub, 1, app("shop", 5));
        let mut def = Box::pin(
            hub.live("t", &super::super::access::Access::fleet(shared::Role::Viewer), Scope::overview(), None).unwrap(),
        );
        let mut copy = Fleet::default();
        follow(&mut copy, &events(&ready(&mut def).await));
        assert!(copy.hosts.iter().all(|h| h.containers.is_empty()), "all healthy: all folded");
        assert_eq!(crate::model::container_count(&copy), 75);
        let opened = Opened::parse(Some("app:blog"), None).unwrap();
        let mut tab = Box::pin(
            hub.live(
                "t",
                &super::super::access::Access::fleet(shared::Role::Viewer),
                Scope::Overview(opened.clone()),
                None,
            )
            .unwrap(),
        );
        let mut mine = Fleet::default();
        follow(&mut mine, &events(&ready(&mut tab).await));
        assert_eq!(mine.hosts[0].containers.len(), 30, "the blog, whole");
        assert_eq!(lock(&hub.live).views.len(), 2);
        // A shop container dies: both tabs get the shop whole; only the blog's tab gets blog stats.
        a[3].state = ContainerState::Exited;
        a[3].status = "Exited (1) 1 second ago".into();
        a[3].exit_code = Some(1);
        a[3].restart_policy = "always".into();
        a[3].stats = None;
        a[45].stats.as_mut().unwrap().cpu_percent = Some(50.0);
        list(&hub, 0, a.clone());
        let d = events(&ready(&mut def).await);
        follow(&mut copy, &d);
        assert_eq!(copy, hub.view(&Scope::overview()));
        assert_eq!(copy.hosts[0].containers.len() + copy.hosts[1].containers.len(), 45, "the shop, on both hosts");
        assert!(!d.iter().any(|e| e.2.contains("blog-15-id")), "a folded app's stats are its summary's");
        follow(&mut mine, &events(&ready(&mut tab).await));
        assert_eq!(mine, lock(&hub.live).views[&opened].fleet, "the tab holds what its view does");
        assert_eq!(mine.hosts[0].containers.len(), 70);
        drop(tab);
        assert_eq!(lock(&hub.live).views.len(), 1, "the view went with its last tab");
        // One user holds at most VIEWS_PER_USER views of their own; another user is not refused for it.
        let mut tabs = Vec::new();
        for i in 0..VIEWS_PER_USER {
            let o = Opened::parse(None, Some(&format!("mine{i}"))).unwrap();
            tabs.push(
                hub.live(
                    "greedy",
                    &super::super::access::Access::fleet(shared::Role::Viewer),
                    Scope::Overview(o),
                    None,
                )
                .unwrap(),
            );
        }
        let o = Opened::parse(None, Some("mine again")).unwrap();
        assert!(hub
            .live(
                "greedy",
                &super::super::access::Access::fleet(shared::Role::Viewer),
                Scope::Overview(o.clone()),
                None
            )
            .is_err());
        assert!(
            hub.live("greedy", &super::super::access::Access::fleet(shared::Role::Viewer), Scope::overview(), None)
                .is_ok(),
            "the default view is everyone's"
        );
        let other = hub
            .live("other", &super::super::access::Access::fleet(shared::Role::Viewer), Scope::Overview(o.clone()), None)
            .unwrap();
        drop(other);
        tabs.pop();
        assert!(
            hub.live("greedy", &super::super::access::Access::fleet(shared::Role::Viewer), Scope::Overview(o), None)
                .is_ok(),
            "a closed tab frees its share"
        );
        tabs.clear();
        assert!(lock(&hub.own_views).is_empty());
        // And at most VIEWS_MAX views in all.
        for i in 0..VIEWS_MAX - 1 {
            let o = Opened::parse(None, Some(&format!("f{i}"))).unwrap();
            tabs.push(
                hub.live(
                    &format!("u{i}"),
                    &super::super::access::Access::fleet(shared::Role::Viewer),
                    Scope::Overview(o),
                    None,
                )
                .unwrap(),
            );
        }
        let o = Opened::parse(None, Some("one too many")).unwrap();
        assert!(hub
            .live("someone", &super::super::access::Access::fleet(shared::Role::Viewer), Scope::Overview(o), None)
            .is_err());
        assert!(lock(&hub.own_views).get("someone").is_none(), "a refused stream takes no share");
        assert!(
            hub.live("t", &super::super::access::Access::fleet(shared::Role::Viewer), Scope::overview(), None).is_ok(),
            "the default view is always there"
        );
    }

    /// A tab reconnecting to a view that went with its last tab and was made
    /// again (from a fleet with changes not yet published) gets a resync,
    /// never deltas made for another copy.
    #[tokio::test]
    async fn a_tab_back_on_a_view_made_again_is_resynced() {
        let hub = hub(&["a"]);
        let many: Vec<ContainerSummary> = (0..70)
            .map(|j| {
                let mut c = running(&format!("blog-{j}"), 1.0);
                c.compose_project = Some("blog".into());
                c
            })
            .collect();
        list(&hub, 0, many.clone());
        let opened = Opened::parse(Some("app:blog"), None).unwrap();
        let mut tab = Box::pin(
            hub.live(
                "t",
                &super::super::access::Access::fleet(shared::Role::Viewer),
                Scope::Overview(opened.clone()),
                None,
            )
            .unwrap(),
        );
        let evs = events(&ready(&mut tab).await);
        let last = evs.last().unwrap().1.clone();
        drop(tab);
        assert!(!lock(&hub.live).views.contains_key(&opened), "gone with its last tab");
        // A removal applied, not yet published; the tab comes back.
        hub.update(Some(0), |f| list_changes(&f.hosts[0], many[1..].to_vec()));
        let mut back = Box::pin(
            hub.live(
                "t",
                &super::super::access::Access::fleet(shared::Role::Viewer),
                Scope::Overview(opened.clone()),
                Some(&last),
            )
            .unwrap(),
        );
        let evs = events(&ready(&mut back).await);
        assert_eq!(evs.first().map(|e| e.0.as_str()), Some("resync"), "{evs:?}");
        let mut copy = Fleet::default();
        follow(&mut copy, &evs);
        hub.publish();
        follow(&mut copy, &events(&ready(&mut back).await));
        assert_eq!(copy.hosts[0].containers.len(), 69, "the removal is in");
        assert_eq!(copy, lock(&hub.live).views[&opened].fleet);
    }
}
