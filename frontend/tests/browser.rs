//! End to end in headless Chromium: a real sidecar in front of the real
//! dockerd, the real console, driven over WebDriver (chromedriver).
//!
//! Needs Debian's `chromium` and `chromium-driver`, Docker, and the browser
//! assets built by `scripts/build-web.sh`; fails loudly without them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use testkit::browser::*;
use testkit::*;

const PASSWORD: &str = "correct horse battery staple";

/// Built binaries sit two levels above this test executable (target/<profile>/).
fn sibling_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let p = dir.join(name);
    assert!(p.exists(), "{} is missing: build it first (cargo build -p dockward-sidecar)", p.display());
    p
}

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

fn add_user(users: &Path, name: &str, role: &str) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_dockward-web"))
        .args(["user", "add", name, "--role", role, "--users-file"])
        .arg(users)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    assert!(child.wait().unwrap().success(), "user add {name}");
}

struct Stack {
    web: String,
    _procs: Vec<Proc>,
    _dir: tempfile::TempDir,
    driver: Driver,
}

fn start_stack(scope: &str) -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let secret = "e2e-secret-0123456789abcdef0123456789abcdef";
    std::fs::write(secrets.join("local"), format!("{secret}\n")).unwrap();

    let sc_port = free_port();
    let sidecar = Command::new(sibling_bin("dockward-sidecar"))
        .env("DOCKWARD_SECRET_FILE", secrets.join("local"))
        .env("DOCKWARD_LISTEN", format!("127.0.0.1:{sc_port}"))
        .env("DOCKWARD_AUDIT_LOG", dir.path().join("audit.jsonl"))
        .env("DOCKWARD_SCOPE_LABEL", format!("dockward.e2e={scope}"))
        .env("DOCKWARD_STATS_TTL", "1s")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("sidecar.log")).unwrap())
        .spawn()
        .unwrap();
    let sidecar = Proc(sidecar);
    wait_port(sc_port, "sidecar");

    let users = dir.path().join("users.json");
    add_user(&users, "admin1", "admin");
    add_user(&users, "operator1", "operator");
    add_user(&users, "viewer1", "viewer");
    let web_port = free_port();
    let web = Command::new(env!("CARGO_BIN_EXE_dockward-web"))
        .env("DOCKWARD_WEB_LISTEN", format!("127.0.0.1:{web_port}"))
        .env("DOCKWARD_HOSTS", format!("local=http://127.0.0.1:{sc_port}"))
        .env("DOCKWARD_HOST_SECRETS_DIR", &secrets)
        .env("DOCKWARD_USERS_FILE", &users)
        .env("DOCKWARD_SITE_ROOT", site_root())
        .env("DOCKWARD_POLL_INTERVAL", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("web.log")).unwrap())
        .spawn()
        .unwrap();
    let web = Proc(web);
    wait_port(web_port, "dockward-web");

    Stack {
        web: format!("http://127.0.0.1:{web_port}"),
        _procs: vec![web, sidecar],
        _dir: dir,
        driver: Driver::start(),
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    require_docker();
    let scope = unique("e2e");
    let l = format!("dockward.e2e={scope}");
    let web = TestContainer::run(
        "shop-web",
        &["--label", &l, "--label", "com.docker.compose.project=shop", "--label", "com.docker.compose.service=web"],
        "echo hello-from-web; echo oops-stderr >&2; while [ ! -f /tmp/go ]; do sleep 0.2; done; echo late-line; sleep 600",
    );
    let db = TestContainer::run(
        "shop-db",
        &["--label", &l, "--label", "com.docker.compose.project=shop", "--label", "dockward.protect=true"],
        "sleep 600",
    );
    let xss = "<script>window.__xss=1</script><img src=x onerror=window.__xss=2>";
    let evil_project = format!("com.docker.compose.project=evil{xss}");
    let evil_label = format!("note={xss}");
    let evil = TestContainer::run(
        "evil",
        &["--label", &l, "--label", &evil_project, "--label", &evil_label],
        &format!("echo '{xss}'; sleep 600"),
    );
    let victim =
        TestContainer::run("victim", &["--label", &l, "--label", "com.docker.compose.project=batch"], "sleep 600");

    let stack = start_stack(&scope);
    let base = stack.web.clone();
    let c = stack.driver.session().await;

    // Unauthenticated: pages redirect to the login form, APIs answer 401,
    // and pages carry a strict CSP with a per-response nonce.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (303, "/login"));
    assert_eq!(http.get(format!("{base}/api/live")).send().await.unwrap().status(), 401);
    let r = http
        .post(format!("{base}/api/fn/restart"))
        .form(&[("host", "local"), ("id", web.id.as_str()), ("csrf", "x")])
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
    c.goto(&base).await.unwrap();
    c.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("form.login-form")).await.expect("login page");

    // 1. Log in; the overview shows the app cards with the right badges.
    login(&c, &base, "admin1", PASSWORD).await;
    wait_text(&c, "#headline", "All 4 containers healthy", 15).await;
    let shop = c.find(Locator::Css("article[data-app='shop']")).await.expect("a card for the shop project");
    assert!(shop.attr("class").await.unwrap().unwrap().contains("badge-green"));
    let shop_text = shop.text().await.unwrap();
    assert!(shop_text.contains(&web.name) && shop_text.contains(&db.name), "{shop_text}");
    assert!(c.find(Locator::Css("article[data-app='batch']")).await.is_ok());

    // Attacker-controlled strings render as text, never as markup.
    let page = c.source().await.unwrap();
    assert!(!page.contains("<script>window.__xss"), "raw script tag in the page");
    assert!(text(&c, ".cards").await.contains("<script>window.__xss=1</script>"), "the project name shows literally");
    screenshot(&c, "overview").await;

    // 2. Container detail: labels literal, env and tabs present.
    c.goto(&format!("{base}/c/local/{}", evil.id)).await.unwrap();
    hydrated(&c).await;
    c.find(Locator::Css("button.tab:nth-child(5)")).await.unwrap().click().await.unwrap();
    let labels = text(&c, "table.labels").await;
    assert!(labels.contains(xss), "label shown literally: {labels}");
    c.goto(&format!("{base}/c/local/{}", web.id)).await.unwrap();
    hydrated(&c).await;
    assert!(text(&c, ".detail-title").await.contains(&web.name));
    screenshot(&c, "detail").await;

    // 3. Logs: what the container printed, on the right stream; follow gets later lines.
    c.goto(&format!("{base}/logs/local/{}", evil.id)).await.unwrap();
    hydrated(&c).await;
    assert!(text(&c, "#log").await.contains(xss), "the log line shows literally");
    c.goto(&format!("{base}/logs/local/{}", web.id)).await.unwrap();
    hydrated(&c).await;
    assert!(text(&c, "#log .stdout").await.contains("hello-from-web"));
    assert!(text(&c, "#log .stderr").await.contains("oops-stderr"));
    c.find(Locator::Css("#log-follow")).await.unwrap().click().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    docker(&["exec", &web.id, "touch", "/tmp/go"]);
    wait_text(&c, "#log", "late-line", 15).await;
    c.find(Locator::Css("#log-search")).await.unwrap().send_keys("late").await.unwrap();
    wait_text(&c, "#log mark", "late", 5).await;
    screenshot(&c, "logs").await;
    let executed = c.execute("return window.__xss === undefined", vec![]).await.unwrap();
    assert_eq!(executed, serde_json::json!(true), "an injected script ran");
    logout(&c).await;

    // 4. A viewer sees no restart button, and a crafted POST is refused.
    login(&c, &base, "viewer1", PASSWORD).await;
    assert!(c.find_all(Locator::Css("button.restart")).await.unwrap().is_empty(), "viewers get no restart button");
    let (cookie, csrf) = session_and_csrf(&c).await;
    let before = web.started_at();
    let (status, body) = crafted_restart(&base, &cookie, &csrf, &web.id).await;
    assert_ne!(status, 200, "{body}");
    assert!(body.contains("operator"), "{body}");
    assert_eq!(web.started_at(), before, "the viewer's crafted POST restarted it");
    logout(&c).await;

    // 5. An operator restarts: StartedAt changes; the protected one has no button and is refused anyway.
    login(&c, &base, "operator1", PASSWORD).await;
    restart_from_overview(&c, &web.name).await;
    assert_ne!(web.started_at(), before, "StartedAt must change");
    let db_row = format!("li[data-container='{}']", db.name);
    assert!(c.find(Locator::Css(&format!("{db_row} .lock"))).await.is_ok(), "protected rows show a lock");
    assert!(c.find_all(Locator::Css(&format!("{db_row} button.restart"))).await.unwrap().is_empty());
    let (cookie, csrf) = session_and_csrf(&c).await;
    let db_before = db.started_at();
    let (status, body) = crafted_restart(&base, &cookie, &csrf, &db.id).await;
    assert_ne!(status, 200, "{body}");
    assert!(body.contains("protected"), "{body}");
    assert_eq!(db.started_at(), db_before);
    // A stale CSRF token is refused too.
    let (status, _) = crafted_restart(&base, &cookie, "not-the-token", &web.id).await;
    assert_ne!(status, 200);

    // 6. A container killed now turns red without a reload.
    docker(&["kill", &victim.id]);
    let killed_at = Instant::now();
    wait_text(&c, "#headline", "1 needs attention", 10).await;
    let batch = c.find(Locator::Css("article[data-app='batch']")).await.unwrap();
    assert!(batch.attr("class").await.unwrap().unwrap().contains("badge-red"));
    eprintln!("killed container shown red after {:?}", killed_at.elapsed());
    logout(&c).await;

    // 7. The audit page names the operator who restarted.
    login(&c, &base, "admin1", PASSWORD).await;
    c.goto(&format!("{base}/audit")).await.unwrap();
    hydrated(&c).await;
    let audit = wait_text(&c, "#audit", "operator1", 10).await;
    assert!(audit.contains("restart"), "{audit}");
    assert!(text(&c, "#verify").await.contains("chain intact"));
    screenshot(&c, "audit").await;
    c.close().await.unwrap();
}
