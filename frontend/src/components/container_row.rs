//! A container's row in its app card: badge, name (and host, on a card of
//! several hosts), figures; opened, its image, links, the restart button and
//! a peek at its logs. The links and the actions are its own host's.

use leptos::prelude::*;

use super::{badge_view, lock_view, update_badge, LogPeek, RecreateButtons, RestartButton, UpdatesCtx};
use crate::model::{self, AppGroup, Badge};
use crate::types::{Role, SessionInfo};

#[component]
pub fn ContainerRow(
    host: String,
    id: String,
    group: Memo<Option<AppGroup>>,
    session: SessionInfo,
    #[prop(into)] show_host: Signal<bool>,
) -> impl IntoView {
    let member = {
        let (host, id) = (host.clone(), id.clone());
        Memo::new(move |_| {
            group.with(|g| {
                g.as_ref().and_then(|g| g.containers.iter().find(|m| m.c.id == id && m.host == host).cloned())
            })
        })
    };
    let c = Memo::new(move |_| member.with(|m| m.as_ref().map(|m| m.c.clone())));
    let Some(first) = c.get_untracked() else { return ().into_any() };
    let detail_href = format!("/c/{}/{}", host, first.id);
    let logs_href = format!("/logs/{}/{}", host, first.id);
    let cpu = move || {
        c.with(|c| {
            c.as_ref()
                .and_then(|c| c.stats.as_ref()?.cpu_percent)
                .map(model::human_percent)
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
    let badge =
        move || c.with(|c| c.as_ref().map(model::container_badge).unwrap_or_else(|| (Badge::Amber, "gone".into())));
    let status = move || c.with(|c| c.as_ref().map(|c| c.status.clone()).unwrap_or_default());
    let db_size = move || member.with(|m| m.as_ref().and_then(|m| m.db_size));
    let can_restart = session.role >= Role::Operator && !first.protected;
    let protected = first.protected;
    let csrf = session.csrf.clone();
    let (btn_id, btn_name, image) = (first.id.clone(), first.name.clone(), first.image.clone());
    let (peek_host, row_host, shown_host) = (host.clone(), host.clone(), host.clone());
    let updates = UpdatesCtx::get();
    let (u_host, u_id) = (host.clone(), first.id.clone());
    let has_update = move || updates.has_update(&u_host, &u_id);
    let (r_host, r_id) = (host.clone(), first.id.clone());
    view! {
        <li class="row" data-container=first.name.clone() data-id=first.id.clone() data-host=row_host>
            <details>
                <summary>
                    {move || {
                        let (b, t) = badge();
                        badge_view(b, t)
                    }}
                    " "
                    <a class="name" href=detail_href.clone()>{first.name.clone()}</a>
                    <Show when=move || show_host.get()>
                        <span class="row-host">{shown_host.clone()}</span>
                    </Show>
                    <Show when=move || protected>
                        {lock_view()}
                    </Show>
                    {let has_update = has_update.clone(); move || has_update().then(update_badge)}
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
                        <RecreateButtons host=r_host.clone() id=r_id.clone()/>
                    </Show>
                    <LogPeek host=peek_host.clone() id=id.clone()/>
                </div>
            </details>
        </li>
    }
    .into_any()
}
