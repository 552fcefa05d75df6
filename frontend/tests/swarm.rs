//! Docker Swarm, for real: `docker swarm init` on this one node, the stack
//! deployed from `stack.yaml` with its Docker secrets, and then: the console
//! finds this node's sidecar through `tasks.sidecar` (no host configured),
//! names it by the node's hostname and lists its containers; scaled to two
//! replicas, a signed-in user is signed in on each, with the same CSRF
//! token; after every replica is replaced, still signed in.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use testkit::console::{add_user, PASSWORD};
use testkit::sidecar::sidecar_bin;
use testkit::{docker, docker_ok, eventually, repo_root, require_docker, unique, TestContainer};

fn web_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_dockward-web"))
}

/// The swarm this test made, and its stack: removed, and the swarm left, when dropped.
struct Swarm {
    stack: String,
    _secrets: tempfile::TempDir,
}

impl Drop for Swarm {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["stack", "rm", &self.stack]).output();
        let _ = Command::new("docker").args(["swarm", "leave", "--force"]).output();
    }
}

fn swarm_state() -> String {
    docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).trim().to_owned()
}

/// The first global IPv4 address of this machine: where the swarm advertises itself.
fn advertise_addr() -> String {
    let out = Command::new("hostname").arg("-I").output().expect("hostname -I");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|a| a.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| !ip.is_loopback()))
        .expect("an IPv4 address to advertise")
        .to_owned()
}

/// The stack's secrets, as `scripts/swarm-secrets.sh` makes them (here with the built binaries).
fn make_secrets(dir: &Path) {
    let out = Command::new(sidecar_bin())
        .args(["secret", "init"])
        .arg(dir.join("sidecar"))
        .arg("--tls-cert-file")
        .arg(dir.join("tls.crt"))
        .arg("--tls-key-file")
        .arg(dir.join("tls.key"))
        .output()
        .expect("dockward-sidecar secret init");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    add_user(web_bin(), &dir.join("users.json"), "admin1", "admin");
    std::fs::write(dir.join("session.key"), "a-swarm-session-key-0123456789abcdef0123456789abcdef").unwrap();
}

/// The web tasks' addresses this machine reaches them at (their
/// `docker_gwbridge` endpoints), once `want` of them run.
fn replicas(stack: &str, want: usize) -> Vec<String> {
    testkit::wait_for(Duration::from_secs(180), &format!("{want} console replicas"), || {
        let ids = docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.service.name={stack}_web"),
            "--filter",
            "status=running",
        ]);
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if ids.len() != want {
            return None;
        }
        let gw = docker(&["network", "inspect", "docker_gwbridge", "--format", "{{json .Containers}}"]);
        let gw: serde_json::Value = serde_json::from_str(&gw).ok()?;
        let mut bases = Vec::new();
        for id in ids {
            let (_, c) = gw.as_object()?.iter().find(|(k, _)| k.starts_with(id))?;
            let ip = c["IPv4Address"].as_str()?.split('/').next()?.to_owned();
            bases.push(format!("http://{ip}:8080"));
        }
        Some(bases)
    })
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn whoami(base: &str, cookie: &str) -> Option<serde_json::Value> {
    let r = http().post(format!("{base}/api/fn/whoami")).header("cookie", cookie).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swarm_stack_lists_its_node_and_keeps_users_signed_in_across_replicas() {
    require_docker();
    for image in ["dockward-sidecar:local", "dockward-web:local"] {
        assert!(docker_ok(&["image", "inspect", image]), "{image} is missing: run scripts/build-images.sh first");
    }
    assert_eq!(swarm_state(), "inactive", "this engine is in a swarm already: the test makes and leaves its own");
    let secrets = tempfile::tempdir().unwrap();
    make_secrets(secrets.path());
    docker(&["swarm", "init", "--advertise-addr", &advertise_addr()]);
    let stack = unique("dwswarm");
    let swarm = Swarm { stack: stack.clone(), _secrets: secrets };
    let stack_file: PathBuf = repo_root().join("stack.yaml");
    let out = Command::new("docker")
        .args(["stack", "deploy", "-c"])
        .arg(&stack_file)
        .arg(&stack)
        .env("DOCKWARD_SWARM_SECRETS", swarm._secrets.path())
        .output()
        .expect("docker stack deploy");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // One replica: sign in, and the node's own sidecar appears, named by the node.
    let bases = replicas(&stack, 1);
    let base = bases[0].clone();
    let cookie = eventually(Duration::from_secs(120), "a login on the console", || async {
        let r = http()
            .post(format!("{base}/auth/login"))
            .form(&[("username", "admin1"), ("password", PASSWORD)])
            .send()
            .await
            .ok()?;
        r.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("dockward_session="))
            .map(|v| v.split(';').next().unwrap_or_default().to_owned())
    })
    .await;
    let who = whoami(&base, &cookie).await.expect("signed in");
    let node = docker(&["info", "--format", "{{.Name}}"]).trim().to_owned();
    let marker = TestContainer::run("swarm", &[], "sleep 600");
    eventually(Duration::from_secs(120), "the node's sidecar connected in the console", || async {
        let r = http().post(format!("{base}/api/fn/fleet")).header("cookie", &cookie).send().await.ok()?;
        let fleet: serde_json::Value = r.json().await.ok()?;
        let host = fleet["hosts"].as_array()?.iter().find(|h| h["name"] == node.as_str())?.clone();
        (host["status"]["state"] == "connected").then_some(())
    })
    .await;
    let r = http()
        .post(format!("{base}/api/fn/container"))
        .header("cookie", &cookie)
        .form(&[("host", node.as_str()), ("id", marker.id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the node's container through its discovered sidecar");
    let page: serde_json::Value = r.json().await.unwrap();
    assert!(page.to_string().contains(&marker.id), "{page}");

    // What the services run with, read from their running containers and the network.
    for service in ["sidecar", "web"] {
        let id = docker(&["ps", "-q", "--filter", &format!("label=com.docker.swarm.service.name={stack}_{service}")]);
        let id = id.split_whitespace().next().expect("a running task").to_owned();
        let c: serde_json::Value = serde_json::from_str(&docker(&["inspect", &id])).unwrap();
        let c = &c[0];
        assert_eq!(c["HostConfig"]["ReadonlyRootfs"], true, "{service}: a writable root filesystem");
        let drop = c["HostConfig"]["CapDrop"].to_string();
        assert!(drop.contains("ALL"), "{service}: capabilities not dropped: {drop}");
        let user = c["Config"]["User"].as_str().unwrap_or_default();
        let spec: serde_json::Value =
            serde_json::from_str(&docker(&["service", "inspect", &format!("{stack}_{service}")])).unwrap();
        let secrets = spec[0]["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"].as_array().unwrap().clone();
        for s in &secrets {
            assert_eq!(s["File"]["UID"], "65532", "{service}: {s}");
            let mode = s["File"]["Mode"].as_u64().unwrap();
            assert!(mode == 0o400 || mode == 0o444, "{service}: secret mode {mode:o}");
        }
        match service {
            "sidecar" => {
                assert_eq!(user, "0:0", "the sidecar starts as root to join the socket's group");
                let add = c["HostConfig"]["CapAdd"].to_string();
                assert!(add.contains("SETUID") && add.contains("SETGID") && !add.contains("SYS"), "{add}");
                let key = secrets.iter().find(|s| s["File"]["Name"] == "tls.key").expect("the TLS key secret");
                assert_eq!(key["File"]["Mode"], 0o400);
            }
            _ => {
                assert_eq!(user, "65532:65532");
                let add = c["HostConfig"]["CapAdd"].to_string();
                assert!(add == "null" || add == "[]", "the console gained capabilities: {add}");
                let mounts = c["Mounts"].to_string();
                assert!(!mounts.contains("docker.sock"), "the console has the socket: {mounts}");
            }
        }
    }
    let net: serde_json::Value =
        serde_json::from_str(&docker(&["network", "inspect", &format!("{stack}_backplane")])).unwrap();
    assert_eq!(net[0]["Driver"], "overlay");
    assert_eq!(net[0]["Options"]["encrypted"], "true", "{}", net[0]["Options"]);

    // Two replicas: the session holds on each, with one CSRF token.
    docker(&["service", "scale", "--detach", &format!("{stack}_web=2")]);
    let bases = replicas(&stack, 2);
    for b in &bases {
        let there = eventually(Duration::from_secs(60), "the session on a new replica", || whoami(b, &cookie)).await;
        assert_eq!((&there["name"], &there["csrf"]), (&who["name"], &who["csrf"]), "{b}: {there}");
    }

    // Every replica replaced (a rolling restart): still signed in.
    docker(&["service", "update", "--detach", "--force", &format!("{stack}_web")]);
    eventually(Duration::from_secs(180), "both replicas replaced", || async {
        let now = replicas(&stack, 2);
        now.iter().all(|b| !bases.contains(b)).then_some(now)
    })
    .await;
    for b in replicas(&stack, 2) {
        let there = eventually(Duration::from_secs(60), "the session after a restart", || whoami(&b, &cookie)).await;
        assert_eq!(there["name"], who["name"], "{b}: {there}");
    }
    drop(marker);
    drop(swarm);
    assert_eq!(swarm_state(), "inactive");
}
