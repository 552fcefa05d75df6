//! Sessions, login back-off, the first admin's forced password change and
//! forward auth, end to end against real console processes (no sidecar is
//! needed: the host they read is not there).
//!
//! Two consoles: `main` with test users, behind "a proxy" (127.0.0.1 is
//! trusted for `X-Forwarded-For` and forward auth, with a shared secret), so
//! each scenario logs in from its own client address; `first` is a first
//! run over "HTTPS" (secure cookies) with no users.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use testkit::console::client::http;
use testkit::console::{add_user, Console, Host, Options, PASSWORD};
use testkit::scenarios::{scenario, Scenario};
use testkit::{eventually, free_port};

const PROXY_SECRET: &str = "the-proxy-secret-0123456789abcdef0123456789";
const HOST_SECRET: &str = "a-host-secret-0123456789abcdef0123456789abcd";

struct Env {
    main: Console,
    first: Console,
}

fn web_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_dockward-web"))
}

async fn start() -> Env {
    let gone = format!("http://127.0.0.1:{}", free_port());
    let hosts = [Host { name: "local", url: &gone, secret: HOST_SECRET }];
    let main = Console::start_with(
        web_bin(),
        &hosts,
        Options {
            env: &[
                ("DOCKWARD_FORWARDED_FOR_PROXIES", "127.0.0.1/32"),
                ("DOCKWARD_TRUSTED_PROXIES", "127.0.0.1/32"),
                ("DOCKWARD_AUTH_GROUP_ROLES", "admins=admin,staff=viewer"),
                ("DOCKWARD_FORWARD_AUTH_SECRET", PROXY_SECRET),
                ("DOCKWARD_USER_REQUESTS_PER_SECOND", "5"),
            ],
            ..Options::default()
        },
    );
    let first = Console::start_with(
        web_bin(),
        &hosts,
        Options { env: &[("DOCKWARD_SECURE_COOKIES", "true")], first_run: true, ..Options::default() },
    );
    Env { main, first }
}

async fn teardown(env: Env, _all_passed: bool) {
    drop(env);
}

fn users_file(c: &Console) -> PathBuf {
    c.dir.path().join("users.json")
}

/// A login attempt from client `ip` (through the trusted proxy): where it
/// redirects, and the session cookie (`name=value`) and its whole
/// `Set-Cookie` line, if any.
async fn login_from(base: &str, ip: &str, name: &str, password: &str) -> (String, Option<(String, String)>) {
    let r = http()
        .post(format!("{base}/auth/login"))
        .header("x-forwarded-for", ip)
        .form(&[("username", name), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "login of {name}");
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.contains("dockward_session="))
        .map(|line| (line.split(';').next().unwrap().to_owned(), line.to_owned()));
    (location, cookie)
}

async fn login(base: &str, ip: &str, name: &str) -> String {
    let (to, cookie) = login_from(base, ip, name, PASSWORD).await;
    assert_eq!(to, "/", "{name} logs in");
    cookie.expect("a session cookie").0
}

/// POSTs a server function with a cookie (`name=value`) and extra headers.
async fn call(base: &str, cookie: Option<&str>, endpoint: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    call_with(base, cookie, endpoint, &[], headers).await
}

async fn call_with(
    base: &str,
    cookie: Option<&str>,
    endpoint: &str,
    args: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = http().post(format!("{base}/api/fn/{endpoint}")).form(args);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn whoami(base: &str, cookie: &str) -> (u16, Value) {
    call(base, Some(cookie), "whoami", &[]).await
}

fn cli(args: &[&str], users: &Path, stdin: Option<&str>) {
    use std::io::Write;
    let mut child = std::process::Command::new(web_bin())
        .args(["user"])
        .args(args)
        .arg("--users-file")
        .arg(users)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        writeln!(child.stdin.take().unwrap(), "{s}").unwrap();
    }
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success(), "user {args:?}");
}

async fn cookie_flags_and_logout_ends_the_session_on_the_server(env: Arc<Env>) {
    let base = &env.main.base;
    let (to, cookie) = login_from(base, "198.51.100.1", "viewer1", PASSWORD).await;
    assert_eq!(to, "/");
    let (cookie, line) = cookie.unwrap();
    assert!(cookie.starts_with("dockward_session="), "{line}");
    for flag in ["Path=/", "HttpOnly", "SameSite=Strict", "Max-Age=43200"] {
        assert!(line.split("; ").any(|f| f == flag), "{flag} missing: {line}");
    }
    assert!(!line.contains("Domain") && !line.contains("Secure"), "plain HTTP: {line}");
    let (status, who) = whoami(base, &cookie).await;
    assert_eq!((status, who["name"].as_str()), (200, Some("viewer1")), "{who}");
    let r = http()
        .post(format!("{base}/auth/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", who["csrf"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (303, "/login"));
    let (status, body) = whoami(base, &cookie).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("not_signed_in")), "the old cookie still works: {body}");
}

async fn a_changed_role_a_new_password_or_removal_takes_effect_on_the_next_request(env: Arc<Env>) {
    let base = &env.main.base;
    let users = users_file(&env.main);
    add_user(web_bin(), &users, "changing1", "admin");
    let cookie = login(base, "198.51.100.2", "changing1").await;
    assert_eq!(whoami(base, &cookie).await.1["role"], "admin");
    // A role change alone (the file edited): the session stays, with the new role.
    let text = std::fs::read_to_string(&users).unwrap();
    let mut file: Value = serde_json::from_str(&text).unwrap();
    file["users"]["changing1"]["role"] = "viewer".into();
    std::fs::write(&users, serde_json::to_vec(&file).unwrap()).unwrap();
    let (status, who) = whoami(base, &cookie).await;
    assert_eq!((status, who["role"].as_str()), (200, Some("viewer")), "{who}");
    let (status, body) = call_with(base, Some(&cookie), "job_status", &[("job", "x")], &[]).await;
    assert_eq!(
        (status, body["error"].as_str(), body["have"].as_str()),
        (403, Some("forbidden"), Some("viewer")),
        "{body}"
    );
    // A new password from the CLI ends the session.
    cli(&["passwd", "changing1"], &users, Some("another long password"));
    let (status, body) = whoami(base, &cookie).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("not_signed_in")), "{body}");
    // Removal ends it too.
    let (to, c2) = login_from(base, "198.51.100.2", "changing1", "another long password").await;
    assert_eq!(to, "/");
    let c2 = c2.unwrap().0;
    assert_eq!(whoami(base, &c2).await.0, 200);
    cli(&["remove", "changing1"], &users, None);
    assert_eq!(whoami(base, &c2).await.0, 401, "a removed user's session lives on");
}

/// A stream opened before the user was removed ends too (at the next frame
/// or keep-alive, 15 s at most).
async fn an_open_live_stream_ends_when_its_user_is_removed(env: Arc<Env>) {
    use futures_util::StreamExt;
    let base = &env.main.base;
    let users = users_file(&env.main);
    add_user(web_bin(), &users, "watcher1", "viewer");
    let cookie = login(base, "198.51.100.6", "watcher1").await;
    let r = http().get(format!("{base}/api/live")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    let first = body.next().await.expect("a first frame").unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: snapshot"), "{first:?}");
    cli(&["remove", "watcher1"], &users, None);
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chunk) = body.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the live stream outlived its user by 30 s");
}

/// Another console (a replica, or this one restarted) sharing the users
/// file, the session key and the store (`dockward.db` beside the users
/// file) accepts the session with the same CSRF token; a logout on one
/// holds on the other within a second or two, and after a restart.
async fn a_session_is_valid_on_another_replica_and_after_a_restart(env: Arc<Env>) {
    let base = &env.main.base;
    add_user(web_bin(), &users_file(&env.main), "replicated1", "operator");
    let cookie = login(base, "198.51.100.3", "replicated1").await;
    let (status, who) = whoami(base, &cookie).await;
    assert_eq!(status, 200, "{who}");
    let shared = env.main.dir.path();
    let files =
        [("DOCKWARD_USERS_FILE", shared.join("users.json")), ("DOCKWARD_SESSION_KEY_FILE", shared.join("session.key"))];
    let env_vars: Vec<(&str, &str)> = files.iter().map(|(k, v)| (*k, v.to_str().unwrap())).collect();
    let replica = || {
        let gone = format!("http://127.0.0.1:{}", free_port());
        Console::start_with(
            web_bin(),
            &[Host { name: "local", url: &gone, secret: HOST_SECRET }],
            Options { env: &env_vars, ..Options::default() },
        )
    };
    let other = replica();
    let (status, there) = whoami(&other.base, &cookie).await;
    assert_eq!((status, &there["name"]), (200, &who["name"]), "{there}");
    assert_eq!(there["csrf"], who["csrf"], "one CSRF token on every replica");
    // The CSRF token made on one is accepted by the other's mutations (a bad one is not).
    let csrf = who["csrf"].as_str().unwrap();
    let restart = |token| [("host", "local"), ("id", "web"), ("csrf", token)];
    let (status, body) = call_with(&other.base, Some(&cookie), "restart", &restart(csrf), &[]).await;
    assert_ne!(body["error"].as_str(), Some("csrf"), "{status} {body}");
    assert_ne!(status, 401, "{body}");
    let (status, body) = call_with(&other.base, Some(&cookie), "restart", &restart("not-the-token"), &[]).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("csrf")), "{body}");
    let r = http()
        .post(format!("{}/auth/logout", other.base))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(whoami(&other.base, &cookie).await.0, 401, "logged out where it was asked");
    eventually(Duration::from_secs(5), "the logout to hold on the first console", || async {
        (whoami(base, &cookie).await.0 == 401).then_some(())
    })
    .await;
    // A console started afresh on the same files: a live session carries on, a logged-out one does not.
    let live = login(base, "198.51.100.3", "replicated1").await;
    drop(other);
    let restarted = replica();
    assert_eq!(whoami(&restarted.base, &live).await.0, 200, "the session did not survive the restart");
    assert_eq!(whoami(&restarted.base, &cookie).await.0, 401, "a logout did not survive the restart");
}

async fn login_backs_off_per_name_and_a_correct_password_after_the_wait_works(env: Arc<Env>) {
    let base = &env.main.base;
    add_user(web_bin(), &users_file(&env.main), "victim1", "viewer");
    // Five failures from five addresses: the per-name back-off, not the per-address one.
    for i in 0..5 {
        let (to, _) = login_from(base, &format!("192.0.2.{}", 10 + i), "victim1", "wrong password!").await;
        assert_eq!(to, "/login?error=invalid");
    }
    let (to, cookie) = login_from(base, "192.0.2.50", "victim1", PASSWORD).await;
    assert_eq!(to, "/login?error=throttled", "the right password during the wait");
    assert!(cookie.is_none());
    // Other names are not held up.
    login(base, "192.0.2.50", "viewer1").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (to, _) = login_from(base, "192.0.2.50", "victim1", PASSWORD).await;
    assert_eq!(to, "/", "the right password after the wait");
}

async fn login_backs_off_per_client_address_behind_the_proxy(env: Arc<Env>) {
    let base = &env.main.base;
    for i in 0..10 {
        let (to, _) = login_from(base, "203.0.113.9", &format!("nobody{i}"), "wrong password!").await;
        assert_eq!(to, "/login?error=invalid");
    }
    let (to, _) = login_from(base, "203.0.113.9", "operator1", PASSWORD).await;
    assert_eq!(to, "/login?error=throttled", "the address is waiting");
    // A client cannot escape by prepending an address of its own.
    let (to, _) = login_from(base, "203.0.113.77, 203.0.113.9", "operator1", PASSWORD).await;
    assert_eq!(to, "/login?error=throttled", "the right-most untrusted hop counts");
    // Another client behind the same proxy is not held up.
    login(base, "203.0.113.10", "operator1").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    login(base, "203.0.113.9", "operator1").await;
}

async fn forward_auth_needs_the_shared_secret_and_refuses_duplicate_headers(env: Arc<Env>) {
    let base = &env.main.base;
    let ident = [("remote-user", "carol"), ("remote-groups", "admins")];
    let with_secret = [ident[0], ident[1], ("x-dockward-proxy-secret", PROXY_SECRET)];
    let (status, who) = call(base, None, "whoami", &with_secret).await;
    assert_eq!((status, who["name"].as_str(), who["role"].as_str()), (200, Some("carol"), Some("admin")), "{who}");
    let (status, _) = call(base, None, "whoami", &ident).await;
    assert_eq!(status, 401, "identity headers without the proxy's secret");
    let wrong = [ident[0], ident[1], ("x-dockward-proxy-secret", "the-proxy-secret-0123456789abcdef012345678X")];
    assert_eq!(call(base, None, "whoami", &wrong).await.0, 401, "a wrong secret");
    let twice_groups = [ident[0], ident[1], ("remote-groups", "staff"), with_secret[2]];
    assert_eq!(call(base, None, "whoami", &twice_groups).await.0, 400, "Remote-Groups twice");
    let twice_user = [ident[0], ("remote-user", "admin1"), ident[1], with_secret[2]];
    assert_eq!(call(base, None, "whoami", &twice_user).await.0, 400, "Remote-User twice");
}

async fn one_user_is_rate_limited_alone(env: Arc<Env>) {
    let base = &env.main.base;
    add_user(web_bin(), &users_file(&env.main), "busy1", "viewer");
    let busy = login(base, "198.51.100.4", "busy1").await;
    let calm = login(base, "198.51.100.5", "viewer1").await;
    let mut refused = None;
    for _ in 0..80 {
        let (status, body) = whoami(base, &busy).await;
        if status != 200 {
            refused = Some((status, body));
            break;
        }
    }
    let (status, body) = refused.expect("80 calls at once were never refused");
    assert_eq!((status, body["error"].as_str()), (429, Some("busy")), "{body}");
    assert_eq!(whoami(base, &calm).await.0, 200, "another user is not held up");
}

async fn the_first_admin_must_change_the_generated_password(env: Arc<Env>) {
    use std::os::unix::fs::PermissionsExt;
    let base = &env.first.base;
    let file = env.first.dir.path().join("first-admin-password");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let generated = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    let log = std::fs::read_to_string(env.first.dir.path().join("web.log")).unwrap();
    assert!(log.contains("first-admin-password") && !log.contains(&generated), "the log: {log}");
    // Over HTTPS the cookie is __Host- prefixed and Secure, with Path=/ and no Domain.
    let (to, cookie) = login_from(base, "127.0.0.1", "admin", &generated).await;
    assert_eq!(to, "/password", "the first login goes to the password change");
    let (cookie, line) = cookie.unwrap();
    assert!(cookie.starts_with("__Host-dockward_session="), "{line}");
    for flag in ["Path=/", "HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(line.split("; ").any(|f| f == flag), "{flag} missing: {line}");
    }
    assert!(!line.contains("Domain"), "{line}");
    // Until it is changed: pages redirect, server functions refuse, typed.
    let r = http().get(format!("{base}/")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (303, "/password"));
    let (status, body) = call(base, Some(&cookie), "fleet", &[]).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("password_change_required")), "{body}");
    let page = http().get(format!("{base}/password")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).and_then(|t| t.split('"').next()).unwrap().to_owned();
    let change = |current: &str, new: &str, confirm: &str| {
        let (cookie, csrf) = (cookie.clone(), csrf.clone());
        let (current, new, confirm) = (current.to_owned(), new.to_owned(), confirm.to_owned());
        async move {
            let r = http()
                .post(format!("{base}/auth/password"))
                .header("cookie", cookie)
                .form(&[("csrf", csrf), ("current", current), ("new", new), ("confirm", confirm)])
                .send()
                .await
                .unwrap();
            let set = r.headers().get("set-cookie").map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
            (r.headers()["location"].to_str().unwrap().to_owned(), set)
        }
    };
    let new = "my own admin password";
    assert_eq!(change("not the password", new, new).await.0, "/password?error=wrong");
    assert_eq!(change(&generated, new, "something else!").await.0, "/password?error=mismatch");
    assert_eq!(change(&generated, &generated, &generated).await.0, "/password?error=same");
    let (to, fresh) = change(&generated, new, new).await;
    assert_eq!(to, "/");
    let fresh = fresh.expect("a fresh session");
    assert_eq!(whoami(base, &cookie).await.0, 401, "the session begun with the old password ended");
    let (status, who) = whoami(base, &fresh).await;
    assert_eq!((status, who["name"].as_str()), (200, Some("admin")), "{who}");
    assert_eq!(call(base, Some(&fresh), "fleet", &[]).await.0, 200);
    assert!(!file.exists(), "the generated password's file is left behind");
    assert_eq!(login_from(base, "127.0.0.1", "admin", &generated).await.0, "/login?error=invalid");
    assert_eq!(login_from(base, "127.0.0.1", "admin", new).await.0, "/");
}

fn main() -> ExitCode {
    let scenarios: Vec<Scenario<Env>> = vec![
        scenario(
            "cookie_flags_and_logout_ends_the_session_on_the_server",
            cookie_flags_and_logout_ends_the_session_on_the_server,
        ),
        scenario(
            "a_changed_role_a_new_password_or_removal_takes_effect_on_the_next_request",
            a_changed_role_a_new_password_or_removal_takes_effect_on_the_next_request,
        ),
        scenario(
            "an_open_live_stream_ends_when_its_user_is_removed",
            an_open_live_stream_ends_when_its_user_is_removed,
        ),
        scenario(
            "a_session_is_valid_on_another_replica_and_after_a_restart",
            a_session_is_valid_on_another_replica_and_after_a_restart,
        ),
        scenario(
            "login_backs_off_per_name_and_a_correct_password_after_the_wait_works",
            login_backs_off_per_name_and_a_correct_password_after_the_wait_works,
        ),
        scenario(
            "login_backs_off_per_client_address_behind_the_proxy",
            login_backs_off_per_client_address_behind_the_proxy,
        ),
        scenario(
            "forward_auth_needs_the_shared_secret_and_refuses_duplicate_headers",
            forward_auth_needs_the_shared_secret_and_refuses_duplicate_headers,
        ),
        scenario("one_user_is_rate_limited_alone", one_user_is_rate_limited_alone),
        scenario(
            "the_first_admin_must_change_the_generated_password",
            the_first_admin_must_change_the_generated_password,
        ),
    ];
    testkit::scenarios::run(start, scenarios, teardown)
}
