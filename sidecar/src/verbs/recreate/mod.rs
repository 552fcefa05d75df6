//! `POST /v1/containers/{ref}/recreate?pull=&timeout=&health_timeout=&grace=`:
//! replace a container by a new one made from its configuration
//! ([`plan`]) and its image reference as it resolves now (after a pull, if
//! asked), with a health gate and rollback.
//!
//! Steps: (pull) → create the new container under a temporary name (and
//! connect its other networks) → stop the old one → rename the old aside and
//! the new into place → start the new one → gate: healthy, if it has a
//! healthcheck (within `health_timeout`), else still running after `grace`
//! → remove the old one (its anonymous volumes live on in the new one).
//! Any failure or a failed gate rolls back: the new container is removed,
//! the old one gets its name back and is started again if it was running.
//! Each step is journalled first ([`journal`]), so a sidecar killed midway
//! finishes or rolls back at its next start ([`recover`]).
//!
//! Refused: protected containers (403), a container already being recreated
//! (409), `--rm` containers (403: they could not be put back), bad input
//! (400). The answer streams `RecreateEvent` lines; `recreate.start` is on
//! disk before anything changes, the outcome (with the old and new image ids
//! and digest) before the last line.

pub mod build;
pub mod plan;

use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bollard::models::NetworkConnectRequest;
use bollard::query_parameters::{
    CreateContainerOptions, RemoveContainerOptions, RenameContainerOptions, StartContainerOptions, StopContainerOptions,
};
use futures_util::StreamExt;
use serde::Deserialize;
use shared::{
    bounded, limits, ContainerRef, ImageRef, Outcome, PullEvent, RecreateEvent, RecreateReport, RecreateStep, Verb,
};
use tokio::sync::mpsc;
use utoipa::IntoParams;

use crate::audit::{Caller, Draft};
use crate::error::ApiError;
use crate::extract::{Query, RefPath};
use crate::recreates::journal::{self, Journal, Phase};
use crate::recreates::{Busy, MADE_FOR_LABEL};
use crate::state::{App, AppState};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecreateQuery {
    /// Pull the container's image reference first (an update). Default false.
    pull: Option<bool>,
    /// Build the compose service's image from source first (needs `DOCKWARD_BUILD_ROOT`).
    /// Default false; not with `pull`.
    build: Option<bool>,
    /// Seconds to wait for the old container's clean stop before killing it (0–120; its own
    /// stop timeout if absent).
    timeout: Option<u64>,
    /// Seconds to wait for a new container with a healthcheck to be healthy (1–600, default 120).
    health_timeout: Option<u64>,
    /// Seconds a new container without a healthcheck must stay running (0–120, default 5).
    grace: Option<u64>,
}

/// Everything checked before anything changes.
struct Prepared {
    old_id: String,
    old_was_running: bool,
    old_image_id: String,
    /// The image reference to pull, when asked to.
    pull: Option<ImageRef>,
    /// The service's build, when asked to rebuild.
    build: Option<build::BuildPlan>,
    /// A pull's place among `DOCKWARD_MAX_PULLS` (a pull or a build).
    _pull_permit: Option<tokio::sync::OwnedSemaphorePermit>,
    plan: plan::Plan,
    stop_timeout: Option<i32>,
    health_timeout: Duration,
    grace: Duration,
    _busy: Busy,
}

pub async fn recreate(
    State(app): State<App>,
    caller: Caller,
    RefPath(r): RefPath,
    Query(q): Query<RecreateQuery>,
) -> Response {
    let mut draft = Draft::new(&caller, Verb::Recreate.audit_name());
    draft.target(r.as_str(), None);
    let prepared = match prepare(&app, &caller, &r, q, &mut draft).await {
        Ok(p) => p,
        Err(e) => return super::finish(&app, draft, Err::<(), _>(e)).await,
    };
    if let Err(e) = super::intent(&app, &draft).await {
        return e.into_response();
    }
    let (tx, rx) = mpsc::channel::<RecreateEvent>(64);
    let app2 = app.clone();
    // Its own task: a client hanging up cannot cut a recreate between steps.
    tokio::spawn(async move {
        let mut j = Journal {
            name: prepared.plan.name.clone(),
            old_id: prepared.old_id.clone(),
            old_was_running: prepared.old_was_running,
            new_id: None,
            phase: Phase::Creating,
            actor: caller.actor.clone(),
            client: caller.client.clone(),
        };
        let last = match run(&app2, &prepared, &mut j, &tx).await {
            Ok(report) => {
                draft
                    .target(&report.new_id, Some(&report.name))
                    .param("old_id", &report.old_id)
                    .param("old_image", &report.old_image_id)
                    .param("new_image", &report.new_image_id)
                    .param("gate", &report.gate);
                if let Some(d) = &report.new_digest {
                    draft.param("new_digest", d);
                }
                match app2.audit.commit(draft, Outcome::Ok, None).await {
                    Ok(_) => RecreateEvent::Done(report),
                    Err(e) => RecreateEvent::Error { message: e.to_string(), rolled_back: false },
                }
            }
            Err(failure) => {
                draft.param("old_image", &prepared.old_image_id).param("rolled_back", failure.rolled_back);
                if let Some(n) = &failure.new_id {
                    draft.param("new_id", n);
                }
                let outcome = if failure.denial { Outcome::Denied } else { Outcome::Error };
                let msg = failure.message;
                match app2.audit.commit(draft, outcome, Some(msg.clone())).await {
                    Ok(_) => RecreateEvent::Error { message: msg, rolled_back: failure.rolled_back },
                    Err(ae) => {
                        RecreateEvent::Error { message: format!("{msg}; {ae}"), rolled_back: failure.rolled_back }
                    }
                }
            }
        };
        app2.engine.invalidate(&prepared.old_id).await;
        let _ = tx.send(last).await;
        drop(prepared);
    });
    super::ndjson(rx)
}

async fn prepare(
    app: &App,
    caller: &Caller,
    r: &ContainerRef,
    q: RecreateQuery,
    draft: &mut Draft,
) -> Result<Prepared, ApiError> {
    let pull = q.pull.unwrap_or(false);
    let rebuild = q.build.unwrap_or(false);
    draft.param("pull", pull);
    if rebuild {
        draft.param("build", true);
    }
    if pull && rebuild {
        return Err(ApiError::BadRequest("pull and build exclude each other".into()));
    }
    let stop_timeout = q.timeout.map(|t| bounded("timeout", t, 0, limits::RESTART_TIMEOUT_MAX)).transpose()?;
    let health_timeout = bounded(
        "health_timeout",
        q.health_timeout.unwrap_or(limits::RECREATE_HEALTH_TIMEOUT_DEFAULT),
        1,
        limits::RECREATE_HEALTH_TIMEOUT_MAX,
    )?;
    let grace = bounded("grace", q.grace.unwrap_or(limits::RECREATE_GRACE_DEFAULT), 0, limits::RECREATE_GRACE_MAX)?;
    draft.param("health_timeout", health_timeout).param("grace", grace);
    if let Some(t) = stop_timeout {
        draft.param("timeout", t);
    }
    app.engine.require_up()?;
    let c = app.engine.resolve(r).await?;
    draft.target(&c.id, Some(&c.name));
    if c.protected {
        return Err(super::protected(&c.name, "recreate"));
    }
    let busy = app.recreates.claim(&c.id, &c.name)?;
    app.limits.restart.check(&(caller.client.clone(), c.id.clone()))?;
    let ins = app.engine.inspect_uncached(&c.id).await?;
    let configured = ins.config.as_ref().and_then(|c| c.image.clone()).unwrap_or_default();
    let pull = if pull {
        // An image, once pulled, is the whole host's: no scope owns it.
        app.engine.policy.refuse_host_wide("pull")?;
        let image = super::pull::configured_ref(&configured, ins.image.as_deref().unwrap_or("")).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "{} was created from an image id, not a tag: there is nothing to pull",
                c.name
            ))
        })?;
        super::pull::registry_allowed(app, &image)?;
        app.limits.pull.check(&caller.client)?;
        draft.param("image", &image);
        Some(image)
    } else {
        None
    };
    let build = if rebuild {
        // An image tag, once rebuilt, is the whole host's.
        app.engine.policy.refuse_host_wide("build")?;
        let labels = ins.config.as_ref().and_then(|c| c.labels.clone()).unwrap_or_default();
        let plan = build::plan(app.recreates.build_root.as_deref(), &labels, &configured)
            .map_err(|e| ApiError::Forbidden(e.to_string()))?;
        app.limits.pull.check(&caller.client)?;
        Some(plan)
    } else {
        None
    };
    let pull_permit =
        if pull.is_some() || rebuild { Some(super::stream_permit(app, crate::state::Pool::Pull)?) } else { None };
    let old_image_id = ins.image.clone().unwrap_or_default();
    let image_config = match app.engine.timed("inspect_image", app.engine.client().inspect_image(&old_image_id)).await {
        Ok(i) => i.config,
        Err(ApiError::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    let plan = plan::plan(&ins, image_config.as_ref()).map_err(|e| match e {
        plan::PlanError::AutoRemove(_) => ApiError::Forbidden(e.to_string()),
        plan::PlanError::Missing(_) => ApiError::Internal(e.to_string()),
    })?;
    let old_was_running = ins.state.as_ref().and_then(|s| s.running).unwrap_or(false);
    Ok(Prepared {
        old_id: c.id,
        old_was_running,
        old_image_id,
        pull,
        build,
        _pull_permit: pull_permit,
        plan,
        // Never longer than the engine call may take: its own stop timeout, at most 120 s.
        stop_timeout: Some(
            stop_timeout
                .or_else(|| ins.config.as_ref().and_then(|c| c.stop_timeout).and_then(|t| u64::try_from(t).ok()))
                .unwrap_or(10)
                .min(limits::RESTART_TIMEOUT_MAX) as i32,
        ),
        health_timeout: Duration::from_secs(health_timeout),
        grace: Duration::from_secs(grace),
        _busy: busy,
    })
}

/// Why a recreate failed, and whether the old container is as it was.
struct Failure {
    message: String,
    rolled_back: bool,
    /// Refused by policy (before any change), not failed.
    denial: bool,
    /// The container it made (and removed, when rolled back).
    new_id: Option<String>,
}

fn step(tx: &mpsc::Sender<RecreateEvent>, step: RecreateStep, detail: Option<String>) {
    // Dropped only when the client is 64 lines behind: progress is advisory.
    let _ = tx.try_send(RecreateEvent::Step { step, detail });
}

fn write_journal(app: &AppState, j: &Journal) -> Result<(), ApiError> {
    journal::write(&app.recreates.journal_dir, j)
        .map_err(|e| ApiError::Internal(format!("cannot write the recreate journal: {e}")))
}

async fn run(
    app: &AppState,
    p: &Prepared,
    j: &mut Journal,
    tx: &mpsc::Sender<RecreateEvent>,
) -> Result<RecreateReport, Failure> {
    let untouched =
        |e: ApiError| Failure { denial: e.is_denial(), message: e.to_string(), rolled_back: true, new_id: None };
    if let Some(image) = &p.pull {
        step(tx, RecreateStep::Pull, Some(image.to_string()));
        let progress = |ev: PullEvent| {
            if let PullEvent::Progress { status, layer, .. } = ev {
                let _ = tx.try_send(RecreateEvent::Progress { status, layer });
            }
        };
        super::pull::run(app, image, &progress).await.map_err(untouched)?;
    }
    if let Some(b) = &p.build {
        step(tx, RecreateStep::Build, Some(format!("{} from {}", b.service, b.context.display())));
        build_image(app, b, tx).await.map_err(untouched)?;
    }
    write_journal(app, j).map_err(untouched)?;
    match swap_in(app, p, j, tx).await {
        Ok(report) => {
            j.phase = Phase::Passed;
            // Past the gate: the old container is no longer needed, whatever happens next.
            let _ = write_journal(app, j);
            step(tx, RecreateStep::RemoveOld, None);
            match finish(app, j).await {
                Ok(()) => {
                    let _ = journal::remove(&app.recreates.journal_dir, &j.old_id);
                }
                Err(e) => tracing::warn!(error = %e, old = %j.old_id, "the old container stays until the next start"),
            }
            Ok(report)
        }
        Err(e) => {
            step(tx, RecreateStep::RollBack, None);
            let message = e.to_string();
            match roll_back(app, j).await {
                Ok(done) => {
                    let _ = journal::remove(&app.recreates.journal_dir, &j.old_id);
                    let rolled_back = done == RolledBack::OldRestored;
                    let message = if rolled_back { message } else { format!("{message}; {}", done.as_str()) };
                    Err(Failure { message, rolled_back, denial: false, new_id: j.new_id.clone() })
                }
                Err(re) => {
                    tracing::error!(error = %re, old = %j.old_id, "rollback failed; retried at the next start");
                    Err(Failure {
                        message: format!("{message}; the rollback failed: {re}"),
                        rolled_back: false,
                        denial: false,
                        new_id: j.new_id.clone(),
                    })
                }
            }
        }
    }
}

/// Create, stop, swap, start and gate; any error is rolled back by the caller.
async fn swap_in(
    app: &AppState,
    p: &Prepared,
    j: &mut Journal,
    tx: &mpsc::Sender<RecreateEvent>,
) -> Result<RecreateReport, ApiError> {
    let engine = &app.engine;
    let client = engine.client();
    let name = &p.plan.name;
    step(tx, RecreateStep::Create, None);
    let opts = CreateContainerOptions { name: Some(plan::temp_name(name)), ..Default::default() };
    let mut body = p.plan.create.clone();
    body.labels.get_or_insert_with(Default::default).insert(MADE_FOR_LABEL.to_owned(), j.old_id.clone());
    let created = engine.timed("create_container", client.create_container(Some(opts), body)).await?;
    j.new_id = Some(created.id.clone());
    j.phase = Phase::Created;
    write_journal(app, j)?;
    for (net, settings) in &p.plan.extra_networks {
        let req =
            NetworkConnectRequest { container: Some(created.id.clone()), endpoint_config: Some(settings.clone()) };
        engine.timed("connect_network", client.connect_network(net, req)).await?;
    }
    // As it is now (a pull may have taken minutes): stopped meanwhile, it stays stopped.
    let now = engine.inspect_uncached(&p.old_id).await?;
    j.old_was_running = now.state.as_ref().and_then(|s| s.running).unwrap_or(false);
    if j.old_was_running {
        step(tx, RecreateStep::StopOld, None);
        let opts = StopContainerOptions { t: p.stop_timeout, signal: None };
        engine.timed("stop_container", client.stop_container(&p.old_id, Some(opts))).await?;
    }
    j.phase = Phase::Stopped;
    write_journal(app, j)?;
    if let Some(pause) = app.recreates.pause_after_stop {
        tracing::warn!(?pause, "test hook: pausing between stop and start");
        tokio::time::sleep(pause).await;
    }
    step(tx, RecreateStep::Swap, None);
    rename(app, &p.old_id, &plan::aside_name(name)).await?;
    rename(app, &created.id, name).await?;
    j.phase = Phase::Swapped;
    write_journal(app, j)?;
    let gate = if j.old_was_running {
        step(tx, RecreateStep::StartNew, None);
        engine.timed("start_container", client.start_container(&created.id, None::<StartContainerOptions>)).await?;
        health_gate(app, &created.id, p, tx).await?
    } else {
        "created".to_owned()
    };
    let ins = engine.inspect_uncached(&created.id).await?;
    let new_image_id = ins.image.clone().unwrap_or_default();
    let configured = ins.config.as_ref().and_then(|c| c.image.clone()).unwrap_or_default();
    let new_digest = match super::pull::configured_ref(&configured, &new_image_id) {
        Some(image) => {
            let names = engine.image_names(&new_image_id, crate::docker::Freshness::Fresh).await?;
            let prefix = format!("{}@", image.familiar_repository());
            names.iter().find_map(|n| n.strip_prefix(&prefix).map(str::to_owned))
        }
        None => None,
    };
    Ok(RecreateReport {
        name: name.clone(),
        old_id: p.old_id.clone(),
        new_id: created.id,
        old_image_id: p.old_image_id.clone(),
        new_image_id,
        new_digest,
        gate,
    })
}

/// Builds `b`'s image through the engine's build endpoint (the classic
/// builder), its output lines passed on as progress.
async fn build_image(app: &AppState, b: &build::BuildPlan, tx: &mpsc::Sender<RecreateEvent>) -> Result<(), ApiError> {
    let (dir, max) = (b.context.clone(), app.recreates.build_context_max);
    let tar = tokio::task::spawn_blocking(move || build::context_tar(&dir, max))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Forbidden(e.to_string()))?;
    let opts = bollard::query_parameters::BuildImageOptions {
        dockerfile: b.dockerfile.clone(),
        t: Some(b.tag.clone()),
        target: b.target.clone().unwrap_or_default(),
        buildargs: (!b.args.is_empty()).then(|| b.args.clone()),
        rm: true,
        forcerm: true,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let client = app.engine.client();
    let mut stream = client.build_image(opts, None, Some(bollard::body_full(tar.into())));
    while let Some(item) = stream.next().await {
        let info = item.map_err(ApiError::from)?;
        if let Some(e) = info.error.filter(|e| !e.is_empty()) {
            return Err(ApiError::Docker(format!(
                "the build failed: {}",
                crate::docker::convert::truncate(&e, limits::BUILD_LINE_MAX)
            )));
        }
        if let Some(line) = info.stream.as_deref().map(str::trim_end).filter(|l| !l.is_empty()) {
            let _ = tx.try_send(RecreateEvent::Progress {
                status: crate::docker::convert::truncate(line, limits::BUILD_LINE_MAX),
                layer: None,
            });
        }
    }
    app.engine.metrics().docker_call("build_image", started.elapsed().as_secs_f64());
    Ok(())
}

async fn rename(app: &AppState, id: &str, to: &str) -> Result<(), ApiError> {
    let opts = RenameContainerOptions { name: to.to_owned() };
    app.engine.timed("rename_container", app.engine.client().rename_container(id, opts)).await
}

/// Healthy (with a healthcheck) within the timeout, or still running after
/// the grace period; answers which.
async fn health_gate(
    app: &AppState,
    id: &str,
    p: &Prepared,
    tx: &mpsc::Sender<RecreateEvent>,
) -> Result<String, ApiError> {
    let first = app.engine.inspect_uncached(id).await?;
    let has_health = first.state.as_ref().and_then(|s| s.health.as_ref()).is_some_and(|h| h.status.is_some());
    let wait = if has_health { p.health_timeout } else { p.grace };
    let what = if has_health {
        format!("healthy within {} s", wait.as_secs())
    } else {
        format!("still running after {} s (no healthcheck)", wait.as_secs())
    };
    step(tx, RecreateStep::HealthGate, Some(what));
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let ins = app.engine.inspect_uncached(id).await?;
        let state = ins.state.unwrap_or_default();
        if state.running != Some(true) || state.restarting == Some(true) || ins.restart_count.unwrap_or(0) > 0 {
            return Err(ApiError::Docker(format!(
                "the new container did not stay up (exit code {}{})",
                state.exit_code.unwrap_or(0),
                state.error.filter(|e| !e.is_empty()).map(|e| format!(": {e}")).unwrap_or_default()
            )));
        }
        if has_health {
            use bollard::models::HealthStatusEnum as H;
            match state.health.and_then(|h| h.status) {
                Some(H::HEALTHY) => return Ok("healthy".into()),
                Some(H::UNHEALTHY) => return Err(ApiError::Docker("the new container is unhealthy".into())),
                _ => {}
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return if has_health {
                Err(ApiError::Docker(format!("the new container was not healthy after {} s", wait.as_secs())))
            } else {
                Ok("running".into())
            };
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn ignore_missing(r: Result<(), ApiError>) -> Result<(), ApiError> {
    match r {
        Err(ApiError::NotFound(_)) => Ok(()),
        other => other,
    }
}

/// After the gate: the old container goes (never its volumes: the new one
/// mounts its anonymous ones).
async fn finish(app: &AppState, j: &Journal) -> Result<(), ApiError> {
    let opts = RemoveContainerOptions { v: false, force: true, link: false };
    ignore_missing(
        app.engine.timed("remove_container", app.engine.client().remove_container(&j.old_id, Some(opts))).await,
    )?;
    app.engine.invalidate(&j.old_id).await;
    Ok(())
}

/// What a rollback did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RolledBack {
    /// The old container has its name back, running if it was.
    OldRestored,
    /// The old container was gone (removed by hand meanwhile): the new one kept the name.
    NewKept,
}

impl RolledBack {
    fn as_str(self) -> &'static str {
        match self {
            Self::OldRestored => "rolled back",
            Self::NewKept => "kept the new container: the old one is gone",
        }
    }
}

/// Puts the old container back: the new one removed (with the anonymous
/// volumes only it had), the old one under its name, running if it was.
/// The new one is found by its id, or (a crash between create and journal)
/// by its temporary name, and then only if it carries [`MADE_FOR_LABEL`]
/// naming the old one: a container the recreate did not make is never
/// touched. Should the old one be gone, the new one is kept, under the name.
async fn roll_back(app: &AppState, j: &Journal) -> Result<RolledBack, ApiError> {
    let engine = &app.engine;
    let client = engine.client();
    let new = match &j.new_id {
        Some(id) => Some(id.clone()),
        None => match engine.inspect_uncached(&plan::temp_name(&j.name)).await {
            Ok(c) => {
                let ours = c.config.as_ref().and_then(|c| c.labels.as_ref()).and_then(|l| l.get(MADE_FOR_LABEL));
                c.id.filter(|_| ours == Some(&j.old_id))
            }
            Err(ApiError::NotFound(_)) => None,
            Err(e) => return Err(e),
        },
    };
    let (keep, drop, what) = match engine.inspect_uncached(&j.old_id).await {
        Ok(_) => (Some(j.old_id.clone()), new, RolledBack::OldRestored),
        Err(ApiError::NotFound(_)) => (new, None, RolledBack::NewKept),
        Err(e) => return Err(e),
    };
    if let Some(drop) = drop {
        let opts = RemoveContainerOptions { v: true, force: true, link: false };
        ignore_missing(engine.timed("remove_container", client.remove_container(&drop, Some(opts))).await)?;
        engine.invalidate(&drop).await;
    }
    let Some(keep) = keep else {
        return Err(ApiError::Docker(format!("neither the old nor a new container of {} is left", j.name)));
    };
    let kept = engine.inspect_uncached(&keep).await?;
    if kept.name.as_deref().map(|n| n.trim_start_matches('/')) != Some(j.name.as_str()) {
        rename(app, &keep, &j.name).await?;
    }
    let running = kept.state.as_ref().and_then(|s| s.running).unwrap_or(false);
    if j.old_was_running && !running {
        engine.timed("start_container", client.start_container(&keep, None::<StartContainerOptions>)).await?;
    }
    engine.invalidate(&keep).await;
    Ok(what)
}

/// A journal at `passed` still describes the containers: the new one holds
/// the name, the old one is aside. Anything else was changed by hand while
/// the sidecar was down, and is left to the operator.
async fn still_as_journalled(app: &AppState, j: &Journal) -> Result<bool, ApiError> {
    let name_of = |c: &bollard::models::ContainerInspectResponse| {
        c.name.as_deref().map(|n| n.trim_start_matches('/').to_owned()).unwrap_or_default()
    };
    let Some(new_id) = &j.new_id else { return Ok(false) };
    let new = match app.engine.inspect_uncached(new_id).await {
        Ok(c) => c,
        Err(ApiError::NotFound(_)) => return Ok(false),
        Err(e) => return Err(e),
    };
    match app.engine.inspect_uncached(&j.old_id).await {
        Ok(old) => Ok(name_of(&new) == j.name && name_of(&old) == plan::aside_name(&j.name)),
        Err(ApiError::NotFound(_)) => Ok(name_of(&new) == j.name),
        Err(e) => Err(e),
    }
}

/// At start: finishes or rolls back every recreate a previous run left
/// midway (`left`, held busy by [`Recreates::hold_for_recovery`] before
/// serving; once the engine answers), each with an audit record.
pub async fn recover(app: App, left: Vec<Journal>) {
    if left.is_empty() {
        return;
    }
    while !app.engine.is_up() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for j in left {
        let result = if j.phase == Phase::Passed {
            match still_as_journalled(&app, &j).await {
                Ok(true) => finish(&app, &j).await.map(|()| "finished"),
                Ok(false) => Ok("left to the operator: the containers changed while the sidecar was down"),
                Err(e) => Err(e),
            }
        } else {
            roll_back(&app, &j).await.map(RolledBack::as_str)
        };
        let caller = Caller { request_id: "recovery".into(), client: j.client.clone(), actor: j.actor.clone() };
        let mut draft = Draft::new(&caller, format!("{}.recover", Verb::Recreate.audit_name()));
        draft
            .target(&j.old_id, Some(&j.name))
            .param(
                "phase",
                serde_json::to_value(j.phase).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
            )
            .param("action", result.as_ref().map_or("none", |a| *a));
        if let Some(n) = &j.new_id {
            draft.param("new_id", n);
        }
        match &result {
            Ok(action) => {
                tracing::warn!(name = %j.name, action, "recovered a recreate cut short by a restart");
                let _ = journal::remove(&app.recreates.journal_dir, &j.old_id);
            }
            Err(e) => tracing::error!(name = %j.name, error = %e, "could not recover a recreate; the journal stays"),
        }
        let outcome = if result.is_ok() { Outcome::Ok } else { Outcome::Error };
        if let Err(e) = app.audit.commit(draft, outcome, result.err().map(|e| e.to_string())).await {
            tracing::error!(error = %e, "the recovery's audit record failed");
        }
        // Busy until dealt with; a journal that stays keeps refusing new recreates of it.
        app.recreates.release(&j);
    }
}
