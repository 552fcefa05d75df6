//! Headless Chromium over WebDriver (Debian's `chromium` and `chromium-driver`),
//! and the few page helpers the console's browser tests share. Fails loudly
//! when the browser is missing; nothing here skips.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::{wait_port, Proc};

/// A running chromedriver; `session()` opens a headless Chromium.
pub struct Driver {
    pub port: u16,
    _proc: Proc,
}

impl Driver {
    pub fn start() -> Self {
        let chromedriver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("chromedriver is not installed (apt-get install chromium chromium-driver)");
        assert!(Path::new("/usr/bin/chromium").exists(), "chromium is not installed (apt-get install chromium)");
        let port = crate::free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let proc = Proc(child);
        wait_port(port, "chromedriver");
        Self { port, _proc: proc }
    }

    /// A new browser session (closed networking, as the sandbox requires).
    ///
    /// The back/forward cache is off: Chromium keeps pages it caches alive
    /// with their open streams (the console's live EventSource), allows six
    /// connections per host, and a test session navigates by URL far more
    /// often than a person does, so cached pages would starve later streams.
    pub async fn session(&self) -> Client {
        self.session_with(&["--disable-features=BackForwardCache"]).await
    }

    /// A session with the back/forward cache on, as people browse: for the
    /// test that the console's cached pages hold no stream open.
    pub async fn session_with_back_forward_cache(&self) -> Client {
        self.session_with(&[]).await
    }

    /// A session whose pages run no script of their own (WebDriver's still
    /// work): what a page offers without its wasm.
    pub async fn session_without_script(&self) -> Client {
        self.session_with(&["--blink-settings=scriptEnabled=false", "--disable-features=BackForwardCache"]).await
    }

    async fn session_with(&self, extra_args: &[&str]) -> Client {
        let mut args = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1400,1000",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ];
        args.extend_from_slice(extra_args);
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), serde_json::json!({ "binary": "/usr/bin/chromium", "args": args }));
        // The console's messages (errors, failed requests) for `browser_log`.
        caps.insert("goog:loggingPrefs".into(), serde_json::json!({ "browser": "ALL" }));
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("chromedriver session")
    }
}

/// chromedriver's log endpoint (outside the W3C protocol, as Selenium uses it).
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}

/// What the browser's console logged since the last call (errors, failed
/// requests such as a 404, script messages), as `(level, message)`.
pub async fn browser_log(c: &Client) -> Vec<(String, String)> {
    let log = c.issue_cmd(BrowserLog).await.expect("chromedriver's browser log");
    log.as_array()
        .unwrap_or_else(|| panic!("the browser log is not a list: {log}"))
        .iter()
        .map(|e| (e["level"].as_str().unwrap_or("").to_owned(), e["message"].as_str().unwrap_or("").to_owned()))
        .collect()
}

pub async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.unwrap()
}

/// Polls the page (no reload) until `css` has `want` in its text.
pub async fn wait_text(c: &Client, css: &str, want: &str, secs: u64) -> String {
    let start = Instant::now();
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if let Ok(t) = e.text().await {
                if t.contains(want) {
                    return t;
                }
            }
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let got = match c.find(Locator::Css(css)).await.ok() {
                Some(e) => e.text().await.unwrap_or_default(),
                None => "(missing)".into(),
            };
            panic!("{css} never showed {want:?} within {secs}s; it shows {got:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Opens an app card's rows if the card starts collapsed (a healthy app of
/// a fleet of more than `COLLAPSE_ABOVE` containers: on a shared engine the
/// count is not the test's to choose). Waits up to `secs` for the card.
pub async fn open_card(c: &Client, card: &str, secs: u64) {
    let start = Instant::now();
    let toggle = format!("{card} button.toggle-rows[aria-expanded='false']");
    loop {
        if let Ok(b) = c.find(Locator::Css(&toggle)).await {
            // A click before hydration does nothing; the loop tries again.
            let _ = b.click().await;
        } else if c.find(Locator::Css(card)).await.is_ok() {
            return;
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let got = match c.find(Locator::Css(card)).await.ok() {
                Some(e) => e.html(false).await.unwrap_or_default(),
                None => "(missing)".into(),
            };
            panic!("{card} could not be opened within {secs}s: {got}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for the page's wasm to take over (the app marks `<body data-hydrated>`).
pub async fn hydrated(c: &Client) {
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("body[data-hydrated]"))
        .await
        .expect("page hydrates");
}

/// Logs in through the form and waits for the hydrated overview.
pub async fn login(c: &Client, base: &str, user: &str, password: &str) {
    c.goto(&format!("{base}/login")).await.unwrap();
    c.find(Locator::Css("input[name=username]")).await.unwrap().send_keys(user).await.unwrap();
    c.find(Locator::Css("input[name=password]")).await.unwrap().send_keys(password).await.unwrap();
    c.find(Locator::Css("#login")).await.unwrap().click().await.unwrap();
    if c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("#headline")).await.is_err() {
        let url = c.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        let src = c.source().await.unwrap_or_default();
        screenshot(c, "failure").await;
        panic!("no overview after logging in as {user}: at {url}\n{}", &src[..src.len().min(3000)]);
    }
    hydrated(c).await;
}

pub async fn logout(c: &Client) {
    c.find(Locator::Css("form[action='/auth/logout'] button")).await.unwrap().click().await.unwrap();
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("form.login-form"))
        .await
        .expect("back at login");
}

/// Saves a PNG under docs/screenshots/ (the README shows some of them).
pub async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// Restarts a container from its row on the overview: open the row, click
/// restart, confirm, and wait for the outcome.
pub async fn restart_from_overview(c: &Client, container_name: &str) {
    let row = format!("li[data-container='{container_name}']");
    c.find(Locator::Css(&format!("{row} summary .badge"))).await.unwrap().click().await.unwrap();
    let Ok(button) = c.find(Locator::Css(&format!("{row} button.restart"))).await else {
        let html = c.find(Locator::Css(&row)).await.unwrap().html(false).await.unwrap();
        panic!("no restart button in {html}");
    };
    button.click().await.unwrap();
    c.find(Locator::Css(&format!("{row} button.confirm-restart"))).await.unwrap().click().await.unwrap();
    wait_text(c, &format!("{row} .outcome"), "Restarted", 30).await;
}

/// Logs in from a clean slate: a session an earlier scenario left behind
/// (say, one that failed before logging out) is logged out first, so the
/// server ends it and its pages' live streams, then forgotten.
pub async fn login_afresh(c: &Client, base: &str, user: &str, password: &str) {
    c.goto(base).await.unwrap();
    if c.find(Locator::Css("form[action='/auth/logout'] button")).await.is_ok() {
        logout(c).await;
    }
    c.delete_all_cookies().await.unwrap();
    login(c, base, user, password).await;
}
