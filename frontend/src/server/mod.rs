//! The web server (`ssr` only): state, the calls to sidecars on behalf of a
//! signed-in user, the axum routes beside the Leptos pages, and start-up.

pub mod auth;
pub mod config;
pub mod fleet;
pub mod routes;
pub mod sidecar;
pub mod users;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota};
use leptos::prelude::*;
use shared::{
    AuditPage, ContainerDetail, ContainerRef, ImageRef, LogsPage, PruneKind, PruneReport, PullEvent, RestartReport,
};

use crate::api::{AuditFilter, AuditView, ContainerPage, VerifyStatus};
use auth::{CurrentUser, ForwardAuth, Sessions};
use fleet::FleetHub;
use sidecar::SidecarError;
use users::UserStore;

/// Everything the handlers share.
pub struct Core {
    pub fleet: Arc<FleetHub>,
    pub users: Arc<UserStore>,
    pub sessions: Sessions,
    pub forward_auth: ForwardAuth,
    pub secure_cookies: bool,
    pub login_by_ip: DefaultKeyedRateLimiter<IpAddr>,
    pub login_by_name: DefaultKeyedRateLimiter<String>,
}

/// The shared state, inside a server function.
pub fn core() -> Result<Arc<Core>, ServerFnError> {
    use_context::<Arc<Core>>().ok_or_else(|| ServerFnError::new("server state missing"))
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("no host {0:?}")]
    NoHost(String),
    #[error(transparent)]
    Invalid(#[from] shared::ValidationError),
    #[error(transparent)]
    Sidecar(#[from] SidecarError),
    #[error("{0}")]
    Other(String),
}

fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Core {
    pub fn new(
        fleet: Arc<FleetHub>,
        users: Arc<UserStore>,
        session_ttl: Duration,
        forward_auth: ForwardAuth,
        secure_cookies: bool,
    ) -> Self {
        let per_min = |n: u32| Quota::per_minute(std::num::NonZeroU32::new(n).unwrap_or(std::num::NonZeroU32::MIN));
        Self {
            fleet,
            users,
            sessions: Sessions::new(session_ttl),
            forward_auth,
            secure_cookies,
            login_by_ip: DefaultKeyedRateLimiter::keyed(per_min(10)),
            login_by_name: DefaultKeyedRateLimiter::keyed(per_min(5)),
        }
    }

    fn host(&self, name: &str) -> Result<&Arc<sidecar::Sidecar>, ConsoleError> {
        self.fleet.host(name).ok_or_else(|| ConsoleError::NoHost(name.chars().take(64).collect()))
    }

    pub async fn container_page(&self, host: &str, id: &str) -> Result<ContainerPage, ConsoleError> {
        let r = ContainerRef::parse(id)?;
        let h = self.host(host)?;
        let detail: ContainerDetail = h.get(&format!("/v1/containers/{r}")).await?;
        let mut history = self.fleet.history(host, &detail.summary.id);
        if history.len() < 10 {
            if let Ok(hist) =
                h.get::<shared::StatsHistory>(&format!("/v1/stats/history?ref={}&window=900", detail.summary.id)).await
            {
                history = hist.points;
            }
        }
        Ok(ContainerPage { host: host.to_owned(), detail, history })
    }

    pub async fn logs(&self, host: &str, id: &str, tail: u32, timestamps: bool) -> Result<LogsPage, ConsoleError> {
        let r = ContainerRef::parse(id)?;
        let tail = shared::bounded("tail", u64::from(tail), 0, shared::limits::LOG_TAIL_MAX)?;
        Ok(self.host(host)?.get(&format!("/v1/containers/{r}/logs?tail={tail}&timestamps={timestamps}")).await?)
    }

    pub async fn audit(&self, host: &str, f: &AuditFilter) -> Result<AuditView, ConsoleError> {
        let h = self.host(host)?;
        let mut q = vec!["limit=50".to_owned()];
        for (k, v) in [
            ("actor", &f.actor),
            ("verb", &f.verb),
            ("target", &f.target),
            ("outcome", &f.outcome),
            ("since", &f.since),
            ("until", &f.until),
            ("cursor", &f.cursor),
        ] {
            let v = v.trim();
            if !v.is_empty() {
                if v.len() > 256 {
                    return Err(ConsoleError::Other(format!("{k} is too long")));
                }
                q.push(format!("{k}={}", enc(v)));
            }
        }
        let page: AuditPage = h.get(&format!("/v1/audit?{}", q.join("&"))).await?;
        let verify = match h.get::<VerifyStatus>("/v1/audit/verify").await {
            Ok(v) => v,
            Err(e) => VerifyStatus { ok: false, records: 0, problems: vec![format!("could not verify: {e}")] },
        };
        Ok(AuditView { host: host.to_owned(), page, verify })
    }

    pub async fn restart(&self, user: &CurrentUser, host: &str, id: &str) -> Result<RestartReport, ConsoleError> {
        let r = ContainerRef::parse(id)?;
        let h = self.host(host)?;
        tracing::info!(user = %user.name, host, container = %r, "restart");
        let out = h.post(&format!("/v1/containers/{r}/restart?timeout=10"), &user.name, None).await;
        self.fleet.poke(host);
        Ok(out?)
    }

    pub async fn prune(
        &self,
        user: &CurrentUser,
        host: &str,
        kind: PruneKind,
        all: bool,
    ) -> Result<PruneReport, ConsoleError> {
        let h = self.host(host)?;
        let query = if all && kind != PruneKind::Containers { "?all=true" } else { "" };
        tracing::info!(user = %user.name, host, kind = kind.as_str(), all, "prune");
        let out = h.post(&format!("/v1/prune/{}{query}", kind.as_str()), &user.name, None).await;
        self.fleet.poke(host);
        Ok(out?)
    }

    /// Pulls and waits for the final line; returns the digest (or image id).
    pub async fn pull(&self, user: &CurrentUser, host: &str, image: &str) -> Result<String, ConsoleError> {
        let image = ImageRef::parse(image.trim())?;
        let h = self.host(host)?;
        tracing::info!(user = %user.name, host, image = %image, "pull");
        let resp =
            h.post_stream("/v1/images/pull", &user.name, serde_json::json!({ "image": image.to_string() })).await?;
        let text = resp.text().await.map_err(|e| ConsoleError::Other(format!("pull stream broke: {e}")))?;
        let last = text.lines().rev().find_map(|l| serde_json::from_str::<PullEvent>(l).ok());
        match last {
            Some(PullEvent::Done { digest, image_id, .. }) => {
                Ok(digest.or(image_id).unwrap_or_else(|| "pulled".into()))
            }
            Some(PullEvent::Error { message }) => Err(ConsoleError::Other(message)),
            _ => Err(ConsoleError::Other("the pull ended without a result".into())),
        }
    }
}

/// `<meta>`-safe CSRF token for forms rendered by the server.
pub fn csrf_of(parts: &axum::http::request::Parts) -> Option<String> {
    parts.extensions.get::<CurrentUser>().map(|u| u.csrf.clone())
}
