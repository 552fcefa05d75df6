//! The engine stopped and started again while the sidecar runs. Uses a
//! private dockerd of its own (own socket, data and exec roots) so the
//! engine the other tests use is never disturbed.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use testkit::sidecar::*;
use testkit::*;

struct Daemon {
    child: Option<Child>,
    dir: PathBuf,
}

const BRIDGE: &str = "dwtest0";

impl Daemon {
    fn start(dir: PathBuf) -> Self {
        let exists =
            Command::new("ip").args(["link", "show", BRIDGE]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        if !exists.is_ok_and(|s| s.success()) {
            let made = Command::new("ip").args(["link", "add", "name", BRIDGE, "type", "bridge"]).status();
            assert!(
                made.is_ok_and(|s| s.success()),
                "cannot create the test bridge {BRIDGE} (needs root and iproute2)"
            );
        }
        let mut d = Self { child: None, dir };
        d.up();
        d
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }

    fn up(&mut self) {
        let dockerd = ["/usr/sbin/dockerd", "/usr/bin/dockerd"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("dockerd is not installed (apt-get install docker.io)");
        let d = &self.dir;
        let child = Command::new(dockerd)
            .arg(format!("--data-root={}", d.join("data").display()))
            .arg(format!("--exec-root={}", d.join("exec").display()))
            .arg(format!("--pidfile={}", d.join("pid").display()))
            .arg(format!("--host=unix://{}", self.socket().display()))
            // A bridge of its own: with --bridge=none dockerd deletes the shared docker0.
            .arg(format!("--bridge={BRIDGE}"))
            .args(["--iptables=false", "--ip-masq=false", "--ip6tables=false"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("dockerd.log")).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let what = format!("the private dockerd to answer (its log: {})", d.join("dockerd.log").display());
        wait_for(Duration::from_secs(30), &what, || {
            Command::new("docker")
                .arg("-H")
                .arg(format!("unix://{}", self.socket().display()))
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
                .then_some(())
        });
    }

    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status(); // SIGTERM: a clean stop
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.down();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_going_away_and_coming_back() {
    require_docker();
    let dir = tempfile::Builder::new().prefix("dockward-dd").tempdir_in("/tmp").unwrap();
    let mut daemon = Daemon::start(dir.path().to_path_buf());
    let host = format!("--docker-host=unix://{}", daemon.socket().display());
    let sc = Sidecar::start(&[&host]).await;

    let health = |sc: &Sidecar| {
        let req = sc.http.get(sc.url("/healthz"));
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap()["status"].as_str().unwrap().to_owned())
        }
    };
    assert_eq!(health(&sc).await, (200, "ok".into()));
    let healthcheck = |sc: &Sidecar| {
        let out = Command::new(sidecar_bin())
            .args(["healthcheck", "--addr", sc.addr()])
            .args(sc.transport_args())
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    assert_eq!(healthcheck(&sc).0, Some(0));
    // Subscribed before the outage: told to refetch after the reconnect.
    let mut events = SseReader::new(sc.get("/v1/events").send().await.unwrap());
    eventually(Duration::from_secs(10), "a fresh snapshot", || async {
        (sc.json("/v1/stats").await["stale"] == false).then_some(())
    })
    .await;

    daemon.down();
    eventually(Duration::from_secs(10), "healthz degraded", || async {
        (health(&sc).await == (503, "degraded".into())).then_some(())
    })
    .await;
    let (code, stderr) = healthcheck(&sc);
    assert_eq!(code, Some(1), "the healthcheck passed a degraded sidecar");
    assert!(stderr.contains("unhealthy: HTTP/1.1 503"), "{stderr}");
    // Reads of cached data go on, marked stale.
    let snap = eventually(Duration::from_secs(10), "stale snapshot", || async {
        let s = sc.json("/v1/stats").await;
        (s["stale"] == true).then_some(s)
    })
    .await;
    assert!(snap["containers"].is_array());
    // Mutations answer 503.
    for req in [sc.post("/v1/containers/anything/restart"), sc.post("/v1/prune/images")] {
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 503);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "docker_unavailable");
        // With the reason and the fix: a stopped dockerd removes its socket.
        let engine = &body["error"]["engine"];
        assert_eq!(engine["kind"], "socket_missing", "{body}");
        assert!(engine["fix"].as_str().is_some_and(|f| f.contains("started")), "{body}");
    }
    assert_eq!(
        sc.http.get(sc.url("/healthz")).send().await.unwrap().json::<Value>().await.unwrap()["engine"],
        "socket_missing"
    );

    daemon.up();
    eventually(Duration::from_secs(20), "healthz ok again without a restart", || async {
        (health(&sc).await == (200, "ok".into())).then_some(())
    })
    .await;
    let r = sc.get("/v1/containers").send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Events may have been missed while the engine was away.
    assert!(events.next_named("resync", Duration::from_secs(20)).await.is_some(), "no resync after the reconnect");
    eventually(Duration::from_secs(10), "fresh stats again", || async {
        (sc.json("/v1/stats").await["stale"] == false).then_some(())
    })
    .await;
}
