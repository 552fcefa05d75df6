//! The console's frame (Leptos; rendered on the server, hydrated in the
//! browser): the HTML shell with its security headers, the route table, and
//! the signed-in wrapper around every page but login. The pages are in
//! `pages/`, their pieces in `components/`.

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::hooks::use_params_map;
use leptos_router::{path, SsrMode};

use crate::browser::{self, LiveLink};
use crate::components::Header;
use crate::model::{Fleet, Opened, Scope};
use crate::pages::{AppLogs, Audit, Detail, Login, Logs, Network, Overview};
use crate::server_fns::{get_fleet, whoami};
use crate::types::SessionInfo;

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
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
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
                <Route path=path!("/") ssr=SsrMode::Async view=|| signed_in(Scope::overview, |s, f| view! { <Overview session=s fleet=f/> }.into_any())/>
                <Route path=path!("/c/:host/:id") ssr=SsrMode::Async view=|| signed_in(container_scope, |s, _| view! { <Detail session=s/> }.into_any())/>
                <Route path=path!("/logs/:host/:id") ssr=SsrMode::Async view=|| signed_in(container_scope, |_, f| view! { <Logs fleet=f/> }.into_any())/>
                <Route path=path!("/apps/:host/:project/logs") ssr=SsrMode::Async view=|| signed_in(|| Scope::Hosts, |_, _| view! { <AppLogs/> }.into_any())/>
                <Route path=path!("/network") ssr=SsrMode::Async view=|| signed_in(|| Scope::Network, |_, f| view! { <Network fleet=f/> }.into_any())/>
                <Route path=path!("/audit") ssr=SsrMode::Async view=|| signed_in(|| Scope::Hosts, |s, f| view! { <Audit session=s fleet=f/> }.into_any())/>
            </Routes>
        </Router>
    }
}

/// The apps the overview opened and its filter (its live stream's [`Opened`]).
#[derive(Clone, Copy)]
pub struct OverviewOpened(pub RwSignal<Opened>);

/// The live scope of a container's pages: that container on its host.
fn container_scope() -> Scope {
    let p = use_params_map();
    p.with(|p| Scope::Container { host: p.get("host").unwrap_or_default(), reference: p.get("id").unwrap_or_default() })
}

/// Loads who is signed in and the fleet as the page shows it (`scope`),
/// shows the header, then the page, and follows the live stream of that
/// scope. Pages render with `SsrMode::Async`: the server sends complete
/// HTML once the (in-memory) data is ready, so nothing depends on a script
/// to appear.
fn signed_in(
    scope: impl Fn() -> Scope + Send + Sync + Clone + 'static,
    body: impl Fn(SessionInfo, RwSignal<Fleet>) -> AnyView + Send + Sync + Clone + 'static,
) -> impl IntoView {
    let session = crate::resource::resource(|| (), |_| whoami());
    let scope = Memo::new(move |_| scope());
    let fleet = crate::resource::resource(
        move || scope.get(),
        |s: Scope| {
            let (name, host, id) = s.parts();
            get_fleet(Some(name), host, id)
        },
    );
    let link = RwSignal::new(true);
    provide_context(LiveLink(link));
    // What the overview opened and filters: its live stream follows them.
    let opened = RwSignal::new(Opened::default());
    provide_context(OverviewOpened(opened));
    // The fleet's update check, once a page asks for it (browser only).
    provide_context(crate::components::UpdatesCtx(RwSignal::new(None)));
    // A memo: a change to `opened` that changes nothing does not restart the stream.
    let live_scope = Memo::new(move |_| match scope.get() {
        Scope::Overview(_) => Scope::Overview(opened.get()),
        other => other,
    });
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
                                browser::follow_fleet(live, live_scope.into(), link);
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
