//! The sidecar's side: a server configuration whose certificate follows its
//! files, so `tls activate` takes effect without a restart.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::{Fingerprint, Identity, IdentityError};

/// The identity presented to every client, re-read by [`Self::refresh`].
#[derive(Debug)]
pub struct ReloadingIdentity {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Identity>,
}

impl ReloadingIdentity {
    pub fn new(identity: Identity, cert: PathBuf, key: PathBuf) -> Self {
        Self { cert, key, current: RwLock::new(identity) }
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.current.read().unwrap_or_else(|e| e.into_inner()).fingerprint
    }

    /// Re-reads the files; a changed identity is used from the next
    /// handshake on. A broken or missing pair keeps the current one.
    /// Returns the new fingerprint when it changed.
    pub fn refresh(&self) -> Result<Option<Fingerprint>, IdentityError> {
        let Some(fresh) = Identity::load(&self.cert, &self.key)? else {
            return Ok(None);
        };
        let mut cur = self.current.write().unwrap_or_else(|e| e.into_inner());
        if cur.fingerprint == fresh.fingerprint {
            return Ok(None);
        }
        let fp = fresh.fingerprint;
        *cur = fresh;
        Ok(Some(fp))
    }
}

impl ResolvesServerCert for ReloadingIdentity {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).certified.clone())
    }
}

/// TLS 1.2 and 1.3, no client certificates (clients prove themselves with
/// the shared secret, inside the tunnel), HTTP/1.1.
pub fn server_config(identity: Arc<ReloadingIdentity>) -> rustls::ServerConfig {
    let mut config = rustls::ServerConfig::builder_with_provider(crate::provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(identity);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}
