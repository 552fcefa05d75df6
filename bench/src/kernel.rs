//! Scenario 12 (issue 16): stats from the kernel's counters. Side by side in
//! one run at 100 containers: what keeping every container's stats fresh
//! costs the engine with each stats source, against a stats stream per
//! container; the freshness served at a 1 s window; the sidecar's own CPU at
//! 200 containers; the cached answer and the sidecar's memory at 1 000.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::rig::{self, Proc, SECRET};
use crate::scenarios::{round3, stats_load, stream_every_container, wait_for_stats, Figure};

const SCENARIO: &str = "12. kernel stats";

/// A client asking `/v1/stats` once a second, as a console with an open
/// overview does, so the sidecar keeps its short window.
fn looker(sc: &Proc) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let (url, flag) = (sc.url("/v1/stats"), stop.clone());
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        while !flag.load(Ordering::Relaxed) {
            let _ = http.get(&url).bearer_auth(SECRET).send().await.map(|r| r.bytes());
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    stop
}

fn cpu(pids: &[u32]) -> f64 {
    pids.iter().map(|&p| rig::cpu_seconds(p)).sum()
}

/// Engine and sidecar CPU (cores) over `window` with a sidecar of `env` and a looker.
async fn cost_of(dir: &Path, name: &str, env: &[(&str, String)], n: usize, window: Duration) -> (f64, f64) {
    let engine = rig::engine_pids();
    let sc = rig::sidecar_with(dir, name, env);
    wait_for_stats(&reqwest::Client::new(), &sc, n).await;
    let stop = looker(&sc);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (e0, s0) = (cpu(&engine), rig::cpu_seconds(sc.pid()));
    tokio::time::sleep(window).await;
    let secs = window.as_secs_f64();
    let out = ((cpu(&engine) - e0) / secs, (rig::cpu_seconds(sc.pid()) - s0) / secs);
    stop.store(true, Ordering::Relaxed);
    out
}

type Env = Vec<(&'static str, String)>;

fn plain() -> Env {
    vec![("DOCKWARD_PLAIN_HTTP", "true".into())]
}

pub async fn kernel_stats(dir: &Path, quick: bool) -> Vec<Figure> {
    let mut out = Vec::new();
    let window = Duration::from_secs(if quick { 10 } else { 30 });
    let n = 100;
    let ids = rig::ensure_fleet(n);
    let engine = rig::engine_pids();

    let e0 = cpu(&engine);
    tokio::time::sleep(window).await;
    let idle = (cpu(&engine) - e0) / window.as_secs_f64();
    out.push(Figure::new(SCENARIO, "engine CPU, nothing watching", Some(n), round3(idle), "cores"));

    let (stream_engine, collector, got) = stream_every_container(&ids, &engine, window).await;
    let stream_extra = (stream_engine - idle).max(1e-6);
    out.push(
        Figure::new(SCENARIO, "engine CPU, a stats stream per container", Some(n), round3(stream_engine), "cores")
            .note(format!("collector {collector:.3} cores; {got} samples in {}s", window.as_secs())),
    );

    let with_proc = {
        let mut e = plain();
        e.push(("DOCKWARD_STATS_SOURCE", "cgroup".into()));
        e.push(("DOCKWARD_PROC_ROOT", "/proc".into()));
        e
    };
    let without_proc = {
        let mut e = plain();
        e.push(("DOCKWARD_STATS_SOURCE", "cgroup".into()));
        e
    };
    let engine_source = {
        let mut e = plain();
        e.push(("DOCKWARD_STATS_SOURCE", "engine".into()));
        e
    };
    let configs: [(&str, &str, &Env); 3] = [
        ("k-proc", "kernel counters, network from the namespaces (DOCKWARD_PROC_ROOT)", &with_proc),
        ("k-engine-net", "kernel counters, network from the engine every 30 s (compose's default)", &without_proc),
        ("engine", "the engine's stats API (DOCKWARD_STATS_SOURCE=engine, 2 s rounds)", &engine_source),
    ];
    for (name, what, env) in configs {
        let (e, s) = cost_of(dir, name, env, n, window).await;
        let ratio = (e - idle).max(0.0) / stream_extra;
        eprintln!("  {what}: engine {e:.3} cores (extra {:.3}), sidecar {s:.3}; ratio {ratio:.3}", e - idle);
        let f = Figure::new(
            SCENARIO,
            format!("extra engine CPU vs a stream per container: {what}"),
            Some(n),
            round3(ratio),
            "×",
        )
        .note(format!("engine {e:.3} cores (idle {idle:.3}, streams {stream_engine:.3}); sidecar {s:.3} cores"));
        out.push(if name == "engine" { f } else { f.at_most(0.1) });
    }

    // Freshness at a 1 s window: 10 clients polling 10/s.
    let sc = rig::sidecar_with(dir, "fresh", &with_proc);
    wait_for_stats(&reqwest::Client::new(), &sc, n).await;
    let (_, ages) = stats_load(&sc, 10, window, Some(Duration::from_millis(100))).await;
    let max = ages.last().copied().unwrap_or(0) as f64 / 1000.0;
    let median = ages.get(ages.len() / 2).copied().unwrap_or(0) as f64 / 1000.0;
    eprintln!("  freshness at 1 s: median {median:.3} s, max {max:.3} s over {} answers", ages.len());
    out.push(Figure::new(SCENARIO, "age served, median, 1 s window", Some(n), round3(median), "s"));
    out.push(
        Figure::new(SCENARIO, "age served, max, 1 s window", Some(n), round3(max), "s")
            .at_most(1.2)
            .note(format!("{} answers to 10 clients polling 10/s", ages.len())),
    );
    drop(sc);

    // 200 containers: the sidecar's own CPU at a 1 s window, and the cached answer.
    let n = 200;
    rig::ensure_fleet(n);
    let (_, s) = cost_of(dir, "k200", &with_proc, n, window).await;
    eprintln!("  sidecar CPU at {n}: {s:.4} cores");
    out.push(
        Figure::new(SCENARIO, "sidecar CPU, 1 s window, kernel source", Some(n), (s * 1e4).round() / 1e4, "cores")
            .at_most(0.02),
    );
    let sc = rig::sidecar_with(dir, "p200", &with_proc);
    wait_for_stats(&reqwest::Client::new(), &sc, n).await;
    let (lat, _) = stats_load(&sc, 100, window, Some(Duration::from_millis(100))).await;
    let p99 = rig::pct_ms(&lat, 99.0);
    out.push(
        Figure::new(SCENARIO, "cached stats p99, 100 clients polling 10/s", Some(n), round3(p99), "ms")
            .at_most(2.5)
            .note(format!("{} requests", lat.len())),
    );
    drop(sc);

    // 1 000 containers on one host (the ones beyond 200 with no network: a bridge holds 1 024 ports).
    let n = 1000;
    rig::ensure_fleet_with(n, &["--network", "none"]);
    // The default history is 61 points per container (15 min at 15 s); here the same 61 points
    // fill within the first minute, so the RSS read below is the steady state's.
    let mut full_history = with_proc.clone();
    full_history.push(("DOCKWARD_STATS_HISTORY", "60s".into()));
    full_history.push(("DOCKWARD_STATS_HISTORY_STEP", "1s".into()));
    let sc = rig::sidecar_with(dir, "k1000", &full_history);
    wait_for_stats(&reqwest::Client::new(), &sc, n).await;
    let (lat, _) = stats_load(&sc, 10, window, Some(Duration::from_millis(100))).await;
    let p99 = rig::pct_ms(&lat, 99.0);
    let engine_now = rig::engine_pids();
    let (_, s) = {
        let (e0, s0) = (cpu(&engine_now), rig::cpu_seconds(sc.pid()));
        let stop = looker(&sc);
        tokio::time::sleep(window).await;
        stop.store(true, Ordering::Relaxed);
        let secs = window.as_secs_f64();
        ((cpu(&engine_now) - e0) / secs, (rig::cpu_seconds(sc.pid()) - s0) / secs)
    };
    let rss = rig::rss_bytes(sc.pid()) as f64 / 1e6;
    eprintln!("  {n} containers: p99 {p99:.3} ms, RSS {rss:.1} MB, sidecar {s:.3} cores");
    out.push(
        Figure::new(SCENARIO, "cached stats p99, 10 clients polling 10/s", Some(n), round3(p99), "ms")
            .at_most(2.0)
            .note(format!("{} requests", lat.len())),
    );
    out.push(Figure::new(SCENARIO, "sidecar RSS", Some(n), (rss * 10.0).round() / 10.0, "MB").at_most(20.0));
    out.push(Figure::new(SCENARIO, "sidecar CPU, 1 s window, kernel source", Some(n), round3(s), "cores"));
    drop(sc);
    rig::remove_all();
    out
}
