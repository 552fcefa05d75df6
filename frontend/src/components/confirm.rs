//! A button for what cannot be undone: it asks first.

use leptos::either::Either;
use leptos::prelude::*;

/// Shows the `ask` button; once clicked, the `yes` button and Cancel (after
/// the `question`, in a `confirm` span, when there is one). `yes` closes the
/// question and runs `on_yes`.
#[component]
pub fn Confirm(
    ask_class: &'static str,
    ask: &'static str,
    yes_class: &'static str,
    yes: &'static str,
    #[prop(optional)] question: Option<String>,
    #[prop(into)] on_yes: Callback<()>,
) -> impl IntoView {
    let confirming = RwSignal::new(false);
    let buttons = move || {
        view! {
            <button
                class=yes_class
                on:click=move |_| {
                    confirming.set(false);
                    on_yes.run(());
                }
            >
                {yes}
            </button>
            <button class="btn" on:click=move |_| confirming.set(false)>"Cancel"</button>
        }
    };
    view! {
        <Show when=move || confirming.get() fallback=move || view! { <button class=ask_class on:click=move |_| confirming.set(true)>{ask}</button> }>
            {match question.clone() {
                Some(q) => Either::Left(view! { <span class="confirm">{q} " " {buttons()}</span> }),
                None => Either::Right(buttons()),
            }}
        </Show>
    }
}
