//! History in the store: series (a container by app and service name, or a
//! host), three tiers of buckets, and marks on the time axis.
//!
//! | tier | bucket | kept |
//! |---|---|---|
//! | `points_10s` | 10 s | 24 h |
//! | `points_1m` | 1 min | 7 days |
//! | `points_10m` | 10 min | 90 days |
//!
//! Each bucket holds CPU (hundredths of a percent) and memory as min, mean
//! and max, and bytes moved (network, block I/O) and restarts as totals.
//! Coarser tiers are made from finer ones in the background ([`Store::downsample`]);
//! a size cap drops the oldest data first ([`Store::retain`]).

use serde::Serialize;
use sqlx::{Executor, Row};

use super::{Backend, Store, StoreError};

/// One tier: its table, bucket width and how long it is kept (seconds).
struct Tier {
    table: &'static str,
    step: i64,
    keep: i64,
}

const TIERS: [Tier; 3] = [
    Tier { table: "points_10s", step: 10, keep: 24 * 3600 },
    Tier { table: "points_1m", step: 60, keep: 7 * 24 * 3600 },
    Tier { table: "points_10m", step: 600, keep: 90 * 24 * 3600 },
];

/// A finer bucket is folded into a coarser one this long after it closes
/// (the recorder writes a 10 s bucket within 10 s of its end).
const FOLD_LAG_S: i64 = 30;
/// Most points a chart is given: the range is cut into this many buckets.
pub const CHART_POINTS: i64 = 720;
/// Most marks shown on one chart.
const MARKS_MAX: i64 = 500;
/// Most containers' series an app's chart sums.
const APP_SERIES_MAX: i64 = 200;
/// What a bucket row takes on PostgreSQL with its primary key (about 90
/// bytes of tuple and 40 of index entry).
const PG_ROW_BYTES: i64 = 130;
/// Rows per INSERT statement (14 values each).
const ROWS_PER_INSERT: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SeriesKind {
    Container,
    Host,
}

impl SeriesKind {
    fn as_str(self) -> &'static str {
        match self {
            SeriesKind::Container => "container",
            SeriesKind::Host => "host",
        }
    }
}

/// What a series is: on `host`, `name` (a container's app/service/number or
/// its name; empty for the host itself).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Series {
    pub host: String,
    pub name: String,
    pub kind: SeriesKind,
}

/// A bucket as the recorder writes it (10 s).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bucket {
    pub ts: i64,
    pub n: i64,
    /// Hundredths of a percent: min, mean, max (none when no sample had CPU).
    pub cpu: Option<(i64, i64, i64)>,
    pub mem: (i64, i64, i64),
    pub net_rx: i64,
    pub net_tx: i64,
    pub blk_r: i64,
    pub blk_w: i64,
    pub restarts: i64,
}

/// A chart's point: a bucket of `step` seconds from `ts`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    pub ts: i64,
    pub cpu_min: Option<f64>,
    pub cpu_avg: Option<f64>,
    pub cpu_max: Option<f64>,
    pub mem_min: i64,
    pub mem_avg: i64,
    pub mem_max: i64,
    pub net_rx_bytes: i64,
    pub net_tx_bytes: i64,
    pub blk_read_bytes: i64,
    pub blk_write_bytes: i64,
    pub restarts: i64,
}

/// Something that happened, marked on the time axis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mark {
    pub ts: i64,
    /// `restart`, `state`, `health` or `recreate`.
    pub kind: String,
    pub detail: String,
}

/// A chart's range and the bucket width its points are cut into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: i64,
    pub to: i64,
    pub step: i64,
}

impl Range {
    /// The last `seconds` up to `now`, in at most [`CHART_POINTS`] buckets
    /// that are a multiple of the finest tier that still holds `from`.
    pub fn last(seconds: i64, now: i64) -> Range {
        let seconds = seconds.clamp(60, TIERS[2].keep);
        let base = TIERS.iter().find(|t| seconds <= t.keep).map_or(600, |t| t.step);
        let want = (seconds + CHART_POINTS - 1) / CHART_POINTS;
        let step = ((want + base - 1) / base).max(1) * base;
        let to = now - now % step + step;
        Range { from: to - (seconds + step - 1) / step * step, to, step }
    }
}

/// One bucket's values, as the SQL of a fold or a chart gives them.
/// Means are weighted by samples and rounded the same way on both backends
/// (in floating point: SQLite's integer division would truncate).
const AGGREGATE: &str = "CAST(SUM(n) AS BIGINT), MIN(cpu_min), \
     CAST(ROUND(CAST(SUM(cpu_avg * n) AS DOUBLE PRECISION) / NULLIF(SUM(CASE WHEN cpu_avg IS NULL THEN 0 ELSE n END), 0)) AS BIGINT), MAX(cpu_max), \
     MIN(mem_min), CAST(ROUND(CAST(SUM(mem_avg * n) AS DOUBLE PRECISION) / NULLIF(SUM(n), 0)) AS BIGINT), MAX(mem_max), \
     CAST(SUM(net_rx) AS BIGINT), CAST(SUM(net_tx) AS BIGINT), CAST(SUM(blk_r) AS BIGINT), CAST(SUM(blk_w) AS BIGINT), \
     CAST(SUM(restarts) AS BIGINT)";

const COLUMNS: &str =
    "series, ts, n, cpu_min, cpu_avg, cpu_max, mem_min, mem_avg, mem_max, net_rx, net_tx, blk_r, blk_w, restarts";

impl Store {
    /// The id of `series`, made when it is new.
    pub async fn series_id(&self, s: &Series) -> Result<i64, StoreError> {
        if self.writable() {
            let r = sqlx::query(
                "INSERT INTO series (host, name, kind) VALUES ($1, $2, $3) ON CONFLICT (host, name) DO NOTHING",
            )
            .bind(&s.host)
            .bind(&s.name)
            .bind(s.kind.as_str())
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(StoreError::from);
            self.wrote(r)?;
        }
        self.find_series(&s.host, &s.name).await?.ok_or(StoreError::ReadOnly)
    }

    /// The id of the series `name` on `host`, if it has one.
    pub async fn find_series(&self, host: &str, name: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT id FROM series WHERE host = $1 AND name = $2")
            .bind(host)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<i64, _>(0)).transpose()?)
    }

    /// Writes closed 10 s buckets and marks in one transaction. A bucket
    /// already there (another replica wrote it) is left as it is.
    pub async fn write(&self, buckets: &[(i64, Bucket)], marks: &[(i64, Mark)]) -> Result<(), StoreError> {
        self.check_writable()?;
        let r = self.write_inner(buckets, marks).await;
        self.wrote(r)
    }

    async fn write_inner(&self, buckets: &[(i64, Bucket)], marks: &[(i64, Mark)]) -> Result<(), StoreError> {
        // A bucket without a sample has no figures: never written (its mean would be 0/0).
        let buckets: Vec<&(i64, Bucket)> = buckets.iter().filter(|(_, b)| b.n > 0).collect();
        let mut tx = self.pool.begin().await?;
        for chunk in buckets.chunks(ROWS_PER_INSERT) {
            let mut sql = format!("INSERT INTO points_10s ({COLUMNS}) VALUES ");
            for i in 0..chunk.len() {
                let b = i * 14;
                if i > 0 {
                    sql.push(',');
                }
                sql.push('(');
                for k in 1..=14 {
                    if k > 1 {
                        sql.push(',');
                    }
                    sql.push_str(&format!("${}", b + k));
                }
                sql.push(')');
            }
            sql.push_str(" ON CONFLICT (series, ts) DO NOTHING");
            let mut q = sqlx::query(&sql);
            for (series, b) in chunk.iter().copied() {
                let (c0, c1, c2) = match b.cpu {
                    Some((a, m, x)) => (Some(a), Some(m), Some(x)),
                    None => (None, None, None),
                };
                q = q
                    .bind(*series)
                    .bind(b.ts)
                    .bind(b.n)
                    .bind(c0)
                    .bind(c1)
                    .bind(c2)
                    .bind(b.mem.0)
                    .bind(b.mem.1)
                    .bind(b.mem.2)
                    .bind(b.net_rx)
                    .bind(b.net_tx)
                    .bind(b.blk_r)
                    .bind(b.blk_w)
                    .bind(b.restarts);
            }
            q.execute(&mut *tx).await?;
        }
        for (series, m) in marks {
            sqlx::query("INSERT INTO marks (series, ts, kind, detail) VALUES ($1, $2, $3, $4)")
                .bind(*series)
                .bind(m.ts)
                .bind(&m.kind)
                .bind(&m.detail)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn meta(&self, key: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = $1").bind(key).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.try_get::<i64, _>(0)).transpose()?)
    }

    /// Folds closed buckets of each tier into the next coarser one, up to
    /// `now` less a short lag; idempotent (a bucket folded twice is the same).
    pub async fn downsample(&self, now: i64) -> Result<(), StoreError> {
        self.check_writable()?;
        let r = self.downsample_inner(now).await;
        self.wrote(r)
    }

    async fn downsample_inner(&self, now: i64) -> Result<(), StoreError> {
        let mut ready = now - FOLD_LAG_S;
        for pair in TIERS.windows(2) {
            let (src, dst) = (&pair[0], &pair[1]);
            let key = format!("folded:{}", dst.table);
            let upto = ready - ready.rem_euclid(dst.step);
            let from = match self.meta(&key).await? {
                // Again over the last two buckets (a late write lands in them; folding is
                // idempotent), and never from the future (a clock once ahead).
                Some(v) => v.min(upto) - 2 * dst.step,
                None => {
                    let sql = format!("SELECT MIN(ts) FROM {}", src.table);
                    let min: Option<i64> = sqlx::query(&sql).fetch_one(&self.pool).await?.try_get(0)?;
                    min.map_or(upto, |m| m - m.rem_euclid(dst.step))
                }
            };
            if from < upto {
                let mut tx = self.pool.begin().await?;
                let step = dst.step;
                let sql = format!(
                    "INSERT INTO {dst} ({COLUMNS}) SELECT series, ts - ts % {step}, {AGGREGATE} FROM {src} \
                     WHERE ts >= $1 AND ts < $2 GROUP BY series, ts - ts % {step} \
                     ON CONFLICT (series, ts) DO UPDATE SET n = excluded.n, cpu_min = excluded.cpu_min, \
                     cpu_avg = excluded.cpu_avg, cpu_max = excluded.cpu_max, mem_min = excluded.mem_min, \
                     mem_avg = excluded.mem_avg, mem_max = excluded.mem_max, net_rx = excluded.net_rx, \
                     net_tx = excluded.net_tx, blk_r = excluded.blk_r, blk_w = excluded.blk_w, restarts = excluded.restarts",
                    dst = dst.table,
                    src = src.table,
                );
                sqlx::query(&sql).bind(from).bind(upto).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
                    .bind(&key)
                    .bind(upto)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            // The next tier folds only what this one holds whole.
            ready = upto;
        }
        Ok(())
    }

    /// Drops what each tier keeps no longer, then the oldest data until the
    /// history takes at most `cap_bytes`. Returns the bytes it takes.
    pub async fn retain(&self, now: i64, cap_bytes: u64) -> Result<u64, StoreError> {
        self.check_writable()?;
        let r = self.retain_inner(now, cap_bytes).await;
        self.wrote(r)
    }

    async fn retain_inner(&self, now: i64, cap_bytes: u64) -> Result<u64, StoreError> {
        for t in &TIERS {
            let sql = format!("DELETE FROM {} WHERE ts < $1", t.table);
            sqlx::query(&sql).bind(now - t.keep).execute(&self.pool).await?;
        }
        sqlx::query("DELETE FROM marks WHERE ts < $1").bind(now - TIERS[2].keep).execute(&self.pool).await?;
        // Series with nothing left (containers long gone).
        sqlx::query(
            "DELETE FROM series WHERE id NOT IN (SELECT series FROM points_10m) AND id NOT IN (SELECT series FROM points_1m) \
             AND id NOT IN (SELECT series FROM points_10s) AND id NOT IN (SELECT series FROM marks)",
        )
        .execute(&self.pool)
        .await?;
        let mut size = self.history_bytes().await?;
        for _ in 0..100 {
            if size <= cap_bytes || !self.drop_oldest(now).await? {
                break;
            }
            tracing::info!(size, cap_bytes, "history is over its size cap: dropped its oldest data");
            size = self.history_bytes().await?;
        }
        if self.backend == Backend::Sqlite {
            // Hand freed pages back to the file system a little at a time.
            self.pool.execute("PRAGMA incremental_vacuum(2000)").await?;
        }
        Ok(size)
    }

    /// Drops the oldest twentieth of the history's span (at least ten
    /// minutes of it) from every tier and the marks; whether there was any.
    pub async fn drop_oldest(&self, now: i64) -> Result<bool, StoreError> {
        self.check_writable()?;
        let r = self.drop_oldest_inner(now).await;
        self.wrote(r)
    }

    async fn drop_oldest_inner(&self, now: i64) -> Result<bool, StoreError> {
        let mut oldest: Option<i64> = None;
        for t in &TIERS {
            let sql = format!("SELECT MIN(ts) FROM {}", t.table);
            let m: Option<i64> = sqlx::query(&sql).fetch_one(&self.pool).await?.try_get(0)?;
            oldest = match (oldest, m) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let Some(oldest) = oldest else { return Ok(false) };
        let cut = oldest + ((now - oldest) / 20).max(600);
        for table in TIERS.iter().map(|t| t.table).chain(["marks"]) {
            let sql = format!("DELETE FROM {table} WHERE ts < $1");
            sqlx::query(&sql).bind(cut).execute(&self.pool).await?;
        }
        if self.backend == Backend::Sqlite {
            self.pool.execute("PRAGMA incremental_vacuum").await?;
        }
        Ok(true)
    }

    /// Bytes the history takes: the file's pages in use (SQLite); on
    /// PostgreSQL, whose files do not shrink when rows go, its rows at
    /// [`PG_ROW_BYTES`] each (what a bucket with its index takes there).
    pub async fn history_bytes(&self) -> Result<u64, StoreError> {
        let v: i64 = match self.backend {
            Backend::Sqlite => {
                let one = |sql: &'static str| async move {
                    sqlx::query(sql).fetch_one(&self.pool).await?.try_get::<i64, _>(0).map_err(StoreError::from)
                };
                let (pages, free, size) = (
                    one("PRAGMA page_count").await?,
                    one("PRAGMA freelist_count").await?,
                    one("PRAGMA page_size").await?,
                );
                (pages - free) * size
            }
            Backend::Postgres => {
                let rows: i64 = self.tier_rows().await?.iter().sum();
                let marks: i64 = sqlx::query("SELECT COUNT(*) FROM marks").fetch_one(&self.pool).await?.try_get(0)?;
                (rows + marks).saturating_mul(PG_ROW_BYTES)
            }
        };
        Ok(v.max(0) as u64)
    }

    /// The points of `series` over `range`, each tier read where it is the
    /// finest one holding the data, cut into buckets of `range.step`.
    /// The series of the containers of compose project `project` on `host`
    /// (at most [`APP_SERIES_MAX`]): ids and names.
    pub async fn app_series(&self, host: &str, project: &str) -> Result<Vec<(i64, String)>, StoreError> {
        let prefix = format!("{project}/");
        let rows = sqlx::query(
            "SELECT id, name FROM series WHERE host = $1 AND kind = 'container' \
             AND substr(name, 1, CAST($2 AS INTEGER)) = $3 ORDER BY name LIMIT $4",
        )
        .bind(host)
        .bind(prefix.chars().count() as i64)
        .bind(&prefix)
        .bind(APP_SERIES_MAX)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<_, sqlx::Error>>().map_err(Into::into)
    }

    /// The points of `series` over `range`, each tier read where it is the
    /// finest one holding the data, cut into buckets of `range.step`. Of
    /// several series (an app), each bucket is the sum of theirs: CPU and
    /// memory as the sums of their minima, means and maxima.
    pub async fn points(&self, series: &[i64], range: Range, now: i64) -> Result<Vec<Point>, StoreError> {
        if series.is_empty() {
            return Ok(Vec::new());
        }
        // Where each coarser tier's data ends (folded up to there).
        let folded_1m = self.meta("folded:points_1m").await?.unwrap_or(i64::MIN);
        let folded_10m = self.meta("folded:points_10m").await?.unwrap_or(i64::MIN);
        // The finest tier that still holds `from` reads from there on.
        let (b10m, b1m) = if range.from >= now - TIERS[0].keep {
            (range.from, range.from)
        } else if range.from >= now - TIERS[1].keep {
            (range.from, folded_1m.max(range.from))
        } else {
            let b10m = folded_10m.max(range.from);
            (b10m, folded_1m.max(b10m))
        };
        let step = range.step;
        // Ids from the store itself, as numbers: nothing of a request is in this text.
        let ids = series.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let tiers = format!(
            "SELECT * FROM points_10m WHERE series IN ({ids}) AND ts >= $1 AND ts < $2 \
             UNION ALL SELECT * FROM points_1m WHERE series IN ({ids}) AND ts >= $2 AND ts < $3 \
             UNION ALL SELECT * FROM points_10s WHERE series IN ({ids}) AND ts >= $3 AND ts < $4"
        );
        let sql = if series.len() == 1 {
            format!("SELECT ts - ts % {step} AS b, {AGGREGATE} FROM ({tiers}) p GROUP BY b ORDER BY b")
        } else {
            let cols = ["n", "cmin", "cavg", "cmax", "mmin", "mavg", "mmax", "rx", "tx", "br", "bw", "rs"];
            format!(
                "WITH q (series, b, {names}) AS (SELECT series, ts - ts % {step}, {AGGREGATE} FROM ({tiers}) p \
                 GROUP BY series, ts - ts % {step}) SELECT b, {sums} FROM q GROUP BY b ORDER BY b",
                names = cols.join(", "),
                sums = cols.iter().map(|c| format!("CAST(SUM({c}) AS BIGINT)")).collect::<Vec<_>>().join(", "),
            )
        };
        let rows = sqlx::query(&sql).bind(range.from).bind(b10m).bind(b1m).bind(range.to).fetch_all(&self.pool).await?;
        let pct = |v: Option<i64>| v.map(|c| c as f64 / 100.0);
        rows.iter()
            .map(|r| {
                Ok(Point {
                    ts: r.try_get(0)?,
                    cpu_min: pct(r.try_get(2)?),
                    cpu_avg: pct(r.try_get(3)?),
                    cpu_max: pct(r.try_get(4)?),
                    mem_min: r.try_get(5)?,
                    mem_avg: r.try_get::<Option<i64>, _>(6)?.unwrap_or(0),
                    mem_max: r.try_get(7)?,
                    net_rx_bytes: r.try_get(8)?,
                    net_tx_bytes: r.try_get(9)?,
                    blk_read_bytes: r.try_get(10)?,
                    blk_write_bytes: r.try_get(11)?,
                    restarts: r.try_get(12)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// The marks of `series` over `range`, oldest first (at most [`MARKS_MAX`]);
    /// `named`: each detail says whose it is (an app's).
    pub async fn marks(&self, series: &[i64], range: Range, named: bool) -> Result<Vec<Mark>, StoreError> {
        if series.is_empty() {
            return Ok(Vec::new());
        }
        let ids = series.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let detail = if named { "s.name || ': ' || m.detail" } else { "m.detail" };
        let sql = format!(
            "SELECT m.ts, m.kind, {detail} FROM marks m JOIN series s ON s.id = m.series \
             WHERE m.series IN ({ids}) AND m.ts >= $1 AND m.ts < $2 ORDER BY m.ts DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql).bind(range.from).bind(range.to).bind(MARKS_MAX).fetch_all(&self.pool).await?;
        let mut out: Vec<Mark> = rows
            .iter()
            .map(|r| Ok(Mark { ts: r.try_get(0)?, kind: r.try_get(1)?, detail: r.try_get(2)? }))
            .collect::<Result<_, sqlx::Error>>()?;
        out.reverse();
        Ok(out)
    }

    /// Rows in each tier (for tests and the benchmark).
    pub async fn tier_rows(&self) -> Result<[i64; 3], StoreError> {
        let mut out = [0; 3];
        for (i, t) in TIERS.iter().enumerate() {
            let sql = format!("SELECT COUNT(*) FROM {}", t.table);
            out[i] = sqlx::query(&sql).fetch_one(&self.pool).await?.try_get(0)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_cut_into_buckets_of_the_finest_tier_that_holds_it() {
        let now = 1_000_000_000;
        let hour = Range::last(3600, now);
        assert_eq!(hour.step, 10);
        assert_eq!((hour.to - hour.from) / hour.step, 360);
        assert!(hour.to > now && hour.to - now <= 10);
        assert_eq!(Range::last(6 * 3600, now).step, 30);
        assert_eq!(Range::last(24 * 3600, now).step, 120);
        let week = Range::last(7 * 24 * 3600, now);
        assert_eq!(week.step % 60, 0);
        assert!((week.to - week.from) / week.step <= CHART_POINTS + 1);
        let month = Range::last(30 * 24 * 3600, now);
        assert_eq!(month.step % 600, 0);
        assert!((month.to - month.from) / month.step <= CHART_POINTS + 1);
        assert_eq!(Range::last(10 * 365 * 24 * 3600, now), Range::last(90 * 24 * 3600, now), "at most 90 days");
    }
}
