//! One subscription to the engine's container events, fanned out to every
//! client over a bounded broadcast channel. It also drops the inspect cache
//! entry of any container an event names.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::EventsOptions;
use futures_util::StreamExt;
use shared::ContainerEvent;
use tokio::sync::broadcast;

use crate::docker::Engine;

/// Lifecycle actions forwarded to clients.
pub const ACTIONS: &[&str] =
    &["create", "start", "die", "restart", "health_status", "oom", "destroy", "pause", "unpause", "rename", "update"];

#[derive(Debug, Clone)]
pub enum HubMessage {
    Event(ContainerEvent),
    /// Events may have been missed (engine reconnect): clients should refetch.
    Resync,
}

#[derive(Clone)]
pub struct EventHub {
    tx: broadcast::Sender<HubMessage>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self { tx: broadcast::channel(1024).0 }
    }
}

impl EventHub {
    pub fn subscribe(&self) -> broadcast::Receiver<HubMessage> {
        self.tx.subscribe()
    }

    /// Follows the engine's events forever, reconnecting when it goes away.
    pub async fn run(self, engine: Arc<Engine>) {
        let mut first = true;
        // After a reconnect, ask the engine to replay from the last event seen.
        let mut last_secs: Option<i64> = None;
        loop {
            if !engine.is_up() {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            let mut filters: HashMap<String, Vec<String>> = HashMap::new();
            filters.insert("type".into(), vec!["container".into()]);
            filters.insert("event".into(), ACTIONS.iter().map(|s| (*s).to_owned()).collect());
            if let Some(scope) = engine.policy.scope_filter() {
                filters.insert("label".into(), vec![scope]);
            }
            let opts =
                EventsOptions { filters: Some(filters), since: last_secs.map(|s| s.to_string()), ..Default::default() };
            let mut stream = engine.client().events(Some(opts));
            if !first {
                let _ = self.tx.send(HubMessage::Resync);
            }
            first = false;
            tracing::debug!("subscribed to engine events");
            while let Some(item) = stream.next().await {
                match item {
                    Ok(msg) => {
                        let Some(ev) = convert(&msg) else { continue };
                        last_secs = Some(ev.time_nano / 1_000_000_000);
                        engine.invalidate(&ev.id).await;
                        // No receivers is fine.
                        let _ = self.tx.send(HubMessage::Event(ev));
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "engine event stream broke");
                        break;
                    }
                }
            }
            engine.probe().await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn convert(m: &bollard::models::EventMessage) -> Option<ContainerEvent> {
    let actor = m.actor.as_ref()?;
    let id = actor.id.clone()?;
    let raw = m.action.as_deref()?;
    let attrs = actor.attributes.as_ref();
    let (action, detail) = match raw.split_once(": ") {
        Some((a, d)) => (a.to_owned(), Some(d.to_owned())),
        None => (raw.to_owned(), None),
    };
    let detail = detail.or_else(|| (action == "die").then(|| attrs.and_then(|a| a.get("exitCode").cloned())).flatten());
    Some(ContainerEvent {
        action,
        id,
        name: attrs.and_then(|a| a.get("name").cloned()),
        detail,
        time_nano: m.time_nano.unwrap_or_else(|| m.time.unwrap_or(0).saturating_mul(1_000_000_000)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{EventActor, EventMessage};

    #[test]
    fn health_and_die_details() {
        let msg = |action: &str, attrs: &[(&str, &str)]| EventMessage {
            action: Some(action.into()),
            actor: Some(EventActor {
                id: Some("abc".into()),
                attributes: Some(attrs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            }),
            time_nano: Some(7),
            ..Default::default()
        };
        let e = convert(&msg("health_status: unhealthy", &[("name", "web")])).unwrap();
        assert_eq!(
            (e.action.as_str(), e.detail.as_deref(), e.name.as_deref()),
            ("health_status", Some("unhealthy"), Some("web"))
        );
        let e = convert(&msg("die", &[("exitCode", "137")])).unwrap();
        assert_eq!((e.action.as_str(), e.detail.as_deref(), e.time_nano), ("die", Some("137"), 7));
    }
}
