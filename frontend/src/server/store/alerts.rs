//! Alert state in the store: rules, channels and silences (each a validated
//! JSON body), incidents, and the outbox of notifications. Everything the
//! evaluator knows across a restart or a change of replica is here; what it
//! keeps in memory (how long a condition has held) is rebuilt.

use sqlx::Row;

use super::{Store, StoreError};

/// Which configuration table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Config {
    Rules,
    Channels,
}

impl Config {
    fn table(self) -> &'static str {
        match self {
            Config::Rules => "alert_rules",
            Config::Channels => "alert_channels",
        }
    }
}

/// An incident as stored: `body` is the alerts module's JSON (what fired,
/// where). Serialised for the alerts page and API without its key and body.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IncidentRow {
    pub id: i64,
    #[serde(skip)]
    pub key: String,
    /// `firing` or `resolved`.
    pub state: String,
    pub started_ms: i64,
    pub resolved_ms: Option<i64>,
    /// Whether its firing was sent (or queued): not while silenced.
    pub notified: bool,
    /// Times it fired again soon after resolving (flapping).
    pub flaps: i64,
    pub acked_by: Option<String>,
    pub acked_ms: Option<i64>,
    #[serde(skip)]
    pub body: String,
}

/// One notification to one channel (as the alerts page and API show it too).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub incident: i64,
    pub channel: i64,
    /// `firing`, `resolved` or `flapping`.
    pub event: String,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub next_ms: i64,
    pub created_ms: i64,
    pub sent_ms: Option<i64>,
    pub error: Option<String>,
}

/// One change of an incident ([`Store::incident_step`]).
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    /// A new incident, firing since `started_ms`; `notified`: its firing is being sent.
    Open { key: &'a str, started_ms: i64, notified: bool, body: &'a str },
    /// A resolved incident fires again (one more flap).
    Reopen { id: i64, notified: bool, body: &'a str },
    /// A firing incident's condition came back while it waited to resolve (one more flap).
    Flapped { id: i64 },
    /// It resolved now.
    Resolve { id: i64 },
    /// Its firing is being sent (a silence ended).
    Notified { id: i64 },
}

const INCIDENT_COLUMNS: &str = "id, key, state, started_ms, resolved_ms, notified, flaps, acked_by, acked_ms, body";
const OUTBOX_COLUMNS: &str = "id, incident, channel, event, status, attempts, next_ms, created_ms, sent_ms, error";

fn incident(r: &sqlx::any::AnyRow) -> Result<IncidentRow, sqlx::Error> {
    Ok(IncidentRow {
        id: r.try_get(0)?,
        key: r.try_get(1)?,
        state: r.try_get(2)?,
        started_ms: r.try_get(3)?,
        resolved_ms: r.try_get(4)?,
        notified: r.try_get::<i64, _>(5)? != 0,
        flaps: r.try_get(6)?,
        acked_by: r.try_get(7)?,
        acked_ms: r.try_get(8)?,
        body: r.try_get(9)?,
    })
}

fn outbox(r: &sqlx::any::AnyRow) -> Result<OutboxRow, sqlx::Error> {
    Ok(OutboxRow {
        id: r.try_get(0)?,
        incident: r.try_get(1)?,
        channel: r.try_get(2)?,
        event: r.try_get(3)?,
        status: r.try_get(4)?,
        attempts: r.try_get(5)?,
        next_ms: r.try_get(6)?,
        created_ms: r.try_get(7)?,
        sent_ms: r.try_get(8)?,
        error: r.try_get(9)?,
    })
}

impl Store {
    // -- rules and channels ---------------------------------------------------

    /// Every rule or channel: `(id, body)`, by id.
    pub async fn alert_config(&self, which: Config) -> Result<Vec<(i64, String)>, StoreError> {
        let rows =
            sqlx::query(&format!("SELECT id, body FROM {} ORDER BY id", which.table())).fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<_, sqlx::Error>>().map_err(Into::into)
    }

    /// Adds a rule or channel; its id.
    pub async fn add_alert_config(&self, which: Config, body: &str) -> Result<i64, StoreError> {
        self.check_writable()?;
        let r = sqlx::query(&format!("INSERT INTO {} (body) VALUES ($1) RETURNING id", which.table()))
            .bind(body)
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get::<i64, _>(0))
            .map_err(StoreError::from);
        self.wrote(r)
    }

    /// Replaces one; whether it existed.
    pub async fn set_alert_config(&self, which: Config, id: i64, body: &str) -> Result<bool, StoreError> {
        self.check_writable()?;
        let r = sqlx::query(&format!("UPDATE {} SET body = $1 WHERE id = $2", which.table()))
            .bind(body)
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(StoreError::from);
        self.wrote(r)
    }

    /// Deletes one; whether it existed.
    pub async fn remove_alert_config(&self, which: Config, id: i64) -> Result<bool, StoreError> {
        self.check_writable()?;
        let r = sqlx::query(&format!("DELETE FROM {} WHERE id = $1", which.table()))
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(StoreError::from);
        self.wrote(r)
    }

    /// Adds the default rules of a fresh install, once per store: whether
    /// it did. Removing every rule later does not bring them back.
    pub async fn seed_rules_once(&self, bodies: &[String]) -> Result<bool, StoreError> {
        self.check_writable()?;
        let mut tx = self.pool.begin().await?;
        let done =
            sqlx::query("INSERT INTO meta (key, value) VALUES ('seeded:alert_rules', 1) ON CONFLICT (key) DO NOTHING")
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 0;
        if done {
            return Ok(false);
        }
        for b in bodies {
            sqlx::query("INSERT INTO alert_rules (body) VALUES ($1)").bind(b).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    // -- silences --------------------------------------------------------------

    /// Silences that end after `now`: `(id, until_ms, body)`.
    pub async fn silences(&self, now: i64) -> Result<Vec<(i64, i64, String)>, StoreError> {
        let rows = sqlx::query("SELECT id, until_ms, body FROM alert_silences WHERE until_ms > $1 ORDER BY id")
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    pub async fn add_silence(&self, until_ms: i64, body: &str) -> Result<i64, StoreError> {
        self.check_writable()?;
        let r = sqlx::query("INSERT INTO alert_silences (until_ms, body) VALUES ($1, $2) RETURNING id")
            .bind(until_ms)
            .bind(body)
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get::<i64, _>(0))
            .map_err(StoreError::from);
        self.wrote(r)
    }

    /// Ends a silence now; whether it was live.
    pub async fn end_silence(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        self.check_writable()?;
        let r = sqlx::query("UPDATE alert_silences SET until_ms = $1 WHERE id = $2 AND until_ms > $1")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(StoreError::from);
        self.wrote(r)
    }

    // -- incidents ---------------------------------------------------------------

    /// Incidents still firing, oldest first.
    pub async fn firing_incidents(&self) -> Result<Vec<IncidentRow>, StoreError> {
        let rows =
            sqlx::query(&format!("SELECT {INCIDENT_COLUMNS} FROM alert_incidents WHERE state = 'firing' ORDER BY id"))
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(incident).collect::<Result<_, _>>().map_err(Into::into)
    }

    /// How many incidents are firing (the header's count).
    pub async fn firing_count(&self) -> Result<i64, StoreError> {
        let row =
            sqlx::query("SELECT COUNT(*) FROM alert_incidents WHERE state = 'firing'").fetch_one(&self.pool).await?;
        Ok(row.try_get(0)?)
    }

    /// The newest incidents, firing or not, at most `limit`.
    pub async fn recent_incidents(&self, limit: i64) -> Result<Vec<IncidentRow>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {INCIDENT_COLUMNS} FROM alert_incidents ORDER BY id DESC LIMIT $1"))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(incident).collect::<Result<_, _>>().map_err(Into::into)
    }

    pub async fn incident(&self, id: i64) -> Result<Option<IncidentRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {INCIDENT_COLUMNS} FROM alert_incidents WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(incident).transpose().map_err(Into::into)
    }

    /// The last incident of `key` resolved at or after `since` (flapping).
    pub async fn resolved_since(&self, key: &str, since: i64) -> Result<Option<IncidentRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM alert_incidents WHERE key = $1 AND state = 'resolved' AND resolved_ms >= $2 ORDER BY id DESC LIMIT 1"
        ))
        .bind(key)
        .bind(since)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(incident).transpose().map_err(Into::into)
    }

    /// Applies one step of an incident and queues `event` of it for each
    /// `(channel, due_ms)`, in one transaction: a crash or a failed write
    /// never leaves an incident changed without its notifications, nor the
    /// other way round. The incident's id.
    pub async fn incident_step(
        &self,
        step: Step<'_>,
        event: &str,
        to: &[(i64, i64)],
        now: i64,
    ) -> Result<i64, StoreError> {
        self.check_writable()?;
        let r = async {
            let mut tx = self.pool.begin().await?;
            let id = match step {
                Step::Open { key, started_ms, notified, body } => sqlx::query(
                    "INSERT INTO alert_incidents (key, state, started_ms, notified, flaps, body) VALUES ($1, 'firing', $2, $3, 0, $4) RETURNING id",
                )
                .bind(key)
                .bind(started_ms)
                .bind(i64::from(notified))
                .bind(body)
                .fetch_one(&mut *tx)
                .await?
                .try_get::<i64, _>(0)?,
                Step::Reopen { id, notified, body } => {
                    sqlx::query(
                        "UPDATE alert_incidents SET state = 'firing', resolved_ms = NULL, flaps = flaps + 1, notified = $1, body = $2 WHERE id = $3",
                    )
                    .bind(i64::from(notified))
                    .bind(body)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    id
                }
                Step::Flapped { id } => {
                    sqlx::query("UPDATE alert_incidents SET flaps = flaps + 1 WHERE id = $1").bind(id).execute(&mut *tx).await?;
                    id
                }
                Step::Resolve { id } => {
                    sqlx::query("UPDATE alert_incidents SET state = 'resolved', resolved_ms = $1 WHERE id = $2 AND state = 'firing'")
                        .bind(now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    id
                }
                Step::Notified { id } => {
                    sqlx::query("UPDATE alert_incidents SET notified = 1 WHERE id = $1").bind(id).execute(&mut *tx).await?;
                    id
                }
            };
            for (channel, due) in to {
                sqlx::query(
                    "INSERT INTO alert_outbox (incident, channel, event, status, attempts, next_ms, created_ms) VALUES ($1, $2, $3, 'pending', 0, $4, $5)",
                )
                .bind(id)
                .bind(channel)
                .bind(event)
                .bind(due)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok::<i64, sqlx::Error>(id)
        }
        .await
        .map_err(StoreError::from);
        self.wrote(r)
    }

    /// Acknowledges a firing incident; whether there was one unacknowledged.
    pub async fn ack_incident(&self, id: i64, by: &str, at_ms: i64) -> Result<bool, StoreError> {
        self.check_writable()?;
        let r = sqlx::query(
            "UPDATE alert_incidents SET acked_by = $1, acked_ms = $2 WHERE id = $3 AND state = 'firing' AND acked_by IS NULL",
        )
        .bind(by)
        .bind(at_ms)
        .bind(id)
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected() > 0)
        .map_err(StoreError::from);
        self.wrote(r)
    }

    // -- the outbox ----------------------------------------------------------------

    /// Pending notifications due by `now`, oldest first, at most `limit`; of
    /// an incident's notifications to one channel only the oldest pending
    /// (they arrive in order: a retried firing before its resolution).
    pub async fn due(&self, now: i64, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM alert_outbox o WHERE status = 'pending' AND next_ms <= $1 AND NOT EXISTS (SELECT 1 FROM alert_outbox p WHERE p.incident = o.incident AND p.channel = o.channel AND p.status = 'pending' AND p.id < o.id) ORDER BY id LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(outbox).collect::<Result<_, _>>().map_err(Into::into)
    }

    /// When the next pending notification is due, if any.
    pub async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        let row =
            sqlx::query("SELECT MIN(next_ms) FROM alert_outbox WHERE status = 'pending'").fetch_one(&self.pool).await?;
        Ok(row.try_get::<Option<i64>, _>(0)?)
    }

    /// The newest notifications, at most `limit`.
    pub async fn recent_notifications(&self, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {OUTBOX_COLUMNS} FROM alert_outbox ORDER BY id DESC LIMIT $1"))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(outbox).collect::<Result<_, _>>().map_err(Into::into)
    }

    /// Records how a send went: `sent`, another try at `next_ms`, or `failed`.
    pub async fn delivered(
        &self,
        id: i64,
        status: &str,
        attempts: i64,
        next_ms: i64,
        at_ms: i64,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let sent = (status == "sent").then_some(at_ms);
        self.exec(
            sqlx::query("UPDATE alert_outbox SET status = $1, attempts = $2, next_ms = $3, sent_ms = $4, error = $5 WHERE id = $6")
                .bind(status)
                .bind(attempts)
                .bind(next_ms)
                .bind(sent)
                .bind(error)
                .bind(id),
        )
        .await
    }

    /// Sends a failed notification again from the start; whether it had
    /// failed and is its incident's latest for that channel (a firing is not
    /// sent after its resolution).
    pub async fn retry_notification(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        self.check_writable()?;
        let r = sqlx::query(
            "UPDATE alert_outbox SET status = 'pending', attempts = 0, next_ms = $1 WHERE id = $2 AND status = 'failed' AND NOT EXISTS (SELECT 1 FROM alert_outbox l WHERE l.incident = alert_outbox.incident AND l.channel = alert_outbox.channel AND l.id > alert_outbox.id)",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected() > 0)
        .map_err(StoreError::from);
        self.wrote(r)
    }

    /// Forgets resolved incidents and finished notifications older than
    /// `before`, and the ends of silences long over.
    pub async fn prune_alerts(&self, before: i64) -> Result<(), StoreError> {
        self.check_writable()?;
        for sql in [
            "DELETE FROM alert_outbox WHERE status <> 'pending' AND created_ms < $1",
            "DELETE FROM alert_incidents WHERE state = 'resolved' AND resolved_ms < $1",
            "DELETE FROM alert_silences WHERE until_ms < $1",
        ] {
            self.exec(sqlx::query(sql).bind(before)).await?;
        }
        Ok(())
    }

    async fn exec<'q>(
        &self,
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<(), StoreError> {
        self.check_writable()?;
        let r = q.execute(&self.pool).await.map(|_| ()).map_err(StoreError::from);
        self.wrote(r)
    }

    /// The pool, for the alert evaluator's lock (one connection held while it leads).
    pub(crate) fn pool(&self) -> &sqlx::AnyPool {
        &self.pool
    }
}
