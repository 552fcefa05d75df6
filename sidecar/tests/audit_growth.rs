//! Finding 4 of #11: a caller with the secret (any console viewer, through
//! the console) cannot grow the audit log without bound. Rate limits are spent
//! before any work, repeated refusals are summarised, retention caps the
//! rotated files and the chain still verifies after deletions.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use testkit::sidecar::*;
use testkit::*;

fn get_as(sc: &Sidecar, path: &str, actor: &str) -> reqwest::RequestBuilder {
    sc.http.get(sc.url(path)).bearer_auth(SECRET).header("x-dockward-actor", actor)
}

/// Hundreds of bad reads and 429s cost a handful of records: the first of each
/// kind, then one summary with the count. Denials carry the read's actor.
#[tokio::test]
async fn a_flood_of_refused_reads_adds_a_bounded_number_of_records() {
    let sc = Sidecar::start(&["--rate-read=5/min", "--audit-denial-window=1s"]).await;
    let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
    for _ in 0..300 {
        let r = get_as(&sc, "/v1/containers/bad!ref", "bob").send().await.unwrap();
        *statuses.entry(r.status().as_u16()).or_default() += 1;
    }
    assert_eq!(statuses, [(400, 5), (429, 295)].into(), "the limit is spent before validation");
    let denied: Vec<Value> = sc.audit_records().into_iter().filter(|r| r["outcome"] == "denied").collect();
    assert!(denied.len() <= 4, "{} records for 300 refusals: {denied:#?}", denied.len());
    for r in &denied {
        assert_eq!(r["actor"], "bob", "the read's actor is recorded: {r}");
    }
    // The window closes: one summary per kind, counting every refusal not recorded on its own.
    let summaries = eventually(Duration::from_secs(20), "the refusal summaries", || {
        let s: Vec<Value> = sc.audit_records().into_iter().filter(|r| r["verb"] == "denied.summary").collect();
        let counted: u64 = s.iter().map(|r| r["params"]["count"].as_str().unwrap().parse::<u64>().unwrap()).sum();
        std::future::ready((counted == 298).then_some(s))
    })
    .await;
    assert!(summaries.len() <= 2, "{summaries:#?}");
    assert!(summaries.iter().all(|r| r["actor"] == "bob" && r["target"] == "inspect_container"), "{summaries:#?}");
    let total = sc.audit_records().len();
    assert!(total <= 6, "{total} records in all");
}

/// A POST refusal spends its rate budget before its input is even parsed.
#[tokio::test]
async fn bad_pulls_are_rate_limited_before_validation() {
    let sc = Sidecar::start(&["--rate-pull=2/h"]).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = sc.post("/v1/images/pull").json(&serde_json::json!({ "image": "NOT A REF" })).send().await.unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [400, 400, 429, 429]);
}

/// Rotation with a small cap: the oldest files are deleted, each deletion is
/// on record, and the chain from the oldest kept file still verifies (the
/// sidecar's route and the CLI with the key agree).
#[tokio::test]
async fn retention_caps_the_files_and_the_chain_still_verifies() {
    let sc = Sidecar::start(&["--rate-read=100000/s", "--audit-rotate-bytes=4096", "--audit-keep-files=2"]).await;
    // Distinct actors: every refusal is a new kind, so each gets its own record.
    for i in 0..150 {
        let r = get_as(&sc, "/v1/no-such-route", &format!("user{i}")).send().await.unwrap();
        assert_eq!(r.status(), 404);
    }
    let dir = sc.audit_path().parent().unwrap().to_owned();
    let rotated: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.len() == "audit.jsonl.000001".len() && n.starts_with("audit.jsonl.0"))
        .collect();
    assert_eq!(rotated.len(), 2, "{rotated:?}");
    assert!(!rotated.contains(&"audit.jsonl.000001".to_owned()), "the oldest was deleted: {rotated:?}");
    let v = sc.json("/v1/audit/verify").await;
    assert_eq!(v["ok"], true, "{v:#}");
    assert!(v["pruned_through"].as_u64().unwrap() > 0, "{v:#}");
    let retention = sc.json("/v1/audit?verb=audit.retention").await;
    assert!(!retention["records"].as_array().unwrap().is_empty(), "{retention:#}");
    let out = Command::new(sidecar_bin())
        .args(["audit", "verify"])
        .arg(sc.audit_path())
        .arg("--key-file")
        .arg(dir.join("audit.key"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("deleted by retention"), "{text}");
}
