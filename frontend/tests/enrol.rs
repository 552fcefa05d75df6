//! Enrolment in one step and revocation, end to end with real processes, the
//! real engine and TLS on both links: an admin asks the console for a join
//! token; a sidecar started with the one command joins (pinning the
//! console's agent port), appears in the fleet and serves a restart, audited
//! on both sides; the token works once (reuse, forgery, malformed tokens and
//! a wrong console pin are refused, and the refusals audited); a revoked
//! host's secret stops working on the next request.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use testkit::console::client::{call, join_token, login};
use testkit::console::{Console, Options};
use testkit::sidecar::{pinned_client, sidecar_bin};
use testkit::{eventually, free_port, metric_value, wait_port, Proc, TestContainer};

const TOKEN: &str = "the-metrics-token-0123456789abcdef0123456789";

fn web_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_dockward-web"))
}

/// `dockward-sidecar join …` in `dir`, listening on `port`; its output.
fn join_command(dir: &Path, port: u16, console: &str, pin: &str, token: &str) -> Command {
    let mut cmd = Command::new(sidecar_bin());
    cmd.arg("join")
        .env("DOCKWARD_CONSOLE", console)
        .env("DOCKWARD_CONSOLE_PIN", pin)
        .env("DOCKWARD_JOIN_TOKEN", token)
        .env("DOCKWARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("DOCKWARD_SECRET_FILE", dir.join("secret"))
        .env("DOCKWARD_AUDIT_LOG", dir.join("audit.jsonl"))
        .env("DOCKWARD_AUDIT_KEY_FILE", dir.join("audit.key"))
        .env("DOCKWARD_TLS_CERT_FILE", dir.join("tls.crt"))
        .env("DOCKWARD_TLS_KEY_FILE", dir.join("tls.key"))
        .env("DOCKWARD_LOG_FORMAT", "json")
        .stdin(Stdio::null());
    cmd
}

fn audit_verbs(path: &Path, field: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v[field].as_str().map(str::to_owned))
        .collect()
}

async fn host_up(console: &Console, host: &str) -> bool {
    let Ok(r) = reqwest::Client::new().get(format!("{}/metrics", console.base)).bearer_auth(TOKEN).send().await else {
        return false;
    };
    let text = r.text().await.unwrap_or_default();
    metric_value(&text, &format!("dockward_web_host_status{{host=\"{host}\",status=\"up\"}}")) == Some(1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_joins_in_one_step_works_and_is_revoked() {
    let console = Console::start_with(
        web_bin(),
        &[],
        Options { env: &[("DOCKWARD_WEB_METRICS_TOKEN", TOKEN)], ..Options::default() },
    );
    let agent = format!("https://{}", console.agent_addr());
    let agent_pin = console.agent_fingerprint();
    let admin = login(&console.base, "admin1").await;
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");

    // Bad requests for a token say why; a viewer may not ask.
    let (status, body) = call(
        &console.base,
        Some(&admin.cookie),
        "add_host",
        &[("name", "no spaces"), ("url", &url), ("csrf", &admin.csrf)],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = call(
        &console.base,
        Some(&admin.cookie),
        "add_host",
        &[("name", "db1"), ("url", "http://x:1"), ("csrf", &admin.csrf)],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let viewer = login(&console.base, "viewer1").await;
    let (status, _) = call(
        &console.base,
        Some(&viewer.cookie),
        "add_host",
        &[("name", "db1"), ("url", &url), ("csrf", &viewer.csrf)],
    )
    .await;
    assert_eq!(status, 403);

    // The token and the one command.
    let (status, join) =
        call(&console.base, Some(&admin.cookie), "add_host", &[("name", "db1"), ("url", &url), ("csrf", &admin.csrf)])
            .await;
    assert_eq!(status, 200, "{join}");
    let command = join["command"].as_str().unwrap();
    assert!(command.contains(&agent_pin) && command.contains("join --console"), "{command}");
    let token = join_token(command);

    // A sidecar told another pin for the console: refuses to send the token.
    let wrong = tempfile::tempdir().unwrap();
    let other_pin = format!("sha256:{}", "00".repeat(32));
    let out = join_command(wrong.path(), free_port(), &agent, &other_pin, &token).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing was sent to it"), "{err}");
    assert!(!wrong.path().join("secret").exists());

    // The one command, for real.
    let dir = tempfile::tempdir().unwrap();
    let log: PathBuf = dir.path().join("sidecar.log");
    let child = join_command(dir.path(), port, &agent, &agent_pin, &token)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _sidecar = Proc(child);
    wait_port(port, "the joined sidecar");
    eventually(Duration::from_secs(30), "db1 to be up in the console", || async {
        host_up(&console, "db1").await.then_some(())
    })
    .await;
    let console_audit = console.enrol_dir().join("audit.jsonl");
    assert!(audit_verbs(&console_audit, "action").contains(&"host.enrolled".to_owned()));
    let sidecar_audit = dir.path().join("audit.jsonl");
    assert!(
        audit_verbs(&sidecar_audit, "verb").contains(&"host.enrolled".to_owned()),
        "{:?}",
        audit_verbs(&sidecar_audit, "verb")
    );
    // The console pinned what the sidecar serves.
    let pin = std::fs::read_to_string(console.enrol_dir().join("db1.pin")).unwrap();
    assert_eq!(pin.trim(), testkit::sidecar::cert_fingerprint(&dir.path().join("tls.crt")));

    // It serves a restart through the console, audited by the sidecar with the user.
    let c = TestContainer::run("enrolled", &[], "sleep 600");
    let (status, body) =
        call(&console.base, Some(&admin.cookie), "restart", &[("host", "db1"), ("id", &c.id), ("csrf", &admin.csrf)])
            .await;
    assert_eq!(status, 200, "{body}");
    assert!(audit_verbs(&sidecar_audit, "actor").contains(&"admin1".to_owned()));

    // The token worked once; reuse, forgery and nonsense are refused, and audited.
    let agent_http = pinned_client(&[&agent_pin]);
    let enrol = |token: String| {
        let (agent_http, agent) = (agent_http.clone(), agent.clone());
        async move {
            let fp = format!("sha256:{}", "ab".repeat(32));
            let r = agent_http
                .post(format!("{agent}/enrol"))
                .json(&serde_json::json!({ "token": token, "fingerprint": fp }))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, body) = enrol(token.clone()).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("already used"), "{body}");
    let (status, _) = enrol(format!("dwj_{}", "7".repeat(64))).await;
    assert_eq!(status, 401);
    let (status, body) = enrol("dwj_short".into()).await;
    assert_eq!(status, 400, "{body}");
    let refused = audit_verbs(&console_audit, "action").iter().filter(|a| *a == "host.enrol.refused").count();
    assert_eq!(refused, 3);
    // The agent port serves nothing else.
    let r = agent_http.get(format!("{agent}/v1/containers")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found", "{body}");

    // Revoked: the old secret stops working on the next request.
    let secret = std::fs::read_to_string(console.enrol_dir().join("db1")).unwrap().trim().to_owned();
    let direct = pinned_client(&[pin.trim()]);
    let containers = format!("{url}/v1/containers");
    assert_eq!(direct.get(&containers).bearer_auth(&secret).send().await.unwrap().status(), 200);
    let (status, body) =
        call(&console.base, Some(&admin.cookie), "revoke_host", &[("name", "db1"), ("csrf", &admin.csrf)]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.as_str().unwrap().contains("forgot 1 secret"), "{body}");
    assert_eq!(direct.get(&containers).bearer_auth(&secret).send().await.unwrap().status(), 401);
    assert!(audit_verbs(&sidecar_audit, "verb").contains(&"host.revoke".to_owned()));
    assert!(audit_verbs(&console_audit, "action").contains(&"host.revoked".to_owned()));
    assert!(!console.enrol_dir().join("db1").exists(), "the console forgot the secret");
    let (status, hosts) = call(&console.base, Some(&admin.cookie), "hosts", &[]).await;
    assert_eq!(status, 200);
    assert!(hosts["hosts"].as_array().unwrap().iter().all(|h| h["name"] != "db1"), "{hosts}");

    // The CLI makes tokens the running console honours.
    let out = Command::new(web_bin())
        .args(["host", "add", "db2", "--url", "https://127.0.0.1:9", "--agent-url", &agent])
        .env("DOCKWARD_ENROL_DIR", console.enrol_dir())
        .env("DOCKWARD_AGENT_TLS_CERT_FILE", console.dir.path().join("agent-tls.crt"))
        .env("DOCKWARD_AGENT_TLS_KEY_FILE", console.dir.path().join("agent-tls.key"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&agent_pin) && text.contains("dwj_"), "{text}");
    let (_, hosts) = call(&console.base, Some(&admin.cookie), "hosts", &[]).await;
    assert!(hosts["pending"].as_array().unwrap().iter().any(|p| p[0] == "db2"), "{hosts}");
    let out = Command::new(web_bin())
        .args(["host", "revoke", "nothing"])
        .env("DOCKWARD_ENROL_DIR", console.enrol_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a host enrolled"));
}
