//! The audit log's own tests: chain, MACs, checkpoint, lock, retention, summaries.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use shared::{AuditRecord, Outcome};

use super::chain::{self, AuditKey};
use super::*;

fn caller() -> Caller {
    Caller { request_id: "r1".into(), client: "key:test".into(), actor: Some("alice".into()) }
}

fn key() -> AuditKey {
    AuditKey::from_bytes([7; 32], "test.key")
}

fn opts() -> AuditOptions {
    AuditOptions { key: Some(key()), ..AuditOptions::default() }
}

fn open(p: &Path) -> Result<AuditLog, ChainError> {
    AuditLog::open(p, opts(), Arc::default())
}

fn verify(p: &Path) -> chain::VerifyReport {
    chain::verify(p, Some(&key())).unwrap()
}

async fn write(log: &AuditLog, n: usize) {
    for i in 0..n {
        let mut d = Draft::new(&caller(), "restart");
        d.target(format!("id{i}"), Some("web")).param("timeout", 10);
        log.commit(d, Outcome::Ok, None).await.unwrap();
    }
}

fn records(p: &Path) -> Vec<AuditRecord> {
    std::fs::read_to_string(p).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test]
async fn chain_verifies_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let log = open(&p).unwrap();
    write(&log, 5).await;
    drop(log);
    let log = open(&p).unwrap();
    write(&log, 2).await;
    let r = verify(&p);
    assert!(r.ok(), "{:?}", r.problems);
    assert_eq!((r.records, r.last_seq), (7, 7));
    assert!(records(&p).iter().all(|r| r.mac.is_some()), "every record is sealed");
}

#[tokio::test]
async fn tampering_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let log = open(&p).unwrap();
    write(&log, 4).await;
    let original = std::fs::read_to_string(&p).unwrap();
    let lines: Vec<&str> = original.lines().collect();

    // Edited.
    std::fs::write(&p, original.replacen("alice", "mallory", 1)).unwrap();
    let r = verify(&p);
    assert!(r.problems.iter().any(|m| m.contains("edited")), "{:?}", r.problems);
    assert!(r.problems.iter().any(|m| m.contains("MAC")), "{:?}", r.problems);
    // A line deleted in the middle.
    std::fs::write(&p, format!("{}\n{}\n{}\n", lines[0], lines[2], lines[3])).unwrap();
    let r = verify(&p);
    assert!(r.problems.iter().any(|m| m.contains("deleted or reordered")), "{:?}", r.problems);
    // Reordered.
    std::fs::write(&p, format!("{}\n{}\n{}\n{}\n", lines[0], lines[2], lines[1], lines[3])).unwrap();
    assert!(!verify(&p).ok());
    // Last record cut off (whole line): only the checkpoint can tell.
    std::fs::write(&p, format!("{}\n{}\n{}\n", lines[0], lines[1], lines[2])).unwrap();
    let r = verify(&p);
    assert!(r.problems.iter().any(|m| m.contains("cut from the end")), "{:?}", r.problems);
    // Truncated mid-line.
    std::fs::write(&p, &original[..original.len() - 10]).unwrap();
    let r = verify(&p);
    assert!(r.problems.iter().any(|m| m.contains("incomplete")), "{:?}", r.problems);
    // Whitespace added: same JSON, not the sidecar's form.
    std::fs::write(&p, original.replacen("{\"seq\":4", "{ \"seq\":4", 1)).unwrap();
    assert!(verify(&p).problems.iter().any(|m| m.contains("form")));
    // Intact again.
    std::fs::write(&p, &original).unwrap();
    assert!(verify(&p).ok());
}

#[tokio::test]
async fn torn_line_is_repaired_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let log = open(&p).unwrap();
    write(&log, 3).await;
    drop(log);
    let mut f = OpenOptions::new().append(true).open(&p).unwrap();
    f.write_all(br#"{"seq":4,"time":"2026-"#).unwrap();
    drop(f);
    let log = open(&p).unwrap();
    write(&log, 1).await;
    let r = verify(&p);
    assert!(r.ok(), "{:?}", r.problems);
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains("\"verb\":\"audit.repair\""), "{text}");
    assert_eq!(r.last_seq, 5);
}

#[tokio::test]
async fn rotation_keeps_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let o = AuditOptions { rotate_bytes: 4096, ..opts() };
    let log = AuditLog::open(&p, o.clone(), Arc::default()).unwrap();
    write(&log, 40).await;
    drop(log);
    let rotated = chain::rotated_files(&p).unwrap();
    assert!(rotated.len() >= 2, "{rotated:?}");
    let r = verify(&p);
    assert!(r.ok(), "{:?}", r.problems);
    assert_eq!(r.records, 40);
    // Reopen after rotation (active file may be empty) and continue.
    let log = AuditLog::open(&p, o, Arc::default()).unwrap();
    write(&log, 1).await;
    assert!(verify(&p).ok());
    // Query returns newest first, paginated by seq, across files.
    let (page, more) = chain::query(&p, &chain::Filter::default(), 3).unwrap();
    assert!(more);
    assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), [41, 40, 39]);
    let f = chain::Filter { before_seq: Some(39), ..Default::default() };
    let (page, more) = chain::query(&p, &f, 100).unwrap();
    assert!(!more);
    assert_eq!(page.len(), 38);
    assert_eq!((page[0].seq, page[37].seq), (38, 1));
    // Deleting a rotated file (without retention) breaks the chain.
    std::fs::remove_file(&rotated[0].1).unwrap();
    let r = verify(&p);
    assert!(r.problems.iter().any(|m| m.contains("files were deleted")), "{:?}", r.problems);
}

#[tokio::test]
async fn reopens_with_an_empty_checkpoint_and_catches_an_edited_last_record() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    drop(open(&p).unwrap());
    // Opened and closed with no records: an empty checkpoint is not an error.
    std::fs::write(chain::checkpoint_path(&p), "").unwrap();
    drop(open(&p).unwrap());
    let log = open(&p).unwrap();
    write(&log, 2).await;
    drop(log);
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, text.replace("\"id1\"", "\"idX\"")).unwrap();
    let err = open(&p).err().expect("must refuse");
    assert!(err.to_string().contains("edited"), "{err}");
}

#[tokio::test]
async fn refuses_to_start_behind_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let log = open(&p).unwrap();
    write(&log, 3).await;
    drop(log);
    let text = std::fs::read_to_string(&p).unwrap();
    let keep: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(&p, keep).unwrap();
    let err = open(&p).err().expect("must refuse");
    assert!(err.to_string().contains("records were removed"), "{err}");
}

/// Finding 8: cut the tail, delete the checkpoint, restart: no longer clean.
#[tokio::test]
async fn cut_tail_and_deleted_checkpoint_are_reported_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let log = open(&p).unwrap();
    write(&log, 5).await;
    drop(log);
    let text = std::fs::read_to_string(&p).unwrap();
    let keep: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
    std::fs::write(&p, keep).unwrap();
    std::fs::remove_file(chain::checkpoint_path(&p)).unwrap();
    let log = open(&p).unwrap();
    write(&log, 1).await;
    drop(log);
    let recs = records(&p);
    let incident = recs.iter().find(|r| r.verb == "audit.checkpoint_missing").expect("audited");
    assert_eq!((incident.seq, incident.params["last_seq"].as_str()), (4, "3"));
    let r = verify(&p);
    assert!(!r.ok());
    assert!(r.problems.iter().any(|m| m.contains("checkpoint was missing")), "{:?}", r.problems);
}

#[tokio::test]
async fn a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let log = open(&p).unwrap();
    let err = open(&p).err().expect("second writer refused");
    assert!(matches!(err, ChainError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("another process"), "{err}");
    drop(log);
    drop(open(&p).expect("free again once the first is closed"));
}

#[tokio::test]
async fn a_torn_checkpoint_is_reported_not_a_crash_loop() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let log = open(&p).unwrap();
    write(&log, 3).await;
    drop(log);
    std::fs::write(chain::checkpoint_path(&p), br#"{"seq":3,"ha"#).unwrap();
    let log = open(&p).expect("starts");
    write(&log, 1).await;
    drop(log);
    assert!(records(&p).iter().any(|r| r.verb == "audit.checkpoint_unreadable"));
    let mut bad = chain::checkpoint_path(&p).into_os_string();
    bad.push(".bad");
    assert_eq!(std::fs::read(bad).unwrap(), br#"{"seq":3,"ha"#, "kept for investigation");
    let r = verify(&p);
    assert!(r.problems.iter().any(|m| m.contains("checkpoint was unreadable")), "{:?}", r.problems);
    // The checkpoint written since is whole and current.
    match chain::read_checkpoint(&p).unwrap() {
        chain::CheckpointState::Present(cp) => assert_eq!(cp.seq, 5),
        other => panic!("{other:?}"),
    }
}

/// Rewrites the log from record `from` on: `edit` each record, re-chain, seal with `forger`.
fn reforge(p: &Path, from: u64, forger: Option<&AuditKey>, edit: impl Fn(&mut AuditRecord)) {
    let mut prev = chain::GENESIS.to_owned();
    let mut out = Vec::new();
    for mut rec in records(p) {
        let line = if rec.seq >= from {
            edit(&mut rec);
            rec.prev = prev.clone();
            chain::seal(&mut rec, forger).unwrap()
        } else {
            serde_json::to_vec(&rec).unwrap()
        };
        prev = chain::hash_line(&line);
        out.extend_from_slice(&line);
        out.push(b'\n');
    }
    std::fs::write(p, out).unwrap();
    let last = records(p).last().unwrap().seq;
    let cp = Checkpoint::new(last, prev, forger);
    chain::write_checkpoint(p, &cp).unwrap();
}

#[tokio::test]
async fn a_chain_reforged_without_the_key_fails() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let log = open(&p).unwrap();
    write(&log, 4).await;
    drop(log);
    let original = std::fs::read(&p).unwrap();
    let wrong = AuditKey::from_bytes([9; 32], "forger.key");
    for forger in [None, Some(&wrong)] {
        std::fs::write(&p, &original).unwrap();
        reforge(&p, 2, forger, |r| r.actor = Some("mallory".into()));
        // Without the key the forgery is consistent…
        let unkeyed = chain::verify(&p, None).unwrap();
        assert!(unkeyed.problems.is_empty(), "{:?}", unkeyed.problems);
        // …with it, it is not.
        let r = verify(&p);
        assert!(r.problems.iter().any(|m| m.contains("MAC")), "{:?}", r.problems);
        assert!(open(&p).is_err(), "the sidecar refuses to continue a forged chain");
    }
}

#[tokio::test]
async fn records_appended_after_the_checkpoint_need_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let log = open(&p).unwrap();
    write(&log, 3).await;
    drop(log);
    let cp = std::fs::read(chain::checkpoint_path(&p)).unwrap();
    let mut recs = records(&p);
    let mut extra = recs.pop().unwrap();
    let last_line = std::fs::read_to_string(&p).unwrap().lines().last().unwrap().to_owned();
    extra.seq = 4;
    extra.prev = chain::hash_line(last_line.as_bytes());
    extra.actor = Some("mallory".into());
    let line = chain::seal(&mut extra, None).unwrap();
    let mut f = OpenOptions::new().append(true).open(&p).unwrap();
    f.write_all(&line).unwrap();
    f.write_all(b"\n").unwrap();
    drop(f);
    assert_eq!(std::fs::read(chain::checkpoint_path(&p)).unwrap(), cp);
    let err = open(&p).err().expect("refused");
    assert!(err.to_string().contains("appended after the checkpoint"), "{err}");
    assert!(!verify(&p).ok());
}

#[tokio::test]
async fn a_new_key_does_not_continue_a_sealed_log() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let log = open(&p).unwrap();
    write(&log, 1).await;
    drop(log);
    let o = AuditOptions { key_created: true, key: Some(AuditKey::from_bytes([1; 32], "new.key")), ..opts() };
    let err = AuditLog::open(&p, o, Arc::default()).err().expect("refused");
    assert!(matches!(err, ChainError::KeyMissing { .. }), "{err}");
}

#[tokio::test]
async fn retention_deletes_the_oldest_files_and_the_chain_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let o = AuditOptions { rotate_bytes: 4096, keep_files: 2, ..opts() };
    let log = AuditLog::open(&p, o.clone(), Arc::default()).unwrap();
    write(&log, 120).await;
    drop(log);
    let rotated = chain::rotated_files(&p).unwrap();
    assert_eq!(rotated.len(), 2, "{rotated:?}");
    assert!(rotated[0].0 > 1, "the oldest were deleted: {rotated:?}");
    let r = verify(&p);
    assert!(r.ok(), "{:?}", r.problems);
    let through = r.pruned_through.expect("reported as pruned by retention");
    assert!(r.notes.iter().any(|n| n.contains("deleted by retention")), "{:?}", r.notes);
    let first = chain::first_record(&rotated[0].1).unwrap().unwrap();
    assert_eq!(first.seq, through + 1);
    // Each deletion is on record.
    let (page, _) =
        chain::query(&p, &chain::Filter { verb: Some("audit.retention".into()), ..Default::default() }, 100).unwrap();
    assert!(!page.is_empty());
    // Reopened, it carries on and still verifies.
    let log = AuditLog::open(&p, o, Arc::default()).unwrap();
    write(&log, 30).await;
    drop(log);
    assert!(verify(&p).ok(), "{:?}", verify(&p).problems);
    // Deleting the oldest kept file by hand is not retention: caught.
    let rotated = chain::rotated_files(&p).unwrap();
    std::fs::remove_file(&rotated[0].1).unwrap();
    assert!(verify(&p).problems.iter().any(|m| m.contains("files were deleted")));
}

#[tokio::test]
async fn repeated_refusals_are_summarised() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let log = open(&p).unwrap();
    for _ in 0..50 {
        let mut d = Draft::new(&caller(), "stats");
        d.target("/v1/stats", None);
        log.deny(d, "429", Some("rate limit".into())).await.unwrap();
    }
    assert_eq!(records(&p).len(), 1, "only the first is written at once");
    log.flush_denials(true).await.unwrap();
    let recs = records(&p);
    assert_eq!(recs.len(), 2);
    let s = &recs[1];
    assert_eq!(
        (s.verb.as_str(), s.target.as_deref(), s.actor.as_deref()),
        (DENIED_SUMMARY, Some("stats"), Some("alice"))
    );
    assert_eq!((s.params["count"].as_str(), s.params["reason"].as_str()), ("49", "429"));
    // Nothing more to say: no empty summaries.
    log.flush_denials(true).await.unwrap();
    assert_eq!(records(&p).len(), 2);
}

/// A handler's refusals (of mutations, rate-limited before any work) each get
/// a record naming their target; only `deny` summarises.
#[tokio::test]
async fn a_handlers_refusals_are_each_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let log = open(&p).unwrap();
    for i in 0..3 {
        let mut d = Draft::new(&caller(), "restart");
        d.target(format!("db{i}"), None);
        log.commit_result::<()>(d, &Err(ApiError::Forbidden("protected".into()))).await.unwrap();
    }
    let recs = records(&p);
    assert_eq!(recs.iter().map(|r| r.target.as_deref().unwrap()).collect::<Vec<_>>(), ["db0", "db1", "db2"]);
    assert!(recs.iter().all(|r| r.outcome == Outcome::Denied));
}

/// A log from before audit keys continues under a new key (an `audit.keyed`
/// record marks where sealing starts); stripping the MACs from a sealed log
/// is not mistaken for that.
#[tokio::test]
async fn a_log_from_before_keys_is_sealed_from_then_on() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&p, AuditOptions::default(), Arc::default()).unwrap();
    write(&log, 2).await;
    drop(log);
    let o = AuditOptions { key_created: true, ..opts() };
    let log = AuditLog::open(&p, o, Arc::default()).unwrap();
    write(&log, 1).await;
    drop(log);
    let recs = records(&p);
    assert_eq!(recs[2].verb, "audit.keyed");
    assert!(recs[..2].iter().all(|r| r.mac.is_none()) && recs[2..].iter().all(|r| r.mac.is_some()));
    let r = verify(&p);
    assert!(r.ok(), "{:?}", r.problems);
    assert!(r.notes.iter().any(|n| n.contains("predate the audit key")), "{:?}", r.notes);
    // Now strip every MAC and re-chain, keeping the sealed checkpoint's place: refused.
    let cp = std::fs::read(chain::checkpoint_path(&p)).unwrap();
    reforge(&p, 1, None, |_| {});
    std::fs::write(chain::checkpoint_path(&p), cp).unwrap();
    assert!(open(&p).is_err());
    assert!(!verify(&p).ok());
}
