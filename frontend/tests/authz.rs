//! The console's authorisation matrix, end to end: every role (anonymous,
//! viewer, operator, admin) × every server function and route of a real
//! console in front of a real sidecar, mutations with a valid token, another
//! session's token, an empty one and a cross-site POST. Each cell checks the
//! exact status and body, and on a refusal that nothing happened: the
//! container did not restart, the stopped container was not pruned, no pull
//! reached the sidecar, the session was not ended, and the sidecar's audit
//! log holds no record of the action.
//!
//! The role each cell needs comes from the verb table (`Verb::X.role()`), so
//! the matrix follows the table; a scenario fails when `server_fns.rs`,
//! `routes.rs` or the page routes gain an entry the matrix lacks.
//!
//! Also the audit export's formula defusing, end to end. One environment (a
//! sidecar scoped to this run's label, so prune touches only its
//! containers), one trial per cell (`testkit::scenarios`).

use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use shared::{Role, Verb};
use testkit::console::client::{call, http, login, User};
use testkit::console::{Console, Host, Options};
use testkit::scenarios::{scenario, Scenario};
use testkit::sidecar::{Sidecar, SECRET};
use testkit::{docker, docker_ok, eventually, unique, TestContainer, IMAGE};

/// Exits at once on SIGTERM, so a restart takes about a second, not the 10 s timeout.
const QUICK_TO_STOP: &str = "trap 'exit 0' TERM; while true; do echo tick; sleep 1; done";

/// Whoami and logout need a session and nothing more: the weakest role.
const SIGNED_IN: Role = Role::Viewer;

struct Env {
    console: Console,
    sidecar: Sidecar,
    /// `dockward.authz=<unique>`: the sidecar sees only containers with it.
    scope: String,
    /// Signed in once each, in `Role::ALL` order (logins are throttled).
    users: Vec<User>,
    /// Running, in scope: what the reads read.
    web: TestContainer,
    /// A pull job started by the operator, for `job_status`.
    job: String,
    /// Images whose pull the console refused: none may ever reach the sidecar.
    refused_pulls: Mutex<Vec<String>>,
}

impl Env {
    fn user(&self, who: Option<Role>) -> Option<&User> {
        let r = who?;
        self.users.get(Role::ALL.iter().position(|x| *x == r)?)
    }

    /// A valid token of another user's session.
    fn other_token(&self, who: Option<Role>) -> &str {
        let i = who.and_then(|r| Role::ALL.iter().position(|x| *x == r)).unwrap_or(0);
        &self.users[(i + 1) % self.users.len()].csrf
    }
}

async fn start() -> Env {
    let scope = format!("dockward.authz={}", unique("authz"));
    let web = TestContainer::run("authz-web", &["--label", &scope], QUICK_TO_STOP);
    let sidecar = Sidecar::start(&[&format!("--scope-label={scope}")]).await;
    let console = Console::start_with(
        Path::new(env!("CARGO_BIN_EXE_dockward-web")),
        &[Host { name: "local", url: &sidecar.base, secret: SECRET }],
        Options { users: &[("@ops", "operator")], ..Options::default() },
    );
    let mut users = Vec::new();
    for name in ["viewer1", "operator1", "admin1"] {
        users.push(login(&console.base, name).await);
    }
    let operator = &users[1];
    let image = "127.0.0.1:9/authz-status:1";
    let (status, job) = call(
        &console.base,
        Some(&operator.cookie),
        "pull",
        &[("host", "local"), ("image", image), ("csrf", &operator.csrf)],
    )
    .await;
    assert_eq!(status, 200, "{job}");
    let job = job.as_str().expect("a job id").to_owned();
    // The logs of an app are those of the fleet view's members: wait for `web` to be in it.
    let viewer = users[0].cookie.clone();
    eventually(Duration::from_secs(20), "the console's fleet to show the test container", || {
        let (base, viewer, name) = (console.base.clone(), viewer.clone(), web.name.clone());
        async move {
            let (_, fleet) = call(&base, Some(&viewer), "fleet", &[]).await;
            fleet.to_string().contains(&name).then_some(())
        }
    })
    .await;
    Env { console, sidecar, scope, users, web, job, refused_pulls: Mutex::default() }
}

async fn teardown(env: Env, all_passed: bool) {
    if !all_passed {
        eprintln!("--- console log ---\n{}", env.console.log());
    }
    drop(env);
}

/// How a mutation's request carries the CSRF token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// The session's own token (reads carry none).
    Valid,
    /// A valid token, of another user's session.
    OtherSession,
    /// An empty token.
    Empty,
    /// The session's own token, from another origin.
    CrossSite,
}

impl Token {
    fn label(self) -> &'static str {
        match self {
            Self::Valid => "own_token",
            Self::OtherSession => "another_sessions_token",
            Self::Empty => "empty_token",
            Self::CrossSite => "cross_site",
        }
    }
}

/// What the console must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Allowed,
    NotSignedIn,
    Forbidden { needed: Role, have: Role },
    Csrf,
}

/// The rules, in the order the console applies them: a cross-site POST is
/// refused first, then a request without a session, then a role below the
/// one needed, then a mutation without its session's token.
fn verdict(who: Option<Role>, needed: Role, mutation: bool, token: Token) -> Verdict {
    if token == Token::CrossSite {
        return Verdict::Csrf;
    }
    let Some(have) = who else { return Verdict::NotSignedIn };
    if have < needed {
        return Verdict::Forbidden { needed, have };
    }
    if mutation && token != Token::Valid {
        return Verdict::Csrf;
    }
    Verdict::Allowed
}

fn who_label(who: Option<Role>) -> &'static str {
    who.map_or("anonymous", Role::as_str)
}

const WHO: [Option<Role>; 4] = [None, Some(Role::Viewer), Some(Role::Operator), Some(Role::Admin)];
const MUTATION_TOKENS: [Token; 4] = [Token::Valid, Token::OtherSession, Token::Empty, Token::CrossSite];
const READ_TOKENS: [Token; 2] = [Token::Valid, Token::CrossSite];

/// Every server function (`/api/fn/<endpoint>`), the role it needs, and
/// whether it mutates (and so needs the session's CSRF token).
fn server_fns() -> Vec<(&'static str, Role, bool)> {
    vec![
        ("whoami", SIGNED_IN, false),
        ("fleet", Verb::ListContainers.role(), false),
        ("container", Verb::InspectContainer.role(), false),
        ("logs", Verb::Logs.role(), false),
        ("app_logs", Verb::Logs.role(), false),
        ("audit", Verb::Audit.role().max(Verb::AuditVerify.role()), false),
        ("job_status", Verb::Pull.role().max(Verb::Recreate.role()), false),
        ("updates", Verb::Updates.role(), false),
        ("recreate", Verb::Recreate.role(), true),
        ("restart", Verb::Restart.role(), true),
        ("pull", Verb::Pull.role(), true),
        ("prune", Verb::Prune.role(), true),
        ("hosts", Verb::Revoke.role(), false),
        ("add_host", Verb::Revoke.role(), true),
        ("revoke_host", Verb::Revoke.role(), true),
    ]
}

/// Every plain GET route beside the pages, with the role it needs.
fn get_routes() -> Vec<(&'static str, Role)> {
    vec![
        ("/api/live", Verb::ListContainers.role()),
        ("/api/logs/follow", Verb::Logs.role()),
        ("/api/logs/download", Verb::Logs.role()),
        ("/api/audit/export", Verb::Audit.role()),
        ("/api/history/export", Role::Viewer),
        ("/api/alerts", Role::Viewer),
        ("/api/alerts/channels", Role::Admin),
        ("/metrics", Verb::Metrics.role()),
    ]
}

/// Every page: its path template, and the role its data needs (the page
/// itself answers any signed-in user and says what is missing).
fn pages() -> Vec<(&'static str, Role)> {
    vec![
        ("/", Verb::ListContainers.role()),
        ("/network", Verb::ListContainers.role()),
        ("/c/:host/:id", Verb::InspectContainer.role()),
        ("/logs/:host/:id", Verb::Logs.role()),
        ("/apps/:host/:project/logs", Verb::Logs.role()),
        ("/audit", Verb::Audit.role().max(Verb::AuditVerify.role())),
    ]
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn form(args: &[(&str, String)]) -> Vec<(String, String)> {
    args.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

/// A POST as the matrix cell says: `who`'s cookie, the form, and an evil
/// `Origin` for a cross-site request. The status and the body.
async fn post(env: &Env, who: Option<Role>, path: &str, args: &[(String, String)], token: Token) -> (u16, String) {
    let mut req = http().post(format!("{}{path}", env.console.base)).form(args);
    if let Some(u) = env.user(who) {
        req = req.header("cookie", format!("dockward_session={}", u.cookie));
    }
    if token == Token::CrossSite {
        req = req.header("origin", "https://evil.example");
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn token_for(env: &Env, who: Option<Role>, token: Token) -> String {
    match token {
        Token::Valid | Token::CrossSite => env.user(who).map(|u| u.csrf.clone()).unwrap_or_default(),
        Token::OtherSession => env.other_token(who).to_owned(),
        Token::Empty => String::new(),
    }
}

/// Checks a server function's refusal body against the verdict.
fn assert_refusal(v: Verdict, status: u16, body: &Value, cell: &str) {
    match v {
        Verdict::Allowed => assert_eq!(status, 200, "{cell}: {body}"),
        Verdict::NotSignedIn => {
            assert_eq!((status, body["error"].as_str()), (401, Some("not_signed_in")), "{cell}: {body}")
        }
        Verdict::Forbidden { needed, have } => {
            assert_eq!(status, 403, "{cell}: {body}");
            let want = serde_json::json!({"error": "forbidden", "needed": needed.as_str(), "have": have.as_str()});
            assert_eq!(body, &want, "{cell}");
        }
        Verdict::Csrf => assert_eq!((status, body["error"].as_str()), (403, Some("csrf")), "{cell}: {body}"),
    }
}

fn audit_mentions(sidecar: &Sidecar, needle: &str) -> Vec<Value> {
    sidecar.audit_records().into_iter().filter(|r| r.to_string().contains(needle)).collect()
}

/// A stopped container in scope: what a prune of containers would remove.
fn stopped_in_scope(scope: &str) -> TestContainer {
    let name = unique("authz-stopped");
    let id = docker(&["create", "--name", &name, "--label", "dockward.test=1", "--label", scope, IMAGE, "true"]);
    TestContainer { id, name }
}

/// One cell of the server-function matrix.
async fn server_fn_cell(
    env: Arc<Env>,
    endpoint: &'static str,
    needed: Role,
    mutation: bool,
    who: Option<Role>,
    token: Token,
) {
    let cell = format!("{endpoint} as {} with {}", who_label(who), token.label());
    let v = verdict(who, needed, mutation, token);
    let csrf = token_for(&env, who, token);
    let host = ("host", "local".to_owned());
    let web_id = env.web.id.clone();
    match endpoint {
        "restart" => {
            let target = TestContainer::run("authz-restart", &["--label", &env.scope], QUICK_TO_STOP);
            let before = target.started_at();
            let args = form(&[host, ("id", target.id.clone()), ("csrf", csrf)]);
            let (status, body) = post(&env, who, "/api/fn/restart", &args, token).await;
            let body: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{cell}: not JSON: {body}"));
            assert_refusal(v, status, &body, &cell);
            let records = audit_mentions(&env.sidecar, &target.id);
            if v == Verdict::Allowed {
                assert_eq!(body["id"], target.id.as_str(), "{cell}: {body}");
                assert_ne!(target.started_at(), before, "{cell}: the restart did not happen");
                let name = &env.user(who).unwrap().name;
                assert!(
                    records
                        .iter()
                        .any(|r| r["verb"] == "restart" && r["outcome"] == "ok" && r["actor"] == name.as_str()),
                    "{cell}: no audit record of the restart by {name}: {records:?}"
                );
            } else {
                assert_eq!(target.started_at(), before, "{cell}: a refused restart restarted the container");
                assert_eq!(target.state(), "running", "{cell}");
                assert_eq!(records, Vec::<Value>::new(), "{cell}: a refused restart reached the sidecar");
            }
        }
        "prune" => {
            let target = stopped_in_scope(&env.scope);
            let prunes_before = env.sidecar.audit_records().iter().filter(|r| is_prune(r)).count();
            let args = form(&[host, ("kind", "containers".into()), ("all", "false".into()), ("csrf", csrf)]);
            let (status, body) = post(&env, who, "/api/fn/prune", &args, token).await;
            let body: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{cell}: not JSON: {body}"));
            assert_refusal(v, status, &body, &cell);
            let prunes: Vec<Value> = env.sidecar.audit_records().into_iter().filter(is_prune).collect();
            if v == Verdict::Allowed {
                assert!(body["removed"].to_string().contains(&target.id), "{cell}: {body}");
                assert!(!docker_ok(&["inspect", &target.id]), "{cell}: the stopped container is still there");
                let name = &env.user(who).unwrap().name;
                assert!(
                    prunes[..prunes.len() - prunes_before]
                        .iter()
                        .any(|r| r["verb"] == "prune.containers" && r["actor"] == name.as_str()),
                    "{cell}: no audit record of the prune by {name}: {prunes:?}"
                );
            } else {
                assert!(docker_ok(&["inspect", &target.id]), "{cell}: a refused prune removed the stopped container");
                assert_eq!(prunes.len(), prunes_before, "{cell}: a refused prune reached the sidecar: {prunes:?}");
            }
        }
        "pull" => {
            // The sidecar refuses IP-literal registries by default: an allowed
            // pull reaches it, is audited, and pulls nothing.
            let image = format!("127.0.0.1:9/{}:1", unique("authz-pull").to_lowercase());
            let args = form(&[host, ("image", image.clone()), ("csrf", csrf)]);
            let (status, body) = post(&env, who, "/api/fn/pull", &args, token).await;
            let body: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{cell}: not JSON: {body}"));
            assert_refusal(v, status, &body, &cell);
            if v == Verdict::Allowed {
                let job = body.as_str().unwrap_or_else(|| panic!("{cell}: no job id: {body}")).to_owned();
                let u = env.user(who).unwrap();
                let done = eventually(Duration::from_secs(20), &format!("{cell}: the pull job to end"), || {
                    let (base, cookie, job) = (env.console.base.clone(), u.cookie.clone(), job.clone());
                    async move {
                        let (_, p) = call(&base, Some(&cookie), "job_status", &[("job", &job)]).await;
                        (!p["done"].is_null()).then_some(p)
                    }
                })
                .await;
                assert_eq!(done["title"], image.as_str(), "{cell}: {done}");
                let records = audit_mentions(&env.sidecar, &image);
                assert!(
                    records.iter().any(|r| r["verb"] == "pull" && r["actor"] == u.name.as_str()),
                    "{cell}: no audit record of the pull by {}: {records:?}; the job: {done}",
                    u.name
                );
            } else {
                assert_eq!(
                    audit_mentions(&env.sidecar, &image),
                    Vec::<Value>::new(),
                    "{cell}: a refused pull reached the sidecar"
                );
                env.refused_pulls.lock().unwrap().push(image);
            }
        }
        "recreate" => {
            let target = TestContainer::run("authz-recreate", &["--label", &env.scope], QUICK_TO_STOP);
            let args = form(&[
                host,
                ("id", target.name.clone()),
                ("pull", "false".into()),
                ("build", "false".into()),
                ("csrf", csrf),
            ]);
            let (status, body) = post(&env, who, "/api/fn/recreate", &args, token).await;
            let body: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{cell}: not JSON: {body}"));
            assert_refusal(v, status, &body, &cell);
            if v == Verdict::Allowed {
                let job = body.as_str().unwrap_or_else(|| panic!("{cell}: no job id: {body}")).to_owned();
                let u = env.user(who).unwrap();
                let done = eventually(Duration::from_secs(60), &format!("{cell}: the recreate job to end"), || {
                    let (base, cookie, job) = (env.console.base.clone(), u.cookie.clone(), job.clone());
                    async move {
                        let (_, p) = call(&base, Some(&cookie), "job_status", &[("job", &job)]).await;
                        (!p["done"].is_null()).then_some(p)
                    }
                })
                .await;
                assert!(done["done"]["Ok"].is_string(), "{cell}: {done}");
                assert_ne!(docker(&["inspect", "-f", "{{.Id}}", &target.name]), target.id, "{cell}: not recreated");
                let records = audit_mentions(&env.sidecar, &target.id);
                assert!(
                    records
                        .iter()
                        .any(|r| r["verb"] == "recreate" && r["outcome"] == "ok" && r["actor"] == u.name.as_str()),
                    "{cell}: no audit record of the recreate by {}: {records:?}",
                    u.name
                );
            } else {
                assert_eq!(docker(&["inspect", "-f", "{{.Id}}", &target.name]), target.id, "{cell}: recreated anyway");
                assert_eq!(
                    audit_mentions(&env.sidecar, &target.id),
                    Vec::<Value>::new(),
                    "{cell}: reached the sidecar"
                );
            }
        }
        "add_host" => {
            let name = unique("authz-host").to_lowercase();
            let args = form(&[("name", name.clone()), ("url", "https://127.0.0.1:9".into()), ("csrf", csrf)]);
            let (status, body) = post(&env, who, "/api/fn/add_host", &args, token).await;
            let body: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{cell}: not JSON: {body}"));
            assert_refusal(v, status, &body, &cell);
            let tokens = std::fs::read_to_string(env.console.enrol_dir().join("tokens.json")).unwrap_or_default();
            if v == Verdict::Allowed {
                assert!(body["command"].as_str().is_some_and(|c| c.contains("--token dwj_")), "{cell}: {body}");
                assert!(tokens.contains(&name), "{cell}: no token waiting for {name}");
            } else {
                assert!(!tokens.contains(&name), "{cell}: a refused request made a token");
            }
        }
        "revoke_host" => {
            // Nothing is enrolled: allowed, it is a 404 that names the host.
            let args = form(&[("name", "never-enrolled".into()), ("csrf", csrf)]);
            let (status, body) = post(&env, who, "/api/fn/revoke_host", &args, token).await;
            let body: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{cell}: not JSON: {body}"));
            if v == Verdict::Allowed {
                assert_eq!(status, 404, "{cell}: {body}");
                assert!(body.to_string().contains("never-enrolled"), "{cell}: {body}");
            } else {
                assert_refusal(v, status, &body, &cell);
            }
        }
        _ => {
            let args: Vec<(String, String)> = match endpoint {
                "whoami" | "fleet" => vec![],
                "container" => form(&[host, ("id", web_id)]),
                "logs" => form(&[host, ("id", web_id), ("tail", "5".into()), ("timestamps", "true".into())]),
                "app_logs" => form(&[host, ("project", "standalone".into()), ("tail", "5".into())]),
                "audit" => {
                    let mut a = form(&[host]);
                    for k in ["actor", "verb", "target", "outcome", "since", "until", "cursor"] {
                        a.push((format!("filter[{k}]"), String::new()));
                    }
                    a
                }
                "job_status" => form(&[("job", env.job.clone())]),
                "hosts" | "updates" => vec![],
                other => panic!("no arguments for the server function {other}: add them to the matrix"),
            };
            let (status, body) = post(&env, who, &format!("/api/fn/{endpoint}"), &args, token).await;
            let body: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{cell}: not JSON: {body}"));
            assert_refusal(v, status, &body, &cell);
            if v == Verdict::Allowed {
                let text = body.to_string();
                let proof = match endpoint {
                    "whoami" => env.user(who).unwrap().name.clone(),
                    "fleet" | "container" | "app_logs" => env.web.name.clone(),
                    // Nothing of the scope has an update: two empty lists.
                    "updates" => "\"update\":[]".into(),
                    "logs" => "tick".into(),
                    "audit" => "\"verify\"".into(),
                    "job_status" => "authz-status".into(),
                    "hosts" => "\"local\"".into(),
                    _ => unreachable!(),
                };
                assert!(text.contains(&proof), "{cell}: the answer lacks {proof:?}: {text}");
            }
        }
    }
}

fn is_prune(r: &Value) -> bool {
    r["verb"].as_str().is_some_and(|v| v.starts_with("prune"))
}

/// One cell of `POST /auth/logout`: a valid token ends the session (a
/// session of its own, logged in for this cell); anything else leaves it.
async fn logout_cell(env: Arc<Env>, who: Option<Role>, token: Token) {
    let cell = format!("logout as {} with {}", who_label(who), token.label());
    let own = match (who, token) {
        (Some(r), Token::Valid) => {
            let name = env.user(Some(r)).unwrap().name.clone();
            Some(login(&env.console.base, &name).await)
        }
        _ => None,
    };
    let cookie = own.as_ref().or(env.user(who)).map(|u| u.cookie.clone());
    let csrf = match (&own, token) {
        (Some(u), _) => u.csrf.clone(),
        _ => token_for(&env, who, token),
    };
    let mut req = http().post(format!("{}/auth/logout", env.console.base)).form(&[("csrf", csrf)]);
    if let Some(c) = &cookie {
        req = req.header("cookie", format!("dockward_session={c}"));
    }
    if token == Token::CrossSite {
        req = req.header("origin", "https://evil.example");
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
    let ends = who.is_some() && token == Token::Valid;
    let want = if token == Token::CrossSite {
        403
    } else if who.is_none() || ends {
        303
    } else {
        403
    };
    assert_eq!(status, want, "{cell}");
    if status == 303 {
        assert_eq!(location.as_deref(), Some("/login"), "{cell}");
    }
    if let Some(c) = cookie {
        let (after, body) = call(&env.console.base, Some(&c), "whoami", &[]).await;
        let want = if ends { 401 } else { 200 };
        assert_eq!(after, want, "{cell}: the session after logout: {body}");
    }
}

/// One cell of the password change (`GET /password`, `POST /auth/password`):
/// any signed-in user gets the form; a change needs the session's own token
/// from this origin and the current password. Every cell here gives a wrong
/// current password, so nothing may change: the session stays alive (a change
/// ends the user's sessions).
async fn password_cell(env: Arc<Env>, who: Option<Role>, token: Token) {
    let cell = format!("password as {} with {}", who_label(who), token.label());
    let cookie = env.user(who).map(|u| u.cookie.clone());
    let mut req = http().get(format!("{}/password", env.console.base));
    if let Some(c) = &cookie {
        req = req.header("cookie", format!("dockward_session={c}"));
    }
    let r = req.send().await.unwrap();
    if who.is_none() {
        assert_eq!(r.status(), 303, "{cell}: the page");
        assert_eq!(r.headers()["location"], "/login", "{cell}");
    } else {
        assert_eq!(r.status(), 200, "{cell}: the page");
        assert!(r.text().await.unwrap().contains("name=\"csrf\""), "{cell}: no form");
    }
    let new = "a brand new and long enough password".to_owned();
    let args = form(&[
        ("csrf", token_for(&env, who, token)),
        ("current", "not the password".into()),
        ("new", new.clone()),
        ("confirm", new),
    ]);
    let mut req = http().post(format!("{}/auth/password", env.console.base)).form(&args);
    if let Some(c) = &cookie {
        req = req.header("cookie", format!("dockward_session={c}"));
    }
    if token == Token::CrossSite {
        req = req.header("origin", "https://evil.example");
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
    let (want, to) = match (who, token) {
        (_, Token::CrossSite) => (403, None),
        (None, _) => (303, Some("/login")),
        (Some(_), Token::Valid) => (303, Some("/password?error=wrong")),
        (Some(_), _) => (403, None),
    };
    assert_eq!(status, want, "{cell}");
    assert_eq!(location.as_deref(), to, "{cell}");
    if let Some(c) = cookie {
        let (after, body) = call(&env.console.base, Some(&c), "whoami", &[]).await;
        assert_eq!(after, 200, "{cell}: the session after a refused change: {body}");
    }
}

/// One cell of the plain GET routes.
async fn route_cell(env: Arc<Env>, route: &'static str, needed: Role, who: Option<Role>) {
    let cell = format!("GET {route} as {}", who_label(who));
    let query: Vec<(&str, String)> = match route {
        "/api/live" | "/metrics" | "/api/alerts" | "/api/alerts/channels" => vec![],
        "/api/logs/follow" | "/api/logs/download" => {
            vec![("host", "local".into()), ("id", env.web.id.clone()), ("tail", "5".into())]
        }
        "/api/audit/export" => vec![("host", "local".into()), ("format", "csv".into())],
        "/api/history/export" => vec![("host", "local".into()), ("range", "1h".into()), ("format", "csv".into())],
        other => panic!("no query for {other}: add it to the matrix"),
    };
    let mut req = http().get(format!("{}{route}", env.console.base)).query(&query);
    if let Some(u) = env.user(who) {
        req = req.header("cookie", format!("dockward_session={}", u.cookie));
    }
    let mut r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let ctype = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    match verdict(who, needed, false, Token::Valid) {
        Verdict::NotSignedIn => {
            assert_eq!(status, 401, "{cell}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unauthorized", "{cell}: {body}");
        }
        Verdict::Forbidden { .. } => {
            assert_eq!(status, 403, "{cell}");
            let body = r.text().await.unwrap();
            assert!(
                !body.contains("seq,time") && !body.contains("tick") && !body.contains("dockward_web_"),
                "{cell}: data in a refusal: {body}"
            );
        }
        Verdict::Csrf => unreachable!(),
        Verdict::Allowed => {
            assert_eq!(status, 200, "{cell}");
            let (want_type, proof) = match route {
                "/api/live" => ("text/event-stream", env.web.name.as_str()),
                "/api/logs/follow" => ("text/event-stream", "tick"),
                "/api/logs/download" => ("text/plain", "tick"),
                "/metrics" => ("text/plain; version=0.0.4", "dockward_web_hosts{status=\"up\"} 1"),
                "/api/history/export" => ("text/csv", "time,cpu_min_percent"),
                "/api/alerts" => ("application/json", "\"firing\""),
                "/api/alerts/channels" => ("application/json", "["),
                _ => ("text/csv", "seq,time,actor"),
            };
            assert!(ctype.starts_with(want_type), "{cell}: {ctype}");
            // Streams never end: read until the proof arrives.
            let mut seen = String::new();
            let found = tokio::time::timeout(Duration::from_secs(20), async {
                while let Ok(Some(chunk)) = r.chunk().await {
                    seen.push_str(&String::from_utf8_lossy(&chunk));
                    if seen.contains(proof) {
                        return true;
                    }
                }
                false
            })
            .await
            .unwrap_or(false);
            assert!(found, "{cell}: no {proof:?} in the answer");
        }
    }
}

/// One cell of the pages: anonymous is sent to the login page; a signed-in
/// user gets the page, with its data only with the role the data needs.
async fn page_cell(env: Arc<Env>, template: &'static str, needed: Role, who: Option<Role>) {
    let path = template.replace(":host", "local").replace(":id", &env.web.id).replace(":project", "standalone");
    let cell = format!("GET {path} as {}", who_label(who));
    let mut req = http().get(format!("{}{path}", env.console.base));
    if let Some(u) = env.user(who) {
        req = req.header("cookie", format!("dockward_session={}", u.cookie));
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
    let body = r.text().await.unwrap();
    let proof = if template == "/audit" { "id=\"audit\"" } else { env.web.name.as_str() };
    match verdict(who, needed, false, Token::Valid) {
        Verdict::NotSignedIn => {
            assert_eq!((status, location.as_deref()), (303, Some("/login")), "{cell}");
            assert!(!body.contains(proof), "{cell}: data before login");
        }
        Verdict::Forbidden { .. } => {
            assert_eq!(status, 200, "{cell}");
            assert!(!body.contains(proof), "{cell}: the page shows data its role may not see");
            assert!(body.contains("role"), "{cell}: the page does not say which role is missing");
        }
        Verdict::Csrf => unreachable!(),
        Verdict::Allowed => {
            assert_eq!(status, 200, "{cell}");
            assert!(body.contains(proof), "{cell}: the page lacks {proof:?}");
        }
    }
}

/// `/healthz` answers everyone, signed in or not.
async fn healthz_answers_everyone(env: Arc<Env>) {
    for who in WHO {
        let mut req = http().get(format!("{}/healthz", env.console.base));
        if let Some(u) = env.user(who) {
            req = req.header("cookie", format!("dockward_session={}", u.cookie));
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", who_label(who));
        assert_eq!(r.json::<Value>().await.unwrap(), serde_json::json!({"status": "ok"}));
    }
}

/// The icon answers everyone, signed in or not (the login page links it
/// too), as an SVG cached for a long time; `/favicon.ico` as well, so no
/// browser gets a 404 for it.
async fn favicons_answer_everyone(env: Arc<Env>) {
    for path in ["/favicon.svg", "/favicon.ico"] {
        for who in WHO {
            let mut req = http().get(format!("{}{path}", env.console.base));
            if let Some(u) = env.user(who) {
                req = req.header("cookie", format!("dockward_session={}", u.cookie));
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200, "{path} for {}", who_label(who));
            assert_eq!(r.headers()["content-type"], "image/svg+xml", "{path}");
            let cache = r.headers()["cache-control"].to_str().unwrap().to_owned();
            assert!(cache.contains("max-age=31536000"), "{path}: {cache}");
            let body = r.text().await.unwrap();
            assert!(body.starts_with("<svg") && !body.contains("<script"), "{path}: {body}");
        }
    }
}

/// The matrix covers every server function, route and page the console has:
/// read from its sources, so a new one fails here until it is added.
/// `/hosts` (plain forms): anonymous users are sent to log in; viewers and
/// operators get a 403 with no host in it; admins the hosts and the add
/// form. Adding needs the session's CSRF token and the admin role; a
/// refused add makes no token.
/// `/actions` (ask, then start) and `/jobs/{job}`: operators only; the
/// start needs the session's token; a recreate started there runs, is
/// audited with the user's name, and its page follows it to the end.
async fn the_action_pages_are_for_operators_and_check_csrf(env: Arc<Env>) {
    let base = &env.console.base;
    let get = |who: Option<Role>, path: String| {
        let mut req = http().get(format!("{base}{path}"));
        if let Some(u) = env.user(who) {
            req = req.header("cookie", format!("dockward_session={}", u.cookie));
        }
        req.send()
    };
    let target = TestContainer::run("authz-action", &["--label", &env.scope], QUICK_TO_STOP);
    let ask = format!("/actions?host=local&id={}&how=recreate", target.name);
    let r = get(None, ask.clone()).await.unwrap();
    assert_eq!(r.status(), 303, "anonymous: to the login page");
    let r = get(Some(Role::Viewer), ask.clone()).await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(!r.text().await.unwrap().contains("<form"), "no form for a viewer");
    let r = get(Some(Role::Operator), ask.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains(r#"action="/actions""#) && body.contains(&target.name), "{body}");
    // Bad input is a page that says so, not a form.
    for bad in ["/actions?host=local&id=bad%20ref&how=recreate", "/actions?host=nope&id=x&how=recreate"] {
        let r = get(Some(Role::Operator), bad.into()).await.unwrap();
        assert!([400, 404].contains(&r.status().as_u16()), "{bad}: {}", r.status());
    }
    let start = |who, token| {
        form(&[
            ("csrf", token_for(&env, who, token)),
            ("host", "local".into()),
            ("id", target.name.clone()),
            ("how", "recreate".into()),
        ])
    };
    for (who, token) in [
        (Some(Role::Operator), Token::OtherSession),
        (Some(Role::Operator), Token::CrossSite),
        (Some(Role::Viewer), Token::Valid),
    ] {
        let (status, body) = post(&env, who, "/actions", &start(who, token), token).await;
        assert_eq!(status, 403, "{who:?} {}: {body}", token.label());
    }
    assert_eq!(docker(&["inspect", "-f", "{{.Id}}", &target.name]), target.id, "a refused start recreated it");
    // The operator's: 303 to the job's page, which reloads itself until the job ends.
    let who = Some(Role::Operator);
    let u = env.user(who).unwrap();
    let r = http()
        .post(format!("{base}/actions"))
        .header("cookie", format!("dockward_session={}", u.cookie))
        .form(&start(who, Token::Valid))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let job = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(job.starts_with("/jobs/"), "{job}");
    assert_eq!(get(Some(Role::Viewer), job.clone()).await.unwrap().status(), 403);
    let done = eventually(Duration::from_secs(60), "the job's page to say it is done", || {
        let r = get(who, job.clone());
        async move {
            let body = r.await.ok()?.text().await.ok()?;
            (!body.contains("http-equiv=\"refresh\"")).then_some(body)
        }
    })
    .await;
    assert!(done.contains("Done:"), "{done}");
    assert_ne!(docker(&["inspect", "-f", "{{.Id}}", &target.name]), target.id, "not recreated");
    let records = audit_mentions(&env.sidecar, &target.id);
    assert!(
        records.iter().any(|r| r["verb"] == "recreate" && r["outcome"] == "ok" && r["actor"] == u.name.as_str()),
        "no audit record of the recreate by {}: {records:?}",
        u.name
    );
    assert_eq!(get(who, "/jobs/0123456789abcdef01234567".into()).await.unwrap().status(), 404);
}

async fn the_hosts_page_is_for_admins_and_checks_csrf(env: Arc<Env>) {
    let base = &env.console.base;
    let get = |who: Option<Role>| {
        let mut req = http().get(format!("{base}/hosts"));
        if let Some(u) = env.user(who) {
            req = req.header("cookie", format!("dockward_session={}", u.cookie));
        }
        req.send()
    };
    let r = get(None).await.unwrap();
    assert_eq!(
        (r.status().as_u16(), r.headers().get("location").map(|l| l.to_str().unwrap().to_owned())),
        (303, Some("/login".into()))
    );
    for who in [Role::Viewer, Role::Operator] {
        let r = get(Some(who)).await.unwrap();
        assert_eq!(r.status(), 403, "{who:?}");
        let body = r.text().await.unwrap();
        assert!(!body.contains("data-host"), "{who:?}: {body}");
    }
    let r = get(Some(Role::Admin)).await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains(r#"data-host="local""#) && body.contains("/hosts/add"), "{body}");
    let tokens = || std::fs::read_to_string(env.console.enrol_dir().join("tokens.json")).unwrap_or_default();
    for (who, token, want) in [
        (Some(Role::Admin), Token::OtherSession, 403),
        (Some(Role::Admin), Token::CrossSite, 403),
        (Some(Role::Operator), Token::Valid, 403),
        (Some(Role::Admin), Token::Valid, 200),
    ] {
        let name = unique("page-host").to_lowercase();
        let args = form(&[
            ("csrf", token_for(&env, who, token)),
            ("name", name.clone()),
            ("url", "https://127.0.0.1:9".into()),
        ]);
        let (status, body) = post(&env, who, "/hosts/add", &args, token).await;
        assert_eq!(status, want, "{who:?} {}: {body}", token.label());
        if want == 200 {
            assert!(body.contains("--token dwj_") && body.contains("Run this on"), "{body}");
            assert!(tokens().contains(&name));
        } else {
            assert!(!tokens().contains(&name), "{who:?} {}: a refused add made a token", token.label());
        }
    }
    // Revoking: admins only, with the token; a host never enrolled is a 404 naming it.
    for (who, token, want) in [
        (Some(Role::Operator), Token::Valid, 403),
        (Some(Role::Admin), Token::Empty, 403),
        (Some(Role::Admin), Token::Valid, 404),
    ] {
        let args = form(&[("csrf", token_for(&env, who, token)), ("name", "never-enrolled".into())]);
        let (status, body) = post(&env, who, "/hosts/revoke", &args, token).await;
        assert_eq!(status, want, "{who:?} {}: {body}", token.label());
        if want == 404 {
            assert!(body.contains("never-enrolled") && body.contains(r#"data-host="local""#), "{body}");
        }
    }
    // A link cannot make the page say anything: only a host of the console is asked about.
    let r = http()
        .get(format!("{base}/hosts?revoke=%3Cb%3Eall%3C/b%3E"))
        .header("cookie", format!("dockward_session={}", env.user(Some(Role::Admin)).unwrap().cookie))
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(!body.contains("Revoke <b>") && !body.contains("&lt;b&gt;all"), "{body}");
}

async fn every_server_function_route_and_page_is_in_the_matrix(_env: Arc<Env>) {
    let src = |p: &str| std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(p)).unwrap();
    let quoted_after = |text: &str, marker: &str| -> Vec<String> {
        text.split(marker).skip(1).map(|rest| rest.split('"').next().unwrap().to_owned()).collect()
    };
    let fns = quoted_after(&src("src/server_fns.rs"), "endpoint = \"");
    let known: Vec<&str> = server_fns().iter().map(|f| f.0).collect();
    assert!(fns.len() >= 10, "{fns:?}");
    for f in &fns {
        assert!(known.contains(&f.as_str()), "the server function {f} is not in the matrix");
    }
    let routes = quoted_after(&src("src/server/routes.rs"), ".route(\"");
    let covered: Vec<&str> = get_routes()
        .iter()
        .map(|r| r.0)
        .chain([
            "/healthz",
            "/favicon.svg",
            "/favicon.ico",
            "/auth/login",
            "/auth/logout",
            "/password",
            "/auth/password",
            // The hosts page: its own scenario (the_hosts_page_is_for_admins_and_checks_csrf).
            "/hosts",
            "/hosts/add",
            "/hosts/revoke",
            // The action and job pages: their own (the_action_pages_are_for_operators_and_check_csrf).
            "/actions",
            "/jobs/{job}",
            // The history page: its own (frontend/tests/history.rs).
            "/history",
            // The alerts page and its changes: alert_change_cell below, and frontend/tests/alerts.rs.
            "/alerts",
            "/api/alerts/rules",
            "/api/alerts/silences",
            "/api/alerts/{what}/{id}",
            "/api/alerts/{what}/{id}/{verb}",
            // Grants, tokens and the second factor: frontend/tests/access.rs.
            "/access",
            "/auth/totp",
            // Single sign-on and its login page: frontend/tests/oidc.rs.
            "/login",
            "/auth/oidc/start",
            "/auth/oidc/callback",
            "/api/tokens",
            "/api/tokens/{id}",
            "/api/users",
            "/api/users/{name}/{verb}",
        ])
        .collect();
    for r in &routes {
        assert!(covered.contains(&r.as_str()), "the route {r} is not in the matrix");
    }
    let paths = quoted_after(&src("src/app.rs"), "path!(\"");
    let known: Vec<&str> = pages().iter().map(|p| p.0).chain(["/login"]).collect();
    for p in &paths {
        assert!(known.contains(&p.as_str()), "the page {p} is not in the matrix");
    }
}

/// One cell of the alerts API's changes: a rule (admins) or a silence
/// (operators) added as `who` with `token`; refused, it is not stored.
async fn alert_change_cell(env: Arc<Env>, what: &'static str, needed: Role, who: Option<Role>, token: Token) {
    let cell = format!("POST /api/alerts/{what} as {} with {}", who_label(who), token.label());
    let mark = unique("authz-alert");
    let body = match what {
        "rules" => serde_json::json!({"name": mark, "kind": "exited", "enabled": false}),
        _ => serde_json::json!({"scope": "host:local", "minutes": 1, "reason": mark}),
    };
    let mut req = http()
        .post(format!("{}/api/alerts/{what}", env.console.base))
        .header("x-csrf-token", token_for(&env, who, token))
        .json(&body);
    if let Some(u) = env.user(who) {
        req = req.header("cookie", format!("dockward_session={}", u.cookie));
    }
    if token == Token::CrossSite {
        req = req.header("origin", "https://evil.example");
    }
    let status = req.send().await.unwrap().status().as_u16();
    let v = verdict(who, needed, true, token);
    let want = match v {
        Verdict::Allowed => 201,
        Verdict::NotSignedIn if token != Token::CrossSite => 401,
        _ => 403,
    };
    assert_eq!(status, want, "{cell}");
    let admin = env.user(Some(Role::Admin)).unwrap();
    let (_, all) = testkit::console::client::get(&env.console.base, "/api/alerts", &admin.cookie).await;
    assert_eq!(all.contains(&mark), v == Verdict::Allowed, "{cell}: stored only when allowed");
}

/// After every cell: none of the pulls the console refused reached the
/// sidecar later (a pull runs in the background once started).
async fn no_refused_pull_ever_reached_the_sidecar(env: Arc<Env>) {
    let refused = env.refused_pulls.lock().unwrap().clone();
    assert!(!refused.is_empty());
    let log = std::fs::read_to_string(env.sidecar.audit_path()).unwrap();
    for image in refused {
        assert!(!log.contains(&image), "the refused pull of {image} reached the sidecar");
    }
}

#[path = "authz/export.rs"]
mod export;

fn main() -> ExitCode {
    let mut scenarios: Vec<Scenario<Env>> = vec![scenario(
        "every_server_function_route_and_page_is_in_the_matrix",
        every_server_function_route_and_page_is_in_the_matrix,
    )];
    scenarios
        .push(scenario("the_hosts_page_is_for_admins_and_checks_csrf", the_hosts_page_is_for_admins_and_checks_csrf));
    scenarios.push(scenario(
        "the_action_pages_are_for_operators_and_check_csrf",
        the_action_pages_are_for_operators_and_check_csrf,
    ));
    for (endpoint, needed, mutation) in server_fns() {
        let tokens: &[Token] = if mutation { &MUTATION_TOKENS } else { &READ_TOKENS };
        for who in WHO {
            for &token in tokens {
                let name = leak(format!("fn::{endpoint}::{}::{}", who_label(who), token.label()));
                scenarios.push(scenario(name, move |env| server_fn_cell(env, endpoint, needed, mutation, who, token)));
            }
        }
    }
    for who in WHO {
        for token in MUTATION_TOKENS {
            let name = leak(format!("route::logout::{}::{}", who_label(who), token.label()));
            scenarios.push(scenario(name, move |env| logout_cell(env, who, token)));
        }
    }
    for who in WHO {
        for token in MUTATION_TOKENS {
            let name = leak(format!("route::password::{}::{}", who_label(who), token.label()));
            scenarios.push(scenario(name, move |env| password_cell(env, who, token)));
        }
    }
    for (route, needed) in get_routes() {
        for who in WHO {
            let name = leak(format!("route::{}::{}", route.trim_start_matches('/').replace('/', "_"), who_label(who)));
            scenarios.push(scenario(name, move |env| route_cell(env, route, needed, who)));
        }
    }
    for (template, needed) in pages() {
        for who in WHO {
            let slug = if template == "/" { "overview".to_owned() } else { template.replace([':', '/'], "_") };
            let name = leak(format!("page::{}::{}", slug.trim_matches('_'), who_label(who)));
            scenarios.push(scenario(name, move |env| page_cell(env, template, needed, who)));
        }
    }
    for (what, needed) in [("rules", Role::Admin), ("silences", Role::Operator)] {
        for who in WHO {
            for token in MUTATION_TOKENS {
                let name = leak(format!("route::alerts_{what}::{}::{}", who_label(who), token.label()));
                scenarios.push(scenario(name, move |env| alert_change_cell(env, what, needed, who, token)));
            }
        }
    }
    scenarios.push(scenario("route::healthz::everyone", healthz_answers_everyone));
    scenarios.push(scenario("favicons_answer_everyone", favicons_answer_everyone));
    scenarios.push(scenario(
        "export::csv_cells_that_start_a_formula_are_defused",
        export::csv_cells_that_start_a_formula_are_defused,
    ));
    scenarios.push(scenario("no_refused_pull_ever_reached_the_sidecar", no_refused_pull_ever_reached_the_sidecar));
    testkit::scenarios::run(start, scenarios, teardown)
}
