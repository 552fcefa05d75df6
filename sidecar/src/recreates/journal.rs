//! The recreate journal: one small JSON file per recreate in flight, in the
//! `recreate/` directory beside the audit log (its read-write volume),
//! rewritten (whole, fsync'd, renamed into place) before each step. A sidecar
//! killed mid-recreate reads it at its next start and finishes (the new
//! container had passed its gate) or rolls back (anything earlier), so that
//! exactly one container runs under the original name.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How far a recreate got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// About to create the new container (it may exist, under the temporary name).
    Creating,
    /// The new container exists; the old one may be stopping.
    Created,
    /// The old one is stopped; the names may be being swapped.
    Stopped,
    /// The new one holds the name; it may be starting or under its gate.
    Swapped,
    /// The new one passed its gate: only the old one's removal is left.
    Passed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// The original name.
    pub name: String,
    pub old_id: String,
    pub old_was_running: bool,
    pub new_id: Option<String>,
    pub phase: Phase,
    /// Who asked (for the recovery's audit record).
    pub actor: Option<String>,
    pub client: String,
}

/// Where the journals live.
pub fn dir(audit_log: &Path) -> PathBuf {
    audit_log.with_file_name("recreate")
}

fn file(dir: &Path, old_id: &str) -> PathBuf {
    dir.join(format!("{old_id}.json"))
}

/// Whether a journal for `old_id` is on disk.
pub fn exists(dir: &Path, old_id: &str) -> bool {
    file(dir, old_id).exists()
}

/// Writes `j` whole: a crash leaves the previous version or this one.
pub fn write(dir: &Path, j: &Journal) -> std::io::Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)?;
        if let Some(parent) = dir.parent() {
            std::fs::File::open(parent)?.sync_all()?;
        }
    }
    let path = file(dir, &j.old_id);
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec(j).map_err(std::io::Error::other)?;
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(dir)?.sync_all()
}

pub fn remove(dir: &Path, old_id: &str) -> std::io::Result<()> {
    match std::fs::remove_file(file(dir, old_id)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => std::fs::File::open(dir).and_then(|d| d.sync_all()).or(Ok(())),
    }
}

/// Every journal left by a sidecar that stopped mid-recreate (at most 256;
/// unreadable ones are reported and left for an operator).
pub fn left_over(dir: &Path) -> Vec<Journal> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out = Vec::new();
    for e in entries.flatten().take(256) {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let read = std::fs::read(&p).ok().filter(|b| b.len() <= 64 * 1024);
        match read.and_then(|b| serde_json::from_slice::<Journal>(&b).ok()) {
            Some(j) if shared::ContainerRef::parse(&j.old_id).is_ok() => out.push(j),
            _ => tracing::error!(file = %p.display(), "an unreadable recreate journal: left in place"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_whole_read_back_and_removed() {
        let d = tempfile::tempdir().unwrap();
        let dir = dir(&d.path().join("audit.jsonl"));
        assert!(left_over(&dir).is_empty(), "no directory, no journals");
        let mut j = Journal {
            name: "web".into(),
            old_id: "abc123".into(),
            old_was_running: true,
            new_id: None,
            phase: Phase::Creating,
            actor: Some("ann".into()),
            client: "default".into(),
        };
        write(&dir, &j).unwrap();
        j.phase = Phase::Swapped;
        j.new_id = Some("def456".into());
        write(&dir, &j).unwrap();
        std::fs::write(dir.join("junk.json"), b"{").unwrap();
        assert_eq!(left_over(&dir), vec![j.clone()]);
        remove(&dir, &j.old_id).unwrap();
        remove(&dir, &j.old_id).unwrap();
        assert!(left_over(&dir).is_empty());
    }
}
