//! `/actions` and `/jobs/{job}` (operators): "Update", "Rebuild", "Recreate"
//! a container and "Update app", asked first on a page of their own, then
//! followed on the job's page until it ends. Plain forms rendered on the
//! server (the page reloads itself while the job runs), no script: nothing
//! of them weighs on the browser bundle, whose buttons are links here.

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use shared::{ContainerRef, Verb};

use super::auth::{csrf_ok, CurrentUser};
use super::hosts_page::{html_page, refused_page};
use super::password::escape;
use super::{Core, On};
use crate::error::ConsoleError;

/// What is asked: a container's update, rebuild or recreate, or an app's update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum How {
    Update,
    Rebuild,
    Recreate,
    App,
}

impl How {
    fn verb(self) -> &'static str {
        match self {
            Self::Update => "Update",
            Self::Rebuild => "Rebuild",
            Self::Recreate => "Recreate",
            Self::App => "Update app",
        }
    }

    fn explain(self) -> &'static str {
        match self {
            Self::Update => "Its image is pulled; a new container replaces it (same settings and volumes). If the new one fails its health check, the old one comes back.",
            Self::Rebuild => "Its compose service's image is built again from source; a new container replaces it (same settings and volumes). If it fails, the old one comes back.",
            Self::Recreate => "A new container from its current image replaces it (same settings and volumes). If it fails, the old one comes back.",
            Self::App => "Each of its containers on this host is pulled and recreated, one by one; the first that fails is rolled back and the rest are left as they are.",
        }
    }
}

#[derive(Deserialize)]
pub struct Ask {
    host: String,
    id: String,
    how: How,
}

#[derive(Deserialize)]
pub struct Confirmed {
    csrf: String,
    host: String,
    id: String,
    how: How,
}

/// The role every action here needs, somewhere; each is checked again on
/// its own container or app where it starts (`Core::host_for`).
fn operator(u: &CurrentUser) -> Result<(), ConsoleError> {
    let needed = Verb::Recreate.role().max(Verb::Pull.role());
    match u.top() {
        Some(have) if have >= needed => Ok(()),
        Some(have) => Err(ConsoleError::Forbidden { needed, have }),
        None => Err(ConsoleError::NotGranted { needed, on: "anything".into() }),
    }
}

/// An app's name: what compose allows, bounded.
fn project_ok(p: &str) -> Result<(), ConsoleError> {
    let ok = (1..=128).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    ok.then_some(()).ok_or_else(|| ConsoleError::bad_input("id", "not a compose project name"))
}

/// The ask is well formed, and the user may do it on that container or app.
fn check(core: &Core, u: &CurrentUser, a: &Ask) -> Result<(), ConsoleError> {
    let needed = Verb::Recreate.role().max(Verb::Pull.role());
    match a.how {
        How::App => {
            project_ok(&a.id)?;
            core.host_for(u, &a.host, needed, On::App(&a.id)).map(|_| ())
        }
        _ => {
            let r = ContainerRef::parse(&a.id)?;
            core.host_for(u, &a.host, needed, On::Container(&r)).map(|_| ())
        }
    }
}

fn page(status: StatusCode, body: String) -> Response {
    html_page("Actions", status, body, false)
}

/// GET /actions?host=&id=&how=: the question, and the form that answers it.
pub async fn ask(
    State(core): State<Arc<Core>>,
    Extension(u): Extension<CurrentUser>,
    Query(a): Query<Ask>,
) -> Response {
    if let Err(e) = operator(&u).and_then(|()| check(&core, &u, &a)) {
        return refused_page("Actions", &e);
    }
    let (what, back) = match a.how {
        How::App => (format!("every container of <b>{}</b>", escape(&a.id)), "/".to_owned()),
        _ => (format!("<b>{}</b>", escape(&a.id)), format!("/c/{}/{}", escape(&a.host), escape(&a.id))),
    };
    // What the update check knows of it: newer version tags; why it cannot be rebuilt.
    let (entry, newer) = match a.how {
        How::App => (None, None),
        _ => core.update_of(&u, &a.host, &a.id).await,
    };
    if a.how == How::Rebuild && !entry.as_ref().is_some_and(|e| e.buildable) {
        let why =
            entry.and_then(|e| e.build_note).unwrap_or_else(|| "it is not a compose service built on its host".into());
        let recreate = format!("/actions?host={}&id={}&how=recreate", escape(&a.host), escape(&a.id));
        return page(
            StatusCode::OK,
            format!(
                r#"<p class="rebuild-note">Rebuild of {what} is not available: {}</p><p><a class="btn" href="{recreate}">Recreate it instead…</a> <a class="btn" href="{back}">Cancel</a></p>"#,
                escape(&why)
            ),
        );
    }
    let versions = newer
        .map(|n| {
            let mut parts = Vec::new();
            if let Some(m) = &n.same_major {
                parts.push(format!("{} (this major)", escape(m)));
            }
            if let Some(x) = n.newest.as_ref().filter(|x| Some(*x) != n.same_major.as_ref()) {
                parts.push(format!("{} (newest)", escape(x)));
            }
            format!(r#"<p class="versions">Newer versions: {}</p>"#, parts.join(", "))
        })
        .unwrap_or_default();
    page(
        StatusCode::OK,
        format!(
            r#"<form method="post" action="/actions" class="confirm-action"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="host" value="{host}"><input type="hidden" name="id" value="{id}"><input type="hidden" name="how" value="{how}">
<p>{verb} {what} on <b>{host}</b>? {explain}</p>{versions}
<button class="btn danger confirm" type="submit">{verb}</button> <a class="btn" href="{back}">Cancel</a></form>"#,
            csrf = escape(&u.csrf),
            host = escape(&a.host),
            id = escape(&a.id),
            how = format!("{:?}", a.how).to_lowercase(),
            verb = a.how.verb(),
            explain = a.how.explain(),
        ),
    )
}

/// POST /actions: starts the job and sends the browser to its page.
pub async fn start(
    State(core): State<Arc<Core>>,
    Extension(u): Extension<CurrentUser>,
    Form(f): Form<Confirmed>,
) -> Response {
    if !csrf_ok(&u, &f.csrf) {
        return refused_page("Actions", &ConsoleError::Csrf);
    }
    let a = Ask { host: f.host, id: f.id, how: f.how };
    let started = operator(&u).and_then(|()| check(&core, &u, &a)).and_then(|()| match a.how {
        How::Update => core.start_recreate(&u, &a.host, &a.id, true, false),
        How::Rebuild => core.start_recreate(&u, &a.host, &a.id, false, true),
        How::Recreate => core.start_recreate(&u, &a.host, &a.id, false, false),
        How::App => core.start_app_update(&u, &a.host, &a.id),
    });
    match started {
        Ok(job) => {
            let mut resp = StatusCode::SEE_OTHER.into_response();
            if let Ok(to) = HeaderValue::from_str(&format!("/jobs/{job}")) {
                resp.headers_mut().insert(header::LOCATION, to);
            }
            resp
        }
        Err(e) => refused_page("Actions", &e),
    }
}

/// GET /jobs/{job}: where it stands; the page reloads itself until it ends.
pub async fn job(
    State(core): State<Arc<Core>>,
    Extension(u): Extension<CurrentUser>,
    Path(job): Path<String>,
) -> Response {
    if let Err(e) = operator(&u) {
        return refused_page("Job", &e);
    }
    let valid = job.len() == 24 && job.bytes().all(|b| b.is_ascii_hexdigit());
    let Some(s) = core.jobs.status(&job, &u).filter(|_| valid) else {
        return refused_page("Job", &ConsoleError::NotFound { what: "job (finished long ago?)".into() });
    };
    let lines = escape(&s.lines.join("\n"));
    let (outcome, running) = match &s.done {
        None => (format!(r#"<p class="outcome" role="status">{}…</p>"#, escape(&s.title)), true),
        Some(Ok(d)) => (format!(r#"<p class="ok outcome" role="status">Done: {}</p>"#, escape(d)), false),
        Some(Err(e)) => {
            (format!(r#"<p class="error outcome" role="alert">{} failed: {}</p>"#, escape(&s.title), escape(e)), false)
        }
    };
    let body = format!(
        r#"<section class="job">{outcome}<pre class="pull-lines">{lines}</pre><p><a href="/">Back to the overview</a></p></section>"#
    );
    html_page("Job", StatusCode::OK, body, running)
}
