//! Scenario 8 (issue 13): the console following a fleet of 50 hosts × 100
//! containers (20 real sidecars on the real engine, all reading the same 100
//! bench containers, plus 30 stand-in hosts, [`crate::standin`]), then 500
//! stand-in hosts × 100 containers. What one browser tab costs in live bytes
//! at 0 %, 1 % and 10 % of the containers changing per second; the overview's
//! server render; the console's memory and CPU with 1, 100 and 1 000 live
//! clients; a real `docker kill` to the stream saying so.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use crate::live::{self, Stream, Tally};
use crate::rig::{self, Proc, SECRET};
use crate::scenarios::{round3, Figure};
use crate::standin::{self, Recorded};

const SCENARIO: &str = "8. fleet scale";
const PER_HOST: usize = 100;

/// How big and how long.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Real sidecars on the local engine (each sees the same bench containers).
    pub real: usize,
    /// Hosts in all at the first size (the rest are stand-ins).
    pub hosts: usize,
    /// Stand-in hosts at the second size (0: skip it).
    pub big: usize,
    pub quick: bool,
    /// Every host an outbound agent: the real sidecars and the stand-ins dial
    /// the console's agent port and answer over their tunnels.
    pub tunnel: bool,
}

impl Plan {
    fn window(&self) -> Duration {
        Duration::from_secs(if self.quick { 8 } else { 25 })
    }
    fn hold(&self) -> Duration {
        Duration::from_secs(if self.quick { 5 } else { 15 })
    }
    fn renders(&self) -> usize {
        if self.quick {
            5
        } else {
            20
        }
    }
}

/// The stand-in process (a `dockward-bench standin` child).
pub(crate) struct Standin {
    proc: Proc,
    count: usize,
}

impl Standin {
    /// Serves `hosts` stand-ins; with `agent` (its URL and pin), each dials
    /// the console there as an outbound agent.
    pub(crate) fn start(dir: &Path, recorded: &Path, hosts: usize, agent: Option<(&str, &str)>) -> Standin {
        let port = testkit::free_port();
        let log = dir.join(format!("standin-{hosts}.log"));
        let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
        cmd.arg("standin");
        if let Some((url, pin)) = agent {
            cmd.args(["--connect", url, "--connect-pin", pin]);
        }
        let child = cmd
            .arg("--recorded")
            .arg(recorded)
            .args(["--hosts", &hosts.to_string(), "--listen", &format!("127.0.0.1:{port}"), "--secret", SECRET])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .expect("start the stand-in");
        let proc = Proc { child, port };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(30), "the stand-in did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        Standin { proc, count: hosts }
    }

    pub(crate) fn hosts(&self) -> Vec<(String, String)> {
        (0..self.count)
            .map(|i| {
                let name = standin::host_name("s", i);
                let url = self.proc.url(&format!("/h/{name}"));
                (name, url)
            })
            .collect()
    }

    /// Sets the churn: `rate` changes per container per second.
    async fn churn(&self, http: &reqwest::Client, rate: f64) {
        let r = http.post(self.proc.url(&format!("/_bench/churn?rate={rate}"))).send().await;
        assert!(r.is_ok_and(|r| r.status().is_success()), "the stand-in refused the churn rate");
    }

    async fn counts(&self, http: &reqwest::Client) -> serde_json::Value {
        match http.get(self.proc.url("/_bench/counts")).send().await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        }
    }
}

/// An overview tab kept open in the background, reading and dropping
/// everything (reopened if the console drops it); closed when dropped.
struct Watcher(tokio::task::JoinHandle<()>);

impl Watcher {
    fn open(web: &Proc, cookie: &str) -> Watcher {
        let (base, cookie) = (web.url(""), cookie.to_owned());
        Watcher(tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                if let Ok(r) =
                    http.get(format!("{base}/api/live?scope=overview")).header("cookie", &cookie).send().await
                {
                    let mut body = r.bytes_stream();
                    while let Some(Ok(_)) = body.next().await {}
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }))
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One real sidecar's answers over the bench containers, for the stand-ins.
pub(crate) async fn record(http: &reqwest::Client, sc: &Proc, path: &Path) -> usize {
    let get = |route: &'static str| {
        let http = http.clone();
        let url = sc.url(route);
        async move {
            let r = http.get(url).bearer_auth(SECRET).send().await.expect(route);
            assert!(r.status().is_success(), "{route} answered {}", r.status());
            r.bytes().await.expect(route)
        }
    };
    // Two rounds in, every running container has a CPU reading.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rec = Recorded {
        containers: serde_json::from_slice(&get("/v1/containers").await).expect("a container list"),
        stats: serde_json::from_slice(&get("/v1/stats").await).expect("a stats snapshot"),
        disk: serde_json::from_slice(&get("/v1/disk").await).expect("a disk report"),
    };
    let n = rec.containers.len();
    std::fs::write(path, serde_json::to_vec(&rec).expect("json")).expect("write the recording");
    n
}

fn mb(bytes: u64) -> f64 {
    (bytes as f64 / 1e5).round() / 10.0
}

/// Kilobytes, to the byte.
fn kb(bytes: f64) -> f64 {
    bytes.round() / 1000.0
}

/// What one size of fleet measured, for the comparison rows.
#[derive(Default)]
struct Size {
    idle: f64,
    churn1: f64,
    snapshot: usize,
}

pub async fn fleet_scale(dir: &Path, site_root: &Path, plan: &Plan) -> Vec<Figure> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(300)).build().expect("client");
    let mut out = Vec::new();
    let ids = rig::ensure_fleet(PER_HOST);
    let real_name = |i: usize| format!("real{:02}", i + 1);
    let stand_count = plan.hosts.saturating_sub(plan.real);
    // Over tunnels, the console comes first: the hosts dial it.
    let agent = plan.tunnel.then(|| {
        let mut hosts: Vec<(String, String)> = (0..plan.real).map(|i| (real_name(i), "outbound".into())).collect();
        hosts.extend((0..stand_count).map(|i| (standin::host_name("s", i), "outbound".into())));
        rig::web_with_agent(dir, "web-50", &hosts, site_root, &[])
    });
    eprintln!("  starting {} real sidecars{}", plan.real, if plan.tunnel { ", outbound" } else { "" });
    let real: Vec<Proc> = (0..plan.real)
        .map(|i| match &agent {
            Some((_, url, pin)) => rig::sidecar_outbound(dir, &real_name(i), url, pin, &real_name(i)),
            None => rig::sidecar(dir, &real_name(i)),
        })
        .collect();
    let recorded = dir.join("recorded.json");
    let first = real.first().expect("at least one real sidecar");
    crate::scenarios::wait_for_stats(&http, first, PER_HOST).await;
    let n = record(&http, first, &recorded).await;
    eprintln!("  recorded {n} containers from real01");

    // 50 × 100: the real sidecars and the stand-ins.
    let stand = Standin::start(dir, &recorded, stand_count, agent.as_ref().map(|(_, u, p)| (u.as_str(), p.as_str())));
    let mut hosts: Vec<(String, String)> = real.iter().enumerate().map(|(i, p)| (real_name(i), p.url(""))).collect();
    hosts.extend(stand.hosts());
    let total = hosts.len() * PER_HOST;
    let web = match agent {
        Some((web, _, _)) => web,
        None => rig::web_urls(dir, "web-50", &hosts, site_root),
    };
    let cookie = rig::login(&web).await;
    // An operator's tab open throughout: the console follows stats while a
    // page shows them, so the measured tabs join a console in its steady state.
    let watcher = Watcher::open(&web, &cookie);
    let load = Instant::now();
    let mirror = live::wait_for_fleet(&http, &web.url(""), &cookie, hosts.len(), total, Duration::from_secs(180)).await;
    eprintln!(
        "  console over {} hosts ({} containers) in {:.1}s; snapshot {} KB",
        hosts.len(),
        mirror.containers(),
        load.elapsed().as_secs_f64(),
        mirror.full_bytes / 1000
    );
    // A stand-in container for the one-container tab.
    let s0 = standin::host_name("s", 0);
    let one = (s0.clone(), live::first_id(&http, &web.url(""), &cookie, &s0).await);
    let fifty = measure_size(&http, &web, &cookie, &stand, plan, total, &one, &mut out, true).await;

    // Clients, at 1 % churn (a fleet that moves, as production ones do).
    stand.churn(&http, stand_rate(0.01, total, stand.count)).await;
    for clients in [1usize, 100, 1000] {
        out.extend(clients_figures(&web, &cookie, clients, plan, total, "1 %").await);
    }

    // A real kill, seen by the console through the real sidecars' events.
    let engine = rig::engine_pids();
    let engine_cpu = || engine.iter().map(|&p| rig::cpu_seconds(p)).sum::<f64>();
    let (e0, t0) = (engine_cpu(), Instant::now());
    let mut lags = Vec::new();
    for id in ids.iter().take(if plan.quick { 2 } else { 5 }) {
        lags.push(live::kill_to_live(&http, &web, &cookie, "real01", id).await);
        testkit::docker(&["start", id]);
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let engine_cores = (engine_cpu() - e0) / t0.elapsed().as_secs_f64();
    stand.churn(&http, 0.0).await;
    let mut lag_ms: Vec<f64> = lags.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    let max = lag_ms.iter().copied().fold(0.0, f64::max);
    let med = rig::median(&mut lag_ms);
    eprintln!("  kill → exited on the live stream: median {med:.0} ms, max {max:.0} ms");
    out.push(
        Figure::new(SCENARIO, "docker kill → the stream says exited, median", Some(total), round3(med / 1000.0), "s")
            .at_most(2.0)
            .note(format!(
                "a real container, seen by each of the {} real sidecars; stand-ins churning at 1 %/s; the engine (dockerd + containerd) busy {engine_cores:.2} cores meanwhile",
                plan.real
            )),
    );
    out.push(
        Figure::new(SCENARIO, "docker kill → the stream says exited, max", Some(total), round3(max / 1000.0), "s")
            .at_most(2.0)
            .note(format!("{} kills", lags.len())),
    );
    out.extend(render(&http, &web, &cookie, plan.renders(), total, true).await);
    drop(watcher);
    drop(web);
    drop(stand);
    drop(real);
    rig::remove_all();

    if plan.big > 0 {
        let stand = Standin::start(dir, &recorded, plan.big, None);
        let hosts = stand.hosts();
        let total = hosts.len() * PER_HOST;
        let web = rig::web_urls(dir, "web-big", &hosts, site_root);
        let cookie = rig::login(&web).await;
        let _watcher = Watcher::open(&web, &cookie);
        let load = Instant::now();
        let mirror =
            live::wait_for_fleet(&http, &web.url(""), &cookie, hosts.len(), total, Duration::from_secs(600)).await;
        eprintln!(
            "  console over {} stand-in hosts ({} containers) in {:.1}s; snapshot {} KB",
            hosts.len(),
            mirror.containers(),
            load.elapsed().as_secs_f64(),
            mirror.full_bytes / 1000
        );
        let s0 = standin::host_name("s", 0);
        let one = (s0.clone(), live::first_id(&http, &web.url(""), &cookie, &s0).await);
        let big = measure_size(&http, &web, &cookie, &stand, plan, total, &one, &mut out, false).await;
        // Idle, then moving: a snapshot's JSON is shared by the clients of one version only.
        out.extend(clients_figures(&web, &cookie, 100, plan, total, "0 %").await);
        stand.churn(&http, stand_rate(0.01, total, stand.count)).await;
        out.extend(clients_figures(&web, &cookie, 100, plan, total, "1 %").await);
        stand.churn(&http, 0.0).await;
        out.extend(render(&http, &web, &cookie, plan.renders().min(3), total, false).await);
        let growth = |a: f64, b: f64| round3(b / a.max(1.0));
        out.push(
            Figure::new(
                SCENARIO,
                format!("overview tab bytes/s at 1 % churn, {} ÷ {} hosts", plan.big, plan.hosts),
                Some(total),
                growth(fifty.churn1, big.churn1),
                "×",
            )
            .note(format!(
                "fleet {}× larger; snapshot {} ÷ {} KB",
                plan.big / plan.hosts.max(1),
                big.snapshot / 1000,
                fifty.snapshot / 1000
            )),
        );
        out.push(
            Figure::new(
                SCENARIO,
                format!("overview tab bytes/s idle, {} ÷ {} hosts", plan.big, plan.hosts),
                Some(total),
                growth(fifty.idle, big.idle),
                "×",
            )
            .note(format!("{:.1} and {:.1} B/s (below 1 B/s counted as 1)", big.idle, fifty.idle)),
        );
    }
    out
}

/// The stand-ins' rate that makes `fleet_rate` of the whole fleet change per
/// second (the real hosts' containers are idle: the stand-ins carry all of it).
fn stand_rate(fleet_rate: f64, total: usize, stand_hosts: usize) -> f64 {
    let stand = (stand_hosts * PER_HOST).max(1);
    (fleet_rate * total as f64 / stand as f64).min(1.0)
}

/// Per-tab bytes at each churn rate, the snapshot, and the overview's render.
#[allow(clippy::too_many_arguments)]
async fn measure_size(
    http: &reqwest::Client,
    web: &Proc,
    cookie: &str,
    stand: &Standin,
    plan: &Plan,
    total: usize,
    one: &(String, Option<String>),
    out: &mut Vec<Figure>,
    first_size: bool,
) -> Size {
    let hosts = total / PER_HOST;
    let mut size = Size::default();
    let rates: &[f64] = if first_size { &[0.0, 0.01, 0.10] } else { &[0.0, 0.01] };
    for &rate in rates {
        stand.churn(http, stand_rate(rate, total, stand.count)).await;
        // Let the console settle into the rate (rounds, re-lists) first.
        tokio::time::sleep(Duration::from_secs(if plan.quick { 3 } else { 6 })).await;
        let counts0 = stand.counts(http).await;
        let me = std::process::id();
        let (cpu0, stand_cpu0, me0) =
            (rig::cpu_seconds(web.pid()), rig::cpu_seconds(stand.proc.pid()), rig::cpu_seconds(me));
        let started = Instant::now();
        // Three tabs at once: the overview, a page showing only the hosts, one container's page.
        let mut tabs = vec![("overview", "scope=overview".to_owned()), ("hosts", "scope=hosts".to_owned())];
        if let (h, Some(id)) = one {
            tabs.push(("container", format!("scope=container&host={h}&id={id}")));
        }
        let mut tasks = Vec::new();
        for (label, query) in tabs {
            let (http, base, cookie, window) = (http.clone(), web.url(""), cookie.to_owned(), plan.window());
            tasks.push(tokio::spawn(async move {
                let mut s = Stream::open(&http, &base, &cookie, &query).await;
                // The snapshot first, then the window.
                let first = s.next(Duration::from_secs(120)).await.expect("a first frame");
                let mut tally = Tally::default();
                let t = Instant::now();
                s.drain_until(t + window, &mut tally).await;
                (label, first.bytes, tally, t.elapsed())
            }));
        }
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.expect("a live tab"));
        }
        let secs = started.elapsed().as_secs_f64();
        let cpu = (rig::cpu_seconds(web.pid()) - cpu0) / secs;
        let stand_cpu = (rig::cpu_seconds(stand.proc.pid()) - stand_cpu0) / secs;
        let me_cpu = (rig::cpu_seconds(me) - me0) / secs;
        let counts1 = stand.counts(http).await;
        let delta = |k: &str| counts1[k].as_u64().unwrap_or(0).saturating_sub(counts0[k].as_u64().unwrap_or(0));
        let sidecar_note = format!(
            "console CPU {cpu:.2} cores (stand-ins {stand_cpu:.2}, bench clients {me_cpu:.2}); stand-ins made {} stats and {} state changes, served {} lists, {} stats (200) and {} 304s",
            delta("stats_changes"),
            delta("state_changes"),
            delta("lists"),
            delta("stats_200"),
            delta("stats_304")
        );
        let pct = format!("{:.0} %", rate * 100.0);
        for (label, snapshot, tally, took) in results {
            let per_s = tally.bytes as f64 / took.as_secs_f64();
            eprintln!(
                "  {hosts} hosts, {pct} churn, {label} tab: {:.1} KB/s over {:.0}s ({}), snapshot {} KB; {sidecar_note}",
                per_s / 1000.0,
                took.as_secs_f64(),
                tally.describe(),
                snapshot / 1000
            );
            if label == "overview" {
                if rate == 0.0 {
                    size.idle = per_s;
                    size.snapshot = snapshot;
                    out.push(
                        Figure::new(SCENARIO, "live snapshot, overview tab", Some(total), kb(snapshot as f64), "KB")
                            .note("the first event of a fresh stream"),
                    );
                }
                if rate == 0.01 {
                    size.churn1 = per_s;
                }
            }
            // The targets are for 50 × 100.
            let target = match (first_size && label == "overview", rate) {
                (true, r) if r <= 0.0 => Some(5.0),
                (true, r) if (r - 0.01).abs() < 1e-9 => Some(100.0),
                _ => None,
            };
            let f = Figure::new(
                SCENARIO,
                format!("live bytes/s per client, {label} tab, {pct} churn/s"),
                Some(total),
                kb(per_s),
                "KB/s",
            )
            .note(if label == "overview" {
                format!("{:.0}s after the snapshot: {}; {sidecar_note}", took.as_secs_f64(), tally.describe())
            } else {
                let got = tally.describe();
                format!(
                    "snapshot {:.1} KB; then {}",
                    snapshot as f64 / 1000.0,
                    if got.is_empty() { "nothing but keep-alives" } else { &got }
                )
            });
            out.push(match target {
                Some(t) => f.at_most(t),
                None => f,
            });
        }
    }
    stand.churn(http, 0.0).await;
    size
}

/// The overview's server render, signed in (idle fleet); then the console's RSS.
async fn render(
    http: &reqwest::Client,
    web: &Proc,
    cookie: &str,
    renders: usize,
    total: usize,
    first_size: bool,
) -> Vec<Figure> {
    let hosts = total / PER_HOST;
    let mut out = Vec::new();
    let rss_before = rig::rss_bytes(web.pid());
    let mut lat = Vec::new();
    let mut html = 0;
    for _ in 0..renders {
        let t = Instant::now();
        let r = http.get(web.url("/")).header("cookie", cookie).send().await.expect("GET /");
        assert!(r.status().is_success(), "GET / answered {}", r.status());
        let body = r.bytes().await.expect("page body");
        lat.push(t.elapsed());
        html = body.len();
    }
    lat.sort();
    let p50 = rig::pct_ms(&lat, 50.0);
    let rss_after = rig::rss_bytes(web.pid());
    eprintln!(
        "  {hosts} hosts: SSR overview p50 {p50:.1} ms, {} KB of HTML; console RSS {:.1} → {:.1} MB",
        html / 1000,
        rss_before as f64 / 1e6,
        rss_after as f64 / 1e6
    );
    let f = Figure::new(SCENARIO, "overview SSR p50", Some(total), round3(p50), "ms").note(format!(
        "{} renders, p99 {:.0} ms",
        lat.len(),
        rig::pct_ms(&lat, 99.0)
    ));
    out.push(if first_size { f.at_most(100.0) } else { f });
    let f = Figure::new(SCENARIO, "overview HTML size", Some(total), mb(html as u64), "MB");
    out.push(if first_size { f.at_most(1.0) } else { f });
    out.push(
        Figure::new(SCENARIO, "console RSS after the renders", Some(total), mb(rss_after), "MB")
            .note(format!("{:.1} MB before them", rss_before as f64 / 1e6)),
    );
    out
}

/// The console's memory and CPU with `clients` overview tabs reading everything.
async fn clients_figures(
    web: &Proc,
    cookie: &str,
    clients: usize,
    plan: &Plan,
    total: usize,
    churn: &str,
) -> Vec<Figure> {
    let before = rig::rss_bytes(web.pid());
    let r = live_clients(web, cookie, clients, plan.hold()).await;
    eprintln!(
        "  {clients} live clients, {churn} churn ({} connected in {:.1}s): web RSS peak {:.1} MB, after {:.1} MB; CPU {:.2} cores; {:.1} KB/s per client; {} resyncs",
        r.connected,
        r.connect_time.as_secs_f64(),
        r.peak_rss as f64 / 1e6,
        r.end_rss as f64 / 1e6,
        r.cpu,
        r.per_client_bytes_s / 1000.0,
        r.resyncs
    );
    assert!(r.connected * 10 >= clients * 9, "only {} of {clients} live clients connected", r.connected);
    let label = if clients == 1000 { "1 000".to_owned() } else { clients.to_string() };
    let rss = Figure::new(
        SCENARIO,
        format!("console RSS, peak, {label} live client(s), {churn} churn"),
        Some(total),
        mb(r.peak_rss),
        "MB",
    )
    .note(format!(
        "{:.1} MB before they connected; {} connected in {:.0}s (snapshots included); {:.1} MB at the end of a {:.0}s hold",
        before as f64 / 1e6,
        r.connected,
        r.connect_time.as_secs_f64(),
        r.end_rss as f64 / 1e6,
        plan.hold().as_secs_f64()
    ));
    vec![
        if clients == 1000 && total <= 5000 { rss.at_most(200.0) } else { rss },
        Figure::new(
            SCENARIO,
            format!("console CPU, {label} live client(s), {churn} churn"),
            Some(total),
            round3(r.cpu),
            "cores",
        )
        .note(format!(
            "over the hold, after every snapshot; {:.1} KB/s per client; {} resyncs",
            r.per_client_bytes_s / 1000.0,
            r.resyncs
        )),
    ]
}

struct ClientsRun {
    connected: usize,
    connect_time: Duration,
    peak_rss: u64,
    end_rss: u64,
    cpu: f64,
    per_client_bytes_s: f64,
    resyncs: u64,
}

/// `clients` overview streams, opened in batches of 100 (each batch's
/// snapshots read before the next opens), then held for `hold`. Each reads
/// every byte and looks only at event lines (no JSON: the bench shares the
/// machine with the console).
async fn live_clients(web: &Proc, cookie: &str, clients: usize, hold: Duration) -> ClientsRun {
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
    let connected = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let resyncs = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(tokio::sync::Notify::new());
    let pid = web.pid();
    let sampler_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak) = (sampler_stop.clone(), peak.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rig::rss_bytes(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let start = Instant::now();
    let mut tasks = Vec::new();
    for batch in (0..clients).collect::<Vec<_>>().chunks(100) {
        for _ in batch {
            let (http, url, cookie) = (http.clone(), web.url("/api/live?scope=overview"), cookie.to_owned());
            let (connected, bytes, resyncs, stop) = (connected.clone(), bytes.clone(), resyncs.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let Ok(r) = http.get(url).header("cookie", cookie).send().await else { return };
                let mut s = r.bytes_stream();
                let mut scan = EventScan::default();
                loop {
                    tokio::select! {
                        _ = stop.notified() => break,
                        c = s.next() => match c {
                            Some(Ok(chunk)) => {
                                bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                                let (frames, resync) = scan.feed(&chunk);
                                if frames > 0 && !scan.counted {
                                    scan.counted = true;
                                    connected.fetch_add(1, Ordering::Relaxed);
                                }
                                resyncs.fetch_add(resync, Ordering::Relaxed);
                            }
                            _ => break,
                        },
                    }
                }
            }));
        }
        let want = tasks.len();
        let t = Instant::now();
        while connected.load(Ordering::Relaxed) < want && t.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let connect_time = start.elapsed();
    // Settle, then the hold: CPU and bytes after every snapshot is out.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu0, b0, t0) = (rig::cpu_seconds(pid), bytes.load(Ordering::Relaxed), Instant::now());
    let r0 = resyncs.load(Ordering::Relaxed);
    tokio::time::sleep(hold).await;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = (rig::cpu_seconds(pid) - cpu0) / secs;
    let n = connected.load(Ordering::Relaxed);
    let per_client_bytes_s = (bytes.load(Ordering::Relaxed) - b0) as f64 / secs / n.max(1) as f64;
    let end_rss = rig::rss_bytes(pid);
    stop.notify_waiters();
    for t in tasks {
        t.abort();
    }
    sampler_stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    // Let the console drop the streams before the next measure.
    tokio::time::sleep(Duration::from_secs(2)).await;
    ClientsRun {
        connected: n,
        connect_time,
        peak_rss: peak.load(Ordering::Relaxed).max(end_rss),
        end_rss,
        cpu,
        per_client_bytes_s,
        resyncs: resyncs.load(Ordering::Relaxed) - r0,
    }
}

/// Counts complete frames and `resync` events in a byte stream, looking only
/// at the first bytes of each line (a frame's one `data:` line can be megabytes).
#[derive(Default)]
struct EventScan {
    /// The last byte read was a newline (a second one ends a frame).
    after_newline: bool,
    /// The current line's first bytes, while they could still be `event: resync`.
    head: Vec<u8>,
    /// The rest of the current line does not matter.
    skip: bool,
    /// This client was counted as connected.
    counted: bool,
}

impl EventScan {
    /// Returns (frames ended, resync events seen) in `chunk`.
    fn feed(&mut self, chunk: &[u8]) -> (u64, u64) {
        const RESYNC: &[u8] = b"event: resync";
        let (mut frames, mut resyncs) = (0, 0);
        let mut i = 0;
        while i < chunk.len() {
            if self.skip {
                match memchr::memchr(b'\n', &chunk[i..]) {
                    Some(j) => i += j,
                    None => return (frames, resyncs),
                }
            }
            let b = chunk[i];
            i += 1;
            if b == b'\n' {
                if self.after_newline {
                    frames += 1;
                }
                self.after_newline = true;
                self.head.clear();
                self.skip = false;
                continue;
            }
            self.after_newline = false;
            self.head.push(b);
            if self.head == RESYNC {
                resyncs += 1;
                self.skip = true;
            } else if !RESYNC.starts_with(&self.head) {
                self.skip = true;
            }
        }
        (frames, resyncs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_scan_counts_frames_and_resyncs_across_chunks() {
        let stream =
            b"event: snapshot\nid: a-1\ndata: {\"x\":1}\n\n:\n\nevent: resync\ndata: {}\n\nevent: delta\ndata: {}\n\n";
        for cut in 1..stream.len() {
            let mut s = EventScan::default();
            let (f1, r1) = s.feed(&stream[..cut]);
            let (f2, r2) = s.feed(&stream[cut..]);
            assert_eq!((f1 + f2, r1 + r2), (4, 1), "cut at {cut}");
        }
    }

    #[test]
    fn the_stand_in_rate_makes_up_the_fleet_rate() {
        // 50 hosts, 30 of them stand-ins: 1 % of 5 000 is 50 a second, 50 / 3 000 per stand-in container.
        assert!((stand_rate(0.01, 5000, 30) - 50.0 / 3000.0).abs() < 1e-12);
        assert_eq!(stand_rate(0.01, 50_000, 500), 0.01);
    }
}
