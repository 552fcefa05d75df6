//! `/logs/:host/:id`: a container's log viewer: tail, search (plain or
//! regex), timestamps, follow and pause, download.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use shared::LogLine;

use crate::browser;
use crate::components::LogRow;
use crate::model::{self, Fleet};
use crate::server_fns::get_logs;

/// Most lines the browser keeps; older ones are dropped.
pub const MAX_LINES: usize = 5_000;

#[component]
pub fn Logs(fleet: RwSignal<Fleet>) -> impl IntoView {
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
    // Titled by the container's name and app from the fleet; its short id
    // until the fleet knows it.
    let named = Memo::new(move |_| {
        let (h, i) = (host(), id());
        fleet.with(|f| model::name_and_app(f, &h, &i)).unwrap_or_else(|| (i.chars().take(12).collect(), String::new()))
    });
    let title = move || named.with(|(n, a)| if a.is_empty() { n.clone() } else { format!("{n} · {a}") });
    view! {
        <Title text=move || format!("{} · logs · dockward", title())/>
        <h1>"Logs · " <a href=move || format!("/c/{}/{}", host(), id())>{move || named.with(|n| n.0.clone())}</a>
            {move || named.with(|(_, a)| (!a.is_empty()).then(|| format!(" · {a}")))}
        </h1>
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

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use crate::testing::{container, fleet, render};
    use leptos_router::components::{Route, Router, Routes};
    use leptos_router::location::RequestUrl;
    use leptos_router::path;
    use shared::ContainerState;

    fn heading(url: &'static str, f: Fleet) -> String {
        let html = render(move || {
            provide_context(RequestUrl::new(url));
            let fleet = RwSignal::new(f);
            view! {
                <Router>
                    <Routes fallback=|| "no route">
                        <Route path=path!("/logs/:host/:id") view=move || view! { <Logs fleet=fleet/> }/>
                    </Routes>
                </Router>
            }
            .into_any()
        });
        let h1 = &html[html.find("<h1>").unwrap_or_else(|| panic!("{html}"))..];
        let h1 = &h1[..h1.find("</h1>").unwrap()];
        // The text, without tags and hydration markers.
        let mut text = String::new();
        let mut in_tag = false;
        for ch in h1.chars() {
            match ch {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        text
    }

    /// A log page is titled by the container's name and app, not its id.
    #[tokio::test]
    async fn the_log_page_is_titled_by_name_and_app() {
        let f = fleet(vec![
            container("shop-web-1", Some("shop"), ContainerState::Running, "Up"),
            container("lone", None, ContainerState::Running, "Up"),
        ]);
        assert_eq!(heading("/logs/h1/shop-web-1-id", f.clone()), "Logs · shop-web-1 · shop");
        assert_eq!(heading("/logs/h1/lone-id", f.clone()), "Logs · lone · standalone");
        // Not (yet) in the fleet: its short id.
        assert_eq!(heading("/logs/h1/0123456789abcdef0123", f), "Logs · 0123456789ab");
    }
}
