//! The console's `/metrics`, end to end against real console processes in
//! front of a real sidecar (and a host whose sidecar is gone): who may read
//! it (an admin's session or the metrics token, from its file or the
//! environment), that `promtool check metrics` accepts it, and that its
//! values follow what the console does.
//!
//! Three consoles: `main` (hosts `local` and `gone`, the token in
//! `DOCKWARD_WEB_METRICS_TOKEN_FILE`), `from_env` (the token in
//! `DOCKWARD_WEB_METRICS_TOKEN`) and `bare` (no token: admins only).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use testkit::console::client::{call, http, login, User};
use testkit::console::{Console, Host, Options};
use testkit::scenarios::{scenario, Scenario};
use testkit::sidecar::{Sidecar, SECRET};
use testkit::{eventually, free_port, metric_value, promtool_check_metrics, TestContainer};

const TOKEN: &str = "the-metrics-token-0123456789abcdef0123456789";
const ENV_TOKEN: &str = "another-metrics-token-0123456789abcdef012345";

struct Env {
    main: Console,
    from_env: Console,
    bare: Console,
    viewer: User,
    admin: User,
    /// Its log is followed in one scenario.
    web: TestContainer,
    _sidecar: Sidecar,
    _token_dir: tempfile::TempDir,
}

fn web_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_dockward-web"))
}

async fn start() -> Env {
    let web = TestContainer::run("metrics-web", &[], "while true; do echo tick; sleep 1; done");
    let sidecar = Sidecar::start(&[]).await;
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("metrics-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let gone = format!("http://127.0.0.1:{}", free_port());
    let main = Console::start_with(
        web_bin(),
        &[
            Host { name: "local", url: &sidecar.base, secret: SECRET },
            Host { name: "gone", url: &gone, secret: SECRET },
        ],
        Options { env: &[("DOCKWARD_WEB_METRICS_TOKEN_FILE", token_file.to_str().unwrap())], ..Options::default() },
    );
    let only_gone = [Host { name: "gone", url: &gone, secret: SECRET }];
    let from_env = Console::start_with(
        web_bin(),
        &only_gone,
        Options { env: &[("DOCKWARD_WEB_METRICS_TOKEN", ENV_TOKEN)], first_run: true, ..Options::default() },
    );
    let bare = Console::start_with(web_bin(), &only_gone, Options { first_run: true, ..Options::default() });
    let viewer = login(&main.base, "viewer1").await;
    let admin = login(&main.base, "admin1").await;
    Env { main, from_env, bare, viewer, admin, web, _sidecar: sidecar, _token_dir: token_dir }
}

async fn teardown(env: Env, all_passed: bool) {
    if !all_passed {
        eprintln!("--- console log ---\n{}", env.main.log());
    }
    drop(env);
}

/// `GET /metrics` with a session cookie and an `Authorization` value, if given.
async fn get(base: &str, cookie: Option<&str>, authorization: Option<&str>) -> reqwest::Response {
    let mut req = http().get(format!("{base}/metrics"));
    if let Some(c) = cookie {
        req = req.header("cookie", format!("dockward_session={c}"));
    }
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    req.send().await.unwrap()
}

/// The exposition, read with the token.
async fn scrape(env: &Env) -> String {
    let r = get(&env.main.base, None, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// Waits until the scraped `series` satisfies `ok`; returns the exposition.
async fn until(env: &Env, series: &str, ok: impl Fn(f64) -> bool) -> String {
    eventually(Duration::from_secs(30), &format!("{series} to change"), || async {
        let text = scrape(env).await;
        metric_value(&text, series).is_some_and(&ok).then_some(text)
    })
    .await
}

async fn assert_refused(r: reqwest::Response, status: u16, code: &str, cell: &str) {
    assert_eq!(r.status(), status, "{cell}");
    if status == 401 {
        assert_eq!(r.headers()["www-authenticate"], "Bearer", "{cell}");
    }
    let body: serde_json::Value = r.json().await.unwrap_or_else(|e| panic!("{cell}: not JSON: {e}"));
    assert_eq!(body["error"]["code"], code, "{cell}: {body}");
}

async fn metrics_need_the_token_or_an_admin(env: Arc<Env>) {
    let base = &env.main.base;
    let bearer = format!("Bearer {TOKEN}");
    for (cookie, auth, cell) in [
        (None, None, "anonymous"),
        (None, Some("Bearer the-metrics-token-0123456789abcdef012345678X"), "a wrong token"),
        (None, Some(&format!("Bearer {ENV_TOKEN}")), "another console's token"),
        (None, Some(&format!("Basic {TOKEN}")), "not a bearer token"),
        (None, Some(&format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])), "a prefix of the token"),
        (Some(env.admin.cookie.as_str()), Some("Bearer wrong"), "a wrong token beside an admin's session"),
    ] {
        assert_refused(get(base, cookie, auth).await, 401, "unauthorized", cell).await;
    }
    assert_refused(get(base, Some(&env.viewer.cookie), None).await, 403, "forbidden", "a viewer").await;
    for (cookie, auth, cell) in [
        (Some(env.admin.cookie.as_str()), None, "an admin's session"),
        (None, Some(bearer.as_str()), "the token"),
        (None, Some(&format!("bearer {TOKEN}")), "the scheme in lower case"),
        (Some(env.viewer.cookie.as_str()), Some(bearer.as_str()), "the token beside a viewer's session"),
    ] {
        let r = get(base, cookie, auth).await;
        assert_eq!(r.status(), 200, "{cell}");
        assert_eq!(r.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8", "{cell}");
        assert!(r.text().await.unwrap().contains("# TYPE dockward_web_hosts gauge"), "{cell}");
    }
    // Two Authorization headers: refused, whichever is right.
    let r = http()
        .get(format!("{base}/metrics"))
        .header("authorization", &bearer)
        .header("authorization", "Bearer wrong")
        .send()
        .await
        .unwrap();
    assert_refused(r, 401, "unauthorized", "two Authorization headers").await;
    // The token from the environment.
    let r = get(&env.from_env.base, None, Some(&format!("Bearer {ENV_TOKEN}"))).await;
    assert_eq!(r.status(), 200, "DOCKWARD_WEB_METRICS_TOKEN");
    assert_refused(get(&env.from_env.base, None, Some(&bearer)).await, 401, "unauthorized", "from_env, main's token")
        .await;
    // No token configured: a bearer is never enough.
    assert_refused(get(&env.bare.base, None, Some(&bearer)).await, 401, "unauthorized", "bare, a token").await;
    assert_refused(get(&env.bare.base, None, None).await, 401, "unauthorized", "bare, anonymous").await;
}

async fn a_short_metrics_token_refuses_to_start(_env: Arc<Env>) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics-token");
    std::fs::write(&file, "short\n").unwrap();
    let out = std::process::Command::new(web_bin())
        .env("DOCKWARD_WEB_LISTEN", "127.0.0.1:0")
        .env("DOCKWARD_USERS_FILE", dir.path().join("users.json"))
        .env("DOCKWARD_HOST_SECRETS_DIR", dir.path())
        .env("DOCKWARD_WEB_METRICS_TOKEN_FILE", &file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("DOCKWARD_WEB_METRICS_TOKEN_FILE") && stderr.contains("at least 32 bytes"), "{stderr}");
}

async fn the_console_metrics_pass_promtool(env: Arc<Env>) {
    // Every family with samples: the hosts polled, a refusal, a failed login, a live stream.
    until(&env, "dockward_web_hosts{status=\"up\"}", |v| v == 1.0).await;
    let (status, _) = call(&env.main.base, None, "fleet", &[]).await;
    assert_eq!(status, 401);
    let r = http()
        .post(format!("{}/auth/login", env.main.base))
        .form(&[("username", "nobody"), ("password", "wrong password!")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/login?error=invalid");
    let live = http()
        .get(format!("{}/api/live", env.main.base))
        .header("cookie", format!("dockward_session={}", env.viewer.cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let text = until(&env, "dockward_web_live_streams{stream=\"fleet\"}", |v| v >= 1.0).await;
    for family in [
        "# TYPE dockward_web_hosts gauge",
        "# TYPE dockward_web_host_status gauge",
        "# TYPE dockward_web_live_streams gauge",
        "# TYPE dockward_web_sidecar_call_duration_seconds histogram",
        "# TYPE dockward_web_login_failures_total counter",
        "# TYPE dockward_web_server_fn_errors_total counter",
    ] {
        assert!(text.contains(family), "{family:?} missing: {text}");
    }
    promtool_check_metrics(&text);
    drop(live);
}

async fn metric_values_follow_the_console(env: Arc<Env>) {
    let base = &env.main.base;
    // Hosts: `local` answers, `gone` does not.
    let text = until(&env, "dockward_web_host_status{host=\"gone\",status=\"down\"}", |v| v == 1.0).await;
    let text = if metric_value(&text, "dockward_web_host_status{host=\"local\",status=\"up\"}") == Some(1.0) {
        text
    } else {
        until(&env, "dockward_web_host_status{host=\"local\",status=\"up\"}", |v| v == 1.0).await
    };
    for (series, want) in [
        ("dockward_web_hosts{status=\"up\"}", 1.0),
        ("dockward_web_hosts{status=\"stale\"}", 0.0),
        ("dockward_web_hosts{status=\"down\"}", 1.0),
        ("dockward_web_host_status{host=\"local\",status=\"down\"}", 0.0),
        ("dockward_web_host_status{host=\"gone\",status=\"up\"}", 0.0),
    ] {
        assert_eq!(metric_value(&text, series), Some(want), "{series}: {text}");
    }
    // The fleet hub's calls, timed by host and verb (a failed one too).
    for series in [
        "dockward_web_sidecar_call_duration_seconds_count{host=\"local\",verb=\"list_containers\"}",
        "dockward_web_sidecar_call_duration_seconds_count{host=\"gone\",verb=\"list_containers\"}",
        "dockward_web_sidecar_call_duration_seconds_count{host=\"local\",verb=\"events\"}",
    ] {
        assert!(metric_value(&text, series).is_some_and(|n| n >= 1.0), "{series}: {text}");
    }

    // A failed login counts once.
    let failures = "dockward_web_login_failures_total{reason=\"invalid\"}";
    let before = metric_value(&text, failures).expect("the login failures counter");
    let r = http()
        .post(format!("{base}/auth/login"))
        .form(&[("username", "nobody2"), ("password", "not the password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/login?error=invalid");
    let text = scrape(&env).await;
    assert_eq!(metric_value(&text, failures), Some(before + 1.0), "{text}");

    // Server-function errors, by function and kind.
    let not_signed_in = "dockward_web_server_fn_errors_total{function=\"container\",error=\"not_signed_in\"}";
    let forbidden = "dockward_web_server_fn_errors_total{function=\"job_status\",error=\"forbidden\"}";
    let unreachable = "dockward_web_server_fn_errors_total{function=\"container\",error=\"host_unreachable\"}";
    let count = |text: &str, s: &str| metric_value(text, s).unwrap_or(0.0);
    let before = [count(&text, not_signed_in), count(&text, forbidden), count(&text, unreachable)];
    let (status, _) = call(base, None, "container", &[("host", "local"), ("id", "web")]).await;
    assert_eq!(status, 401);
    let (status, _) = call(base, Some(&env.viewer.cookie), "job_status", &[("job", "x")]).await;
    assert_eq!(status, 403);
    let (status, _) = call(base, Some(&env.viewer.cookie), "container", &[("host", "gone"), ("id", "web")]).await;
    assert_eq!(status, 502);
    let text = scrape(&env).await;
    let after = [count(&text, not_signed_in), count(&text, forbidden), count(&text, unreachable)];
    assert_eq!(after, before.map(|n| n + 1.0), "{text}");

    // Live streams: counted while open, not after.
    let fleet = "dockward_web_live_streams{stream=\"fleet\"}";
    let follow = "dockward_web_live_streams{stream=\"follow\"}";
    until(&env, fleet, |v| v == 0.0).await;
    let cookie = format!("dockward_session={}", env.viewer.cookie);
    let live = http().get(format!("{base}/api/live")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(live.status(), 200);
    let logs = http()
        .get(format!("{base}/api/logs/follow"))
        .query(&[("host", "local"), ("id", env.web.id.as_str()), ("tail", "1")])
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(logs.status(), 200);
    let text = until(&env, fleet, |v| v == 1.0).await;
    assert_eq!(metric_value(&text, follow), Some(1.0), "{text}");
    let follows_verb = "dockward_web_sidecar_call_duration_seconds_count{host=\"local\",verb=\"logs\"}";
    assert!(metric_value(&text, follows_verb).is_some_and(|n| n >= 1.0), "{text}");
    // The browser leaves: each ends at its next frame or line.
    drop(live);
    drop(logs);
    let text = until(&env, fleet, |v| v == 0.0).await;
    let text = if metric_value(&text, follow) == Some(0.0) { text } else { until(&env, follow, |v| v == 0.0).await };
    assert_eq!(metric_value(&text, follow), Some(0.0), "{text}");
}

fn main() -> ExitCode {
    let scenarios: Vec<Scenario<Env>> = vec![
        scenario("metrics_need_the_token_or_an_admin", metrics_need_the_token_or_an_admin),
        scenario("a_short_metrics_token_refuses_to_start", a_short_metrics_token_refuses_to_start),
        scenario("the_console_metrics_pass_promtool", the_console_metrics_pass_promtool),
        scenario("metric_values_follow_the_console", metric_values_follow_the_console),
    ];
    testkit::scenarios::run(start, scenarios, teardown)
}
