//! A host in the header: its name and, in words, whether it reports.

use leptos::prelude::*;

use crate::model::{Fleet, HostStatus, HostView};

#[component]
pub fn HostChip(host: HostView) -> impl IntoView {
    let (class, text) = match &host.status {
        HostStatus::Connected => ("chip chip-ok", "connected".to_owned()),
        HostStatus::Stale { age_s } => ("chip chip-stale", format!("stale · {age_s}s old")),
        HostStatus::Down { engine: Some(p), .. } => ("chip chip-down", format!("down · {}", p.title())),
        HostStatus::Down { error, .. } => ("chip chip-down", format!("down · {error}")),
        HostStatus::IdentityChanged { .. } => ("chip chip-down", "identity changed".to_owned()),
    };
    let title = match &host.status {
        HostStatus::Down { engine: Some(p), .. } => format!("{text}: {}", p.detail),
        HostStatus::IdentityChanged { presented } => format!("{text}: it presented {presented}, which is not pinned"),
        _ => text.clone(),
    };
    // Plain HTTP: the secret crosses the network in clear.
    let unencrypted = host.unencrypted.then(|| {
        view! { <span class="chip-warn" title="plain HTTP: this host's secret and data cross the network unencrypted">" · unencrypted"</span> }
    });
    view! {
        <span class=class data-host=host.name.clone() title=title>
            <span class="dot" aria-hidden="true"></span>
            <strong>{host.name.clone()}</strong>
            " "
            <span class="chip-text">{text}</span>
            {unencrypted}
        </span>
    }
}

/// The panel of a host that does not report: what is wrong and what to do,
/// on the page (not only in a log). Nothing when every host reports.
#[component]
pub fn HostProblems(fleet: RwSignal<Fleet>) -> impl IntoView {
    let down = move || {
        fleet.with(|f| {
            f.hosts
                .iter()
                .filter_map(|h| match &h.status {
                    HostStatus::Down { error, engine, .. } => {
                        Some((h.name.clone(), error.clone(), engine.clone(), None))
                    }
                    HostStatus::IdentityChanged { presented } => {
                        Some((h.name.clone(), String::new(), None, Some(presented.clone())))
                    }
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
    };
    view! {
        <For each=down key=|d| d.clone() let:d>
            {
                let (name, error, engine, presented) = d;
                let (title, detail, fix) = match (engine, presented) {
                    (_, Some(presented)) => (
                        format!("Host {name}: identity changed"),
                        format!(
                            "It presented the certificate {presented}, which is not the one pinned for it. \
                             Nothing was sent to it, not even its secret."
                        ),
                        format!(
                            "if you renewed its certificate, add this fingerprint to its pin file ({name}.pin beside \
                             its secret); if not, something else answers at its address: find out what before \
                             trusting it"
                        ),
                    ),
                    (Some(p), _) => (
                        format!("Host {name}: {}", p.title()),
                        p.detail.clone(),
                        p.fix.clone(),
                    ),
                    (None, None) => (
                        format!("Host {name}: the sidecar does not answer"),
                        error,
                        "check that this host's sidecar runs (docker compose ps) and that the console can reach it \
                         at the address in its hosts file"
                            .to_owned(),
                    ),
                };
                view! {
                    <section class="host-problem" role="alert" data-host=name>
                        <h2>{title}</h2>
                        <p class="why">{detail}</p>
                        <p class="fix"><strong>"What to do: "</strong>{fix}</p>
                    </section>
                }
            }
        </For>
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
                <HostChip host=HostView { name: "b".into(), status: HostStatus::Down { error: "connection refused".into(), age_s: Some(30), engine: None }, unencrypted: false, containers: vec![], volume_sizes: Default::default(), cpu_history: Default::default(), folded: vec![] }/>
                <HostChip host=HostView { name: "c".into(), status: HostStatus::Stale { age_s: 42 }, unencrypted: false, containers: vec![], volume_sizes: Default::default(), cpu_history: Default::default(), folded: vec![] }/>
            }
            .into_any()
        });
        assert!(html.contains("down · connection refused"), "{html}");
        assert!(html.contains("stale · 42s old"), "{html}");
        assert!(html.contains("chip-down") && html.contains("chip-stale"));
    }

    #[tokio::test]
    async fn a_host_whose_engine_is_unusable_says_why_and_what_to_do() {
        use shared::{EngineProblem, EngineProblemKind};
        let mut f = crate::testing::fleet(vec![]);
        f.hosts[0].status = HostStatus::Down {
            error: "h1: the Docker engine is unreachable".into(),
            age_s: None,
            engine: Some(EngineProblem::new(
                EngineProblemKind::PermissionDenied,
                "permission denied on /var/run/docker.sock (owner uid 0, group 112, mode 0660)",
                "give it the group: group_add: [\"112\"]",
            )),
        };
        let host = f.hosts[0].clone();
        let html = render(move || {
            let fleet = RwSignal::new(f);
            view! { <HostChip host=host/> <HostProblems fleet=fleet/> }.into_any()
        });
        assert!(html.contains("down · no permission on the Docker socket"), "{html}");
        assert!(html.contains("Host h1: no permission on the Docker socket"), "{html}");
        assert!(html.contains("group 112, mode 0660"), "{html}");
        assert!(html.contains("What to do: ") && html.contains(r#"group_add: ["112"]"#), "{html}");
        // Hosts that report show no panel.
        let ok = render(|| {
            let fleet = RwSignal::new(crate::testing::fleet(vec![]));
            view! { <HostProblems fleet=fleet/> }.into_any()
        });
        assert!(!ok.contains("host-problem"), "{ok}");
    }
}
