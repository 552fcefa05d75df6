//! `/alerts`: what fires, what was sent and how it went, silences, and the
//! rule and channel editors. Plain forms rendered on the server, no script
//! (nothing of it weighs on the browser bundle). The same changes as JSON
//! under `/api/alerts/…` (CSRF token in `X-CSRF-Token`). Viewers see;
//! operators acknowledge, silence and retry; admins edit rules and channels.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::channels::{fields_of, MASK, TYPES};
use super::rules::KINDS;
use super::{Alerts, Overview};
use crate::error::ConsoleError;
use crate::server::auth::{csrf_ok, CurrentUser};
use crate::server::history::page::iso;
use crate::server::hosts_page::{html_page, refused_page};
use crate::server::password::escape;
use crate::server::Core;
use crate::types::Role;

fn alerts(core: &Core) -> Result<&Arc<Alerts>, ConsoleError> {
    core.alerts
        .as_ref()
        .ok_or_else(|| ConsoleError::internal("alerts need the console's store, which could not be opened"))
}

// -- the JSON API -----------------------------------------------------------------------

/// A JSON change: the session's CSRF token in `X-CSRF-Token`, a JSON body.
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

fn answer(r: Result<Value, ConsoleError>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// GET /api/alerts: incidents, notifications, silences, rules, channels (no secret).
pub async fn api_overview(State(core): State<Arc<Core>>, Extension(u): Extension<CurrentUser>) -> Response {
    let r = async {
        serde_json::to_value(alerts(&core)?.overview_for(&u).await?).map_err(|e| ConsoleError::internal(e.to_string()))
    };
    answer(r.await)
}

/// GET /api/alerts/channels (admins): every field, secrets masked.
pub async fn api_channels(State(core): State<Arc<Core>>, Extension(u): Extension<CurrentUser>) -> Response {
    let r = async {
        let list = alerts(&core)?.channels(&u).await?;
        Ok(Value::Array(
            list.into_iter()
                .map(|(id, mut v)| {
                    v["id"] = id.into();
                    v
                })
                .collect(),
        ))
    };
    answer(r.await)
}

/// What a JSON change names: `rules`, `channels`, `silences`, `incidents`, `notifications`.
#[derive(Deserialize)]
pub struct Target {
    what: String,
    id: i64,
}

type JsonBody = Result<Json<Value>, axum::extract::rejection::JsonRejection>;

/// POST /api/alerts/rules.
pub async fn api_add_rule(s: State<Arc<Core>>, u: Extension<CurrentUser>, h: HeaderMap, b: JsonBody) -> Response {
    add(s, u, h, b, "rules").await
}

/// POST /api/alerts/channels.
pub async fn api_add_channel(s: State<Arc<Core>>, u: Extension<CurrentUser>, h: HeaderMap, b: JsonBody) -> Response {
    add(s, u, h, b, "channels").await
}

/// POST /api/alerts/silences.
pub async fn api_add_silence(s: State<Arc<Core>>, u: Extension<CurrentUser>, h: HeaderMap, b: JsonBody) -> Response {
    add(s, u, h, b, "silences").await
}

/// A new rule, channel or silence: `201` with its id.
async fn add(
    State(core): State<Arc<Core>>,
    Extension(u): Extension<CurrentUser>,
    headers: HeaderMap,
    b: JsonBody,
    what: &str,
) -> Response {
    let r = async {
        checked(&u, &headers)?;
        let a = alerts(&core)?;
        let v = body(b)?;
        let id = match what {
            "rules" => a.save_rule(&u, None, &v).await?,
            "channels" => a.save_channel(&u, None, &v).await?,
            _ => a.add_silence(&u, &v).await?,
        };
        Ok::<_, ConsoleError>(json!({ "id": id }))
    };
    match r.await {
        Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// PUT /api/alerts/{what}/{id}: a rule or channel replaced.
pub async fn api_set(
    State(core): State<Arc<Core>>,
    Extension(u): Extension<CurrentUser>,
    Path(t): Path<Target>,
    headers: HeaderMap,
    b: JsonBody,
) -> Response {
    let r = async {
        checked(&u, &headers)?;
        let a = alerts(&core)?;
        let v = body(b)?;
        match t.what.as_str() {
            "rules" => a.save_rule(&u, Some(t.id), &v).await?,
            "channels" => a.save_channel(&u, Some(t.id), &v).await?,
            _ => return Err(ConsoleError::NotFound { what: "that kind of alert setting".into() }),
        };
        Ok(json!({ "id": t.id }))
    };
    answer(r.await)
}

/// DELETE /api/alerts/{what}/{id}: a rule or channel removed, a silence ended.
pub async fn api_remove(
    State(core): State<Arc<Core>>,
    Extension(u): Extension<CurrentUser>,
    Path(t): Path<Target>,
    headers: HeaderMap,
) -> Response {
    let r = async {
        checked(&u, &headers)?;
        let a = alerts(&core)?;
        match t.what.as_str() {
            "rules" => a.remove_rule(&u, t.id).await?,
            "channels" => a.remove_channel(&u, t.id).await?,
            "silences" => a.end_silence(&u, t.id).await?,
            _ => return Err(ConsoleError::NotFound { what: "that kind of alert setting".into() }),
        }
        Ok(json!({ "id": t.id }))
    };
    answer(r.await)
}

/// POST /api/alerts/{what}/{id}/{verb}: `channels/{id}/test`,
/// `incidents/{id}/ack`, `notifications/{id}/retry`.
pub async fn api_act(
    State(core): State<Arc<Core>>,
    Extension(u): Extension<CurrentUser>,
    Path((what, id, verb)): Path<(String, i64, String)>,
    headers: HeaderMap,
) -> Response {
    let r = async {
        checked(&u, &headers)?;
        let a = alerts(&core)?;
        let said = match (what.as_str(), verb.as_str()) {
            ("channels", "test") => a.test_channel(&u, id).await?,
            ("incidents", "ack") => a.ack(&u, id).await.map(|()| "acknowledged".to_owned())?,
            ("notifications", "retry") => a.retry(&u, id).await.map(|()| "queued again".to_owned())?,
            _ => return Err(ConsoleError::NotFound { what: "that alert action".into() }),
        };
        Ok(json!({ "id": id, "result": said }))
    };
    answer(r.await)
}

// -- the page ----------------------------------------------------------------------------

#[derive(Deserialize, Default)]
pub struct PageQuery {
    /// The new-channel form for this type.
    new: Option<String>,
}

/// GET /alerts.
pub async fn page(
    State(core): State<Arc<Core>>,
    Extension(u): Extension<CurrentUser>,
    Query(q): Query<PageQuery>,
) -> Response {
    show(&core, &u, StatusCode::OK, String::new(), q.new.as_deref()).await
}

/// POST /alerts: one form's action (`do`), answered with the page and what happened.
pub async fn act(
    State(core): State<Arc<Core>>,
    Extension(u): Extension<CurrentUser>,
    Form(f): Form<BTreeMap<String, String>>,
) -> Response {
    if !csrf_ok(&u, f.get("csrf").map_or("", String::as_str)) {
        return refused_page("Alerts", &ConsoleError::Csrf);
    }
    let result = match alerts(&core) {
        Ok(a) => form_action(a, &u, &f).await,
        Err(e) => Err(e),
    };
    let (status, note) = match result {
        Ok(said) => (StatusCode::OK, format!(r#"<p class="ok outcome" role="status">{}</p>"#, escape(&said))),
        Err(e) => (
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
            format!(r#"<p class="error" role="alert">{}</p>"#, escape(&error_text(&e))),
        ),
    };
    show(&core, &u, status, note, None).await
}

/// An error as the page says it: the field first.
fn error_text(e: &ConsoleError) -> String {
    match e {
        ConsoleError::BadInput { field, message } => format!("{field}: {message}"),
        other => other.to_string(),
    }
}

/// The form's fields as the JSON the API takes (its own fields left out;
/// empty fields absent; unchecked boxes false).
fn fields(f: &BTreeMap<String, String>) -> Value {
    let mut m: Map<String, Value> = f
        .iter()
        .filter(|(k, v)| !matches!(k.as_str(), "csrf" | "do" | "id") && !v.trim().is_empty())
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    if f.contains_key("enabled_shown") {
        m.remove("enabled_shown");
        m.entry("enabled").or_insert(Value::Bool(false));
    }
    Value::Object(m)
}

async fn form_action(a: &Alerts, u: &CurrentUser, f: &BTreeMap<String, String>) -> Result<String, ConsoleError> {
    let id =
        || f.get("id").and_then(|s| s.parse::<i64>().ok()).ok_or_else(|| ConsoleError::bad_input("id", "is missing"));
    let v = fields(f);
    Ok(match f.get("do").map_or("", String::as_str) {
        "rule.add" => format!("Rule {} added.", a.save_rule(u, None, &v).await?),
        "rule.save" => format!("Rule {} saved.", a.save_rule(u, Some(id()?), &v).await?),
        "rule.remove" => a.remove_rule(u, id()?).await.map(|()| "The rule was removed.".to_owned())?,
        "channel.add" => format!("Channel {} added.", a.save_channel(u, None, &v).await?),
        "channel.save" => format!("Channel {} saved.", a.save_channel(u, Some(id()?), &v).await?),
        "channel.remove" => a.remove_channel(u, id()?).await.map(|()| "The channel was removed.".to_owned())?,
        "channel.test" => a.test_channel(u, id()?).await?,
        "silence.add" => format!("Silence {} added.", a.add_silence(u, &v).await?),
        "silence.end" => a.end_silence(u, id()?).await.map(|()| "The silence ended.".to_owned())?,
        "ack" => a.ack(u, id()?).await.map(|()| "Acknowledged.".to_owned())?,
        "retry" => a.retry(u, id()?).await.map(|()| "It will be sent again.".to_owned())?,
        _ => return Err(ConsoleError::bad_input("do", "is not an action of this page")),
    })
}

async fn show(core: &Core, u: &CurrentUser, status: StatusCode, note: String, new: Option<&str>) -> Response {
    let a = match alerts(core) {
        Ok(a) => a,
        Err(e) => return refused_page("Alerts", &e),
    };
    let o = match a.overview_for(u).await {
        Ok(o) => o,
        Err(e) => return refused_page("Alerts", &e),
    };
    let edit =
        if u.access.allows(Role::Admin, &crate::server::scope::Scope::Fleet) { a.channels(u).await.ok() } else { None };
    html_page("Alerts", status, render(&o, u, &note, edit.as_deref(), new), false)
}

fn when(ms: i64) -> String {
    iso(ms.div_euclid(1000)).replace('T', " ")
}

fn form_start(u: &CurrentUser, action: &str, id: Option<i64>, class: &str) -> String {
    let id = id.map(|i| format!(r#"<input type="hidden" name="id" value="{i}">"#)).unwrap_or_default();
    format!(
        r#"<form method="post" action="/alerts" class="{class}"><input type="hidden" name="csrf" value="{}"><input type="hidden" name="do" value="{action}">{id}"#,
        escape(&u.csrf)
    )
}

fn button(u: &CurrentUser, action: &str, id: i64, label: &str, class: &str) -> String {
    format!(
        r#"{}<button class="btn {class}" type="submit">{label}</button></form>"#,
        form_start(u, action, Some(id), "inline")
    )
}

fn render(o: &Overview, u: &CurrentUser, note: &str, edit: Option<&[(i64, Value)]>, new: Option<&str>) -> String {
    let operator = u.top() >= Some(Role::Operator);
    let mut out = String::from(note);
    if !o.leading {
        out.push_str(r#"<p class="muted">Another console replica evaluates the rules and sends (or this one's store is read-only): what is shown is the shared store's.</p>"#);
    }
    let channel_name =
        |id: i64| o.channels.iter().find(|c| c.id == id).map_or_else(|| format!("channel {id}"), |c| c.name.clone());
    let title = |i: &super::IncidentView| {
        i.finding.as_ref().map_or_else(|| format!("incident {}", i.row.id), |f| f.title.clone())
    };

    // What fires.
    out.push_str(&format!(r#"<h2>Firing <span class="count">{}</span></h2>"#, o.firing.len()));
    if o.firing.is_empty() {
        out.push_str(r#"<p class="ok">Nothing is firing.</p>"#);
    } else {
        out.push_str("<table class=\"alerts firing\"><thead><tr><th>What</th><th>Rule</th><th>Since</th><th>State</th><th></th></tr></thead><tbody>");
        for i in &o.firing {
            let f = i.finding.as_ref();
            let mut state = String::new();
            if !i.row.notified {
                state.push_str(r#"<span class="chip-warn">silenced</span> "#);
            }
            if i.row.flaps > 0 {
                state.push_str(&format!(r#"<span class="chip-warn">flapping ({})</span> "#, i.row.flaps));
            }
            match &i.row.acked_by {
                Some(by) => state.push_str(&format!(r#"<span class="chip-ok">acknowledged by {}</span>"#, escape(by))),
                None if operator => state.push_str(&button(u, "ack", i.row.id, "Acknowledge", "")),
                None => {}
            }
            let silence = match (operator, f) {
                (true, Some(f)) => {
                    let scope = match &f.app {
                        Some(app) => format!("app:{}/{}", f.host, app),
                        None => format!("host:{}", f.host),
                    };
                    format!(
                        r#"{}<input type="hidden" name="scope" value="{}"><input type="hidden" name="rule" value="{}"><input type="hidden" name="minutes" value="60"><button class="btn" type="submit">Silence 1 h</button></form>"#,
                        form_start(u, "silence.add", None, "inline"),
                        escape(&scope),
                        f.rule
                    )
                }
                _ => String::new(),
            };
            out.push_str(&format!(
                r#"<tr data-incident="{id}"><td><b>{t}</b><br><span class="muted">{d}</span></td><td>{r}</td><td>{s}</td><td>{state}</td><td>{silence}</td></tr>"#,
                id = i.row.id,
                t = escape(&title(i)),
                d = escape(f.map_or("", |f| f.detail.as_str())),
                r = escape(f.map_or("", |f| f.rule_name.as_str())),
                s = when(i.row.started_ms),
            ));
        }
        out.push_str("</tbody></table>");
    }

    // Silences.
    out.push_str("<h2>Silences</h2>");
    if o.silences.is_empty() {
        out.push_str(r#"<p class="muted">None.</p>"#);
    }
    for s in &o.silences {
        let end = if operator { button(u, "silence.end", s.id, "End now", "") } else { String::new() };
        let rule = s.silence.rule.map(|r| format!(", rule {r}")).unwrap_or_default();
        out.push_str(&format!(
            r#"<p class="silence" data-silence="{id}"><b>{scope}</b>{rule} until {until}, by {by}{reason} {end}</p>"#,
            id = s.id,
            scope = escape(&s.silence.scope.to_string()),
            until = when(s.until_ms),
            by = escape(&s.silence.by),
            reason =
                if s.silence.reason.is_empty() { String::new() } else { format!(": {}", escape(&s.silence.reason)) },
        ));
    }
    if operator {
        out.push_str(&format!(
            r#"{}<label>Scope <input name="scope" value="fleet" maxlength="400" title="fleet, host:NAME, app:PROJECT or app:HOST/PROJECT"></label>
<label>Rule (id, or empty for all) <input name="rule" inputmode="numeric" maxlength="12"></label>
<label>Minutes <input name="minutes" value="60" inputmode="numeric" maxlength="6"></label>
<label>Reason <input name="reason" maxlength="200"></label> <button class="btn" type="submit">Add a silence</button></form>"#,
            form_start(u, "silence.add", None, "add-silence")
        ));
    }

    // Notifications.
    out.push_str("<h2>Notifications</h2>");
    if o.notifications.is_empty() {
        out.push_str(r#"<p class="muted">None sent yet.</p>"#);
    } else {
        out.push_str("<table class=\"alerts notifications\"><thead><tr><th>Queued</th><th>Incident</th><th>Event</th><th>Channel</th><th>Status</th><th></th></tr></thead><tbody>");
        for n in &o.notifications {
            let status = match n.status.as_str() {
                "sent" => format!(r#"<span class="chip-ok">sent</span> {}"#, n.sent_ms.map(when).unwrap_or_default()),
                "failed" => format!(
                    r#"<span class="chip-bad">failed</span> after {} tries: {}"#,
                    n.attempts,
                    escape(n.error.as_deref().unwrap_or(""))
                ),
                _ if n.attempts > 0 => format!(
                    r#"<span class="chip-warn">retrying</span> (try {} failed: {}; next at {})"#,
                    n.attempts,
                    escape(n.error.as_deref().unwrap_or("")),
                    when(n.next_ms)
                ),
                _ => format!(r#"<span class="chip-warn">pending</span> (due {})"#, when(n.next_ms)),
            };
            let retry =
                if operator && n.status == "failed" { button(u, "retry", n.id, "Retry", "") } else { String::new() };
            out.push_str(&format!(
                r#"<tr data-notification="{id}" data-status="{st}"><td>{at}</td><td>{inc}</td><td>{ev}</td><td>{ch}</td><td>{status}</td><td>{retry}</td></tr>"#,
                id = n.id,
                st = escape(&n.status),
                at = when(n.created_ms),
                inc = n.incident,
                ev = escape(&n.event),
                ch = escape(&channel_name(n.channel)),
            ));
        }
        out.push_str("</tbody></table>");
    }

    // History.
    out.push_str("<h2>Resolved</h2>");
    if o.recent.is_empty() {
        out.push_str(r#"<p class="muted">Nothing yet.</p>"#);
    } else {
        out.push_str(
            "<table class=\"alerts resolved\"><thead><tr><th>What</th><th>From</th><th>To</th></tr></thead><tbody>",
        );
        for i in &o.recent {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&title(i)),
                when(i.row.started_ms),
                i.row.resolved_ms.map(when).unwrap_or_default()
            ));
        }
        out.push_str("</tbody></table>");
    }

    // Rules.
    out.push_str("<h2>Rules</h2>");
    let admin = u.access.allows(Role::Admin, &crate::server::scope::Scope::Fleet);
    for r in &o.rules {
        out.push_str(&rule_form(u, Some(r.id), &r.rule, admin));
    }
    if admin {
        out.push_str("<h3>Add a rule</h3>");
        out.push_str(&rule_form(u, None, &json!({"enabled": true, "scope": "fleet"}), true));
        out.push_str(r#"<p class="muted">Scope: <code>fleet</code>, <code>host:NAME</code>, <code>app:PROJECT</code>, <code>app:HOST/PROJECT</code>, <code>label:KEY</code> or <code>label:KEY=VALUE</code>. Channels: ids, comma-separated; empty for every channel. Fields a kind does not use are left empty.</p>"#);
    }

    // Channels.
    out.push_str("<h2>Channels</h2>");
    match edit {
        Some(list) => {
            for (id, v) in list {
                out.push_str(&channel_form(u, Some(*id), v));
            }
            out.push_str(r#"<h3>Add a channel</h3><form method="get" action="/alerts" class="inline"><label>Type <select name="new">"#);
            for (t, label) in TYPES {
                let sel = if new == Some(*t) { " selected" } else { "" };
                out.push_str(&format!(r#"<option value="{t}"{sel}>{label}</option>"#));
            }
            out.push_str(r#"</select></label> <button class="btn" type="submit">Show its fields</button></form>"#);
            if let Some(t) = new.filter(|t| TYPES.iter().any(|(k, _)| k == t)) {
                out.push_str(&channel_form(u, None, &json!({"type": t, "enabled": true})));
            }
        }
        None => {
            if o.channels.is_empty() {
                out.push_str(r#"<p class="muted">None: an admin adds them here.</p>"#);
            }
            for c in &o.channels {
                out.push_str(&format!(
                    "<p><b>{}</b> ({}) → {}{}</p>",
                    escape(&c.name),
                    escape(&c.kind),
                    escape(&c.destination),
                    if c.enabled { "" } else { " (off)" }
                ));
            }
        }
    }
    out
}

fn text_of(v: &Value, f: &str) -> String {
    match v.get(f) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Array(a)) => {
            a.iter().map(|x| x.to_string().trim_matches('"').to_owned()).collect::<Vec<_>>().join(", ")
        }
        _ => String::new(),
    }
}

fn rule_form(u: &CurrentUser, id: Option<i64>, r: &Value, admin: bool) -> String {
    let kind = text_of(r, "kind");
    let dis = if admin { "" } else { " disabled" };
    let mut out = match id {
        Some(id) if admin => form_start(u, "rule.save", Some(id), "rule"),
        Some(_) => r#"<form class="rule">"#.to_owned(),
        None => form_start(u, "rule.add", None, "rule"),
    };
    let label = id.map_or_else(|| "New".to_owned(), |i| format!("#{i}"));
    out.push_str(&format!(r#"<fieldset><legend>{label}</legend><label>Name <input name="name" required maxlength="80" value="{}"{dis}></label>"#, escape(&text_of(r, "name"))));
    out.push_str(&format!(r#"<label>Kind <select name="kind"{dis}>"#));
    for (k, l) in KINDS {
        let sel = if kind == *k { " selected" } else { "" };
        out.push_str(&format!(r#"<option value="{k}"{sel}>{l}</option>"#));
    }
    out.push_str("</select></label>");
    for (f, l, size) in [
        ("scope", "Scope", 400),
        ("for_s", "For (s)", 6),
        ("restarts", "Restarts", 5),
        ("window_s", "Window (s)", 6),
        ("percent", "Percent", 7),
        ("pattern", "Pattern", 200),
        ("hold_s", "Hold (s)", 6),
        ("channels", "Channels", 100),
    ] {
        out.push_str(&format!(
            r#"<label>{l} <input name="{f}" maxlength="{size}" value="{}"{dis}></label>"#,
            escape(&text_of(r, f))
        ));
    }
    let on = if r.get("enabled").and_then(Value::as_bool).unwrap_or(true) { " checked" } else { "" };
    out.push_str(&format!(r#"<input type="hidden" name="enabled_shown" value="1"><label><input type="checkbox" name="enabled"{on}{dis}> enabled</label>"#));
    if admin {
        out.push_str(&format!(
            r#" <button class="btn" type="submit">{}</button>"#,
            if id.is_some() { "Save" } else { "Add" }
        ));
    }
    out.push_str("</fieldset></form>");
    if let (Some(id), true) = (id, admin) {
        out.push_str(&button(u, "rule.remove", id, "Remove", "danger"));
    }
    out
}

fn channel_form(u: &CurrentUser, id: Option<i64>, c: &Value) -> String {
    let kind = text_of(c, "type");
    let (fields, secrets) = fields_of(&kind);
    let mut out = match id {
        Some(id) => form_start(u, "channel.save", Some(id), "channel"),
        None => form_start(u, "channel.add", None, "channel"),
    };
    let label = id.map_or_else(|| format!("New {kind} channel"), |i| format!("#{i} · {kind}"));
    out.push_str(&format!(
        r#"<fieldset><legend>{}</legend><input type="hidden" name="type" value="{}"><label>Name <input name="name" required maxlength="80" value="{}"></label>"#,
        escape(&label),
        escape(&kind),
        escape(&text_of(c, "name"))
    ));
    for f in fields {
        let value = text_of(c, f);
        if secrets.contains(f) {
            let set = value == MASK;
            out.push_str(&format!(
                r#"<label>{f} <input type="password" name="{f}" maxlength="500" autocomplete="off" placeholder="{}"></label>"#,
                if set { "set: leave empty to keep" } else { "" }
            ));
        } else if *f == "template" {
            out.push_str(&format!(
                r#"<label>template (JSON; {{{{title}}}}, {{{{event}}}}, {{{{host}}}}, …) <textarea name="template" maxlength="4096" rows="3">{}</textarea></label>"#,
                escape(&value)
            ));
        } else {
            out.push_str(&format!(
                r#"<label>{f} <input name="{f}" maxlength="500" value="{}"></label>"#,
                escape(&value)
            ));
        }
    }
    for (f, l) in [("quiet_from", "Quiet from (HH:MM)"), ("quiet_to", "to"), ("utc_offset_min", "UTC offset (min)")] {
        out.push_str(&format!(
            r#"<label>{l} <input name="{f}" maxlength="6" value="{}"></label>"#,
            escape(&text_of(c, f))
        ));
    }
    let on = if c.get("enabled").and_then(Value::as_bool).unwrap_or(true) { " checked" } else { "" };
    out.push_str(&format!(
        r#"<input type="hidden" name="enabled_shown" value="1"><label><input type="checkbox" name="enabled"{on}> enabled</label> <button class="btn" type="submit">{}</button></fieldset></form>"#,
        if id.is_some() { "Save" } else { "Add" }
    ));
    if let Some(id) = id {
        out.push_str(&button(u, "channel.test", id, "Send test", ""));
        out.push_str(&button(u, "channel.remove", id, "Remove", "danger"));
    }
    out
}
