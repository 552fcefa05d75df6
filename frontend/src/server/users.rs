//! Local users: a JSON file of names, grants and argon2id hashes, managed by
//! `dockward-web user add|passwd|grant|ungrant|remove|list` and the console's
//! users page, written atomically (0600). A user's `role` is their role on
//! the whole fleet (if any); `grants` are roles on hosts and apps (`access.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::access::{Access, Grant, GRANTS_MAX};
use super::scope::Scope;
use crate::types::Role;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("{path} is not a valid users file: {source}")]
    Parse { path: String, source: serde_json::Error },
    #[error("user names are 1–64 characters of letters, digits, '.', '_', '-' and '@'")]
    BadName,
    #[error("passwords must be at least 10 characters")]
    WeakPassword,
    #[error("user {0:?} already exists")]
    Exists(String),
    #[error("no user {0:?}")]
    Missing(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("cannot get random bytes: {0}")]
    Random(String),
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("the new password must differ from the current one")]
    SamePassword,
    #[error("invalid grant: {0}")]
    BadGrant(String),
    #[error("a user holds at most {GRANTS_MAX} grants")]
    TooManyGrants,
    #[error("two-factor sign-in is already on; turn it off first")]
    TotpOn,
    #[error("two-factor sign-in is not set up")]
    NoTotp,
    #[error("the code is wrong, too old or already used")]
    WrongCode,
    #[error("a local user is named {0:?}: an identity provider's user of that name cannot sign in")]
    LocalName(String),
    #[error("{0:?} signed in before with another identity at the provider")]
    OtherIdentity(String),
    #[error("your groups at the identity provider give you no role here")]
    NoRole,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    /// Their role on the whole fleet, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Roles on hosts and apps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<Grant>,
    pub hash: String,
    /// Set for the first-run admin: the password was generated and must be
    /// changed at the first login.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub must_change: bool,
    /// Two-factor sign-in (TOTP), set up or on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<TotpState>,
    /// A user of the identity provider (OIDC): the SHA-256 of `<issuer>|<sub>`
    /// they are bound to. They have no password here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<String>,
    /// The grants their groups gave at their last sign-in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub idp_grants: Vec<Grant>,
}

/// A user's TOTP key (hex), whether it is on (confirmed with a code), the
/// last step a code was accepted for (no code counts twice), and the
/// SHA-256 digests of the recovery codes left.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TotpState {
    pub key: String,
    #[serde(default)]
    pub on: bool,
    #[serde(default)]
    pub last_step: u64,
    #[serde(default)]
    pub recovery: Vec<String>,
}

/// How a second factor was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Second {
    Code,
    /// A recovery code, now used up; how many are left.
    Recovery {
        left: usize,
    },
}

/// What a session checks against on every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView {
    pub access: Access,
    /// Changes with every new password hash (a fresh salt each time): a
    /// session holding an older stamp has ended.
    pub stamp: String,
    pub must_change: bool,
    /// Two-factor sign-in is on.
    pub totp: bool,
    /// A user of the identity provider (who signs in there, second factor included).
    pub external: bool,
}

impl User {
    fn view(&self) -> UserView {
        use sha2::Digest;
        let stamp = hex::encode(&sha2::Sha256::digest(self.hash.as_bytes())[..16]);
        let totp = self.totp.as_ref().is_some_and(|t| t.on);
        UserView { access: self.access(), stamp, must_change: self.must_change, totp, external: self.oidc.is_some() }
    }

    /// The fleet role and the grants, as one.
    pub fn access(&self) -> Access {
        let fleet = self.role.map(|role| Grant { role, on: Scope::Fleet });
        Access::new(fleet.into_iter().chain(self.grants.iter().cloned()).chain(self.idp_grants.iter().cloned()))
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct UsersFile {
    users: BTreeMap<String, User>,
}

pub struct UserStore {
    path: PathBuf,
    users: RwLock<BTreeMap<String, User>>,
    /// The file's modification time when last read: a change (say, by
    /// `dockward-web user …` while the console runs) is picked up at once.
    loaded: std::sync::Mutex<Option<std::time::SystemTime>>,
}

pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
}

pub fn hash_password(password: &str) -> Result<String, UserError> {
    if password.chars().count() < 10 {
        return Err(UserError::WeakPassword);
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| UserError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| UserError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UserError::Hash(e.to_string()))
}

/// A hash to verify against when the user does not exist, so that timing
/// does not tell which names exist.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("dockward-dummy-password").unwrap_or_default())
}

impl UserStore {
    pub fn load(path: &Path) -> Result<Self, UserError> {
        let loaded = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let users = Self::read(path)?;
        Ok(Self { path: path.to_path_buf(), users: RwLock::new(users), loaded: std::sync::Mutex::new(loaded) })
    }

    fn read(path: &Path) -> Result<BTreeMap<String, User>, UserError> {
        let users = match std::fs::read(path) {
            Ok(bytes) => {
                let f: UsersFile = serde_json::from_slice(&bytes)
                    .map_err(|source| UserError::Parse { path: path.display().to_string(), source })?;
                f.users
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(UserError::Read { path: path.display().to_string(), source }),
        };
        Ok(users)
    }

    /// Re-reads the file if it changed on disk. A file that became unreadable
    /// keeps the last good copy (and says so in the log).
    fn refresh(&self) {
        let now = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if now == *loaded {
            return;
        }
        match Self::read(&self.path) {
            Ok(users) => {
                *self.users.write().unwrap_or_else(|e| e.into_inner()) = users;
                *loaded = now;
            }
            Err(e) => tracing::warn!(error = %e, "users file changed but cannot be read; keeping the previous one"),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.users.read().unwrap_or_else(|e| e.into_inner()).is_empty()
    }

    pub fn list(&self) -> Vec<(String, Access)> {
        self.refresh();
        self.users.read().unwrap_or_else(|e| e.into_inner()).iter().map(|(n, u)| (n.clone(), u.access())).collect()
    }

    /// Checks a password; the same work is done whether or not the user exists.
    pub fn verify(&self, name: &str, password: &str) -> Option<UserView> {
        self.refresh();
        let user = self.users.read().unwrap_or_else(|e| e.into_inner()).get(name).cloned();
        let hash = user.as_ref().map(|u| u.hash.clone()).unwrap_or_else(|| dummy_hash().to_owned());
        let ok = PasswordHash::new(&hash)
            .map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
            .unwrap_or(false);
        user.filter(|_| ok).map(|u| u.view())
    }

    /// The user as they are now (re-reading the file if it changed).
    pub fn lookup(&self, name: &str) -> Option<UserView> {
        self.refresh();
        self.users.read().unwrap_or_else(|e| e.into_inner()).get(name).map(User::view)
    }

    /// The user's current grants (re-reading the file if it changed).
    pub fn access_of(&self, name: &str) -> Option<Access> {
        self.lookup(name).map(|u| u.access)
    }

    /// Gives `name` the grant: the fleet role, or the role on a host or app
    /// (replacing the role they had on that same scope).
    pub fn grant(&self, name: &str, g: Grant) -> Result<(), UserError> {
        let g = Grant::new(g.role, g.on).map_err(UserError::BadGrant)?;
        self.update(|users| {
            let u = users.get_mut(name).ok_or_else(|| UserError::Missing(name.to_owned()))?;
            if g.on == Scope::Fleet {
                u.role = Some(g.role);
                return Ok(());
            }
            u.grants.retain(|x| x.on != g.on);
            if u.grants.len() >= GRANTS_MAX {
                return Err(UserError::TooManyGrants);
            }
            u.grants.push(g);
            Ok(())
        })
    }

    /// Takes back whatever role `name` has on `on`; says whether there was one.
    pub fn ungrant(&self, name: &str, on: &Scope) -> Result<bool, UserError> {
        let mut had = false;
        self.update(|users| {
            let u = users.get_mut(name).ok_or_else(|| UserError::Missing(name.to_owned()))?;
            if *on == Scope::Fleet {
                had = u.role.take().is_some();
            } else {
                let before = u.grants.len();
                u.grants.retain(|x| x.on != *on);
                had = u.grants.len() != before;
            }
            Ok(())
        })?;
        Ok(had)
    }

    /// Adds a user with `role` on the fleet.
    pub fn add(&self, name: &str, role: Role, password: &str) -> Result<(), UserError> {
        self.add_user(name, Grant { role, on: Scope::Fleet }, password, false)
    }

    /// Adds a user with one grant, who may have to change the password at
    /// the first login.
    pub fn add_user(&self, name: &str, grant: Grant, password: &str, must_change: bool) -> Result<(), UserError> {
        if !valid_name(name) {
            return Err(UserError::BadName);
        }
        let grant = Grant::new(grant.role, grant.on).map_err(UserError::BadGrant)?;
        let (role, grants) = match grant.on {
            Scope::Fleet => (Some(grant.role), Vec::new()),
            _ => (None, vec![grant]),
        };
        let hash = hash_password(password)?;
        self.update(|users| {
            if users.contains_key(name) {
                return Err(UserError::Exists(name.to_owned()));
            }
            users.insert(
                name.to_owned(),
                User { role, grants, hash, must_change, totp: None, oidc: None, idp_grants: Vec::new() },
            );
            Ok(())
        })
    }

    /// Sets a new password (and optionally role); ends the must-change state.
    pub fn passwd(&self, name: &str, password: &str, role: Option<Role>) -> Result<(), UserError> {
        let hash = hash_password(password)?;
        self.update(|users| {
            let u = users.get_mut(name).ok_or_else(|| UserError::Missing(name.to_owned()))?;
            u.hash = hash;
            u.must_change = false;
            if let Some(r) = role {
                u.role = Some(r);
            }
            Ok(())
        })
    }

    /// A user changing their own password: the current one must be right and
    /// the new one different (and long enough).
    pub fn change_password(&self, name: &str, current: &str, new: &str) -> Result<UserView, UserError> {
        if self.verify(name, current).is_none() {
            return Err(UserError::WrongPassword);
        }
        if current == new {
            return Err(UserError::SamePassword);
        }
        self.passwd(name, new, None)?;
        self.lookup(name).ok_or_else(|| UserError::Missing(name.to_owned()))
    }

    /// Starts setting up TOTP: a new key (base32, for the authenticator
    /// app), not on until [`Self::totp_confirm`].
    pub fn totp_begin(&self, name: &str) -> Result<String, UserError> {
        let key = super::totp::new_key().map_err(UserError::Random)?;
        self.update(|users| {
            let u = users.get_mut(name).ok_or_else(|| UserError::Missing(name.to_owned()))?;
            if u.totp.as_ref().is_some_and(|t| t.on) {
                return Err(UserError::TotpOn);
            }
            u.totp = Some(TotpState { key: hex::encode(&key), on: false, last_step: 0, recovery: Vec::new() });
            Ok(())
        })?;
        Ok(super::totp::base32(&key))
    }

    /// Turns TOTP on with a first right code: the recovery codes, shown once.
    pub fn totp_confirm(&self, name: &str, code: &str, now_s: u64) -> Result<Vec<String>, UserError> {
        let (codes, digests) = super::totp::new_recovery_codes().map_err(UserError::Random)?;
        self.update(|users| {
            let u = users.get_mut(name).ok_or_else(|| UserError::Missing(name.to_owned()))?;
            let t = u.totp.as_mut().filter(|t| !t.on).ok_or(UserError::NoTotp)?;
            let key = hex::decode(&t.key).map_err(|_| UserError::NoTotp)?;
            let step = super::totp::verify(&key, code, now_s, None).ok_or(UserError::WrongCode)?;
            *t = TotpState { key: t.key.clone(), on: true, last_step: step, recovery: digests };
            Ok(())
        })?;
        Ok(codes)
    }

    /// Checks a second factor at sign-in: a code (its step then used up) or
    /// a recovery code (then gone).
    pub fn totp_check(&self, name: &str, code: &str, now_s: u64) -> Result<Second, UserError> {
        let mut how = Second::Code;
        self.update(|users| {
            let u = users.get_mut(name).ok_or_else(|| UserError::Missing(name.to_owned()))?;
            let t = u.totp.as_mut().filter(|t| t.on).ok_or(UserError::NoTotp)?;
            let key = hex::decode(&t.key).map_err(|_| UserError::NoTotp)?;
            if let Some(step) = super::totp::verify(&key, code, now_s, Some(t.last_step)) {
                t.last_step = step;
                return Ok(());
            }
            let digest = super::totp::recovery_digest(code);
            let before = t.recovery.len();
            t.recovery.retain(|d| !bool::from(d.as_bytes().ct_eq(digest.as_bytes())));
            if t.recovery.len() == before || code.chars().filter(char::is_ascii_alphanumeric).count() != 16 {
                return Err(UserError::WrongCode);
            }
            how = Second::Recovery { left: t.recovery.len() };
            Ok(())
        })?;
        Ok(how)
    }

    /// New recovery codes for a user with TOTP on (the old ones stop working).
    pub fn totp_new_recovery(&self, name: &str) -> Result<Vec<String>, UserError> {
        let (codes, digests) = super::totp::new_recovery_codes().map_err(UserError::Random)?;
        self.update(|users| {
            let u = users.get_mut(name).ok_or_else(|| UserError::Missing(name.to_owned()))?;
            let t = u.totp.as_mut().filter(|t| t.on).ok_or(UserError::NoTotp)?;
            t.recovery = digests;
            Ok(())
        })?;
        Ok(codes)
    }

    /// A user of the identity provider signs in: bound to `binding` (the
    /// SHA-256 of issuer and subject), with the grants their groups give
    /// now. Made when `create` and new; refused when a local user has the
    /// name, another identity is bound to it, or nothing gives them a role
    /// (then nothing is made or changed).
    pub fn sign_in_external(
        &self,
        name: &str,
        binding: &str,
        idp_grants: Vec<Grant>,
        create: bool,
    ) -> Result<UserView, UserError> {
        if !valid_name(name) {
            return Err(UserError::BadName);
        }
        // A known user whose groups give nothing now loses what they gave
        // (their open sessions with it), and is refused.
        let mut lost = false;
        self.update(|users| {
            match users.get_mut(name) {
                Some(u) => {
                    match &u.oidc {
                        None => return Err(UserError::LocalName(name.to_owned())),
                        Some(b) if !bool::from(b.as_bytes().ct_eq(binding.as_bytes())) => {
                            return Err(UserError::OtherIdentity(name.to_owned()))
                        }
                        Some(_) => {}
                    }
                    u.idp_grants = idp_grants;
                    lost = u.access().is_empty();
                }
                None if !create => return Err(UserError::Missing(name.to_owned())),
                None => {
                    if idp_grants.is_empty() {
                        return Err(UserError::NoRole);
                    }
                    let hash = format!("oidc:{}", &binding[..binding.len().min(32)]);
                    users.insert(
                        name.to_owned(),
                        User {
                            role: None,
                            grants: Vec::new(),
                            hash,
                            must_change: false,
                            totp: None,
                            oidc: Some(binding.to_owned()),
                            idp_grants,
                        },
                    );
                }
            }
            Ok(())
        })?;
        if lost {
            return Err(UserError::NoRole);
        }
        self.lookup(name).ok_or_else(|| UserError::Missing(name.to_owned()))
    }

    /// Whether TOTP is on, and the key (base32) of one being set up.
    pub fn totp_status(&self, name: &str) -> (bool, Option<String>) {
        self.refresh();
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        match users.get(name).and_then(|u| u.totp.as_ref()) {
            Some(t) if t.on => (true, None),
            Some(t) => (false, hex::decode(&t.key).ok().map(|k| super::totp::base32(&k))),
            None => (false, None),
        }
    }

    /// Turns TOTP off (an admin's reset, or the user's own after a code).
    pub fn totp_off(&self, name: &str) -> Result<(), UserError> {
        self.update(|users| {
            let u = users.get_mut(name).ok_or_else(|| UserError::Missing(name.to_owned()))?;
            u.totp = None;
            Ok(())
        })
    }

    pub fn remove(&self, name: &str) -> Result<(), UserError> {
        self.update(|users| users.remove(name).map(|_| ()).ok_or_else(|| UserError::Missing(name.to_owned())))
    }

    fn update(&self, f: impl FnOnce(&mut BTreeMap<String, User>) -> Result<(), UserError>) -> Result<(), UserError> {
        // What another process (the CLI) wrote since: changed on top of, not undone.
        self.refresh();
        let mut guard = self.users.write().unwrap_or_else(|e| e.into_inner());
        let mut next = guard.clone();
        f(&mut next)?;
        self.save(&next)?;
        *guard = next;
        Ok(())
    }

    fn save(&self, users: &BTreeMap<String, User>) -> Result<(), UserError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let err = |source| UserError::Write { path: self.path.display().to_string(), source };
        if let Some(dir) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let tmp = self.path.with_extension("tmp");
        let body = serde_json::to_vec_pretty(&UsersFile { users: users.clone() })
            .map_err(|e| err(std::io::Error::other(e)))?;
        let mut f =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(err)?;
        f.write_all(&body).and_then(|_| f.sync_all()).map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)?;
        *self.loaded.lock().unwrap_or_else(|e| e.into_inner()) =
            std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        Ok(())
    }
}

/// A random password for the first admin.
pub fn random_password() -> Result<String, UserError> {
    let mut b = [0u8; 15];
    getrandom::fill(&mut b).map_err(|e| UserError::Random(e.to_string()))?;
    Ok(hex::encode(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_verify_passwd_remove() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("users.json");
        let s = UserStore::load(&p).unwrap();
        assert!(s.is_empty());
        s.add("alice", Role::Admin, "correct horse battery").unwrap();
        assert!(matches!(s.add("alice", Role::Viewer, "another password"), Err(UserError::Exists(_))));
        assert!(matches!(s.add("bad name", Role::Viewer, "another password"), Err(UserError::BadName)));
        assert!(matches!(s.add("bob", Role::Viewer, "short"), Err(UserError::WeakPassword)));
        assert_eq!(s.verify("alice", "correct horse battery").map(|u| u.access), Some(Access::fleet(Role::Admin)));
        assert_eq!(s.verify("alice", "wrong password!"), None);
        assert_eq!(s.verify("nobody", "correct horse battery"), None);
        // Persisted, hashed with argon2id, never in clear.
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("$argon2id$") && !text.contains("correct horse"));
        let s2 = UserStore::load(&p).unwrap();
        s2.passwd("alice", "a new long password", Some(Role::Operator)).unwrap();
        assert_eq!(s2.verify("alice", "a new long password").map(|u| u.access), Some(Access::fleet(Role::Operator)));
        // Another process changes the file: a running store sees it at once.
        let other = UserStore::load(&p).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        other.add("bob", Role::Viewer, "bobs long password").unwrap();
        assert_eq!(s2.verify("bob", "bobs long password").map(|u| u.access), Some(Access::fleet(Role::Viewer)));
        other.remove("bob").unwrap();
        assert_eq!(s2.access_of("bob"), None);
        s2.remove("alice").unwrap();
        assert!(UserStore::load(&p).unwrap().is_empty());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn grants_are_kept_one_per_scope() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("users.json");
        let s = UserStore::load(&p).unwrap();
        s.add("shopops", Role::Viewer, "a long password!").unwrap();
        s.ungrant("shopops", &Scope::Fleet).unwrap();
        assert!(s.access_of("shopops").unwrap().is_empty(), "no fleet role left");
        s.grant("shopops", Grant::parse("viewer", "app:shop").unwrap()).unwrap();
        s.grant("shopops", Grant::parse("operator", "app:shop").unwrap()).unwrap();
        s.grant("shopops", Grant::parse("viewer", "host:h2").unwrap()).unwrap();
        let a = UserStore::load(&p).unwrap().access_of("shopops").unwrap();
        assert_eq!(a.describe(), "operator on app:shop, viewer on host:h2", "persisted, one role per scope");
        assert!(matches!(
            s.grant("shopops", Grant { role: Role::Admin, on: Scope::parse("label:x").unwrap() }),
            Err(UserError::BadGrant(_))
        ));
        assert!(matches!(s.grant("nobody", Grant::parse("viewer", "fleet").unwrap()), Err(UserError::Missing(_))));
        assert!(s.ungrant("shopops", &Scope::parse("app:shop").unwrap()).unwrap());
        assert!(!s.ungrant("shopops", &Scope::parse("app:shop").unwrap()).unwrap(), "nothing left to take");
        for i in 0..GRANTS_MAX - 1 {
            s.grant("shopops", Grant::parse("viewer", &format!("app:p{i}")).unwrap()).unwrap();
        }
        assert!(matches!(
            s.grant("shopops", Grant::parse("viewer", "app:one-more").unwrap()),
            Err(UserError::TooManyGrants)
        ));
        // A file of the older form (a role only) still reads.
        std::fs::write(&p, r#"{"users":{"old":{"role":"admin","hash":"x"}}}"#).unwrap();
        assert_eq!(UserStore::load(&p).unwrap().access_of("old"), Some(Access::fleet(Role::Admin)));
    }

    #[test]
    fn users_of_the_identity_provider_are_bound_and_need_a_role() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("users.json");
        let s = UserStore::load(&p).unwrap();
        s.add("admin", Role::Admin, "a long password!").unwrap();
        let ops = vec![Grant::parse("operator", "app:shop").unwrap()];
        assert!(
            matches!(s.sign_in_external("admin", "b1", ops.clone(), true), Err(UserError::LocalName(_))),
            "no takeover"
        );
        assert!(matches!(s.sign_in_external("bob", "b2", vec![], true), Err(UserError::NoRole)));
        assert!(s.lookup("bob").is_none(), "a refused user is not made");
        assert!(
            matches!(s.sign_in_external("carol", "b3", ops.clone(), false), Err(UserError::Missing(_))),
            "not made unless allowed"
        );
        let v = s.sign_in_external("carol", "b3", ops.clone(), true).unwrap();
        assert_eq!(v.access.describe(), "operator on app:shop");
        assert!(s.verify("carol", "").is_none() && s.verify("carol", "oidc:b3").is_none(), "no password works");
        assert!(matches!(s.sign_in_external("carol", "b4", ops.clone(), true), Err(UserError::OtherIdentity(_))));
        // An admin's grant stays when the groups change; the groups' own go with them.
        s.grant("carol", Grant::parse("viewer", "host:h1").unwrap()).unwrap();
        assert!(
            matches!(s.sign_in_external("carol", "b3", vec![], true), Ok(v) if v.access.describe() == "viewer on host:h1")
        );
        s.ungrant("carol", &Scope::parse("host:h1").unwrap()).unwrap();
        s.sign_in_external("carol", "b3", ops, true).unwrap();
        assert!(matches!(s.sign_in_external("carol", "b3", vec![], true), Err(UserError::NoRole)));
        assert!(s.lookup("carol").unwrap().access.is_empty(), "what the groups gave is gone with them");
    }

    #[test]
    fn totp_is_set_up_with_a_code_and_each_code_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = UserStore::load(&dir.path().join("users.json")).unwrap();
        s.add("alice", Role::Admin, "a long password!").unwrap();
        assert!(matches!(s.totp_check("alice", "123456", 0), Err(UserError::NoTotp)));
        let b32 = s.totp_begin("alice").unwrap();
        assert!(!s.lookup("alice").unwrap().totp, "not on before a code confirms it");
        let key = {
            let users = s.users.read().unwrap();
            hex::decode(&users["alice"].totp.as_ref().unwrap().key).unwrap()
        };
        assert_eq!(super::super::totp::base32(&key), b32);
        let now = 1_700_000_000;
        let code = |t: u64| format!("{:06}", super::super::totp::code(&key, t / 30, 6));
        assert!(matches!(s.totp_confirm("alice", "000000", now), Err(UserError::WrongCode)));
        let recovery = s.totp_confirm("alice", &code(now), now).unwrap();
        assert!(s.lookup("alice").unwrap().totp);
        assert!(matches!(s.totp_begin("alice"), Err(UserError::TotpOn)));
        assert!(
            matches!(s.totp_check("alice", &code(now), now), Err(UserError::WrongCode)),
            "the confirming code is used"
        );
        assert_eq!(s.totp_check("alice", &code(now + 30), now + 30).unwrap(), Second::Code);
        assert!(matches!(s.totp_check("alice", &code(now + 30), now + 31), Err(UserError::WrongCode)), "replayed");
        assert_eq!(s.totp_check("alice", &recovery[0], now + 60).unwrap(), Second::Recovery { left: 9 });
        assert!(matches!(s.totp_check("alice", &recovery[0], now + 60), Err(UserError::WrongCode)), "once");
        let text = std::fs::read_to_string(dir.path().join("users.json")).unwrap();
        assert!(!text.contains(&recovery[1]) && !text.contains(&recovery[1].replace('-', "")), "only digests are kept");
        let fresh = s.totp_new_recovery("alice").unwrap();
        assert!(matches!(s.totp_check("alice", &recovery[1], now + 90), Err(UserError::WrongCode)), "old codes end");
        assert!(matches!(s.totp_check("alice", &fresh[0], now + 90), Ok(Second::Recovery { .. })));
        s.totp_off("alice").unwrap();
        assert!(!s.lookup("alice").unwrap().totp);
    }

    #[test]
    fn a_new_password_changes_the_stamp_and_ends_must_change() {
        let dir = tempfile::tempdir().unwrap();
        let s = UserStore::load(&dir.path().join("users.json")).unwrap();
        s.add_user("admin", Grant { role: Role::Admin, on: Scope::Fleet }, "first random password", true).unwrap();
        let before = s.lookup("admin").unwrap();
        assert!(before.must_change);
        assert!(matches!(
            s.change_password("admin", "wrong one here", "a brand new password"),
            Err(UserError::WrongPassword)
        ));
        assert!(matches!(
            s.change_password("admin", "first random password", "first random password"),
            Err(UserError::SamePassword)
        ));
        assert!(matches!(s.change_password("admin", "first random password", "short"), Err(UserError::WeakPassword)));
        let after = s.change_password("admin", "first random password", "a brand new password").unwrap();
        assert!(!after.must_change);
        assert_ne!(after.stamp, before.stamp);
        // The same password set again is a new hash, so a new stamp.
        s.passwd("admin", "a brand new password", None).unwrap();
        assert_ne!(s.lookup("admin").unwrap().stamp, after.stamp);
    }
}
