//! `/c/:host/:id`: one container in tabs: overview, state, stats, network,
//! environment, command, logs.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::components::{badge_view, lock_view, update_badge, RecreateButtons, RestartButton, Sparkline, UpdatesCtx};
use crate::model;
use crate::server_fns::get_container;
use crate::types::{ContainerPage, Role, SessionInfo};

#[component]
pub fn Detail(session: SessionInfo) -> impl IntoView {
    let params = use_params_map();
    let host = move || params.read().get("host").unwrap_or_default();
    let id = move || params.read().get("id").unwrap_or_default();
    let page = crate::resource::resource(move || (host(), id()), |(h, i)| get_container(h, i));
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
    // Host and container names need no escaping (both are [A-Za-z0-9_.-]).
    let history_href = format!("/history?host={}&container={}", p.host, s.name);
    let (b_host, b_id, b_name, b_csrf) = (p.host.clone(), s.id.clone(), s.name.clone(), session.csrf.clone());
    let (r_host, r_id) = (p.host.clone(), s.id.clone());
    let updates = UpdatesCtx::get();
    Effect::new(move |_| updates.load());
    let (u_host, u_id) = (p.host.clone(), s.id.clone());
    let has_update = move || updates.has_update(&u_host, &u_id);
    view! {
        <Title text=format!("{} · dockward", s.name)/>
        <h1 class="detail-title">{badge_view(badge, text)} " " {s.name.clone()} {s.protected.then(lock_view)} {move || has_update().then(update_badge)}</h1>
        <p class="muted">{p.host.clone()} " · " <code>{s.id.clone()}</code></p>
        <Show when=move || can_restart>
            <RestartButton host=b_host.clone() id=b_id.clone() name=b_name.clone() csrf=b_csrf.clone()/>
            <RecreateButtons host=r_host.clone() id=r_id.clone()/>
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
                <dt>"Exit code"</dt><dd>{s.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "–".into())}</dd>
                <dt>"OOM killed"</dt><dd>{if s.oom_killed { "yes" } else { "no" }}</dd>
                <dt>"Error"</dt><dd>{d.error.clone().unwrap_or_else(|| "–".into())}</dd>
                <dt>"Health"</dt><dd>{format!("{:?}", s.health).to_ascii_lowercase()}</dd>
            </dl>
            <h3>"Healthcheck log"</h3>
            <ul class="mono">{d.healthcheck_log.iter().map(|h| view! { <li>{format!("{} exit {}: {}", h.start.clone().unwrap_or_default(), h.exit_code.unwrap_or(-1), h.output)}</li> }).collect_view()}</ul>
        </section>
        <section class="tab-body" class:hidden=move || tab.get() != "stats">
            <h3>"CPU (15 min)"</h3>
            <Sparkline class="spark big" height=60.0 label="CPU history" values=cpu/>
            <h3>"Memory (15 min)"</h3>
            <Sparkline class="spark big" height=60.0 label="memory history" values=mem/>
            <p><a class="history-link" rel="external" href=history_href>"History (up to 90 days)"</a></p>
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
