//! The header of every signed-in page: navigation, the hosts, who is signed in.

use leptos::prelude::*;
use leptos_router::components::A;

use super::{HostChip, ThemeToggle};
use crate::model::Fleet;
use crate::types::{Role, SessionInfo};

#[component]
pub fn Header(session: SessionInfo, fleet: RwSignal<Fleet>) -> impl IntoView {
    let is_admin = session.role >= Role::Admin;
    let csrf = session.csrf.clone();
    view! {
        <header class="top">
            <a class="brand" href="/">"dockward"</a>
            <nav>
                <A href="/">"Overview"</A>
                <A href="/network">"Network"</A>
                <Show when=move || is_admin>
                    <A href="/audit">"Audit"</A>
                </Show>
            </nav>
            <div class="hosts" aria-label="hosts">
                <For each=move || fleet.get().hosts key=|h| (h.name.clone(), format!("{:?}", h.status)) let:h>
                    <HostChip host=h/>
                </For>
            </div>
            <div class="me">
                <ThemeToggle/>
                <span class="user">{session.name.clone()} " · " <span class="role">{session.role.as_str()}</span></span>
                <form method="post" action="/auth/logout" class="inline">
                    <input type="hidden" name="csrf" value=csrf/>
                    <button type="submit" class="link">"Log out"</button>
                </form>
            </div>
        </header>
    }
}
