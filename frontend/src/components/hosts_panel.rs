//! Adding and revoking hosts (admins): a one-time join token and the one
//! command to run on the new host; an enrolled host revoked after asking.

use leptos::prelude::*;

use super::Confirm;
use crate::server_fns::{AddHost, Hosts, RevokeHost};
use crate::types::SessionInfo;

#[component]
pub fn HostsPanel(session: SessionInfo) -> impl IntoView {
    let list = ServerAction::<Hosts>::new();
    let add = ServerAction::<AddHost>::new();
    let revoke = ServerAction::<RevokeHost>::new();
    let name = RwSignal::new(String::new());
    let url = RwSignal::new(String::new());
    let csrf = StoredValue::new(session.csrf);
    // The list follows every add and revoke.
    Effect::new(move |_| {
        if add.version().get() + revoke.version().get() > 0 {
            list.dispatch(Hosts {});
        }
    });
    let outcome = |r: Result<String, crate::error::ConsoleError>| match r {
        Ok(m) => view! { <p class="ok outcome">{m}</p> }.into_any(),
        Err(e) => view! { <p class="error outcome" role="alert">{e.to_string()}</p> }.into_any(),
    };
    let rows = move || {
        list.value().get().map(|r| match r {
            Ok(v) => view! {
                <ul class="hosts">
                    {v.hosts.into_iter().map(|h| {
                        let n = h.name.clone();
                        let trust = if h.pins.is_empty() { "unencrypted".to_owned() } else { h.pins.join(" or ") };
                        view! {
                            <li data-host=h.name.clone()>
                                <strong>{h.name.clone()}</strong>" " <code>{h.url}</code>" "
                                <span class="muted">{trust}</span>" "
                                {h.enrolled.then(|| view! {
                                    <Confirm ask_class="btn" ask="Revoke…" yes_class="btn danger" yes="Yes, revoke"
                                        on_yes=move |()| { revoke.dispatch(RevokeHost { name: n.clone(), csrf: csrf.get_value() }); }/>
                                })}
                            </li>
                        }
                    }).collect_view()}
                    {v.pending.into_iter().map(|(h, _)| view! { <li class="muted">{format!("{h}: join token waiting")}</li> }).collect_view()}
                </ul>
            }
            .into_any(),
            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
        })
    };
    view! {
        <details class="panel hosts-panel" on:toggle=move |_| { list.dispatch(Hosts {}); }>
            <summary>"Hosts"</summary>
            {rows}
            <form on:submit=move |ev| {
                ev.prevent_default();
                add.dispatch(AddHost { name: name.get(), url: url.get(), csrf: csrf.get_value() });
            }>
                <input aria-label="host name" placeholder="name" prop:value=name on:input=move |ev| name.set(event_target_value(&ev))/>
                <input aria-label="sidecar URL" placeholder="https://10.0.0.12:7700" prop:value=url on:input=move |ev| url.set(event_target_value(&ev))/>
                <button class="btn" type="submit">"Add a host"</button>
            </form>
            {move || add.value().get().map(|r| match r {
                Ok(j) => view! {
                    <div class="ok outcome">
                        <p>{format!("Run this on {} within 15 minutes; the token works once:", j.host)}</p>
                        <pre class="join">{j.command}</pre>
                    </div>
                }.into_any(),
                Err(e) => view! { <p class="error outcome" role="alert">{e.to_string()}</p> }.into_any(),
            })}
            {move || revoke.value().get().map(outcome)}
        </details>
    }
}
