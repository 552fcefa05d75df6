//! Outbound agents, end to end with real processes, the real engine and a
//! real network: a sidecar in a network namespace that drops every inbound
//! connection joins the console as `outbound`, dials its agent port and
//! appears in the fleet; a restart through the tunnel works and is audited
//! by the sidecar with the acting user; the tunnel is cut and comes back by
//! itself; a wrong secret or an unknown host gets no tunnel.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use testkit::console::client::{call, join_token, login};
use testkit::console::{Console, Options};
use testkit::cut::CutProxy;
use testkit::netns::Namespace;
use testkit::sidecar::{pinned_client, sidecar_bin};
use testkit::{eventually, metric_value, Proc, TestContainer};

const TOKEN: &str = "the-metrics-token-0123456789abcdef0123456789";

fn web_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_dockward-web"))
}

async fn host_status(console: &Console, host: &str) -> Option<String> {
    let r = reqwest::Client::new().get(format!("{}/metrics", console.base)).bearer_auth(TOKEN).send().await.ok()?;
    let text = r.text().await.ok()?;
    ["up", "stale", "down", "identity_changed"]
        .into_iter()
        .find(|s| {
            metric_value(&text, &format!("dockward_web_host_status{{host=\"{host}\",status=\"{s}\"}}")) == Some(1.0)
        })
        .map(str::to_owned)
}

fn audit_field(path: &Path, field: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v[field].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbound_agent_behind_a_firewall_is_a_host_like_any_other() {
    testkit::require_docker();
    let ns = Namespace::isolated();
    let console = Console::start_with(
        web_bin(),
        &[],
        Options { env: &[("DOCKWARD_WEB_METRICS_TOKEN", TOKEN)], ..Options::default() },
    );
    // The namespace reaches the console's agent port through a proxy on our
    // side of the link, which the test can cut.
    let proxy = CutProxy::start_on(&ns.outside, &console.agent_addr()).await;
    let agent = proxy.base.replace("http://", "https://");
    let agent_pin = console.agent_fingerprint();
    let admin = login(&console.base, "admin1").await;

    // The console makes the token and the command: no port to publish, `--outbound`.
    let (status, join) = call(
        &console.base,
        Some(&admin.cookie),
        "add_host",
        &[("name", "edge1"), ("url", "outbound"), ("csrf", &admin.csrf)],
    )
    .await;
    assert_eq!(status, 200, "{join}");
    let command = join["command"].as_str().unwrap();
    assert!(command.contains("--outbound") && !command.contains(" -p "), "{command}");
    let token = join_token(command);

    // The sidecar joins from inside the namespace and listens there on every
    // address: nothing from outside can reach that listener.
    let dir = tempfile::tempdir().unwrap();
    let d = |f: &str| -> PathBuf { dir.path().join(f) };
    let child = ns
        .command(&sidecar_bin())
        .args(["join", "--outbound"])
        .env("DOCKWARD_CONSOLE", &agent)
        .env("DOCKWARD_CONSOLE_PIN", &agent_pin)
        .env("DOCKWARD_JOIN_TOKEN", &token)
        .env("DOCKWARD_LISTEN", "0.0.0.0:7700")
        .env("DOCKWARD_SECRET_FILE", d("secret"))
        .env("DOCKWARD_AUDIT_LOG", d("audit.jsonl"))
        .env("DOCKWARD_AUDIT_KEY_FILE", d("audit.key"))
        .env("DOCKWARD_TLS_CERT_FILE", d("tls.crt"))
        .env("DOCKWARD_TLS_KEY_FILE", d("tls.key"))
        .env("DOCKWARD_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d("sidecar.log")).unwrap())
        .spawn()
        .unwrap();
    let _sidecar = Proc(child);
    let log = || std::fs::read_to_string(d("sidecar.log")).unwrap_or_default();
    eventually(Duration::from_secs(30), "edge1 to be up in the console", || async {
        (host_status(&console, "edge1").await.as_deref() == Some("up")).then_some(())
    })
    .await;
    assert!(log().contains("tunnel to the console open"), "{}", log());

    // Inbound connections to it are dropped: a direct connection times out.
    let direct =
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(format!("{}:7700", ns.inside)))
            .await;
    assert!(!matches!(direct, Ok(Ok(_))), "the namespace accepted an inbound connection");

    // The hosts page says how it is connected (from the proxy's address, here).
    let (status, hosts) = call(&console.base, Some(&admin.cookie), "hosts", &[]).await;
    assert_eq!(status, 200);
    let edge = hosts["hosts"].as_array().unwrap().iter().find(|h| h["name"] == "edge1").unwrap().clone();
    assert_eq!(edge["url"], "outbound", "{edge}");
    assert!(edge["outbound"].as_str().is_some_and(|from| from.starts_with("127.0.0.1:")), "{edge}");
    assert_eq!(edge["pins"], serde_json::json!([]), "{edge}");

    // The console lists its containers and restarts one through the tunnel,
    // audited by the sidecar with the acting user.
    let c = TestContainer::run("outbound", &[], "sleep 600");
    let (status, body) =
        call(&console.base, Some(&admin.cookie), "restart", &[("host", "edge1"), ("id", &c.id), ("csrf", &admin.csrf)])
            .await;
    assert_eq!(status, 200, "{body}");
    let audit = d("audit.jsonl");
    let restarts: Vec<serde_json::Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["verb"] == "restart")
        .collect();
    assert_eq!(restarts.len(), 1, "{restarts:?}");
    assert_eq!(restarts[0]["actor"], "admin1");
    assert_eq!(restarts[0]["outcome"], "ok", "{:?}", restarts[0]);
    assert!(audit_field(&audit, "verb").contains(&"host.enrolled".to_owned()));

    // The tunnel is cut: the host is no longer up; restored, it comes back by itself.
    proxy.cut();
    eventually(Duration::from_secs(30), "edge1 to be no longer up", || async {
        matches!(host_status(&console, "edge1").await.as_deref(), Some("stale" | "down")).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.restore();
    eventually(Duration::from_secs(90), "edge1 to be up again", || async {
        (host_status(&console, "edge1").await.as_deref() == Some("up")).then_some(())
    })
    .await;
    let (status, body) =
        call(&console.base, Some(&admin.cookie), "restart", &[("host", "edge1"), ("id", &c.id), ("csrf", &admin.csrf)])
            .await;
    assert_eq!(status, 200, "{body}");

    // Without its secret, or for a host that is not outbound, there is no tunnel.
    let http = pinned_client(&[&agent_pin]);
    let tunnel = format!("{}/tunnel", console.agent_addr().replace("127.0.0.1", "https://127.0.0.1"));
    for (host, secret) in [("edge1", "a-wrong-secret-0123456789abcdef0123456789"), ("nobody", "x")] {
        let r = http
            .get(&tunnel)
            .header("upgrade", "dockward-tunnel/1")
            .header("connection", "upgrade")
            .header("x-dockward-host", host)
            .bearer_auth(secret)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{host}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    }
    let r = http.get(&tunnel).send().await.unwrap();
    assert_eq!(r.status(), 400, "not an upgrade");
    // The real agent's tunnel is untouched by the refusals.
    assert_eq!(host_status(&console, "edge1").await.as_deref(), Some("up"));
}
