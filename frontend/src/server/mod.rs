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
    AuditPage, Call, ContainerDetail, ContainerRef, ImageRef, LogsPage, PruneKind, PruneReport, PullEvent,
    RestartReport, Verb,
};

use crate::error::ConsoleError;
use crate::types::{AuditFilter, AuditView, ContainerPage, MergedLine, VerifyStatus};
use auth::{CurrentUser, ForwardAuth, Sessions};
use fleet::FleetHub;
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
    pub pulls: Arc<Pulls>,
}

/// The shared state, inside a server function.
pub fn core() -> Result<Arc<Core>, ConsoleError> {
    use_context::<Arc<Core>>().ok_or_else(|| ConsoleError::internal("server state missing"))
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
            pulls: Arc::default(),
        }
    }

    fn host(&self, name: &str) -> Result<&Arc<sidecar::Sidecar>, ConsoleError> {
        self.fleet.host(name).ok_or_else(|| ConsoleError::NotFound {
            what: format!("host {:?}", name.chars().take(64).collect::<String>()),
        })
    }

    pub async fn container_page(&self, host: &str, id: &str) -> Result<ContainerPage, ConsoleError> {
        let r = ContainerRef::parse(id)?;
        let h = self.host(host)?;
        let mut detail: ContainerDetail = h.call(&Call::new(Verb::InspectContainer, &[r.as_str()]), None, None).await?;
        crate::model::neutralise_detail(&mut detail);
        let mut history = self.fleet.history(host, &detail.summary.id);
        if history.len() < 10 {
            let call = Call::new(Verb::StatsHistory, &[]).query("ref", &detail.summary.id).query("window", 900);
            if let Ok(hist) = h.call::<shared::StatsHistory>(&call, None, None).await {
                history = hist.points;
            }
        }
        Ok(ContainerPage { host: host.to_owned(), detail, history })
    }

    pub async fn logs(&self, host: &str, id: &str, tail: u32, timestamps: bool) -> Result<LogsPage, ConsoleError> {
        let r = ContainerRef::parse(id)?;
        let tail = shared::bounded("tail", u64::from(tail), 0, shared::limits::LOG_TAIL_MAX)?;
        let call = Call::new(Verb::Logs, &[r.as_str()]).query("tail", tail).query("timestamps", timestamps);
        Ok(self.host(host)?.call(&call, None, None).await?)
    }

    /// Every container of `project` on `host`, tails merged by timestamp
    /// (at most 20 containers × `tail` lines; `tail` ≤ 1000).
    pub async fn app_logs(&self, host: &str, project: &str, tail: u32) -> Result<Vec<MergedLine>, ConsoleError> {
        let tail = tail.clamp(1, 1000);
        let h = self.host(host)?;
        let fleet = self.fleet.snapshot();
        let members: Vec<(String, String)> = fleet
            .hosts
            .iter()
            .filter(|hv| hv.name == host)
            .flat_map(|hv| &hv.containers)
            .filter(|c| {
                c.compose_project.as_deref().unwrap_or("standalone") == project
                    || (project == "standalone" && c.compose_project.is_none())
            })
            .take(20)
            .map(|c| (c.id.clone(), c.name.clone()))
            .collect();
        let calls: Vec<Call> = members
            .iter()
            .map(|(id, _)| Call::new(Verb::Logs, &[id]).query("tail", tail).query("timestamps", true))
            .collect();
        let pages = futures_util::future::join_all(calls.iter().map(|c| h.call::<LogsPage>(c, None, None))).await;
        let mut out = Vec::new();
        for ((_, name), page) in members.iter().zip(pages) {
            for line in page?.lines {
                out.push(MergedLine { container: name.clone(), line });
            }
        }
        // RFC 3339 timestamps of one format sort as text; stable for equal times.
        out.sort_by(|a, b| a.line.ts.cmp(&b.line.ts));
        Ok(out)
    }

    pub async fn audit(&self, host: &str, f: &AuditFilter) -> Result<AuditView, ConsoleError> {
        let h = self.host(host)?;
        let mut call = Call::new(Verb::Audit, &[]).query("limit", 50);
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
                    return Err(ConsoleError::bad_input(k, "longer than 256 bytes"));
                }
                call = call.query(k, v);
            }
        }
        let mut page: AuditPage = h.call(&call, None, None).await?;
        page.records.iter_mut().for_each(crate::model::neutralise_audit_record);
        let verify = match h.call::<VerifyStatus>(&Call::new(Verb::AuditVerify, &[]), None, None).await {
            Ok(v) => v,
            Err(e) => VerifyStatus { ok: false, records: 0, problems: vec![format!("could not verify: {e}")] },
        };
        Ok(AuditView { host: host.to_owned(), page, verify })
    }

    pub async fn restart(&self, user: &CurrentUser, host: &str, id: &str) -> Result<RestartReport, ConsoleError> {
        let r = ContainerRef::parse(id)?;
        let h = self.host(host)?;
        tracing::info!(user = %user.name, host, container = %r, "restart");
        let call = Call::new(Verb::Restart, &[r.as_str()]).query("timeout", 10);
        let out = h.call(&call, Some(&user.name), None).await;
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
        let call = Call::new(Verb::Prune, &[kind.as_str()])
            .query_opt("all", (all && kind != PruneKind::Containers).then_some(true));
        tracing::info!(user = %user.name, host, kind = kind.as_str(), all, "prune");
        let out = h.call(&call, Some(&user.name), None).await;
        self.fleet.poke(host);
        Ok(out?)
    }

    /// Starts a pull as a background job; progress is kept in [`Pulls`].
    pub fn start_pull(&self, user: &CurrentUser, host: &str, image: &str) -> Result<String, ConsoleError> {
        let image = ImageRef::parse(image.trim())?;
        let h = self.host(host)?.clone();
        let job = self.pulls.create(&image.to_string())?;
        tracing::info!(user = %user.name, host, image = %image, job, "pull");
        let (pulls, actor, job2, fleet, host2) =
            (self.pulls.clone(), user.name.clone(), job.clone(), self.fleet.clone(), host.to_owned());
        tokio::spawn(async move {
            let result = run_pull(&h, &actor, &image, &pulls, &job2).await;
            pulls.finish(&job2, result.map_err(|e| e.to_string()));
            fleet.poke(&host2);
        });
        Ok(job)
    }
}

async fn run_pull(
    h: &sidecar::Sidecar,
    actor: &str,
    image: &ImageRef,
    pulls: &Pulls,
    job: &str,
) -> Result<String, ConsoleError> {
    use futures_util::StreamExt;
    let body = serde_json::json!({ "image": image.to_string() });
    let resp = h.stream(&Call::new(Verb::Pull, &[]), Some(actor), Some(&body)).await?;
    let mut body = resp.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut last = None;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ConsoleError::HostUnreachable {
            host: h.name.clone(),
            reason: format!("the pull stream broke: {}", e.without_url()),
        })?;
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            if let Ok(ev) = serde_json::from_slice::<PullEvent>(&line) {
                pulls.progress(job, &ev);
                last = Some(ev);
            }
        }
        if buf.len() > 1 << 20 {
            buf.clear();
        }
    }
    match last {
        Some(PullEvent::Done { digest, image_id, .. }) => Ok(digest.or(image_id).unwrap_or_else(|| "pulled".into())),
        Some(PullEvent::Error { message }) => {
            Err(ConsoleError::SidecarRefused { host: h.name.clone(), status: 502, code: "pull_failed".into(), message })
        }
        _ => Err(ConsoleError::HostUnreachable {
            host: h.name.clone(),
            reason: "the pull ended without a result".into(),
        }),
    }
}

struct PullJob {
    image: String,
    lines: std::collections::VecDeque<String>,
    layers: std::collections::BTreeMap<String, bool>,
    done: Option<Result<String, String>>,
    started: std::time::Instant,
}

/// Pull jobs in memory: at most 64, finished ones forgotten after 10 minutes.
#[derive(Default)]
pub struct Pulls(std::sync::Mutex<std::collections::HashMap<String, PullJob>>);

impl Pulls {
    fn create(&self, image: &str) -> Result<String, ConsoleError> {
        let mut jobs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        jobs.retain(|_, j| j.done.is_none() || j.started.elapsed() < Duration::from_secs(600));
        if jobs.len() >= 64 {
            return Err(ConsoleError::Busy { what: "pulls at once; wait for some to finish".into() });
        }
        let mut id = [0u8; 12];
        getrandom::fill(&mut id).map_err(|e| ConsoleError::internal(e.to_string()))?;
        let id = hex::encode(id);
        jobs.insert(
            id.clone(),
            PullJob {
                image: image.to_owned(),
                lines: Default::default(),
                layers: Default::default(),
                done: None,
                started: std::time::Instant::now(),
            },
        );
        Ok(id)
    }

    fn progress(&self, job: &str, ev: &PullEvent) {
        let mut jobs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(j) = jobs.get_mut(job) else { return };
        if let PullEvent::Progress { status, layer, .. } = ev {
            if let Some(l) = layer {
                let done = status.starts_with("Pull complete") || status.starts_with("Already exists");
                let e = j.layers.entry(l.clone()).or_insert(false);
                *e |= done;
            }
            let line = match layer {
                Some(l) => format!("{l}: {status}"),
                None => status.clone(),
            };
            if j.lines.back() != Some(&line) {
                if j.lines.len() == 10 {
                    j.lines.pop_front();
                }
                j.lines.push_back(line);
            }
        }
    }

    fn finish(&self, job: &str, result: Result<String, String>) {
        if let Some(j) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get_mut(job) {
            j.done = Some(result);
        }
    }

    pub fn status(&self, job: &str) -> Option<crate::types::PullProgress> {
        let jobs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let j = jobs.get(job)?;
        Some(crate::types::PullProgress {
            image: j.image.clone(),
            lines: j.lines.iter().cloned().collect(),
            layers_done: j.layers.values().filter(|d| **d).count(),
            layers_total: j.layers.len(),
            done: j.done.clone(),
        })
    }
}
