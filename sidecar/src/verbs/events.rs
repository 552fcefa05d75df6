//! `GET /v1/events`: container lifecycle events as Server-Sent Events
//! (`event: container`), plus `event: resync` when some may have been missed.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use crate::error::ApiError;
use crate::events::HubMessage;
use crate::extract::NoQuery;
use crate::state::App;

pub async fn events(State(app): State<App>, NoQuery: NoQuery) -> Result<Response, ApiError> {
    let permit = super::stream_permit(&app)?;
    // Bounded lifetime, like log follows: clients reconnect (EventSource does by itself).
    let stream = BroadcastStream::new(app.events.subscribe())
        .take_until(tokio::time::sleep(app.settings.log_follow_max))
        .map(move |msg| {
            let _ = &permit;
            let ev = match msg {
                Ok(HubMessage::Event(e)) => Event::default().event("container").json_data(&e).unwrap_or_default(),
                // A slow client skipped messages: tell it to refetch rather than grow a queue.
                Ok(HubMessage::Resync) | Err(_) => Event::default().event("resync").data("refetch"),
            };
            Ok::<_, Infallible>(ev)
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}
