//! The tamper-evident audit log: every mutating call, every denial and every
//! failed authentication. Records are appended by one writer thread that
//! group-commits: it writes whatever is queued, fsyncs once, updates the
//! checkpoint, and only then acknowledges — so a caller that got an answer
//! has its record on disk.

pub mod chain;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use shared::{AuditRecord, Outcome};
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;
use crate::metrics::Metrics;
use chain::{ChainError, Checkpoint, Head};

/// Who is calling, as established by the auth middleware.
#[derive(Debug, Clone)]
pub struct Caller {
    pub request_id: String,
    /// `key:<fingerprint>` for an authenticated client, `anonymous` otherwise.
    pub client: String,
    pub actor: Option<String>,
}

/// A record being prepared by a handler; `AuditLog::commit` seals it.
#[derive(Debug, Clone)]
pub struct Draft {
    started: Instant,
    request_id: String,
    client: String,
    actor: Option<String>,
    verb: String,
    target: Option<String>,
    target_name: Option<String>,
    params: BTreeMap<String, String>,
}

impl Draft {
    pub fn new(caller: &Caller, verb: impl Into<String>) -> Self {
        Self {
            started: Instant::now(),
            request_id: caller.request_id.clone(),
            client: caller.client.clone(),
            actor: caller.actor.clone(),
            verb: verb.into(),
            target: None,
            target_name: None,
            params: BTreeMap::new(),
        }
    }

    pub fn target(&mut self, target: impl Into<String>, name: Option<&str>) -> &mut Self {
        self.target = Some(target.into());
        self.target_name = name.map(str::to_owned);
        self
    }

    /// Narrows the verb, e.g. `prune` → `prune.images`.
    pub fn verb_suffix(&mut self, suffix: &str) -> &mut Self {
        self.verb = format!("{}.{suffix}", self.verb);
        self
    }

    pub fn param(&mut self, key: &str, value: impl ToString) -> &mut Self {
        self.params.insert(key.to_owned(), value.to_string());
        self
    }
}

struct Pending {
    draft: Draft,
    outcome: Outcome,
    message: Option<String>,
    ack: oneshot::Sender<Result<u64, String>>,
}

#[derive(Debug, thiserror::Error)]
#[error("audit log write failed: {0}")]
pub struct AuditWriteError(String);

impl From<AuditWriteError> for ApiError {
    fn from(e: AuditWriteError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Pending>,
    path: Arc<PathBuf>,
    metrics: Arc<Metrics>,
}

impl AuditLog {
    /// Opens (and if needed repairs) the log and starts the writer thread.
    pub fn open(path: &Path, rotate_bytes: u64, metrics: Arc<Metrics>) -> Result<Self, ChainError> {
        let (file, head, repair) = chain::open_for_append(path)?;
        let cp_path = chain::checkpoint_path(path);
        let checkpoint = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&cp_path)
            .map_err(chain::io_err(&cp_path))?;
        let mut checkpoint = checkpoint;
        if head.next_seq > 1 {
            let cp = Checkpoint { seq: head.next_seq - 1, hash: head.prev_hash.clone() };
            chain::write_checkpoint(&mut checkpoint, &cp).map_err(chain::io_err(&cp_path))?;
        }
        let (tx, rx) = mpsc::channel(4096);
        let writer = Writer { path: path.to_path_buf(), file, checkpoint, head, rotate_bytes: rotate_bytes.max(4096) };
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(chain::io_err(path))?;
        if repair.torn_bytes > 0 {
            tracing::warn!(
                bytes = repair.torn_bytes,
                "audit log ended in a torn record (crash mid-write); cut it and continuing the chain"
            );
            let caller = Caller { request_id: "startup".into(), client: "sidecar".into(), actor: None };
            let mut draft = Draft::new(&caller, "audit.repair");
            draft.param("torn_bytes", repair.torn_bytes);
            // Queued on the empty channel before the log is handed out, so it is the writer's first record.
            let (ack, _) = oneshot::channel();
            let message = Some("cut a torn last line left by a crash".into());
            let _ = tx.try_send(Pending { draft, outcome: Outcome::Ok, message, ack });
        }
        Ok(Self { tx, path: Arc::new(path.to_path_buf()), metrics })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the record, fsyncs it and returns its seq.
    pub async fn commit(
        &self,
        draft: Draft,
        outcome: Outcome,
        message: Option<String>,
    ) -> Result<u64, AuditWriteError> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Pending { draft, outcome, message, ack })
            .await
            .map_err(|_| AuditWriteError("writer stopped".into()))?;
        let seq = rx.await.map_err(|_| AuditWriteError("writer stopped".into()))?.map_err(AuditWriteError)?;
        self.metrics.audit_records.get_or_create(&vec![("outcome", outcome.as_str().to_owned())]).inc();
        Ok(seq)
    }

    /// Records a handler's result: ok, denied (a refusal) or error (a failure).
    pub async fn commit_result<T>(&self, draft: Draft, result: &Result<T, ApiError>) -> Result<u64, AuditWriteError> {
        match result {
            Ok(_) => self.commit(draft, Outcome::Ok, None).await,
            Err(e) if e.is_denial() => self.commit(draft, Outcome::Denied, Some(e.to_string())).await,
            Err(e) => self.commit(draft, Outcome::Error, Some(e.to_string())).await,
        }
    }
}

struct Writer {
    path: PathBuf,
    file: File,
    checkpoint: File,
    head: Head,
    rotate_bytes: u64,
}

const BATCH_MAX: usize = 512;

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Pending>) {
        let mut batch = Vec::with_capacity(BATCH_MAX);
        while let Some(first) = rx.blocking_recv() {
            batch.push(first);
            while batch.len() < BATCH_MAX {
                match rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
            let result = self.write_batch(&batch);
            for (i, p) in batch.drain(..).enumerate() {
                let _ = p.ack.send(result.as_ref().map(|first| first + i as u64).map_err(Clone::clone));
            }
        }
    }

    /// Appends the batch, fsyncs, advances the checkpoint. On failure the
    /// file is cut back so the chain stays whole, and nothing is acknowledged.
    fn write_batch(&mut self, batch: &[Pending]) -> Result<u64, String> {
        let first_seq = self.head.next_seq;
        let mut head = self.head.clone();
        let mut buf = Vec::with_capacity(batch.len() * 400);
        for p in batch {
            let d = &p.draft;
            let rec = AuditRecord {
                seq: head.next_seq,
                time: now_rfc3339(),
                request_id: d.request_id.clone(),
                client: d.client.clone(),
                actor: d.actor.clone(),
                verb: d.verb.clone(),
                target: d.target.clone(),
                target_name: d.target_name.clone(),
                params: d.params.clone(),
                outcome: p.outcome,
                message: p.message.clone(),
                duration_ms: d.started.elapsed().as_millis().try_into().unwrap_or(u64::MAX),
                prev: head.prev_hash.clone(),
            };
            let line = serde_json::to_vec(&rec).map_err(|e| e.to_string())?;
            head.prev_hash = chain::hash_line(&line);
            head.next_seq += 1;
            buf.extend_from_slice(&line);
            buf.push(b'\n');
        }
        let before = self.file.metadata().map_err(|e| e.to_string())?.len();
        let written = self.file.write_all(&buf).and_then(|_| self.file.sync_data());
        if let Err(e) = written {
            tracing::error!(error = %e, "audit write failed; cutting back to the last whole record");
            let _ = self.file.set_len(before).and_then(|_| self.file.sync_data());
            return Err(e.to_string());
        }
        self.head = head;
        let cp = Checkpoint { seq: self.head.next_seq - 1, hash: self.head.prev_hash.clone() };
        if let Err(e) = chain::write_checkpoint(&mut self.checkpoint, &cp) {
            // The records are durable; a stale checkpoint only weakens tail-cut detection.
            tracing::error!(error = %e, "audit checkpoint write failed");
        }
        if before + buf.len() as u64 >= self.rotate_bytes {
            if let Err(e) = self.rotate() {
                tracing::error!(error = %e, "audit log rotation failed; continuing in the same file");
            }
        }
        Ok(first_seq)
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let next = chain::rotated_files(&self.path)?.last().map_or(1, |(n, _)| n + 1);
        let target = chain::rotated_path(&self.path, next);
        std::fs::rename(&self.path, &target)?;
        let file = OpenOptions::new().read(true).create(true).append(true).open(&self.path)?;
        if let Some(dir) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        self.file = file;
        tracing::info!(rotated_to = %target.display(), "audit log rotated");
        Ok(())
    }
}

const RFC3339_MILLIS: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

pub fn now_rfc3339() -> String {
    format_rfc3339(time::OffsetDateTime::now_utc())
}

pub fn format_rfc3339(t: time::OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC).format(RFC3339_MILLIS).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller {
        Caller { request_id: "r1".into(), client: "key:test".into(), actor: Some("alice".into()) }
    }

    async fn write(log: &AuditLog, n: usize) {
        for i in 0..n {
            let mut d = Draft::new(&caller(), "restart");
            d.target(format!("id{i}"), Some("web")).param("timeout", 10);
            log.commit(d, Outcome::Ok, None).await.unwrap();
        }
    }

    #[tokio::test]
    async fn chain_verifies_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&p, 1 << 20, Arc::default()).unwrap();
        write(&log, 5).await;
        drop(log);
        let log = AuditLog::open(&p, 1 << 20, Arc::default()).unwrap();
        write(&log, 2).await;
        let r = chain::verify(&p).unwrap();
        assert!(r.ok(), "{:?}", r.problems);
        assert_eq!((r.records, r.last_seq), (7, 7));
    }

    #[tokio::test]
    async fn tampering_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&p, 1 << 20, Arc::default()).unwrap();
        write(&log, 4).await;
        let original = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = original.lines().collect();

        // Edited.
        std::fs::write(&p, original.replacen("alice", "mallory", 1)).unwrap();
        let r = chain::verify(&p).unwrap();
        assert!(r.problems.iter().any(|m| m.contains("edited")), "{:?}", r.problems);
        // A line deleted in the middle.
        std::fs::write(&p, format!("{}\n{}\n{}\n", lines[0], lines[2], lines[3])).unwrap();
        let r = chain::verify(&p).unwrap();
        assert!(r.problems.iter().any(|m| m.contains("deleted or reordered")), "{:?}", r.problems);
        // Reordered.
        std::fs::write(&p, format!("{}\n{}\n{}\n{}\n", lines[0], lines[2], lines[1], lines[3])).unwrap();
        assert!(!chain::verify(&p).unwrap().ok());
        // Last record cut off (whole line): only the checkpoint can tell.
        std::fs::write(&p, format!("{}\n{}\n{}\n", lines[0], lines[1], lines[2])).unwrap();
        let r = chain::verify(&p).unwrap();
        assert!(r.problems.iter().any(|m| m.contains("cut from the end")), "{:?}", r.problems);
        // Truncated mid-line.
        std::fs::write(&p, &original[..original.len() - 10]).unwrap();
        let r = chain::verify(&p).unwrap();
        assert!(r.problems.iter().any(|m| m.contains("incomplete")), "{:?}", r.problems);
        // Intact again.
        std::fs::write(&p, &original).unwrap();
        assert!(chain::verify(&p).unwrap().ok());
    }

    #[tokio::test]
    async fn torn_line_is_repaired_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&p, 1 << 20, Arc::default()).unwrap();
        write(&log, 3).await;
        drop(log);
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(br#"{"seq":4,"time":"2026-"#).unwrap();
        drop(f);
        let log = AuditLog::open(&p, 1 << 20, Arc::default()).unwrap();
        write(&log, 1).await;
        let r = chain::verify(&p).unwrap();
        assert!(r.ok(), "{:?}", r.problems);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("\"verb\":\"audit.repair\""), "{text}");
        assert_eq!(r.last_seq, 5);
    }

    #[tokio::test]
    async fn rotation_keeps_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&p, 4096, Arc::default()).unwrap();
        write(&log, 40).await;
        drop(log);
        let rotated = chain::rotated_files(&p).unwrap();
        assert!(rotated.len() >= 2, "{rotated:?}");
        let r = chain::verify(&p).unwrap();
        assert!(r.ok(), "{:?}", r.problems);
        assert_eq!(r.records, 40);
        // Reopen after rotation (active file may be empty) and continue.
        let log = AuditLog::open(&p, 4096, Arc::default()).unwrap();
        write(&log, 1).await;
        assert!(chain::verify(&p).unwrap().ok());
        // Deleting a rotated file breaks the chain.
        std::fs::remove_file(&rotated[0].1).unwrap();
        assert!(!chain::verify(&p).unwrap().ok());
        // Query returns newest first, paginated by seq.
        let (page, more) = chain::query(&p, &chain::Filter::default(), 3).unwrap();
        assert!(more);
        assert_eq!(page[0].seq, 41);
        assert!(page[0].seq > page[1].seq);
    }

    #[tokio::test]
    async fn reopens_with_an_empty_checkpoint_and_catches_an_edited_last_record() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("audit.jsonl");
        drop(AuditLog::open(&p, 1 << 20, Arc::default()).unwrap());
        // Opened and closed with no records: the empty checkpoint is not an error.
        drop(AuditLog::open(&p, 1 << 20, Arc::default()).unwrap());
        let log = AuditLog::open(&p, 1 << 20, Arc::default()).unwrap();
        write(&log, 2).await;
        drop(log);
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, text.replace("\"id1\"", "\"idX\"")).unwrap();
        let err = AuditLog::open(&p, 1 << 20, Arc::default()).err().expect("must refuse");
        assert!(err.to_string().contains("edited"), "{err}");
    }

    #[tokio::test]
    async fn refuses_to_start_behind_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&p, 1 << 20, Arc::default()).unwrap();
        write(&log, 3).await;
        drop(log);
        let text = std::fs::read_to_string(&p).unwrap();
        let keep: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
        std::fs::write(&p, keep).unwrap();
        let err = AuditLog::open(&p, 1 << 20, Arc::default()).err().expect("must refuse");
        assert!(err.to_string().contains("records were removed"), "{err}");
    }
}
