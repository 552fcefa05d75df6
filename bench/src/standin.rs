//! A stand-in sidecar for the fleet benchmark: one process that answers for
//! many hosts, each at `http://127.0.0.1:<port>/h/<name>` (the console's
//! `DOCKWARD_HOSTS` takes a base URL; every call is that base plus the
//! sidecar's own path). It speaks the sidecar's protocol, replaying what one
//! real sidecar answered over the real bench containers (recorded by the
//! scenario, see [`Recorded`]), with ids and names rewritten per host:
//!
//! - `GET /v1/containers`: the recorded list, with each running container's
//!   latest sample, as the real route fills it from its stats cache;
//! - `GET /v1/stats`: a [`shared::StatsSnapshot`]; a new round every
//!   `--round-ms` (2 s, the sidecar's default window), `ETag: "<taken_at_ms>-0"`,
//!   `304 Not Modified` with no body for `If-None-Match` of the current round;
//! - `GET /v1/events`: Server-Sent Events, `event: container` per lifecycle
//!   change, a `:` comment every 15 s, `event: resync` if a reader lagged;
//! - `GET /v1/disk` (the recorded report), `GET /healthz`;
//! - the bearer secret is checked ([`crate::rig::SECRET`]); 401 otherwise.
//!
//! Synthetic churn, at `rate` changes per container per second (set on the
//! command line or with `POST /_bench/churn?rate=0.01`), every change hitting
//! a random container of a random host, half of them each way:
//!
//! - **stats**: a running container's CPU moves by 0.2–5 points and its
//!   memory by 1–8 MiB (both visible at display precision); it shows in the
//!   host's next stats round (a new ETag), as on a real sidecar;
//! - **state**: a running container dies (`exited`, code 137, an `event:
//!   container` `die` at once) or, once the host has five such, the one that
//!   died first starts again (`running`, a `start` event). So each host keeps
//!   at most five of its containers down, each for a while.
//!
//! `GET /_bench/counts` reports what was served and changed (JSON).

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use shared::{ContainerEvent, ContainerState, ContainerSummary, DiskReport, StatsSample, StatsSnapshot};
use tokio::sync::broadcast;
use tower::ServiceExt;

/// One real sidecar's answers, replayed by every stand-in host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recorded {
    pub containers: Vec<ContainerSummary>,
    pub stats: StatsSnapshot,
    pub disk: DiskReport,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The recorded answers (JSON of [`Recorded`]).
    #[arg(long)]
    pub recorded: PathBuf,
    /// How many hosts to serve.
    #[arg(long)]
    pub hosts: usize,
    /// Host names: the prefix and a three-digit number (`s001`, `s002`…).
    #[arg(long, default_value = "s")]
    pub prefix: String,
    #[arg(long)]
    pub listen: SocketAddr,
    /// A new stats round per host this often (staggered across hosts).
    #[arg(long, default_value_t = 2000)]
    pub round_ms: u64,
    /// Changes per container per second at start.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// The bearer secret every call must carry.
    #[arg(long)]
    pub secret: String,
    /// Outbound agents: every host dials the console's agent port here
    /// (`https://host:port`) and answers over its tunnel, as a sidecar with
    /// `--connect` does (the sidecar's own tunnel code).
    #[arg(long, requires = "connect_pin")]
    pub connect: Option<String>,
    /// The console's agent certificate fingerprint, for --connect.
    #[arg(long)]
    pub connect_pin: Option<String>,
}

pub fn host_name(prefix: &str, i: usize) -> String {
    format!("{prefix}{:03}", i + 1)
}

/// Each host's ids: the recorded id with its first 8 hex digits replaced by
/// the host's number, so ids stay 64 hex and unique across the fleet.
fn host_id(i: usize, id: &str) -> String {
    format!("{:08x}{}", 0x5a00_0000u32 + i as u32, id.get(8..).unwrap_or(""))
}

struct HostSim {
    containers: Vec<ContainerSummary>,
    /// Each container's current reading; `None` while it is not running.
    samples: Vec<Option<StatsSample>>,
    /// The readings of containers the churn stopped, for when they start.
    parked: HashMap<usize, StatsSample>,
    /// Containers the churn stopped, oldest first.
    down: VecDeque<usize>,
    /// When the latest round was taken (Unix ms): its ETag, as the sidecar's.
    taken_at_ms: i64,
    stats_json: Bytes,
    /// The container list as served, until something changes.
    list_json: Option<Bytes>,
}

impl HostSim {
    /// A new round: every running container's reading, stamped now.
    fn new_round(&mut self) {
        // Never the same ETag twice, even two rounds within a millisecond.
        let now = now_ms().max(self.taken_at_ms + 1);
        self.taken_at_ms = now;
        let containers: Vec<StatsSample> = self
            .samples
            .iter_mut()
            .flatten()
            .map(|s| {
                s.time_ms = now;
                s.clone()
            })
            .collect();
        let snap = StatsSnapshot { taken_at_ms: now, age_ms: 0, stale: false, containers, source: None };
        self.stats_json = Bytes::from(serde_json::to_vec(&snap).unwrap_or_default());
        self.list_json = None;
    }

    fn list(&mut self) -> Bytes {
        if let Some(b) = &self.list_json {
            return b.clone();
        }
        let list: Vec<ContainerSummary> = self
            .containers
            .iter()
            .zip(&self.samples)
            .map(|(c, s)| {
                let mut c = c.clone();
                c.stats = s.clone();
                c
            })
            .collect();
        let b = Bytes::from(serde_json::to_vec(&list).unwrap_or_default());
        self.list_json = Some(b.clone());
        b
    }
}

#[derive(Default, Serialize)]
pub struct Counts {
    pub lists: AtomicU64,
    pub stats_200: AtomicU64,
    pub stats_304: AtomicU64,
    pub disk: AtomicU64,
    pub events_opened: AtomicU64,
    pub stats_changes: AtomicU64,
    pub state_changes: AtomicU64,
    pub bytes_out: AtomicU64,
}

struct Sim {
    names: HashMap<String, usize>,
    hosts: Vec<Mutex<HostSim>>,
    events: Vec<broadcast::Sender<Bytes>>,
    disk: Vec<Bytes>,
    secret: String,
    /// Changes per container per second, as f64 bits.
    rate: AtomicU64,
    counts: Counts,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn build(rec: &Recorded, args: &Args) -> Sim {
    let by_id: HashMap<&str, &StatsSample> = rec.stats.containers.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut names = HashMap::new();
    let mut hosts = Vec::new();
    let mut events = Vec::new();
    let mut disk = Vec::new();
    for i in 0..args.hosts {
        let name = host_name(&args.prefix, i);
        let mut containers = Vec::with_capacity(rec.containers.len());
        let mut samples = Vec::with_capacity(rec.containers.len());
        for c in &rec.containers {
            let mut c = c.clone();
            let sample = (c.state == ContainerState::Running).then(|| {
                let mut s =
                    by_id.get(c.id.as_str()).map(|s| (*s).clone()).or_else(|| c.stats.clone()).unwrap_or(StatsSample {
                        id: String::new(),
                        time_ms: 0,
                        cpu_percent: Some(0.0),
                        memory_bytes: 1 << 20,
                        memory_limit_bytes: 1 << 30,
                        net_rx_bytes: 0,
                        net_tx_bytes: 0,
                        block_read_bytes: 0,
                        block_write_bytes: 0,
                        pids: 1,
                    });
                s.id = host_id(i, &c.id);
                s
            });
            c.id = host_id(i, &c.id);
            c.name = format!("{name}-{}", c.name);
            c.stats = None;
            containers.push(c);
            samples.push(sample);
        }
        let mut d = rec.disk.clone();
        for v in &mut d.volumes {
            v.containers = v.containers.iter().map(|id| host_id(i, id)).collect();
        }
        disk.push(Bytes::from(serde_json::to_vec(&d).unwrap_or_default()));
        let mut h = HostSim {
            containers,
            samples,
            parked: HashMap::new(),
            down: VecDeque::new(),
            taken_at_ms: 0,
            stats_json: Bytes::new(),
            list_json: None,
        };
        h.new_round();
        names.insert(name, i);
        hosts.push(Mutex::new(h));
        events.push(broadcast::channel(256).0);
    }
    Sim {
        names,
        hosts,
        events,
        disk,
        secret: args.secret.clone(),
        rate: AtomicU64::new(args.rate.to_bits()),
        counts: Counts::default(),
    }
}

type App = Arc<Sim>;

fn json(status: StatusCode, body: Bytes) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error(status: StatusCode, code: shared::ErrorCode, msg: &str) -> Response {
    let body = serde_json::to_vec(&shared::ErrorBody::new(code, msg)).unwrap_or_default();
    json(status, Bytes::from(body))
}

/// Why a call is refused.
enum Refusal {
    NoHost,
    Unauthorized,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::NoHost => error(StatusCode::NOT_FOUND, shared::ErrorCode::NotFound, "no such host"),
            Self::Unauthorized => {
                error(StatusCode::UNAUTHORIZED, shared::ErrorCode::Unauthorized, "missing or wrong secret")
            }
        }
    }
}

/// The host's index, if it exists and the call carries the secret.
fn host(app: &Sim, name: &str, headers: &HeaderMap) -> Result<usize, Refusal> {
    let Some(&i) = app.names.get(name) else { return Err(Refusal::NoHost) };
    let ok = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|s| s == app.secret);
    if !ok {
        return Err(Refusal::Unauthorized);
    }
    Ok(i)
}

async fn healthz(State(app): State<App>, Path(name): Path<String>) -> Response {
    if app.names.contains_key(&name) {
        json(StatusCode::OK, Bytes::from_static(br#"{"status":"ok"}"#))
    } else {
        error(StatusCode::NOT_FOUND, shared::ErrorCode::NotFound, "no such host")
    }
}

async fn containers(State(app): State<App>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    let i = match host(&app, &name, &headers) {
        Ok(i) => i,
        Err(r) => return r.into_response(),
    };
    let body = app.hosts[i].lock().unwrap_or_else(|e| e.into_inner()).list();
    app.counts.lists.fetch_add(1, Ordering::Relaxed);
    app.counts.bytes_out.fetch_add(body.len() as u64, Ordering::Relaxed);
    json(StatusCode::OK, body)
}

async fn stats(State(app): State<App>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    let i = match host(&app, &name, &headers) {
        Ok(i) => i,
        Err(r) => return r.into_response(),
    };
    let (taken_at_ms, body) = {
        let h = app.hosts[i].lock().unwrap_or_else(|e| e.into_inner());
        (h.taken_at_ms, h.stats_json.clone())
    };
    // The sidecar's tag: the round's time and whether it is stale.
    let etag = format!("\"{taken_at_ms}-0\"");
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        app.counts.stats_304.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    app.counts.stats_200.fetch_add(1, Ordering::Relaxed);
    app.counts.bytes_out.fetch_add(body.len() as u64, Ordering::Relaxed);
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json".to_owned()), (header::ETAG, etag)], body)
        .into_response()
}

async fn disk(State(app): State<App>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    let i = match host(&app, &name, &headers) {
        Ok(i) => i,
        Err(r) => return r.into_response(),
    };
    app.counts.disk.fetch_add(1, Ordering::Relaxed);
    json(StatusCode::OK, app.disk[i].clone())
}

async fn events(State(app): State<App>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    let i = match host(&app, &name, &headers) {
        Ok(i) => i,
        Err(r) => return r.into_response(),
    };
    app.counts.events_opened.fetch_add(1, Ordering::Relaxed);
    let frames = tokio_stream::wrappers::BroadcastStream::new(app.events[i].subscribe())
        .map(|m| m.unwrap_or_else(|_| Bytes::from_static(b"event: resync\ndata: refetch\n\n")));
    let keep_alive = futures_util::stream::unfold((), |()| async {
        tokio::time::sleep(Duration::from_secs(15)).await;
        Some((Bytes::from_static(b":\n\n"), ()))
    });
    let body = futures_util::stream::select(frames, keep_alive).map(Ok::<_, Infallible>);
    ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], Body::from_stream(body))
        .into_response()
}

#[derive(Deserialize)]
struct Rate {
    rate: f64,
}

async fn set_churn(State(app): State<App>, Query(q): Query<Rate>) -> Response {
    if !(0.0..=1.0).contains(&q.rate) {
        return error(StatusCode::BAD_REQUEST, shared::ErrorCode::BadRequest, "rate must be between 0 and 1");
    }
    app.rate.store(q.rate.to_bits(), Ordering::Relaxed);
    StatusCode::NO_CONTENT.into_response()
}

async fn counts(State(app): State<App>) -> Response {
    json(StatusCode::OK, Bytes::from(serde_json::to_vec(&app.counts).unwrap_or_default()))
}

/// Runs the stand-in until killed.
pub async fn serve(args: Args) -> std::io::Result<()> {
    let text = std::fs::read(&args.recorded)?;
    let rec: Recorded = serde_json::from_slice(&text).map_err(std::io::Error::other)?;
    if rec.containers.is_empty() {
        return Err(std::io::Error::other("the recording holds no containers"));
    }
    let sim = Arc::new(build(&rec, &args));
    // Rounds, staggered: the hosts' refreshers are not in step.
    let n = args.hosts.max(1);
    for i in 0..args.hosts {
        let sim = sim.clone();
        let every = Duration::from_millis(args.round_ms.max(100));
        tokio::spawn(async move {
            tokio::time::sleep(every.mul_f64(i as f64 / n as f64)).await;
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                sim.hosts[i].lock().unwrap_or_else(|e| e.into_inner()).new_round();
            }
        });
    }
    let churn = sim.clone();
    tokio::spawn(async move { churn_loop(&churn).await });
    let app = Router::new()
        .route("/h/{host}/healthz", get(healthz))
        .route("/h/{host}/v1/containers", get(containers))
        .route("/h/{host}/v1/stats", get(stats))
        .route("/h/{host}/v1/disk", get(disk))
        .route("/h/{host}/v1/events", get(events))
        .route("/_bench/churn", post(set_churn))
        .route("/_bench/counts", get(counts))
        .fallback(|| async { error(StatusCode::NOT_FOUND, shared::ErrorCode::NotFound, "no such route") })
        .with_state(sim);
    if let (Some(url), Some(pin)) = (&args.connect, &args.connect_pin) {
        let pin: tls::Fingerprint = pin.parse().map_err(std::io::Error::other)?;
        for i in 0..args.hosts {
            let name = host_name(&args.prefix, i);
            let out =
                sidecar::tunnel::Outbound::new(url, pin, &name, args.secret.clone()).map_err(std::io::Error::other)?;
            // The console asks for `/v1/…`; this host answers at `/h/<name>/v1/…`.
            let prefix = format!("/h/{name}");
            let one =
                Router::new().fallback_service(app.clone().map_request(move |mut req: axum::extract::Request| {
                    let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
                    if let Ok(uri) = format!("{prefix}{path}").parse() {
                        *req.uri_mut() = uri;
                    }
                    req
                }));
            tokio::spawn(sidecar::tunnel::run(out, one));
        }
    }
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    axum::serve(listener, app).await
}

/// Ten times a second, the changes due at the current rate.
async fn churn_loop(sim: &Sim) {
    const TICK: Duration = Duration::from_millis(100);
    let total: usize = sim.hosts.iter().map(|h| h.lock().unwrap_or_else(|e| e.into_inner()).containers.len()).sum();
    let mut credit = 0.0f64;
    let mut tick = tokio::time::interval(TICK);
    let mut rng = fastrand::Rng::with_seed(13);
    loop {
        tick.tick().await;
        let rate = f64::from_bits(sim.rate.load(Ordering::Relaxed));
        if rate <= 0.0 {
            credit = 0.0;
            continue;
        }
        credit += rate * total as f64 * TICK.as_secs_f64();
        while credit >= 1.0 {
            credit -= 1.0;
            let i = rng.usize(..sim.hosts.len());
            if rng.bool() {
                change_stats(sim, i, &mut rng);
            } else {
                change_state(sim, i, &mut rng);
            }
        }
    }
}

fn change_stats(sim: &Sim, i: usize, rng: &mut fastrand::Rng) {
    let mut h = sim.hosts[i].lock().unwrap_or_else(|e| e.into_inner());
    let running: Vec<usize> = (0..h.samples.len()).filter(|&k| h.samples[k].is_some()).collect();
    let Some(&k) = running.get(rng.usize(..running.len().max(1))) else { return };
    let Some(s) = h.samples[k].as_mut() else { return };
    let step = 0.2 + rng.f64() * 4.8;
    let cpu = s.cpu_percent.unwrap_or(0.0);
    let cpu = if cpu > 50.0 || (cpu >= step && rng.bool()) { cpu - step } else { cpu + step };
    s.cpu_percent = Some((cpu * 100.0).round() / 100.0);
    let mib = (1 + rng.u64(..8)) << 20;
    s.memory_bytes = if s.memory_bytes > 512 << 20 || (s.memory_bytes > mib && rng.bool()) {
        s.memory_bytes - mib
    } else {
        s.memory_bytes + mib
    };
    sim.counts.stats_changes.fetch_add(1, Ordering::Relaxed);
}

/// Containers each host keeps stopped before the churn starts one again.
const DOWN_MAX: usize = 5;

fn change_state(sim: &Sim, i: usize, rng: &mut fastrand::Rng) {
    let now_ns =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0);
    let event = {
        let mut h = sim.hosts[i].lock().unwrap_or_else(|e| e.into_inner());
        let h = &mut *h;
        let (k, ev) = if h.down.len() >= DOWN_MAX {
            let Some(k) = h.down.pop_front() else { return };
            let c = &mut h.containers[k];
            c.state = ContainerState::Running;
            c.status = "Up Less than a second".into();
            c.started_at = Some(now_ns / 1_000_000_000);
            c.exit_code = None;
            h.samples[k] = h.parked.remove(&k);
            (k, ("start", None))
        } else {
            let running: Vec<usize> = (0..h.samples.len()).filter(|&k| h.samples[k].is_some()).collect();
            let Some(&k) = running.get(rng.usize(..running.len().max(1))) else { return };
            let c = &mut h.containers[k];
            c.state = ContainerState::Exited;
            c.status = "Exited (137) Less than a second ago".into();
            c.finished_at = Some(now_ns / 1_000_000_000);
            c.exit_code = Some(137);
            if let Some(s) = h.samples[k].take() {
                h.parked.insert(k, s);
            }
            h.down.push_back(k);
            (k, ("die", Some("137".to_owned())))
        };
        h.list_json = None;
        let c = &h.containers[k];
        ContainerEvent {
            action: ev.0.into(),
            id: c.id.clone(),
            name: Some(c.name.clone()),
            detail: ev.1,
            time_nano: now_ns,
        }
    };
    sim.counts.state_changes.fetch_add(1, Ordering::Relaxed);
    let data = serde_json::to_string(&event).unwrap_or_default();
    // No reader is fine: the console lists the host when its stream comes back.
    let _ = sim.events[i].send(Bytes::from(format!("event: container\ndata: {data}\n\n")));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ids_stay_64_hex_and_unique() {
        let id = "0123456789abcdef".repeat(4);
        let (a, b) = (host_id(0, &id), host_id(1, &id));
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(&a[8..], &id[8..]);
        assert_eq!(host_name("s", 0), "s001");
    }
}
