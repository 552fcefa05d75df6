//! `/password`: a signed-in user changes their own password (a plain form,
//! no scripts). The first-run admin must do so before anything else: until
//! then every other page redirects here and every server function answers
//! `password_change_required`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use serde::Deserialize;

use super::auth::{csrf_ok, start_session, CurrentUser};
use super::users::UserError;
use super::Core;

/// The first-run admin's password file, beside the users file.
pub fn first_password_file(users_file: &std::path::Path) -> std::path::PathBuf {
    users_file.with_file_name("first-admin-password")
}

/// Writes the first-run password to `path`, readable by its owner only.
pub fn write_first_password(path: &std::path::Path, password: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    // An existing file keeps its mode through open(): set it.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    f.write_all(format!("{password}\n").as_bytes())?;
    f.sync_all()
}

#[derive(Deserialize)]
pub struct PageQuery {
    error: Option<String>,
}

/// Text for the server-rendered forms (this page, `/hosts`): HTML-escaped, quotes too.
pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// GET /password: the form.
pub async fn page(Extension(u): Extension<CurrentUser>, Query(q): Query<PageQuery>) -> Response {
    let error = match q.error.as_deref() {
        Some("wrong") => "The current password is wrong.",
        Some("same") => "The new password must differ from the current one.",
        Some("weak") => "Passwords must be at least 10 characters.",
        Some("mismatch") => "The two new passwords differ.",
        Some("throttled") => "Too many wrong attempts; wait a little and try again.",
        Some(_) => "The password could not be changed.",
        None => "",
    };
    let body = if u.session.is_none() {
        "<p>Your password is managed by your sign-in provider.</p>".to_owned()
    } else {
        format!(
            r#"<form method="post" action="/auth/password" class="login-form">
{err}<input type="hidden" name="csrf" value="{csrf}">
<label>Current password <input type="password" name="current" autocomplete="current-password" required></label>
<label>New password (at least 10 characters) <input type="password" name="new" autocomplete="new-password" minlength="10" required></label>
<label>New password again <input type="password" name="confirm" autocomplete="new-password" minlength="10" required></label>
<button class="btn" type="submit" id="change-password">Change password</button>
</form>"#,
            err =
                if error.is_empty() { String::new() } else { format!(r#"<p class="error" role="alert">{error}</p>"#) },
            csrf = escape(&u.csrf),
        )
    };
    let html = format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Change password · dockward</title>
<link rel="icon" type="image/svg+xml" href="/favicon.svg"><link rel="stylesheet" href="/pkg/dockward.css"></head><body><main class="login"><h1>dockward</h1>
<p>Signed in as <b>{name}</b>. Choose a new password.</p>{body}</main></body></html>"#,
        name = escape(&u.name),
    );
    let mut resp = (StatusCode::OK, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'"),
    );
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[derive(Deserialize)]
pub struct ChangeForm {
    csrf: String,
    current: String,
    new: String,
    confirm: String,
}

/// POST /auth/password: checks the session's CSRF token and the current
/// password (with the login back-off per name), sets the new one, ends every
/// session of the user and starts a fresh one.
pub async fn change(
    State(core): State<Arc<Core>>,
    Extension(u): Extension<CurrentUser>,
    Form(f): Form<ChangeForm>,
) -> Response {
    if !csrf_ok(&u, &f.csrf) {
        return (StatusCode::FORBIDDEN, "bad CSRF token").into_response();
    }
    if u.session.is_none() {
        return Redirect::to("/password?error=provider").into_response();
    }
    if f.new != f.confirm {
        return Redirect::to("/password?error=mismatch").into_response();
    }
    if f.current.len() > 1024 || f.new.len() > 1024 {
        return Redirect::to("/password?error=weak").into_response();
    }
    if core.login_by_name.check(&u.name, Instant::now()).is_err() {
        return Redirect::to("/password?error=throttled").into_response();
    }
    let users = core.users.clone();
    let name = u.name.clone();
    let was_first = users.lookup(&name).is_some_and(|v| v.must_change);
    let result = tokio::task::spawn_blocking(move || users.change_password(&name, &f.current, &f.new)).await;
    let view = match result {
        Ok(Ok(v)) => v,
        Ok(Err(UserError::WrongPassword)) => {
            core.login_by_name.fail(&u.name, Instant::now());
            return Redirect::to("/password?error=wrong").into_response();
        }
        Ok(Err(UserError::SamePassword)) => return Redirect::to("/password?error=same").into_response(),
        Ok(Err(UserError::WeakPassword)) => return Redirect::to("/password?error=weak").into_response(),
        Ok(Err(e)) => {
            tracing::error!(user = %u.name, error = %e, "password change failed");
            return Redirect::to("/password?error=failed").into_response();
        }
        Err(e) => {
            tracing::error!(user = %u.name, error = %e, "password change failed");
            return Redirect::to("/password?error=failed").into_response();
        }
    };
    if was_first {
        // The generated password is no longer valid: do not leave it lying about.
        let _ = std::fs::remove_file(&core.first_password_file);
    }
    tracing::info!(user = %u.name, "password changed; the user's other sessions ended");
    let mut resp = Redirect::to("/").into_response();
    start_session(&core, &mut resp, &u.name, &view.stamp);
    resp
}
