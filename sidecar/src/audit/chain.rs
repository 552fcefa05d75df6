//! The audit log on disk: file layout, hash chain, MACs, checkpoint and
//! repair. Synchronous code; the writer thread and `audit verify` use it.
//!
//! Layout, for `DOCKWARD_AUDIT_LOG=/data/audit.jsonl`:
//! - `/data/audit.jsonl`            the active file, one JSON record a line
//! - `/data/audit.jsonl.000001` …   rotated files, oldest first, never renamed again
//!   (the oldest are deleted by retention, which records what it deleted)
//! - `/data/audit.jsonl.checkpoint` `{"seq":N,"hash":"…","mac":"…"}` of the last record written
//! - `/data/audit.jsonl.lock`       held (`flock`) by the one sidecar writing the log
//!
//! Each record's `prev` is the SHA-256 of the previous line's bytes (without
//! the newline), continuing across rotated files; the first record's `prev` is
//! [`GENESIS`]. Each record's `mac` is an HMAC under the audit key (kept
//! outside the audit volume) of the line without `mac`; the checkpoint carries
//! one too. The checkpoint, replaced (temp file + rename) after each fsync'd
//! batch, lets `verify` notice records cut from the end, which a chain alone
//! cannot.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::AuditRecord;

pub use super::key::{AuditKey, KeyError};
pub use super::read::{query, verify, Filter, VerifyReport};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Longest line read back; a longer one is not a record the sidecar wrote.
pub const MAX_LINE: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("audit log {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error(
        "audit log {path} ends at record {last} but its checkpoint says record {checkpoint} was written: \
         records were removed. Keep the files for investigation and move them away to start a new chain."
    )]
    BehindCheckpoint { path: String, last: u64, checkpoint: u64 },
    #[error("audit log {path}: {reason}; run `dockward-sidecar audit verify`")]
    Corrupt { path: String, reason: String },
    #[error(
        "audit log {path} is locked by another process (a second sidecar on the same audit volume?); \
         one writer per log"
    )]
    Locked { path: String },
    #[error(
        "the audit key {key} did not exist, so a new one was made, but the audit log {path} holds records \
         sealed with a key: restore the original key (or move the log away to start a new chain)"
    )]
    KeyMissing { path: String, key: String },
    #[error(transparent)]
    Key(#[from] KeyError),
}

pub fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ChainError + '_ {
    move |source| ChainError::Io { path: path.display().to_string(), source }
}

pub fn hash_line(line: &[u8]) -> String {
    hex::encode(Sha256::digest(line))
}

/// Fills in `rec.mac` (when keyed) and returns the line to write (no newline).
pub fn seal(rec: &mut AuditRecord, key: Option<&AuditKey>) -> Result<Vec<u8>, serde_json::Error> {
    rec.mac = None;
    let Some(key) = key else { return serde_json::to_vec(rec) };
    let unsealed = serde_json::to_vec(rec)?;
    rec.mac = Some(key.mac(&unsealed));
    serde_json::to_vec(rec)
}

/// Whether a record's MAC is valid under `key` (false when it has none).
pub fn mac_ok(rec: &AuditRecord, key: &AuditKey) -> bool {
    let Some(mac) = rec.mac.as_deref() else { return false };
    let mut unsealed = rec.clone();
    unsealed.mac = None;
    serde_json::to_vec(&unsealed).is_ok_and(|bytes| key.check(&bytes, mac))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

impl Checkpoint {
    fn mac_input(seq: u64, hash: &str) -> Vec<u8> {
        format!("dockward-audit-checkpoint {seq} {hash}").into_bytes()
    }

    pub fn new(seq: u64, hash: String, key: Option<&AuditKey>) -> Self {
        let mac = key.map(|k| k.mac(&Self::mac_input(seq, &hash)));
        Self { seq, hash, mac }
    }

    /// Whether the MAC is valid under `key` (false when it has none).
    pub fn mac_ok(&self, key: &AuditKey) -> bool {
        self.mac.as_deref().is_some_and(|m| key.check(&Self::mac_input(self.seq, &self.hash), m))
    }
}

/// What is found where the checkpoint should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointState {
    Missing,
    /// Present but not a checkpoint (torn, edited): the reason.
    Unreadable(String),
    Present(Checkpoint),
}

pub fn checkpoint_path(active: &Path) -> PathBuf {
    sibling(active, "checkpoint")
}

pub fn lock_path(active: &Path) -> PathBuf {
    sibling(active, "lock")
}

fn sibling(active: &Path, suffix: &str) -> PathBuf {
    let mut s = active.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

fn dir_of(active: &Path) -> &Path {
    active.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Rotated files beside `active`, oldest first, with their index.
pub fn rotated_files(active: &Path) -> io::Result<Vec<(u32, PathBuf)>> {
    let dir = dir_of(active);
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

pub fn read_checkpoint(active: &Path) -> io::Result<CheckpointState> {
    let bytes = match fs::read(checkpoint_path(active)) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(CheckpointState::Missing),
        Err(e) => return Err(e),
    };
    if bytes.len() > 4096 {
        return Ok(CheckpointState::Unreadable(format!("{} bytes, far longer than a checkpoint", bytes.len())));
    }
    if bytes.iter().all(|b| b.is_ascii_whitespace() || *b == 0) {
        return Ok(CheckpointState::Unreadable("empty".into()));
    }
    let text = String::from_utf8_lossy(&bytes);
    Ok(match serde_json::from_str(text.trim_end_matches(['\n', ' ', '\0'])) {
        Ok(cp) => CheckpointState::Present(cp),
        Err(e) => CheckpointState::Unreadable(format!("not a checkpoint ({e})")),
    })
}

/// Replaces the checkpoint: a temporary file, fsync'd, renamed over it, so a
/// crash leaves the old checkpoint or the new one, never a torn one.
pub fn write_checkpoint(active: &Path, cp: &Checkpoint) -> io::Result<()> {
    let path = checkpoint_path(active);
    let tmp = sibling(active, "checkpoint.tmp");
    let mut line = serde_json::to_vec(cp).map_err(io::Error::other)?;
    line.push(b'\n');
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
    f.write_all(&line)?;
    f.sync_data()?;
    fs::rename(&tmp, &path)
}

/// Takes the writer's lock beside `active`: one sidecar per log.
pub fn lock(active: &Path) -> Result<File, ChainError> {
    let path = lock_path(active);
    let f = OpenOptions::new().write(true).create(true).truncate(false).open(&path).map_err(io_err(&path))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(fs::TryLockError::WouldBlock) => Err(ChainError::Locked { path: active.display().to_string() }),
        Err(fs::TryLockError::Error(e)) => Err(io_err(&path)(e)),
    }
}

/// One line read by [`read_line`]: its full length, and whether a newline ended it.
#[derive(Debug, Clone, Copy)]
pub struct LineRead {
    pub len: usize,
    pub newline: bool,
}

impl LineRead {
    /// A whole line short enough to be a record.
    pub fn whole(&self) -> bool {
        self.newline && self.len <= MAX_LINE
    }
}

/// Reads one line into `buf` (without its newline, at most [`MAX_LINE`] bytes
/// kept): memory stays bounded whatever the file holds. `None` at the end.
pub fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Option<LineRead>> {
    buf.clear();
    let mut len = 0usize;
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok((len > 0).then_some(LineRead { len, newline: false }));
        }
        let (chunk, found) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (&avail[..i], true),
            None => (avail, false),
        };
        let room = MAX_LINE.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        len += chunk.len();
        let used = chunk.len() + usize::from(found);
        r.consume(used);
        if found {
            return Ok(Some(LineRead { len, newline: true }));
        }
    }
}

/// The first whole line of a file (retention reads the oldest kept record).
pub fn first_record(path: &Path) -> io::Result<Option<AuditRecord>> {
    let mut r = BufReader::new(File::open(path)?);
    let mut buf = Vec::new();
    match read_line(&mut r, &mut buf)? {
        Some(l) if l.whole() => Ok(serde_json::from_slice(&buf).ok()),
        _ => Ok(None),
    }
}

/// Where the chain stands after opening: the next record's seq and prev.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub next_seq: u64,
    pub prev_hash: String,
}

/// What opening found and mended.
#[derive(Debug)]
pub struct Opened {
    pub file: File,
    pub head: Head,
    /// Bytes of a torn last line (a crash mid-write) that were cut.
    pub torn_bytes: u64,
    /// Set when records exist but the checkpoint is missing or unreadable
    /// (`missing` or `unreadable`, and why): reported and audited, then replaced.
    pub checkpoint_problem: Option<(&'static str, String)>,
    /// Whether the last record carries a MAC.
    pub keyed: bool,
    /// Whether the checkpoint found carries a MAC.
    pub checkpoint_sealed: bool,
}

/// Scans `path` line by line: the offset after the last newline, the last
/// whole line, and a check of each line with a seq above `after` (when set).
fn scan(
    path: &Path,
    file: &File,
    mut check: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<(u64, Option<Vec<u8>>), ChainError> {
    let mut r = BufReader::new(file.try_clone().map_err(io_err(path))?);
    let mut buf = Vec::new();
    let (mut keep, mut last) = (0u64, None);
    while let Some(l) = read_line(&mut r, &mut buf).map_err(io_err(path))? {
        if !l.newline {
            break;
        }
        keep += l.len as u64 + 1;
        if !l.whole() {
            return Err(ChainError::Corrupt {
                path: path.display().to_string(),
                reason: format!("a line of {} bytes is not a record", l.len),
            });
        }
        check(&buf).map_err(|reason| ChainError::Corrupt { path: path.display().to_string(), reason })?;
        last = Some(buf.clone());
    }
    Ok((keep, last))
}

/// Opens the active file for appending, cutting a torn last line (a crash
/// mid-write leaves bytes with no newline), and finds the chain's head. The
/// checkpoint must name a record at or before the head with that record's
/// hash; records after it must carry valid MACs (a crash between a batch and
/// its checkpoint); a missing or unreadable checkpoint is reported.
pub fn open_for_append(active: &Path, key: Option<&AuditKey>) -> Result<Opened, ChainError> {
    let bad = |reason: String| ChainError::Corrupt { path: active.display().to_string(), reason };
    fs::create_dir_all(dir_of(active)).map_err(io_err(dir_of(active)))?;
    let file = OpenOptions::new().read(true).create(true).append(true).open(active).map_err(io_err(active))?;
    let state = read_checkpoint(active).map_err(io_err(active))?;
    let checkpoint_sealed = matches!(&state, CheckpointState::Present(cp) if cp.mac.is_some());
    let (checkpoint, mut checkpoint_problem) = match state {
        CheckpointState::Present(cp) => match key {
            Some(k) if cp.mac.is_some() && !cp.mac_ok(k) => {
                (None, Some(("unreadable", "its MAC does not match the audit key (forged or edited)".to_owned())))
            }
            _ => (Some(cp), None),
        },
        CheckpointState::Missing => (None, Some(("missing", "no checkpoint file".to_owned()))),
        CheckpointState::Unreadable(why) => (None, Some(("unreadable", why))),
    };
    // Records after the checkpoint must be sealed with the key; the one the checkpoint names must match it.
    let check = |line: &[u8]| -> Result<(), String> {
        let (Some(cp), Some(k)) = (checkpoint.as_ref(), key) else { return Ok(()) };
        let rec: AuditRecord = serde_json::from_slice(line).map_err(|e| format!("unreadable record ({e})"))?;
        if rec.seq == cp.seq && hash_line(line) != cp.hash {
            return Err(format!("record {} differs from the checkpoint's hash (edited)", cp.seq));
        }
        if rec.seq > cp.seq && cp.mac.is_some() && !mac_ok(&rec, k) {
            return Err(format!(
                "record {} was appended after the checkpoint without a valid MAC (not written by this sidecar)",
                rec.seq
            ));
        }
        Ok(())
    };
    let (keep, mut last) = scan(active, &file, check)?;
    let len = file.metadata().map_err(io_err(active))?.len();
    let torn_bytes = len.saturating_sub(keep);
    if torn_bytes > 0 {
        file.set_len(keep).map_err(io_err(active))?;
        file.sync_all().map_err(io_err(active))?;
    }
    // The last complete line: in the active file, or in the newest rotated one.
    if last.is_none() {
        if let Some((_, p)) = rotated_files(active).map_err(io_err(active))?.last() {
            let f = File::open(p).map_err(io_err(p))?;
            last = scan(p, &f, |_| Ok(()))?.1;
        }
    }
    let (head, keyed) = match last {
        None => (Head { next_seq: 1, prev_hash: GENESIS.to_owned() }, false),
        Some(line) => {
            let rec: AuditRecord =
                serde_json::from_slice(&line).map_err(|e| bad(format!("last record is unreadable ({e})")))?;
            if let (Some(k), Some(_)) = (key, rec.mac.as_ref()) {
                if !mac_ok(&rec, k) {
                    return Err(bad(format!(
                        "record {}'s MAC does not match the audit key (forged, or the key was replaced)",
                        rec.seq
                    )));
                }
            }
            (Head { next_seq: rec.seq + 1, prev_hash: hash_line(&line) }, rec.mac.is_some())
        }
    };
    if let Some(cp) = &checkpoint {
        if cp.seq >= head.next_seq {
            return Err(ChainError::BehindCheckpoint {
                path: active.display().to_string(),
                last: head.next_seq - 1,
                checkpoint: cp.seq,
            });
        }
        if cp.seq + 1 == head.next_seq && cp.hash != head.prev_hash {
            return Err(bad(format!("record {} differs from the checkpoint's hash (edited)", cp.seq)));
        }
        if keyed && key.is_some() && cp.mac.is_none() {
            checkpoint_problem = Some(("unreadable", "it carries no MAC though the records do".to_owned()));
        }
    }
    if head.next_seq == 1 {
        // Nothing written yet: no checkpoint is expected.
        checkpoint_problem = None;
    }
    Ok(Opened { file, head, torn_bytes, checkpoint_problem, keyed, checkpoint_sealed })
}
