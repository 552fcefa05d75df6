//! Log lines as text: ANSI colours become classes, every other escape and
//! control character is dropped, search hits are marked.

use leptos::prelude::*;
use shared::{LogLine, LogStream};

use crate::browser;
use crate::model;
use crate::server_fns::get_logs;

/// The classes of a line from `stream`.
pub fn line_class(stream: LogStream) -> &'static str {
    if stream == LogStream::Stderr {
        "line stderr"
    } else {
        "line stdout"
    }
}

/// A line's text, in ANSI-coloured pieces.
pub fn ansi_view(line: &str) -> impl IntoView {
    model::ansi_spans(line).into_iter().map(|(c, t)| view! { <span class=c>{t}</span> }).collect_view()
}

/// One line of the log viewer, with its search hits marked.
#[component]
pub fn LogRow(
    line: LogLine,
    search: RwSignal<String>,
    regex: RwSignal<bool>,
    show_ts: RwSignal<bool>,
) -> impl IntoView {
    let class = line_class(line.stream);
    let ts = line.ts.clone().unwrap_or_default();
    let text = line.line.clone();
    view! {
        <span class=class>
            <Show when=move || show_ts.get()><span class="ts">{ts.clone()} " "</span></Show>
            {move || {
                let q = search.get();
                let re = regex.get();
                model::ansi_spans(&text)
                    .into_iter()
                    .map(|(style, seg)| {
                        let parts = browser::highlight(&seg, &q, re);
                        view! {
                            <span class=style>
                                {parts.into_iter().map(|(hit, s)| if hit { view! { <mark>{s}</mark> }.into_any() } else { s.into_any() }).collect_view()}
                            </span>
                        }
                    })
                    .collect_view()
            }}
            "\n"
        </span>
    }
}

/// The last lines of a container, loaded when opened.
#[component]
pub fn LogPeek(host: String, id: String) -> impl IntoView {
    let open = RwSignal::new(false);
    let lines = crate::resource::resource(
        move || open.get(),
        move |o| {
            let (h, i) = (host.clone(), id.clone());
            async move {
                if o {
                    get_logs(h, i, 30, false).await.map(|p| p.lines)
                } else {
                    Ok(Vec::new())
                }
            }
        },
    );
    view! {
        <button class="btn peek" on:click=move |_| open.update(|o| *o = !*o)>{move || if open.get() { "Hide logs" } else { "Show logs" }}</button>
        <Show when=move || open.get()>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match lines.await {
                        Ok(ls) => view! {
                            <pre class="log peek-log">
                                {ls.into_iter().map(|l| view! { <span class=line_class(l.stream)>{ansi_view(&l.line)}"\n"</span> }).collect_view()}
                            </pre>
                        }.into_any(),
                        Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </Show>
    }
}
