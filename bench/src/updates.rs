//! Issue 15: what a recreate costs in downtime, next to the same steps by
//! hand with the docker CLI, and what update checks cost the registry.
//!
//! Downtime is read from the engine's own events: the old container's `die`
//! to the new one's `start`, for both ways, alternated. The registry is
//! Debian's `docker-registry` on loopback with its access log on; a check of
//! one tag is one `HEAD /v2/<name>/manifests/<tag>` there.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use testkit::{commit_image, docker, free_port, unique, wait_port};

use crate::rig::{self, LABEL, SECRET};
use crate::scenarios::{round3, Figure};

const LOOP: &str = "trap 'exit 0' TERM; while true; do sleep 1; done";
const SCENARIO: &str = "11. recreate and updates";

/// The engine's event time (Unix ns) of `action` for container `id` since `since`.
fn event_ns(id: &str, action: &str, since: &str) -> Option<u128> {
    let until = format!("{}", time_now_s() + 1);
    let out = docker(&[
        "events",
        "--since",
        since,
        "--until",
        &until,
        "--filter",
        &format!("container={id}"),
        "--filter",
        &format!("event={action}"),
        "--format",
        "{{.TimeNano}}",
    ]);
    out.lines().last()?.trim().parse().ok()
}

fn time_now_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `docker run -d` or `docker create` (`verb`) of the target: a network with
/// an alias, a published port, an anonymous volume, a restart policy.
fn target(verb: &[&str], name: &str, net: &str, port: u16) -> String {
    let (label, publish) = (format!("{LABEL}=1"), format!("127.0.0.1:{port}:8080"));
    let mut args: Vec<&str> = verb.to_vec();
    args.extend_from_slice(&[
        "--name",
        name,
        "--label",
        &label,
        "--network",
        net,
        "--network-alias",
        "svc",
        "-p",
        &publish,
        "-v",
        "/data",
        "--restart",
        "unless-stopped",
        testkit::IMAGE,
        "sh",
        "-c",
        LOOP,
    ]);
    docker(&args)
}

fn run_target(name: &str, net: &str, port: u16) -> String {
    target(&["run", "-d"], name, net, port)
}

/// The same steps as the sidecar, by hand: create the new one, stop the old,
/// rename both, start the new. Its downtime (die → start), in ms.
fn by_hand(name: &str, net: &str, port: u16) -> f64 {
    let old = docker(&["inspect", "-f", "{{.Id}}", name]);
    let since = format!("{}", time_now_s().saturating_sub(1));
    let new_name = format!("{name}-new");
    let new = target(&["create"], &new_name, net, port);
    docker(&["stop", name]);
    docker(&["rename", name, &format!("{name}-old")]);
    docker(&["rename", &new_name, name]);
    docker(&["start", name]);
    docker(&["rm", "-f", &format!("{name}-old")]);
    downtime(&old, &new, &since)
}

fn downtime(old: &str, new: &str, since: &str) -> f64 {
    let died = event_ns(old, "die", since).expect("the old container's die event");
    let started = event_ns(new, "start", since).expect("the new container's start event");
    (started.saturating_sub(died)) as f64 / 1e6
}

/// Through the sidecar (no pull, no healthcheck, `grace=0`): its downtime in ms.
async fn by_sidecar(http: &reqwest::Client, sc: &rig::Proc, name: &str) -> f64 {
    let old = docker(&["inspect", "-f", "{{.Id}}", name]);
    let since = format!("{}", time_now_s().saturating_sub(1));
    let r = http
        .post(sc.url(&format!("/v1/containers/{name}/recreate?grace=0")))
        .bearer_auth(SECRET)
        .send()
        .await
        .expect("a recreate answer");
    let text = r.text().await.unwrap_or_default();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap_or("{}")).unwrap_or_default();
    assert_eq!(last["type"], "done", "{text}");
    let new = last["new_id"].as_str().unwrap_or_default().to_owned();
    downtime(&old, &new, &since)
}

pub async fn recreate_and_updates(dir: &Path, quick: bool) -> Vec<Figure> {
    let mut figures = downtime_figures(dir, quick).await;
    figures.extend(registry_cost(dir, quick).await);
    figures
}

async fn downtime_figures(dir: &Path, quick: bool) -> Vec<Figure> {
    let net = unique("bench-rc-net");
    docker(&["network", "create", "--label", &format!("{LABEL}=1"), &net]);
    let (a, b) = (unique("bench-rc-a"), unique("bench-rc-b"));
    let (pa, pb) = (free_port(), free_port());
    run_target(&a, &net, pa);
    run_target(&b, &net, pb);
    let sc = rig::sidecar(dir, "recreate");
    let http = reqwest::Client::new();
    let runs = if quick { 3 } else { 10 };
    let (mut cli, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        cli.push(by_hand(&a, &net, pa));
        ours.push(by_sidecar(&http, &sc, &b).await);
    }
    let (c, o) = (rig::median(&mut cli), rig::median(&mut ours));
    eprintln!("  downtime (die → start) median: docker CLI {c:.1} ms, sidecar recreate {o:.1} ms");
    drop(sc);
    rig::remove_all();
    let _ = Command::new("docker").args(["network", "rm", &net]).stdout(Stdio::null()).status();
    vec![
        Figure::new(SCENARIO, "downtime of a recreate, docker CLI by hand (median)", None, round3(c), "ms")
            .note(format!("{runs} runs: create, stop, rename ×2, start; old `die` → new `start` (engine events)")),
        Figure::new(SCENARIO, "downtime of a recreate through the sidecar (median)", None, round3(o), "ms")
            .note(format!("{runs} runs, alternated with the CLI's; same container, network, port, volume")),
        Figure::new(SCENARIO, "sidecar downtime ÷ CLI downtime", None, round3(o / c.max(0.001)), "×").at_most(1.1),
    ]
}

/// A registry on loopback whose access log is kept, for counting requests.
struct LoggedRegistry {
    port: u16,
    log: std::path::PathBuf,
    child: std::process::Child,
}

impl Drop for LoggedRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LoggedRegistry {
    fn start(dir: &Path) -> Self {
        let port = free_port();
        let cfg = dir.join("registry.yml");
        let log = dir.join("registry.log");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.join("registry-data").display()
            ),
        )
        .expect("registry config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(std::fs::File::create(&log).expect("registry log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (apt-get install docker-registry)");
        wait_port(port, "the bench registry");
        Self { port, log, child }
    }

    /// Access-log lines: (tag lookups `HEAD …/manifests/<tag>`, all requests).
    fn counts(&self) -> (usize, usize) {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let requests: Vec<&str> = text.lines().filter(|l| l.contains("\" ") && l.contains(" /v2/")).collect();
        let tags = requests
            .iter()
            .filter(|l| l.contains("\"HEAD /v2/") && l.contains("/manifests/") && !l.contains("/manifests/sha256:"))
            .count();
        (tags, requests.len())
    }
}

async fn registry_cost(dir: &Path, quick: bool) -> Vec<Figure> {
    let registry = LoggedRegistry::start(dir);
    let images = 10;
    let containers = if quick { 40 } else { 200 };
    let mut refs = Vec::new();
    for i in 0..images {
        let r = format!("127.0.0.1:{}/bench/app{i}:stable", registry.port);
        commit_image(&r, &format!("echo {i} > /version"), &[]);
        docker(&["push", &r]);
        refs.push(r);
    }
    let started = Instant::now();
    // Four `docker run`s at a time: the engine serialises most of the work anyway.
    for batch in (0..containers).collect::<Vec<_>>().chunks(4) {
        let children: Vec<std::process::Child> = batch
            .iter()
            .map(|i| {
                Command::new("docker")
                    .args([
                        "run",
                        "-d",
                        "--label",
                        &format!("{LABEL}=1"),
                        &refs[i % images],
                        "sh",
                        "-c",
                        "exec sleep 36000",
                    ])
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("docker run")
            })
            .collect();
        for mut c in children {
            let _ = c.wait();
        }
    }
    eprintln!("  {containers} containers on {images} images in {:.1}s", started.elapsed().as_secs_f64());
    let sc = rig::sidecar_with(
        dir,
        "updates",
        &[("DOCKWARD_PLAIN_HTTP", "true".into()), ("DOCKWARD_PULL_REGISTRIES", format!("127.0.0.1:{}", registry.port))],
    );
    let http = reqwest::Client::new();
    let (tags0, all0) = registry.counts();
    let ask = || {
        let http = http.clone();
        let url = sc.url("/v1/updates");
        async move {
            let t = Instant::now();
            let v: serde_json::Value =
                http.get(url).bearer_auth(SECRET).send().await.expect("updates").json().await.expect("JSON");
            (t.elapsed(), v)
        }
    };
    let (cold, first) = ask().await;
    let checked = first["containers"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|c| c["status"] == "up_to_date" || c["status"] == "update_available").count());
    assert_eq!(checked, containers, "every container checked: {first}");
    // Four consoles at once, twice: all from the cache.
    let asks = 8;
    let mut warm = Vec::new();
    for _ in 0..asks / 4 {
        let rounds = futures_util::future::join_all((0..4).map(|_| ask())).await;
        warm.extend(rounds.into_iter().map(|(d, _)| d));
    }
    warm.sort();
    let (tags, all) = registry.counts();
    let (tags, all) = (tags - tags0, all - all0);
    eprintln!(
        "  updates for {containers} containers ({images} images), {} asks: {tags} tag lookups, {all} registry requests; cold {:.0} ms, warm p50 {:.1} ms",
        asks + 1,
        cold.as_secs_f64() * 1e3,
        rig::pct_ms(&warm, 50.0)
    );
    drop(sc);
    rig::remove_all();
    for r in &refs {
        let _ = Command::new("docker").args(["rmi", r]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
    vec![
        Figure::new(SCENARIO, "registry tag lookups per distinct image per check interval", Some(containers), tags as f64 / images as f64, "")
            .at_most(1.0)
            .note(format!("{images} images, {} asks of `GET /v1/updates` (8 of them 4 at once); {all} HTTP requests in all (the engine's ping, HEAD by tag, GET by digest)", asks + 1)),
        Figure::new(SCENARIO, "GET /v1/updates, first (registry asked)", Some(containers), round3(cold.as_secs_f64() * 1e3), "ms")
            .note("4 checks in flight, 250 ms apart per registry (the defaults)"),
        Figure::new(SCENARIO, "GET /v1/updates, cached (p50)", Some(containers), round3(rig::pct_ms(&warm, 50.0)), "ms"),
    ]
}
