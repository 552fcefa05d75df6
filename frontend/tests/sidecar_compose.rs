//! `compose.sidecar.yaml` for real: the sidecar-only deployment of a second
//! host, brought up by docker-compose (Debian's 1.29; set
//! `DOCKWARD_COMPOSE="docker compose"` for Compose v2) from the repository's
//! file, with the image `scripts/build-images.sh` builds
//! (`dockward-sidecar:local`) and the settings its header asks for: the
//! secret files, `DOCKWARD_SIDECAR_BIND=127.0.0.1` and a free port.
//!
//! The compose health check (the binary's `healthcheck` subcommand, the image
//! has no shell) reads healthy; the published port speaks HTTPS only, with
//! the identity the sidecar made on first start (what `tls fingerprint`
//! prints is what it serves), and answers `/healthz` to anyone and the verbs
//! only with the secret. Its own project name and a
//! temporary project directory (for `./secrets/`), removed at the end.

use std::path::Path;
use std::process::{Command, ExitCode, Output};
use std::sync::Arc;
use std::time::Duration;

use testkit::scenarios::{scenario, Scenario};
use testkit::*;

const PROJECT: &str = "dwsidecarcompose";

struct Env {
    /// The project directory: `secrets/dockward_secret` and `.previous`.
    dir: tempfile::TempDir,
    port: u16,
    secret: String,
    container: String,
    /// What `tls fingerprint` printed in the container.
    fingerprint: String,
    /// A client pinning it.
    http: reqwest::Client,
}

impl Env {
    fn compose_output(&self, args: &[&str]) -> Output {
        compose_in(self.dir.path(), self.port, args)
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }
}

/// The compose CLI on the repository's compose.sidecar.yaml, with `dir` as
/// the project directory (where `./secrets/` is).
fn compose_in(dir: &Path, port: u16, args: &[&str]) -> Output {
    let cli = std::env::var("DOCKWARD_COMPOSE").unwrap_or_else(|_| "docker-compose".into());
    let mut words = cli.split_whitespace();
    let program = words.next().expect("DOCKWARD_COMPOSE is empty");
    let file = repo_root().join("compose.sidecar.yaml");
    Command::new(program)
        .args(words)
        .args(["-p", PROJECT, "--project-directory"])
        .arg(dir)
        .arg("-f")
        .arg(&file)
        .args(args)
        .env("DOCKWARD_SIDECAR_BIND", "127.0.0.1")
        .env("DOCKWARD_SIDECAR_PORT", port.to_string())
        // No DOCKER_GID: the sidecar joins the socket's group itself, whatever its gid.
        .env_remove("DOCKER_GID")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cli} ({e}): install docker-compose (apt-get install docker-compose)"))
}

fn check(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "compose {what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The secret files as the file's header says to make them: the same secret
/// twice (no rotation under way), owned by the sidecar's user, 0600.
fn write_secrets(dir: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let secret = format!("sidecar-compose-{}-0123456789abcdef0123456789", unique("s"));
    for name in ["dockward_secret", "dockward_secret.previous"] {
        let path = secrets.join(name);
        std::fs::write(&path, format!("{secret}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&path, Some(65532), Some(65532)).expect("chown the secret (the tests run as root)");
    }
    secret
}

async fn start() -> Env {
    require_docker();
    assert!(
        docker_ok(&["image", "inspect", "dockward-sidecar:local"]),
        "dockward-sidecar:local is missing: build it with scripts/build-images.sh"
    );
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secrets(dir.path());
    let port = free_port();
    let _ = compose_in(dir.path(), port, &["down", "-v", "--remove-orphans"]);
    let out = compose_in(dir.path(), port, &["up", "-d", "--no-build"]);
    let mut env =
        Env { dir, port, secret, container: String::new(), fingerprint: String::new(), http: reqwest::Client::new() };
    check(out, "up -d");
    env.container = check(env.compose_output(&["ps", "-q", "sidecar"]), "ps").trim().to_owned();
    assert!(!env.container.is_empty(), "no sidecar container");
    // The recipe's step: the fingerprint the console will pin, printed in the container.
    let printed =
        check(env.compose_output(&["exec", "-T", "sidecar", "/dockward-sidecar", "tls", "fingerprint"]), "exec");
    env.fingerprint = printed.trim().to_owned();
    assert!(env.fingerprint.starts_with("sha256:"), "{printed}");
    env.http = testkit::sidecar::pinned_client(&[&env.fingerprint]);
    env
}

async fn teardown(env: Env, all_passed: bool) {
    if !all_passed {
        let logs = env.compose_output(&["logs", "--no-color"]);
        eprintln!("--- compose logs ---\n{}", String::from_utf8_lossy(&logs.stdout));
    }
    let _ = env.compose_output(&["down", "-v", "--remove-orphans"]);
    let label = format!("label=com.docker.compose.project={PROJECT}");
    assert_eq!(docker(&["ps", "-aq", "--filter", &label]), "", "containers left after down -v");
}

/// The compose health check runs `dockward-sidecar healthcheck` in the
/// container; the engine reads it healthy (checks every 10 s).
async fn the_sidecar_reads_healthy(env: Arc<Env>) {
    let id = env.container.clone();
    let status = eventually(Duration::from_secs(90), "the sidecar's health check to pass", || {
        let id = id.clone();
        async move {
            let s = docker(&["inspect", "-f", "{{.State.Health.Status}}", &id]);
            assert_ne!(s, "unhealthy", "{}", docker(&["inspect", "-f", "{{json .State.Health}}", &id]));
            (s == "healthy").then_some(s)
        }
    })
    .await;
    assert_eq!(status, "healthy");
    let test = docker(&["inspect", "-f", "{{json .Config.Healthcheck.Test}}", &id]);
    assert_eq!(test, r#"["CMD","/dockward-sidecar","healthcheck"]"#);
}

/// Published on the bind address only, at the port asked for.
async fn it_is_published_on_the_bind_address_only(env: Arc<Env>) {
    let ports = docker(&["inspect", "-f", "{{json .NetworkSettings.Ports}}", &env.container]);
    assert_eq!(ports, format!(r#"{{"7700/tcp":[{{"HostIp":"127.0.0.1","HostPort":"{}"}}]}}"#, env.port));
    // Its one network is its own, with no NAT out and no traffic between its containers.
    let networks =
        docker(&["inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", &env.container]);
    let networks: Vec<&str> = networks.split_whitespace().collect();
    assert_eq!(networks.len(), 1, "{networks:?}");
    let options = docker(&["network", "inspect", "-f", "{{json .Options}}", networks[0]]);
    let options: serde_json::Value = serde_json::from_str(&options).unwrap();
    assert_eq!(options["com.docker.network.bridge.enable_ip_masquerade"], "false", "{options}");
    assert_eq!(options["com.docker.network.bridge.enable_icc"], "false", "{options}");
    // The label that keeps the console from restarting or pruning it.
    assert_eq!(docker(&["inspect", "-f", r#"{{index .Config.Labels "dockward.protect"}}"#, &env.container]), "true");
}

/// `/healthz` answers anyone; a verb answers only with the secret from the
/// file; all of it over HTTPS with the identity printed, and plain HTTP is refused.
async fn healthz_answers_anyone_and_verbs_need_the_secret(env: Arc<Env>) {
    let plain = reqwest::Client::new().get(format!("http://127.0.0.1:{}/healthz", env.port)).send().await.unwrap();
    assert_eq!(plain.status(), 400, "plain HTTP on the published port");
    let other = testkit::sidecar::pinned_client(&[&format!("sha256:{}", "00".repeat(32))]);
    assert!(other.get(env.url("/healthz")).send().await.is_err(), "a client pinning another certificate");
    let http = env.http.clone();
    let r = http.get(env.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h: serde_json::Value = r.json().await.unwrap();
    assert_eq!(h["status"], "ok", "{h}");
    // Issue 16: this host's cgroup tree is mounted read-only, and stats come from it.
    assert_eq!(h["stats"]["source"], "kernel", "{h}");
    assert!(h["stats"]["reason"].as_str().unwrap().starts_with("kernel: cgroup"), "{h}");
    let r = http.get(env.url("/v1/containers")).send().await.unwrap();
    assert_eq!(r.status(), 401, "a verb without the secret");
    let r = http
        .get(env.url("/v1/containers"))
        .bearer_auth("not-the-secret-0123456789abcdef0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a verb with another secret");
    let r = http.get(env.url("/v1/containers")).bearer_auth(&env.secret).send().await.unwrap();
    assert_eq!(r.status(), 200, "a verb with the secret from secrets/dockward_secret");
    let list: serde_json::Value = r.json().await.unwrap();
    assert!(list.as_array().is_some_and(|l| l.iter().any(|c| c["id"] == env.container.as_str())), "{list}");
}

fn main() -> ExitCode {
    let scenarios: Vec<Scenario<Env>> = vec![
        scenario("the_sidecar_reads_healthy", the_sidecar_reads_healthy),
        scenario("it_is_published_on_the_bind_address_only", it_is_published_on_the_bind_address_only),
        scenario("healthz_answers_anyone_and_verbs_need_the_secret", healthz_answers_anyone_and_verbs_need_the_secret),
    ];
    testkit::scenarios::run(start, scenarios, teardown)
}
