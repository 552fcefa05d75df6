//! Updates: the fleet's update check shared by the page's parts
//! ([`UpdatesCtx`]), the "update available" badge, and the actions that
//! recreate (operators): a container's "Update" (pull, then recreate) and
//! "Recreate", an app's "Update app" (its containers one by one, stopping
//! at the first failure), each asked first and followed live.

use leptos::prelude::*;

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

    pub fn can_rebuild(self, host: &str, id: &str) -> bool {
        self.0.with(|v| v.as_ref().is_some_and(|v| v.can_rebuild(host, id)))
    }
}

pub fn update_badge() -> impl IntoView {
    view! { <span class="badge update" title="its registry has a newer image for this tag">"update available"</span> }
}

/// The live progress of a job (a pull, a recreate, an app's update) and,
/// at the end, its result: "Done: …" or "The <what> of … failed: …".
pub fn job_view(status: RwSignal<Option<JobProgress>>, what: &'static str) -> impl IntoView {
    move || {
        status.get().map(|s| {
            let (class, role, text) = match &s.done {
                None if s.layers_total > 0 => {
                    ("outcome", "status", format!("{}: {} of {} layers…", s.title, s.layers_done, s.layers_total))
                }
                None => ("outcome", "status", format!("{}…", s.title)),
                Some(Ok(d)) => ("ok outcome", "status", format!("Done: {d}")),
                Some(Err(e)) => ("error outcome", "alert", format!("The {what} of {} failed: {e}", s.title)),
            };
            let lines = s.done.is_none().then(|| view! { <pre class="pull-lines">{s.lines.join("\n")}</pre> });
            view! { <div class=class role=role><p>{text}</p>{lines}</div> }
        })
    }
}

/// A link to the page that asks before an action (`/actions`, rendered on
/// the server, which then follows the job: no script for either). Host
/// names, container ids and compose project names need no escaping in a URL.
pub fn action_href(host: &str, id: &str, how: &str) -> String {
    format!("/actions?host={host}&id={id}&how={how}")
}

/// "Update…" (when there is one), "Rebuild…" (when it can be, or why not)
/// and "Recreate…" for one container: links to the pages that ask first.
#[component]
pub fn RecreateButtons(host: String, id: String) -> impl IntoView {
    let updates = UpdatesCtx::get();
    let (h2, i2) = (host.clone(), id.clone());
    let has_update = move || updates.has_update(&h2, &i2);
    let (h3, i3) = (host.clone(), id.clone());
    let can_rebuild = move || updates.can_rebuild(&h3, &i3);
    let (update, rebuild_href, recreate) =
        (action_href(&host, &id, "update"), action_href(&host, &id, "rebuild"), action_href(&host, &id, "recreate"));
    view! {
        <div class="action recreate">
            {move || has_update().then(|| view! { <a class="btn update" rel="external" href=update.clone()>"Update…"</a> })}
            {move || can_rebuild().then(|| view! { <a class="btn rebuild" rel="external" href=rebuild_href.clone()>"Rebuild…"</a> })}
            <a class="btn recreate" rel="external" href=recreate>"Recreate…"</a>
        </div>
    }
}
