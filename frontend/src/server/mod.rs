//! The web server (`ssr` only): state, the calls to sidecars on behalf of a
//! signed-in user, the axum routes beside the Leptos pages, and start-up.

pub mod agent;
pub mod auth;
pub mod config;
pub mod discover;
pub mod enrol;
pub mod fleet;
pub mod forward;
pub mod host_secret;
pub mod hosts_page;
pub mod limits;
pub mod metrics;
pub mod password;
pub mod routes;
pub mod session;
pub mod sidecar;
pub mod throttle;
pub mod tunnel;
pub mod users;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use leptos::prelude::*;
use shared::{
    AuditPage, Call, ContainerDetail, ContainerRef, ImageRef, LogsPage, PruneKind, PruneReport, PullEvent,
    RestartReport, Verb,
};

use crate::error::ConsoleError;
use crate::types::{AuditFilter, AuditView, ContainerPage, MergedLine, VerifyStatus};
use auth::{CurrentUser, Sessions};
use fleet::FleetHub;
use forward::ForwardAuth;
use throttle::{Backoff, Sampler};
use users::UserStore;

/// App logs read at most this many containers' tails at once.
const APP_LOG_FAN_OUT: usize = 4;

/// Everything the handlers share.
pub struct Core {
    /// The fleet of the current host set (rebuilt when hosts are enrolled or revoked).
    pub fleet: fleet::FleetSlot,
    pub users: Arc<UserStore>,
    pub sessions: Sessions,
    pub forward_auth: ForwardAuth,
    pub secure_cookies: bool,
    /// Proxies whose `X-Forwarded-For` names the client (login throttling).
    pub forwarded_for: Vec<ipnet::IpNet>,
    pub login_by_ip: Backoff<IpAddr>,
    pub login_by_name: Backoff<String>,
    pub throttled_log: Sampler,
    pub limits: limits::UserLimits,
    pub first_password_file: std::path::PathBuf,
    pub pulls: Arc<Pulls>,
    pub metrics: Arc<metrics::Metrics>,
    /// Lets a scraper read `/metrics` without a session.
    pub metrics_token: Option<metrics::MetricsToken>,
    /// Hosts added and revoked through the console.
    pub enrolling: Enrolling,
}

/// What adding and revoking hosts needs.
pub struct Enrolling {
    pub enrolment: enrol::Enrolment,
    /// Woken when the enrolled hosts change: the fleet is rebuilt.
    pub changed: Arc<tokio::sync::Notify>,
    /// The agent port as new hosts reach it, and its certificate's
    /// fingerprint; `None` when the agent port is off.
    pub agent: Option<(String, String)>,
}

/// The settings [`Core`] is built from.
pub struct Options {
    pub sessions: Sessions,
    pub forward_auth: ForwardAuth,
    pub secure_cookies: bool,
    pub forwarded_for: Vec<ipnet::IpNet>,
    pub follows_per_user: usize,
    pub requests_per_second: u32,
    pub first_password_file: std::path::PathBuf,
    /// The same metrics the hosts' sidecar clients time their calls into.
    pub metrics: Arc<metrics::Metrics>,
    pub metrics_token: Option<metrics::MetricsToken>,
    pub enrolling: Enrolling,
}

fn enrol_error(e: enrol::EnrolError) -> ConsoleError {
    match e.status() {
        400 => ConsoleError::bad_input("host", e.to_string()),
        409 => ConsoleError::bad_input("host", e.to_string()),
        _ => ConsoleError::internal(e.to_string()),
    }
}

/// The shared state, inside a server function.
pub fn core() -> Result<Arc<Core>, ConsoleError> {
    use_context::<Arc<Core>>().ok_or_else(|| ConsoleError::internal("server state missing"))
}

impl Core {
    pub fn new(fleet: Arc<FleetHub>, users: Arc<UserStore>, o: Options) -> Self {
        Self {
            fleet: fleet::FleetSlot::new(fleet),
            users,
            sessions: o.sessions,
            forward_auth: o.forward_auth,
            secure_cookies: o.secure_cookies,
            forwarded_for: o.forwarded_for,
            login_by_ip: Backoff::new(throttle::BY_ADDRESS),
            login_by_name: Backoff::new(throttle::BY_NAME),
            throttled_log: Sampler::new(Duration::from_secs(10)),
            limits: limits::UserLimits::new(o.requests_per_second, o.follows_per_user),
            first_password_file: o.first_password_file,
            pulls: Arc::default(),
            metrics: o.metrics,
            metrics_token: o.metrics_token,
            enrolling: o.enrolling,
        }
    }

    /// Every host (configured and enrolled) and the tokens waiting.
    pub fn hosts_view(&self) -> Result<crate::types::HostsView, ConsoleError> {
        let e = &self.enrolling.enrolment;
        let enrolled: Vec<String> = e.hosts().map_err(enrol_error)?.into_iter().map(|h| h.name).collect();
        let hosts = self
            .fleet
            .get()
            .hosts
            .iter()
            .map(|h| crate::types::HostEntry {
                name: h.name.clone(),
                url: h.base.clone(),
                enrolled: enrolled.contains(&h.name),
                pins: h.pins().iter().map(ToString::to_string).collect(),
                outbound: h.is_outbound().then(|| h.tunnel_peer().map(|p| p.to_string())),
            })
            .collect();
        let pending = e.pending().map_err(enrol_error)?.into_iter().map(|p| (p.host, p.expires_at)).collect();
        Ok(crate::types::HostsView { hosts, pending, agent: self.enrolling.agent.is_some() })
    }

    /// A one-time join token for a new host, and the command to run there.
    pub fn add_host(
        &self,
        user: &CurrentUser,
        name: &str,
        url: &str,
    ) -> Result<crate::types::JoinCommand, ConsoleError> {
        let Some((agent_url, pin)) = &self.enrolling.agent else {
            return Err(ConsoleError::bad_input(
                "host",
                "the agent port is off (DOCKWARD_AGENT_LISTEN): hosts cannot enrol",
            ));
        };
        let fleet = self.fleet.get();
        let issued = self
            .enrolling
            .enrolment
            .issue(name.trim(), url.trim(), shared::enrol::JOIN_TOKEN_TTL_MAX_S, &user.name, |n| {
                fleet.host(n).is_some()
            })
            .map_err(enrol_error)?;
        Ok(crate::types::JoinCommand {
            host: name.trim().to_owned(),
            expires_at: issued.expires_at,
            command: enrol::join_command(url.trim(), agent_url, pin, issued.token.as_str()),
        })
    }

    /// Revokes an enrolled host: its sidecar is told to forget its secret
    /// (audited there), then the console forgets the host (audited here) and
    /// drops it from the fleet.
    pub async fn revoke_host(&self, user: &CurrentUser, name: &str) -> Result<String, ConsoleError> {
        let e = &self.enrolling.enrolment;
        if !e.hosts().map_err(enrol_error)?.iter().any(|h| h.name == name) {
            return Err(ConsoleError::NotFound {
                what: format!("enrolled host {:?}", name.chars().take(64).collect::<String>()),
            });
        }
        let said =
            enrol::revoke(e, self.fleet.get().host(name).as_deref(), name, &user.name).await.map_err(enrol_error)?;
        self.enrolling.changed.notify_one();
        Ok(said)
    }

    fn host(&self, name: &str) -> Result<Arc<sidecar::Sidecar>, ConsoleError> {
        self.fleet.get().host(name).ok_or_else(|| ConsoleError::NotFound {
            what: format!("host {:?}", name.chars().take(64).collect::<String>()),
        })
    }

    pub async fn container_page(
        &self,
        user: &CurrentUser,
        host: &str,
        id: &str,
    ) -> Result<ContainerPage, ConsoleError> {
        let r = ContainerRef::parse(id)?;
        let h = self.host(host)?;
        let actor = Some(user.name.as_str());
        let mut detail: ContainerDetail =
            h.call(&Call::new(Verb::InspectContainer, &[r.as_str()]), actor, None).await?;
        crate::model::neutralise_detail(&mut detail);
        // The sidecar keeps the history (the console keeps none per container).
        let call = Call::new(Verb::StatsHistory, &[]).query("ref", &detail.summary.id).query("window", 900);
        let history = h.call::<shared::StatsHistory>(&call, actor, None).await.map(|h| h.points).unwrap_or_default();
        Ok(ContainerPage { host: host.to_owned(), detail, history })
    }

    pub async fn logs(
        &self,
        user: &CurrentUser,
        host: &str,
        id: &str,
        tail: u32,
        timestamps: bool,
    ) -> Result<LogsPage, ConsoleError> {
        let r = ContainerRef::parse(id)?;
        let tail = shared::bounded("tail", u64::from(tail), 0, shared::limits::LOG_TAIL_MAX)?;
        let call = Call::new(Verb::Logs, &[r.as_str()]).query("tail", tail).query("timestamps", timestamps);
        Ok(self.host(host)?.call(&call, Some(&user.name), None).await?)
    }

    /// Every container of `project` on `host`, tails merged by timestamp
    /// (at most 20 containers × `tail` lines; `tail` ≤ 1000), read
    /// [`APP_LOG_FAN_OUT`] at a time.
    pub async fn app_logs(
        &self,
        user: &CurrentUser,
        host: &str,
        project: &str,
        tail: u32,
    ) -> Result<Vec<MergedLine>, ConsoleError> {
        use futures_util::StreamExt;
        let tail = tail.clamp(1, 1000);
        let h = self.host(host)?;
        let fleet = self.fleet.get().snapshot();
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
        let actor = Some(user.name.as_str());
        // The futures are built first: a closure inside the stream trips the
        // compiler's Send inference for server functions.
        let futs: Vec<_> = calls.iter().map(|c| h.call::<LogsPage>(c, actor, None)).collect();
        let pages: Vec<_> = futures_util::stream::iter(futs).buffered(APP_LOG_FAN_OUT).collect().await;
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

    pub async fn audit(&self, user: &CurrentUser, host: &str, f: &AuditFilter) -> Result<AuditView, ConsoleError> {
        let actor = Some(user.name.as_str());
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
                // The page's date-time pickers send local-form times, read as UTC.
                let v = if k == "since" || k == "until" { crate::model::utc_time(v) } else { v.to_owned() };
                call = call.query(k, v);
            }
        }
        let mut page: AuditPage = h.call(&call, actor, None).await?;
        page.records.iter_mut().for_each(crate::model::neutralise_audit_record);
        let verify = match h.call::<VerifyStatus>(&Call::new(Verb::AuditVerify, &[]), actor, None).await {
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
        self.fleet.get().poke(host);
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
        self.fleet.get().poke(host);
        Ok(out?)
    }

    /// Starts a pull as a background job; progress is kept in [`Pulls`].
    pub fn start_pull(&self, user: &CurrentUser, host: &str, image: &str) -> Result<String, ConsoleError> {
        let image = ImageRef::parse(image.trim())?;
        let h = self.host(host)?.clone();
        let job = self.pulls.create(&image.to_string())?;
        tracing::info!(user = %user.name, host, image = %image, job, "pull");
        let (pulls, actor, job2, fleet, host2) =
            (self.pulls.clone(), user.name.clone(), job.clone(), self.fleet.get(), host.to_owned());
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
            reason: format!("the pull stream broke: {e}"),
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
