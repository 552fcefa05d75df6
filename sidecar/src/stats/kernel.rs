//! The kernel source's rounds: where each running container's counters are
//! (asked of the engine once per container, dropped on its lifecycle events),
//! and one read of them all per round, off the async workers. Containers whose
//! cgroup cannot be found or read are handed back for the engine to answer,
//! with the reason.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::StreamExt;
use shared::StatsSample;

use super::cgroup::{self, Counter, Counters, Driver, Hierarchy};
use crate::docker::Engine;

/// Containers located at once (each an inspect, cached).
const LOCATE_CONCURRENCY: usize = 16;
/// The longest a container whose cgroup could not be located waits before it is tried again.
const RETRY_LOCATE: std::time::Duration = std::time::Duration::from_secs(60);
/// The shortest interval a CPU % is computed over (CFS throttles in 100 ms periods).
const MIN_CPU_INTERVAL_NS: u64 = 500_000_000;

/// What the engine says of the host once: how it places containers, and
/// what "no limit" means in its own figures.
#[derive(Debug, Clone, Copy)]
struct Facts {
    driver: Driver,
    /// The engine reports this as the limit of a container with none.
    mem_total: u64,
    cpus: u32,
}

/// Why a container could not be located: in words for `/healthz`, and whole for the log.
type LocateError = (&'static str, String);

/// A container's last CPU reading `(cpu ns, wall ns)` and the CPU % it gave.
type CpuBase = (u64, u64, Option<f64>);

/// Where a container's network counters come from.
#[derive(Debug)]
enum Net {
    /// Its network namespace's `/proc/<pid>/net/dev`, through the host's `/proc`.
    Namespace(Counter),
    /// The engine's stats, at the slow network cadence.
    Engine,
    /// Host or no networking: the engine reports no networks for these.
    Nothing,
}

#[derive(Debug)]
struct Located {
    counters: Counters,
    /// At most this many cores (its quota, else the host's CPUs).
    cap_cpus: f64,
    net: Net,
}

/// A running container the round tracks: its id and network mode (from the list).
#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub network_mode: String,
}

/// What a round produced.
pub struct KernelRound {
    pub samples: Vec<StatsSample>,
    /// Ids the kernel could not answer for, for the engine.
    pub fallback: Vec<String>,
    /// Why the first of them could not be read, in words that name no path.
    pub why: Option<&'static str>,
    /// How many containers were read from their cgroup.
    pub read: usize,
}

pub struct Kernel {
    pub hierarchy: Hierarchy,
    /// The host's `/proc`, when given and readable.
    proc_root: Option<PathBuf>,
    facts: tokio::sync::Mutex<Option<Facts>>,
    located: Mutex<HashMap<String, Arc<Located>>>,
    /// The last `(cpu ns, wall ns)` reading per container, for CPU deltas,
    /// and the CPU % it gave.
    prev: Mutex<HashMap<String, CpuBase>>,
    /// Network counters the engine last gave, per container (when not from `/proc`).
    net_engine: Mutex<HashMap<String, (u64, u64)>>,
    /// The last network counters shown per container, kept when a read fails.
    last_net: Mutex<HashMap<String, (u64, u64)>>,
    /// Containers that could not be located: when to try again, how many
    /// tries failed, and why (in words). The wait doubles from 2 s up to
    /// [`RETRY_LOCATE`]; a lifecycle event ends it.
    failed: Mutex<HashMap<String, (Instant, u32, &'static str)>>,
    /// Bumped by every forget: a locate that began before a lifecycle event
    /// may have seen the old cgroup (or none, in a restart's gap), so its
    /// result, found or failed, is dropped and the next round locates afresh.
    forgets: AtomicU64,
    epoch: Instant,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Kernel {
    pub fn new(hierarchy: Hierarchy, proc_root: Option<PathBuf>) -> Self {
        cgroup::init_descriptor_budget();
        Self {
            hierarchy,
            proc_root,
            facts: tokio::sync::Mutex::new(None),
            located: Mutex::default(),
            prev: Mutex::default(),
            net_engine: Mutex::default(),
            last_net: Mutex::default(),
            failed: Mutex::default(),
            forgets: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Whether network counters come from the namespaces (the host's `/proc` was given).
    pub fn net_from_proc(&self) -> bool {
        self.proc_root.is_some()
    }

    /// Forgets where a container's counters are (its lifecycle changed: a
    /// restart gives it a new process, a removal frees its id).
    pub fn forget(&self, id: &str) {
        self.forgets.fetch_add(1, Ordering::SeqCst);
        lock(&self.located).remove(id);
        lock(&self.failed).remove(id);
        // A new cgroup's counter starts again: no delta across the two.
        lock(&self.prev).remove(id);
    }

    pub fn forget_all(&self) {
        self.forgets.fetch_add(1, Ordering::SeqCst);
        lock(&self.located).clear();
        lock(&self.failed).clear();
        lock(&self.prev).clear();
    }

    async fn facts(&self, engine: &Engine) -> Option<Facts> {
        let mut slot = self.facts.lock().await;
        if slot.is_none() {
            let info = engine.timed("info", engine.client().info()).await.ok()?;
            let driver = Driver::from_info(&info.cgroup_driver.map(|d| d.to_string()).unwrap_or_default());
            *slot = Some(Facts {
                driver,
                mem_total: info.mem_total.unwrap_or(0).max(0) as u64,
                cpus: info.ncpu.unwrap_or(1).clamp(1, 65_536) as u32,
            });
        }
        *slot
    }

    /// Ids whose network counters the engine must give (`net_loop`).
    pub fn engine_net_ids(&self) -> Vec<String> {
        lock(&self.located).iter().filter(|(_, l)| matches!(l.net, Net::Engine)).map(|(id, _)| id.clone()).collect()
    }

    pub fn set_engine_net(&self, counters: HashMap<String, (u64, u64)>) {
        *lock(&self.net_engine) = counters;
    }

    /// One round over `rows`.
    pub async fn round(&self, engine: &Engine, reader: &Reader, rows: &[Row]) -> KernelRound {
        let Some(facts) = self.facts(engine).await else {
            return KernelRound {
                samples: Vec::new(),
                fallback: rows.iter().map(|r| r.id.clone()).collect(),
                why: Some("the engine's /info (its cgroup driver) could not be read"),
                read: 0,
            };
        };
        let mut why: Option<&'static str> = None;
        let mut fallback = Vec::new();
        // Locate the newcomers (not those that failed lately: the engine answers for them).
        let newcomers: Vec<Row> = {
            let located = lock(&self.located);
            let mut failed = lock(&self.failed);
            let now = Instant::now();
            let mut out = Vec::new();
            for r in rows.iter().filter(|r| !located.contains_key(&r.id)) {
                match failed.get(&r.id) {
                    Some((until, _, w)) if *until > now => {
                        why.get_or_insert(w);
                        fallback.push(r.id.clone());
                    }
                    _ => out.push(r.clone()),
                }
            }
            if !failed.is_empty() {
                let running: std::collections::HashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
                failed.retain(|id, _| running.contains(id.as_str()));
            }
            out
        };
        let generation = self.forgets.load(Ordering::SeqCst);
        let found: Vec<(String, Result<Arc<Located>, LocateError>)> = futures_util::stream::iter(newcomers)
            .map(|row: Row| async move {
                let r = self.locate(engine, &row, facts).await;
                (row.id, r)
            })
            .buffer_unordered(LOCATE_CONCURRENCY)
            .collect()
            .await;
        {
            let mut located = lock(&self.located);
            // A lifecycle event while locating: these results may be of the old process.
            let stale = self.forgets.load(Ordering::SeqCst) != generation;
            for (id, r) in found {
                match r {
                    _ if stale => fallback.push(id),
                    Ok(l) => {
                        located.insert(id, l);
                    }
                    Err((kind, e)) => {
                        tracing::info!(container = %id, error = %e, "stats: cgroup not located; the engine answers for it");
                        why.get_or_insert(kind);
                        let mut failed = lock(&self.failed);
                        let tries = failed.get(&id).map_or(0, |f| f.1).saturating_add(1);
                        let wait =
                            (std::time::Duration::from_secs(1) * 2u32.saturating_pow(tries.min(6))).min(RETRY_LOCATE);
                        failed.insert(id.clone(), (Instant::now() + wait, tries, kind));
                        fallback.push(id);
                    }
                }
            }
        }
        // Read every located one, off the async workers.
        let jobs: Vec<(String, Arc<Located>)> = {
            let located = lock(&self.located);
            rows.iter().filter_map(|r| Some((r.id.clone(), located.get(&r.id)?.clone()))).collect()
        };
        let epoch = self.epoch;
        let read = reader
            .run(move |buf| {
                jobs.into_iter()
                    .map(|(id, l)| {
                        let r = l.counters.read(buf).map_err(|e| (e.kind(), e.to_string()));
                        let wall = epoch.elapsed().as_nanos() as u64;
                        let net = match &l.net {
                            Net::Namespace(c) => c.read(buf, |t| cgroup::parse::net_dev("net/dev", t)).ok(),
                            _ => None,
                        };
                        (id, l, r, wall, net)
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
        let now = super::now_ms();
        let mut samples = Vec::with_capacity(read.len());
        let mut prev = lock(&self.prev);
        let net_engine = lock(&self.net_engine);
        let mut last_net = lock(&self.last_net);
        let mut next_net = HashMap::with_capacity(read.len());
        let mut next_prev = HashMap::with_capacity(read.len());
        for (id, l, r, wall, net) in read {
            let reading = match r {
                Ok(reading) => reading,
                Err((kind, e)) => {
                    // Gone since it was listed, or unreadable: the engine answers (or says it is gone).
                    tracing::debug!(container = %id, error = %e, "stats: counters not read; the engine answers for it");
                    why.get_or_insert(kind);
                    fallback.push(id.clone());
                    lock(&self.located).remove(&id);
                    continue;
                }
            };
            // A delta over a few milliseconds says more about the CFS period than the
            // container (a round woken by a request right after another): below
            // MIN_CPU_INTERVAL the base is kept and the last figure stands.
            let (cpu_percent, base) = match prev.get(&id) {
                Some(&(cpu, at, last)) if wall.saturating_sub(at) < MIN_CPU_INTERVAL_NS => (last, (cpu, at, last)),
                Some(&(cpu, at, _)) => {
                    let p = cgroup::cpu_percent((cpu, at), (reading.cpu_ns, wall), l.cap_cpus);
                    (p, (reading.cpu_ns, wall, p))
                }
                None => (None, (reading.cpu_ns, wall, None)),
            };
            next_prev.insert(id.clone(), base);
            // Unknown this round (a failed read, a newcomer the engine has not been asked
            // about yet): the last figure shown stands rather than a drop to zero.
            let known = match &l.net {
                Net::Namespace(_) => net,
                Net::Engine => net_engine.get(&id).copied(),
                Net::Nothing => Some((0, 0)),
            };
            let (rx, tx) = known.or_else(|| last_net.get(&id).copied()).unwrap_or((0, 0));
            next_net.insert(id.clone(), (rx, tx));
            let limit = match (reading.memory_limit, facts.mem_total) {
                (Some(l), 0) => l,
                (Some(l), total) => l.min(total),
                (None, total) => total,
            };
            samples.push(StatsSample {
                id,
                time_ms: now,
                cpu_percent,
                memory_bytes: reading.memory,
                memory_limit_bytes: limit,
                net_rx_bytes: rx,
                net_tx_bytes: tx,
                block_read_bytes: reading.block_read,
                block_write_bytes: reading.block_write,
                pids: reading.pids,
            });
        }
        *prev = next_prev;
        *last_net = next_net;
        let read = samples.len();
        KernelRound { samples, fallback, why, read }
    }

    /// Where one container's counters are: its cgroup (by its process's
    /// `/proc/<pid>/cgroup` when the host's `/proc` is given and that process
    /// is the container's, else by the driver's rule) and its network counters.
    async fn locate(&self, engine: &Engine, row: &Row, facts: Facts) -> Result<Arc<Located>, LocateError> {
        // Not through the inspect cache: a thousand containers' inspects would stay in memory.
        let inspect = engine
            .inspect_uncached(&row.id)
            .await
            .map_err(|e| ("the engine's inspect failed", format!("inspect failed: {e}")))?;
        let pid = inspect.state.as_ref().and_then(|s| s.pid).filter(|p| *p > 0);
        let parent = inspect.host_config.as_ref().and_then(|h| h.cgroup_parent.clone()).unwrap_or_default();
        let (hierarchy, proc_root, id) = (self.hierarchy.clone(), self.proc_root.clone(), row.id.clone());
        let mode = row.network_mode.clone();
        let cpus = f64::from(facts.cpus);
        tokio::task::spawn_blocking(move || {
            let proc_text = match (&proc_root, pid) {
                (Some(root), Some(pid)) => own_process(root, pid, &id),
                _ => None,
            };
            let cg = hierarchy
                .locate(&id, &parent, facts.driver, proc_text.as_deref())
                .map_err(|e| (e.kind(), e.to_string()))?;
            let cap_cpus = cg.cpu_quota(&hierarchy.root).map_or(cpus, |q| q.min(cpus));
            let net = if mode == "host" || mode == "none" {
                Net::Nothing
            } else {
                match (&proc_root, pid, &proc_text) {
                    (Some(root), Some(pid), Some(_)) => {
                        Net::Namespace(Counter::open(root.join(pid.to_string()).join("net/dev")))
                    }
                    _ => Net::Engine,
                }
            };
            Ok(Arc::new(Located { counters: cg.open(), cap_cpus, net }))
        })
        .await
        .map_err(|e| ("locating failed", format!("locating failed: {e}")))?
    }
}

/// `<proc>/<pid>/cgroup`, if that process is the container's: a `/proc` of
/// another PID namespace (the sidecar's own, say) names another process by
/// the same number, and is not trusted for its counters.
fn own_process(proc_root: &Path, pid: i64, id: &str) -> Option<String> {
    let mut buf = Vec::new();
    let text =
        cgroup::read_with(&proc_root.join(pid.to_string()).join("cgroup"), &mut buf, |t| Ok(t.to_owned())).ok()?;
    let ours = cgroup::parse::proc_cgroup(&text).iter().any(|(_, path)| cgroup::container_part(path, id).is_some());
    ours.then_some(text)
}

type Job = Box<dyn FnOnce(&mut Vec<u8>) + Send>;

/// The thread a round's work runs on (reading the counter files,
/// serialising the snapshot): one, long-lived, at a lower CPU priority
/// (nice 10), so that a round over a thousand containers never delays the
/// answers being served meanwhile. It keeps one read buffer.
pub struct Reader {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Reader {
    pub fn start() -> Self {
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new().name("stats-reader".into()).spawn(move || {
            // SAFETY: setpriority with who = 0 changes the calling thread's nice value only.
            unsafe {
                libc::setpriority(libc::PRIO_PROCESS, 0, 10);
            }
            let mut buf = Vec::with_capacity(16 * 1024);
            while let Ok(job) = rx.recv() {
                // A job that panics loses its round (its caller sees `None`), not the thread.
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut buf))).is_err() {
                    buf = Vec::with_capacity(16 * 1024);
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the stats reader thread; rounds will read nothing");
        }
        Self { jobs }
    }

    /// Runs `f` on the reader thread; `None` if the thread is gone.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce(&mut Vec<u8>) -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |buf| {
            let _ = tx.send(f(buf));
        });
        self.jobs.send(job).ok()?;
        rx.await.ok()
    }
}
