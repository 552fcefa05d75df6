//! `/apps/:host/:project/logs`: an app's containers, their lines interleaved
//! by time, opened at the newest line.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::browser;
use crate::components::{ansi_view, line_class};
use crate::server_fns::get_app_logs;

#[component]
pub fn AppLogs() -> impl IntoView {
    let params = use_params_map();
    let host = move || params.read().get("host").unwrap_or_default();
    let project = move || params.read().get("project").unwrap_or_default();
    let lines = crate::resource::resource(move || (host(), project()), |(h, p)| get_app_logs(h, p, 200));
    let search = RwSignal::new(String::new());
    // The log box lays its lines out bottom up (`.log-scroll`, see the
    // stylesheet): it opens at the newest line and stays there as lines
    // change, with or without the script. Scrolled up, a button jumps back.
    let scroller = NodeRef::<leptos::html::Div>::new();
    let at_latest = RwSignal::new(true);
    view! {
        <Title text="App logs · dockward"/>
        <h1>"Logs · " {project} " on " {host}</h1>
        <div class="toolbar">
            <input type="search" id="merged-search" placeholder="Search…" aria-label="search" prop:value=move || search.get() on:input=move |ev| search.set(event_target_value(&ev))/>
        </div>
        <Suspense fallback=|| view! { <p class="empty">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match lines.await {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(ls) => view! {
                        <div class="log-frame">
                            <div class="log-scroll" id="merged-scroll" node_ref=scroller on:scroll=move |_| at_latest.set(browser::at_latest(scroller))>
                                <pre class="log" id="merged-log">
                                    {move || {
                                        let q = search.get();
                                        ls.iter().filter(|m| browser::line_matches(&m.line.line, &q, false)).map(|m| {
                                            view! {
                                                <span class=line_class(m.line.stream)>
                                                    <span class="ts">{m.line.ts.clone().unwrap_or_default()} " "</span>
                                                    <span class="who">{m.container.clone()} " "</span>
                                                    {ansi_view(&m.line.line)}
                                                    "\n"
                                                </span>
                                            }
                                        }).collect_view()
                                    }}
                                </pre>
                            </div>
                            <button class="btn jump" id="merged-latest" class:hidden=move || at_latest.get() on:click=move |_| {
                                browser::scroll_to_latest(scroller);
                                at_latest.set(true);
                            }>"↓ Jump to latest"</button>
                        </div>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}
