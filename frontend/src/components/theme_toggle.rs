//! Light, dark or the system's theme (remembered by the browser).

use leptos::prelude::*;

use crate::browser;

#[component]
pub fn ThemeToggle() -> impl IntoView {
    view! {
        <span class="theme" role="group" aria-label="theme">
            <button class="link" title="light" on:click=|_| browser::set_theme("light")>"☀"</button>
            <button class="link" title="dark" on:click=|_| browser::set_theme("dark")>"☾"</button>
            <button class="link" title="system" on:click=|_| browser::set_theme("system")>"◐"</button>
        </span>
    }
}
