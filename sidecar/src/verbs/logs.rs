//! `GET /v1/containers/{ref}/logs`: demultiplexed stdout/stderr, a bounded
//! tail, or a Server-Sent Events follow stream.
//!
//! Memory stays bounded for slow readers: the follow stream pulls from the
//! engine only as fast as the client reads (no queue in between). A tail is
//! streamed too: written as JSON in chunks of about `CHUNK_BYTES` through a
//! two-chunk channel, cut when its *encoded* size would pass `PAGE_MAX_BYTES`
//! (a control character takes six bytes there), and never held whole. At most
//! `DOCKWARD_MAX_LOG_READS` tails are answered at once; a client that stops
//! reading for `STALL_MAX` loses its answer (the connection is cut) and its
//! place.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use shared::{bounded, limits, LogLine, LogStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use utoipa::IntoParams;

use crate::docker::convert::truncate;
use crate::error::ApiError;
use crate::extract::{parse_time, Query, RefPath};
use crate::state::{App, Pool};

/// Largest non-follow answer, in bytes of the JSON sent.
pub const PAGE_MAX_BYTES: usize = 8 * 1024 * 1024;
/// A tail is sent in chunks of about this many bytes.
const CHUNK_BYTES: usize = 32 * 1024;
/// How long a tail waits for a client that stopped reading.
const STALL_MAX: Duration = Duration::from_secs(30);
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    /// Lines from the end (default 200, at most 10 000).
    tail: Option<u64>,
    /// Only lines from this time on: unix seconds or RFC 3339.
    since: Option<String>,
    /// Only lines before this time: unix seconds or RFC 3339.
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
        let permit = super::stream_permit(&app, Pool::LogRead)?;
        let mut raw = Box::pin(raw);
        // The engine's first answer decides the status: a failure before any
        // line is a JSON error, not a cut page.
        let first = match raw.next().await {
            Some(Err(e)) => return Err(e.into()),
            first => first,
        };
        return Ok(page_response(c.id, futures_util::stream::iter(first).chain(raw), with_ts, permit));
    }

    let permit = super::stream_permit(&app, Pool::Follow)?;
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

/// What the page writer hands the response body.
enum Piece {
    Chunk(Bytes),
    /// The page is complete; anything else (the channel closing first) cuts the connection.
    End,
}

/// A `LogsPage` (`{"id":…,"lines":[…],"truncated":…}`) streamed from the
/// engine's frames by a task that holds the log-read permit until it is done.
fn page_response<S>(id: String, frames: S, with_ts: bool, permit: OwnedSemaphorePermit) -> Response
where
    S: Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Piece>(2);
    tokio::spawn(async move {
        let _permit = permit;
        write_page(&id, frames, with_ts, &tx).await;
    });
    let body = futures_util::stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        match rx.recv().await {
            Some(Piece::Chunk(b)) => Some((Ok(b), Some(rx))),
            Some(Piece::End) => None,
            None => Some((Err(std::io::Error::other("the log page was cut short")), None)),
        }
    });
    ([(header::CONTENT_TYPE, "application/json")], Body::from_stream(body)).into_response()
}

async fn write_page<S>(id: &str, frames: S, with_ts: bool, tx: &mpsc::Sender<Piece>)
where
    S: Stream<Item = Result<LogOutput, bollard::errors::Error>>,
{
    let mut page = PageWriter::new(id, PAGE_MAX_BYTES);
    let mut frames = std::pin::pin!(frames);
    'read: while let Some(item) = frames.next().await {
        let out = match item {
            Ok(out) => out,
            Err(e) => {
                // Mid-page: the client sees its connection cut, never a page that looks whole.
                tracing::warn!(container = %id, error = %e, "log tail failed mid-page");
                return;
            }
        };
        for line in split(out, with_ts) {
            if !page.push(&line) {
                break 'read;
            }
        }
        if let Some(chunk) = page.take_chunk(CHUNK_BYTES) {
            if !send(tx, Piece::Chunk(chunk)).await {
                return;
            }
        }
    }
    if send(tx, Piece::Chunk(page.finish())).await {
        send(tx, Piece::End).await;
    }
}

/// False when the client is gone or stalled past `STALL_MAX`.
async fn send(tx: &mpsc::Sender<Piece>, piece: Piece) -> bool {
    matches!(tokio::time::timeout(STALL_MAX, tx.send(piece)).await, Ok(Ok(())))
}

/// Writes a `LogsPage` as JSON incrementally, bounded by its encoded size:
/// each line is counted as the bytes it takes in the answer, escapes included.
struct PageWriter {
    buf: Vec<u8>,
    /// Bytes already handed out by `take_chunk`.
    sent: usize,
    max: usize,
    lines: usize,
    truncated: bool,
}

/// The longest ending `finish` writes.
const PAGE_END: &str = "],\"truncated\":false}";

impl PageWriter {
    fn new(id: &str, max: usize) -> Self {
        let mut buf = b"{\"id\":".to_vec();
        // A string always encodes.
        let _ = serde_json::to_writer(&mut buf, id);
        buf.extend_from_slice(b",\"lines\":[");
        Self { buf, sent: 0, max, lines: 0, truncated: false }
    }

    /// Adds `line` unless the page, closed, would pass its bound; false once full.
    fn push(&mut self, line: &LogLine) -> bool {
        if self.truncated {
            return false;
        }
        let mark = self.buf.len();
        if self.lines > 0 {
            self.buf.push(b',');
        }
        let encoded = serde_json::to_writer(&mut self.buf, line).is_ok();
        if !encoded || self.sent + self.buf.len() + PAGE_END.len() > self.max {
            self.buf.truncate(mark);
            self.truncated = true;
            return false;
        }
        self.lines += 1;
        true
    }

    /// What is buffered, once it reaches `min` bytes.
    fn take_chunk(&mut self, min: usize) -> Option<Bytes> {
        if self.buf.len() < min {
            return None;
        }
        self.sent += self.buf.len();
        Some(Bytes::from(std::mem::take(&mut self.buf)))
    }

    /// The rest of the page, closed.
    fn finish(mut self) -> Bytes {
        self.buf.extend_from_slice(if self.truncated { b"],\"truncated\":true}" } else { PAGE_END.as_bytes() });
        Bytes::from(self.buf)
    }
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

    /// Writes lines until the page is full; returns the body and how many went in.
    fn fill(id: &str, line: &LogLine, max: usize, lines: usize) -> (Vec<u8>, usize) {
        let mut w = PageWriter::new(id, max);
        let (mut body, mut pushed) = (Vec::new(), 0);
        while pushed < lines && w.push(line) {
            pushed += 1;
            if let Some(c) = w.take_chunk(4096) {
                body.extend_from_slice(&c);
            }
        }
        body.extend_from_slice(&w.finish());
        (body, pushed)
    }

    #[test]
    fn a_page_is_bounded_by_its_encoded_size() {
        // A control character is one byte in the log and six (`\u0001`) in the answer.
        let line = LogLine { stream: LogStream::Stdout, ts: None, truncated: false, line: "\u{1}".repeat(1000) };
        let max = 64 * 1024;
        let (body, pushed) = fill("abc", &line, max, usize::MAX);
        assert!(body.len() <= max, "{} > {max}", body.len());
        assert!(body.len() + 6010 > max, "another line would have fitted: {}", body.len());
        let page: shared::LogsPage = serde_json::from_slice(&body).unwrap();
        assert!(page.truncated);
        assert_eq!(page.lines.len(), pushed);
        assert!(pushed > 0 && pushed < max / 6000 + 1, "{pushed}");
    }

    #[test]
    fn a_page_that_fits_is_whole_json() {
        let line = LogLine { stream: LogStream::Stderr, ts: Some("t".into()), truncated: false, line: "a\"b".into() };
        let (body, pushed) = fill("id\"x", &line, 1024, 3);
        let page: shared::LogsPage = serde_json::from_slice(&body).unwrap();
        assert_eq!((page.id.as_str(), page.lines.len(), page.truncated, pushed), ("id\"x", 3, false, 3));
        assert_eq!(page.lines[2], line);
        let (body, _) = fill("e", &line, 1024, 0);
        assert_eq!(serde_json::from_slice::<shared::LogsPage>(&body).unwrap().lines, vec![]);
    }

    #[test]
    fn long_lines_are_cut() {
        let long = format!("2026-11-24T02:00:00Z {}\n", "x".repeat(limits::LOG_LINE_MAX_BYTES + 10));
        let lines = split(LogOutput::StdOut { message: Bytes::from(long) }, false);
        assert!(lines[0].truncated);
        assert_eq!(lines[0].line.len(), limits::LOG_LINE_MAX_BYTES);
    }
}
