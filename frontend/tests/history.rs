//! History and sessions that last, end to end: a real sidecar and engine, a
//! console with its store in its state directory and nobody watching.
//! Points appear (read in the background, without a viewer), the page draws
//! them and exports them, and both outlive a console killed with SIGKILL
//! (again and again, mid-write: the store passes its integrity check each
//! time). A session outlives the restarts; a logout still ends it for good.
//! A recreated compose container continues its line, with the recreate
//! marked. Bad queries get clear errors.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use testkit::console::client::{get, http, login};
use testkit::console::{Console, Host, Options};
use testkit::sidecar::{Sidecar, SECRET};
use testkit::{eventually, unique, TestContainer};

async fn export(base: &str, cookie: &str, container: &str) -> Value {
    let (status, body) =
        get(base, &format!("/api/history/export?host=live&container={container}&range=1h&format=json"), cookie).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn points(v: &Value) -> usize {
    v["points"].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_sessions_outlive_a_killed_console() {
    let scope = format!("dockward.history={}", unique("hist"));
    let app_labels = [
        "--label",
        &scope,
        "--label",
        "com.docker.compose.project=histapp",
        "--label",
        "com.docker.compose.service=web",
        "--label",
        "com.docker.compose.container-number=1",
    ];
    let first = TestContainer::run("hist-web", &app_labels, "while :; do :; done");
    let sidecar = Sidecar::start(&[&format!("--scope-label={scope}")]).await;
    let bin = Path::new(env!("CARGO_BIN_EXE_dockward-web"));
    let mut console = Console::start_with(
        bin,
        &[Host { name: "live", url: &sidecar.base, secret: SECRET }],
        Options { env: &[("DOCKWARD_POLL_INTERVAL", "2")], ..Options::default() },
    );
    let base = console.base.clone();
    let viewer = login(&base, "viewer1").await;
    let operator = login(&base, "operator1").await;

    // Nobody watches a page: history is read in the background all the same.
    let before = eventually(Duration::from_secs(60), "history points for the busy container", || async {
        let v = export(&base, &viewer.cookie, &first.name).await;
        // The first sample has no CPU figure yet (no delta): wait for one that has.
        let busy = v["points"].as_array()?.iter().any(|p| p["cpu_avg"].as_f64().is_some_and(|c| c > 20.0));
        (points(&v) >= 2 && busy).then_some(v)
    })
    .await;
    assert_eq!(before["series"], "histapp/web/1", "{before}");
    for p in before["points"].as_array().unwrap() {
        assert!(p["mem_max"].as_i64().is_some_and(|m| m > 0), "{p}");
        assert!(p["cpu_max"].as_f64().is_none_or(|c| c <= 110.0), "one busy loop: {p}");
    }
    // Read in the background, the sidecar's refresher stays at its idle window.
    let health: Value = sidecar.get("/healthz").send().await.unwrap().json().await.unwrap();
    assert_eq!(health["stats"]["window_ms"], 10_000, "no viewer counted: {health}");

    // The page: charts drawn on the server, a range picker, export links.
    let (status, page) =
        get(&base, &format!("/history?host=live&container={}&range=1h", first.name), &viewer.cookie).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(r#"data-chart="cpu""#) && page.contains("<svg"), "{page}");
    assert!(!page.contains(r#"data-chart="memory" data-points="0""#), "the memory chart has points: {page}");
    assert!(page.contains(r#"aria-current="true" class="btn current">1h</a>"#), "{page}");
    for r in ["6h", "24h", "7d", "30d", "90d"] {
        assert!(page.contains(&format!("range={r}")), "a link to {r}");
    }
    assert!(page.contains("format=csv") && page.contains("format=json"));
    let (status, csv) = get(
        &base,
        &format!("/api/history/export?host=live&container={}&range=1h&format=csv", first.name),
        &viewer.cookie,
    )
    .await;
    assert_eq!(status, 200);
    assert!(csv.starts_with("time,cpu_min_percent,"), "{csv}");
    assert!(csv.lines().count() >= 3, "{csv}");

    // Killed as it writes, five times: just as a new bucket lands (then a
    // little later each time). Every start passes the integrity check, keeps
    // every bucket written before, and the session holds.
    let times = |v: &Value| -> Vec<i64> {
        v["points"].as_array().map(|a| a.iter().filter_map(|p| p["ts"].as_i64()).collect()).unwrap_or_default()
    };
    let mut written = times(&before);
    for i in 0..5u64 {
        let seen = written.len();
        let now = eventually(Duration::from_secs(40), "a new bucket written", || async {
            let t = times(&export(&base, &viewer.cookie, &first.name).await);
            (t.len() > seen).then_some(t)
        })
        .await;
        tokio::time::sleep(Duration::from_millis(i * 150)).await;
        console.restart();
        written = now;
    }
    let log = console.log();
    assert!(!log.contains("failed its integrity check"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    let after = times(&export(&base, &viewer.cookie, &first.name).await);
    for t in &written {
        assert!(after.contains(t), "the bucket at {t} survived the kills: {after:?}");
    }
    let (status, _) = get(&base, "/history?host=live&range=1h", &operator.cookie).await;
    assert_eq!(status, 200, "the operator's session outlived five kills (the host's own chart)");

    // A logout still ends the session, and for good: not back after a restart.
    let r = http()
        .post(format!("{base}/auth/logout"))
        .header("cookie", format!("dockward_session={}", operator.cookie))
        .form(&[("csrf", operator.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let (status, _) = get(&base, "/history?host=live&range=1h", &operator.cookie).await;
    assert_ne!(status, 200, "logged out");
    console.restart();
    let (status, _) = get(&base, "/history?host=live&range=1h", &operator.cookie).await;
    assert_ne!(status, 200, "still logged out after a restart");

    // Recreated under the same compose name: the same line, the recreate marked.
    // (The restarted console must have listed the first one before it goes.)
    eventually(Duration::from_secs(30), "the restarted console to list the first container", || async {
        let (_, page) =
            get(&base, &format!("/history?host=live&container={}&range=1h", first.name), &viewer.cookie).await;
        page.contains("history kept as histapp/web/1").then_some(())
    })
    .await;
    drop(first);
    let second = TestContainer::run("hist-web2", &app_labels, "sleep 600");
    let marked = eventually(Duration::from_secs(60), "the recreate marked on the line", || async {
        let v = export(&base, &viewer.cookie, &second.name).await;
        let marks = v["marks"].as_array().cloned().unwrap_or_default();
        marks.iter().any(|m| m["kind"] == "recreate").then_some(v)
    })
    .await;
    assert_eq!(marked["series"], "histapp/web/1");
    let on_line = times(&marked);
    assert!(written.iter().all(|t| on_line.contains(t)), "the old container's buckets are on the new one's line");

    // The whole app: linked from its container's history, its containers summed.
    let (_, page) = get(&base, &format!("/history?host=live&container={}&range=1h", second.name), &viewer.cookie).await;
    assert!(page.contains(r#"class="app-history" href="/history?host=live&amp;app=histapp&amp;range=1h""#), "{page}");
    let (status, body) =
        get(&base, "/api/history/export?host=live&app=histapp&range=1h&format=json", &viewer.cookie).await;
    assert_eq!(status, 200, "{body}");
    let app: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(app["series"], "app:histapp");
    assert!(points(&app) >= written.len(), "{app}");
    let marks = app["marks"].as_array().unwrap();
    assert!(
        marks.iter().any(|m| m["detail"].as_str().is_some_and(|d| d.starts_with("histapp/web/1: recreated"))),
        "{app}"
    );

    // Bad queries: a clear error with the right status, nothing else.
    for (q, status, word) in [
        ("host=live&range=2y", 400, "range"),
        ("host=nowhere&range=1h", 404, "nowhere"),
        ("host=live&range=1h&format=xml", 400, "format"),
        ("host=live&range=1h&app=no%20such%2Fapp", 400, "app"),
    ] {
        let (got, body) = get(&base, &format!("/api/history/export?{q}"), &viewer.cookie).await;
        assert_eq!(got, status, "{q}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("JSON error for {q}: {body}"));
        assert!(v["error"]["message"].as_str().is_some_and(|e| e.contains(word)), "{q}: {v}");
    }
    let (status, page) = get(&base, "/history?host=live&range=forever", &viewer.cookie).await;
    assert_eq!(status, 400);
    assert!(page.contains("range must be one of"), "{page}");
    // Without a session: no history (the export is 401, the page sends to the login form).
    let r = http().get(format!("{base}/api/history/export?host=live&range=1h")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http().get(format!("{base}/history?host=live&range=1h")).send().await.unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    assert_eq!(r.headers()["location"], "/login");
}
