//! `/network`: published ports (a port claimed twice is flagged) and the
//! networks with their members (overlapping subnets are flagged).

use leptos::prelude::*;
use leptos_meta::Title;

use crate::model::{self, Fleet};

#[component]
pub fn Network(fleet: RwSignal<Fleet>) -> impl IntoView {
    let claims = Memo::new(move |_| fleet.with(model::port_claims));
    let nets = Memo::new(move |_| fleet.with(model::networks));
    view! {
        <Title text="Network · dockward"/>
        <h1>"Published ports"</h1>
        <table class="grid" id="ports">
            <thead><tr><th>"Host"</th><th>"Address"</th><th>"Port"</th><th>"App"</th><th>"Container"</th><th>"→"</th><th></th></tr></thead>
            <tbody>
                <For each=move || claims.get() key=|c| format!("{}-{}-{}-{}-{}", c.host, c.host_ip, c.host_port, c.protocol, c.container_id) let:c>
                    <tr class:conflict=c.conflict>
                        <td>{c.host.clone()}</td>
                        <td>{c.host_ip.clone()}</td>
                        <td>{format!("{}/{}", c.host_port, c.protocol)}</td>
                        <td>{c.project.clone().unwrap_or_else(|| "standalone".into())}</td>
                        <td>{c.container.clone()}</td>
                        <td>{c.container_port}</td>
                        <td>{c.conflict.then(|| view! { <span class="badge badge-red">"✕ port claimed twice"</span> })}</td>
                    </tr>
                </For>
            </tbody>
        </table>
        <h1>"Networks"</h1>
        <div class="cards">
            <For each=move || nets.get() key=|n| format!("{}/{}/{:?}", n.host, n.name, n.members) let:n>
                <article class="card" class:badge-red=!n.overlaps_with.is_empty()>
                    <header><h2>{n.name.clone()}</h2><span class="host">{n.host.clone()}</span></header>
                    <p><code>{n.subnet.clone().unwrap_or_else(|| "no subnet".into())}</code></p>
                    {(!n.overlaps_with.is_empty()).then(|| view! { <p class="badge badge-red">{format!("✕ overlaps {}", n.overlaps_with.join(", "))}</p> })}
                    <ul>{n.members.iter().map(|(m, ip)| view! { <li>{m.clone()} " " <span class="muted">{ip.clone().unwrap_or_default()}</span></li> }).collect_view()}</ul>
                </article>
            </For>
        </div>
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use crate::testing::{container, fleet, render};
    use shared::ContainerState;

    #[tokio::test]
    async fn network_page_flags_conflicts() {
        let mut a = container("a", Some("x"), ContainerState::Running, "Up");
        let mut b = container("b", Some("y"), ContainerState::Running, "Up");
        let port = shared::PortMapping {
            container_port: 80,
            protocol: "tcp".into(),
            host_ip: Some("0.0.0.0".into()),
            host_port: Some(8080),
        };
        a.ports = vec![port.clone()];
        b.ports = vec![port];
        let f = fleet(vec![a, b]);
        let html = render(move || {
            let fleet = RwSignal::new(f);
            view! { <Network fleet=fleet/> }.into_any()
        });
        assert_eq!(html.matches("port claimed twice").count(), 2, "{html}");
    }
}
