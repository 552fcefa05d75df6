//! People: sessions (random ids, HttpOnly, SameSite=Strict cookies, expiry),
//! login with throttling, logout, CSRF, optional forward-auth from trusted
//! proxies, and the role checks every server function makes.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Form, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use leptos::prelude::*;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::Core;
use crate::error::ConsoleError;
use crate::types::Role;

pub const COOKIE: &str = "dockward_session";
const MAX_SESSIONS: usize = 10_000;

/// The person behind a request, set by [`require_user`].
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub name: String,
    pub role: Role,
    pub csrf: String,
    pub session: Option<String>,
}

struct Session {
    name: String,
    role: Role,
    csrf: String,
    expires: Instant,
}

pub struct Sessions {
    map: RwLock<HashMap<String, Session>>,
    ttl: Duration,
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    // The OS random source; if it fails we refuse rather than issue a weak id.
    getrandom::fill(&mut b).expect("the OS random number generator is unavailable");
    hex::encode(b)
}

impl Sessions {
    pub fn new(ttl: Duration) -> Self {
        Self { map: RwLock::default(), ttl }
    }

    pub fn create(&self, name: &str, role: Role) -> String {
        let id = random_token();
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| s.expires > Instant::now());
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone()) {
                map.remove(&oldest);
            }
        }
        map.insert(
            id.clone(),
            Session { name: name.to_owned(), role, csrf: random_token(), expires: Instant::now() + self.ttl },
        );
        id
    }

    fn get(&self, id: &str) -> Option<CurrentUser> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.get(id).filter(|s| s.expires > Instant::now()).map(|s| CurrentUser {
            name: s.name.clone(),
            role: s.role,
            csrf: s.csrf.clone(),
            session: Some(id.to_owned()),
        })
    }

    pub fn remove(&self, id: &str) {
        self.map.write().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}

/// Forward-auth settings: trusted proxies and the group → role mapping.
pub struct ForwardAuth {
    pub proxies: Vec<ipnet::IpNet>,
    pub user_header: String,
    pub groups_header: String,
    pub group_roles: Vec<(String, Role)>,
    /// Per-process key for deriving forward-auth users' CSRF tokens.
    pub csrf_key: String,
}

impl ForwardAuth {
    pub fn parse(proxies: &[String], user_header: &str, groups_header: &str, mapping: &str) -> Result<Self, String> {
        let proxies = proxies
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("DOCKWARD_TRUSTED_PROXIES: {s:?} is not a CIDR or address"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut group_roles = Vec::new();
        for item in mapping.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (g, r) = item
                .split_once('=')
                .ok_or_else(|| format!("DOCKWARD_AUTH_GROUP_ROLES entry {item:?} is not group=role"))?;
            let role = Role::parse(r)
                .ok_or_else(|| format!("DOCKWARD_AUTH_GROUP_ROLES: unknown role {r:?} (viewer, operator, admin)"))?;
            group_roles.push((g.trim().to_owned(), role));
        }
        Ok(Self {
            proxies,
            user_header: user_header.to_ascii_lowercase(),
            groups_header: groups_header.to_ascii_lowercase(),
            group_roles,
            csrf_key: random_token(),
        })
    }

    pub fn enabled(&self) -> bool {
        !self.proxies.is_empty()
    }

    /// The user named by a trusted proxy, with the strongest role their groups map to.
    fn user(&self, peer: IpAddr, headers: &HeaderMap) -> Option<Result<CurrentUser, &'static str>> {
        if !self.proxies.iter().any(|n| n.contains(&peer)) {
            return None;
        }
        let name = headers.get(&self.user_header)?.to_str().ok()?.trim().to_owned();
        if !super::users::valid_name(&name) {
            return Some(Err("the proxy named an invalid user"));
        }
        let groups = headers.get(&self.groups_header).and_then(|v| v.to_str().ok()).unwrap_or("");
        let role = groups
            .split([',', ' '])
            .filter(|g| !g.is_empty())
            .filter_map(|g| self.group_roles.iter().find(|(n, _)| n == g).map(|(_, r)| *r))
            .max();
        let Some(role) = role else { return Some(Err("none of your groups grants access to dockward")) };
        let csrf = hex::encode(csrf_digest(&format!("{}:{name}", self.csrf_key)));
        Some(Ok(CurrentUser { name, role, csrf, session: None }))
    }
}

/// The CSRF token of a forward-auth user: SHA-256 of a per-process key and the name.
fn csrf_digest(s: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes()).into()
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// Paths that need no session.
fn public(path: &str) -> bool {
    path == "/login"
        || path == "/auth/login"
        || path == "/healthz"
        || path.starts_with("/pkg/")
        || path == "/favicon.ico"
}

/// Establishes the user for every request: forward-auth from a trusted
/// proxy, else the session cookie. Pages without one redirect to /login;
/// API calls get 401. Cross-site POSTs are refused by their Origin.
pub async fn require_user(State(core): State<Arc<Core>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if req.method() == axum::http::Method::POST && !same_origin(req.headers()) {
        if path.starts_with("/api/fn/") {
            return ConsoleError::Csrf.into_response();
        }
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let mut user = None;
    if let (Some(peer), true) = (peer, core.forward_auth.enabled()) {
        match core.forward_auth.user(peer, req.headers()) {
            Some(Ok(u)) => user = Some(u),
            Some(Err(msg)) => return (StatusCode::FORBIDDEN, msg).into_response(),
            None => {}
        }
    }
    if user.is_none() {
        // A session lives only as long as its user: removed users are out at
        // once, and a changed role applies to the next request.
        user = cookie_value(req.headers(), COOKIE).and_then(|id| core.sessions.get(&id)).and_then(|mut u| {
            u.role = core.users.role_of(&u.name)?;
            Some(u)
        });
    }
    match user {
        Some(u) => {
            req.extensions_mut().insert(u);
            next.run(req).await
        }
        None if public(&path) => next.run(req).await,
        None if path.starts_with("/api/fn/") => ConsoleError::NotSignedIn.into_response(),
        None if path.starts_with("/api/") => (
            StatusCode::UNAUTHORIZED,
            axum::Json(shared::ErrorBody::new(shared::ErrorCode::Unauthorized, "log in first")),
        )
            .into_response(),
        None => Redirect::to("/login").into_response(),
    }
}

/// A POST must come from this origin: browsers send `Origin` on POSTs.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

/// POST /auth/login: checks the password (argon2id), throttled per address
/// and per name; on success a fresh session cookie.
pub async fn login(
    State(core): State<Arc<Core>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(f): Form<LoginForm>,
) -> Response {
    let name = f.username.trim().to_owned();
    if name.len() > 64 || f.password.len() > 1024 {
        return Redirect::to("/login?error=invalid").into_response();
    }
    if core.login_by_ip.check_key(&peer.ip()).is_err() || core.login_by_name.check_key(&name).is_err() {
        tracing::warn!(ip = %peer.ip(), user = %name, "login throttled");
        return Redirect::to("/login?error=throttled").into_response();
    }
    let users = core.users.clone();
    let pw = f.password;
    let n2 = name.clone();
    let role = tokio::task::spawn_blocking(move || users.verify(&n2, &pw)).await.ok().flatten();
    let Some(role) = role else {
        tracing::warn!(ip = %peer.ip(), user = %name, "login failed");
        return Redirect::to("/login?error=invalid").into_response();
    };
    let id = core.sessions.create(&name, role);
    tracing::info!(user = %name, role = role.as_str(), "logged in");
    let mut resp = Redirect::to("/").into_response();
    set_cookie(
        &mut resp,
        &format!(
            "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
            core.sessions.ttl.as_secs(),
            secure(&core)
        ),
    );
    resp
}

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf: String,
}

/// POST /auth/logout: ends the session (CSRF-checked).
pub async fn logout(
    State(core): State<Arc<Core>>,
    req_user: Option<axum::Extension<CurrentUser>>,
    Form(f): Form<LogoutForm>,
) -> Response {
    if let Some(axum::Extension(u)) = req_user {
        if csrf_ok(&u, &f.csrf) {
            if let Some(id) = &u.session {
                core.sessions.remove(id);
            }
        } else {
            return (StatusCode::FORBIDDEN, "bad CSRF token").into_response();
        }
    }
    let mut resp = Redirect::to("/login").into_response();
    set_cookie(&mut resp, &format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}", secure(&core)));
    resp
}

fn secure(core: &Core) -> &'static str {
    if core.secure_cookies {
        "; Secure"
    } else {
        ""
    }
}

fn set_cookie(resp: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn csrf_ok(user: &CurrentUser, token: &str) -> bool {
    !token.is_empty() && bool::from(user.csrf.as_bytes().ct_eq(token.as_bytes()))
}

/// The current user, inside a server function.
pub fn current_user() -> Result<CurrentUser, ConsoleError> {
    use_context::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<CurrentUser>().cloned())
        .ok_or(ConsoleError::NotSignedIn)
}

/// The current user, who must hold at least `role`.
pub fn require(role: Role) -> Result<CurrentUser, ConsoleError> {
    let u = current_user()?;
    if u.role < role {
        return Err(ConsoleError::Forbidden { needed: role, have: u.role });
    }
    Ok(u)
}

/// For mutations: the role, and the session's CSRF token.
pub fn require_mutation(role: Role, csrf: &str) -> Result<CurrentUser, ConsoleError> {
    let u = require(role)?;
    if !csrf_ok(&u, csrf) {
        return Err(ConsoleError::Csrf);
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_are_random() {
        let s = Sessions::new(Duration::from_millis(50));
        let a = s.create("alice", Role::Admin);
        let b = s.create("alice", Role::Admin);
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(s.get(&a).unwrap().name, "alice");
        assert_ne!(s.get(&a).unwrap().csrf, s.get(&b).unwrap().csrf);
        std::thread::sleep(Duration::from_millis(60));
        assert!(s.get(&a).is_none());
    }

    #[test]
    fn forward_auth_trusts_only_proxies_and_maps_groups() {
        let fa =
            ForwardAuth::parse(&["10.0.0.0/8".into()], "Remote-User", "Remote-Groups", "admins=admin,ops=operator")
                .unwrap();
        let mut h = HeaderMap::new();
        h.insert("remote-user", HeaderValue::from_static("carol"));
        h.insert("remote-groups", HeaderValue::from_static("staff,ops"));
        let u = fa.user("10.1.2.3".parse().unwrap(), &h).unwrap().unwrap();
        assert_eq!((u.name.as_str(), u.role), ("carol", Role::Operator));
        assert!(fa.user("192.0.2.1".parse().unwrap(), &h).is_none(), "untrusted address");
        h.insert("remote-groups", HeaderValue::from_static("nobody"));
        assert!(fa.user("10.1.2.3".parse().unwrap(), &h).unwrap().is_err());
        assert!(ForwardAuth::parse(&["nope".into()], "a", "b", "").is_err());
        assert!(ForwardAuth::parse(&[], "a", "b", "x=root").is_err());
    }

    #[test]
    fn origin_check() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("console:8080"));
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://console:8080"));
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!same_origin(&h));
    }
}
