//! History: the recorder, fed by what the fleet already receives (every
//! stats round it reads, every container list), with no extra engine load.
//! It folds samples into 10 s buckets per container (by app and service
//! name, so a recreated container continues its line) and per host, notes
//! restarts, state and health changes and recreates as marks, and writes
//! each bucket a second after it closes (a crash loses the open one: at most
//! about 10 s). In the
//! background it folds buckets into the coarser tiers and keeps the store
//! under its size cap. The pages that read it are in `page.rs`.

pub mod page;

use std::collections::HashMap;
use std::time::Duration;

use shared::{ContainerState, ContainerSummary, Health, StatsSample};
use tokio::sync::mpsc;

use super::store::{Bucket, Mark, Series, SeriesKind, Store, StoreError};

/// Width of the finest bucket, seconds.
pub const STEP_S: i64 = 10;
/// How often coarser tiers are folded.
const FOLD_EVERY: Duration = Duration::from_secs(60);
/// How often old data is dropped and the size cap checked.
const RETAIN_EVERY: Duration = Duration::from_secs(600);
/// A container name unseen this long is forgotten (a recreate is a new id
/// under the same name within it).
const FORGET_AFTER_S: i64 = 600;
/// Inputs waiting for the recorder; past it new ones are dropped (and counted).
const QUEUE: usize = 256;
/// Longest series name kept (app/service/number or a container name).
const NAME_MAX: usize = 256;
/// Longest mark text.
const DETAIL_MAX: usize = 200;

/// A container as history needs it, from a list.
#[derive(Debug, Clone)]
pub struct Seen {
    pub id: String,
    pub name: String,
    pub state: String,
    pub health: String,
    pub restarts: i64,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
}

/// One container's figures from a stats round.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    pub cpu: Option<f64>,
    pub mem: u64,
    pub net: (u64, u64),
    pub blk: (u64, u64),
}

enum Input {
    Containers {
        host: String,
        list: Vec<Seen>,
        at: i64,
    },
    Stats {
        host: String,
        samples: Vec<(String, Figures)>,
        at: i64,
    },
    /// Write everything, the open buckets too (the console is stopping).
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The name a container's history goes under: `project/service/number`
/// for a compose container (its line continues across recreates), else its name.
pub fn series_name(c: &ContainerSummary) -> String {
    // A one-off (`docker compose run`) is not the service's replica: its own name.
    let oneoff = c.labels.get("com.docker.compose.oneoff").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let name = match (&c.compose_project, &c.compose_service) {
        (Some(p), Some(s)) if !oneoff => {
            let n = c.labels.get("com.docker.compose.container-number").map_or("1", String::as_str);
            format!("{p}/{s}/{n}")
        }
        _ => c.name.clone(),
    };
    truncate(name, NAME_MAX)
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

fn state_word(s: &ContainerState) -> String {
    serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_else(|| format!("{s:?}"))
}

fn health_word(h: &Health) -> String {
    serde_json::to_value(h).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_else(|| format!("{h:?}"))
}

/// The fleet's handle: cheap to clone, never blocks.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Input>,
    dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Whether this console writes history: with replicas on one PostgreSQL
/// store, only the one that leads (the alerts' lock, `alerts/leader.rs`), so
/// marks are not written once per replica; the others keep their books and
/// discard them. A SQLite store's one console always leads.
pub type Leading = std::sync::Arc<std::sync::atomic::AtomicBool>;

impl Recorder {
    /// Starts the recorder on `store`; `cap_bytes` bounds the history; it
    /// writes while `leading` says so.
    pub fn start(store: Store, cap_bytes: u64, leading: Leading) -> Recorder {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, cap_bytes, rx, leading));
        Recorder { tx, dropped: Default::default() }
    }

    fn send(&self, input: Input) {
        if self.tx.try_send(input).is_err() {
            let n = self.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if n.is_multiple_of(100) {
                tracing::warn!(dropped = n + 1, "history is behind: an input was dropped");
            }
        }
    }

    /// Writes every bucket, the open ones too; waits (at most 10 s) until written.
    pub async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.tx.send(Input::Flush(tx)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(10), rx).await;
        }
    }

    pub fn containers(&self, host: &str, list: &[ContainerSummary]) {
        let list = list
            .iter()
            .map(|c| Seen {
                id: c.id.clone(),
                name: series_name(c),
                state: state_word(&c.state),
                health: health_word(&c.health),
                restarts: c.restart_count,
                exit_code: c.exit_code,
                oom_killed: c.oom_killed,
            })
            .collect();
        self.send(Input::Containers { host: host.to_owned(), list, at: now_s() });
    }

    pub fn stats(&self, host: &str, samples: &[StatsSample]) {
        let samples = samples
            .iter()
            .map(|s| {
                let f = Figures {
                    cpu: s.cpu_percent,
                    mem: s.memory_bytes,
                    net: (s.net_rx_bytes, s.net_tx_bytes),
                    blk: (s.block_read_bytes, s.block_write_bytes),
                };
                (s.id.clone(), f)
            })
            .collect();
        self.send(Input::Stats { host: host.to_owned(), samples, at: now_s() });
    }
}

fn now_s() -> i64 {
    super::store::now_s() as i64
}

/// A bucket being filled.
#[derive(Debug, Clone, Default)]
struct Acc {
    ts: i64,
    n: i64,
    cpu_n: i64,
    cpu_sum: f64,
    cpu_min: f64,
    cpu_max: f64,
    mem_sum: u128,
    mem_min: u64,
    mem_max: u64,
    net_rx: u64,
    net_tx: u64,
    blk_r: u64,
    blk_w: u64,
    restarts: i64,
}

impl Acc {
    fn new(ts: i64) -> Acc {
        Acc { ts, cpu_min: f64::MAX, mem_min: u64::MAX, ..Acc::default() }
    }

    fn add(&mut self, cpu: Option<f64>, mem: u64) {
        self.n += 1;
        if let Some(c) = cpu.filter(|c| c.is_finite() && *c >= 0.0) {
            self.cpu_n += 1;
            self.cpu_sum += c;
            self.cpu_min = self.cpu_min.min(c);
            self.cpu_max = self.cpu_max.max(c);
        }
        self.mem_sum += u128::from(mem);
        self.mem_min = self.mem_min.min(mem);
        self.mem_max = self.mem_max.max(mem);
    }

    fn bucket(&self) -> Bucket {
        let centi = |p: f64| (p * 100.0).round().clamp(0.0, i64::MAX as f64) as i64;
        let big = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let n = self.n.max(1);
        Bucket {
            ts: self.ts,
            n: self.n,
            cpu: (self.cpu_n > 0)
                .then(|| (centi(self.cpu_min), centi(self.cpu_sum / self.cpu_n as f64), centi(self.cpu_max))),
            mem: if self.n > 0 {
                (big(self.mem_min), big((self.mem_sum / n as u128) as u64), big(self.mem_max))
            } else {
                (0, 0, 0)
            },
            net_rx: big(self.net_rx),
            net_tx: big(self.net_tx),
            blk_r: big(self.blk_r),
            blk_w: big(self.blk_w),
            restarts: self.restarts,
        }
    }
}

/// What is known of one container name on a host.
struct Known {
    id: String,
    state: String,
    health: String,
    restarts: i64,
    seen: i64,
}

#[derive(Default)]
struct HostBook {
    /// Container id → its series name, from the last list.
    names: HashMap<String, String>,
    known: HashMap<String, Known>,
    /// Container id → the counters of its last sample (network rx/tx, block
    /// read/write): by id, so two containers under one name never mix.
    counters: HashMap<String, [u64; 4]>,
}

/// Closed buckets and marks, by series, to be written.
pub(crate) type Batch = (Vec<(Series, Bucket)>, Vec<(Series, Mark)>);

/// The recorder's state: pure (no I/O), so it is tested without a store.
#[derive(Default)]
pub(crate) struct Book {
    hosts: HashMap<String, HostBook>,
    open: HashMap<Series, Acc>,
    closed: Vec<(Series, Acc)>,
    marks: Vec<(Series, Mark)>,
}

fn container(host: &str, name: &str) -> Series {
    Series { host: host.to_owned(), name: name.to_owned(), kind: SeriesKind::Container }
}

fn host_series(host: &str) -> Series {
    Series { host: host.to_owned(), name: String::new(), kind: SeriesKind::Host }
}

impl Book {
    fn mark(&mut self, s: Series, ts: i64, kind: &str, detail: String) {
        self.marks.push((s, Mark { ts, kind: kind.to_owned(), detail: truncate(detail, DETAIL_MAX) }));
    }

    fn acc(&mut self, s: Series, ts: i64) -> &mut Acc {
        let bucket = ts - ts.rem_euclid(STEP_S);
        let acc = self.open.entry(s.clone()).or_insert_with(|| Acc::new(bucket));
        if acc.ts < bucket {
            let done = std::mem::replace(acc, Acc::new(bucket));
            if done.n > 0 {
                self.closed.push((s, done));
            } else {
                // No sample in it (a restart seen between rounds): counted in the next bucket.
                acc.restarts += done.restarts;
            }
        }
        acc
    }

    pub(crate) fn containers(&mut self, host: &str, list: Vec<Seen>, at: i64) {
        let mut marks = Vec::new();
        let mut restarts = Vec::new();
        let book = self.hosts.entry(host.to_owned()).or_default();
        book.names = list.iter().map(|c| (c.id.clone(), c.name.clone())).collect();
        for c in list {
            match book.known.get_mut(&c.name) {
                None => {
                    book.known.insert(
                        c.name.clone(),
                        Known { id: c.id, state: c.state, health: c.health, restarts: c.restarts, seen: at },
                    );
                }
                Some(k) => {
                    k.seen = at;
                    if k.id != c.id {
                        marks.push((c.name.clone(), "recreate", format!("recreated: new container {}", short(&c.id))));
                        *k = Known { id: c.id, state: c.state, health: c.health, restarts: c.restarts, seen: at };
                        continue;
                    }
                    if c.restarts > k.restarts {
                        let n = c.restarts - k.restarts;
                        marks.push((c.name.clone(), "restart", format!("restarted (restart count {})", c.restarts)));
                        restarts.push((c.name.clone(), n));
                    }
                    k.restarts = c.restarts;
                    if k.state != c.state {
                        let mut detail = format!("{} → {}", k.state, c.state);
                        if c.state != "running" {
                            if let Some(code) = c.exit_code {
                                detail.push_str(&format!(" (exit code {code})"));
                            }
                            if c.oom_killed {
                                detail.push_str(" (out of memory)");
                            }
                        }
                        marks.push((c.name.clone(), "state", detail));
                        k.state = c.state;
                    }
                    if k.health != c.health {
                        marks.push((c.name.clone(), "health", format!("{} → {}", k.health, c.health)));
                        k.health = c.health;
                    }
                }
            }
        }
        book.known.retain(|_, k| at - k.seen <= FORGET_AFTER_S);
        let names = &book.names;
        book.counters.retain(|id, _| names.contains_key(id));
        for (name, kind, detail) in marks {
            self.mark(container(host, &name), at, kind, detail);
        }
        for (name, n) in restarts {
            self.acc(container(host, &name), at).restarts += n;
        }
    }

    pub(crate) fn stats(&mut self, host: &str, samples: Vec<(String, Figures)>, at: i64) {
        let Some(book) = self.hosts.get_mut(host) else { return };
        let mut rows = Vec::with_capacity(samples.len());
        let (mut cpu_total, mut any_cpu, mut mem_total) = (0.0, false, 0u64);
        let mut moved_total = [0u64; 4];
        for (id, f) in samples {
            let Some(name) = book.names.get(&id) else { continue };
            let now = [f.net.0, f.net.1, f.blk.0, f.blk.1];
            // Bytes moved since the last sample; a counter that went back started again
            // (a restart), and a new container's first sample moved nothing yet.
            let moved = match book.counters.insert(id, now) {
                Some(prev) => std::array::from_fn(|i| if now[i] >= prev[i] { now[i] - prev[i] } else { now[i] }),
                None => [0; 4],
            };
            if let Some(c) = f.cpu {
                cpu_total += c;
                any_cpu = true;
            }
            mem_total = mem_total.saturating_add(f.mem);
            for i in 0..4 {
                moved_total[i] = moved_total[i].saturating_add(moved[i]);
            }
            rows.push((name.clone(), f, moved));
        }
        if rows.is_empty() {
            return;
        }
        for (name, f, moved) in rows {
            add(self.acc(container(host, &name), at), f.cpu, f.mem, moved);
        }
        add(self.acc(host_series(host), at), any_cpu.then_some(cpu_total), mem_total, moved_total);
    }

    /// The buckets closed before `now`'s, and the marks, to be written.
    pub(crate) fn take(&mut self, now: i64) -> Batch {
        let current = now - now.rem_euclid(STEP_S);
        let stale: Vec<Series> =
            self.open.iter().filter(|(_, a)| a.ts < current && a.n > 0).map(|(s, _)| s.clone()).collect();
        for s in stale {
            if let Some(a) = self.open.remove(&s) {
                self.closed.push((s, a));
            }
        }
        // Buckets with no sample are never written (their restarts wait for one); a
        // container gone for good leaves them here until it is forgotten.
        self.open.retain(|_, a| a.n > 0 || now - a.ts <= FORGET_AFTER_S);
        let buckets = self.closed.drain(..).map(|(s, a)| (s, a.bucket())).collect();
        (buckets, std::mem::take(&mut self.marks))
    }
}

fn add(acc: &mut Acc, cpu: Option<f64>, mem: u64, moved: [u64; 4]) {
    acc.add(cpu, mem);
    acc.net_rx = acc.net_rx.saturating_add(moved[0]);
    acc.net_tx = acc.net_tx.saturating_add(moved[1]);
    acc.blk_r = acc.blk_r.saturating_add(moved[2]);
    acc.blk_w = acc.blk_w.saturating_add(moved[3]);
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

async fn run(store: Store, cap_bytes: u64, mut rx: mpsc::Receiver<Input>, leading: Leading) {
    let leads = || leading.load(std::sync::atomic::Ordering::Relaxed);
    let mut book = Book::default();
    let mut ids: HashMap<Series, i64> = HashMap::new();
    // Each bucket is written a second after it closes: a crash loses the open one, at most 10 s.
    let phase = Duration::from_millis((STEP_S * 1000 - (super::store::now_ms() % (STEP_S * 1000)) + 1000) as u64);
    let mut flush = tokio::time::interval_at(tokio::time::Instant::now() + phase, Duration::from_secs(STEP_S as u64));
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut fold = tokio::time::interval(FOLD_EVERY);
    fold.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut retain = tokio::time::interval(RETAIN_EVERY);
    retain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            input = rx.recv() => match input {
                Some(Input::Containers { host, list, at }) => book.containers(&host, list, at),
                Some(Input::Stats { host, samples, at }) => book.stats(&host, samples, at),
                Some(Input::Flush(done)) => {
                    let (buckets, marks) = book.take(i64::MAX / 2);
                    if !leads() {
                        let _ = done.send(());
                        continue;
                    }
                    if let Err(e) = write(&store, &mut ids, buckets, marks).await {
                        log_failure("writing history at shutdown", &e);
                    }
                    let _ = done.send(());
                }
                None => break,
            },
            _ = flush.tick() => {
                let (buckets, marks) = book.take(now_s());
                if !leads() {
                    continue;
                }
                if let Err(e) = write(&store, &mut ids, buckets, marks).await {
                    log_failure("writing history", &e);
                }
            }
            _ = fold.tick() => {
                // What is closed goes in first: a fold never runs ahead of a pending write.
                let (buckets, marks) = book.take(now_s());
                if !leads() {
                    continue;
                }
                if let Err(e) = write(&store, &mut ids, buckets, marks).await {
                    log_failure("writing history", &e);
                }
                if let Err(e) = store.downsample(now_s()).await {
                    log_failure("folding history into coarser tiers", &e);
                }
            }
            _ = retain.tick() => {
                // Series may be deleted (nothing left of them): their ids are looked up again.
                ids.clear();
                if !leads() {
                    continue;
                }
                match store.retain(now_s(), cap_bytes).await {
                    Ok(bytes) => tracing::debug!(bytes, "history size"),
                    Err(e) => log_failure("dropping old history", &e),
                }
            }
        }
    }
}

fn log_failure(what: &str, e: &StoreError) {
    match e {
        // Said once by the store's health; the pages show it.
        StoreError::ReadOnly | StoreError::Full => tracing::debug!(error = %e, "{what}"),
        _ => tracing::warn!(error = %e, "{what} failed"),
    }
}

async fn write(
    store: &Store,
    ids: &mut HashMap<Series, i64>,
    buckets: Vec<(Series, Bucket)>,
    marks: Vec<(Series, Mark)>,
) -> Result<(), StoreError> {
    if buckets.is_empty() && marks.is_empty() {
        return Ok(());
    }
    if !store.writable() {
        return Err(StoreError::ReadOnly);
    }
    let mut rows = Vec::with_capacity(buckets.len());
    for (s, b) in buckets {
        rows.push((id_of(store, ids, &s).await?, b));
    }
    let mut ms = Vec::with_capacity(marks.len());
    for (s, m) in marks {
        ms.push((id_of(store, ids, &s).await?, m));
    }
    store.write(&rows, &ms).await
}

async fn id_of(store: &Store, ids: &mut HashMap<Series, i64>, s: &Series) -> Result<i64, StoreError> {
    if let Some(id) = ids.get(s) {
        return Ok(*id);
    }
    let id = store.series_id(s).await?;
    ids.insert(s.clone(), id);
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(id: &str, name: &str, state: &str, restarts: i64) -> Seen {
        Seen {
            id: id.into(),
            name: name.into(),
            state: state.into(),
            health: "none".into(),
            restarts,
            exit_code: None,
            oom_killed: false,
        }
    }

    fn figures(cpu: f64, mem: u64, rx: u64) -> Figures {
        Figures { cpu: Some(cpu), mem, net: (rx, 0), blk: (0, 0) }
    }

    #[test]
    fn samples_fold_into_ten_second_buckets_with_min_mean_max() {
        let mut b = Book::default();
        b.containers("h", vec![seen("a1", "shop/web/1", "running", 0)], 1000);
        for (t, cpu, mem, rx) in [(1000, 10.0, 100, 1000), (1003, 30.0, 300, 1500), (1009, 20.0, 200, 1700)] {
            b.stats("h", vec![("a1".into(), figures(cpu, mem, rx))], t);
        }
        // The next bucket opens; the first is closed.
        b.stats("h", vec![("a1".into(), figures(50.0, 500, 100))], 1010);
        let (buckets, marks) = b.take(1015);
        assert!(marks.is_empty());
        let web: Vec<&Bucket> = buckets.iter().filter(|(s, _)| s.name == "shop/web/1").map(|(_, b)| b).collect();
        assert_eq!(web.len(), 1);
        let w = web[0];
        assert_eq!((w.ts, w.n), (1000, 3));
        assert_eq!(w.cpu, Some((1000, 2000, 3000)));
        assert_eq!(w.mem, (100, 200, 300));
        assert_eq!(w.net_rx, 700, "bytes moved within the bucket: 1000 → 1700");
        let host: Vec<&Bucket> = buckets.iter().filter(|(s, _)| s.kind == SeriesKind::Host).map(|(_, b)| b).collect();
        assert_eq!(host[0].mem, (100, 200, 300));
        // The counter went back (a restart): the new value is what moved.
        let (later, _) = b.take(1020);
        assert_eq!(later.iter().find(|(s, _)| s.name == "shop/web/1").unwrap().1.net_rx, 100);
    }

    #[test]
    fn restarts_state_health_and_recreates_are_marked() {
        let mut b = Book::default();
        b.containers("h", vec![seen("a1", "shop/db/1", "running", 0)], 100);
        b.containers("h", vec![seen("a1", "shop/db/1", "running", 2)], 110);
        let mut exited = seen("a1", "shop/db/1", "exited", 2);
        exited.exit_code = Some(137);
        exited.oom_killed = true;
        b.containers("h", vec![exited], 120);
        let mut sick = seen("b2", "shop/db/1", "running", 0);
        b.containers("h", vec![sick.clone()], 130);
        sick.health = "unhealthy".into();
        b.containers("h", vec![sick], 140);
        // The restarts were seen between rounds: counted in the next bucket with a sample.
        let (none, marks) = b.take(145);
        assert!(none.is_empty(), "no bucket without a sample");
        b.stats("h", vec![("b2".into(), figures(1.0, 10, 0))], 150);
        let (buckets, _) = b.take(200);
        let kinds: Vec<(&str, &str)> = marks.iter().map(|(_, m)| (m.kind.as_str(), m.detail.as_str())).collect();
        assert_eq!(
            kinds,
            vec![
                ("restart", "restarted (restart count 2)"),
                ("state", "running → exited (exit code 137) (out of memory)"),
                ("recreate", "recreated: new container b2"),
                ("health", "none → unhealthy"),
            ]
        );
        let db: Vec<&Bucket> = buckets.iter().filter(|(s, _)| s.name == "shop/db/1").map(|(_, b)| b).collect();
        assert_eq!(db.len(), 1);
        assert_eq!((db[0].ts, db[0].n, db[0].restarts), (150, 1, 2));
    }

    #[test]
    fn unknown_containers_and_hosts_record_nothing() {
        let mut b = Book::default();
        b.stats("nowhere", vec![("x".into(), figures(1.0, 1, 1))], 10);
        b.containers("h", vec![], 10);
        b.stats("h", vec![("x".into(), figures(1.0, 1, 1))], 10);
        assert!(b.take(100).0.is_empty());
    }

    #[test]
    fn names_follow_compose_apps_and_are_bounded() {
        let mut c: ContainerSummary = serde_json::from_value(serde_json::json!({
            "id": "x", "name": "shop-web-2", "image": "i", "image_id": "", "state": "running", "status": "",
            "health": "none", "created": 0, "started_at": null, "finished_at": null, "restart_count": 0,
            "restart_policy": "no", "compose_project": "shop", "compose_service": "web", "ports": [],
            "networks": [], "mounts": [], "labels": {"com.docker.compose.container-number": "2"}, "protected": false,
            "stats": null
        }))
        .unwrap();
        assert_eq!(series_name(&c), "shop/web/2");
        c.compose_project = None;
        assert_eq!(series_name(&c), "shop-web-2");
        c.name = "é".repeat(300);
        assert!(series_name(&c).len() <= NAME_MAX);
    }
}
