//! A reader of the console's live stream (`/api/live`), for either protocol:
//!
//! - full frames (`event: fleet`, the whole fleet on every change: the
//!   protocol before issue 13's deltas);
//! - `event: snapshot` / `event: resync` (a whole [`Fleet`] as JSON) and then
//!   `event: delta` (`{"at_ms","bucket","changes":[{"k":"upsert"|"remove"|
//!   "stats"|"host"|"volumes",…}]}`).
//!
//! The protocol is told by the event names, so the same code measures both.
//! [`Mirror`] keeps what the bench needs of the fleet (each container's
//! state, each host's status) by applying whichever frames arrive.
//!
//! [`Fleet`]: ../../frontend/src/model/fleet.rs

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use crate::rig::Proc;

/// One Server-Sent Event.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
    /// Its size on the wire, with the blank line that ends it.
    pub bytes: usize,
}

impl Frame {
    /// A whole fleet: the old protocol's `fleet`, the new `snapshot` and `resync`.
    pub fn is_full(&self) -> bool {
        matches!(self.event.as_str(), "fleet" | "snapshot" | "resync")
    }
}

/// Splits an SSE byte stream into frames (comments are frames with no event).
#[derive(Default)]
pub struct Parser {
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no frame end: a snapshot of tens
    /// of megabytes arrives in thousands of chunks, each searched once.
    searched: usize,
}

impl Parser {
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete frame, if one is buffered.
    pub fn next_frame(&mut self) -> Option<Frame> {
        let from = self.searched.saturating_sub(1);
        let Some(at) = memchr::memmem::find(&self.buf[from..], b"\n\n") else {
            self.searched = self.buf.len();
            return None;
        };
        let end = from + at;
        self.searched = 0;
        let block: Vec<u8> = self.buf.drain(..end + 2).collect();
        let text = String::from_utf8_lossy(&block[..end]);
        let mut f = Frame { bytes: end + 2, ..Frame::default() };
        for line in text.split('\n') {
            if let Some(v) = line.strip_prefix("event:") {
                f.event = v.trim_start().to_owned();
            } else if let Some(v) = line.strip_prefix("id:") {
                f.id = Some(v.trim_start().to_owned());
            } else if let Some(v) = line.strip_prefix("data:") {
                if !f.data.is_empty() {
                    f.data.push('\n');
                }
                f.data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        Some(f)
    }
}

/// An open live stream.
pub struct Stream {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    parser: Parser,
    /// Every byte read so far.
    pub bytes: u64,
}

impl Stream {
    /// `GET /api/live?<query>` with the session cookie.
    pub async fn open(http: &reqwest::Client, base: &str, cookie: &str, query: &str) -> Stream {
        let url = if query.is_empty() { format!("{base}/api/live") } else { format!("{base}/api/live?{query}") };
        let r = http.get(url).header("cookie", cookie).send().await.expect("/api/live");
        assert!(r.status().is_success(), "/api/live?{query} answered {}", r.status());
        Stream { body: Box::pin(r.bytes_stream()), parser: Parser::default(), bytes: 0 }
    }

    /// The next frame with an event (comments skipped), or `None` when the
    /// stream ends or nothing comes within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(f) = self.parser.next_frame() {
                if !f.event.is_empty() {
                    return Some(f);
                }
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => {
                    self.bytes += chunk.len() as u64;
                    self.parser.push(&chunk);
                }
                _ => return None,
            }
        }
    }

    /// Reads until `until`, counting bytes and frames (whole fleets are not
    /// parsed: the reader shares the machine with the console).
    pub async fn drain_until(&mut self, until: Instant, tally: &mut Tally) {
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let before = self.bytes;
            let Some(f) = self.next(left).await else {
                tally.bytes += self.bytes - before;
                return;
            };
            tally.bytes += self.bytes - before;
            tally.count(&f);
        }
    }
}

/// What a reader received in a window.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub bytes: u64,
    pub frames: HashMap<String, u64>,
    /// Bytes of whole-fleet frames (snapshot, resync, fleet).
    pub full_bytes: u64,
    pub changes: HashMap<String, u64>,
}

impl Tally {
    pub fn count(&mut self, f: &Frame) {
        *self.frames.entry(f.event.clone()).or_default() += 1;
        if f.is_full() {
            self.full_bytes += f.bytes as u64;
        }
        if f.event == "delta" {
            if let Ok(d) = serde_json::from_str::<serde_json::Value>(&f.data) {
                for c in d["changes"].as_array().into_iter().flatten() {
                    *self.changes.entry(c["k"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
                }
            }
        }
    }

    /// `delta 12, resync 1 (stats 40, upsert 20); whole fleets 4.9 MB of it`, sorted.
    pub fn describe(&self) -> String {
        let sorted = |m: &HashMap<String, u64>| {
            let mut v: Vec<String> = m.iter().map(|(k, n)| format!("{k} {n}")).collect();
            v.sort();
            v.join(", ")
        };
        let mut out = sorted(&self.frames);
        if !self.changes.is_empty() {
            out = format!("{out} ({})", sorted(&self.changes));
        }
        if self.full_bytes > 0 {
            out = format!("{out}; whole fleets {:.1} MB of it", self.full_bytes as f64 / 1e6);
        }
        out
    }
}

/// What the bench follows of the fleet: per host its status, per container its state.
#[derive(Debug, Default)]
pub struct Mirror {
    pub hosts: HashMap<String, Host>,
    /// The last full frame's size in bytes.
    pub full_bytes: usize,
}

#[derive(Debug, Default)]
pub struct Host {
    pub status: String,
    pub containers: HashMap<String, String>,
    /// Folded apps (the overview of a large fleet): project → containers.
    pub folded: HashMap<String, u64>,
}

/// A container state change a frame carried: host, id, new state.
pub type Seen = (String, String, String);

impl Mirror {
    /// Containers, those in folded apps included.
    pub fn containers(&self) -> usize {
        self.hosts.values().map(|h| h.containers.len() + h.folded.values().sum::<u64>() as usize).sum()
    }

    pub fn connected(&self) -> usize {
        self.hosts.values().filter(|h| h.status == "connected").count()
    }

    /// Applies a frame; returns the container states it set (every one, for a full frame).
    pub fn apply(&mut self, f: &Frame) -> Vec<Seen> {
        let mut seen = Vec::new();
        if f.is_full() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&f.data) else { return seen };
            self.full_bytes = f.bytes;
            self.hosts.clear();
            for h in v["hosts"].as_array().into_iter().flatten() {
                let name = h["name"].as_str().unwrap_or_default().to_owned();
                let mut host =
                    Host { status: h["status"]["state"].as_str().unwrap_or_default().to_owned(), ..Host::default() };
                for c in h["containers"].as_array().into_iter().flatten() {
                    let (id, state) = (c["id"].as_str().unwrap_or_default(), c["state"].as_str().unwrap_or_default());
                    host.containers.insert(id.to_owned(), state.to_owned());
                    seen.push((name.clone(), id.to_owned(), state.to_owned()));
                }
                for f in h["folded"].as_array().into_iter().flatten() {
                    host.folded
                        .insert(f["project"].as_str().unwrap_or_default().to_owned(), f["n"].as_u64().unwrap_or(0));
                }
                self.hosts.insert(name, host);
            }
        } else if f.event == "delta" {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&f.data) else { return seen };
            for c in v["changes"].as_array().into_iter().flatten() {
                let host = c["host"].as_str().unwrap_or_default().to_owned();
                let Some(h) = self.hosts.get_mut(&host) else { continue };
                match c["k"].as_str() {
                    Some("upsert") => {
                        let (id, state) =
                            (c["c"]["id"].as_str().unwrap_or_default(), c["c"]["state"].as_str().unwrap_or_default());
                        h.containers.insert(id.to_owned(), state.to_owned());
                        seen.push((host, id.to_owned(), state.to_owned()));
                    }
                    Some("remove") => {
                        h.containers.remove(c["id"].as_str().unwrap_or_default());
                    }
                    Some("host") => h.status = c["status"]["state"].as_str().unwrap_or_default().to_owned(),
                    Some("fold") => {
                        let project = c["f"]["project"].as_str().unwrap_or_default().to_owned();
                        h.folded.insert(project, c["f"]["n"].as_u64().unwrap_or(0));
                    }
                    Some("unfold") => {
                        h.folded.remove(c["project"].as_str().unwrap_or_default());
                    }
                    _ => {}
                }
            }
        }
        seen
    }
}

/// The first (by id) container of `host`, from a `scope=network` snapshot
/// (the overview's folds healthy apps: it may hold none).
pub async fn first_id(http: &reqwest::Client, base: &str, cookie: &str, host: &str) -> Option<String> {
    let mut s = Stream::open(http, base, cookie, "scope=network").await;
    let mut m = Mirror::default();
    while let Some(f) = s.next(Duration::from_secs(60)).await {
        if f.is_full() {
            m.apply(&f);
            let mut ids: Vec<&String> = m.hosts.get(host)?.containers.keys().collect();
            ids.sort();
            return ids.first().map(|s| (*s).clone());
        }
    }
    None
}

/// Waits until a fresh overview stream holds `hosts` connected hosts and
/// `containers` containers in all; returns the mirror. Follows one stream
/// (deltas or full frames), reopening it if it ends.
pub async fn wait_for_fleet(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    hosts: usize,
    containers: usize,
    timeout: Duration,
) -> Mirror {
    let start = Instant::now();
    let mut last = (0, 0);
    while start.elapsed() < timeout {
        let mut s = Stream::open(http, base, cookie, "scope=overview").await;
        let mut m = Mirror::default();
        while let Some(f) = s.next(timeout.saturating_sub(start.elapsed())).await {
            m.apply(&f);
            last = (m.connected(), m.containers());
            if last.0 >= hosts && last.1 >= containers {
                return m;
            }
            if start.elapsed() >= timeout {
                break;
            }
        }
    }
    panic!("the console never showed {hosts} connected hosts and {containers} containers (last: {last:?})");
}

/// From `docker kill` of a real container to the first frame saying it is
/// not running, on an overview tab that opened the app it is in (the bench
/// containers are standalone ones, `host`'s app; a tab that has not opened
/// a healthy app gets only its summary, and SIGKILL, exit 137, reads as stopped).
pub async fn kill_to_live(http: &reqwest::Client, web: &Proc, cookie: &str, host: &str, id: &str) -> Duration {
    let query = format!("scope=overview&open=standalone%3A{host}");
    let mut s = Stream::open(http, &web.url(""), cookie, &query).await;
    let mut mirror = Mirror::default();
    // The current state first, so only later frames count.
    loop {
        let f = s.next(Duration::from_secs(120)).await.expect("a first frame");
        mirror.apply(&f);
        if f.is_full() {
            break;
        }
    }
    let t = Instant::now();
    testkit::docker(&["kill", id]);
    loop {
        let f = s.next(Duration::from_secs(30)).await.expect("the live stream ended before the kill showed");
        let hit = mirror.apply(&f).into_iter().any(|(_, cid, state)| cid == id && state != "running");
        if hit {
            return t.elapsed();
        }
        assert!(t.elapsed() < Duration::from_secs(30), "the kill never showed on the live stream");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(text: &str) -> Vec<Frame> {
        let mut p = Parser::default();
        p.push(text.as_bytes());
        std::iter::from_fn(|| p.next_frame()).collect()
    }

    #[test]
    fn frames_have_their_event_id_data_and_size() {
        let f = frames("event: delta\nid: 0a1b2c3d-7\ndata: {\"changes\":[]}\n\n:\n\n");
        assert_eq!(f.len(), 2);
        assert_eq!(
            (f[0].event.as_str(), f[0].id.as_deref(), f[0].data.as_str()),
            ("delta", Some("0a1b2c3d-7"), "{\"changes\":[]}")
        );
        assert_eq!(f[0].bytes, "event: delta\nid: 0a1b2c3d-7\ndata: {\"changes\":[]}\n\n".len());
        assert!(f[1].event.is_empty(), "a keep-alive comment");
    }

    #[test]
    fn frames_split_across_chunks_are_found_once_whole() {
        let text = "event: snapshot\ndata: {\"hosts\":[]}\n\nevent: delta\ndata: {}\n\n";
        for size in 1..8 {
            let mut p = Parser::default();
            let mut got = Vec::new();
            for chunk in text.as_bytes().chunks(size) {
                p.push(chunk);
                while let Some(f) = p.next_frame() {
                    got.push(f.event);
                }
            }
            assert_eq!(got, ["snapshot", "delta"], "chunks of {size}");
        }
    }

    #[test]
    fn the_mirror_follows_snapshots_and_deltas_or_whole_fleets() {
        let fleet = r#"{"hosts":[{"name":"a","status":{"state":"connected"},"containers":[{"id":"x1","state":"running"},{"id":"x2","state":"running"}]},{"name":"b","status":{"state":"stale","age_s":3},"containers":[]}],"at_ms":1}"#;
        for event in ["snapshot", "fleet"] {
            let mut m = Mirror::default();
            let seen = m.apply(&frames(&format!("event: {event}\ndata: {fleet}\n\n"))[0]);
            assert_eq!(seen.len(), 2);
            assert_eq!((m.containers(), m.connected()), (2, 1));
        }
        let mut m = Mirror::default();
        m.apply(&frames(&format!("event: snapshot\ndata: {fleet}\n\n"))[0]);
        let delta = r#"{"at_ms":2,"bucket":0,"changes":[{"k":"upsert","host":"a","c":{"id":"x1","state":"exited"}},{"k":"remove","host":"a","id":"x2"},{"k":"stats","host":"a","id":"x1","s":null},{"k":"host","host":"b","status":{"state":"connected"}},{"k":"upsert","host":"nowhere","c":{"id":"y","state":"running"}}]}"#;
        let seen = m.apply(&frames(&format!("event: delta\ndata: {delta}\n\n"))[0]);
        assert_eq!(seen, vec![("a".to_owned(), "x1".to_owned(), "exited".to_owned())]);
        assert_eq!((m.containers(), m.connected()), (1, 2));
        let mut t = Tally::default();
        t.count(&frames(&format!("event: delta\ndata: {delta}\n\n"))[0]);
        assert_eq!(t.describe(), "delta 1 (host 1, remove 1, stats 1, upsert 2)");
    }
}
