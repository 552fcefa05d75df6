//! Single sign-on with a real OpenID provider (npm's certified
//! `oidc-provider`, `testkit::oidc`), through headless Chromium: the
//! authorization code flow with PKCE, groups mapped to roles (on the fleet,
//! or an app), a user without a mapped group refused and not made, a
//! missing user name claim refused, sign-out, local users beside it, and
//! passwords turned off. The ID token checks (tampered, wrong issuer or
//! audience, expired, wrong nonce, unknown key, bad algorithm) are unit
//! tests of `frontend/src/server/oidc/token.rs`, with tokens signed there.

use std::path::Path;
use std::time::Duration;

use fantoccini::{Client, Locator};
use testkit::browser::{self, Driver};
use testkit::console::client::http;
use testkit::console::{Console, Host, Options, PASSWORD};
use testkit::free_port;
use testkit::oidc::{Provider, CLIENT_ID, CLIENT_SECRET};

fn web_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_dockward-web"))
}

/// Signs in at the provider as `who` (its development form takes any
/// password), allows the console when asked, and returns where the browser
/// lands back at the console.
async fn through_provider(c: &Client, base: &str, who: &str) -> String {
    c.goto(&format!("{base}/login")).await.unwrap();
    c.find(Locator::Css("#sso-login")).await.unwrap().click().await.unwrap();
    let login = c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("input[name=login]")).await;
    login.expect("the provider's login form").send_keys(who).await.unwrap();
    c.find(Locator::Css("input[name=password]")).await.unwrap().send_keys("anything").await.unwrap();
    c.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let at = c.current_url().await.unwrap().to_string();
        if at.starts_with(base) && !at.contains("/auth/oidc/start") {
            return at;
        }
        if std::time::Instant::now() > deadline {
            browser::screenshot(c, "oidc-failure").await;
            panic!("not back at the console: at {at}\n{}", c.source().await.unwrap_or_default());
        }
        // Still on the login form (navigating): wait; on the consent page: allow.
        if c.find(Locator::Css("input[name=login]")).await.is_ok() {
            continue;
        }
        if let Ok(b) = c.find(Locator::Css("button[type=submit]")).await {
            let _ = b.click().await;
        }
    }
}

fn users_file(console: &Console) -> String {
    std::fs::read_to_string(console.dir.path().join("users.json")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_sign_on_maps_groups_to_roles_and_refuses_the_rest() {
    let (port, idp_port) = (free_port(), free_port());
    let base = format!("http://127.0.0.1:{port}");
    let provider = Provider::start(idp_port, &format!("{base}/auth/oidc/callback"));
    // The browser assets scripts/build-web.sh made, beside this test's binary.
    let site = std::env::var_os("DOCKWARD_SITE_ROOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::current_exe().unwrap().ancestors().nth(3).unwrap().join("site"));
    let env = [
        ("DOCKWARD_OIDC_ISSUER", provider.issuer.as_str()),
        ("DOCKWARD_OIDC_CLIENT_ID", CLIENT_ID),
        ("DOCKWARD_OIDC_CLIENT_SECRET", CLIENT_SECRET),
        ("DOCKWARD_PUBLIC_URL", base.as_str()),
        ("DOCKWARD_OIDC_GROUP_ROLES", "dockward-admins=admin,shop-team=operator@app:shop"),
        ("DOCKWARD_OIDC_LABEL", "the test provider"),
    ];
    let secret = "x".repeat(32);
    let console = Console::start_with(
        web_bin(),
        &[Host { name: "nowhere", url: "http://127.0.0.1:9", secret: &secret }],
        Options { site_root: Some(&site), env: &env, port: Some(port), ..Options::default() },
    );
    let driver = Driver::start();

    // alice: in dockward-admins → admin of the fleet, made at her first sign-in.
    let c = driver.session().await;
    let landed = through_provider(&c, &base, "alice").await;
    if c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("#headline")).await.is_err() {
        browser::screenshot(&c, "oidc-failure").await;
        panic!(
            "no overview after signing in as alice (at {landed}): {}\n{}",
            c.source().await.unwrap_or_default(),
            console.log()
        );
    }
    let role = browser::text(&c, "header .role").await;
    assert_eq!(role, "admin", "alice's groups made her an admin");
    let users = users_file(&console);
    assert!(
        users.contains("\"alice\"") && users.contains("\"oidc\""),
        "alice is a user now, bound to the provider: {users}"
    );
    let parsed: serde_json::Value = serde_json::from_str(&users).unwrap();
    assert!(parsed["users"]["alice"]["hash"].as_str().unwrap().starts_with("oidc:"), "with no password: {users}");
    // Sign-out ends the session: back at the login page, and / sends there.
    c.find(Locator::Css("form[action='/auth/logout'] button")).await.unwrap().click().await.unwrap();
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#sso-login"))
        .await
        .expect("back at the login page");
    c.goto(&format!("{base}/")).await.unwrap();
    assert!(c.current_url().await.unwrap().path().starts_with("/login"), "signed out");
    c.close().await.unwrap();

    // carol: shop-team → operator on app shop only.
    let c = driver.session().await;
    through_provider(&c, &base, "carol").await;
    c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("#headline")).await.expect("carol's overview");
    assert_eq!(browser::text(&c, "header .role").await, "operator on app:shop");
    c.close().await.unwrap();

    // bob: no group of his maps to a role → refused, said why, nothing made.
    for (who, why) in [("bob", "give you no role"), ("nameless", "no \"preferred_username\" claim")] {
        let c = driver.session().await;
        through_provider(&c, &base, who).await;
        let refusal = c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("#sign-in-refused")).await;
        let text = refusal.unwrap_or_else(|_| panic!("{who}: no refusal page")).text().await.unwrap();
        assert!(text.contains(why), "{who}: {text}");
        c.goto(&format!("{base}/")).await.unwrap();
        assert!(c.current_url().await.unwrap().path().starts_with("/login"), "{who} has no session");
        c.close().await.unwrap();
    }
    let users = users_file(&console);
    assert!(!users.contains("\"bob\"") && !users.contains("nameless"), "nobody was made: {users}");

    // Local users sign in beside it, on the same page.
    let c = driver.session().await;
    browser::login(&c, &base, "admin1", PASSWORD).await;
    c.close().await.unwrap();

    // A callback this browser did not start is refused, with a reason.
    let r = http().get(format!("{base}/auth/oidc/callback?code=abc&state=forged")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.text().await.unwrap().contains("not the one this browser started"));

    let log = std::fs::read_to_string(console.dir.path().join("hosts").join("audit.jsonl")).unwrap();
    assert!(log.contains("signed in with the identity provider"), "{log}");
    assert!(log.contains("give you no role"), "refusals are audited: {log}");
    drop(provider);
}

#[tokio::test]
async fn passwords_can_be_turned_off_and_a_console_without_a_provider_refuses_that() {
    let (port, idp_port) = (free_port(), free_port());
    let base = format!("http://127.0.0.1:{port}");
    // The provider is not even running: discovery is lazy, the console starts.
    let issuer = format!("http://localhost:{idp_port}");
    let env = [
        ("DOCKWARD_OIDC_ISSUER", issuer.as_str()),
        ("DOCKWARD_OIDC_CLIENT_SECRET", CLIENT_SECRET),
        ("DOCKWARD_PUBLIC_URL", base.as_str()),
        ("DOCKWARD_OIDC_GROUP_ROLES", "dockward-admins=admin"),
        ("DOCKWARD_LOCAL_LOGIN", "false"),
    ];
    let secret = "x".repeat(32);
    let console = Console::start_with(
        web_bin(),
        &[Host { name: "nowhere", url: "http://127.0.0.1:9", secret: &secret }],
        Options { env: &env, port: Some(port), ..Options::default() },
    );
    let r = http()
        .post(format!("{}/auth/login", console.base))
        .form(&[("username", "admin1"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/login?error=off", "passwords are off");
    assert!(r.headers().get("set-cookie").is_none(), "no session");
    let page = http().get(format!("{}/login", console.base)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("id=\"sso-login\"") && !page.contains("name=\"password\""), "{page}");
    // The provider is down: starting a sign-in says so, readably.
    let r = http().get(format!("{}/auth/oidc/start", console.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.text().await.unwrap().contains("cannot be reached"));

    // Passwords off with no provider: a clear start error, and a non-zero exit.
    let out = std::process::Command::new(web_bin())
        .env("DOCKWARD_LOCAL_LOGIN", "false")
        .env("DOCKWARD_USERS_FILE", console.dir.path().join("users.json"))
        .env("DOCKWARD_HOSTS", "h=http://127.0.0.1:9")
        .env("DOCKWARD_WEB_LISTEN", format!("127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs an identity provider"), "{out:?}");
    // A bad group mapping too.
    let out = std::process::Command::new(web_bin())
        .env("DOCKWARD_OIDC_ISSUER", &issuer)
        .env("DOCKWARD_OIDC_CLIENT_SECRET", CLIENT_SECRET)
        .env("DOCKWARD_PUBLIC_URL", &base)
        .env("DOCKWARD_OIDC_GROUP_ROLES", "admins=king")
        .env("DOCKWARD_USERS_FILE", console.dir.path().join("users.json"))
        .env("DOCKWARD_HOSTS", "h=http://127.0.0.1:9")
        .env("DOCKWARD_WEB_LISTEN", format!("127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DOCKWARD_OIDC_GROUP_ROLES"), "{out:?}");
}
