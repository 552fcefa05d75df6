//! The one error type that crosses from the server functions to the browser.
//!
//! Each variant carries what the page needs to say what went wrong, and its
//! HTTP status: the server sets it once, at the edge (`server::routes`), from
//! [`ConsoleError::status`]; the browser renders [`Display`](std::fmt::Display).

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};
use shared::Role;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum ConsoleError {
    /// No session (or it ended): 401.
    NotSignedIn,
    /// The user's role is too weak: 403.
    Forbidden { needed: Role, have: Role },
    /// No grant gives the role on what was asked (a host, an app, the fleet): 403.
    NotGranted { needed: Role, on: String },
    /// The CSRF token is missing or stale, or the request came cross-site: 403.
    Csrf,
    /// The user must change their (generated) password first, at /password: 403.
    PasswordChangeRequired,
    /// An admin must set up two-factor sign-in first, at /access: 403.
    TotpRequired,
    /// The host's sidecar could not be reached or answered nonsense: 502.
    HostUnreachable { host: String, reason: String },
    /// The host's sidecar refused: its 4xx status passes through (but a
    /// refused console secret is the console's fault: 502), a 5xx becomes 502.
    SidecarRefused { host: String, status: u16, code: String, message: String },
    /// An argument is invalid: 400.
    BadInput { field: String, message: String },
    /// A host or job that does not exist: 404.
    NotFound { what: String },
    /// Too many of something at once (pull jobs, log follows, requests): 429.
    Busy { what: String },
    /// Anything else on the server (or a broken exchange with it): 500.
    Internal { message: String },
}

impl ConsoleError {
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadInput { field: field.into(), message: message.into() }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal { message: message.into() }
    }

    /// The HTTP status of the response that carries this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotSignedIn => 401,
            Self::Forbidden { .. }
            | Self::NotGranted { .. }
            | Self::Csrf
            | Self::PasswordChangeRequired
            | Self::TotpRequired => 403,
            Self::HostUnreachable { .. } => 502,
            Self::SidecarRefused { status, .. } => match *status {
                401 => 502,
                s @ 400..=499 => s,
                _ => 502,
            },
            Self::BadInput { .. } => 400,
            Self::NotFound { .. } => 404,
            Self::Busy { .. } => 429,
            Self::Internal { .. } => 500,
        }
    }
}

impl std::fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotSignedIn => f.write_str("You are not signed in (or your session ended): sign in again."),
            Self::Forbidden { needed, have } => write!(f, "This needs the {needed} role; you are {have}."),
            Self::NotGranted { needed, on } => write!(f, "This needs the {needed} role on {on}."),
            Self::Csrf => f.write_str("The page's security token is stale: reload the page and try again."),
            Self::PasswordChangeRequired => f.write_str("Change your password first, at /password."),
            Self::TotpRequired => f.write_str("Set up two-factor sign-in first, at /access."),
            Self::HostUnreachable { host, reason } => write!(f, "Host {host} is unreachable: {reason}"),
            Self::SidecarRefused { host, status, message, .. } => {
                write!(f, "Host {host} refused: {message} (HTTP {status})")
            }
            Self::BadInput { field, message } => write!(f, "Invalid {field}: {message}"),
            Self::NotFound { what } => write!(f, "Not found: {what}"),
            Self::Busy { what } => write!(f, "Too many {what}"),
            Self::Internal { message } => write!(f, "The console failed: {message}"),
        }
    }
}

impl std::error::Error for ConsoleError {}

impl FromServerFnError for ConsoleError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(e: ServerFnErrorErr) -> Self {
        match e {
            ServerFnErrorErr::Args(m) => Self::bad_input("arguments", m),
            ServerFnErrorErr::MissingArg(m) => Self::bad_input(m, "missing"),
            ServerFnErrorErr::Request(m) => Self::internal(format!("the request did not reach the console: {m}")),
            other => Self::internal(other.to_string()),
        }
    }
}

impl From<shared::ValidationError> for ConsoleError {
    fn from(e: shared::ValidationError) -> Self {
        let field = match &e {
            shared::ValidationError::ContainerRef => "container",
            shared::ValidationError::ImageRef(_) => "image",
            shared::ValidationError::OutOfRange { field, .. } => field,
        };
        Self::bad_input(field, e.to_string())
    }
}

/// The console's own refusals before a server function runs (no session,
/// a cross-site POST) answer in the same shape, with the same header.
#[cfg(feature = "ssr")]
impl axum::response::IntoResponse for ConsoleError {
    fn into_response(self) -> axum::response::Response {
        use axum::http::{header, HeaderValue, StatusCode};
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, self.ser()).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(leptos::server_fn::error::SERVER_FN_ERROR_HEADER, HeaderValue::from_static("1"));
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<ConsoleError> {
        vec![
            ConsoleError::NotSignedIn,
            ConsoleError::Forbidden { needed: Role::Operator, have: Role::Viewer },
            ConsoleError::Csrf,
            ConsoleError::PasswordChangeRequired,
            ConsoleError::HostUnreachable { host: "db1".into(), reason: "connection refused".into() },
            ConsoleError::SidecarRefused {
                host: "db1".into(),
                status: 403,
                code: "forbidden".into(),
                message: "pg is protected".into(),
            },
            ConsoleError::bad_input("tail", "too big"),
            ConsoleError::NotFound { what: "host nope".into() },
            ConsoleError::Busy { what: "pulls at once".into() },
            ConsoleError::internal("boom"),
        ]
    }

    #[test]
    fn statuses() {
        let got: Vec<u16> = all().iter().map(ConsoleError::status).collect();
        assert_eq!(got, [401, 403, 403, 403, 502, 403, 400, 404, 429, 500]);
        let refused = |status| ConsoleError::SidecarRefused {
            host: "h".into(),
            status,
            code: String::new(),
            message: String::new(),
        };
        assert_eq!(refused(404).status(), 404);
        assert_eq!(refused(409).status(), 409);
        assert_eq!(refused(429).status(), 429);
        assert_eq!(refused(401).status(), 502, "the console's own secret was refused");
        assert_eq!(refused(500).status(), 502);
        assert_eq!(refused(503).status(), 502);
    }

    #[test]
    fn round_trips_through_the_wire_encoding_and_reads_well() {
        for e in all() {
            let back = ConsoleError::de(e.ser());
            assert_eq!(back, e);
            let text = e.to_string();
            assert!(text.len() > 10 && !text.contains("ServerFnError"), "{text}");
        }
        assert_eq!(
            ConsoleError::Forbidden { needed: Role::Admin, have: Role::Operator }.to_string(),
            "This needs the admin role; you are operator."
        );
        // Bytes that are not our error still become one (not a panic).
        let junk = ConsoleError::de(leptos::server_fn::Bytes::from_static(b"<html>"));
        assert!(matches!(junk, ConsoleError::Internal { .. }), "{junk:?}");
    }

    #[test]
    fn validation_errors_name_their_field() {
        let e: ConsoleError = shared::ContainerRef::parse("bad id!").unwrap_err().into();
        assert!(matches!(&e, ConsoleError::BadInput { field, .. } if field == "container"), "{e:?}");
        let e: ConsoleError = shared::bounded("tail", 99_999, 0, 10).unwrap_err().into();
        assert!(matches!(&e, ConsoleError::BadInput { field, .. } if field == "tail"), "{e:?}");
    }
}
