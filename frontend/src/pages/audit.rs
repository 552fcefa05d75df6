//! `/audit` (admins): a host's audit records, filtered, with the chain's
//! verification and exports.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use shared::Outcome;

use crate::components::HostSelect;
use crate::model::{self, FilterSlot, Fleet};
use crate::server_fns::get_audit;
use crate::types::{Role, SessionInfo};

/// The filter form's text fields: label, name, input type, its slot.
type Field = (&'static str, &'static str, &'static str, FilterSlot);

/// The filter lives in the page's URL and the form is a plain GET form, so
/// filtering works without the page's script; with it, applying navigates in
/// place. Verb and outcome are choices (the verb table's audit names, the
/// known outcomes), the times date-time pickers (read as UTC, like the times
/// shown), and the actor suggests the actors the page knows.
#[component]
pub fn Audit(session: SessionInfo, fleet: RwSignal<Fleet>) -> impl IntoView {
    if session.role < Role::Admin {
        return view! { <p class="error" role="alert">"The audit log needs the admin role."</p> }.into_any();
    }
    let query = use_query_map();
    let asked = Memo::new(move |_| {
        let (host, f) = query.with(|q| model::audit_filter_from(|k| q.get(k)));
        let host = host
            .unwrap_or_else(|| fleet.with_untracked(|f| f.hosts.first().map(|h| h.name.clone()).unwrap_or_default()));
        (host, f)
    });
    let (host0, filter0) = asked.get_untracked();
    let host = RwSignal::new(host0);
    let draft = RwSignal::new(filter0.clone());
    let view_res = crate::resource::resource(move || asked.get(), |(h, f)| get_audit(h, f));
    let navigate = leptos_router::hooks::use_navigate();
    let me = StoredValue::new(session.name.clone());
    let text_field = move |(label, name, kind, slot): Field| {
        let initial = slot(&mut filter0.clone()).clone();
        view! {
            <label>{label} " "
                <input type=kind name=name id=format!("audit-{name}") value=initial list=(name == "actor").then_some("audit-actors")
                    on:input=move |ev| draft.update(|d| *slot(d) = event_target_value(&ev))/>
            </label>
        }
    };
    let choice = move |name: &'static str, options: Vec<&'static str>, slot: FilterSlot| {
        let current = slot(&mut draft.get_untracked()).clone();
        view! {
            <label>{name} " "
                <select name=name id=format!("audit-{name}") on:change=move |ev| draft.update(|d| *slot(d) = event_target_value(&ev))>
                    <option value="" selected=current.is_empty()>"any"</option>
                    {options.into_iter().map(|o| view! { <option value=o selected=current == o>{o}</option> }).collect_view()}
                </select>
            </label>
        }
    };
    view! {
        <Title text="Audit · dockward"/>
        <h1>"Audit log"</h1>
        <form class="toolbar filters" method="get" action="/audit" on:submit=move |ev| {
            ev.prevent_default();
            let mut f = draft.get();
            f.cursor.clear();
            navigate(&format!("/audit?{}", model::audit_query(&host.get(), &f)), Default::default());
        }>
            <HostSelect fleet=fleet host=host name="host"/>
            {text_field(("actor", "actor", "text", |f| &mut f.actor))}
            {choice("verb", shared::audit::filter_verbs(), |f| &mut f.verb)}
            {text_field(("target", "target", "text", |f| &mut f.target))}
            {choice("outcome", Outcome::ALL.iter().map(|o| o.as_str()).collect(), |f| &mut f.outcome)}
            {text_field(("since (UTC)", "since", "datetime-local", |f| &mut f.since))}
            {text_field(("until (UTC)", "until", "datetime-local", |f| &mut f.until))}
            <button class="btn" type="submit" id="audit-apply">"Apply"</button>
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
                        <datalist id="audit-actors">
                            {model::known_actors(&v.page.records, &me.get_value()).into_iter().map(|a| view! { <option value=a></option> }).collect_view()}
                        </datalist>
                        {v.page.next_cursor.clone().map(|c| {
                            let (h, mut f) = asked.get_untracked();
                            f.cursor = c;
                            view! { <a class="btn" id="audit-older" href=format!("/audit?{}", model::audit_query(&h, &f))>"Older →"</a> }
                        })}
                    }.into_any(),
                }
            })}
        </Suspense>
    }
    .into_any()
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use crate::testing::{fleet, render, session};
    use leptos_router::components::Router;
    use leptos_router::location::RequestUrl;

    /// The element in `html` that starts with `start`, up to its `end`.
    fn element<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
        let at = html.find(start).unwrap_or_else(|| panic!("no {start} in {html}"));
        let rest = &html[at..];
        &rest[..rest.find(end).map_or(rest.len(), |e| e + end.len())]
    }

    /// The first render (what a browser without the script keeps): a plain
    /// GET form whose verb and outcome are choices, times date-time pickers
    /// and actor a suggesting field, showing the filter in the URL.
    #[tokio::test]
    async fn the_filter_form_is_a_plain_get_form_of_choices_and_pickers() {
        let f = fleet(vec![]);
        let html = render(move || {
            provide_context(RequestUrl::new(
                "/audit?host=h1&actor=bob&verb=restart&outcome=denied&since=2026-05-01T12%3A30&until=",
            ));
            let fleet = RwSignal::new(f);
            view! { <Router><Audit session=session(Role::Admin) fleet=fleet/></Router> }.into_any()
        });
        let form = element(&html, "<form", ">");
        assert!(form.contains(r#"method="get""#) && form.contains(r#"action="/audit""#), "{form}");
        let verb = element(&html, r#"<select name="verb""#, "</select>");
        for v in shared::audit::filter_verbs() {
            assert!(verb.contains(&format!(r#"<option value="{v}""#)), "{v} in {verb}");
        }
        assert!(verb.contains(r#"<option value="restart" selected>"#), "{verb}");
        assert_eq!(verb.matches(" selected").count(), 1, "{verb}");
        let outcome = element(&html, r#"<select name="outcome""#, "</select>");
        assert!(outcome.contains(r#"<option value="denied" selected>"#), "{outcome}");
        for o in ["ok", "error", ""] {
            assert!(outcome.contains(&format!(r#"<option value="{o}">"#)), "{o} in {outcome}");
        }
        let since = element(&html, r#"<input type="datetime-local" name="since""#, ">");
        assert!(since.contains(r#"value="2026-05-01T12:30""#), "{since}");
        let until = element(&html, r#"<input type="datetime-local" name="until""#, ">");
        assert!(until.contains(r#"value="""#), "{until}");
        let actor = element(&html, r#"<input type="text" name="actor""#, ">");
        assert!(actor.contains(r#"list="audit-actors""#) && actor.contains(r#"value="bob""#), "{actor}");
        assert!(html.contains(r#"<select aria-label="host" name="host""#), "{html}");
    }
}
