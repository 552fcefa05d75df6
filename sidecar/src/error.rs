//! The sidecar's error type, converted once into a JSON HTTP response.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use shared::{ErrorBody, ErrorCode, ValidationError};

/// The message of an error response, kept for the generic denial audit record.
#[derive(Debug, Clone)]
pub struct ErrorMessage(pub String);

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Ambiguous(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("rate limit reached; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// The engine cannot be used; with the reason and the fix when known (docker/diagnose.rs).
    #[error("the Docker engine is unreachable{}", .0.as_ref().map(|p| format!(": {}", p.detail)).unwrap_or_default())]
    DockerUnavailable(Option<std::sync::Arc<shared::EngineProblem>>),
    #[error("the Docker engine refused: {0}")]
    Docker(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid(_) | Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::Ambiguous(_) => ErrorCode::Ambiguous,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::DockerUnavailable(_) => ErrorCode::DockerUnavailable,
            Self::Docker(_) => ErrorCode::DockerError,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// True for refusals (the caller's fault or a policy), as opposed to failures.
    pub fn is_denial(&self) -> bool {
        self.code().status() < 500
    }
}

impl From<bollard::errors::Error> for ApiError {
    fn from(e: bollard::errors::Error) -> Self {
        use bollard::errors::Error as E;
        match e {
            E::DockerResponseServerError { status_code: 404, message } => Self::NotFound(message),
            E::DockerResponseServerError { status_code, message } => Self::Docker(format!("{status_code}: {message}")),
            E::DockerStreamError { error } => Self::Docker(error),
            E::IOError { .. }
            | E::HyperResponseError { .. }
            | E::RequestTimeoutError
            | E::HyperLegacyError { .. }
            | E::SocketNotFoundError(_) => Self::DockerUnavailable(None),
            other => Self::Docker(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(error = %self, "request failed");
        }
        let message = self.to_string();
        let mut body = ErrorBody::new(code, message.clone());
        if let Self::DockerUnavailable(Some(p)) = &self {
            body.error.engine = Some((**p).clone());
        }
        let mut resp = (status, axum::Json(body)).into_response();
        resp.extensions_mut().insert(ErrorMessage(message));
        if let Self::RateLimited { retry_after_secs } = self {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs.max(1)));
        }
        resp
    }
}
