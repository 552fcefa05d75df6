//! The scenarios of issue #5, each measured side by side with what users have
//! today, in the same run.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::rig::{self, Proc, SECRET};

/// One measured figure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Figure {
    pub scenario: String,
    pub metric: String,
    pub n: Option<usize>,
    pub value: f64,
    pub unit: String,
    /// The target, as text, e.g. `≤ 5`.
    pub target: Option<String>,
    pub met: Option<bool>,
    pub note: String,
    /// When and with what command it was measured (date and command).
    #[serde(default)]
    pub run: String,
}

impl Figure {
    pub fn new(scenario: &str, metric: impl Into<String>, n: Option<usize>, value: f64, unit: &str) -> Self {
        Self {
            scenario: scenario.to_owned(),
            metric: metric.into(),
            n,
            value,
            unit: unit.to_owned(),
            target: None,
            met: None,
            note: String::new(),
            run: String::new(),
        }
    }
    pub fn at_most(mut self, limit: f64) -> Self {
        self.target = Some(format!("≤ {limit}"));
        self.met = Some(self.value <= limit);
        self
    }
    pub fn at_least(mut self, limit: f64) -> Self {
        self.target = Some(format!("≥ {limit}"));
        self.met = Some(self.value >= limit);
        self
    }
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }
}

#[derive(serde::Deserialize)]
struct SnapshotHead {
    stale: bool,
    containers: Vec<serde::de::IgnoredAny>,
}

pub async fn wait_for_stats(http: &reqwest::Client, sc: &Proc, n: usize) {
    let start = Instant::now();
    loop {
        if let Ok(r) = http.get(sc.url("/v1/stats")).bearer_auth(SECRET).send().await {
            if let Ok(s) = r.json::<SnapshotHead>().await {
                if !s.stale && s.containers.len() == n {
                    return;
                }
            }
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the sidecar never served {n} containers' stats");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `age_ms` from a snapshot body, without parsing the rest (the client shares
/// the machine with the server: its work is kept small).
fn age_of(body: &[u8]) -> Option<u64> {
    let key = br#""age_ms":"#;
    let at = body.windows(key.len()).take(200).position(|w| w == key)? + key.len();
    let digits = body[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&body[at..at + digits]).ok()?.parse().ok()
}

/// `concurrency` clients asking `/v1/stats` for `dur`: each every `period`
/// (polling clients, staggered), or back to back when `period` is `None`
/// (a closed loop: a saturation test). Returns sorted latencies and every
/// snapshot age served.
pub async fn stats_load(
    sc: &Proc,
    concurrency: usize,
    dur: Duration,
    period: Option<Duration>,
) -> (Vec<Duration>, Vec<u64>) {
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().expect("client");
    let url = Arc::new(sc.url("/v1/stats"));
    let start = Instant::now();
    let deadline = start + dur;
    let mut tasks = Vec::new();
    for i in 0..concurrency {
        let (http, url) = (http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut ages = Vec::new();
            let mut next = period.map(|p| start + p.mul_f64(i as f64 / concurrency as f64));
            while Instant::now() < deadline {
                if let (Some(at), Some(p)) = (next, period) {
                    tokio::time::sleep_until(at.into()).await;
                    next = Some(at + p);
                }
                let t = Instant::now();
                let Ok(r) = http.get(url.as_str()).bearer_auth(SECRET).send().await else { continue };
                let Ok(body) = r.bytes().await else { continue };
                lat.push(t.elapsed());
                if let Some(age) = age_of(&body) {
                    ages.push(age);
                }
            }
            (lat, ages)
        }));
    }
    let mut lat = Vec::new();
    let mut ages = Vec::new();
    for t in tasks {
        if let Ok((l, a)) = t.await {
            lat.extend(l);
            ages.extend(a);
        }
    }
    lat.sort();
    ages.sort();
    (lat, ages)
}

/// `docker stats --no-stream` on the same containers: what dashboards shell out to.
fn docker_stats_cli(ids: &[String], runs: usize) -> f64 {
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let ok = std::process::Command::new("docker")
            .args(["stats", "--no-stream", "--format", "{{.ID}} {{.CPUPerc}} {{.MemUsage}}"])
            .args(ids)
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "docker stats --no-stream failed");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    rig::median(&mut times)
}

/// Scenarios 1, 2 and 4 (stats latency, freshness, footprint) at one fleet size.
pub async fn stats_at(n: usize, dir: &Path, quick: bool) -> Vec<Figure> {
    let ids = rig::ensure_fleet(n);
    let sc = rig::sidecar(dir, &format!("stats-{n}"));
    let http = reqwest::Client::new();
    wait_for_stats(&http, &sc, n).await;
    let mut out = Vec::new();
    let dur = Duration::from_secs(if quick { 4 } else { 10 });
    let poll = Duration::from_millis(100);
    let mut all_ages = Vec::new();
    let mut p50_one = f64::NAN;
    // Polling clients (each asks 10 times a second, 20× the console's rate): the targets.
    for c in [1usize, 10, 100] {
        let (lat, ages) = stats_load(&sc, c, dur, Some(poll)).await;
        let (p50, p99) = (rig::pct_ms(&lat, 50.0), rig::pct_ms(&lat, 99.0));
        if c == 1 {
            p50_one = p50;
        }
        eprintln!("  stats N={n} {c} polling client(s): {} requests, p50 {p50:.3} ms, p99 {p99:.3} ms", lat.len());
        out.push(Figure::new(
            "1. stats snapshot",
            format!("p50, {c} client(s) polling 10/s"),
            Some(n),
            round3(p50),
            "ms",
        ));
        let f =
            Figure::new("1. stats snapshot", format!("p99, {c} client(s) polling 10/s"), Some(n), round3(p99), "ms")
                .note(format!("{} requests in {}s", lat.len(), dur.as_secs()));
        out.push(if n == 200 { f.at_most(5.0) } else { f });
        all_ages.extend(ages);
    }
    // Saturation: 100 clients back to back, no pause (latency ≈ clients ÷ throughput).
    let (lat, sat_ages) = stats_load(&sc, 100, dur, None).await;
    let rps = lat.len() as f64 / dur.as_secs_f64();
    eprintln!(
        "  stats N={n} 100 clients back to back: {rps:.0} req/s, p50 {:.3} ms, p99 {:.3} ms",
        rig::pct_ms(&lat, 50.0),
        rig::pct_ms(&lat, 99.0)
    );
    let sat = "100 clients back to back (saturation)";
    out.push(Figure::new("1. stats snapshot", format!("throughput, {sat}"), Some(n), rps.round(), "req/s"));
    out.push(Figure::new("1. stats snapshot", format!("p50, {sat}"), Some(n), round3(rig::pct_ms(&lat, 50.0)), "ms"));
    out.push(Figure::new("1. stats snapshot", format!("p99, {sat}"), Some(n), round3(rig::pct_ms(&lat, 99.0)), "ms"));
    if let Some(&max) = sat_ages.last() {
        let med = sat_ages[sat_ages.len() / 2];
        out.push(Figure::new("2. freshness", format!("age served, median, {sat}"), Some(n), med as f64 / 1000.0, "s"));
        out.push(Figure::new("2. freshness", format!("age served, max, {sat}"), Some(n), max as f64 / 1000.0, "s"));
    }
    let cli = docker_stats_cli(&ids, if quick { 1 } else { 3 });
    eprintln!("  docker stats --no-stream N={n}: {cli:.0} ms");
    out.push(
        Figure::new("1. stats snapshot", "docker stats --no-stream (median of runs)", Some(n), cli, "ms")
            .note("the CLI, on the same containers"),
    );
    let ratio = cli / p50_one;
    let f = Figure::new("1. stats snapshot", "CLI time / sidecar p50 (1 client)", Some(n), ratio.round(), "×");
    out.push(if n == 200 { f.at_least(500.0) } else { f });
    if let (Some(&max), false) = (all_ages.last(), all_ages.is_empty()) {
        let med = all_ages[all_ages.len() / 2];
        out.push(
            Figure::new("2. freshness", "age served, median, polling clients", Some(n), med as f64 / 1000.0, "s")
                .at_most(2.0),
        );
        out.push(
            Figure::new("2. freshness", "age served, max, polling clients", Some(n), max as f64 / 1000.0, "s")
                .at_most(2.0),
        );
    }
    let rss = rig::rss_bytes(sc.pid()) as f64 / 1e6;
    let f = Figure::new("4. footprint", "sidecar RSS after the load", Some(n), (rss * 10.0).round() / 10.0, "MB");
    out.push(if n == 200 { f.at_most(20.0) } else { f });
    out
}

/// Scenario 4: the idle sidecar (no containers in scope) and the image sizes.
pub async fn footprint_idle(dir: &Path) -> Vec<Figure> {
    rig::remove_all();
    let sc = rig::sidecar(dir, "idle");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss = rig::rss_bytes(sc.pid()) as f64 / 1e6;
    let mut out = vec![Figure::new("4. footprint", "sidecar RSS idle", Some(0), (rss * 10.0).round() / 10.0, "MB")];
    for (image, budget) in [("dockward-sidecar:local", 10.0), ("dockward-web:local", 31.0)] {
        match rig::image_size(image) {
            Some(b) => out.push(
                Figure::new("4. footprint", format!("image {image}"), None, (b as f64 / 1e5).round() / 10.0, "MB")
                    .at_most(budget),
            ),
            None => eprintln!("  {image} not built (scripts/build-images.sh); size not measured"),
        }
    }
    out
}

/// Scenario 3: engine (dockerd + containerd) plus collector CPU while 100
/// containers' stats are kept fresh: the sidecar's rounds against one
/// `stats?stream=true` per container (the Dozzle / lazydocker way).
pub async fn daemon_cost(dir: &Path, quick: bool) -> Vec<Figure> {
    let n = 100;
    let ids = rig::ensure_fleet(n);
    let engine = rig::engine_pids();
    let window = Duration::from_secs(if quick { 10 } else { 30 });
    let cpu = |pids: &[u32]| pids.iter().map(|&p| rig::cpu_seconds(p)).sum::<f64>();

    // Idle baseline: nothing watching.
    let e0 = cpu(&engine);
    tokio::time::sleep(window).await;
    let idle = (cpu(&engine) - e0) / window.as_secs_f64();

    // The sidecar (its refresher runs with or without clients).
    let sc = rig::sidecar(dir, "cost");
    wait_for_stats(&reqwest::Client::new(), &sc, n).await;
    let (e0, s0) = (cpu(&engine), rig::cpu_seconds(sc.pid()));
    tokio::time::sleep(window).await;
    let (ours_engine, ours_sidecar) =
        ((cpu(&engine) - e0) / window.as_secs_f64(), (rig::cpu_seconds(sc.pid()) - s0) / window.as_secs_f64());
    let ours = ours_engine + ours_sidecar;
    drop(sc);

    // The comparator: a stats stream per container, all consumed.
    let (stream_engine, stream_collector, got) = stream_every_container(&ids, &engine, window).await;
    let streaming = stream_engine + stream_collector;
    eprintln!(
        "  daemon cost: idle {idle:.3}, sidecar {ours:.3}, streaming {streaming:.3} cores ({got} stream samples)"
    );
    vec![
        Figure::new("3. daemon cost", "engine CPU, nothing watching", Some(n), round3(idle), "cores"),
        Figure::new(
            "3. daemon cost",
            "engine + sidecar CPU (default source, no client)",
            Some(n),
            round3(ours),
            "cores",
        )
        .note(format!("engine {ours_engine:.3}, sidecar {ours_sidecar:.3}")),
        Figure::new(
            "3. daemon cost",
            "engine + collector CPU, a stream per container",
            Some(n),
            round3(streaming),
            "cores",
        )
        .note(format!(
            "engine {stream_engine:.3}, collector {stream_collector:.3}; {got} samples in {}s",
            window.as_secs()
        )),
        Figure::new("3. daemon cost", "sidecar / streaming", Some(n), round3(ours / streaming), "ratio").at_most(0.5),
    ]
}

/// One `stats?stream=true` per container, every sample consumed (the Dozzle /
/// lazydocker way): the engine's and this collector's CPU over `window`, in
/// cores, and the samples read.
pub async fn stream_every_container(ids: &[String], engine: &[u32], window: Duration) -> (f64, f64, u64) {
    let cpu = |pids: &[u32]| pids.iter().map(|&p| rig::cpu_seconds(p)).sum::<f64>();
    let me = std::process::id();
    let docker = bollard::Docker::connect_with_unix_defaults().expect("docker socket");
    let docker = docker.negotiate_version().await.expect("negotiate");
    let stop = Arc::new(tokio::sync::Notify::new());
    let samples = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for id in ids {
        let (docker, id, stop, samples) = (docker.clone(), id.clone(), stop.clone(), samples.clone());
        tasks.push(tokio::spawn(async move {
            let opts = bollard::query_parameters::StatsOptions { stream: true, one_shot: false };
            let mut s = docker.stats(&id, Some(opts));
            loop {
                tokio::select! {
                    _ = stop.notified() => break,
                    item = s.next() => match item {
                        Some(Ok(_)) => { samples.fetch_add(1, std::sync::atomic::Ordering::Relaxed); }
                        _ => break,
                    },
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await; // every stream has started
    let (e0, m0, k0) = (cpu(engine), rig::cpu_seconds(me), samples.load(std::sync::atomic::Ordering::Relaxed));
    tokio::time::sleep(window).await;
    let engine_cores = (cpu(engine) - e0) / window.as_secs_f64();
    let collector = (rig::cpu_seconds(me) - m0) / window.as_secs_f64();
    let got = samples.load(std::sync::atomic::Ordering::Relaxed) - k0;
    stop.notify_waiters();
    for t in tasks {
        t.abort();
    }
    (engine_cores, collector, got)
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Scenario 5: restart and a 100-line log tail through the sidecar, against
/// the same call straight to the socket, alternated.
pub async fn verb_overhead(dir: &Path, quick: bool) -> Vec<Figure> {
    let ids = rig::ensure_fleet(50);
    let sc = rig::sidecar(dir, "verbs");
    let http = reqwest::Client::new();
    wait_for_stats(&http, &sc, 50).await;
    let docker = bollard::Docker::connect_with_unix_defaults().expect("docker socket");
    let docker = docker.negotiate_version().await.expect("negotiate");
    let (a, b) = (&ids[0], &ids[1]);

    let rounds = if quick { 5 } else { 15 };
    let (mut via, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        let r = http.post(sc.url(&format!("/v1/containers/{a}/restart?timeout=0"))).bearer_auth(SECRET).send().await;
        assert!(r.is_ok_and(|r| r.status().is_success()), "restart through the sidecar failed");
        via.push(t.elapsed());
        let t = Instant::now();
        docker
            .restart_container(b, Some(bollard::query_parameters::RestartContainerOptions { t: Some(0), signal: None }))
            .await
            .expect("direct restart");
        direct.push(t.elapsed());
    }
    via.sort();
    direct.sort();
    let (rv, rd) = (rig::pct_ms(&via, 50.0), rig::pct_ms(&direct, 50.0));

    let tails = if quick { 50 } else { 300 };
    let (mut via, mut direct) = (Vec::new(), Vec::new());
    let c = &ids[2];
    for _ in 0..tails {
        let t = Instant::now();
        let r = http.get(sc.url(&format!("/v1/containers/{c}/logs?tail=100"))).bearer_auth(SECRET).send().await;
        let body = match r {
            Ok(r) => r.bytes().await.unwrap_or_default(),
            Err(_) => Default::default(),
        };
        assert!(!body.is_empty(), "logs through the sidecar failed");
        via.push(t.elapsed());
        let t = Instant::now();
        let opts = bollard::query_parameters::LogsOptions {
            stdout: true,
            stderr: true,
            tail: "100".into(),
            ..Default::default()
        };
        let lines: Vec<_> = docker.logs(c, Some(opts)).collect().await;
        assert!(!lines.is_empty());
        direct.push(t.elapsed());
    }
    via.sort();
    direct.sort();
    let (lv, ld) = (rig::pct_ms(&via, 50.0), rig::pct_ms(&direct, 50.0));
    eprintln!("  restart p50: sidecar {rv:.1} ms, socket {rd:.1} ms; logs p50: sidecar {lv:.2} ms, socket {ld:.2} ms");
    vec![
        Figure::new("5. verb overhead", "restart p50 through the sidecar", Some(50), round3(rv), "ms"),
        Figure::new("5. verb overhead", "restart p50 straight to the socket", Some(50), round3(rd), "ms"),
        Figure::new("5. verb overhead", "restart: added at p50", Some(50), round3(rv - rd), "ms")
            .at_most(10.0)
            .note(format!("{rounds} of each, alternated")),
        Figure::new("5. verb overhead", "logs tail=100 p50 through the sidecar", Some(50), round3(lv), "ms"),
        Figure::new("5. verb overhead", "logs tail=100 p50 straight to the socket", Some(50), round3(ld), "ms"),
        Figure::new("5. verb overhead", "logs: added at p50", Some(50), round3(lv - ld), "ms")
            .at_most(10.0)
            .note(format!("{tails} of each, alternated")),
    ]
}

/// Scenarios 6 and 7: the console over 3 sidecars × 100 containers.
pub async fn console(dir: &Path, site_root: &Path, quick: bool) -> Vec<Figure> {
    let n = 100;
    let ids = rig::ensure_fleet(n);
    let sidecars: Vec<Proc> = (1..=3).map(|i| rig::sidecar(dir, &format!("host{i}"))).collect();
    let names = ["host1", "host2", "host3"];
    let hosts: Vec<(&str, u16)> = names.iter().copied().zip(sidecars.iter().map(|s| s.port)).collect();
    let web = rig::web(dir, &hosts, site_root);
    let cookie = rig::login(&web).await;
    let http = reqwest::Client::new();
    let mut out = Vec::new();

    // Wait until the live stream carries all 300 containers (full frames or snapshot + deltas).
    crate::live::wait_for_fleet(&http, &web.url(""), &cookie, 3, 3 * n, Duration::from_secs(60)).await;

    // SSR of the overview.
    let mut lat = Vec::new();
    let mut size = 0;
    for _ in 0..if quick { 10 } else { 40 } {
        let t = Instant::now();
        let r = http.get(web.url("/")).header("cookie", &cookie).send().await.expect("GET /");
        assert!(r.status().is_success(), "GET / answered {}", r.status());
        let body = r.bytes().await.expect("page body");
        lat.push(t.elapsed());
        size = body.len();
    }
    lat.sort();
    eprintln!(
        "  SSR overview 3×{n}: p50 {:.1} ms, p99 {:.1} ms, {size} bytes",
        rig::pct_ms(&lat, 50.0),
        rig::pct_ms(&lat, 99.0)
    );
    out.push(
        Figure::new(
            "6. console",
            "SSR overview, 3 hosts × 100 containers, p50",
            Some(3 * n),
            round3(rig::pct_ms(&lat, 50.0)),
            "ms",
        )
        .at_most(50.0)
        .note(format!("{} renders, {} KB of HTML", lat.len(), size / 1000)),
    );
    out.push(Figure::new("6. console", "SSR overview, p99", Some(3 * n), round3(rig::pct_ms(&lat, 99.0)), "ms"));

    // Compressed assets, as served to a browser that accepts gzip and brotli.
    let mut total = 0u64;
    let mut parts = Vec::new();
    for asset in ["dockward_bg.wasm", "dockward.js", "dockward.css"] {
        let r = http
            .get(web.url(&format!("/pkg/{asset}")))
            .header("accept-encoding", "br, gzip")
            .send()
            .await
            .expect("asset");
        let enc = r.headers().get("content-encoding").and_then(|v| v.to_str().ok()).unwrap_or("identity").to_owned();
        let len = r.bytes().await.map(|b| b.len() as u64).unwrap_or(0);
        parts.push(format!("{asset} {} KB {enc}", len / 1000));
        total += len;
    }
    out.push(
        Figure::new(
            "6. console",
            "wasm + JS + CSS, compressed as served",
            None,
            (total as f64 / 100.0).round() / 10.0,
            "KB",
        )
        .at_most(400.0)
        .note(parts.join(", ")),
    );

    // Scenario 7 first (one quiet client), then the 1 000-client load.
    let mut lags = Vec::new();
    for id in ids.iter().take(if quick { 2 } else { 5 }) {
        lags.push(crate::live::kill_to_live(&http, &web, &cookie, "host1", id).await);
        testkit::docker(&["start", id]);
    }
    let mut lag_ms: Vec<f64> = lags.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    let max = lag_ms.iter().copied().fold(0.0, f64::max);
    let med = rig::median(&mut lag_ms);
    eprintln!("  kill → live stream: median {med:.0} ms, max {max:.0} ms");
    out.push(
        Figure::new(
            "7. live latency",
            "docker kill → /api/live reports it, median",
            Some(3 * n),
            (med / 10.0).round() / 100.0,
            "s",
        )
        .at_most(2.0),
    );
    out.push(
        Figure::new(
            "7. live latency",
            "docker kill → /api/live reports it, max",
            Some(3 * n),
            (max / 10.0).round() / 100.0,
            "s",
        )
        .at_most(2.0)
        .note(format!("{} kills", lags.len())),
    );

    let clients = 1000;
    let before = rig::rss_bytes(web.pid());
    let (peak, connected) = live_clients(&web, &cookie, clients, Duration::from_secs(if quick { 6 } else { 15 })).await;
    eprintln!("  {connected} live clients: web RSS {:.1} MB (idle {:.1} MB)", peak as f64 / 1e6, before as f64 / 1e6);
    assert_eq!(connected, clients, "not every live client connected");
    out.push(Figure::new(
        "6. console",
        "web RSS, no live clients",
        Some(3 * n),
        (before as f64 / 1e5).round() / 10.0,
        "MB",
    ));
    out.push(
        Figure::new(
            "6. console",
            "web RSS, peak with 1 000 live SSE clients",
            Some(3 * n),
            (peak as f64 / 1e5).round() / 10.0,
            "MB",
        )
        .at_most(150.0)
        .note("each client reads every push (full fleet JSON per sidecar poll)"),
    );
    drop(web);
    drop(sidecars);
    out
}

/// `clients` concurrent /api/live streams, each reading everything, for `hold`;
/// returns the console's peak RSS and how many connected.
async fn live_clients(web: &Proc, cookie: &str, clients: usize, hold: Duration) -> (u64, usize) {
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
    let connected = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, url, cookie, connected, stop) =
            (http.clone(), web.url("/api/live"), cookie.to_owned(), connected.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(r) = http.get(url).header("cookie", cookie).send().await else { return };
            let mut s = r.bytes_stream();
            let mut first = true;
            loop {
                tokio::select! {
                    _ = stop.notified() => break,
                    c = s.next() => match c {
                        Some(Ok(_)) => if first {
                            first = false;
                            connected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        },
                        _ => break,
                    },
                }
            }
        }));
    }
    let start = Instant::now();
    let mut peak = 0;
    while start.elapsed() < hold + Duration::from_secs(20) {
        peak = peak.max(rig::rss_bytes(web.pid()));
        let n = connected.load(std::sync::atomic::Ordering::Relaxed);
        if n == clients && start.elapsed() >= hold {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let n = connected.load(std::sync::atomic::Ordering::Relaxed);
    stop.notify_waiters();
    for t in tasks {
        t.abort();
    }
    (peak, n)
}

/// Issue 14: what HTTPS with the certificate pinned adds to a cached stats
/// request on loopback (target ≤ 1 ms at p50), over kept-alive connections
/// as the console holds them; and a new connection's handshake, for scale.
pub async fn tls_overhead(dir: &Path, quick: bool) -> Vec<Figure> {
    rig::ensure_fleet(50);
    let plain = rig::sidecar(dir, "tls-plain");
    let (secure, fp) = rig::sidecar_https(dir, "tls-pinned");
    let pinned = |pool: bool| {
        let verifier = std::sync::Arc::new(tls::PinVerifier::new(tls::Pins::fixed(vec![fp.parse().expect("a pin")])));
        let mut b = reqwest::Client::builder().use_preconfigured_tls(tls::client_config(verifier));
        if !pool {
            b = b.pool_max_idle_per_host(0);
        }
        b.build().expect("a pinned client")
    };
    let (http, https, fresh) = (reqwest::Client::new(), pinned(true), pinned(false));
    let https_url = format!("https://127.0.0.1:{}/v1/stats", secure.port);
    wait_for_stats(&http, &plain, 50).await;
    let get = |client: &reqwest::Client, url: String| {
        let client = client.clone();
        async move {
            let t = Instant::now();
            let r = client.get(url).bearer_auth(SECRET).send().await.expect("a stats answer");
            assert!(r.status().is_success());
            let _ = r.bytes().await;
            t.elapsed()
        }
    };
    // Warm both (the TLS sidecar's stats round too).
    for _ in 0..50 {
        get(&http, plain.url("/v1/stats")).await;
        get(&https, https_url.clone()).await;
    }
    let n = if quick { 300 } else { 3000 };
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        a.push(get(&http, plain.url("/v1/stats")).await);
        b.push(get(&https, https_url.clone()).await);
        if i % 10 == 0 {
            c.push(get(&fresh, https_url.clone()).await);
        }
    }
    a.sort();
    b.sort();
    c.sort();
    let (pa, pb, pc) = (rig::pct_ms(&a, 50.0), rig::pct_ms(&b, 50.0), rig::pct_ms(&c, 50.0));
    eprintln!("  stats p50: plain {pa:.3} ms, pinned HTTPS {pb:.3} ms; new TLS connection each time {pc:.3} ms");
    vec![
        Figure::new("9. TLS", "cached stats p50, plain HTTP", Some(50), round3(pa), "ms"),
        Figure::new("9. TLS", "cached stats p50, HTTPS pinned (kept-alive)", Some(50), round3(pb), "ms"),
        Figure::new("9. TLS", "HTTPS adds at p50", Some(50), round3(pb - pa), "ms")
            .at_most(1.0)
            .note(format!("{n} of each, alternated, on loopback; the console keeps its connections")),
        Figure::new("9. TLS", "cached stats p50, a new TLS connection each time", Some(50), round3(pc), "ms")
            .note(format!("{} requests: handshake (ECDSA P-256, TLS 1.3) included", c.len())),
    ]
}

/// Issue 14: what an outbound agent's tunnel adds to a call made through the
/// console (target ≤ 2 ms at p50): the same container's page (the sidecar's
/// inspect and stats history) asked of a host the console reaches over
/// pinned HTTPS and of one whose sidecar dialled in, alternated.
pub async fn tunnel_overhead(dir: &Path, site_root: &Path, quick: bool) -> Vec<Figure> {
    const S: &str = "10. tunnel";
    let ids = rig::ensure_fleet(50);
    let (direct, fp) = rig::sidecar_https(dir, "tun-direct");
    let hosts = vec![
        ("direct".to_owned(), format!("https://127.0.0.1:{}", direct.port)),
        ("edge".to_owned(), "outbound".to_owned()),
    ];
    let (web, agent, pin) = rig::web_with_agent(dir, "web-tunnel", &hosts, site_root, &[("direct", &fp)]);
    let edge = rig::sidecar_outbound(dir, "tun-edge", &agent, &pin, "edge");
    let cookie = rig::login(&web).await;
    let http = reqwest::Client::new();
    let id = ids.first().expect("a bench container").clone();
    let page = |host: &'static str| {
        let (http, url, cookie, id) = (http.clone(), web.url("/api/fn/container"), cookie.clone(), id.clone());
        async move {
            let t = Instant::now();
            let r = http.post(url).header("cookie", cookie).form(&[("host", host), ("id", &id)]).send().await;
            let ok = match r {
                Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                _ => false,
            };
            ok.then(|| t.elapsed())
        }
    };
    // Until both answer (the agent dials in within a second or two).
    let start = Instant::now();
    while page("direct").await.is_none() || page("edge").await.is_none() {
        assert!(start.elapsed() < Duration::from_secs(60), "the hosts did not answer through the console");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for _ in 0..50 {
        page("direct").await;
        page("edge").await;
    }
    let n = if quick { 300 } else { 3000 };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..n {
        a.push(page("direct").await.expect("the direct host's page"));
        b.push(page("edge").await.expect("the outbound host's page"));
    }
    a.sort();
    b.sort();
    let (pa, pb) = (rig::pct_ms(&a, 50.0), rig::pct_ms(&b, 50.0));
    eprintln!("  container page p50: direct HTTPS {pa:.3} ms, tunnelled {pb:.3} ms");
    drop((edge, direct, web));
    vec![
        Figure::new(S, "container page through the console p50, direct (pinned HTTPS)", Some(50), round3(pa), "ms"),
        Figure::new(S, "container page through the console p50, outbound agent (tunnel)", Some(50), round3(pb), "ms"),
        Figure::new(S, "the tunnel adds at p50", Some(50), round3(pb - pa), "ms").at_most(2.0).note(format!(
            "{n} of each, alternated, on loopback; each page is two sidecar calls (inspect, stats history)"
        )),
    ]
}
