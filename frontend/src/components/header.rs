//! The header of every signed-in page: navigation, the hosts, who is signed in.

use leptos::prelude::*;
use leptos_router::components::A;

use super::{HostChip, ThemeToggle};
use crate::browser::LiveLink;
use crate::model::{Fleet, HostView};
use crate::types::{Role, SessionInfo};

#[component]
pub fn Header(session: SessionInfo, fleet: RwSignal<Fleet>) -> impl IntoView {
    let is_admin = session.role >= Role::Admin;
    let csrf = session.csrf.clone();
    // Whether the live stream is connected (the browser says "reconnecting" while it is not).
    let link = use_context::<LiveLink>().map(|l| l.0).unwrap_or_else(|| RwSignal::new(true));
    view! {
        <header class="top">
            <a class="brand" href="/">"dockward"</a>
            <nav>
                <A href="/">"Overview"</A>
                <A href="/network">"Network"</A>
                // Server-rendered; the count of alerts firing comes with the live fleet.
                <a href="/alerts" rel="external">
                    "Alerts"
                    {move || {
                        let n = fleet.with(|f| f.alerts);
                        (n > 0).then(|| view! { <b class="alerts-count" title="alerts firing">{n}</b> })
                    }}
                </a>
                <Show when=move || is_admin>
                    <A href="/audit">"Audit"</A>
                </Show>
            </nav>
            <div class="hosts" aria-label="hosts">
                // The hosts' names and statuses only: not a copy of every container per change.
                <For
                    each=move || {
                        fleet
                            .with(|f| {
                                f.hosts
                                    .iter()
                                    .map(|h| HostView {
                                        name: h.name.clone(),
                                        status: h.status.clone(),
                                        unencrypted: h.unencrypted,
                                        containers: Vec::new(),
                                        volume_sizes: Default::default(),
                                        cpu_history: Default::default(),
                                        folded: Vec::new(),
                                    })
                                    .collect::<Vec<_>>()
                            })
                    }
                    key=|h| (h.name.clone(), format!("{:?}", h.status))
                    let:h
                >
                    <HostChip host=h/>
                </For>
            </div>
            {move || {
                (!link.get())
                    .then(|| view! { <span class="live-lost" role="status">"Reconnecting…"</span> })
            }}
            <div class="me">
                <ThemeToggle/>
                <span class="user">{session.name.clone()} " · " <span class="role">{session.scope.clone().unwrap_or_else(|| session.role.as_str().to_owned())}</span></span>
                <form method="post" action="/auth/logout" class="inline">
                    <input type="hidden" name="csrf" value=csrf/>
                    <button type="submit" class="link">"Log out"</button>
                </form>
            </div>
        </header>
    }
}
