//! The few things only a browser can do: live streams (EventSource), the
//! theme, regex search (the browser's own RegExp, so no regex engine ships in
//! the bundle), the clock. On the server these are harmless stand-ins, so the
//! server renders exactly what the browser hydrates.

use leptos::prelude::*;
use shared::LogLine;

use crate::model::{Fleet, Scope};

#[cfg(feature = "hydrate")]
mod imp {
    use std::cell::RefCell;

    use leptos::prelude::*;
    use shared::LogLine;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;

    use crate::model::{Fleet, Scope};

    thread_local! {
        static LIVE: RefCell<Option<web_sys::EventSource>> = const { RefCell::new(None) };
        static LOGS: RefCell<Option<web_sys::EventSource>> = const { RefCell::new(None) };
        static PAGE_HOOKS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// Once per page: a page leaving (`pagehide`) closes its streams, and one
    /// brought back from the back/forward cache (`pageshow`, `persisted`)
    /// reloads. Kept alive in that cache with their EventSources open, a few
    /// pages would hold Chromium's six connections per host and starve the
    /// next page's stream; and a restored page's data is stale anyway.
    fn page_lifecycle() {
        if PAGE_HOOKS.with(|h| h.replace(true)) {
            return;
        }
        let Some(w) = web_sys::window() else { return };
        let hide = Closure::<dyn FnMut(web_sys::Event)>::new(|_: web_sys::Event| {
            for slot in [&LIVE, &LOGS] {
                slot.with(|s| {
                    if let Some(es) = s.borrow_mut().take() {
                        es.close();
                    }
                });
            }
        });
        let _ = w.add_event_listener_with_callback("pagehide", hide.as_ref().unchecked_ref());
        hide.forget();
        let show = Closure::<dyn FnMut(web_sys::Event)>::new(|ev: web_sys::Event| {
            let persisted = js_sys::Reflect::get(&ev, &"persisted".into()).ok().and_then(|v| v.as_bool());
            if persisted == Some(true) {
                if let Some(w) = web_sys::window() {
                    let _ = w.location().reload();
                }
            }
        });
        let _ = w.add_event_listener_with_callback("pageshow", show.as_ref().unchecked_ref());
        show.forget();
    }

    fn listen(es: &web_sys::EventSource, event: &str, f: impl FnMut(web_sys::MessageEvent) + 'static) {
        let cb = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(f);
        let _ = es.add_event_listener_with_callback(event, cb.as_ref().unchecked_ref());
        cb.forget();
    }

    /// The page's live stream: a snapshot (or resync) replaces the fleet, a
    /// delta moves it on; `link` says whether the stream is connected.
    pub fn follow_fleet(fleet: RwSignal<Fleet>, scope: &Scope, link: RwSignal<bool>) {
        // One live stream per page; EventSource reconnects by itself (sending
        // the last event id, so the server resumes or resyncs).
        page_lifecycle();
        LIVE.with(|slot| {
            if let Some(old) = slot.borrow_mut().take() {
                old.close();
            }
            let Ok(es) = web_sys::EventSource::new(&format!("/api/live?{}", scope.query())) else { return };
            for event in ["snapshot", "resync", "delta"] {
                listen(&es, event, move |ev| {
                    if let Some(text) = ev.data().as_string() {
                        fleet.update(|f| {
                            let _ = f.follow(event, &text);
                        });
                        link.set(true);
                    }
                });
            }
            let opened = std::rc::Rc::new(std::cell::Cell::new(false));
            let opened2 = opened.clone();
            listen(&es, "open", move |_| {
                opened2.set(true);
                link.set(true);
            });
            let es2 = es.clone();
            let scope = scope.clone();
            listen(&es, "error", move |_| {
                link.set(false);
                if es2.ready_state() != web_sys::EventSource::CLOSED {
                    return;
                }
                // Refused on a reconnect rather than cut (the session ended,
                // say): the browser will not retry; a reload shows why (the
                // login page). A stream refused at once (too many views, a
                // bad filter) is tried again in a while, never reloaded
                // (that would only reload again).
                if opened.get() {
                    if let Some(w) = web_sys::window() {
                        let _ = w.location().reload();
                    }
                } else {
                    let (es3, scope) = (es2.clone(), scope.clone());
                    leptos::prelude::set_timeout(
                        move || {
                            // Unless the page moved on to another stream meanwhile.
                            if LIVE.with(|slot| slot.borrow().as_ref() == Some(&es3)) {
                                follow_fleet(fleet, &scope, link);
                            }
                        },
                        std::time::Duration::from_secs(5),
                    );
                }
            });
            *slot.borrow_mut() = Some(es);
        });
    }

    pub fn follow_logs(host: &str, id: &str, lines: RwSignal<Vec<LogLine>>, paused: RwSignal<bool>, max: usize) {
        page_lifecycle();
        stop_logs();
        let url = format!(
            "/api/logs/follow?host={}&id={}&tail=0",
            js_sys::encode_uri_component(host),
            js_sys::encode_uri_component(id)
        );
        let Ok(es) = web_sys::EventSource::new(&url) else { return };
        let held: std::rc::Rc<RefCell<Vec<LogLine>>> = Default::default();
        listen(&es, "line", move |ev| {
            let Some(text) = ev.data().as_string() else { return };
            let Ok(line) = serde_json::from_slice::<LogLine>(text.as_bytes()) else { return };
            let mut h = held.borrow_mut();
            h.push(line);
            if h.len() > max {
                let extra = h.len() - max;
                h.drain(..extra);
            }
            if !paused.get_untracked() {
                let new: Vec<LogLine> = h.drain(..).collect();
                lines.update(|l| {
                    l.extend(new);
                    if l.len() > max {
                        let extra = l.len() - max;
                        l.drain(..extra);
                    }
                });
            }
        });
        LOGS.with(|slot| *slot.borrow_mut() = Some(es));
    }

    pub fn stop_logs() {
        LOGS.with(|slot| {
            if let Some(es) = slot.borrow_mut().take() {
                es.close();
            }
        });
    }

    pub fn set_theme(theme: &str) {
        let Some(w) = web_sys::window() else { return };
        if let Ok(Some(storage)) = w.local_storage() {
            let _ = storage.set_item("dockward-theme", theme);
        }
        if let Some(root) = w.document().and_then(|d| d.document_element()) {
            if theme == "system" {
                let _ = root.remove_attribute("data-theme");
            } else {
                let _ = root.set_attribute("data-theme", theme);
            }
        }
    }

    pub fn regex(q: &str) -> Option<js_sys::RegExp> {
        // An invalid pattern matches nothing rather than throwing.
        let re = js_sys::Reflect::construct(
            &js_sys::RegExp::new("x", "").constructor(),
            &js_sys::Array::of2(&q.into(), &"gi".into()),
        )
        .ok()?;
        re.dyn_into::<js_sys::RegExp>().ok()
    }

    pub fn now_ms() -> i64 {
        js_sys::Date::now() as i64
    }
}

/// Whether the page's live stream is connected (false: "reconnecting").
#[derive(Clone, Copy)]
pub struct LiveLink(pub RwSignal<bool>);

/// Starts pushing the live fleet, as a page with `scope` shows it, into
/// `fleet` (browser only); `link` follows the connection. When the scope
/// changes (the overview opens an app, or filters), the stream starts over
/// with the new one (a fresh snapshot).
pub fn follow_fleet(fleet: RwSignal<Fleet>, scope: Signal<Scope>, link: RwSignal<bool>) {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| scope.with(|s| imp::follow_fleet(fleet, s, link)));
    #[cfg(not(feature = "hydrate"))]
    let _ = (fleet, scope, link);
}

pub fn follow_logs(host: &str, id: &str, lines: RwSignal<Vec<LogLine>>, paused: RwSignal<bool>, max: usize) {
    #[cfg(feature = "hydrate")]
    imp::follow_logs(host, id, lines, paused, max);
    #[cfg(not(feature = "hydrate"))]
    let _ = (host, id, lines, paused, max);
}

pub fn stop_logs() {
    #[cfg(feature = "hydrate")]
    imp::stop_logs();
}

pub fn set_theme(theme: &str) {
    #[cfg(feature = "hydrate")]
    imp::set_theme(theme);
    #[cfg(not(feature = "hydrate"))]
    let _ = theme;
}

pub fn now_ms() -> i64 {
    #[cfg(feature = "hydrate")]
    return imp::now_ms();
    #[cfg(not(feature = "hydrate"))]
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Whether a bottom-up log box (`.log-scroll`: `flex-direction:
/// column-reverse`, so its scroll offset is 0 at the newest line and negative
/// above it) shows its newest line; a few pixels of slack for rounding.
pub fn at_latest(scroller: NodeRef<leptos::html::Div>) -> bool {
    #[cfg(feature = "hydrate")]
    if let Some(el) = scroller.get_untracked() {
        return el.scroll_top() > -8;
    }
    let _ = scroller;
    true
}

/// Scrolls a bottom-up log box back to its newest line.
pub fn scroll_to_latest(scroller: NodeRef<leptos::html::Div>) {
    #[cfg(feature = "hydrate")]
    if let Some(el) = scroller.get_untracked() {
        el.set_scroll_top(0);
    }
    let _ = scroller;
}

/// Polls a background job (a pull, a recreate, an app's update) every 700 ms
/// into `status` until it finishes (browser only).
pub fn poll_job(job: String, status: RwSignal<Option<crate::types::JobProgress>>) {
    #[cfg(feature = "hydrate")]
    {
        use std::time::Duration;
        let handle: std::rc::Rc<std::cell::Cell<Option<IntervalHandle>>> = Default::default();
        let h2 = handle.clone();
        let tick = move || {
            let job = job.clone();
            let h2 = h2.clone();
            leptos::task::spawn_local(async move {
                match crate::server_fns::job_status(job).await {
                    Ok(s) => {
                        let finished = s.done.is_some();
                        status.set(Some(s));
                        if finished {
                            if let Some(h) = h2.take() {
                                h.clear();
                            }
                        }
                    }
                    Err(_) => {
                        if let Some(h) = h2.take() {
                            h.clear();
                        }
                    }
                }
            });
        };
        if let Ok(h) = set_interval_with_handle(tick, Duration::from_millis(700)) {
            handle.set(Some(h));
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (job, status);
}

/// Does `line` match the search (plain, case-insensitive; or a regex in the browser)?
pub fn line_matches(line: &str, q: &str, regex: bool) -> bool {
    if q.is_empty() {
        return true;
    }
    !highlight(line, q, regex).iter().all(|(hit, _)| !hit)
}

/// Splits `text` into (matched?, piece) for highlighting.
pub fn highlight(text: &str, q: &str, regex: bool) -> Vec<(bool, String)> {
    if q.is_empty() {
        return vec![(false, text.to_owned())];
    }
    #[cfg(feature = "hydrate")]
    if regex {
        let Some(re) = imp::regex(q) else { return vec![(false, text.to_owned())] };
        let mut out = Vec::new();
        let mut last = 0usize;
        let utf16: Vec<u16> = text.encode_utf16().collect();
        while let Some(m) = re.exec(text) {
            let start = re.last_index() as usize - m.get(0).as_string().map(|s| s.encode_utf16().count()).unwrap_or(0);
            let end = re.last_index() as usize;
            if end == start {
                re.set_last_index(re.last_index() + 1);
                if end >= utf16.len() {
                    break;
                }
                continue;
            }
            out.push((false, String::from_utf16_lossy(&utf16[last..start])));
            out.push((true, String::from_utf16_lossy(&utf16[start..end])));
            last = end;
        }
        out.push((false, String::from_utf16_lossy(&utf16[last.min(utf16.len())..])));
        return out.into_iter().filter(|(_, s)| !s.is_empty()).collect();
    }
    let _ = regex;
    crate::model::highlight_plain(text, q)
}
