//! Outbound agents: hosts whose sidecar dials the console (`outbound` as
//! their address). The sidecar connects to the agent port over TLS (pinning
//! the console), asks `GET /tunnel` to be upgraded with its host name and
//! secret; once the secret is checked (in constant time) the console speaks
//! HTTP/2 to the sidecar over that connection, as a client only: the sidecar
//! answers requests and can send none, so it reaches nothing of the console
//! but its own tunnel. Calls to a host whose tunnel is down fail at once as
//! unreachable; a newer tunnel from the same host replaces the older.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::body::Bytes;
use axum::http::{header, HeaderMap, Request, Response};
use http_body_util::Full;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::host_secret::HostSecret;

/// HTTP/2 pings: a silent sidecar is given up after interval + timeout.
const PING_EVERY: Duration = Duration::from_secs(15);
const PING_TIMEOUT: Duration = Duration::from_secs(15);

/// The tunnel of one outbound host, connected or not.
pub struct Tunnel {
    name: String,
    secret: Mutex<Arc<HostSecret>>,
    link: tokio::sync::watch::Sender<Option<Link>>,
    next: AtomicU64,
}

#[derive(Clone)]
struct Link {
    send: SendRequest<Full<Bytes>>,
    peer: SocketAddr,
    id: u64,
    /// The digest of the secret the tunnel was opened with: a tunnel does
    /// not outlive a change of its host's secret (a rotation, a re-enrolment).
    secret: [u8; 32],
}

/// How long a tunnel may take to be ready for one more request.
const READY_TIMEOUT: Duration = Duration::from_secs(3);

impl Tunnel {
    /// Where the host's tunnel comes from, while it is connected.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.link.borrow().as_ref().map(|l| l.peer)
    }

    /// Sends a request over the tunnel.
    pub async fn send(&self, req: Request<Full<Bytes>>) -> Result<Response<hyper::body::Incoming>, String> {
        let link = self.link.borrow().clone();
        let Some(Link { mut send, id, secret, .. }) = link else {
            return Err("its agent is not connected (an outbound host dials the console)".into());
        };
        if !bool::from(self.digest()[..].ct_eq(&secret[..])) {
            self.detach(id);
            return Err("its secret changed since its agent connected; waiting for it to dial again".into());
        }
        tokio::time::timeout(READY_TIMEOUT, send.ready())
            .await
            .map_err(|_| "the tunnel is not ready".to_owned())?
            .map_err(|e| format!("the tunnel closed: {e}"))?;
        send.send_request(req).await.map_err(|e| e.to_string())
    }

    fn digest(&self) -> [u8; 32] {
        Sha256::digest(lock(&self.secret).get().as_bytes()).into()
    }

    fn accepts(&self, presented: &str) -> bool {
        // Digests: equal lengths, and the comparison takes the same time wherever they differ.
        bool::from(self.digest()[..].ct_eq(&Sha256::digest(presented.as_bytes())[..]))
    }

    fn attach(&self, send: SendRequest<Full<Bytes>>, peer: SocketAddr) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        // A newer tunnel replaces the older, which ends when its last handle is dropped.
        self.link.send_replace(Some(Link { send, peer, id, secret: self.digest() }));
        id
    }

    fn detach(&self, id: u64) {
        self.link.send_if_modified(|l| {
            let ours = l.as_ref().is_some_and(|l| l.id == id);
            if ours {
                *l = None;
            }
            ours
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The console's outbound hosts, by name; kept across fleet rebuilds, so a
/// connected tunnel survives an enrolment of another host.
#[derive(Default)]
pub struct Tunnels {
    slots: Mutex<HashMap<String, Arc<Tunnel>>>,
}

impl Tunnels {
    /// The tunnel of host `name`, made on first use; its secret is `secret`.
    pub fn slot(&self, name: &str, secret: Arc<HostSecret>) -> Arc<Tunnel> {
        let mut slots = lock(&self.slots);
        let t = slots.entry(name.to_owned()).or_insert_with(|| {
            Arc::new(Tunnel {
                name: name.to_owned(),
                secret: Mutex::new(secret.clone()),
                link: tokio::sync::watch::channel(None).0,
                next: AtomicU64::new(1),
            })
        });
        *lock(&t.secret) = secret;
        t.clone()
    }

    /// Forgets every host but `names`; their tunnels close.
    pub fn retain(&self, names: &[String]) {
        lock(&self.slots).retain(|name, t| {
            let keep = names.contains(name);
            if !keep {
                t.link.send_replace(None);
            }
            keep
        });
    }

    fn get(&self, name: &str) -> Option<Arc<Tunnel>> {
        lock(&self.slots).get(name).cloned()
    }
}

/// Why a tunnel is refused. An unknown host and a wrong secret read the
/// same: which names exist is not told to whoever lacks a secret (the log
/// says which it was).
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error("a tunnel is asked for with `Upgrade: {}`", shared::TUNNEL_PROTOCOL)]
    NotAnUpgrade,
    #[error("wrong host name or secret")]
    Refused { host: String, known: bool },
}

impl TunnelError {
    pub fn status(&self) -> u16 {
        match self {
            Self::NotAnUpgrade => 400,
            Self::Refused { .. } => 401,
        }
    }
}

fn header(h: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// `GET /tunnel` on the agent port: checks the host and its secret and
/// answers `101 Switching Protocols`; the connection then carries HTTP/2
/// from the console to the sidecar.
pub fn accept(tunnels: &Tunnels, mut req: Request<Body>, peer: SocketAddr) -> Result<Response<Body>, TunnelError> {
    let h = req.headers();
    let upgrade = header(h, header::UPGRADE).is_some_and(|u| u.eq_ignore_ascii_case(shared::TUNNEL_PROTOCOL));
    if !upgrade {
        return Err(TunnelError::NotAnUpgrade);
    }
    let name = header(h, shared::TUNNEL_HOST_HEADER).unwrap_or_default().chars().take(64).collect::<String>();
    let presented = header(h, header::AUTHORIZATION).and_then(|a| a.strip_prefix("Bearer ")).unwrap_or_default();
    let Some(tunnel) = tunnels.get(&name) else {
        // The same work as for a known name: the answer's time tells nothing either.
        let _ = Sha256::digest(presented.as_bytes())[..].ct_eq(&Sha256::digest(name.as_bytes())[..]);
        return Err(TunnelError::Refused { host: name, known: false });
    };
    if !tunnel.accepts(presented) {
        return Err(TunnelError::Refused { host: name, known: true });
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => return tracing::warn!(host = %tunnel.name, error = %e, "the tunnel's upgrade failed"),
        };
        let handshake = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(PING_EVERY)
            .keep_alive_timeout(PING_TIMEOUT)
            .keep_alive_while_idle(true)
            .handshake::<_, Full<Bytes>>(upgraded)
            .await;
        let (send, conn) = match handshake {
            Ok(pair) => pair,
            Err(e) => return tracing::warn!(host = %tunnel.name, error = %e, "the tunnel's HTTP/2 handshake failed"),
        };
        let id = tunnel.attach(send, peer);
        tracing::info!(host = %tunnel.name, %peer, "an outbound agent connected");
        let ended = conn.await;
        tunnel.detach(id);
        tracing::info!(host = %tunnel.name, %peer, error = ended.err().map(|e| e.to_string()), "an outbound agent's tunnel closed");
    });
    Response::builder()
        .status(axum::http::StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, shared::TUNNEL_PROTOCOL)
        .body(Body::empty())
        .map_err(|_| TunnelError::NotAnUpgrade)
}
