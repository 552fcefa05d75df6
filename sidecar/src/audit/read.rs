//! Reading the log back: `verify` (the whole chain) and `query` (newest
//! first). Both stream the files line by line, so memory stays bounded by
//! one line (and, for a query, one page) whatever the log's size.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use shared::AuditRecord;

use super::chain::{
    chain_files, checkpoint_path, hash_line, mac_ok, read_checkpoint, read_line, AuditKey, CheckpointState, GENESIS,
    MAX_LINE,
};

/// Verbs the writer uses to record an incident the chain itself cannot show.
pub const CHECKPOINT_MISSING: &str = "audit.checkpoint_missing";
pub const CHECKPOINT_UNREADABLE: &str = "audit.checkpoint_unreadable";
/// Written when a log from before audit keys is first opened with one.
pub const KEYED: &str = "audit.keyed";
/// Written before retention deletes the oldest files; names the last deleted record.
pub const RETENTION: &str = "audit.retention";

/// The result of `audit verify`.
#[derive(Debug, Default)]
pub struct VerifyReport {
    pub files: usize,
    pub records: u64,
    pub last_seq: u64,
    pub last_hash: Option<String>,
    /// Records before this seq were deleted by retention (and that is proven by a record).
    pub pruned_through: Option<u64>,
    /// Breaks: the log is not intact.
    pub problems: Vec<String>,
    /// Facts worth knowing that are not breaks (retention, records that predate the key).
    pub notes: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

const MAX_PROBLEMS: usize = 50;

/// Walks the whole chain and reports every break: edited lines (hash, form or
/// MAC mismatch), deleted or reordered lines (seq gaps), a torn last line,
/// records cut from the end (behind the checkpoint), a missing or unreadable
/// checkpoint, records forged without the key (when `key` is given), and older
/// files deleted without a retention record.
pub fn verify(active: &Path, key: Option<&AuditKey>) -> io::Result<VerifyReport> {
    let files = chain_files(active)?;
    if files.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("no audit log at {}", active.display())));
    }
    let mut report = VerifyReport { files: files.len(), ..Default::default() };
    let checkpoint = read_checkpoint(active)?;
    let cp = match &checkpoint {
        CheckpointState::Present(c) => Some(c.clone()),
        _ => None,
    };
    let mut w = Walk { key, cp_seq: cp.as_ref().map(|c| c.seq), ..Walk::default() };
    let mut buf = Vec::new();
    for path in &files {
        let name = path.display().to_string();
        let mut r = BufReader::new(File::open(path)?);
        let mut n = 0usize;
        while let Some(l) = read_line(&mut r, &mut buf)? {
            n += 1;
            if report.problems.len() >= MAX_PROBLEMS {
                report.problems.push("too many problems; stopping".into());
                return Ok(report);
            }
            let at = format!("{name}:{n}");
            if !l.newline {
                report.problems.push(format!(
                    "{name}: last line is incomplete ({} bytes with no newline): truncated or torn",
                    l.len
                ));
                break;
            }
            if l.len > MAX_LINE {
                report.problems.push(format!("{at}: a line of {} bytes is not a record: edited", l.len));
                w.prev = None;
                report.records += 1;
                continue;
            }
            w.line(&at, &buf, &mut report);
        }
    }
    report.last_hash = w.prev.clone().filter(|_| report.records > 0);
    if let Some((through, _)) = &w.start {
        match w.anchored_by {
            Some(seq) => {
                report.pruned_through = Some(*through);
                report.notes.push(format!("records 1–{through} were deleted by retention (record {seq} says so)"));
            }
            None => report.problems.push(format!(
                "the chain starts at record {}, and no {RETENTION} record accounts for the records before it: \
                 files were deleted",
                through + 1
            )),
        }
    }
    if w.legacy > 0 && w.keyed_seen {
        report.notes.push(format!("{} record(s) predate the audit key and carry no MAC", w.legacy));
    } else if w.legacy > 0 {
        report.problems.push(format!("none of the {} record(s) carries a MAC: not written with this key", w.legacy));
    }
    if key.is_none() {
        report.notes.push("no audit key given: MACs were not checked (pass --key-file)".into());
    }
    match checkpoint {
        _ if report.records == 0 => {}
        CheckpointState::Missing => report.problems.push(format!(
            "no checkpoint at {}: records cut from the end could not be detected",
            checkpoint_path(active).display()
        )),
        CheckpointState::Unreadable(why) => report.problems.push(format!(
            "the checkpoint at {} is unreadable ({why}): records cut from the end could not be detected",
            checkpoint_path(active).display()
        )),
        CheckpointState::Present(cp) => {
            if let Some(k) = key {
                if cp.mac.is_some() && !cp.mac_ok(k) {
                    report.problems.push("the checkpoint's MAC does not match the audit key: forged".into());
                } else if cp.mac.is_none() && w.keyed_seen {
                    report.problems.push("the checkpoint carries no MAC though the records do: forged".into());
                }
            }
            if cp.seq > report.last_seq {
                report.problems.push(format!(
                    "the log ends at record {} but record {} was written: records were cut from the end",
                    report.last_seq, cp.seq
                ));
            } else if w.cp_hash_seen.as_deref() != Some(cp.hash.as_str()) {
                report.problems.push(format!("record {} differs from the checkpoint's hash: edited", cp.seq));
            } else if cp.seq < report.last_seq {
                let after = report.last_seq - cp.seq;
                match key {
                    // Each of them had its MAC checked above.
                    Some(_) => report.notes.push(format!(
                        "{after} record(s) after the checkpoint (written as it was being updated, or before a crash)"
                    )),
                    None => report.problems.push(format!(
                        "{after} record(s) after the checkpoint are anchored by nothing without the audit key"
                    )),
                }
            }
        }
    }
    Ok(report)
}

/// The state of a chain walk.
#[derive(Default)]
struct Walk<'k> {
    key: Option<&'k AuditKey>,
    cp_seq: Option<u64>,
    expected_seq: Option<u64>,
    prev: Option<String>,
    /// When the first record is not record 1: (the seq before it, its prev).
    start: Option<(u64, String)>,
    anchored_by: Option<u64>,
    keyed_seen: bool,
    legacy: u64,
    cp_hash_seen: Option<String>,
}

impl Walk<'_> {
    fn line(&mut self, at: &str, line: &[u8], report: &mut VerifyReport) {
        let hash = hash_line(line);
        report.records += 1;
        let rec = match serde_json::from_slice::<AuditRecord>(line) {
            Ok(r) => r,
            Err(e) => {
                report.problems.push(format!("{at}: not a valid record ({e}): edited"));
                self.prev = Some(hash);
                return;
            }
        };
        match (self.expected_seq, &self.prev) {
            (None, _) => {
                if rec.seq != 1 || rec.prev != GENESIS {
                    self.start = Some((rec.seq.saturating_sub(1), rec.prev.clone()));
                }
            }
            (Some(expected), prev) => {
                if rec.seq != expected {
                    report.problems.push(format!(
                        "{at}: record {} where {expected} was expected: records deleted or reordered",
                        rec.seq
                    ));
                }
                if prev.as_deref() != Some(rec.prev.as_str()) {
                    report.problems.push(format!(
                        "{at}: record {} does not chain to the line before it: that line was edited, deleted or moved",
                        rec.seq
                    ));
                }
            }
        }
        if serde_json::to_vec(&rec).ok().as_deref() != Some(line) {
            report.problems.push(format!("{at}: record {} is not in the form the sidecar writes: edited", rec.seq));
        }
        if let Some(k) = self.key {
            match rec.mac {
                Some(_) => {
                    self.keyed_seen = true;
                    if !mac_ok(&rec, k) {
                        report.problems.push(format!(
                            "{at}: record {}'s MAC does not match the audit key: forged or edited",
                            rec.seq
                        ));
                    }
                }
                None if self.keyed_seen => report.problems.push(format!(
                    "{at}: record {} carries no MAC after records that do: written without the key",
                    rec.seq
                )),
                None => self.legacy += 1,
            }
        }
        match rec.verb.as_str() {
            CHECKPOINT_MISSING | CHECKPOINT_UNREADABLE => report.problems.push(format!(
                "{at}: record {}: at start-up the checkpoint was {} ({}): records before it may have been cut \
                 from the end",
                rec.seq,
                if rec.verb == CHECKPOINT_MISSING { "missing" } else { "unreadable" },
                rec.message.as_deref().unwrap_or("-")
            )),
            RETENTION => {
                let through = rec.params.get("pruned_through_seq").and_then(|s| s.parse::<u64>().ok());
                let hash = rec.params.get("pruned_through_hash");
                if let Some((s, h)) = &self.start {
                    if through == Some(*s) && hash == Some(h) {
                        self.anchored_by = Some(rec.seq);
                    }
                }
            }
            _ => {}
        }
        if self.cp_seq == Some(rec.seq) {
            self.cp_hash_seen = Some(hash.clone());
        }
        self.expected_seq = Some(rec.seq + 1);
        report.last_seq = rec.seq;
        self.prev = Some(hash);
    }
}

/// Filters for reading records back.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub since: Option<String>,
    pub until: Option<String>,
    pub actor: Option<String>,
    pub verb: Option<String>,
    pub target: Option<String>,
    pub outcome: Option<shared::Outcome>,
    /// Only records with a smaller seq (pagination cursor).
    pub before_seq: Option<u64>,
}

impl Filter {
    fn matches(&self, r: &AuditRecord) -> bool {
        // RFC 3339 UTC strings of one fixed format compare in time order.
        self.before_seq.is_none_or(|c| r.seq < c)
            && self.since.as_deref().is_none_or(|s| r.time.as_str() >= s)
            && self.until.as_deref().is_none_or(|u| r.time.as_str() < u)
            && self.actor.as_deref().is_none_or(|a| r.actor.as_deref() == Some(a))
            && self.verb.as_deref().is_none_or(|v| r.verb == v || r.verb.starts_with(&format!("{v}.")))
            && self.target.as_deref().is_none_or(|t| {
                r.target.as_deref().is_some_and(|x| x == t || x.starts_with(t)) || r.target_name.as_deref() == Some(t)
            })
            && self.outcome.is_none_or(|o| r.outcome == o)
    }
}

/// Newest-first records matching `filter`, at most `limit`, plus whether more
/// remain. Each file is streamed forward keeping only its newest matches.
pub fn query(active: &Path, filter: &Filter, limit: usize) -> io::Result<(Vec<AuditRecord>, bool)> {
    let mut out = Vec::with_capacity(limit.min(1024));
    let mut buf = Vec::new();
    for path in chain_files(active)?.iter().rev() {
        let need = limit + 1 - out.len();
        let file = match File::open(path) {
            Ok(f) => f,
            // Deleted by retention while we walked.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut r = BufReader::new(file);
        let mut newest: VecDeque<AuditRecord> = VecDeque::with_capacity(need.min(1024));
        while let Some(l) = read_line(&mut r, &mut buf)? {
            if !l.whole() {
                continue;
            }
            let Ok(rec) = serde_json::from_slice::<AuditRecord>(&buf) else { continue };
            if filter.matches(&rec) {
                if newest.len() == need {
                    newest.pop_front();
                }
                newest.push_back(rec);
            }
        }
        out.extend(newest.into_iter().rev());
        if out.len() > limit {
            out.truncate(limit);
            return Ok((out, true));
        }
    }
    Ok((out, false))
}
