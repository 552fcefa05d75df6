//! The audit log under crashes and tampering: SIGKILL during a burst of
//! restarts loses no acknowledged record; `audit verify` catches edits,
//! deletions and truncation.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use testkit::sidecar::*;
use testkit::*;

fn spawn_sidecar(audit: &std::path::Path, port: u16) -> Proc {
    let child = Command::new(sidecar_bin())
        .env("DOCKWARD_SECRET", SECRET)
        .env("DOCKWARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("DOCKWARD_AUDIT_LOG", audit)
        .env("DOCKWARD_AUDIT_KEY_FILE", audit.with_extension("key"))
        .env("DOCKWARD_RATE_RESTART", "100000/s")
        .env("DOCKWARD_RATE_READ", "100000/s")
        .env("DOCKWARD_PLAIN_HTTP", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let proc = Proc(child);
    wait_port(port, "the sidecar");
    proc
}

/// `audit verify` with the key the sidecar sealed the log with.
fn verify(path: &std::path::Path) -> (bool, String) {
    let out = Command::new(sidecar_bin())
        .args(["audit", "verify"])
        .arg(path)
        .arg("--key-file")
        .arg(path.with_extension("key"))
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_loses_no_acknowledged_record() {
    let a = TestContainer::run("burst-a", &[], "sleep 600");
    let b = TestContainer::run("burst-b", &[], "sleep 600");
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let port = free_port();
    let mut proc = spawn_sidecar(&audit, port);
    let http = reqwest::Client::new();
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut tasks = Vec::new();
    for i in 0..40 {
        let id = if i % 2 == 0 { a.id.clone() } else { b.id.clone() };
        let http = http.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            // Deliberate: the burst is spread over 1.6 s so that the kill lands
            // while requests are still arriving (it is the scenario, not a wait).
            tokio::time::sleep(Duration::from_millis(i * 40)).await;
            let r = http
                .post(format!("http://127.0.0.1:{port}/v1/containers/{id}/restart?timeout=0"))
                .bearer_auth(SECRET)
                .header("x-request-id", format!("burst-{i}"))
                .send()
                .await;
            if let Ok(r) = r {
                // Any answer at all is an acknowledgement: its record must be on disk.
                let _ = r.bytes().await;
                acked.lock().unwrap().push(format!("burst-{i}"));
            }
        }));
    }
    // Kill once the burst is under way: some restarts acknowledged, more still coming.
    eventually(Duration::from_secs(30), "the first acknowledged restarts", || {
        std::future::ready((acked.lock().unwrap().len() >= 5).then_some(()))
    })
    .await;
    proc.0.kill().unwrap(); // SIGKILL
    proc.0.wait().unwrap();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(!acked.is_empty(), "no request was answered before the kill");
    assert!(acked.len() < 40, "the kill came after the whole burst; nothing was tested");

    // A restarted sidecar repairs any torn tail and continues the chain.
    drop(spawn_sidecar(&audit, free_port()));
    let (ok, report) = verify(&audit);
    assert!(ok, "{report}");
    let text = std::fs::read_to_string(&audit).unwrap();
    for id in &acked {
        // The outcome record, not only the intent (`restart.start`) written before the engine call.
        let outcome =
            text.lines().any(|l| l.contains(&format!("\"request_id\":\"{id}\"")) && l.contains("\"verb\":\"restart\""));
        assert!(outcome, "acknowledged {id} has no outcome record");
    }
}

#[tokio::test]
async fn a_torn_last_line_is_repaired_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let port = free_port();
    {
        let _p = spawn_sidecar(&audit, port);
        let r = reqwest::Client::new().get(format!("http://127.0.0.1:{port}/v1/stats")).send().await.unwrap();
        assert_eq!(r.status(), 401); // one audited denial
    }
    let mut f = std::fs::OpenOptions::new().append(true).open(&audit).unwrap();
    f.write_all(br#"{"seq":2,"time":"2026-11-"#).unwrap();
    drop(f);
    let (ok, report) = verify(&audit);
    assert!(!ok && report.contains("incomplete"), "{report}");
    {
        let _p = spawn_sidecar(&audit, free_port());
        // The repair is an audit record: stop the sidecar once it is on disk.
        wait_for(Duration::from_secs(10), "the repair record", || {
            let text = std::fs::read_to_string(&audit).ok()?;
            (text.contains("audit.repair") && text.ends_with('\n')).then_some(())
        });
    }
    let (ok, report) = verify(&audit);
    assert!(ok, "{report}");
    assert!(std::fs::read_to_string(&audit).unwrap().contains("audit.repair"));
}

#[tokio::test]
async fn verify_reports_edits_deletions_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let port = free_port();
    {
        let _p = spawn_sidecar(&audit, port);
        let http = reqwest::Client::new();
        for i in 0..5 {
            let r = http
                .get(format!("http://127.0.0.1:{port}/v1/stats"))
                .bearer_auth(format!("wrong-{i}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401);
        }
    }
    let (ok, report) = verify(&audit);
    assert!(ok, "{report}");
    assert!(report.contains("5 records"), "{report}");
    let original = std::fs::read_to_string(&audit).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    let cases = [
        ("edited", original.replacen("wrong secret", "right secret", 1)),
        ("deleted", lines.iter().enumerate().filter(|(i, _)| *i != 2).map(|(_, l)| format!("{l}\n")).collect()),
        ("truncated", lines[..4].iter().map(|l| format!("{l}\n")).collect()),
        ("torn", original[..original.len() - 7].to_owned()),
    ];
    for (what, content) in cases {
        std::fs::write(&audit, content).unwrap();
        let (ok, report) = verify(&audit);
        assert!(!ok, "{what} not detected: {report}");
        assert!(report.contains("FAILED"), "{report}");
    }
    std::fs::write(&audit, &original).unwrap();
    assert!(verify(&audit).0);
    let out = Command::new(sidecar_bin()).args(["audit", "verify", "/nonexistent/audit.jsonl"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Finding 8 (#11): one writer per log. A second sidecar on the same audit
/// log refuses to start, saying why, and the first one's chain is untouched.
#[tokio::test]
async fn a_second_sidecar_on_the_same_log_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let _first = spawn_sidecar(&audit, free_port());
    let out = Command::new(sidecar_bin())
        .env("DOCKWARD_SECRET", SECRET)
        .env("DOCKWARD_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("DOCKWARD_AUDIT_LOG", &audit)
        .env("DOCKWARD_AUDIT_KEY_FILE", audit.with_extension("key"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("locked by another process"), "{err}");
}

/// Finding 8 (#11): cut the tail, delete the checkpoint, restart — the old
/// laundering path. The sidecar starts (no crash loop), records the missing
/// checkpoint, and `audit verify` is no longer clean.
#[tokio::test]
async fn a_cut_tail_with_the_checkpoint_deleted_is_reported_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let port = free_port();
    {
        let _p = spawn_sidecar(&audit, port);
        let http = reqwest::Client::new();
        for i in 0..4 {
            let r = http.get(format!("http://127.0.0.1:{port}/v1/stats")).bearer_auth(format!("wrong-{i}")).send();
            assert_eq!(r.await.unwrap().status(), 401);
        }
    }
    assert!(verify(&audit).0);
    let text = std::fs::read_to_string(&audit).unwrap();
    let cut: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(&audit, cut).unwrap();
    let mut checkpoint = audit.clone().into_os_string();
    checkpoint.push(".checkpoint");
    std::fs::remove_file(&checkpoint).unwrap();
    {
        let _p = spawn_sidecar(&audit, free_port());
        wait_for(Duration::from_secs(10), "the incident record", || {
            let text = std::fs::read_to_string(&audit).ok()?;
            (text.contains("audit.checkpoint_missing") && text.ends_with('\n')).then_some(())
        });
    }
    let (ok, report) = verify(&audit);
    assert!(!ok, "{report}");
    assert!(report.contains("checkpoint was missing"), "{report}");
}

/// `GET /v1/audit/verify` of the sidecar on `port`.
async fn verify_over_http(port: u16) -> serde_json::Value {
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/v1/audit/verify"))
        .bearer_auth(SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Issue #12: a new sidecar's empty chain is valid, by the API and the CLI.
#[tokio::test]
async fn a_fresh_audit_log_verifies_as_intact() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let port = free_port();
    let _p = spawn_sidecar(&audit, port);
    let v = verify_over_http(port).await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    let (ok, report) = verify(&audit);
    assert!(ok, "{report}");
    assert!(report.starts_with("ok:"), "{report}");
}

/// Issue #12: what a crash right after the log was created leaves — an empty
/// log, a 0-byte checkpoint and a torn temporary checkpoint — verifies, and
/// the sidecar starts on it and still reports the chain intact.
#[tokio::test]
async fn a_crash_right_after_the_log_is_created_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    std::fs::write(&audit, "").unwrap();
    let sibling = |suffix: &str| {
        let mut p = audit.clone().into_os_string();
        p.push(suffix);
        std::path::PathBuf::from(p)
    };
    std::fs::write(sibling(".checkpoint"), "").unwrap();
    std::fs::write(sibling(".checkpoint.tmp"), r#"{"seq":0,"ha"#).unwrap();
    let out = Command::new(sidecar_bin()).args(["audit", "verify"]).arg(&audit).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    let port = free_port();
    let _p = spawn_sidecar(&audit, port);
    let v = verify_over_http(port).await;
    assert_eq!(v["ok"], true, "{v}");
    let (ok, report) = verify(&audit);
    assert!(ok, "{report}");
}
