//! `/audit` (admins): a host's audit records, filtered, with the chain's
//! verification and exports.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::{first_host, HostSelect};
use crate::model::Fleet;
use crate::server_fns::get_audit;
use crate::types::{AuditFilter, Role, SessionInfo};

#[component]
pub fn Audit(session: SessionInfo, fleet: RwSignal<Fleet>) -> impl IntoView {
    if session.role < Role::Admin {
        return view! { <p class="error" role="alert">"The audit log needs the admin role."</p> }.into_any();
    }
    let host = first_host(fleet);
    let filter = RwSignal::new(AuditFilter::default());
    let draft = RwSignal::new(AuditFilter::default());
    let view_res = crate::resource::resource(move || (host.get(), filter.get()), |(h, f)| get_audit(h, f));
    let field = move |name: &'static str, get: fn(&AuditFilter) -> String, set: fn(&mut AuditFilter, String)| {
        view! {
            <label>{name} " "
                <input type="text" name=name prop:value=move || draft.with(get) on:input=move |ev| draft.update(|d| set(d, event_target_value(&ev)))/>
            </label>
        }
    };
    view! {
        <Title text="Audit · dockward"/>
        <h1>"Audit log"</h1>
        <form class="toolbar filters" on:submit=move |ev| {
            ev.prevent_default();
            let mut f = draft.get();
            f.cursor.clear();
            filter.set(f);
        }>
            <HostSelect fleet=fleet host=host/>
            {field("actor", |f| f.actor.clone(), |f, v| f.actor = v)}
            {field("verb", |f| f.verb.clone(), |f, v| f.verb = v)}
            {field("target", |f| f.target.clone(), |f, v| f.target = v)}
            {field("outcome", |f| f.outcome.clone(), |f, v| f.outcome = v)}
            {field("since", |f| f.since.clone(), |f, v| f.since = v)}
            {field("until", |f| f.until.clone(), |f, v| f.until = v)}
            <button class="btn" type="submit">"Apply"</button>
            <a class="btn" href=move || format!("/api/audit/export?host={}&format=csv", host.get())>"CSV"</a>
            <a class="btn" href=move || format!("/api/audit/export?host={}&format=json", host.get())>"JSON"</a>
        </form>
        <Suspense fallback=|| view! { <p class="empty">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match view_res.await {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(v) => view! {
                        <p id="verify" class=if v.verify.ok { "badge badge-green" } else { "badge badge-red" }>
                            {if v.verify.ok { format!("✓ chain intact ({} records)", v.verify.records) } else { format!("✕ chain broken: {}", v.verify.problems.join("; ")) }}
                        </p>
                        <table class="grid" id="audit">
                            <thead><tr><th>"#"</th><th>"Time"</th><th>"Actor"</th><th>"Verb"</th><th>"Target"</th><th>"Outcome"</th><th>"Message"</th></tr></thead>
                            <tbody>
                                {v.page.records.iter().map(|r| view! {
                                    <tr class=format!("outcome-{}", r.outcome.as_str())>
                                        <td>{r.seq}</td>
                                        <td>{r.time.clone()}</td>
                                        <td>{r.actor.clone().unwrap_or_else(|| "–".into())}</td>
                                        <td>{r.verb.clone()}</td>
                                        <td>{r.target_name.clone().or(r.target.clone()).unwrap_or_default()}</td>
                                        <td>{r.outcome.as_str()}</td>
                                        <td>{r.message.clone().unwrap_or_default()}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                        {v.page.next_cursor.clone().map(|c| view! {
                            <button class="btn" on:click=move |_| filter.update(|f| f.cursor = c.clone())>"Older →"</button>
                        })}
                    }.into_any(),
                }
            })}
        </Suspense>
    }
    .into_any()
}
