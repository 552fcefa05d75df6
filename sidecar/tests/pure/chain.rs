//! `sidecar::audit::chain`: hashing, file layout, head finding, verification
//! and filtering, on hand-written chains (each field change is detected).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use shared::{AuditRecord, Outcome};
use sidecar::audit::chain::{self, ChainError, Checkpoint, Filter, GENESIS};

fn record(
    seq: u64,
    time: &str,
    actor: Option<&str>,
    verb: &str,
    target: Option<&str>,
    name: Option<&str>,
) -> AuditRecord {
    AuditRecord {
        seq,
        time: time.into(),
        request_id: format!("r{seq}"),
        client: "key:test".into(),
        actor: actor.map(Into::into),
        verb: verb.into(),
        target: target.map(Into::into),
        target_name: name.map(Into::into),
        params: BTreeMap::new(),
        outcome: Outcome::Ok,
        message: None,
        duration_ms: 1,
        prev: String::new(),
    }
}

fn plain(seq: u64) -> AuditRecord {
    record(seq, &format!("2026-11-24T10:00:{seq:02}.000Z"), Some("alice"), "restart", Some("abc"), Some("web"))
}

/// Chains `records` (setting `prev`) and returns their lines, without newlines.
fn chained(records: Vec<AuditRecord>, mut prev: String) -> Vec<String> {
    records
        .into_iter()
        .map(|mut r| {
            r.prev = prev.clone();
            let line = serde_json::to_string(&r).unwrap();
            prev = chain::hash_line(line.as_bytes());
            line
        })
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
}

fn write_checkpoint(active: &Path, seq: u64, hash: &str) {
    let cp = Checkpoint { seq, hash: hash.into() };
    std::fs::write(chain::checkpoint_path(active), serde_json::to_string(&cp).unwrap() + "\n").unwrap();
}

/// A clean log of `n` records with its checkpoint at the last one.
fn clean_log(dir: &Path, n: u64) -> (PathBuf, Vec<String>) {
    let p = dir.join("audit.jsonl");
    let lines = chained((1..=n).map(plain).collect(), GENESIS.into());
    write_lines(&p, &lines);
    write_checkpoint(&p, n, &chain::hash_line(lines.last().unwrap().as_bytes()));
    (p, lines)
}

#[test]
fn hash_and_paths() {
    assert_eq!(chain::hash_line(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_eq!(GENESIS.len(), 64);
    let p = Path::new("/data/audit.jsonl");
    assert_eq!(chain::checkpoint_path(p), Path::new("/data/audit.jsonl.checkpoint"));
    assert_eq!(chain::rotated_path(p, 7), Path::new("/data/audit.jsonl.000007"));
    assert_eq!(chain::rotated_path(p, 123_456), Path::new("/data/audit.jsonl.123456"));
}

#[test]
fn rotated_files_are_six_digit_siblings_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    for name in [
        "audit.jsonl.000010",
        "audit.jsonl.000001",
        "audit.jsonl.000002",
        "audit.jsonl.checkpoint",
        "audit.jsonl.12345",
        "audit.jsonl.0000003",
        "audit.jsonl.00000a",
        "other.jsonl.000004",
        "audit.jsonl",
    ] {
        std::fs::write(dir.path().join(name), "").unwrap();
    }
    let want: Vec<(u32, PathBuf)> = [1, 2, 10].into_iter().map(|i| (i, chain::rotated_path(&p, i))).collect();
    assert_eq!(chain::rotated_files(&p).unwrap(), want);
    let mut files: Vec<PathBuf> = want.into_iter().map(|(_, p)| p).collect();
    files.push(p.clone());
    assert_eq!(chain::chain_files(&p).unwrap(), files);
    // Without the active file, only the rotated ones.
    std::fs::remove_file(&p).unwrap();
    assert_eq!(chain::chain_files(&p).unwrap().len(), 3);
    // A directory that does not exist holds no files; one that cannot be listed is an error.
    assert_eq!(chain::rotated_files(&dir.path().join("nope/audit.jsonl")).unwrap(), vec![]);
    let not_a_dir = dir.path().join("audit.jsonl.000001").join("audit.jsonl");
    assert!(chain::rotated_files(&not_a_dir).is_err());
}

#[test]
fn checkpoints_read_back_blank_and_broken() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    assert_eq!(chain::read_checkpoint(&p).unwrap(), None);
    for blank in ["", "\n\n", "\0\0\0", " \0\n"] {
        std::fs::write(chain::checkpoint_path(&p), blank).unwrap();
        assert_eq!(chain::read_checkpoint(&p).unwrap(), None, "{blank:?}");
    }
    std::fs::write(chain::checkpoint_path(&p), "{\"seq\":3,\"hash\":\"ab\"}\n\0\0").unwrap();
    assert_eq!(chain::read_checkpoint(&p).unwrap(), Some(Checkpoint { seq: 3, hash: "ab".into() }));
    std::fs::write(chain::checkpoint_path(&p), "{\"seq\":3,").unwrap();
    assert_eq!(chain::read_checkpoint(&p).unwrap_err().kind(), std::io::ErrorKind::InvalidData);
    // A checkpoint that cannot be read (a directory) is an error, not "none".
    std::fs::remove_file(chain::checkpoint_path(&p)).unwrap();
    std::fs::create_dir(chain::checkpoint_path(&p)).unwrap();
    assert!(chain::read_checkpoint(&p).is_err());
}

#[test]
fn write_checkpoint_replaces_a_longer_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(chain::checkpoint_path(&p))
        .unwrap();
    chain::write_checkpoint(&mut f, &Checkpoint { seq: 123_456, hash: "f".repeat(64) }).unwrap();
    chain::write_checkpoint(&mut f, &Checkpoint { seq: 7, hash: "a".into() }).unwrap();
    assert_eq!(std::fs::read_to_string(chain::checkpoint_path(&p)).unwrap(), "{\"seq\":7,\"hash\":\"a\"}\n");
}

#[test]
fn open_for_append_finds_the_head() {
    let dir = tempfile::tempdir().unwrap();
    // A new log in a directory that does not exist yet.
    let p = dir.path().join("a/b/audit.jsonl");
    let (_, head, repair) = chain::open_for_append(&p).unwrap();
    assert_eq!((head.next_seq, head.prev_hash.as_str(), repair.torn_bytes), (1, GENESIS, 0));
    assert!(p.exists());
    // Three records: the head follows the last one's exact bytes.
    let (p, lines) = clean_log(dir.path(), 3);
    let (_, head, repair) = chain::open_for_append(&p).unwrap();
    assert_eq!(head.next_seq, 4);
    assert_eq!(head.prev_hash, chain::hash_line(lines[2].as_bytes()));
    assert_eq!(repair.torn_bytes, 0);
    assert_eq!(std::fs::read_to_string(&p).unwrap().len(), lines.iter().map(|l| l.len() + 1).sum::<usize>());
}

#[test]
fn open_for_append_cuts_exactly_the_torn_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (p, lines) = clean_log(dir.path(), 2);
    let intact = std::fs::read(&p).unwrap();
    let mut torn = intact.clone();
    torn.extend_from_slice(b"{\"seq\":3,\"ti");
    std::fs::write(&p, &torn).unwrap();
    let (_, head, repair) = chain::open_for_append(&p).unwrap();
    assert_eq!(repair.torn_bytes, 12);
    assert_eq!(std::fs::read(&p).unwrap(), intact);
    assert_eq!((head.next_seq, head.prev_hash), (3, chain::hash_line(lines[1].as_bytes())));
    // A file that is nothing but a torn line is emptied.
    let q = dir.path().join("other.jsonl");
    std::fs::write(&q, b"{\"seq\":1").unwrap();
    let (_, head, repair) = chain::open_for_append(&q).unwrap();
    assert_eq!((head.next_seq, repair.torn_bytes), (1, 8));
    assert_eq!(std::fs::read(&q).unwrap(), b"");
}

#[test]
fn open_for_append_continues_from_the_newest_rotated_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let lines = chained((1..=4).map(plain).collect(), GENESIS.into());
    write_lines(&chain::rotated_path(&p, 1), &lines[..2]);
    write_lines(&chain::rotated_path(&p, 2), &lines[2..]);
    std::fs::write(&p, "").unwrap();
    let (_, head, _) = chain::open_for_append(&p).unwrap();
    assert_eq!((head.next_seq, head.prev_hash), (5, chain::hash_line(lines[3].as_bytes())));
    let r = chain::verify(&p).unwrap();
    assert_eq!((r.files, r.records, r.last_seq), (3, 4, 4));
    // Only the checkpoint is missing.
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].contains("no checkpoint"), "{:?}", r.problems);
}

#[test]
fn open_for_append_checks_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (p, lines) = clean_log(dir.path(), 3);
    // An older checkpoint with any hash is fine (only the last record's hash is kept).
    write_checkpoint(&p, 1, "not the hash");
    assert!(chain::open_for_append(&p).is_ok());
    write_checkpoint(&p, 2, &chain::hash_line(lines[1].as_bytes()));
    assert!(chain::open_for_append(&p).is_ok());
    // At the last record, the hash must match.
    write_checkpoint(&p, 3, "not the hash");
    match chain::open_for_append(&p) {
        Err(ChainError::Corrupt { reason, .. }) => assert!(reason.contains("record 3"), "{reason}"),
        other => panic!("expected an edited record, got {:?}", other.map(|(_, h, _)| h)),
    }
    // Ahead of the log: records were removed.
    write_checkpoint(&p, 4, "x");
    match chain::open_for_append(&p) {
        Err(ChainError::BehindCheckpoint { last, checkpoint, .. }) => assert_eq!((last, checkpoint), (3, 4)),
        other => panic!("expected behind checkpoint, got {:?}", other.map(|(_, h, _)| h)),
    }
    // A last line that is not a record.
    std::fs::write(&p, "not json\n").unwrap();
    assert!(matches!(chain::open_for_append(&p), Err(ChainError::Corrupt { .. })));
}

#[test]
fn verify_reports_a_clean_chain_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (p, lines) = clean_log(dir.path(), 5);
    let r = chain::verify(&p).unwrap();
    assert!(r.ok(), "{:?}", r.problems);
    assert_eq!((r.files, r.records, r.last_seq), (1, 5, 5));
    assert_eq!(r.last_hash, Some(chain::hash_line(lines[4].as_bytes())));
    // A checkpoint at an earlier record with its right hash is clean too.
    write_checkpoint(&p, 3, &chain::hash_line(lines[2].as_bytes()));
    assert!(chain::verify(&p).unwrap().ok());
    // No log at all is an error; an empty one has no records and no hash.
    assert!(chain::verify(&dir.path().join("none.jsonl")).is_err());
    let e = dir.path().join("empty.jsonl");
    std::fs::write(&e, "").unwrap();
    let r = chain::verify(&e).unwrap();
    assert_eq!((r.files, r.records, r.last_seq, r.last_hash), (1, 0, 0, None));
}

/// A field's name and a change to it.
type Edit = (&'static str, fn(&mut AuditRecord));

#[test]
fn verify_detects_a_change_to_any_field() {
    let dir = tempfile::tempdir().unwrap();
    let (p, lines) = clean_log(dir.path(), 3);
    let edits: [Edit; 13] = [
        ("seq", |r| r.seq = 9),
        ("time", |r| r.time.push('x')),
        ("request_id", |r| r.request_id.push('x')),
        ("client", |r| r.client.push('x')),
        ("actor", |r| r.actor = Some("mallory".into())),
        ("verb", |r| r.verb = "prune".into()),
        ("target", |r| r.target = Some("def".into())),
        ("target_name", |r| r.target_name = None),
        ("params", |r| {
            r.params.insert("x".into(), "1".into());
        }),
        ("outcome", |r| r.outcome = Outcome::Denied),
        ("message", |r| r.message = Some("hi".into())),
        ("duration_ms", |r| r.duration_ms = 2),
        ("prev", |r| r.prev = chain::hash_line(b"another line")),
    ];
    for (field, edit) in edits {
        for at in 0..3 {
            let mut rec: AuditRecord = serde_json::from_str(&lines[at]).unwrap();
            edit(&mut rec);
            let mut edited = lines.clone();
            edited[at] = serde_json::to_string(&rec).unwrap();
            write_lines(&p, &edited);
            let r = chain::verify(&p).unwrap();
            assert!(!r.ok(), "{field} of record {} changed unnoticed", at + 1);
        }
    }
    write_lines(&p, &lines);
    assert!(chain::verify(&p).unwrap().ok());
}

#[test]
fn verify_names_each_kind_of_break() {
    let dir = tempfile::tempdir().unwrap();
    let (p, lines) = clean_log(dir.path(), 3);
    // Cut from the end: only the checkpoint says so.
    write_lines(&p, &lines[..2]);
    let r = chain::verify(&p).unwrap();
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].contains("cut from the end"), "{:?}", r.problems);
    // The last record edited (valid JSON, same seq): the checkpoint's hash differs.
    let mut rec: AuditRecord = serde_json::from_str(&lines[2]).unwrap();
    rec.duration_ms = 99;
    write_lines(&p, &[lines[0].clone(), lines[1].clone(), serde_json::to_string(&rec).unwrap()]);
    let r = chain::verify(&p).unwrap();
    assert_eq!(r.problems, vec!["record 3 differs from the checkpoint's hash: edited".to_string()]);
    // A gap in seq.
    write_lines(&p, &[lines[0].clone(), lines[2].clone()]);
    let r = chain::verify(&p).unwrap();
    assert!(r.problems.iter().any(|m| m.contains("record 3 where 2 was expected")), "{:?}", r.problems);
    assert!(r.problems.iter().any(|m| m.contains("does not chain")), "{:?}", r.problems);
    // A line that is not a record.
    write_lines(&p, &[lines[0].clone(), "{}".into(), lines[1].clone(), lines[2].clone()]);
    let r = chain::verify(&p).unwrap();
    assert!(r.problems.iter().any(|m| m.contains(":2: not a valid record")), "{:?}", r.problems);
    assert_eq!(r.records, 4);
    // An unreadable checkpoint.
    write_lines(&p, &lines);
    std::fs::write(chain::checkpoint_path(&p), "{").unwrap();
    let r = chain::verify(&p).unwrap();
    assert!(r.problems.iter().any(|m| m.contains("checkpoint unreadable")), "{:?}", r.problems);
}

#[test]
fn verify_stops_after_fifty_problems() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    std::fs::write(&p, "x\n".repeat(80)).unwrap();
    write_checkpoint(&p, 1, "x");
    let r = chain::verify(&p).unwrap();
    assert_eq!(r.problems.len(), 51, "{:?}", r.problems);
    assert_eq!(r.problems[50], "too many problems; stopping");
    assert_eq!(r.records, 50);
}

fn filtered(p: &Path, f: Filter, limit: usize) -> (Vec<u64>, bool) {
    let (recs, more) = chain::query(p, &f, limit).unwrap();
    (recs.into_iter().map(|r| r.seq).collect(), more)
}

#[test]
fn query_filters_each_field_at_its_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let mut denied = record(5, "2026-11-24T10:00:05.000Z", None, "auth", None, None);
    denied.outcome = Outcome::Denied;
    let records = vec![
        record(1, "2026-11-24T10:00:01.000Z", Some("alice"), "restart", Some("abc123"), Some("web")),
        record(2, "2026-11-24T10:00:02.000Z", Some("bob"), "prune.images", Some("images"), None),
        record(3, "2026-11-24T10:00:03.000Z", Some("alice"), "prune", Some("def456"), Some("db")),
        record(4, "2026-11-24T10:00:04.000Z", Some("alice"), "pruned", Some("xyz"), Some("abc")),
        denied,
    ];
    write_lines(&p, &chained(records, GENESIS.into()));
    let all = Filter::default();
    assert_eq!(filtered(&p, all.clone(), 10), (vec![5, 4, 3, 2, 1], false));
    assert_eq!(filtered(&p, all.clone(), 5), (vec![5, 4, 3, 2, 1], false));
    assert_eq!(filtered(&p, all.clone(), 4), (vec![5, 4, 3, 2], true));
    assert_eq!(filtered(&p, all.clone(), 0), (vec![], true));
    let f = |g: fn(&mut Filter)| {
        let mut f = Filter::default();
        g(&mut f);
        f
    };
    assert_eq!(filtered(&p, f(|f| f.before_seq = Some(3)), 10).0, vec![2, 1]);
    assert_eq!(filtered(&p, f(|f| f.since = Some("2026-11-24T10:00:04.000Z".into())), 10).0, vec![5, 4]);
    assert_eq!(filtered(&p, f(|f| f.until = Some("2026-11-24T10:00:02.000Z".into())), 10).0, vec![1]);
    assert_eq!(filtered(&p, f(|f| f.actor = Some("bob".into())), 10).0, vec![2]);
    assert_eq!(filtered(&p, f(|f| f.verb = Some("prune".into())), 10).0, vec![3, 2]);
    assert_eq!(filtered(&p, f(|f| f.verb = Some("prune.images".into())), 10).0, vec![2]);
    // Target: the full id, an id prefix, or the container name.
    assert_eq!(filtered(&p, f(|f| f.target = Some("abc123".into())), 10).0, vec![1]);
    assert_eq!(filtered(&p, f(|f| f.target = Some("def".into())), 10).0, vec![3]);
    assert_eq!(filtered(&p, f(|f| f.target = Some("db".into())), 10).0, vec![3]);
    assert_eq!(filtered(&p, f(|f| f.target = Some("abc".into())), 10).0, vec![4, 1]);
    assert_eq!(filtered(&p, f(|f| f.target = Some("nothing".into())), 10).0, Vec::<u64>::new());
    assert_eq!(filtered(&p, f(|f| f.outcome = Some(Outcome::Denied)), 10).0, vec![5]);
    // Filters combine.
    let mut both = f(|f| f.actor = Some("alice".into()));
    both.verb = Some("prune".into());
    assert_eq!(filtered(&p, both, 10).0, vec![3]);
}

#[test]
fn query_reads_rotated_files_newest_first_and_skips_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let lines = chained((1..=4).map(plain).collect(), GENESIS.into());
    write_lines(&chain::rotated_path(&p, 1), &lines[..2]);
    write_lines(&p, &[lines[2].clone(), "garbage".into(), String::new(), lines[3].clone()]);
    assert_eq!(filtered(&p, Filter::default(), 10), (vec![4, 3, 2, 1], false));
    assert_eq!(filtered(&p, Filter::default(), 3), (vec![4, 3, 2], true));
}
