//! Start-up and the plain axum routes beside the Leptos pages: login/logout,
//! the live stream to browsers, log follow/download, audit export, metrics, the icon.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Extension, Router};
use futures_util::StreamExt;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use serde::Deserialize;
use shared::{AuditPage, Call, ContainerRef, LogsPage, Verb};
use tower_http::set_header::SetResponseHeaderLayer;

use super::auth::{self, CurrentUser};
use super::config::ServeArgs;
use super::fleet::FleetHub;
use super::forward::{self, ForwardAuth};
use super::history::Recorder;
use super::metrics::{MetricsToken, Stream};
use super::store::{Location, Store};
use super::users::{self, UserStore};
use super::{password, sidecar, Core, Options};
use crate::app::{shell, App};
use crate::error::ConsoleError;
use crate::model::Scope;
use crate::types::Role;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Users(#[from] users::UserError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("cannot write the first admin's password to {path}: {source}")]
    FirstPassword { path: String, source: std::io::Error },
}

/// The forward-auth secret: from its file, else from `DOCKWARD_FORWARD_AUTH_SECRET`.
fn forward_auth_secret(args: &ServeArgs) -> Result<Option<String>, StartError> {
    if let Some(path) = &args.forward_auth_secret_file {
        let s = std::fs::read_to_string(path).map_err(|e| {
            StartError::Config(format!("DOCKWARD_FORWARD_AUTH_SECRET_FILE: cannot read {}: {e}", path.display()))
        })?;
        return Ok(Some(s));
    }
    match std::env::var("DOCKWARD_FORWARD_AUTH_SECRET") {
        Ok(s) if !s.is_empty() => {
            tracing::warn!(
                "the forward-auth secret comes from the environment; prefer DOCKWARD_FORWARD_AUTH_SECRET_FILE"
            );
            Ok(Some(s))
        }
        _ => Ok(None),
    }
}

/// Sign-in with an OpenID provider, when `DOCKWARD_OIDC_ISSUER` is set.
fn oidc(args: &ServeArgs, public_url: Option<&str>) -> Result<Option<super::oidc::Oidc>, StartError> {
    let Some(issuer) = args.oidc_issuer.as_deref().map(str::trim).filter(|i| !i.is_empty()) else { return Ok(None) };
    let bad = |m: String| StartError::Config(format!("OIDC: {m}"));
    let secret = match &args.oidc_client_secret_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| bad(format!("DOCKWARD_OIDC_CLIENT_SECRET_FILE: cannot read {}: {e}", path.display())))?,
        None => std::env::var("DOCKWARD_OIDC_CLIENT_SECRET").unwrap_or_default(),
    };
    let public_url = public_url.ok_or_else(|| {
        bad("DOCKWARD_PUBLIC_URL must say where browsers reach the console (the provider sends them back there)".into())
    })?;
    let settings = super::oidc::Settings {
        issuer: issuer.to_owned(),
        client_id: args.oidc_client_id.trim().to_owned(),
        client_secret: secret.trim().to_owned(),
        redirect_uri: format!("{}/auth/oidc/callback", public_url.trim_end_matches('/')),
        scopes: args.oidc_scopes.clone(),
        username_claim: args.oidc_username_claim.clone(),
        groups_claim: args.oidc_groups_claim.clone(),
        group_grants: super::oidc::parse_group_grants(&args.oidc_group_roles)
            .map_err(|e| bad(format!("DOCKWARD_OIDC_GROUP_ROLES: {e}")))?,
        create_users: args.oidc_create_users,
        label: args.oidc_label.clone(),
    };
    super::oidc::Oidc::new(settings).map(Some).map_err(bad)
}

/// The metrics token: from its file, else from `DOCKWARD_WEB_METRICS_TOKEN`.
fn metrics_token(args: &ServeArgs) -> Result<Option<MetricsToken>, StartError> {
    if let Some(path) = &args.metrics_token_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            StartError::Config(format!("DOCKWARD_WEB_METRICS_TOKEN_FILE: cannot read {}: {e}", path.display()))
        })?;
        return MetricsToken::new(&text)
            .map(Some)
            .map_err(|e| StartError::Config(format!("DOCKWARD_WEB_METRICS_TOKEN_FILE {}: {e}", path.display())));
    }
    match std::env::var("DOCKWARD_WEB_METRICS_TOKEN") {
        Ok(s) if !s.is_empty() => {
            tracing::warn!("the metrics token comes from the environment; prefer DOCKWARD_WEB_METRICS_TOKEN_FILE");
            MetricsToken::new(&s).map(Some).map_err(|e| StartError::Config(format!("DOCKWARD_WEB_METRICS_TOKEN: {e}")))
        }
        _ => Ok(None),
    }
}

/// Sessions sealed with the session key (from its file, made when missing,
/// beside the users file unless named); logouts recorded in the store.
fn sessions(args: &ServeArgs, store: Option<Store>) -> Result<super::session::Sessions, StartError> {
    let key_file = args.session_key_file.clone().unwrap_or_else(|| beside(args, "session.key"));
    let key = super::session::Sessions::load_or_create_key(&key_file).map_err(|e| StartError::Config(e.to_string()))?;
    Ok(super::session::Sessions::new(
        key,
        Duration::from_secs(args.session_hours.clamp(1, 24 * 30) * 3600),
        Duration::from_secs(args.session_idle_minutes.clamp(1, 24 * 60) * 60),
        store,
    ))
}

fn beside(args: &ServeArgs, name: &str) -> std::path::PathBuf {
    args.users_file.parent().unwrap_or(std::path::Path::new(".")).join(name)
}

/// The store: `DOCKWARD_STORE` (or the URL in `DOCKWARD_STORE_FILE`), else
/// `dockward.db` beside the users file. One that cannot be opened at all
/// stops the start with the reason; a damaged file is moved aside and made
/// again, an unwritable one opened read-only (the store says so).
async fn store(args: &ServeArgs) -> Result<Store, StartError> {
    let spec = match (&args.store_file, &args.store) {
        (Some(path), _) => std::fs::read_to_string(path)
            .map_err(|e| StartError::Config(format!("DOCKWARD_STORE_FILE: cannot read {}: {e}", path.display())))?
            .trim()
            .to_owned(),
        (None, Some(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        _ => beside(args, "dockward.db").display().to_string(),
    };
    let location = Location::parse(&spec).map_err(StartError::Config)?;
    let store = Store::open(&location).await.map_err(|e| StartError::Config(e.to_string()))?;
    let h = store.health();
    tracing::info!(backend = h.backend, read_only = h.read_only, "store open");
    Ok(store)
}

/// Where hosts come from: `DOCKWARD_HOSTS`, the enrolment registry, and
/// DNS discovery (`DOCKWARD_DISCOVER`).
struct HostSources {
    args: ServeArgs,
    enrolment: super::enrol::Enrolment,
    discover: Option<super::discover::Discover>,
    links: sidecar::Links,
}

impl HostSources {
    /// Every host: configured, enrolled, then `discovered` (`(name, url)`;
    /// one whose name is taken already is left out).
    fn hosts(&self, discovered: &[(String, String)]) -> Result<Vec<sidecar::Sidecar>, String> {
        let (args, links) = (&self.args, &self.links);
        let mut hosts = sidecar::parse_hosts(&args.hosts, &args.host_secrets_dir, links)?;
        for h in self.enrolment.hosts().map_err(|e| e.to_string())? {
            if hosts.iter().any(|s| s.name == h.name) {
                return Err(format!("host {} is both in DOCKWARD_HOSTS and enrolled: remove one", h.name));
            }
            hosts.push(sidecar::host(&h.name, &h.url, self.enrolment.dir(), links)?);
        }
        if let Some(d) = &self.discover {
            for (name, url) in discovered {
                if hosts.iter().any(|s| s.name == *name) {
                    tracing::warn!(host = %name, %url, "discovered a host whose name is taken; left out");
                    continue;
                }
                hosts.push(d.sidecar(name, url, &args.host_secrets_dir, links)?);
            }
        }
        Ok(hosts)
    }

    /// The discovered hosts now (none without `DOCKWARD_DISCOVER`).
    async fn discovered(&self, known: &[(String, String)]) -> Vec<(String, String)> {
        match &self.discover {
            Some(d) => d.hosts(&self.args.host_secrets_dir, &self.links, known).await,
            None => Vec::new(),
        }
    }
}

/// How often DNS discovery looks again.
const DISCOVER_EVERY: Duration = Duration::from_secs(10);

/// Rebuilds the fleet when the host set changes: at once after an
/// enrolment or revocation here, within two seconds of one by the
/// `dockward-web host` commands, within ten of a discovered host coming or going.
async fn follow_hosts(
    core: Arc<Core>,
    sources: HostSources,
    mut discovered: Vec<(String, String)>,
    changed: Arc<tokio::sync::Notify>,
    recorder: Recorder,
) {
    let stamp = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut seen = stamp(&sources.enrolment.registry_path());
    let mut looked = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = changed.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        let now = stamp(&sources.enrolment.registry_path());
        let mut moved = now != seen;
        seen = now;
        if sources.discover.is_some() && looked.elapsed() >= DISCOVER_EVERY {
            looked = tokio::time::Instant::now();
            let found = sources.discovered(&discovered).await;
            moved |= found != discovered;
            discovered = found;
        }
        if !moved {
            continue;
        }
        match sources.hosts(&discovered) {
            Ok(hosts) => {
                let set: Vec<(String, String)> = hosts.iter().map(|h| (h.name.clone(), h.base.clone())).collect();
                if set == core.fleet.get().hosts.iter().map(|h| (h.name.clone(), h.base.clone())).collect::<Vec<_>>() {
                    continue;
                }
                let names: Vec<String> = set.iter().map(|(n, _)| n.clone()).collect();
                tracing::info!(hosts = ?names, "the host set changed; rebuilding the fleet");
                // The tunnels of hosts no longer in the fleet (revoked) close.
                sources.links.tunnels.retain(&names);
                let hub = Arc::new(
                    FleetHub::new(
                        hosts,
                        Duration::from_secs(sources.args.stale_after),
                        Duration::from_secs(sources.args.poll_interval.max(1)),
                    )
                    .with_recorder(recorder.clone()),
                );
                core.fleet.replace(hub);
            }
            Err(e) => tracing::error!(error = %e, "the hosts cannot be loaded; keeping the current fleet"),
        }
    }
}

pub struct Server {
    pub addr: SocketAddr,
    listener: tokio::net::TcpListener,
    router: Router,
    /// Written out when the console stops.
    recorder: Recorder,
    store: Store,
}

impl Server {
    pub async fn start(args: &ServeArgs) -> Result<Self, StartError> {
        // Sign-in settings first: a console nobody could sign in to never starts.
        let public_url = match args.public_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(u) => Some(
                super::alerts::input::url("DOCKWARD_PUBLIC_URL", u)
                    .map_err(|e| StartError::Config(format!("DOCKWARD_PUBLIC_URL: {e}")))?
                    .to_string(),
            ),
            None => None,
        };
        let oidc = oidc(args, public_url.as_deref())?;
        if oidc.is_none() && !args.local_login {
            return Err(StartError::Config(
                "DOCKWARD_LOCAL_LOGIN=false needs an identity provider (DOCKWARD_OIDC_ISSUER): nobody could sign in"
                    .into(),
            ));
        }
        let links = sidecar::Links::default();
        let metrics = links.metrics.clone();
        let metrics_token = metrics_token(args)?;
        let enrolment =
            super::enrol::Enrolment::open(&args.enrol.enrol_dir).map_err(|e| StartError::Config(e.to_string()))?;
        let discover = super::discover::Discover::parse(&args.discover).map_err(StartError::Config)?;
        let sources = HostSources { args: args.clone(), enrolment: enrolment.clone(), discover, links: links.clone() };
        let discovered = sources.discovered(&[]).await;
        if let Some(d) = &sources.discover {
            tracing::info!(name = %d.name, found = discovered.len(), "discovering hosts by DNS");
        }
        let hosts = sources.hosts(&discovered).map_err(StartError::Config)?;
        if hosts.is_empty() {
            tracing::warn!("no hosts yet: list some in DOCKWARD_HOSTS, or add one (`dockward-web host add`)");
        }
        let forward_auth = ForwardAuth::parse(
            &args.trusted_proxies,
            &args.auth_user_header,
            &args.auth_groups_header,
            &args.auth_group_roles,
            forward_auth_secret(args)?,
        )
        .map_err(StartError::Config)?;
        forward::warn_if_gateway_trusted(&forward_auth);
        let forwarded_for = forward::parse_nets("DOCKWARD_FORWARDED_FOR_PROXIES", &args.forwarded_for_proxies)
            .map_err(StartError::Config)?;
        let users = Arc::new(UserStore::load(&args.users_file)?);
        let first_password_file = password::first_password_file(&args.users_file);
        if users.is_empty() && !forward_auth.enabled() {
            let pw = users::random_password()?;
            // The password goes to a file only its owner can read, never to the log.
            password::write_first_password(&first_password_file, &pw).map_err(|source| StartError::FirstPassword {
                path: first_password_file.display().to_string(),
                source,
            })?;
            users.add_user(
                "admin",
                super::access::Grant { role: Role::Admin, on: super::scope::Scope::Fleet },
                &pw,
                true,
            )?;
            tracing::warn!(
                path = %first_password_file.display(),
                "created the first user, admin: its password is in this file (mode 0600); it must be changed at the first login"
            );
        }
        if !args.site_root.join("pkg").join("dockward.js").exists() {
            tracing::warn!(site_root = %args.site_root.display(), "no browser assets (pkg/dockward.js); run scripts/build-web.sh — pages render but will not hydrate");
        }
        // The agent port, bound before anything is served: a port in use stops the start.
        let changed = Arc::new(tokio::sync::Notify::new());
        let agent_port = match args.agent_listen.0 {
            Some(addr) => {
                let (cert, key) = (&args.enrol.agent_tls_cert_file, &args.enrol.agent_tls_key_file);
                let (identity, _) =
                    tls::Identity::load_or_create(cert, key).map_err(|e| StartError::Config(e.to_string()))?;
                let listener =
                    tokio::net::TcpListener::bind(addr).await.map_err(|source| StartError::Listen { addr, source })?;
                let bound = listener.local_addr().map_err(|source| StartError::Listen { addr, source })?;
                tracing::info!(addr = %bound, fingerprint = %identity.fingerprint, url = %args.agent_url, "agent port listening");
                Some((listener, identity))
            }
            None => None,
        };
        let enrolling = super::Enrolling {
            enrolment: enrolment.clone(),
            changed: changed.clone(),
            agent: agent_port.as_ref().map(|(_, id)| (args.agent_url.clone(), id.fingerprint.to_string())),
        };
        let store = store(args).await?;
        let store_handle = store.clone();
        // Which replica writes history and evaluates alerts (alerts/leader.rs keeps it).
        // (A SQLite store's one console leads from the start; on PostgreSQL, once it holds the lock.)
        let sole = store.backend() == super::store::Backend::Sqlite && store.writable();
        let leading: super::history::Leading = Arc::new(std::sync::atomic::AtomicBool::new(sole));
        let recorder =
            Recorder::start(store.clone(), args.history_max_mib.max(1).saturating_mul(1 << 20), leading.clone());
        let sessions = sessions(args, Some(store.clone()))?;
        sessions
            .import_file(&args.session_revocations_file.clone().unwrap_or_else(|| beside(args, "sessions-revoked")))
            .await;
        sessions.start_sync().await;
        let fleet = Arc::new(
            FleetHub::new(hosts, Duration::from_secs(args.stale_after), Duration::from_secs(args.poll_interval.max(1)))
                .with_recorder(recorder.clone()),
        );
        fleet.start();
        let alerts = super::alerts::Alerts::new(
            store.clone(),
            enrolment.clone(),
            metrics.clone(),
            leading,
            super::alerts::Settings { attempts: args.alert_attempts.clamp(1, 20), public_url },
        )
        .await;
        let core = Arc::new(Core::new(
            fleet,
            users,
            Options {
                sessions,
                forward_auth,
                secure_cookies: args.secure_cookies,
                totp_for_admins: args.require_totp_for_admins,
                oidc,
                local_login: args.local_login,
                forwarded_for,
                follows_per_user: args.max_follows_per_user.max(1),
                requests_per_second: args.user_requests_per_second.max(1),
                first_password_file,
                metrics,
                metrics_token,
                enrolling,
                tag_registries: args
                    .tag_registries
                    .iter()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect(),
                store: Some(store),
                alerts: Some(alerts.clone()),
            },
        ));
        alerts.start(core.clone());
        if let Some((listener, identity)) = agent_port {
            let (cert, key) = (&args.enrol.agent_tls_cert_file, &args.enrol.agent_tls_key_file);
            let agent = Arc::new(super::agent::Agent::new(enrolment.clone(), changed.clone(), links.tunnels.clone()));
            tokio::spawn(super::agent::serve(listener, identity, cert.clone(), key.clone(), agent));
        }
        tokio::spawn(follow_hosts(core.clone(), sources, discovered, changed, recorder.clone()));
        let router = router(core, &args.site_root);
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|source| StartError::Listen { addr: args.listen, source })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen { addr: args.listen, source })?;
        tracing::info!(%addr, "dockward-web listening");
        Ok(Self { addr, listener, router, recorder, store: store_handle })
    }

    /// Serves until `shutdown`; then history's open buckets are written at
    /// once (before open streams are waited for) and the store is closed.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let recorder = self.recorder.clone();
        let shutdown = async move {
            shutdown.await;
            recorder.flush().await;
            tracing::info!("stopping: history written");
        };
        let served = axum::serve(self.listener, self.router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await;
        self.store.close().await;
        served
    }
}

pub fn router(core: Arc<Core>, site_root: &std::path::Path) -> Router {
    let options = LeptosOptions::builder()
        .output_name("dockward")
        .site_root(site_root.to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .build();
    let mut routes = generate_route_list(App);
    // With single sign-on (or passwords off), the login page is the server's own.
    let own_login = core.oidc.is_some() || !core.local_login;
    if own_login {
        routes.retain(|r| r.path() != "/login");
    }
    let ctx = core.clone();
    let pages: Router<LeptosOptions> = Router::new()
        .route("/healthz", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .route("/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .route("/auth/login", post(auth::login).with_state(core.clone()))
        .route("/auth/logout", post(auth::logout).with_state(core.clone()))
        .route("/auth/totp", post(auth::second_factor).with_state(core.clone()))
        .route("/auth/oidc/start", get(super::oidc::start).with_state(core.clone()))
        .route("/auth/oidc/callback", get(super::oidc::callback).with_state(core.clone()))
        .route("/password", get(password::page))
        .route("/auth/password", post(password::change).with_state(core.clone()))
        .route("/hosts", get(super::hosts_page::page).with_state(core.clone()))
        .route("/history", get(super::history::page::page).with_state(core.clone()))
        .route("/api/history/export", get(super::history::page::export).with_state(core.clone()))
        .route("/alerts", get(super::alerts::page::page).post(super::alerts::page::act).with_state(core.clone()))
        .route("/api/alerts", get(super::alerts::page::api_overview).with_state(core.clone()))
        .route("/api/alerts/rules", post(super::alerts::page::api_add_rule).with_state(core.clone()))
        .route(
            "/api/alerts/channels",
            get(super::alerts::page::api_channels).post(super::alerts::page::api_add_channel).with_state(core.clone()),
        )
        .route("/api/alerts/silences", post(super::alerts::page::api_add_silence).with_state(core.clone()))
        .route(
            "/api/alerts/{what}/{id}",
            axum::routing::put(super::alerts::page::api_set)
                .delete(super::alerts::page::api_remove)
                .with_state(core.clone()),
        )
        .route("/api/alerts/{what}/{id}/{verb}", post(super::alerts::page::api_act).with_state(core.clone()))
        .route("/access", get(super::access_page::page).post(super::access_page::act).with_state(core.clone()))
        .route(
            "/api/tokens",
            get(super::access_page::api_tokens).post(super::access_page::api_make_token).with_state(core.clone()),
        )
        .route("/api/tokens/{id}", axum::routing::delete(super::access_page::api_revoke_token).with_state(core.clone()))
        .route("/api/users", get(super::access_page::api_users).with_state(core.clone()))
        .route("/api/users/{name}/{verb}", post(super::access_page::api_grant).with_state(core.clone()))
        .route("/hosts/add", post(super::hosts_page::add).with_state(core.clone()))
        .route("/hosts/revoke", post(super::hosts_page::revoke).with_state(core.clone()))
        .route("/actions", get(super::actions_page::ask).post(super::actions_page::start).with_state(core.clone()))
        .route("/jobs/{job}", get(super::actions_page::job).with_state(core.clone()))
        .route("/api/live", get(live).with_state(core.clone()))
        .route("/api/logs/follow", get(follow).with_state(core.clone()))
        .route("/api/logs/download", get(download).with_state(core.clone()))
        .route("/api/audit/export", get(export).with_state(core.clone()))
        .route("/metrics", get(metrics).with_state(core.clone()))
        .route_service(
            &leptos_axum::site_pkg_dir_service_route_path(&options),
            leptos_axum::site_pkg_dir_service(&options),
        )
        .leptos_routes_with_context(&options, routes, move || provide_context(ctx.clone()), {
            let o = options.clone();
            move || shell(o.clone())
        })
        .fallback(leptos_axum::file_and_error_handler(shell));
    let pages =
        if own_login { pages.route("/login", get(super::oidc::login_page).with_state(core.clone())) } else { pages };
    pages
        .layer(middleware::from_fn_with_state(core.clone(), auth::require_user))
        .layer(middleware::from_fn_with_state(core.clone(), server_fn_status))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(options)
}

/// The icon: inline SVG (no script, nothing fetched), linked from every
/// page's head. `/favicon.ico` answers too, for clients that ask for it
/// regardless. Cached for a year: a new icon needs a new path.
const FAVICON_SVG: &str = concat!(
    r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">"##,
    r##"<rect width="32" height="32" rx="7" fill="#1f6feb"/>"##,
    r##"<path fill="#fff" d="M9 8h4v4H9zm5 0h4v4h-4zM9 13h4v4H9zm5 0h4v4h-4zm5 0h4v4h-4zM5 19h22l-3 6H8z"/>"##,
    "</svg>"
);

async fn favicon() -> Response {
    (
        [(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "public, max-age=31536000, immutable")],
        FAVICON_SVG,
    )
        .into_response()
}

/// Server functions answer every error as a [`ConsoleError`] body (marked
/// with server_fn's error header); this is the one place that turns it into
/// the response's status (401, 403, 400, 404, 429, 502, …), and counts it.
async fn server_fn_status(
    State(core): State<Arc<Core>>,
    req: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    use leptos::server_fn::error::{FromServerFnError, SERVER_FN_ERROR_HEADER};
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    if !path.starts_with("/api/fn/") || !resp.headers().contains_key(SERVER_FN_ERROR_HEADER) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 256 * 1024).await else {
        let e = ConsoleError::internal("an error too large to send");
        core.metrics.server_fn_error(&path, &e);
        return e.into_response();
    };
    let e = ConsoleError::de(bytes.clone());
    core.metrics.server_fn_error(&path, &e);
    parts.status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Response::from_parts(parts, Body::from(bytes))
}

fn bad(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(shared::ErrorBody::new(shared::ErrorCode::BadRequest, msg))).into_response()
}

/// A sidecar's failure on a plain route: the status its [`ConsoleError`] carries.
fn sidecar_err(e: super::sidecar::SidecarError) -> Response {
    let e = ConsoleError::from(e);
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_GATEWAY);
    (status, axum::Json(shared::ErrorBody::new(shared::ErrorCode::DockerError, e.to_string()))).into_response()
}

/// What `/api/live` takes: the page's scope (`overview` by default, with
/// the apps it opened and its filter, `network`, `hosts`, or `container`
/// with `host` and `id`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LiveQuery {
    scope: Option<String>,
    host: Option<String>,
    id: Option<String>,
    open: Option<String>,
    filter: Option<String>,
}

/// GET /api/live: the fleet as Server-Sent Events, cut to what the page
/// shows: `snapshot` at once (or, for a browser reconnecting with
/// `Last-Event-ID`, the deltas it missed, or `resync` when they are gone),
/// then a `delta` per change, with a comment line every 15 s to keep proxies
/// from closing an idle stream. Reconnects are the browser's EventSource's.
async fn live(
    State(core): State<Arc<Core>>,
    Extension(u): Extension<CurrentUser>,
    headers: HeaderMap,
    query: Result<Query<LiveQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return bad("the live stream takes scope, host, id, open and filter, nothing else");
    };
    let scope = match Scope::parse_with(
        q.scope.as_deref(),
        q.host.as_deref(),
        q.id.as_deref(),
        q.open.as_deref(),
        q.filter.as_deref(),
    ) {
        Ok(s) => s,
        Err(e) => return bad(e),
    };
    if let Scope::Container { host, reference } = &scope {
        // A container the user does not see is no such container: one answer for both.
        let hub = core.fleet.get();
        let visible = hub.host(host).is_some()
            && (u.access.on_host(host).is_some()
                || hub.with_fleet(|f| {
                    super::access::find(f, host, reference).is_some_and(|c| u.access.on_container(host, c).is_some())
                }));
        if !visible {
            return bad("no such host or container");
        }
    }
    let seen = match headers.get("last-event-id").map(|v| v.to_str()) {
        None => None,
        Some(Ok(id)) if super::fleet::valid_event_id(id) => Some(id.to_owned()),
        Some(_) => return bad("Last-Event-ID is not an event id of this stream"),
    };
    let updates = match core.fleet.get().live(&u.name, &u.access, scope, seen.as_deref()) {
        Ok(u) => u,
        Err(e) => {
            let body = shared::ErrorBody::new(shared::ErrorCode::RateLimited, e.to_string());
            return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "5")], axum::Json(body)).into_response();
        }
    };
    let keep_alive = futures_util::stream::unfold((), |()| async {
        tokio::time::sleep(Duration::from_secs(15)).await;
        Some((Bytes::from_static(b":\n\n"), ()))
    });
    // The stream ends at the first frame after its session does (logout,
    // a new password, the user removed): at most one keep-alive later.
    let core3 = core.clone();
    // Counted while the stream lives: dropped with it when it ends or the browser leaves.
    let open = core.metrics.stream_opened(Stream::Fleet);
    // Ends when the updates do (a client dropped for falling behind); the
    // keep-alives alone never hold a stream open.
    let frames = futures_util::stream::select(
        updates.map(Some).chain(futures_util::stream::once(async { None })),
        keep_alive.map(Some),
    )
    .take_while(|f| std::future::ready(f.is_some()))
    .filter_map(std::future::ready)
    .take_while(move |_| std::future::ready(auth::still_signed_in(&core3, &u)))
    .map(move |f| {
        let _ = &open;
        Ok::<_, Infallible>(f)
    });
    ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], Body::from_stream(frames))
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogQuery {
    host: String,
    id: String,
    tail: Option<u32>,
}

/// GET /api/logs/follow: the sidecar's follow stream, passed to the browser;
/// at most `DOCKWARD_MAX_FOLLOWS_PER_USER` open per user (429 beyond).
async fn follow(
    State(core): State<Arc<Core>>,
    Extension(u): Extension<CurrentUser>,
    Query(q): Query<LogQuery>,
) -> Response {
    let Ok(r) = ContainerRef::parse(&q.id) else { return bad("invalid container reference") };
    let (h, full) = match core.host_for(&u, &q.host, Verb::Logs.role(), super::On::Container(&r)) {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    let id = full.as_deref().unwrap_or(r.as_str()).to_owned();
    let tail = q.tail.unwrap_or(0).min(shared::limits::LOG_TAIL_MAX as u32);
    let slot = match core.limits.follow(&u.name) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let open = core.metrics.stream_opened(Stream::Follow);
    match h
        .stream(
            &Call::new(Verb::Logs, &[&id]).query("follow", true).query("timestamps", true).query("tail", tail),
            Some(&u.actor),
            None,
        )
        .await
    {
        // The slot and the count live as long as the stream: dropped when it
        // ends or the browser leaves.
        Ok(resp) => Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            .body(Body::from_stream(
                resp.bytes_stream().take_while(move |_| std::future::ready(auth::still_signed_in(&core, &u))).map(
                    move |c| {
                        let _ = (&slot, &open);
                        c
                    },
                ),
            ))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
        Err(e) => sidecar_err(e),
    }
}

/// GET /api/logs/download: the tail as a text file, written line by line.
async fn download(
    State(core): State<Arc<Core>>,
    Extension(u): Extension<CurrentUser>,
    Query(q): Query<LogQuery>,
) -> Response {
    let Ok(r) = ContainerRef::parse(&q.id) else { return bad("invalid container reference") };
    let (h, full) = match core.host_for(&u, &q.host, Verb::Logs.role(), super::On::Container(&r)) {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    let tail = q.tail.unwrap_or(1000).min(shared::limits::LOG_TAIL_MAX as u32);
    match h
        .call::<LogsPage>(
            &Call::new(Verb::Logs, &[full.as_deref().unwrap_or(r.as_str())])
                .query("tail", tail)
                .query("timestamps", true),
            Some(&u.actor),
            None,
        )
        .await
    {
        Ok(page) => {
            let lines = futures_util::stream::iter(page.lines).map(|l| {
                let stream = if l.stream == shared::LogStream::Stderr { "stderr" } else { "stdout" };
                Ok::<_, Infallible>(Bytes::from(format!("{} {stream} {}\n", l.ts.unwrap_or_default(), l.line)))
            });
            let name = format!("attachment; filename=\"{}-{}.log\"", q.host, r);
            Response::builder()
                .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .header(
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_str(&name).unwrap_or(HeaderValue::from_static("attachment")),
                )
                .body(Body::from_stream(lines))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        Err(e) => sidecar_err(e),
    }
}

/// GET /metrics: the console's metrics (Prometheus text format) for a
/// scraper presenting the metrics token (`Authorization: Bearer`), or an
/// admin's session. A token that does not match is 401 even with a session
/// beside it; without a token, no session is 401 and a weaker role 403.
async fn metrics(State(core): State<Arc<Core>>, user: Option<Extension<CurrentUser>>, headers: HeaderMap) -> Response {
    let refuse = |status: StatusCode, code, msg: &str| {
        let mut r = (status, axum::Json(shared::ErrorBody::new(code, msg))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    };
    let unauthorized =
        || refuse(StatusCode::UNAUTHORIZED, shared::ErrorCode::Unauthorized, "the metrics token or an admin's session");
    let mut auth = headers.get_all(header::AUTHORIZATION).iter();
    match (auth.next(), auth.next()) {
        (None, _) => match user {
            Some(Extension(u)) if u.access.allows(Verb::Metrics.role(), &super::scope::Scope::Fleet) => {}
            Some(_) => {
                let needed = format!("metrics need the {} role", Verb::Metrics.role());
                return refuse(StatusCode::FORBIDDEN, shared::ErrorCode::Forbidden, &needed);
            }
            None => return unauthorized(),
        },
        (Some(value), None) => {
            let presented = value.to_str().ok().and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
            });
            let ok = match (&core.metrics_token, presented) {
                (Some(t), Some(p)) => t.matches(p),
                _ => false,
            };
            if !ok {
                tracing::debug!("a /metrics request with a wrong or unexpected token");
                return unauthorized();
            }
        }
        (Some(_), Some(_)) => return unauthorized(),
    }
    let statuses = core.fleet.get().statuses();
    let text = core.metrics.render(statuses.iter().map(|(h, s)| (h.as_str(), super::metrics::status_label(s))));
    ([(header::CONTENT_TYPE, super::metrics::CONTENT_TYPE), (header::CACHE_CONTROL, "no-store")], text).into_response()
}

#[derive(Deserialize)]
struct ExportQuery {
    host: String,
    format: String,
}

/// GET /api/audit/export?host=&format=csv|json (admin): up to 1000 newest records.
async fn export(
    State(core): State<Arc<Core>>,
    Extension(u): Extension<CurrentUser>,
    Query(q): Query<ExportQuery>,
) -> Response {
    let (h, _) = match core.host_for(&u, &q.host, Verb::Audit.role(), super::On::Host) {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    let call = Call::new(Verb::Audit, &[]).query("limit", 1000);
    let page: AuditPage = match h.call(&call, Some(&u.actor), None).await {
        Ok(p) => p,
        Err(e) => return sidecar_err(e),
    };
    // Written record by record, not built as one string.
    let (body, ctype, ext) = match q.format.as_str() {
        "json" => {
            let n = page.records.len();
            let records = page.records.into_iter().enumerate().map(move |(i, r)| {
                let mut out = if i == 0 { b"[\n".to_vec() } else { Vec::new() };
                out.extend_from_slice(b"  ");
                out.extend(serde_json::to_vec(&r).unwrap_or_default());
                out.extend_from_slice(if i + 1 == n { b"\n]\n" } else { b",\n" });
                Bytes::from(out)
            });
            let body = if n == 0 {
                Body::from("[]\n")
            } else {
                Body::from_stream(futures_util::stream::iter(records.map(Ok::<_, Infallible>)))
            };
            (body, "application/json", "json")
        }
        "csv" => {
            let head = "seq,time,actor,client,verb,target,target_name,outcome,message,duration_ms,request_id\n";
            let rows = page.records.into_iter().map(|r| {
                let row = [
                    r.seq.to_string(),
                    r.time,
                    r.actor.unwrap_or_default(),
                    r.client,
                    r.verb,
                    r.target.unwrap_or_default(),
                    r.target_name.unwrap_or_default(),
                    r.outcome.as_str().to_owned(),
                    r.message.unwrap_or_default(),
                    r.duration_ms.to_string(),
                    r.request_id,
                ];
                let mut line = row.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
                line.push('\n');
                Bytes::from(line)
            });
            let all = std::iter::once(Bytes::from_static(head.as_bytes())).chain(rows).map(Ok::<_, Infallible>);
            (Body::from_stream(futures_util::stream::iter(all)), "text/csv; charset=utf-8", "csv")
        }
        _ => return bad("format must be csv or json"),
    };
    Response::builder()
        .header(header::CONTENT_TYPE, ctype)
        .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"audit-{}.{ext}\"", q.host))
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Quotes a CSV field, and defuses spreadsheet formulas: a cell that starts
/// with `=`, `+`, `-`, `@`, a tab or a carriage return (OWASP's list) gets a
/// leading `'`.
fn csv_field(f: &str) -> String {
    let f = if f.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{f}") } else { f.to_owned() };
    format!("\"{}\"", f.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("web"), "\"web\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        for lead in ["=", "+", "-", "@", "\t", "\r"] {
            let cell = format!("{lead}HYPERLINK(\"x\")");
            assert!(csv_field(&cell).starts_with("\"'"), "{cell:?} → {}", csv_field(&cell));
        }
        assert_eq!(csv_field("a=b"), "\"a=b\"", "only a leading character starts a formula");
    }
}
