//! What the tests of pages and components share: fixtures and a server render.

use leptos::prelude::*;
use leptos_meta::provide_meta_context;
use shared::{ContainerState, ContainerSummary, Health};

use crate::model::Fleet;
use crate::types::{Role, SessionInfo};

pub fn container(name: &str, project: Option<&str>, state: ContainerState, status: &str) -> ContainerSummary {
    crate::model::fixtures::container(name, project, state, Health::None, status)
}

pub fn fleet(containers: Vec<ContainerSummary>) -> Fleet {
    let mut f = crate::model::fixtures::fleet(containers);
    f.hosts[0].name = "h1".into();
    f
}

pub fn session(role: Role) -> SessionInfo {
    SessionInfo { name: "alice".into(), role, csrf: "tok".into(), scope: None }
}

/// Renders a view on the server, as the first response would.
pub fn render(f: impl FnOnce() -> AnyView + 'static) -> String {
    // Suspense and actions spawn futures; give them the executor the server uses.
    let _ = any_spawner::Executor::init_tokio();
    let owner = Owner::new();
    owner.set();
    provide_meta_context();
    f().to_html()
}
