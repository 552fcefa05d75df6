//! `/access`: what you may do, your API tokens (make one: it is shown once;
//! revoke), and, for admins of the fleet, every user's grants (give, take
//! back) and everyone's tokens. Plain forms rendered on the server, no
//! script. The same as JSON: `/api/tokens…` and `/api/users…` (a session's
//! CSRF token in `X-CSRF-Token`; tokens and grants are changed from a
//! session only). Grant changes are in the console's audit log.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::Value;
use shared::Role;

use super::access::Grant;
use super::alerts::input::Input;
use super::auth::{csrf_ok, CurrentUser};
use super::hosts_page::{html_page, refused_page};
use super::password::escape;
use super::scope::Scope;
use super::tokens::{Made, TokenView};
use super::Core;
use crate::error::ConsoleError;

const TITLE: &str = "Access";

/// Grants are managed by admins of the whole fleet, from a session.
fn grant_admin(u: &CurrentUser) -> Result<(), ConsoleError> {
    if u.token.is_some() {
        return Err(ConsoleError::bad_input("token", "grants are changed from a session, not with a token"));
    }
    u.access.need(Role::Admin, &Scope::Fleet)
}

impl Core {
    /// Gives `user` a grant; audited.
    pub fn grant(&self, u: &CurrentUser, user: &str, role: &str, on: &str) -> Result<String, ConsoleError> {
        grant_admin(u)?;
        let g = Grant::parse(role, on)
            .map_err(|e| ConsoleError::bad_input(if Role::parse(role).is_none() { "role" } else { "on" }, e))?;
        if g.on == Scope::Fleet && g.role < Role::Admin {
            self.keeps_an_admin(user)?;
        }
        self.users.grant(user, g.clone()).map_err(user_err)?;
        self.audit_access(u, "user.granted", &format!("{user}: {g}"));
        Ok(format!("{user} now has {g}."))
    }

    /// Takes back `user`'s role on `on`; audited. The last admin of the
    /// fleet keeps that role.
    pub fn ungrant(&self, u: &CurrentUser, user: &str, on: &str) -> Result<String, ConsoleError> {
        grant_admin(u)?;
        let on = Scope::parse(on).map_err(|e| ConsoleError::bad_input("on", e))?;
        if on == Scope::Fleet {
            self.keeps_an_admin(user)?;
        }
        if !self.users.ungrant(user, &on).map_err(user_err)? {
            return Err(ConsoleError::NotFound { what: format!("a role of {user} on {on}") });
        }
        self.audit_access(u, "user.ungranted", &format!("{user}: {on}"));
        Ok(format!("{user} has no role on {on} any more."))
    }
}

impl Core {
    /// The user's own two-factor sign-in: `begin` (a new key, shown),
    /// `confirm` (with a first code: on, and recovery codes shown once),
    /// `recovery` (new recovery codes, after a code) or `off` (after a
    /// code). What happened, and recovery codes to show once. Audited.
    pub fn totp_action(&self, u: &CurrentUser, what: &str, code: &str) -> Result<(String, Vec<String>), ConsoleError> {
        if u.token.is_some() || self.users.lookup(&u.name).is_none_or(|v| v.external) {
            return Err(ConsoleError::bad_input(
                "totp",
                "two-factor sign-in here is for local users, from a session (the identity provider asks its own)",
            ));
        }
        let now = super::store::now_s();
        let wrong = |e: super::users::UserError| match e {
            super::users::UserError::WrongCode => ConsoleError::bad_input("code", e.to_string()),
            other => user_err(other),
        };
        let out = match what {
            "begin" => {
                self.users.totp_begin(&u.name).map_err(user_err)?;
                ("Add the key below to your authenticator app, then type the code it shows.".to_owned(), Vec::new())
            }
            "confirm" => {
                let codes = self.users.totp_confirm(&u.name, code, now).map_err(wrong)?;
                self.audit_access(u, "totp.on", &u.name);
                ("Two-factor sign-in is on. Keep these recovery codes somewhere safe: each works once, and they are not shown again.".to_owned(), codes)
            }
            "recovery" => {
                self.users.totp_check(&u.name, code, now).map_err(wrong)?;
                let codes = self.users.totp_new_recovery(&u.name).map_err(user_err)?;
                self.audit_access(u, "totp.recovery.renewed", &u.name);
                ("New recovery codes (the old ones no longer work); they are not shown again.".to_owned(), codes)
            }
            "off" => {
                if self.totp_for_admins && u.top() == Some(Role::Admin) {
                    return Err(ConsoleError::bad_input("totp", "admins must keep two-factor sign-in on here"));
                }
                self.users.totp_check(&u.name, code, now).map_err(wrong)?;
                self.users.totp_off(&u.name).map_err(user_err)?;
                self.audit_access(u, "totp.off", &u.name);
                ("Two-factor sign-in is off.".to_owned(), Vec::new())
            }
            _ => return Err(ConsoleError::bad_input("do", "totp.begin, totp.confirm, totp.recovery or totp.off")),
        };
        Ok(out)
    }
}

impl Core {
    /// Refused when `user` is the fleet's only admin (their fleet role is about to go).
    fn keeps_an_admin(&self, user: &str) -> Result<(), ConsoleError> {
        let admins = self.users.list().into_iter().filter(|(_, a)| a.on_fleet() == Some(Role::Admin));
        let admins: Vec<String> = admins.map(|(n, _)| n).collect();
        if admins == [user] {
            return Err(ConsoleError::bad_input("on", format!("{user} is the only admin of the fleet")));
        }
        Ok(())
    }
}

fn user_err(e: super::users::UserError) -> ConsoleError {
    use super::users::UserError as E;
    match e {
        E::Missing(_) => ConsoleError::NotFound { what: e.to_string() },
        E::BadGrant(m) => ConsoleError::bad_input("on", m),
        E::TooManyGrants => ConsoleError::bad_input("on", e.to_string()),
        E::TotpOn | E::NoTotp | E::WrongCode => ConsoleError::bad_input("totp", e.to_string()),
        other => ConsoleError::internal(other.to_string()),
    }
}

// -- the page ------------------------------------------------------------------------

fn when(s: i64) -> String {
    super::history::page::iso(s).replace('T', " ")
}

fn render(
    core: &Core,
    u: &CurrentUser,
    tokens: &[TokenView],
    note: &str,
    made: Option<&Made>,
    recovery: &[String],
) -> String {
    let csrf = escape(&u.csrf);
    let mut out = String::from(note);
    if let Some(m) = made {
        out.push_str(&format!(
            r#"<div class="ok outcome" role="status"><p>Token <b>{}</b> ({} on {}) — copy it now, it is not shown again:</p><pre class="join" id="new-token">{}</pre></div>"#,
            escape(&m.name),
            m.role,
            escape(&m.scope),
            escape(&m.token)
        ));
    }
    if !recovery.is_empty() {
        out.push_str(
            r#"<div class="ok outcome"><p>Recovery codes (each works once):</p><pre class="join" id="recovery-codes">"#,
        );
        out.push_str(&recovery.iter().map(|c| escape(c)).collect::<Vec<_>>().join("\n"));
        out.push_str("</pre></div>");
    }
    out.push_str(&format!(
        r#"<h2>You</h2><p id="my-access"><b>{}</b>: {}</p>"#,
        escape(&u.name),
        escape(&u.access.describe())
    ));
    if u.token.is_none() && core.users.lookup(&u.name).is_some_and(|v| !v.external) {
        let (on, pending) = core.users.totp_status(&u.name);
        let form = |what: &str, label: &str, code: bool| {
            let code = if code {
                r#"<label>Code <input name="code" required autocomplete="one-time-code" inputmode="numeric" maxlength="32"></label>"#
            } else {
                ""
            };
            format!(
                r#"<form method="post" action="/access" class="add-host"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="do" value="totp.{what}">{code}<button type="submit">{label}</button></form>"#
            )
        };
        out.push_str(r#"<h2>Two-factor sign-in</h2>"#);
        if core.totp_for_admins && u.top() == Some(Role::Admin) && !on {
            out.push_str(r#"<p class="error" role="alert" id="totp-required">Admins must sign in with a second factor here: set it up to go on.</p>"#);
        }
        match (on, pending) {
            (true, _) => {
                out.push_str(r#"<p id="totp-state">On: signing in asks for a code from your authenticator app.</p>"#);
                out.push_str(&form("recovery", "New recovery codes", true));
                out.push_str(&form("off", "Turn off", true));
            }
            (false, Some(key)) => {
                let uri = super::totp::otpauth_uri(&u.name, &key);
                out.push_str(&format!(
                    r#"<p id="totp-state">Add this key to your authenticator app (TOTP, SHA-1, 6 digits, 30 s):</p><pre class="join" id="totp-key">{}</pre><p class="muted">or the address <code id="totp-uri">{}</code></p>"#,
                    escape(&key),
                    escape(&uri)
                ));
                out.push_str(&form("confirm", "Turn on", true));
            }
            (false, None) => {
                out.push_str(r#"<p id="totp-state">Off: signing in asks for your password only.</p>"#);
                out.push_str(&form("begin", "Set up", false));
            }
        }
    }
    out.push_str(r#"<h2>API tokens</h2><p class="muted">For scripts: send <code>Authorization: Bearer dwk_…</code> to the console's JSON API (<code>/api/…</code>); no cookie or CSRF token is needed. A token acts with your grants, cut to its scope and role.</p>"#);
    if tokens.is_empty() {
        out.push_str(r#"<p class="muted">No tokens.</p>"#);
    } else {
        out.push_str(r#"<table class="tokens"><thead><tr><th>Owner</th><th>Name</th><th>Role</th><th>Scope</th><th>Expires (UTC)</th><th>Last used</th><th></th></tr></thead><tbody>"#);
        for t in tokens {
            let r = &t.row;
            out.push_str(&format!(
                r#"<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td><td><form method="post" action="/access" class="inline"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="do" value="token.revoke"><input type="hidden" name="id" value="{}"><button type="submit" class="danger">Revoke</button></form></td></tr>"#,
                if t.expired { r#" class="expired""# } else { "" },
                escape(&r.owner),
                escape(&r.name),
                escape(&r.role),
                escape(&r.scope),
                when(r.expires_s),
                if t.expired { " (expired)" } else { "" },
                r.last_used_s.map_or_else(|| "never".to_owned(), when),
                r.id
            ));
        }
        out.push_str("</tbody></table>");
    }
    let roles = |selected: Role| {
        Role::ALL
            .iter()
            .map(|r| format!(r#"<option{}>{r}</option>"#, if *r == selected { " selected" } else { "" }))
            .collect::<String>()
    };
    out.push_str(&format!(
        r#"<form method="post" action="/access" class="add-host"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="do" value="token.create">
<label>Name <input name="name" required maxlength="64" pattern="[A-Za-z0-9._-]+" placeholder="deploy-shop"></label>
<label>Role <select name="role">{}</select></label>
<label>Scope <input name="scope" maxlength="200" placeholder="fleet, host:NAME, app:PROJECT or app:HOST/PROJECT" value="fleet"></label>
<label>Days <input name="days" type="number" min="1" max="365" value="30"></label>
<button type="submit">Make a token</button></form>"#,
        roles(Role::Viewer)
    ));
    if u.access.allows(Role::Admin, &Scope::Fleet) {
        out.push_str(r#"<h2>Users and grants</h2><table class="grants"><thead><tr><th>User</th><th>Grants</th></tr></thead><tbody>"#);
        for (name, access) in core.users.list() {
            let grants = access
                .grants()
                .iter()
                .map(|g| {
                    format!(
                        r#"<form method="post" action="/access" class="inline grant"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="do" value="ungrant"><input type="hidden" name="user" value="{}"><input type="hidden" name="on" value="{}">{} <button type="submit" class="link" title="Take back">✕</button></form>"#,
                        escape(&name),
                        escape(&g.on.to_string()),
                        escape(&g.to_string())
                    )
                })
                .collect::<Vec<_>>()
                .join(" ");
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(&name),
                if grants.is_empty() { "none".into() } else { grants }
            ));
        }
        out.push_str(&format!(
            r#"</tbody></table><form method="post" action="/access" class="add-host"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="do" value="grant">
<label>User <input name="user" required maxlength="64"></label>
<label>Role <select name="role">{}</select></label>
<label>On <input name="on" required maxlength="200" placeholder="fleet, host:NAME, app:PROJECT or app:HOST/PROJECT"></label>
<button type="submit">Grant</button></form><p class="muted">Users are added with <code>dockward-web user add</code>; <code>dockward-web user grant|ungrant</code> does the same as this form.</p>"#,
            roles(Role::Operator)
        ));
    }
    out
}

async fn show(
    core: &Core,
    u: &CurrentUser,
    status: StatusCode,
    note: String,
    made: Option<&Made>,
    recovery: &[String],
) -> Response {
    let tokens = match core.store {
        Some(_) => core.list_tokens(u).await.unwrap_or_default(),
        None => Vec::new(),
    };
    html_page(TITLE, status, render(core, u, &tokens, &note, made, recovery), false)
}

/// GET /access.
pub async fn page(State(core): State<Arc<Core>>, Extension(u): Extension<CurrentUser>) -> Response {
    show(&core, &u, StatusCode::OK, String::new(), None, &[]).await
}

/// POST /access: `do` = `token.create` (name, role, scope, days),
/// `token.revoke` (id), `grant` (user, role, on) or `ungrant` (user, on).
pub async fn act(
    State(core): State<Arc<Core>>,
    Extension(u): Extension<CurrentUser>,
    Form(f): Form<BTreeMap<String, String>>,
) -> Response {
    let field = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    if !csrf_ok(&u, field("csrf")) {
        return refused_page(TITLE, &ConsoleError::Csrf);
    }
    let mut recovery = Vec::new();
    // Held until two-factor sign-in is set up: only that (no token, no grant).
    let held = core.users.lookup(&u.name).is_some_and(|v| core.must_enrol(&v));
    let outcome: Result<(String, Option<Made>), ConsoleError> = match field("do") {
        other if held && !other.starts_with("totp.") => Err(ConsoleError::TotpRequired),
        "token.create" => {
            let days = field("days")
                .trim()
                .parse::<u64>()
                .map_err(|_| ConsoleError::bad_input("days", "a whole number of days, 1–365"));
            match days {
                Ok(days) => core
                    .make_token(&u, field("name"), field("role"), field("scope"), days)
                    .await
                    .map(|m| (String::new(), Some(m))),
                Err(e) => Err(e),
            }
        }
        "token.revoke" => match field("id").parse::<i64>() {
            Ok(id) => core.revoke_token(&u, id).await.map(|s| (s, None)),
            Err(_) => Err(ConsoleError::bad_input("id", "a token's id")),
        },
        "grant" => core.grant(&u, field("user").trim(), field("role"), field("on")).map(|s| (s, None)),
        "ungrant" => core.ungrant(&u, field("user").trim(), field("on")).map(|s| (s, None)),
        other => match other.strip_prefix("totp.") {
            Some(what) => core.totp_action(&u, what, field("code")).map(|(said, codes)| {
                recovery = codes;
                (said, None)
            }),
            None => Err(ConsoleError::bad_input("do", "token.create, token.revoke, grant, ungrant or totp.*")),
        },
    };
    match outcome {
        Ok((said, made)) => {
            let note = if said.is_empty() {
                said
            } else {
                format!(r#"<p class="ok outcome" role="status">{}</p>"#, escape(&said))
            };
            show(&core, &u, StatusCode::OK, note, made.as_ref(), &recovery).await
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            let note = format!(r#"<p class="error" role="alert">{}</p>"#, escape(&e.to_string()));
            show(&core, &u, status, note, None, &[]).await
        }
    }
}

// -- the JSON API ----------------------------------------------------------------------

type JsonBody = Result<Json<Value>, axum::extract::rejection::JsonRejection>;

/// A JSON change from a session: its CSRF token in `X-CSRF-Token`.
fn checked(u: &CurrentUser, headers: &HeaderMap) -> Result<(), ConsoleError> {
    let token = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
    if csrf_ok(u, token) {
        Ok(())
    } else {
        Err(ConsoleError::Csrf)
    }
}

fn body(b: JsonBody) -> Result<Value, ConsoleError> {
    b.map(|Json(v)| v).map_err(|e| ConsoleError::bad_input("body", e.body_text()))
}

fn answer<T: serde::Serialize>(status: StatusCode, r: Result<T, ConsoleError>) -> Response {
    match r {
        Ok(v) => (status, Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// GET /api/tokens: yours (a fleet admin's: everyone's), never a secret.
pub async fn api_tokens(State(core): State<Arc<Core>>, Extension(u): Extension<CurrentUser>) -> Response {
    answer(StatusCode::OK, core.list_tokens(&u).await)
}

/// POST /api/tokens {name, role, scope, days}: 201 with the token, shown this once.
pub async fn api_make_token(
    State(core): State<Arc<Core>>,
    Extension(u): Extension<CurrentUser>,
    h: HeaderMap,
    b: JsonBody,
) -> Response {
    let r = async {
        checked(&u, &h)?;
        let v = body(b)?;
        let i = Input::of(&v)?;
        i.only(&["name", "role", "scope", "days"])?;
        let name = i.required("name", 64)?;
        let role = i.required("role", 16)?;
        let scope = i.text("scope", 200)?.unwrap_or_else(|| "fleet".into());
        let days = i.number("days", 1, super::tokens::DAYS_MAX, 30)?;
        core.make_token(&u, &name, &role, &scope, days).await
    };
    answer(StatusCode::CREATED, r.await)
}

/// DELETE /api/tokens/{id}.
pub async fn api_revoke_token(
    State(core): State<Arc<Core>>,
    Extension(u): Extension<CurrentUser>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let r = async {
        checked(&u, &h)?;
        let id = id.parse::<i64>().map_err(|_| ConsoleError::bad_input("id", "a token's id"))?;
        core.revoke_token(&u, id).await.map(|said| serde_json::json!({ "ok": said }))
    };
    answer(StatusCode::OK, r.await)
}

/// GET /api/users (fleet admins): every user and their grants.
pub async fn api_users(State(core): State<Arc<Core>>, Extension(u): Extension<CurrentUser>) -> Response {
    let r = u.access.need(Role::Admin, &Scope::Fleet).map(|()| {
        core.users
            .list()
            .into_iter()
            .map(|(name, a)| serde_json::json!({ "name": name, "grants": a.grants() }))
            .collect::<Vec<_>>()
    });
    answer(StatusCode::OK, r)
}

/// POST /api/users/{name}/grant {role, on}, and /api/users/{name}/ungrant {on}.
pub async fn api_grant(
    State(core): State<Arc<Core>>,
    Extension(u): Extension<CurrentUser>,
    h: HeaderMap,
    Path((name, verb)): Path<(String, String)>,
    b: JsonBody,
) -> Response {
    let r = (|| {
        checked(&u, &h)?;
        grant_admin(&u)?;
        let v = body(b)?;
        let i = Input::of(&v)?;
        let said = match verb.as_str() {
            "grant" => {
                i.only(&["role", "on"])?;
                core.grant(&u, &name, &i.required("role", 16)?, &i.required("on", 200)?)?
            }
            "ungrant" => {
                i.only(&["on"])?;
                core.ungrant(&u, &name, &i.required("on", 200)?)?
            }
            _ => {
                return Err(ConsoleError::NotFound {
                    what: format!("/api/users/…/{}", verb.chars().take(32).collect::<String>()),
                })
            }
        };
        Ok(serde_json::json!({ "ok": said }))
    })();
    answer(StatusCode::OK, r)
}
