//! End to end in headless Chromium: a real sidecar in front of the real
//! dockerd, the real console, driven over WebDriver (chromedriver).
//!
//! One started environment (test containers, sidecar, console, browser) and
//! one trial per scenario, run in order (`harness = false`, see
//! `testkit::scenarios`): a failing scenario fails alone, and everything is
//! torn down at the end whatever failed.
//!
//! Needs Debian's `chromium` and `chromium-driver`, Docker, and the browser
//! assets built by `scripts/build-web.sh`; fails loudly without them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use testkit::browser::*;
use testkit::console::{Console, Host, PASSWORD};
use testkit::scenarios::{scenario, Scenario};
use testkit::sidecar::{Sidecar, SECRET};
use testkit::*;

const XSS: &str = "<script>window.__xss=1</script><img src=x onerror=window.__xss=2>";

fn site_root() -> PathBuf {
    let root = std::env::var_os("DOCKWARD_SITE_ROOT").map(PathBuf::from).unwrap_or_else(|| {
        let exe = std::env::current_exe().unwrap();
        exe.ancestors().nth(3).unwrap().join("site")
    });
    assert!(
        root.join("pkg/dockward.js").exists() && root.join("pkg/dockward_bg.wasm").exists(),
        "browser assets missing in {}: run scripts/build-web.sh (or set DOCKWARD_SITE_ROOT)",
        root.display()
    );
    root
}

struct Stack {
    console: Console,
    _sidecar: Sidecar,
    driver: Driver,
}

async fn start_stack(scope: &str) -> Stack {
    let sidecar = Sidecar::start(&[&format!("--scope-label=dockward.e2e={scope}")]).await;
    let console = Console::start(
        Path::new(env!("CARGO_BIN_EXE_dockward-web")),
        &[Host { name: "local", url: &sidecar.base, secret: SECRET }],
        Some(&site_root()),
    );
    Stack { console, _sidecar: sidecar, driver: Driver::start() }
}

/// What every scenario shares: the labelled containers, the running
/// sidecar and console, and one browser session.
struct Env {
    base: String,
    c: Client,
    /// `shop` project; logs a line per signal (see `logs_show_streams_and_follow_later_lines`).
    web: TestContainer,
    /// `shop` project, protected.
    db: TestContainer,
    /// Attacker-controlled project name, label and log line.
    evil: TestContainer,
    /// `batch` project; killed by `a_killed_container_turns_red_without_a_reload`.
    victim: TestContainer,
    // Dropped last: the console, sidecar and browser processes.
    _stack: Stack,
}

async fn start() -> Env {
    require_docker();
    let scope = unique("e2e");
    let l = format!("dockward.e2e={scope}");
    let web = TestContainer::run(
        "shop-web",
        &["--label", &l, "--label", "com.docker.compose.project=shop", "--label", "com.docker.compose.service=web"],
        // One `late-line` each time the test creates /tmp/go (the container polls for it).
        "echo hello-from-web; echo oops-stderr >&2; \
         while true; do while [ ! -f /tmp/go ]; do sleep 0.2; done; rm /tmp/go; echo late-line; done",
    );
    let db = TestContainer::run(
        "shop-db",
        &["--label", &l, "--label", "com.docker.compose.project=shop", "--label", "dockward.protect=true"],
        "sleep 600",
    );
    let evil_project = format!("com.docker.compose.project=evil{XSS}");
    let evil_label = format!("note={XSS}");
    let evil = TestContainer::run(
        "evil",
        &["--label", &l, "--label", &evil_project, "--label", &evil_label],
        &format!("echo '{XSS}'; sleep 600"),
    );
    let victim = TestContainer::run(
        "victim",
        // A service meant to run (the engine would restart a crash): stopped, it is a problem.
        &["--label", &l, "--label", "com.docker.compose.project=batch", "--restart", "unless-stopped"],
        "sleep 600",
    );
    let stack = start_stack(&scope).await;
    let c = stack.driver.session().await;
    Env { base: stack.console.base.clone(), c, web, db, evil, victim, _stack: stack }
}

async fn teardown(env: Env, _all_passed: bool) {
    let _ = env.c.clone().close().await;
    drop(env);
}

async fn session_and_csrf(c: &Client) -> (String, String) {
    let cookie = c.get_named_cookie("dockward_session").await.expect("session cookie").value().to_owned();
    let csrf = c.find(Locator::Css("input[name=csrf]")).await.unwrap().attr("value").await.unwrap().unwrap();
    (cookie, csrf)
}

/// A restart POSTed by hand with a session's cookie and token (what a crafted request would do).
async fn crafted_restart(base: &str, cookie: &str, csrf: &str, id: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/fn/restart"))
        .header("cookie", format!("dockward_session={cookie}"))
        .form(&[("host", "local"), ("id", id), ("csrf", csrf)])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// True when `css` shows `want` within `within` (polling the page, no reload).
async fn shows(c: &Client, css: &str, want: &str, within: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if e.text().await.is_ok_and(|t| t.contains(want)) {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

async fn no_injected_script_ran(c: &Client) {
    let executed = c.execute("return window.__xss === undefined", vec![]).await.unwrap();
    assert_eq!(executed, serde_json::json!(true), "an injected script ran");
}

/// Unauthenticated: pages redirect to the login form, APIs answer 401, and
/// pages carry a strict CSP with a per-response nonce.
async fn anonymous_visitors_get_the_login_form_and_nothing_else(env: Arc<Env>) {
    let (base, c) = (&env.base, &env.c);
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (303, "/login"));
    assert_eq!(http.get(format!("{base}/api/live")).send().await.unwrap().status(), 401);
    let r = http
        .post(format!("{base}/api/fn/restart"))
        .form(&[("host", "local"), ("id", env.web.id.as_str()), ("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "an anonymous restart is refused");
    let r = http.get(format!("{base}/login")).send().await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self' 'nonce-") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let r = http
        .post(format!("{base}/auth/login"))
        .header("origin", "https://evil.example")
        .form(&[("username", "admin1"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a cross-site login POST is refused");
    c.goto(base).await.unwrap();
    c.delete_all_cookies().await.unwrap();
    c.goto(base).await.unwrap();
    c.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("form.login-form")).await.expect("login page");
}

/// Log in; the overview shows the app cards with the right badges.
async fn the_overview_shows_app_cards_with_badges(env: Arc<Env>) {
    let c = &env.c;
    login_afresh(c, &env.base, "admin1", PASSWORD).await;
    wait_text(c, "#headline", "All 4 containers healthy", 15).await;
    let shop = c.find(Locator::Css("article[data-app='shop']")).await.expect("a card for the shop project");
    assert!(shop.attr("class").await.unwrap().unwrap().contains("badge-green"));
    let shop_text = shop.text().await.unwrap();
    assert!(shop_text.contains(&env.web.name) && shop_text.contains(&env.db.name), "{shop_text}");
    assert!(c.find(Locator::Css("article[data-app='batch']")).await.is_ok());
    screenshot(c, "overview").await;
}

/// Attacker-controlled strings render as text, never as markup.
async fn attacker_strings_render_as_text(env: Arc<Env>) {
    let c = &env.c;
    login_afresh(c, &env.base, "admin1", PASSWORD).await;
    wait_text(c, ".cards", &env.evil.name, 15).await;
    let page = c.source().await.unwrap();
    assert!(!page.contains("<script>window.__xss"), "raw script tag in the page");
    assert!(text(c, ".cards").await.contains("<script>window.__xss=1</script>"), "the project name shows literally");
    no_injected_script_ran(c).await;
}

/// Container detail: labels literal, title and tabs present.
async fn the_detail_page_shows_labels_literally(env: Arc<Env>) {
    let (base, c) = (&env.base, &env.c);
    login_afresh(c, base, "admin1", PASSWORD).await;
    c.goto(&format!("{base}/c/local/{}", env.evil.id)).await.unwrap();
    hydrated(c).await;
    if c.find(Locator::Css("button.tab:nth-child(5)")).await.is_err() {
        panic!("DEBUG {}", c.source().await.unwrap());
    }
    c.find(Locator::Css("button.tab:nth-child(5)")).await.unwrap().click().await.unwrap();
    let labels = text(c, "table.labels").await;
    assert!(labels.contains(XSS), "label shown literally: {labels}");
    c.goto(&format!("{base}/c/local/{}", env.web.id)).await.unwrap();
    hydrated(c).await;
    assert!(text(c, ".detail-title").await.contains(&env.web.name));
    screenshot(c, "detail").await;
}

/// Logs: what the container printed, on the right stream; follow gets later
/// lines without a reload; search marks matches.
async fn logs_show_streams_and_follow_later_lines(env: Arc<Env>) {
    let (base, c) = (&env.base, &env.c);
    login_afresh(c, base, "admin1", PASSWORD).await;
    c.goto(&format!("{base}/logs/local/{}", env.evil.id)).await.unwrap();
    hydrated(c).await;
    assert!(text(c, "#log").await.contains(XSS), "the log line shows literally");
    c.goto(&format!("{base}/logs/local/{}", env.web.id)).await.unwrap();
    hydrated(c).await;
    assert!(text(c, "#log .stdout").await.contains("hello-from-web"));
    assert!(text(c, "#log .stderr").await.contains("oops-stderr"));
    c.find(Locator::Css("#log-follow")).await.unwrap().click().await.unwrap();
    // The follow stream opens in the background and starts at the end of the
    // log: signal the container (one late line per signal) until a late line
    // arrives. Any late line on this page came through the follow stream.
    let mut followed = false;
    for _ in 0..15 {
        docker(&["exec", &env.web.id, "touch", "/tmp/go"]);
        if shows(c, "#log", "late-line", Duration::from_secs(1)).await {
            followed = true;
            break;
        }
    }
    assert!(followed, "no line printed after the page loaded reached it through follow");
    c.find(Locator::Css("#log-search")).await.unwrap().send_keys("late").await.unwrap();
    wait_text(c, "#log mark", "late", 5).await;
    screenshot(c, "logs").await;
    no_injected_script_ran(c).await;
    logout(c).await;
}

/// A viewer sees no restart button, and a crafted POST is refused.
async fn viewers_cannot_restart(env: Arc<Env>) {
    let (base, c, web) = (&env.base, &env.c, &env.web);
    login_afresh(c, base, "viewer1", PASSWORD).await;
    assert!(c.find_all(Locator::Css("button.restart")).await.unwrap().is_empty(), "viewers get no restart button");
    let (cookie, csrf) = session_and_csrf(c).await;
    let before = web.started_at();
    let (status, body) = crafted_restart(base, &cookie, &csrf, &web.id).await;
    assert_ne!(status, 200, "{body}");
    assert!(body.contains("operator"), "{body}");
    assert_eq!(web.started_at(), before, "the viewer's crafted POST restarted it");
    logout(c).await;
}

/// An operator restarts: StartedAt changes; the protected one has no button
/// and is refused anyway; a stale CSRF token is refused.
async fn operators_restart_but_not_protected_containers(env: Arc<Env>) {
    let (base, c, web, db) = (&env.base, &env.c, &env.web, &env.db);
    login_afresh(c, base, "operator1", PASSWORD).await;
    let before = web.started_at();
    restart_from_overview(c, &web.name).await;
    assert_ne!(web.started_at(), before, "StartedAt must change");
    let db_row = format!("li[data-container='{}']", db.name);
    assert!(c.find(Locator::Css(&format!("{db_row} .lock"))).await.is_ok(), "protected rows show a lock");
    assert!(c.find_all(Locator::Css(&format!("{db_row} button.restart"))).await.unwrap().is_empty());
    let (cookie, csrf) = session_and_csrf(c).await;
    let db_before = db.started_at();
    let (status, body) = crafted_restart(base, &cookie, &csrf, &db.id).await;
    assert_ne!(status, 200, "{body}");
    assert!(body.contains("protected"), "{body}");
    assert_eq!(db.started_at(), db_before);
    // A stale CSRF token is refused too.
    let (status, _) = crafted_restart(base, &cookie, "not-the-token", &web.id).await;
    assert_ne!(status, 200);
}

/// A service that should run (restart policy `unless-stopped`), killed now
/// (`docker stop`: sleep ignores SIGTERM as pid 1, so SIGKILL, 137) and so
/// not restarted, turns red without a reload.
async fn a_killed_container_turns_red_without_a_reload(env: Arc<Env>) {
    let c = &env.c;
    login_afresh(c, &env.base, "operator1", PASSWORD).await;
    wait_text(c, "#headline", "All 4 containers healthy", 15).await;
    docker(&["stop", "-t", "1", &env.victim.id]);
    wait_text(c, "#headline", "1 needs attention", 10).await;
    let batch = c.find(Locator::Css("article[data-app='batch']")).await.unwrap();
    assert!(batch.attr("class").await.unwrap().unwrap().contains("badge-red"));
    logout(c).await;
}

/// The audit page names the operator who restarted, and the chain verifies.
async fn the_audit_page_names_the_operator(env: Arc<Env>) {
    let (base, c) = (&env.base, &env.c);
    login_afresh(c, base, "admin1", PASSWORD).await;
    c.goto(&format!("{base}/audit")).await.unwrap();
    hydrated(c).await;
    let audit = wait_text(c, "#audit", "operator1", 10).await;
    assert!(audit.contains("restart"), "{audit}");
    assert!(text(c, "#verify").await.contains("chain intact"));
    screenshot(c, "audit").await;
}

fn main() -> ExitCode {
    let scenarios: Vec<Scenario<Env>> = vec![
        scenario(
            "anonymous_visitors_get_the_login_form_and_nothing_else",
            anonymous_visitors_get_the_login_form_and_nothing_else,
        ),
        // Before the kill below: every container is still healthy here.
        scenario("the_overview_shows_app_cards_with_badges", the_overview_shows_app_cards_with_badges),
        scenario("attacker_strings_render_as_text", attacker_strings_render_as_text),
        scenario("the_detail_page_shows_labels_literally", the_detail_page_shows_labels_literally),
        scenario("logs_show_streams_and_follow_later_lines", logs_show_streams_and_follow_later_lines),
        scenario("viewers_cannot_restart", viewers_cannot_restart),
        scenario("operators_restart_but_not_protected_containers", operators_restart_but_not_protected_containers),
        scenario("a_killed_container_turns_red_without_a_reload", a_killed_container_turns_red_without_a_reload),
        // Reads the record of the operator's restart.
        scenario("the_audit_page_names_the_operator", the_audit_page_names_the_operator)
            .after(&["operators_restart_but_not_protected_containers"]),
    ];
    testkit::scenarios::run(start, scenarios, teardown)
}
