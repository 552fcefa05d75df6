//! The one error body every API answers with: `{"error": {"code", "message"}}`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    /// With `docker_unavailable`: why the sidecar cannot use its engine, and the fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<crate::EngineProblem>,
}

/// Machine-readable error codes; each maps to exactly one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: malformed or out-of-range input, unknown query parameter, unexpected body.
    BadRequest,
    /// 401: missing or wrong credentials.
    Unauthorized,
    /// 403: the verb is refused for this target (protected container, registry not allowed).
    Forbidden,
    /// 404: no such route or no such (visible) container.
    NotFound,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 409: the reference matches more than one container.
    Ambiguous,
    /// 409: the target is busy with another action (a recreate already running).
    Conflict,
    /// 413: body larger than allowed.
    PayloadTooLarge,
    /// 429: rate limit hit; see `Retry-After`.
    RateLimited,
    /// 500: a bug or an unexpected engine answer.
    Internal,
    /// 502: the engine answered with an error.
    DockerError,
    /// 503: the engine is unreachable.
    DockerUnavailable,
}

impl ErrorCode {
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::Ambiguous | Self::Conflict => 409,
            Self::PayloadTooLarge => 413,
            Self::RateLimited => 429,
            Self::Internal => 500,
            Self::DockerError => 502,
            Self::DockerUnavailable => 503,
        }
    }
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { error: ErrorDetail { code, message: message.into(), engine: None } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_shape() {
        let b = ErrorBody::new(ErrorCode::RateLimited, "slow down");
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v, serde_json::json!({"error": {"code": "rate_limited", "message": "slow down"}}));
        assert_eq!(ErrorCode::RateLimited.status(), 429);
    }
}
