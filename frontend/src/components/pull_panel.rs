//! Pulling an image onto a host (operators), with its progress.

use leptos::prelude::*;

use super::{first_host, HostSelect};
use crate::browser;
use crate::model::Fleet;
use crate::server_fns::StartPull;
use crate::types::{JobProgress, SessionInfo};

#[component]
pub fn PullPanel(session: SessionInfo, fleet: RwSignal<Fleet>) -> impl IntoView {
    let action = ServerAction::<StartPull>::new();
    let image = RwSignal::new(String::new());
    let host = first_host(fleet);
    let status: RwSignal<Option<JobProgress>> = RwSignal::new(None);
    let csrf = session.csrf.clone();
    // Once the server has a job id, follow it until it finishes.
    Effect::new(move |_| {
        if let Some(Ok(job)) = action.value().get() {
            browser::poll_job(job, status);
        }
    });
    view! {
        <details class="panel">
            <summary>"Pull an image"</summary>
            <form on:submit=move |ev| {
                ev.prevent_default();
                status.set(None);
                action.dispatch(StartPull { host: host.get(), image: image.get(), csrf: csrf.clone() });
            }>
                <HostSelect fleet=fleet host=host/>
                <input type="text" name="image" placeholder="nginx:1.27" required prop:value=move || image.get() on:input=move |ev| image.set(event_target_value(&ev))/>
                <button class="btn" type="submit">"Pull"</button>
            </form>
            {move || action.value().get().and_then(|r| r.err()).map(|e| view! { <p class="error outcome" role="alert">{e.to_string()}</p> })}
            {super::job_view(status, "pull")}
        </details>
    }
}
