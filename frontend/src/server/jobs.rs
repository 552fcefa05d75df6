//! Work that outlives the request that started it: pulls, recreates (an
//! "Update" is a recreate with a pull) and an app's update (its containers
//! recreated one by one, stopping at the first failure). Each is a job in
//! [`Jobs`] whose progress the page polls; the sidecar audits the verbs.
//! Also the fleet's update check, [`UpdatesCache`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use shared::{
    Call, ContainerRef, ContainerUpdate, ImageRef, PullEvent, RecreateEvent, UpdateStatus, UpdatesReport, Verb,
};

use super::auth::CurrentUser;
use super::{sidecar, Core, On};
use crate::error::ConsoleError;
use crate::types::{JobProgress, UpdatesView};

/// Most jobs remembered (running or finished in the last 10 minutes).
const JOBS_MAX: usize = 64;
/// Progress lines kept per job.
const LINES_KEPT: usize = 12;
/// Longest silence on a pull's or recreate's progress stream (the longest
/// step, a health gate of 600 s or a stop of 120 s, fits in it).
const STREAM_IDLE_MAX: Duration = Duration::from_secs(15 * 60);
/// How long the fleet's update check is reused before it is asked again.
const UPDATES_FRESH: Duration = Duration::from_secs(60);
/// How long the version lookups may add to an update check (the tag lists
/// are cached, so later checks have them).
const VERSIONS_WITHIN: Duration = Duration::from_secs(10);

struct Job {
    title: String,
    /// Who started it: only they (or a fleet admin) may follow it.
    owner: String,
    lines: VecDeque<String>,
    layers: BTreeMap<String, bool>,
    done: Option<Result<String, String>>,
    started: Instant,
}

/// Jobs in memory: at most [`JOBS_MAX`], finished ones forgotten after 10 minutes.
#[derive(Default)]
pub struct Jobs(Mutex<HashMap<String, Job>>);

impl Jobs {
    fn create(&self, title: &str, user: &CurrentUser) -> Result<String, ConsoleError> {
        let mut jobs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        jobs.retain(|_, j| j.done.is_none() || j.started.elapsed() < Duration::from_secs(600));
        if jobs.len() >= JOBS_MAX {
            return Err(ConsoleError::Busy { what: "pulls and recreates at once; wait for some to finish".into() });
        }
        let mut id = [0u8; 12];
        getrandom::fill(&mut id).map_err(|e| ConsoleError::internal(e.to_string()))?;
        let id = hex::encode(id);
        let job = Job {
            title: title.to_owned(),
            owner: user.name.clone(),
            lines: VecDeque::new(),
            layers: BTreeMap::new(),
            done: None,
            started: Instant::now(),
        };
        jobs.insert(id.clone(), job);
        Ok(id)
    }

    fn line(&self, job: &str, line: String) {
        let mut jobs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(j) = jobs.get_mut(job) else { return };
        if j.lines.back() != Some(&line) {
            if j.lines.len() == LINES_KEPT {
                j.lines.pop_front();
            }
            j.lines.push_back(line);
        }
    }

    fn layer(&self, job: &str, status: &str, layer: Option<&String>) {
        let line = match layer {
            Some(l) => {
                let done = status.starts_with("Pull complete") || status.starts_with("Already exists");
                if let Some(j) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get_mut(job) {
                    *j.layers.entry(l.clone()).or_insert(false) |= done;
                }
                format!("{l}: {status}")
            }
            None => status.to_owned(),
        };
        self.line(job, line);
    }

    fn finish(&self, job: &str, result: Result<String, String>) {
        if let Some(j) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get_mut(job) {
            j.done = Some(result);
        }
    }

    /// A job, as the page shows it, to the user who started it or a fleet admin.
    pub fn status(&self, job: &str, user: &CurrentUser) -> Option<JobProgress> {
        let jobs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let j =
            jobs.get(job).filter(|j| j.owner == user.name || user.access.on_fleet() == Some(shared::Role::Admin))?;
        Some(JobProgress {
            title: j.title.clone(),
            lines: j.lines.iter().cloned().collect(),
            layers_done: j.layers.values().filter(|d| **d).count(),
            layers_total: j.layers.len(),
            done: j.done.clone(),
        })
    }
}

/// Reads a sidecar's NDJSON stream, handing each line that parses to `each`;
/// answers the last one.
async fn read_lines<T: DeserializeOwned>(
    h: &sidecar::Sidecar,
    resp: sidecar::Answer,
    mut each: impl FnMut(&T),
) -> Result<Option<T>, ConsoleError> {
    let mut body = resp.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut last = None;
    loop {
        // A sidecar says something at least at each step; silence this long is a hung stream.
        let next =
            tokio::time::timeout(STREAM_IDLE_MAX, body.next()).await.map_err(|_| ConsoleError::HostUnreachable {
                host: h.name.clone(),
                reason: format!("no progress for {} s", STREAM_IDLE_MAX.as_secs()),
            })?;
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| ConsoleError::HostUnreachable {
            host: h.name.clone(),
            reason: format!("the progress stream broke: {e}"),
        })?;
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            if let Ok(ev) = serde_json::from_slice::<T>(&line) {
                each(&ev);
                last = Some(ev);
            }
        }
        if buf.len() > 1 << 20 {
            buf.clear();
        }
    }
    Ok(last)
}

fn ended_without_result(h: &sidecar::Sidecar) -> ConsoleError {
    ConsoleError::HostUnreachable { host: h.name.clone(), reason: "the stream ended without a result".into() }
}

async fn run_pull(
    h: &sidecar::Sidecar,
    actor: &str,
    image: &ImageRef,
    jobs: &Jobs,
    job: &str,
) -> Result<String, ConsoleError> {
    let body = serde_json::json!({ "image": image.to_string() });
    let resp = h.stream(&Call::new(Verb::Pull, &[]), Some(actor), Some(&body)).await?;
    let last = read_lines::<PullEvent>(h, resp, |ev| {
        if let PullEvent::Progress { status, layer, .. } = ev {
            jobs.layer(job, status, layer.as_ref());
        }
    })
    .await?;
    match last {
        Some(PullEvent::Done { digest, image_id, .. }) => Ok(digest.or(image_id).unwrap_or_else(|| "pulled".into())),
        Some(PullEvent::Error { message }) => {
            Err(ConsoleError::SidecarRefused { host: h.name.clone(), status: 502, code: "pull_failed".into(), message })
        }
        _ => Err(ended_without_result(h)),
    }
}

/// What a recreate does first: pull (an update), build (a rebuild), or neither.
#[derive(Debug, Clone, Copy, Default)]
struct How {
    pull: bool,
    build: bool,
}

/// One recreate through the sidecar, its steps into the job; answers what
/// to show when it is done.
async fn run_recreate(
    h: &sidecar::Sidecar,
    actor: &str,
    target: &ContainerRef,
    how: How,
    jobs: &Jobs,
    job: &str,
) -> Result<String, ConsoleError> {
    let call = Call::new(Verb::Recreate, &[target.as_str()])
        .query_opt("pull", how.pull.then_some(true))
        .query_opt("build", how.build.then_some(true));
    let resp = h.stream(&call, Some(actor), None).await?;
    let last = read_lines::<RecreateEvent>(h, resp, |ev| match ev {
        RecreateEvent::Step { step, detail } => jobs.line(
            job,
            match detail {
                Some(d) => format!("{}: {d}", step.as_str()),
                None => step.as_str().to_owned(),
            },
        ),
        RecreateEvent::Progress { status, layer } => jobs.layer(job, status, layer.as_ref()),
        _ => {}
    })
    .await?;
    match last {
        Some(RecreateEvent::Done(r)) => {
            let image = r.new_digest.unwrap_or_else(|| r.new_image_id.chars().take(19).collect());
            Ok(format!("{} now runs {image} ({})", r.name, r.gate))
        }
        Some(RecreateEvent::Error { message, rolled_back }) => Err(ConsoleError::SidecarRefused {
            host: h.name.clone(),
            status: 502,
            code: "recreate_failed".into(),
            message: if rolled_back {
                format!("{message}; rolled back: the old container runs again")
            } else {
                format!("{message}; the old container could not be put back (the sidecar retries at its next start)")
            },
        }),
        _ => Err(ended_without_result(h)),
    }
}

impl Core {
    /// Starts a pull as a background job.
    pub fn start_pull(&self, user: &CurrentUser, host: &str, image: &str) -> Result<String, ConsoleError> {
        let image = ImageRef::parse(image.trim())?;
        let (h, _) = self.host_for(user, host, Verb::Pull.role(), On::Host)?;
        let job = self.jobs.create(&image.to_string(), user)?;
        tracing::info!(user = %user.actor, host, image = %image, job, "pull");
        let (jobs, actor, job2, fleet, host2) =
            (self.jobs.clone(), user.actor.clone(), job.clone(), self.fleet.get(), host.to_owned());
        tokio::spawn(async move {
            let result = run_pull(&h, &actor, &image, &jobs, &job2).await;
            jobs.finish(&job2, result.map_err(|e| e.to_string()));
            fleet.poke(&host2);
        });
        Ok(job)
    }

    /// Starts a recreate (with a pull first: an update) as a background job.
    pub fn start_recreate(
        &self,
        user: &CurrentUser,
        host: &str,
        id: &str,
        pull: bool,
        build: bool,
    ) -> Result<String, ConsoleError> {
        let target = ContainerRef::parse(id)?;
        if pull && build {
            return Err(ConsoleError::bad_input("build", "an update pulls, a rebuild builds: not both"));
        }
        // An update pulls, a rebuild builds: they need the pull's role too.
        let role = if pull || build { Verb::Recreate.role().max(Verb::Pull.role()) } else { Verb::Recreate.role() };
        let (h, full) = self.host_for(user, host, role, On::Container(&target))?;
        let target = match full {
            Some(id) => ContainerRef::parse(&id)?,
            None => target,
        };
        let how = How { pull, build };
        let verb = if pull {
            "update"
        } else if build {
            "rebuild"
        } else {
            "recreate"
        };
        let job = self.jobs.create(&format!("{verb} {target} on {host}"), user)?;
        tracing::info!(user = %user.actor, host, container = %target, pull, job, "recreate");
        let (jobs, actor, job2, fleet, host2) =
            (self.jobs.clone(), user.actor.clone(), job.clone(), self.fleet.get(), host.to_owned());
        let updates = self.updates.clone();
        tokio::spawn(async move {
            let result = run_recreate(&h, &actor, &target, how, &jobs, &job2).await;
            jobs.finish(&job2, result.map_err(|e| e.to_string()));
            updates.forget();
            fleet.poke(&host2);
        });
        Ok(job)
    }

    /// Updates a compose project's containers on `host` one by one (each a
    /// recreate with a pull), stopping at the first failure. Protected
    /// containers are left alone (and said so).
    pub fn start_app_update(&self, user: &CurrentUser, host: &str, project: &str) -> Result<String, ConsoleError> {
        let role = Verb::Recreate.role().max(Verb::Pull.role());
        let (h, _) = self.host_for(user, host, role, On::App(project))?;
        let fleet = self.fleet.get();
        let snapshot = fleet.snapshot();
        let mut members: Vec<(String, String, bool)> = snapshot
            .hosts
            .iter()
            .filter(|hv| hv.name == host)
            .flat_map(|hv| hv.containers.iter())
            .filter(|c| c.compose_project.as_deref() == Some(project))
            .map(|c| (c.id.clone(), c.name.clone(), c.protected))
            .collect();
        if members.is_empty() {
            return Err(ConsoleError::NotFound {
                what: format!("app {:?} on {host}", project.chars().take(64).collect::<String>()),
            });
        }
        members.sort_by(|a, b| a.1.cmp(&b.1));
        let job = self.jobs.create(&format!("update {project} on {host}"), user)?;
        tracing::info!(user = %user.actor, host, project, job, containers = members.len(), "app update");
        let (jobs, actor, job2, host2) = (self.jobs.clone(), user.actor.clone(), job.clone(), host.to_owned());
        let updates = self.updates.clone();
        tokio::spawn(async move {
            let total = members.len();
            let mut done = 0;
            let mut result = Ok(String::new());
            for (id, name, protected) in members {
                if protected {
                    jobs.line(&job2, format!("{name}: protected, left alone"));
                    continue;
                }
                jobs.line(&job2, format!("{name}: updating ({} of {total})", done + 1));
                let Ok(target) = ContainerRef::parse(&id) else { continue };
                match run_recreate(&h, &actor, &target, How { pull: true, build: false }, &jobs, &job2).await {
                    Ok(line) => {
                        jobs.line(&job2, line);
                        done += 1;
                    }
                    Err(e) => {
                        result = Err(format!("{name}: {e}; stopped after {done} of {total}"));
                        break;
                    }
                }
            }
            let result = result.map(|_| format!("{done} of {total} containers updated"));
            jobs.finish(&job2, result);
            updates.forget();
            fleet.poke(&host2);
        });
        Ok(job)
    }

    /// Every host's `GET /v1/updates` entries, at most [`UPDATES_FRESH`] old:
    /// asked of all hosts at once when older (a host that fails is left out,
    /// and said in the log).
    pub async fn update_entries(&self) -> Entries {
        if let Some(v) = self.updates.fresh() {
            return v;
        }
        let fleet = self.fleet.get();
        let asks = fleet.names().into_iter().filter_map(|n| fleet.host(&n)).map(|h| async move {
            let r: Result<UpdatesReport, _> = h.call(&Call::new(Verb::Updates, &[]), None, None).await;
            (h.name.clone(), r)
        });
        let mut entries = Vec::new();
        for (host, r) in futures_util::future::join_all(asks).await {
            match r {
                Ok(report) => entries.extend(report.containers.into_iter().map(|c| (host.clone(), c))),
                Err(e) => tracing::info!(host, error = %e, "no update check"),
            }
        }
        let entries = Arc::new(entries);
        self.updates.keep(entries.clone());
        entries
    }

    /// The fleet's update marks, as the browser shows them.
    /// The containers `user` sees with an update available or a build to redo.
    pub async fn updates(&self, user: &CurrentUser) -> UpdatesView {
        let entries = self.update_entries().await;
        let keys = |f: &dyn Fn(&ContainerUpdate) -> bool| {
            entries
                .iter()
                .filter(|(h, c)| f(c) && self.sees(user, h, &c.id))
                .map(|(h, c)| UpdatesView::key(h, &c.id))
                .collect()
        };
        UpdatesView {
            update: keys(&|c| c.status == UpdateStatus::UpdateAvailable),
            rebuild: keys(&|c| c.buildable || c.build_note.is_some()),
        }
    }

    /// One container's entry, and newer version tags of its image (within a
    /// bounded wait; the tag lists are cached for the next look).
    pub async fn update_of(
        &self,
        user: &CurrentUser,
        host: &str,
        id: &str,
    ) -> (Option<ContainerUpdate>, Option<crate::types::NewerVersions>) {
        let entries = self.update_entries().await;
        let Some((_, c)) = entries.iter().find(|(h, c)| h == host && c.id == id && self.sees(user, h, id)) else {
            return (None, None);
        };
        let newer = match ImageRef::parse(&c.image) {
            Ok(r) => {
                let tags = self.tags.clone();
                let task = tokio::spawn(async move { tags.newer_for(&r).await });
                tokio::time::timeout(VERSIONS_WITHIN, task).await.ok().and_then(Result::ok).flatten()
            }
            Err(_) => None,
        };
        (Some(c.clone()), newer)
    }
}

/// The last fleet-wide update check, reused for [`UPDATES_FRESH`].
#[derive(Clone, Default)]
pub struct UpdatesCache(Arc<Mutex<Option<(Instant, Entries)>>>);

/// Every host's `GET /v1/updates` entries, by host.
type Entries = Arc<Vec<(String, ContainerUpdate)>>;

impl UpdatesCache {
    fn fresh(&self) -> Option<Entries> {
        let kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.as_ref().filter(|(at, _)| at.elapsed() < UPDATES_FRESH).map(|(_, v)| v.clone())
    }

    fn keep(&self, view: Entries) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), view));
    }

    /// After a recreate: the next look asks the hosts again.
    pub fn forget(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}
