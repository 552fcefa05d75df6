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
use testkit::console::{Console, Host, Options, PASSWORD};
use testkit::cut::CutProxy;
use testkit::scenarios::{scenario, Scenario};
use testkit::sidecar::{Registry, Sidecar, SECRET};
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
    /// The label that puts a container in the sidecar's scope.
    label: String,
    // Dropped last: the console, sidecar and browser processes.
    stack: Stack,
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
    // Enough lines to overflow the shop's merged log (`the_merged_app_log_…`).
    let db = TestContainer::run(
        "shop-db",
        &["--label", &l, "--label", "com.docker.compose.project=shop", "--label", "dockward.protect=true"],
        "i=0; while [ $i -lt 300 ]; do echo db-line-$i; i=$((i+1)); done; sleep 600",
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
        // A service meant to run (the engine retries a crash, once): it crashes with 3 when
        // /tmp/die exists, again on the retry, and then stays down: a problem.
        &["--label", &l, "--label", "com.docker.compose.project=batch", "--restart", "on-failure:1"],
        "while [ ! -e /tmp/die ]; do sleep 0.2; done; exit 3",
    );
    let stack = start_stack(&scope).await;
    let c = stack.driver.session().await;
    Env { base: stack.console.base.clone(), c, web, db, evil, victim, label: l, stack }
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
    // Titled by the container's name and app, not its id.
    let title = format!("{} · shop", env.web.name);
    assert_eq!(text(c, "h1").await, format!("Logs · {title}"));
    assert_eq!(c.title().await.unwrap(), format!("{title} · logs · dockward"));
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

/// A service that should run (restart policy `on-failure:1`) crashes now,
/// exits 3 again on its one retry and stays down: it turns red without a reload.
async fn a_killed_container_turns_red_without_a_reload(env: Arc<Env>) {
    let c = &env.c;
    login_afresh(c, &env.base, "operator1", PASSWORD).await;
    wait_text(c, "#headline", "All 4 containers healthy", 15).await;
    docker(&["exec", &env.victim.id, "touch", "/tmp/die"]);
    wait_text(c, "#headline", "1 needs attention", 10).await;
    let batch = c.find(Locator::Css("article[data-app='batch']")).await.unwrap();
    assert!(batch.attr("class").await.unwrap().unwrap().contains("badge-red"));
    // The alert it raised is counted in the header, live; its page names it.
    let start = Instant::now();
    let count = loop {
        let n = match c.find(Locator::Css("header.top a[href='/alerts'] .alerts-count")).await {
            Ok(e) => e.text().await.unwrap_or_default().trim().parse::<u32>().unwrap_or(0),
            Err(_) => 0,
        };
        if n >= 1 || start.elapsed() > Duration::from_secs(15) {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(count >= 1, "the header counts the alert firing");
    c.find(Locator::Css("header.top a[href='/alerts']")).await.unwrap().click().await.unwrap();
    wait_text(c, "table.firing", &env.victim.name, 10).await;
    screenshot(c, "alerts").await;
    c.goto(&format!("{}/", env.base)).await.unwrap();
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

/// Fetches the page's icon link and `/favicon.ico`: `[status and type, status]`.
const FETCH_ICONS: &str = "const done = arguments[arguments.length - 1];
    const link = document.querySelector('link[rel=icon]');
    Promise.all([
        link ? fetch(link.href).then(r => r.status + ' ' + r.headers.get('content-type')) : 'no icon link',
        fetch('/favicon.ico').then(r => r.status),
    ]).then(done, e => done(String(e)));";

/// Every page links an icon that answers, and so does `/favicon.ico`: the
/// browser's console reports no failed request (the favicon's 404 was one)
/// and no other error on the login page, the overview and a log page. A
/// browser of its own: Chromium asks for a missing icon once per session.
async fn pages_link_an_icon_and_the_browser_logs_no_error(env: Arc<Env>) {
    let base = &env.base;
    let c = env.stack.driver.session().await;
    c.goto(&format!("{base}/login")).await.unwrap();
    hydrated(&c).await;
    login(&c, base, "viewer1", PASSWORD).await;
    for page in ["/login".to_owned(), "/".to_owned(), format!("/logs/local/{}", env.web.id)] {
        c.goto(&format!("{base}{page}")).await.unwrap();
        hydrated(&c).await;
        let icons = c.execute_async(FETCH_ICONS, vec![]).await.unwrap();
        assert_eq!(icons, serde_json::json!(["200 image/svg+xml", 200]), "{page}");
    }
    let errors: Vec<_> = browser_log(&c).await.into_iter().filter(|(level, _)| level == "SEVERE").collect();
    assert!(errors.is_empty(), "the browser logged errors: {errors:?}");
    c.close().await.unwrap();
}

/// Logs in through the form in a session that runs no page script.
async fn login_without_script(c: &Client, base: &str, user: &str) {
    c.goto(&format!("{base}/login")).await.unwrap();
    c.find(Locator::Css("input[name=username]")).await.unwrap().send_keys(user).await.unwrap();
    c.find(Locator::Css("input[name=password]")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    c.find(Locator::Css("#login")).await.unwrap().click().await.unwrap();
    c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("#headline")).await.expect("the overview");
    let hydrated = c.execute("return document.body.hasAttribute('data-hydrated')", vec![]).await.unwrap();
    assert_eq!(hydrated, serde_json::json!(false), "this session was to run no page script");
}

/// The audit table's rows as `[verb, outcome]`.
async fn audit_rows(c: &Client) -> Vec<(String, String)> {
    let rows = c
        .execute(
            "return [...document.querySelectorAll('#audit tbody tr')].map(tr => [tr.cells[3].textContent, tr.cells[5].textContent])",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(rows).unwrap()
}

/// Waits until the URL has `want` and the rows satisfy `ok` (and number at least `min`).
async fn audit_shows(c: &Client, want: &str, min: usize, ok: impl Fn(&(String, String)) -> bool) {
    let start = Instant::now();
    loop {
        let url = c.current_url().await.unwrap().to_string();
        let rows = audit_rows(c).await;
        if url.contains(want) && rows.len() >= min && rows.iter().all(&ok) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "at {url} the audit rows are {rows:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sets a date-time picker's value as a person's picking would (the input event included).
async fn pick_time(c: &Client, css: &str, value: &str) {
    let js = "const el = document.querySelector(arguments[0]); el.value = arguments[1];
              el.dispatchEvent(new Event('input', { bubbles: true })); return el.value";
    let set = c.execute(js, vec![css.into(), value.into()]).await.unwrap();
    assert_eq!(set, serde_json::json!(value), "{css} takes {value}");
}

/// Chooses `verb` and `outcome` in the filter form and applies it.
async fn filter_audit(c: &Client, verb: &str, outcome: &str) {
    c.find(Locator::Css(&format!("#audit-verb option[value='{verb}']"))).await.unwrap().click().await.unwrap();
    c.find(Locator::Css(&format!("#audit-outcome option[value='{outcome}']"))).await.unwrap().click().await.unwrap();
    c.find(Locator::Css("#audit-apply")).await.unwrap().click().await.unwrap();
}

/// The audit filters: verb and outcome are choices from the verb table and
/// the known outcomes, the times date-time pickers, the actor suggests the
/// actors on the page; applying filters in place, and the same form works
/// as a plain GET form in a browser that runs no page script.
async fn the_audit_filters_are_choices_and_work_without_the_script(env: Arc<Env>) {
    let (base, c) = (&env.base, &env.c);
    login_afresh(c, base, "admin1", PASSWORD).await;
    c.goto(&format!("{base}/audit")).await.unwrap();
    hydrated(c).await;
    wait_text(c, "#audit", "operator1", 10).await;
    let el =
        |css: &'static str| async move { c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")) };
    assert_eq!(el("#audit-verb").await.tag_name().await.unwrap(), "select");
    assert_eq!(el("#audit-outcome").await.tag_name().await.unwrap(), "select");
    let verbs =
        c.execute("return [...document.querySelectorAll('#audit-verb option')].map(o => o.value)", vec![]).await;
    let verbs: Vec<String> = serde_json::from_value(verbs.unwrap()).unwrap();
    let mut want: Vec<String> = vec![String::new()];
    want.extend(shared::audit::filter_verbs().into_iter().map(String::from));
    assert_eq!(verbs, want, "any verb, then the table's");
    let outcomes =
        c.execute("return [...document.querySelectorAll('#audit-outcome option')].map(o => o.value)", vec![]);
    assert_eq!(outcomes.await.unwrap(), serde_json::json!(["", "ok", "denied", "error"]));
    for css in ["#audit-since", "#audit-until"] {
        assert_eq!(el(css).await.attr("type").await.unwrap().as_deref(), Some("datetime-local"), "{css}");
    }
    assert_eq!(el("#audit-actor").await.attr("list").await.unwrap().as_deref(), Some("audit-actors"));
    let actors = c.execute("return [...document.querySelectorAll('#audit-actors option')].map(o => o.value)", vec![]);
    let actors: Vec<String> = serde_json::from_value(actors.await.unwrap()).unwrap();
    assert!(actors.contains(&"operator1".into()) && actors.contains(&"admin1".into()), "{actors:?}");

    // With the script: in place, no reload.
    c.execute("window.__same_page = true", vec![]).await.unwrap();
    filter_audit(c, "restart", "ok").await;
    audit_shows(c, "verb=restart&outcome=ok", 1, |(v, o)| v.starts_with("restart") && o == "ok").await;
    pick_time(c, "#audit-until", "2000-01-01T00:00").await;
    c.find(Locator::Css("#audit-apply")).await.unwrap().click().await.unwrap();
    audit_shows(c, "until=2000-01-01T00%3A00", 0, |_| false).await;
    let same = c.execute("return window.__same_page === true", vec![]).await.unwrap();
    assert_eq!(same, serde_json::json!(true), "applying a filter reloaded the page");
    logout(c).await;

    // Without it: the same form, as a plain GET form.
    let plain = env.stack.driver.session_without_script().await;
    login_without_script(&plain, base, "admin1").await;
    plain.goto(&format!("{base}/audit")).await.unwrap();
    wait_text(&plain, "#audit", "operator1", 10).await;
    filter_audit(&plain, "restart", "denied").await;
    audit_shows(&plain, "verb=restart", 1, |(v, o)| v.starts_with("restart") && o == "denied").await;
    let chosen = plain.execute(
        "return [document.querySelector('#audit-verb').value, document.querySelector('#audit-outcome').value]",
        vec![],
    );
    assert_eq!(chosen.await.unwrap(), serde_json::json!(["restart", "denied"]), "the page shows the filter it applied");
    pick_time(&plain, "#audit-since", "2000-01-01T00:00").await;
    pick_time(&plain, "#audit-until", "2000-01-02T00:00").await;
    plain.find(Locator::Css("#audit-apply")).await.unwrap().click().await.unwrap();
    audit_shows(&plain, "until=2000-01-02T00%3A00", 0, |_| false).await;
    assert!(plain.find(Locator::Css("p.error")).await.is_err(), "the sidecar took the picked times");
    let since = plain.execute("return document.querySelector('#audit-since').value", vec![]).await.unwrap();
    assert_eq!(since, serde_json::json!("2000-01-01T00:00"));
    plain.close().await.unwrap();
}

/// Where the merged log's scrolling box stands: how many lines, whether the
/// first and the last are in view.
const MERGED_VIEW: &str = "const log = document.querySelector('#merged-log');
    let box = log;
    while (box && box.scrollHeight <= box.clientHeight + 1) box = box.parentElement;
    const lines = log.querySelectorAll('.line');
    const b = box.getBoundingClientRect();
    const seen = el => { const r = el.getBoundingClientRect(); return r.bottom > b.top + 1 && r.top < b.bottom - 1; };
    if (arguments[0]) box.scrollBy(0, -1e6);
    return [lines.length, seen(lines[0]), seen(lines[lines.length - 1])];";

async fn merged_view(c: &Client) -> (usize, bool, bool) {
    serde_json::from_value(c.execute(MERGED_VIEW, vec![false.into()]).await.unwrap()).unwrap()
}

async fn wait_merged(c: &Client, what: &str, want: impl Fn((usize, bool, bool)) -> bool) {
    let start = Instant::now();
    loop {
        let v = merged_view(c).await;
        if want(v) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{what}: (lines, first seen, last seen) = {v:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn jump_shown(c: &Client) -> bool {
    c.find(Locator::Css("#merged-latest")).await.unwrap().is_displayed().await.unwrap()
}

/// The merged app log opens at its newest line (with or without the page's
/// script); scrolled up, "Jump to latest" appears and takes it back.
/// The console's open `/api/live` streams, from its own metrics (read as an admin).
async fn live_streams(base: &str, admin_cookie: &str) -> u64 {
    let text = testkit::console::client::page(base, "/metrics", admin_cookie).await;
    metric_value(&text, r#"dockward_web_live_streams{stream="fleet"}"#)
        .unwrap_or_else(|| panic!("no live-stream gauge in {text}")) as u64
}

/// With the back/forward cache on, as people browse: pages left behind close
/// their live stream (`pagehide`) and a page brought back reloads, so a dozen
/// full page loads neither starve the next page (Chromium allows six
/// connections per host) nor leave streams open on the console.
async fn pages_in_the_back_forward_cache_hold_no_live_stream(env: Arc<Env>) {
    let base = &env.base;
    let admin = testkit::console::client::login(base, "admin1").await;
    let c = env.stack.driver.session_with_back_forward_cache().await;
    login_afresh(&c, base, "viewer1", PASSWORD).await;
    for i in 0..12 {
        let page = if i % 2 == 0 { "/network" } else { "/" };
        c.goto(&format!("{base}{page}")).await.unwrap();
        hydrated(&c).await;
    }
    // Every page kept in the cache closed its stream: one page open, one stream (or none yet).
    let open = eventually(Duration::from_secs(15), "the cached pages' streams to close", || async {
        let n = live_streams(base, &admin.cookie).await;
        (n <= 1).then_some(n)
    })
    .await;
    assert!(open <= 1, "{open}");
    // Back: the restored page reloads and follows the fleet again.
    c.back().await.unwrap();
    hydrated(&c).await;
    assert!(c.current_url().await.unwrap().path().ends_with("/network"), "back to the network page");
    eventually(Duration::from_secs(15), "the restored page's stream", || async {
        (live_streams(base, &admin.cookie).await >= 1).then_some(())
    })
    .await;
    let _ = c.close().await;
}

async fn the_merged_app_log_opens_at_the_newest_line_and_jumps_back(env: Arc<Env>) {
    let (base, c) = (&env.base, &env.c);
    login_afresh(c, base, "viewer1", PASSWORD).await;
    c.goto(&format!("{base}/apps/local/shop/logs")).await.unwrap();
    hydrated(c).await;
    wait_text(c, "#merged-log", "db-line-299", 10).await;
    let (lines, first, last) = merged_view(c).await;
    assert!(lines > 100 && last && !first, "opened at the newest line: {:?}", (lines, first, last));
    assert!(!jump_shown(c).await, "at the newest line, no jump button");
    c.execute(MERGED_VIEW, vec![true.into()]).await.unwrap();
    wait_merged(c, "scrolled to the top", |(_, first, last)| first && !last).await;
    let start = Instant::now();
    while !jump_shown(c).await {
        assert!(start.elapsed() < Duration::from_secs(5), "scrolled up, no jump button");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.find(Locator::Css("#merged-latest")).await.unwrap().click().await.unwrap();
    wait_merged(c, "jumped to the latest", |(_, first, last)| last && !first).await;
    assert!(!jump_shown(c).await, "back at the newest line, the button goes");
    logout(c).await;

    let plain = env.stack.driver.session_without_script().await;
    login_without_script(&plain, base, "viewer1").await;
    plain.goto(&format!("{base}/apps/local/shop/logs")).await.unwrap();
    wait_text(&plain, "#merged-log", "db-line-299", 10).await;
    let (lines, first, last) = merged_view(&plain).await;
    assert!(lines > 100 && last && !first, "without the script too: {:?}", (lines, first, last));
    plain.close().await.unwrap();
}

/// Elements in the page.
async fn dom_nodes(c: &Client) -> u64 {
    c.execute("return document.getElementsByTagName('*').length", vec![]).await.unwrap().as_u64().unwrap()
}

/// Issue #13: a browser that loses its connection says so ("Reconnecting…"),
/// and once back catches up on what changed meanwhile without a reload (its
/// stream resumes from its last event id); churn leaves the page no bigger.
async fn a_browser_that_loses_its_connection_says_so_and_catches_up(env: Arc<Env>) {
    let c = &env.c;
    let proxy = CutProxy::start(env.stack.console.addr()).await;
    login_afresh(c, &proxy.base, "viewer1", PASSWORD).await;
    wait_text(c, "article[data-app='shop']", &env.web.name, 15).await;
    c.execute("window.__kept = 1; return 1", vec![]).await.unwrap();
    proxy.cut();
    assert!(
        shows(c, ".live-lost", "Reconnecting", Duration::from_secs(15)).await,
        "the page never said it lost the stream"
    );
    // Meanwhile a container starts in the shop app.
    let late = TestContainer::run(
        "shop-late",
        &["--label", &env.label, "--label", "com.docker.compose.project=shop"],
        "sleep 600",
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.restore();
    assert!(
        shows(c, "article[data-app='shop']", &late.name, Duration::from_secs(20)).await,
        "the page never caught up with the container started while it was cut off"
    );
    assert!(c.find(Locator::Css(".live-lost")).await.is_err(), "still says reconnecting");
    let kept = c.execute("return window.__kept === 1", vec![]).await.unwrap();
    assert_eq!(kept, serde_json::json!(true), "the page reloaded");
    // Churn: the late container restarted again and again; the page stays its size.
    let before = dom_nodes(c).await;
    for _ in 0..5 {
        docker(&["restart", "-t", "0", &late.id]);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = dom_nodes(c).await;
    assert!(after <= before + 10, "{before} elements before the churn, {after} after");
    drop(late);
    assert!(wait_gone(c, "shop-late").await, "the removed container stayed on the page");
    logout(c).await;
}

/// Issue #13: a large fleet (eight hosts reading the same eight labelled
/// containers: 64, past the 60 where healthy apps fold) shows its healthy
/// app as one card with a count and no rows, and the stream carries none of
/// them; opening the card brings its rows; a container that dies unfolds
/// its app, red, on every host, without a reload; a filter brings its
/// matches; two minutes of churn leave the page's elements and heap as they were.
async fn a_large_fleet_folds_healthy_apps_until_asked_or_broken(env: Arc<Env>) {
    let c = &env.c;
    let scope = unique("fold");
    let l = format!("dockward.e2e={scope}");
    let app = |name: &str, project: &str, extra: &[&str], script: &str| {
        let mut flags = vec!["--label", &l, "--label"];
        let project = format!("com.docker.compose.project={project}");
        flags.push(&project);
        flags.extend_from_slice(extra);
        TestContainer::run(name, &flags, script)
    };
    let web: Vec<TestContainer> = (0..7).map(|i| app(&format!("fold-web{i}"), "fold", &[], "sleep 600")).collect();
    let frail =
        app("frail", "frail", &["--restart", "on-failure:1"], "while [ ! -e /tmp/die ]; do sleep 0.2; done; exit 3");
    let sidecar = Sidecar::start(&[&format!("--scope-label={l}")]).await;
    let names: Vec<String> = (0..8).map(|i| format!("h{i}")).collect();
    let hosts: Vec<Host> = names.iter().map(|n| Host { name: n, url: &sidecar.base, secret: SECRET }).collect();
    let console = Console::start(Path::new(env!("CARGO_BIN_EXE_dockward-web")), &hosts, Some(&site_root()));
    login_afresh(c, &console.base, "viewer1", PASSWORD).await;
    wait_text(c, "#headline", "All 64 containers healthy", 20).await;
    let card = "article[data-app='fold']";
    wait_text(c, &format!("{card} button.toggle-rows"), "Show 56 containers", 10).await;
    assert!(c.find(Locator::Css(&format!("{card} li.row"))).await.is_err(), "a folded card has no rows");
    // What the page holds: no container of the folded apps at all.
    let held = "return JSON.stringify(document.documentElement.outerHTML).length";
    let small = c.execute(held, vec![]).await.unwrap().as_u64().unwrap();
    // Opening it asks the stream for its rows.
    c.find(Locator::Css(&format!("{card} button.toggle-rows"))).await.unwrap().click().await.unwrap();
    wait_text(c, &format!("{card} li[data-container='{}']", web[3].name), &web[3].name, 15).await;
    let rows = c.find_all(Locator::Css(&format!("{card} li.row"))).await.unwrap().len();
    assert_eq!(rows, 56, "seven containers on eight hosts");
    let big = c.execute(held, vec![]).await.unwrap().as_u64().unwrap();
    assert!(big > small, "{small} bytes of page folded, {big} open");
    // The frail one dies on every host (one engine): its app, folded until
    // now, turns red with its rows, without a reload.
    c.execute("window.__kept = 1; return 1", vec![]).await.unwrap();
    docker(&["exec", &frail.id, "touch", "/tmp/die"]);
    wait_text(c, "#headline", "8 need attention", 40).await;
    let frail_card = c.find(Locator::Css("article[data-app='frail']")).await.unwrap();
    assert!(frail_card.attr("class").await.unwrap().unwrap().contains("badge-red"));
    let frail_rows = c.find_all(Locator::Css("article[data-app='frail'] li.row")).await.unwrap().len();
    assert_eq!(frail_rows, 8, "the broken app's rows, one per host");
    let kept = c.execute("return window.__kept === 1", vec![]).await.unwrap();
    assert_eq!(kept, serde_json::json!(true), "the page reloaded");
    // Closed again, a filter brings just its matches.
    c.find(Locator::Css(&format!("{card} button.toggle-rows"))).await.unwrap().click().await.unwrap();
    for _ in 0..50 {
        if c.find(Locator::Css(&format!("{card} li.row"))).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(c.find(Locator::Css(&format!("{card} li.row"))).await.is_err(), "closed: no rows");
    c.find(Locator::Css("#filter")).await.unwrap().send_keys(&web[5].name).await.unwrap();
    wait_text(c, card, &web[5].name, 15).await;
    let matched = c.find_all(Locator::Css(&format!("{card} li.row"))).await.unwrap().len();
    assert_eq!(matched, 8, "the match on every host");
    // Minutes of churn with the app open (a container of it restarted every
    // 2 s, 8 rows each time): the page's elements and script heap stay put.
    c.goto(&console.base).await.unwrap();
    hydrated(c).await;
    open_card(c, card, 15).await;
    wait_text(c, &format!("{card} li[data-container='{}']", web[1].name), &web[1].name, 15).await;
    let heap = "return (performance.memory && performance.memory.usedJSHeapSize) || 0";
    let sample = || async { (dom_nodes(c).await, c.execute(heap, vec![]).await.unwrap().as_u64().unwrap_or(0)) };
    let churn = |secs: u64| {
        let ids: Vec<String> = web.iter().map(|w| w.id.clone()).collect();
        async move {
            let until = Instant::now() + Duration::from_secs(secs);
            let mut i = 0;
            while Instant::now() < until {
                docker(&["restart", "-t", "0", &ids[i % ids.len()]]);
                i += 1;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            i
        }
    };
    churn(20).await;
    let (dom_warm, heap_warm) = sample().await;
    let restarts = churn(120).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (dom_end, heap_end) = sample().await;
    eprintln!("churn: {restarts} restarts; elements {dom_warm} → {dom_end}; heap {heap_warm} → {heap_end} bytes");
    assert!(dom_end <= dom_warm + 10, "{dom_warm} elements after 20 s of churn, {dom_end} two minutes later");
    assert!(heap_warm > 0, "Chromium reports no heap size");
    assert!(heap_end <= heap_warm * 2 + (4 << 20), "heap {heap_warm} bytes after 20 s of churn, {heap_end} later");
    logout(c).await;
    drop((web, frail, console, sidecar));
}

/// Waits up to 15 s for the shop card to no longer mention `what`.
async fn wait_gone(c: &Client, what: &str) -> bool {
    for _ in 0..75 {
        if !shows(c, "article[data-app='shop']", what, Duration::from_millis(1)).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// An update in the registry shows as a count under the headline and a
/// badge on its card; an operator updates the container from its page,
/// following the steps, and it runs the new image under its name.
async fn operators_update_a_container_from_its_page(env: Arc<Env>) {
    const LOOP: &str = "trap 'exit 0' TERM; while true; do sleep 1; done";
    let c = &env.c;
    let registry = Registry::start();
    let repo = format!("127.0.0.1:{}/dockward/upd", registry.port);
    let tag = format!("{repo}:1.2.0");
    commit_image(&tag, "echo 1 > /version", &[]);
    docker(&["push", &tag]);
    let l = format!("dockward.e2e={}", unique("upd"));
    let web = TestContainer::run_image_with(
        "upd-web",
        &tag,
        &["--label", &l, "--label", "com.docker.compose.project=upd", "--label", "com.docker.compose.service=web"],
        LOOP,
    );
    commit_image(&tag, "echo 2 > /version", &[]);
    docker(&["push", &tag]);
    // Newer versions beside it: one in its major, one beyond.
    for newer in ["1.3.0", "2.0.0", "latest"] {
        let t = format!("{repo}:{newer}");
        docker(&["tag", &tag, &t]);
        docker(&["push", &t]);
        docker(&["rmi", &t]);
    }
    docker(&["rmi", &tag]);
    // Unscoped: a scoped sidecar refuses pulls (an image is the whole host's).
    let sidecar = Sidecar::start(&[&registry.allow_flag()]).await;
    let site = site_root();
    let registries = format!("127.0.0.1:{}", registry.port);
    let console = Console::start_with(
        Path::new(env!("CARGO_BIN_EXE_dockward-web")),
        &[Host { name: "local", url: &sidecar.base, secret: SECRET }],
        Options { site_root: Some(&site), env: &[("DOCKWARD_TAG_REGISTRIES", &registries)], ..Options::default() },
    );
    login_afresh(c, &console.base, "operator1", PASSWORD).await;
    wait_text(c, "#updates-count", "1 container has an update available", 30).await;
    let card = "article[data-app='upd']";
    wait_text(c, &format!("{card} header .badge.update"), "update available", 10).await;
    assert!(c.find(Locator::Css(&format!("{card} a.update-app"))).await.is_ok(), "no Update app");
    screenshot(c, "update-available").await;

    c.goto(&format!("{}/c/local/{}", console.base, web.id)).await.unwrap();
    hydrated(c).await;
    wait_text(c, "h1 .badge.update", "update available", 20).await;
    // "Update…" asks first, on a page of its own, which shows the newer versions.
    c.find(Locator::Css(".action.recreate a.update")).await.unwrap().click().await.unwrap();
    wait_text(c, "p.versions", "Newer versions: 1.3.0 (this major), 2.0.0 (newest)", 20).await;
    screenshot(c, "update-confirm").await;
    c.find(Locator::Css("button.confirm")).await.unwrap().click().await.unwrap();
    // Then the job's page follows it to the end.
    let done = wait_text(c, ".job .outcome", "Done:", 90).await;
    assert!(done.contains("healthy") || done.contains("running"), "{done}");
    assert_eq!(docker(&["exec", &web.name, "cat", "/version"]), "2", "the new image runs under the name");
    assert_ne!(docker(&["inspect", "-f", "{{.Id}}", &web.name]), web.id);
    // The console's update check now says so (what the badges and the count show).
    let cookie = c.get_named_cookie("dockward_session").await.unwrap();
    let answer = reqwest::Client::new()
        .post(format!("{}/api/fn/updates", console.base))
        .header("cookie", format!("dockward_session={}", cookie.value()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(answer.contains("\"update\":[]"), "{answer}");
    c.goto(&console.base).await.unwrap();
    hydrated(c).await;
    logout(c).await;
    let _ = std::process::Command::new("docker").args(["rmi", &tag]).output();
}

/// History: from a container's page to its history, drawn on the server; the
/// range picker changes the chart; the export is a file of the range.
async fn the_history_page_changes_range_and_exports(env: Arc<Env>) {
    let (base, c) = (&env.base, &env.c);
    login_afresh(c, base, "viewer1", PASSWORD).await;
    c.goto(&format!("{base}/c/local/{}", env.web.id)).await.unwrap();
    hydrated(c).await;
    c.find(Locator::Css("button.tab:nth-child(3)")).await.unwrap().click().await.unwrap();
    c.find(Locator::Css("a.history-link")).await.unwrap().click().await.unwrap();
    wait_text(c, "nav.ranges a[aria-current='true']", "24h", 20).await;
    assert!(c.current_url().await.unwrap().as_str().contains("container="), "the container's history");
    // The console reads stats every 10 s for history: the chart fills within a few buckets.
    let start = Instant::now();
    loop {
        let points = c
            .find(Locator::Css("figure[data-chart='memory']"))
            .await
            .unwrap()
            .attr("data-points")
            .await
            .unwrap()
            .unwrap_or_default();
        if points.parse::<u32>().unwrap_or(0) > 0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no history points after a minute");
        tokio::time::sleep(Duration::from_secs(2)).await;
        c.refresh().await.unwrap();
    }
    let day_axis = text(c, "figure[data-chart='cpu'] .axis").await;
    screenshot(c, "history-24h").await;
    c.find(Locator::Css("nav.ranges a[href*='range=1h']")).await.unwrap().click().await.unwrap();
    wait_text(c, "nav.ranges a[aria-current='true']", "1h", 20).await;
    let hour_axis = text(c, "figure[data-chart='cpu'] .axis").await;
    assert_ne!(day_axis, hour_axis, "the range picker changed the chart's span");
    // Hover readout: every bucket is titled with its time and figures.
    let title = c
        .find(Locator::Css("figure[data-chart='memory'] .hover rect title"))
        .await
        .unwrap()
        .prop("textContent")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(title.contains("Z: ") && title.contains("B"), "{title}");
    screenshot(c, "history-1h").await;
    // The export: a file of this range, as the link says.
    let href =
        c.find(Locator::Css("p.export a[href*='format=csv']")).await.unwrap().attr("href").await.unwrap().unwrap();
    assert!(href.contains("range=1h"), "{href}");
    let cookie = c.get_named_cookie("dockward_session").await.unwrap();
    let r = reqwest::Client::new()
        .get(format!("{base}{}", href.replace("&amp;", "&")))
        .header("cookie", format!("dockward_session={}", cookie.value()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let disposition = r.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"history-local-") && disposition.ends_with("-1h.csv\""),
        "{disposition}"
    );
    let csv = r.text().await.unwrap();
    assert!(csv.starts_with("time,cpu_min_percent") && csv.lines().count() >= 2, "{csv}");
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
        // Filters the records of the operator's restart and refusal.
        scenario(
            "the_audit_filters_are_choices_and_work_without_the_script",
            the_audit_filters_are_choices_and_work_without_the_script,
        )
        .after(&["operators_restart_but_not_protected_containers"]),
        scenario("pages_link_an_icon_and_the_browser_logs_no_error", pages_link_an_icon_and_the_browser_logs_no_error),
        scenario(
            "the_merged_app_log_opens_at_the_newest_line_and_jumps_back",
            the_merged_app_log_opens_at_the_newest_line_and_jumps_back,
        ),
        scenario(
            "pages_in_the_back_forward_cache_hold_no_live_stream",
            pages_in_the_back_forward_cache_hold_no_live_stream,
        ),
        scenario(
            "a_large_fleet_folds_healthy_apps_until_asked_or_broken",
            a_large_fleet_folds_healthy_apps_until_asked_or_broken,
        ),
        scenario(
            "a_browser_that_loses_its_connection_says_so_and_catches_up",
            a_browser_that_loses_its_connection_says_so_and_catches_up,
        ),
        scenario("operators_update_a_container_from_its_page", operators_update_a_container_from_its_page),
        scenario("the_history_page_changes_range_and_exports", the_history_page_changes_range_and_exports),
    ];
    testkit::scenarios::run(start, scenarios, teardown)
}
