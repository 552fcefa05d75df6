//! TLS between the console and its sidecars (rustls on ring; no OpenSSL, no
//! certificate authority).
//!
//! Each sidecar has its own self-signed identity ([`identity`]), made when it
//! is set up. The console trusts a host by the SHA-256 of that certificate
//! ([`Fingerprint`]), pinned per host ([`pins`]): a host presenting any other
//! certificate fails the handshake, so no request, and no secret, is ever
//! sent to it. Names and dates do not matter; the pin is the identity.
//! Renewal pins two fingerprints at once until the old one is retired.

pub mod fingerprint;
pub mod identity;
#[cfg(feature = "listener")]
pub mod listener;
pub mod pins;
pub mod server;

pub use fingerprint::{Fingerprint, FingerprintError};
pub use identity::{Identity, IdentityError};
pub use pins::{PinError, PinVerifier, Pins};

use std::sync::Arc;

/// The one crypto provider: ring (no OpenSSL, no cmake).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration that trusts exactly the certificates `verifier`
/// pins (TLS 1.2 and 1.3, no client certificate).
pub fn client_config(verifier: Arc<PinVerifier>) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth()
}
