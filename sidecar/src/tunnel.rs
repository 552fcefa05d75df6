//! Outbound agent (`--connect`): the sidecar dials its console's agent port
//! over TLS, pinning the console's certificate, asks for the connection to be
//! upgraded to the tunnel protocol (authenticated with this host's name and
//! secret), and then serves its own router over HTTP/2 on that connection,
//! the console being the client. The same router as the listener's: the same
//! verbs, authentication, audit and rate limits. Nothing is forwarded the
//! other way: the sidecar only answers requests, so the connection reaches
//! nothing but its console. A lost connection is dialled again with
//! exponential backoff (1 s to 60 s) and jitter.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tls::Fingerprint;
use tower::ServiceExt;

use crate::config::ServeArgs;
use crate::enrol::{connect_console, parse_console, read_enrolment, JoinError};

const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A tunnel that lived this long starts the backoff afresh.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);
/// HTTP/2 pings: a silent console is given up after interval + timeout.
const PING_EVERY: Duration = Duration::from_secs(15);
const PING_TIMEOUT: Duration = Duration::from_secs(15);
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(20);
/// Most requests the console may have in flight on the tunnel at once.
const MAX_STREAMS: u32 = 512;

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error(
        "--connect needs the console's pin (DOCKWARD_CONNECT_PIN) and this host's name (DOCKWARD_CONNECT_AS), \
         or an enrolment beside the secret file (`join --outbound`)"
    )]
    Incomplete,
    #[error("--connect-as {0:?}: use 1–64 letters, digits, '-', '_' or '.'")]
    BadName(String),
    #[error("--connect needs the secret in a file (DOCKWARD_SECRET_FILE) or DOCKWARD_SECRET")]
    NoSecret,
    #[error(transparent)]
    Url(#[from] JoinError),
}

/// Where the secret the tunnel presents comes from: read at each dial, so a
/// rotated file is used by the next connection.
#[derive(Clone)]
enum Secret {
    Value(String),
    File(PathBuf),
}

/// A resolved `--connect`.
#[derive(Clone)]
pub struct Outbound {
    pub url: String,
    host: String,
    port: u16,
    pub pin: Fingerprint,
    pub name: String,
    secret: Secret,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound").field("url", &self.url).field("name", &self.name).finish_non_exhaustive()
    }
}

impl Outbound {
    /// `--connect` with its pin and name, from the flags or the enrolment.
    pub fn from_args(args: &ServeArgs) -> Result<Option<Self>, OutboundError> {
        let Some(url) = &args.outbound.connect else { return Ok(None) };
        let (host, port) = parse_console(url)?;
        let enrolment = args.secret_file.as_deref().and_then(read_enrolment);
        let pin = args
            .outbound
            .connect_pin
            .or_else(|| enrolment.as_ref().and_then(|e| e.console_fingerprint.parse().ok()))
            .ok_or(OutboundError::Incomplete)?;
        let name =
            args.outbound.connect_as.clone().or_else(|| enrolment.map(|e| e.host)).ok_or(OutboundError::Incomplete)?;
        if !shared::valid_host_name(&name) {
            return Err(OutboundError::BadName(name));
        }
        let secret = match (&args.secret_file, &args.secret) {
            (Some(f), _) => Secret::File(f.clone()),
            (None, Some(v)) => Secret::Value(v.clone()),
            (None, None) => return Err(OutboundError::NoSecret),
        };
        Ok(Some(Self { url: url.clone(), host, port, pin, name, secret }))
    }

    /// An outbound agent for host `name` with `secret`, dialling `url`
    /// pinned to `pin` (what `from_args` resolves; the bench's stand-ins too).
    pub fn new(url: &str, pin: Fingerprint, name: &str, secret: String) -> Result<Self, OutboundError> {
        let (host, port) = parse_console(url)?;
        Ok(Self { url: url.to_owned(), host, port, pin, name: name.to_owned(), secret: Secret::Value(secret) })
    }

    fn secret(&self) -> Result<String, String> {
        match &self.secret {
            Secret::Value(v) => Ok(v.clone()),
            Secret::File(f) => std::fs::read_to_string(f)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
                .map_err(|e| format!("cannot read the secret from {}: {e}", f.display())),
        }
    }
}

/// Keeps a tunnel to the console open for as long as the process runs.
pub async fn run(out: Outbound, router: Router) {
    let mut backoff = BACKOFF_FIRST;
    loop {
        let started = Instant::now();
        match serve_once(&out, router.clone()).await {
            Ok(()) => tracing::warn!(console = %out.url, "the tunnel to the console closed; dialling again"),
            Err(e) => tracing::warn!(console = %out.url, error = %e, "no tunnel to the console; dialling again"),
        }
        if started.elapsed() >= HEALTHY_AFTER {
            backoff = BACKOFF_FIRST;
        }
        tokio::time::sleep(jitter(backoff)).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Somewhere in the upper half of `d`: hosts cut off together do not all
/// come back in the same instant.
fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    let frac = f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX);
    d.mul_f64(0.5 + 0.5 * frac)
}

/// One tunnel: dial, upgrade, serve until it ends.
async fn serve_once(out: &Outbound, router: Router) -> Result<(), String> {
    let stream = connect_console(&out.url, &out.host, out.port, out.pin).await.map_err(|e| e.to_string())?;
    let peer = stream.get_ref().0.peer_addr().map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn.with_upgrades());
    let secret = out.secret()?;
    let req = Request::get(shared::TUNNEL_PATH)
        .header(header::HOST, &out.host)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, shared::TUNNEL_PROTOCOL)
        .header(header::AUTHORIZATION, format!("Bearer {secret}"))
        .header(shared::TUNNEL_HOST_HEADER, &out.name)
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(UPGRADE_TIMEOUT, sender.send_request(req))
        .await
        .map_err(|_| "the console did not answer the upgrade in time".to_owned())?
        .map_err(|e| e.to_string())?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = resp.status();
        let body = http_body_util::BodyExt::collect(http_body_util::Limited::new(resp.into_body(), 64 << 10));
        let body = match tokio::time::timeout(UPGRADE_TIMEOUT, body).await {
            Ok(Ok(b)) => b.to_bytes(),
            _ => Bytes::new(),
        };
        let message = serde_json::from_slice::<shared::ErrorBody>(&body)
            .map(|b| b.error.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&body).chars().take(300).collect());
        return Err(format!("the console refused the tunnel (HTTP {}): {message}", status.as_u16()));
    }
    let upgraded = tokio::time::timeout(UPGRADE_TIMEOUT, hyper::upgrade::on(resp))
        .await
        .map_err(|_| "the upgrade did not complete in time".to_owned())?
        .map_err(|e| e.to_string())?;
    tracing::info!(console = %out.url, host = %out.name, "tunnel to the console open: serving the verbs over it");
    serve_router(upgraded, peer, router).await
}

/// Serves `router` over HTTP/2 on `io`; each request carries `peer` (the
/// console's address) as its connection info, as the listener's do.
async fn serve_router<I>(io: I, peer: SocketAddr, router: Router) -> Result<(), String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = router.map_request(move |mut req: Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    });
    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(PING_EVERY))
        .keep_alive_timeout(PING_TIMEOUT)
        .max_concurrent_streams(MAX_STREAMS)
        .serve_connection(io, hyper_util::service::TowerToHyperService::new(service))
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_the_upper_half() {
        for _ in 0..100 {
            let d = jitter(Duration::from_secs(8));
            assert!(d >= Duration::from_secs(4) && d <= Duration::from_secs(8), "{d:?}");
        }
    }

    #[test]
    fn connect_needs_a_pin_a_name_and_a_secret() {
        use clap::Parser;
        let parse = |extra: &[&str]| {
            let mut argv = vec!["dockward-sidecar", "--connect", "https://console:7443"];
            argv.extend_from_slice(extra);
            crate::config::Cli::try_parse_from(argv).unwrap().serve
        };
        let pin = format!("sha256:{}", "ab".repeat(32));
        let e = Outbound::from_args(&parse(&[])).unwrap_err();
        assert!(matches!(e, OutboundError::Incomplete), "{e}");
        let e = Outbound::from_args(&parse(&["--connect-pin", &pin, "--connect-as", "edge 1"])).unwrap_err();
        assert!(matches!(e, OutboundError::BadName(_)), "{e}");
        let e = Outbound::from_args(&parse(&["--connect-pin", &pin, "--connect-as", "edge1"])).unwrap_err();
        assert!(matches!(e, OutboundError::NoSecret), "{e}");
        let ok = Outbound::from_args(&parse(&[
            "--connect-pin",
            &pin,
            "--connect-as",
            "edge1",
            "--secret-file",
            "/run/secrets/s",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((ok.name.as_str(), ok.port), ("edge1", 7443));
        let mut args = parse(&[]);
        args.outbound.connect = Some("http://console:7443".into());
        assert!(matches!(Outbound::from_args(&args), Err(OutboundError::Url(_))));
    }
}
