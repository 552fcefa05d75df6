//! Enrolment: a new sidecar joins the console in one step with a one-time
//! join token, and the wire types of that exchange.
//!
//! An admin asks the console for a token (single use, 15 minutes at most);
//! the sidecar presents it once, over TLS to the console's pinned agent port,
//! with its own certificate's fingerprint, and receives its long-term secret.

use serde::{Deserialize, Serialize};

/// Every join token starts so (and so is recognisable in a leak scanner).
pub const JOIN_TOKEN_PREFIX: &str = "dwj_";
/// Longest a join token lives, in seconds.
pub const JOIN_TOKEN_TTL_MAX_S: u64 = 15 * 60;

/// Why a string is not a join token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("a join token is `dwj_` and 64 hex digits (as the console shows it); this is {0} characters that are not")]
    Malformed(usize),
}

/// A join token as typed: `dwj_` and 64 lowercase hex digits (32 random bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken(String);

impl JoinToken {
    pub fn parse(s: &str) -> Result<Self, TokenError> {
        let s = s.trim();
        let ok = s.len() == JOIN_TOKEN_PREFIX.len() + 64
            && s.starts_with(JOIN_TOKEN_PREFIX)
            && s[JOIN_TOKEN_PREFIX.len()..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(TokenError::Malformed(s.chars().count().min(10_000)))
        }
    }

    /// A new token from 32 random bytes.
    pub fn from_random(bytes: [u8; 32]) -> Self {
        let mut s = String::with_capacity(JOIN_TOKEN_PREFIX.len() + 64);
        s.push_str(JOIN_TOKEN_PREFIX);
        for b in bytes {
            s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JoinToken(…)")
    }
}

/// `POST /enrol` on the console's agent port: the token and the fingerprint
/// of the certificate the sidecar will serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    pub token: String,
    /// `sha256:…` of the sidecar's certificate.
    pub fingerprint: String,
}

/// The console's answer: the host's name in the console and its long-term
/// shared secret (≥ 32 bytes), sent once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolAnswer {
    pub host: String,
    pub secret: String,
}

impl std::fmt::Debug for EnrolAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolAnswer").field("host", &self.host).finish_non_exhaustive()
    }
}

/// An outbound agent's tunnel: the sidecar dials the console's agent port,
/// asks `GET` [`TUNNEL_PATH`] to be upgraded to [`TUNNEL_PROTOCOL`] with its
/// host name in [`TUNNEL_HOST_HEADER`] and its secret as a bearer token; on
/// `101 Switching Protocols` the roles turn: the console speaks HTTP/2 to the
/// sidecar's own router over that connection.
pub const TUNNEL_PATH: &str = "/tunnel";
/// The `Upgrade` protocol of the tunnel.
pub const TUNNEL_PROTOCOL: &str = "dockward-tunnel/1";
/// The header naming the host that dials.
pub const TUNNEL_HOST_HEADER: &str = "x-dockward-host";
/// What stands for a host's address when its sidecar dials the console
/// (`DOCKWARD_HOSTS=edge1=outbound`, "Add a host" with the address `outbound`).
pub const OUTBOUND: &str = "outbound";

/// A host's name, as the console shows it and a sidecar names itself:
/// 1–64 letters, digits, '-', '_' or '.'.
pub fn valid_host_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// `POST /v1/revoke`: what the sidecar forgot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevokeReport {
    /// Secrets no longer accepted (every one it had).
    pub keys_forgotten: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_bad_ones_are_named() {
        let t = JoinToken::from_random([0xab; 32]);
        assert_eq!(t.as_str().len(), 68);
        assert_eq!(JoinToken::parse(t.as_str()), Ok(t.clone()));
        assert_eq!(JoinToken::parse(&format!("  {}\n", t.as_str())), Ok(t.clone()));
        assert!(!format!("{t:?}").contains("ab"), "the token stays out of debug output");
        for bad in [
            "",
            "dwj_",
            "dwj_abc",
            &t.as_str().to_uppercase(),
            &t.as_str().replace("dwj_", "dwx_"),
            &"dwj_g".repeat(14),
        ] {
            let e = JoinToken::parse(bad).unwrap_err();
            assert!(e.to_string().contains("64 hex digits"), "{bad:?}: {e}");
        }
    }
}
