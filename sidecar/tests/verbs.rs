//! Each read and mutating verb end to end against the real engine.

use std::time::Duration;

use serde_json::Value;
use testkit::sidecar::*;
use testkit::*;

fn find<'a>(list: &'a Value, id: &str) -> &'a Value {
    list.as_array().unwrap().iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("{id} not listed"))
}

#[tokio::test]
async fn list_and_detail_describe_the_container_and_mask_secrets() {
    let port = free_port().to_string();
    let publish = format!("127.0.0.1:{port}:80");
    let c = TestContainer::run(
        "detail",
        &[
            "--label",
            "com.docker.compose.project=shop",
            "--label",
            "com.docker.compose.service=web",
            "-e",
            "DB_PASSWORD=hunter2-do-not-leak",
            "-e",
            "GREETING=hello",
            "-e",
            "DATABASE_URL=postgres://app:hunter2-db@db/app",
            "-e",
            "CACHE_ADDR=redis://app:hunter2-url@cache:6379",
            "-p",
            &publish,
            "--restart",
            "on-failure:3",
        ],
        ": --requirepass hunter2-arg && sleep 600",
    );
    let sc = Sidecar::start(&[]).await;
    let list = sc.json("/v1/containers").await;
    let row = find(&list, &c.id);
    assert_eq!(row["name"], c.name.as_str());
    assert_eq!(row["state"], "running");
    assert_eq!(row["compose_project"], "shop");
    assert_eq!(row["compose_service"], "web");
    assert_eq!(row["restart_policy"], "on-failure:3");
    assert_eq!(row["protected"], false);
    assert_eq!(row["ports"][0]["container_port"], 80);
    assert_eq!(row["ports"][0]["host_port"].to_string(), port);
    let net = &row["networks"][0];
    assert_eq!(net["name"], "bridge");
    assert!(net["subnet"].as_str().unwrap().ends_with("/16"), "{net}");
    assert!(row["started_at"].as_i64().unwrap() > 1_600_000_000);

    // Detail by name, by full id and by unique prefix.
    for r in [c.name.as_str(), c.id.as_str(), &c.id[..12]] {
        let resp = sc.get(&format!("/v1/containers/{r}")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{r}");
        let text = resp.text().await.unwrap();
        assert!(!text.contains("hunter2"), "an unmasked secret left the sidecar: {text}");
        let d: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(d["id"], c.id.as_str());
        let env = d["env"].as_array().unwrap();
        let pw = env.iter().find(|e| e["key"] == "DB_PASSWORD").unwrap();
        assert_eq!((pw["masked"].as_bool(), pw["value"].is_null()), (Some(true), true));
        let greeting = env.iter().find(|e| e["key"] == "GREETING").unwrap();
        assert_eq!(greeting["value"], "hello");
        let url = env.iter().find(|e| e["key"] == "CACHE_ADDR").unwrap();
        assert_eq!(url["value"], "redis://app:***@cache:6379");
        assert_eq!(d["command"], serde_json::json!(["sh", "-c", ": --requirepass *** && sleep 600"]));
    }
}

/// A stopped container's endpoint has no address, so no prefix to derive a
/// subnet from: its network's configured subnet stands in (the default
/// bridge showed "no subnet" on the network page), in the list and the detail.
#[tokio::test]
async fn a_stopped_containers_network_still_has_its_subnet() {
    let scope = format!("dockward.subnet={}", unique("subnet"));
    let stopped = TestContainer::run("subnet-stopped", &["--label", &scope], "true");
    wait_for(Duration::from_secs(20), "the container to exit", || (stopped.state() == "exited").then_some(()));
    let bridge = docker(&["network", "inspect", "--format", "{{(index .IPAM.Config 0).Subnet}}", "bridge"]);
    assert!(bridge.contains('/'), "the default bridge has a subnet: {bridge:?}");
    let endpoint = docker(&["inspect", "--format", "{{json .NetworkSettings.Networks.bridge}}", &stopped.id]);
    let endpoint: Value = serde_json::from_str(&endpoint).unwrap();
    assert_eq!(endpoint["IPAddress"], "", "the engine gives a stopped container no address: {endpoint}");

    let sc = Sidecar::start(&[&format!("--scope-label={scope}")]).await;
    let list = sc.json("/v1/containers").await;
    let net = &find(&list, &stopped.id)["networks"][0];
    assert_eq!(net["name"], "bridge", "{net}");
    assert_eq!(net["ip"], Value::Null, "{net}");
    assert_eq!(net["subnet"], bridge.as_str(), "{net}");
    let detail = sc.json(&format!("/v1/containers/{}", stopped.id)).await;
    assert_eq!(detail["networks"][0]["subnet"], bridge.as_str(), "{detail}");
}

#[tokio::test]
async fn logs_name_the_stream_and_follow_delivers_later_lines() {
    let c = TestContainer::run(
        "logs",
        &[],
        // Waits (polling in the container) for the test's signal before its late line.
        "echo out-line; echo err-line >&2; while [ ! -f /tmp/go ]; do sleep 0.1; done; echo late-marker; sleep 600",
    );
    let sc = Sidecar::start(&[]).await;
    let page = eventually(Duration::from_secs(10), "both lines logged", || async {
        let p = sc.json(&format!("/v1/containers/{}/logs?tail=50&timestamps=true", c.name)).await;
        (p["lines"].as_array().unwrap().len() >= 2).then_some(p)
    })
    .await;
    let lines = page["lines"].as_array().unwrap();
    let out = lines.iter().find(|l| l["line"] == "out-line").expect("stdout line");
    let err = lines.iter().find(|l| l["line"] == "err-line").expect("stderr line");
    assert_eq!(out["stream"], "stdout");
    assert_eq!(err["stream"], "stderr");
    assert!(out["ts"].as_str().unwrap().ends_with('Z'));

    // Follow: a line printed after the request started arrives as an SSE event.
    let resp = sc.get(&format!("/v1/containers/{}/logs?follow=true&tail=0", c.id)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut sse = SseReader::new(resp);
    docker(&["exec", &c.id, "touch", "/tmp/go"]);
    let data = sse.next_named("line", Duration::from_secs(10)).await.expect("followed line");
    let line: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(line["line"], "late-marker");
    assert_eq!(line["stream"], "stdout");
}

#[tokio::test]
async fn restart_changes_started_at_and_is_audited() {
    let c = TestContainer::run("restart", &[], "sleep 600");
    let before = c.started_at();
    let sc = Sidecar::start(&[]).await;
    let resp = sc.post(&format!("/v1/containers/{}/restart?timeout=0", c.name)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["id"], c.id.as_str());
    let after = c.started_at();
    assert_ne!(before, after, "StartedAt must change");
    assert_eq!(body["started_at"], after.as_str());

    let rec = sc.audit_records().into_iter().find(|r| r["request_id"] == request_id.as_str()).expect("audited");
    assert_eq!(rec["verb"], "restart");
    assert_eq!(rec["outcome"], "ok");
    assert_eq!(rec["actor"], "tester");
    assert_eq!(rec["target"], c.id.as_str());
    assert_eq!(rec["target_name"], c.name.as_str());
    assert_eq!(rec["params"]["timeout"], "0");
    assert!(rec["client"].as_str().unwrap().starts_with("key:"));
}

#[tokio::test]
async fn protected_containers_are_refused_and_audited() {
    require_docker();
    // Its own image: a database tag on the shared test image would protect
    // every other test's containers (their image's tags decide too).
    let db_image = format!("postgres:{}", unique("dockward"));
    build_image(&db_image);
    let _image = RemoveImage(db_image.clone());
    let by_label = TestContainer::run("protected-label", &["--label", "dockward.protect=true"], "sleep 600");
    let by_image = {
        let name = unique("protected-image");
        let id = docker(&["run", "-d", "--name", &name, "--label", "dockward.test=1", &db_image, "sleep", "600"]);
        TestContainer { id, name }
    };
    let unprotected = {
        let name = unique("unprotected-db");
        let id = docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--label",
            "dockward.test=1",
            "--label",
            "dockward.protect=false",
            &db_image,
            "sleep",
            "600",
        ]);
        TestContainer { id, name }
    };
    let sc = Sidecar::start(&[]).await;
    for c in [&by_label, &by_image] {
        let before = c.started_at();
        let resp = sc.post(&format!("/v1/containers/{}/restart", c.id)).send().await.unwrap();
        assert_eq!(resp.status(), 403, "{}", c.name);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden");
        assert_eq!(c.started_at(), before, "a protected container was restarted");
        let rec = sc.audit_records().into_iter().find(|r| r["target"] == c.id.as_str()).expect("denial audited");
        assert_eq!((rec["verb"].as_str(), rec["outcome"].as_str()), (Some("restart"), Some("denied")));
        assert!(rec["message"].as_str().unwrap().contains("protected"));
    }
    let list = sc.json("/v1/containers").await;
    assert_eq!(find(&list, &by_image.id)["protected"], true);
    assert_eq!(find(&list, &unprotected.id)["protected"], false);
    let resp = sc.post(&format!("/v1/containers/{}/restart?timeout=0", unprotected.id)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    drop((by_image, unprotected));
}

/// Removes a test image when the test ends (its containers must be gone first: drop them before).
struct RemoveImage(String);

impl Drop for RemoveImage {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

/// `docker run -d` of `image` (any reference: a name, `sha256:…`, a short id) with the test label.
fn run_image(prefix: &str, image: &str) -> TestContainer {
    let name = unique(prefix);
    let id = docker(&["run", "-d", "--name", &name, "--label", "dockward.test=1", image, "sleep", "600"]);
    TestContainer { id, name }
}

#[tokio::test]
async fn containers_created_from_an_image_id_are_protected() {
    require_docker();
    let db_image = format!("postgres:{}", unique("dwtest"));
    build_image(&db_image);
    let _image = RemoveImage(db_image.clone());
    let long_id = docker(&["image", "inspect", "-f", "{{.Id}}", &db_image]);
    assert!(long_id.starts_with("sha256:"), "{long_id}");
    let short_id = long_id["sha256:".len()..][..12].to_owned();
    let containers = [run_image("by-long-id", &long_id), run_image("by-short-id", &short_id)];
    for c in &containers {
        let configured = docker(&["inspect", "-f", "{{.Config.Image}}", &c.id]);
        assert!(!configured.contains("postgres"), "created from an id, not the name: {configured}");
    }
    let sc = Sidecar::start(&[]).await;
    let list = sc.json("/v1/containers").await;
    for c in &containers {
        assert_eq!(find(&list, &c.id)["protected"], true, "list: {}", c.name);
        assert_eq!(sc.json(&format!("/v1/containers/{}", c.id)).await["protected"], true, "inspect: {}", c.name);
        let before = c.started_at();
        let resp = sc.post(&format!("/v1/containers/{}/restart?timeout=0", c.id)).send().await.unwrap();
        assert_eq!(resp.status(), 403, "{}", c.name);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden", "{body}");
        assert_eq!(c.started_at(), before, "a protected container was restarted");
        let rec = sc.audit_records().into_iter().find(|r| r["target"] == c.id.as_str()).expect("denial audited");
        assert_eq!((rec["verb"].as_str(), rec["outcome"].as_str()), (Some("restart"), Some("denied")));
        assert!(rec["message"].as_str().unwrap().contains("protected"), "{rec}");
    }
    assert!(sc.audit_records().iter().all(|r| r["verb"] != "restart.start"), "the engine was never asked");
    drop(containers);
}

#[tokio::test]
async fn bad_input_gets_json_errors_and_never_reaches_docker() {
    let c = TestContainer::run("badinput", &[], "sleep 600");
    let proxy = CountingProxy::start().await;
    let host = proxy.docker_host();
    let sc = Sidecar::start(&[&host, "--audit-denial-window=1s"]).await;
    // Let start-up traffic (probe, first stats round) finish, then count.
    eventually(Duration::from_secs(10), "the first stats round", || async {
        let s = sc.json("/v1/stats").await;
        s["containers"].as_array().unwrap().iter().any(|x| x["id"] == c.id.as_str()).then_some(())
    })
    .await;
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (sc.get("/v1/containers/-bad"), 400, "bad_request"),
        (sc.get("/v1/containers/a%2F..%2Fb"), 400, "bad_request"),
        (sc.get(&format!("/v1/containers/{}", "a".repeat(129))), 400, "bad_request"),
        (sc.get("/v1/containers?all=1"), 400, "bad_request"),
        (sc.get(&format!("/v1/containers/{}/logs?tail=10001", c.id)), 400, "bad_request"),
        (sc.get(&format!("/v1/containers/{}/logs?tail=5&evil=1", c.id)), 400, "bad_request"),
        (sc.get(&format!("/v1/containers/{}/logs?tail=-1", c.id)), 400, "bad_request"),
        (sc.post(&format!("/v1/containers/{}/restart?timeout=121", c.id)), 400, "bad_request"),
        (sc.post(&format!("/v1/containers/{}/restart", c.id)).body("x"), 400, "bad_request"),
        (sc.post("/v1/prune/everything"), 404, "not_found"),
        (
            sc.post("/v1/images/pull")
                .header("content-type", "application/json")
                .body(r#"{"image":"nginx","fromSrc":"x"}"#),
            400,
            "bad_request",
        ),
        (
            sc.post("/v1/images/pull")
                .header("content-type", "application/json")
                .body(r#"{"image":"?fromSrc=http://x"}"#),
            400,
            "bad_request",
        ),
        (
            sc.post("/v1/images/pull").header("content-type", "application/json").body(vec![b' '; 70 * 1024]),
            413,
            "payload_too_large",
        ),
        (sc.get("/v1/stats/history?ref=x&window=99999"), 400, "bad_request"),
        (sc.get("/v1/audit?limit=0"), 400, "bad_request"),
        (sc.get("/v1/nope"), 404, "not_found"),
        (sc.get("/containers/json"), 404, "not_found"),
        (sc.get("/v1.41/containers/json"), 404, "not_found"),
        (sc.http.delete(sc.url("/v1/containers")).bearer_auth(SECRET), 405, "method_not_allowed"),
        (sc.get(&format!("/v1/containers/{}/restart", c.id)), 405, "method_not_allowed"),
    ];
    let calls_before = (proxy.count("list"), proxy.count("inspect"));
    for (i, (req, status, code)) in cases.into_iter().enumerate() {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "case {i}");
        let body: Value = resp.json().await.unwrap_or_else(|e| panic!("case {i}: not JSON: {e}"));
        assert_eq!(body["error"]["code"], code, "case {i}: {body}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
    // The stats refresher lists running containers once per window; nothing else may have called the engine.
    let stats_lists = 3;
    assert!(proxy.count("list") - calls_before.0 <= stats_lists, "bad input reached the engine (list)");
    assert_eq!(proxy.count("inspect"), calls_before.1, "bad input reached the engine (inspect)");
    // Denials are audited: each on its own record, or (a repeat of one kind
    // within the window) counted in that kind's `denied.summary`.
    eventually(Duration::from_secs(20), "every refusal recorded or counted", || {
        let recs = sc.audit_records();
        let own = recs.iter().filter(|r| r["outcome"] == "denied" && r["verb"] != "denied.summary").count() as u64;
        let counted: u64 = recs
            .iter()
            .filter(|r| r["verb"] == "denied.summary")
            .map(|r| r["params"]["count"].as_str().unwrap().parse::<u64>().unwrap())
            .sum();
        std::future::ready((own + counted == 20).then_some(()))
    })
    .await;
    let unknown = sc.http.get(sc.url("/v1/nope")).send().await.unwrap();
    assert_eq!(unknown.status(), 401, "unknown routes need the secret too");
    // A missing container: 404, not a guess.
    let resp = sc.get("/v1/containers/no-such-container-here").send().await.unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn events_stream_reports_lifecycle_changes() {
    let sc = Sidecar::start(&[]).await;
    let resp = sc.get("/v1/events").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut sse = SseReader::new(resp);
    // The sidecar follows the engine's events from a background task: restart a
    // probe container until its events come through, so the stream is live.
    let probe = TestContainer::run("events-probe", &[], "sleep 600");
    let mut live = false;
    for _ in 0..15 {
        live = saw_container_event(&mut sse, &probe.id, Duration::from_secs(1)).await;
        if live {
            break;
        }
        docker(&["restart", "-t", "0", &probe.id]);
    }
    assert!(live, "the event stream never delivered the probe container's events");
    // The scenario: a container that starts, then dies with code 3.
    let c = TestContainer::run("events", &[], "sleep 0.2; exit 3");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    while std::time::Instant::now() < deadline {
        let Some(data) = sse.next_named("container", Duration::from_secs(15)).await else { break };
        let ev: Value = serde_json::from_str(&data).unwrap();
        if ev["id"] == c.id.as_str() {
            seen.push(ev["action"].as_str().unwrap().to_owned());
            if ev["action"] == "die" {
                assert_eq!(ev["detail"], "3");
                assert_eq!(ev["name"], c.name.as_str());
                break;
            }
        }
    }
    assert!(seen.contains(&"start".to_owned()) && seen.contains(&"die".to_owned()), "saw {seen:?}");
}

/// True when an event about container `id` arrives within `within`.
async fn saw_container_event(sse: &mut SseReader, id: &str, within: Duration) -> bool {
    let seen = tokio::time::timeout(within, async {
        while let Some(data) = sse.next_named("container", within).await {
            let ev: Value = serde_json::from_str(&data).unwrap();
            if ev["id"] == id {
                return true;
            }
        }
        false
    });
    seen.await.unwrap_or(false)
}

#[tokio::test]
async fn disk_reports_volume_sizes_and_users() {
    let vol = unique("dockward-vol");
    let mount = format!("{vol}:/data");
    let c = TestContainer::run(
        "disk",
        &["-v", &mount],
        "dd if=/dev/zero of=/data/blob bs=1024 count=2048 2>/dev/null; sleep 600",
    );
    let sc = Sidecar::start(&[]).await;
    let v = eventually(Duration::from_secs(10), "volume written", || async {
        // The file is written by then in practice; the cache is per sidecar, so start fresh on retry.
        let d = sc.json("/v1/disk").await;
        let v = d["volumes"].as_array().unwrap().iter().find(|v| v["name"] == vol.as_str()).cloned()?;
        Some(v)
    })
    .await;
    assert_eq!(v["containers"], serde_json::json!([c.id]));
    assert_eq!(v["driver"], "local");
    assert!(v["size"].as_i64().is_some(), "{v}");
    let d = sc.json("/v1/disk").await;
    assert!(d["images_bytes"].as_i64().unwrap() > 0);
    assert!(d["age_ms"].as_u64().is_some());
    drop(c);
    docker(&["volume", "rm", &vol]);
}

#[tokio::test]
async fn audit_endpoint_filters_and_paginates() {
    let c = TestContainer::run("auditq", &[], "sleep 600");
    let sc = Sidecar::start(&["--rate-restart=100/min"]).await;
    for _ in 0..3 {
        let r = sc.post(&format!("/v1/containers/{}/restart?timeout=0", c.id)).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let _ = sc.get("/v1/containers/-bad").send().await.unwrap();
    // `verb=restart` also matches `restart.start`: three intents and three outcomes.
    let page = sc.json("/v1/audit?verb=restart&limit=4").await;
    let recs = page["records"].as_array().unwrap();
    assert_eq!(recs.len(), 4);
    assert!(recs[0]["seq"].as_u64() > recs[1]["seq"].as_u64(), "newest first");
    let cursor = page["next_cursor"].as_str().expect("more pages").to_owned();
    let page2 = sc.json(&format!("/v1/audit?verb=restart&limit=4&cursor={cursor}")).await;
    assert_eq!(page2["records"].as_array().unwrap().len(), 2);
    assert!(page2["next_cursor"].is_null());
    let denied = sc.json("/v1/audit?outcome=denied").await;
    assert!(denied["records"].as_array().unwrap().iter().all(|r| r["outcome"] == "denied"));
    assert!(!denied["records"].as_array().unwrap().is_empty());
    let by_target = sc.json(&format!("/v1/audit?target={}", c.name)).await;
    let verbs: Vec<&str> =
        by_target["records"].as_array().unwrap().iter().map(|r| r["verb"].as_str().unwrap()).collect();
    // Each restart: its intent, then its outcome (newest first).
    assert_eq!(verbs, ["restart", "restart.start", "restart", "restart.start", "restart", "restart.start"]);
    let future = sc.json("/v1/audit?since=2999-01-01T00:00:00Z").await;
    assert!(future["records"].as_array().unwrap().is_empty());
    let resp = sc.get("/v1/audit?outcome=maybe").send().await.unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn healthz_is_open_and_metrics_count_requests() {
    let sc = Sidecar::start(&[]).await;
    let r = sc.http.get(sc.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h: Value = r.json().await.unwrap();
    assert_eq!(h["status"], "ok", "{h}");
    let keys: Vec<&String> = h.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["stats", "status"], "nothing else is told to anyone: {h}");
    assert!(["kernel", "engine"].contains(&h["stats"]["source"].as_str().unwrap()), "{h}");
    let r = sc.http.get(sc.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401, "metrics need the secret");
    let _ = sc.json("/v1/stats").await;
    let text = sc.get("/metrics").send().await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"dockward_requests_total{verb="stats",status="200"}"#), "{text}");
    assert!(text.contains("dockward_docker_call_duration_seconds_bucket"), "{text}");
    assert!(text.contains("dockward_docker_up 1"), "{text}");
    assert!(text.contains(r#"dockward_audit_records_total{outcome="denied"}"#), "{text}");
}

/// `/metrics` is what Prometheus reads: `promtool check metrics` accepts it
/// with every family filled (requests, engine call latency, caches, the
/// audit log, the engine probe), in the text format its header names.
#[tokio::test]
async fn metrics_pass_promtool() {
    let c = TestContainer::run("metrics", &[], "sleep 600");
    let sc = Sidecar::start(&[]).await;
    let _ = sc.json("/v1/stats").await;
    let _ = sc.json("/v1/disk").await;
    let _ = sc.json(&format!("/v1/containers/{}", c.id)).await;
    let r = sc.http.get(sc.url("/v1/containers")).send().await.unwrap();
    assert_eq!(r.status(), 401, "a refusal, for the audit family");
    let r = sc.get("/metrics").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let text = r.text().await.unwrap();
    for family in [
        "# TYPE dockward_requests_total counter",
        "# TYPE dockward_docker_call_duration_seconds histogram",
        "# TYPE dockward_cache_total counter",
        "# TYPE dockward_audit_records_total counter",
        "# TYPE dockward_containers_tracked gauge",
        "# TYPE dockward_docker_up gauge",
        "# TYPE dockward_auth_refused_blocked_total counter",
    ] {
        assert!(text.contains(family), "{family:?} missing: {text}");
    }
    assert!(text.contains(r#"dockward_cache_total{cache="inspect",result="#), "{text}");
    assert!(!text.contains("# EOF"), "OpenMetrics, not the Prometheus text format: {text}");
    promtool_check_metrics(&text);
}
