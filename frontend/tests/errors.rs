//! Every `ConsoleError` end to end: the server functions of a real console,
//! in front of a real sidecar (and a host whose sidecar is gone), answer each
//! refusal with its exact HTTP status and a typed JSON body the browser
//! decodes; a refusal has no side effect.
//!
//! One started environment, one trial per variant (`testkit::scenarios`).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::Value;
use testkit::console::client::{call, http, login, page, User};
use testkit::console::{Console, Host};
use testkit::scenarios::{scenario, Scenario};
use testkit::sidecar::{Sidecar, SECRET};
use testkit::{free_port, TestContainer};

struct Env {
    console: Console,
    viewer: User,
    operator: User,
    /// Protected by label: restarting it is refused by the sidecar.
    db: TestContainer,
    sidecar: Sidecar,
    /// Runs as uid 65532 without the socket's group: it cannot use its engine.
    _denied: Sidecar,
}

async fn start() -> Env {
    let db = TestContainer::run("errors-db", &["--label", "dockward.protect=true"], "sleep 600");
    let sidecar = Sidecar::start(&[]).await;
    let denied = Sidecar::start_with(&[], Sidecar::as_nobody).await;
    // Nothing listens there: the console's calls to `gone` cannot connect.
    let gone = format!("http://127.0.0.1:{}", free_port());
    let console = Console::start(
        Path::new(env!("CARGO_BIN_EXE_dockward-web")),
        &[
            Host { name: "local", url: &sidecar.base, secret: SECRET },
            Host { name: "gone", url: &gone, secret: SECRET },
            Host { name: "denied", url: &denied.base, secret: SECRET },
        ],
        None,
    );
    // Signed in once each: the console throttles logins per name and address.
    let viewer = login(&console.base, "viewer1").await;
    let operator = login(&console.base, "operator1").await;
    Env { console, viewer, operator, db, sidecar, _denied: denied }
}

async fn teardown(env: Env, _all_passed: bool) {
    drop(env);
}

async fn not_signed_in_is_401(env: Arc<Env>) {
    let (status, body) = call(&env.console.base, None, "fleet", &[]).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("not_signed_in")), "{body}");
    let (status, body) =
        call(&env.console.base, Some("not-a-session"), "container", &[("host", "local"), ("id", "x")]).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("not_signed_in")), "{body}");
}

async fn a_weaker_role_is_403_with_the_role_it_needs(env: Arc<Env>) {
    let viewer = &env.viewer;
    let before = env.db.started_at();
    let args = [("host", "local"), ("id", env.db.id.as_str()), ("csrf", viewer.csrf.as_str())];
    let (status, body) = call(&env.console.base, Some(&viewer.cookie), "restart", &args).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body, serde_json::json!({"error": "forbidden", "needed": "operator", "have": "viewer"}));
    let operator = &env.operator;
    let args = [("host", "local"), ("kind", "containers"), ("all", "false"), ("csrf", operator.csrf.as_str())];
    let (status, body) = call(&env.console.base, Some(&operator.cookie), "prune", &args).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!((body["needed"].as_str(), body["have"].as_str()), (Some("admin"), Some("operator")));
    let (status, body) = call(&env.console.base, Some(&viewer.cookie), "job_status", &[("job", "x")]).await;
    assert_eq!((status, body["needed"].as_str()), (403, Some("operator")), "{body}");
    assert_eq!(env.db.started_at(), before, "a refused restart restarted");
}

async fn a_stale_csrf_token_or_a_cross_site_post_is_403(env: Arc<Env>) {
    let operator = &env.operator;
    let before = env.db.started_at();
    let args = [("host", "local"), ("id", env.db.id.as_str()), ("csrf", "not-the-token")];
    let (status, body) = call(&env.console.base, Some(&operator.cookie), "restart", &args).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("csrf")), "{body}");
    let r = http()
        .post(format!("{}/api/fn/restart", env.console.base))
        .header("cookie", format!("dockward_session={}", operator.cookie))
        .header("origin", "https://evil.example")
        .form(&[("host", "local"), ("id", env.db.id.as_str()), ("csrf", operator.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "csrf", "{body}");
    assert_eq!(env.db.started_at(), before);
}

async fn a_host_that_cannot_be_reached_is_502_naming_it(env: Arc<Env>) {
    let viewer = &env.viewer;
    let (status, body) =
        call(&env.console.base, Some(&viewer.cookie), "container", &[("host", "gone"), ("id", "web")]).await;
    assert_eq!((status, body["error"].as_str(), body["host"].as_str()), (502, Some("host_unreachable"), Some("gone")));
    assert!(!body["reason"].as_str().unwrap().is_empty(), "{body}");
}

/// Issue #12: a host whose sidecar cannot use its engine says why and what to
/// do, in the fleet the browser gets and on the overview's first render.
async fn a_host_whose_engine_is_unusable_shows_why_and_the_fix(env: Arc<Env>) {
    let viewer = &env.viewer;
    let host = testkit::eventually(std::time::Duration::from_secs(15), "the host `denied` diagnosed", || async {
        let (status, body) = call(&env.console.base, Some(&viewer.cookie), "fleet", &[]).await;
        assert_eq!(status, 200, "{body}");
        let hosts = body["hosts"].as_array().cloned().unwrap_or_default();
        let h = hosts.into_iter().find(|h| h["name"] == "denied")?;
        (h["status"]["state"] == "down" && h["status"]["engine"].is_object()).then_some(h)
    })
    .await;
    let engine = &host["status"]["engine"];
    assert_eq!(engine["kind"], "permission_denied", "{host}");
    assert!(engine["fix"].as_str().unwrap().contains("group_add"), "{host}");
    let html = page(&env.console.base, "/", &viewer.cookie).await;
    assert!(html.contains("Host denied: no permission on the Docker socket"), "{html}");
    assert!(html.contains("What to do: "), "{html}");
}

async fn a_sidecar_refusal_keeps_its_status_and_message(env: Arc<Env>) {
    let viewer = &env.viewer;
    let missing = format!("no-such-container-{}", free_port());
    let (status, body) =
        call(&env.console.base, Some(&viewer.cookie), "container", &[("host", "local"), ("id", &missing)]).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("sidecar_refused")), "{body}");
    assert_eq!((body["host"].as_str(), body["status"].as_u64()), (Some("local"), Some(404)));
    let operator = &env.operator;
    let before = env.db.started_at();
    let args = [("host", "local"), ("id", env.db.id.as_str()), ("csrf", operator.csrf.as_str())];
    let (status, body) = call(&env.console.base, Some(&operator.cookie), "restart", &args).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("sidecar_refused")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("protected"), "{body}");
    assert_eq!(env.db.started_at(), before);
}

async fn bad_input_is_400_naming_the_field(env: Arc<Env>) {
    let viewer = &env.viewer;
    let c = Some(viewer.cookie.as_str());
    let (status, body) = call(&env.console.base, c, "container", &[("host", "local"), ("id", "bad id!")]).await;
    assert_eq!((status, body["error"].as_str(), body["field"].as_str()), (400, Some("bad_input"), Some("container")));
    let args = [("host", "local"), ("id", "web"), ("tail", "99999"), ("timestamps", "true")];
    let (status, body) = call(&env.console.base, c, "logs", &args).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("tail")), "{body}");
    // Arguments that do not decode at all.
    let (status, body) = call(&env.console.base, c, "logs", &[("host", "local")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_input")), "{body}");
}

async fn an_unknown_host_or_job_is_404(env: Arc<Env>) {
    let operator = &env.operator;
    let c = Some(operator.cookie.as_str());
    let (status, body) = call(&env.console.base, c, "container", &[("host", "nope"), ("id", "web")]).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")), "{body}");
    let (status, body) = call(&env.console.base, c, "job_status", &[("job", "no-such-job")]).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")), "{body}");
}

/// A user holds at most `DOCKWARD_MAX_FOLLOWS_PER_USER` (4) log follows; the
/// next is refused by the console, typed, before the sidecar is asked.
async fn too_many_follows_for_one_user_is_429_busy(env: Arc<Env>) {
    let follow = |cookie: &str| {
        http()
            .get(format!("{}/api/logs/follow?host=local&id={}", env.console.base, env.db.id))
            .header("cookie", format!("dockward_session={cookie}"))
            .send()
    };
    let mut open = Vec::new();
    for _ in 0..4 {
        let r = follow(&env.viewer.cookie).await.unwrap();
        assert_eq!(r.status(), 200);
        open.push(r);
    }
    let r = follow(&env.viewer.cookie).await.unwrap();
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "busy", "{body}");
    let other = follow(&env.operator.cookie).await.unwrap();
    assert_eq!(other.status(), 200, "another user has slots of their own");
}

/// Reads carry the acting user to the sidecar too: a refused read is in its
/// audit log under the user's name.
async fn a_read_names_its_user_to_the_sidecar(env: Arc<Env>) {
    let missing = format!("read-by-viewer-{}", free_port());
    let (status, _) =
        call(&env.console.base, Some(&env.viewer.cookie), "container", &[("host", "local"), ("id", &missing)]).await;
    assert_eq!(status, 404);
    let r = http()
        .get(format!("{}/v1/audit?actor=viewer1&limit=1000", env.sidecar.base))
        .bearer_auth(SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.unwrap();
    // The sidecar records the first refusal of a kind (verb, status, key,
    // actor) in its window and counts the rest into a summary: an earlier
    // scenario's refused read by viewer1 may be the recorded one. Either way a
    // console read reached the sidecar's audit log under viewer1's name.
    let records = page["records"].as_array().expect("records");
    assert!(
        records.iter().any(|r| r["actor"] == "viewer1"
            && r["verb"] == "inspect_container"
            && r["outcome"] == "denied"
            && r["target"].as_str().is_some_and(|t| t.starts_with("/v1/containers/"))),
        "no record of viewer1's read: {page}"
    );
}

fn main() -> ExitCode {
    let scenarios: Vec<Scenario<Env>> = vec![
        scenario("not_signed_in_is_401", not_signed_in_is_401),
        scenario("a_weaker_role_is_403_with_the_role_it_needs", a_weaker_role_is_403_with_the_role_it_needs),
        scenario("a_stale_csrf_token_or_a_cross_site_post_is_403", a_stale_csrf_token_or_a_cross_site_post_is_403),
        scenario("a_host_that_cannot_be_reached_is_502_naming_it", a_host_that_cannot_be_reached_is_502_naming_it),
        scenario("a_sidecar_refusal_keeps_its_status_and_message", a_sidecar_refusal_keeps_its_status_and_message),
        scenario(
            "a_host_whose_engine_is_unusable_shows_why_and_the_fix",
            a_host_whose_engine_is_unusable_shows_why_and_the_fix,
        ),
        scenario("bad_input_is_400_naming_the_field", bad_input_is_400_naming_the_field),
        scenario("an_unknown_host_or_job_is_404", an_unknown_host_or_job_is_404),
        scenario("too_many_follows_for_one_user_is_429_busy", too_many_follows_for_one_user_is_429_busy),
        scenario("a_read_names_its_user_to_the_sidecar", a_read_names_its_user_to_the_sidecar),
    ];
    testkit::scenarios::run(start, scenarios, teardown)
}
