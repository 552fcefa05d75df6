//! Shared-secret authentication, secret rotation and rate limits.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use testkit::sidecar::*;
use testkit::*;

fn start_fails_with(env: &[(&str, &str)], expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(sidecar_bin());
    cmd.env_clear().env("DOCKWARD_LISTEN", "127.0.0.1:0").env("DOCKWARD_AUDIT_LOG", dir.path().join("a.jsonl"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "sidecar started with {env:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(expect), "expected {expect:?} in: {stderr}");
}

#[test]
fn refuses_to_start_without_a_good_secret() {
    start_fails_with(&[], "no shared secret");
    start_fails_with(&[("DOCKWARD_SECRET", "too-short")], "at least 32 bytes");
    // A secret in the environment works but is warned about (it stays in `docker inspect`).
    start_fails_with(&[("DOCKWARD_SECRET", "too-short")], "prefer DOCKWARD_SECRET_FILE");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s");
    std::fs::write(&f, "short\n").unwrap();
    start_fails_with(&[("DOCKWARD_SECRET_FILE", f.to_str().unwrap())], "at least 32 bytes");
    start_fails_with(&[("DOCKWARD_SECRET_FILE", "/nonexistent/secret")], "cannot read");
    start_fails_with(
        &[("DOCKWARD_SECRET", SECRET), ("DOCKWARD_SECRET_PREVIOUS", "short")],
        "DOCKWARD_SECRET_PREVIOUS is 5 bytes",
    );
}

#[test]
fn secrets_are_never_taken_from_argv() {
    // Every local user can read a process's argv: there is no flag for a secret value.
    for flag in [format!("--secret={SECRET}"), format!("--secret-previous={SECRET}")] {
        let out = Command::new(sidecar_bin()).env_clear().arg(&flag).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("unexpected argument"), "{stderr}");
    }
}

#[tokio::test]
async fn missing_and_wrong_secrets_are_refused_and_audited() {
    let sc = Sidecar::start(&[]).await;
    let none = sc.http.get(sc.url("/v1/containers")).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let body: Value = none.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    for bad in [&SECRET[..SECRET.len() - 1], "x", SECRET_B] {
        let r = sc.http.get(sc.url("/v1/containers")).bearer_auth(bad).send().await.unwrap();
        assert_eq!(r.status(), 401, "{bad}");
    }
    let r = sc
        .http
        .post(sc.url("/v1/prune/containers"))
        .header("authorization", format!("Basic {SECRET}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let recs = sc.audit_records();
    let auth: Vec<&Value> = recs.iter().filter(|r| r["verb"] == "auth").collect();
    assert_eq!(auth.len(), 5);
    assert!(auth.iter().all(|r| r["outcome"] == "denied" && r["client"] == "anonymous"));
    let text = std::fs::read_to_string(sc.audit_path()).unwrap();
    assert!(!text.contains(SECRET_B) && !text.contains(&SECRET[..20]), "a secret reached the audit log");
}

#[tokio::test]
async fn two_secrets_allow_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let prev_file = dir.path().join("previous");
    std::fs::write(&prev_file, SECRET_B).unwrap();
    let prev = format!("--secret-previous-file={}", prev_file.display());
    let sc = Sidecar::start(&[&prev]).await;
    let c = TestContainer::run("rotate", &[], "sleep 600");
    let mut clients = Vec::new();
    for secret in [SECRET, SECRET_B] {
        let r = sc
            .http
            .post(sc.url(&format!("/v1/containers/{}/restart?timeout=0", c.id)))
            .bearer_auth(secret)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let rid = r.headers()["x-request-id"].to_str().unwrap().to_owned();
        let rec = sc.audit_records().into_iter().find(|x| x["request_id"] == rid.as_str()).unwrap();
        clients.push(rec["client"].as_str().unwrap().to_owned());
    }
    assert_ne!(clients[0], clients[1], "each key has its own id");
}

#[tokio::test]
async fn reads_are_rate_limited_per_client_with_retry_after() {
    let sc = Sidecar::start(&["--rate-read=3/min"]).await;
    for _ in 0..3 {
        assert_eq!(sc.get("/v1/stats").send().await.unwrap().status(), 200);
    }
    let r = sc.get("/v1/stats").send().await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Another key has its own budget.
    let prev = sc.audit_records();
    assert!(prev.iter().any(|r| r["verb"] == "stats" && r["outcome"] == "denied"), "rate-limited read audited");
}

#[tokio::test]
async fn restarts_are_rate_limited_per_container_and_audited() {
    let a = TestContainer::run("rl-a", &[], "sleep 600");
    let b = TestContainer::run("rl-b", &[], "sleep 600");
    let sc = Sidecar::start(&["--rate-restart=1/h"]).await;
    let restart = |id: String| {
        let req = sc.post(&format!("/v1/containers/{id}/restart?timeout=0"));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(restart(a.id.clone()).await, 200);
    assert_eq!(restart(a.id.clone()).await, 429);
    assert_eq!(restart(b.id.clone()).await, 200, "another container has its own budget");
    let rec = sc
        .audit_records()
        .into_iter()
        .find(|r| r["target"] == a.id.as_str() && r["outcome"] == "denied")
        .expect("rate-limited restart audited");
    assert!(rec["message"].as_str().unwrap().contains("rate limit"));
}

#[tokio::test]
async fn failed_logins_are_throttled_per_address() {
    let sc = Sidecar::start(&["--rate-auth-failure=2/h"]).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = sc.http.get(sc.url("/v1/stats")).bearer_auth("wrong-secret").send().await.unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 429, 429]);
    // Blocked means blocked: no secret is even compared from that address
    // until the window passes, so guessing gains nothing.
    let r = sc.get("/v1/stats").send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // The failure that tripped the limit is audited; the flood after it is not (the disk stays bounded).
    let auth = sc.audit_records().into_iter().filter(|r| r["verb"] == "auth").count();
    assert_eq!(auth, 3, "two failures and the one that tripped the limit");
}

/// Rotation with the `secret` subcommands on a running sidecar, no restart:
/// `rotate` makes a new secret and keeps the old one accepted, `retire` ends it.
#[tokio::test]
async fn secret_files_rotate_without_a_restart() {
    require_docker();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("local");
    let secret_cmd = |verb: &str| {
        let out = Command::new(sidecar_bin()).args(["secret", verb]).arg(&file).output().unwrap();
        assert!(out.status.success(), "secret {verb}: {}", String::from_utf8_lossy(&out.stderr));
    };
    secret_cmd("init");
    let old = std::fs::read_to_string(&file).unwrap();
    let port = free_port();
    let child = Command::new(sidecar_bin())
        .env_clear()
        .env("DOCKWARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("DOCKWARD_AUDIT_LOG", dir.path().join("audit.jsonl"))
        .env("DOCKWARD_SECRET_FILE", &file)
        .env("DOCKWARD_SECRET_PREVIOUS_FILE", dir.path().join("local.previous"))
        .env("DOCKWARD_PLAIN_HTTP", "true")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _child = Proc(child);
    let http = reqwest::Client::new();
    let status = |secret: String| {
        let http = http.clone();
        async move {
            let r = http.get(format!("http://127.0.0.1:{port}/v1/stats")).bearer_auth(secret).send().await;
            r.map(|r| r.status().as_u16()).unwrap_or(0)
        }
    };
    eventually(Duration::from_secs(20), "the sidecar answers", || async {
        (status(old.clone()).await == 200).then_some(())
    })
    .await;

    secret_cmd("rotate");
    let new = std::fs::read_to_string(&file).unwrap();
    assert_ne!(new, old);
    assert_eq!(status(new.clone()).await, 200, "the new secret works at once");
    assert_eq!(status(old.clone()).await, 200, "the old one still works during the rotation");

    secret_cmd("retire");
    assert_eq!(status(new.clone()).await, 200);
    eventually(Duration::from_secs(15), "the retired secret stops working", || async {
        (status(old.clone()).await == 401).then_some(())
    })
    .await;
}
