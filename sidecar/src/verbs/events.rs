//! `GET /v1/events`: container lifecycle events as Server-Sent Events
//! (`event: container`), plus `event: resync` when some may have been missed.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use shared::ContainerEvent;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use crate::error::ApiError;
use crate::events::HubMessage;
use crate::extract::NoQuery;
use crate::state::{App, Pool};

pub async fn events(State(app): State<App>, NoQuery: NoQuery) -> Result<Response, ApiError> {
    // A pool of its own: log follows filling theirs cannot keep the console from re-subscribing.
    let permit = super::stream_permit(&app, Pool::Events)?;
    // Bounded lifetime, like log follows: clients reconnect (EventSource does by itself).
    let stream =
        frames(app.events.subscribe()).take_until(tokio::time::sleep(app.settings.log_follow_max)).map(move |frame| {
            let _ = &permit;
            let ev = match frame {
                Frame::Container(e) => Event::default().event("container").json_data(&e).unwrap_or_default(),
                Frame::Resync => Event::default().event("resync").data("refetch"),
            };
            Ok::<_, Infallible>(ev)
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}

/// What one client is sent.
#[derive(Debug, PartialEq, Eq)]
enum Frame {
    Container(ContainerEvent),
    /// Events may have been missed: refetch.
    Resync,
}

/// A subscriber's frames: the hub's events, and `Resync` both when the hub
/// reconnected to the engine and when this client fell behind the bounded
/// channel (a slow client skips messages rather than growing a queue).
fn frames(rx: broadcast::Receiver<HubMessage>) -> impl Stream<Item = Frame> + Send {
    BroadcastStream::new(rx).map(|msg| match msg {
        Ok(HubMessage::Event(e)) => Frame::Container(e),
        Ok(HubMessage::Resync) | Err(_) => Frame::Resync,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(n: i64) -> ContainerEvent {
        ContainerEvent { action: "start".into(), id: format!("c{n}"), name: None, detail: None, time_nano: n }
    }

    #[tokio::test]
    async fn a_slow_client_is_told_to_resync_then_gets_the_newest_events() {
        let (tx, rx) = broadcast::channel(4);
        let mut frames = Box::pin(frames(rx));
        for n in 0..10 {
            tx.send(HubMessage::Event(ev(n))).unwrap();
        }
        // Six of ten were overwritten before the client read: it is told so, once.
        assert_eq!(frames.next().await, Some(Frame::Resync));
        for n in 6..10 {
            assert_eq!(frames.next().await, Some(Frame::Container(ev(n))));
        }
    }

    #[tokio::test]
    async fn an_engine_reconnect_reaches_clients_as_resync() {
        let (tx, rx) = broadcast::channel(4);
        let mut frames = Box::pin(frames(rx));
        tx.send(HubMessage::Event(ev(1))).unwrap();
        tx.send(HubMessage::Resync).unwrap();
        assert_eq!(frames.next().await, Some(Frame::Container(ev(1))));
        assert_eq!(frames.next().await, Some(Frame::Resync));
    }
}
