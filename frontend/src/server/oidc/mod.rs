//! Sign-in with an OpenID provider (authorization code with PKCE): Authentik,
//! Keycloak, Authelia, Zitadel, Google… `GET /auth/oidc/start` sends the
//! browser to the provider with a fresh `state`, `nonce` and PKCE challenge
//! (kept in a sealed, short-lived, `SameSite=Lax` cookie, so any replica
//! finishes the flow); `GET /auth/oidc/callback` takes the code back,
//! redeems it at the token endpoint (client secret, the PKCE verifier),
//! checks the ID token (`token.rs`), reads the user name and groups from
//! configurable claims (the userinfo endpoint when the ID token lacks
//! them), maps groups to grants, and signs the user in: a user of the users
//! file bound to that issuer and subject, made at the first sign-in when
//! allowed. Every sign-in and refusal is audited; a refusal says why on a
//! page and makes nothing. Discovery is lazy and retried: the console
//! starts while the provider is down.

pub mod token;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::access::Grant;
use super::auth::cookie_value;
use super::hosts_page::html_page;
use super::password::escape;
use super::Core;

/// The cookie that carries a sign-in's state to the callback.
const COOKIE: &str = "dockward_oidc";
/// How long a sign-in at the provider may take.
const FLOW_S: u64 = 600;
/// Discovery and keys are read again after this long.
const METADATA_FRESH: Duration = Duration::from_secs(3600);
/// An unknown key id refetches the keys at most this often.
const KEYS_REFETCH: Duration = Duration::from_secs(60);
/// Largest answer read from the provider.
const ANSWER_MAX: usize = 1024 * 1024;

/// The settings (`DOCKWARD_OIDC_*`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// `<DOCKWARD_PUBLIC_URL>/auth/oidc/callback`.
    pub redirect_uri: String,
    pub scopes: String,
    pub username_claim: String,
    pub groups_claim: String,
    /// Group → grant (`group=role` on the fleet, or `group=role@scope`).
    pub group_grants: Vec<(String, Grant)>,
    pub create_users: bool,
    /// What the login page's button says.
    pub label: String,
}

/// Why a setting was refused at start.
pub fn parse_group_grants(spec: &str) -> Result<Vec<(String, Grant)>, String> {
    let mut out = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (group, grant) =
            item.split_once('=').ok_or_else(|| format!("{item:?}: use group=role or group=role@scope"))?;
        let (role, on) = grant.split_once('@').unwrap_or((grant, "fleet"));
        let g = Grant::parse(role.trim(), on.trim()).map_err(|e| format!("{item:?}: {e}"))?;
        if group.trim().is_empty() || group.len() > 256 {
            return Err(format!("{item:?}: a group name is 1–256 characters"));
        }
        out.push((group.trim().to_owned(), g));
    }
    Ok(out)
}

/// The provider's endpoints, from its discovery document.
#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
}

#[derive(Default)]
struct Cache {
    meta: Option<(Metadata, Instant)>,
    keys: Option<(token::Jwks, Instant)>,
}

pub struct Oidc {
    pub settings: Settings,
    http: reqwest::Client,
    cache: tokio::sync::Mutex<Cache>,
}

/// Why a sign-in with the provider failed: said on the page, audited.
#[derive(Debug, thiserror::Error)]
pub enum Failed {
    #[error("the identity provider cannot be reached or answered nonsense: {0}")]
    Provider(String),
    #[error("the identity provider refused: {0}")]
    Refused(String),
    #[error("this sign-in is not the one this browser started (or took longer than 10 minutes): start again")]
    State,
    #[error("{0}")]
    Token(#[from] token::Refused),
    #[error("the identity provider gave no {0:?} claim")]
    Claim(String),
    #[error("{0}")]
    User(#[from] super::users::UserError),
}

fn random(n: usize) -> Result<String, Failed> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| Failed::Provider(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

fn now_s() -> u64 {
    super::store::now_s()
}

/// The form encoding of one value (RFC 6749 §2.3.1 asks it of the client credentials too).
fn form(v: &str) -> String {
    super::super::model::url_encode(v)
}

impl Oidc {
    pub fn new(settings: Settings) -> Result<Self, String> {
        let url = reqwest::Url::parse(&settings.issuer).map_err(|e| format!("DOCKWARD_OIDC_ISSUER: {e}"))?;
        let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        let issuer_ok = url.username().is_empty()
            && url.password().is_none()
            && (url.scheme() == "https" || (url.scheme() == "http" && loopback));
        if !issuer_ok {
            return Err("DOCKWARD_OIDC_ISSUER must be an https:// URL (http:// only on this machine's loopback)".into());
        }
        if settings.client_id.is_empty() || settings.client_secret.is_empty() {
            return Err(
                "OIDC needs DOCKWARD_OIDC_CLIENT_ID and a client secret (DOCKWARD_OIDC_CLIENT_SECRET_FILE)".into()
            );
        }
        if settings.group_grants.is_empty() {
            return Err("OIDC needs DOCKWARD_OIDC_GROUP_ROLES: which groups get which role".into());
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Oidc { settings, http, cache: Default::default() })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T, Failed> {
        let r = req.send().await.map_err(|e| Failed::Provider(e.without_url().to_string()))?;
        let status = r.status();
        let body = r.bytes().await.map_err(|e| Failed::Provider(e.without_url().to_string()))?;
        if body.len() > ANSWER_MAX {
            return Err(Failed::Provider("its answer is too large".into()));
        }
        if !status.is_success() {
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            let said = v["error"].as_str().unwrap_or("").chars().take(64).collect::<String>();
            return Err(Failed::Refused(format!("HTTP {status} {said}")));
        }
        serde_json::from_slice(&body).map_err(|e| Failed::Provider(format!("unreadable answer: {e}")))
    }

    async fn metadata(&self) -> Result<Metadata, Failed> {
        let mut c = self.cache.lock().await;
        if let Some((m, at)) = &c.meta {
            if at.elapsed() < METADATA_FRESH {
                return Ok(m.clone());
            }
        }
        let url = format!("{}/.well-known/openid-configuration", self.settings.issuer.trim_end_matches('/'));
        let m: Metadata = self.get_json(self.http.get(url)).await?;
        if m.issuer != self.settings.issuer {
            return Err(Failed::Provider(format!("its discovery names issuer {:?}, not the configured one", m.issuer)));
        }
        if m.code_challenge_methods_supported.as_ref().is_some_and(|v| !v.iter().any(|x| x == "S256")) {
            return Err(Failed::Provider("it does not support PKCE with S256".into()));
        }
        c.meta = Some((m.clone(), Instant::now()));
        Ok(m)
    }

    async fn keys(&self, m: &Metadata, want: Option<&str>) -> Result<token::Jwks, Failed> {
        let mut c = self.cache.lock().await;
        let known = |k: &token::Jwks| want.is_none_or(|w| k.keys.iter().any(|j| j.kid.as_deref() == Some(w)));
        if let Some((k, at)) = &c.keys {
            if (known(k) && at.elapsed() < METADATA_FRESH) || at.elapsed() < KEYS_REFETCH {
                return Ok(k.clone());
            }
        }
        let k: token::Jwks = self.get_json(self.http.get(&m.jwks_uri)).await?;
        c.keys = Some((k.clone(), Instant::now()));
        Ok(k)
    }

    /// Where to send the browser, and the sealed state for its cookie.
    async fn start(&self, core: &Core) -> Result<(String, String), Failed> {
        let m = self.metadata().await?;
        let (state, nonce, verifier) = (random(32)?, random(32)?, random(32)?);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let s = &self.settings;
        let sep = if m.authorization_endpoint.contains('?') { '&' } else { '?' };
        let url = format!(
            "{}{sep}response_type=code&client_id={}&redirect_uri={}&scope={}&state={state}&nonce={nonce}&code_challenge={challenge}&code_challenge_method=S256",
            m.authorization_endpoint,
            form(&s.client_id),
            form(&s.redirect_uri),
            form(&s.scopes),
        );
        let sealed = core.sessions.seal_note("oidc", &format!("{state}|{nonce}|{verifier}"), FLOW_S);
        Ok((url, sealed))
    }

    /// Finishes a sign-in: the user name and the grants their groups give.
    async fn finish(&self, sealed: &str, core: &Core, q: &Callback) -> Result<(String, String, Vec<Grant>), Failed> {
        let s = &self.settings;
        let payload = core.sessions.open_note("oidc", sealed).ok_or(Failed::State)?;
        let mut parts = payload.splitn(3, '|');
        let (Some(state), Some(nonce), Some(verifier)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Failed::State);
        };
        let given = q.state.as_deref().unwrap_or("");
        if !bool::from(given.as_bytes().ct_eq(state.as_bytes())) {
            return Err(Failed::State);
        }
        if let Some(err) = &q.error {
            let words = q.error_description.as_deref().unwrap_or("");
            return Err(Failed::Refused(format!(
                "{} {}",
                err.chars().take(64).collect::<String>(),
                words.chars().take(200).collect::<String>()
            )));
        }
        // RFC 9207: a provider that names itself must be ours.
        if q.iss.as_deref().is_some_and(|iss| iss != s.issuer) {
            return Err(Failed::Token(token::Refused::Issuer(q.iss.clone().unwrap_or_default())));
        }
        let code = q.code.as_deref().filter(|c| !c.is_empty() && c.len() <= 2048).ok_or(Failed::State)?;
        let m = self.metadata().await?;
        let body = format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
            form(code),
            form(&s.redirect_uri),
            form(verifier)
        );
        let req = self
            .http
            .post(&m.token_endpoint)
            .basic_auth(form(&s.client_id), Some(form(&s.client_secret)))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(body);
        let answer: Value = self.get_json(req).await?;
        let id_token =
            answer["id_token"].as_str().ok_or_else(|| Failed::Refused("no ID token in its answer".into()))?;
        let keys = self.keys(&m, token::kid(id_token).as_deref()).await?;
        let expect = token::Expect { issuer: &s.issuer, client_id: &s.client_id, nonce, now_s: now_s() };
        let mut claims = token::verify(id_token, &keys, &expect)?;
        let sub = claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_owned();
        let lacks = |c: &Map<String, Value>| {
            token::claim(c, &s.username_claim).is_none() || token::claim(c, &s.groups_claim).is_none()
        };
        if lacks(&claims) {
            if let (Some(url), Some(access)) = (&m.userinfo_endpoint, answer["access_token"].as_str()) {
                let more: Map<String, Value> = self.get_json(self.http.get(url).bearer_auth(access)).await?;
                // The same person, or nothing of it.
                if more.get("sub").and_then(Value::as_str) == Some(sub.as_str()) {
                    for (k, v) in more {
                        claims.entry(k).or_insert(v);
                    }
                }
            }
        }
        let name = token::claim(&claims, &s.username_claim)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Failed::Claim(s.username_claim.clone()))?;
        let groups: Vec<String> = match token::claim(&claims, &s.groups_claim) {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            Some(Value::String(g)) => vec![g.clone()],
            _ => return Err(Failed::Claim(s.groups_claim.clone())),
        };
        let grants: Vec<Grant> = s
            .group_grants
            .iter()
            .filter(|(g, _)| groups.iter().any(|x| x == g))
            .map(|(_, grant)| grant.clone())
            .collect();
        let binding = hex::encode(Sha256::digest(format!("{}|{sub}", s.issuer).as_bytes()));
        Ok((name, binding, grants))
    }
}

fn lax_cookie(core: &Core, value: &str, max_age: u64) -> String {
    let (name, secure) =
        if core.secure_cookies { (format!("__Host-{COOKIE}"), "; Secure") } else { (COOKIE.to_owned(), "") };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

fn refused_page(why: &str) -> Response {
    let body = format!(
        r#"<p class="error" role="alert" id="sign-in-refused">{}</p><p><a class="btn" href="/login">Back to sign-in</a></p>"#,
        escape(why)
    );
    html_page("Sign-in refused", StatusCode::FORBIDDEN, body, false)
}

/// GET /auth/oidc/start: off to the provider.
pub async fn start(State(core): State<Arc<Core>>) -> Response {
    let Some(oidc) = core.oidc.as_ref() else { return refused_page("Single sign-on is not set up on this console.") };
    match oidc.start(&core).await {
        Ok((url, sealed)) => {
            let mut r = Redirect::to(&url).into_response();
            if let Ok(v) = HeaderValue::from_str(&lax_cookie(&core, &sealed, FLOW_S)) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => {
            tracing::warn!(error = %e, "oidc: could not start a sign-in");
            refused_page(&e.to_string())
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// GET /auth/oidc/callback: back from the provider.
pub async fn callback(State(core): State<Arc<Core>>, headers: HeaderMap, Query(q): Query<Callback>) -> Response {
    let Some(oidc) = core.oidc.as_ref() else { return refused_page("Single sign-on is not set up on this console.") };
    let name = if core.secure_cookies { format!("__Host-{COOKIE}") } else { COOKIE.to_owned() };
    let sealed = cookie_value(&headers, &name).unwrap_or_default();
    let outcome = async {
        let (user, binding, grants) = oidc.finish(&sealed, &core, &q).await?;
        let users = core.users.clone();
        let create = oidc.settings.create_users;
        let (u2, g2) = (user.clone(), grants.clone());
        let view = tokio::task::spawn_blocking(move || users.sign_in_external(&u2, &binding, g2, create))
            .await
            .map_err(|e| Failed::Provider(e.to_string()))??;
        Ok::<_, Failed>((user, view, grants))
    }
    .await;
    let mut resp = match outcome {
        Ok((user, view, grants)) => {
            let given = grants.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            tracing::info!(user = %user, access = %view.access.describe(), "signed in with the identity provider");
            core.audit_event(
                "auth.login",
                &user,
                &format!("signed in with the identity provider; groups gave: {given}"),
            );
            // A 200 that moves on, not a redirect: the session cookie is
            // SameSite=Strict, and a redirect chain begun at the provider
            // would not carry it to the next page.
            let body =
                r#"<meta http-equiv="refresh" content="0;url=/"><p role="status">Signed in. <a href="/">Go on</a></p>"#;
            let mut r = html_page("Signed in", StatusCode::OK, body.to_owned(), false);
            r.headers_mut().insert(header::REFRESH, HeaderValue::from_static("0;url=/"));
            super::auth::start_session(&core, &mut r, &user, &view.stamp);
            r
        }
        Err(e) => {
            tracing::warn!(error = %e, "oidc: a sign-in was refused");
            core.audit_event("auth.login.failed", "-", &format!("identity provider: {e}"));
            refused_page(&e.to_string())
        }
    };
    if let Ok(v) = HeaderValue::from_str(&lax_cookie(&core, "", 0)) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// The login page when single sign-on is on (or passwords are off): plain
/// HTML, the provider's button, and the password form if passwords are on.
pub async fn login_page(
    State(core): State<Arc<Core>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let error = match q.get("error").map(String::as_str) {
        Some("throttled") => "Too many failed attempts; wait a little and try again.",
        Some("expired") => "That sign-in took too long or its password changed: sign in again.",
        Some("off") => "Passwords are off on this console: sign in with the identity provider.",
        Some(_) => "Wrong user name or password.",
        None => "",
    };
    let mut body = String::new();
    if !error.is_empty() {
        body.push_str(&format!(r#"<p class="error" role="alert">{error}</p>"#));
    }
    if let Some(o) = &core.oidc {
        body.push_str(&format!(
            r#"<p><a class="btn" id="sso-login" href="/auth/oidc/start">Sign in with {}</a></p>"#,
            escape(&o.settings.label)
        ));
    }
    if core.local_login {
        body.push_str(
            r#"<form method="post" action="/auth/login" class="login-form"><label>User <input type="text" name="username" autocomplete="username" required></label><label>Password <input type="password" name="password" autocomplete="current-password" required></label><button class="btn" type="submit" id="login">Log in</button></form>"#,
        );
    }
    html_page("Log in", StatusCode::OK, body, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_roles_are_read_strictly() {
        let g = parse_group_grants("admins=admin, shop-team=operator@app:shop").unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!((g[1].0.as_str(), g[1].1.to_string()), ("shop-team", "operator on app:shop".to_owned()));
        for bad in ["admins", "admins=king", "=admin", "ops=operator@label:x"] {
            assert!(parse_group_grants(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_issuer_must_be_https_but_on_loopback() {
        let s = |issuer: &str| Settings {
            issuer: issuer.into(),
            client_id: "c".into(),
            client_secret: "s".into(),
            redirect_uri: "http://127.0.0.1/auth/oidc/callback".into(),
            scopes: "openid".into(),
            username_claim: "preferred_username".into(),
            groups_claim: "groups".into(),
            group_grants: parse_group_grants("a=admin").unwrap(),
            create_users: true,
            label: "x".into(),
        };
        assert!(Oidc::new(s("https://idp.example")).is_ok());
        assert!(Oidc::new(s("http://localhost:9400")).is_ok());
        assert!(Oidc::new(s("http://idp.example")).is_err());
        assert!(Oidc::new(s("http://localhost.evil.example")).is_err());
        assert!(Oidc::new(s("http://127.0.0.1:80@idp.example")).is_err(), "credentials, and not the loopback");
    }
}
