//! The console's links to its sidecars over TLS, end to end with real
//! processes and the real engine: an `https://` host is trusted by its pinned
//! fingerprint; a man in the middle on the same address, with a certificate
//! of its own, is refused before anything is sent (asserted on what it
//! captured) and the host shows "identity changed"; a plain-HTTP host shows
//! "unencrypted"; broken pin files stop the console with a message.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use testkit::console::client::{login, page};
use testkit::console::{Console, Host, Options};
use testkit::impostor::Impostor;
use testkit::sidecar::{Sidecar, SECRET};
use testkit::{eventually, metric_value};

const TOKEN: &str = "the-metrics-token-0123456789abcdef0123456789";

fn web_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_dockward-web"))
}

/// Whether the console's metrics say `host` is `status` now.
async fn host_is(console: &Console, host: &str, status: &str) -> bool {
    let text = reqwest::Client::new()
        .get(format!("{}/metrics", console.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metric_value(&text, &format!("dockward_web_host_status{{host=\"{host}\",status=\"{status}\"}}")) == Some(1.0)
}

async fn until_host_is(console: &Console, host: &str, status: &str) {
    eventually(Duration::from_secs(30), &format!("{host} to be {status}"), || async {
        host_is(console, host, status).await.then_some(())
    })
    .await;
}

/// The text of the host chip for `host` on a rendered page.
fn chip<'a>(html: &'a str, host: &str) -> &'a str {
    let at = html.find(&format!("data-host=\"{host}\"")).unwrap_or_else(|| panic!("no chip for {host}"));
    let rest = &html[at..];
    // Up to the next chip, or the end of this one's neighbourhood.
    &rest[..rest[1..].find("data-host=").map_or(rest.len().min(1000), |e| e + 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_hosts_are_trusted_and_an_impostor_gets_nothing() {
    let real = Sidecar::start_https(&[]).await;
    let relay = Impostor::start(real.addr()).await;
    let plain = Sidecar::start(&[]).await;
    let pin = format!("# the real sidecar\n{}\n", real.fingerprint.as_deref().unwrap());
    let console = Console::start_with(
        web_bin(),
        &[
            Host { name: "direct", url: &real.base, secret: SECRET },
            Host { name: "relayed", url: &relay.base, secret: SECRET },
            Host { name: "plain", url: &plain.base, secret: SECRET },
        ],
        Options {
            pins: &[("direct", &pin), ("relayed", &pin)],
            env: &[("DOCKWARD_WEB_METRICS_TOKEN", TOKEN)],
            ..Options::default()
        },
    );
    for host in ["direct", "relayed", "plain"] {
        until_host_is(&console, host, "up").await;
    }
    let admin = login(&console.base, "admin1").await;
    let html = page(&console.base, "/", &admin.cookie).await;
    assert!(chip(&html, "plain").contains("unencrypted"), "{}", chip(&html, "plain"));
    assert!(!chip(&html, "direct").contains("unencrypted"), "{}", chip(&html, "direct"));

    // The relay turns impostor on the address the console knows.
    relay.pose();
    until_host_is(&console, "relayed", "identity_changed").await;
    assert!(relay.attempts() > 0, "the console did try the impostor");
    let captured = relay.captured();
    assert!(captured.is_empty(), "the impostor received: {}", String::from_utf8_lossy(&captured));
    // The page shows the published fleet (a frame at most 100 ms behind the metrics): wait for it.
    let html = eventually(Duration::from_secs(10), "the page to say identity changed", || async {
        let html = page(&console.base, "/", &admin.cookie).await;
        chip(&html, "relayed").contains("identity changed").then_some(html)
    })
    .await;
    let shown = chip(&html, "relayed");
    assert!(shown.contains("identity changed") && shown.contains(&relay.fingerprint), "{shown}");
    assert!(html.contains("Host relayed: identity changed"), "the problem panel explains it");
    assert!(host_is(&console, "direct", "up").await, "the other hosts are untouched");
    // Still nothing, however long the console keeps trying.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(relay.captured().is_empty());
    assert!(!console.log().contains(SECRET), "the secret is never logged");

    // The real sidecar back on that address: trusted again, no restart.
    relay.step_aside();
    until_host_is(&console, "relayed", "up").await;
}

#[test]
fn broken_pin_files_stop_the_console_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("h"), format!("{SECRET}\n")).unwrap();
    let start = |pin: Option<&str>| {
        match pin {
            Some(text) => std::fs::write(dir.path().join("h.pin"), text).unwrap(),
            None => {
                let _ = std::fs::remove_file(dir.path().join("h.pin"));
            }
        }
        let out = Command::new(web_bin())
            .env("DOCKWARD_WEB_LISTEN", "127.0.0.1:0")
            .env("DOCKWARD_HOSTS", "h=https://127.0.0.1:9")
            .env("DOCKWARD_HOST_SECRETS_DIR", dir.path())
            .env("DOCKWARD_USERS_FILE", dir.path().join("users.json"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "started with pin {pin:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = start(None);
    assert!(err.contains("h.pin") && err.contains("tls fingerprint"), "{err}");
    let err = start(Some("sha256:0123\n"));
    assert!(err.contains("line 1") && err.contains("64 hex digits"), "{err}");
    let err = start(Some("sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709\n"));
    assert!(err.contains("not a SHA-256 fingerprint"), "{err}");
    let err = start(Some("# nothing yet\n"));
    assert!(err.contains("holds no fingerprint"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
