//! Sessions that any replica of the console can check, and that outlive a
//! restart: the cookie is the session, sealed with the session key (HMAC-SHA256).
//!
//! A token is `<id>.<created>.<seen>.<tag>.<user>.<mac>`: a random 128-bit
//! id, when it began and when it was last used (Unix seconds), the first 16
//! bytes of the SHA-256 of the user's password stamp (so a password change
//! ends it), the user's name, and the MAC of all of it under the key. The
//! CSRF token is the HMAC of the id under the same key: every replica derives
//! the same one. A token past its lifetime or idle too long is refused;
//! `seen` is refreshed (a new cookie) at most once a minute of use.
//!
//! A logout revokes the id: it is appended to the revocations file, which
//! every process using that file re-reads within a second of a change
//! (replicas on one node share it through their volume; a restart reads it
//! back). An entry is kept for the longest lifetime a session may have.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// How often `seen` is renewed: at most once a minute (or half the idle
/// timeout, if shorter), so most requests set no cookie.
const REFRESH_AFTER_S: u64 = 60;
/// A revoked id is kept this long: the longest lifetime a session may be
/// given (`DOCKWARD_SESSION_HOURS` ≤ 30 days), so raising the lifetime
/// later brings no revoked session back.
const REVOKED_FOR_S: u64 = 30 * 24 * 3600;
/// Most revoked ids kept; past it the soonest to expire go first (and the
/// log says so). 1 000 000 ids are about 60 MB.
const REVOKED_MAX: usize = 1_000_000;
/// The revocations file is rewritten with only live entries at start when
/// it holds more than this many lines and most are dead.
const COMPACT_AFTER_LINES: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum SessionKeyError {
    #[error("the session key {path}: {reason}")]
    Unusable { path: String, reason: String },
}

/// Whether a session is still alive: within its lifetime and not idle too long.
pub fn alive(created: u64, seen: u64, now: u64, ttl: Duration, idle: Duration) -> bool {
    created <= now + 60 && now.saturating_sub(created) < ttl.as_secs() && now.saturating_sub(seen) < idle.as_secs()
}

fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// What a password stamp is reduced to inside a token.
pub fn stamp_tag(stamp: &str) -> String {
    hex::encode(&Sha256::digest(stamp.as_bytes())[..16])
}

/// A live session: its user, CSRF token, the tag of the password stamp it
/// began with, and a renewed token when `seen` was refreshed.
#[derive(Debug, Clone)]
pub struct Live {
    pub name: String,
    pub csrf: String,
    pub tag: String,
    pub renewed: Option<String>,
}

struct Parsed<'a> {
    id: &'a str,
    created: u64,
    seen: u64,
    tag: &'a str,
    name: &'a str,
}

struct Revoked {
    file: Option<PathBuf>,
    /// id → when it would have expired (Unix seconds).
    ids: HashMap<String, u64>,
    stamp: Option<(SystemTime, u64)>,
    checked: Instant,
}

pub struct Sessions {
    key: Vec<u8>,
    ttl: Duration,
    idle: Duration,
    revoked: Mutex<Revoked>,
}

impl Sessions {
    /// Sessions sealed with `key` (≥ 32 bytes); revocations kept in `revoked_file`.
    pub fn new(key: Vec<u8>, ttl: Duration, idle: Duration, revoked_file: Option<PathBuf>) -> Self {
        let s = Self {
            key,
            ttl,
            idle,
            revoked: Mutex::new(Revoked {
                file: revoked_file,
                ids: HashMap::new(),
                stamp: None,
                checked: Instant::now(),
            }),
        };
        s.reload(&mut s.lock(), true);
        s
    }

    /// The key in `path`, made (32 random bytes, hex, mode 0600) when it is
    /// missing; at least 32 bytes when given (a Docker secret, say).
    pub fn load_or_create_key(path: &Path) -> Result<Vec<u8>, SessionKeyError> {
        let bad = |reason: String| SessionKeyError::Unusable { path: path.display().to_string(), reason };
        match std::fs::read(path) {
            Ok(bytes) => {
                let key = bytes.trim_ascii().to_vec();
                if key.len() < 32 {
                    return Err(bad("shorter than 32 bytes: make it with `head -c 32 /dev/urandom | base64`".into()));
                }
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut raw = [0u8; 32];
                getrandom::fill(&mut raw).map_err(|e| bad(e.to_string()))?;
                let text = hex::encode(raw);
                // Linked into place: two processes starting at once agree on one key.
                match tls::identity::write_new(path, text.as_bytes(), 0o600) {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), "made a new session key");
                        Ok(text.into_bytes())
                    }
                    Err(_) if path.exists() => Self::load_or_create_key(path),
                    Err(e) => Err(bad(e.to_string())),
                }
            }
            Err(e) => Err(bad(e.to_string())),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Revoked> {
        self.revoked.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mac(&self, payload: &str) -> String {
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        m.update(b"dockward-session-v1|");
        m.update(payload.as_bytes());
        hex::encode(m.finalize().into_bytes())
    }

    fn csrf(&self, id: &str) -> String {
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        m.update(b"dockward-csrf-v1|");
        m.update(id.as_bytes());
        hex::encode(m.finalize().into_bytes())
    }

    fn seal(&self, id: &str, created: u64, seen: u64, tag: &str, name: &str) -> String {
        let payload = format!("{id}.{created}.{seen}.{tag}.{name}");
        let mac = self.mac(&payload);
        format!("{payload}.{mac}")
    }

    /// A new session for `name`, whose password stamp is `stamp`: its token.
    pub fn create(&self, name: &str, stamp: &str) -> String {
        let mut raw = [0u8; 16];
        // The OS random source; if it fails we refuse rather than issue a weak id.
        getrandom::fill(&mut raw).expect("the OS random number generator is unavailable");
        let now = now_s();
        self.seal(&hex::encode(raw), now, now, &stamp_tag(stamp), name)
    }

    /// The token's fields, if its MAC is right.
    fn open<'a>(&self, token: &'a str) -> Option<Parsed<'a>> {
        if token.len() > 512 {
            return None;
        }
        let (payload, mac) = token.rsplit_once('.')?;
        if !bool::from(self.mac(payload).as_bytes().ct_eq(mac.as_bytes())) {
            return None;
        }
        let mut f = payload.splitn(5, '.');
        let (id, created, seen, tag, name) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
        Some(Parsed { id, created: created.parse().ok()?, seen: seen.parse().ok()?, tag, name })
    }

    /// The session, if alive and not revoked; renews `seen` once a minute.
    pub fn touch(&self, token: &str) -> Option<Live> {
        let p = self.open(token)?;
        let now = now_s();
        if !alive(p.created, p.seen, now, self.ttl, self.idle) || self.is_revoked(p.id) {
            return None;
        }
        let refresh_after = REFRESH_AFTER_S.min(self.idle.as_secs() / 2);
        let renewed =
            (now.saturating_sub(p.seen) >= refresh_after).then(|| self.seal(p.id, p.created, now, p.tag, p.name));
        Some(Live { name: p.name.to_owned(), csrf: self.csrf(p.id), tag: p.tag.to_owned(), renewed })
    }

    /// The session's user and stamp tag while within its lifetime and not
    /// revoked (not marking it used: a long-lived stream is not activity).
    pub fn peek(&self, token: &str) -> Option<(String, String)> {
        let p = self.open(token)?;
        let now = now_s();
        let within = p.created <= now + 60 && now.saturating_sub(p.created) < self.ttl.as_secs();
        (within && !self.is_revoked(p.id)).then(|| (p.name.to_owned(), p.tag.to_owned()))
    }

    /// Ends the session of `token` here and, through the revocations file,
    /// wherever that file is read.
    pub fn remove(&self, token: &str) {
        let Some(p) = self.open(token) else { return };
        let expires = p.created + REVOKED_FOR_S;
        let mut r = self.lock();
        self.reload(&mut r, true);
        r.ids.insert(p.id.to_owned(), expires);
        bound(&mut r.ids);
        if let Some(file) = r.file.clone() {
            // One write of one whole line: appends of several processes do not interleave.
            let line = format!("{} {expires}\n", p.id);
            let appended = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&file)
                .and_then(|mut f| f.write_all(line.as_bytes()));
            match appended {
                Ok(()) => r.stamp = file_stamp(&file),
                Err(e) => {
                    tracing::error!(path = %file.display(), error = %e, "cannot record a logout; it holds on this process only")
                }
            }
        }
    }

    fn is_revoked(&self, id: &str) -> bool {
        let mut r = self.lock();
        self.reload(&mut r, false);
        r.ids.contains_key(id)
    }

    /// Re-reads the revocations file when it changed (looked at no more than
    /// once a second unless `now`), dropping entries past their expiry. At
    /// start (`now`, nothing read yet) a file mostly of dead entries is
    /// rewritten with the live ones.
    fn reload(&self, r: &mut Revoked, now: bool) {
        let Some(file) = r.file.clone() else { return };
        if !now && r.checked.elapsed() < Duration::from_secs(1) {
            return;
        }
        r.checked = Instant::now();
        let stamp = file_stamp(&file);
        if stamp == r.stamp {
            return;
        }
        let first = r.stamp.is_none();
        r.stamp = stamp;
        let Ok(text) = std::fs::read_to_string(&file) else { return };
        let t = now_s();
        let mut lines = 0;
        for line in text.lines() {
            lines += 1;
            let Some((id, exp)) = line.split_once(' ') else { continue };
            let Ok(exp) = exp.trim().parse::<u64>() else { continue };
            if exp > t && id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                r.ids.insert(id.to_owned(), exp);
            }
        }
        r.ids.retain(|_, e| *e > t);
        bound(&mut r.ids);
        if first && lines > COMPACT_AFTER_LINES && r.ids.len() * 2 < lines {
            let live: String = r.ids.iter().map(|(id, e)| format!("{id} {e}\n")).collect();
            let tmp = file.with_extension("compact");
            let done = std::fs::write(&tmp, live).and_then(|()| std::fs::rename(&tmp, &file));
            match done {
                Ok(()) => r.stamp = file_stamp(&file),
                Err(e) => tracing::warn!(path = %file.display(), error = %e, "cannot compact the revocations file"),
            }
        }
    }
}

/// Keeps at most [`REVOKED_MAX`] ids, dropping those that expire soonest.
fn bound(ids: &mut HashMap<String, u64>) {
    if ids.len() <= REVOKED_MAX {
        return;
    }
    let mut by_expiry: Vec<u64> = ids.values().copied().collect();
    by_expiry.sort_unstable();
    let cut = by_expiry[ids.len() - REVOKED_MAX];
    tracing::warn!(kept = REVOKED_MAX, "too many revoked sessions; forgetting those that expire soonest");
    ids.retain(|_, e| *e > cut);
}

fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions(ttl: u64, idle: u64, file: Option<PathBuf>) -> Sessions {
        Sessions::new(
            b"a-session-key-0123456789abcdef0123456789".to_vec(),
            Duration::from_secs(ttl),
            Duration::from_secs(idle),
            file,
        )
    }

    #[test]
    fn a_session_dies_idle_or_old_and_use_keeps_it_alive() {
        let (ttl, idle) = (Duration::from_secs(100), Duration::from_secs(10));
        assert!(alive(1000, 1000, 1009, ttl, idle));
        assert!(!alive(1000, 1000, 1010, ttl, idle), "idle timeout");
        assert!(alive(1000, 1095, 1099, ttl, idle), "kept alive by use");
        assert!(!alive(1000, 1099, 1100, ttl, idle), "absolute lifetime");
        assert!(!alive(5000, 5000, 1000, ttl, idle), "made in the future");
    }

    #[test]
    fn tokens_are_sealed_random_and_any_holder_of_the_key_reads_them() {
        let s = sessions(3600, 600, None);
        let a = s.create("alice@example", "stamp1");
        let b = s.create("alice@example", "stamp1");
        assert_ne!(a, b);
        let live = s.touch(&a).unwrap();
        assert_eq!(live.name, "alice@example");
        assert_eq!(live.tag, stamp_tag("stamp1"));
        assert!(live.renewed.is_none(), "renewed only after a minute");
        assert_ne!(live.csrf, s.touch(&b).unwrap().csrf);
        // Another replica with the same key: the same session, the same CSRF token.
        let replica = sessions(3600, 600, None);
        assert_eq!(replica.touch(&a).unwrap().csrf, live.csrf);
        // Another key, or any change to the token: nothing.
        let other = Sessions::new(vec![7u8; 32], Duration::from_secs(3600), Duration::from_secs(600), None);
        assert!(other.touch(&a).is_none());
        let forged = a.replacen("alice@example", "admin", 1);
        assert!(s.touch(&forged).is_none());
        for junk in ["", ".", "a.b.c.d.e.f", &"x".repeat(600)] {
            assert!(s.touch(junk).is_none(), "{junk}");
        }
    }

    #[test]
    fn idle_and_old_tokens_are_refused_and_use_renews_them() {
        let s = sessions(3600, 600, None);
        let now = now_s();
        let tag = stamp_tag("st");
        let idle = s.seal(&"ab".repeat(16), now - 1000, now - 601, &tag, "bob");
        assert!(s.touch(&idle).is_none(), "idle too long");
        assert!(s.peek(&idle).is_some(), "a stream outlives idleness, not the lifetime");
        let old = s.seal(&"cd".repeat(16), now - 3601, now, &tag, "bob");
        assert!(s.touch(&old).is_none() && s.peek(&old).is_none(), "past its lifetime");
        let used = s.seal(&"ef".repeat(16), now - 100, now - 90, &tag, "bob");
        let renewed = s.touch(&used).unwrap().renewed.expect("a renewed token");
        let again = s.touch(&renewed).unwrap();
        assert!(again.renewed.is_none());
        assert_eq!(again.csrf, s.touch(&used).unwrap().csrf, "the same session");
        // A one-minute idle timeout: renewed at half of it, so use keeps it alive.
        let short = sessions(3600, 60, None);
        let half = short.seal(&"12".repeat(16), now - 100, now - 31, &tag, "bob");
        assert!(short.touch(&half).unwrap().renewed.is_some());
    }

    #[test]
    fn a_logout_holds_across_processes_and_restarts_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("revoked");
        let a = sessions(3600, 600, Some(file.clone()));
        let b = sessions(3600, 600, Some(file.clone()));
        let t = a.create("carol", "st");
        assert!(b.touch(&t).is_some());
        a.remove(&t);
        assert!(a.touch(&t).is_none() && a.peek(&t).is_none());
        std::thread::sleep(Duration::from_millis(1100));
        assert!(b.touch(&t).is_none(), "the other process read the file");
        let restarted = sessions(3600, 600, Some(file));
        assert!(restarted.touch(&t).is_none(), "a restart reads it back");
        assert!(restarted.touch(&a.create("carol", "st")).is_some());
    }

    #[test]
    fn the_key_is_made_once_and_a_short_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.key");
        let k1 = Sessions::load_or_create_key(&path).unwrap();
        assert_eq!(k1.len(), 64);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(Sessions::load_or_create_key(&path).unwrap(), k1);
        std::fs::write(&path, "short\n").unwrap();
        let e = Sessions::load_or_create_key(&path).unwrap_err();
        assert!(e.to_string().contains("shorter than 32 bytes"), "{e}");
    }
}
