//! `/login`: the sign-in form (a plain POST; works without scripts).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn Login() -> impl IntoView {
    let query = use_query_map();
    let error = move || match query.read().get("error").as_deref() {
        Some("throttled") => Some("Too many failed attempts; wait a little and try again."),
        Some("expired") => Some("That sign-in took too long or its password changed: sign in again."),
        Some(_) => Some("Wrong user name or password."),
        None => None,
    };
    view! {
        <Title text="Log in · dockward"/>
        <main class="login">
            <h1>"dockward"</h1>
            <form method="post" action="/auth/login" class="login-form">
                {move || error().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                <label>"User " <input type="text" name="username" autocomplete="username" required autofocus/></label>
                <label>"Password " <input type="password" name="password" autocomplete="current-password" required/></label>
                <button class="btn" type="submit" id="login">"Log in"</button>
            </form>
        </main>
    }
}
