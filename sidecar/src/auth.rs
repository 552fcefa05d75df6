//! Shared-secret authentication: up to two secrets (current and previous, for
//! rotation), compared in constant time. Secrets given as files are re-read
//! when the files change, so a rotation needs no restart.
//!
//! A console can revoke the host (`POST /v1/revoke`): the digests of every
//! accepted secret go into a revocation list beside the audit log (fsync'd)
//! and are refused from then on, restarts included, until the host is
//! enrolled again with a new secret.

use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("no shared secret: set DOCKWARD_SECRET_FILE (preferred) or DOCKWARD_SECRET to at least {MIN_SECRET_BYTES} bytes")]
    Missing,
    #[error("{0}: set either the value or the _FILE variant, not both")]
    Both(&'static str),
    #[error(
        "{name} is {len} bytes; it must be at least {MIN_SECRET_BYTES} bytes (try: head -c 32 /dev/urandom | base64)"
    )]
    TooShort { name: &'static str, len: usize },
    #[error("cannot read {name} from {path}: {source}")]
    Read { name: &'static str, path: String, source: std::io::Error },
    #[error("revocation list {path}: {source}")]
    Revoked { path: String, source: std::io::Error },
}

/// A configured secret, kept only as its SHA-256 so that comparisons are
/// constant-time and length-independent.
#[derive(Clone)]
struct Key {
    digest: [u8; 32],
    id: String,
}

/// The accepted secrets.
#[derive(Clone)]
pub struct Secrets {
    keys: Vec<Key>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets").field("ids", &self.keys.iter().map(|k| &k.id).collect::<Vec<_>>()).finish()
    }
}

impl Secrets {
    /// Loads the current secret (required) and the previous one (optional; a
    /// previous *file* that does not exist means there is none).
    pub fn load(
        current: Option<&str>,
        current_file: Option<&Path>,
        previous: Option<&str>,
        previous_file: Option<&Path>,
    ) -> Result<Self, SecretError> {
        let cur = read_one("DOCKWARD_SECRET", current, current_file)?.ok_or(SecretError::Missing)?;
        let mut keys = vec![Key::new(&cur)];
        let previous_file = previous_file.filter(|p| previous.is_some() || p.exists());
        if let Some(prev) = read_one("DOCKWARD_SECRET_PREVIOUS", previous, previous_file)? {
            keys.push(Key::new(&prev));
        }
        Ok(Self { keys })
    }

    /// Drops the keys whose digests are revoked.
    fn without(mut self, revoked: &[[u8; 32]]) -> Self {
        self.keys.retain(|k| !revoked.iter().any(|r| bool::from(r.ct_eq(&k.digest))));
        self
    }

    /// Returns the id of the key the bearer token matches. Every configured
    /// key is compared, whatever matches first, so timing says nothing.
    pub fn check(&self, token: &[u8]) -> Option<&str> {
        let digest: [u8; 32] = Sha256::digest(token).into();
        let mut found = None;
        for k in &self.keys {
            if bool::from(k.digest.ct_eq(&digest)) {
                found = Some(k.id.as_str());
            }
        }
        found
    }

    /// Ids of the configured keys, for logs at start-up.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }
}

/// The revocation list: hex SHA-256 digests, one a line; none when the file does not exist.
fn read_revoked(path: &Path) -> Result<Vec<[u8; 32]>, SecretError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(SecretError::Revoked { path: path.display().to_string(), source }),
    };
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut d = [0u8; 32];
            hex::decode_to_slice(l.trim(), &mut d).ok().map(|()| d)
        })
        .collect())
}

/// Which version of a secret file was read: changes on any rewrite or rename.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

/// The configured secrets, re-read when a secret file changes: checked on
/// every failed authentication (so a client already using a new secret is
/// never refused) and periodically by the server (so a retired one stops working).
pub struct SecretStore {
    current: (Option<String>, Option<PathBuf>),
    previous: (Option<String>, Option<PathBuf>),
    loaded: RwLock<(Secrets, Vec<Stamp>)>,
    /// The revocation list (hex SHA-256 digests, one a line) and what it holds.
    revoked_file: Option<PathBuf>,
    revoked: RwLock<Vec<[u8; 32]>>,
}

impl std::fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretStore").field("ids", &self.ids()).finish()
    }
}

impl SecretStore {
    pub fn load(
        current: Option<String>,
        current_file: Option<PathBuf>,
        previous: Option<String>,
        previous_file: Option<PathBuf>,
    ) -> Result<Self, SecretError> {
        Self::load_revocable(current, current_file, previous, previous_file, None)
    }

    /// [`SecretStore::load`], refusing the secrets listed in `revoked_file`
    /// (which [`SecretStore::revoke_all`] appends to).
    pub fn load_revocable(
        current: Option<String>,
        current_file: Option<PathBuf>,
        previous: Option<String>,
        previous_file: Option<PathBuf>,
        revoked_file: Option<PathBuf>,
    ) -> Result<Self, SecretError> {
        let revoked = match &revoked_file {
            Some(path) => read_revoked(path)?,
            None => Vec::new(),
        };
        let store = Self {
            current: (current, current_file),
            previous: (previous, previous_file),
            loaded: RwLock::new((Secrets { keys: Vec::new() }, Vec::new())),
            revoked_file,
            revoked: RwLock::new(revoked),
        };
        let stamps = store.stamps();
        let secrets = store.read()?;
        if secrets.keys.is_empty() {
            tracing::warn!("every configured secret was revoked by the console: every call is refused until this host is enrolled again");
        }
        *store.loaded.write().unwrap_or_else(|e| e.into_inner()) = (secrets, stamps);
        Ok(store)
    }

    fn read(&self) -> Result<Secrets, SecretError> {
        let secrets = Secrets::load(
            self.current.0.as_deref(),
            self.current.1.as_deref(),
            self.previous.0.as_deref(),
            self.previous.1.as_deref(),
        )?;
        Ok(secrets.without(&self.revoked.read().unwrap_or_else(|e| e.into_inner())))
    }

    /// Revokes every accepted secret: their digests are appended to the
    /// revocation list (fsync'd) before they are forgotten, so nothing brings
    /// them back. Returns how many were forgotten.
    pub fn revoke_all(&self) -> Result<usize, SecretError> {
        use std::io::Write;
        let mut loaded = self.loaded.write().unwrap_or_else(|e| e.into_inner());
        let digests: Vec<[u8; 32]> = loaded.0.keys.iter().map(|k| k.digest).collect();
        if let Some(path) = &self.revoked_file {
            let err = |source| SecretError::Revoked { path: path.display().to_string(), source };
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(err)?;
            let lines: String = digests.iter().map(|d| format!("{}\n", hex::encode(d))).collect();
            f.write_all(lines.as_bytes()).and_then(|()| f.sync_all()).map_err(err)?;
        }
        self.revoked.write().unwrap_or_else(|e| e.into_inner()).extend(digests.iter().copied());
        loaded.0.keys.clear();
        Ok(digests.len())
    }

    fn stamps(&self) -> Vec<Stamp> {
        [&self.current.1, &self.previous.1].into_iter().flatten().map(|p| stamp(p)).collect()
    }

    /// The id of the key `token` matches (see [`Secrets::check`]).
    pub fn check(&self, token: &[u8]) -> Option<String> {
        self.loaded.read().unwrap_or_else(|e| e.into_inner()).0.check(token).map(str::to_owned)
    }

    pub fn ids(&self) -> Vec<String> {
        self.loaded.read().unwrap_or_else(|e| e.into_inner()).0.ids().into_iter().map(str::to_owned).collect()
    }

    /// Re-reads the secret files if any changed; true when the keys changed.
    /// A file that cannot be read (mid-rotation, say) leaves the keys as they were.
    pub fn refresh(&self) -> bool {
        let stamps = self.stamps();
        if self.loaded.read().unwrap_or_else(|e| e.into_inner()).1 == stamps {
            return false;
        }
        match self.read() {
            Ok(secrets) => {
                let ids = secrets.ids().into_iter().map(str::to_owned).collect::<Vec<_>>();
                let mut loaded = self.loaded.write().unwrap_or_else(|e| e.into_inner());
                let changed = loaded.0.ids() != ids.iter().map(String::as_str).collect::<Vec<_>>();
                *loaded = (secrets, stamps);
                if changed {
                    tracing::info!(keys = ?ids, "secret files changed; keys reloaded");
                }
                changed
            }
            Err(e) => {
                tracing::error!(error = %e, "secret files changed but cannot be loaded; keeping the current keys");
                // Remember this version: the next change is tried again, this one is not re-read on every request.
                self.loaded.write().unwrap_or_else(|e| e.into_inner()).1 = stamps;
                false
            }
        }
    }
}

/// A random salt drawn once per process for key ids. An unsalted id would let
/// anyone who reads the logs or the audit log test guesses of a human-chosen
/// secret offline; with the salt the id only tells which key was used, and
/// only within one run of the sidecar (a restart gives new ids, logged at start).
fn key_id_salt() -> &'static [u8; 32] {
    static SALT: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    SALT.get_or_init(|| {
        let mut salt = [0u8; 32];
        // Without OS randomness nothing else here is safe either; a zero salt still
        // keeps ids distinct and is no worse than the unsalted fingerprint.
        if let Err(e) = getrandom::fill(&mut salt) {
            tracing::error!(error = %e, "no OS randomness for key-id salt");
        }
        salt
    })
}

impl Key {
    fn new(secret: &[u8]) -> Self {
        let digest: [u8; 32] = Sha256::digest(secret).into();
        // The id hashes a different, salted input, so it reveals nothing usable about the secret.
        let fp =
            Sha256::new().chain_update(b"dockward-key-id:").chain_update(key_id_salt()).chain_update(secret).finalize();
        Self { digest, id: format!("key:{}", &hex::encode(fp)[..12]) }
    }
}

fn read_one(name: &'static str, value: Option<&str>, file: Option<&Path>) -> Result<Option<Vec<u8>>, SecretError> {
    let raw = match (value, file) {
        (Some(_), Some(_)) => return Err(SecretError::Both(name)),
        (Some(v), None) => v.as_bytes().to_vec(),
        (None, Some(p)) => {
            std::fs::read(p).map_err(|source| SecretError::Read { name, path: p.display().to_string(), source })?
        }
        (None, None) => return Ok(None),
    };
    // Files written by `echo` end in a newline; it is not part of the secret.
    let trimmed = raw.strip_suffix(b"\r\n").or_else(|| raw.strip_suffix(b"\n")).unwrap_or(&raw).to_vec();
    if trimmed.len() < MIN_SECRET_BYTES {
        return Err(SecretError::TooShort { name, len: trimmed.len() });
    }
    Ok(Some(trimmed))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn missing_and_short_are_refused() {
        assert!(matches!(Secrets::load(None, None, None, None), Err(SecretError::Missing)));
        let e = Secrets::load(Some("short"), None, None, None).unwrap_err();
        assert!(matches!(e, SecretError::TooShort { len: 5, .. }), "{e}");
        assert!(e.to_string().contains("at least 32 bytes"));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, format!("{A}\n")).unwrap();
        assert!(matches!(Secrets::load(Some(A), Some(&p), None, None), Err(SecretError::Both(_))));
    }

    #[test]
    fn file_secret_drops_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, format!("{A}\n")).unwrap();
        let s = Secrets::load(None, Some(&p), None, None).unwrap();
        assert!(s.check(A.as_bytes()).is_some());
        assert!(s.check(format!("{A}\n").as_bytes()).is_none());
    }

    #[test]
    fn key_ids_are_salted_not_a_guessable_fingerprint() {
        let s = Secrets::load(Some(A), None, None, None).unwrap();
        let id = s.check(A.as_bytes()).unwrap().to_owned();
        // The unsalted fingerprint anyone could compute from a guess of the secret:
        let guess = Sha256::new().chain_update(b"dockward-key-id:").chain_update(A).finalize();
        assert_ne!(id, format!("key:{}", &hex::encode(guess)[..12]));
        // The salt is random, not a constant someone could precompute with
        // (a random 32-byte salt has all bytes equal with odds of 2^-248).
        let salt = key_id_salt();
        assert!(salt.iter().any(|&b| b != salt[0]), "the key-id salt is a constant: {salt:?}");
        // Stable within the process: the same secret loaded again gets the same id.
        let again = Secrets::load(Some(A), None, None, None).unwrap();
        assert_eq!(again.ids(), vec![id.as_str()]);
    }

    #[test]
    fn two_keys_for_rotation() {
        let s = Secrets::load(Some(A), None, Some(B), None).unwrap();
        let a = s.check(A.as_bytes()).unwrap().to_owned();
        let b = s.check(B.as_bytes()).unwrap().to_owned();
        assert_ne!(a, b);
        assert!(a.starts_with("key:") && a.len() == 16);
        assert!(s.check(b"").is_none());
        assert!(s.check(&A.as_bytes()[..31]).is_none());
        assert!(!format!("{s:?}").contains(A));
    }
}
