//! `/`: the headline, then a card per app, filtered and sorted; the pull and
//! prune panels for those allowed. At fleet scale: healthy apps collapsed,
//! at most [`model::CARDS_PER_PAGE`] cards at a time ("Show more apps"), and
//! on a first render cut by [`model::first_screen`], a line saying what the
//! live view is still to bring.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::{badge_icon, AppCard, HostProblems, PrunePanel, PullPanel, UpdatesCtx};
use crate::model::{self, Fleet};
use crate::types::{Role, SessionInfo};

#[component]
pub fn Overview(session: SessionInfo, fleet: RwSignal<Fleet>) -> impl IntoView {
    // What this tab opened and filters; its live stream follows it (a page
    // outside the app's frame, as in tests, keeps its own).
    let opened = use_context::<crate::app::OverviewOpened>().map_or_else(|| RwSignal::new(Default::default()), |o| o.0);
    let filter = RwSignal::new(String::new());
    let sort = RwSignal::new("health".to_owned());
    let shown = RwSignal::new(model::CARDS_PER_PAGE);
    let headline = Memo::new(move |_| fleet.with(model::headline));
    let updates = UpdatesCtx::get();
    Effect::new(move |_| updates.load());
    let update_count = move || updates.0.with(|u| u.as_ref().map_or(0, |u| u.available()));
    let groups = Memo::new(move |_| {
        let f = filter.get();
        let mut gs = fleet.with(model::group_apps);
        for g in &mut gs {
            g.containers.retain(|m| model::matches_filter(&m.host, &m.c, &f));
        }
        // A folded app has no rows here, only its figures: kept unless filtered.
        let unfiltered = f.trim().is_empty();
        gs.retain(|g| !g.containers.is_empty() || (unfiltered && g.folded > 0));
        match sort.get().as_str() {
            "name" => gs.sort_by(|a, b| a.title().cmp(b.title())),
            "cpu" => gs.sort_by(|a, b| b.cpu_percent.total_cmp(&a.cpu_percent)),
            "memory" => gs.sort_by_key(|g| std::cmp::Reverse(g.memory_bytes)),
            _ => {}
        }
        gs
    });
    // Healthy cards start collapsed once the fleet is large, unless filtered.
    let collapse_healthy = Memo::new(move |_| {
        let size = fleet.with(model::container_count);
        filter.with(|f| model::collapse_healthy(size, f))
    });
    // The cards on the page: the first `shown`.
    let keys = Memo::new(move |_| {
        let n = shown.get();
        groups.with(|gs| gs.iter().take(n).map(|g| g.key()).collect::<Vec<_>>())
    });
    let hidden = move || groups.with(|gs| gs.len()).saturating_sub(shown.get());
    let omitted = move || fleet.with(|f| f.omitted);
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
        {move || {
            let n = update_count();
            (n > 0).then(|| view! { <p id="updates-count" class="updates-count">{model::count_updates(n)}</p> })
        }}
        <HostProblems fleet=fleet/>
        <div class="toolbar">
            <input
                type="search"
                id="filter"
                placeholder="Filter by name, image, state, host…"
                aria-label="filter"
                prop:value=move || filter.get()
                on:input=move |ev| {
                    let typed = event_target_value(&ev);
                    filter.set(typed.clone());
                    // The filter asks the server for its matches (a large fleet's
                    // healthy apps travel folded), once typing pauses. The page
                    // may be gone by then: its signals are only tried.
                    set_timeout(
                        move || {
                            if filter.try_get_untracked().as_ref() != Some(&typed) {
                                return;
                            }
                            let f: String =
                                model::normal_filter(&typed.replace(char::is_control, " ")).chars().take(model::FILTER_MAX).collect();
                            if opened.try_with_untracked(|o| o.filter != f) == Some(true) {
                                opened.try_update(|o| o.filter = f);
                            }
                        },
                        std::time::Duration::from_millis(300),
                    );
                }
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
                <a class="btn" href="/hosts" rel="external">"Hosts…"</a>
            </Show>
            <Show when=move || is_operator>
                <PullPanel session=s_pull.clone() fleet=fleet/>
            </Show>
        </div>
        <div class="cards">
            // Keyed by identity, not contents: cards and rows update in place
            // (an expanded row stays expanded while the numbers change).
            <For each=move || keys.get() key=|k| k.clone() let:k>
                <AppCard key=k groups=groups session=s_cards.clone() collapse_healthy=collapse_healthy opened=opened/>
            </For>
            <Show when=move || groups.with(|g| g.is_empty()) && omitted().is_none()>
                <p class="empty">"No containers match."</p>
            </Show>
        </div>
        <Show when=move || { hidden() > 0 }>
            <p class="more-cards">
                <button type="button" class="btn" id="show-more-apps" on:click=move |_| shown.update(|n| *n += model::CARDS_PER_PAGE)>
                    {move || format!("Show more apps ({} more)", hidden())}
                </button>
            </p>
        </Show>
        {move || {
            omitted()
                .map(|o| {
                    let apps = if o.apps == 1 { "1 more app".to_owned() } else { format!("{} more apps", o.apps) };
                    let containers = if o.containers == 1 { "1 container".to_owned() } else { format!("{} containers", o.containers) };
                    view! {
                        <p class="more-apps" id="omitted-apps">
                            {format!("{apps} ({containers}) — loading with the live view")}
                        </p>
                    }
                })
        }}
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use crate::model::{CARDS_PER_PAGE, COLLAPSE_ABOVE};
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

    /// The part of `html` from the card with `data-app=app` (and `data-host`
    /// starting with `host`) to its end.
    fn card<'a>(html: &'a str, app: &str, host: &str) -> &'a str {
        let start = html
            .find(&format!(r#"data-app="{app}" data-host="{host}"#))
            .unwrap_or_else(|| panic!("no {app} card: {html}"));
        let card = &html[start..];
        &card[..card.find("</article>").unwrap()]
    }

    fn overview(f: Fleet, role: Role) -> String {
        render(move || {
            let fleet = RwSignal::new(f);
            view! { <Overview session=session(role) fleet=fleet/> }.into_any()
        })
    }

    fn host(name: &str, containers: Vec<shared::ContainerSummary>) -> model::HostView {
        model::HostView {
            name: name.into(),
            status: model::HostStatus::Connected,
            unencrypted: false,
            containers,
            volume_sizes: Default::default(),
            cpu_history: Default::default(),
            folded: Vec::new(),
        }
    }

    /// The shop on two hosts is one card: each host with its count, its
    /// badge and its merged logs; rows link to and act on their own host.
    #[tokio::test]
    async fn an_app_on_several_hosts_is_one_card_with_its_hosts() {
        let mut f = fleet(vec![]);
        let mut failed = container("shop-web-1", Some("shop"), ContainerState::Exited, "Exited (1) 1 second ago");
        failed.restart_policy = "always".into();
        f.hosts = vec![
            host(
                "h1",
                vec![
                    container("shop-web-1", Some("shop"), ContainerState::Running, "Up"),
                    container("lone", None, ContainerState::Running, "Up"),
                ],
            ),
            host("h2", vec![failed, container("shop-db-1", Some("shop"), ContainerState::Running, "Up")]),
            host("h3", vec![container("lone", None, ContainerState::Running, "Up")]),
        ];
        let html = overview(f, Role::Operator);
        assert_eq!(html.matches(r#"data-app="shop""#).count(), 1, "{html}");
        assert_eq!(html.matches(r#"data-app="standalone""#).count(), 2, "standalone stays per host");
        let shop = card(&html, "shop", "h2 h1");
        assert!(shop.contains("badge-red") && shop.contains("2 hosts"), "{shop}");
        let h2 = &shop[shop.find(r#"<li data-host="h2""#).expect("h2 in the breakdown")..];
        let h2 = &h2[..h2.find("</li>").unwrap()];
        assert!(
            h2.contains(r#"href="/apps/h2/shop/logs""#) && h2.contains("1/2 running") && h2.contains("needs attention"),
            "{h2}"
        );
        let h1 = &shop[shop.find(r#"<li data-host="h1""#).expect("h1 in the breakdown")..];
        let h1 = &h1[..h1.find("</li>").unwrap()];
        assert!(
            h1.contains(r#"href="/apps/h1/shop/logs""#) && h1.contains("1/1 running") && h1.contains("healthy"),
            "{h1}"
        );
        // Rows: each on its host, links and the restart button included.
        for (h, n) in [("h1", "shop-web-1"), ("h2", "shop-web-1"), ("h2", "shop-db-1")] {
            let row =
                &shop[shop.find(&format!(r#"data-container="{n}" data-id="{n}-id" data-host="{h}""#)).expect(n)..];
            let row = &row[..row.find("</li>").unwrap()];
            assert!(
                row.contains(&format!(r#"href="/c/{h}/{n}-id""#))
                    && row.contains(&format!(r#"<span class="row-host">{h}</span>"#)),
                "{row}"
            );
            assert!(row.contains("Restart…"), "{row}");
        }
        assert!(!shop.contains("toggle-rows"), "a small fleet collapses nothing");
        let lone = card(&html, "standalone", "h3");
        assert!(
            lone.contains(r#"href="/apps/h3/standalone/logs""#)
                && !lone.contains("host-shares")
                && !lone.contains("row-host"),
            "{lone}"
        );
    }

    /// A small fleet's card is as it always was: one host, its merged logs,
    /// every row, no button.
    #[tokio::test]
    async fn a_small_fleet_looks_as_it_always_has() {
        let f = fleet(
            (0..COLLAPSE_ABOVE)
                .map(|i| container(&format!("web-{i}"), Some("shop"), ContainerState::Running, "Up"))
                .collect(),
        );
        let html = overview(f, Role::Viewer);
        let shop = card(&html, "shop", "h1");
        assert!(
            shop.contains(r#"<span class="host">h1</span>"#) && shop.contains(r#"href="/apps/h1/shop/logs""#),
            "{shop}"
        );
        assert_eq!(shop.matches(r#"class="row""#).count(), COLLAPSE_ABOVE);
        assert!(
            !html.contains("toggle-rows") && !html.contains("host-shares") && !html.contains("show-more-apps"),
            "{html}"
        );
        assert!(!html.contains("omitted-apps"));
    }

    /// Past the threshold, a healthy app shows its button and no rows; a
    /// problem app shows its rows and no button, first.
    #[tokio::test]
    async fn healthy_apps_collapse_once_the_fleet_is_large() {
        let mut cs: Vec<_> = (0..COLLAPSE_ABOVE)
            .map(|i| container(&format!("web-{i}"), Some("shop"), ContainerState::Running, "Up"))
            .collect();
        let mut failed = container("job", Some("batch"), ContainerState::Exited, "Exited (1) 1 second ago");
        failed.restart_policy = "always".into();
        cs.push(failed);
        cs.push(container("init", Some("setup"), ContainerState::Exited, "Exited (0) 1 minute ago"));
        let html = overview(fleet(cs), Role::Viewer);
        let shop = card(&html, "shop", "h1");
        let button = &shop[shop.find("<button").expect("a toggle")..];
        let button = &button[..button.find("</button>").unwrap()];
        assert!(
            button.contains(r#"aria-expanded="false""#) && button.contains(r#"aria-controls="rows-app-shop""#),
            "{button}"
        );
        assert!(button.contains(&format!("Show {COLLAPSE_ABOVE} containers")), "{button}");
        assert!(shop.contains(r#"<ul id="rows-app-shop" class="rows">"#), "{shop}");
        assert!(!shop.contains(r#"class="row""#), "collapsed: no rows in the page: {shop}");
        assert!(card(&html, "setup", "h1").contains("Show 1 container<"), "grey collapses too");
        let batch = card(&html, "batch", "h1");
        assert!(batch.contains(r#"data-container="job""#) && !batch.contains("toggle-rows"), "{batch}");
        assert!(html.find(r#"data-app="batch""#) < html.find(r#"data-app="shop""#), "problems first");
    }

    /// What a tab receives of a large fleet (healthy apps folded): the same
    /// cards, counts and headline, the healthy app's button and no rows.
    #[tokio::test]
    async fn a_folded_app_shows_its_card_and_its_count() {
        let mut cs: Vec<_> = (0..COLLAPSE_ABOVE)
            .map(|i| container(&format!("web-{i}"), Some("shop"), ContainerState::Running, "Up"))
            .collect();
        let mut failed = container("job", Some("batch"), ContainerState::Exited, "Exited (1) 1 second ago");
        failed.restart_policy = "always".into();
        cs.push(failed);
        let whole = overview(fleet(cs.clone()), Role::Viewer);
        let folded = model::overview(&fleet(cs), &model::Opened::default());
        assert!(folded.hosts[0].containers.len() == 1 && folded.hosts[0].folded.len() == 1, "{folded:?}");
        let html = overview(folded, Role::Viewer);
        let shop = card(&html, "shop", "h1");
        assert!(shop.contains(&format!("Show {COLLAPSE_ABOVE} containers")), "{shop}");
        assert_eq!(shop, card(&whole, "shop", "h1"), "folded or not, the same card");
        assert!(card(&html, "batch", "h1").contains(r#"data-container="job""#));
        let headline = |h: &str| h[h.find(r#"id="headline""#).unwrap()..][..200].to_owned();
        assert_eq!(headline(&html), headline(&whole));
    }

    /// The card itself: collapsed when told healthy cards are (a large fleet,
    /// no filter), open otherwise (a filter shows its matches).
    #[tokio::test]
    async fn a_filter_opens_healthy_cards() {
        let cards = |collapse: bool| {
            let f = fleet(vec![container("web", Some("shop"), ContainerState::Running, "Up")]);
            render(move || {
                let fleet = RwSignal::new(f);
                let groups = Memo::new(move |_| fleet.with(model::group_apps));
                view! { <AppCard key="app:shop".into() groups=groups session=session(Role::Viewer) collapse_healthy=collapse opened=RwSignal::new(Default::default())/> }.into_any()
            })
        };
        let (collapsed, open) = (cards(true), cards(false));
        assert!(
            collapsed.contains("Show 1 container") && !collapsed.contains(r#"data-container="web""#),
            "{collapsed}"
        );
        assert!(!open.contains("toggle-rows") && open.contains(r#"data-container="web""#), "{open}");
    }

    /// Many apps: a page of cards, and a button for the next.
    #[tokio::test]
    async fn at_most_a_page_of_cards_then_a_button() {
        let n = CARDS_PER_PAGE + 25;
        let f = fleet(
            (0..n)
                .map(|i| container(&format!("c{i}"), Some(&format!("app{i:03}")), ContainerState::Running, "Up"))
                .collect(),
        );
        let html = overview(f, Role::Viewer);
        assert_eq!(html.matches("<article").count(), CARDS_PER_PAGE);
        assert!(
            html.contains(r#"data-app="app000""#) && !html.contains(&format!(r#"data-app="app{CARDS_PER_PAGE:03}""#))
        );
        let button = &html[html.find(r#"id="show-more-apps""#).expect("a show-more button")..];
        assert!(button[..button.find("</button>").unwrap()].contains("Show more apps (25 more)"), "{button}");
        assert!(html.contains(r#"<button type="button" id="show-more-apps""#), "a real button");
    }

    /// 50 hosts × 100 containers, cut by first_screen: the whole fleet's
    /// headline, the problems, a line for the rest, under 1 MB; the whole
    /// fleet renders a page of cards under 1 MB too.
    #[tokio::test]
    async fn the_first_screen_of_a_large_fleet_is_bounded() {
        let full = crate::model::fixtures::big_fleet(50, 100, &["h7/h7-app3-svc0-1"]);
        let cut = model::first_screen(&full, model::FIRST_SCREEN_APPS);
        let want = model::headline(&full).text;
        let o = cut.omitted.unwrap();
        let html = overview(cut.clone(), Role::Operator);
        assert!(html.contains(&format!(r#"<span class="text">{want}</span>"#)), "{want}");
        let line = format!("{} more apps ({} containers) — loading with the live view", o.apps, o.containers);
        assert!(html.contains(&line), "{line}");
        assert!(html.find(r#"data-app="h7-app3""#) < html.find(r#"data-app="agent-0""#), "the problem first");
        assert!(card(&html, "h7-app3", "h7").contains(r#"data-container="h7-app3-svc0-1""#), "its rows open");
        assert!(html.matches("<article").count() <= model::FIRST_SCREEN_APPS);
        let json = serde_json::to_string(&cut).unwrap().len();
        assert!(html.len() + json <= 1 << 20, "{} bytes of HTML, {json} of data", html.len());
        eprintln!("first screen: {} bytes of HTML, {json} of data", html.len());
        // The whole fleet (the live view's snapshot): a page of cards, the line gone.
        let html = overview(full, Role::Operator);
        assert_eq!(html.matches("<article").count(), CARDS_PER_PAGE);
        assert!(!html.contains("omitted-apps") && html.contains("show-more-apps"));
        assert!(html.len() <= 1 << 20, "{} bytes", html.len());
        eprintln!("the whole fleet: {} bytes of HTML", html.len());
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
