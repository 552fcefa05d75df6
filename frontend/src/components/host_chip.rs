//! A host in the header: its name and, in words, whether it reports.

use leptos::prelude::*;

use crate::model::{HostStatus, HostView};

#[component]
pub fn HostChip(host: HostView) -> impl IntoView {
    let (class, text) = match &host.status {
        HostStatus::Connected => ("chip chip-ok", "connected".to_owned()),
        HostStatus::Stale { age_s } => ("chip chip-stale", format!("stale · {age_s}s old")),
        HostStatus::Down { error, .. } => ("chip chip-down", format!("down · {error}")),
    };
    let title = text.clone();
    view! {
        <span class=class data-host=host.name.clone() title=title>
            <span class="dot" aria-hidden="true"></span>
            <strong>{host.name.clone()}</strong>
            " "
            <span class="chip-text">{text}</span>
        </span>
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use crate::testing::render;

    #[tokio::test]
    async fn host_chips_say_state_in_words() {
        let html = render(|| {
            view! {
                <HostChip host=HostView { name: "b".into(), status: HostStatus::Down { error: "connection refused".into(), age_s: Some(30) }, containers: vec![], volume_sizes: Default::default(), cpu_history: Default::default() }/>
                <HostChip host=HostView { name: "c".into(), status: HostStatus::Stale { age_s: 42 }, containers: vec![], volume_sizes: Default::default(), cpu_history: Default::default() }/>
            }
            .into_any()
        });
        assert!(html.contains("down · connection refused"), "{html}");
        assert!(html.contains("stale · 42s old"), "{html}");
        assert!(html.contains("chip-down") && html.contains("chip-stale"));
    }
}
