//! Where notifications go: a generic webhook (a JSON body from a template,
//! signed with HMAC-SHA256) and the services people use (ntfy, Gotify,
//! Pushover, Telegram, Slack, Discord, Mattermost, Microsoft Teams, Matrix,
//! email over SMTP). Each channel is read from input once ([`Channel::parse`]),
//! stored with its secrets in the console's store, shown back with them
//! masked ([`Channel::shown`]), and turned into one request per notification
//! ([`Channel::request`], pure, so every format is tested as a unit).

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;

use super::engine::Finding;
use super::input::{bad, url, Input};
use crate::error::ConsoleError;

/// Most channels kept.
pub const CHANNELS_MAX: usize = 50;
/// A webhook template's largest size.
pub const TEMPLATE_MAX: usize = 4096;
/// What a masked secret reads as; sent back unchanged, it keeps the stored one.
pub const MASK: &str = "(set)";
/// The types, with what the editor calls them.
pub const TYPES: &[(&str, &str)] = &[
    ("webhook", "Webhook (JSON, HMAC-signed)"),
    ("ntfy", "ntfy"),
    ("gotify", "Gotify"),
    ("pushover", "Pushover"),
    ("telegram", "Telegram"),
    ("slack", "Slack"),
    ("discord", "Discord"),
    ("mattermost", "Mattermost"),
    ("teams", "Microsoft Teams"),
    ("matrix", "Matrix"),
    ("email", "Email (SMTP)"),
];

/// How an SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// Plain, then upgraded with STARTTLS (required).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// Plain SMTP: only for a relay on this machine or network, and never with a password.
    None,
}

/// Where one channel sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Target {
    Webhook {
        url: String,
        #[serde(default)]
        secret: Option<String>,
        #[serde(default)]
        template: Option<String>,
    },
    Ntfy {
        url: String,
        topic: String,
        #[serde(default)]
        token: Option<String>,
    },
    Gotify {
        url: String,
        token: String,
    },
    Pushover {
        token: String,
        user: String,
        #[serde(default)]
        url: Option<String>,
    },
    Telegram {
        token: String,
        chat_id: String,
        #[serde(default)]
        url: Option<String>,
    },
    Slack {
        url: String,
    },
    Discord {
        url: String,
    },
    Mattermost {
        url: String,
    },
    Teams {
        url: String,
    },
    Matrix {
        url: String,
        room: String,
        token: String,
    },
    Email {
        host: String,
        port: u16,
        security: Security,
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        password: Option<String>,
        from: String,
        to: Vec<String>,
    },
}

/// Hours a channel holds its notifications until (minutes of the day, at a
/// fixed offset from UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quiet {
    pub from_min: u16,
    pub to_min: u16,
    pub utc_offset_min: i16,
}

impl Quiet {
    /// When the quiet hours around `now_ms` end, if it is in them.
    pub fn until(&self, now_ms: i64) -> Option<i64> {
        let minute = now_ms.div_euclid(60_000);
        let local = (minute + i64::from(self.utc_offset_min)).rem_euclid(1440);
        let (from, to) = (i64::from(self.from_min), i64::from(self.to_min));
        let inside = if from <= to { (from..to).contains(&local) } else { local >= from || local < to };
        inside.then(|| (minute + (to - local).rem_euclid(1440)) * 60_000)
    }
}

/// One channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    pub name: String,
    pub enabled: bool,
    #[serde(flatten)]
    pub target: Target,
    #[serde(default)]
    pub quiet: Option<Quiet>,
}

/// One notification, as every channel renders it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// The outbox row's id: a receiver can drop a retried duplicate by it.
    pub id: i64,
    /// `firing`, `resolved`, `flapping` or `test`.
    pub event: String,
    pub incident: i64,
    #[serde(flatten)]
    pub finding: Finding,
    /// Unix seconds.
    pub started_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<i64>,
    /// The console's alerts page, when its public address is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// When it is sent (Unix milliseconds).
    #[serde(skip)]
    pub sent_at: i64,
}

impl Notice {
    /// One line: what happened.
    pub fn headline(&self) -> String {
        let word = match self.event.as_str() {
            "firing" => "FIRING",
            "resolved" => "RESOLVED",
            "flapping" => "FLAPPING",
            _ => "TEST",
        };
        format!("[dockward] {word}: {}", self.finding.title)
    }

    /// The rest, a few lines of plain text.
    pub fn text(&self) -> String {
        let f = &self.finding;
        let mut t = format!("{}\nRule: {}\nHost: {}", f.detail, f.rule_name, f.host);
        if let Some(app) = &f.app {
            t.push_str(&format!("\nApp: {app}"));
        }
        t.push_str(&format!("\nSince: {}", super::super::history::page::iso(self.started_at)));
        if let Some(r) = self.resolved_at {
            t.push_str(&format!("\nResolved: {}", super::super::history::page::iso(r)));
        }
        if self.event == "flapping" {
            t.push_str("\nIt keeps changing: further changes are held until it is stable for 10 minutes.");
        }
        if let Some(l) = &self.link {
            t.push_str(&format!("\n{l}"));
        }
        t
    }

    /// The webhook's default body.
    pub fn json(&self) -> Value {
        json!({
            "id": self.id,
            "event": self.event,
            "incident": self.incident,
            "title": self.finding.title,
            "detail": self.finding.detail,
            "rule": self.finding.rule_name,
            "rule_id": self.finding.rule,
            "kind": self.finding.kind,
            "host": self.finding.host,
            "subject": self.finding.subject,
            "app": self.finding.app,
            "started_at": self.started_at,
            "resolved_at": self.resolved_at,
            "link": self.link,
        })
    }

    /// Placeholders a webhook template may use, each replaced by its value
    /// escaped for a JSON string (without the quotes).
    fn fields(&self) -> [(&'static str, String); 11] {
        [
            ("id", self.id.to_string()),
            ("event", self.event.clone()),
            ("incident", self.incident.to_string()),
            ("title", self.finding.title.clone()),
            ("detail", self.finding.detail.clone()),
            ("rule", self.finding.rule_name.clone()),
            ("kind", self.finding.kind.clone()),
            ("host", self.finding.host.clone()),
            ("subject", self.finding.subject.clone()),
            ("app", self.finding.app.clone().unwrap_or_default()),
            ("started_at", self.started_at.to_string()),
        ]
    }

    /// A sample, for "send test" and for checking a template.
    pub fn sample(event: &str) -> Notice {
        Notice {
            id: 0,
            event: event.into(),
            incident: 0,
            finding: Finding {
                rule: 0,
                rule_name: "Test".into(),
                kind: "test".into(),
                host: "console".into(),
                subject: "dockward".into(),
                app: None,
                title: "a test notification from dockward".into(),
                detail: "If you read this, the channel works.".into(),
            },
            started_at: crate::server::store::now_s() as i64,
            resolved_at: None,
            link: None,
            sent_at: crate::server::store::now_ms(),
        }
    }
}

/// Fills a webhook template.
pub fn render_template(template: &str, n: &Notice) -> String {
    let mut out = template.to_owned();
    for (name, value) in n.fields() {
        let escaped = serde_json::to_string(&value).unwrap_or_default();
        out = out.replace(&format!("{{{{{name}}}}}"), &escaped[1..escaped.len().saturating_sub(1)]);
    }
    out
}

/// An HTTP request to make (an email is sent apart).
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Outgoing {
    fn json(method: &'static str, url: String, body: &Value) -> Outgoing {
        Outgoing {
            method,
            url,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }
}

/// `base` with `path` after it (one slash between).
fn join(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
}

/// The fields that say where a channel sends: an edit that changes one
/// drops the stored secrets (they must be given again).
const DESTINATION: &[&str] = &["url", "host", "port", "security", "username", "topic", "room", "chat_id", "user"];

/// A destination field's value as compared across an edit (a URL parsed, so
/// `https://x` and `https://x/` are one place).
fn normal(field: &str, v: &str) -> String {
    if field == "url" {
        if let Ok(u) = reqwest::Url::parse(v.trim()) {
            return u.to_string();
        }
    }
    v.trim().to_owned()
}

/// The fields each type takes, and which hold secrets.
pub fn fields_of(kind: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match kind {
        "webhook" => (&["url", "secret", "template"], &["secret"]),
        "ntfy" => (&["url", "topic", "token"], &["token"]),
        "gotify" => (&["url", "token"], &["token"]),
        "pushover" => (&["token", "user", "url"], &["token", "user"]),
        "telegram" => (&["token", "chat_id", "url"], &["token"]),
        "slack" | "discord" | "mattermost" | "teams" => (&["url"], &["url"]),
        "matrix" => (&["url", "room", "token"], &["token"]),
        "email" => (&["host", "port", "security", "username", "password", "from", "to"], &["password"]),
        _ => (&[], &[]),
    }
}

fn clock(field: &str, s: &str) -> Result<u16, ConsoleError> {
    let (h, m) = s.split_once(':').ok_or_else(|| bad(field, "must be a time of day as HH:MM"))?;
    let (h, m) = (h.parse::<u16>(), m.parse::<u16>());
    match (h, m) {
        (Ok(h), Ok(m)) if h < 24 && m < 60 => Ok(h * 60 + m),
        _ => Err(bad(field, "must be a time of day as HH:MM")),
    }
}

fn email_address(field: &str, s: &str) -> Result<String, ConsoleError> {
    s.parse::<lettre::Address>()
        .map(|a| a.to_string())
        .map_err(|_| bad(field, format!("{s:?} is not an email address")))
}

impl Channel {
    /// A channel from a client's object. Secrets not sent, or sent back as
    /// [`MASK`], keep `before`'s (an edit need not know them).
    pub fn parse(v: &Value, before: Option<&Channel>) -> Result<Channel, ConsoleError> {
        let i = Input::of(v)?;
        let kind = i.required("type", 20)?;
        let (fields, secrets) = fields_of(&kind);
        if fields.is_empty() {
            let known: Vec<&str> = TYPES.iter().map(|(t, _)| *t).collect();
            return Err(bad("type", format!("{kind:?} is not a channel type (known: {})", known.join(", "))));
        }
        let mut known = vec!["name", "enabled", "type", "quiet_from", "quiet_to", "utc_offset_min"];
        known.extend_from_slice(fields);
        i.only(&known)?;
        // Stored secrets are kept only for the same destination: a token must
        // never follow a channel that an edit points elsewhere.
        let same_kind = before.filter(|b| b.kind() == kind);
        let text = |v: Option<&Value>| v.map(|v| v.to_string().trim_matches('"').to_owned()).unwrap_or_default();
        let moved = same_kind.map(Channel::shown).is_some_and(|was| {
            fields
                .iter()
                .filter(|f| DESTINATION.contains(f) && !secrets.contains(f))
                .any(|f| normal(f, &text(was.get(*f))) != normal(f, &text(i.0.get(*f))))
        });
        let stored = same_kind.map(Channel::secrets).unwrap_or_default();
        let need_msg = if moved { "is required again: the destination changed" } else { "is required" };
        // A secret: what was sent, or (absent or the mask) what was stored for
        // this destination; one stored for another is asked for again, never
        // dropped silently (a webhook left unsigned).
        let secret = |f: &str, max: usize| -> Result<Option<String>, ConsoleError> {
            match i.text(f, max)? {
                Some(s) if s != MASK => Ok(Some(s)),
                _ => match stored.iter().find(|(k, _)| *k == f) {
                    Some(_) if moved => Err(bad(f, need_msg)),
                    Some((_, v)) => Ok(Some(v.clone())),
                    None => Ok(None),
                },
            }
        };
        let need = |f: &str, v: Option<String>| v.ok_or_else(|| bad(f, need_msg));
        let url_field = |f: &str, v: String| url(f, &v).map(|u| u.to_string());
        let target = match kind.as_str() {
            "webhook" => {
                let template = i.multiline("template", TEMPLATE_MAX)?;
                if let Some(t) = &template {
                    let filled = render_template(t, &Notice::sample("test"));
                    serde_json::from_str::<Value>(&filled)
                        .map_err(|e| bad("template", format!("does not make JSON once filled in: {e}")))?;
                }
                let secret = secret("secret", 200)?;
                if secret.as_ref().is_some_and(|s| s.len() < 16) {
                    return Err(bad("secret", "must be at least 16 characters"));
                }
                Target::Webhook { url: url_field("url", i.required("url", 500)?)?, secret, template }
            }
            "ntfy" => {
                let topic = i.required("topic", 64)?;
                if !topic.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    return Err(bad("topic", "is letters, digits, '_' and '-' only"));
                }
                Target::Ntfy { url: url_field("url", i.required("url", 500)?)?, topic, token: secret("token", 200)? }
            }
            "gotify" => Target::Gotify {
                url: url_field("url", i.required("url", 500)?)?,
                token: need("token", secret("token", 200)?)?,
            },
            "pushover" => Target::Pushover {
                token: need("token", secret("token", 100)?)?,
                user: need("user", secret("user", 100)?)?,
                url: i.text("url", 500)?.map(|u| url_field("url", u)).transpose()?,
            },
            "telegram" => {
                let chat_id = i.required("chat_id", 64)?;
                if !chat_id.chars().all(|c| c.is_ascii_alphanumeric() || "-_@".contains(c)) {
                    return Err(bad("chat_id", "is a chat id (digits, maybe '-') or @channel name"));
                }
                Target::Telegram {
                    token: need("token", secret("token", 200)?)?,
                    chat_id,
                    url: i.text("url", 500)?.map(|u| url_field("url", u)).transpose()?,
                }
            }
            "slack" | "discord" | "mattermost" | "teams" => {
                let u = url_field("url", need("url", secret("url", 500)?)?)?;
                match kind.as_str() {
                    "slack" => Target::Slack { url: u },
                    "discord" => Target::Discord { url: u },
                    "mattermost" => Target::Mattermost { url: u },
                    _ => Target::Teams { url: u },
                }
            }
            "matrix" => {
                let room = i.required("room", 255)?;
                if !room.starts_with('!') || !room.contains(':') {
                    return Err(bad("room", "is a room id, like !abc123:example.org"));
                }
                Target::Matrix {
                    url: url_field("url", i.required("url", 500)?)?,
                    room,
                    token: need("token", secret("token", 500)?)?,
                }
            }
            "email" => {
                let host = i.required("host", 253)?;
                if !host.chars().all(|c| c.is_ascii_alphanumeric() || ".-".contains(c)) {
                    return Err(bad("host", "is a host name or address (letters, digits, '.', '-')"));
                }
                let security = match i.text("security", 20)?.as_deref() {
                    None | Some("starttls") => Security::Starttls,
                    Some("tls") => Security::Tls,
                    Some("none") => Security::None,
                    Some(_) => return Err(bad("security", "must be starttls, tls or none")),
                };
                let default_port = match security {
                    Security::Tls => 465,
                    Security::Starttls => 587,
                    Security::None => 25,
                };
                let username = i.text("username", 200)?;
                let password = secret("password", 200)?;
                if security == Security::None && (username.is_some() || password.is_some()) {
                    return Err(bad("security", "a user name and password are only sent over TLS (starttls or tls)"));
                }
                let to = i.list("to", 20, 254)?;
                if to.is_empty() {
                    return Err(bad("to", "is required (one address or more, comma-separated)"));
                }
                Target::Email {
                    host,
                    port: i.number("port", 1, 65_535, default_port)? as u16,
                    security,
                    username,
                    password,
                    from: email_address("from", &i.required("from", 254)?)?,
                    to: to.iter().map(|a| email_address("to", a)).collect::<Result<_, _>>()?,
                }
            }
            _ => unreachable!("every type is matched above"),
        };
        let quiet = match (i.text("quiet_from", 5)?, i.text("quiet_to", 5)?) {
            (None, None) => None,
            (Some(f), Some(t)) => Some(Quiet {
                from_min: clock("quiet_from", &f)?,
                to_min: clock("quiet_to", &t)?,
                utc_offset_min: i.decimal("utc_offset_min", -840.0, 840.0, 0.0)?.round() as i16,
            }),
            (Some(_), None) => return Err(bad("quiet_to", "is required with quiet_from")),
            (None, Some(_)) => return Err(bad("quiet_from", "is required with quiet_to")),
        };
        if quiet.is_some_and(|q| q.from_min == q.to_min) {
            return Err(bad("quiet_to", "must differ from quiet_from"));
        }
        Ok(Channel { name: i.required("name", 80)?, enabled: i.flag("enabled", true)?, target, quiet })
    }

    pub fn kind(&self) -> &'static str {
        match &self.target {
            Target::Webhook { .. } => "webhook",
            Target::Ntfy { .. } => "ntfy",
            Target::Gotify { .. } => "gotify",
            Target::Pushover { .. } => "pushover",
            Target::Telegram { .. } => "telegram",
            Target::Slack { .. } => "slack",
            Target::Discord { .. } => "discord",
            Target::Mattermost { .. } => "mattermost",
            Target::Teams { .. } => "teams",
            Target::Matrix { .. } => "matrix",
            Target::Email { .. } => "email",
        }
    }

    /// Its secrets, by field.
    fn secrets(&self) -> Vec<(&'static str, String)> {
        let v = serde_json::to_value(self).unwrap_or(Value::Null);
        fields_of(self.kind())
            .1
            .iter()
            .filter_map(|f| v.get(*f).and_then(Value::as_str).map(|s| (*f, s.to_owned())))
            .collect()
    }

    /// What an admin is shown: every field as a client sends it, secrets as [`MASK`].
    pub fn shown(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(o) = v.as_object_mut() {
            for f in fields_of(self.kind()).1 {
                if o.get(*f).is_some_and(|s| !s.is_null()) {
                    o.insert((*f).into(), Value::String(MASK.into()));
                }
            }
            if let Some(q) = o.remove("quiet").and_then(|q| serde_json::from_value::<Quiet>(q).ok()) {
                let hhmm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
                o.insert("quiet_from".into(), hhmm(q.from_min).into());
                o.insert("quiet_to".into(), hhmm(q.to_min).into());
                o.insert("utc_offset_min".into(), q.utc_offset_min.into());
            }
            if let Some(to) = o.get("to").and_then(Value::as_array) {
                let joined = to.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ");
                o.insert("to".into(), joined.into());
            }
        }
        v
    }

    /// Where it sends, as every signed-in user and error messages may see
    /// it: the host only (an ntfy topic, a chat id, a path can be the very
    /// thing that grants access).
    pub fn destination(&self) -> String {
        let origin = |u: &str| {
            reqwest::Url::parse(u).ok().map(|u| u.origin().ascii_serialization()).unwrap_or_else(|| "?".into())
        };
        match &self.target {
            Target::Webhook { url, .. }
            | Target::Gotify { url, .. }
            | Target::Matrix { url, .. }
            | Target::Ntfy { url, .. }
            | Target::Slack { url }
            | Target::Discord { url }
            | Target::Mattermost { url }
            | Target::Teams { url } => origin(url),
            Target::Pushover { url, .. } => url.as_deref().map_or("https://api.pushover.net".into(), origin),
            Target::Telegram { url, .. } => url.as_deref().map_or("https://api.telegram.org".into(), origin),
            Target::Email { host, port, .. } => format!("smtp://{host}:{port}"),
        }
    }

    /// The request that delivers `n` (`None` for email). `now_s` signs a webhook.
    pub fn request(&self, n: &Notice, now_s: i64) -> Option<Outgoing> {
        let headline = n.headline();
        let text = n.text();
        let both = format!("{headline}\n{text}");
        Some(match &self.target {
            Target::Webhook { url, secret, template } => {
                let body = match template {
                    Some(t) => render_template(t, n),
                    None => n.json().to_string(),
                };
                let mut out = Outgoing {
                    method: "POST",
                    url: url.clone(),
                    headers: vec![("content-type", "application/json".into())],
                    body: body.into_bytes(),
                };
                if let Some(s) = secret {
                    out.headers.push(("x-dockward-timestamp", now_s.to_string()));
                    out.headers.push(("x-dockward-signature", format!("sha256={}", sign(s, now_s, &out.body))));
                }
                out
            }
            Target::Ntfy { url, topic, token } => {
                let mut out = Outgoing::json(
                    "POST",
                    url.trim_end_matches('/').to_owned() + "/",
                    &json!({
                        "topic": topic, "title": headline, "message": text,
                        "priority": if n.event == "firing" { 4 } else { 3 },
                        "tags": [if n.event == "resolved" { "white_check_mark" } else { "rotating_light" }],
                    }),
                );
                if let Some(t) = token {
                    out.headers.push(("authorization", format!("Bearer {t}")));
                }
                out
            }
            Target::Gotify { url, token } => {
                let mut out = Outgoing::json(
                    "POST",
                    join(url, "message"),
                    &json!({"title": headline, "message": text, "priority": if n.event == "firing" { 8 } else { 4 }}),
                );
                out.headers.push(("x-gotify-key", token.clone()));
                out
            }
            Target::Pushover { token, user, url } => Outgoing::json(
                "POST",
                join(url.as_deref().unwrap_or("https://api.pushover.net"), "1/messages.json"),
                &json!({"token": token, "user": user, "title": headline, "message": text}),
            ),
            Target::Telegram { token, chat_id, url } => Outgoing::json(
                "POST",
                join(url.as_deref().unwrap_or("https://api.telegram.org"), &format!("bot{token}/sendMessage")),
                &json!({"chat_id": chat_id, "text": both, "disable_web_page_preview": true}),
            ),
            Target::Slack { url } | Target::Mattermost { url } => {
                Outgoing::json("POST", url.clone(), &json!({"text": both}))
            }
            Target::Discord { url } => {
                let mut content = both;
                content.truncate(content.char_indices().nth(1900).map_or(content.len(), |(i, _)| i));
                Outgoing::json("POST", url.clone(), &json!({"content": content, "allowed_mentions": {"parse": []}}))
            }
            Target::Teams { url } => Outgoing::json(
                "POST",
                url.clone(),
                &json!({
                    "type": "message",
                    "attachments": [{
                        "contentType": "application/vnd.microsoft.card.adaptive",
                        "content": {
                            "type": "AdaptiveCard", "version": "1.4",
                            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                            "body": [
                                {"type": "TextBlock", "text": headline, "weight": "Bolder", "wrap": true},
                                {"type": "TextBlock", "text": text, "wrap": true},
                            ],
                        },
                    }],
                }),
            ),
            Target::Matrix { url, room, token } => {
                let mut out = Outgoing::json(
                    "PUT",
                    join(
                        url,
                        &format!(
                            "_matrix/client/v3/rooms/{}/send/m.room.message/dockward-{}-{}-{}",
                            crate::model::url_encode(room),
                            n.incident,
                            n.id,
                            // Unique across store resets and tests (Matrix drops a reused transaction id).
                            n.sent_at,
                        ),
                    ),
                    &json!({"msgtype": "m.text", "body": both}),
                );
                out.headers.push(("authorization", format!("Bearer {token}")));
                out
            }
            Target::Email { .. } => return None,
        })
    }
}

/// `hex(HMAC-SHA256(secret, "<timestamp>.<body>"))`: what a receiver
/// recomputes to check that a webhook came from this console, unchanged.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return String::new() };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Channel {
        Channel::parse(&v, None).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    #[test]
    fn every_type_makes_its_services_request() {
        let n = Notice { sent_at: 7, ..Notice::sample("firing") };
        let cases = [
            (
                json!({"name": "n", "type": "ntfy", "url": "https://ntfy.sh", "topic": "ops", "token": "tk_1"}),
                "POST",
                "https://ntfy.sh/",
                "\"topic\":\"ops\"",
            ),
            (
                json!({"name": "g", "type": "gotify", "url": "https://push.example/", "token": "Axyz"}),
                "POST",
                "https://push.example/message",
                "\"priority\":8",
            ),
            (
                json!({"name": "p", "type": "pushover", "token": "apptoken", "user": "userkey"}),
                "POST",
                "https://api.pushover.net/1/messages.json",
                "\"user\":\"userkey\"",
            ),
            (
                json!({"name": "t", "type": "telegram", "token": "123:abc", "chat_id": "-100200"}),
                "POST",
                "https://api.telegram.org/bot123:abc/sendMessage",
                "\"chat_id\":\"-100200\"",
            ),
            (
                json!({"name": "s", "type": "slack", "url": "https://hooks.slack.com/services/T/B/x"}),
                "POST",
                "https://hooks.slack.com/services/T/B/x",
                "\"text\":\"[dockward] FIRING",
            ),
            (
                json!({"name": "d", "type": "discord", "url": "https://discord.com/api/webhooks/1/x"}),
                "POST",
                "https://discord.com/api/webhooks/1/x",
                "\"allowed_mentions\"",
            ),
            (
                json!({"name": "m", "type": "mattermost", "url": "https://mm.example/hooks/x"}),
                "POST",
                "https://mm.example/hooks/x",
                "\"text\"",
            ),
            (
                json!({"name": "ms", "type": "teams", "url": "https://example.webhook.office.com/x"}),
                "POST",
                "https://example.webhook.office.com/x",
                "AdaptiveCard",
            ),
            (
                json!({"name": "mx", "type": "matrix", "url": "https://matrix.example", "room": "!r:example", "token": "syt_x"}),
                "PUT",
                "https://matrix.example/_matrix/client/v3/rooms/%21r%3Aexample/send/m.room.message/dockward-0-0-7",
                "m.text",
            ),
        ];
        for (input, method, url, body) in cases {
            let c = parse(input.clone());
            let out = c.request(&n, 0).expect("a request");
            assert_eq!((out.method, out.url.as_str()), (method, url), "{input}");
            let text = String::from_utf8(out.body).expect("utf-8");
            assert!(text.contains(body), "{input}: {text}");
            serde_json::from_str::<Value>(&text).expect("a JSON body");
            // Shown back, no secret is in it.
            let shown = c.shown().to_string();
            for (_, s) in c.secrets() {
                assert!(!shown.contains(&s), "{shown} shows {s}");
            }
        }
    }

    #[test]
    fn a_webhook_is_signed_and_templated() {
        let c = parse(
            json!({"name": "w", "type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "0123456789abcdef",
            "template": "{\"text\": \"{{title}} on {{host}}\", \"n\": {{incident}}}"}),
        );
        let mut n = Notice::sample("firing");
        n.finding.title = "a \"quoted\" title".into();
        let out = c.request(&n, 1_700_000_000).expect("a request");
        let body: Value = serde_json::from_slice(&out.body).expect("JSON");
        assert_eq!(body["text"], "a \"quoted\" title on console");
        let sig = out.headers.iter().find(|(k, _)| *k == "x-dockward-signature").expect("signed").1.clone();
        assert_eq!(sig, format!("sha256={}", sign("0123456789abcdef", 1_700_000_000, &out.body)));
    }

    #[test]
    fn secrets_are_kept_across_an_edit_that_does_not_send_them() {
        let c = parse(json!({"name": "g", "type": "gotify", "url": "https://push.example", "token": "secret-token"}));
        let edited = Channel::parse(&c.shown(), Some(&c)).expect("an edit");
        assert_eq!(edited, c);
        let mut renamed = c.shown();
        renamed["name"] = "g2".into();
        renamed.as_object_mut().expect("object").remove("token");
        assert_eq!(Channel::parse(&renamed, Some(&c)).expect("an edit").target, c.target);
    }

    #[test]
    fn a_secret_does_not_follow_a_channel_pointed_elsewhere() {
        let c = parse(json!({"name": "g", "type": "gotify", "url": "https://push.example", "token": "secret-token"}));
        let mut moved = c.shown();
        moved["url"] = "https://elsewhere.example".into();
        let e = Channel::parse(&moved, Some(&c)).expect_err("the token must be given again");
        assert_eq!(super::super::input::refused_field(e), "token");
        moved["token"] = "another-token".into();
        assert!(Channel::parse(&moved, Some(&c)).is_ok());
        let mail =
            parse(json!({"name": "m", "type": "email", "host": "smtp.example", "username": "u", "password": "pw",
            "from": "a@example.org", "to": "b@example.org"}));
        let mut moved = mail.shown();
        moved["host"] = "smtp.evil.example".into();
        let e = Channel::parse(&moved, Some(&mail)).expect_err("the password stays behind");
        assert_eq!(super::super::input::refused_field(e), "password");
        // Only where it sends is shown to everyone: no topic, chat or recipients.
        let n = parse(json!({"name": "n", "type": "ntfy", "url": "https://ntfy.sh", "topic": "secret-topic"}));
        assert_eq!(n.destination(), "https://ntfy.sh");
        assert_eq!(mail.destination(), "smtp://smtp.example:587");
    }

    #[test]
    fn refusals_name_their_field() {
        let cases = [
            (json!({"name": "x", "type": "carrier-pigeon"}), "type"),
            (json!({"name": "x", "type": "webhook", "url": "ftp://example.org"}), "url"),
            (json!({"name": "x", "type": "webhook", "url": "not a url"}), "url"),
            (json!({"name": "x", "type": "webhook", "url": "https://u:p@example.org"}), "url"),
            (json!({"name": "x", "type": "webhook", "url": "https://example.org", "secret": "short"}), "secret"),
            (
                json!({"name": "x", "type": "webhook", "url": "https://example.org", "template": "{\"a\": {{title}}}"}),
                "template",
            ),
            (json!({"name": "x", "type": "gotify", "url": "https://example.org"}), "token"),
            (
                json!({"name": "x", "type": "email", "host": "smtp.example", "from": "not-an-address", "to": "a@example.org"}),
                "from",
            ),
            (json!({"name": "x", "type": "email", "host": "smtp.example", "from": "a@example.org", "to": "bad"}), "to"),
            (
                json!({"name": "x", "type": "email", "host": "smtp.example", "from": "a@example.org", "to": "b@example.org", "port": 70000}),
                "port",
            ),
            (
                json!({"name": "x", "type": "email", "host": "smtp.example", "security": "none", "password": "pw", "from": "a@example.org", "to": "b@example.org"}),
                "security",
            ),
            (
                json!({"name": "x", "type": "matrix", "url": "https://m.example", "room": "general", "token": "t"}),
                "room",
            ),
            (
                json!({"name": "x", "type": "slack", "url": "https://hooks.slack.com/x", "quiet_from": "25:00", "quiet_to": "07:00"}),
                "quiet_from",
            ),
            (json!({"name": "x", "type": "slack", "url": "https://hooks.slack.com/x", "topic": "t"}), "topic"),
        ];
        for (input, want) in cases {
            assert_eq!(
                super::super::input::refused_field(Channel::parse(&input, None).expect_err(&input.to_string())),
                want,
                "{input}"
            );
        }
    }

    #[test]
    fn quiet_hours_wrap_midnight_and_end_on_time() {
        let q = Quiet { from_min: 22 * 60, to_min: 7 * 60, utc_offset_min: 60 };
        let at = |h: i64, m: i64| (h * 60 + m) * 60_000; // UTC on 1970-01-01
        assert_eq!(q.until(at(21, 30)), Some(at(6, 0) + 86_400_000)); // 22:30 local
        assert_eq!(q.until(at(3, 0)), Some(at(6, 0))); // 04:00 local
        assert_eq!(q.until(at(12, 0)), None);
    }
}
