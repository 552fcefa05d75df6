//! Scoped grants and API tokens, end to end: a real console in front of a
//! real sidecar with two compose apps, `shop` and `blog`. A user granted
//! operator on app `shop` restarts a shop container and cannot see, read
//! the logs of, or act on `blog` by any route (server functions, pages, the
//! live stream, log follow and download, exports, crafted references). API
//! tokens: shown once, stored as a hash, cut to their scope and role,
//! refused once revoked or expired, shrinking with their owner's grants,
//! and named in both audit logs. Grant changes through the API and the CLI
//! are audited.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use testkit::console::client::{call, get, http, login, User};
use testkit::console::{Console, Host, Options};
use testkit::sidecar::{Sidecar, SECRET};
use testkit::{docker, eventually, unique, TestContainer};

const QUICK_TO_STOP: &str = "trap 'exit 0' TERM; while true; do echo tick; sleep 1; done";

fn web_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_dockward-web"))
}

/// The container's start time, as the engine says.
fn started_at(id: &str) -> String {
    docker(&["inspect", "-f", "{{.State.StartedAt}}", id]).trim().to_owned()
}

/// A server function called with an API token and no cookie.
async fn call_with(base: &str, token: &str, endpoint: &str, args: &[(&str, &str)]) -> (u16, Value) {
    let r = http()
        .post(format!("{base}/api/fn/{endpoint}"))
        .bearer_auth(token)
        .form(args)
        .send()
        .await
        .expect("POST a server function");
    let status = r.status().as_u16();
    let text = r.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")))
}

/// The audit server function's arguments, filtered by actor.
fn audit_args(actor: &str) -> Vec<(String, String)> {
    let mut a = vec![("host".to_owned(), "local".to_owned())];
    for k in ["actor", "verb", "target", "outcome", "since", "until", "cursor"] {
        a.push((format!("filter[{k}]"), if k == "actor" { actor.to_owned() } else { String::new() }));
    }
    a
}

/// A JSON request as a signed-in user, with the session's CSRF token.
async fn json(method: reqwest::Method, base: &str, path: &str, u: &User, body: Option<Value>) -> (u16, Value) {
    let mut req = http()
        .request(method, format!("{base}{path}"))
        .header("cookie", format!("dockward_session={}", u.cookie))
        .header("x-csrf-token", &u.csrf);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("a JSON request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Reads a stream for `secs` seconds (or until it ends): what came.
async fn read_for(mut r: reqwest::Response, secs: u64) -> String {
    let mut seen = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(secs), async {
        while let Ok(Some(chunk)) = r.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_operator_acts_on_their_app_only_and_tokens_carry_no_more() {
    let scope = format!("dockward.access={}", unique("access"));
    let shop = TestContainer::run(
        "access-shop",
        &["--label", &scope, "--label", "com.docker.compose.project=shop", "--label", "com.docker.compose.service=web"],
        QUICK_TO_STOP,
    );
    let blog = TestContainer::run(
        "access-blog",
        &["--label", &scope, "--label", "com.docker.compose.project=blog", "--label", "com.docker.compose.service=web"],
        QUICK_TO_STOP,
    );
    let sidecar = Sidecar::start(&[&format!("--scope-label={scope}")]).await;
    let console = Console::start_with(
        web_bin(),
        &[Host { name: "local", url: &sidecar.base, secret: SECRET }],
        Options { users: &[("shopops", "operator@app:shop")], ..Options::default() },
    );
    let base = console.base.clone();
    let ops = login(&base, "shopops").await;
    let admin = login(&base, "admin1").await;
    eventually(Duration::from_secs(20), "the fleet to show both apps", || {
        let (base, cookie, a, b) = (base.clone(), admin.cookie.clone(), shop.name.clone(), blog.name.clone());
        async move {
            let (_, f) = call(&base, Some(&cookie), "fleet", &[]).await;
            (f.to_string().contains(&a) && f.to_string().contains(&b)).then_some(())
        }
    })
    .await;

    // -- who they are, and what they see -------------------------------------------------
    let (status, me) = call(&base, Some(&ops.cookie), "whoami", &[]).await;
    assert_eq!((status, me["role"].as_str()), (200, Some("operator")), "{me}");
    assert_eq!(me["scope"], "operator on app:shop", "{me}");
    let (status, fleet) = call(&base, Some(&ops.cookie), "fleet", &[]).await;
    assert_eq!(status, 200);
    let text = fleet.to_string();
    assert!(text.contains(&shop.name), "their app is shown: {text}");
    assert!(!text.contains(&blog.name) && !text.contains(&blog.id), "another app is not: {text}");
    for scope in ["network", "hosts"] {
        let (_, f) = call(&base, Some(&ops.cookie), "fleet", &[("scope", scope)]).await;
        assert!(!f.to_string().contains(&blog.id), "scope {scope}: {f}");
    }

    // -- server functions on the other app: as if it did not exist -----------------------
    let blog_started = started_at(&blog.id);
    for (endpoint, args) in [
        ("container", vec![("host", "local"), ("id", blog.id.as_str())]),
        ("container", vec![("host", "local"), ("id", blog.name.as_str())]),
        ("container", vec![("host", "local"), ("id", &blog.id[..12])]),
        ("logs", vec![("host", "local"), ("id", blog.id.as_str()), ("tail", "5"), ("timestamps", "false")]),
        ("restart", vec![("host", "local"), ("id", blog.id.as_str()), ("csrf", ops.csrf.as_str())]),
        (
            "recreate",
            vec![
                ("host", "local"),
                ("id", blog.id.as_str()),
                ("pull", "false"),
                ("build", "false"),
                ("csrf", ops.csrf.as_str()),
            ],
        ),
    ] {
        let (status, body) = call(&base, Some(&ops.cookie), endpoint, &args).await;
        assert_eq!(status, 404, "{endpoint} {args:?}: {body}");
        assert!(!body.to_string().contains("tick"), "{endpoint}: no data in a refusal: {body}");
    }
    let (status, body) =
        call(&base, Some(&ops.cookie), "app_logs", &[("host", "local"), ("project", "blog"), ("tail", "5")]).await;
    assert_eq!(status, 403, "another app's logs: {body}");
    assert!(body.to_string().contains("app:local/blog"), "the refusal names what is needed: {body}");
    let (status, body) = call(
        &base,
        Some(&ops.cookie),
        "recreate",
        &[("host", "local"), ("id", "app:blog"), ("pull", "true"), ("build", "false"), ("csrf", &ops.csrf)],
    )
    .await;
    assert_eq!(status, 403, "another app's update: {body}");
    // Host-wide and fleet-wide things need more than an app.
    for (endpoint, args) in [
        ("prune", vec![("host", "local"), ("kind", "containers"), ("all", "false"), ("csrf", ops.csrf.as_str())]),
        ("pull", vec![("host", "local"), ("image", "127.0.0.1:9/x:1"), ("csrf", ops.csrf.as_str())]),
        ("hosts", vec![]),
    ] {
        let (status, body) = call(&base, Some(&ops.cookie), endpoint, &args).await;
        assert_eq!(status, 403, "{endpoint}: {body}");
    }
    let args = audit_args("");
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (status, body) = call(&base, Some(&ops.cookie), "audit", &args).await;
    assert_eq!(status, 403, "the host's audit log: {body}");
    assert_eq!(started_at(&blog.id), blog_started, "the other app's container was not restarted");

    // -- routes: live stream, logs, exports, pages ---------------------------------------
    let cookie = format!("dockward_session={}", ops.cookie);
    let r = http()
        .get(format!("{base}/api/live"))
        .query(&[("scope", "container"), ("host", "local"), ("id", blog.id.as_str())])
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400, "a crafted live scope naming another app's container");
    for route in ["/api/logs/follow", "/api/logs/download"] {
        let r = http()
            .get(format!("{base}{route}"))
            .query(&[("host", "local"), ("id", blog.id.as_str())])
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404, "{route}");
    }
    let (status, body) = get(&base, &format!("/api/logs/download?host=local&id={}", shop.id), &ops.cookie).await;
    assert!(status == 200 && body.contains("tick"), "their own logs: {status} {body}");
    let (status, _) = get(&base, "/api/audit/export?host=local&format=csv", &ops.cookie).await;
    assert_eq!(status, 403, "the host's audit log");
    for q in [format!("container={}", blog.name), "app=blog".to_owned(), String::new()] {
        let (status, body) =
            get(&base, &format!("/api/history/export?host=local&{q}&range=1h&format=csv"), &ops.cookie).await;
        assert_eq!(status, 404, "history of {q:?}: {body}");
        let (status, _) = get(&base, &format!("/history?host=local&{q}&range=1h"), &ops.cookie).await;
        assert_eq!(status, 404, "history page of {q:?}");
    }
    let (status, _) = get(&base, "/api/history/export?host=local&app=shop&range=1h&format=csv", &ops.cookie).await;
    assert_eq!(status, 200, "their app's history");
    let (status, _) = get(&base, &format!("/actions?host=local&id={}&how=recreate", blog.id), &ops.cookie).await;
    assert_eq!(status, 404, "the action page for another app's container");
    let (status, _) = get(&base, "/hosts", &ops.cookie).await;
    assert_eq!(status, 403, "the hosts page");
    let (status, body) = get(&base, &format!("/c/local/{}", blog.id), &ops.cookie).await;
    assert!(!body.contains(&blog.name), "the detail page of another app ({status}) shows nothing of it");
    let (status, body) = get(&base, "/api/alerts", &ops.cookie).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["channels"], serde_json::json!([]), "no channels");
    let (status, body) = get(&base, "/api/users", &ops.cookie).await;
    assert_eq!(status, 403, "grants are for fleet admins: {body}");

    // The live stream: a snapshot of their app; later deltas of theirs only.
    let live = http().get(format!("{base}/api/live")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(live.status().as_u16(), 200);
    let reading = tokio::spawn(read_for(live, 12));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, body) =
        call(&base, Some(&admin.cookie), "restart", &[("host", "local"), ("id", &blog.id), ("csrf", &admin.csrf)])
            .await;
    assert_eq!(status, 200, "the admin restarts the other app: {body}");
    let shop_started = started_at(&shop.id);
    let (status, body) =
        call(&base, Some(&ops.cookie), "restart", &[("host", "local"), ("id", &shop.name), ("csrf", &ops.csrf)]).await;
    assert_eq!(status, 200, "the shop operator restarts a shop container (by name): {body}");
    assert_ne!(started_at(&shop.id), shop_started, "it restarted");
    let seen = reading.await.unwrap();
    assert!(seen.contains("event: snapshot") && seen.contains(&shop.name), "{seen}");
    assert!(seen.contains("event: delta"), "their app's changes arrive: {seen}");
    assert!(!seen.contains(&blog.id) && !seen.contains(&blog.name), "nothing of the other app: {seen}");

    // -- API tokens ------------------------------------------------------------------------
    let post = reqwest::Method::POST;
    let (status, made) = json(
        post.clone(),
        &base,
        "/api/tokens",
        &ops,
        Some(serde_json::json!({"name": "deploy", "role": "operator", "scope": "app:shop", "days": 1})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let token = made["token"].as_str().expect("the token, shown once").to_owned();
    assert!(token.starts_with("dwk_") && token.len() == 68, "{token}");
    let (status, list) = json(reqwest::Method::GET, &base, "/api/tokens", &ops, None).await;
    assert_eq!(status, 200);
    assert!(
        list.to_string().contains("deploy") && !list.to_string().contains(&token[4..]),
        "listed, never shown again: {list}"
    );
    let store = std::fs::read(console.dir.path().join("dockward.db")).unwrap_or_default();
    assert!(!String::from_utf8_lossy(&store).contains(&token[4..]), "only its hash is stored");
    // Refused: more than the owner holds, bad input; nothing made.
    for (body, field) in [
        (serde_json::json!({"name": "big", "role": "admin", "scope": "app:shop"}), "role"),
        (serde_json::json!({"name": "wide", "role": "operator", "scope": "app:blog"}), "role"),
        (serde_json::json!({"name": "wide", "role": "viewer", "scope": "fleet"}), "role"),
        (serde_json::json!({"name": "bad name", "role": "viewer", "scope": "app:shop"}), "name"),
        (serde_json::json!({"name": "x", "role": "boss", "scope": "app:shop"}), "role"),
        (serde_json::json!({"name": "x", "role": "viewer", "scope": "label:a=b"}), "scope"),
        (serde_json::json!({"name": "x", "role": "viewer", "scope": "app:shop", "days": 400}), "days"),
        (serde_json::json!({"name": "deploy", "role": "viewer", "scope": "app:shop"}), "name"),
        (serde_json::json!({"name": "x", "role": "viewer", "extra": 1}), "extra"),
    ] {
        let (status, r) = json(post.clone(), &base, "/api/tokens", &ops, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {r}");
        assert_eq!(r["field"], field, "{body}: {r}");
    }
    let (_, list) = json(reqwest::Method::GET, &base, "/api/tokens", &ops, None).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "nothing else was made: {list}");

    // The token acts as its owner on its scope, with no cookie and no CSRF token.
    let (status, f) = call_with(&base, &token, "fleet", &[]).await;
    assert_eq!(status, 200, "{f}");
    assert!(f.to_string().contains(&shop.name) && !f.to_string().contains(&blog.id), "{f}");
    let (status, body) =
        call_with(&base, &token, "restart", &[("host", "local"), ("id", &shop.id), ("csrf", "")]).await;
    assert_eq!(status, 200, "a token restarts its app: {body}");
    let (status, _) = call_with(&base, &token, "restart", &[("host", "local"), ("id", &blog.id), ("csrf", "")]).await;
    assert_eq!(status, 404, "and nothing else");
    let r = http()
        .post(format!("{base}/api/tokens"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "child", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400, "a token makes no tokens");
    let r = http().get(format!("{base}/alerts")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "tokens are for the JSON API, not the pages");
    let args = audit_args("shopops/token:deploy");
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (status, audit) = call(&base, Some(&admin.cookie), "audit", &args).await;
    assert_eq!(status, 200, "{audit}");
    assert!(audit.to_string().contains("shopops/token:deploy"), "the sidecar names the token: {audit}");

    // A viewer token cannot act.
    let (status, ro) = json(
        post.clone(),
        &base,
        "/api/tokens",
        &ops,
        Some(serde_json::json!({"name": "ro", "role": "viewer", "scope": "app:shop"})),
    )
    .await;
    assert_eq!(status, 201, "{ro}");
    let ro_token = ro["token"].as_str().unwrap().to_owned();
    let (status, body) =
        call_with(&base, &ro_token, "restart", &[("host", "local"), ("id", &shop.id), ("csrf", "")]).await;
    assert_eq!(status, 403, "a viewer token: {body}");

    // Grants through the API (fleet admins only), then taken back: the token shrinks with its owner.
    let (status, body) = json(
        post.clone(),
        &base,
        "/api/users/shopops/grant",
        &ops,
        Some(serde_json::json!({"role": "admin", "on": "fleet"})),
    )
    .await;
    assert_eq!(status, 403, "no one grants themselves: {body}");
    let (status, body) = json(
        post.clone(),
        &base,
        "/api/users/shopops/grant",
        &admin,
        Some(serde_json::json!({"role": "viewer", "on": "host:local"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, f) = call(&base, Some(&ops.cookie), "fleet", &[]).await;
    assert!(f.to_string().contains(&blog.name), "a viewer of the host sees the other app now: {f}");
    let (status, body) =
        call(&base, Some(&ops.cookie), "restart", &[("host", "local"), ("id", &blog.id), ("csrf", &ops.csrf)]).await;
    assert_eq!(status, 403, "but cannot act on it: {body}");
    let (status, f) = call_with(&base, &token, "fleet", &[]).await;
    assert!(status == 200 && !f.to_string().contains(&blog.id), "the token stays within app:shop: {f}");
    for (body, field) in [
        (serde_json::json!({"role": "viewer", "on": "label:x"}), "on"),
        (serde_json::json!({"role": "king", "on": "fleet"}), "role"),
        (serde_json::json!({"role": "viewer"}), "on"),
    ] {
        let (status, r) = json(post.clone(), &base, "/api/users/shopops/grant", &admin, Some(body.clone())).await;
        assert_eq!((status, r["field"].as_str()), (400, Some(field)), "{body}: {r}");
    }
    let (status, r) = json(
        post.clone(),
        &base,
        "/api/users/nobody/grant",
        &admin,
        Some(serde_json::json!({"role": "viewer", "on": "fleet"})),
    )
    .await;
    assert_eq!(status, 404, "{r}");
    // A log follow open when a grant is taken back ends at its next line.
    let follow = http()
        .get(format!("{base}/api/logs/follow"))
        .query(&[("host", "local"), ("id", shop.id.as_str())])
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(follow.status().as_u16(), 200);
    let following = tokio::spawn(read_for(follow, 25));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let taken = std::time::Instant::now();
    for on in ["host:local", "app:shop"] {
        let (status, body) =
            json(post.clone(), &base, "/api/users/shopops/ungrant", &admin, Some(serde_json::json!({"on": on}))).await;
        assert_eq!(status, 200, "{body}");
    }
    let followed = following.await.unwrap();
    assert!(followed.contains("tick"), "it followed: {followed}");
    assert!(taken.elapsed() < Duration::from_secs(20), "the follow ended once the grant went");
    // The only admin of the fleet keeps that role.
    let (status, body) = json(
        post.clone(),
        &base,
        "/api/users/admin1/grant",
        &admin,
        Some(serde_json::json!({"role": "viewer", "on": "fleet"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("only admin"), "{body}");

    let (status, f) = call_with(&base, &token, "fleet", &[]).await;
    assert_eq!(status, 403, "the owner lost the app, so did the token: {f}");
    assert_eq!(f["error"], "not_granted", "{f}");
    let (status, _) = call_with(&base, &token, "restart", &[("host", "local"), ("id", &shop.id), ("csrf", "")]).await;
    assert_eq!(status, 403);
    let (status, body) = json(
        post.clone(),
        &base,
        "/api/users/shopops/grant",
        &admin,
        Some(serde_json::json!({"role": "operator", "on": "app:shop"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Revoked: refused at once.
    let id = made["id"].as_i64().unwrap();
    let (status, body) = json(reqwest::Method::DELETE, &base, &format!("/api/tokens/{id}"), &ops, None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call_with(&base, &token, "fleet", &[]).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.to_string().contains("not valid"), "{body}");
    let (status, _) = json(reqwest::Method::DELETE, &base, &format!("/api/tokens/{id}"), &ops, None).await;
    assert_eq!(status, 404, "revoked once");

    // Expired: refused with its reason.
    let db = console.dir.path().join("dockward.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await.expect("the console's store");
    sqlx::query("UPDATE api_tokens SET expires_s = 1 WHERE name = 'ro'").execute(&pool).await.expect("expire a token");
    pool.close().await;
    let (status, body) = call_with(&base, &ro_token, "fleet", &[]).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.to_string().contains("expired"), "{body}");
    let (status, body) = call_with(&base, "dwk_0000", "fleet", &[]).await;
    assert_eq!(status, 401, "a made-up token: {body}");

    // The CLI grants and refuses, with a clear message and a non-zero exit.
    let users = console.dir.path().join("users.json");
    let enrol = console.dir.path().join("hosts");
    let cli = |args: &[&str]| {
        std::process::Command::new(web_bin())
            .args(["user"])
            .args(args)
            .arg("--users-file")
            .arg(&users)
            .arg("--enrol-dir")
            .arg(&enrol)
            .output()
            .expect("dockward-web user")
    };
    let out = cli(&["grant", "shopops", "viewer", "app:local/blog"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli(&["grant", "shopops", "boss", "fleet"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not a role"), "{out:?}");
    let out = cli(&["ungrant", "shopops", "app:nothing"]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no role on app:nothing"),
        "{out:?}"
    );
    let (_, f) = call(&base, Some(&ops.cookie), "fleet", &[]).await;
    assert!(f.to_string().contains(&blog.name), "the CLI's grant applies at once: {f}");
    // A new password ends the owner's tokens, as it ends their sessions.
    let (status, t3) = json(
        post.clone(),
        &base,
        "/api/tokens",
        &ops,
        Some(serde_json::json!({"name": "t3", "role": "viewer", "scope": "app:shop"})),
    )
    .await;
    assert_eq!(status, 201, "{t3}");
    let t3 = t3["token"].as_str().unwrap().to_owned();
    assert_eq!(call_with(&base, &t3, "fleet", &[]).await.0, 200);
    let mut passwd = std::process::Command::new(web_bin())
        .args(["user", "passwd", "shopops", "--users-file"])
        .arg(&users)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(passwd.stdin.take().unwrap(), "another long password").unwrap();
    assert!(passwd.wait().unwrap().success());
    let (status, body) = call_with(&base, &t3, "fleet", &[]).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.to_string().contains("new password"), "{body}");

    // Every grant change and token use is in the console's audit log.
    let log = std::fs::read_to_string(enrol.join("audit.jsonl")).expect("the console's audit log");
    for action in ["token.created", "token.used", "token.revoked", "token.refused", "user.granted", "user.ungranted"] {
        assert!(log.contains(&format!("\"action\":\"{action}\"")), "{action} in {log}");
    }
    assert!(log.contains("shopops/token:deploy"), "a use names the token");
    assert!(!log.contains(&token[4..]), "never the token itself");
    drop((shop, blog));
}

/// The value of `<… id="{id}">…<` in a page.
fn element_text(page: &str, id: &str) -> String {
    let at = page.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in {page}"));
    let rest = &page[at..];
    let start = rest.find('>').expect("a tag's end") + 1;
    rest[start..start + rest[start..].find('<').expect("the text's end")].to_owned()
}

/// The sealed note a sign-in's second step carries.
fn note_of(page: &str) -> String {
    let at = page.find("name=\"note\" value=\"").unwrap_or_else(|| panic!("no second step: {page}")) + 19;
    page[at..at + page[at..].find('"').unwrap()].to_owned()
}

/// POSTs the login form; the status, the session cookie if one was set, and the body.
async fn sign_in(base: &str, name: &str) -> (u16, Option<String>, String) {
    let r = http()
        .post(format!("{base}/auth/login"))
        .form(&[("username", name), ("password", testkit::console::PASSWORD)])
        .send()
        .await
        .unwrap();
    answer(r).await
}

async fn answer(r: reqwest::Response) -> (u16, Option<String>, String) {
    let status = r.status().as_u16();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("dockward_session="))
        .and_then(|v| v.split(';').next())
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    (status, cookie, r.text().await.unwrap())
}

async fn second_step(base: &str, note: &str, code: &str) -> (u16, Option<String>, String) {
    answer(http().post(format!("{base}/auth/totp")).form(&[("note", note), ("code", code)]).send().await.unwrap()).await
}

/// The current code for a base32 key, `ahead` steps on.
fn code_for(key_b32: &str, ahead: u64) -> String {
    let mut key = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in key_b32.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {key_b32}"),
        };
        buffer = (buffer << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            key.push((buffer >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    format!("{:06}", dockward_frontend::server::totp::code(&key, now / 30 + ahead, 6))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_factor_is_asked_once_set_up_and_each_code_counts_once() {
    // No host is needed: an unreachable one keeps the console honest.
    let console = Console::start_with(
        web_bin(),
        &[Host { name: "nowhere", url: "http://127.0.0.1:9", secret: SECRET }],
        Options { env: &[("DOCKWARD_REQUIRE_TOTP_FOR_ADMINS", "true")], ..Options::default() },
    );
    let base = console.base.clone();
    // An admin without a second factor reaches only /access until they set one up.
    let admin = login(&base, "admin1").await;
    let (status, body) = get(&base, "/hosts", &admin.cookie).await;
    assert_eq!(status, 303, "an admin without TOTP is sent to /access: {body}");
    let (status, body) = call(&base, Some(&admin.cookie), "fleet", &[]).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("totp_required")), "{body}");
    let (status, page) = get(&base, "/access", &admin.cookie).await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"totp-required\""), "{page}");
    // A viewer is not held.
    let viewer = login(&base, "viewer1").await;
    assert_eq!(call(&base, Some(&viewer.cookie), "fleet", &[]).await.0, 200);

    let act = |u: &User, fields: &[(&str, &str)]| {
        let mut form: Vec<(String, String)> = vec![("csrf".into(), u.csrf.clone())];
        form.extend(fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let (base, cookie) = (base.clone(), u.cookie.clone());
        async move {
            let r = http()
                .post(format!("{base}/access"))
                .header("cookie", format!("dockward_session={cookie}"))
                .form(&form)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let sneak = [("do", "token.create"), ("name", "sneak"), ("role", "admin"), ("scope", "fleet"), ("days", "1")];
    let (status, page) = act(&admin, &sneak).await;
    assert_eq!(status, 403, "no token before the second factor: {page}");
    assert!(page.contains("two-factor"), "{page}");
    let (status, page) = act(&admin, &[("do", "totp.begin")]).await;
    assert_eq!(status, 200, "{page}");
    let key = element_text(&page, "totp-key");
    assert!(element_text(&page, "totp-uri").contains(&format!("secret={key}")), "{page}");
    let (status, page) = act(&admin, &[("do", "totp.confirm"), ("code", "000000")]).await;
    assert_eq!(status, 400, "a wrong first code: {page}");
    assert!(page.contains("wrong"), "{page}");
    let first = code_for(&key, 0);
    let (status, page) = act(&admin, &[("do", "totp.confirm"), ("code", &first)]).await;
    assert_eq!(status, 200, "{page}");
    let recovery: Vec<String> = element_text(&page, "recovery-codes").lines().map(str::to_owned).collect();
    assert_eq!(recovery.len(), 10, "{page}");
    assert_eq!(call(&base, Some(&admin.cookie), "fleet", &[]).await.0, 200, "set up: the gate opens");
    let (_, page) = get(&base, "/access", &admin.cookie).await;
    assert!(!page.contains(&recovery[0]), "recovery codes are shown once");

    // Signing in now takes two steps: a right password alone starts no session.
    let (status, cookie, page) = sign_in(&base, "admin1").await;
    assert_eq!((status, cookie.as_deref()), (200, None), "{page}");
    let note = note_of(&page);
    let (status, cookie, page) = second_step(&base, &note, "123456").await;
    assert_eq!((status, cookie.as_deref()), (401, None), "a wrong code: {page}");
    assert!(page.contains("wrong, too old or already used"), "{page}");
    let (status, cookie, _) = second_step(&base, &note, &first).await;
    assert_eq!((status, cookie), (401, None), "the code that turned it on counts no more");
    let next = code_for(&key, 1);
    let (status, cookie, _) = second_step(&base, &note, &next).await;
    assert_eq!(status, 303, "the next step's code");
    assert!(cookie.is_some(), "a session");
    let (_, _, page) = sign_in(&base, "admin1").await;
    let (status, cookie, _) = second_step(&base, &note_of(&page), &next).await;
    assert_eq!((status, cookie), (401, None), "a replayed code");
    // A recovery code, once.
    let (_, _, page) = sign_in(&base, "admin1").await;
    let (status, cookie, _) = second_step(&base, &note_of(&page), &recovery[3].to_lowercase()).await;
    assert!(status == 303 && cookie.is_some(), "a recovery code as typed");
    let (_, _, page) = sign_in(&base, "admin1").await;
    let (status, cookie, _) = second_step(&base, &note_of(&page), &recovery[3]).await;
    assert_eq!((status, cookie), (401, None), "a recovery code works once");
    // A forged or changed note is no sign-in.
    let (status, cookie, _) = second_step(&base, &note.replace("admin1", "viewer1"), &code_for(&key, 0)).await;
    assert!(status == 303 && cookie.is_none(), "a changed note sends back to /login");

    let log = std::fs::read_to_string(console.dir.path().join("hosts").join("audit.jsonl")).expect("the audit log");
    for action in ["totp.on", "auth.login", "auth.login.failed"] {
        assert!(log.contains(&format!("\"action\":\"{action}\"")), "{action} in {log}");
    }
    assert!(log.contains("recovery code (9 left)"), "{log}");
    assert!(!log.contains(&recovery[0]) && !log.contains(&first), "no code is written down");
}
