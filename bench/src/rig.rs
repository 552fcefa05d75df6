//! The bench rig: labelled test containers on the real engine, the release
//! binaries as child processes, and readings from /proc.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testkit::{docker, docker_ok, free_port, require_docker, IMAGE};

pub const LABEL: &str = "dockward.bench";
pub const SECRET: &str = "bench-secret-0123456789abcdef0123456789abcdef";
pub const PASSWORD: &str = "bench password 0123";

/// Every container the benchmark starts carries `dockward.bench=1`.
pub fn containers() -> Vec<String> {
    let out = docker(&["ps", "-aq", "--no-trunc", "--filter", &format!("label={LABEL}=1")]);
    out.lines().map(str::to_owned).collect()
}

pub fn remove_all() {
    let ids = containers();
    for chunk in ids.chunks(50) {
        let mut args = vec!["rm", "-f"];
        args.extend(chunk.iter().map(String::as_str));
        let _ = Command::new("docker").args(&args).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

/// Grows or shrinks the bench fleet to exactly `n` running containers. Each
/// prints 200 log lines, then sleeps.
pub fn ensure_fleet(n: usize) -> Vec<String> {
    ensure_fleet_with(n, &[])
}

/// [`ensure_fleet`], the containers it starts run with `extra` flags
/// (`--network none` for a thousand: a bridge holds at most 1 024 ports).
pub fn ensure_fleet_with(n: usize, extra: &[&str]) -> Vec<String> {
    require_docker();
    let mut ids = containers();
    while ids.len() > n {
        let id = ids.pop().unwrap_or_default();
        docker(&["rm", "-f", &id]);
    }
    let missing = n - ids.len();
    let start = Instant::now();
    // Four `docker run`s at a time: the engine serialises most of the work anyway.
    let mut pending: Vec<Child> = Vec::new();
    for _ in 0..missing {
        if pending.len() == 4 {
            let _ = pending.remove(0).wait();
        }
        let child = Command::new("docker")
            .args(["run", "-d", "--label", &format!("{LABEL}=1"), "--log-driver", "json-file"])
            .args(extra)
            .arg(IMAGE)
            .args(["sh", "-c", "busybox seq 1 200; exec sleep 36000"])
            .stdout(Stdio::null())
            .spawn()
            .expect("docker run");
        pending.push(child);
    }
    for mut c in pending {
        let _ = c.wait();
    }
    let ids = containers();
    assert_eq!(ids.len(), n, "could not start {n} bench containers");
    if missing > 0 {
        eprintln!("  fleet: {n} containers ({missing} started in {:.1}s)", start.elapsed().as_secs_f64());
    }
    ids
}

/// A process that is killed when dropped.
pub struct Proc {
    pub child: Child,
    pub port: u16,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binaries under test: `DOCKWARD_BENCH_BIN_DIR` (bench/run.sh points it at
/// the static musl builds the images ship), else the ones beside this binary.
pub fn bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("DOCKWARD_BENCH_BIN_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let exe = std::env::current_exe().expect("current exe");
        exe.parent().expect("exe dir").to_owned()
    });
    let p = dir.join(name);
    assert!(p.exists(), "{} is missing: build it (bash bench/run.sh does)", p.display());
    p
}

fn wait_http(url: &str) {
    let start = Instant::now();
    loop {
        let ok =
            std::net::TcpStream::connect(url.trim_start_matches("http://").split('/').next().unwrap_or("")).is_ok();
        if ok {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{url} did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A release sidecar that sees only the bench containers, with rate limits
/// high enough not to shape the load (they still run on every request).
pub fn sidecar(dir: &Path, name: &str) -> Proc {
    sidecar_with(dir, name, &[("DOCKWARD_PLAIN_HTTP", "true".into())])
}

/// [`sidecar`] over HTTPS (its identity made in `dir`); its certificate's fingerprint.
pub fn sidecar_https(dir: &Path, name: &str) -> (Proc, String) {
    let (cert, key) = (dir.join(format!("{name}-tls.crt")), dir.join(format!("{name}-tls.key")));
    let p = sidecar_with(
        dir,
        name,
        &[("DOCKWARD_TLS_CERT_FILE", cert.display().to_string()), ("DOCKWARD_TLS_KEY_FILE", key.display().to_string())],
    );
    let fp = tls::identity::cert_fingerprint(&cert).expect("the sidecar's certificate").to_string();
    (p, fp)
}

/// A release sidecar that dials the console's agent port at `agent`
/// (pinned to `agent_pin`) as outbound host `host`; it also listens (plain,
/// on loopback) for its own readiness check.
pub fn sidecar_outbound(dir: &Path, name: &str, agent: &str, agent_pin: &str, host: &str) -> Proc {
    sidecar_with(
        dir,
        name,
        &[
            ("DOCKWARD_PLAIN_HTTP", "true".into()),
            ("DOCKWARD_CONNECT", agent.to_owned()),
            ("DOCKWARD_CONNECT_PIN", agent_pin.to_owned()),
            ("DOCKWARD_CONNECT_AS", host.to_owned()),
        ],
    )
}

pub fn sidecar_with(dir: &Path, name: &str, env: &[(&str, String)]) -> Proc {
    let port = free_port();
    let log = dir.join(format!("{name}.log"));
    let secret = dir.join(format!("{name}.secret"));
    std::fs::write(&secret, SECRET).expect("write the secret file");
    let child = Command::new(bin("dockward-sidecar"))
        .env("DOCKWARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("DOCKWARD_SECRET_FILE", &secret)
        .env("DOCKWARD_AUDIT_LOG", dir.join(format!("{name}-audit.jsonl")))
        .env("DOCKWARD_AUDIT_KEY_FILE", dir.join(format!("{name}-audit.key")))
        .env("DOCKWARD_SCOPE_LABEL", format!("{LABEL}=1"))
        .env("DOCKWARD_RATE_READ", "1000000/s")
        .env("DOCKWARD_RATE_RESTART", "1000000/s")
        .env("DOCKWARD_RATE_RESTART_CLIENT", "1000000/s")
        .env("DOCKWARD_MAX_STREAMS", "4096")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start dockward-sidecar");
    let p = Proc { child, port };
    wait_http(&p.url("/healthz"));
    p
}

/// A release console reading `hosts` (name → sidecar port), with one admin.
pub fn web(dir: &Path, hosts: &[(&str, u16)], site_root: &Path) -> Proc {
    let hosts: Vec<(String, String)> =
        hosts.iter().map(|(n, p)| ((*n).to_owned(), format!("http://127.0.0.1:{p}"))).collect();
    web_urls(dir, "web", &hosts, site_root)
}

/// A release console reading `hosts` (name → sidecar base URL), with one
/// admin; `name` names its log file.
pub fn web_urls(dir: &Path, name: &str, hosts: &[(String, String)], site_root: &Path) -> Proc {
    // No enrolment in the bench: no agent port, nothing written outside its directory.
    web_with(dir, name, hosts, site_root, &[], &[("DOCKWARD_AGENT_LISTEN", "off".into())])
}

/// A release console as [`web_urls`] with its agent port on loopback (for
/// outbound hosts, `name=outbound` in `hosts`; `pins` are the pin files of
/// `https://` hosts, as (host, fingerprint)); its agent URL and fingerprint.
pub fn web_with_agent(
    dir: &Path,
    name: &str,
    hosts: &[(String, String)],
    site_root: &Path,
    pins: &[(&str, &str)],
) -> (Proc, String, String) {
    let agent = format!("127.0.0.1:{}", free_port());
    let cert = dir.join(format!("{name}-agent.crt"));
    let env = [
        ("DOCKWARD_AGENT_LISTEN", agent.clone()),
        ("DOCKWARD_AGENT_TLS_CERT_FILE", cert.display().to_string()),
        ("DOCKWARD_AGENT_TLS_KEY_FILE", dir.join(format!("{name}-agent.key")).display().to_string()),
    ];
    let web = web_with(dir, name, hosts, site_root, pins, &env);
    // The identity is made before the console serves.
    let fp = tls::identity::cert_fingerprint(&cert).expect("the agent certificate").to_string();
    (web, format!("https://{agent}"), fp)
}

pub(crate) fn web_with(
    dir: &Path,
    name: &str,
    hosts: &[(String, String)],
    site_root: &Path,
    pins: &[(&str, &str)],
    env: &[(&str, String)],
) -> Proc {
    let secrets = dir.join("web-secrets");
    std::fs::create_dir_all(&secrets).expect("secrets dir");
    for (name, _) in hosts {
        std::fs::write(secrets.join(name), SECRET).expect("secret file");
    }
    for (host, fp) in pins {
        std::fs::write(secrets.join(format!("{host}.pin")), format!("{fp}\n")).expect("pin file");
    }
    let users = dir.join("users.json");
    if !users.exists() {
        use std::io::Write;
        let mut add = Command::new(bin("dockward-web"))
            .args(["user", "add", "bench", "--role", "admin", "--users-file"])
            .arg(&users)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("dockward-web user add");
        if let Some(mut stdin) = add.stdin.take() {
            let _ = writeln!(stdin, "{PASSWORD}");
        }
        assert!(add.wait().is_ok_and(|s| s.success()), "user add failed");
    }
    let port = free_port();
    let spec = hosts.iter().map(|(n, url)| format!("{n}={url}")).collect::<Vec<_>>().join(",");
    let log = dir.join(format!("{name}.log"));
    let child = Command::new(bin("dockward-web"))
        .env("DOCKWARD_WEB_LISTEN", format!("127.0.0.1:{port}"))
        .env("DOCKWARD_HOSTS", spec)
        .env("DOCKWARD_HOST_SECRETS_DIR", &secrets)
        .env("DOCKWARD_USERS_FILE", &users)
        .env("DOCKWARD_SITE_ROOT", site_root)
        .env("DOCKWARD_ENROL_DIR", dir.join(format!("{name}-hosts")))
        // One bench user makes every request: no per-user rate limit.
        .env("DOCKWARD_USER_REQUESTS_PER_SECOND", "1000000")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start dockward-web");
    let p = Proc { child, port };
    wait_http(&p.url("/healthz"));
    p
}

/// Logs in as the bench admin; returns the session cookie.
pub async fn login(web: &Proc) -> String {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let r = http
        .post(web.url("/auth/login"))
        .header("origin", web.url(""))
        .form(&[("username", "bench"), ("password", PASSWORD)])
        .send()
        .await
        .expect("login");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("dockward_session="))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    cookie
}

/// Resident memory of a process, in bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// CPU time (user + system) a process has used so far, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0) + f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0);
    ticks as f64 / clock_ticks()
}

/// Clock ticks per second, asked of `getconf` once.
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Pids of the engine's own processes (dockerd and containerd), whose CPU the daemon-cost scenario counts.
pub fn engine_pids() -> Vec<u32> {
    let mut pids = Vec::new();
    for name in ["dockerd", "containerd"] {
        if let Ok(o) = Command::new("pgrep").args(["-x", name]).output() {
            pids.extend(String::from_utf8_lossy(&o.stdout).lines().filter_map(|l| l.trim().parse::<u32>().ok()));
        }
    }
    assert!(!pids.is_empty(), "no dockerd process found");
    pids
}

pub fn image_size(image: &str) -> Option<u64> {
    if !docker_ok(&["image", "inspect", image]) {
        return None;
    }
    docker(&["image", "inspect", "--format", "{{.Size}}", image]).parse().ok()
}

/// p-th percentile (0–100) of durations, in milliseconds.
pub fn pct_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}
