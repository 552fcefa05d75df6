//! Shared-secret files for deployments: `secret init` creates one on first run
//! (the compose stack's one-shot `init` service), `secret set` replaces one
//! from standard input (another host's secret, or a rotation). Files are
//! written whole (temporary file, fsync, rename), readable by their owner only.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::auth::MIN_SECRET_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0} exists but holds {1} bytes, fewer than {MIN_SECRET_BYTES}: replace it with `secret set`")]
    ExistingTooShort(PathBuf, usize),
    #[error(
        "the secret is {0} bytes; it must be at least {MIN_SECRET_BYTES} bytes (try: head -c 32 /dev/urandom | base64)"
    )]
    TooShort(usize),
    #[error("the secret must be one line of printable text")]
    NotText,
    #[error("cannot get random bytes: {0}")]
    Random(String),
    #[error(transparent)]
    Tls(#[from] tls::IdentityError),
}

/// What `init` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Kept,
}

/// Creates `path` holding a new random secret (32 random bytes, hex) unless it
/// already holds one. Running it again changes nothing.
pub fn init(path: &Path) -> Result<Outcome, ProvisionError> {
    match std::fs::read(path) {
        Ok(existing) => {
            let len = trim_newline(&existing).len();
            if len < MIN_SECRET_BYTES {
                return Err(ProvisionError::ExistingTooShort(path.to_owned(), len));
            }
            Ok(Outcome::Kept)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut raw = [0u8; 32];
            getrandom::fill(&mut raw).map_err(|e| ProvisionError::Random(e.to_string()))?;
            write_whole(path, hex::encode(raw).as_bytes())?;
            Ok(Outcome::Created)
        }
        Err(source) => Err(ProvisionError::Io { path: path.to_owned(), source }),
    }
}

/// The file beside a host's secret that holds the fingerprints the console
/// pins for it: `local` → `local.pin`.
pub fn pin_file_of(secret: &Path) -> PathBuf {
    let mut p = secret.as_os_str().to_owned();
    p.push(".pin");
    PathBuf::from(p)
}

/// The TLS half of `secret init`: makes the sidecar's identity unless it
/// exists, and writes its fingerprint beside the secret (`FILE.pin`, public,
/// for the console) unless a pin file is there already. Says what it did.
pub fn init_identity(cert: &Path, key: &Path, secret: &Path) -> Result<String, ProvisionError> {
    let (id, made) = tls::Identity::load_or_create(cert, key)?;
    let pin = pin_file_of(secret);
    let mut said = if made {
        format!("made a TLS identity in {} ({})", cert.display(), id.fingerprint)
    } else {
        format!("kept the TLS identity in {} ({})", cert.display(), id.fingerprint)
    };
    match std::fs::read_to_string(&pin) {
        Ok(text) => {
            if !tls::pins::parse(&text, &pin).is_ok_and(|pins| pins.contains(&id.fingerprint)) {
                said.push_str(&format!(
                    "; WARNING: {} does not pin it: the console will refuse this sidecar until it does",
                    pin.display()
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tls::identity::write_new(&pin, format!("{}\n", id.fingerprint).as_bytes(), 0o644)?;
            said.push_str(&format!("; wrote its fingerprint to {}", pin.display()));
        }
        Err(source) => return Err(ProvisionError::Io { path: pin, source }),
    }
    Ok(said)
}

/// Starts a rotation: the secret in `path` moves to `<path>.previous` (which
/// the sidecar keeps accepting) and `path` gets a new random one.
pub fn rotate(path: &Path) -> Result<(), ProvisionError> {
    let old = std::fs::read(path).map_err(|source| ProvisionError::Io { path: path.to_owned(), source })?;
    let old = trim_newline(&old);
    if old.len() < MIN_SECRET_BYTES {
        return Err(ProvisionError::ExistingTooShort(path.to_owned(), old.len()));
    }
    write_whole(&previous_of(path), old)?;
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| ProvisionError::Random(e.to_string()))?;
    write_whole(path, hex::encode(raw).as_bytes())
}

/// Ends a rotation: `<path>.previous` is removed, so the old secret stops working.
pub fn retire(path: &Path) -> Result<bool, ProvisionError> {
    let prev = previous_of(path);
    match std::fs::remove_file(&prev) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(ProvisionError::Io { path: prev, source }),
    }
}

/// Where a rotation keeps the secret it replaced.
pub fn previous_of(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".previous");
    PathBuf::from(p)
}

/// Replaces `path` with `secret` (one line; a trailing newline is dropped).
pub fn set(path: &Path, secret: &[u8]) -> Result<(), ProvisionError> {
    let secret = trim_newline(secret);
    if secret.iter().any(|b| !(0x20..0x7f).contains(b)) {
        return Err(ProvisionError::NotText);
    }
    if secret.len() < MIN_SECRET_BYTES {
        return Err(ProvisionError::TooShort(secret.len()));
    }
    write_whole(path, secret)
}

fn trim_newline(raw: &[u8]) -> &[u8] {
    raw.strip_suffix(b"\r\n").or_else(|| raw.strip_suffix(b"\n")).unwrap_or(raw)
}

fn write_whole(path: &Path, content: &[u8]) -> Result<(), ProvisionError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| ProvisionError::Io { path: path.to_owned(), source };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o400).open(&tmp).map_err(io)?;
    f.write_all(content).and_then(|()| f.sync_all()).map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::auth::Secrets;

    #[test]
    fn init_creates_once_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("local");
        assert_eq!(init(&p).unwrap(), Outcome::Created);
        let first = std::fs::read(&p).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o400);
        // The sidecar accepts what init wrote.
        Secrets::load(None, Some(&p), None, None).unwrap();
        assert_eq!(init(&p).unwrap(), Outcome::Kept);
        assert_eq!(std::fs::read(&p).unwrap(), first);
        let q = dir.path().join("other");
        init(&q).unwrap();
        assert_ne!(std::fs::read(&q).unwrap(), first, "each secret is random");
    }

    #[test]
    fn init_refuses_a_short_existing_secret() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("local");
        std::fs::write(&p, "short\n").unwrap();
        let e = init(&p).unwrap_err();
        assert!(matches!(e, ProvisionError::ExistingTooShort(_, 5)), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), b"short\n", "nothing is lost");
    }

    #[test]
    fn rotate_keeps_the_old_secret_as_previous_until_retired() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("local");
        assert!(rotate(&p).is_err(), "nothing to rotate yet");
        init(&p).unwrap();
        let old = std::fs::read(&p).unwrap();
        rotate(&p).unwrap();
        let new = std::fs::read(&p).unwrap();
        assert_ne!(new, old);
        assert_eq!(std::fs::read(previous_of(&p)).unwrap(), old);
        let both = Secrets::load(None, Some(&p), None, Some(&previous_of(&p))).unwrap();
        assert!(both.check(&old).is_some() && both.check(&new).is_some());
        assert!(retire(&p).unwrap());
        assert!(!retire(&p).unwrap(), "retiring twice is harmless");
        let one = Secrets::load(None, Some(&p), None, Some(&previous_of(&p))).unwrap();
        assert!(one.check(&old).is_none() && one.check(&new).is_some());
    }

    #[test]
    fn set_replaces_and_validates() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("host2");
        init(&p).unwrap();
        let before = std::fs::read(&p).unwrap();
        assert!(matches!(set(&p, b"too short\n"), Err(ProvisionError::TooShort(9))));
        assert!(matches!(
            set(&p, &[b'a'; 40].iter().chain(b"\0").copied().collect::<Vec<_>>()),
            Err(ProvisionError::NotText)
        ));
        assert_eq!(std::fs::read(&p).unwrap(), before, "a refused secret changes nothing");
        set(&p, b"0123456789abcdef0123456789abcdef-host2\n").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"0123456789abcdef0123456789abcdef-host2");
        assert!(!dir.path().join("host2.tmp").exists());
    }
}
