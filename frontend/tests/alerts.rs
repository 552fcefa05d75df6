//! Alerts end to end: a real sidecar and engine, a console with nobody
//! watching, and where its notifications land on loopback (an HTTP receiver
//! for a signed webhook, an SMTP sink for email; testkit::sinks).
//!
//! A container killed with restart policy `no` sends one webhook whose HMAC
//! verifies (and one email), then one recovery when it runs again; a
//! one-shot job that exits 0 sends nothing; a restart loop sends one alert;
//! a console restarted mid-incident sends no duplicate; a silence holds an
//! incident back and its end lets it through; a channel that is down is
//! retried, then marked failed with the incident kept, and sent on retry; a
//! sidecar stopped with 30 containers is one host alert. Bad input is a 400
//! naming its field, and nothing is stored. With two replicas on one
//! PostgreSQL store, one sends, and the other takes over when it dies.

use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use testkit::console::client::{get, http, login, User};
use testkit::console::{Console, Host, Options};
use testkit::sidecar::{Sidecar, SECRET};
use testkit::sinks::{Received, Receiver, SmtpSink};
use testkit::{docker, eventually, unique, TestContainer};

const HOOK_SECRET: &str = "a-webhook-secret-of-some-length";

/// A JSON call to the alerts API as `u` (its CSRF token sent); the status and body.
async fn api(base: &str, u: &User, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = http()
        .request(method, format!("{base}{path}"))
        .header("cookie", format!("dockward_session={}", u.cookie))
        .header("x-csrf-token", &u.csrf);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")))
}

/// The webhooks about `subject` (a container's or host's name): their events and rule kinds.
fn hooks_about(r: &Receiver, subject: &str) -> Vec<(String, String, u16)> {
    r.received()
        .iter()
        .map(Received::json)
        .zip(r.received().iter().map(|x| x.status))
        .filter(|(v, _)| v["subject"] == subject)
        .map(|(v, s)| (v["event"].as_str().unwrap_or("").to_owned(), v["kind"].as_str().unwrap_or("").to_owned(), s))
        .collect()
}

fn count(r: &Receiver, subject: &str, event: &str) -> usize {
    hooks_about(r, subject).iter().filter(|(e, _, s)| e == event && *s == 200).count()
}

/// Whether a webhook's signature is HMAC-SHA256 of `<timestamp>.<body>` with the secret.
fn signed(r: &Received) -> bool {
    let (Some(ts), Some(sig)) = (r.headers.get("x-dockward-timestamp"), r.headers.get("x-dockward-signature")) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(HOOK_SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(&r.body);
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    *sig == want
}

async fn rule_id(base: &str, admin: &User, kind: &str) -> (i64, Value) {
    let (_, o) = api(base, admin, "GET", "/api/alerts", None).await;
    let r = o["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == kind)
        .unwrap_or_else(|| panic!("a {kind} rule: {o}"));
    (r["id"].as_i64().unwrap(), r.clone())
}

async fn incident(base: &str, u: &User, subject: &str) -> Option<Value> {
    let (_, o) = api(base, u, "GET", "/api/alerts", None).await;
    o["firing"].as_array()?.iter().find(|i| i["subject"] == subject).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_fire_once_recover_once_and_survive_what_goes_wrong() {
    let scope = format!("dockward.alerts={}", unique("al"));
    let label = ["--label", scope.as_str()];
    let hook = Receiver::start().await;
    let mail = SmtpSink::start().await;
    let sidecar = Sidecar::start(&[&format!("--scope-label={scope}")]).await;
    let bin = Path::new(env!("CARGO_BIN_EXE_dockward-web"));
    let mut console = Console::start_with(
        bin,
        &[Host { name: "live", url: &sidecar.base, secret: SECRET }],
        Options { env: &[("DOCKWARD_ALERT_ATTEMPTS", "3")], ..Options::default() },
    );
    let base = console.base.clone();
    let admin = login(&base, "admin1").await;
    let operator = login(&base, "operator1").await;
    let viewer = login(&base, "viewer1").await;

    // A fresh install has its default rules, and no channel.
    let (status, before) = api(&base, &viewer, "GET", "/api/alerts", None).await;
    assert_eq!(status, 200, "{before}");
    let kinds: Vec<&str> = before["rules"].as_array().unwrap().iter().filter_map(|r| r["kind"].as_str()).collect();
    for k in ["exited", "unhealthy", "restart_loop", "oom_killed", "host_down", "audit_broken"] {
        assert!(kinds.contains(&k), "default rule {k}: {kinds:?}");
    }

    // Bad input: a 400 naming the field, and nothing stored.
    for (path, body, field) in [
        (
            "/api/alerts/rules",
            json!({"name": "x", "kind": "log_match", "scope": "app:shop", "pattern": "(unclosed"}),
            "pattern",
        ),
        ("/api/alerts/rules", json!({"name": "x", "kind": "unhealthy", "for_s": 999_999}), "for_s"),
        ("/api/alerts/rules", json!({"name": "x", "kind": "cpu", "percent": -5}), "percent"),
        ("/api/alerts/channels", json!({"name": "x", "type": "carrier-pigeon"}), "type"),
        ("/api/alerts/channels", json!({"name": "x", "type": "webhook", "url": "ftp://example.org/hook"}), "url"),
        (
            "/api/alerts/channels",
            json!({"name": "x", "type": "email", "host": "127.0.0.1", "security": "none", "from": "a@example.org", "to": "not an address"}),
            "to",
        ),
        ("/api/alerts/silences", json!({"minutes": 0}), "minutes"),
    ] {
        let (status, v) = api(&base, &admin, "POST", path, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["field"], field, "{body}: {v}");
    }
    let r = http()
        .post(format!("{base}/api/alerts/rules"))
        .header("cookie", format!("dockward_session={}", admin.cookie))
        .header("x-csrf-token", &admin.csrf)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (_, after) = api(&base, &viewer, "GET", "/api/alerts", None).await;
    assert_eq!(after["rules"], before["rules"], "nothing stored");
    assert_eq!(after["channels"], json!([]), "nothing stored");
    // Admins edit; operators and viewers may not; a change needs the CSRF token.
    let hook_channel =
        json!({"name": "ops hook", "type": "webhook", "url": format!("{}/hook", hook.url), "secret": HOOK_SECRET});
    let (status, _) = api(&base, &operator, "POST", "/api/alerts/channels", Some(hook_channel.clone())).await;
    assert_eq!(status, 403);
    let (status, _) = api(&base, &viewer, "POST", "/api/alerts/silences", Some(json!({"minutes": 5}))).await;
    assert_eq!(status, 403);
    let no_csrf = User { csrf: String::new(), ..admin.clone() };
    let (status, _) = api(&base, &no_csrf, "POST", "/api/alerts/channels", Some(hook_channel.clone())).await;
    assert_eq!(status, 403);

    // Channels: a signed webhook and email; "send test" on each.
    let (status, v) = api(&base, &admin, "POST", "/api/alerts/channels", Some(hook_channel)).await;
    assert_eq!(status, 201, "{v}");
    let hook_id = v["id"].as_i64().unwrap();
    let (status, v) = api(
        &base,
        &admin,
        "POST",
        "/api/alerts/channels",
        Some(json!({"name": "ops mail", "type": "email", "host": "127.0.0.1", "port": mail.port, "security": "none",
            "from": "dockward@example.org", "to": "ops@example.org"})),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let mail_id = v["id"].as_i64().unwrap();
    for id in [hook_id, mail_id] {
        let (status, v) = api(&base, &admin, "POST", &format!("/api/alerts/channels/{id}/test"), None).await;
        assert_eq!(status, 200, "{v}");
    }
    let test = hook.received().into_iter().find(|r| r.json()["event"] == "test").expect("the test webhook");
    assert!(signed(&test), "the test webhook's signature verifies: {:?}", test.headers);
    assert!(mail.messages().iter().any(|m| m.contains("Subject: [dockward] TEST")), "{:?}", mail.messages());
    // Shown back, the secret is masked.
    let (status, shown) = api(&base, &admin, "GET", "/api/alerts/channels", None).await;
    assert_eq!(status, 200);
    assert!(!shown.to_string().contains(HOOK_SECRET), "{shown}");
    let (status, _) = api(&base, &operator, "GET", "/api/alerts/channels", None).await;
    assert_eq!(status, 403, "channels' settings are for admins");
    // The host rule, sooner than its default minute (an edit keeps what it does not name).
    let (host_rule, mut fields) = rule_id(&base, &admin, "host_down").await;
    fields.as_object_mut().unwrap().remove("id");
    fields["for_s"] = json!(3);
    let (status, v) = api(&base, &admin, "PUT", &format!("/api/alerts/rules/{host_rule}"), Some(fields)).await;
    assert_eq!(status, 200, "{v}");

    // A one-shot job that exits 0 never alerts; a killed container (restart policy no) does, once.
    let job = TestContainer::run("al-job", &label, "exit 0");
    let svc = TestContainer::run("al-svc", &label, "sleep 600");
    tokio::time::sleep(Duration::from_secs(2)).await;
    docker(&["kill", &svc.id]);
    let killed = std::time::Instant::now();
    let fired = eventually(Duration::from_secs(10), "a webhook for the killed container", || async {
        hook.received().into_iter().find(|r| r.json()["subject"] == svc.name.as_str() && r.json()["event"] == "firing")
    })
    .await;
    eprintln!("killed → webhook: {:?}", fired.at.duration_since(killed));
    assert!(signed(&fired), "its HMAC verifies");
    assert_eq!(fired.json()["kind"], "exited");
    assert!(fired.json()["title"].as_str().unwrap().contains("code 137"), "{}", fired.json());
    eventually(Duration::from_secs(10), "an email for it", || async {
        mail.messages().iter().any(|m| m.contains(&svc.name) && m.contains("FIRING")).then_some(())
    })
    .await;
    // Restarted mid-incident: no duplicate.
    console.restart();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(count(&hook, &svc.name, "firing"), 1, "{:?}", hooks_about(&hook, &svc.name));
    assert!(hooks_about(&hook, &job.name).is_empty(), "a job that exits 0 never alerts");
    // Acknowledged by an operator (a viewer may not); the page says so.
    let inc = incident(&base, &viewer, &svc.name).await.expect("its incident firing");
    let path = format!("/api/alerts/incidents/{}/ack", inc["id"]);
    assert_eq!(api(&base, &viewer, "POST", &path, None).await.0, 403);
    assert_eq!(api(&base, &operator, "POST", &path, None).await.0, 200);
    let (status, page) = get(&base, "/alerts", &viewer.cookie).await;
    assert_eq!(status, 200);
    assert!(page.contains(&svc.name) && page.contains("acknowledged by operator1"), "{page}");
    assert!(!page.contains("<script"), "the page has no script");
    // Runs again: one recovery.
    docker(&["start", &svc.id]);
    eventually(Duration::from_secs(10), "its recovery", || async {
        (count(&hook, &svc.name, "resolved") == 1).then_some(())
    })
    .await;

    // A restart loop: one alert.
    let looping = TestContainer::run("al-loop", &[label[0], label[1], "--restart", "always"], "sleep 1; exit 1");
    eventually(Duration::from_secs(40), "a restart-loop alert", || async {
        hooks_about(&hook, &looping.name).iter().any(|(e, k, _)| e == "firing" && k == "restart_loop").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(hooks_about(&hook, &looping.name).len(), 1, "{:?}", hooks_about(&hook, &looping.name));
    drop(looping);

    // A silence holds an incident back; its end lets it through.
    let app = ["--label", scope.as_str(), "--label", "com.docker.compose.project=quietapp"];
    let quiet = TestContainer::run("al-quiet", &app, "sleep 600");
    let (status, v) = api(
        &base,
        &operator,
        "POST",
        "/api/alerts/silences",
        Some(json!({"scope": "app:quietapp", "minutes": 30, "reason": "maintenance"})),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let silence = v["id"].as_i64().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    docker(&["kill", &quiet.id]);
    eventually(Duration::from_secs(10), "the silenced incident", || async {
        incident(&base, &viewer, &quiet.name).await
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(hooks_about(&hook, &quiet.name).is_empty(), "silenced: {:?}", hooks_about(&hook, &quiet.name));
    let (status, _) = api(&base, &operator, "DELETE", &format!("/api/alerts/silences/{silence}"), None).await;
    assert_eq!(status, 200);
    eventually(Duration::from_secs(10), "the incident sent once the silence ended", || async {
        (count(&hook, &quiet.name, "firing") == 1).then_some(())
    })
    .await;

    // A channel that is down: tried again, then marked failed; the incident kept; sent on retry.
    hook.answer(500);
    let down = TestContainer::run("al-down", &label, "sleep 600");
    tokio::time::sleep(Duration::from_secs(2)).await;
    docker(&["kill", &down.id]);
    let failed = eventually(Duration::from_secs(40), "the notification marked failed", || async {
        let inc = incident(&base, &viewer, &down.name).await?;
        let (_, o) = api(&base, &viewer, "GET", "/api/alerts", None).await;
        o["notifications"]
            .as_array()?
            .iter()
            .find(|n| n["incident"] == inc["id"] && n["channel"] == hook_id && n["status"] == "failed")
            .cloned()
    })
    .await;
    assert_eq!(failed["attempts"], 3, "{failed}");
    assert!(failed["error"].as_str().is_some_and(|e| e.contains("500")), "{failed}");
    assert_eq!(hooks_about(&hook, &down.name).iter().filter(|(e, _, s)| e == "firing" && *s == 500).count(), 3);
    assert!(incident(&base, &viewer, &down.name).await.is_some(), "the incident is kept");
    let (_, page) = get(&base, "/alerts", &viewer.cookie).await;
    assert!(page.contains(r#"data-status="failed""#), "{page}");
    hook.answer(200);
    let (status, v) =
        api(&base, &operator, "POST", &format!("/api/alerts/notifications/{}/retry", failed["id"]), None).await;
    assert_eq!(status, 200, "{v}");
    eventually(Duration::from_secs(10), "the retried notification", || async {
        (count(&hook, &down.name, "firing") == 1).then_some(())
    })
    .await;

    // Every change is in the console's audit trail.
    let audit = std::fs::read_to_string(console.enrol_dir().join("audit.jsonl")).unwrap_or_default();
    for action in [
        "alert.channel.added",
        "alert.channel.tested",
        "alert.rule.changed",
        "alert.acknowledged",
        "alert.silence.added",
        "alert.silence.ended",
        "alert.notification.retried",
    ] {
        assert!(audit.contains(action), "{action} in the audit trail: {audit}");
    }
    assert!(!audit.contains(HOOK_SECRET), "no secret in the audit trail");

    // A sidecar stopped with 30 containers: one host alert, none per container.
    let many: Vec<TestContainer> = (0..30).map(|_| TestContainer::run("al-many", &label, "sleep 600")).collect();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let seen = hook.received().len();
    sidecar.signal("KILL");
    eventually(Duration::from_secs(30), "the host alert", || async {
        (count(&hook, "live", "firing") == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let new: Vec<Value> = hook.received()[seen..].iter().map(Received::json).collect();
    assert_eq!(new.len(), 1, "exactly one notification: {new:?}");
    assert_eq!(new[0]["kind"], "host_down", "{new:?}");
    drop(many);
    let log = console.log();
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_replicas_on_postgresql_one_sends_and_another_takes_over() {
    let pg = testkit::postgres::Postgres::start();
    let url = pg.database();
    let scope = format!("dockward.alerts={}", unique("alpg"));
    let label = ["--label", scope.as_str()];
    let hook = Receiver::start().await;
    let sidecar = Sidecar::start(&[&format!("--scope-label={scope}")]).await;
    let bin = Path::new(env!("CARGO_BIN_EXE_dockward-web"));
    let start = || {
        Console::start_with(
            bin,
            &[Host { name: "live", url: &sidecar.base, secret: SECRET }],
            Options { env: &[("DOCKWARD_STORE", &url)], ..Options::default() },
        )
    };
    let mut consoles = vec![start(), start()];
    let admin = login(&consoles[0].base, "admin1").await;
    let (status, v) = api(
        &consoles[0].base,
        &admin,
        "POST",
        "/api/alerts/channels",
        Some(json!({"name": "hook", "type": "webhook", "url": format!("{}/hook", hook.url)})),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    // Exactly one leads.
    let mut admins = vec![admin, login(&consoles[1].base, "admin1").await];
    let leader = eventually(Duration::from_secs(20), "one leader", || async {
        let mut leading = Vec::new();
        for (c, a) in consoles.iter().zip(&admins) {
            leading.push(api(&c.base, a, "GET", "/api/alerts", None).await.1["leading"] == true);
        }
        (leading.iter().filter(|l| **l).count() == 1).then(|| leading.iter().position(|l| *l).unwrap())
    })
    .await;
    // The default rules were added once, not once per replica.
    let (_, o) = api(&consoles[1].base, &admins[1], "GET", "/api/alerts", None).await;
    assert_eq!(o["rules"].as_array().unwrap().iter().filter(|r| r["kind"] == "exited").count(), 1, "{o}");

    let first = TestContainer::run("alpg-a", &label, "sleep 600");
    tokio::time::sleep(Duration::from_secs(3)).await;
    docker(&["kill", &first.id]);
    eventually(Duration::from_secs(15), "one webhook", || async {
        (count(&hook, &first.name, "firing") == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(count(&hook, &first.name, "firing"), 1, "one replica sent it: {:?}", hook.received().len());

    // The leader dies: the other takes over, and sends the next one.
    drop(consoles.remove(leader));
    admins.remove(leader);
    let survivor = &consoles[0];
    eventually(Duration::from_secs(20), "the other replica to lead", || async {
        (api(&survivor.base, &admins[0], "GET", "/api/alerts", None).await.1["leading"] == true).then_some(())
    })
    .await;
    let second = TestContainer::run("alpg-b", &label, "sleep 600");
    tokio::time::sleep(Duration::from_secs(3)).await;
    docker(&["kill", &second.id]);
    eventually(Duration::from_secs(15), "the next webhook, from the survivor", || async {
        (count(&hook, &second.name, "firing") == 1).then_some(())
    })
    .await;
    assert_eq!(count(&hook, &first.name, "firing"), 1, "no duplicate of the first after the take-over");
}
