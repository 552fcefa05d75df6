//! A private PostgreSQL server (Debian's `postgresql` binaries) for the
//! store's tests: its own cluster in a temporary directory, on a free
//! loopback port, trust authentication, stopped and removed on drop. Run as
//! the `postgres` user when the tests run as root (PostgreSQL refuses root).
//! Missing binaries fail loudly: `scripts/prepare.sh` installs them.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{free_port, wait_port, Proc};

pub struct Postgres {
    port: u16,
    bin: PathBuf,
    owner: Option<(u32, u32)>,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

/// The directory of `initdb` and `postgres`: the newest in /usr/lib/postgresql.
fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| Some(e.ok()?.path().join("bin"))).filter(|p| p.join("initdb").exists()).collect())
        .unwrap_or_default();
    found.sort_by_key(|p| {
        p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok()).unwrap_or(0)
    });
    found.pop().unwrap_or_else(|| {
        panic!("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install postgresql (scripts/prepare.sh does)")
    })
}

/// The `postgres` user's uid and gid, when running as root.
fn owner() -> Option<(u32, u32)> {
    let me = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap_or(0);
    if me != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("no postgres user (the postgresql package makes it): PostgreSQL refuses to run as root");
    let f: Vec<&str> = line.split(':').collect();
    Some((f[2].parse().expect("uid"), f[3].parse().expect("gid")))
}

fn as_owner(cmd: &mut Command, owner: Option<(u32, u32)>) -> &mut Command {
    if let Some((uid, gid)) = owner {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

fn chown(path: &Path, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown to postgres");
    }
}

/// Removes the clusters of test processes that are gone (a server kept in
/// a static is never dropped, so its directory outlives its process).
fn sweep() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("dockward-pg-").and_then(|r| r.split('-').next()?.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

impl Postgres {
    /// A new cluster, listening; returns once it takes connections.
    pub fn start() -> Postgres {
        let bin = bin_dir();
        let owner = owner();
        sweep();
        let dir = tempfile::Builder::new()
            .prefix(&format!("dockward-pg-{}-", std::process::id()))
            .tempdir()
            .expect("a temporary directory");
        chown(dir.path(), owner);
        let data = dir.path().join("data");
        let out = as_owner(Command::new(bin.join("initdb")).arg("-D").arg(&data), owner)
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .stdout(Stdio::null())
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("postgres.log")).expect("the postgres log");
        chown(&dir.path().join("postgres.log"), owner);
        let mut cmd = Command::new(bin.join("postgres"));
        as_owner(cmd.arg("-D").arg(&data), owner)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .arg("-k")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                // Killed when the thread that started it ends: a thread that lives as long as
                // the test process (a server kept in a static is never dropped).
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(cmd.spawn());
            loop {
                std::thread::park();
            }
        });
        let proc = Proc(rx.recv().expect("the starter thread").expect("start postgres"));
        wait_port(port, "postgres");
        let pg = Postgres { port, bin, owner, _proc: proc, _dir: dir };
        // Listening is not yet accepting: wait until a database can be made.
        crate::wait_for(std::time::Duration::from_secs(30), "postgres to accept connections", || {
            let ok = as_owner(&mut Command::new(pg.bin.join("pg_isready")), pg.owner)
                .args(["-h", "127.0.0.1", "-p", &pg.port.to_string()])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            ok.then_some(())
        });
        pg
    }

    /// A new, empty database's URL.
    pub fn database(&self) -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!("t{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let out = as_owner(&mut Command::new(self.bin.join("createdb")), self.owner)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", &name])
            .output()
            .expect("run createdb");
        assert!(out.status.success(), "createdb failed: {}", String::from_utf8_lossy(&out.stderr));
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}
