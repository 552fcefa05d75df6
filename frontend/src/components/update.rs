//! Updates: the fleet's update check shared by the page's parts
//! ([`UpdatesCtx`]), the "update available" badge, and the actions that
//! recreate (operators): a container's "Update" (pull, then recreate) and
//! "Recreate", an app's "Update app" (its containers one by one, stopping
//! at the first failure), each asked first and followed live.

use leptos::prelude::*;

use super::Confirm;
use crate::browser;
use crate::server_fns::{StartRecreate, UpdateApp};
use crate::types::{JobProgress, UpdatesView};

/// The fleet's update check, once the page has it (fetched in the browser:
/// a registry check must never hold a page's first render).
#[derive(Clone, Copy)]
pub struct UpdatesCtx(pub RwSignal<Option<UpdatesView>>);

impl UpdatesCtx {
    /// The page's context, or an empty one (a component rendered alone).
    pub fn get() -> Self {
        use_context::<Self>().unwrap_or_else(|| Self(RwSignal::new(None)))
    }

    /// Asks the server for the check, now (browser only).
    pub fn load(self) {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            if let Ok(v) = crate::server_fns::get_updates().await {
                self.0.try_set(Some(v));
            }
        });
    }

    pub fn has_update(self, host: &str, id: &str) -> bool {
        self.0.with(|v| v.as_ref().is_some_and(|v| v.has_update(host, id)))
    }
}

pub fn update_badge() -> impl IntoView {
    view! { <span class="badge update" title="its registry has a newer image for this tag">"update available"</span> }
}

/// The badge where room is short (a container's row): an arrow, named for
/// screen readers and on hover.
pub fn update_mark() -> impl IntoView {
    view! { <span class="badge update" role="img" aria-label="update available" title="update available">"↑"</span> }
}

/// The live progress of a job and, at the end, its result.
fn job_view(status: RwSignal<Option<JobProgress>>, what: &'static str) -> impl IntoView {
    move || {
        status.get().map(|s| match s.done {
            None => view! {
                <div class="outcome" role="status">
                    <p>{format!("{}…", s.title)}</p>
                    <pre class="pull-lines">{s.lines.join("\n")}</pre>
                </div>
            }
            .into_any(),
            Some(Ok(d)) => view! { <p class="ok outcome">{format!("Done: {d}")}</p> }.into_any(),
            Some(Err(e)) => {
                view! { <p class="error outcome" role="alert">{format!("The {what} failed: {e}")}</p> }.into_any()
            }
        })
    }
}

/// "Update" (when there is one) and "Recreate" for one container.
#[component]
pub fn RecreateButtons(host: String, id: String, name: String, csrf: String) -> impl IntoView {
    let action = ServerAction::<StartRecreate>::new();
    let status: RwSignal<Option<JobProgress>> = RwSignal::new(None);
    Effect::new(move |_| {
        if let Some(Ok(job)) = action.value().get() {
            browser::poll_job(job, true, status);
        }
    });
    let updates = UpdatesCtx::get();
    // Once it is done, the badges say what is true now.
    Effect::new(move |_| {
        if status.with(|s| s.as_ref().is_some_and(|s| s.done.is_some())) {
            updates.load();
        }
    });
    let (h2, i2) = (host.clone(), id.clone());
    let has_update = move || updates.has_update(&h2, &i2);
    let start = {
        let (host, id, csrf) = (host.clone(), id.clone(), csrf.clone());
        move |pull: bool| {
            status.set(None);
            action.dispatch(StartRecreate { host: host.clone(), id: id.clone(), pull, csrf: csrf.clone() });
        }
    };
    let (start_update, start_recreate) = (start.clone(), start);
    let update_q = format!(
        "Update {name} on {host}? Its image is pulled, a new container replaces it (same settings and volumes), \
         and if the new one fails its health check the old one comes back."
    );
    let recreate_q = format!(
        "Recreate {name} on {host} from its current image? A new container replaces it (same settings and \
         volumes); if it fails, the old one comes back."
    );
    view! {
        <div class="action recreate">
            <Show when=has_update>
                <Confirm ask_class="btn update" ask="Update…" yes_class="btn danger confirm-update" yes="Update"
                    question=update_q.clone() on_yes=Callback::new({ let s = start_update.clone(); move |()| s(true) })/>
            </Show>
            <Confirm ask_class="btn recreate" ask="Recreate…" yes_class="btn danger confirm-recreate" yes="Recreate"
                question=recreate_q on_yes=Callback::new(move |()| start_recreate(false))/>
            {move || action.value().get().and_then(|r| r.err()).map(|e| view! { <p class="error outcome" role="alert">{e.to_string()}</p> })}
            {job_view(status, "recreate")}
        </div>
    }
}

/// "Update app": a compose project's containers on one host, one by one.
#[component]
pub fn UpdateAppButton(host: String, project: String, csrf: String) -> impl IntoView {
    let action = ServerAction::<UpdateApp>::new();
    let status: RwSignal<Option<JobProgress>> = RwSignal::new(None);
    Effect::new(move |_| {
        if let Some(Ok(job)) = action.value().get() {
            browser::poll_job(job, true, status);
        }
    });
    let updates = UpdatesCtx::get();
    Effect::new(move |_| {
        if status.with(|s| s.as_ref().is_some_and(|s| s.done.is_some())) {
            updates.load();
        }
    });
    let question = format!(
        "Update every container of {project} on {host}, one by one? Each is pulled and recreated; the first that \
         fails is rolled back and the rest are left as they are."
    );
    let go = move |()| {
        status.set(None);
        action.dispatch(UpdateApp { host: host.clone(), project: project.clone(), csrf: csrf.clone() });
    };
    view! {
        <div class="action update-app">
            <Confirm ask_class="btn update" ask="Update app…" yes_class="btn danger confirm-update-app" yes="Update app"
                question=question on_yes=go/>
            {move || action.value().get().and_then(|r| r.err()).map(|e| view! { <p class="error outcome" role="alert">{e.to_string()}</p> })}
            {job_view(status, "update")}
        </div>
    }
}
