//! A sidecar's TLS identity: an ECDSA P-256 key (PEM, mode 0600) and a
//! self-signed certificate (PEM) beside it. Made once, when the sidecar is set
//! up (`secret init`) or first started; renewed by making the next one beside
//! it (`tls renew`) and switching to it (`tls activate`).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use crate::Fingerprint;

/// The certificate's names. Pinning ignores them; they only label it.
const NAMES: &[&str] = &["dockward-sidecar"];
/// Largest certificate or key file read.
const FILE_MAX: u64 = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("TLS identity {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("TLS certificate {path}: {reason}")]
    BadCertificate { path: String, reason: String },
    #[error("TLS key {path}: {reason}")]
    BadKey { path: String, reason: String },
    #[error(
        "TLS identity: {present} exists but {missing} does not; restore it, or remove both to make a new identity (the console must then be given the new fingerprint)"
    )]
    HalfPresent { present: String, missing: String },
    #[error("cannot make a TLS identity: {0}")]
    Generate(String),
}

/// A loaded identity: what the server presents, and its fingerprint.
#[derive(Clone)]
pub struct Identity {
    pub certified: Arc<CertifiedKey>,
    pub fingerprint: Fingerprint,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

fn shown(p: &Path) -> String {
    p.display().to_string()
}

fn read_capped(path: &Path) -> Result<Option<Vec<u8>>, IdentityError> {
    use std::io::Read;
    let err = |source| IdentityError::Io { path: shown(path), source };
    let f = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e)),
    };
    let mut out = Vec::new();
    f.take(FILE_MAX + 1).read_to_end(&mut out).map_err(err)?;
    if out.len() as u64 > FILE_MAX {
        return Err(IdentityError::BadCertificate {
            path: shown(path),
            reason: format!("larger than {FILE_MAX} bytes"),
        });
    }
    Ok(Some(out))
}

impl Identity {
    /// Reads the certificate and key; `None` when neither exists.
    pub fn load(cert: &Path, key: &Path) -> Result<Option<Self>, IdentityError> {
        match (read_capped(cert)?, read_capped(key)?) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(IdentityError::HalfPresent { present: shown(cert), missing: shown(key) }),
            (None, Some(_)) => Err(IdentityError::HalfPresent { present: shown(key), missing: shown(cert) }),
            (Some(c), Some(k)) => Self::from_pem(&c, cert, &k, key).map(Some),
        }
    }

    /// Parses a PEM certificate (the first one; the leaf) and its PEM key.
    pub fn from_pem(cert_pem: &[u8], cert: &Path, key_pem: &[u8], key: &Path) -> Result<Self, IdentityError> {
        let bad_cert = |reason: String| IdentityError::BadCertificate { path: shown(cert), reason };
        let leaf = CertificateDer::pem_slice_iter(cert_pem)
            .next()
            .ok_or_else(|| bad_cert("no PEM certificate in it".into()))?
            .map_err(|e| bad_cert(format!("not a PEM certificate ({e:?})")))?;
        let key_der = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| IdentityError::BadKey {
            path: shown(key),
            reason: format!("not a PEM private key ({e:?})"),
        })?;
        let signing = crate::provider()
            .key_provider
            .load_private_key(key_der)
            .map_err(|e| IdentityError::BadKey { path: shown(key), reason: e.to_string() })?;
        let certified = CertifiedKey::new(vec![leaf.clone()], signing);
        // The key must be the certificate's: a mismatch would only show as
        // every handshake failing.
        certified.keys_match().map_err(|e| IdentityError::BadKey {
            path: shown(key),
            reason: format!("does not belong to the certificate {} ({e})", shown(cert)),
        })?;
        Ok(Self { fingerprint: Fingerprint::of(&leaf), certified: Arc::new(certified) })
    }

    /// Reads the identity, or makes one (key 0600, directories 0700) when
    /// neither file exists. The flag says it was made now.
    pub fn load_or_create(cert: &Path, key: &Path) -> Result<(Self, bool), IdentityError> {
        if let Some(id) = Self::load(cert, key)? {
            return Ok((id, false));
        }
        let (cert_pem, key_pem) = generate()?;
        // The key first: a crash between the two leaves a key without a
        // certificate, which `load` reports rather than silently replaces.
        // Linked into place, never renamed over: of two racing makers (a
        // sidecar starting while `tls fingerprint` runs) one identity wins
        // and the other reads it.
        if !link_new(key, key_pem.as_bytes(), 0o600)? {
            for _ in 0..50 {
                std::thread::sleep(std::time::Duration::from_millis(20));
                if let Ok(Some(id)) = Self::load(cert, key) {
                    return Ok((id, false));
                }
            }
            return Self::load(cert, key)?
                .map(|id| (id, false))
                .ok_or_else(|| IdentityError::HalfPresent { present: shown(key), missing: shown(cert) });
        }
        link_new(cert, cert_pem.as_bytes(), 0o644)?;
        let id = Self::from_pem(cert_pem.as_bytes(), cert, key_pem.as_bytes(), key)?;
        Ok((id, true))
    }
}

/// The fingerprint of the certificate in `cert` (its key is not read).
pub fn cert_fingerprint(cert: &Path) -> Result<Fingerprint, IdentityError> {
    let pem = read_capped(cert)?.ok_or_else(|| IdentityError::Io {
        path: shown(cert),
        source: io::Error::new(io::ErrorKind::NotFound, "no such file"),
    })?;
    let leaf = CertificateDer::pem_slice_iter(&pem)
        .next()
        .ok_or_else(|| IdentityError::BadCertificate { path: shown(cert), reason: "no PEM certificate in it".into() })?
        .map_err(|e| IdentityError::BadCertificate {
            path: shown(cert),
            reason: format!("not a PEM certificate ({e:?})"),
        })?;
    Ok(Fingerprint::of(&leaf))
}

/// A new self-signed certificate and its key, both PEM.
pub fn generate() -> Result<(String, String), IdentityError> {
    let names: Vec<String> = NAMES.iter().map(|s| (*s).to_owned()).collect();
    let made = rcgen::generate_simple_self_signed(names).map_err(|e| IdentityError::Generate(e.to_string()))?;
    Ok((made.cert.pem(), made.key_pair.serialize_pem()))
}

/// Writes `bytes` to `path` whole (a temporary file, fsync'd, renamed into place).
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), IdentityError> {
    let err = |source| IdentityError::Io { path: shown(path), source };
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(err)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = (|| {
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map_err(err)
}

/// Writes `bytes` to `path` only if nothing is there (a temporary file,
/// fsync'd, hard-linked into place); `false` when `path` already existed.
fn link_new(path: &Path, bytes: &[u8], mode: u32) -> Result<bool, IdentityError> {
    let err = |source| IdentityError::Io { path: shown(path), source };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".new.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(err)?;
    }
    let written = (|| {
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::hard_link(&tmp, path)
    })();
    let _ = fs::remove_file(&tmp);
    match written {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(err(e)),
    }
}

/// The files of the identity that follows the current one during a renewal:
/// `tls.crt` → `tls.crt.next`.
pub fn next_of(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".next");
    PathBuf::from(p)
}

/// The files the current identity moves to when the next one takes its place.
pub fn previous_of(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".previous");
    PathBuf::from(p)
}

/// Starts a renewal: makes the next identity beside the current one (kept if
/// one is already waiting) and returns its fingerprint, to be pinned on the
/// console before `activate`.
pub fn renew(cert: &Path, key: &Path) -> Result<(Fingerprint, bool), IdentityError> {
    let (id, made) = Identity::load_or_create(&next_of(cert), &next_of(key))?;
    Ok((id.fingerprint, made))
}

/// Ends a renewal on this side: the next identity becomes the current one
/// (the current one is kept as `.previous`). `None` when no renewal waits.
/// A running sidecar picks the change up within seconds.
pub fn activate(cert: &Path, key: &Path) -> Result<Option<Fingerprint>, IdentityError> {
    let Some(next) = Identity::load(&next_of(cert), &next_of(key))? else { return Ok(None) };
    let mv =
        |from: &Path, to: &Path| fs::rename(from, to).map_err(|source| IdentityError::Io { path: shown(from), source });
    if Identity::load(cert, key)?.is_some() {
        mv(cert, &previous_of(cert))?;
        mv(key, &previous_of(key))?;
    }
    mv(&next_of(key), key)?;
    mv(&next_of(cert), cert)?;
    Ok(Some(next.fingerprint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("tls/tls.crt"), dir.path().join("tls/tls.key"));
        let (a, made) = Identity::load_or_create(&cert, &key).unwrap();
        assert!(made);
        let (b, made) = Identity::load_or_create(&cert, &key).unwrap();
        assert!(!made);
        assert_eq!(a.fingerprint, b.fingerprint);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        // The fingerprint is the certificate's DER hash.
        let pem = fs::read(&cert).unwrap();
        let der = CertificateDer::pem_slice_iter(&pem).next().unwrap().unwrap();
        assert_eq!(Fingerprint::of(&der), a.fingerprint);
    }

    #[test]
    fn broken_files_are_named_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        Identity::load_or_create(&cert, &key).unwrap();
        let key_pem = fs::read(&key).unwrap();
        // Half an identity: reported, not silently replaced.
        fs::remove_file(&cert).unwrap();
        let e = Identity::load_or_create(&cert, &key).unwrap_err();
        assert!(matches!(e, IdentityError::HalfPresent { .. }), "{e}");
        assert_eq!(fs::read(&key).unwrap(), key_pem);
        // Garbage for a certificate.
        fs::write(&cert, "not a certificate").unwrap();
        let e = Identity::load(&cert, &key).unwrap_err().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
        // Another identity's certificate with this key.
        let (other_cert, _) = generate().unwrap();
        fs::write(&cert, other_cert).unwrap();
        let e = Identity::load(&cert, &key).unwrap_err().to_string();
        assert!(e.contains("does not belong to the certificate"), "{e}");
        // Garbage for a key.
        let (c, _) = generate().unwrap();
        fs::write(&cert, c).unwrap();
        fs::write(&key, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap();
        let e = Identity::load(&cert, &key).unwrap_err().to_string();
        assert!(e.starts_with("TLS key"), "{e}");
    }

    #[test]
    fn renewal_waits_beside_the_current_identity_until_activated() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        let (old, _) = Identity::load_or_create(&cert, &key).unwrap();
        assert_eq!(activate(&cert, &key).unwrap(), None, "nothing to activate yet");
        let (next, made) = renew(&cert, &key).unwrap();
        assert!(made);
        assert_ne!(next, old.fingerprint);
        assert_eq!(renew(&cert, &key).unwrap(), (next, false), "a waiting renewal is kept");
        assert_eq!(Identity::load(&cert, &key).unwrap().unwrap().fingerprint, old.fingerprint);
        assert_eq!(activate(&cert, &key).unwrap(), Some(next));
        assert_eq!(Identity::load(&cert, &key).unwrap().unwrap().fingerprint, next);
        let prev = Identity::load(&previous_of(&cert), &previous_of(&key)).unwrap().unwrap();
        assert_eq!(prev.fingerprint, old.fingerprint);
    }
}
