//! Scenario 14 (issue 18): alerts.
//!
//! - **Evaluation at 5 000 containers**: 50 stand-in hosts × 100 containers
//!   (replaying a real sidecar's answers), a release console with every rule
//!   of a fresh install on plus CPU and memory, nobody watching. The console
//!   counts the time its evaluator spends
//!   (`dockward_web_alert_evaluation_seconds`, one round a second); its rate
//!   over a window is the cores rule evaluation costs. The console's whole
//!   CPU over the same window is given beside it.
//! - **Event → notification**: a real sidecar and engine, the release
//!   console, a webhook receiver on loopback (testkit::sinks). A container
//!   with restart policy `no` is killed, again and again; from `docker kill`
//!   returning to the webhook's arrival.

use std::path::Path;
use std::time::{Duration, Instant};

use testkit::sinks::Receiver;

use crate::fleet::{record, Standin};
use crate::rig::{self, Proc};
use crate::scenarios::{round3, Figure};

const SCENARIO: &str = "14. alerts";
const HOSTS: usize = 50;
const PER_HOST: usize = 100;

fn web(dir: &Path, name: &str, hosts: &[(String, String)], site_root: &Path) -> Proc {
    let store = dir.join(format!("{name}-store")).join("dockward.db");
    rig::web_with(
        dir,
        name,
        hosts,
        site_root,
        &[],
        &[("DOCKWARD_AGENT_LISTEN", "off".into()), ("DOCKWARD_STORE", store.display().to_string())],
    )
}

/// The bench admin's session and CSRF token.
async fn session(http: &reqwest::Client, w: &Proc) -> (String, String) {
    let cookie = rig::login(w).await;
    let who: serde_json::Value = http
        .post(w.url("/api/fn/whoami"))
        .header("cookie", &cookie)
        .header("origin", w.url(""))
        .send()
        .await
        .expect("whoami")
        .json()
        .await
        .expect("whoami's answer");
    (cookie, who["csrf"].as_str().unwrap_or_default().to_owned())
}

async fn post(http: &reqwest::Client, w: &Proc, auth: &(String, String), path: &str, body: serde_json::Value) {
    let r = http
        .post(w.url(path))
        .header("cookie", &auth.0)
        .header("x-csrf-token", &auth.1)
        .header("origin", w.url(""))
        .json(&body)
        .send()
        .await
        .expect(path);
    assert!(r.status().is_success(), "{path}: {}", r.status());
}

async fn metric(http: &reqwest::Client, w: &Proc, cookie: &str, name: &str) -> f64 {
    let text =
        http.get(w.url("/metrics")).header("cookie", cookie).send().await.expect("metrics").text().await.expect("text");
    testkit::metric_value(&text, name).unwrap_or(f64::NAN)
}

pub async fn alerts(dir: &Path, site_root: &Path, quick: bool) -> Vec<Figure> {
    let mut out = Vec::new();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("client");

    // Evaluation at 5 000 containers.
    rig::ensure_fleet(PER_HOST);
    let recorded = dir.join("alerts-recorded.json");
    {
        let sc = rig::sidecar(dir, "alerts-rec");
        record(&http, &sc, &recorded).await;
    }
    let stand = Standin::start(dir, &recorded, HOSTS, None);
    let w = web(dir, "web-alerts", &stand.hosts(), site_root);
    let auth = session(&http, &w).await;
    for (kind, percent) in [("cpu", 90), ("memory", 90)] {
        let rule = serde_json::json!({"name": format!("bench {kind}"), "kind": kind, "percent": percent, "for_s": 60});
        post(&http, &w, &auth, "/api/alerts/rules", rule).await;
    }
    tokio::time::sleep(Duration::from_secs(if quick { 20 } else { 40 })).await;
    let window = Duration::from_secs(if quick { 30 } else { 120 });
    let e0 = metric(&http, &w, &auth.0, "dockward_web_alert_evaluation_seconds_total").await;
    let (cpu0, t0) = (rig::cpu_seconds(w.pid()), Instant::now());
    tokio::time::sleep(window).await;
    let secs = t0.elapsed().as_secs_f64();
    let e1 = metric(&http, &w, &auth.0, "dockward_web_alert_evaluation_seconds_total").await;
    let cpu = (rig::cpu_seconds(w.pid()) - cpu0) / secs;
    let total = HOSTS * PER_HOST;
    out.push(
        Figure::new(SCENARIO, "rule evaluation, 8 rules on, one round a second", Some(total), round3((e1 - e0) / secs), "cores")
            .at_most(0.02)
            .note(format!(
                "the console's own count of time spent evaluating (dockward_web_alert_evaluation_seconds) over {secs:.0} s; the whole console meanwhile (polling 50 hosts, history, alerts): {cpu:.3} cores, RSS {:.1} MB",
                rig::rss_bytes(w.pid()) as f64 / 1e6
            )),
    );
    drop(w);
    drop(stand);

    // Event → notification, on the real engine.
    let hook = Receiver::start().await;
    let sc = rig::sidecar(dir, "alerts-sidecar");
    let hosts = vec![("local".to_owned(), format!("http://127.0.0.1:{}", sc.port))];
    let w = web(dir, "web-alerts-latency", &hosts, site_root);
    let auth = session(&http, &w).await;
    let channel = serde_json::json!({"name": "bench", "type": "webhook", "url": format!("{}/hook", hook.url)});
    post(&http, &w, &auth, "/api/alerts/channels", channel).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut times = Vec::new();
    let n = if quick { 8 } else { 30 };
    for i in 0..n {
        let name = format!("bench-alert-{}-{i}", std::process::id());
        testkit::docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--label",
            &format!("{}=1", rig::LABEL),
            testkit::IMAGE,
            "sh",
            "-c",
            "sleep 600",
        ]);
        // Listed running first, as a service would be.
        tokio::time::sleep(Duration::from_millis(1500 + (i as u64 % 7) * 130)).await;
        testkit::docker(&["kill", &name]);
        let killed = Instant::now();
        let got = loop {
            let seen = hook.received().into_iter().find(|r| {
                let v = r.json();
                v["subject"] == name.as_str() && v["event"] == "firing"
            });
            if let Some(r) = seen {
                break Some(r.at.saturating_duration_since(killed));
            }
            if killed.elapsed() > Duration::from_secs(30) {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        testkit::docker(&["rm", "-f", &name]);
        times.push(got.unwrap_or(Duration::from_secs(30)));
    }
    times.sort();
    let p99 = rig::pct_ms(&times, 99.0) / 1000.0;
    out.push(
        Figure::new(SCENARIO, "container killed → webhook received, p99", Some(n), round3(p99), "s")
            .at_most(5.0)
            .note(format!(
                "{n} kills of a container with restart policy no; p50 {:.2} s, max {:.2} s (the engine's event, a relist, the next one-second round, the send)",
                rig::pct_ms(&times, 50.0) / 1000.0,
                times.last().map_or(f64::NAN, Duration::as_secs_f64)
            )),
    );
    drop(w);
    drop(sc);
    out
}
