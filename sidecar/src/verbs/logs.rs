//! `GET /v1/containers/{ref}/logs`: demultiplexed stdout/stderr, a bounded
//! tail, or a Server-Sent Events follow stream.
//!
//! Memory stays bounded for slow readers: the follow stream pulls from the
//! engine only as fast as the client reads (no queue in between), and a tail
//! answer is cut at `PAGE_MAX_BYTES`.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use shared::{bounded, limits, LogLine, LogStream, LogsPage};

use crate::docker::convert::truncate;
use crate::error::ApiError;
use crate::extract::{parse_time, Query, RefPath};
use crate::state::App;

/// Largest non-follow answer.
const PAGE_MAX_BYTES: usize = 8 * 1024 * 1024;
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    /// Lines from the end (default 200, at most 10 000).
    tail: Option<u64>,
    /// Unix seconds or RFC 3339.
    since: Option<String>,
    until: Option<String>,
    /// Include the engine's timestamp on each line.
    timestamps: Option<bool>,
    /// Stream new lines as Server-Sent Events.
    follow: Option<bool>,
}

pub async fn logs(
    State(app): State<App>,
    RefPath(r): RefPath,
    Query(q): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    let tail = bounded("tail", q.tail.unwrap_or(limits::LOG_TAIL_DEFAULT), 0, limits::LOG_TAIL_MAX)?;
    let since = q.since.as_deref().map(|s| parse_time("since", s)).transpose()?.unwrap_or(0);
    let until = q.until.as_deref().map(|s| parse_time("until", s)).transpose()?.unwrap_or(0);
    let as_i32 = |field, v: i64| i32::try_from(v).map_err(|_| ApiError::BadRequest(format!("{field} is out of range")));
    let (since, until) = (as_i32("since", since)?, as_i32("until", until)?);
    let follow = q.follow.unwrap_or(false);
    let with_ts = q.timestamps.unwrap_or(false);
    let c = app.engine.resolve(&r).await?;
    let opts = LogsOptions {
        follow,
        stdout: true,
        stderr: true,
        since,
        until,
        // Always asked for, so lines can be split reliably; dropped below unless wanted.
        timestamps: true,
        tail: tail.to_string(),
    };
    let client = app.engine.client();
    let raw = client.logs(&c.id, Some(opts));

    if !follow {
        let mut lines = Vec::new();
        let mut bytes = 0usize;
        let mut truncated = false;
        let mut raw = Box::pin(raw);
        while let Some(item) = raw.next().await {
            for line in split(item.map_err(ApiError::from)?, with_ts) {
                bytes += line.line.len() + 64;
                if bytes > PAGE_MAX_BYTES {
                    truncated = true;
                    break;
                }
                lines.push(line);
            }
            if truncated {
                break;
            }
        }
        return Ok(Json(LogsPage { id: c.id, lines, truncated }).into_response());
    }

    let permit = super::stream_permit(&app)?;
    let max = app.settings.log_follow_max;
    let events = raw
        .take_until(tokio::time::sleep(max))
        .flat_map(move |item| {
            let events: Vec<Result<Event, Infallible>> = match item {
                Ok(out) => split(out, with_ts).into_iter().map(|l| Ok(line_event(&l))).collect(),
                Err(e) => vec![Ok(Event::default().event("error").data(ApiError::from(e).to_string()))],
            };
            futures_util::stream::iter(events)
        })
        .chain(futures_util::stream::once(async { Ok(Event::default().event("end").data("stream closed")) }));
    Ok(Sse::new(hold(events, permit)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response())
}

fn line_event(l: &LogLine) -> Event {
    Event::default()
        .event("line")
        .json_data(l)
        .unwrap_or_else(|_| Event::default().event("error").data("unencodable line"))
}

/// Keeps the stream permit alive as long as the stream.
fn hold<S: Stream + Send + 'static>(
    s: S,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> impl Stream<Item = S::Item> + Send {
    s.map(move |x| {
        let _ = &permit;
        x
    })
}

/// One engine frame → log lines, each with its stream and (optionally) timestamp.
pub fn split(out: LogOutput, with_ts: bool) -> Vec<LogLine> {
    let (stream, bytes) = match out {
        LogOutput::StdErr { message } => (LogStream::Stderr, message),
        LogOutput::StdOut { message } | LogOutput::Console { message } => (LogStream::Stdout, message),
        LogOutput::StdIn { .. } => return Vec::new(),
    };
    let text = String::from_utf8_lossy(&bytes);
    text.split('\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let l = l.strip_suffix('\r').unwrap_or(l);
            let (ts, body) = match l.split_once(' ') {
                Some((ts, body)) if looks_like_timestamp(ts) => (Some(ts), body),
                _ => (None, l),
            };
            LogLine {
                stream,
                ts: ts.filter(|_| with_ts).map(str::to_owned),
                truncated: body.len() > limits::LOG_LINE_MAX_BYTES,
                line: truncate(body, limits::LOG_LINE_MAX_BYTES),
            }
        })
        .collect()
}

fn looks_like_timestamp(s: &str) -> bool {
    s.len() >= 20 && s.len() <= 40 && s.as_bytes()[4] == b'-' && s.as_bytes()[10] == b'T' && s.ends_with('Z')
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn splits_streams_and_timestamps() {
        let out = LogOutput::StdErr { message: Bytes::from("2026-11-24T02:00:00.123456789Z oops: bad\n") };
        let lines = split(out.clone(), true);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].stream, LogStream::Stderr);
        assert_eq!(lines[0].ts.as_deref(), Some("2026-11-24T02:00:00.123456789Z"));
        assert_eq!(lines[0].line, "oops: bad");
        assert_eq!(split(out, false)[0].ts, None);
        let out = LogOutput::StdOut { message: Bytes::from("2026-11-24T02:00:00Z a\r\n2026-11-24T02:00:01Z b\n") };
        let lines = split(out, false);
        assert_eq!(lines.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn long_lines_are_cut() {
        let long = format!("2026-11-24T02:00:00Z {}\n", "x".repeat(limits::LOG_LINE_MAX_BYTES + 10));
        let lines = split(LogOutput::StdOut { message: Bytes::from(long) }, false);
        assert!(lines[0].truncated);
        assert_eq!(lines[0].line.len(), limits::LOG_LINE_MAX_BYTES);
    }
}
