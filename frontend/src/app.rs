//! The console's pages (Leptos; rendered on the server, hydrated in the
//! browser). Every string from a container — names, labels, env values, log
//! lines — goes through Leptos text or attribute escaping; nothing is
//! injected as HTML.

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::hooks::{use_params_map, use_query_map};
use leptos_router::{path, SsrMode};
use shared::{LogLine, LogStream, PruneKind};

use crate::api::*;
use crate::browser;
use crate::model::{self, Badge, Fleet, HostStatus};

/// Applies the remembered theme before first paint (no flash).
const THEME_JS: &str = "try{var t=localStorage.getItem('dockward-theme');if(t==='light'||t==='dark')document.documentElement.setAttribute('data-theme',t)}catch(e){}";

pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_security_headers();
    let nonce = leptos::nonce::use_nonce();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <script nonce=nonce inner_html=THEME_JS></script>
                <link rel="stylesheet" href="/pkg/dockward.css"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// A strict Content-Security-Policy: scripts only from here or with this
/// response's nonce; no inline styles, no frames, no plugins.
#[cfg(feature = "ssr")]
fn set_security_headers() {
    use axum::http::{header, HeaderValue};
    if let (Some(n), Some(res)) = (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>()) {
        let csp = format!(
            "default-src 'self'; script-src 'self' 'nonce-{n}' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        );
        if let Ok(v) = HeaderValue::from_str(&csp) {
            res.insert_header(header::CONTENT_SECURITY_POLICY, v);
        }
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title text="dockward"/>
        <Router>
            <Routes fallback=|| view! { <main class="page"><p class="empty">"Page not found."</p></main> }>
                <Route path=path!("/login") ssr=SsrMode::Async view=Login/>
                <Route path=path!("/") ssr=SsrMode::Async view=|| signed_in(|s, f| view! { <Overview session=s fleet=f/> }.into_any())/>
                <Route path=path!("/c/:host/:id") ssr=SsrMode::Async view=|| signed_in(|s, _| view! { <Detail session=s/> }.into_any())/>
                <Route path=path!("/logs/:host/:id") ssr=SsrMode::Async view=|| signed_in(|_, _| view! { <Logs/> }.into_any())/>
                <Route path=path!("/apps/:host/:project/logs") ssr=SsrMode::Async view=|| signed_in(|_, _| view! { <AppLogs/> }.into_any())/>
                <Route path=path!("/network") ssr=SsrMode::Async view=|| signed_in(|_, f| view! { <Network fleet=f/> }.into_any())/>
                <Route path=path!("/audit") ssr=SsrMode::Async view=|| signed_in(|s, f| view! { <Audit session=s fleet=f/> }.into_any())/>
            </Routes>
        </Router>
    }
}

/// Loads who is signed in and the fleet, shows the header, then the page.
/// Pages render with `SsrMode::Async`: the server sends complete HTML once
/// the (in-memory) data is ready, so nothing depends on a script to appear.
fn signed_in(body: impl Fn(SessionInfo, RwSignal<Fleet>) -> AnyView + Send + Sync + Clone + 'static) -> impl IntoView {
    let session = Resource::new(|| (), |_| whoami());
    let fleet = Resource::new(|| (), |_| get_fleet());
    view! {
        <Suspense fallback=|| view! { <main class="page"><p class="empty">"Loading…"</p></main> }>
            {
                let body = body.clone();
                move || {
                    let body = body.clone();
                    Suspend::new(async move {
                        match (session.await, fleet.await) {
                            (Ok(s), Ok(f)) => {
                                let live = RwSignal::new(f);
                                browser::follow_fleet(live);
                                view! {
                                    <Header session=s.clone() fleet=live/>
                                    <main class="page">{body(s, live)}</main>
                                }
                                    .into_any()
                            }
                            (Err(e), _) | (_, Err(e)) => view! {
                                <main class="page">
                                    <p class="error" role="alert">{format!("Cannot load: {e}")}</p>
                                    <p><a href="/login">"Log in"</a></p>
                                </main>
                            }
                                .into_any(),
                        }
                    })
                }
            }
        </Suspense>
    }
}

#[component]
fn Header(session: SessionInfo, fleet: RwSignal<Fleet>) -> impl IntoView {
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

#[component]
fn HostChip(host: model::HostView) -> impl IntoView {
    let (class, text) = match &host.status {
        HostStatus::Connected => ("chip chip-ok", "connected".to_owned()),
        HostStatus::Stale { age_s } => ("chip chip-stale", format!("stale · {age_s}s old")),
        HostStatus::Down { error, .. } => ("chip chip-down", format!("down · {error}")),
    };
    let title = text.clone();
    view! {
        <span class=class data-host=host.name.clone() title=title>
            <span class="dot" aria-hidden="true"></span>
            <strong>{host.name.clone()}</strong>
            " "
            <span class="chip-text">{text}</span>
        </span>
    }
}

#[component]
fn ThemeToggle() -> impl IntoView {
    view! {
        <span class="theme" role="group" aria-label="theme">
            <button class="link" title="light" on:click=|_| browser::set_theme("light")>"☀"</button>
            <button class="link" title="dark" on:click=|_| browser::set_theme("dark")>"☾"</button>
            <button class="link" title="system" on:click=|_| browser::set_theme("system")>"◐"</button>
        </span>
    }
}

fn badge_view(badge: Badge, text: &'static str) -> impl IntoView {
    let icon = match badge {
        Badge::Green => "✓",
        Badge::Amber => "!",
        Badge::Red => "✕",
    };
    view! { <span class=format!("badge {}", badge.class())><span aria-hidden="true">{icon}</span>" "{text}</span> }
}

#[component]
fn Overview(session: SessionInfo, fleet: RwSignal<Fleet>) -> impl IntoView {
    let filter = RwSignal::new(String::new());
    let sort = RwSignal::new("health".to_owned());
    let headline = Memo::new(move |_| fleet.with(model::headline));
    let groups = Memo::new(move |_| {
        let f = filter.get();
        let mut gs = fleet.with(model::group_apps);
        for g in &mut gs {
            let host = g.host.clone();
            g.containers.retain(|c| model::matches_filter(&host, c, &f));
        }
        gs.retain(|g| !g.containers.is_empty());
        match sort.get().as_str() {
            "name" => gs.sort_by(|a, b| a.title().cmp(b.title())),
            "cpu" => gs.sort_by(|a, b| b.cpu_percent.total_cmp(&a.cpu_percent)),
            "memory" => gs.sort_by_key(|g| std::cmp::Reverse(g.memory_bytes)),
            _ => {}
        }
        gs
    });
    let is_admin = session.role >= Role::Admin;
    let is_operator = session.role >= Role::Operator;
    let (s_prune, s_pull, s_cards) = (session.clone(), session.clone(), session);
    view! {
        <Title text="Overview · dockward"/>
        <section id="headline" class=move || format!("headline {}", headline.get().badge.class()) role="status">
            {move || {
                let h = headline.get();
                let icon = match h.badge {
                    Badge::Green => "✓",
                    Badge::Amber => "!",
                    Badge::Red => "✕",
                };
                view! { <span aria-hidden="true" class="icon">{icon}</span> <span class="text">{h.text}</span> }
            }}
        </section>
        <div class="toolbar">
            <input
                type="search"
                id="filter"
                placeholder="Filter by name, image, state, host…"
                aria-label="filter"
                prop:value=move || filter.get()
                on:input=move |ev| filter.set(event_target_value(&ev))
            />
            <label>
                "Sort "
                <select on:change=move |ev| sort.set(event_target_value(&ev)) prop:value=move || sort.get()>
                    <option value="health">"worst first"</option>
                    <option value="name">"name"</option>
                    <option value="cpu">"CPU"</option>
                    <option value="memory">"memory"</option>
                </select>
            </label>
            <Show when=move || is_admin>
                <PrunePanel session=s_prune.clone() fleet=fleet/>
            </Show>
            <Show when=move || is_operator>
                <PullPanel session=s_pull.clone() fleet=fleet/>
            </Show>
        </div>
        <div class="cards">
            // Keyed by identity, not contents: cards and rows update in place
            // (an expanded row stays expanded while the numbers change).
            <For each=move || groups.with(|gs| gs.iter().map(|g| g.key()).collect::<Vec<_>>()) key=|k| k.clone() let:k>
                <AppCard key=k groups=groups session=s_cards.clone()/>
            </For>
            <Show when=move || groups.with(|g| g.is_empty())>
                <p class="empty">"No containers match."</p>
            </Show>
        </div>
    }
}

#[component]
fn AppCard(key: String, groups: Memo<Vec<model::AppGroup>>, session: SessionInfo) -> impl IntoView {
    let group = Memo::new(move |_| groups.with(|gs| gs.iter().find(|g| g.key() == key).cloned()));
    let (title, host) =
        group.with_untracked(|g| g.as_ref().map(|g| (g.title().to_owned(), g.host.clone())).unwrap_or_default());
    let badge = move || group.with(|g| g.as_ref().map(|g| g.badge).unwrap_or(Badge::Amber));
    let badge_text = move || match badge() {
        Badge::Green => "healthy",
        Badge::Amber => "starting",
        Badge::Red => "needs attention",
    };
    let cpu = move || group.with(|g| g.as_ref().map(|g| g.cpu_percent).unwrap_or(0.0));
    let mem = move || group.with(|g| g.as_ref().map(|g| g.memory_bytes).unwrap_or(0));
    let mem_pct = move || {
        group.with(|g| {
            g.as_ref()
                .filter(|g| g.memory_limit_bytes > 0)
                .map(|g| g.memory_bytes as f64 * 100.0 / g.memory_limit_bytes as f64)
                .unwrap_or(0.0)
        })
    };
    let ids = move || {
        group.with(|g| {
            g.as_ref().map(|g| g.containers.iter().map(|c| c.id.clone()).collect::<Vec<_>>()).unwrap_or_default()
        })
    };
    let spark = move || {
        group.with(|g| g.as_ref().map(|g| model::sparkline_points(&g.cpu_series, 300.0, 28.0)).unwrap_or_default())
    };
    let row_host = host.clone();
    let logs_href = format!("/apps/{}/{}/logs", host, title);
    view! {
        <article class=move || format!("card {}", badge().class()) data-app=title.clone() data-host=host.clone()>
            <header>
                <h2>{title.clone()}</h2>
                <span class="host">{host.clone()}</span>
                {move || badge_view(badge(), badge_text())}
            </header>
            <div class="bars">
                <label>"CPU " <meter min="0" max="100" value=move || cpu().min(100.0)></meter> <span>{move || format!("{:.1}%", cpu())}</span></label>
                <label>"Memory " <meter min="0" max="100" value=mem_pct></meter> <span>{move || model::human_bytes(mem())}</span></label>
            </div>
            <svg class="spark" viewBox="0 0 300 28" preserveAspectRatio="none" role="img" aria-label="CPU, last 15 minutes">
                <polyline points=spark/>
            </svg>
            <p class="card-links"><a href=logs_href>"All logs, merged"</a></p>
            <ul class="rows">
                <For each=ids key=|id| id.clone() let:id>
                    <ContainerRow host=row_host.clone() id=id group=group session=session.clone()/>
                </For>
            </ul>
        </article>
    }
}

#[component]
fn ContainerRow(host: String, id: String, group: Memo<Option<model::AppGroup>>, session: SessionInfo) -> impl IntoView {
    let c = {
        let id = id.clone();
        Memo::new(move |_| group.with(|g| g.as_ref().and_then(|g| g.containers.iter().find(|c| c.id == id).cloned())))
    };
    let Some(first) = c.get_untracked() else { return ().into_any() };
    let detail_href = format!("/c/{}/{}", host, first.id);
    let logs_href = format!("/logs/{}/{}", host, first.id);
    let cpu = move || {
        c.with(|c| {
            c.as_ref()
                .and_then(|c| c.stats.as_ref()?.cpu_percent)
                .map(|v| format!("{v:.1}%"))
                .unwrap_or_else(|| "–".into())
        })
    };
    let mem = move || {
        c.with(|c| {
            c.as_ref()
                .and_then(|c| c.stats.as_ref())
                .map(|s| model::human_bytes(s.memory_bytes))
                .unwrap_or_else(|| "–".into())
        })
    };
    let badge = move || c.with(|c| c.as_ref().map(model::container_badge).unwrap_or((Badge::Amber, "gone")));
    let status = move || c.with(|c| c.as_ref().map(|c| c.status.clone()).unwrap_or_default());
    let db_size = {
        let id = id.clone();
        move || group.with(|g| g.as_ref().and_then(|g| g.db_sizes.get(&id).copied()))
    };
    let can_restart = session.role >= Role::Operator && !first.protected;
    let protected = first.protected;
    let csrf = session.csrf.clone();
    let (btn_id, btn_name, image) = (first.id.clone(), first.name.clone(), first.image.clone());
    let peek_host = host.clone();
    view! {
        <li class="row" data-container=first.name.clone() data-id=first.id.clone()>
            <details>
                <summary>
                    {move || {
                        let (b, t) = badge();
                        badge_view(b, t)
                    }}
                    " "
                    <a class="name" href=detail_href.clone()>{first.name.clone()}</a>
                    <Show when=move || protected>
                        <span class="lock" title="protected: dockward will not restart or prune it">"locked"</span>
                    </Show>
                    {move || db_size().map(|s| view! { <span class="metric db" title="database volume size">{format!("db {}", model::human_bytes(s as u64))}</span> })}
                    <span class="metric">{cpu}</span>
                    <span class="metric">{mem}</span>
                </summary>
                <div class="row-body">
                    <p class="muted">{image} " · " {status}</p>
                    <p>
                        <a href=detail_href>"Details"</a>
                        " · "
                        <a href=logs_href>"Logs"</a>
                    </p>
                    <Show when=move || can_restart>
                        <RestartButton host=host.clone() id=btn_id.clone() name=btn_name.clone() csrf=csrf.clone()/>
                    </Show>
                    <LogPeek host=peek_host.clone() id=id.clone()/>
                </div>
            </details>
        </li>
    }
    .into_any()
}

/// The last lines of a container, loaded when opened.
#[component]
fn LogPeek(host: String, id: String) -> impl IntoView {
    let open = RwSignal::new(false);
    let lines = Resource::new(
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
                                {ls.into_iter().map(|l| {
                                    let class = if l.stream == LogStream::Stderr { "line stderr" } else { "line stdout" };
                                    view! { <span class=class>{model::ansi_spans(&l.line).into_iter().map(|(c, t)| view! { <span class=c>{t}</span> }).collect_view()}"\n"</span> }
                                }).collect_view()}
                            </pre>
                        }.into_any(),
                        Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </Show>
    }
}

/// An app's containers, their lines interleaved by time.
#[component]
fn AppLogs() -> impl IntoView {
    let params = use_params_map();
    let host = move || params.read().get("host").unwrap_or_default();
    let project = move || params.read().get("project").unwrap_or_default();
    let lines = Resource::new(move || (host(), project()), |(h, p)| get_app_logs(h, p, 200));
    let search = RwSignal::new(String::new());
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
                        <pre class="log" id="merged-log">
                            {move || {
                                let q = search.get();
                                ls.iter().filter(|m| browser::line_matches(&m.line.line, &q, false)).map(|m| {
                                    let class = if m.line.stream == LogStream::Stderr { "line stderr" } else { "line stdout" };
                                    view! {
                                        <span class=class>
                                            <span class="ts">{m.line.ts.clone().unwrap_or_default()} " "</span>
                                            <span class="who">{m.container.clone()} " "</span>
                                            {model::ansi_spans(&m.line.line).into_iter().map(|(c, t)| view! { <span class=c>{t}</span> }).collect_view()}
                                            "\n"
                                        </span>
                                    }
                                }).collect_view()
                            }}
                        </pre>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn RestartButton(host: String, id: String, name: String, csrf: String) -> impl IntoView {
    let action = ServerAction::<RestartContainer>::new();
    let confirming = RwSignal::new(false);
    let (h, i, c) = (host.clone(), id.clone(), csrf.clone());
    let n = name.clone();
    view! {
        <div class="action">
            <Show
                when=move || confirming.get()
                fallback=move || view! { <button class="btn restart" on:click=move |_| confirming.set(true)>"Restart…"</button> }
            >
                <span class="confirm">
                    {format!("Restart {n} on {}? It stops (up to 10 s) and starts again.", h.clone())}
                    " "
                    <button
                        class="btn danger confirm-restart"
                        on:click={
                            let (h, i, c) = (h.clone(), i.clone(), c.clone());
                            move |_| {
                                confirming.set(false);
                                action.dispatch(RestartContainer { host: h.clone(), id: i.clone(), csrf: c.clone() });
                            }
                        }
                    >
                        "Restart"
                    </button>
                    <button class="btn" on:click=move |_| confirming.set(false)>"Cancel"</button>
                </span>
            </Show>
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

#[component]
fn PullPanel(session: SessionInfo, fleet: RwSignal<Fleet>) -> impl IntoView {
    let action = ServerAction::<StartPull>::new();
    let image = RwSignal::new(String::new());
    let host = RwSignal::new(fleet.with_untracked(|f| f.hosts.first().map(|h| h.name.clone()).unwrap_or_default()));
    let status: RwSignal<Option<PullProgress>> = RwSignal::new(None);
    let csrf = session.csrf.clone();
    // Once the server has a job id, follow it until it finishes.
    Effect::new(move |_| {
        if let Some(Ok(job)) = action.value().get() {
            browser::poll_pull(job, status);
        }
    });
    view! {
        <details class="panel">
            <summary>"Pull an image"</summary>
            <form on:submit=move |ev| {
                ev.prevent_default();
                status.set(None);
                action.dispatch(StartPull { host: host.get(), image: image.get(), csrf: csrf.clone() });
            }>
                <HostSelect fleet=fleet host=host/>
                <input type="text" name="image" placeholder="nginx:1.27" required prop:value=move || image.get() on:input=move |ev| image.set(event_target_value(&ev))/>
                <button class="btn" type="submit">"Pull"</button>
            </form>
            {move || action.value().get().and_then(|r| r.err()).map(|e| view! { <p class="error outcome" role="alert">{e.to_string()}</p> })}
            {move || status.get().map(|s| {
                let progress = format!("{}: {} of {} layers", s.image, s.layers_done, s.layers_total);
                match s.done {
                    None => view! {
                        <div class="outcome" role="status">
                            <p>"Pulling " {progress} "…"</p>
                            <pre class="pull-lines">{s.lines.join("\n")}</pre>
                        </div>
                    }.into_any(),
                    Some(Ok(d)) => view! { <p class="ok outcome">"Pulled " {s.image.clone()} ": " <code>{d}</code></p> }.into_any(),
                    Some(Err(e)) => view! { <p class="error outcome" role="alert">{format!("Pull of {} failed: {e}", s.image)}</p> }.into_any(),
                }
            })}
        </details>
    }
}

#[component]
fn HostSelect(fleet: RwSignal<Fleet>, host: RwSignal<String>) -> impl IntoView {
    let names = move || fleet.get().hosts.into_iter().map(|h| h.name).collect::<Vec<String>>();
    view! {
        <select aria-label="host" on:change=move |ev| host.set(event_target_value(&ev)) prop:value=move || host.get()>
            <For each=names key=|n| n.clone() let:n>
                <option value=n.clone()>{n.clone()}</option>
            </For>
        </select>
    }
}

#[component]
fn PrunePanel(session: SessionInfo, fleet: RwSignal<Fleet>) -> impl IntoView {
    let action = ServerAction::<Prune>::new();
    let host = RwSignal::new(fleet.with_untracked(|f| f.hosts.first().map(|h| h.name.clone()).unwrap_or_default()));
    let kind = RwSignal::new("containers".to_owned());
    let all = RwSignal::new(false);
    let confirming = RwSignal::new(false);
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
            <Show when=move || confirming.get() fallback=move || view! { <button class="btn" on:click=move |_| confirming.set(true)>"Prune…"</button> }>
                <button class="btn danger" on:click={
                    let csrf = csrf.clone();
                    move |_| {
                        confirming.set(false);
                        if let Some(k) = PruneKind::parse(&kind.get()) {
                            action.dispatch(Prune { host: host.get(), kind: k, all: all.get(), csrf: csrf.clone() });
                        }
                    }
                }>"Yes, prune"</button>
                <button class="btn" on:click=move |_| confirming.set(false)>"Cancel"</button>
            </Show>
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

#[component]
fn Detail(session: SessionInfo) -> impl IntoView {
    let params = use_params_map();
    let host = move || params.read().get("host").unwrap_or_default();
    let id = move || params.read().get("id").unwrap_or_default();
    let page = Resource::new(move || (host(), id()), |(h, i)| get_container(h, i));
    let tab = RwSignal::new("overview");
    view! {
        <Suspense fallback=|| view! { <p class="empty">"Loading…"</p> }>
            {move || {
                let session = session.clone();
                Suspend::new(async move {
                    match page.await {
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok(p) => detail_view(p, tab, session).into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

fn detail_view(p: ContainerPage, tab: RwSignal<&'static str>, session: SessionInfo) -> impl IntoView {
    let d = p.detail;
    let s = d.summary.clone();
    let (badge, text) = model::container_badge(&s);
    let now_s = crate::browser::now_ms() / 1000;
    let uptime =
        s.started_at.filter(|_| s.state == shared::ContainerState::Running).map(|t| model::human_duration(now_s - t));
    let cpu: Vec<f64> = p.history.iter().map(|h| f64::from(h.cpu_percent.unwrap_or(0.0))).collect();
    let mem: Vec<f64> = p.history.iter().map(|h| h.memory_bytes as f64).collect();
    let tabs = ["overview", "state", "stats", "network", "env", "command", "logs"];
    let can_restart = session.role >= Role::Operator && !s.protected;
    let logs_href = format!("/logs/{}/{}", p.host, s.id);
    let (b_host, b_id, b_name, b_csrf) = (p.host.clone(), s.id.clone(), s.name.clone(), session.csrf.clone());
    view! {
        <Title text=format!("{} · dockward", s.name)/>
        <h1 class="detail-title">{badge_view(badge, text)} " " {s.name.clone()} {s.protected.then(|| view! { <span class="lock" title="protected: dockward will not restart or prune it">"locked"</span> })}</h1>
        <p class="muted">{p.host.clone()} " · " <code>{s.id.clone()}</code></p>
        <Show when=move || can_restart>
            <RestartButton host=b_host.clone() id=b_id.clone() name=b_name.clone() csrf=b_csrf.clone()/>
        </Show>
        <nav class="tabs" role="tablist">
            {tabs.into_iter().map(|t| view! {
                <button role="tab" class="tab" class:active=move || tab.get() == t on:click=move |_| tab.set(t)>{t}</button>
            }).collect_view()}
        </nav>
        <section class="tab-body" class:hidden=move || tab.get() != "overview">
            <dl class="kv">
                <dt>"Image"</dt><dd>{s.image.clone()}</dd>
                <dt>"Image id"</dt><dd><code>{s.image_id.clone()}</code></dd>
                <dt>"State"</dt><dd>{s.status.clone()}</dd>
                <dt>"Uptime"</dt><dd>{uptime.unwrap_or_else(|| "–".into())}</dd>
                <dt>"Restarts"</dt><dd>{s.restart_count}" (policy " {s.restart_policy.clone()} ")"</dd>
                <dt>"Compose"</dt><dd>{s.compose_project.clone().unwrap_or_else(|| "–".into())} " / " {s.compose_service.clone().unwrap_or_else(|| "–".into())}</dd>
            </dl>
        </section>
        <section class="tab-body" class:hidden=move || tab.get() != "state">
            <dl class="kv">
                <dt>"Exit code"</dt><dd>{d.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "–".into())}</dd>
                <dt>"OOM killed"</dt><dd>{if d.oom_killed { "yes" } else { "no" }}</dd>
                <dt>"Error"</dt><dd>{d.error.clone().unwrap_or_else(|| "–".into())}</dd>
                <dt>"Health"</dt><dd>{format!("{:?}", s.health).to_lowercase()}</dd>
            </dl>
            <h3>"Healthcheck log"</h3>
            <ul class="mono">{d.healthcheck_log.iter().map(|h| view! { <li>{format!("{} exit {}: {}", h.start.clone().unwrap_or_default(), h.exit_code.unwrap_or(-1), h.output)}</li> }).collect_view()}</ul>
        </section>
        <section class="tab-body" class:hidden=move || tab.get() != "stats">
            <h3>"CPU (15 min)"</h3>
            <svg class="spark big" viewBox="0 0 300 60" preserveAspectRatio="none" role="img" aria-label="CPU history"><polyline points=model::sparkline_points(&cpu, 300.0, 60.0)/></svg>
            <h3>"Memory (15 min)"</h3>
            <svg class="spark big" viewBox="0 0 300 60" preserveAspectRatio="none" role="img" aria-label="memory history"><polyline points=model::sparkline_points(&mem, 300.0, 60.0)/></svg>
        </section>
        <section class="tab-body" class:hidden=move || tab.get() != "network">
            <h3>"Ports"</h3>
            <ul>{s.ports.iter().map(|p| view! { <li>{format!("{}:{} → {}/{}", p.host_ip.clone().unwrap_or_default(), p.host_port.map(|x| x.to_string()).unwrap_or_else(|| "–".into()), p.container_port, p.protocol)}</li> }).collect_view()}</ul>
            <h3>"Networks"</h3>
            <ul>{s.networks.iter().map(|n| view! { <li>{format!("{} · {} · {}", n.name, n.ip.clone().unwrap_or_default(), n.subnet.clone().unwrap_or_default())}</li> }).collect_view()}</ul>
            <h3>"Mounts"</h3>
            <ul>{s.mounts.iter().map(|m| view! { <li>{format!("{} {} → {}{}", m.kind, m.name.clone().or(m.source.clone()).unwrap_or_default(), m.destination, if m.read_write { "" } else { " (ro)" })}</li> }).collect_view()}</ul>
        </section>
        <section class="tab-body" class:hidden=move || tab.get() != "env">
            <h3>"Environment"</h3>
            <table class="kv-table"><tbody>
                {d.env.iter().map(|e| view! { <tr><td><code>{e.key.clone()}</code></td><td>{if e.masked { "•••• (masked)".to_owned() } else { e.value.clone().unwrap_or_default() }}</td></tr> }).collect_view()}
            </tbody></table>
            <h3>"Labels"</h3>
            <table class="kv-table labels"><tbody>
                {s.labels.iter().map(|(k, v)| view! { <tr><td><code>{k.clone()}</code></td><td>{v.clone()}</td></tr> }).collect_view()}
            </tbody></table>
        </section>
        <section class="tab-body" class:hidden=move || tab.get() != "command">
            <dl class="kv">
                <dt>"Entrypoint"</dt><dd><code>{d.entrypoint.join(" ")}</code></dd>
                <dt>"Command"</dt><dd><code>{d.command.join(" ")}</code></dd>
            </dl>
        </section>
        <section class="tab-body" class:hidden=move || tab.get() != "logs">
            <p><a href=logs_href>"Open the log viewer"</a></p>
        </section>
    }
}

/// Most lines the browser keeps; older ones are dropped.
pub const MAX_LINES: usize = 5_000;

#[component]
fn Logs() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let host = move || params.read().get("host").unwrap_or_default();
    let id = move || params.read().get("id").unwrap_or_default();
    let tail = move || query.read().get("tail").and_then(|t| t.parse::<u32>().ok()).unwrap_or(200).min(10_000);
    let initial = Resource::new(move || (host(), id(), tail()), |(h, i, t)| get_logs(h, i, t, true));
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

#[component]
fn LogRow(line: LogLine, search: RwSignal<String>, regex: RwSignal<bool>, show_ts: RwSignal<bool>) -> impl IntoView {
    let class = if line.stream == LogStream::Stderr { "line stderr" } else { "line stdout" };
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

#[component]
fn Network(fleet: RwSignal<Fleet>) -> impl IntoView {
    let claims = Memo::new(move |_| fleet.with(model::port_claims));
    let nets = Memo::new(move |_| fleet.with(model::networks));
    view! {
        <Title text="Network · dockward"/>
        <h1>"Published ports"</h1>
        <table class="grid" id="ports">
            <thead><tr><th>"Host"</th><th>"Address"</th><th>"Port"</th><th>"App"</th><th>"Container"</th><th>"→"</th><th></th></tr></thead>
            <tbody>
                <For each=move || claims.get() key=|c| format!("{}-{}-{}-{}-{}", c.host, c.host_ip, c.host_port, c.protocol, c.container_id) let:c>
                    <tr class:conflict=c.conflict>
                        <td>{c.host.clone()}</td>
                        <td>{c.host_ip.clone()}</td>
                        <td>{format!("{}/{}", c.host_port, c.protocol)}</td>
                        <td>{c.project.clone().unwrap_or_else(|| "standalone".into())}</td>
                        <td>{c.container.clone()}</td>
                        <td>{c.container_port}</td>
                        <td>{c.conflict.then(|| view! { <span class="badge badge-red">"✕ port claimed twice"</span> })}</td>
                    </tr>
                </For>
            </tbody>
        </table>
        <h1>"Networks"</h1>
        <div class="cards">
            <For each=move || nets.get() key=|n| format!("{}/{}/{:?}", n.host, n.name, n.members) let:n>
                <article class="card" class:badge-red=!n.overlaps_with.is_empty()>
                    <header><h2>{n.name.clone()}</h2><span class="host">{n.host.clone()}</span></header>
                    <p><code>{n.subnet.clone().unwrap_or_else(|| "no subnet".into())}</code></p>
                    {(!n.overlaps_with.is_empty()).then(|| view! { <p class="badge badge-red">{format!("✕ overlaps {}", n.overlaps_with.join(", "))}</p> })}
                    <ul>{n.members.iter().map(|(m, ip)| view! { <li>{m.clone()} " " <span class="muted">{ip.clone().unwrap_or_default()}</span></li> }).collect_view()}</ul>
                </article>
            </For>
        </div>
    }
}

#[component]
fn Audit(session: SessionInfo, fleet: RwSignal<Fleet>) -> impl IntoView {
    if session.role < Role::Admin {
        return view! { <p class="error" role="alert">"The audit log needs the admin role."</p> }.into_any();
    }
    let host = RwSignal::new(fleet.with_untracked(|f| f.hosts.first().map(|h| h.name.clone()).unwrap_or_default()));
    let filter = RwSignal::new(AuditFilter::default());
    let draft = RwSignal::new(AuditFilter::default());
    let view_res = Resource::new(move || (host.get(), filter.get()), |(h, f)| get_audit(h, f));
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

#[component]
fn Login() -> impl IntoView {
    let query = use_query_map();
    let error = move || match query.read().get("error").as_deref() {
        Some("throttled") => Some("Too many attempts; wait a minute and try again."),
        Some(_) => Some("Wrong user name or password."),
        None => None,
    };
    view! {
        <Title text="Log in · dockward"/>
        <main class="login">
            <h1>"dockward"</h1>
            <form method="post" action="/auth/login" class="login-form">
                {move || error().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                <label>"User " <input type="text" name="username" autocomplete="username" required autofocus/></label>
                <label>"Password " <input type="password" name="password" autocomplete="current-password" required/></label>
                <button class="btn" type="submit" id="login">"Log in"</button>
            </form>
        </main>
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use crate::model::HostView;
    use shared::{ContainerState, ContainerSummary, Health};

    fn container(name: &str, project: Option<&str>, state: ContainerState, status: &str) -> ContainerSummary {
        crate::model::fixtures::container(name, project, state, Health::None, status)
    }

    fn fleet(containers: Vec<ContainerSummary>) -> Fleet {
        let mut f = crate::model::fixtures::fleet(containers);
        f.hosts[0].name = "h1".into();
        f
    }

    fn session(role: Role) -> SessionInfo {
        SessionInfo { name: "alice".into(), role, csrf: "tok".into() }
    }

    /// Renders a view on the server, as the first response would.
    fn render(f: impl FnOnce() -> AnyView + 'static) -> String {
        // Suspense and actions spawn futures; give them the executor the server uses.
        let _ = any_spawner::Executor::init_tokio();
        let owner = Owner::new();
        owner.set();
        provide_meta_context();
        f().to_html()
    }

    #[tokio::test]
    async fn overview_headline_cards_and_badges() {
        let f = fleet(vec![
            container("web", Some("shop"), ContainerState::Running, "Up 1 minute"),
            container("worker", Some("shop"), ContainerState::Exited, "Exited (1) 2 seconds ago"),
            container("lone", None, ContainerState::Running, "Up"),
        ]);
        let html = render(move || {
            let fleet = RwSignal::new(f);
            view! { <Overview session=session(Role::Viewer) fleet=fleet/> }.into_any()
        });
        assert!(html.contains("1 needs attention"), "{html}");
        assert!(html.contains(r#"data-app="shop""#) && html.contains(r#"data-app="standalone""#));
        // The shop card is red because a member exited non-zero; the text says so too.
        let shop = &html[html.find(r#"data-app="shop""#).unwrap()..];
        let shop = &shop[..shop.find("</article>").unwrap()];
        assert!(shop.contains("badge-red") && shop.contains("needs attention"), "{shop}");
        // Viewers get no action buttons.
        assert!(!html.contains("Restart…") && !html.contains("Prune"), "{html}");
    }

    #[tokio::test]
    async fn operators_see_restart_but_not_on_protected_containers() {
        let mut db = container("db", Some("shop"), ContainerState::Running, "Up");
        db.protected = true;
        let f = fleet(vec![db, container("web", Some("shop"), ContainerState::Running, "Up")]);
        let html = render(move || {
            let fleet = RwSignal::new(f);
            view! { <Overview session=session(Role::Operator) fleet=fleet/> }.into_any()
        });
        assert_eq!(html.matches("Restart…").count(), 1, "{html}");
        assert!(html.contains("locked"));
        assert!(html.contains("Pull an image") && !html.contains("Prune"), "pull for operators, prune for admins only");
    }

    #[tokio::test]
    async fn attacker_controlled_strings_are_escaped() {
        let xss = "<script>alert(1)</script><img src=x onerror=alert(2)>";
        let mut c = container("evil", Some(xss), ContainerState::Running, xss);
        c.image = xss.into();
        let f = fleet(vec![c]);
        let html = render(move || {
            let fleet = RwSignal::new(f);
            view! { <Overview session=session(Role::Admin) fleet=fleet/> }.into_any()
        });
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
    }

    #[tokio::test]
    async fn host_chips_say_state_in_words() {
        let html = render(|| {
            view! {
                <HostChip host=HostView { name: "b".into(), status: HostStatus::Down { error: "connection refused".into(), age_s: Some(30) }, containers: vec![], volume_sizes: Default::default(), cpu_history: Default::default() }/>
                <HostChip host=HostView { name: "c".into(), status: HostStatus::Stale { age_s: 42 }, containers: vec![], volume_sizes: Default::default(), cpu_history: Default::default() }/>
            }
            .into_any()
        });
        assert!(html.contains("down · connection refused"), "{html}");
        assert!(html.contains("stale · 42s old"), "{html}");
        assert!(html.contains("chip-down") && html.contains("chip-stale"));
    }

    #[tokio::test]
    async fn network_page_flags_conflicts() {
        let mut a = container("a", Some("x"), ContainerState::Running, "Up");
        let mut b = container("b", Some("y"), ContainerState::Running, "Up");
        let port = shared::PortMapping {
            container_port: 80,
            protocol: "tcp".into(),
            host_ip: Some("0.0.0.0".into()),
            host_port: Some(8080),
        };
        a.ports = vec![port.clone()];
        b.ports = vec![port];
        let f = fleet(vec![a, b]);
        let html = render(move || {
            let fleet = RwSignal::new(f);
            view! { <Network fleet=fleet/> }.into_any()
        });
        assert_eq!(html.matches("port claimed twice").count(), 2, "{html}");
    }
}
