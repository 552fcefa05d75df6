//! Picking a host, for the panels and pages that act on one.

use leptos::prelude::*;

use crate::model::Fleet;

/// The chosen host, the fleet's first to begin with.
pub fn first_host(fleet: RwSignal<Fleet>) -> RwSignal<String> {
    RwSignal::new(fleet.with_untracked(|f| f.hosts.first().map(|h| h.name.clone()).unwrap_or_default()))
}

/// `name`, when given, makes the choice a form field; the chosen host is
/// marked `selected` in the markup too, so a page without its script shows it.
#[component]
pub fn HostSelect(
    fleet: RwSignal<Fleet>,
    host: RwSignal<String>,
    #[prop(optional)] name: Option<&'static str>,
) -> impl IntoView {
    let names = move || fleet.get().hosts.into_iter().map(|h| h.name).collect::<Vec<String>>();
    view! {
        <select aria-label="host" name=name on:change=move |ev| host.set(event_target_value(&ev)) prop:value=move || host.get()>
            <For each=names key=|n| n.clone() let:n>
                <option value=n.clone() selected={
                    let n = n.clone();
                    move || host.with(|h| *h == n)
                }>{n.clone()}</option>
            </For>
        </select>
    }
}
