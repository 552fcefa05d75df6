//! Which replica evaluates and sends. On PostgreSQL, the one holding a
//! session advisory lock, on a connection it keeps: if that console dies,
//! its connection closes, PostgreSQL releases the lock, and another replica
//! takes it within a tick. If its host vanishes instead (no FIN), the
//! keepalives set on that connection let PostgreSQL drop it within about
//! 20 s; a leader whose check does not answer in 2 s stops leading. (A pooler
//! in transaction mode, such as PgBouncer's, breaks session locks: point the
//! console at PostgreSQL itself.) A SQLite store belongs to one console,
//! which leads while it can write.

use sqlx::pool::PoolConnection;
use sqlx::{Any, Connection, Row};

use crate::server::store::{Backend, Store};

/// The lock's key (any constant the replicas share; not the migrations').
const LOCK_KEY: i64 = 7_720_190_418;
/// A leader whose connection does not answer this soon stops leading.
const CHECK_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

pub struct Leader {
    store: Store,
    held: Option<PoolConnection<Any>>,
}

impl Leader {
    pub fn new(store: Store) -> Self {
        Leader { store, held: None }
    }

    /// Whether this console leads now (checked each tick).
    pub async fn lead(&mut self) -> bool {
        if self.store.backend() == Backend::Sqlite {
            return self.store.writable();
        }
        if let Some(conn) = self.held.as_mut() {
            let check = tokio::time::timeout(CHECK_WITHIN, sqlx::query("SELECT 1").execute(&mut **conn));
            if matches!(check.await, Ok(Ok(_))) {
                return true;
            }
            // The connection is gone (and the lock with it), or unusable: closed, not pooled.
            if let Some(conn) = self.held.take() {
                let _ = conn.detach().close().await;
            }
            return false;
        }
        let acquire = tokio::time::timeout(std::time::Duration::from_secs(2), self.store.pool().acquire());
        let Ok(Ok(mut conn)) = acquire.await else { return false };
        let got = sqlx::query("SELECT pg_try_advisory_lock($1)")
            .bind(LOCK_KEY)
            .fetch_one(&mut *conn)
            .await
            .and_then(|r| r.try_get::<bool, _>(0));
        match got {
            Ok(true) => {
                // The server notices a vanished leader within ~20 s (best effort:
                // tcp_user_timeout needs PostgreSQL 12).
                for set in [
                    "SET tcp_keepalives_idle = 5",
                    "SET tcp_keepalives_interval = 2",
                    "SET tcp_keepalives_count = 3",
                    "SET tcp_user_timeout = 10000",
                ] {
                    if let Err(e) = sqlx::query(set).execute(&mut *conn).await {
                        tracing::debug!(error = %e, set, "alerts: a keepalive setting was refused");
                    }
                }
                self.held = Some(conn);
                true
            }
            // Not ours: the connection goes back to the pool, holding nothing.
            Ok(false) => false,
            Err(e) => {
                tracing::debug!(error = %e, "alerts: the lock could not be asked for");
                let _ = conn.detach().close().await;
                false
            }
        }
    }
}
