//! The audit log on disk: file layout, hash chain, checkpoint, repair and
//! verification. Synchronous code; the writer thread and `audit verify` use it.
//!
//! Layout, for `DOCKWARD_AUDIT_LOG=/data/audit.jsonl`:
//! - `/data/audit.jsonl`            the active file, one JSON record a line
//! - `/data/audit.jsonl.000001` …   rotated files, oldest first, never renamed again
//! - `/data/audit.jsonl.checkpoint` `{"seq":N,"hash":"…"}` of the last record written
//!
//! Each record's `prev` is the SHA-256 of the previous line's bytes (without
//! the newline), continuing across rotated files; the first record's `prev` is
//! [`GENESIS`]. The checkpoint, rewritten after each fsync'd batch, lets
//! `verify` notice records cut from the end, which a chain alone cannot.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::AuditRecord;

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("audit log {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error(
        "audit log {path} ends at record {last} but its checkpoint says record {checkpoint} was written: \
         records were removed. Keep the files for investigation and move them away to start a new chain."
    )]
    BehindCheckpoint { path: String, last: u64, checkpoint: u64 },
    #[error("audit log {path}: last record is unreadable ({reason}); run `dockward-sidecar audit verify`")]
    Corrupt { path: String, reason: String },
}

pub fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ChainError + '_ {
    move |source| ChainError::Io { path: path.display().to_string(), source }
}

pub fn hash_line(line: &[u8]) -> String {
    hex::encode(Sha256::digest(line))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: String,
}

pub fn checkpoint_path(active: &Path) -> PathBuf {
    sibling(active, "checkpoint")
}

fn sibling(active: &Path, suffix: &str) -> PathBuf {
    let mut s = active.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

/// Rotated files beside `active`, oldest first, with their index.
pub fn rotated_files(active: &Path) -> io::Result<Vec<(u32, PathBuf)>> {
    let dir = active.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let Some(base) = active.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{base}.");
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(idx) = name.strip_prefix(&prefix) {
            if idx.len() == 6 && idx.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(n) = idx.parse() {
                    out.push((n, dir.join(name)));
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

pub fn rotated_path(active: &Path, index: u32) -> PathBuf {
    sibling(active, &format!("{index:06}"))
}

/// Every file of the chain, oldest first (rotated ones, then the active one if present).
pub fn chain_files(active: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = rotated_files(active)?.into_iter().map(|(_, p)| p).collect();
    if active.exists() {
        files.push(active.to_path_buf());
    }
    Ok(files)
}

pub fn read_checkpoint(active: &Path) -> io::Result<Option<Checkpoint>> {
    match fs::read(checkpoint_path(active)) {
        Ok(bytes) if bytes.iter().all(|b| b.is_ascii_whitespace() || *b == 0) => Ok(None),
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            serde_json::from_str(text.trim_end_matches(['\n', ' ', '\0']))
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("checkpoint: {e}")))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Rewrites the checkpoint in place and flushes it.
pub fn write_checkpoint(file: &mut File, cp: &Checkpoint) -> io::Result<()> {
    let mut line = serde_json::to_vec(cp).map_err(io::Error::other)?;
    line.push(b'\n');
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&line)?;
    file.set_len(line.len() as u64)?;
    file.sync_data()
}

/// Where the chain stands after opening: the next record's seq and prev.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub next_seq: u64,
    pub prev_hash: String,
}

/// What `open_for_append` had to mend.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Repair {
    pub torn_bytes: u64,
}

/// Opens the active file for appending, cutting a torn last line (a crash
/// mid-write leaves bytes with no newline), and finds the chain's head.
pub fn open_for_append(active: &Path) -> Result<(File, Head, Repair), ChainError> {
    if let Some(dir) = active.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let mut file = OpenOptions::new().read(true).create(true).append(true).open(active).map_err(io_err(active))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io_err(active))?;
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let repair = Repair { torn_bytes: (bytes.len() - keep) as u64 };
    if repair.torn_bytes > 0 {
        file.set_len(keep as u64).map_err(io_err(active))?;
        file.sync_all().map_err(io_err(active))?;
        bytes.truncate(keep);
    }
    // The last complete line: in the active file, or in the newest rotated one.
    let last_line = match last_line(&bytes) {
        Some(l) => Some(l.to_vec()),
        None => match rotated_files(active).map_err(io_err(active))?.last() {
            Some((_, p)) => {
                let b = fs::read(p).map_err(io_err(p))?;
                last_line(&b).map(<[u8]>::to_vec)
            }
            None => None,
        },
    };
    let head = match last_line {
        None => Head { next_seq: 1, prev_hash: GENESIS.to_owned() },
        Some(line) => {
            let rec: AuditRecord = serde_json::from_slice(&line)
                .map_err(|e| ChainError::Corrupt { path: active.display().to_string(), reason: e.to_string() })?;
            Head { next_seq: rec.seq + 1, prev_hash: hash_line(&line) }
        }
    };
    if let Some(cp) = read_checkpoint(active).map_err(io_err(active))? {
        if cp.seq >= head.next_seq {
            return Err(ChainError::BehindCheckpoint {
                path: active.display().to_string(),
                last: head.next_seq - 1,
                checkpoint: cp.seq,
            });
        }
        // The checkpoint names the last record: its hash must match, or that record was edited.
        if cp.seq + 1 == head.next_seq && cp.hash != head.prev_hash {
            return Err(ChainError::Corrupt {
                path: active.display().to_string(),
                reason: format!("record {} differs from the checkpoint's hash (edited)", cp.seq),
            });
        }
    }
    Ok((file, head, repair))
}

fn last_line(bytes: &[u8]) -> Option<&[u8]> {
    let body = bytes.strip_suffix(b"\n")?;
    let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    Some(&body[start..])
}

/// The result of `audit verify`.
#[derive(Debug, Default)]
pub struct VerifyReport {
    pub files: usize,
    pub records: u64,
    pub last_seq: u64,
    pub last_hash: Option<String>,
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Walks the whole chain and reports every break: edited lines (hash or JSON
/// mismatch), deleted or reordered lines (seq gaps), a torn last line, and
/// records cut from the end (behind the checkpoint).
pub fn verify(active: &Path) -> io::Result<VerifyReport> {
    let files = chain_files(active)?;
    if files.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("no audit log at {}", active.display())));
    }
    let mut report = VerifyReport { files: files.len(), ..Default::default() };
    let mut expected_seq = 1u64;
    let mut prev = GENESIS.to_owned();
    let checkpoint = read_checkpoint(active).unwrap_or_else(|e| {
        report.problems.push(format!("checkpoint unreadable: {e}"));
        None
    });
    let mut checkpoint_hash_seen: Option<String> = None;
    const MAX_PROBLEMS: usize = 50;
    for path in &files {
        let bytes = fs::read(path)?;
        let name = path.display();
        let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        let tail = lines.pop().unwrap_or_default();
        if !tail.is_empty() {
            report.problems.push(format!(
                "{name}: last line is incomplete ({} bytes with no newline): truncated or torn",
                tail.len()
            ));
        }
        for (i, line) in lines.iter().enumerate() {
            if report.problems.len() >= MAX_PROBLEMS {
                report.problems.push("too many problems; stopping".into());
                return Ok(report);
            }
            let at = format!("{name}:{}", i + 1);
            let hash = hash_line(line);
            match serde_json::from_slice::<AuditRecord>(line) {
                Err(e) => report.problems.push(format!("{at}: not a valid record ({e}): edited")),
                Ok(rec) => {
                    if rec.seq != expected_seq {
                        report.problems.push(format!(
                            "{at}: record {} where {} was expected: records deleted or reordered",
                            rec.seq, expected_seq
                        ));
                    }
                    if rec.prev != prev {
                        report.problems.push(format!(
                            "{at}: record {} does not chain to the line before it: that line was edited, deleted or moved",
                            rec.seq
                        ));
                    }
                    if checkpoint.as_ref().is_some_and(|c| c.seq == rec.seq) {
                        checkpoint_hash_seen = Some(hash.clone());
                    }
                    expected_seq = rec.seq + 1;
                    report.last_seq = rec.seq;
                }
            }
            prev = hash;
            report.records += 1;
        }
    }
    report.last_hash = (report.records > 0).then_some(prev);
    match checkpoint {
        None => report.problems.push(format!(
            "no checkpoint at {}: records cut from the end could not be detected",
            checkpoint_path(active).display()
        )),
        Some(cp) if cp.seq > report.last_seq => report.problems.push(format!(
            "the log ends at record {} but record {} was written: records were cut from the end",
            report.last_seq, cp.seq
        )),
        Some(cp) => {
            if checkpoint_hash_seen.as_deref() != Some(cp.hash.as_str()) {
                report.problems.push(format!("record {} differs from the checkpoint's hash: edited", cp.seq));
            }
        }
    }
    Ok(report)
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

/// Newest-first records matching `filter`, at most `limit`, plus whether more remain.
pub fn query(active: &Path, filter: &Filter, limit: usize) -> io::Result<(Vec<AuditRecord>, bool)> {
    let mut out = Vec::with_capacity(limit.min(1024));
    for path in chain_files(active)?.iter().rev() {
        let bytes = fs::read(path)?;
        for line in bytes.split(|&b| b == b'\n').rev().filter(|l| !l.is_empty()) {
            let Ok(rec) = serde_json::from_slice::<AuditRecord>(line) else { continue };
            if filter.matches(&rec) {
                if out.len() == limit {
                    return Ok((out, true));
                }
                out.push(rec);
            }
        }
    }
    Ok((out, false))
}
