//! The console's store, one suite run against both backends: SQLite (a
//! file) and a real PostgreSQL server (testkit::postgres). Migrations,
//! revoked sessions, history's tiers (downsampling gives the right
//! min/mean/max), retention and the size cap; and, for SQLite, a damaged
//! file moved aside at start.

use std::sync::OnceLock;

use dockward_frontend::server::store::{Bucket, Location, Mark, Range, Series, SeriesKind, Store};
use testkit::postgres::Postgres;

fn postgres() -> &'static Postgres {
    static PG: OnceLock<Postgres> = OnceLock::new();
    PG.get_or_init(Postgres::start)
}

/// A fresh store of each backend (the SQLite one's directory kept alive with it).
async fn stores() -> Vec<(&'static str, Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(&Location::Sqlite(dir.path().join("dockward.db"))).await.expect("open SQLite");
    let pg = Store::open(&Location::Postgres(postgres().database())).await.expect("open PostgreSQL");
    vec![("sqlite", sqlite, Some(dir)), ("postgres", pg, None)]
}

fn bucket(ts: i64, n: i64, cpu: (i64, i64, i64), mem: (i64, i64, i64), rx: i64) -> Bucket {
    Bucket { ts, n, cpu: Some(cpu), mem, net_rx: rx, net_tx: 0, blk_r: 0, blk_w: 0, restarts: 0 }
}

fn web() -> Series {
    Series { host: "h1".into(), name: "shop/web/1".into(), kind: SeriesKind::Container }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downsampling_gives_min_mean_and_max_of_a_known_series() {
    // A day ago (so it is in every tier's reach), aligned to 10 minutes.
    let now = 1_800_000_000;
    let t0 = now - 86_400 + 3_600;
    let t0 = t0 - t0 % 600;
    for (backend, store, _dir) in stores().await {
        let id = store.series_id(&web()).await.unwrap();
        assert_eq!(store.series_id(&web()).await.unwrap(), id, "{backend}: one id per series");
        // One minute of 10 s buckets: CPU means 10, 20, …, 60 % (two samples each), memory 100…600.
        let rows: Vec<(i64, Bucket)> = (0..6)
            .map(|i| {
                let c = (i + 1) * 1000;
                (id, bucket(t0 + i * 10, 2, (c - 500, c, c + 500), ((i + 1) * 100, (i + 1) * 100, (i + 1) * 100), 10))
            })
            .collect();
        store
            .write(&rows, &[(id, Mark { ts: t0 + 20, kind: "restart".into(), detail: "restarted".into() })])
            .await
            .unwrap();
        // Written twice (another replica): nothing doubles.
        store.write(&rows, &[]).await.unwrap();
        store.downsample(now).await.unwrap();
        assert_eq!(store.tier_rows().await.unwrap(), [6, 1, 1], "{backend}");
        // A chart over 90 days reads the 10-minute tier: one bucket of all six.
        let p = store.points(&[id], Range { from: t0 - 600, to: t0 + 600, step: 600 }, now + 8 * 86_400).await.unwrap();
        assert_eq!(p.len(), 1, "{backend}: {p:?}");
        assert_eq!(p[0].ts, t0);
        assert_eq!((p[0].cpu_min, p[0].cpu_avg, p[0].cpu_max), (Some(5.0), Some(35.0), Some(65.0)), "{backend}");
        assert_eq!((p[0].mem_min, p[0].mem_avg, p[0].mem_max), (100, 350, 600), "{backend}");
        assert_eq!(p[0].net_rx_bytes, 60, "{backend}: bytes moved add up");
        // The last hour reads the 10 s tier itself.
        let fine = store.points(&[id], Range { from: t0, to: t0 + 60, step: 10 }, t0 + 3_000).await.unwrap();
        assert_eq!(fine.len(), 6, "{backend}");
        assert_eq!(fine[2].cpu_avg, Some(30.0));
        let marks = store.marks(&[id], Range { from: t0, to: t0 + 60, step: 10 }, false).await.unwrap();
        assert_eq!(marks.len(), 1, "{backend}");
        assert_eq!(marks[0].kind, "restart");
        // Folding again changes nothing.
        store.downsample(now).await.unwrap();
        assert_eq!(store.tier_rows().await.unwrap(), [6, 1, 1], "{backend}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tier_keeps_its_span_and_the_cap_drops_the_oldest_first() {
    let now = 1_800_000_000;
    for (backend, store, _dir) in stores().await {
        let id = store.series_id(&web()).await.unwrap();
        // 10 s buckets 2 days old and fresh ones: the old ones go from the 10 s tier.
        let old: Vec<(i64, Bucket)> =
            (0..10).map(|i| (id, bucket(now - 2 * 86_400 + i * 10, 1, (1, 1, 1), (1, 1, 1), 0))).collect();
        let fresh: Vec<(i64, Bucket)> =
            (0..10).map(|i| (id, bucket(now - 1800 + i * 10, 1, (1, 1, 1), (1, 1, 1), 0))).collect();
        store.write(&old, &[]).await.unwrap();
        store.write(&fresh, &[]).await.unwrap();
        store.downsample(now).await.unwrap();
        store.retain(now, u64::MAX).await.unwrap();
        let rows = store.tier_rows().await.unwrap();
        assert_eq!(rows[0], 10, "{backend}: only the last day in the 10 s tier: {rows:?}");
        assert!(rows[1] >= 2 && rows[2] >= 2, "{backend}: coarser tiers keep the old data: {rows:?}");
        // Over the cap, the oldest data goes first: one step drops the two-day-old buckets only.
        assert!(store.drop_oldest(now).await.unwrap());
        let p = store.points(&[id], Range::last(90 * 86_400, now), now).await.unwrap();
        assert!(!p.is_empty() && p.iter().all(|p| p.ts > now - 86_400), "{backend}: {p:?}");
        // A cap nothing fits under ends with nothing left, not a loop.
        store.retain(now, 1).await.unwrap();
        assert_eq!(store.tier_rows().await.unwrap(), [0, 0, 0], "{backend}");
        assert!(!store.drop_oldest(now).await.unwrap());
    }
}

/// The cap holds on a history of some size: under it afterwards, the newest kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_size_cap_holds() {
    let now = 1_800_000_000;
    for (backend, store, _dir) in stores().await {
        let ids = [
            store.series_id(&web()).await.unwrap(),
            store.series_id(&Series { name: "b".into(), ..web() }).await.unwrap(),
        ];
        // Two series, 20 hours of 10 s buckets.
        for chunk in 0..20 {
            let rows: Vec<(i64, Bucket)> = (0..360)
                .flat_map(|i| {
                    let ts = now - 20 * 3600 + (chunk * 360 + i) * 10;
                    ids.map(|id| (id, bucket(ts, 10, (i, i * 2, i * 3), (ts, ts, ts), i)))
                })
                .collect();
            store.write(&rows, &[]).await.unwrap();
        }
        let before = store.history_bytes().await.unwrap();
        let cap = before / 2;
        let after = store.retain(now, cap).await.unwrap();
        assert!(after <= cap, "{backend}: {after} > {cap} (from {before})");
        let p = store.points(&ids[..1], Range::last(3600, now), now).await.unwrap();
        assert!(p.len() >= 300, "{backend}: the newest hour is kept: {}", p.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_sessions_are_read_back_in_order_and_pruned() {
    for (backend, store, _dir) in stores().await {
        store.revoke_session(&"a".repeat(32), 100).await.unwrap();
        store.revoke_session(&"b".repeat(32), 2_000_000_000).await.unwrap();
        store.revoke_session(&"a".repeat(32), 100).await.unwrap();
        let all = store.revocations_since(0, 10).await.unwrap();
        assert_eq!(all.len(), 2, "{backend}: {all:?}");
        assert!(all[0].0 < all[1].0);
        let later = store.revocations_since(all[0].0, 10).await.unwrap();
        assert_eq!(later.len(), 1);
        assert_eq!(store.prune_revocations(1_000).await.unwrap(), 1, "{backend}");
        assert_eq!(store.revocations_since(0, 10).await.unwrap().len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_reopens_at_its_schema_and_a_newer_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let at = Location::Sqlite(path.clone());
    let store = Store::open(&at).await.unwrap();
    store.revoke_session(&"c".repeat(32), 2_000_000_000).await.unwrap();
    store.close().await;
    let again = Store::open(&at).await.unwrap();
    assert_eq!(again.revocations_since(0, 10).await.unwrap().len(), 1, "kept across a reopen");
    assert!(again.health().reset.is_none());
    again.close().await;
    // A schema from the future: refused with the reason, the file untouched.
    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    sqlx::query("INSERT INTO schema_migrations VALUES (999, 0)").execute(&raw).await.unwrap();
    raw.close().await;
    let e = Store::open(&at).await.err().expect("a newer schema is refused");
    assert!(e.to_string().contains("newer dockward (schema 999)"), "{e}");
    let pg = Location::Postgres(postgres().database());
    Store::open(&pg).await.unwrap().close().await;
    Store::open(&pg).await.expect("PostgreSQL reopens at its schema").close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_file_is_moved_aside_and_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dockward.db");
    std::fs::write(&path, b"this is not a database, it is a damaged file ".repeat(200)).unwrap();
    let store = Store::open(&Location::Sqlite(path.clone())).await.expect("starts anyway");
    let why = store.health().reset.expect("the pages are told");
    assert!(why.contains("integrity check") && why.contains(".corrupt-"), "{why}");
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("dockward.db.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "the damaged file is kept for a post-mortem");
    store.revoke_session(&"d".repeat(32), 2_000_000_000).await.expect("the new one works");
    // A path that cannot be made is a clear error, not a panic.
    let e = Store::open(&Location::Sqlite("/proc/no/such/dir/x.db".into())).await.err().expect("refused");
    assert!(e.to_string().contains("/proc/no/such/dir/x.db"), "{e}");
}

/// Means round the same way on both backends (not truncated by SQLite's
/// integer division), and a bucket without a sample is never written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn means_round_alike_and_empty_buckets_are_not_written() {
    let now = 1_800_000_000;
    let t0 = now - 7_200 - (now - 7_200) % 600;
    for (backend, store, _dir) in stores().await {
        let id = store.series_id(&web()).await.unwrap();
        let mut rows: Vec<(i64, Bucket)> = [1000, 1001, 1001]
            .iter()
            .enumerate()
            .map(|(i, c)| (id, bucket(t0 + i as i64 * 10, 1, (*c, *c, *c), (*c, *c, *c), 0)))
            .collect();
        let mut empty = bucket(t0 + 30, 0, (0, 0, 0), (0, 0, 0), 0);
        empty.cpu = None;
        empty.restarts = 1;
        rows.push((id, empty));
        store.write(&rows, &[]).await.unwrap();
        assert_eq!(store.tier_rows().await.unwrap()[0], 3, "{backend}: the empty bucket is not written");
        store.downsample(now).await.unwrap();
        let p = store.points(&[id], Range { from: t0, to: t0 + 60, step: 60 }, now + 8 * 86_400).await.unwrap();
        assert_eq!(p.len(), 1, "{backend}: {p:?}");
        assert_eq!(p[0].cpu_avg, Some(10.01), "{backend}: 1000.67 rounds to 1001 hundredths");
        assert_eq!(p[0].mem_avg, 1001, "{backend}");
    }
}

/// An app's chart sums its containers' series (only its own, by project).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apps_chart_sums_its_containers() {
    let now = 1_800_000_000;
    let t0 = now - 3_600 - (now - 3_600) % 60;
    for (backend, store, _dir) in stores().await {
        let named = |name: &str| Series { name: name.into(), ..web() };
        let mut ids = Vec::new();
        for (name, cpu, mem) in [("shop/web/1", 1000, 100), ("shop/db/1", 2000, 300), ("shop_x/web/1", 9000, 900)] {
            let id = store.series_id(&named(name)).await.unwrap();
            let m = Mark { ts: t0, kind: "restart".into(), detail: "restarted".into() };
            store.write(&[(id, bucket(t0, 1, (cpu, cpu, cpu), (mem, mem, mem), 5))], &[(id, m)]).await.unwrap();
            ids.push(id);
        }
        let app = store.app_series("h1", "shop").await.unwrap();
        let names: Vec<&str> = app.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names, ["shop/db/1", "shop/web/1"], "{backend}: not shop_x's");
        let app_ids: Vec<i64> = app.iter().map(|(i, _)| *i).collect();
        let range = Range { from: t0, to: t0 + 10, step: 10 };
        let p = store.points(&app_ids, range, now).await.unwrap();
        assert_eq!(p.len(), 1, "{backend}");
        assert_eq!((p[0].cpu_avg, p[0].mem_max, p[0].net_rx_bytes), (Some(30.0), 400, 10), "{backend}: the sum");
        let marks = store.marks(&app_ids, range, true).await.unwrap();
        assert_eq!(marks.len(), 2);
        assert!(marks.iter().any(|m| m.detail == "shop/db/1: restarted"), "{backend}: {marks:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_state_reads_back_alike_on_both_backends() {
    use dockward_frontend::server::store::{AlertConfig, IncidentStep};
    for (backend, store, dir) in stores().await {
        if let Some(d) = &dir {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(d.path().join("dockward.db")).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "the SQLite file (channel secrets) is its owner's only");
        }
        // Defaults once per store, however many replicas start.
        assert!(store.seed_rules_once(&["{\"a\":1}".into()]).await.unwrap(), "{backend}");
        assert!(!store.seed_rules_once(&["{\"a\":1}".into()]).await.unwrap(), "{backend}");
        assert_eq!(store.alert_config(AlertConfig::Rules).await.unwrap().len(), 1, "{backend}");
        let ch = store.add_alert_config(AlertConfig::Channels, "{}").await.unwrap();
        assert!(store.set_alert_config(AlertConfig::Channels, ch, "{\"b\":2}").await.unwrap());
        assert!(!store.set_alert_config(AlertConfig::Channels, ch + 100, "{}").await.unwrap(), "{backend}");
        // An incident: opened with its notification (one transaction), resolved;
        // found again while it may flap; reopened.
        let open = IncidentStep::Open { key: "1/h1/web", started_ms: 1_000, notified: true, body: "{}" };
        let id = store.incident_step(open, "firing", &[(ch, 3_000)], 1_000).await.unwrap();
        assert_eq!(store.firing_count().await.unwrap(), 1);
        let twice = IncidentStep::Open { key: "1/h1/web", started_ms: 1_100, notified: true, body: "{}" };
        assert!(
            store.incident_step(twice, "firing", &[(ch, 3_000)], 1_100).await.is_err(),
            "{backend}: one firing per key"
        );
        assert_eq!(
            store.recent_notifications(10).await.unwrap().len(),
            1,
            "{backend}: nothing of the refused one stays"
        );
        assert!(store.ack_incident(id, "op", 1_500).await.unwrap());
        assert!(!store.ack_incident(id, "op", 1_600).await.unwrap(), "{backend}: acknowledged once");
        store.incident_step(IncidentStep::Resolve { id }, "resolved", &[(ch, 9_000)], 2_000).await.unwrap();
        assert_eq!(store.firing_count().await.unwrap(), 0);
        let prev = store.resolved_since("1/h1/web", 1_900).await.unwrap().expect("resolved lately");
        assert!(prev.notified && prev.resolved_ms == Some(2_000), "{backend}: {prev:?}");
        assert!(store.resolved_since("1/h1/web", 2_001).await.unwrap().is_none());
        store
            .incident_step(IncidentStep::Reopen { id, notified: false, body: "{\"x\":1}" }, "", &[], 2_500)
            .await
            .unwrap();
        let again = store.incident(id).await.unwrap().unwrap();
        assert_eq!(
            (again.state.as_str(), again.flaps, again.resolved_ms, again.notified),
            ("firing", 1, None, false),
            "{backend}"
        );
        // The outbox: due in order, one at a time per incident and channel; a failure tried again later; a failed one retried.
        let due = store.due(10_000, 10).await.unwrap();
        assert_eq!(due.len(), 1, "{backend}: the resolution waits for the firing before it");
        assert_eq!(due[0].event, "firing");
        store.delivered(due[0].id, "pending", 1, 6_000, 5_000, Some("HTTP 500")).await.unwrap();
        assert!(store.due(5_500, 10).await.unwrap().is_empty());
        assert_eq!(store.next_due().await.unwrap(), Some(6_000));
        store.delivered(due[0].id, "failed", 2, 6_000, 6_000, Some("HTTP 500")).await.unwrap();
        // A failed firing is not sent again once its resolution is queued after it…
        assert!(!store.retry_notification(due[0].id, 7_000).await.unwrap(), "{backend}");
        // …the resolution goes in its turn; a failed latest notice is retried.
        let row = store.due(10_000, 10).await.unwrap().remove(0);
        assert_eq!(row.event, "resolved", "{backend}");
        store.delivered(row.id, "failed", 1, 9_000, 9_000, Some("HTTP 502")).await.unwrap();
        assert!(store.retry_notification(row.id, 9_500).await.unwrap(), "{backend}");
        let row = store.due(9_500, 10).await.unwrap().remove(0);
        assert_eq!((row.attempts, row.error.as_deref()), (0, Some("HTTP 502")), "{backend}");
        store.delivered(row.id, "sent", 1, 9_500, 9_600, None).await.unwrap();
        let recent = store.recent_notifications(10).await.unwrap();
        assert_eq!(recent.iter().find(|n| n.id == row.id).unwrap().sent_ms, Some(9_600), "{backend}");
        // Silences end; old state is pruned.
        let s = store.add_silence(50_000, "{}").await.unwrap();
        assert_eq!(store.silences(10_000).await.unwrap().len(), 1);
        assert!(store.end_silence(s, 10_000).await.unwrap());
        assert!(store.silences(10_000).await.unwrap().is_empty());
        store.incident_step(IncidentStep::Notified { id }, "firing", &[(ch, 10_000)], 10_000).await.unwrap();
        assert_eq!(store.due(10_000, 10).await.unwrap().len(), 1, "{backend}");
        store.incident_step(IncidentStep::Resolve { id }, "", &[], 20_000).await.unwrap();
        store.prune_alerts(30_000).await.unwrap();
        assert!(store.incident(id).await.unwrap().is_none(), "{backend}");
        assert_eq!(store.recent_notifications(10).await.unwrap().len(), 1, "{backend}: the pending one stays");
    }
}
