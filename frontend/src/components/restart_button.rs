//! Restarting a container (operators; never a protected one).

use leptos::prelude::*;

use super::Confirm;
use crate::server_fns::RestartContainer;

#[component]
pub fn RestartButton(host: String, id: String, name: String, csrf: String) -> impl IntoView {
    let action = ServerAction::<RestartContainer>::new();
    let question = format!("Restart {name} on {host}? It stops (up to 10 s) and starts again.");
    let restart = move |()| {
        action.dispatch(RestartContainer { host: host.clone(), id: id.clone(), csrf: csrf.clone() });
    };
    view! {
        <div class="action">
            <Confirm ask_class="btn restart" ask="Restart…" yes_class="btn danger confirm-restart" yes="Restart" question=question on_yes=restart/>
            <Show when=move || action.pending().get()>
                <span class="muted">"Restarting…"</span>
            </Show>
            {move || {
                action
                    .value()
                    .get()
                    .map(|r| match r {
                        Ok(rep) => view! { <span class="ok outcome">{format!("Restarted {}", rep.name)}</span> }.into_any(),
                        Err(e) => view! { <span class="error outcome" role="alert">{e.to_string()}</span> }.into_any(),
                    })
            }}
        </div>
    }
}
