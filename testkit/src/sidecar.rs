//! The sidecar for integration tests: started as a subprocess of its built
//! binary through its command line (the same entry point operators use, so
//! tests depend on no internal module), an SSE reader, and a counting socket
//! proxy in front of the real engine.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{built_bin, docker, eventually, free_port, require_docker, unique, wait_port, Proc, IMAGE};

/// The unprivileged uid and gid the images run as.
pub const NOBODY: u32 = 65532;
pub const SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";
pub const SECRET_B: &str = "test-secret-B-0123456789abcdef0123456789abcdef";

/// The built `dockward-sidecar` binary.
pub fn sidecar_bin() -> PathBuf {
    built_bin("dockward-sidecar")
}

/// A sidecar on 127.0.0.1 with a temporary audit log, killed on drop. Its
/// log (JSON) is kept in its directory and printed when a test panics.
pub struct Sidecar {
    /// `http://…` or, for [`Sidecar::start_https`], `https://…`.
    pub base: String,
    pub dir: tempfile::TempDir,
    /// A client for it: over HTTPS, pinned to its certificate.
    pub http: reqwest::Client,
    /// Its certificate's fingerprint (`sha256:…`), when it serves HTTPS.
    pub fingerprint: Option<String>,
    child: Child,
}

/// The fingerprint (`sha256:…`) of the certificate in a PEM file.
pub fn cert_fingerprint(cert: &std::path::Path) -> String {
    tls::identity::cert_fingerprint(cert).expect("a certificate").to_string()
}

/// A reqwest client that trusts exactly the certificates pinned (any name).
pub fn pinned_client(pins: &[&str]) -> reqwest::Client {
    let pins = pins.iter().map(|p| p.parse().expect("a fingerprint")).collect();
    let verifier = Arc::new(tls::PinVerifier::new(tls::Pins::fixed(pins)));
    reqwest::Client::builder().use_preconfigured_tls(tls::client_config(verifier)).build().expect("a pinned client")
}

impl Sidecar {
    /// Starts `dockward-sidecar` with the test secret, an audit log in a
    /// temporary directory, `--stats-ttl=1s` unless `extra` sets it, and the
    /// `extra` flags; returns once it listens.
    ///
    /// It serves plain HTTP (`--plain-http`): the tests of every other concern
    /// speak to it directly. HTTPS, the default of the binary, is
    /// [`Sidecar::start_https`]'s, and the compose stack's.
    pub async fn start(extra: &[&str]) -> Self {
        Self::start_with(extra, |_, _| {}).await
    }

    /// [`Sidecar::start`] serving HTTPS with an identity made in its
    /// directory (`tls.crt`, `tls.key`); [`Sidecar::http`] pins it.
    pub async fn start_https(extra: &[&str]) -> Self {
        Self::launch(extra, true, |_, _| {}).await
    }

    /// The flags that give a `dockward-sidecar` command (`healthcheck`,
    /// `tls …`) this sidecar's transport: its TLS files, or `--plain-http`.
    pub fn transport_args(&self) -> Vec<String> {
        if self.fingerprint.is_some() {
            vec![
                format!("--tls-cert-file={}", self.dir.path().join("tls.crt").display()),
                format!("--tls-key-file={}", self.dir.path().join("tls.key").display()),
            ]
        } else {
            vec!["--plain-http".into()]
        }
    }

    /// For [`Sidecar::start_with`]: the sidecar runs as uid and gid 65532 with
    /// no supplementary group (so not the Docker socket's), its directory handed to it.
    pub fn as_nobody(cmd: &mut Command, dir: &std::path::Path) {
        use std::os::unix::process::CommandExt;
        Self::hand_to_nobody(dir);
        // std drops root's supplementary groups when it sets the uid.
        cmd.uid(NOBODY).gid(NOBODY);
    }

    /// Hands the sidecar's directory (secret, audit log, key) to uid 65532, as
    /// a sidecar that drops to it (`DOCKWARD_RUN_AS`) needs.
    pub fn hand_to_nobody(dir: &std::path::Path) {
        std::os::unix::fs::chown(dir, Some(NOBODY), Some(NOBODY)).unwrap();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            std::os::unix::fs::chown(e.path(), Some(NOBODY), Some(NOBODY)).unwrap();
        }
    }

    /// [`Sidecar::start`], with `setup` given the command (to set its user or
    /// environment) and the sidecar's directory (to hand it to that user)
    /// before it is spawned.
    pub async fn start_with(extra: &[&str], setup: impl FnOnce(&mut Command, &std::path::Path)) -> Self {
        Self::launch(extra, false, setup).await
    }

    async fn launch(extra: &[&str], https: bool, setup: impl FnOnce(&mut Command, &std::path::Path)) -> Self {
        require_docker();
        let dir = tempfile::tempdir().unwrap();
        let (child, base, fingerprint, http) = Self::spawn_in(dir.path(), extra, https, setup).await;
        Self { base, dir, http, fingerprint, child }
    }

    /// SIGKILLs the sidecar and starts it again in the same directory (same
    /// secret, audit log, key and recreate journals) with `extra`; returns
    /// once it listens (on a new port).
    pub async fn kill_and_restart(&mut self, extra: &[&str]) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let https = self.fingerprint.is_some();
        let (child, base, fingerprint, http) = Self::spawn_in(self.dir.path(), extra, https, |_, _| {}).await;
        (self.child, self.base, self.fingerprint, self.http) = (child, base, fingerprint, http);
    }

    async fn spawn_in(
        dir: &std::path::Path,
        extra: &[&str],
        https: bool,
        setup: impl FnOnce(&mut Command, &std::path::Path),
    ) -> (Child, String, Option<String>, reqwest::Client) {
        let audit = dir.join("audit.jsonl");
        let log_path = dir.join("sidecar.log");
        let secret_file = dir.join("secret");
        std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
        let mut args: Vec<String> = vec![
            "--listen=127.0.0.1:0".into(),
            format!("--secret-file={}", secret_file.display()),
            format!("--audit-log={}", audit.display()),
            format!("--audit-key-file={}", dir.join("audit.key").display()),
            "--log-format=json".into(),
        ];
        if https {
            args.push(format!("--tls-cert-file={}", dir.join("tls.crt").display()));
            args.push(format!("--tls-key-file={}", dir.join("tls.key").display()));
        } else {
            args.push("--plain-http".into());
        }
        if !extra.iter().any(|a| a.starts_with("--stats-ttl")) {
            args.push("--stats-ttl=1s".into());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        // A restarted sidecar appends to the same log; only its own lines count below.
        let log_start = std::fs::metadata(&log_path).map_or(0, |m| m.len() as usize);
        let log_file = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).unwrap();
        let mut cmd = Command::new(sidecar_bin());
        cmd.args(&args)
            // The listening line below is logged at info.
            .env("DOCKWARD_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        setup(&mut cmd, dir);
        let mut child = cmd.spawn().expect("start dockward-sidecar");
        // Listening on port 0 leaves no race for a free port: the sidecar logs
        // the address it bound. Nothing is requested, so no rate budget or
        // audit record is spent on start-up.
        let addr = eventually(Duration::from_secs(30), "the sidecar to listen", || {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let found = listening_addr(log.get(log_start..).unwrap_or(""));
            if found.is_none() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "the sidecar exited ({status}) with {args:?}; its log:\n{}",
                        log.get(log_start..).unwrap_or("")
                    );
                }
            }
            std::future::ready(found)
        })
        .await;
        if https {
            let fp = cert_fingerprint(&dir.join("tls.crt"));
            (child, format!("https://{addr}"), Some(fp.clone()), pinned_client(&[&fp]))
        } else {
            (child, format!("http://{addr}"), None, reqwest::Client::new())
        }
    }

    pub fn audit_path(&self) -> PathBuf {
        self.dir.path().join("audit.jsonl")
    }

    /// The sidecar's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`STOP`, `CONT`, `KILL`, …) to the sidecar with kill(1).
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{signal} {}", self.pid());
    }

    /// What the sidecar logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sidecar.log")).unwrap_or_default()
    }

    /// `host:port` it listens on.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://").trim_start_matches("https://")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path)).bearer_auth(SECRET).header("x-dockward-actor", "tester")
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(path)).bearer_auth(SECRET).header("x-dockward-actor", "tester")
    }

    pub async fn json(&self, path: &str) -> serde_json::Value {
        let r = self.get(path).send().await.unwrap();
        let status = r.status();
        let body = r.text().await.unwrap();
        assert!(status.is_success(), "GET {path}: {status} {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Audit records (newest first) as JSON values.
    pub fn audit_records(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.audit_path()).unwrap_or_default();
        let mut v: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        v.reverse();
        v
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- sidecar log (last {} lines) ---", tail.len());
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// The address in the sidecar's "listening" log line (JSON log format).
fn listening_addr(log: &str) -> Option<SocketAddr> {
    log.lines().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let fields = &v["fields"];
        if !fields["message"].as_str()?.contains("listening") {
            return None;
        }
        fields["addr"].as_str()?.parse().ok()
    })
}

/// Debian's `docker-registry` on 127.0.0.1 (a free port) with storage in a
/// temporary directory; stopped, then its storage removed, on drop.
pub struct Registry {
    pub port: u16,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Self {
        require_docker();
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is not installed (apt-get install docker-registry)");
        let registry = Self { port, _proc: Proc(child), _dir: dir };
        wait_port(port, "the local registry");
        registry
    }

    /// The sidecar flag that allows pulls from this registry.
    pub fn allow_flag(&self) -> String {
        format!("--pull-registries=127.0.0.1:{}", self.port)
    }

    /// Pushes the test image here under a fresh tag and removes the local
    /// copy of that tag, so a pull has something to fetch. Returns the
    /// reference and `docker push`'s output.
    pub fn push_test_image(&self) -> (String, String) {
        let remote = format!("127.0.0.1:{}/dockward/test:{}", self.port, unique("v"));
        docker(&["tag", IMAGE, &remote]);
        let pushed = docker(&["push", &remote]);
        docker(&["rmi", &remote]);
        (remote, pushed)
    }
}

type ByteStream = std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Vec<u8>>> + Send>>;

/// Reads Server-Sent Events from a streaming response: (event, data) pairs.
pub struct SseReader {
    stream: ByteStream,
    buf: String,
    /// The `id:` of the last event read that carried one.
    pub last_id: Option<String>,
}

impl SseReader {
    pub fn new(resp: reqwest::Response) -> Self {
        use futures_util::StreamExt;
        Self { stream: Box::pin(resp.bytes_stream().map(|r| r.map(|b| b.to_vec()))), buf: String::new(), last_id: None }
    }

    /// The next event, or None at the end of the stream.
    pub async fn next(&mut self) -> Option<(String, String)> {
        use futures_util::StreamExt;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut event = String::from("message");
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event:") {
                        event = e.trim().to_owned();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push(d.strip_prefix(' ').unwrap_or(d).to_owned());
                    } else if let Some(id) = line.strip_prefix("id:") {
                        self.last_id = Some(id.trim().to_owned());
                    }
                }
                if data.is_empty() && event == "message" {
                    continue; // keep-alive comment
                }
                return Some((event, data.join("\n")));
            }
            match self.stream.next().await {
                Some(Ok(chunk)) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }

    /// The next event named `name` within `timeout`.
    pub async fn next_named(&mut self, name: &str, timeout: Duration) -> Option<String> {
        tokio::time::timeout(timeout, async {
            while let Some((e, d)) = self.next().await {
                if e == name {
                    return Some(d);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
    }
}

/// A unix-socket proxy in front of the real engine that counts the engine
/// calls going through it by kind, so tests can assert how often the
/// sidecar really called Docker. It runs on the test's runtime.
pub struct CountingProxy {
    pub socket: PathBuf,
    counts: Arc<Mutex<HashMap<&'static str, u64>>>,
    _dir: tempfile::TempDir,
}

impl CountingProxy {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let counts: Arc<Mutex<HashMap<&'static str, u64>>> = Arc::default();
        let c2 = counts.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let counts = c2.clone();
                tokio::spawn(async move {
                    let Ok(upstream) = tokio::net::UnixStream::connect("/var/run/docker.sock").await else { return };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut ur, mut uw) = upstream.into_split();
                    let up = async move {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        const NEEDLES: [(&[u8], &str); 3] =
                            [(b"/stats?", "stats"), (b"/containers/json?", "list"), (b"/json HTTP", "inspect")];
                        let mut buf = vec![0u8; 16 * 1024];
                        // Per needle, the last len-1 bytes seen: a needle split across reads is
                        // found once, and none is counted twice (a tail is shorter than its needle).
                        let mut tails: Vec<Vec<u8>> = vec![Vec::new(); NEEDLES.len()];
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            {
                                let mut c = counts.lock().unwrap();
                                for (i, (needle, kind)) in NEEDLES.iter().enumerate() {
                                    let mut hay = std::mem::take(&mut tails[i]);
                                    hay.extend_from_slice(&buf[..n]);
                                    let found = hay.windows(needle.len()).filter(|w| w == needle).count() as u64;
                                    *c.entry(*kind).or_default() += found;
                                    let keep = hay.len().min(needle.len() - 1);
                                    tails[i] = hay[hay.len() - keep..].to_vec();
                                }
                            }
                            if uw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = uw.shutdown().await;
                    };
                    let down = async move {
                        let _ = tokio::io::copy(&mut ur, &mut cw).await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        Self { socket, counts, _dir: dir }
    }

    pub fn docker_host(&self) -> String {
        format!("--docker-host=unix://{}", self.socket.display())
    }

    pub fn count(&self, kind: &str) -> u64 {
        self.counts.lock().unwrap().get(kind).copied().unwrap_or(0)
    }
}
