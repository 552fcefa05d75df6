//! The console's store: the one place its state lives (revoked sessions,
//! history, alerts). SQLite in WAL mode in the state volume by
//! default, or PostgreSQL when `DOCKWARD_STORE` is a `postgres://` URL, so
//! replicas share it. One crate (sqlx, no query macros) serves both, with
//! the same versioned migrations (`migrate.rs`).
//!
//! Failures never stop the console from serving:
//! - a SQLite file that fails its integrity check at start is moved aside
//!   (`<file>.corrupt-<unix seconds>`, kept for a post-mortem) and a fresh
//!   one made; the pages say so ([`Health::reset`]);
//! - a file the console may not write is opened read-only: history is shown
//!   but not recorded, logouts hold in this process only;
//! - a full disk pauses history ([`Health::paused`]) until a write succeeds.

mod alerts;
mod history;
mod migrate;
mod tokens;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Connection, Executor, Row};

pub use alerts::{Config as AlertConfig, IncidentRow, OutboxRow, Step as IncidentStep};
pub use history::{Bucket, Mark, Point, Range, Series, SeriesKind};
pub use tokens::TokenRow;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store {what}: {reason}")]
    Open { what: String, reason: String },
    #[error("the store was written by a newer dockward (schema {found}); this one knows schema {known} at most")]
    Newer { found: i64, known: i64 },
    #[error("the store is read-only")]
    ReadOnly,
    #[error("the store's disk is full")]
    Full,
    #[error("store: {0}")]
    Db(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_full(&e) {
            return StoreError::Full;
        }
        StoreError::Db(e.to_string())
    }
}

/// SQLite's `SQLITE_FULL` (13), PostgreSQL's `disk_full` (53100).
fn is_full(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            matches!(d.code().as_deref(), Some("13") | Some("53100")) || d.message().contains("disk is full")
        }
        sqlx::Error::Io(io) => io.raw_os_error() == Some(28),
        _ => false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// What the pages say about the store.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Health {
    pub backend: &'static str,
    /// Opened read-only (the file may not be written): nothing is recorded.
    pub read_only: bool,
    /// Why history is paused (a full disk), while it is.
    pub paused: Option<String>,
    /// Why the store was made afresh at start (a failed integrity check).
    pub reset: Option<String>,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    health: Arc<Mutex<Health>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where the store is: a SQLite file or a PostgreSQL URL.
#[derive(Debug, Clone)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Location {
    /// `postgres://…`/`postgresql://…`, `sqlite://<path>`, or a plain path.
    /// Any other scheme is refused (a mistyped PostgreSQL URL must not
    /// become a local file); the spec, which may carry a password, is never
    /// echoed back.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        let scheme = spec.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("postgres") | Some("postgresql") => return Ok(Location::Postgres(spec.to_owned())),
            Some("sqlite") | None => {}
            Some(_) => {
                return Err("DOCKWARD_STORE: only a file path, sqlite://<path> or postgres://… is understood".into())
            }
        }
        let path = spec.split_once("://").map_or(spec, |(_, p)| p);
        let looks_like_url = path.split_once(':').is_some_and(|(s, _)| {
            !s.is_empty() && !s.contains('/') && s.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        });
        if path.is_empty() || path.contains('?') || path.contains('#') || path.contains('%') || looks_like_url {
            return Err(
                "DOCKWARD_STORE: not a file path (no '?', '#', '%' or scheme), sqlite://<path> or postgres://…".into(),
            );
        }
        let path = PathBuf::from(path);
        // Absolute: a relative path's first part would be read as a URL's host.
        let path = if path.is_absolute() { path } else { std::env::current_dir().unwrap_or_default().join(path) };
        Ok(Location::Sqlite(path))
    }
}

impl Store {
    /// Opens (and migrates) the store; a SQLite file that fails its integrity
    /// check is moved aside and made again.
    pub async fn open(location: &Location) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        match location {
            Location::Postgres(url) => {
                let pool = AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await
                    .map_err(|e| StoreError::Open {
                        what: "(PostgreSQL)".into(),
                        reason: redact(&e.to_string(), url),
                    })?;
                let store = Store::new(pool, Backend::Postgres, false);
                migrate::run(&store).await?;
                Ok(store)
            }
            Location::Sqlite(path) => Self::open_sqlite(path).await,
        }
    }

    fn new(pool: AnyPool, backend: Backend, read_only: bool) -> Store {
        let backend_name = match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        Store {
            pool,
            backend,
            health: Arc::new(Mutex::new(Health { backend: backend_name, read_only, ..Health::default() })),
        }
    }

    async fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        let shown = path.display().to_string();
        let open_err = |reason: String| StoreError::Open { what: shown.clone(), reason };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::create_dir_all(dir).map_err(|e| open_err(format!("cannot make its directory: {e}")))?;
            }
        }
        let read_only = match std::fs::OpenOptions::new().read(true).write(true).open(path) {
            Ok(_) => false,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            // Not ours to write, or on a read-only mount.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(30) => {
                tracing::error!(path = %shown, "the store cannot be written: opened read-only (history is not recorded)");
                true
            }
            Err(e) => return Err(open_err(e.to_string())),
        };
        let existed = path.exists();
        match Self::connect_sqlite(path, read_only).await {
            Ok(store) => {
                if let Err(e) = migrate::run(&store).await {
                    store.pool.close().await;
                    return Err(e);
                }
                Ok(store)
            }
            Err(Corrupt { why, .. }) if !existed => Err(open_err(format!("cannot be made: {why}"))),
            // Unusable now, not damaged: refused with the reason, the file left as it is.
            Err(Corrupt { damaged: false, why }) if !read_only => Err(open_err(format!("cannot be opened: {why}"))),
            Err(Corrupt { why, .. }) if !read_only => {
                let aside = path.with_file_name(format!(
                    "{}.corrupt-{}",
                    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                    now_s()
                ));
                tracing::error!(path = %shown, moved_to = %aside.display(), reason = %why,
                    "the store failed its integrity check: it is moved aside and made afresh (history and logouts before now are not in the new one)");
                std::fs::rename(path, &aside).map_err(|e| {
                    open_err(format!("failed its integrity check ({why}) and cannot be moved aside: {e}"))
                })?;
                for ext in ["-wal", "-shm"] {
                    let side = PathBuf::from(format!("{}{ext}", path.display()));
                    let _ = std::fs::rename(&side, format!("{}{ext}", aside.display()));
                }
                let store = Self::connect_sqlite(path, false).await.map_err(|c| open_err(c.why))?;
                migrate::run(&store).await?;
                // The path and SQLite's words go to the log (above), not to every viewer.
                lock(&store.health).reset = Some(format!(
                    "the history database failed its integrity check at start; it was kept aside as {} and a new one begun: history and logouts from before are not in it",
                    aside.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
                ));
                Ok(store)
            }
            Err(Corrupt { why, .. }) => {
                // A WAL file on a read-only mount cannot be opened for reading the usual way
                // (readers need its shared-memory file): as an immutable file it can.
                tracing::warn!(path = %shown, reason = %why, "the store cannot be opened read-only as usual; trying it as immutable");
                let store = Self::connect_sqlite_with(path, "mode=ro&immutable=true", true)
                    .await
                    .map_err(|c| open_err(format!("cannot be written, nor read: {}", c.why)))?;
                migrate::run(&store).await?;
                Ok(store)
            }
        }
    }

    async fn connect_sqlite(path: &Path, read_only: bool) -> Result<Store, Corrupt> {
        let mode = if read_only { "mode=ro" } else { "mode=rwc" };
        Self::connect_sqlite_with(path, mode, read_only).await
    }

    async fn connect_sqlite_with(path: &Path, params: &str, read_only: bool) -> Result<Store, Corrupt> {
        let url = format!("sqlite://{}?{params}", path.display());
        let opts: AnyConnectOptions = url.parse().map_err(|e: sqlx::Error| Corrupt::from(&e))?;
        // Checked on one connection first: a damaged file fails there with SQLite's own
        // error (a pool would only say that it timed out waiting for a connection).
        let mut conn = sqlx::AnyConnection::connect_with(&opts).await.map_err(|e| Corrupt::from(&e))?;
        let check = async {
            if !read_only {
                // Before any table exists; no effect on a file made earlier.
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL").await?;
                conn.execute("PRAGMA journal_mode = WAL").await?;
            }
            let rows = sqlx::query("PRAGMA quick_check").fetch_all(&mut conn).await?;
            let verdict: Vec<String> = rows.iter().filter_map(|r| r.try_get::<String, _>(0).ok()).collect();
            Ok::<Vec<String>, sqlx::Error>(verdict)
        }
        .await;
        let _ = conn.close().await;
        match check {
            Ok(v) if v.len() == 1 && v[0] == "ok" => {}
            Ok(v) => return Err(Corrupt::damaged(v.into_iter().take(3).collect::<Vec<_>>().join("; "))),
            Err(e) => return Err(Corrupt::from(&e)),
        }
        let pool = AnyPoolOptions::new()
            // One writer at a time in SQLite; readers beside it (WAL).
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    // WAL with NORMAL: a crash loses at most the last transactions, never the file.
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    Ok(())
                })
            })
            .connect_with(opts)
            .await
            .map_err(|e| Corrupt::from(&e))?;
        if !read_only {
            // It holds alert channels' secrets: its owner's only (its WAL and index beside it too).
            use std::os::unix::fs::PermissionsExt;
            for ext in ["", "-wal", "-shm"] {
                let f = PathBuf::from(format!("{}{ext}", path.display()));
                if let Err(e) = std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!(path = %f.display(), error = %e, "the store's mode could not be made 0600");
                    }
                }
            }
        }
        Ok(Store::new(pool, Backend::Sqlite, read_only))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn health(&self) -> Health {
        lock(&self.health).clone()
    }

    pub fn writable(&self) -> bool {
        !lock(&self.health).read_only
    }

    /// Notes how a write went: a full disk pauses history, a success resumes it.
    fn wrote<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        let mut h = lock(&self.health);
        match &r {
            Ok(_) if h.paused.is_some() => {
                tracing::info!("the store takes writes again: history resumes");
                h.paused = None;
            }
            Err(StoreError::Full) if h.paused.is_none() => {
                tracing::error!("the store's disk is full: history is paused (the console keeps working)");
                h.paused = Some("the disk under the store is full: history is paused until there is room".into());
            }
            _ => {}
        }
        r
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        if self.writable() {
            Ok(())
        } else {
            Err(StoreError::ReadOnly)
        }
    }

    /// Closes the pool: what was written is on disk.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    // -- revoked sessions ----------------------------------------------------

    /// Records a logout: `id` is refused until `expires` (Unix seconds).
    pub async fn revoke_session(&self, id: &str, expires: u64) -> Result<(), StoreError> {
        self.check_writable()?;
        let r = sqlx::query(
            "INSERT INTO revoked_sessions (id, expires) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET expires = excluded.expires",
        )
        .bind(id)
        .bind(to_i64(expires))
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(StoreError::from);
        self.wrote(r)
    }

    /// Revocations recorded after `after` (a sequence number), oldest first,
    /// at most `limit`: `(seq, id, expires)`.
    pub async fn revocations_since(&self, after: i64, limit: i64) -> Result<Vec<(i64, String, u64)>, StoreError> {
        let rows = sqlx::query("SELECT seq, id, expires FROM revoked_sessions WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<String, _>(1)?, r.try_get::<i64, _>(2)?.max(0) as u64)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Forgets revocations past their expiry.
    pub async fn prune_revocations(&self, now: u64) -> Result<u64, StoreError> {
        self.check_writable()?;
        let r = sqlx::query("DELETE FROM revoked_sessions WHERE expires <= $1")
            .bind(to_i64(now))
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(StoreError::from);
        self.wrote(r)
    }
}

/// Why a SQLite file was not usable as it is, and whether it is damaged
/// (SQLite says so: not a database, malformed, or a failed check) rather
/// than unusable for now (a full disk, no descriptors, busy, no permission).
struct Corrupt {
    damaged: bool,
    why: String,
}

impl Corrupt {
    fn damaged(why: String) -> Self {
        Corrupt { damaged: true, why }
    }

    fn from(e: &sqlx::Error) -> Self {
        let damaged = match e {
            sqlx::Error::Database(d) => {
                let code = d.code().and_then(|c| c.parse::<i64>().ok()).map(|c| c & 0xff);
                matches!(code, Some(11) | Some(26))
                    || d.message().contains("not a database")
                    || d.message().contains("malformed")
            }
            _ => false,
        };
        Corrupt { damaged, why: e.to_string() }
    }
}

/// An error text without the URL's password.
fn redact(text: &str, url: &str) -> String {
    match url.split_once("://").and_then(|(_, rest)| rest.split_once('@')).map(|(cred, _)| cred) {
        Some(cred) => match cred.split_once(':') {
            Some((_, pw)) if !pw.is_empty() => text.replace(pw, "***"),
            _ => text.to_owned(),
        },
        None => text.to_owned(),
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub fn now_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_parsed_and_bad_ones_named() {
        assert!(
            matches!(Location::parse("/var/lib/x/dockward.db"), Ok(Location::Sqlite(p)) if p == Path::new("/var/lib/x/dockward.db"))
        );
        assert!(
            matches!(Location::parse("sqlite:///tmp/a.db"), Ok(Location::Sqlite(p)) if p == Path::new("/tmp/a.db"))
        );
        assert!(matches!(Location::parse("postgres://u:p@db/x"), Ok(Location::Postgres(_))));
        assert!(matches!(Location::parse("PostgreSQL://u:p@db/x"), Ok(Location::Postgres(_))));
        assert!(matches!(Location::parse("rel/x.db"), Ok(Location::Sqlite(p)) if p.is_absolute()));
        for bad in [
            "",
            "sqlite://a.db?mode=memory",
            "mysql://u:secret@db/x",
            "postgres:/u:secret@db",
            "Postgres+x://u:secret@db",
        ] {
            let e = Location::parse(bad).expect_err(bad);
            assert!(!e.contains("secret"), "the spec is not echoed: {e}");
        }
    }

    #[test]
    fn a_postgres_password_is_not_shown() {
        let url = "postgres://dockward:s3cret@db:5432/dockward";
        assert_eq!(redact("password authentication failed for s3cret", url), "password authentication failed for ***");
        assert_eq!(redact("refused", "postgres://db/x"), "refused");
    }
}
