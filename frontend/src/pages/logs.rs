//! `/logs/:host/:id`: a container's log viewer: tail, search (plain or
//! regex), timestamps, follow and pause, download.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use shared::LogLine;

use crate::browser;
use crate::components::LogRow;
use crate::server_fns::get_logs;

/// Most lines the browser keeps; older ones are dropped.
pub const MAX_LINES: usize = 5_000;

#[component]
pub fn Logs() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let host = move || params.read().get("host").unwrap_or_default();
    let id = move || params.read().get("id").unwrap_or_default();
    let tail = move || query.read().get("tail").and_then(|t| t.parse::<u32>().ok()).unwrap_or(200).min(10_000);
    let initial = crate::resource::resource(move || (host(), id(), tail()), |(h, i, t)| get_logs(h, i, t, true));
    let lines: RwSignal<Vec<LogLine>> = RwSignal::new(Vec::new());
    let search = RwSignal::new(String::new());
    let regex = RwSignal::new(false);
    let show_ts = RwSignal::new(false);
    let following = RwSignal::new(false);
    let paused = RwSignal::new(false);
    view! {
        <Title text="Logs · dockward"/>
        <h1>"Logs · " <a href=move || format!("/c/{}/{}", host(), id())>{id}</a></h1>
        <div class="toolbar">
            <input type="search" id="log-search" placeholder="Search…" aria-label="search" prop:value=move || search.get() on:input=move |ev| search.set(event_target_value(&ev))/>
            <label><input type="checkbox" id="log-regex" prop:checked=move || regex.get() on:change=move |ev| regex.set(event_target_checked(&ev))/>" regex"</label>
            <label><input type="checkbox" id="log-ts" prop:checked=move || show_ts.get() on:change=move |ev| show_ts.set(event_target_checked(&ev))/>" timestamps"</label>
            <button class="btn" id="log-follow" on:click=move |_| {
                if following.get() {
                    browser::stop_logs();
                    following.set(false);
                } else {
                    browser::follow_logs(&host(), &id(), lines, paused, MAX_LINES);
                    following.set(true);
                }
            }>{move || if following.get() { "Stop following" } else { "Follow" }}</button>
            <button class="btn" id="log-pause" disabled=move || !following.get() on:click=move |_| paused.update(|p| *p = !*p)>
                {move || if paused.get() { "Resume" } else { "Pause" }}
            </button>
            <a class="btn" href=move || format!("/api/logs/download?host={}&id={}&tail={}", host(), id(), tail()) download="">"Download"</a>
            <span class="tails">
                "Tail: "
                {[100u32, 200, 1000, 5000].into_iter().map(|n| view! { <a href=format!("?tail={n}") class:active=move || tail() == n>{n}</a> " " }).collect_view()}
            </span>
        </div>
        <Suspense fallback=|| view! { <p class="empty">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match initial.await {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(page) => {
                        lines.set(page.lines);
                        view! {
                            {page.truncated.then(|| view! { <p class="muted">"Cut at the size limit; download for the rest."</p> })}
                            <pre class="log" id="log" aria-live="polite">
                                <For each=move || {
                                    let q = search.get();
                                    let re = regex.get();
                                    lines.get().into_iter().enumerate().filter(move |(_, l)| browser::line_matches(&l.line, &q, re)).collect::<Vec<_>>()
                                } key=|(i, l)| (*i, l.line.len(), l.ts.clone()) let:item>
                                    <LogRow line=item.1 search=search regex=regex show_ts=show_ts/>
                                </For>
                            </pre>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}
