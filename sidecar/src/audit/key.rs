//! The audit key: 32 random bytes (hex in a 0600 file) kept outside the audit
//! volume. Every record and the checkpoint carry an HMAC-SHA256 under it, so
//! someone who can write the audit files but not read the key cannot re-forge
//! the chain after an edit, a cut or an append.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("audit key {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("audit key {path} is not 64 hex digits (32 bytes); restore the original key or move the log away")]
    Malformed { path: String },
}

/// An HMAC-SHA256 key for the audit log.
#[derive(Clone)]
pub struct AuditKey {
    key: [u8; 32],
    path: PathBuf,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKey").field("path", &self.path).finish_non_exhaustive()
    }
}

impl AuditKey {
    /// A key from its bytes (tests, and the file reader).
    pub fn from_bytes(key: [u8; 32], path: impl Into<PathBuf>) -> Self {
        Self { key, path: path.into() }
    }

    /// Reads the key at `path`; `None` if the file does not exist.
    pub fn load(path: &Path) -> Result<Option<Self>, KeyError> {
        let err = |source| KeyError::Io { path: path.display().to_string(), source };
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(e)),
        };
        let mut key = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut key)
            .map_err(|_| KeyError::Malformed { path: path.display().to_string() })?;
        if let Ok(meta) = fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "the audit key is readable by group or others; chmod 0600 it");
            }
        }
        Ok(Some(Self::from_bytes(key, path)))
    }

    /// Reads the key at `path`, or creates it (32 random bytes, mode 0600,
    /// parent directory 0700) when it does not exist. The flag says it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), KeyError> {
        if let Some(k) = Self::load(path)? {
            return Ok((k, false));
        }
        let err = |source| KeyError::Io { path: path.display().to_string(), source };
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(err)?;
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| err(io::Error::other(e.to_string())))?;
        // Written whole under a temporary name, then linked into place: another
        // process never reads half a key, and of two racing starts one key wins.
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp.{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let written = (|| {
            let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            f.write_all(format!("{}\n", hex::encode(key)).as_bytes())?;
            f.sync_all()?;
            fs::hard_link(&tmp, path)
        })();
        let _ = fs::remove_file(&tmp);
        match written {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let k = Self::load(path)?.ok_or_else(|| err(io::Error::from(io::ErrorKind::NotFound)))?;
                return Ok((k, false));
            }
            Err(e) => return Err(err(e)),
        }
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = fs::File::open(dir).and_then(|d| d.sync_all());
        }
        tracing::info!(path = %path.display(), "created a new audit key");
        Ok((Self::from_bytes(key, path), true))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn hmac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length; 32 bytes cannot fail.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC accepts any key length")
    }

    /// HMAC-SHA256 of `bytes`, hex.
    pub fn mac(&self, bytes: &[u8]) -> String {
        let mut m = self.hmac();
        m.update(bytes);
        hex::encode(m.finalize().into_bytes())
    }

    /// Whether `mac` (hex) is the HMAC of `bytes`, compared in constant time.
    pub fn check(&self, bytes: &[u8], mac: &str) -> bool {
        let Ok(raw) = hex::decode(mac) else { return false };
        let mut m = self.hmac();
        m.update(bytes);
        m.verify_slice(&raw).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differs_per_key_and_message() {
        let a = AuditKey::from_bytes([1; 32], "a");
        let b = AuditKey::from_bytes([2; 32], "b");
        let m = a.mac(b"record");
        assert_eq!(m.len(), 64);
        assert!(a.check(b"record", &m));
        assert!(!a.check(b"recorD", &m));
        assert!(!b.check(b"record", &m));
        assert!(!a.check(b"record", "not hex"));
    }

    #[test]
    fn known_vector() {
        // Python: hmac.new(b'\x0b' * 32, b'Hi There', hashlib.sha256).hexdigest()
        let k = AuditKey::from_bytes([0x0b; 32], "k");
        let m = k.mac(b"Hi There");
        assert_eq!(m, "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7");
    }

    #[test]
    fn created_0600_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys/audit.key");
        let (k1, created) = AuditKey::load_or_create(&p).unwrap();
        assert!(created);
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let (k2, created) = AuditKey::load_or_create(&p).unwrap();
        assert!(!created);
        assert_eq!(k1.mac(b"x"), k2.mac(b"x"));
        fs::write(&p, "short").unwrap();
        assert!(matches!(AuditKey::load(&p), Err(KeyError::Malformed { .. })));
    }
}
