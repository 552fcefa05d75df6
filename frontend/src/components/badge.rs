//! Badges: a state in colour *and* words (never colour alone), and the lock
//! on protected containers.

use leptos::prelude::*;

use crate::model::Badge;

/// The badge's icon; the words beside it carry the meaning.
pub fn badge_icon(badge: Badge) -> &'static str {
    match badge {
        Badge::Grey => "○",
        Badge::Green => "✓",
        Badge::Amber => "!",
        Badge::Red => "✕",
    }
}

pub fn badge_view(badge: Badge, text: impl Into<String>) -> impl IntoView {
    let text = text.into();
    let icon = badge_icon(badge);
    view! { <span class=format!("badge {}", badge.class())><span aria-hidden="true">{icon}</span>" "{text}</span> }
}

/// Marks a protected container.
pub fn lock_view() -> impl IntoView {
    view! { <span class="lock" title="protected: dockward will not restart or prune it">"locked"</span> }
}
