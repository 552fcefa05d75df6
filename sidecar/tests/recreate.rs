//! Update detection and `recreate` against the real engine and a registry on
//! loopback: an update is found and applied with the configuration intact
//! (name, ports, named and anonymous volume data, networks with alias and
//! static address, labels, environment, restart policy); an image that exits
//! or never gets healthy is rolled back; a sidecar killed between stop and
//! start puts the old container back when it starts again.

use std::time::Duration;

use serde_json::Value;
use testkit::sidecar::*;
use testkit::*;

/// The image command: stops at once on SIGTERM.
const LOOP: &str = "trap 'exit 0' TERM; while true; do sleep 1; done";

/// The repository digest `docker push` printed.
fn pushed_digest(push_output: &str) -> String {
    let at = push_output.find("digest: ").expect("a digest in the push output") + 8;
    push_output[at..].split_whitespace().next().unwrap().to_owned()
}

async fn recreate(sc: &Sidecar, target: &str, query: &str) -> (u16, Vec<Value>) {
    let r = sc.post(&format!("/v1/containers/{target}/recreate{query}")).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let lines = if status == 200 {
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    } else {
        vec![serde_json::from_str(&text).unwrap()]
    };
    (status, lines)
}

fn inspect(name: &str, format: &str) -> String {
    docker(&["inspect", "-f", format, name])
}

/// The containers (all states) whose name is exactly `name`, or the temporary and aside names.
fn named(name: &str) -> Vec<String> {
    let out = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("name=^{name}(-dockward-old|-dockward-new)?$"),
        "--format",
        "{{.Names}} {{.State}}",
    ]);
    out.lines().map(str::to_owned).collect()
}

async fn updates_for(sc: &Sidecar, name: &str) -> Value {
    let all = sc.json("/v1/updates").await;
    all["containers"].as_array().unwrap().iter().find(|c| c["name"] == name).cloned().unwrap_or(Value::Null)
}

struct Cleanup(Vec<Vec<String>>);
impl Drop for Cleanup {
    fn drop(&mut self) {
        for args in &self.0 {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let _ = std::process::Command::new("docker").args(&args).output();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_is_detected_and_applied_with_the_configuration_intact_and_failures_roll_back() {
    let registry = Registry::start();
    let repo = format!("127.0.0.1:{}/dockward/app", registry.port);
    let tag = format!("{repo}:stable");
    let name = unique("rc-web");
    let net = unique("rc-net");
    let vol = unique("rc-vol");
    let octet = 10 + std::process::id() % 200;
    let subnet = format!("10.199.{octet}.0/24");
    let ip = format!("10.199.{octet}.10");
    let port = free_port();
    let _cleanup = Cleanup(vec![
        vec!["rm".into(), "-f".into(), name.clone(), format!("{name}-dockward-old"), format!("{name}-dockward-new")],
        vec!["network".into(), "rm".into(), net.clone()],
        vec!["volume".into(), "prune".into(), "-f".into(), "--filter".into(), "label=dockward.test=1".into()],
        vec!["volume".into(), "rm".into(), vol.clone()],
        vec!["rmi".into(), tag.clone()],
        vec!["image".into(), "prune".into(), "-f".into(), "--filter".into(), "label=dockward.test=1".into()],
    ]);

    // v1 in the registry, run with ports, volumes, a network alias and address, labels, env, a healthcheck.
    commit_image(&tag, "echo 1 > /version", &[&format!("CMD [\"sh\", \"-c\", \"{LOOP}\"]"), "ENV FROM_IMAGE=1"]);
    let v1 = pushed_digest(&docker(&["push", &tag]));
    docker(&["network", "create", "--subnet", &subnet, "--label", "dockward.test=1", &net]);
    docker(&["volume", "create", "--label", "dockward.test=1", &vol]);
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        "dockward.test=1",
        "--label",
        "app.owner=ops",
        "-e",
        "MODE=prod",
        "-p",
        &format!("127.0.0.1:{port}:8080"),
        "--network",
        &net,
        "--network-alias",
        "webalias",
        "--ip",
        &ip,
        "-v",
        &format!("{vol}:/data"),
        "-v",
        "/anon",
        "--restart",
        "unless-stopped",
        "--health-cmd",
        "test -f /version",
        "--health-interval",
        "1s",
        &tag,
    ]);
    let old_id = inspect(&name, "{{.Id}}");
    docker(&["exec", &name, "sh", "-c", "echo named > /data/f; echo anon > /anon/f"]);
    let anon = inspect(&name, "{{range .Mounts}}{{if eq .Destination \"/anon\"}}{{.Name}}{{end}}{{end}}");
    assert!(!anon.is_empty());

    // v2 under the same tag; the local tag is dropped so only a pull brings it.
    commit_image(&tag, "echo 2 > /version", &[&format!("CMD [\"sh\", \"-c\", \"{LOOP}\"]"), "ENV FROM_IMAGE=2"]);
    let v2 = pushed_digest(&docker(&["push", &tag]));
    assert_ne!(v1, v2);
    docker(&["rmi", &tag]);

    let sc = Sidecar::start(&[&registry.allow_flag()]).await;
    let u = updates_for(&sc, &name).await;
    assert_eq!(u["status"], "update_available", "{u}");
    assert_eq!(
        (u["local_digest"].as_str(), u["remote_digest"].as_str()),
        (Some(v1.as_str()), Some(v2.as_str())),
        "{u}"
    );
    assert!(u["checked_at"].as_i64().is_some(), "{u}");

    // The update: pull, then recreate.
    let (status, events) = recreate(&sc, &name, "?pull=true").await;
    assert_eq!(status, 200, "{events:?}");
    let steps: Vec<&str> = events.iter().filter(|e| e["type"] == "step").filter_map(|e| e["step"].as_str()).collect();
    assert_eq!(steps, ["pull", "create", "stop_old", "swap", "start_new", "health_gate", "remove_old"], "{events:?}");
    let done = events.last().unwrap();
    assert_eq!(done["type"], "done", "{events:?}");
    assert_eq!(done["new_digest"], v2.as_str(), "{done}");
    assert_eq!(done["gate"], "healthy", "{done}");
    assert_eq!(done["old_id"], old_id.as_str());
    let new_id = inspect(&name, "{{.Id}}");
    assert_eq!(done["new_id"], new_id.as_str());
    assert_ne!(new_id, old_id);

    // Everything it was given is there; the image's own defaults are the new image's.
    assert_eq!(docker(&["exec", &name, "cat", "/version"]), "2");
    assert_eq!(docker(&["exec", &name, "cat", "/data/f"]), "named");
    assert_eq!(docker(&["exec", &name, "cat", "/anon/f"]), "anon", "the anonymous volume's data carried over");
    assert_eq!(inspect(&name, "{{range .Mounts}}{{if eq .Destination \"/anon\"}}{{.Name}}{{end}}{{end}}"), anon);
    assert_eq!(inspect(&name, "{{index .Config.Labels \"app.owner\"}}"), "ops");
    assert_eq!(inspect(&name, "{{.HostConfig.RestartPolicy.Name}}"), "unless-stopped");
    let env = inspect(&name, "{{json .Config.Env}}");
    assert!(env.contains("MODE=prod") && env.contains("FROM_IMAGE=2") && !env.contains("FROM_IMAGE=1"), "{env}");
    assert_eq!(inspect(&name, &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}")), ip);
    let aliases = inspect(&name, &format!("{{{{json (index .NetworkSettings.Networks \"{net}\").Aliases}}}}"));
    assert!(aliases.contains("webalias"), "{aliases}");
    assert!(!aliases.contains(&old_id[..12]), "the old id is no alias of the new container: {aliases}");
    let ports = inspect(&name, "{{json .HostConfig.PortBindings}}");
    assert!(ports.contains(&format!("\"HostPort\":\"{port}\"")) && ports.contains("127.0.0.1"), "{ports}");
    assert_eq!(inspect(&name, "{{.State.Health.Status}}"), "healthy");
    assert_eq!(named(&name), vec![format!("{name} running")], "exactly one container, under the name");

    // Now current; the registry's answer is reused.
    let u = updates_for(&sc, &name).await;
    assert_eq!(u["status"], "up_to_date", "{u}");

    // Audited with both images and the digest.
    let recs = sc.audit_records();
    let rec = recs.iter().find(|r| r["verb"] == "recreate" && r["outcome"] == "ok").expect("the outcome record");
    assert_eq!(rec["target"], new_id.as_str());
    assert_eq!(rec["params"]["new_digest"], v2.as_str(), "{rec}");
    assert_eq!(rec["params"]["old_id"], old_id.as_str(), "{rec}");
    assert!(recs.iter().any(|r| r["verb"] == "recreate.start" && r["target"] == old_id.as_str()));

    // v3 exits at once: rolled back, v2 still runs under the name.
    commit_image(&tag, "echo 3 > /version", &["CMD [\"sh\", \"-c\", \"exit 3\"]"]);
    docker(&["push", &tag]);
    let (status, events) = recreate(&sc, &name, "?pull=true&grace=3").await;
    assert_eq!(status, 200);
    let last = events.last().unwrap();
    assert_eq!((last["type"].as_str(), last["rolled_back"].as_bool()), (Some("error"), Some(true)), "{events:?}");
    assert!(last["message"].as_str().unwrap().contains("did not stay up"), "{last}");
    assert_eq!(inspect(&name, "{{.Id}}"), new_id, "the v2 container is back");
    assert_eq!(docker(&["exec", &name, "cat", "/version"]), "2");
    assert_eq!(named(&name), vec![format!("{name} running")]);

    // v4 never gets healthy (no /version): rolled back after the health timeout.
    commit_image(&tag, "rm -f /version", &[&format!("CMD [\"sh\", \"-c\", \"{LOOP}\"]")]);
    docker(&["push", &tag]);
    let (status, events) = recreate(&sc, &name, "?pull=true&health_timeout=4").await;
    assert_eq!(status, 200);
    let last = events.last().unwrap();
    assert_eq!((last["type"].as_str(), last["rolled_back"].as_bool()), (Some("error"), Some(true)), "{events:?}");
    assert_eq!(inspect(&name, "{{.Id}}"), new_id);
    assert_eq!(named(&name), vec![format!("{name} running")]);
    assert_eq!(docker(&["exec", &name, "cat", "/anon/f"]), "anon", "rollbacks keep the anonymous volume");
    let failed = sc.audit_records().into_iter().filter(|r| r["verb"] == "recreate" && r["outcome"] == "error").count();
    assert_eq!(failed, 2, "both rollbacks are audited as failures");
}

#[tokio::test]
async fn refusals_protected_busy_bad_input_and_an_unreachable_registry() {
    let plain = TestContainer::run("rc-plain", &[], LOOP);
    let db = TestContainer::run("rc-db", &["--label", "dockward.protect=true"], LOOP);
    // An image whose registry is gone: pushed to a registry that is then stopped.
    let gone_tag = {
        let gone = Registry::start();
        let tag = format!("127.0.0.1:{}/dockward/gone:1", gone.port);
        docker(&["tag", IMAGE, &tag]);
        docker(&["push", &tag]);
        tag
    };
    let orphan = TestContainer::run_image("rc-orphan", &gone_tag, LOOP);
    let sc = Sidecar::start(&[&format!("--pull-registries={}", gone_tag.split('/').next().unwrap())]).await;

    let (status, body) = recreate(&sc, &db.name, "").await;
    assert_eq!(status, 403, "{body:?}");
    assert!(body[0]["error"]["message"].as_str().unwrap().contains("protected"));
    for bad in ["?health_timeout=0", "?grace=9999", "?pull=maybe", "?force=1"] {
        assert_eq!(recreate(&sc, &plain.name, bad).await.0, 400, "{bad}");
    }
    assert_eq!(recreate(&sc, "bad%20ref", "").await.0, 400);
    assert_eq!(recreate(&sc, "no-such-container-anywhere", "").await.0, 404);
    // A container run from an image id has nothing to pull.
    let by_id = TestContainer::run_image("rc-byid", &docker(&["image", "inspect", "-f", "{{.Id}}", IMAGE]), LOOP);
    let (status, body) = recreate(&sc, &by_id.name, "?pull=true").await;
    assert_eq!(status, 400, "{body:?}");

    // A container squatting the temporary name makes the create fail: rolled
    // back, and the squatter (not the recreate's) is left alone.
    let squatter = format!("{}-dockward-new", plain.name);
    docker(&["run", "-d", "--name", &squatter, "--label", "dockward.test=1", IMAGE, "sh", "-c", LOOP]);
    let (status, events) = recreate(&sc, &plain.name, "").await;
    assert_eq!(status, 200);
    let last = events.last().unwrap();
    assert_eq!((last["type"].as_str(), last["rolled_back"].as_bool()), (Some("error"), Some(true)), "{events:?}");
    assert_eq!(inspect(&squatter, "{{.State.Status}}"), "running", "a container it did not make is untouched");
    assert_eq!(inspect(&plain.name, "{{.Id}}"), plain.id);
    // A recreate's temporary and aside names are no targets.
    assert_eq!(recreate(&sc, &squatter, "").await.0, 409);
    docker(&["rm", "-f", &squatter]);

    // One at a time per container: a second recreate during the grace period is 409.
    let sc2 = sc.post(&format!("/v1/containers/{}/recreate?grace=4", plain.name)).send();
    let first = tokio::spawn(sc2);
    // Under way once its journal is on disk (the grace period keeps it there 4 s more).
    let journal_dir = sc.dir.path().join("recreate");
    eventually(Duration::from_secs(20), "the first recreate under way", || {
        std::future::ready(std::fs::read_dir(&journal_dir).ok().and_then(|mut d| d.next()).map(|_| ()))
    })
    .await;
    let (status, busy) = recreate(&sc, &plain.name, "").await;
    assert_eq!(status, 409, "{busy:?}");
    assert_eq!(busy[0]["error"]["code"], "conflict", "{busy:?}");
    let text = first.await.unwrap().unwrap().text().await.unwrap();
    assert!(text.lines().last().unwrap().contains("\"type\":\"done\""), "{text}");

    // The unreachable registry is one entry's error; the others are unaffected.
    let all = sc.json("/v1/updates").await;
    let entry = |n: &str| all["containers"].as_array().unwrap().iter().find(|c| c["name"] == n).cloned().unwrap();
    let o = entry(&orphan.name);
    assert_eq!(o["status"], "error", "{o}");
    assert!(o["reason"].as_str().is_some_and(|r| !r.is_empty()), "{o}");
    assert_eq!(entry(&plain.name)["status"], "local_only", "{all}");
    assert_eq!(entry(&by_id.name)["status"], "local_only", "{all}");
    let _ = std::process::Command::new("docker").args(["rmi", &gone_tag]).output();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_killed_between_stop_and_start_puts_the_old_container_back() {
    let c = TestContainer::run("rc-crash", &["--restart", "unless-stopped"], LOOP);
    let mut sc = Sidecar::start(&["--test-recreate-pause=60s"]).await;
    let req = sc.post(&format!("/v1/containers/{}/recreate", c.name)).send();
    let pending = tokio::spawn(req);
    let journal_dir = sc.dir.path().join("recreate");
    eventually(Duration::from_secs(30), "the old container stopped and the journal at `stopped`", || {
        let phase = std::fs::read_dir(&journal_dir)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .map(|j| j["phase"].clone());
        std::future::ready((phase == Some(Value::from("stopped")) && c.state() == "exited").then_some(()))
    })
    .await;
    assert_eq!(named(&c.name).len(), 2, "the new container waits under its temporary name");
    sc.kill_and_restart(&[]).await;
    pending.abort();
    eventually(Duration::from_secs(30), "the recovery record", || {
        std::future::ready(sc.audit_records().into_iter().find(|r| r["verb"] == "recreate.recover"))
    })
    .await;
    assert_eq!(named(&c.name), vec![format!("{} running", c.name)], "exactly one container under the name");
    assert_eq!(c.state(), "running");
    assert_eq!(inspect(&c.name, "{{.Id}}"), c.id, "the old container is back");
    let rec = sc.audit_records().into_iter().find(|r| r["verb"] == "recreate.recover").unwrap();
    assert_eq!((rec["outcome"].as_str(), rec["params"]["action"].as_str()), (Some("ok"), Some("rolled back")), "{rec}");
    assert_eq!(rec["params"]["phase"], "stopped");
    assert!(std::fs::read_dir(&journal_dir).unwrap().next().is_none(), "the journal is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compose_service_built_here_is_rebuilt_from_source_only_when_its_directory_is_mounted() {
    require_docker();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let project = unique("rcbuild").replace('-', "");
    let compose = root.join("compose.yaml");
    let dockerfile = |v: u32| {
        std::fs::write(
            root.join("Dockerfile"),
            format!("FROM {IMAGE}\nRUN echo {v} > /version\nCMD [\"sh\", \"-c\", \"{LOOP}\"]\n"),
        )
        .unwrap()
    };
    dockerfile(1);
    std::fs::write(&compose, "services:\n  web:\n    build: .\n    labels:\n      dockward.test: \"1\"\n").unwrap();
    let compose_cmd = |args: &[&str]| {
        let out = std::process::Command::new("docker-compose")
            .args(["-p", &project, "-f", compose.to_str().unwrap()])
            .args(args)
            .output()
            .expect("docker-compose (apt-get install docker-compose)");
        assert!(out.status.success(), "docker-compose {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let image = format!("{project}_web");
    let _cleanup = Cleanup(vec![
        vec!["rm".into(), "-f".into(), format!("{project}_web_1"), format!("{project}_web_1-dockward-old")],
        vec!["rmi".into(), image.clone()],
    ]);
    compose_cmd(&["up", "-d", "--build"]);
    let name = format!("{project}_web_1");
    assert_eq!(docker(&["exec", &name, "cat", "/version"]), "1");

    // Without the mount: the card's note says why, and the verb refuses.
    let sc = Sidecar::start(&[]).await;
    let u = updates_for(&sc, &name).await;
    assert_eq!((u["status"].as_str(), u["buildable"].as_bool()), (Some("local_only"), None), "{u}");
    assert!(u["build_note"].as_str().is_some_and(|n| n.contains("DOCKWARD_BUILD_ROOT")), "{u}");
    let (status, body) = recreate(&sc, &name, "?build=true").await;
    assert_eq!(status, 403, "{body:?}");
    assert_eq!(recreate(&sc, &name, "?build=true&pull=true").await.0, 400, "an update or a rebuild, not both");
    drop(sc);

    // With it: the new Dockerfile is built and runs under the name.
    let sc = Sidecar::start(&[&format!("--build-root={}", root.display())]).await;
    assert_eq!(updates_for(&sc, &name).await["buildable"], true);
    dockerfile(2);
    let (status, events) = recreate(&sc, &name, "?build=true").await;
    assert_eq!(status, 200);
    let steps: Vec<&str> = events.iter().filter(|e| e["type"] == "step").filter_map(|e| e["step"].as_str()).collect();
    assert_eq!(steps.first(), Some(&"build"), "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "progress" && e["status"].as_str().is_some_and(|s| s.contains("RUN echo 2"))),
        "{events:?}"
    );
    let done = events.last().unwrap();
    assert_eq!(done["type"], "done", "{events:?}");
    assert_eq!(docker(&["exec", &name, "cat", "/version"]), "2");
    assert_eq!(inspect(&name, "{{index .Config.Labels \"com.docker.compose.service\"}}"), "web");
    assert_eq!(named(&name), vec![format!("{name} running")]);
    let rec = sc.audit_records().into_iter().find(|r| r["verb"] == "recreate" && r["outcome"] == "ok").unwrap();
    assert_eq!(rec["params"]["build"], "true", "{rec}");
    compose_cmd(&["down"]);
}
