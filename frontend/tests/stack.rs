//! The compose stack for real: the images `scripts/build-images.sh` builds
//! (`dockward-sidecar:local`, `dockward-web:local`), brought up from the
//! repository's compose.yaml by docker-compose (Debian's 1.29; set
//! `DOCKWARD_COMPOSE="docker compose"` for Compose v2), then checked from the
//! host and through the console in headless Chromium.
//!
//! It uses the published port 127.0.0.1:8080, as a user would, and its own
//! compose project name, so it never touches a stack you run yourself.
//!
//! One stack, brought up once, and one trial per scenario, run in order
//! (`harness = false`, see `testkit::scenarios`): a failing scenario fails
//! alone, and `down -v` runs at the end whatever failed.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fantoccini::Client;
use testkit::browser::*;
use testkit::scenarios::{scenario, Scenario};
use testkit::*;

const PROJECT: &str = "dwstacktest";
const WEB: &str = "http://127.0.0.1:8080";
/// The body of the sidecar's /healthz.
const SIDECAR_HEALTH: &str = r#"{"status":"ok"}"#;

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
        // No DOCKER_GID or any other setting: the README's command as is, whatever the socket's gid.
        .env_remove("DOCKER_GID")
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

fn print_compose_logs() {
    eprintln!("--- compose logs ---\n{}", String::from_utf8_lossy(&compose_output(&["logs", "--no-color"]).stdout));
}

/// Takes the stack down with its volumes, even when an assertion fails.
struct Teardown;

impl Drop for Teardown {
    fn drop(&mut self) {
        if std::thread::panicking() {
            print_compose_logs();
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
    eventually(Duration::from_secs(90), &format!("the console to answer on {WEB} ({what})"), || async {
        reqwest::get(format!("{WEB}/healthz")).await.is_ok_and(|r| r.status().is_success()).then_some(())
    })
    .await;
}

/// The first line of the web's log that contains `marker`, waiting for it.
fn web_log_line(marker: &str, what: &str) -> String {
    wait_for(Duration::from_secs(30), what, || {
        let logs = compose(&["logs", "--no-color", "web"]);
        logs.lines().find(|l| l.contains(marker)).map(str::to_owned)
    })
}

/// The first admin's generated password: in a 0600 file in the web-state
/// volume (read with `docker cp`: the image has no shell), never in the log.
fn first_admin_password() -> String {
    let web_log_says = web_log_line("created the first user, admin", "the first-admin line in the web's log");
    assert!(web_log_says.contains("first-admin-password"), "{web_log_says}");
    let web = container_of("web");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("docker cp {web}:/var/lib/dockward-web/first-admin-password - | tar -xO"))
        .output()
        .unwrap();
    assert!(out.status.success(), "docker cp: {}", String::from_utf8_lossy(&out.stderr));
    let password = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(password.len() >= 20, "{password:?}");
    let logs = compose(&["logs", "--no-color", "web"]);
    assert!(!logs.contains(&password), "the first admin's password is in the log");
    password
}

/// The first login must change the generated password: returns the new one.
async fn change_first_password(first: &str) -> String {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = http
        .post(format!("{WEB}/auth/login"))
        .header("origin", WEB)
        .form(&[("username", "admin"), ("password", first)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/password", "the first login goes to the password change");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let page = http.get(format!("{WEB}/password")).header("cookie", &cookie).send().await.unwrap();
    let html = page.text().await.unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).and_then(|t| t.split('"').next()).unwrap().to_owned();
    let new = "the stack test's own admin password";
    let r = http
        .post(format!("{WEB}/auth/password"))
        .header("origin", WEB)
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("current", first), ("new", new), ("confirm", new)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/", "the password change went through");
    new.to_owned()
}

/// Non-root, no capabilities, no-new-privileges, read-only root filesystem:
/// read from the kernel (the process's status and mounts) and from the engine.
fn assert_hardened(service: &str, id: &str) -> String {
    let pid = inspect(id, "{{.State.Pid}}");
    let uids = proc_status_field(&pid, "Uid");
    assert!(uids.split_whitespace().all(|u| u == "65532"), "{service} runs as {uids}");
    assert_eq!(proc_status_field(&pid, "CapEff"), "0000000000000000", "{service} has capabilities");
    assert_eq!(proc_status_field(&pid, "CapPrm"), "0000000000000000", "{service} has permitted capabilities");
    assert_eq!(proc_status_field(&pid, "NoNewPrivs"), "1", "{service} may gain privileges");
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let root = mountinfo.lines().find(|l| l.split_whitespace().nth(4) == Some("/")).expect("a root mount");
    let options = root.split_whitespace().nth(5).unwrap();
    assert!(options.split(',').any(|o| o == "ro"), "{service}'s root filesystem is writable: {root}");
    assert_eq!(inspect(id, "{{.HostConfig.ReadonlyRootfs}}"), "true");
    // dockward never restarts or prunes itself, and stays within CPU and log limits.
    assert_eq!(inspect(id, r#"{{index .Config.Labels "dockward.protect"}}"#), "true", "{service} is not protected");
    assert_eq!(inspect(id, "{{.HostConfig.NanoCpus}}"), "1000000000", "{service} has no CPU limit");
    assert_eq!(
        inspect(id, "{{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config \"max-size\"}} {{index .HostConfig.LogConfig.Config \"max-file\"}}"),
        "json-file 10m 3",
        "{service} has unbounded logs"
    );
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

/// True when a plain `GET /healthz` to `ip:7700` gets any answer of the sidecar's within
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
    // Its health answer, or its refusal of plain HTTP on the HTTPS port.
    answer.starts_with("HTTP/1.1") && (answer.contains(SIDECAR_HEALTH) || answer.contains("HTTPS only"))
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
        // The key that seals the records lives on its own volume: with it, verify checks every MAC.
        "-v",
        &format!("{PROJECT}_audit-key:/var/lib/dockward-key:ro"),
        "dockward-sidecar:local",
        "audit",
        "verify",
        "--key-file",
        "/var/lib/dockward-key/audit.key",
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

/// The stack as `up -d` left it, and the browser that drives it.
struct Env {
    c: Client,
    /// The first admin's password, as changed at the first login.
    password: String,
    sidecar: String,
    web: String,
    sidecar_name: String,
    web_name: String,
    /// Restarted through the console.
    target: TestContainer,
    /// The audit record of the first restart through the console.
    record: Mutex<Option<serde_json::Value>>,
    _driver: Driver,
    // Dropped last: `down -v`.
    _teardown: Teardown,
}

/// First run: nothing but `up -d` (the init service makes the secret, the console its first admin).
async fn start() -> Env {
    require_docker();
    for image in ["dockward-sidecar:local", "dockward-web:local"] {
        assert!(docker_ok(&["image", "inspect", image]), "{image} is missing: build it with scripts/build-images.sh");
    }
    let driver = Driver::start();
    let _ = compose_output(&["down", "-v", "--remove-orphans"]);
    let teardown = Teardown;
    let target =
        TestContainer::run("stack-target", &["--label", "com.docker.compose.project=stacktarget"], "sleep 600");
    compose(&["up", "-d"]);
    wait_healthy("first run").await;
    let password = change_first_password(&first_admin_password()).await;
    let sidecar = container_of("sidecar");
    let web = container_of("web");
    let sidecar_name = inspect(&sidecar, "{{.Name}}").trim_start_matches('/').to_owned();
    let web_name = inspect(&web, "{{.Name}}").trim_start_matches('/').to_owned();
    let c = driver.session().await;
    Env {
        c,
        password,
        sidecar,
        web,
        sidecar_name,
        web_name,
        target,
        record: Mutex::new(None),
        _driver: driver,
        _teardown: teardown,
    }
}

async fn teardown(env: Env, all_passed: bool) {
    let _ = env.c.clone().close().await;
    if !all_passed {
        print_compose_logs();
    }
    drop(env);
}

/// The target's successful restarts in the audit log on the volume, oldest first.
fn restarts(target: &TestContainer) -> Vec<serde_json::Value> {
    audit_records()
        .into_iter()
        .filter(|r| r["verb"] == "restart" && r["target"] == target.id.as_str() && r["outcome"] == "ok")
        .collect()
}

async fn the_init_service_succeeded(_env: Arc<Env>) {
    assert_eq!(inspect(&container_of("init"), "{{.State.ExitCode}}"), "0", "the init service succeeded");
}

/// The compose health checks (each binary's `healthcheck` subcommand: the
/// images have no shell) read healthy for both services.
async fn both_services_read_healthy(env: Arc<Env>) {
    for (service, id) in [("sidecar", &env.sidecar), ("web", &env.web)] {
        let test = inspect(id, "{{json .Config.Healthcheck.Test}}");
        assert_eq!(test, format!(r#"["CMD","/dockward-{service}","healthcheck"]"#));
        wait_for(Duration::from_secs(90), &format!("the {service}'s health check to pass"), || {
            let status = inspect(id, "{{.State.Health.Status}}");
            assert_ne!(status, "unhealthy", "{service}: {}", inspect(id, "{{json .State.Health}}"));
            (status == "healthy").then_some(())
        });
    }
}

/// Hardening, read from the kernel.
async fn both_services_run_hardened(env: Arc<Env>) {
    let sidecar_pid = assert_hardened("sidecar", &env.sidecar);
    assert_hardened("web", &env.web);
    // Started as root, it joined the socket's group (whatever its gid on this host) and nothing else.
    let groups = proc_status_field(&sidecar_pid, "Groups");
    let mut groups: Vec<&str> = groups.split_whitespace().collect();
    groups.sort_unstable();
    let mut want = vec!["65532".to_owned(), socket_gid()];
    want.sort_unstable();
    want.dedup();
    assert_eq!(groups, want, "the sidecar's supplementary groups");
    assert_eq!(proc_status_field(&sidecar_pid, "Gid").split_whitespace().collect::<Vec<_>>(), ["65532"; 4]);
    assert_eq!(inspect(&env.sidecar, "{{.Config.User}}"), "0:0", "compose starts it as root, to drop");
    let caps: Vec<String> = serde_json::from_str(&inspect(&env.sidecar, "{{json .HostConfig.CapAdd}}")).unwrap();
    let mut caps: Vec<&str> = caps.iter().map(|c| c.trim_start_matches("CAP_")).collect();
    caps.sort_unstable();
    assert_eq!(caps, ["SETGID", "SETUID"], "only what dropping root needs (and the kernel clears them at the drop)");
}

/// Only the sidecar has the socket; the web has no socket file at all, no
/// DOCKER_HOST, and no published sidecar.
async fn only_the_sidecar_has_the_socket(env: Arc<Env>) {
    let (sidecar, web) = (&env.sidecar, &env.web);
    assert!(inspect(sidecar, "{{range .Mounts}}{{.Destination}} {{end}}").contains("/var/run/docker.sock"));
    let cgroup = inspect(
        sidecar,
        "{{range .Mounts}}{{if eq .Destination \"/host/sys/fs/cgroup\"}}{{.Source}} {{.RW}}{{end}}{{end}}",
    );
    assert_eq!(cgroup, "/sys/fs/cgroup false", "the host's cgroup tree, read-only");
    let web_mounts = inspect(web, "{{range .Mounts}}{{.Source}} {{.Destination}} {{end}}");
    assert!(!web_mounts.contains("docker.sock"), "the web has the socket: {web_mounts}");
    // Nor the sidecar's keys (audit and TLS): it reads the TLS fingerprint, never the key.
    assert!(!web_mounts.contains("audit-key"), "the web can read the sidecar's keys: {web_mounts}");
    let web_pid = inspect(web, "{{.State.Pid}}");
    let web_root = PathBuf::from(format!("/proc/{web_pid}/root"));
    assert!(web_root.join("dockward-web").exists(), "the web's root filesystem is readable from here");
    assert_eq!(sockets_in(&web_root), Vec::<PathBuf>::new(), "socket files inside the web container");
    assert!(!inspect(web, "{{json .Config.Env}}").contains("DOCKER_HOST"));
    assert_eq!(inspect(sidecar, "{{json .NetworkSettings.Ports}}"), "{}", "the sidecar publishes nothing");
}

/// The sidecar is on the internal backplane only, and the host has no
/// address there to reach it from; from the backplane it answers.
async fn the_sidecar_is_reachable_from_the_backplane_only(env: Arc<Env>) {
    let sidecar = &env.sidecar;
    let backplane = format!("{PROJECT}_backplane");
    assert_eq!(inspect(sidecar, "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}").trim(), backplane);
    assert_eq!(docker(&["network", "inspect", "--format", "{{.Internal}}", &backplane]), "true");
    let subnet = docker(&["network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", &backplane]);
    let sidecar_ip: Ipv4Addr =
        inspect(sidecar, &format!("{{{{(index .NetworkSettings.Networks \"{backplane}\").IPAddress}}}}"))
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
    // `sleep 2` holds nc's input open so the answer can arrive before nc quits (part of the probe, not a wait).
    let probe = format!(
        "(printf 'GET /healthz HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n'; sleep 2) | busybox nc -w 3 {sidecar_ip} 7700"
    );
    // Its port speaks HTTPS only, the backplane included: plain HTTP gets the refusal that says so.
    let from_backplane = docker(&["run", "--rm", "--network", &backplane, IMAGE, "sh", "-c", &probe]);
    assert!(
        from_backplane.starts_with("HTTP/1.1 400") && from_backplane.contains("HTTPS only"),
        "the sidecar is not reachable on the backplane, or answers plain HTTP: {from_backplane}"
    );
}

/// The web's agent port (enrolment), published on 127.0.0.1:7443: HTTPS
/// only, with the identity the console logs at start; a client pinning
/// another certificate gets nowhere; a malformed enrolment gets a JSON 400.
async fn the_agent_port_speaks_https_with_the_consoles_identity(_env: Arc<Env>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect("127.0.0.1:7443").expect("the agent port is published");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = s.take(4096).read_to_end(&mut buf);
    let answer = String::from_utf8_lossy(&buf);
    assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("HTTPS only"), "{answer}");
    let logs = compose(&["logs", "--no-color", "web"]);
    let fp = logs
        .lines()
        .filter(|l| l.contains("agent port listening"))
        .find_map(|l| Some(l[l.find("fingerprint=")? + 12..].split_whitespace().next()?.to_owned()))
        .unwrap_or_else(|| panic!("no agent port line in the web's log: {logs}"));
    let bad = serde_json::json!({ "token": "dwj_nope", "fingerprint": "sha256:00" });
    let r =
        testkit::sidecar::pinned_client(&[&fp]).post("https://127.0.0.1:7443/enrol").json(&bad).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap_or("").contains("64 hex digits"), "{body}");
    let other = testkit::sidecar::pinned_client(&[&format!("sha256:{}", "00".repeat(32))]);
    assert!(other.post("https://127.0.0.1:7443/enrol").json(&bad).send().await.is_err(), "another pin got through");
}

/// The browser: log in with the first admin's password; the stack's own two
/// containers are on the overview.
async fn the_first_admin_logs_in_and_sees_the_stack(env: Arc<Env>) {
    let c = &env.c;
    login_afresh(c, WEB, "admin", &env.password).await;
    let card = format!("article[data-app='{PROJECT}']");
    open_card(c, &card, 20).await;
    wait_text(c, &card, &env.sidecar_name, 20).await;
    let stack_card = text(c, &card).await;
    assert!(stack_card.contains(&env.web_name), "the web is not on its project's card: {stack_card}");
    // Issue 16: the sidecar reads stats from the host's cgroup tree (mounted read-only, as uid
    // 65532), and the hosts page says so.
    let mut seen = String::new();
    for _ in 0..30 {
        c.goto(&format!("{WEB}/hosts")).await.unwrap();
        seen = text(c, "tr[data-host='local'] td.stats-source").await;
        if seen.contains("kernel: cgroup") {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(seen.contains("kernel: cgroup"), "the hosts page says where stats come from: {seen:?}");
}

/// Issue #12: a fresh install is green and its audit chain intact, on day one.
/// The init one-shot that exited 0 has "completed" (grey), it is not a
/// problem; once the healthchecks have passed, the card and the headline are
/// green; the empty (or nearly empty) chain verifies on the volume and on the
/// console's audit page.
async fn a_fresh_install_is_green_and_its_audit_chain_intact(env: Arc<Env>) {
    let c = &env.c;
    login_afresh(c, WEB, "admin", &env.password).await;
    let card = format!("article[data-app='{PROJECT}']");
    open_card(c, &card, 20).await;
    let init_row =
        format!("{card} li[data-container='{PROJECT}_init_1'], {card} li[data-container='{PROJECT}-init-1']");
    wait_text(c, &init_row, "completed", 20).await;
    eventually(Duration::from_secs(60), "the stack's card to turn green", || async {
        let class = c.find(fantoccini::Locator::Css(&card)).await.ok()?.attr("class").await.ok()??;
        class.contains("badge-green").then_some(())
    })
    .await;
    let headline = eventually(Duration::from_secs(30), "a green headline on a fresh install", || async {
        let h = c.find(fantoccini::Locator::Css("#headline")).await.ok()?;
        let class = h.attr("class").await.ok()??;
        let text = h.text().await.ok()?;
        class.contains("badge-green").then_some(text)
    })
    .await;
    assert!(headline.contains("healthy") && headline.contains("completed"), "{headline}");
    assert!(verify_audit_volume().starts_with("ok:"), "{}", verify_audit_volume());
    // The README's command, as is: `exec` runs as the container's user (root), which drops to
    // 65532 first and so can read the audit volume.
    let readme =
        compose(&["exec", "-T", "sidecar", "/dockward-sidecar", "audit", "verify", "/var/lib/dockward/audit.jsonl"]);
    assert!(readme.starts_with("ok:"), "{readme}");
    c.goto(&format!("{WEB}/audit")).await.unwrap();
    let verdict = wait_text(c, "#verify", "chain intact", 20).await;
    assert!(!verdict.contains("broken"), "{verdict}");
}

/// A restart through the console lands in the audit log on the volume.
async fn a_console_restart_lands_in_the_audit_log(env: Arc<Env>) {
    let (c, target) = (&env.c, &env.target);
    login_afresh(c, WEB, "admin", &env.password).await;
    open_card(c, "article[data-app='stacktarget']", 20).await;
    wait_text(c, "article[data-app='stacktarget']", &target.name, 20).await;
    let before = target.started_at();
    restart_from_overview(c, &target.name).await;
    assert_ne!(target.started_at(), before, "the restart did not happen");
    let record =
        restarts(target).first().cloned().unwrap_or_else(|| panic!("no restart record in {}", audit_file().display()));
    assert_eq!(record["actor"], "admin", "{record}");
    assert!(verify_audit_volume().starts_with("ok:"));
    *env.record.lock().unwrap() = Some(record);
}

/// Rotating the secret with the init image: nothing restarts, the console
/// switches keys, nothing is refused.
async fn a_secret_rotation_restarts_nothing_and_refuses_nothing(env: Arc<Env>) {
    let (c, target) = (&env.c, &env.target);
    let record = env.record.lock().unwrap().clone().expect("the first restart's record");
    compose(&["run", "--rm", "init", "secret", "rotate", "/run/secrets/local"]);
    // The console looks at the secret file at most once a second, when it calls the sidecar.
    web_log_line("a host secret changed", "the console to take up the rotated secret");
    login_afresh(c, WEB, "admin", &env.password).await;
    open_card(c, "article[data-app='stacktarget']", 20).await;
    let before = target.started_at();
    restart_from_overview(c, &target.name).await;
    assert_ne!(target.started_at(), before, "the restart after the rotation did not happen");
    let after = restarts(target);
    assert_eq!(after.len(), 2, "{after:?}");
    assert_ne!(after[1]["client"], record["client"], "the console still uses the old secret");
    compose(&["run", "--rm", "init", "secret", "retire", "/run/secrets/local"]);
    let refused: Vec<_> = audit_records().into_iter().filter(|r| r["verb"] == "auth").collect();
    assert_eq!(refused, Vec::<serde_json::Value>::new(), "the rotation made the sidecar refuse the console");
}

/// `down` leaves nothing running; the volumes stay.
async fn down_leaves_nothing_running_and_keeps_the_volumes(_env: Arc<Env>) {
    compose(&["down"]);
    assert_eq!(leftovers("container"), Vec::<String>::new(), "containers left after down");
    assert_eq!(leftovers("network"), Vec::<String>::new(), "networks left after down");
    assert!(audit_file().exists());
}

/// `up` again: the same log with the record in it, the chain intact, the same admin.
async fn up_again_keeps_the_audit_log_and_the_admin(env: Arc<Env>) {
    let record = env.record.lock().unwrap().clone().expect("the first restart's record");
    compose(&["up", "-d"]);
    wait_healthy("second run").await;
    assert_eq!(restarts(&env.target).first(), Some(&record), "the restart record survived down/up unchanged");
    assert!(verify_audit_volume().starts_with("ok:"));
    assert_eq!(login_redirect(&env.password).await, "/", "the first admin still logs in after down/up");
    assert_eq!(login_redirect("not the password").await, "/login?error=invalid");
    let logs = compose(&["logs", "--no-color", "web"]);
    assert!(!logs.contains("created the first user"), "the second run made another admin:\n{logs}");
}

/// `down -v` leaves nothing of the project behind.
async fn down_v_removes_everything(_env: Arc<Env>) {
    compose(&["down", "-v"]);
    for kind in ["container", "network", "volume"] {
        assert_eq!(leftovers(kind), Vec::<String>::new(), "{kind}s left after down -v");
    }
}

fn main() -> ExitCode {
    const RESTART: &str = "a_console_restart_lands_in_the_audit_log";
    const DOWN: &str = "down_leaves_nothing_running_and_keeps_the_volumes";
    let scenarios: Vec<Scenario<Env>> = vec![
        scenario("the_init_service_succeeded", the_init_service_succeeded),
        scenario("both_services_read_healthy", both_services_read_healthy),
        scenario("both_services_run_hardened", both_services_run_hardened),
        scenario("only_the_sidecar_has_the_socket", only_the_sidecar_has_the_socket),
        scenario("the_sidecar_is_reachable_from_the_backplane_only", the_sidecar_is_reachable_from_the_backplane_only),
        scenario(
            "the_agent_port_speaks_https_with_the_consoles_identity",
            the_agent_port_speaks_https_with_the_consoles_identity,
        ),
        scenario("the_first_admin_logs_in_and_sees_the_stack", the_first_admin_logs_in_and_sees_the_stack),
        scenario(
            "a_fresh_install_is_green_and_its_audit_chain_intact",
            a_fresh_install_is_green_and_its_audit_chain_intact,
        ),
        scenario(RESTART, a_console_restart_lands_in_the_audit_log),
        // Compares the client with the first restart's record.
        scenario(
            "a_secret_rotation_restarts_nothing_and_refuses_nothing",
            a_secret_rotation_restarts_nothing_and_refuses_nothing,
        )
        .after(&[RESTART]),
        // From here on the first run's containers are gone: the checks of them come first.
        scenario(DOWN, down_leaves_nothing_running_and_keeps_the_volumes),
        // Brings the stack up again and looks for the first restart's record.
        scenario("up_again_keeps_the_audit_log_and_the_admin", up_again_keeps_the_audit_log_and_the_admin)
            .after(&[RESTART, DOWN]),
        scenario("down_v_removes_everything", down_v_removes_everything),
    ];
    testkit::scenarios::run(start, scenarios, teardown)
}
