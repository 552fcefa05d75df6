//! Start-up: load the secret, open the audit log, connect to the engine,
//! start the background tasks and serve.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tls::server::ReloadingIdentity;
use tokio::net::TcpListener;

use crate::audit::chain::{AuditKey, ChainError};
use crate::audit::{AuditLog, AuditOptions};
use crate::auth::{SecretError, SecretStore};
use crate::config::ServeArgs;
use crate::disk::DiskCache;
use crate::docker::{ConnectError, Engine};
use crate::events::EventHub;
use crate::metrics::Metrics;
use crate::policy::{Policy, PolicyError};
use crate::ratelimit::RateLimits;
use crate::router;
use crate::state::{App, AppState, Permits, Settings};
use crate::stats::StatsCache;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Audit(#[from] ChainError),
    #[error(transparent)]
    Docker(#[from] ConnectError),
    #[error(transparent)]
    Tls(#[from] tls::IdentityError),
    #[error(transparent)]
    Outbound(#[from] crate::tunnel::OutboundError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
}

/// The revocation list (`POST /v1/revoke`): beside the audit log, on its
/// read-write volume.
pub fn revoked_file(audit_log: &std::path::Path) -> std::path::PathBuf {
    audit_log.with_file_name("revoked-keys")
}

/// A started sidecar.
pub struct Server {
    pub addr: SocketAddr,
    pub state: App,
    listener: TcpListener,
    /// `None` with `--plain-http`.
    identity: Option<Arc<ReloadingIdentity>>,
    /// `--connect`: the console this sidecar dials.
    outbound: Option<crate::tunnel::Outbound>,
}

const HEALTH_PROBE_EVERY: Duration = Duration::from_secs(1);
/// How often (in probe ticks, seconds) secret files are checked for changes,
/// so that a retired secret stops working without a restart.
const SECRET_CHECK_EVERY_SECS: u64 = 5;

impl Server {
    /// Checks the configuration, opens the audit log and binds; starts the
    /// engine probe, stats refresher and event subscription.
    pub async fn start(args: &ServeArgs) -> Result<Self, StartError> {
        let secrets = SecretStore::load_revocable(
            args.secret.clone(),
            args.secret_file.clone(),
            args.secret_previous.clone(),
            args.secret_previous_file.clone(),
            Some(revoked_file(&args.audit_log)),
        )?;
        let identity = if args.tls.plain_http {
            tracing::warn!(
                "serving plain HTTP (--plain-http): the shared secret and every answer cross the network in clear; \
                 the console shows this host as unencrypted"
            );
            None
        } else {
            let (cert, key) = (&args.tls.tls_cert_file, &args.tls.tls_key_file);
            let (id, made) = tls::Identity::load_or_create(cert, key)?;
            if made {
                tracing::info!(cert = %cert.display(), fingerprint = %id.fingerprint, "made a new TLS identity; pin this fingerprint on the console");
            }
            Some(Arc::new(ReloadingIdentity::new(id, cert.clone(), key.clone())))
        };
        let outbound = crate::tunnel::Outbound::from_args(args)?;
        let policy = Arc::new(Policy::new(args.scope_label.as_deref(), &args.protect_images, &args.mask_env_pattern)?);
        let metrics = Arc::new(Metrics::default());
        let (key, key_created) = AuditKey::load_or_create(&args.audit_key_file).map_err(ChainError::from)?;
        let audit_opts = AuditOptions {
            rotate_bytes: args.audit_rotate_bytes,
            keep_files: args.audit_keep_files,
            key: Some(key),
            key_created,
            denial_window: args.audit_denial_window,
        };
        let audit = AuditLog::open(&args.audit_log, audit_opts, metrics.clone())?;
        crate::enrol::audit_enrolment(&audit, args.secret_file.as_deref()).await;
        let engine = Arc::new(Engine::new(&args.docker_host, policy, metrics.clone())?);
        if !engine.probe().await {
            tracing::warn!(host = %args.docker_host, "the Docker engine is not reachable yet; starting degraded and retrying");
        }
        let stats = Arc::new(StatsCache::new(engine.clone(), metrics.clone(), args.stats_options()));
        let events = EventHub::default();
        let state: App = Arc::new(AppState {
            engine: engine.clone(),
            stats: stats.clone(),
            events: events.clone(),
            audit,
            secrets,
            limits: RateLimits::new(args),
            metrics,
            disk: DiskCache::new(args.disk_ttl),
            permits: Permits::new(args.max_streams, args.max_event_streams, args.max_pulls, args.max_log_reads),
            settings: Settings {
                log_follow_max: args.log_follow_max,
                pull_registries: args
                    .pull_registries
                    .iter()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect(),
                node_name: args.node_name.clone(),
            },
            updates: crate::updates::UpdateChecker::new(
                args.update_check_interval,
                args.update_check_concurrency,
                args.update_registry_pace,
            ),
            recreates: crate::recreates::Recreates::new(
                crate::recreates::journal::dir(&args.audit_log),
                args.max_recreates,
                args.test_recreate_pause,
                args.build_root.clone(),
                args.build_context_max,
            ),
        });
        let listener =
            TcpListener::bind(args.listen).await.map_err(|source| StartError::Listen { addr: args.listen, source })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen { addr: args.listen, source })?;

        state.audit.spawn_denial_flusher();
        tokio::spawn(stats.run(events.subscribe()));
        tokio::spawn(events.run(engine.clone()));
        // Recreates a previous run left midway: held busy before any request is served.
        let left = state.recreates.hold_for_recovery();
        tokio::spawn(crate::verbs::recreate::recover(state.clone(), left));
        let probe_state = state.clone();
        let probe_identity = identity.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEALTH_PROBE_EVERY);
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                probe_state.engine.probe().await;
                n += 1;
                if n.is_multiple_of(60) {
                    probe_state.limits.forget_idle();
                }
                if n.is_multiple_of(SECRET_CHECK_EVERY_SECS) {
                    probe_state.secrets.refresh();
                    match probe_identity.as_ref().map(|id| id.refresh()) {
                        Some(Ok(Some(fp))) => tracing::info!(fingerprint = %fp, "serving a new TLS identity"),
                        Some(Err(e)) => tracing::error!(error = %e, "keeping the current TLS identity"),
                        _ => {}
                    }
                }
            }
        });
        let scheme = if identity.is_some() { "https" } else { "http" };
        let fingerprint = identity.as_ref().map(|id| id.fingerprint().to_string());
        tracing::info!(%addr, scheme, fingerprint, keys = ?state.secrets.ids(), audit = %args.audit_log.display(), "dockward-sidecar listening");
        if let Some(out) = &outbound {
            tracing::info!(console = %out.url, pin = %out.pin, host = %out.name, "outbound agent: dialling the console");
        }
        Ok(Self { addr, state, listener, identity, outbound })
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let audit = self.state.audit.clone();
        let router = router::router(self.state);
        // The same router over the tunnel, for as long as the listener serves.
        let tunnel = self.outbound.map(|out| tokio::spawn(crate::tunnel::run(out, router.clone())));
        let served = match self.identity {
            Some(identity) => {
                let config = Arc::new(tls::server::server_config(identity));
                // `tap_io` only so that axum hands the handlers the peer's address.
                let listener = tls::listener::TlsListener::new(self.listener, config)?.tap_io(|_| {});
                axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
                    .with_graceful_shutdown(shutdown)
                    .await
            }
            None => {
                axum::serve(self.listener, router.into_make_service_with_connect_info::<SocketAddr>())
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        };
        if let Some(t) = tunnel {
            t.abort();
        }
        // Refusals counted since the last summary are written before exiting.
        if let Err(e) = audit.flush_denials(true).await {
            tracing::error!(error = %e, "writing the last refusal summary failed");
        }
        served
    }
}
