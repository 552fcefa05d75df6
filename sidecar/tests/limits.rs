//! Prune and pull rate limits actually reached, build-cache prune, and the
//! `healthcheck` subcommand.

use std::process::Command;

use serde_json::Value;
use testkit::sidecar::*;
use testkit::*;

/// The records of request `rid` as (verb, outcome, message), oldest first.
fn records_of(sc: &Sidecar, rid: &str) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = sc
        .audit_records()
        .into_iter()
        .filter(|r| r["request_id"] == rid)
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or("").to_owned();
            (s("verb"), s("outcome"), s("message"))
        })
        .collect();
    v.reverse();
    v
}

#[tokio::test]
async fn prune_and_pull_rate_limits_refuse_and_are_audited() {
    // A scope nothing carries: the prunes remove nothing of anyone's.
    let scope = format!("--scope-label=dockward.scope={}", unique("rl"));
    // An allowed registry where nothing listens: the first pull fails at the engine, harmlessly.
    let sc = Sidecar::start(&[&scope, "--rate-prune=1/h"]).await;
    let prune = |rid: &'static str| sc.post("/v1/prune/containers").header("x-request-id", rid).send();
    assert_eq!(prune("prune-1").await.unwrap().status(), 200);
    let r = prune("prune-2").await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1, "{retry}");
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "rate_limited");
    let recs = records_of(&sc, "prune-2");
    assert_eq!(recs.len(), 1, "one denial, and no intent: the engine was not asked: {recs:?}");
    // The limit is spent before the kind is even parsed: the refusal is the route's.
    assert_eq!((recs[0].0.as_str(), recs[0].1.as_str()), ("prune", "denied"));
    assert!(recs[0].2.contains("rate limit"), "{recs:?}");

    // Pull is refused outright under a scope (an image is the whole host's): an unscoped sidecar.
    let sc = Sidecar::start(&["--rate-pull=1/h", "--pull-registries=127.0.0.1:9"]).await;
    let pull = |rid: &'static str| {
        sc.post("/v1/images/pull")
            .header("x-request-id", rid)
            .json(&serde_json::json!({"image": "127.0.0.1:9/x:1"}))
            .send()
    };
    let first = pull("pull-1").await.unwrap();
    assert_eq!(first.status(), 200);
    let _ = first.text().await.unwrap();
    let r = pull("pull-2").await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let recs = records_of(&sc, "pull-2");
    assert_eq!(recs.len(), 1, "one denial, and no intent: {recs:?}");
    assert_eq!((recs[0].0.as_str(), recs[0].1.as_str()), ("pull", "denied"));
    assert!(recs[0].2.contains("rate limit"), "{recs:?}");
}

/// The engine here has no BuildKit client (no buildx), so no build cache can
/// be made: this proves the engine call, its answer and its records, not a
/// removal.
#[tokio::test]
async fn build_cache_prune_answers_and_is_audited() {
    let sc = Sidecar::start(&[]).await;
    let r = sc
        .post("/v1/prune/build-cache?until=2000-01-01T00:00:00Z")
        .header("x-request-id", "bc-1")
        .send()
        .await
        .unwrap();
    let status = r.status();
    let report: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["kind"], "build-cache");
    assert!(report["removed"].is_array() && report["space_reclaimed"].is_u64(), "{report}");
    let recs = records_of(&sc, "bc-1");
    let verbs: Vec<(&str, &str)> = recs.iter().map(|r| (r.0.as_str(), r.1.as_str())).collect();
    assert_eq!(verbs, [("prune.build-cache.start", "ok"), ("prune.build-cache", "ok")]);
    let rec = sc.audit_records().into_iter().find(|r| r["request_id"] == "bc-1").unwrap();
    assert_eq!(rec["params"]["until"], "946684800", "{rec}");
}

#[tokio::test]
async fn healthcheck_passes_against_a_live_sidecar_and_fails_clearly_otherwise() {
    // Over HTTPS, pinning the sidecar's own certificate (the image's default).
    let sc = Sidecar::start_https(&[]).await;
    let tls = sc.transport_args();
    let run = |args: &[&str], env: Option<&str>| {
        let mut cmd = Command::new(sidecar_bin());
        cmd.arg("healthcheck").args(&tls).args(args).env_remove("DOCKWARD_HEALTHCHECK_ADDR");
        if let Some(addr) = env {
            cmd.env("DOCKWARD_HEALTHCHECK_ADDR", addr);
        }
        let out = cmd.output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    assert_eq!(run(&["--addr", sc.addr()], None).0, Some(0));
    assert_eq!(run(&[], Some(sc.addr())).0, Some(0), "DOCKWARD_HEALTHCHECK_ADDR");
    let dead = format!("127.0.0.1:{}", free_port());
    let (code, stderr) = run(&["--addr", &dead], None);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("unhealthy") && stderr.contains(&dead), "{stderr}");
    // Something that answers, but not 200: the status line is named.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    let (code, stderr) = run(&["--addr", &other, "--plain-http"], None);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("unhealthy: HTTP/1.1 503"), "{stderr}");
    // A plain sidecar probed over TLS is unhealthy: its port does not speak it.
    let plain = Sidecar::start(&[]).await;
    let (code, stderr) = run(&["--addr", plain.addr()], None);
    assert_eq!(code, Some(1), "{stderr}");
}
