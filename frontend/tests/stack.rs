//! The compose stack for real: the images `scripts/build-images.sh` builds
//! (`dockward-sidecar:local`, `dockward-web:local`), brought up from the
//! repository's compose.yaml by docker-compose (Debian's 1.29; set
//! `DOCKWARD_COMPOSE="docker compose"` for Compose v2), then checked from the
//! host and through the console in headless Chromium.
//!
//! It uses the published port 127.0.0.1:8080, as a user would, and its own
//! compose project name, so it never touches a stack you run yourself.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use testkit::browser::*;
use testkit::*;

const PROJECT: &str = "dwstacktest";
const WEB: &str = "http://127.0.0.1:8080";
/// The body of the sidecar's /healthz.
const SIDECAR_HEALTH: &str = r#"{"status":"ok"}"#;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn socket_gid() -> String {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/var/run/docker.sock").expect("/var/run/docker.sock").gid().to_string()
}

/// Runs the compose CLI on the repository's compose.yaml, as a user would.
fn compose_output(args: &[&str]) -> Output {
    let cli = std::env::var("DOCKWARD_COMPOSE").unwrap_or_else(|_| "docker-compose".into());
    let mut words = cli.split_whitespace();
    let program = words.next().expect("DOCKWARD_COMPOSE is empty");
    Command::new(program)
        .args(words)
        .args(["-p", PROJECT, "-f", "compose.yaml"])
        .args(args)
        .current_dir(repo_root())
        .env("DOCKER_GID", socket_gid())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cli} ({e}): install docker-compose (apt-get install docker-compose)"))
}

fn compose(args: &[&str]) -> String {
    let out = compose_output(args);
    assert!(
        out.status.success(),
        "compose {} failed:\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Takes the stack down with its volumes, even when an assertion fails.
struct Teardown;

impl Drop for Teardown {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- compose logs ---\n{}",
                String::from_utf8_lossy(&compose_output(&["logs", "--no-color"]).stdout)
            );
        }
        let _ = compose_output(&["down", "-v", "--remove-orphans"]);
    }
}

/// The project's resources of one kind (`container`, `network`, `volume`) that still exist.
fn leftovers(kind: &str) -> Vec<String> {
    let label = format!("label=com.docker.compose.project={PROJECT}");
    let mut args = vec![kind, "ls", "-q", "--filter", &label];
    if kind == "container" {
        args.push("-a");
    }
    docker(&args).lines().map(str::to_owned).collect()
}

fn container_of(service: &str) -> String {
    let id = compose(&["ps", "-q", service]).trim().to_owned();
    assert!(!id.is_empty(), "no container for {service}");
    id
}

fn inspect(id: &str, format: &str) -> String {
    docker(&["inspect", "--format", format, id])
}

async fn wait_healthy(what: &str) {
    let start = Instant::now();
    loop {
        let ok = reqwest::get(format!("{WEB}/healthz")).await.is_ok_and(|r| r.status().is_success());
        if ok {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(90), "the console did not answer on {WEB} ({what})");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The password the console printed for its first admin.
fn first_admin_password() -> String {
    let start = Instant::now();
    loop {
        let logs = compose(&["logs", "--no-color", "web"]);
        if let Some(rest) = logs.split("created the first user: admin / ").nth(1) {
            return rest.split_whitespace().next().unwrap().to_owned();
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no first-admin line in the web's log:\n{logs}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn status_field(pid: &str, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .to_owned()
}

/// Non-root, no capabilities, no-new-privileges, read-only root filesystem:
/// read from the kernel (the process's status and mounts) and from the engine.
fn assert_hardened(service: &str, id: &str) -> String {
    let pid = inspect(id, "{{.State.Pid}}");
    let uids = status_field(&pid, "Uid");
    assert!(uids.split_whitespace().all(|u| u == "65532"), "{service} runs as {uids}");
    assert_eq!(status_field(&pid, "CapEff"), "0000000000000000", "{service} has capabilities");
    assert_eq!(status_field(&pid, "CapPrm"), "0000000000000000", "{service} has permitted capabilities");
    assert_eq!(status_field(&pid, "NoNewPrivs"), "1", "{service} may gain privileges");
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let root = mountinfo.lines().find(|l| l.split_whitespace().nth(4) == Some("/")).expect("a root mount");
    let options = root.split_whitespace().nth(5).unwrap();
    assert!(options.split(',').any(|o| o == "ro"), "{service}'s root filesystem is writable: {root}");
    assert_eq!(inspect(id, "{{.HostConfig.ReadonlyRootfs}}"), "true");
    pid
}

/// Every socket file under a container's root filesystem (kernel filesystems excluded).
fn sockets_in(root: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    let mut found = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            let rel = path.strip_prefix(root).unwrap();
            if ["proc", "sys", "dev"].iter().any(|k| rel.starts_with(k)) {
                continue;
            }
            match e.file_type() {
                Ok(t) if t.is_socket() => found.push(path),
                Ok(t) if t.is_dir() => stack.push(path),
                _ => {}
            }
        }
    }
    found
}

/// True when `GET /healthz` to `ip:7700` gets the sidecar's own answer within
/// 3 s. (Only its answer counts: some networks answer any address themselves.)
fn sidecar_answers(ip: IpAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&(ip, 7700).into(), Duration::from_secs(3)) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let _ = s.take(4096).read_to_end(&mut buf);
    let answer = String::from_utf8_lossy(&buf);
    answer.starts_with("HTTP/1.1 200") && answer.contains(SIDECAR_HEALTH)
}

fn in_subnet(ip: Ipv4Addr, subnet: &str) -> bool {
    let (net, bits) = subnet.split_once('/').unwrap();
    let net: Ipv4Addr = net.parse().unwrap();
    let bits: u32 = bits.parse().unwrap();
    let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
    u32::from(ip) & mask == u32::from(net) & mask
}

fn audit_file() -> PathBuf {
    let mount = docker(&["volume", "inspect", "--format", "{{.Mountpoint}}", &format!("{PROJECT}_audit")]);
    Path::new(&mount).join("audit.jsonl")
}

fn audit_records() -> Vec<serde_json::Value> {
    std::fs::read_to_string(audit_file())
        .expect("the audit log on the volume")
        .lines()
        .map(|l| serde_json::from_str(l).expect("an audit line is JSON"))
        .collect()
}

/// `dockward-sidecar audit verify` from the sidecar image, on the volume (what SECURITY.md tells operators to run).
fn verify_audit_volume() -> String {
    docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{PROJECT}_audit:/var/lib/dockward:ro"),
        "dockward-sidecar:local",
        "audit",
        "verify",
        "/var/lib/dockward/audit.jsonl",
    ])
}

/// Where a login POST sends the browser: `/` on success, back to `/login?error=…` otherwise.
async fn login_redirect(password: &str) -> String {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = http
        .post(format!("{WEB}/auth/login"))
        .header("origin", WEB)
        .form(&[("username", "admin"), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    r.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_stack_runs_hardened_and_keeps_its_audit_log() {
    require_docker();
    for image in ["dockward-sidecar:local", "dockward-web:local"] {
        assert!(docker_ok(&["image", "inspect", image]), "{image} is missing: build it with scripts/build-images.sh");
    }
    let driver = Driver::start();
    let _ = compose_output(&["down", "-v", "--remove-orphans"]);
    let _teardown = Teardown;
    let target =
        TestContainer::run("stack-target", &["--label", "com.docker.compose.project=stacktarget"], "sleep 600");

    // First run: nothing but `up -d` (the init service makes the secret, the console its first admin).
    compose(&["up", "-d"]);
    wait_healthy("first run").await;
    let password = first_admin_password();
    let sidecar = container_of("sidecar");
    let web = container_of("web");
    let sidecar_name = inspect(&sidecar, "{{.Name}}").trim_start_matches('/').to_owned();
    let web_name = inspect(&web, "{{.Name}}").trim_start_matches('/').to_owned();
    assert_eq!(inspect(&container_of("init"), "{{.State.ExitCode}}"), "0", "the init service succeeded");

    // Hardening, read from the kernel.
    let sidecar_pid = assert_hardened("sidecar", &sidecar);
    let web_pid = assert_hardened("web", &web);
    let groups = status_field(&sidecar_pid, "Groups");
    assert!(groups.split_whitespace().any(|g| g == socket_gid()), "the sidecar lacks the socket's group: {groups}");

    // Only the sidecar has the socket; the web has no socket file at all, no DOCKER_HOST, and no published sidecar.
    assert!(inspect(&sidecar, "{{range .Mounts}}{{.Destination}} {{end}}").contains("/var/run/docker.sock"));
    let web_mounts = inspect(&web, "{{range .Mounts}}{{.Source}} {{.Destination}} {{end}}");
    assert!(!web_mounts.contains("docker.sock"), "the web has the socket: {web_mounts}");
    let web_root = PathBuf::from(format!("/proc/{web_pid}/root"));
    assert!(web_root.join("dockward-web").exists(), "the web's root filesystem is readable from here");
    assert_eq!(sockets_in(&web_root), Vec::<PathBuf>::new(), "socket files inside the web container");
    assert!(!inspect(&web, "{{json .Config.Env}}").contains("DOCKER_HOST"));
    assert_eq!(inspect(&sidecar, "{{json .NetworkSettings.Ports}}"), "{}", "the sidecar publishes nothing");

    // The sidecar is on the internal backplane only, and the host has no address there to reach it from.
    let backplane = format!("{PROJECT}_backplane");
    assert_eq!(inspect(&sidecar, "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}").trim(), backplane);
    assert_eq!(docker(&["network", "inspect", "--format", "{{.Internal}}", &backplane]), "true");
    let subnet = docker(&["network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", &backplane]);
    let sidecar_ip: Ipv4Addr =
        inspect(&sidecar, &format!("{{{{(index .NetworkSettings.Networks \"{backplane}\").IPAddress}}}}"))
            .parse()
            .unwrap();
    let host_addrs = String::from_utf8(Command::new("ip").args(["-4", "-o", "addr"]).output().unwrap().stdout).unwrap();
    for line in host_addrs.lines() {
        let addr = line.split_whitespace().nth(3).unwrap().split('/').next().unwrap();
        let addr: Ipv4Addr = addr.parse().unwrap();
        assert!(!in_subnet(addr, &subnet), "the host has {addr} on the backplane {subnet}: {line}");
    }
    assert!(!sidecar_answers(sidecar_ip.into()), "the sidecar answered the host at {sidecar_ip}:7700");
    // The same probe does reach it from the backplane (a test container attached there).
    let probe = format!(
        "(printf 'GET /healthz HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n'; sleep 2) | busybox nc -w 3 {sidecar_ip} 7700"
    );
    let from_backplane = docker(&["run", "--rm", "--network", &backplane, IMAGE, "sh", "-c", &probe]);
    assert!(
        from_backplane.starts_with("HTTP/1.1 200") && from_backplane.ends_with(SIDECAR_HEALTH),
        "the sidecar is not reachable on the backplane: {from_backplane}"
    );

    // The browser: log in with the first admin's password; the stack's own two containers are on the overview.
    let c = driver.session().await;
    login(&c, WEB, "admin", &password).await;
    let card = format!("article[data-app='{PROJECT}']");
    wait_text(&c, &card, &sidecar_name, 20).await;
    let stack_card = text(&c, &card).await;
    assert!(stack_card.contains(&web_name), "the web is not on its project's card: {stack_card}");

    // A restart through the console lands in the audit log on the volume.
    wait_text(&c, "article[data-app='stacktarget']", &target.name, 20).await;
    let before = target.started_at();
    restart_from_overview(&c, &target.name).await;
    assert_ne!(target.started_at(), before, "the restart did not happen");
    let restarts = || {
        audit_records()
            .into_iter()
            .filter(|r| r["verb"] == "restart" && r["target"] == target.id.as_str() && r["outcome"] == "ok")
            .collect::<Vec<_>>()
    };
    let record =
        restarts().first().cloned().unwrap_or_else(|| panic!("no restart record in {}", audit_file().display()));
    assert_eq!(record["actor"], "admin", "{record}");
    assert!(verify_audit_volume().starts_with("ok:"));

    // Rotating the secret with the init image: nothing restarts, the console switches keys, nothing is refused.
    compose(&["run", "--rm", "init", "secret", "rotate", "/run/secrets/local"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.goto(WEB).await.unwrap();
    hydrated(&c).await;
    let before = target.started_at();
    restart_from_overview(&c, &target.name).await;
    assert_ne!(target.started_at(), before, "the restart after the rotation did not happen");
    let after = restarts();
    assert_eq!(after.len(), 2, "{after:?}");
    assert_ne!(after[1]["client"], record["client"], "the console still uses the old secret");
    compose(&["run", "--rm", "init", "secret", "retire", "/run/secrets/local"]);
    let refused: Vec<_> = audit_records().into_iter().filter(|r| r["verb"] == "auth").collect();
    assert_eq!(refused, Vec::<serde_json::Value>::new(), "the rotation made the sidecar refuse the console");
    c.close().await.unwrap();

    // `down` leaves nothing running; the volumes stay.
    compose(&["down"]);
    assert_eq!(leftovers("container"), Vec::<String>::new(), "containers left after down");
    assert_eq!(leftovers("network"), Vec::<String>::new(), "networks left after down");
    assert!(audit_file().exists());

    // `up` again: the same log with the record in it, the chain intact, the same admin.
    compose(&["up", "-d"]);
    wait_healthy("second run").await;
    assert_eq!(restarts().first(), Some(&record), "the restart record survived down/up unchanged");
    assert!(verify_audit_volume().starts_with("ok:"));
    assert_eq!(login_redirect(&password).await, "/", "the first admin still logs in after down/up");
    assert_eq!(login_redirect("not the password").await, "/login?error=invalid");
    let logs = compose(&["logs", "--no-color", "web"]);
    assert!(!logs.contains("created the first user"), "the second run made another admin:\n{logs}");

    compose(&["down", "-v"]);
    for kind in ["container", "network", "volume"] {
        assert_eq!(leftovers(kind), Vec::<String>::new(), "{kind}s left after down -v");
    }
}
