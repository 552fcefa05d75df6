//! An app's card on the overview: its badge, bars, CPU sparkline, its hosts
//! (an app on several hosts is one card) and a row per container. A healthy
//! app of a large fleet starts collapsed: its rows are not rendered until
//! asked for.

use leptos::prelude::*;

use super::{action_href, badge_view, update_badge, Bars, ContainerRow, Sparkline, UpdatesCtx};
use crate::model::{AppGroup, Badge, Opened};
use crate::types::SessionInfo;

/// The words of an app's (or an app's host's) badge.
fn app_badge_text(badge: Badge) -> &'static str {
    match badge {
        Badge::Grey => "completed",
        Badge::Green => "healthy",
        Badge::Amber => "to check",
        Badge::Red => "needs attention",
    }
}

/// `collapse_healthy`: whether healthy (green or grey) cards start collapsed
/// ([`crate::model::collapse_healthy`]; the card adds its badge, as
/// [`crate::model::collapsed_by_default`] does).
#[component]
pub fn AppCard(
    key: String,
    groups: Memo<Vec<AppGroup>>,
    session: SessionInfo,
    #[prop(into)] collapse_healthy: Signal<bool>,
    /// The apps the tab opened: a folded app's rows come from the server
    /// once it is in there.
    opened: RwSignal<Opened>,
) -> impl IntoView {
    let my_key = key.clone();
    let group = Memo::new(move |_| groups.with(|gs| gs.iter().find(|g| g.key() == key).cloned()));
    let (title, dom_id) =
        group.with_untracked(|g| g.as_ref().map(|g| (g.title().to_owned(), g.dom_id())).unwrap_or_default());
    let badge = move || group.with(|g| g.as_ref().map(|g| g.badge).unwrap_or(Badge::Amber));
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
    // Rows by (host, id): the same id can be on two hosts.
    let rows = move || {
        group.with(|g| {
            g.as_ref()
                .map(|g| g.containers.iter().map(|m| (m.host.clone(), m.c.id.clone())).collect::<Vec<_>>())
                .unwrap_or_default()
        })
    };
    let count = move || group.with(|g| g.as_ref().map_or(0, |g| g.containers.len() + g.folded));
    let series = move || group.with(|g| g.as_ref().map(|g| g.cpu_series.clone()).unwrap_or_default());
    // Updates: the badge when any of its containers has one; "Update app"
    // for operators, on a compose project's card of one host.
    let updates = UpdatesCtx::get();
    let has_update = move || {
        group.with(|g| g.as_ref().is_some_and(|g| g.containers.iter().any(|m| updates.has_update(&m.host, &m.c.id))))
    };
    let update_app = group.with_untracked(|g| {
        let g = g.as_ref()?;
        let project = g.project.clone()?;
        let [share] = g.hosts.as_slice() else { return None };
        Some((share.host.clone(), project))
    });
    let can_update_app = session.role >= crate::types::Role::Operator && update_app.is_some();
    // The hosts change rarely; the breakdown re-renders only then.
    let shares = Memo::new(move |_| group.with(|g| g.as_ref().map(|g| g.hosts.clone()).unwrap_or_default()));
    let host_names = move || shares.with(|s| s.iter().map(|s| s.host.as_str()).collect::<Vec<_>>().join(" "));
    let many_hosts = move || shares.with(|s| s.len() > 1);
    let host_label = move || {
        shares.with(|s| match s.as_slice() {
            [one] => one.host.clone(),
            many => format!("{} hosts", many.len()),
        })
    };
    let logs_href = {
        let title = title.clone();
        move |host: &str| format!("/apps/{host}/{title}/logs")
    };
    let breakdown = {
        let logs_href = logs_href.clone();
        move || {
            shares
                .get()
                .into_iter()
                .map(|s| {
                    let href = logs_href(&s.host);
                    view! {
                        <li data-host=s.host.clone()>
                            <a href=href title=format!("{}: all logs, merged", s.host)>{s.host.clone()}</a>
                            " "
                            <span class="share">{format!("{}/{} running", s.running, s.containers)}</span>
                            " "
                            {badge_view(s.badge, app_badge_text(s.badge))}
                        </li>
                    }
                })
                .collect_view()
        }
    };
    let single_logs_href = move || shares.with(|s| s.first().map(|s| logs_href(&s.host)).unwrap_or_default());
    // Collapsed: a healthy app of a large fleet, until its button opens it.
    // Memos: the card's figures change at every poll, these seldom.
    let open_key = my_key.clone();
    let is_opened = Memo::new(move |_| opened.with(|o| o.apps.contains(&open_key)));
    let collapsible = Memo::new(move |_| collapse_healthy.get() && !badge().is_problem());
    let open = Memo::new(move |_| !collapsible.get() || is_opened.get());
    let rows_id = format!("rows-{dom_id}");
    let controls = rows_id.clone();
    let rows_view = move || {
        let session = session.clone();
        view! {
            <For each=rows key=|r| r.clone() let:r>
                <ContainerRow host=r.0 id=r.1 group=group session=session.clone() show_host=Signal::derive(many_hosts)/>
            </For>
        }
    };
    view! {
        <article class=move || format!("card {}", badge().class()) data-app=title.clone() data-host=host_names>
            <header>
                <h2>{title.clone()}</h2>
                <span class="host">{host_label}</span>
                {move || badge_view(badge(), app_badge_text(badge()))}
                {move || has_update().then(update_badge)}
            </header>
            <Bars cpu=cpu mem=mem mem_pct=mem_pct/>
            {move || {
                let (host, project) = update_app.clone()?;
                (can_update_app && has_update()).then(|| view! { <a class="btn update update-app" rel="external" href=action_href(&host, &project, "app")>"Update app…"</a> })
            }}
            <Sparkline class="spark" height=28.0 label="CPU, last 15 minutes" values=series/>
            <Show
                when=many_hosts
                fallback=move || view! { <p class="card-links"><a href=single_logs_href.clone()>"All logs, merged"</a></p> }
            >
                <ul class="host-shares" aria-label="hosts">{breakdown.clone()}</ul>
            </Show>
            <Show when=move || collapsible.get()>
                <button
                    type="button"
                    class="btn toggle-rows"
                    aria-expanded=move || open.get().to_string()
                    aria-controls=controls.clone()
                    on:click={
                        let my_key = my_key.clone();
                        move |_| {
                            let now = !is_opened.get_untracked();
                            opened.update(|o| o.toggle(&my_key, now));
                        }
                    }
                >
                    {move || match (is_opened.get(), count()) {
                        (true, _) => "Hide containers".to_owned(),
                        (false, 1) => "Show 1 container".to_owned(),
                        (false, n) => format!("Show {n} containers"),
                    }}
                </button>
            </Show>
            // Collapsed, its rows are not in the page at all.
            <ul class="rows" id=rows_id>
                {move || open.get().then(&rows_view)}
            </ul>
        </article>
    }
}
