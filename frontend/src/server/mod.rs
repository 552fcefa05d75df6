//! The web server (`ssr` only): state, the calls to sidecars on behalf of a
//! signed-in user, the axum routes beside the Leptos pages, and start-up.

pub mod access;
pub mod access_page;
pub mod actions_page;
pub mod agent;
pub mod alerts;
pub mod auth;
pub mod config;
pub mod discover;
pub mod enrol;
pub mod fleet;
pub mod forward;
pub mod history;
pub mod host_secret;
pub mod hosts_page;
pub mod jobs;
pub mod limits;
pub mod metrics;
pub mod oidc;
pub mod password;
pub mod routes;
pub mod scope;
pub mod session;
pub mod sidecar;
pub mod store;
pub mod throttle;
pub mod tokens;
pub mod totp;
pub mod tunnel;
pub mod users;
pub mod versions;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use leptos::prelude::*;
use shared::{AuditPage, Call, ContainerDetail, ContainerRef, LogsPage, PruneKind, PruneReport, RestartReport, Verb};

use crate::error::ConsoleError;
use crate::types::{AuditFilter, AuditView, ContainerPage, MergedLine, VerifyStatus};
use auth::{CurrentUser, Sessions};
use fleet::FleetHub;
use forward::ForwardAuth;
use throttle::{Backoff, Sampler};
use users::UserStore;

/// What a call on a host touches: the host itself, one container, or one
/// compose project's containers. [`Core::host_for`] checks the user's grants on it.
#[derive(Clone, Copy)]
pub enum On<'a> {
    Host,
    Container(&'a ContainerRef),
    App(&'a str),
}

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
    /// `DOCKWARD_REQUIRE_TOTP_FOR_ADMINS`.
    pub totp_for_admins: bool,
    /// Sign-in with an OpenID provider, when set up.
    pub oidc: Option<oidc::Oidc>,
    /// Whether users of the users file may sign in with a password (`DOCKWARD_LOCAL_LOGIN`).
    pub local_login: bool,
    /// Proxies whose `X-Forwarded-For` names the client (login throttling).
    pub forwarded_for: Vec<ipnet::IpNet>,
    pub login_by_ip: Backoff<IpAddr>,
    pub login_by_name: Backoff<String>,
    pub throttled_log: Sampler,
    pub limits: limits::UserLimits,
    pub first_password_file: std::path::PathBuf,
    /// Pulls and recreates running in the background, with their progress.
    pub jobs: Arc<jobs::Jobs>,
    /// Every host's `GET /v1/updates`, briefly kept.
    pub updates: jobs::UpdatesCache,
    /// Newer version tags, from the registries the console may ask.
    pub tags: Arc<versions::TagLister>,
    pub metrics: Arc<metrics::Metrics>,
    /// Lets a scraper read `/metrics` without a session.
    pub metrics_token: Option<metrics::MetricsToken>,
    /// Hosts added and revoked through the console.
    pub enrolling: Enrolling,
    /// The console's store (revoked sessions, history), when it could be opened.
    pub store: Option<store::Store>,
    /// Alert rules, incidents and notifications (they live in the store).
    pub alerts: Option<Arc<alerts::Alerts>>,
    /// When each API token's last use was written.
    pub touched: tokens::Touched,
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
    pub totp_for_admins: bool,
    pub oidc: Option<oidc::Oidc>,
    pub local_login: bool,
    pub forwarded_for: Vec<ipnet::IpNet>,
    pub follows_per_user: usize,
    pub requests_per_second: u32,
    pub first_password_file: std::path::PathBuf,
    /// The same metrics the hosts' sidecar clients time their calls into.
    pub metrics: Arc<metrics::Metrics>,
    pub metrics_token: Option<metrics::MetricsToken>,
    pub enrolling: Enrolling,
    /// `DOCKWARD_TAG_REGISTRIES`.
    pub tag_registries: Vec<String>,
    pub store: Option<store::Store>,
    pub alerts: Option<Arc<alerts::Alerts>>,
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
            totp_for_admins: o.totp_for_admins,
            oidc: o.oidc,
            local_login: o.local_login,
            forwarded_for: o.forwarded_for,
            login_by_ip: Backoff::new(throttle::BY_ADDRESS),
            login_by_name: Backoff::new(throttle::BY_NAME),
            throttled_log: Sampler::new(Duration::from_secs(10)),
            limits: limits::UserLimits::new(o.requests_per_second, o.follows_per_user),
            first_password_file: o.first_password_file,
            jobs: Arc::default(),
            updates: Default::default(),
            tags: Arc::new(versions::TagLister::new(o.tag_registries)),
            metrics: o.metrics,
            metrics_token: o.metrics_token,
            enrolling: o.enrolling,
            store: o.store,
            alerts: o.alerts,
            touched: Default::default(),
        }
    }

    /// Every host (configured and enrolled) and the tokens waiting.
    pub fn hosts_view(&self, user: &CurrentUser) -> Result<crate::types::HostsView, ConsoleError> {
        user.access.need(Verb::Revoke.role(), &scope::Scope::Fleet)?;
        let e = &self.enrolling.enrolment;
        let enrolled: Vec<String> = e.hosts().map_err(enrol_error)?.into_iter().map(|h| h.name).collect();
        let fleet = self.fleet.get();
        let sources = fleet.stats_sources();
        let hosts = fleet
            .hosts
            .iter()
            .zip(sources)
            .map(|(h, stats)| crate::types::HostEntry {
                name: h.name.clone(),
                url: h.base.clone(),
                enrolled: enrolled.contains(&h.name),
                pins: h.pins().iter().map(ToString::to_string).collect(),
                outbound: h.is_outbound().then(|| h.tunnel_peer().map(|p| p.to_string())),
                stats: stats.map(|s| (s.source.as_str().to_owned(), s.reason)),
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
        user.access.need(Verb::Revoke.role(), &scope::Scope::Fleet)?;
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
            .issue(name.trim(), url.trim(), shared::enrol::JOIN_TOKEN_TTL_MAX_S, &user.actor, |n| {
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
        user.access.need(Verb::Revoke.role(), &scope::Scope::Fleet)?;
        let e = &self.enrolling.enrolment;
        if !e.hosts().map_err(enrol_error)?.iter().any(|h| h.name == name) {
            return Err(ConsoleError::NotFound {
                what: format!("enrolled host {:?}", name.chars().take(64).collect::<String>()),
            });
        }
        let said =
            enrol::revoke(e, self.fleet.get().host(name).as_deref(), name, &user.actor).await.map_err(enrol_error)?;
        self.enrolling.changed.notify_one();
        Ok(said)
    }

    /// The host's sidecar, for `user` holding at least `role` on what the
    /// call touches (`on`); for a container whose app the user is granted
    /// (not its whole host), also its full id as the fleet knows it: the
    /// call names that, not the reference the request gave. A host or
    /// container the user does not see is "not found", as if absent.
    pub(crate) fn host_for(
        &self,
        user: &CurrentUser,
        name: &str,
        role: shared::Role,
        on: On<'_>,
    ) -> Result<(Arc<sidecar::Sidecar>, Option<String>), ConsoleError> {
        let missing = |what: &str, n: &str| ConsoleError::NotFound {
            what: format!("{what} {:?}", n.chars().take(64).collect::<String>()),
        };
        let a = &user.access;
        let fleet = self.fleet.get();
        let h = fleet.host(name).filter(|_| a.sees_host(name)).ok_or_else(|| missing("host", name))?;
        let target = match on {
            On::Host => scope::Scope::Host(name.to_owned()),
            On::App(project) => scope::Scope::App { host: Some(name.to_owned()), project: project.to_owned() },
            On::Container(_) if a.allows(role, &scope::Scope::Host(name.to_owned())) => return Ok((h, None)),
            On::Container(r) => {
                let found = fleet.with_fleet(|f| {
                    access::find(f, name, r.as_str())
                        .and_then(|c| Some((c.id.clone(), a.on_container(name, c)?, c.compose_project.clone())))
                });
                let Some((id, have, project)) = found else { return Err(missing("container", r.as_str())) };
                if have < role {
                    let on = project.map_or_else(|| format!("host:{name}"), |p| format!("app:{name}/{p}"));
                    return Err(ConsoleError::NotGranted { needed: role, on });
                }
                return Ok((h, Some(id)));
            }
        };
        a.need(role, &target)?;
        Ok((h, None))
    }

    /// Whether a user must set up two-factor sign-in before anything else:
    /// an admin (anywhere) of the users file, with `DOCKWARD_REQUIRE_TOTP_FOR_ADMINS`.
    pub fn must_enrol(&self, v: &users::UserView) -> bool {
        self.totp_for_admins && v.access.top() == Some(shared::Role::Admin) && !v.totp && !v.external
    }

    /// Whether `user` sees container `id` (its full id) of `host`.
    pub fn sees(&self, user: &CurrentUser, host: &str, id: &str) -> bool {
        user.access.whole()
            || self.fleet.get().with_fleet(|f| {
                f.hosts
                    .iter()
                    .find(|h| h.name == host)
                    .and_then(|h| h.containers.iter().find(|c| c.id == id))
                    .is_some_and(|c| user.access.on_container(host, c).is_some())
            })
    }

    pub async fn container_page(
        &self,
        user: &CurrentUser,
        host: &str,
        id: &str,
    ) -> Result<ContainerPage, ConsoleError> {
        let r = ContainerRef::parse(id)?;
        let (h, full) = self.host_for(user, host, Verb::InspectContainer.role(), On::Container(&r))?;
        let actor = Some(user.actor.as_str());
        let r = full.as_deref().unwrap_or(r.as_str());
        let mut detail: ContainerDetail = h.call(&Call::new(Verb::InspectContainer, &[r]), actor, None).await?;
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
        let (h, full) = self.host_for(user, host, Verb::Logs.role(), On::Container(&r))?;
        let call = Call::new(Verb::Logs, &[full.as_deref().unwrap_or(r.as_str())])
            .query("tail", tail)
            .query("timestamps", timestamps);
        Ok(h.call(&call, Some(&user.actor), None).await?)
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
        let role = Verb::Logs.role();
        let whole_host = user.access.allows(role, &scope::Scope::Host(host.to_owned()));
        let (h, _) = self.host_for(user, host, role, if whole_host { On::Host } else { On::App(project) })?;
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
            .filter(|c| user.access.on_container(host, c).is_some_and(|r| r >= role))
            .take(20)
            .map(|c| (c.id.clone(), c.name.clone()))
            .collect();
        let calls: Vec<Call> = members
            .iter()
            .map(|(id, _)| Call::new(Verb::Logs, &[id]).query("tail", tail).query("timestamps", true))
            .collect();
        let actor = Some(user.actor.as_str());
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
        let actor = Some(user.actor.as_str());
        let (h, _) = self.host_for(user, host, Verb::Audit.role().max(Verb::AuditVerify.role()), On::Host)?;
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
        let (h, full) = self.host_for(user, host, Verb::Restart.role(), On::Container(&r))?;
        tracing::info!(user = %user.actor, host, container = %r, "restart");
        let call = Call::new(Verb::Restart, &[full.as_deref().unwrap_or(r.as_str())]).query("timeout", 10);
        let out = h.call(&call, Some(&user.actor), None).await;
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
        let (h, _) = self.host_for(user, host, Verb::Prune.role(), On::Host)?;
        let call = Call::new(Verb::Prune, &[kind.as_str()])
            .query_opt("all", (all && kind != PruneKind::Containers).then_some(true));
        tracing::info!(user = %user.actor, host, kind = kind.as_str(), all, "prune");
        let out = h.call(&call, Some(&user.actor), None).await;
        self.fleet.get().poke(host);
        Ok(out?)
    }
}
