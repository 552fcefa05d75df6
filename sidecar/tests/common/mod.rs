//! Helpers for the sidecar's integration tests: an in-process sidecar, an SSE
//! reader and a counting socket proxy. The Docker helpers (engine, test image,
//! labelled containers) come from the workspace's `testkit` crate.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use sidecar::config::Cli;
use sidecar::server::Server;

/// Versioned: bump when the image's contents change, so a stale local copy is never used.
pub use testkit::*;

pub const SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";
pub const SECRET_B: &str = "test-secret-B-0123456789abcdef0123456789abcdef";

/// An in-process sidecar on 127.0.0.1 with a temporary audit log.
pub struct Sidecar {
    pub base: String,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub state: sidecar::app::App,
}

impl Sidecar {
    pub async fn start(extra: &[&str]) -> Self {
        require_docker();
        let dir = tempfile::tempdir().unwrap();
        let audit = dir.path().join("audit.jsonl");
        let audit = audit.to_str().unwrap().to_owned();
        let mut args: Vec<String> = vec![
            "dockward-sidecar".into(),
            "--listen=127.0.0.1:0".into(),
            format!("--secret={SECRET}"),
            format!("--audit-log={audit}"),
        ];
        if !extra.iter().any(|a| a.starts_with("--stats-ttl")) {
            args.push("--stats-ttl=1s".into());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let cli = Cli::try_parse_from(&args).expect("test args parse");
        let server = Server::start(&cli.serve).await.expect("sidecar starts");
        let base = format!("http://{}", server.addr);
        let state = server.state.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(server.serve(async {
            let _ = rx.await;
        }));
        Self { base, dir, http: reqwest::Client::new(), shutdown: Some(tx), state }
    }

    pub fn audit_path(&self) -> PathBuf {
        self.dir.path().join("audit.jsonl")
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
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Reads Server-Sent Events from a streaming response: (event, data) pairs.
pub struct SseReader {
    stream: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
}

impl SseReader {
    pub fn new(resp: reqwest::Response) -> Self {
        Self { stream: Box::pin(resp.bytes_stream()), buf: String::new() }
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
/// sidecar really called Docker.
pub struct CountingProxy {
    pub socket: PathBuf,
    counts: Arc<std::sync::Mutex<HashMap<&'static str, u64>>>,
    _dir: tempfile::TempDir,
}

impl CountingProxy {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let counts: Arc<std::sync::Mutex<HashMap<&'static str, u64>>> = Arc::default();
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

/// Path of the built sidecar binary (for subprocess tests).
pub fn sidecar_bin() -> &'static str {
    env!("CARGO_BIN_EXE_dockward-sidecar")
}
