//! Scenario 13 (issue 17): history in the console's store.
//!
//! - **Ingest**: 50 stand-in hosts × 100 containers (5 000, replaying a real
//!   sidecar's answers over the bench containers), a release console with its
//!   SQLite store and nobody watching: it reads every host's stats every
//!   10 s for history. Its CPU over a window is the whole cost (polling,
//!   decoding, bucketing, writing, folding), an upper bound for ingest.
//! - **Chart**: a series seeded with 90 days of every tier, as the recorder
//!   and the folds leave them; `GET /history?…&range=30d` from the release
//!   console, timed.
//! - **Disk**: 50 series seeded with 90 days of every tier (8 640 + 10 080 +
//!   12 960 buckets each); the store's pages in use before and after, per series.
//!
//! The seeding writes the store's tables directly (its schema is made by the
//! console's own migrations first), bucket values varying as real ones do.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use sqlx::Row;

use crate::fleet::{record, Standin};
use crate::rig::{self, Proc};
use crate::scenarios::{round3, Figure};

const SCENARIO: &str = "13. history";
const HOSTS: usize = 50;
const PER_HOST: usize = 100;
/// Series seeded for the disk figure.
const DISK_SERIES: i64 = 50;

fn web(dir: &Path, hosts: &[(String, String)], site_root: &Path, store: &Path) -> Proc {
    rig::web_with(
        dir,
        "web-history",
        hosts,
        site_root,
        &[],
        &[("DOCKWARD_AGENT_LISTEN", "off".into()), ("DOCKWARD_STORE", store.display().to_string())],
    )
}

fn stop(mut p: Proc) {
    let _ = Command::new("kill").arg(p.pid().to_string()).status();
    let _ = p.child.wait();
}

async fn sqlite(path: &Path) -> sqlx::SqlitePool {
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open the console's store")
}

async fn pages_in_use(db: &sqlx::SqlitePool) -> i64 {
    let one = |sql: &'static str| async move { sqlx::query(sql).fetch_one(db).await.expect(sql).get::<i64, _>(0) };
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(db).await.expect("checkpoint");
    (one("PRAGMA page_count").await - one("PRAGMA freelist_count").await) * one("PRAGMA page_size").await
}

/// 90 days of every tier for `series`, as the recorder and the folds leave them.
async fn seed(db: &sqlx::SqlitePool, series: i64, now: i64) {
    let tiers: [(&str, i64, i64); 3] =
        [("points_10s", 10, 86_400), ("points_1m", 60, 7 * 86_400), ("points_10m", 600, 90 * 86_400)];
    for (table, step, keep) in tiers {
        let start = now - keep - (now - keep).rem_euclid(step);
        let ts: Vec<i64> = (0..keep / step).map(|i| start + i * step).collect();
        let mut tx = db.begin().await.expect("begin");
        for chunk in ts.chunks(500) {
            let mut sql = format!(
                "INSERT INTO {table} (series, ts, n, cpu_min, cpu_avg, cpu_max, mem_min, mem_avg, mem_max, net_rx, net_tx, blk_r, blk_w, restarts) VALUES "
            );
            for (i, t) in chunk.iter().enumerate() {
                // Figures that move as real ones do (not constants a page would compress away).
                let w = (t / step) as f64;
                let cpu = (1500.0 + 1200.0 * (w / 37.0).sin()) as i64 + (t % 97);
                let mem = 200_000_000 + ((w / 53.0).cos() * 40_000_000.0) as i64 + (t % 4093) * 1000;
                let n = step / 2;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "({series},{t},{n},{},{cpu},{},{},{mem},{},{},{},{},{},0)",
                    cpu - 300 - t % 50,
                    cpu + 400 + t % 70,
                    mem - 3_000_000 - t % 999,
                    mem + 5_000_000 + t % 777,
                    (t % 10_007) * step,
                    (t % 9_001) * step,
                    (t % 3_001) * step,
                    (t % 5_003) * step,
                ));
            }
            sqlx::query(&sql).execute(&mut *tx).await.expect("seed");
        }
        tx.commit().await.expect("commit");
    }
}

async fn new_series(db: &sqlx::SqlitePool, host: &str, name: &str) -> i64 {
    sqlx::query("INSERT INTO series (host, name, kind) VALUES ($1, $2, 'container')")
        .bind(host)
        .bind(name)
        .execute(db)
        .await
        .expect("a series");
    sqlx::query("SELECT id FROM series WHERE host = $1 AND name = $2")
        .bind(host)
        .bind(name)
        .fetch_one(db)
        .await
        .expect("its id")
        .get(0)
}

pub async fn history(dir: &Path, site_root: &Path, quick: bool) -> Vec<Figure> {
    let mut out = Vec::new();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().expect("client");
    rig::ensure_fleet(PER_HOST);
    let recorded = dir.join("history-recorded.json");
    {
        let sc = rig::sidecar(dir, "history-rec");
        record(&http, &sc, &recorded).await;
    }
    let stand = Standin::start(dir, &recorded, HOSTS, None);
    let hosts = stand.hosts();
    let store = dir.join("history-store").join("dockward.db");

    // Ingest: nobody watching, every host read every 10 s for history.
    let w = web(dir, &hosts, site_root, &store);
    let warm = Duration::from_secs(if quick { 30 } else { 60 });
    tokio::time::sleep(warm).await;
    let window = Duration::from_secs(if quick { 40 } else { 180 });
    let db = sqlite(&store).await;
    let rows0: i64 = sqlx::query("SELECT COUNT(*) FROM points_10s").fetch_one(&db).await.expect("count").get(0);
    let (cpu0, t0) = (rig::cpu_seconds(w.pid()), Instant::now());
    tokio::time::sleep(window).await;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = (rig::cpu_seconds(w.pid()) - cpu0) / secs;
    let rows1: i64 = sqlx::query("SELECT COUNT(*) FROM points_10s").fetch_one(&db).await.expect("count").get(0);
    let total = HOSTS * PER_HOST;
    out.push(
        Figure::new(SCENARIO, "console CPU, nobody watching, history on", Some(total), round3(cpu), "cores")
            .at_most(0.05)
            .note(format!(
                "{:.0} buckets written per 10 s over {:.0} s (every host's stats read every 10 s in the background); RSS {:.1} MB",
                (rows1 - rows0) as f64 / secs * 10.0,
                secs,
                rig::rss_bytes(w.pid()) as f64 / 1e6
            )),
    );
    drop(db);
    stop(w);

    // Seed: one series for the chart, fifty for the disk figure.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let db = sqlite(&store).await;
    let chart = new_series(&db, &hosts[0].0, "bench-chart").await;
    seed(&db, chart, now).await;
    let before = pages_in_use(&db).await;
    let started = Instant::now();
    for i in 0..DISK_SERIES {
        let s = new_series(&db, &hosts[1].0, &format!("bench-disk-{i}")).await;
        seed(&db, s, now).await;
    }
    let after = pages_in_use(&db).await;
    let per = (after - before) as f64 / DISK_SERIES as f64;
    out.push(
        Figure::new(SCENARIO, "disk per container, 90 days (SQLite)", Some(DISK_SERIES as usize), round3(per / 1e6), "MB")
            .at_most(5.0)
            .note(format!(
                "31 680 buckets per container (24 h of 10 s, 7 d of 1 min, 90 d of 10 min), {:.0} bytes each with the key; seeded in {:.0} s",
                per / 31_680.0,
                started.elapsed().as_secs_f64()
            )),
    );
    db.close().await;

    // The 30-day chart, from the release console.
    let w = web(dir, &hosts, site_root, &store);
    let cookie = rig::login(&w).await;
    let url = w.url(&format!("/history?host={}&container=bench-chart&range=30d", hosts[0].0));
    let mut times = Vec::new();
    let mut size = 0;
    for i in 0..60 {
        let t = Instant::now();
        let r = http.get(&url).header("cookie", &cookie).send().await.expect("the chart");
        assert!(r.status().is_success(), "the chart answered {}", r.status());
        let body = r.bytes().await.expect("the chart's body");
        if i >= 10 {
            times.push(t.elapsed());
        }
        size = body.len();
        assert!(size > 10_000, "a chart with points");
    }
    times.sort();
    let p50 = rig::pct_ms(&times, 50.0);
    out.push(
        Figure::new(SCENARIO, "30-day chart of one container, server response p50", Some(1), round3(p50), "ms")
            .at_most(50.0)
            .note(format!(
                "p99 {:.2} ms over 50 requests after 10; {} KB of HTML (720 buckets × 4 charts, each titled)",
                rig::pct_ms(&times, 99.0),
                size / 1000
            )),
    );
    stop(w);
    drop(stand);
    out
}
