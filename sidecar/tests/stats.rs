//! The stats cache: the values' shapes, scope, history, and coalescing of
//! many clients into one engine round per window (engine calls counted at
//! the socket). How fast or how fresh is measured in the bench, not here.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use testkit::sidecar::*;
use testkit::*;

#[tokio::test]
async fn stats_values_are_sane() {
    let scope = unique("scope");
    let label = format!("dockward.scope={scope}");
    let plain = TestContainer::run("plain", &["--label", &label], "sleep 600");
    let limited = TestContainer::run("limited", &["--label", &label, "-m", "64m"], "sleep 600");
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
    assert!(snap["age_ms"].is_u64(), "{snap}");
    let get = |id: &str| snap["containers"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap().clone();
    let p = get(&plain.id);
    let l = get(&limited.id);
    for c in [&p, &l] {
        assert!(c["cpu_percent"].as_f64().unwrap() >= 0.0, "{c}");
        assert!(c["time_ms"].as_i64().unwrap() > 0, "{c}");
    }
    assert_eq!(l["memory_limit_bytes"], 64 * 1024 * 1024);
    let mem = l["memory_bytes"].as_u64().unwrap();
    assert!(mem > 0 && mem < 64 * 1024 * 1024, "memory {mem}");
    assert!(p["pids"].as_u64().unwrap() >= 1);

    // Scope: no other container is visible.
    let list = sc.json("/v1/containers").await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    // The running container's summary carries its latest sample.
    let row = list.as_array().unwrap().iter().find(|c| c["id"] == plain.id.as_str()).unwrap();
    assert!(row["stats"]["memory_bytes"].is_number());

    // History accumulates one point per round.
    let h = eventually(Duration::from_secs(10), "history points", || async {
        let h = sc.json(&format!("/v1/stats/history?ref={}&window=60", plain.name)).await;
        (h["points"].as_array().unwrap().len() >= 3).then_some(h)
    })
    .await;
    assert_eq!(h["id"], plain.id.as_str());
    let pts = h["points"].as_array().unwrap();
    assert!(pts.windows(2).all(|w| w[0]["time_ms"].as_i64() < w[1]["time_ms"].as_i64()), "oldest first");
    // Out of scope: a container without the label does not exist for this sidecar.
    let other = TestContainer::run("unscoped", &[], "sleep 600");
    let r = sc.get(&format!("/v1/containers/{}", other.id)).send().await.unwrap();
    assert_eq!(r.status(), 404);

    // Each round is its ETag: sent back, it costs a 304 with no body until the next round.
    let r = sc.get("/v1/stats").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let tag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert!(tag.starts_with('"') && tag.ends_with('"'), "{tag}");
    let tag = eventually(Duration::from_secs(10), "a 304 for the round just read", || async {
        let r = sc.get("/v1/stats").send().await.unwrap();
        let tag = r.headers()["etag"].to_str().unwrap().to_owned();
        let again = sc.get("/v1/stats").header("if-none-match", &tag).send().await.unwrap();
        match again.status().as_u16() {
            304 => {
                assert_eq!(again.headers()["etag"], tag.as_str());
                assert!(again.bytes().await.unwrap().is_empty(), "a 304 has no body");
                Some(tag)
            }
            // The next round came between the two requests: a new tag, a full answer.
            200 => {
                assert_ne!(again.headers()["etag"], tag.as_str());
                None
            }
            other => panic!("{other}"),
        }
    })
    .await;
    let next = eventually(Duration::from_secs(10), "a new round", || async {
        let r = sc.get("/v1/stats").header("if-none-match", &tag).send().await.unwrap();
        (r.status() == 200).then_some(r)
    })
    .await;
    assert_ne!(next.headers()["etag"], tag.as_str(), "a new round has a new tag");
    assert_eq!(next.json::<Value>().await.unwrap()["containers"].as_array().unwrap().len(), 2);
    let wrong = sc.get("/v1/stats").header("if-none-match", "\"nope\"").send().await.unwrap();
    assert_eq!(wrong.status(), 200);
}

/// Every round asks the engine once per container however many clients read
/// it: a count relation between engine calls and the rounds the clients saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_cost_one_engine_round_per_window() {
    const CONTAINERS: u64 = 3;
    let scope = unique("coalesce");
    let label = format!("dockward.scope={scope}");
    let containers: Vec<TestContainer> =
        (0..CONTAINERS).map(|i| TestContainer::run(&format!("co{i}"), &["--label", &label], "sleep 600")).collect();
    let proxy = CountingProxy::start().await;
    let host = proxy.docker_host();
    let scope_arg = format!("--scope-label=dockward.scope={scope}");
    let sc = Sidecar::start(&[&host, &scope_arg, "--stats-ttl=2s", "--rate-read=100000/s"]).await;
    // Wait for the first round.
    eventually(Duration::from_secs(10), "first round", || async {
        let s = sc.json("/v1/stats").await;
        (s["containers"].as_array().unwrap().len() == CONTAINERS as usize).then_some(())
    })
    .await;
    let before = proxy.count("stats");
    assert!(before >= CONTAINERS, "the first round asked the engine for each container ({before} calls)");

    // 300 requests, 100 at a time; each answer names its round.
    let mut rounds = BTreeSet::new();
    for _ in 0..3 {
        let batch: Vec<_> = (0..100).map(|_| sc.get("/v1/stats").send()).collect();
        for r in futures_util::future::join_all(batch).await {
            let v: Value = r.unwrap().json().await.unwrap();
            assert_eq!(v["containers"].as_array().unwrap().len(), CONTAINERS as usize);
            rounds.insert(v["taken_at_ms"].as_i64().expect("taken_at_ms"));
        }
    }
    let calls = proxy.count("stats") - before;
    // The rounds the clients saw, plus one that may have been under way when counting stopped.
    let allowed = CONTAINERS * (rounds.len() as u64 + 1);
    assert!(
        calls <= allowed,
        "{calls} engine stats calls for 300 requests that saw {} rounds (at most {allowed} allowed)",
        rounds.len()
    );

    // The refresher keeps sampling: a later round, with its engine calls.
    let last = *rounds.last().unwrap();
    eventually(Duration::from_secs(10), "a later round", || async {
        let s = sc.json("/v1/stats").await;
        let later = s["taken_at_ms"].as_i64().unwrap() > last;
        (later && proxy.count("stats") >= before + CONTAINERS).then_some(())
    })
    .await;
    drop(containers);
}
