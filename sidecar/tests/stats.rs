//! The stats cache: the values' shapes, scope, history, and coalescing of
//! many clients into one engine round per window (engine calls counted at
//! the socket); the kernel source's figures against the engine's own for the
//! same containers, across restarts and stops, and its fallback to the
//! engine. How fast or how fresh is measured in the bench, not here.

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
    let sc = Sidecar::start(&[&scope_arg, "--stats-history-step=1s"]).await;
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
    let sc =
        Sidecar::start(&[&host, &scope_arg, "--stats-source=engine", "--stats-ttl=2s", "--rate-read=100000/s"]).await;
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

/// The engine's own figures for one container, computed as `docker stats` does.
struct EngineFigures {
    memory: u64,
    limit: u64,
    pids: u64,
}

async fn engine_figures(docker: &bollard::Docker, id: &str) -> EngineFigures {
    use futures_util::StreamExt;
    let opts = bollard::query_parameters::StatsOptions { stream: false, one_shot: true };
    let r = docker.stats(id, Some(opts)).next().await.unwrap().unwrap();
    let (sample, _) = ::sidecar::stats::calc::sample(id, &r, None, 0);
    EngineFigures { memory: sample.memory_bytes, limit: sample.memory_limit_bytes, pids: sample.pids }
}

fn sample_of(snap: &Value, id: &str) -> Option<Value> {
    snap["containers"].as_array()?.iter().find(|c| c["id"] == id).cloned()
}

/// Issue 16: the kernel's counters give the engine's figures. CPU is the mean
/// of three rounds read one after another (the busy loop is the only thing
/// each container runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_figures_agree_with_the_engine() {
    let scope = unique("kernel");
    let label = format!("dockward.scope={scope}");
    let busy = TestContainer::run("busy", &["--label", &label], "while :; do :; done");
    let half = TestContainer::run("half", &["--label", &label, "--cpus", "0.5", "-m", "64m"], "while :; do :; done");
    let three = TestContainer::run("three", &["--label", &label], "sleep 600 & sleep 600 & wait");
    let scope_arg = format!("--scope-label={label}");
    let sc = Sidecar::start(&[&scope_arg, "--stats-source=cgroup", "--proc-root=/proc"]).await;

    let health: Value = sc.get("/healthz").send().await.unwrap().json().await.unwrap();
    assert_eq!(health["stats"]["window_ms"], 10_000, "nobody has asked for stats yet: {health}");

    let mut cpu: std::collections::HashMap<String, Vec<f64>> = Default::default();
    let mut last_round = 0;
    while cpu.values().map(Vec::len).min().unwrap_or(0) < 3 || cpu.len() < 3 {
        let snap = eventually(Duration::from_secs(10), "a new round", || async {
            let s = sc.json("/v1/stats").await;
            (s["taken_at_ms"].as_i64().unwrap() > last_round).then_some(s)
        })
        .await;
        last_round = snap["taken_at_ms"].as_i64().unwrap();
        assert_eq!(snap["source"]["source"], "kernel", "{snap}");
        assert_eq!(snap["source"]["engine_fallbacks"], 0, "{snap}");
        for c in [&busy, &half, &three] {
            if let Some(p) = sample_of(&snap, &c.id).and_then(|s| s["cpu_percent"].as_f64()) {
                cpu.entry(c.id.clone()).or_default().push(p);
            }
        }
    }
    let health: Value = sc.get("/healthz").send().await.unwrap().json().await.unwrap();
    assert_eq!(health["stats"]["source"], "kernel", "{health}");
    assert_eq!(health["stats"]["network"], "kernel", "{health}");
    assert_eq!(health["stats"]["window_ms"], 1000, "someone asked (the test's requests): {health}");
    let metrics = sc.get("/metrics").send().await.unwrap().text().await.unwrap();
    assert_eq!(metric_value(&metrics, "dockward_stats_source{source=\"kernel\"}"), Some(1.0), "{metrics}");
    let mean = |c: &TestContainer| cpu[&c.id].iter().sum::<f64>() / cpu[&c.id].len() as f64;
    assert!((85.0..=115.0).contains(&mean(&busy)), "a busy loop reads {:?}", cpu[&busy.id]);
    assert!((40.0..=60.0).contains(&mean(&half)), "--cpus 0.5 reads {:?}", cpu[&half.id]);
    assert!(mean(&three) < 10.0, "sleeping reads {:?}", cpu[&three.id]);

    let docker = bollard::Docker::connect_with_unix_defaults().unwrap().negotiate_version().await.unwrap();
    let snap = sc.json("/v1/stats").await;
    for c in [&busy, &half, &three] {
        let ours = sample_of(&snap, &c.id).unwrap();
        let theirs = engine_figures(&docker, &c.id).await;
        let mem = ours["memory_bytes"].as_u64().unwrap();
        let diff = mem.abs_diff(theirs.memory);
        assert!(
            diff <= (1 << 20) || diff as f64 <= theirs.memory as f64 * 0.02,
            "{}: memory {mem} against the engine's {}",
            c.name,
            theirs.memory
        );
        assert_eq!(ours["memory_limit_bytes"], theirs.limit, "{}: the limit", c.name);
        assert_eq!(ours["pids"], theirs.pids, "{}: pids", c.name);
        // The network namespace's counters: the container's interface has seen traffic (its own
        // IPv6 and ARP chatter at least) or not, but they are counters, never the host's.
        assert!(ours["net_rx_bytes"].as_u64().unwrap() < 1 << 30, "{ours}");
    }
    assert_eq!(sample_of(&snap, &half.id).unwrap()["memory_limit_bytes"], 64 * 1024 * 1024);
    assert_eq!(sample_of(&snap, &three.id).unwrap()["pids"], 3);
}

/// A container restarted between rounds is one container with one sample; a
/// stopped one leaves the round. Neither is lost or counted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_and_stops_between_rounds() {
    let scope = unique("churn");
    let label = format!("dockward.scope={scope}");
    let a = TestContainer::run("again", &["--label", &label], "sleep 600");
    let b = TestContainer::run("stops", &["--label", &label], "sleep 600");
    let scope_arg = format!("--scope-label={label}");
    let sc = Sidecar::start(&[&scope_arg, "--stats-source=cgroup", "--proc-root=/proc"]).await;
    let ids = |snap: &Value| -> Vec<String> {
        snap["containers"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
    };
    eventually(Duration::from_secs(10), "both sampled", || async {
        let s = sc.json("/v1/stats").await;
        (ids(&s).len() == 2).then_some(())
    })
    .await;
    let pid_before = docker(&["inspect", "-f", "{{.State.Pid}}", &a.id]);
    docker(&["restart", "-t", "0", &a.id]);
    assert_ne!(docker(&["inspect", "-f", "{{.State.Pid}}", &a.id]), pid_before);
    docker(&["stop", "-t", "0", &b.id]);
    let after =
        eventually(Duration::from_secs(15), "the restarted one sampled again, the stopped one gone", || async {
            let s = sc.json("/v1/stats").await;
            let seen = ids(&s);
            assert!(seen.iter().filter(|i| **i == a.id).count() <= 1, "counted twice: {s}");
            let fresh = sample_of(&s, &a.id).is_some_and(|c| c["cpu_percent"].is_number());
            (seen == vec![a.id.clone()] && fresh && s["source"]["engine_fallbacks"] == 0).then_some(s)
        })
        .await;
    let c = sample_of(&after, &a.id).unwrap();
    let p = c["cpu_percent"].as_f64().unwrap();
    assert!((0.0..=10.0).contains(&p), "a restarted sleeper's CPU is a delta of its new cgroup: {p}");
    assert_eq!(c["pids"], 1);
}

/// A cgroup root that is not the host's tree, or has no readable cgroup for
/// the running containers, falls back to the engine with the reason in
/// `/healthz`; the figures are still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_cgroups_fall_back_to_the_engine() {
    let scope = unique("fallback");
    let label = format!("dockward.scope={scope}");
    let c = TestContainer::run("fb", &["--label", &label], "sleep 600");
    let scope_arg = format!("--scope-label={label}");
    let empty = tempfile::tempdir().unwrap();
    // A tree shaped like cgroup v2 but holding no container (another host's, a copy, a stale mount).
    let hollow = tempfile::tempdir().unwrap();
    std::fs::write(hollow.path().join("cgroup.controllers"), "cpu memory pids io\n").unwrap();
    let not_a_tree = format!("--cgroup-root={}", empty.path().display());
    let hollow_root = format!("--cgroup-root={}", hollow.path().display());
    let cases: [(&[&str], &str, &str); 3] = [
        (&[&not_a_tree], "engine", "not a readable cgroup tree"),
        (&[&hollow_root], "engine", "no running container's cgroup could be read"),
        (&[&hollow_root, "--stats-source=cgroup"], "kernel", "1 from the engine: its cgroup was not found"),
    ];
    for (flags, source, reason) in cases {
        let mut args = vec![scope_arg.as_str()];
        args.extend_from_slice(flags);
        let sc = Sidecar::start(&args).await;
        let snap = eventually(Duration::from_secs(15), "a sample with CPU % (from the engine)", || async {
            let s = sc.json("/v1/stats").await;
            sample_of(&s, &c.id).is_some_and(|x| x["cpu_percent"].is_number()).then_some(s)
        })
        .await;
        assert_eq!(sample_of(&snap, &c.id).unwrap()["pids"], 1, "{snap}");
        let health: Value = sc.get("/healthz").send().await.unwrap().json().await.unwrap();
        assert_eq!(health["status"], "ok", "{flags:?}: {health}");
        assert_eq!(health["stats"]["source"], source, "{flags:?}: {health}");
        let why = health["stats"]["reason"].as_str().unwrap();
        assert!(why.contains(reason), "{flags:?}: {why}");
        for secret in [&*empty.path().to_string_lossy(), &*hollow.path().to_string_lossy(), &c.id[..12]] {
            assert!(!why.contains(secret), "/healthz names no path or container: {why}");
        }
        assert_eq!(snap["source"]["source"], source, "{snap}");
        let metrics = sc.get("/metrics").send().await.unwrap().text().await.unwrap();
        let series = format!("dockward_stats_source{{source=\"{source}\"}}");
        assert_eq!(metric_value(&metrics, &series), Some(1.0), "{metrics}");
    }
}

/// With the kernel as the source the engine is asked for no stats at all
/// (the host's /proc gives the network counters), only where a new
/// container's cgroup is: once per container.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kernel_source_asks_the_engine_for_no_stats() {
    const CONTAINERS: usize = 3;
    let scope = unique("nostats");
    let label = format!("dockward.scope={scope}");
    let containers: Vec<TestContainer> =
        (0..CONTAINERS).map(|i| TestContainer::run(&format!("ns{i}"), &["--label", &label], "sleep 600")).collect();
    let proxy = CountingProxy::start().await;
    let host = proxy.docker_host();
    let scope_arg = format!("--scope-label={label}");
    let sc = Sidecar::start(&[&host, &scope_arg, "--proc-root=/proc"]).await;
    let first = eventually(Duration::from_secs(10), "every container sampled", || async {
        let s = sc.json("/v1/stats").await;
        (s["containers"].as_array().unwrap().len() == CONTAINERS).then_some(s)
    })
    .await;
    let (inspects, lists) = (proxy.count("inspect"), proxy.count("list"));
    // Five more rounds, each read by a client.
    let mut last = first["taken_at_ms"].as_i64().unwrap();
    for _ in 0..5 {
        last = eventually(Duration::from_secs(5), "a new round", || async {
            let s = sc.json("/v1/stats").await;
            let t = s["taken_at_ms"].as_i64().unwrap();
            assert_eq!(s["containers"].as_array().unwrap().len(), CONTAINERS);
            (t > last).then_some(t)
        })
        .await;
    }
    assert_eq!(proxy.count("stats"), 0, "no engine stats call");
    assert!(inspects <= CONTAINERS as u64 + 1, "{inspects} inspects to locate {CONTAINERS} containers");
    assert_eq!(proxy.count("inspect"), inspects, "located once, not per round");
    assert!(proxy.count("list") <= lists + 1, "no list per round: {} then {}", lists, proxy.count("list"));
    drop(containers);
}
