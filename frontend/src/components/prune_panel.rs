//! Pruning a host (admins): what goes, said in words before it goes.

use leptos::prelude::*;
use shared::PruneKind;

use super::{first_host, Confirm, HostSelect};
use crate::model::{self, Fleet};
use crate::server_fns::Prune;
use crate::types::SessionInfo;

#[component]
pub fn PrunePanel(session: SessionInfo, fleet: RwSignal<Fleet>) -> impl IntoView {
    let action = ServerAction::<Prune>::new();
    let host = first_host(fleet);
    let kind = RwSignal::new("containers".to_owned());
    let all = RwSignal::new(false);
    let csrf = session.csrf.clone();
    let explain = move || {
        let h = host.get();
        match (kind.get().as_str(), all.get()) {
            ("containers", _) => format!("Remove every stopped, unprotected container on {h}."),
            ("images", false) => format!("Remove dangling images on {h}."),
            ("images", true) => format!("Remove every image no container uses on {h}."),
            ("volumes", false) => format!("Remove anonymous volumes no container uses on {h}."),
            ("volumes", true) => {
                format!("Remove every volume no container uses on {h}, named ones too (never protected ones).")
            }
            (_, false) => format!("Remove dangling build cache on {h}."),
            (_, true) => format!("Remove all build cache on {h}."),
        }
    };
    let prune = move |()| {
        if let Some(k) = PruneKind::parse(&kind.get()) {
            action.dispatch(Prune { host: host.get(), kind: k, all: all.get(), csrf: csrf.clone() });
        }
    };
    view! {
        <details class="panel">
            <summary>"Prune"</summary>
            <HostSelect fleet=fleet host=host/>
            <select aria-label="what" on:change=move |ev| kind.set(event_target_value(&ev)) prop:value=move || kind.get()>
                <option value="containers">"stopped containers"</option>
                <option value="images">"images"</option>
                <option value="volumes">"volumes"</option>
                <option value="build-cache">"build cache"</option>
            </select>
            <label><input type="checkbox" prop:checked=move || all.get() on:change=move |ev| all.set(event_target_checked(&ev))/>" all"</label>
            <p class="muted">{explain}</p>
            <Confirm ask_class="btn" ask="Prune…" yes_class="btn danger" yes="Yes, prune" on_yes=prune/>
            {move || action.value().get().map(|r| match r {
                Ok(rep) => view! {
                    <div class="ok outcome">
                        <p>{format!("Removed {} ({}).", rep.removed.len(), model::human_bytes(rep.space_reclaimed))}</p>
                        <ul>{rep.removed.iter().take(50).map(|x| view! { <li><code>{x.clone()}</code></li> }).collect_view()}</ul>
                        <ul>{rep.skipped.iter().take(50).map(|x| view! { <li class="muted">{format!("kept: {x}")}</li> }).collect_view()}</ul>
                    </div>
                }.into_any(),
                Err(e) => view! { <p class="error outcome" role="alert">{e.to_string()}</p> }.into_any(),
            })}
        </details>
    }
}
