//! `dockward-sidecar join`: enrolment in one step. The sidecar makes its TLS
//! identity, presents the console's one-time join token and its certificate's
//! fingerprint to the console's agent port (over TLS, pinning the console's
//! certificate from the command, so the token goes nowhere else), keeps the
//! long-term secret it receives, and serves. The enrolment is written to the
//! audit log when the sidecar starts (`host.enrolled`); a restart finds the
//! secret and does not join again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, Request, Uri};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use shared::{EnrolAnswer, EnrolRequest, JoinToken};
use tls::Fingerprint;

use crate::audit::{AuditLog, Caller, Draft};

/// The console's agent port when its URL names none.
pub const AGENT_PORT: u16 = 7443;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);
const ANSWER_MAX: usize = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("--console {0:?}: {1}")]
    BadUrl(String, String),
    #[error(transparent)]
    Token(#[from] shared::enrol::TokenError),
    #[error(transparent)]
    Identity(#[from] tls::IdentityError),
    #[error("join needs DOCKWARD_SECRET_FILE: the file where the secret it receives is kept")]
    NoSecretFile,
    #[error("cannot reach the console at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(
        "the console at {url} presented the certificate {presented}, not the one pinned ({pinned}): nothing was sent to it"
    )]
    WrongConsole { url: String, presented: String, pinned: String },
    #[error("the console refused the enrolment (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    #[error("the console's answer is not an enrolment: {0}")]
    BadAnswer(String),
    #[error("cannot keep the credentials: {0}")]
    Store(String),
}

/// What a join leaves beside the secret: who enrolled this host, and
/// whether the audit log says so yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolment {
    pub host: String,
    pub console: String,
    pub console_fingerprint: String,
    pub at: String,
    pub audited: bool,
}

/// `<secret>.enrolment.json`.
pub fn enrolment_file(secret: &Path) -> PathBuf {
    let mut p = secret.as_os_str().to_owned();
    p.push(".enrolment.json");
    PathBuf::from(p)
}

/// Whether this host already holds a secret (so `join` only serves).
pub fn already_enrolled(secret: &Path) -> bool {
    std::fs::metadata(secret).is_ok_and(|m| m.len() > 0)
}

/// The console's agent URL: `https://host[:port]`, nothing else.
pub(crate) fn parse_console(url: &str) -> Result<(String, u16), JoinError> {
    let bad = |why: &str| JoinError::BadUrl(url.to_owned(), why.to_owned());
    let uri: Uri = url.parse().map_err(|_| bad("not a URL (https://host:port)"))?;
    if uri.scheme_str() != Some("https") {
        return Err(bad("must start with https://: the token and the secret cross it"));
    }
    if uri.path_and_query().is_some_and(|p| p.as_str() != "/" && !p.as_str().is_empty()) {
        return Err(bad("must be https://host:port, with no path"));
    }
    let host = uri.host().ok_or_else(|| bad("names no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    Ok((host, uri.port_u16().unwrap_or(AGENT_PORT)))
}

/// Enrols this host with the console and keeps the credentials.
pub async fn join(
    console: &str,
    pin: Fingerprint,
    token: &str,
    cert: &Path,
    key: &Path,
    secret_file: Option<&Path>,
) -> Result<Enrolment, JoinError> {
    let secret_file = secret_file.ok_or(JoinError::NoSecretFile)?;
    let token = JoinToken::parse(token)?;
    let (host, port) = parse_console(console)?;
    let (id, _) = tls::Identity::load_or_create(cert, key)?;
    let request = EnrolRequest { token: token.as_str().to_owned(), fingerprint: id.fingerprint.to_string() };
    let body = serde_json::to_vec(&request).map_err(|e| JoinError::Store(e.to_string()))?;
    let answer = post_enrol(console, &host, port, pin, body).await?;
    if answer.secret.len() < crate::auth::MIN_SECRET_BYTES || answer.host.is_empty() || answer.host.len() > 64 {
        return Err(JoinError::BadAnswer("a secret shorter than 32 bytes or a bad host name".into()));
    }
    let store = |e: tls::IdentityError| JoinError::Store(e.to_string());
    tls::identity::write_new(secret_file, format!("{}\n", answer.secret).as_bytes(), 0o600).map_err(store)?;
    let enrolment = Enrolment {
        host: answer.host,
        console: console.to_owned(),
        console_fingerprint: pin.to_string(),
        at: crate::audit::now_rfc3339(),
        audited: false,
    };
    write_enrolment(secret_file, &enrolment)?;
    tracing::info!(host = %enrolment.host, console, "enrolled: this host now holds its own secret");
    Ok(enrolment)
}

/// The enrolment kept beside `secret_file`, if this host joined a console.
pub fn read_enrolment(secret_file: &Path) -> Option<Enrolment> {
    let text = std::fs::read(enrolment_file(secret_file)).ok()?;
    serde_json::from_slice(&text).ok()
}

fn write_enrolment(secret_file: &Path, e: &Enrolment) -> Result<(), JoinError> {
    let json = serde_json::to_vec_pretty(e).map_err(|e| JoinError::Store(e.to_string()))?;
    tls::identity::write_new(&enrolment_file(secret_file), &json, 0o600).map_err(|e| JoinError::Store(e.to_string()))
}

/// A TLS connection to the console's agent port, its certificate pinned:
/// another certificate ends the handshake before a byte is sent.
pub(crate) async fn connect_console(
    url: &str,
    host: &str,
    port: u16,
    pin: Fingerprint,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, JoinError> {
    let unreachable = |reason: String| JoinError::Unreachable { url: url.to_owned(), reason };
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect((host, port)))
        .await
        .map_err(|_| unreachable("timed out connecting".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let verifier = Arc::new(tls::PinVerifier::new(tls::Pins::fixed(vec![pin])));
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls::client_config(verifier.clone())));
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| unreachable(e.to_string()))?;
    tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|_| unreachable("timed out in the TLS handshake".into()))?
        .map_err(|e| match verifier.refused() {
            Some(presented) => JoinError::WrongConsole {
                url: url.to_owned(),
                presented: presented.to_string(),
                pinned: pin.to_string(),
            },
            None => unreachable(e.to_string()),
        })
}

/// `POST /enrol` over TLS to the console, its certificate pinned.
async fn post_enrol(
    url: &str,
    host: &str,
    port: u16,
    pin: Fingerprint,
    body: Vec<u8>,
) -> Result<EnrolAnswer, JoinError> {
    let unreachable = |reason: String| JoinError::Unreachable { url: url.to_owned(), reason };
    let stream = connect_console(url, host, port, pin).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| unreachable(e.to_string()))?;
    tokio::spawn(conn);
    let req = Request::post("/enrol")
        .header(header::HOST, host)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| unreachable(e.to_string()))?;
    let resp = tokio::time::timeout(ANSWER_TIMEOUT, sender.send_request(req))
        .await
        .map_err(|_| unreachable("no answer in time".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    let status = resp.status();
    let bytes = Limited::new(resp.into_body(), ANSWER_MAX)
        .collect()
        .await
        .map_err(|e| JoinError::BadAnswer(e.to_string()))?
        .to_bytes();
    if !status.is_success() {
        let message = serde_json::from_slice::<shared::ErrorBody>(&bytes)
            .map(|b| b.error.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).chars().take(300).collect());
        return Err(JoinError::Refused { status: status.as_u16(), message });
    }
    serde_json::from_slice(&bytes).map_err(|e| JoinError::BadAnswer(e.to_string()))
}

/// At start: writes a join not yet in the audit log (`host.enrolled`), then
/// marks it written. A failure is logged and tried again at the next start.
pub async fn audit_enrolment(audit: &AuditLog, secret_file: Option<&Path>) {
    let Some(secret_file) = secret_file else { return };
    let Ok(text) = std::fs::read(enrolment_file(secret_file)) else { return };
    let Ok(mut e) = serde_json::from_slice::<Enrolment>(&text) else {
        tracing::warn!(file = %enrolment_file(secret_file).display(), "unreadable enrolment record; not audited");
        return;
    };
    if e.audited {
        return;
    }
    let caller = Caller { request_id: "join".into(), client: "console".into(), actor: None };
    let mut draft = Draft::new(&caller, "host.enrolled");
    draft
        .target(e.host.clone(), None)
        .param("console", &e.console)
        .param("console_fingerprint", &e.console_fingerprint)
        .param("at", &e.at);
    match audit.commit(draft, shared::Outcome::Ok, None).await {
        Ok(_) => {
            e.audited = true;
            if let Err(err) = write_enrolment(secret_file, &e) {
                tracing::error!(error = %err, "the enrolment is audited but could not be marked so");
            }
        }
        Err(err) => tracing::error!(error = %err, "cannot audit the enrolment; trying again at the next start"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_urls_are_https_host_and_port_only() {
        assert_eq!(parse_console("https://console.example:8443").unwrap(), ("console.example".into(), 8443));
        assert_eq!(parse_console("https://10.0.0.1").unwrap(), ("10.0.0.1".into(), AGENT_PORT));
        assert_eq!(parse_console("https://[::1]:7443/").unwrap(), ("::1".into(), 7443));
        for bad in ["http://console:7443", "console:7443", "https://console:7443/enrol", "", "https://"] {
            assert!(parse_console(bad).is_err(), "{bad}");
        }
    }
}
