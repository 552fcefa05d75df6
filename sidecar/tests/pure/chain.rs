//! `sidecar::audit::chain`: hashing, sealing, file layout, head finding,
//! verification and filtering, on hand-written chains (each field change is
//! detected; so is a record or checkpoint sealed under another key, or not at all).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use shared::{AuditRecord, Outcome};
use sidecar::audit::chain::{self, AuditKey, ChainError, Checkpoint, CheckpointState, Filter, GENESIS};

/// The audit key the tests' logs are sealed with.
fn key() -> AuditKey {
    AuditKey::from_bytes([7; 32], "test.key")
}

/// A key that is not the log's (a forger's).
fn other_key() -> AuditKey {
    AuditKey::from_bytes([8; 32], "forger.key")
}

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
        mac: None,
    }
}

fn plain(seq: u64) -> AuditRecord {
    record(seq, &format!("2026-11-24T10:00:{seq:02}.000Z"), Some("alice"), "restart", Some("abc"), Some("web"))
}

/// Chains `records` (setting `prev`), seals each under `key` (none: no MAC)
/// and returns their lines, without newlines.
fn chained(records: Vec<AuditRecord>, mut prev: String, key: Option<&AuditKey>) -> Vec<String> {
    records
        .into_iter()
        .map(|mut r| {
            r.prev = prev.clone();
            let line = String::from_utf8(chain::seal(&mut r, key).unwrap()).unwrap();
            prev = chain::hash_line(line.as_bytes());
            line
        })
        .collect()
}

/// One line re-sealed after `edit` (its `prev` kept): what a holder of `key` would write.
fn resealed(line: &str, key: Option<&AuditKey>, edit: impl FnOnce(&mut AuditRecord)) -> String {
    let mut rec: AuditRecord = serde_json::from_str(line).unwrap();
    edit(&mut rec);
    String::from_utf8(chain::seal(&mut rec, key).unwrap()).unwrap()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
}

fn write_checkpoint(active: &Path, seq: u64, hash: &str, key: Option<&AuditKey>) {
    chain::write_checkpoint(active, &Checkpoint::new(seq, hash.into(), key)).unwrap();
}

/// A clean log of `n` records sealed with [`key`], with its sealed checkpoint at the last one.
fn clean_log(dir: &Path, n: u64) -> (PathBuf, Vec<String>) {
    let p = dir.join("audit.jsonl");
    let lines = chained((1..=n).map(plain).collect(), GENESIS.into(), Some(&key()));
    write_lines(&p, &lines);
    write_checkpoint(&p, n, &chain::hash_line(lines.last().unwrap().as_bytes()), Some(&key()));
    (p, lines)
}

fn verify(p: &Path) -> chain::VerifyReport {
    chain::verify(p, Some(&key())).unwrap()
}

fn open(p: &Path) -> Result<chain::Opened, ChainError> {
    chain::open_for_append(p, Some(&key()))
}

fn corrupt_reason(r: Result<chain::Opened, ChainError>) -> String {
    match r {
        Err(ChainError::Corrupt { reason, .. }) => reason,
        other => panic!("expected a corrupt log, got {:?}", other.map(|o| o.head)),
    }
}

#[test]
fn hash_and_paths() {
    assert_eq!(chain::hash_line(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_eq!(GENESIS.len(), 64);
    let p = Path::new("/data/audit.jsonl");
    assert_eq!(chain::checkpoint_path(p), Path::new("/data/audit.jsonl.checkpoint"));
    assert_eq!(chain::lock_path(p), Path::new("/data/audit.jsonl.lock"));
    assert_eq!(chain::rotated_path(p, 7), Path::new("/data/audit.jsonl.000007"));
    assert_eq!(chain::rotated_path(p, 123_456), Path::new("/data/audit.jsonl.123456"));
}

#[test]
fn one_writer_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let held = chain::lock(&p).unwrap();
    assert!(chain::lock_path(&p).exists());
    assert!(matches!(chain::lock(&p), Err(ChainError::Locked { .. })));
    drop(held);
    assert!(chain::lock(&p).is_ok());
}

#[test]
fn seal_and_mac_ok() {
    let k = key();
    // Unkeyed: no MAC, and a stale one is cleared.
    let mut rec = plain(1);
    rec.mac = Some("stale".into());
    let line = chain::seal(&mut rec, None).unwrap();
    assert_eq!(rec.mac, None);
    assert_eq!(line, serde_json::to_vec(&rec).unwrap());
    assert!(!chain::mac_ok(&rec, &k), "a record without a MAC is not sealed");
    // Keyed: the MAC is of the line without it, and the line carries it.
    let line = chain::seal(&mut rec, Some(&k)).unwrap();
    let mac = rec.mac.clone().expect("sealed");
    assert_eq!(mac.len(), 64);
    let mut unsealed = rec.clone();
    unsealed.mac = None;
    assert_eq!(mac, k.mac(&serde_json::to_vec(&unsealed).unwrap()));
    assert_eq!(serde_json::from_slice::<AuditRecord>(&line).unwrap(), rec);
    assert!(chain::mac_ok(&rec, &k));
    // Sealing again gives the same MAC (the old one is not part of the input).
    assert_eq!(chain::seal(&mut rec.clone(), Some(&k)).unwrap(), line);
    // Another key, an edited field, or an edited MAC: not valid.
    assert!(!chain::mac_ok(&rec, &other_key()));
    let mut edited = rec.clone();
    edited.actor = Some("mallory".into());
    assert!(!chain::mac_ok(&edited, &k));
    let mut flipped = rec.clone();
    let first = if mac.starts_with('0') { "1" } else { "0" };
    flipped.mac = Some(format!("{first}{}", &mac[1..]));
    assert!(!chain::mac_ok(&flipped, &k));
    let mut foreign = rec.clone();
    chain::seal(&mut foreign, Some(&other_key())).unwrap();
    assert_ne!(foreign.mac, rec.mac);
    assert!(!chain::mac_ok(&foreign, &k));
}

#[test]
fn checkpoint_macs() {
    let k = key();
    let hash = "ab".repeat(32);
    let cp = Checkpoint::new(3, hash.clone(), Some(&k));
    assert_eq!((cp.seq, cp.hash.as_str()), (3, hash.as_str()));
    assert!(cp.mac_ok(&k));
    assert!(!cp.mac_ok(&other_key()));
    assert!(!Checkpoint { seq: 4, ..cp.clone() }.mac_ok(&k), "the seq is sealed");
    assert!(!Checkpoint { hash: "cd".repeat(32), ..cp.clone() }.mac_ok(&k), "the hash is sealed");
    assert!(!Checkpoint { mac: Some("00".repeat(32)), ..cp.clone() }.mac_ok(&k));
    let unkeyed = Checkpoint::new(3, hash, None);
    assert_eq!(unkeyed.mac, None);
    assert!(!unkeyed.mac_ok(&k), "no MAC is not a valid MAC");
    // Another key, another MAC.
    assert_ne!(Checkpoint::new(3, "x".into(), Some(&k)).mac, Checkpoint::new(3, "x".into(), Some(&other_key())).mac);
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
        "audit.jsonl.lock",
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
fn checkpoints_read_back_missing_blank_and_broken() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    assert_eq!(chain::read_checkpoint(&p).unwrap(), CheckpointState::Missing);
    // Blank (a crash before the data reached the disk): there, but unreadable.
    for blank in ["", "\n\n", "\0\0\0", " \0\n"] {
        std::fs::write(chain::checkpoint_path(&p), blank).unwrap();
        assert_eq!(chain::read_checkpoint(&p).unwrap(), CheckpointState::Unreadable("empty".into()), "{blank:?}");
    }
    // Trailing newlines, spaces and NULs are ignored; the MAC is optional.
    std::fs::write(chain::checkpoint_path(&p), "{\"seq\":3,\"hash\":\"ab\"}\n\0\0").unwrap();
    let unkeyed = Checkpoint { seq: 3, hash: "ab".into(), mac: None };
    assert_eq!(chain::read_checkpoint(&p).unwrap(), CheckpointState::Present(unkeyed));
    std::fs::write(chain::checkpoint_path(&p), "{\"seq\":3,\"hash\":\"ab\",\"mac\":\"cd\"} \n").unwrap();
    let keyed = Checkpoint { seq: 3, hash: "ab".into(), mac: Some("cd".into()) };
    assert_eq!(chain::read_checkpoint(&p).unwrap(), CheckpointState::Present(keyed));
    // Torn or edited: unreadable, with the reason.
    std::fs::write(chain::checkpoint_path(&p), "{\"seq\":3,").unwrap();
    match chain::read_checkpoint(&p).unwrap() {
        CheckpointState::Unreadable(why) => assert!(why.starts_with("not a checkpoint"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Far too long to be one: not parsed at all.
    std::fs::write(chain::checkpoint_path(&p), " ".repeat(4097)).unwrap();
    match chain::read_checkpoint(&p).unwrap() {
        CheckpointState::Unreadable(why) => assert!(why.starts_with("4097 bytes"), "{why}"),
        other => panic!("{other:?}"),
    }
    let body = "{\"seq\":3,\"hash\":\"ab\"}";
    std::fs::write(chain::checkpoint_path(&p), format!("{}{body}", " ".repeat(4096 - body.len()))).unwrap();
    assert!(matches!(chain::read_checkpoint(&p).unwrap(), CheckpointState::Present(_)), "4096 bytes are read");
    // A checkpoint that cannot be read (a directory) is an error, not "missing".
    std::fs::remove_file(chain::checkpoint_path(&p)).unwrap();
    std::fs::create_dir(chain::checkpoint_path(&p)).unwrap();
    assert!(chain::read_checkpoint(&p).is_err());
}

#[test]
fn write_checkpoint_replaces_a_longer_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let sealed = Checkpoint::new(123_456, "f".repeat(64), Some(&key()));
    chain::write_checkpoint(&p, &sealed).unwrap();
    assert_eq!(chain::read_checkpoint(&p).unwrap(), CheckpointState::Present(sealed));
    chain::write_checkpoint(&p, &Checkpoint::new(7, "a".into(), None)).unwrap();
    assert_eq!(std::fs::read_to_string(chain::checkpoint_path(&p)).unwrap(), "{\"seq\":7,\"hash\":\"a\"}\n");
    // Nothing is left beside it but the log's own files.
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, vec!["audit.jsonl.checkpoint".to_string()]);
}

#[test]
fn first_record_reads_only_a_whole_first_line() {
    let dir = tempfile::tempdir().unwrap();
    let (p, lines) = clean_log(dir.path(), 2);
    let first = chain::first_record(&p).unwrap().unwrap();
    assert_eq!(serde_json::to_string(&first).unwrap(), lines[0]);
    std::fs::write(&p, &lines[0]).unwrap();
    assert_eq!(chain::first_record(&p).unwrap(), None, "a line without its newline");
    std::fs::write(&p, "not json\n").unwrap();
    assert_eq!(chain::first_record(&p).unwrap(), None);
    assert!(chain::first_record(&dir.path().join("none")).is_err());
}

#[test]
fn open_for_append_finds_the_head() {
    let dir = tempfile::tempdir().unwrap();
    // A new log in a directory that does not exist yet: nothing to check.
    let p = dir.path().join("a/b/audit.jsonl");
    let o = open(&p).unwrap();
    assert_eq!((o.head.next_seq, o.head.prev_hash.as_str(), o.torn_bytes), (1, GENESIS, 0));
    assert_eq!((o.checkpoint_problem, o.keyed), (None, false));
    assert!(p.exists());
    // Three sealed records: the head follows the last one's exact bytes.
    let (p, lines) = clean_log(dir.path(), 3);
    let o = open(&p).unwrap();
    assert_eq!(o.head.next_seq, 4);
    assert_eq!(o.head.prev_hash, chain::hash_line(lines[2].as_bytes()));
    assert_eq!((o.torn_bytes, o.checkpoint_problem, o.keyed), (0, None, true));
    assert_eq!(std::fs::read_to_string(&p).unwrap().len(), lines.iter().map(|l| l.len() + 1).sum::<usize>());
    // Unsealed records (a log from before the key): not keyed.
    let q = dir.path().join("old.jsonl");
    let old = chained((1..=2).map(plain).collect(), GENESIS.into(), None);
    write_lines(&q, &old);
    write_checkpoint(&q, 2, &chain::hash_line(old[1].as_bytes()), None);
    let o = open(&q).unwrap();
    assert_eq!((o.head.next_seq, o.checkpoint_problem, o.keyed), (3, None, false));
}

#[test]
fn open_for_append_cuts_exactly_the_torn_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (p, lines) = clean_log(dir.path(), 2);
    let intact = std::fs::read(&p).unwrap();
    let mut torn = intact.clone();
    torn.extend_from_slice(b"{\"seq\":3,\"ti");
    std::fs::write(&p, &torn).unwrap();
    let o = open(&p).unwrap();
    assert_eq!(o.torn_bytes, 12);
    assert_eq!(std::fs::read(&p).unwrap(), intact);
    assert_eq!((o.head.next_seq, o.head.prev_hash), (3, chain::hash_line(lines[1].as_bytes())));
    // A file that is nothing but a torn line is emptied (and, with no record, needs no checkpoint).
    let q = dir.path().join("other.jsonl");
    std::fs::write(&q, b"{\"seq\":1").unwrap();
    let o = open(&q).unwrap();
    assert_eq!((o.head.next_seq, o.torn_bytes, o.checkpoint_problem), (1, 8, None));
    assert_eq!(std::fs::read(&q).unwrap(), b"");
}

#[test]
fn open_for_append_continues_from_the_newest_rotated_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let lines = chained((1..=4).map(plain).collect(), GENESIS.into(), Some(&key()));
    write_lines(&chain::rotated_path(&p, 1), &lines[..2]);
    write_lines(&chain::rotated_path(&p, 2), &lines[2..]);
    std::fs::write(&p, "").unwrap();
    let o = open(&p).unwrap();
    assert_eq!((o.head.next_seq, o.head.prev_hash), (5, chain::hash_line(lines[3].as_bytes())));
    assert!(o.keyed);
    // The checkpoint is missing: reported, not fatal.
    let (what, _) = o.checkpoint_problem.expect("a missing checkpoint is reported");
    assert_eq!(what, "missing");
    let r = verify(&p);
    assert_eq!((r.files, r.records, r.last_seq), (3, 4, 4));
    // Only the checkpoint is missing.
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].contains("no checkpoint"), "{:?}", r.problems);
}

#[test]
fn open_for_append_checks_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (p, lines) = clean_log(dir.path(), 3);
    let k = key();
    let hash = |i: usize| chain::hash_line(lines[i].as_bytes());
    // An older checkpoint must name its record's hash too (when the key is known)…
    write_checkpoint(&p, 2, &hash(1), Some(&k));
    let o = open(&p).unwrap();
    assert_eq!((o.head.next_seq, o.checkpoint_problem), (4, None));
    write_checkpoint(&p, 1, "not the hash", Some(&k));
    assert!(corrupt_reason(open(&p)).contains("record 1"));
    // …while without the key only the last record's hash can be compared.
    assert!(chain::open_for_append(&p, None).is_ok());
    // At the last record, the hash must match either way.
    write_checkpoint(&p, 3, "not the hash", Some(&k));
    let reason = corrupt_reason(open(&p));
    assert!(reason.contains("record 3") && reason.contains("checkpoint's hash"), "{reason}");
    assert!(corrupt_reason(chain::open_for_append(&p, None)).contains("record 3"));
    // Ahead of the log: records were removed.
    write_checkpoint(&p, 4, "x", Some(&k));
    match open(&p) {
        Err(ChainError::BehindCheckpoint { last, checkpoint, .. }) => assert_eq!((last, checkpoint), (3, 4)),
        other => panic!("expected behind checkpoint, got {:?}", other.map(|o| o.head)),
    }
    // A checkpoint sealed under another key is set aside (and reported), so is one without a MAC.
    write_checkpoint(&p, 4, "x", Some(&other_key()));
    let o = open(&p).unwrap();
    let (what, why) = o.checkpoint_problem.expect("a forged checkpoint is reported");
    assert!(what == "unreadable" && why.contains("MAC"), "{what}: {why}");
    assert_eq!(o.head.next_seq, 4);
    write_checkpoint(&p, 3, &hash(2), None);
    let (what, why) = open(&p).unwrap().checkpoint_problem.expect("an unsealed checkpoint is reported");
    assert!(what == "unreadable" && why.contains("no MAC"), "{what}: {why}");
    // A record after the checkpoint must carry a valid MAC.
    write_checkpoint(&p, 2, &hash(1), Some(&k));
    for forger in [Some(other_key()), None] {
        let forged = resealed(&lines[2], forger.as_ref(), |r| r.actor = Some("mallory".into()));
        write_lines(&p, &[lines[0].clone(), lines[1].clone(), forged]);
        let reason = corrupt_reason(open(&p));
        assert!(reason.contains("record 3") && reason.contains("after the checkpoint"), "{reason}");
    }
    // With no checkpoint to go by, the last record's MAC is still checked.
    std::fs::remove_file(chain::checkpoint_path(&p)).unwrap();
    let forged = resealed(&lines[2], Some(&other_key()), |_| {});
    write_lines(&p, &[lines[0].clone(), lines[1].clone(), forged]);
    assert!(corrupt_reason(open(&p)).contains("MAC does not match"));
    write_lines(&p, &lines);
    assert!(open(&p).is_ok());
    // A last line that is not a record.
    std::fs::write(&p, "not json\n").unwrap();
    assert!(matches!(open(&p), Err(ChainError::Corrupt { .. })));
    assert!(matches!(chain::open_for_append(&p, None), Err(ChainError::Corrupt { .. })));
}

#[test]
fn verify_reports_a_clean_chain_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (p, lines) = clean_log(dir.path(), 5);
    let r = verify(&p);
    assert!(r.ok(), "{:?}", r.problems);
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    assert_eq!((r.files, r.records, r.last_seq, r.pruned_through), (1, 5, 5, None));
    assert_eq!(r.last_hash, Some(chain::hash_line(lines[4].as_bytes())));
    // Without the key the chain is still whole, but the report says the MACs went unchecked.
    let r = chain::verify(&p, None).unwrap();
    assert!(r.ok(), "{:?}", r.problems);
    assert!(r.notes.iter().any(|n| n.contains("no audit key given")), "{:?}", r.notes);
    // A checkpoint at an earlier record with its right hash: the records after it
    // are anchored by their MACs, so only with the key.
    write_checkpoint(&p, 3, &chain::hash_line(lines[2].as_bytes()), Some(&key()));
    let r = verify(&p);
    assert!(r.ok(), "{:?}", r.problems);
    assert!(r.notes.iter().any(|n| n.starts_with("2 record(s) after the checkpoint")), "{:?}", r.notes);
    let r = chain::verify(&p, None).unwrap();
    assert!(r.problems.iter().any(|m| m.contains("anchored by nothing")), "{:?}", r.problems);
    // No log at all is an error; an empty one has no records and no hash (and needs no checkpoint).
    assert!(chain::verify(&dir.path().join("none.jsonl"), Some(&key())).is_err());
    let e = dir.path().join("empty.jsonl");
    std::fs::write(&e, "").unwrap();
    let r = verify(&e);
    assert_eq!((r.files, r.records, r.last_seq, r.last_hash.as_deref()), (1, 0, 0, None));
    assert!(r.ok(), "{:?}", r.problems);
}

/// A field's name and a change to it.
type Edit = (&'static str, fn(&mut AuditRecord));

#[test]
fn verify_detects_a_change_to_any_field() {
    let dir = tempfile::tempdir().unwrap();
    let (p, lines) = clean_log(dir.path(), 3);
    let edits: [Edit; 14] = [
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
        ("mac", |r| r.mac = Some(AuditKey::from_bytes([8; 32], "forger.key").mac(b"another line"))),
    ];
    for (field, edit) in edits {
        for at in 0..3 {
            let mut rec: AuditRecord = serde_json::from_str(&lines[at]).unwrap();
            edit(&mut rec);
            let mut edited = lines.clone();
            edited[at] = serde_json::to_string(&rec).unwrap();
            write_lines(&p, &edited);
            let r = verify(&p);
            assert!(!r.ok(), "{field} of record {} changed unnoticed", at + 1);
            // Whatever changed, the record no longer matches its MAC.
            assert!(
                r.problems.iter().any(|m| m.contains(&format!("record {}'s MAC does not match", rec.seq))),
                "{field} of record {}: {:?}",
                at + 1,
                r.problems
            );
        }
    }
    write_lines(&p, &lines);
    assert!(verify(&p).ok());
}

#[test]
fn verify_needs_the_key_to_reforge_a_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (p, lines) = clean_log(dir.path(), 3);
    let records: Vec<AuditRecord> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut edited = records.clone();
    edited[1].actor = Some("mallory".into());
    // Re-chained from record 2 on, and sealed with another key (or with none), checkpoint too.
    for forger in [Some(other_key()), None] {
        let mut forged = lines[..1].to_vec();
        forged.extend(chained(edited[1..].to_vec(), chain::hash_line(lines[0].as_bytes()), forger.as_ref()));
        write_lines(&p, &forged);
        write_checkpoint(&p, 3, &chain::hash_line(forged[2].as_bytes()), forger.as_ref());
        // Consistent to anyone without the key…
        let r = chain::verify(&p, None).unwrap();
        assert!(r.ok(), "{:?}", r.problems);
        // …not to the key's holder.
        let r = verify(&p);
        assert!(!r.ok());
        match forger {
            Some(ref forger) => {
                for seq in [2, 3] {
                    let want = format!("record {seq}'s MAC does not match");
                    assert!(r.problems.iter().any(|m| m.contains(&want)), "{:?}", r.problems);
                }
                assert!(!r.problems.iter().any(|m| m.contains("record 1's MAC")), "{:?}", r.problems);
                assert!(r.problems.iter().any(|m| m.contains("checkpoint's MAC does not match")), "{:?}", r.problems);
                // It is the key, nothing else: under the forger's key only record 1 fails.
                let r = chain::verify(&p, Some(forger)).unwrap();
                assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
                assert!(r.problems[0].contains("record 1's MAC does not match"), "{:?}", r.problems);
            }
            None => {
                let want = "record 2 carries no MAC after records that do";
                assert!(r.problems.iter().any(|m| m.contains(want)), "{:?}", r.problems);
                assert!(r.problems.iter().any(|m| m.contains("checkpoint carries no MAC")), "{:?}", r.problems);
            }
        }
    }
    // A log with no MAC at all was not written with this key; records that
    // predate the key are fine before sealed ones.
    let unsealed = chained(records.clone(), GENESIS.into(), None);
    write_lines(&p, &unsealed);
    write_checkpoint(&p, 3, &chain::hash_line(unsealed[2].as_bytes()), None);
    let r = verify(&p);
    assert!(r.problems.iter().any(|m| m.contains("none of the 3 record(s) carries a MAC")), "{:?}", r.problems);
    let mut mixed = chained(records[..2].to_vec(), GENESIS.into(), None);
    mixed.extend(chained(records[2..].to_vec(), chain::hash_line(mixed[1].as_bytes()), Some(&key())));
    write_lines(&p, &mixed);
    write_checkpoint(&p, 3, &chain::hash_line(mixed[2].as_bytes()), Some(&key()));
    let r = verify(&p);
    assert!(r.ok(), "{:?}", r.problems);
    assert!(r.notes.iter().any(|n| n.contains("2 record(s) predate the audit key")), "{:?}", r.notes);
}

#[test]
fn verify_names_each_kind_of_break() {
    let dir = tempfile::tempdir().unwrap();
    let (p, lines) = clean_log(dir.path(), 3);
    let k = key();
    let last_hash = chain::hash_line(lines[2].as_bytes());
    // Cut from the end: only the checkpoint says so.
    write_lines(&p, &lines[..2]);
    let r = verify(&p);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].contains("cut from the end"), "{:?}", r.problems);
    // The last record edited and re-sealed with the key (valid JSON, same seq, valid MAC):
    // only the checkpoint's hash differs.
    let edited = resealed(&lines[2], Some(&k), |r| r.duration_ms = 99);
    write_lines(&p, &[lines[0].clone(), lines[1].clone(), edited]);
    let r = verify(&p);
    assert_eq!(r.problems, vec!["record 3 differs from the checkpoint's hash: edited".to_string()]);
    // Edited without the key: its MAC fails as well.
    let mut rec: AuditRecord = serde_json::from_str(&lines[2]).unwrap();
    rec.duration_ms = 99;
    write_lines(&p, &[lines[0].clone(), lines[1].clone(), serde_json::to_string(&rec).unwrap()]);
    let r = verify(&p);
    assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
    assert!(r.problems[0].contains("record 3's MAC does not match the audit key"), "{:?}", r.problems);
    // A gap in seq.
    write_lines(&p, &[lines[0].clone(), lines[2].clone()]);
    let r = verify(&p);
    assert!(r.problems.iter().any(|m| m.contains("record 3 where 2 was expected")), "{:?}", r.problems);
    assert!(r.problems.iter().any(|m| m.contains("does not chain")), "{:?}", r.problems);
    // A line that is not a record.
    write_lines(&p, &[lines[0].clone(), "{}".into(), lines[1].clone(), lines[2].clone()]);
    let r = verify(&p);
    assert!(r.problems.iter().any(|m| m.contains(":2: not a valid record")), "{:?}", r.problems);
    assert_eq!(r.records, 4);
    // A record that parses but is not written as the sidecar writes it.
    write_lines(&p, &[lines[0].clone(), lines[1].clone(), lines[2].replacen('{', "{ ", 1)]);
    let r = verify(&p);
    assert!(r.problems.iter().any(|m| m.contains("record 3 is not in the form")), "{:?}", r.problems);
    // A torn last line (nothing else wrong).
    write_lines(&p, &lines);
    let mut torn = std::fs::read(&p).unwrap();
    torn.extend_from_slice(b"{\"seq\":4");
    std::fs::write(&p, torn).unwrap();
    let r = verify(&p);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].contains("last line is incomplete (8 bytes"), "{:?}", r.problems);
    assert_eq!(r.records, 3);
    // An unreadable checkpoint, a missing one.
    write_lines(&p, &lines);
    std::fs::write(chain::checkpoint_path(&p), "{").unwrap();
    let r = verify(&p);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].contains("is unreadable"), "{:?}", r.problems);
    std::fs::remove_file(chain::checkpoint_path(&p)).unwrap();
    let r = verify(&p);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].contains("no checkpoint"), "{:?}", r.problems);
    // A checkpoint sealed under another key, or not sealed, though right otherwise.
    write_checkpoint(&p, 3, &last_hash, Some(&other_key()));
    assert_eq!(verify(&p).problems, vec!["the checkpoint's MAC does not match the audit key: forged".to_string()]);
    write_checkpoint(&p, 3, &last_hash, None);
    assert_eq!(verify(&p).problems, vec!["the checkpoint carries no MAC though the records do: forged".to_string()]);
    write_checkpoint(&p, 3, &last_hash, Some(&k));
    assert!(verify(&p).ok());
}

#[test]
fn verify_reports_incidents_recorded_at_start_up() {
    use sidecar::audit::read::{CHECKPOINT_MISSING, CHECKPOINT_UNREADABLE};
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    for (verb, word) in [(CHECKPOINT_MISSING, "missing"), (CHECKPOINT_UNREADABLE, "unreadable")] {
        let mut records: Vec<AuditRecord> = (1..=3).map(plain).collect();
        records[1].verb = verb.into();
        records[1].message = Some("why".into());
        let lines = chained(records, GENESIS.into(), Some(&key()));
        write_lines(&p, &lines);
        write_checkpoint(&p, 3, &chain::hash_line(lines[2].as_bytes()), Some(&key()));
        let r = verify(&p);
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        let want = format!("record 2: at start-up the checkpoint was {word} (why)");
        assert!(r.problems[0].contains(&want), "{:?}", r.problems);
    }
}

#[test]
fn verify_accepts_a_start_only_when_retention_accounts_for_it() {
    use sidecar::audit::read::RETENTION;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let deleted = chain::hash_line(b"record 2, deleted");
    for (through, hash, anchored) in [
        (None, None, false),
        (Some("2"), Some(deleted.as_str()), true),
        (Some("1"), Some(deleted.as_str()), false),
        (Some("2"), Some(GENESIS), false),
    ] {
        let mut records: Vec<AuditRecord> = (3..=5).map(plain).collect();
        if let (Some(t), Some(h)) = (through, hash) {
            records[1].verb = RETENTION.into();
            records[1].params.insert("pruned_through_seq".into(), t.into());
            records[1].params.insert("pruned_through_hash".into(), h.into());
        }
        let lines = chained(records, deleted.clone(), Some(&key()));
        write_lines(&chain::rotated_path(&p, 2), &lines);
        write_checkpoint(&p, 5, &chain::hash_line(lines[2].as_bytes()), Some(&key()));
        let r = verify(&p);
        assert_eq!((r.files, r.records, r.last_seq), (1, 3, 5));
        if anchored {
            assert!(r.ok(), "{:?}", r.problems);
            assert_eq!(r.pruned_through, Some(2));
            assert!(
                r.notes.iter().any(|n| n.contains("records 1–2 were deleted by retention (record 4")),
                "{:?}",
                r.notes
            );
        } else {
            assert_eq!(r.pruned_through, None);
            assert_eq!(r.problems.len(), 1, "{through:?} {hash:?}: {:?}", r.problems);
            assert!(r.problems[0].contains("the chain starts at record 3"), "{:?}", r.problems);
        }
    }
}

#[test]
fn verify_stops_after_fifty_problems() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    std::fs::write(&p, "x\n".repeat(80)).unwrap();
    write_checkpoint(&p, 1, "x", Some(&key()));
    let r = verify(&p);
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
    write_lines(&p, &chained(records, GENESIS.into(), None));
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
    let lines = chained((1..=4).map(plain).collect(), GENESIS.into(), Some(&key()));
    write_lines(&chain::rotated_path(&p, 1), &lines[..2]);
    write_lines(&p, &[lines[2].clone(), "garbage".into(), String::new(), lines[3].clone()]);
    assert_eq!(filtered(&p, Filter::default(), 10), (vec![4, 3, 2, 1], false));
    assert_eq!(filtered(&p, Filter::default(), 3), (vec![4, 3, 2], true));
}

/// A reader that fails with the given errors (last first) before giving `data`.
struct Flaky {
    errors: Vec<std::io::ErrorKind>,
    data: &'static [u8],
    pos: usize,
}

impl std::io::Read for Flaky {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        unreachable!("read_line reads through BufRead")
    }
}

impl std::io::BufRead for Flaky {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        match self.errors.pop() {
            Some(kind) => Err(kind.into()),
            None => Ok(&self.data[self.pos..]),
        }
    }
    fn consume(&mut self, n: usize) {
        self.pos += n;
    }
}

#[test]
fn read_line_retries_an_interrupted_read_and_reports_any_other_error() {
    let mut buf = Vec::new();
    let mut r = Flaky { errors: vec![std::io::ErrorKind::Interrupted], data: b"one\n", pos: 0 };
    let line = chain::read_line(&mut r, &mut buf).unwrap().expect("a line");
    assert_eq!((line.len, line.newline, buf.as_slice()), (3, true, &b"one"[..]));
    let mut r = Flaky { errors: vec![std::io::ErrorKind::Other], data: b"one\n", pos: 0 };
    let Err(e) = chain::read_line(&mut r, &mut buf) else { panic!("the error, not a line") };
    assert_eq!(e.kind(), std::io::ErrorKind::Other);
}
