//! API tokens for scripts. A signed-in user makes a named token with a
//! scope, a role no higher than their own there, and an expiry; the token
//! (`dwk_` and 64 hex digits, 256 random bits) is shown once, and only its
//! SHA-256 is stored. A request to `/api/…` with `Authorization: Bearer
//! dwk_…` needs no cookie and no CSRF token; it acts with the owner's
//! grants as they are now, cut to the token's scope and capped at its role
//! (`Access::within`), and the audit logs name it `<owner>/token:<name>`.
//! Every use and every refusal is in the console's audit log; tokens are
//! made and revoked with a session only (a token cannot make tokens).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};
use shared::Role;

use super::access::Grant;
use super::auth::CurrentUser;
use super::scope::Scope;
use super::store::{Store, StoreError, TokenRow};
use super::Core;
use crate::error::ConsoleError;

/// Every token starts so (and a metrics token never does).
pub const PREFIX: &str = "dwk_";
/// Most tokens one user holds.
pub const PER_USER_MAX: usize = 20;
/// Longest life a token may be given, in days.
pub const DAYS_MAX: u64 = 365;
/// A token's last use is written at most this often.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// Why a presented token was refused (401, said to the caller as is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the API token is not valid (unknown or revoked)")]
    Unknown,
    #[error("the API token has expired")]
    Expired,
    #[error("the API token's owner no longer exists, or has a new password since it was made")]
    OwnerGone,
    #[error("the API token's owner must first change their password or set up two-factor sign-in")]
    OwnerHeld,
    #[error("passwords are off on this console, and with them its local users' tokens")]
    LocalOff,
    #[error("API tokens need the console's store, which is not open")]
    NoStore,
}

/// A token as its owner (or a fleet admin) sees it: never the secret.
#[derive(Debug, Clone, Serialize)]
pub struct TokenView {
    #[serde(flatten)]
    pub row: TokenRow,
    pub expired: bool,
}

/// A token just made: its secret, shown this once.
#[derive(Debug, Clone, Serialize)]
pub struct Made {
    pub id: i64,
    pub name: String,
    pub token: String,
    pub role: Role,
    pub scope: String,
    pub expires_s: i64,
}

/// When each token's last use was written (to write it at most once a
/// minute), and the tokens revoked through this console (to end their open
/// streams).
#[derive(Default)]
pub struct Touched(Mutex<HashMap<i64, Instant>>, Mutex<std::collections::HashSet<i64>>);

/// The token a request carried: which, its name, until when, its role and
/// scope, and its owner's tag.
#[derive(Debug, Clone)]
pub struct Presented {
    pub id: i64,
    pub name: String,
    pub expires_s: i64,
    role: Role,
    on: Scope,
    tag: String,
}

impl Presented {
    /// Whether a stream opened with it may go on: not expired nor revoked
    /// here, its owner the same person with the same grants (`access`).
    pub fn still_good(&self, core: &Core, owner: &str, access: &super::access::Access) -> bool {
        now_s() < self.expires_s
            && !core.touched.1.lock().unwrap_or_else(|e| e.into_inner()).contains(&self.id)
            && core.users.lookup(owner).is_some_and(|v| {
                super::session::stamp_tag(&v.stamp) == self.tag && v.access.within(self.role, &self.on) == *access
            })
    }
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn store(core: &Core) -> Result<&Store, ConsoleError> {
    core.store
        .as_ref()
        .ok_or_else(|| ConsoleError::bad_input("store", "API tokens need the console's store, which is not open"))
}

fn store_err(e: StoreError) -> ConsoleError {
    match e {
        StoreError::ReadOnly => ConsoleError::bad_input("store", "the console's store is read-only"),
        other => {
            tracing::error!(error = %other, "tokens: the store failed");
            ConsoleError::internal("the store failed (the console's log says why)")
        }
    }
}

fn now_s() -> i64 {
    super::store::now_s() as i64
}

/// Tokens are made and revoked from a session, by a user of the users file:
/// their password tag (or identity binding's), which the token keeps.
fn from_session(core: &Core, u: &CurrentUser) -> Result<String, ConsoleError> {
    if u.token.is_some() {
        return Err(ConsoleError::bad_input("token", "a token cannot make or revoke tokens: sign in"));
    }
    let Some(view) = core.users.lookup(&u.name) else {
        return Err(ConsoleError::bad_input(
            "token",
            "tokens belong to users of the console's users file (not to forward-auth identities)",
        ));
    };
    Ok(super::session::stamp_tag(&view.stamp))
}

impl Core {
    /// Makes a token for `u`: `name` (1–64 of letters, digits, `.`, `_`,
    /// `-`), `role` on `scope`, for `days` (1–365).
    pub async fn make_token(
        &self,
        u: &CurrentUser,
        name: &str,
        role: &str,
        scope: &str,
        days: u64,
    ) -> Result<Made, ConsoleError> {
        let owner_tag = from_session(self, u)?;
        let name = name.trim();
        if !(1..=64).contains(&name.len()) || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
            return Err(ConsoleError::bad_input("name", "1–64 of letters, digits, '.', '_' and '-'"));
        }
        let grant = Grant::parse(role, if scope.trim().is_empty() { "fleet" } else { scope })
            .map_err(|e| ConsoleError::bad_input(if Role::parse(role).is_none() { "role" } else { "scope" }, e))?;
        let days = shared::bounded("days", days, 1, DAYS_MAX)?;
        // No more than the owner holds there.
        if !u.access.allows(grant.role, &grant.on) {
            return Err(ConsoleError::bad_input(
                "role",
                format!("you do not hold {grant} yourself, so no token of yours can"),
            ));
        }
        let store = store(self)?;
        let mine = store.tokens(Some(&u.name), PER_USER_MAX as i64 + 1).await.map_err(store_err)?;
        if mine.iter().any(|t| t.name == name) {
            return Err(ConsoleError::bad_input("name", format!("you already have a token named {name:?}")));
        }
        if mine.len() >= PER_USER_MAX {
            return Err(ConsoleError::Busy { what: format!("tokens (at most {PER_USER_MAX} per user)") });
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| ConsoleError::internal(e.to_string()))?;
        let token = format!("{PREFIX}{}", hex::encode(secret));
        let now = now_s();
        let row = TokenRow {
            id: 0,
            hash: hash(&token),
            owner: u.name.clone(),
            owner_tag,
            name: name.to_owned(),
            role: grant.role.as_str().to_owned(),
            scope: grant.on.to_string(),
            created_s: now,
            expires_s: now + days as i64 * 86_400,
            last_used_s: None,
        };
        let id = store.add_token(&row).await.map_err(store_err)?;
        self.audit_access(u, "token.created", &format!("token {name:?} ({grant}, {days} days)"));
        Ok(Made { id, name: row.name, token, role: grant.role, scope: row.scope, expires_s: row.expires_s })
    }

    /// `u`'s tokens; a fleet admin's list has everyone's.
    pub async fn list_tokens(&self, u: &CurrentUser) -> Result<Vec<TokenView>, ConsoleError> {
        let all = u.access.allows(Role::Admin, &Scope::Fleet) && u.token.is_none();
        let owner = (!all).then_some(u.name.as_str());
        let rows = store(self)?.tokens(owner, 1000).await.map_err(store_err)?;
        let now = now_s();
        Ok(rows.into_iter().map(|row| TokenView { expired: row.expires_s <= now, row }).collect())
    }

    /// Revokes token `id`: `u`'s own, or anyone's for a fleet admin.
    pub async fn revoke_token(&self, u: &CurrentUser, id: i64) -> Result<String, ConsoleError> {
        from_session(self, u)?;
        let any = u.access.allows(Role::Admin, &Scope::Fleet);
        let owner = (!any).then_some(u.name.as_str());
        let gone = store(self)?.remove_token(id, owner).await.map_err(store_err)?;
        let Some(t) = gone else { return Err(ConsoleError::NotFound { what: format!("token {id}") }) };
        self.touched.1.lock().unwrap_or_else(|e| e.into_inner()).insert(t.id);
        self.audit_access(u, "token.revoked", &format!("token {:?} of {}", t.name, t.owner));
        Ok(format!("Token {:?} of {} is revoked.", t.name, t.owner))
    }

    /// The user a presented token acts as, or why not. Audited either way.
    pub async fn token_user(&self, token: &str, what: &str) -> Result<CurrentUser, Refused> {
        let refuse = |why: Refused, detail: &str| {
            self.audit_event("token.refused", "-", &format!("{why}: {detail}; {what}"));
            Err(why)
        };
        let Some(store) = self.store.as_ref() else { return refuse(Refused::NoStore, "") };
        let row = match store.token_by_hash(&hash(token)).await {
            Ok(Some(row)) => row,
            Ok(None) => return refuse(Refused::Unknown, "no such token"),
            Err(e) => {
                tracing::error!(error = %e, "tokens: the store failed");
                return refuse(Refused::Unknown, "the store failed");
            }
        };
        let label = format!("token {:?} of {}", row.name, row.owner);
        if row.expires_s <= now_s() {
            return refuse(Refused::Expired, &label);
        }
        let Some(owner) = self.users.lookup(&row.owner) else { return refuse(Refused::OwnerGone, &label) };
        let tag = super::session::stamp_tag(&owner.stamp);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(tag.as_bytes(), row.owner_tag.as_bytes())) {
            return refuse(Refused::OwnerGone, &label);
        }
        if !self.local_login && !owner.external {
            return refuse(Refused::LocalOff, &label);
        }
        if owner.must_change || self.must_enrol(&owner) {
            return refuse(Refused::OwnerHeld, &label);
        }
        let (Some(role), Ok(on)) = (Role::parse(&row.role), Scope::parse(&row.scope)) else {
            return refuse(Refused::Unknown, &format!("{label}: an unreadable row"));
        };
        let access = owner.access.within(role, &on);
        let actor = format!("{}/token:{}", row.owner, row.name);
        self.touch_token(store, row.id).await;
        Ok(CurrentUser {
            name: row.owner,
            access,
            csrf: String::new(),
            session: None,
            token: Some(Presented { id: row.id, name: row.name, expires_s: row.expires_s, role, on, tag }),
            actor,
        })
    }

    async fn touch_token(&self, store: &Store, id: i64) {
        let due = {
            let mut t = self.touched.0.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            t.retain(|_, at| now.duration_since(*at) < TOUCH_EVERY);
            match t.get(&id) {
                Some(_) => false,
                None => {
                    t.insert(id, now);
                    true
                }
            }
        };
        if due {
            if let Err(e) = store.token_used(id, now_s()).await {
                tracing::warn!(error = %e, "tokens: the last use could not be written");
            }
        }
    }

    /// A record in the console's audit log, by `u` (as their actor).
    pub fn audit_access(&self, u: &CurrentUser, action: &str, detail: &str) {
        self.audit_event(action, &u.actor, detail);
    }

    /// A record in the console's audit log (hash-chained, fsynced).
    pub fn audit_event(&self, action: &str, actor: &str, detail: &str) {
        if let Err(e) = self.enrolling.enrolment.audit(action, "-", actor, detail) {
            tracing::error!(action, error = %e, "the audit record could not be written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_stored_as_its_hash() {
        let h = hash("dwk_00");
        assert_eq!(h.len(), 64);
        assert_ne!(h, hash("dwk_01"));
        assert!(!h.contains("dwk_"));
    }
}
