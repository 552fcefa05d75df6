//! Test helpers shared by dockward's integration tests: the real Docker
//! engine, a tiny local test image, labelled test containers, child
//! processes, the workspace's built binaries, and polling (tests wait on
//! conditions, never for a fixed time).
//!
//! Features add more: `sidecar` (the sidecar as a subprocess, an SSE reader,
//! a counting socket proxy), `browser` (headless Chromium over WebDriver) and
//! `scenarios` (one trial per scenario around one shared environment).
//!
//! Docker is a hard requirement: without it these helpers fail loudly; tests
//! that use them never skip.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[cfg(feature = "browser")]
pub mod browser;
pub mod console;
#[cfg(feature = "sidecar")]
pub mod cut;
#[cfg(feature = "sidecar")]
pub mod impostor;
pub mod netns;
pub mod oidc;
pub mod postgres;
#[cfg(feature = "scenarios")]
pub mod scenarios;
#[cfg(feature = "sidecar")]
pub mod sidecar;
#[cfg(feature = "sidecar")]
pub mod sinks;

pub const IMAGE: &str = "dockward-test:3";
pub const TEST_LABEL: &str = "dockward.test";

/// The repository's root (the workspace), whichever crate's test asks.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("testkit/ has a parent").to_owned()
}

/// The group id of the Docker socket (what compose's `DOCKER_GID` must be).
pub fn socket_gid() -> String {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/var/run/docker.sock").expect("/var/run/docker.sock").gid().to_string()
}

/// Runs the docker CLI; panics with its stderr on failure.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap_or_else(|e| {
        panic!("cannot run the docker CLI ({e}). These tests need a real Docker engine: run .ci/run or install docker.io and start dockerd")
    });
    assert!(out.status.success(), "docker {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn docker_ok(args: &[&str]) -> bool {
    Command::new("docker").args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Checks the engine is there, and builds the test image once (a root
/// filesystem holding Debian's busybox-static, imported; no registry needed).
pub fn require_docker() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        assert!(
            docker_ok(&["version"]),
            "the Docker engine is not reachable. These tests need a real dockerd: run `bash .ci/run`, or install docker.io and start dockerd"
        );
        let lock_path = std::env::temp_dir().join("dockward-test-image.lock");
        let lock = std::fs::File::create(&lock_path).expect("lock file");
        lock.lock().expect("lock");
        if !docker_ok(&["image", "inspect", IMAGE]) {
            build_image(IMAGE);
        }
        lock.unlock().ok();
    });
}

pub fn build_image(tag: &str) {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static is not installed (apt-get install busybox-static)");
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(dir.path().join("rootfs/tmp")).unwrap();
    std::fs::copy(busybox, bin.join("busybox")).unwrap();
    for applet in ["sh", "echo", "sleep", "cat", "ls", "true", "yes", "printf", "dd", "kill", "touch"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar -C {} -c . | docker import -c 'CMD [\"/bin/sh\"]' - {tag} >/dev/null",
            dir.path().join("rootfs").display()
        ))
        .status()
        .unwrap();
    assert!(status.success(), "docker import of the test image failed");
}

/// Makes image `tag` from the test image: a container runs `script`, then
/// is committed with `changes` (Dockerfile instructions such as `CMD […]`).
/// Images that differ by a file, for update and rollback tests; labelled
/// `dockward.test=1`, so `docker image prune --filter label=…` finds them.
pub fn commit_image(tag: &str, script: &str, changes: &[&str]) {
    require_docker();
    let name = unique("build");
    docker(&["run", "--name", &name, "--label", "dockward.test=1", IMAGE, "sh", "-c", script]);
    let mut args = vec!["commit".to_owned(), "--change".into(), format!("LABEL {TEST_LABEL}=1")];
    for c in changes {
        args.push("--change".into());
        args.push((*c).to_owned());
    }
    args.push(name.clone());
    args.push(tag.to_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    docker(&args);
    docker(&["rm", "-f", &name]);
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name unique to this test process and call.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A container this test owns; removed on drop.
pub struct TestContainer {
    pub id: String,
    pub name: String,
}

impl TestContainer {
    /// `docker run -d` with the test label, extra `docker run` flags, and a shell script.
    pub fn run(prefix: &str, flags: &[&str], script: &str) -> Self {
        Self::run_image_with(prefix, IMAGE, flags, script)
    }

    /// [`TestContainer::run`] from another image (a tag or an id).
    pub fn run_image(prefix: &str, image: &str, script: &str) -> Self {
        Self::run_image_with(prefix, image, &[], script)
    }

    /// [`TestContainer::run`] from another image, with `docker run` flags.
    pub fn run_image_with(prefix: &str, image: &str, flags: &[&str], script: &str) -> Self {
        require_docker();
        let name = unique(prefix);
        let label = format!("{TEST_LABEL}=1");
        let mut args = vec!["run", "-d", "--name", &name, "--label", &label];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[image, "sh", "-c", script]);
        let out = Command::new("docker").args(&args).output().expect("docker CLI");
        if !out.status.success() {
            // `docker run` can fail after creating the container: never leave one behind.
            let _ =
                Command::new("docker").args(["rm", "-f", &name]).stdout(Stdio::null()).stderr(Stdio::null()).status();
            panic!("docker {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Self { id, name }
    }

    pub fn started_at(&self) -> String {
        docker(&["inspect", "-f", "{{.State.StartedAt}}", &self.id])
    }

    pub fn state(&self) -> String {
        docker(&["inspect", "-f", "{{.State.Status}}", &self.id])
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        // By id and by name: a recreated container has a new id under the same name.
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.id, &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Waits until `f` returns Some, or panics after `timeout` with `what`.
/// For async tests; [`wait_for`] is the blocking twin.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Blocks until `f` returns Some, or panics after `timeout` with `what`.
/// For synchronous code; async tests use [`eventually`].
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until something accepts connections on 127.0.0.1:`port`.
pub fn wait_port(port: u16, what: &str) {
    wait_for(Duration::from_secs(30), &format!("{what} to listen on port {port}"), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok().then_some(())
    })
}

/// A child process killed when the test ends (or panics).
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A binary of this workspace, built next to the running test executable
/// (`target/<profile>/<name>`; tests run from `target/<profile>/deps/`).
/// Cargo builds a package's own binaries before its integration tests; a
/// binary of another package must have been built first.
pub fn built_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe.parent().and_then(Path::parent).expect("the test executable sits in target/<profile>/deps");
    let p = dir.join(name);
    assert!(p.exists(), "{} is missing: build it first (cargo build --workspace)", p.display());
    p
}

/// One field of `/proc/<pid>/status` (`Uid`, `Groups`, `CapEff`, …), trimmed:
/// what the kernel says of a process's identity and privileges.
pub fn proc_status_field(pid: impl std::fmt::Display, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .to_owned()
}

/// The value of one series (`name{labels}`) in a Prometheus exposition, if it has it.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Runs `promtool check metrics` (Debian's `prometheus` package, installed by
/// `scripts/prepare.sh`) on a `/metrics` answer; panics with what it found,
/// and loudly when promtool is missing: this check never skips.
pub fn promtool_check_metrics(text: &str) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}): install Debian's prometheus package (scripts/prepare.sh does)")
        });
    child.stdin.take().expect("promtool's stdin").write_all(text.as_bytes()).expect("write to promtool");
    let out = child.wait_with_output().expect("promtool exits");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics refused the exposition ({}): {said}\n--- the exposition ---\n{text}",
        out.status
    );
}
