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
//! A logout revokes the id: it is kept in memory and recorded in the
//! console's store, which every replica sharing the store reads again every
//! second (a restart reads it back). An entry is kept for the longest
//! lifetime a session may have.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::store::Store;

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
/// Revocations read from the store at a time.
const SYNC_BATCH: i64 = 10_000;
/// How far behind the last revocation seen each read starts again.
const SYNC_OVERLAP: i64 = 100;

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

#[derive(Default)]
struct Revoked {
    /// id → when it would have expired (Unix seconds).
    ids: HashMap<String, u64>,
    /// The store's last revocation read.
    seq: i64,
}

pub struct Sessions {
    key: Vec<u8>,
    ttl: Duration,
    idle: Duration,
    revoked: Arc<Mutex<Revoked>>,
    store: Option<Store>,
}

impl Sessions {
    /// Sessions sealed with `key` (≥ 32 bytes); logouts recorded in `store`
    /// (without one they hold in this process only).
    pub fn new(key: Vec<u8>, ttl: Duration, idle: Duration, store: Option<Store>) -> Self {
        Self { key, ttl, idle, revoked: Arc::default(), store }
    }

    /// Reads the store's revocations, then keeps reading new ones every
    /// second (other replicas' logouts) and drops expired ones hourly.
    pub async fn start_sync(&self) {
        let Some(store) = self.store.clone() else { return };
        sync(&store, &self.revoked).await;
        let revoked = self.revoked.clone();
        tokio::spawn(async move {
            let mut tick = 0u64;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                sync(&store, &revoked).await;
                tick += 1;
                if tick.is_multiple_of(3600) && store.writable() {
                    if let Err(e) = store.prune_revocations(now_s()).await {
                        tracing::debug!(error = %e, "pruning revoked sessions");
                    }
                }
            }
        });
    }

    /// Moves the live entries of an earlier version's revocations file into
    /// the store once, then renames the file `*.imported`.
    pub async fn import_file(&self, path: &Path) {
        let (Some(store), Ok(text)) = (&self.store, std::fs::read_to_string(path)) else { return };
        if !store.writable() {
            return;
        }
        let t = now_s();
        let mut moved = 0;
        for line in text.lines() {
            let Some((id, exp)) = line.split_once(' ') else { continue };
            let Ok(exp) = exp.trim().parse::<u64>() else { continue };
            if exp > t && id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                if let Err(e) = store.revoke_session(id, exp).await {
                    tracing::error!(path = %path.display(), error = %e, "cannot import the revocations file; it is left in place");
                    return;
                }
                moved += 1;
            }
        }
        let done = path.with_extension("imported");
        match std::fs::rename(path, &done) {
            Ok(()) => tracing::info!(moved, from = %path.display(), "logouts moved into the store"),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "imported, but cannot rename the revocations file")
            }
        }
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

    /// A short-lived note sealed under the session key for `purpose` (a
    /// sign-in waiting for its second factor): any replica opens it until
    /// `ttl_s` has passed. `payload` must hold no `.`-free newline; it is
    /// not secret, only unforgeable.
    pub fn seal_note(&self, purpose: &str, payload: &str, ttl_s: u64) -> String {
        let body = format!("{}.{payload}", now_s() + ttl_s);
        let mac = self.mac(&format!("note|{purpose}|{body}"));
        format!("{body}.{mac}")
    }

    /// A note's payload, if it was sealed here for `purpose` and is not past its time.
    pub fn open_note(&self, purpose: &str, note: &str) -> Option<String> {
        if note.len() > 1024 {
            return None;
        }
        let (body, mac) = note.rsplit_once('.')?;
        if !bool::from(self.mac(&format!("note|{purpose}|{body}")).as_bytes().ct_eq(mac.as_bytes())) {
            return None;
        }
        let (until, payload) = body.split_once('.')?;
        (until.parse::<u64>().ok()? > now_s()).then(|| payload.to_owned())
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

    /// Ends the session of `token` here at once and, through the store,
    /// on every replica within a second and after a restart.
    pub async fn remove(&self, token: &str) {
        let Some(p) = self.open(token) else { return };
        let expires = p.created + REVOKED_FOR_S;
        {
            let mut r = self.lock();
            r.ids.insert(p.id.to_owned(), expires);
            bound(&mut r.ids);
        }
        if let Some(store) = &self.store {
            if let Err(e) = store.revoke_session(p.id, expires).await {
                tracing::error!(error = %e, "cannot record a logout in the store; it holds on this process until it restarts");
            }
        }
    }

    fn is_revoked(&self, id: &str) -> bool {
        self.lock().ids.contains_key(id)
    }
}

/// Reads the revocations recorded since the last read, dropping expired ones.
async fn sync(store: &Store, revoked: &Mutex<Revoked>) {
    loop {
        // Read again a little behind the last one seen: on PostgreSQL, sequence numbers
        // taken by concurrent replicas may commit out of order (re-reading is harmless).
        let after = revoked.lock().unwrap_or_else(|e| e.into_inner()).seq;
        let rows = match store.revocations_since(after.saturating_sub(SYNC_OVERLAP), SYNC_BATCH).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::debug!(error = %e, "reading revoked sessions");
                return;
            }
        };
        let t = now_s();
        let full = rows.len() as i64 == SYNC_BATCH;
        let mut r = revoked.lock().unwrap_or_else(|e| e.into_inner());
        let before = r.seq;
        for (seq, id, exp) in rows {
            r.seq = r.seq.max(seq);
            if exp > t {
                r.ids.insert(id, exp);
            }
        }
        r.ids.retain(|_, e| *e > t);
        bound(&mut r.ids);
        if !full || r.seq == before {
            return;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions(ttl: u64, idle: u64, store: Option<Store>) -> Sessions {
        Sessions::new(
            b"a-session-key-0123456789abcdef0123456789".to_vec(),
            Duration::from_secs(ttl),
            Duration::from_secs(idle),
            store,
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
    fn notes_are_sealed_for_one_purpose_and_expire() {
        let a = sessions(3600, 600, None);
        let n = a.seal_note("totp", "alice|tag", 60);
        assert_eq!(a.open_note("totp", &n).as_deref(), Some("alice|tag"));
        assert_eq!(a.open_note("oidc", &n), None, "another purpose");
        assert_eq!(a.open_note("totp", &n.replace("alice", "admin")), None, "changed");
        assert_eq!(a.open_note("totp", &a.seal_note("totp", "x", 0)), None, "past its time");
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

    #[tokio::test]
    async fn a_logout_holds_across_replicas_and_restarts_through_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let at = super::super::store::Location::Sqlite(dir.path().join("dockward.db"));
        let store = Store::open(&at).await.unwrap();
        let a = sessions(3600, 600, Some(store.clone()));
        let b = sessions(3600, 600, Some(Store::open(&at).await.unwrap()));
        b.start_sync().await;
        let t = a.create("carol", "st");
        assert!(b.touch(&t).is_some());
        a.remove(&t).await;
        assert!(a.touch(&t).is_none() && a.peek(&t).is_none(), "at once here");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(b.touch(&t).is_none(), "the other replica read the store");
        store.close().await;
        let restarted = sessions(3600, 600, Some(Store::open(&at).await.unwrap()));
        restarted.start_sync().await;
        assert!(restarted.touch(&t).is_none(), "a restart reads it back");
        assert!(restarted.touch(&a.create("carol", "st")).is_some());
    }

    #[tokio::test]
    async fn an_earlier_revocations_file_is_moved_into_the_store_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&super::super::store::Location::Sqlite(dir.path().join("d.db"))).await.unwrap();
        let s = sessions(3600, 600, Some(store.clone()));
        let t = s.create("dan", "st");
        let id = t.split('.').next().unwrap().to_owned();
        let file = dir.path().join("sessions-revoked");
        std::fs::write(&file, format!("{id} {}\nnot a line\n{} 1\n", now_s() + 3600, "ab".repeat(16))).unwrap();
        s.import_file(&file).await;
        assert!(!file.exists() && file.with_extension("imported").exists());
        let fresh = sessions(3600, 600, Some(store));
        fresh.start_sync().await;
        assert!(fresh.touch(&t).is_none(), "the imported logout holds");
        assert_eq!(fresh.lock().ids.len(), 1, "expired and malformed lines are not imported");
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
