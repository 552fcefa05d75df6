//! `/hosts` (admins): every host and how the console trusts it; add a host
//! (a one-time join token and the one command to run there); revoke an
//! enrolled one, after asking. Plain forms rendered on the server, no
//! script: nothing of it weighs on the browser bundle.

use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;

use super::auth::{csrf_ok, CurrentUser};
use super::password::escape;
use super::Core;
use crate::error::ConsoleError;
use crate::types::{JoinCommand, Role};

#[derive(Deserialize)]
pub struct PageQuery {
    /// Asks to confirm revoking this host.
    revoke: Option<String>,
}

#[derive(Deserialize)]
pub struct AddForm {
    csrf: String,
    name: String,
    url: String,
}

#[derive(Deserialize)]
pub struct RevokeForm {
    csrf: String,
    name: String,
}

fn html(status: StatusCode, body: String) -> Response {
    html_page("Hosts", status, body, false)
}

/// A page rendered on the server, without script (a strict CSP says so):
/// `title`, then `body`; `refresh` reloads it every 2 s (a job's page).
pub(super) fn html_page(title: &str, status: StatusCode, body: String, refresh: bool) -> Response {
    let refresh = if refresh { r#"<meta http-equiv="refresh" content="2">"# } else { "" };
    let page = format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title} · dockward</title>{refresh}
<link rel="icon" type="image/svg+xml" href="/favicon.svg"><link rel="stylesheet" href="/pkg/dockward.css"><link rel="stylesheet" href="/pkg/pages.css"></head><body><main class="hosts-page"><p><a href="/">← Overview</a></p><h1>{title}</h1>{body}</main></body></html>"#
    );
    let mut resp = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn refused(e: &ConsoleError) -> Response {
    refused_page("Hosts", e)
}

/// `title`'s page saying why it was refused, with the error's status.
pub(super) fn refused_page(title: &str, e: &ConsoleError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    html_page(title, status, format!(r#"<p class="error" role="alert">{}</p>"#, escape(&e.to_string())), false)
}

/// The page: hosts, waiting tokens, the add form, and what just happened.
fn render(core: &Core, u: &CurrentUser, note: &str, confirm: Option<&str>) -> Result<String, ConsoleError> {
    let view = core.hosts_view(u)?;
    let csrf = escape(&u.csrf);
    let mut out = String::from(note);
    if let Some(name) = confirm {
        out.push_str(&format!(
            r#"<form method="post" action="/hosts/revoke" class="confirm-revoke"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="name" value="{n}">
<p>Revoke <b>{n}</b>? Its sidecar forgets its secret at once and refuses every call until it is enrolled again.</p>
<button class="btn danger" type="submit">Yes, revoke {n}</button> <a class="btn" href="/hosts">Cancel</a></form>"#,
            n = escape(name)
        ));
    }
    out.push_str("<table class=\"hosts\"><thead><tr><th>Host</th><th>Address</th><th>Trusted by</th><th>Stats from</th><th></th></tr></thead><tbody>");
    for h in &view.hosts {
        let trust = if let Some(from) = &h.outbound {
            match from {
                Some(peer) => {
                    format!(r#"<span class="chip-ok">outbound agent, connected from {}</span>"#, escape(peer))
                }
                None => r#"<span class="chip-warn">outbound agent, not connected</span>"#.to_owned(),
            }
        } else if h.pins.is_empty() {
            r#"<span class="chip-warn">unencrypted (plain HTTP)</span>"#.to_owned()
        } else {
            h.pins.iter().map(|p| format!("<code>{}</code>", escape(p))).collect::<Vec<_>>().join(" or ")
        };
        let action = if h.enrolled {
            format!(r#"<a class="btn" href="/hosts?revoke={}">Revoke…</a>"#, escape(&h.name))
        } else {
            r#"<span class="muted">configured (DOCKWARD_HOSTS)</span>"#.to_owned()
        };
        let stats = match &h.stats {
            Some((source, why)) => format!(
                r#"<span class="{chip}" title="{why}">{source}</span> <span class="muted">{why}</span>"#,
                chip = if source == "kernel" { "chip-ok" } else { "chip-warn" },
                source = escape(source),
                why = escape(why),
            ),
            None => r#"<span class="muted">not known yet</span>"#.to_owned(),
        };
        out.push_str(&format!(
            r#"<tr data-host="{n}"><td><b>{n}</b></td><td><code>{url}</code></td><td>{trust}</td><td class="stats-source">{stats}</td><td>{action}</td></tr>"#,
            n = escape(&h.name),
            url = escape(&h.url),
        ));
    }
    out.push_str("</tbody></table>");
    for (name, _) in &view.pending {
        out.push_str(&format!(r#"<p class="muted">{}: a join token is waiting.</p>"#, escape(name)));
    }
    if view.agent {
        out.push_str(&format!(
            r#"<h2>Add a host</h2><form method="post" action="/hosts/add" class="add-host"><input type="hidden" name="csrf" value="{csrf}">
<label>Name <input name="name" required maxlength="64" pattern="[A-Za-z0-9._-]+" placeholder="db1"></label>
<label>Its sidecar's address <input name="url" required maxlength="300" placeholder="https://10.0.0.12:7700"></label>
<p class="muted">Or <code>outbound</code>: its sidecar dials this console and its host needs no inbound port.</p>
<button class="btn" type="submit">Make a join token</button></form>"#
        ));
    } else {
        out.push_str("<p class=\"muted\">The agent port is off (DOCKWARD_AGENT_LISTEN): hosts cannot enrol.</p>");
    }
    Ok(out)
}

/// Hosts are the fleet's: an admin of the whole fleet manages them.
fn admin(u: &CurrentUser) -> Result<(), ConsoleError> {
    u.access.need(Role::Admin, &crate::server::scope::Scope::Fleet)
}

/// GET /hosts.
pub async fn page(
    State(core): State<Arc<Core>>,
    Extension(u): Extension<CurrentUser>,
    Query(q): Query<PageQuery>,
) -> Response {
    // Only a host of the console is asked about (nothing of the query is echoed otherwise).
    let confirm = q.revoke.as_deref().filter(|n| core.fleet.get().host(n).is_some());
    match admin(&u).and_then(|()| render(&core, &u, "", confirm)) {
        Ok(body) => html(StatusCode::OK, body),
        Err(e) => refused(&e),
    }
}

/// POST /hosts/add: the token is shown once, on the page it answers with.
pub async fn add(
    State(core): State<Arc<Core>>,
    Extension(u): Extension<CurrentUser>,
    Form(f): Form<AddForm>,
) -> Response {
    if !csrf_ok(&u, &f.csrf) {
        return refused(&ConsoleError::Csrf);
    }
    let made = admin(&u).and_then(|()| core.add_host(&u, &f.name, &f.url));
    let note = match &made {
        Ok(JoinCommand { host, command, .. }) => format!(
            r#"<div class="ok outcome"><p>Run this on <b>{}</b> within 15 minutes; the token works once:</p><pre class="join">{}</pre></div>"#,
            escape(host),
            escape(command)
        ),
        Err(e) => format!(r#"<p class="error" role="alert">{}</p>"#, escape(&e.to_string())),
    };
    let status = made
        .as_ref()
        .err()
        .map_or(StatusCode::OK, |e| StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST));
    match render(&core, &u, &note, None) {
        Ok(body) => html(status, body),
        Err(e) => refused(&e),
    }
}

/// POST /hosts/revoke.
pub async fn revoke(
    State(core): State<Arc<Core>>,
    Extension(u): Extension<CurrentUser>,
    Form(f): Form<RevokeForm>,
) -> Response {
    if !csrf_ok(&u, &f.csrf) {
        return refused(&ConsoleError::Csrf);
    }
    if let Err(e) = admin(&u) {
        return refused(&e);
    }
    // Answered with the page itself: nothing the user did not do is ever shown from a link.
    let (status, note) = match core.revoke_host(&u, &f.name).await {
        Ok(said) => (StatusCode::OK, format!(r#"<p class="ok outcome">{}</p>"#, escape(&said))),
        Err(e) => (
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
            format!(r#"<p class="error" role="alert">{}</p>"#, escape(&e.to_string())),
        ),
    };
    match render(&core, &u, &note, None) {
        Ok(body) => html(status, body),
        Err(e) => refused(&e),
    }
}
