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

pub mod journal;
pub mod plan;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
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
use tokio_stream::wrappers::ReceiverStream;
use utoipa::IntoParams;

use self::journal::{Journal, Phase};
use crate::audit::{Caller, Draft};
use crate::error::ApiError;
use crate::extract::{Query, RefPath};
use crate::middleware::Audited;
use crate::state::{App, AppState};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecreateQuery {
    /// Pull the container's image reference first (an update). Default false.
    pull: Option<bool>,
    /// Seconds to wait for the old container's clean stop before killing it (0–120; its own
    /// stop timeout if absent).
    timeout: Option<u64>,
    /// Seconds to wait for a new container with a healthcheck to be healthy (1–600, default 120).
    health_timeout: Option<u64>,
    /// Seconds a new container without a healthcheck must stay running (0–120, default 5).
    grace: Option<u64>,
}

/// Recreates in flight, by old container id (one at a time per container).
pub struct Recreates {
    busy: Mutex<HashSet<String>>,
    max: usize,
    /// The journals' directory (beside the audit log).
    pub journal_dir: PathBuf,
    /// Test hook (`DOCKWARD_TEST_RECREATE_PAUSE`): a pause after the old container stops.
    pub pause_after_stop: Option<Duration>,
}

/// The claim on a container for one recreate; released on drop.
pub struct Busy {
    app: Arc<AppState>,
    id: String,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.app.recreates.busy.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
    }
}

impl Recreates {
    pub fn new(journal_dir: PathBuf, max: u32, pause_after_stop: Option<Duration>) -> Self {
        Self { busy: Mutex::default(), max: max.max(1) as usize, journal_dir, pause_after_stop }
    }

    fn claim(app: &App, id: &str, name: &str) -> Result<Busy, ApiError> {
        let mut busy = app.recreates.busy.lock().unwrap_or_else(|e| e.into_inner());
        if busy.contains(id) {
            return Err(ApiError::Conflict(format!("{name} is already being recreated")));
        }
        if busy.len() >= app.recreates.max {
            return Err(ApiError::RateLimited { retry_after_secs: 5 });
        }
        busy.insert(id.to_owned());
        Ok(Busy { app: app.clone(), id: id.to_owned() })
    }
}

/// Everything checked before anything changes.
struct Prepared {
    old_id: String,
    old_was_running: bool,
    old_image_id: String,
    /// The image reference to pull, when asked to.
    pull: Option<ImageRef>,
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
    let body = ReceiverStream::new(rx).map(|ev| {
        let mut line = serde_json::to_vec(&ev)
            .unwrap_or_else(|_| b"{\"type\":\"error\",\"message\":\"encoding\",\"rolled_back\":false}".to_vec());
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(line)
    });
    let mut resp = ([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(body)).into_response();
    resp.extensions_mut().insert(Audited);
    resp
}

async fn prepare(
    app: &App,
    caller: &Caller,
    r: &ContainerRef,
    q: RecreateQuery,
    draft: &mut Draft,
) -> Result<Prepared, ApiError> {
    let pull = q.pull.unwrap_or(false);
    draft.param("pull", pull);
    let stop_timeout = q.timeout.map(|t| bounded("timeout", t, 0, limits::RESTART_TIMEOUT_MAX)).transpose()?;
    let health_timeout = bounded(
        "health_timeout",
        q.health_timeout.unwrap_or(limits::RECREATE_HEALTH_TIMEOUT_DEFAULT),
        1,
        limits::RECREATE_HEALTH_TIMEOUT_MAX,
    )?;
    let grace = bounded("grace", q.grace.unwrap_or(limits::RECREATE_GRACE_DEFAULT), 0, limits::RECREATE_GRACE_MAX)?;
    app.engine.require_up()?;
    let c = app.engine.resolve(r).await?;
    draft.target(&c.id, Some(&c.name));
    if c.protected {
        return Err(ApiError::Forbidden(format!(
            "{} is protected (a database image or the {} label); dockward does not recreate it",
            c.name,
            shared::PROTECT_LABEL
        )));
    }
    let busy = Recreates::claim(app, &c.id, &c.name)?;
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
        Some(image)
    } else {
        None
    };
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
        plan,
        stop_timeout: stop_timeout.map(|t| t as i32),
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
    let untouched = |e: ApiError| Failure { denial: e.is_denial(), message: e.to_string(), rolled_back: true };
    if let Some(image) = &p.pull {
        step(tx, RecreateStep::Pull, Some(image.to_string()));
        let progress = |ev: PullEvent| {
            if let PullEvent::Progress { status, layer, .. } = ev {
                let _ = tx.try_send(RecreateEvent::Progress { status, layer });
            }
        };
        super::pull::run(app, image, &progress).await.map_err(untouched)?;
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
                Ok(_) => {
                    let _ = journal::remove(&app.recreates.journal_dir, &j.old_id);
                    Err(Failure { message, rolled_back: true, denial: false })
                }
                Err(re) => {
                    tracing::error!(error = %re, old = %j.old_id, "rollback failed; retried at the next start");
                    Err(Failure {
                        message: format!("{message}; the rollback failed: {re}"),
                        rolled_back: false,
                        denial: false,
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
    let created = engine.timed("create_container", client.create_container(Some(opts), p.plan.create.clone())).await?;
    j.new_id = Some(created.id.clone());
    j.phase = Phase::Created;
    write_journal(app, j)?;
    for (net, settings) in &p.plan.extra_networks {
        let req =
            NetworkConnectRequest { container: Some(created.id.clone()), endpoint_config: Some(settings.clone()) };
        engine.timed("connect_network", client.connect_network(net, req)).await?;
    }
    if p.old_was_running {
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
    let gate = if p.old_was_running {
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

/// Puts the old container back: the new one removed (with the anonymous
/// volumes only it had), the old one under its name, running if it was.
/// Should the old one be gone (removed by hand meanwhile), the new one is
/// kept instead, under the name. Answers which.
async fn roll_back(app: &AppState, j: &Journal) -> Result<&'static str, ApiError> {
    let engine = &app.engine;
    let client = engine.client();
    let new = j.new_id.clone().unwrap_or_else(|| plan::temp_name(&j.name));
    let (keep, drop, what) = match engine.inspect_uncached(&j.old_id).await {
        Ok(_) => (j.old_id.clone(), Some(new), "rolled back"),
        Err(ApiError::NotFound(_)) => (new, None, "kept the new container: the old one is gone"),
        Err(e) => return Err(e),
    };
    if let Some(drop) = drop {
        let opts = RemoveContainerOptions { v: true, force: true, link: false };
        ignore_missing(engine.timed("remove_container", client.remove_container(&drop, Some(opts))).await)?;
        engine.invalidate(&drop).await;
    }
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

/// At start: finishes or rolls back every recreate a previous run left
/// midway (once the engine answers), each with an audit record.
pub async fn recover(app: App) {
    let left = journal::left_over(&app.recreates.journal_dir);
    if left.is_empty() {
        return;
    }
    while !app.engine.is_up() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for j in left {
        let finishing = j.phase == Phase::Passed;
        let result = if finishing { finish(&app, &j).await.map(|()| "finished") } else { roll_back(&app, &j).await };
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
            Ok(_) => {
                tracing::warn!(name = %j.name, finishing, "recovered a recreate cut short by a restart");
                let _ = journal::remove(&app.recreates.journal_dir, &j.old_id);
            }
            Err(e) => tracing::error!(name = %j.name, error = %e, "could not recover a recreate; the journal stays"),
        }
        let outcome = if result.is_ok() { Outcome::Ok } else { Outcome::Error };
        if let Err(e) = app.audit.commit(draft, outcome, result.err().map(|e| e.to_string())).await {
            tracing::error!(error = %e, "the recovery's audit record failed");
        }
    }
}
