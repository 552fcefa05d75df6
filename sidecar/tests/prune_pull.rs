//! Prune (scoped, protected containers skipped) and pull from a local registry.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use testkit::sidecar::*;
use testkit::*;

#[tokio::test]
async fn prune_containers_removes_stopped_and_skips_protected() {
    let scope = unique("prune");
    let label = format!("dockward.scope={scope}");
    let stopped = TestContainer::run("stopped", &["--label", &label], "exit 0");
    let guarded = TestContainer::run("guarded", &["--label", &label, "--label", "dockward.protect=true"], "exit 0");
    let running = TestContainer::run("running", &["--label", &label], "sleep 600");
    let outsider = TestContainer::run("outsider", &[], "exit 0");
    eventually(Duration::from_secs(10), "containers exited", || async {
        (stopped.state() == "exited" && guarded.state() == "exited" && outsider.state() == "exited").then_some(())
    })
    .await;
    let scope_arg = format!("--scope-label=dockward.scope={scope}");
    let sc = Sidecar::start(&[&scope_arg]).await;
    let r = sc.post("/v1/prune/containers").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["kind"], "containers");
    assert_eq!(report["removed"], serde_json::json!([stopped.id]));
    assert!(report["skipped"].as_array().unwrap().iter().any(|s| s.as_str().unwrap().contains("protected")));
    assert!(!docker_ok(&["inspect", &stopped.id]), "the stopped container is gone");
    assert!(docker_ok(&["inspect", &guarded.id]), "the protected one stays");
    assert!(docker_ok(&["inspect", &running.id]), "the running one stays");
    assert!(docker_ok(&["inspect", &outsider.id]), "out-of-scope containers are never touched");
    let rec = sc.audit_records().into_iter().find(|r| r["request_id"] == rid.as_str()).unwrap();
    assert_eq!((rec["verb"].as_str(), rec["outcome"].as_str()), (Some("prune.containers"), Some("ok")));
    let r = sc.post("/v1/prune/containers?all=true").send().await.unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn prune_images_removes_dangling_ones() {
    require_docker();
    let tag = format!("dockward-dangling:{}", unique("t"));
    build_image(&tag);
    let first = docker(&["image", "inspect", "-f", "{{.Id}}", &tag]);
    build_image(&tag); // the first import is now dangling
    let second = docker(&["image", "inspect", "-f", "{{.Id}}", &tag]);
    assert_ne!(first, second);
    let sc = Sidecar::start(&[]).await;
    let r = sc.post("/v1/prune/images").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    let removed: Vec<&str> = report["removed"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(removed.contains(&first.as_str()), "{report}");
    assert!(!docker_ok(&["image", "inspect", &first]));
    assert!(docker_ok(&["image", "inspect", &second]), "tagged images stay without all=true");
    docker(&["rmi", &tag]);
}

#[tokio::test]
async fn prune_volumes_keeps_named_and_protected_ones() {
    require_docker();
    let scope = unique("pv");
    let l = format!("dockward.scope={scope}");
    let named = unique("named");
    let guarded = unique("guarded");
    docker(&["volume", "create", "--label", &l, &named]);
    docker(&["volume", "create", "--label", &l, "--label", "dockward.protect=true", &guarded]);
    let scope_arg = format!("--scope-label=dockward.scope={scope}");
    let sc = Sidecar::start(&[&scope_arg]).await;
    let r: Value = sc.post("/v1/prune/volumes").send().await.unwrap().json().await.unwrap();
    assert_eq!(r["removed"], serde_json::json!([]), "named volumes need all=true: {r}");
    let r: Value = sc.post("/v1/prune/volumes?all=true").send().await.unwrap().json().await.unwrap();
    assert_eq!(r["removed"], serde_json::json!([named]), "{r}");
    assert!(docker_ok(&["volume", "inspect", &guarded]), "protected volume kept");
    docker(&["volume", "rm", &guarded]);
}

#[tokio::test]
async fn pull_fetches_from_a_local_registry_and_reports_the_digest() {
    let registry = Registry::start();
    let port = registry.port;
    let (remote, pushed) = registry.push_test_image();
    assert!(!docker_ok(&["image", "inspect", &remote]));

    let sc = Sidecar::start(&[&registry.allow_flag()]).await;
    let r = sc.post("/v1/images/pull").json(&serde_json::json!({"image": remote})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let text = r.text().await.unwrap();
    let events: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(events.iter().any(|e| e["type"] == "progress"), "{text}");
    let done = events.last().unwrap();
    assert_eq!(done["type"], "done", "{text}");
    let digest = done["digest"].as_str().unwrap();
    assert!(digest.starts_with("sha256:") && pushed.contains(digest), "digest {digest} not in push output {pushed}");
    assert!(docker_ok(&["image", "inspect", &remote]), "the image is local now");
    let rec = sc.audit_records().into_iter().find(|r| r["request_id"] == rid.as_str()).unwrap();
    assert_eq!((rec["verb"].as_str(), rec["outcome"].as_str()), (Some("pull"), Some("ok")));
    assert_eq!(rec["target"], remote.as_str());

    // Registries outside the allow-list are refused and audited.
    let r = sc
        .post("/v1/images/pull")
        .json(&serde_json::json!({"image": "docker.io/library/nginx:1.27"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A bad reference is refused before the engine is asked.
    let r = sc.post("/v1/images/pull").json(&serde_json::json!({"image": "Not A Ref"})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // A missing tag on the registry is an error line, not a hang.
    let missing = format!("127.0.0.1:{port}/dockward/test:missing");
    let text = sc
        .post("/v1/images/pull")
        .json(&serde_json::json!({"image": missing}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "error", "{text}");
    // Only the kind of failure: the engine's text (addresses, ports) stays in the sidecar's log.
    assert_eq!(last["message"], "the Docker engine refused: the registry has no such image or tag", "{text}");
    docker(&["rmi", &remote]);
}

#[tokio::test]
async fn pull_refuses_local_addresses_unless_listed() {
    let sc = Sidecar::start(&[]).await;
    for image in ["127.0.0.1:5000/x:1", "localhost:5000/x:1", "10.0.0.5/x:1", "[::1]:5000/x:1", "myregistry:5000/x:1"] {
        let r = sc.post("/v1/images/pull").json(&serde_json::json!({"image": image})).send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 403, "{image}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("DOCKWARD_PULL_REGISTRIES"), "{body}");
    }
    let denied = sc.audit_records().into_iter().filter(|r| r["verb"] == "pull" && r["outcome"] == "denied").count();
    assert_eq!(denied, 5, "every refusal is audited");
    assert!(sc.audit_records().iter().all(|r| r["verb"] != "pull.start"), "the engine was never asked");
}

#[tokio::test]
async fn a_scoped_sidecar_refuses_host_wide_prune_and_pull() {
    require_docker();
    // A dangling image the refused prune must leave alone.
    let tag = format!("dockward-scoped:{}", unique("t"));
    build_image(&tag);
    let dangling = docker(&["image", "inspect", "-f", "{{.Id}}", &tag]);
    build_image(&tag);
    let scope_arg = format!("--scope-label=dockward.scope={}", unique("scoped"));
    let sc = Sidecar::start(&[&scope_arg]).await;
    for path in ["/v1/prune/images", "/v1/prune/images?all=true", "/v1/prune/build-cache"] {
        let r = sc.post(path).send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["error"]["code"], "forbidden", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("scoped"), "{body}");
    }
    let r = sc.post("/v1/images/pull").json(&serde_json::json!({"image": "docker.io/library/busybox:1"})).send().await;
    let r = r.unwrap();
    assert_eq!(r.status(), 403);
    let recs = sc.audit_records();
    let denied = |verb: &str| recs.iter().filter(|r| r["verb"] == verb && r["outcome"] == "denied").count();
    assert_eq!((denied("prune.images"), denied("prune.build-cache"), denied("pull")), (2, 1, 1), "{recs:?}");
    assert!(recs.iter().all(|r| !r["verb"].as_str().unwrap().ends_with(".start")), "the engine was never asked");
    assert!(docker_ok(&["image", "inspect", &dangling]), "the refused prune removed nothing");
    // What the scope does cover still works.
    assert_eq!(sc.post("/v1/prune/containers").send().await.unwrap().status(), 200);
    let _ = Command::new("docker")
        .args(["rmi", "-f", &dangling, &tag])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

#[tokio::test]
async fn a_refused_pull_records_no_raw_client_string() {
    let sc = Sidecar::start(&[]).await;
    let raw = format!("evil\u{202E}gpj.exe\n\u{1b}[31m{}", "x".repeat(20_000));
    let r = sc.post("/v1/images/pull").json(&serde_json::json!({"image": raw})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let line = std::fs::read_to_string(sc.audit_path())
        .unwrap()
        .lines()
        .find(|l| l.contains(&rid))
        .expect("the refusal is audited")
        .to_owned();
    let rec: Value = serde_json::from_str(&line).unwrap();
    assert_eq!((rec["verb"].as_str(), rec["outcome"].as_str()), (Some("pull"), Some("denied")));
    let target = rec["target"].as_str().unwrap();
    assert!(target.len() < 800, "bounded: {} bytes", target.len());
    assert!(target.bytes().all(|b| (0x20..0x7f).contains(&b)), "printable ASCII only: {target:?}");
    assert!(target.contains("evil\\u{202e}gpj.exe\\n\\u{1b}[31m"), "{target}");
    assert!(target.contains(&format!("({} bytes", raw.len())), "{target}");
    assert!(!line.contains('\u{202E}') && !line.contains("\\u202e") && !line.contains(&"x".repeat(100)), "{line}");
}
