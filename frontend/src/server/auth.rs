//! People: sessions (sealed tokens any replica reads, `session.rs`;
//! HttpOnly, SameSite=Strict cookies, an absolute lifetime and an idle
//! timeout, ended by logout, a password change or the user's removal),
//! login with back-off, logout, CSRF, forward auth from
//! trusted proxies (`forward.rs`), and the role checks every server function makes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Form, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use leptos::prelude::*;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::access::Access;
use super::metrics::LoginFailure;
use super::session::stamp_tag;
pub use super::session::Sessions;
use super::users::UserView;
use super::Core;
use crate::error::ConsoleError;
use crate::types::Role;

/// The session cookie over plain HTTP.
pub const COOKIE: &str = "dockward_session";
/// The session cookie with `DOCKWARD_SECURE_COOKIES`: the `__Host-` prefix
/// makes browsers accept it only with `Secure`, `Path=/` and no `Domain`, so
/// neither a sibling subdomain nor plain HTTP can set or shadow it.
pub const SECURE_COOKIE: &str = "__Host-dockward_session";

/// The session cookie's name.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_COOKIE
    } else {
        COOKIE
    }
}

/// The person behind a request, set by [`require_user`].
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub name: String,
    /// What they may see and do (`access.rs`): their grants, or a token's share of them.
    pub access: Access,
    pub csrf: String,
    pub session: Option<String>,
    /// The API token the request carried (then no cookie, no CSRF token).
    pub token: Option<super::tokens::Presented>,
    /// Who the audit logs name: the user, or `<user>/token:<name>`.
    pub actor: String,
}

impl CurrentUser {
    pub fn new(name: String, access: Access, csrf: String, session: Option<String>) -> Self {
        CurrentUser { actor: name.clone(), name, access, csrf, session, token: None }
    }

    /// The strongest role held anywhere (what pages offer; each target is checked on its own).
    pub fn top(&self) -> Option<Role> {
        self.access.top()
    }
}

pub(crate) fn random_token() -> String {
    let mut b = [0u8; 32];
    // The OS random source; if it fails we refuse rather than issue a weak id.
    getrandom::fill(&mut b).expect("the OS random number generator is unavailable");
    hex::encode(b)
}

/// The grants a session carries now, from the user as the users file says
/// they are: none when the user is gone or their password changed since
/// the session began (the stamp's tag differs); the grants and must-change
/// state are always the current ones.
pub fn session_role(tag: &str, user: Option<&UserView>) -> Option<(Access, bool)> {
    let u = user?;
    (bool::from(stamp_tag(&u.stamp).as_bytes().ct_eq(tag.as_bytes()))).then(|| (u.access.clone(), u.must_change))
}

pub(crate) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// The console's metrics: an admin's session or the metrics token.
pub const METRICS_PATH: &str = "/metrics";

/// Paths that need no session.
fn public(path: &str) -> bool {
    path == "/login"
        || path == "/auth/login"
        || path == "/auth/totp"
        || path == "/auth/oidc/start"
        || path == "/auth/oidc/callback"
        || path == "/healthz"
        || path.starts_with("/pkg/")
        || path == "/favicon.ico"
        || path == "/favicon.svg"
}

/// What a signed-in user must do before anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
    Open,
    /// Change the generated password (`/password`).
    PasswordChange,
    /// Set up two-factor sign-in (`/access`): required of admins.
    TotpSetup,
}

impl Gate {
    /// Whether `path` is open behind this gate.
    fn lets(self, path: &str) -> bool {
        let common = public(path) || path == "/auth/logout";
        match self {
            Gate::Open => true,
            Gate::PasswordChange => common || path == "/password" || path == "/auth/password",
            Gate::TotpSetup => common || path == "/access" || path == "/api/fn/whoami",
        }
    }

    /// The refusal of anything else.
    fn refuse(self, path: &str) -> Response {
        let (err, words, page) = match self {
            Gate::TotpSetup => (ConsoleError::TotpRequired, "set up two-factor sign-in first (/access)", "/access"),
            _ => (ConsoleError::PasswordChangeRequired, "change your password first (/password)", "/password"),
        };
        if path.starts_with("/api/fn/") {
            err.into_response()
        } else if path.starts_with("/api/") {
            (StatusCode::FORBIDDEN, axum::Json(shared::ErrorBody::new(shared::ErrorCode::Forbidden, words)))
                .into_response()
        } else {
            Redirect::to(page).into_response()
        }
    }
}

/// The user behind a session cookie, as they are now, and the session's
/// renewed token when its last use was recorded anew; a session whose user
/// is gone or whose password changed is ended here.
fn session_user(core: &Core, headers: &HeaderMap) -> Option<(CurrentUser, Gate, Option<String>)> {
    let token = cookie_value(headers, cookie_name(core.secure_cookies))?;
    let live = core.sessions.touch(&token)?;
    let view = core.users.lookup(&live.name);
    let Some((access, must_change)) = session_role(&live.tag, view.as_ref()) else {
        tracing::info!(user = %live.name, "session ended: the user was removed or their password changed");
        return None;
    };
    // Passwords turned off: a session a password began is over too.
    if !core.local_login && !view.as_ref().is_some_and(|v| v.external) {
        return None;
    }
    let must_enrol = view.as_ref().is_some_and(|v| core.must_enrol(v));
    let gate = match (must_change, must_enrol) {
        (true, _) => Gate::PasswordChange,
        (false, true) => Gate::TotpSetup,
        _ => Gate::Open,
    };
    let session = Some(live.renewed.clone().unwrap_or(token));
    Some((CurrentUser::new(live.name, access, live.csrf, session), gate, live.renewed))
}

/// For long-lived streams (the live fleet, a log follow), checked at each
/// frame: the session is not logged out nor past its lifetime, and its user
/// still has the password and the grants it began with; an API token is not
/// past its expiry nor revoked (through this console), and its owner is the
/// same person with the same grants.
/// Forward-auth users were checked by the proxy when the stream began.
pub fn still_signed_in(core: &Core, u: &CurrentUser) -> bool {
    if let Some(t) = &u.token {
        return t.still_good(core, &u.name, &u.access);
    }
    let Some(token) = &u.session else { return true };
    let Some((name, tag)) = core.sessions.peek(token) else { return false };
    // The same grants as when it began: a grant taken back ends it (it may reconnect, cut anew).
    session_role(&tag, core.users.lookup(&name).as_ref()).is_some_and(|(access, _)| access == u.access)
}

/// Establishes the user for every request: forward-auth from a trusted
/// proxy, else the session cookie. Pages without one redirect to /login;
/// API calls get 401. Cross-site changes (any method but GET and HEAD) are refused by their Origin. A user
/// who must change their password reaches only /password until they do;
/// every signed-in user's requests are rate limited (429).
pub async fn require_user(State(core): State<Arc<Core>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let changes = !matches!(*req.method(), axum::http::Method::GET | axum::http::Method::HEAD);
    if changes && !same_origin(req.headers()) {
        if path.starts_with("/api/fn/") {
            return ConsoleError::Csrf.into_response();
        }
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    if let Some(token) = api_token(&path, req.headers()) {
        return with_token(&core, peer, token, req, next).await;
    }
    let mut user = None;
    let mut gate = Gate::Open;
    let mut renewed = None;
    if let (Some(peer), true) = (peer, core.forward_auth.enabled()) {
        match core.forward_auth.user(peer, req.headers()) {
            Some(Ok(u)) => user = Some(u),
            Some(Err(r)) => return (r.status(), r.message()).into_response(),
            None => {}
        }
    }
    if user.is_none() {
        if let Some((u, g, r)) = session_user(&core, req.headers()) {
            user = Some(u);
            gate = g;
            renewed = r;
        }
    }
    match user {
        Some(u) => {
            if !gate.lets(&path) {
                return gate.refuse(&path);
            }
            if !public(&path) && core.limits.request(&u.name).is_err() {
                return ConsoleError::Busy { what: "requests from you; slow down".into() }.into_response();
            }
            req.extensions_mut().insert(u);
            let mut resp = next.run(req).await;
            // Renewed unless the handler set the cookie itself (a logout's
            // empty one, a new session's): that one must be the last word.
            let name = format!("{}=", cookie_name(core.secure_cookies));
            let set_here = resp
                .headers()
                .get_all(header::SET_COOKIE)
                .iter()
                .any(|v| v.to_str().is_ok_and(|v| v.starts_with(&name)));
            if let (Some(token), false) = (renewed, set_here) {
                set_cookie(&mut resp, &session_cookie(core.secure_cookies, &token, core.sessions.ttl()));
            }
            resp
        }
        None if public(&path) => next.run(req).await,
        // A scraper's bearer token, checked by the handler (`routes::metrics`).
        None if path == METRICS_PATH => next.run(req).await,
        None if path.starts_with("/api/fn/") => ConsoleError::NotSignedIn.into_response(),
        None if path.starts_with("/api/") => (
            StatusCode::UNAUTHORIZED,
            axum::Json(shared::ErrorBody::new(shared::ErrorCode::Unauthorized, "log in first")),
        )
            .into_response(),
        None => Redirect::to("/login").into_response(),
    }
}

/// An API token presented to the JSON API (`Authorization: Bearer dwk_…`).
fn api_token(path: &str, headers: &HeaderMap) -> Option<String> {
    if !path.starts_with("/api/") {
        return None;
    }
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && token.starts_with(super::tokens::PREFIX)).then(|| token.to_owned())
}

/// A request with an API token: the token's user, or 401 saying why (a
/// client address that keeps presenting bad tokens backs off, 429).
async fn with_token(
    core: &Arc<Core>,
    peer: Option<std::net::IpAddr>,
    token: String,
    mut req: Request,
    next: Next,
) -> Response {
    let ip = peer.map(|p| super::throttle::client_ip(p, req.headers(), &core.forwarded_for));
    let now = Instant::now();
    if let Some(ip) = &ip {
        if core.login_by_ip.check(ip, now).is_err() {
            return ConsoleError::Busy { what: "refused tokens from your address; wait".into() }.into_response();
        }
    }
    let what = format!("{} {}", req.method(), req.uri().path());
    match core.token_user(&token, &what).await {
        Ok(u) => {
            if core.limits.request(&u.name).is_err() {
                return ConsoleError::Busy { what: "requests from you; slow down".into() }.into_response();
            }
            // Recorded once let through: a throttled request writes nothing.
            core.audit_event("token.used", &u.actor, &what);
            req.extensions_mut().insert(u);
            next.run(req).await
        }
        Err(why) => {
            if let Some(ip) = &ip {
                core.login_by_ip.fail(ip, Instant::now());
            }
            let mut r = (
                StatusCode::UNAUTHORIZED,
                axum::Json(shared::ErrorBody::new(shared::ErrorCode::Unauthorized, why.to_string())),
            )
                .into_response();
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
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

/// POST /auth/login: checks the password (argon2id) with back-off per client
/// address and per name; on success a fresh session cookie.
pub async fn login(
    State(core): State<Arc<Core>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if !core.local_login {
        return Redirect::to("/login?error=off").into_response();
    }
    let name = f.username.trim().to_owned();
    if name.len() > 64 || f.password.len() > 1024 {
        core.metrics.login_failed(LoginFailure::Malformed);
        return Redirect::to("/login?error=invalid").into_response();
    }
    let ip = super::throttle::client_ip(peer.ip(), &headers, &core.forwarded_for);
    let now = Instant::now();
    if let Err(wait) = core.login_by_ip.check(&ip, now).and(core.login_by_name.check(&name, now)) {
        if let Some(skipped) = core.throttled_log.sample(now) {
            tracing::warn!(%ip, user = %name, wait_secs = wait.as_secs(), skipped, "login throttled (one line per 10 s; skipped counts the others)");
        }
        core.metrics.login_failed(LoginFailure::Throttled);
        return Redirect::to("/login?error=throttled").into_response();
    }
    let users = core.users.clone();
    let pw = f.password;
    let n2 = name.clone();
    let user = tokio::task::spawn_blocking(move || users.verify(&n2, &pw)).await.ok().flatten();
    let Some(user) = user else {
        let now = Instant::now();
        core.login_by_ip.fail(&ip, now);
        core.login_by_name.fail(&name, now);
        core.metrics.login_failed(LoginFailure::Invalid);
        tracing::warn!(%ip, user = %name, "login failed");
        core.audit_event("auth.login.failed", &name, &format!("wrong name or password, from {ip}"));
        return Redirect::to("/login?error=invalid").into_response();
    };
    if user.totp {
        // A right password, and a code still to come: no session yet. The
        // note (sealed, 5 minutes) says whose password it was, as it was.
        let note = core.sessions.seal_note(TOTP_NOTE, &format!("{}|{name}", stamp_tag(&user.stamp)), 300);
        return second_factor_page(&note, StatusCode::OK, "");
    }
    core.login_by_ip.succeed(&ip);
    core.login_by_name.succeed(&name);
    signed_in(&core, &name, &user, "password")
}

/// What a session begins with: the audit record, the cookie, and where to go.
fn signed_in(core: &Core, name: &str, user: &UserView, how: &str) -> Response {
    tracing::info!(user = %name, access = %user.access.describe(), how, "logged in");
    core.audit_event("auth.login", name, &format!("signed in with {how}; {}", user.access.describe()));
    let to = if user.must_change { "/password" } else { "/" };
    let mut resp = Redirect::to(to).into_response();
    start_session(core, &mut resp, name, &user.stamp);
    resp
}

/// The purpose a half-finished sign-in's note is sealed for.
const TOTP_NOTE: &str = "totp-login";

/// The second step of signing in: a form for the code (or a recovery code).
fn second_factor_page(note: &str, status: StatusCode, error: &str) -> Response {
    let error = if error.is_empty() {
        String::new()
    } else {
        format!(r#"<p class="error" role="alert">{}</p>"#, super::password::escape(error))
    };
    let body = format!(
        r#"{error}<form method="post" action="/auth/totp" class="add-host"><input type="hidden" name="note" value="{}">
<label>Code from your authenticator app <input name="code" id="totp-code" required autocomplete="one-time-code" inputmode="numeric" maxlength="32" autofocus></label>
<button type="submit">Sign in</button></form><p class="muted">Lost the device? Type one of your recovery codes instead (each works once).</p>"#,
        super::password::escape(note)
    );
    super::hosts_page::html_page("Two-factor sign-in", status, body, false)
}

#[derive(Deserialize)]
pub struct TotpForm {
    note: String,
    code: String,
}

/// POST /auth/totp: the second factor of a sign-in whose password was
/// right (its sealed note): a TOTP code, each step once, or a recovery
/// code, each once. Backs off per client address and per name like the
/// password; every outcome is audited.
pub async fn second_factor(
    State(core): State<Arc<Core>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<TotpForm>,
) -> Response {
    let Some(payload) = core.sessions.open_note(TOTP_NOTE, &f.note) else {
        return Redirect::to("/login?error=expired").into_response();
    };
    let Some((tag, name)) = payload.split_once('|').map(|(t, n)| (t.to_owned(), n.to_owned())) else {
        return Redirect::to("/login?error=expired").into_response();
    };
    let ip = super::throttle::client_ip(peer.ip(), &headers, &core.forwarded_for);
    let now = Instant::now();
    if core.login_by_ip.check(&ip, now).and(core.login_by_name.check(&name, now)).is_err() {
        core.metrics.login_failed(LoginFailure::Throttled);
        return second_factor_page(&f.note, StatusCode::TOO_MANY_REQUESTS, "Too many wrong codes: wait a little.");
    }
    // The password it followed must still be the user's.
    let view = core.users.lookup(&name).filter(|v| bool::from(stamp_tag(&v.stamp).as_bytes().ct_eq(tag.as_bytes())));
    let Some(view) = view else { return Redirect::to("/login?error=expired").into_response() };
    let (users, n2, code) = (core.users.clone(), name.clone(), f.code.chars().take(64).collect::<String>());
    let checked = tokio::task::spawn_blocking(move || users.totp_check(&n2, &code, super::store::now_s())).await;
    match checked {
        Ok(Ok(how)) => {
            core.login_by_ip.succeed(&ip);
            core.login_by_name.succeed(&name);
            let how = match how {
                super::users::Second::Code => "password and code".to_owned(),
                super::users::Second::Recovery { left } => format!("password and a recovery code ({left} left)"),
            };
            signed_in(&core, &name, &view, &how)
        }
        _ => {
            let now = Instant::now();
            core.login_by_ip.fail(&ip, now);
            core.login_by_name.fail(&name, now);
            core.metrics.login_failed(LoginFailure::Invalid);
            tracing::warn!(%ip, user = %name, "second factor refused");
            core.audit_event("auth.login.failed", &name, &format!("wrong, old or reused second factor, from {ip}"));
            second_factor_page(&f.note, StatusCode::UNAUTHORIZED, "The code is wrong, too old or already used.")
        }
    }
}

/// A new session for `name`, and its cookie on `resp`.
pub(crate) fn start_session(core: &Core, resp: &mut Response, name: &str, stamp: &str) {
    let token = core.sessions.create(name, stamp);
    set_cookie(resp, &session_cookie(core.secure_cookies, &token, core.sessions.ttl()));
}

/// The session cookie: `__Host-` prefixed and `Secure` when served over
/// HTTPS; always `Path=/`, no `Domain`, `HttpOnly`, `SameSite=Strict`.
pub fn session_cookie(secure: bool, id: &str, max_age: Duration) -> String {
    format!(
        "{}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        cookie_name(secure),
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
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
                core.sessions.remove(id).await;
            }
        } else {
            return (StatusCode::FORBIDDEN, "bad CSRF token").into_response();
        }
    }
    let mut resp = Redirect::to("/login").into_response();
    set_cookie(&mut resp, &session_cookie(core.secure_cookies, "", Duration::ZERO));
    resp
}

fn set_cookie(resp: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// A form's or header's CSRF token matches the session's. A request with an
/// API token carries no cookie, so no other site can make it: no CSRF token needed.
pub(crate) fn csrf_ok(user: &CurrentUser, token: &str) -> bool {
    user.token.is_some() || (!token.is_empty() && bool::from(user.csrf.as_bytes().ct_eq(token.as_bytes())))
}

/// The current user, inside a server function.
pub fn current_user() -> Result<CurrentUser, ConsoleError> {
    use_context::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<CurrentUser>().cloned())
        .ok_or(ConsoleError::NotSignedIn)
}

/// The current user, who must hold at least `role` somewhere: the first
/// gate of a server function. What it reads or acts on is checked against
/// the user's grants on that target (`access.rs`) where it is found.
pub fn require(role: Role) -> Result<CurrentUser, ConsoleError> {
    let u = current_user()?;
    match u.top() {
        Some(have) if have >= role => Ok(u),
        Some(have) => Err(ConsoleError::Forbidden { needed: role, have }),
        None => Err(ConsoleError::NotGranted { needed: role, on: "anything".into() }),
    }
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

    fn view(role: Role, stamp: &str) -> UserView {
        UserView { access: Access::fleet(role), stamp: stamp.into(), must_change: false, totp: false, external: false }
    }

    #[test]
    fn a_session_follows_its_user() {
        let t = stamp_tag("s1");
        let fleet = Access::fleet;
        assert_eq!(session_role(&t, Some(&view(Role::Admin, "s1"))), Some((fleet(Role::Admin), false)));
        assert_eq!(session_role(&t, Some(&view(Role::Viewer, "s1"))), Some((fleet(Role::Viewer), false)), "demoted");
        assert_eq!(session_role(&t, Some(&view(Role::Admin, "s2"))), None, "password changed");
        assert_eq!(session_role(&t, None), None, "user removed");
        let must = UserView {
            access: fleet(Role::Admin),
            stamp: "s1".into(),
            must_change: true,
            totp: false,
            external: false,
        };
        assert_eq!(session_role(&t, Some(&must)), Some((fleet(Role::Admin), true)));
    }

    #[test]
    fn the_cookie_is_host_prefixed_and_secure_over_https() {
        let c = session_cookie(true, "abc", Duration::from_secs(60));
        assert_eq!(c, "__Host-dockward_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=60; Secure");
        let c = session_cookie(false, "abc", Duration::from_secs(60));
        assert_eq!(c, "dockward_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=60");
        assert!(!c.contains("Domain"));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("dockward_session=plain; __Host-dockward_session=host"));
        assert_eq!(cookie_value(&h, cookie_name(true)).as_deref(), Some("host"));
        assert_eq!(cookie_value(&h, cookie_name(false)).as_deref(), Some("plain"));
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
