//! An app's card on the overview: its badge, bars, CPU sparkline and a row
//! per container.

use leptos::prelude::*;

use super::{badge_view, Bars, ContainerRow, Sparkline};
use crate::model::{AppGroup, Badge};
use crate::types::SessionInfo;

#[component]
pub fn AppCard(key: String, groups: Memo<Vec<AppGroup>>, session: SessionInfo) -> impl IntoView {
    let group = Memo::new(move |_| groups.with(|gs| gs.iter().find(|g| g.key() == key).cloned()));
    let (title, host) =
        group.with_untracked(|g| g.as_ref().map(|g| (g.title().to_owned(), g.host.clone())).unwrap_or_default());
    let badge = move || group.with(|g| g.as_ref().map(|g| g.badge).unwrap_or(Badge::Amber));
    let badge_text = move || match badge() {
        Badge::Grey => "completed",
        Badge::Green => "healthy",
        Badge::Amber => "to check",
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
    let series = move || group.with(|g| g.as_ref().map(|g| g.cpu_series.clone()).unwrap_or_default());
    let row_host = host.clone();
    let logs_href = format!("/apps/{}/{}/logs", host, title);
    view! {
        <article class=move || format!("card {}", badge().class()) data-app=title.clone() data-host=host.clone()>
            <header>
                <h2>{title.clone()}</h2>
                <span class="host">{host.clone()}</span>
                {move || badge_view(badge(), badge_text())}
            </header>
            <Bars cpu=cpu mem=mem mem_pct=mem_pct/>
            <Sparkline class="spark" height=28.0 label="CPU, last 15 minutes" values=series/>
            <p class="card-links"><a href=logs_href>"All logs, merged"</a></p>
            <ul class="rows">
                <For each=ids key=|id| id.clone() let:id>
                    <ContainerRow host=row_host.clone() id=id group=group session=session.clone()/>
                </For>
            </ul>
        </article>
    }
}
