//! The tamper-evident audit log: every mutating call, every denial and every
//! failed authentication. Records are appended by one writer thread that
//! group-commits: it writes whatever is queued, fsyncs once, updates the
//! checkpoint, and only then acknowledges — so a caller that got an answer
//! has its record on disk. One process writes a log (a `flock`); records are
//! sealed with an HMAC under a key kept outside the audit volume; repeated
//! refusals are summarised ([`denials`]); retention deletes the oldest rotated
//! files beyond a count, after recording what it deleted.

pub mod chain;
pub mod denials;
pub mod key;
pub mod read;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shared::{AuditRecord, Outcome};
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;
use crate::metrics::Metrics;
use chain::{AuditKey, ChainError, Checkpoint, Head};
use denials::{DenialKey, Denials};

/// The verb of a summary of refusals counted in a window.
pub const DENIED_SUMMARY: &str = shared::audit::DENIED_SUMMARY_VERB;

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

/// How the log is kept.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Rotate the active file past this many bytes.
    pub rotate_bytes: u64,
    /// Rotated files to keep (the oldest beyond are deleted); 0 keeps all.
    pub keep_files: u32,
    /// The HMAC key; `None` writes unsealed records (tests only).
    pub key: Option<AuditKey>,
    /// The key was created by this start: a log sealed with a key must not continue under it.
    pub key_created: bool,
    /// Refusals of one kind beyond the first in this window are summarised.
    pub denial_window: Duration,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            rotate_bytes: 16 << 20,
            keep_files: 0,
            key: None,
            key_created: false,
            denial_window: Duration::from_secs(60),
        }
    }
}

#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Pending>,
    path: Arc<PathBuf>,
    metrics: Arc<Metrics>,
    key: Option<Arc<AuditKey>>,
    denials: Arc<Mutex<Denials>>,
    /// The writer's `flock`, released when the last handle is dropped.
    _lock: Arc<File>,
}

fn system_caller(request_id: &str) -> Caller {
    Caller { request_id: request_id.into(), client: "sidecar".into(), actor: None }
}

impl AuditLog {
    /// Locks, opens (and if needed repairs) the log and starts the writer thread.
    pub fn open(path: &Path, opts: AuditOptions, metrics: Arc<Metrics>) -> Result<Self, ChainError> {
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(chain::io_err(dir))?;
        }
        let lock = chain::lock(path)?;
        let key = opts.key.clone();
        // A key made just now cannot check anything yet: the log must not be sealed already.
        let opened = chain::open_for_append(path, key.as_ref().filter(|_| !opts.key_created))?;
        let head = opened.head;
        let records = head.next_seq > 1;
        let mut startup = Vec::new();
        let sealed = opened.keyed || opened.checkpoint_sealed;
        if let (Some(k), true) = (&key, records) {
            if opts.key_created && sealed {
                return Err(ChainError::KeyMissing {
                    path: path.display().to_string(),
                    key: k.path().display().to_string(),
                });
            }
            if opts.key_created {
                // A log from before keys (nothing sealed, not even the checkpoint): sealed from here on.
                let mut d = Draft::new(&system_caller("startup"), read::KEYED);
                d.param("key_file", k.path().display());
                startup.push((d, Outcome::Ok, Some("records from here on are sealed with the audit key".into())));
            } else if !opened.keyed {
                // With a key that was already there, an unsealed last record was written without it.
                return Err(ChainError::Corrupt {
                    path: path.display().to_string(),
                    reason: format!(
                        "record {} carries no MAC though the audit key {} already existed (written without \
                         the key; a log from before audit keys continues only under a key created for it)",
                        head.next_seq - 1,
                        k.path().display()
                    ),
                });
            }
        }
        if let Some((what, why)) = &opened.checkpoint_problem {
            let cp_path = chain::checkpoint_path(path);
            tracing::error!(
                checkpoint = %cp_path.display(),
                last_seq = head.next_seq - 1,
                reason = %why,
                "the audit checkpoint is {what}: records cut from the end of the log cannot be ruled out. \
                 Recorded in the log; `audit verify` will report it"
            );
            if *what == "unreadable" {
                let mut aside = cp_path.clone().into_os_string();
                aside.push(".bad");
                let _ = std::fs::rename(&cp_path, &aside);
            }
            let verb = if *what == "missing" { read::CHECKPOINT_MISSING } else { read::CHECKPOINT_UNREADABLE };
            let mut d = Draft::new(&system_caller("startup"), verb);
            d.param("last_seq", head.next_seq - 1);
            startup.push((d, Outcome::Error, Some(why.clone())));
        }
        if head.next_seq > 1 {
            let cp = Checkpoint::new(head.next_seq - 1, head.prev_hash.clone(), key.as_ref());
            chain::write_checkpoint(path, &cp).map_err(chain::io_err(path))?;
        }
        if opened.torn_bytes > 0 {
            tracing::warn!(
                bytes = opened.torn_bytes,
                "audit log ended in a torn record (crash mid-write); cut it and continuing the chain"
            );
            let mut d = Draft::new(&system_caller("startup"), "audit.repair");
            d.param("torn_bytes", opened.torn_bytes);
            startup.push((d, Outcome::Ok, Some("cut a torn last line left by a crash".into())));
        }
        let (tx, rx) = mpsc::channel(4096);
        let key = key.map(Arc::new);
        let writer = Writer {
            path: path.to_path_buf(),
            file: opened.file,
            head,
            rotate_bytes: opts.rotate_bytes.max(4096),
            keep_files: opts.keep_files,
            key: key.clone(),
        };
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(chain::io_err(path))?;
        // Queued on the empty channel before the log is handed out, so they are the writer's first records.
        for (draft, outcome, message) in startup {
            let (ack, _) = oneshot::channel();
            let _ = tx.try_send(Pending { draft, outcome, message, ack });
        }
        Ok(Self {
            tx,
            path: Arc::new(path.to_path_buf()),
            metrics,
            key,
            denials: Arc::new(Mutex::new(Denials::new(opts.denial_window, Instant::now()))),
            _lock: Arc::new(lock),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key records are sealed with, for verification.
    pub fn key(&self) -> Option<&AuditKey> {
        self.key.as_deref()
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

    /// Records a refusal: the first of its (verb, reason, client, actor) in
    /// the window gets its own record (fsync'd before this returns); the rest
    /// are counted for the window's `denied.summary` record.
    pub async fn deny(&self, draft: Draft, reason: &str, message: Option<String>) -> Result<(), AuditWriteError> {
        let key = DenialKey {
            verb: draft.verb.clone(),
            reason: reason.to_owned(),
            client: draft.client.clone(),
            actor: draft.actor.clone(),
        };
        let record = self.denials.lock().unwrap_or_else(|e| e.into_inner()).admit(key, Instant::now());
        if record {
            self.commit(draft, Outcome::Denied, message).await?;
        }
        Ok(())
    }

    /// Writes the summaries of a closed window (or, with `force`, of the open one).
    pub async fn flush_denials(&self, force: bool) -> Result<(), AuditWriteError> {
        let (summaries, window) = {
            let mut d = self.denials.lock().unwrap_or_else(|e| e.into_inner());
            (d.take(Instant::now(), force), d.window())
        };
        for s in summaries {
            let secs = s.window.as_secs().max(1);
            let (draft, message) = match s.key {
                Some(k) => {
                    let caller = Caller { request_id: "summary".into(), client: k.client, actor: k.actor };
                    let mut d = Draft::new(&caller, DENIED_SUMMARY);
                    d.target(k.verb, None).param("reason", k.reason);
                    (d, format!("{} more refusal(s) like the one recorded in the last {secs} s", s.count))
                }
                None => (
                    Draft::new(&system_caller("summary"), DENIED_SUMMARY),
                    format!(
                        "{} refusal(s) of kinds beyond the first {} counted in the last {secs} s",
                        s.count,
                        denials::MAX_KEYS
                    ),
                ),
            };
            let mut draft = draft;
            draft.param("count", s.count).param("window_secs", window.as_secs());
            self.commit(draft, Outcome::Denied, Some(message)).await?;
        }
        Ok(())
    }

    /// Writes the refusal summaries each window, in the background.
    pub fn spawn_denial_flusher(&self) -> tokio::task::JoinHandle<()> {
        let log = self.clone();
        let every = self.denials.lock().unwrap_or_else(|e| e.into_inner()).window();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = log.flush_denials(false).await {
                    tracing::error!(error = %e, "writing the refusal summary failed");
                }
            }
        })
    }

    /// Records a handler's result: ok, denied (a refusal) or error (a
    /// failure). Every one gets its own record: a handler's refusals are of
    /// mutations, whose rate limit was spent before any work, so they are
    /// bounded without summarising (and each names its target).
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
    head: Head,
    rotate_bytes: u64,
    keep_files: u32,
    key: Option<Arc<AuditKey>>,
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

    /// Appends the batch, fsyncs, advances the checkpoint, rotates and
    /// applies retention when due. Returns the batch's first seq.
    fn write_batch(&mut self, batch: &[Pending]) -> Result<u64, String> {
        let first_seq = self.append(batch.iter().map(|p| (&p.draft, p.outcome, p.message.as_deref())))?;
        let size = self.file.metadata().map_err(|e| e.to_string())?.len();
        if size >= self.rotate_bytes {
            match self.rotate() {
                Ok(()) => {
                    if let Err(e) = self.retain() {
                        tracing::error!(error = %e, "audit retention failed; keeping every file");
                    }
                }
                Err(e) => tracing::error!(error = %e, "audit log rotation failed; continuing in the same file"),
            }
        }
        Ok(first_seq)
    }

    /// Seals and appends records, fsyncs, advances the checkpoint. On failure
    /// the file is cut back so the chain stays whole, and nothing is acknowledged.
    fn append<'a>(
        &mut self,
        items: impl Iterator<Item = (&'a Draft, Outcome, Option<&'a str>)>,
    ) -> Result<u64, String> {
        let first_seq = self.head.next_seq;
        let mut head = self.head.clone();
        let mut buf = Vec::with_capacity(4096);
        for (d, outcome, message) in items {
            let mut rec = AuditRecord {
                seq: head.next_seq,
                time: now_rfc3339(),
                request_id: d.request_id.clone(),
                client: d.client.clone(),
                actor: d.actor.clone(),
                verb: d.verb.clone(),
                target: d.target.clone(),
                target_name: d.target_name.clone(),
                params: d.params.clone(),
                outcome,
                message: message.map(str::to_owned),
                duration_ms: d.started.elapsed().as_millis().try_into().unwrap_or(u64::MAX),
                prev: head.prev_hash.clone(),
                mac: None,
            };
            let line = chain::seal(&mut rec, self.key.as_deref()).map_err(|e| e.to_string())?;
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
        let cp = Checkpoint::new(self.head.next_seq - 1, self.head.prev_hash.clone(), self.key.as_deref());
        if let Err(e) = chain::write_checkpoint(&self.path, &cp) {
            // The records are durable and sealed; a stale checkpoint only weakens tail-cut detection.
            tracing::error!(error = %e, "audit checkpoint write failed");
        }
        Ok(first_seq)
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let next = chain::rotated_files(&self.path)?.last().map_or(1, |(n, _)| n + 1);
        let target = chain::rotated_path(&self.path, next);
        std::fs::rename(&self.path, &target)?;
        let file = OpenOptions::new().read(true).create(true).append(true).open(&self.path)?;
        sync_dir(&self.path)?;
        self.file = file;
        tracing::info!(rotated_to = %target.display(), "audit log rotated");
        Ok(())
    }

    /// Deletes the oldest rotated files beyond `keep_files`. First an
    /// `audit.retention` record (sealed, fsync'd) names the last deleted
    /// record's seq and hash — what the oldest kept file's first record chains
    /// to — so `verify` still proves the chain from there; then the deletion.
    fn retain(&mut self) -> std::io::Result<()> {
        let keep = self.keep_files as usize;
        let rotated = chain::rotated_files(&self.path)?;
        if keep == 0 || rotated.len() <= keep {
            return Ok(());
        }
        let (gone, kept) = rotated.split_at(rotated.len() - keep);
        let first = chain::first_record(&kept[0].1)?
            .ok_or_else(|| std::io::Error::other(format!("{} has no readable first record", kept[0].1.display())))?;
        let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut d = Draft::new(&system_caller("retention"), read::RETENTION);
        d.param("files", gone.len())
            .param("deleted_first", name(&gone[0].1))
            .param("deleted_last", name(&gone[gone.len() - 1].1))
            .param("pruned_through_seq", first.seq.saturating_sub(1))
            .param("pruned_through_hash", &first.prev)
            .param("keep_files", keep);
        let message = "deleted the oldest audit files beyond DOCKWARD_AUDIT_KEEP_FILES";
        self.append(std::iter::once((&d, Outcome::Ok, Some(message)))).map_err(std::io::Error::other)?;
        for (_, p) in gone {
            std::fs::remove_file(p)?;
        }
        sync_dir(&self.path)?;
        tracing::info!(
            files = gone.len(),
            through_seq = first.seq.saturating_sub(1),
            "audit retention deleted old files"
        );
        Ok(())
    }
}

fn sync_dir(active: &Path) -> std::io::Result<()> {
    match active.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
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
mod tests;
