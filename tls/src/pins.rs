//! The console's trust in a host: the fingerprints it pins, from a file it
//! re-reads when it changes, and the rustls verifier that accepts exactly
//! those certificates.
//!
//! A pin file holds one fingerprint per line (`#` starts a comment). Two
//! lines during a renewal: the old and the new certificate are both accepted
//! until the old line is removed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use subtle::ConstantTimeEq;

use crate::{Fingerprint, FingerprintError};

/// Most fingerprints one host may pin at once.
pub const PINS_MAX: usize = 8;
/// Largest pin file read.
const PIN_FILE_MAX: u64 = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("pin file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("pin file {path}, line {line}: {source}")]
    Bad { path: String, line: usize, source: FingerprintError },
    #[error("pin file {path} holds no fingerprint (one `sha256:…` per line)")]
    Empty { path: String },
    #[error("pin file {path} holds more than {PINS_MAX} fingerprints")]
    TooMany { path: String },
}

/// Parses a pin file's text: one fingerprint per line, `#` comments, blank lines.
pub fn parse(text: &str, path: &Path) -> Result<Vec<Fingerprint>, PinError> {
    let shown = || path.display().to_string();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fp = line.parse().map_err(|source| PinError::Bad { path: shown(), line: i + 1, source })?;
        if !out.contains(&fp) {
            out.push(fp);
        }
        if out.len() > PINS_MAX {
            return Err(PinError::TooMany { path: shown() });
        }
    }
    if out.is_empty() {
        return Err(PinError::Empty { path: shown() });
    }
    Ok(out)
}

fn read(path: &Path) -> Result<Vec<Fingerprint>, PinError> {
    use std::io::Read;
    let unreadable = |reason: String| PinError::Unreadable { path: path.display().to_string(), reason };
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(PIN_FILE_MAX + 1).read_to_string(&mut text))
        .map_err(|e| unreadable(e.to_string()))?;
    if text.len() as u64 > PIN_FILE_MAX {
        return Err(unreadable(format!("larger than {PIN_FILE_MAX} bytes")));
    }
    parse(&text, path)
}

type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

/// The fingerprints one host is trusted by: fixed, or from a file re-read
/// (no more than once a second) when it changes, so a renewal needs no
/// restart. A broken edit keeps the last good pins.
#[derive(Debug)]
pub struct Pins {
    file: Option<PathBuf>,
    cached: Mutex<(Vec<Fingerprint>, Stamp, Instant)>,
}

impl Pins {
    pub fn fixed(pins: Vec<Fingerprint>) -> Self {
        Self { file: None, cached: Mutex::new((pins, None, Instant::now())) }
    }

    /// Reads `path` now (a clear error when it is missing or malformed).
    pub fn from_file(path: PathBuf) -> Result<Self, PinError> {
        let st = stamp(&path);
        let pins = read(&path)?;
        Ok(Self { file: Some(path), cached: Mutex::new((pins, st, Instant::now())) })
    }

    pub fn get(&self) -> Vec<Fingerprint> {
        let mut c = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(path) = &self.file {
            if c.2.elapsed() >= Duration::from_secs(1) {
                c.2 = Instant::now();
                let st = stamp(path);
                if st != c.1 {
                    c.1 = st;
                    match read(path) {
                        Ok(fresh) if fresh != c.0 => {
                            tracing::info!(path = %path.display(), pins = ?fresh, "a host's pins changed; using the new ones");
                            c.0 = fresh;
                        }
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %e, "keeping the previous pins"),
                    }
                }
            }
        }
        c.0.clone()
    }
}

/// Accepts a server certificate if and only if its fingerprint is pinned,
/// and checks the handshake's signatures with it. Names, dates and issuers
/// are not looked at: the pin is the identity. A refusal is remembered (the
/// fingerprint presented), so the caller can say "identity changed" rather
/// than "unreachable".
#[derive(Debug)]
pub struct PinVerifier {
    pins: Pins,
    provider: Arc<rustls::crypto::CryptoProvider>,
    refused: Mutex<Option<Fingerprint>>,
}

impl PinVerifier {
    pub fn new(pins: Pins) -> Self {
        Self { pins, provider: crate::provider(), refused: Mutex::new(None) }
    }

    pub fn pins(&self) -> Vec<Fingerprint> {
        self.pins.get()
    }

    /// The fingerprint of the last certificate refused, until a pinned one
    /// is presented again.
    pub fn refused(&self) -> Option<Fingerprint> {
        *self.refused.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Fingerprint::of(end_entity);
        // Compared in constant time per pin (a fingerprint is public, but the
        // habit costs nothing).
        let pinned =
            self.pins.get().iter().fold(false, |hit, p| hit | bool::from(p.as_bytes().ct_eq(presented.as_bytes())));
        if pinned {
            *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = None;
            Ok(ServerCertVerified::assertion())
        } else {
            *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(presented);
            Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(n: u8) -> Fingerprint {
        Fingerprint::of(&[n])
    }

    #[test]
    fn pin_files_parse_with_comments_and_line_numbers() {
        let p = Path::new("/x/local.pin");
        let text = format!("# local\n{}\n\n{}  # renewal\n{}\n", fp(1), fp(2), fp(1));
        assert_eq!(parse(&text, p).unwrap(), vec![fp(1), fp(2)]);
        let e = parse(&format!("{}\nsha256:nope\n", fp(1)), p).unwrap_err();
        assert!(matches!(e, PinError::Bad { line: 2, .. }), "{e}");
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(matches!(parse("# nothing\n", p), Err(PinError::Empty { .. })));
        let many: String = (0..=PINS_MAX as u8).map(|i| format!("{}\n", fp(i))).collect();
        assert!(matches!(parse(&many, p), Err(PinError::TooMany { .. })));
    }

    #[test]
    fn pins_follow_their_file_and_keep_the_last_good_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.pin");
        assert!(matches!(Pins::from_file(path.clone()), Err(PinError::Unreadable { .. })));
        std::fs::write(&path, format!("{}\n", fp(1))).unwrap();
        let pins = Pins::from_file(path.clone()).unwrap();
        assert_eq!(pins.get(), vec![fp(1)]);
        std::fs::write(dir.path().join("t"), format!("{}\n{}\n", fp(1), fp(2))).unwrap();
        std::fs::rename(dir.path().join("t"), &path).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(pins.get(), vec![fp(1), fp(2)]);
        std::fs::write(&path, "sha256:broken\n").unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(pins.get(), vec![fp(1), fp(2)]);
    }

    #[test]
    fn the_verifier_accepts_only_pinned_certificates_and_remembers_a_refusal() {
        let (cert_pem, _) = crate::identity::generate().unwrap();
        use rustls::pki_types::pem::PemObject;
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
        let name = ServerName::try_from("anything").unwrap();
        let now = UnixTime::now();
        let v = PinVerifier::new(Pins::fixed(vec![fp(1), Fingerprint::of(&der)]));
        assert!(v.verify_server_cert(&der, &[], &name, &[], now).is_ok());
        assert_eq!(v.refused(), None);
        let (other_pem, _) = crate::identity::generate().unwrap();
        let other = CertificateDer::from_pem_slice(other_pem.as_bytes()).unwrap();
        assert!(v.verify_server_cert(&other, &[], &name, &[], now).is_err());
        assert_eq!(v.refused(), Some(Fingerprint::of(&other)));
        assert_eq!(v.refused(), Some(Fingerprint::of(&other)), "kept until a pinned certificate is seen");
        assert!(v.verify_server_cert(&der, &[], &name, &[], now).is_ok());
        assert_eq!(v.refused(), None);
    }
}
