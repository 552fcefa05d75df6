//! A client for one sidecar: its name, URL, secret and pins. Over `https://`
//! the connection trusts exactly the certificates pinned for the host
//! (`<secrets dir>/<name>.pin`); any other fails the handshake, before a
//! request or the secret is sent, and the host shows "identity changed".
//! `http://` hosts are shown "unencrypted". Requests are
//! `shared::Call`s, built from the verb table; every call carries the secret
//! and, when made for a user (reads too, mutations always), the acting
//! user's name; only the fleet hub's background polls carry none.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use reqwest::redirect::Policy;
use serde::de::DeserializeOwned;
use shared::{Call, ErrorBody, Method};

pub use super::host_secret::HostSecret;
use super::metrics::Metrics;
use super::tunnel::{Tunnel, Tunnels};
use crate::error::ConsoleError;

/// Largest JSON answer read from a sidecar for a verb: anything longer is
/// refused as broken, not buffered.
fn answer_max(verb: shared::Verb) -> usize {
    use shared::Verb::*;
    match verb {
        // A log page: 8 MiB of text cut by the sidecar, up to 6 bytes per
        // control character once escaped in JSON, plus each line's fields.
        Logs => 64 << 20,
        // Thousands of containers with their labels, ports and mounts; every
        // volume and image with its size.
        ListContainers | Disk => 32 << 20,
        // Up to 1 000 records (`AUDIT_PAGE_MAX`) of a few KiB each.
        Audit => 16 << 20,
        // One container; one round of samples; one container's history (an
        // hour of points); the chain's summary; a prune's list of what went.
        InspectContainer | Stats | StatsHistory | AuditVerify | Prune | Updates => 8 << 20,
        // Small reports (the API's own description too), or streams that are
        // not read through `call`.
        Healthz | Metrics | Restart | Events | Pull | OpenApi | Revoke | Recreate => 1 << 20,
    }
}
/// Largest error body read from a sidecar.
const ERROR_MAX_BYTES: usize = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    #[error("{1}: unreachable ({0})")]
    Unreachable(String, String),
    #[error(
        "{host}: identity changed: it presented the certificate {presented}, which is not pinned; nothing was sent to it \
         (if its certificate was renewed, add the new fingerprint to its pin file)"
    )]
    IdentityChanged { host: String, presented: String },
    #[error("{host}: {message}")]
    Refused { message: String, status: u16, host: String, code: String, engine: Option<Box<shared::EngineProblem>> },
}

impl SidecarError {
    /// The sidecar's diagnosis, when it answered that it cannot use its engine.
    pub fn engine_problem(&self) -> Option<&shared::EngineProblem> {
        match self {
            Self::Refused { engine, .. } => engine.as_deref(),
            Self::Unreachable(..) | Self::IdentityChanged { .. } => None,
        }
    }

    /// The fingerprint a host presented instead of a pinned one.
    pub fn identity_changed(&self) -> Option<&str> {
        match self {
            Self::IdentityChanged { presented, .. } => Some(presented),
            _ => None,
        }
    }
}

impl From<SidecarError> for ConsoleError {
    fn from(e: SidecarError) -> Self {
        match e {
            SidecarError::Unreachable(reason, host) => ConsoleError::HostUnreachable { host, reason },
            SidecarError::IdentityChanged { host, presented } => ConsoleError::HostUnreachable {
                host,
                reason: format!(
                    "identity changed: it presented {presented}, which is not pinned; nothing was sent to it"
                ),
            },
            SidecarError::Refused { message, status, host, code, .. } => {
                ConsoleError::SidecarRefused { host, status, code, message }
            }
        }
    }
}

impl SidecarError {
    fn refused(host: &str, status: u16, body: &str) -> Self {
        match serde_json::from_str::<ErrorBody>(body) {
            Ok(b) => Self::Refused {
                message: b.error.message,
                status,
                host: host.to_owned(),
                code: serde_json::to_value(b.error.code)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                engine: b.error.engine.map(Box::new),
            },
            Err(_) => Self::Refused {
                message: format!("HTTP {status}"),
                status,
                host: host.to_owned(),
                code: String::new(),
                engine: None,
            },
        }
    }
}

/// How a host is reached.
enum Link {
    /// The console connects to the sidecar's URL.
    Direct {
        /// What an `https://` host is trusted by; `None` for `http://`.
        pins: Option<Arc<tls::PinVerifier>>,
        http: reqwest::Client,
    },
    /// The sidecar dials the console (an outbound agent).
    Tunnel(Arc<Tunnel>),
}

/// An answer's body, from either link.
type AnswerBody = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// A sidecar's answer, whichever way it came.
pub struct Answer(axum::http::Response<AnswerBody>);

impl Answer {
    pub fn status(&self) -> u16 {
        self.0.status().as_u16()
    }

    fn header(&self, name: axum::http::HeaderName) -> Option<&str> {
        self.0.headers().get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as it arrives.
    pub fn bytes_stream(self) -> impl futures_util::Stream<Item = Result<Bytes, String>> + Send {
        use futures_util::StreamExt;
        http_body_util::BodyDataStream::new(self.0.into_body()).map(|r| r.map_err(|e| e.to_string()))
    }
}

/// How long a verb's answer may take, all of it read; streams have no limit.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting to a host may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Sidecar {
    pub name: String,
    /// Its URL, or `outbound`.
    pub base: String,
    secret: Arc<HostSecret>,
    link: Link,
    /// Each call's latency, by this host and the verb.
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Sidecar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sidecar").field("name", &self.name).field("base", &self.base).finish()
    }
}

impl Sidecar {
    fn new(
        name: &str,
        base: &str,
        secret: HostSecret,
        pins: Option<tls::Pins>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, String> {
        let pins = pins.map(|p| Arc::new(tls::PinVerifier::new(p)));
        // A sidecar never redirects: a 3xx is an answer (refused), never followed.
        let b = reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT).redirect(Policy::none());
        let b = match &pins {
            Some(v) => b.use_preconfigured_tls(tls::client_config(v.clone())).https_only(true),
            // Plain HTTP; and never the public CAs (only the tag lister trusts those).
            None => b.tls_built_in_root_certs(false),
        };
        let http = b.build().map_err(|e| format!("host {name}: {e}"))?;
        Ok(Self {
            name: name.to_owned(),
            base: base.trim_end_matches('/').to_owned(),
            secret: Arc::new(secret),
            link: Link::Direct { pins, http },
            metrics,
        })
    }

    fn outbound(name: &str, secret: HostSecret, tunnels: &Tunnels, metrics: Arc<Metrics>) -> Self {
        let secret = Arc::new(secret);
        Self {
            name: name.to_owned(),
            base: shared::OUTBOUND.to_owned(),
            link: Link::Tunnel(tunnels.slot(name, secret.clone())),
            secret,
            metrics,
        }
    }

    /// The fingerprints it is pinned by (none for `http://` and outbound hosts).
    pub fn pins(&self) -> Vec<tls::Fingerprint> {
        match &self.link {
            Link::Direct { pins: Some(v), .. } => v.pins(),
            _ => Vec::new(),
        }
    }

    /// Whether the host is reached over plain HTTP (its secret in clear).
    pub fn unencrypted(&self) -> bool {
        matches!(self.link, Link::Direct { pins: None, .. })
    }

    /// Whether its sidecar dials the console.
    pub fn is_outbound(&self) -> bool {
        matches!(self.link, Link::Tunnel(_))
    }

    /// Where an outbound host's tunnel comes from, while it is connected.
    pub fn tunnel_peer(&self) -> Option<std::net::SocketAddr> {
        match &self.link {
            Link::Tunnel(t) => t.peer(),
            Link::Direct { .. } => None,
        }
    }

    fn unreachable(&self, reason: String) -> SidecarError {
        // A certificate that is not pinned fails the handshake: say so, not "unreachable".
        if let Link::Direct { pins: Some(v), .. } = &self.link {
            if let Some(presented) = v.refused() {
                return SidecarError::IdentityChanged { host: self.name.clone(), presented: presented.to_string() };
            }
        }
        SidecarError::Unreachable(reason, self.name.clone())
    }

    /// Sends `call`, with the secret and, when made for a user, the actor.
    async fn send(
        &self,
        call: &Call,
        actor: Option<&str>,
        body: Option<&serde_json::Value>,
        when: Conditions<'_>,
    ) -> Result<Answer, SidecarError> {
        use axum::http::header;
        debug_assert!(actor.is_some() || !call.verb.is_mutation(), "{:?} without an actor", call.verb);
        debug_assert_eq!(body.is_some(), call.verb.spec().body, "{:?}: body mismatch", call.verb);
        let method = match call.method() {
            Method::Get => axum::http::Method::GET,
            Method::Post => axum::http::Method::POST,
        };
        let body = match body {
            Some(b) => Some(serde_json::to_vec(b).map_err(|e| self.unreachable(e.to_string()))?),
            None => None,
        };
        let mut headers = axum::http::HeaderMap::new();
        let bearer = format!("Bearer {}", self.secret.get());
        let value = |v: &str| axum::http::HeaderValue::from_str(v).map_err(|e| self.unreachable(e.to_string()));
        headers.insert(header::AUTHORIZATION, value(&bearer)?);
        if let Some(a) = actor {
            headers.insert(shared::ACTOR_HEADER, value(a)?);
        }
        if let Some(tag) = when.etag {
            headers.insert(header::IF_NONE_MATCH, value(tag)?);
        }
        if when.background {
            headers.insert(shared::BACKGROUND_HEADER, axum::http::HeaderValue::from_static("1"));
        }
        if body.is_some() {
            headers.insert(header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"));
        }
        match &self.link {
            Link::Direct { http, .. } => {
                let mut req = http.request(method, format!("{}{}", self.base, call.path())).headers(headers);
                if let Some(b) = body {
                    req = req.body(b);
                }
                let r = req.send().await.map_err(|e| self.unreachable(e.without_url().to_string()))?;
                let r = axum::http::Response::from(r);
                Ok(Answer(r.map(|b| b.map_err(|e| e.without_url().into()).boxed())))
            }
            Link::Tunnel(t) => {
                let mut req = axum::http::Request::builder()
                    .method(method)
                    .uri(format!("https://{}{}", self.name, call.path()))
                    .body(Full::new(Bytes::from(body.unwrap_or_default())))
                    .map_err(|e| self.unreachable(e.to_string()))?;
                *req.headers_mut() = headers;
                let r = t.send(req).await.map_err(|e| self.unreachable(e))?;
                Ok(Answer(r.map(|b| b.map_err(Into::into).boxed())))
            }
        }
    }

    /// A verb's JSON answer. `actor` names the acting user (mutations need
    /// one); `body` is the verb's JSON body, for the verbs that take one.
    pub async fn call<T: DeserializeOwned>(
        &self,
        call: &Call,
        actor: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Result<T, SidecarError> {
        let started = Instant::now();
        let answer = async {
            let r = self.send(call, actor, body, Conditions::default()).await?;
            self.decode(r, answer_max(call.verb)).await
        };
        let answer = self.in_time(answer).await;
        self.metrics.sidecar_call(&self.name, call.verb, started.elapsed().as_secs_f64());
        answer
    }

    async fn in_time<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, SidecarError>>,
    ) -> Result<T, SidecarError> {
        tokio::time::timeout(CALL_TIMEOUT, f)
            .await
            .unwrap_or_else(|_| Err(self.unreachable(format!("no whole answer within {} s", CALL_TIMEOUT.as_secs()))))
    }

    /// A read verb's JSON answer and its `ETag`, or `None` when the sidecar
    /// says it is still `etag` (`304 Not Modified`: nothing read, nothing decoded).
    pub async fn call_if_changed<T: DeserializeOwned>(
        &self,
        call: &Call,
        etag: Option<&str>,
        background: bool,
    ) -> Result<Option<(T, Option<String>)>, SidecarError> {
        let started = Instant::now();
        let answer = async {
            let r = self.send(call, None, None, Conditions { etag, background }).await?;
            if r.status() == 304 {
                return Ok(None);
            }
            // An ETag is quoted visible ASCII; anything else is not kept.
            let tag = r.header(axum::http::header::ETAG).filter(|t| t.len() <= 64).map(str::to_owned);
            Ok(Some((self.decode(r, answer_max(call.verb)).await?, tag)))
        };
        let answer = self.in_time(answer).await;
        self.metrics.sidecar_call(&self.name, call.verb, started.elapsed().as_secs_f64());
        answer
    }

    /// A verb's streaming answer (Server-Sent Events, pull's NDJSON), with no
    /// overall timeout.
    pub async fn stream(
        &self,
        call: &Call,
        actor: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, SidecarError> {
        let started = Instant::now();
        let answer = async {
            let r = self.send(call, actor, body, Conditions::default()).await?;
            self.ok(r).await
        }
        .await;
        self.metrics.sidecar_call(&self.name, call.verb, started.elapsed().as_secs_f64());
        answer
    }

    /// The body, or an error once it passes `max` bytes (read no further).
    async fn read_capped(&self, r: Answer, max: usize) -> Result<Vec<u8>, SidecarError> {
        let mut body = r.0.into_body();
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| self.unreachable(e.to_string()))?;
            let Ok(chunk) = frame.into_data() else { continue };
            if out.len() + chunk.len() > max {
                return Err(SidecarError::Unreachable(format!("an answer larger than {max} bytes"), self.name.clone()));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    async fn ok(&self, r: Answer) -> Result<Answer, SidecarError> {
        if (200..300).contains(&r.status()) {
            Ok(r)
        } else {
            let status = r.status();
            let body = self.read_capped(r, ERROR_MAX_BYTES).await.unwrap_or_default();
            Err(SidecarError::refused(&self.name, status, &String::from_utf8_lossy(&body)))
        }
    }

    async fn decode<T: DeserializeOwned>(&self, r: Answer, max: usize) -> Result<T, SidecarError> {
        let r = self.ok(r).await?;
        let bytes = self.read_capped(r, max).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| SidecarError::Unreachable(format!("bad answer: {e}"), self.name.clone()))
    }
}

/// What every host's client shares: the metrics its calls are timed into,
/// and the tunnels outbound hosts dial in on.
#[derive(Clone, Default)]
pub struct Links {
    pub metrics: Arc<Metrics>,
    pub tunnels: Arc<Tunnels>,
}

/// Parses `DOCKWARD_HOSTS` (`name=url,…`, or `name=outbound` for a host
/// whose sidecar dials the console) and reads each host's secret from
/// `<secrets_dir>/<name>` and, for an `https://` host, the fingerprints it
/// is pinned by from `<secrets_dir>/<name>.pin`.
/// A read's conditions: the `ETag` the caller holds, and whether it reads
/// in the background (history), not for a viewer.
#[derive(Default, Clone, Copy)]
struct Conditions<'a> {
    etag: Option<&'a str>,
    background: bool,
}

pub fn parse_hosts(spec: &str, secrets_dir: &std::path::Path, links: &Links) -> Result<Vec<Sidecar>, String> {
    let mut out: Vec<Sidecar> = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, url) =
            item.split_once('=').ok_or_else(|| format!("DOCKWARD_HOSTS entry {item:?} is not name=url"))?;
        let (name, url) = (name.trim(), url.trim());
        if !shared::valid_host_name(name) {
            return Err(format!("host name {name:?}: use 1–64 letters, digits, '-', '_' or '.'"));
        }
        if !(url.starts_with("http://") || url.starts_with("https://") || url == shared::OUTBOUND) {
            return Err(format!(
                "host {name}: URL {url:?} must start with http:// or https://, or be `{}` (its sidecar dials the console)",
                shared::OUTBOUND
            ));
        }
        if out.iter().any(|s| s.name == name) {
            return Err(format!("host {name} is listed twice"));
        }
        out.push(host(name, url, secrets_dir, links)?);
    }
    Ok(out)
}

/// Host `name` at `url`, its secret in `<dir>/<name>` and, for `https://`,
/// its pins in `<dir>/<name>.pin`. DOCKWARD_HOSTS names its directory; an
/// enrolled host's is the enrolment directory.
pub fn host(name: &str, url: &str, dir: &std::path::Path, links: &Links) -> Result<Sidecar, String> {
    host_files(name, url, &dir.join(name), &dir.join(format!("{name}.pin")), links)
}

/// Host `name` at `url` (or `outbound`), its secret in `secret_file` and,
/// for `https://`, its pins in `pin_file` (discovered hosts share theirs).
pub fn host_files(
    name: &str,
    url: &str,
    secret_file: &std::path::Path,
    pin_file: &std::path::Path,
    links: &Links,
) -> Result<Sidecar, String> {
    let secret = HostSecret::load(name, secret_file.to_path_buf())?;
    if url == shared::OUTBOUND {
        return Ok(Sidecar::outbound(name, secret, &links.tunnels, links.metrics.clone()));
    }
    let pins = if url.starts_with("https://") {
        Some(tls::Pins::from_file(pin_file.to_path_buf()).map_err(|e| {
            format!(
                "host {name}: {e}. An https:// host is trusted by the fingerprint of its certificate: \
                 `dockward-sidecar tls fingerprint` on that host prints it"
            )
        })?)
    } else {
        tracing::warn!(host = name, %url, "plain HTTP: this host's secret and answers cross the network in clear");
        None
    };
    Sidecar::new(name, url, secret, pins, links.metrics.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-shot HTTP server on loopback answering `response`; counts its connections.
    async fn serve_once(response: Vec<u8>) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let h = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let _ = sock.write_all(&response).await;
                let _ = sock.shutdown().await;
            }
        });
        (format!("http://{addr}"), hits)
    }

    fn a_host(url: &str, dir: &std::path::Path) -> Sidecar {
        std::fs::write(dir.join("h"), "a-secret-0123456789abcdef0123456789abcdef").unwrap();
        parse_hosts(&format!("h={url}"), dir, &Links::default()).unwrap().remove(0)
    }

    #[tokio::test]
    async fn redirects_are_refusals_and_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let (elsewhere, hits) = serve_once(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".to_vec()).await;
        let redirect = format!("HTTP/1.1 302 Found\r\nlocation: {elsewhere}/v1/stats\r\ncontent-length: 0\r\n\r\n");
        let (url, _) = serve_once(redirect.into_bytes()).await;
        let err = a_host(&url, dir.path())
            .call::<serde_json::Value>(&Call::new(shared::Verb::Stats, &[]), None, None)
            .await
            .unwrap_err();
        assert!(matches!(err, SidecarError::Refused { status: 302, .. }), "{err:?}");
        assert_eq!(ConsoleError::from(err).status(), 502);
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "the redirect was followed");
    }

    #[tokio::test]
    async fn answers_are_read_up_to_a_cap() {
        let dir = tempfile::tempdir().unwrap();
        let body = format!("[{}0]", "0,".repeat(5000));
        let resp = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
        let (url, _) = serve_once(resp.into_bytes()).await;
        let h = a_host(&url, dir.path());
        let stats = Call::new(shared::Verb::Stats, &[]);
        let r = h.send(&stats, None, None, Conditions::default()).await.unwrap();
        let err = h.read_capped(r, 1024).await.unwrap_err();
        assert!(err.to_string().contains("larger than 1024 bytes"), "{err}");
        let r = h.send(&stats, None, None, Conditions::default()).await.unwrap();
        assert_eq!(h.read_capped(r, 1 << 20).await.unwrap().len(), body.len());
    }

    #[tokio::test]
    async fn a_small_verb_answer_past_its_cap_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        // 2 MiB for a restart report (capped at 1 MiB); the same bytes as a stats round are fine.
        let body = format!("\"{}\"", "x".repeat(2 << 20));
        let resp = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
        let (url, _) = serve_once(resp.into_bytes()).await;
        let h = a_host(&url, dir.path());
        let restart = Call::new(shared::Verb::Restart, &["web"]);
        let err = h.call::<serde_json::Value>(&restart, Some("alice"), None).await.unwrap_err();
        assert!(err.to_string().contains("larger than 1048576 bytes"), "{err}");
        let stats = h.call::<serde_json::Value>(&Call::new(shared::Verb::Stats, &[]), None, None).await;
        assert!(stats.is_ok(), "{stats:?}");
        // A log page at the sidecar's cut, escaped at worst, still fits.
        assert!(answer_max(shared::Verb::Logs) >= 6 * (8 << 20));
        assert!(shared::VERBS.iter().all(|v| answer_max(v.verb) <= 64 << 20));
    }

    #[tokio::test]
    async fn calls_are_timed_by_host_and_verb_failures_too() {
        let dir = tempfile::tempdir().unwrap();
        for h in ["db1", "gone"] {
            std::fs::write(dir.path().join(h), "a-secret-0123456789abcdef0123456789abcdef").unwrap();
        }
        let (url, _) = serve_once(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n[]".to_vec()).await;
        // Nothing listens there: the call fails to connect.
        let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let links = Links::default();
        let metrics = links.metrics.clone();
        let hosts = parse_hosts(&format!("db1={url},gone=http://{gone}"), dir.path(), &links).unwrap();
        let list = Call::new(shared::Verb::ListContainers, &[]);
        let answer: Vec<serde_json::Value> = hosts[0].call(&list, None, None).await.unwrap();
        assert!(answer.is_empty());
        let failed = hosts[1].call::<serde_json::Value>(&list, None, None).await;
        assert!(matches!(failed, Err(SidecarError::Unreachable(..))), "{failed:?}");
        let text = metrics.render([]);
        for host in ["db1", "gone"] {
            let count = format!(
                "dockward_web_sidecar_call_duration_seconds_count{{host=\"{host}\",verb=\"list_containers\"}} 1\n"
            );
            assert!(text.contains(&count), "{count:?} missing: {text}");
        }
    }

    #[test]
    fn hosts_need_a_readable_long_secret() {
        let dir = tempfile::tempdir().unwrap();
        let e = parse_hosts("local=http://sidecar:7700", dir.path(), &Links::default()).unwrap_err();
        assert!(e.contains("cannot read its secret"), "{e}");
        std::fs::write(dir.path().join("local"), "short").unwrap();
        let e = parse_hosts("local=http://sidecar:7700", dir.path(), &Links::default()).unwrap_err();
        assert!(e.contains("shorter than 32 bytes"), "{e}");
    }
}
