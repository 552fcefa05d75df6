//! The stats cache: sane values, history, and coalescing of many clients
//! into one engine round per window (engine calls counted at the socket).

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

#[tokio::test]
async fn stats_values_are_sane() {
    let scope = unique("scope");
    let label = format!("dockward.scope={scope}");
    let busy = TestContainer::run("busy", &["--label", &label], "yes > /dev/null");
    let idle = TestContainer::run("idle", &["--label", &label, "-m", "64m"], "sleep 600");
    let scope_arg = format!("--scope-label=dockward.scope={scope}");
    let sc = Sidecar::start(&[&scope_arg]).await;
    let snap = eventually(Duration::from_secs(15), "two samples with CPU %", || async {
        let s = sc.json("/v1/stats").await;
        let all = s["containers"].as_array().unwrap();
        let ok = all.len() == 2 && all.iter().all(|c| c["cpu_percent"].is_number());
        ok.then_some(s)
    })
    .await;
    assert_eq!(snap["stale"], false);
    assert!(snap["age_ms"].as_u64().unwrap() < 5_000);
    let get = |id: &str| snap["containers"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap().clone();
    let b = get(&busy.id);
    let i = get(&idle.id);
    let busy_cpu = b["cpu_percent"].as_f64().unwrap();
    assert!(busy_cpu > 20.0 && busy_cpu <= 100.0 * 64.0, "busy container CPU {busy_cpu}");
    assert!(i["cpu_percent"].as_f64().unwrap() < 10.0, "idle container CPU {}", i["cpu_percent"]);
    assert_eq!(i["memory_limit_bytes"], 64 * 1024 * 1024);
    let mem = i["memory_bytes"].as_u64().unwrap();
    assert!(mem > 0 && mem < 64 * 1024 * 1024, "memory {mem}");
    assert!(b["pids"].as_u64().unwrap() >= 1);
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    assert!((now_ms - b["time_ms"].as_i64().unwrap()).abs() < 30_000);

    // Scope: no other container is visible.
    let list = sc.json("/v1/containers").await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    // The running container's summary carries its latest sample.
    let row = list.as_array().unwrap().iter().find(|c| c["id"] == busy.id.as_str()).unwrap();
    assert!(row["stats"]["memory_bytes"].is_number());

    // History accumulates one point per round.
    let h = eventually(Duration::from_secs(10), "history points", || async {
        let h = sc.json(&format!("/v1/stats/history?ref={}&window=60", busy.name)).await;
        (h["points"].as_array().unwrap().len() >= 3).then_some(h)
    })
    .await;
    assert_eq!(h["id"], busy.id.as_str());
    let pts = h["points"].as_array().unwrap();
    assert!(pts.windows(2).all(|w| w[0]["time_ms"].as_i64() < w[1]["time_ms"].as_i64()), "oldest first");
    // Out of scope: a container without the label does not exist for this sidecar.
    let other = TestContainer::run("unscoped", &[], "sleep 600");
    let r = sc.get(&format!("/v1/containers/{}", other.id)).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_cost_one_engine_round_per_window() {
    let scope = unique("coalesce");
    let label = format!("dockward.scope={scope}");
    let containers: Vec<TestContainer> =
        (0..3).map(|i| TestContainer::run(&format!("co{i}"), &["--label", &label], "sleep 600")).collect();
    let proxy = CountingProxy::start().await;
    let host = proxy.docker_host();
    let scope_arg = format!("--scope-label=dockward.scope={scope}");
    let sc = Sidecar::start(&[&host, &scope_arg, "--stats-ttl=2s", "--rate-read=100000/s"]).await;
    // Wait for the first round.
    eventually(Duration::from_secs(10), "first round", || async {
        let s = sc.json("/v1/stats").await;
        (s["containers"].as_array().unwrap().len() == 3).then_some(())
    })
    .await;
    let before = proxy.count("stats");
    let started = Instant::now();
    let mut served = 0u64;
    while started.elapsed() < Duration::from_secs(6) {
        let batch: Vec<_> = (0..100).map(|_| sc.get("/v1/stats").send()).collect();
        for r in futures_util::future::join_all(batch).await {
            let v: Value = r.unwrap().json().await.unwrap();
            assert_eq!(v["containers"].as_array().unwrap().len(), 3);
            served += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let calls = proxy.count("stats") - before;
    let windows = (elapsed / 2.0).ceil() as u64 + 1;
    assert!(served >= 300, "served only {served}");
    assert!(
        calls <= windows * 3,
        "{calls} engine stats calls for {served} requests over {elapsed:.1}s (at most {} allowed)",
        windows * 3
    );
    assert!(calls >= 3, "the refresher must keep sampling ({calls} calls)");
    drop(containers);
}
