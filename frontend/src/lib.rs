#![recursion_limit = "512"]
//! dockward-web: the web console. Leptos pages rendered on the server and
//! hydrated in the browser; the server side (`ssr`) fans in the sidecars of
//! many hosts. No Docker client is linked here, and no socket is opened.

pub mod app;
pub mod browser;
mod components;
pub mod error;
pub mod model;
mod pages;
mod resource;
#[cfg(feature = "ssr")]
pub mod server;
pub mod server_fns;
#[cfg(all(test, feature = "ssr"))]
mod testing;
pub mod types;

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    // A marker for tests (and curious humans): the page is interactive now.
    if let Some(body) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.body()) {
        let _ = body.set_attribute("data-hydrated", "1");
    }
}
