//! Stats from the kernel's own counters: each container's cgroup files (CPU,
//! memory, pids, block I/O) and, given the host's `/proc`, its network
//! namespace's interface counters. The engine is asked once per container
//! where its cgroup is (inspect, cached; dropped on lifecycle events) and
//! never for the figures themselves, so tracking costs the engine nothing.
//!
//! Both hierarchies are read: cgroup v2 (one unified tree) and v1 (a tree per
//! controller), placed by the cgroupfs or the systemd driver. The files are
//! parsed in [`parse`]; what a sample is made of matches the engine's own
//! `docker stats` figures (memory is usage minus inactive file cache; the
//! limit is the host's memory when there is none).

pub mod parse;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};

use parse::ParseError;

/// No counter file we read is anywhere near this; a bigger one is refused.
pub const MAX_FILE: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is larger than {MAX_FILE} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path}: {source}")]
    Parse { path: PathBuf, source: ParseError },
    #[error("no cgroup of container {id} under {root} ({looked})")]
    NotFound { id: String, root: PathBuf, looked: String },
    #[error("refused cgroup path {0:?} (not a plain path below the root)")]
    BadPath(String),
}

impl CgroupError {
    /// What went wrong, in words that name no path or container (for the
    /// open `/healthz`; the whole error goes to the log).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Read { .. } | Self::TooLarge { .. } => "its counter files could not be read",
            Self::Parse { .. } => "its counter files held unexpected text",
            Self::NotFound { .. } => "its cgroup was not found",
            Self::BadPath(_) => "its cgroup path was refused",
        }
    }
}

/// Which cgroup hierarchy a tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// One tree per controller (`cpuacct/`, `memory/`, …).
    V1,
    /// The unified tree (`cgroup.controllers` at its root).
    V2,
}

/// How the engine places containers (`docker info`'s `CgroupDriver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Cgroupfs,
    Systemd,
}

impl Driver {
    pub fn from_info(name: &str) -> Self {
        if name.eq_ignore_ascii_case("systemd") {
            Self::Systemd
        } else {
            Self::Cgroupfs
        }
    }
}

/// A cgroup tree the sidecar can read.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub root: PathBuf,
    pub version: Version,
}

/// The v1 controllers a sample reads.
const V1_CONTROLLERS: [&str; 4] = ["cpuacct", "memory", "pids", "blkio"];

impl Hierarchy {
    /// What `root` holds: a v2 tree, a v1 tree with the controllers read
    /// here, or (the error, in words) neither.
    pub fn detect(root: &Path) -> Result<Self, String> {
        if root.join("cgroup.controllers").is_file() {
            return Ok(Self { root: root.to_owned(), version: Version::V2 });
        }
        let missing: Vec<&str> = V1_CONTROLLERS.iter().copied().filter(|c| !root.join(c).is_dir()).collect();
        if missing.is_empty() {
            return Ok(Self { root: root.to_owned(), version: Version::V1 });
        }
        if !root.is_dir() {
            return Err(format!("{} does not exist or is not readable", root.display()));
        }
        Err(format!(
            "{} is not a cgroup tree (no cgroup.controllers, and no {} controller)",
            root.display(),
            missing.join(", ")
        ))
    }

    /// Where container `id`'s counters are. `proc_cgroup` is the text of its
    /// main process's `/proc/<pid>/cgroup` when the host's `/proc` is given
    /// (exact for any driver); otherwise the path is the driver's rule for
    /// `cgroup_parent` (empty for the engine's default).
    pub fn locate(
        &self,
        id: &str,
        cgroup_parent: &str,
        driver: Driver,
        proc_cgroup: Option<&str>,
    ) -> Result<ContainerCgroup, CgroupError> {
        let from_proc = proc_cgroup.map(parse::proc_cgroup).unwrap_or_default();
        let by_proc = |controller: Option<&str>| -> Option<String> {
            from_proc
                .iter()
                .find(|(cs, _)| match controller {
                    None => cs.is_empty(),
                    Some(c) => cs.contains(&c),
                })
                .and_then(|(_, p)| container_part(p, id))
        };
        let rule = driver_path(id, cgroup_parent, driver);
        let cg = match self.version {
            Version::V2 => {
                let rel = by_proc(None).unwrap_or(rule);
                ContainerCgroup::V2 { dir: below(&self.root, &rel)? }
            }
            Version::V1 => {
                let dir = |c: &str| -> Result<PathBuf, CgroupError> {
                    let rel = by_proc(Some(c)).unwrap_or_else(|| rule.clone());
                    below(&self.root.join(c), &rel)
                };
                ContainerCgroup::V1 {
                    cpuacct: dir("cpuacct")?,
                    memory: dir("memory")?,
                    pids: dir("pids")?,
                    blkio: dir("blkio")?,
                }
            }
        };
        let probe = cg.usage_file();
        if !probe.is_file() {
            return Err(CgroupError::NotFound {
                id: id.to_owned(),
                root: self.root.clone(),
                looked: probe.display().to_string(),
            });
        }
        Ok(cg)
    }
}

/// The cgroup path (relative to a hierarchy's root) the engine's driver gives
/// a container: cgroupfs `<parent or /docker>/<id>`, systemd
/// `<parent slice, expanded>/docker-<id>.scope`.
pub fn driver_path(id: &str, cgroup_parent: &str, driver: Driver) -> String {
    match driver {
        Driver::Cgroupfs => {
            let parent = if cgroup_parent.is_empty() { "/docker" } else { cgroup_parent };
            format!("{}/{id}", parent.trim_end_matches('/'))
        }
        Driver::Systemd => {
            let parent = if cgroup_parent.is_empty() { "system.slice" } else { cgroup_parent };
            format!("{}/docker-{id}.scope", expand_slice(parent))
        }
    }
}

/// A process's cgroup path cut after the container's own component (`<id>`
/// or `docker-<id>.scope`; its main process may sit in a child such as
/// `init`), if it has one and is a plain path. A path seen through a cgroup
/// namespace (`/../<id>`) is not, and the driver's rule is used instead.
pub fn container_part(path: &str, id: &str) -> Option<String> {
    let scope = format!("docker-{id}.scope");
    let mut out = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if part == ".." || part == "." {
            return None;
        }
        out.push('/');
        out.push_str(part);
        if part == id || part == scope {
            return Some(out);
        }
    }
    None
}

/// systemd's slice naming: `a-b-c.slice` lives at `a.slice/a-b.slice/a-b-c.slice`.
fn expand_slice(slice: &str) -> String {
    let Some(stem) = slice.strip_suffix(".slice") else {
        return slice.to_owned();
    };
    if stem.is_empty() || stem == "-" {
        return String::new();
    }
    let mut out = String::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        out.push('/');
        out.push_str(&prefix);
        out.push_str(".slice");
    }
    out
}

/// `root` joined with a cgroup path, refusing anything that could leave it.
fn below(root: &Path, rel: &str) -> Result<PathBuf, CgroupError> {
    let rel_path = Path::new(rel.trim_start_matches('/'));
    let plain = rel_path.components().all(|c| matches!(c, Component::Normal(_)));
    if !plain || rel.contains('\0') {
        return Err(CgroupError::BadPath(rel.chars().take(200).collect()));
    }
    Ok(root.join(rel_path))
}

/// Where one container's counter files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerCgroup {
    V1 { cpuacct: PathBuf, memory: PathBuf, pids: PathBuf, blkio: PathBuf },
    V2 { dir: PathBuf },
}

/// One reading of a container's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// CPU time used since the cgroup was made, in nanoseconds.
    pub cpu_ns: u64,
    /// Usage minus inactive file cache, as `docker stats` shows.
    pub memory: u64,
    /// The container's own limit, `None` when it has none.
    pub memory_limit: Option<u64>,
    pub pids: u64,
    pub block_read: u64,
    pub block_write: u64,
}

/// Limits at or above this are "none" on cgroup v1 (the kernel reports
/// `PAGE_COUNTER_MAX` pages, rounded, for an unlimited group).
const V1_UNLIMITED: u64 = 1 << 62;

impl ContainerCgroup {
    fn usage_file(&self) -> PathBuf {
        match self {
            Self::V1 { cpuacct, .. } => cpuacct.join("cpuacct.usage"),
            Self::V2 { dir } => dir.join("cpu.stat"),
        }
    }

    /// Its counter files, opened (kept open while the descriptor budget allows).
    pub fn open(&self) -> Counters {
        match self {
            Self::V1 { cpuacct, memory, pids, blkio } => Counters {
                v2: false,
                cpu: Counter::open(cpuacct.join("cpuacct.usage")),
                usage: Counter::open(memory.join("memory.usage_in_bytes")),
                stat: Counter::open(memory.join("memory.stat")),
                pids: Counter::open(pids.join("pids.current")),
                io: Counter::open(blkio.join("blkio.throttle.io_service_bytes_recursive")),
                limit: None,
            },
            Self::V2 { dir } => Counters {
                v2: true,
                cpu: Counter::open(dir.join("cpu.stat")),
                usage: Counter::open(dir.join("memory.current")),
                stat: Counter::open(dir.join("memory.stat")),
                pids: Counter::open(dir.join("pids.current")),
                io: Counter::open(dir.join("io.stat")),
                limit: Some(Counter::open(dir.join("memory.max"))),
            },
        }
    }

    /// The CPUs its quota allows (`--cpus`), `None` when it has no quota.
    /// Read once when the container is located.
    pub fn cpu_quota(&self, root: &Path) -> Option<f64> {
        let mut buf = Vec::new();
        match self {
            Self::V1 { cpuacct, .. } => {
                // The `cpu` controller sits beside `cpuacct` (or is the same, `cpu,cpuacct`).
                let rel = cpuacct.strip_prefix(root.join("cpuacct")).ok()?;
                let dir = root.join("cpu").join(rel);
                let q = read_with(&dir.join("cpu.cfs_quota_us"), &mut buf, |t| parse::signed("cpu.cfs_quota_us", t));
                let p = read_with(&dir.join("cpu.cfs_period_us"), &mut buf, |t| parse::single("cpu.cfs_period_us", t));
                parse::quota_cpus(q.ok()?, p.ok()?)
            }
            Self::V2 { dir } => read_with(&dir.join("cpu.max"), &mut buf, |t| parse::cpu_max_v2("cpu.max", t)).ok()?,
        }
    }
}

/// Counter files this process may keep open (set from its descriptor limit
/// by [`init_descriptor_budget`]; past it, files are opened for each read).
static OPEN_BUDGET: AtomicI64 = AtomicI64::new(0);

/// Raises the soft descriptor limit to the hard one and keeps at most half
/// of it (leaving at least 1 024) for counter files.
pub fn init_descriptor_budget() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    let soft = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        lim.rlim_cur
    };
    // Half the limit, and at least 1 024 left for sockets, streams and the audit log.
    let soft = i64::try_from(soft.min(1 << 20)).unwrap_or(0);
    let budget = (soft / 2).min(soft - 1024);
    OPEN_BUDGET.store(budget.max(0), Ordering::Relaxed);
}

/// One counter file, kept open and read again from its start each round
/// (the kernel renders it afresh at offset 0), or opened for each read when
/// the descriptor budget is spent.
#[derive(Debug)]
pub struct Counter {
    path: PathBuf,
    file: Option<File>,
}

impl Counter {
    pub fn open(path: PathBuf) -> Self {
        let file = if OPEN_BUDGET.fetch_sub(1, Ordering::Relaxed) > 0 {
            let f = File::open(&path).ok();
            if f.is_none() {
                OPEN_BUDGET.fetch_add(1, Ordering::Relaxed);
            }
            f
        } else {
            OPEN_BUDGET.fetch_add(1, Ordering::Relaxed);
            None
        };
        Self { path, file }
    }

    /// Reads the whole file (at most [`MAX_FILE`]) into `buf` and parses it.
    pub fn read<T>(
        &self,
        buf: &mut Vec<u8>,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<T, CgroupError> {
        let read = match &self.file {
            Some(f) => read_from_start(f, buf),
            None => File::open(&self.path).and_then(|f| read_from_start(&f, buf)),
        };
        let err = |source| CgroupError::Read { path: self.path.clone(), source };
        match read {
            Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
                Err(CgroupError::TooLarge { path: self.path.clone() })
            }
            Err(e) => Err(err(e)),
            Ok(()) => {
                let text = std::str::from_utf8(buf)
                    .map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
                parse(text).map_err(|source| CgroupError::Parse { path: self.path.clone(), source })
            }
        }
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        if self.file.is_some() {
            OPEN_BUDGET.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A file that does not exist reads as zero.
fn missing_is_zero<T: Default>(r: Result<T, CgroupError>) -> Result<T, CgroupError> {
    match r {
        Err(CgroupError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        other => other,
    }
}

/// `pread`s from offset 0 until a short read: one call for a counter file.
fn read_from_start(f: &File, buf: &mut Vec<u8>) -> std::io::Result<()> {
    const CHUNK: usize = 16 * 1024;
    buf.clear();
    loop {
        let at = buf.len();
        // One byte past the bound tells a file that is too large.
        let want = CHUNK.min(MAX_FILE as usize + 1 - at);
        buf.resize(at + want, 0);
        let n = f.read_at(&mut buf[at..], at as u64)?;
        buf.truncate(at + n);
        if buf.len() as u64 > MAX_FILE {
            return Err(std::io::ErrorKind::FileTooLarge.into());
        }
        if n < want {
            return Ok(());
        }
    }
}

/// Reads a whole file once (not kept open) and parses it.
pub fn read_with<T>(
    path: &Path,
    buf: &mut Vec<u8>,
    parse: impl FnOnce(&str) -> Result<T, ParseError>,
) -> Result<T, CgroupError> {
    Counter { path: path.to_owned(), file: None }.read(buf, parse)
}

/// A container's counter files, open.
#[derive(Debug)]
pub struct Counters {
    v2: bool,
    cpu: Counter,
    usage: Counter,
    stat: Counter,
    pids: Counter,
    io: Counter,
    /// v2's `memory.max` (v1's limit is in `memory.stat`).
    limit: Option<Counter>,
}

impl Counters {
    /// Reads every counter a sample needs; `buf` is reused between files.
    pub fn read(&self, buf: &mut Vec<u8>) -> Result<Reading, CgroupError> {
        // Without the pids or io controller (not delegated, say) the engine reports 0: so do we.
        let pids = missing_is_zero(self.pids.read(buf, |t| parse::single("pids.current", t)))?;
        if self.v2 {
            let usec = self.cpu.read(buf, |t| parse::keyed("cpu.stat", t, "usage_usec"))?;
            let usage = self.usage.read(buf, |t| parse::single("memory.current", t))?;
            let inactive = self.stat.read(buf, |t| parse::keyed("memory.stat", t, "inactive_file"))?;
            let limit = match &self.limit {
                Some(c) => c.read(buf, |t| parse::limit("memory.max", t))?,
                None => None,
            };
            let (block_read, block_write) = missing_is_zero(self.io.read(buf, |t| parse::io_stat_v2("io.stat", t)))?;
            return Ok(Reading {
                cpu_ns: usec.saturating_mul(1000),
                memory: if inactive < usage { usage - inactive } else { usage },
                memory_limit: limit,
                pids,
                block_read,
                block_write,
            });
        }
        let cpu_ns = self.cpu.read(buf, |t| parse::single("cpuacct.usage", t))?;
        let usage = self.usage.read(buf, |t| parse::single("memory.usage_in_bytes", t))?;
        let (inactive, limit) = self.stat.read(buf, |t| {
            Ok((
                parse::keyed("memory.stat", t, "total_inactive_file")?,
                parse::keyed("memory.stat", t, "hierarchical_memory_limit")?,
            ))
        })?;
        let file = "blkio.throttle.io_service_bytes_recursive";
        let (block_read, block_write) = missing_is_zero(self.io.read(buf, |t| parse::blkio_v1(file, t)))?;
        Ok(Reading {
            cpu_ns,
            memory: if inactive < usage { usage - inactive } else { usage },
            memory_limit: (limit < V1_UNLIMITED).then_some(limit),
            pids,
            block_read,
            block_write,
        })
    }
}

/// CPU % from two readings of the same cgroup, `(cpu ns, wall-clock ns)`: the
/// share of one core used over the interval (100 = one full core), as
/// `docker stats` reports it, at most `cap_cpus` cores (the quota or the
/// online CPUs: a sampling jitter never shows more than the container may
/// use). `None` when the counter went back (a restart made a new cgroup).
pub fn cpu_percent(prev: (u64, u64), cur: (u64, u64), cap_cpus: f64) -> Option<f64> {
    let used = cur.0.checked_sub(prev.0)?;
    let wall = cur.1.checked_sub(prev.1)?;
    if wall == 0 {
        return None;
    }
    Some((used as f64 / wall as f64 * 100.0).min(cap_cpus * 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn driver_rules() {
        assert_eq!(driver_path(ID, "", Driver::Cgroupfs), format!("/docker/{ID}"));
        assert_eq!(driver_path(ID, "/custom/", Driver::Cgroupfs), format!("/custom/{ID}"));
        assert_eq!(driver_path(ID, "", Driver::Systemd), format!("/system.slice/docker-{ID}.scope"));
        assert_eq!(
            driver_path(ID, "my-app.slice", Driver::Systemd),
            format!("/my.slice/my-app.slice/docker-{ID}.scope")
        );
        assert_eq!(driver_path(ID, "-.slice", Driver::Systemd), format!("/docker-{ID}.scope"));
    }

    #[test]
    fn the_containers_own_part_of_a_process_path() {
        assert_eq!(container_part(&format!("/docker/{ID}"), ID), Some(format!("/docker/{ID}")));
        assert_eq!(container_part(&format!("/docker/{ID}/init"), ID), Some(format!("/docker/{ID}")));
        let scope = format!("/system.slice/docker-{ID}.scope");
        assert_eq!(container_part(&scope, ID), Some(scope.clone()));
        // Seen through a cgroup namespace, or another container's: not used.
        assert_eq!(container_part(&format!("/../{ID}"), ID), None);
        assert_eq!(container_part("/docker/someone-else", ID), None);
        assert_eq!(container_part(&format!("/docker/x{ID}"), ID), None, "a whole component, not a substring");
    }

    #[test]
    fn paths_never_leave_the_root() {
        let root = Path::new("/host/cgroup");
        assert_eq!(below(root, "/docker/abc").unwrap(), Path::new("/host/cgroup/docker/abc"));
        for bad in ["/../etc", "/docker/../../x", "/a\0b"] {
            assert!(matches!(below(root, bad), Err(CgroupError::BadPath(_))), "{bad}");
        }
        let h = Hierarchy { root: root.to_owned(), version: Version::V2 };
        let e = h.locate(ID, "../../../etc", Driver::Cgroupfs, None).unwrap_err();
        assert!(matches!(e, CgroupError::BadPath(_)), "{e}");
    }

    #[test]
    fn cpu_from_deltas() {
        // 0.5 s of CPU over 1 s of wall time: 50 %.
        let p = cpu_percent((1_000_000_000, 0), (1_500_000_000, 1_000_000_000), 2.0).unwrap();
        assert!((p - 50.0).abs() < 1e-9);
        // Jitter above the quota is capped.
        assert_eq!(cpu_percent((0, 0), (600_000_000, 1_000_000_000), 0.5), Some(50.0));
        // A restarted container's counter starts again: no value, not nonsense.
        assert_eq!(cpu_percent((5, 0), (1, 10), 1.0), None);
        assert_eq!(cpu_percent((5, 10), (6, 10), 1.0), None);
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cgroup").join(name)
    }

    const V1_ID: &str = "b062116c050fc9a462ce6d0c8a0f442a368f14e0f68556c852809997ac6f4a71";
    const V2_ID: &str = "4f1c6e0d2b8a4c3e9d7f5a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5";

    #[test]
    fn recorded_v1_tree() {
        let root = fixture("v1-cgroupfs");
        let h = Hierarchy::detect(&root).unwrap();
        assert_eq!(h.version, Version::V1);
        let proc = std::fs::read_to_string(root.join("proc-cgroup")).unwrap();
        // By the driver's rule and by the process's own /proc/<pid>/cgroup: the same place.
        let cg = h.locate(V1_ID, "", Driver::Cgroupfs, None).unwrap();
        assert_eq!(h.locate(V1_ID, "", Driver::Cgroupfs, Some(&proc)).unwrap(), cg);
        let r = cg.open().read(&mut Vec::new()).unwrap();
        assert_eq!(
            r,
            Reading {
                cpu_ns: 97_707_651_356,
                memory: 368_640,
                memory_limit: Some(64 << 20),
                pids: 1,
                block_read: 0,
                block_write: 0
            }
        );
        assert_eq!(cg.cpu_quota(&root), Some(0.5));
        // Another driver's rule does not find it: a clear error, not a guess.
        let e = h.locate(V1_ID, "", Driver::Systemd, None).unwrap_err();
        assert!(matches!(e, CgroupError::NotFound { .. }), "{e}");
    }

    #[test]
    fn recorded_v2_trees() {
        for (layout, driver) in [("v2-cgroupfs", Driver::Cgroupfs), ("v2-systemd", Driver::Systemd)] {
            let root = fixture(layout);
            let h = Hierarchy::detect(&root).unwrap();
            assert_eq!(h.version, Version::V2, "{layout}");
            let proc = std::fs::read_to_string(root.join("proc-cgroup")).unwrap();
            let cg = h.locate(V2_ID, "", driver, None).unwrap();
            assert_eq!(h.locate(V2_ID, "", driver, Some(&proc)).unwrap(), cg, "{layout}");
            let other = if driver == Driver::Systemd { Driver::Cgroupfs } else { Driver::Systemd };
            assert_eq!(h.locate(V2_ID, "", other, Some(&proc)).unwrap(), cg, "/proc wins over the rule");
            let r = cg.open().read(&mut Vec::new()).unwrap();
            assert_eq!(r.cpu_ns, 2_417_391_000, "{layout}");
            // memory.current minus inactive_file.
            assert_eq!(r.memory, 4_624_384 - 1_708_032, "{layout}");
            assert_eq!((r.block_read, r.block_write), (1_761_280, 8192), "{layout}");
            if driver == Driver::Cgroupfs {
                assert_eq!((r.memory_limit, r.pids, cg.cpu_quota(&root)), (Some(64 << 20), 3, Some(0.5)));
            } else {
                assert_eq!((r.memory_limit, r.pids, cg.cpu_quota(&root)), (None, 1, None));
            }
        }
    }

    #[test]
    fn hostile_files_are_errors() {
        let root = fixture("v2-hostile");
        let h = Hierarchy::detect(&root).unwrap();
        for case in ["garbage", "huge", "missing", "empty", "binary"] {
            let cg = h.locate(case, "", Driver::Cgroupfs, None).unwrap();
            let e = cg.open().read(&mut Vec::new()).unwrap_err();
            assert!(matches!(e, CgroupError::Parse { .. }), "{case}: {e}");
            assert!(e.to_string().contains(case), "the error names the file: {e}");
        }
        assert!(Hierarchy::detect(&root.join("docker")).is_err());
        let e = Hierarchy::detect(Path::new("/nonexistent/cgroup")).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn a_kept_counter_reads_afresh() {
        init_descriptor_budget();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cpuacct.usage");
        std::fs::write(&path, "100\n").unwrap();
        let c = Counter::open(path.clone());
        assert!(c.file.is_some(), "kept open while the budget allows");
        let mut buf = Vec::new();
        assert_eq!(c.read(&mut buf, |t| parse::single("f", t)).unwrap(), 100);
        std::fs::write(&path, "250\n").unwrap();
        assert_eq!(c.read(&mut buf, |t| parse::single("f", t)).unwrap(), 250, "read again from the start");
        // A file larger than one read is read whole.
        let long = format!("{}usage_usec 7\n", "x 1\n".repeat(10_000));
        std::fs::write(&path, &long).unwrap();
        assert_eq!(c.read(&mut buf, |t| parse::keyed("cpu.stat", t, "usage_usec")).unwrap(), 7);
    }

    #[test]
    fn bounded_reads() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, "1".repeat(MAX_FILE as usize + 10)).unwrap();
        let mut buf = Vec::new();
        assert!(matches!(read_with(&big, &mut buf, |t| parse::single("f", t)), Err(CgroupError::TooLarge { .. })));
        let bin = dir.path().join("bin");
        std::fs::write(&bin, [0xff, 0xfe, 0x00]).unwrap();
        assert!(matches!(read_with(&bin, &mut buf, |t| parse::single("f", t)), Err(CgroupError::Read { .. })));
        let missing = dir.path().join("missing");
        let e = read_with(&missing, &mut buf, |t| parse::single("f", t)).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }
}
