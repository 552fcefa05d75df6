//! `/`: the headline, then a card per app, filtered and sorted; the pull and
//! prune panels for those allowed.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::{badge_icon, AppCard, HostProblems, PrunePanel, PullPanel};
use crate::model::{self, Fleet};
use crate::types::{Role, SessionInfo};

#[component]
pub fn Overview(session: SessionInfo, fleet: RwSignal<Fleet>) -> impl IntoView {
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
                let icon = badge_icon(h.badge);
                view! { <span aria-hidden="true" class="icon">{icon}</span> <span class="text">{h.text}</span> }
            }}
        </section>
        <HostProblems fleet=fleet/>
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

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use crate::testing::{container, fleet, render, session};
    use shared::ContainerState;

    #[tokio::test]
    async fn overview_headline_cards_and_badges() {
        let f = fleet(vec![
            container("web", Some("shop"), ContainerState::Running, "Up 1 minute"),
            {
                // Meant to run (policy always) but exited non-zero: a problem.
                let mut w = container("worker", Some("shop"), ContainerState::Exited, "Exited (1) 2 seconds ago");
                w.restart_policy = "always".into();
                w
            },
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

    /// An app whose containers have no stats (stopped) sums to nothing: its
    /// CPU shows 0.0%, never "-0.0%" (a float sum of nothing is -0.0).
    #[tokio::test]
    async fn cpu_of_an_app_without_stats_is_zero_not_negative_zero() {
        let mut running = container("web", Some("shop"), ContainerState::Running, "Up");
        running.stats = Some(shared::StatsSample {
            id: running.id.clone(),
            time_ms: 0,
            cpu_percent: Some(-0.01),
            memory_bytes: 0,
            memory_limit_bytes: 0,
            net_rx_bytes: 0,
            net_tx_bytes: 0,
            block_read_bytes: 0,
            block_write_bytes: 0,
            pids: 1,
        });
        let f = fleet(vec![running, container("old", Some("batch"), ContainerState::Exited, "Exited (0) 1 hour ago")]);
        let html = render(move || {
            let fleet = RwSignal::new(f);
            view! { <Overview session=session(Role::Viewer) fleet=fleet/> }.into_any()
        });
        assert!(!html.contains("-0.0"), "{html}");
        let batch = &html[html.find(r#"data-app="batch""#).unwrap()..];
        let batch = &batch[..batch.find("</article>").unwrap()];
        assert!(batch.contains("0.0%"), "{batch}");
        let shop = &html[html.find(r#"data-app="shop""#).unwrap()..];
        let shop = &shop[..shop.find("</article>").unwrap()];
        assert_eq!(shop.matches("0.0%").count(), 2, "the card and the row: {shop}");
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
}
