//! `/history` (viewers): a container's or a host's history over a range
//! (1 h … 90 d) as SVG charts drawn on the server — readable with no
//! script, a hover readout in each bucket's title, restarts, state and
//! health changes and recreates marked on the time axis — and
//! `/api/history/export`, the same range as CSV or JSON.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;

use super::super::auth::CurrentUser;
use super::super::hosts_page::{html_page, refused_page};
use super::super::password::escape;
use super::super::store::{Mark, Point, Range, Store};
use super::super::Core;
use crate::error::ConsoleError;
use crate::model::{human_bytes, url_encode};

/// The ranges offered: label and seconds.
pub const RANGES: [(&str, i64); 6] =
    [("1h", 3600), ("6h", 6 * 3600), ("24h", 86400), ("7d", 7 * 86400), ("30d", 30 * 86400), ("90d", 90 * 86400)];

#[derive(Deserialize)]
pub struct HistoryQuery {
    host: String,
    /// A container's name (or its history's name, `app/service/number`);
    /// none: the host as a whole (or the app).
    container: Option<String>,
    /// A compose project: its containers' history summed.
    app: Option<String>,
    range: Option<String>,
    /// `csv` or `json` (export only).
    format: Option<String>,
}

/// What a query asks for, checked.
struct Asked {
    host: String,
    /// One series' name (empty: the host's own), unless `app`.
    series_name: String,
    /// A compose project: the sum of its containers' series.
    app: Option<String>,
    label: String,
    range_label: &'static str,
    seconds: i64,
}

/// The query checked, and the user's grants on what it names: the host's
/// own series needs the host; an app's or container's, that app (a
/// container gone since is known by its series name, `app/service/n`).
fn check(core: &Core, u: &CurrentUser, q: &HistoryQuery) -> Result<Asked, ConsoleError> {
    // A host the user does not see answers as one that does not exist, whatever else is asked.
    if !u.access.sees_host(&q.host) {
        return Err(ConsoleError::NotFound { what: format!("host {:?}", truncated(&q.host)) });
    }
    let asked = read_query(core, q)?;
    let a = &u.access;
    let project = match (&asked.app, asked.series_name.as_str()) {
        (Some(app), _) => Some(Some(app.as_str())),
        (None, "") => None,
        (None, series) => Some(series.split_once('/').map(|(p, _)| p)),
    };
    let seen = match project {
        None => a.on_host(&asked.host).is_some(),
        Some(p) => a.on_app(&asked.host, p).is_some(),
    };
    if !seen {
        return Err(ConsoleError::NotFound {
            what: format!("history of {} on {}", asked.label, truncated(&asked.host)),
        });
    }
    Ok(asked)
}

fn read_query(core: &Core, q: &HistoryQuery) -> Result<Asked, ConsoleError> {
    let fleet = core.fleet.get();
    if fleet.host(&q.host).is_none() {
        return Err(ConsoleError::NotFound { what: format!("host {:?}", truncated(&q.host)) });
    }
    let wanted = q.range.as_deref().unwrap_or("24h");
    let (range_label, seconds) = *RANGES
        .iter()
        .find(|(l, _)| *l == wanted)
        .ok_or_else(|| ConsoleError::bad_input("range", "range must be one of 1h, 6h, 24h, 7d, 30d, 90d"))?;
    if let Some(app) = q.app.as_deref().filter(|a| !a.is_empty()) {
        let ok = app.len() <= 128 && app.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !ok || q.container.as_deref().is_some_and(|c| !c.is_empty()) {
            return Err(ConsoleError::bad_input(
                "app",
                "an app is a compose project name (at most 128 of A-Z a-z 0-9 _ . -), without a container",
            ));
        }
        return Ok(Asked {
            host: q.host.clone(),
            series_name: String::new(),
            app: Some(app.to_owned()),
            label: format!("app {app}"),
            range_label,
            seconds,
        });
    }
    let (series_name, label) = match q.container.as_deref() {
        None | Some("") => (String::new(), format!("host {}", q.host)),
        Some(c) => {
            if c.len() > 256 || c.chars().any(char::is_control) {
                return Err(ConsoleError::bad_input(
                    "container",
                    "a container name is at most 256 printable characters",
                ));
            }
            // A container running now: its history's name (app/service/number for compose).
            let snapshot = fleet.snapshot();
            let current = snapshot
                .hosts
                .iter()
                .filter(|h| h.name == q.host)
                .flat_map(|h| h.containers.iter())
                .find(|x| x.name == c || x.id == c);
            match current {
                Some(x) => (super::series_name(x), x.name.clone()),
                None => (c.to_owned(), c.to_owned()),
            }
        }
    };
    Ok(Asked { host: q.host.clone(), series_name, app: None, label, range_label, seconds })
}

fn truncated(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn store(core: &Core) -> Result<&Store, ConsoleError> {
    core.store.as_ref().ok_or_else(|| ConsoleError::NotFound { what: "history (the console has no store)".into() })
}

/// The points and marks of what was asked (none when nothing was recorded).
async fn read(store: &Store, a: &Asked) -> Result<(Range, Vec<Point>, Vec<Mark>), ConsoleError> {
    let now = super::super::store::now_s() as i64;
    let range = Range::last(a.seconds, now);
    // The detail goes to the log; a viewer is told no more than that it failed.
    let internal = |e: super::super::store::StoreError| {
        tracing::error!(error = %e, "reading history");
        ConsoleError::internal("the history could not be read (the console's log says why)")
    };
    let ids: Vec<i64> = match &a.app {
        Some(app) => store.app_series(&a.host, app).await.map_err(internal)?.into_iter().map(|(id, _)| id).collect(),
        None => store.find_series(&a.host, &a.series_name).await.map_err(internal)?.into_iter().collect(),
    };
    let points = store.points(&ids, range, now).await.map_err(internal)?;
    let marks = store.marks(&ids, range, a.app.is_some()).await.map_err(internal)?;
    Ok((range, points, marks))
}

/// GET /history?host=&container=&range=
pub async fn page(
    State(core): State<Arc<Core>>,
    Extension(u): Extension<CurrentUser>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let title = "History";
    let asked = match check(&core, &u, &q) {
        Ok(a) => a,
        Err(e) => return refused_page(title, &e),
    };
    let store = match store(&core) {
        Ok(s) => s,
        Err(e) => return refused_page(title, &e),
    };
    match read(store, &asked).await {
        Ok((range, points, marks)) => {
            html_page(title, StatusCode::OK, render(&asked, &q, store, range, &points, &marks), false)
        }
        Err(e) => refused_page(title, &e),
    }
}

/// GET /api/history/export?host=&container=&range=&format=csv|json
pub async fn export(
    State(core): State<Arc<Core>>,
    Extension(u): Extension<CurrentUser>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    // The API's error body (`{"error": {"code", "message"}}`), with the status the error carries.
    let fail = |e: ConsoleError| {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let code = match status.as_u16() {
            400 => shared::ErrorCode::BadRequest,
            404 => shared::ErrorCode::NotFound,
            _ => shared::ErrorCode::Internal,
        };
        (status, axum::Json(shared::ErrorBody::new(code, e.to_string()))).into_response()
    };
    let asked = match check(&core, &u, &q) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let format = q.format.as_deref().unwrap_or("csv");
    if format != "csv" && format != "json" {
        return fail(ConsoleError::bad_input("format", "format must be csv or json"));
    }
    let store = match store(&core) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let (range, points, marks) = match read(store, &asked).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let file = format!("history-{}-{}-{}", safe_file(&asked.host), safe_file(&asked.label), asked.range_label);
    let (body, ctype) = if format == "json" {
        let series = match &asked.app {
            Some(app) => format!("app:{app}"),
            None => asked.series_name.clone(),
        };
        let doc = serde_json::json!({
            "host": asked.host, "series": series, "from": range.from, "to": range.to,
            "step_seconds": range.step, "points": points, "marks": marks,
        });
        (serde_json::to_string_pretty(&doc).unwrap_or_default(), "application/json")
    } else {
        let mut out = String::from(
            "time,cpu_min_percent,cpu_avg_percent,cpu_max_percent,mem_min_bytes,mem_avg_bytes,mem_max_bytes,net_rx_bytes,net_tx_bytes,block_read_bytes,block_write_bytes,restarts\n",
        );
        let opt = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_default();
        for p in &points {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{}",
                iso(p.ts),
                opt(p.cpu_min),
                opt(p.cpu_avg),
                opt(p.cpu_max),
                p.mem_min,
                p.mem_avg,
                p.mem_max,
                p.net_rx_bytes,
                p.net_tx_bytes,
                p.blk_read_bytes,
                p.blk_write_bytes,
                p.restarts
            );
        }
        (out, "text/csv; charset=utf-8")
    };
    (
        [
            (header::CONTENT_TYPE, ctype.to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}.{format}\"")),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}

fn safe_file(s: &str) -> String {
    let s: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    truncated(&s).to_owned()
}

/// `2026-12-01T19:40:00Z`.
pub fn iso(ts: i64) -> String {
    let days = ts.div_euclid(86400);
    let secs = ts.rem_euclid(86400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

fn link(q: &HistoryQuery, range: &str, extra: &str) -> String {
    let mut url = format!("?host={}", url_encode(&q.host));
    if let Some(c) = q.container.as_deref().filter(|c| !c.is_empty()) {
        url.push_str(&format!("&container={}", url_encode(c)));
    }
    if let Some(a) = q.app.as_deref().filter(|a| !a.is_empty()) {
        url.push_str(&format!("&app={}", url_encode(a)));
    }
    url.push_str(&format!("&range={range}{extra}"));
    url
}

fn render(a: &Asked, q: &HistoryQuery, store: &Store, range: Range, points: &[Point], marks: &[Mark]) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let health = store.health();
    for warning in [&health.reset, &health.paused].into_iter().flatten() {
        let _ = write!(out, r#"<p class="error" role="alert">{}</p>"#, escape(warning));
    }
    if health.read_only {
        out.push_str(
            r#"<p class="error" role="alert">The history database is read-only: nothing new is recorded.</p>"#,
        );
    }
    let _ = write!(out, r#"<p class="history-of"><b>{}</b> on <b>{}</b>"#, escape(&a.label), escape(&a.host));
    if !a.series_name.is_empty() && a.series_name != a.label {
        let _ = write!(out, r#" <span class="muted">(history kept as {})</span>"#, escape(&a.series_name));
    }
    // A compose container's app, summed: `project/service/number`.
    if let Some((project, _)) = a.series_name.split_once('/') {
        let _ = write!(
            out,
            r#" · <a class="app-history" href="/history?host={}&amp;app={}&amp;range={}">the whole app {}</a>"#,
            escape(&url_encode(&a.host)),
            escape(&url_encode(project)),
            a.range_label,
            escape(project)
        );
    }
    if a.app.is_some() {
        out.push_str(r#" <span class="muted">(its containers summed: CPU and memory as the sums of their minima, means and maxima)</span>"#);
    }
    out.push_str("</p><nav class=\"ranges\" aria-label=\"Range\">");
    for (label, _) in RANGES {
        let current =
            if label == a.range_label { r#" aria-current="true" class="btn current""# } else { r#" class="btn""# };
        let _ = write!(out, r#"<a href="/history{}"{current}>{label}</a> "#, escape(&link(q, label, "")));
    }
    let _ = write!(
        out,
        r#"</nav><p class="export">Export this range: <a href="/api/history/export{}" download>CSV</a> · <a href="/api/history/export{}" download>JSON</a></p>"#,
        escape(&link(q, a.range_label, "&format=csv")),
        escape(&link(q, a.range_label, "&format=json")),
    );
    if points.is_empty() {
        out.push_str(r#"<p class="muted empty-history">Nothing recorded in this range yet.</p>"#);
    }
    let secs = range.step as f64;
    let charts: [ChartSpec; 4] = [
        ("cpu", "CPU", Unit::Percent, |p| Some((p.cpu_min?, p.cpu_avg?, p.cpu_max?))),
        ("memory", "Memory", Unit::Bytes, |p| Some((p.mem_min as f64, p.mem_avg as f64, p.mem_max as f64))),
        ("network", "Network (received + sent, per second)", Unit::Rate, |p| {
            let v = (p.net_rx_bytes + p.net_tx_bytes) as f64;
            Some((v, v, v))
        }),
        ("block", "Block I/O (read + written, per second)", Unit::Rate, |p| {
            let v = (p.blk_read_bytes + p.blk_write_bytes) as f64;
            Some((v, v, v))
        }),
    ];
    for (id, title, unit, value) in charts {
        let rate = matches!(unit, Unit::Rate);
        let series: Vec<Span> = points
            .iter()
            .filter_map(|p| {
                let (lo, avg, hi) = value(p)?;
                Some(if rate { (p.ts, (lo / secs, avg / secs, hi / secs)) } else { (p.ts, (lo, avg, hi)) })
            })
            .collect();
        out.push_str(&chart(id, title, unit, range, &series, marks));
    }
    if !marks.is_empty() {
        out.push_str(r#"<h2>Events</h2><ul class="history-marks">"#);
        for m in marks.iter().rev().take(50) {
            let _ = write!(
                out,
                r#"<li data-kind="{k}"><time>{t}</time> <b>{k}</b> {d}</li>"#,
                k = escape(&m.kind),
                t = iso(m.ts),
                d = escape(&m.detail)
            );
        }
        out.push_str("</ul>");
    }
    out
}

/// A bucket's time and its (min, mean, max) on one chart.
type Span = (i64, (f64, f64, f64));
/// A chart: its id, title, unit and what it shows of a point.
type ChartSpec = (&'static str, &'static str, Unit, fn(&Point) -> Option<(f64, f64, f64)>);

#[derive(Clone, Copy)]
enum Unit {
    Percent,
    Bytes,
    Rate,
}

fn human(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Percent => format!("{v:.1} %"),
        Unit::Bytes => human_bytes(v.max(0.0) as u64),
        Unit::Rate => format!("{}/s", human_bytes(v.max(0.0) as u64)),
    }
}

const W: f64 = 720.0;
const H: f64 = 140.0;

/// One chart: the min–max band, the mean as a line, a titled column per
/// bucket (the hover readout) and a line per mark.
fn chart(id: &str, title: &str, unit: Unit, range: Range, series: &[Span], marks: &[Mark]) -> String {
    let span = (range.to - range.from).max(1) as f64;
    let top = series.iter().map(|(_, v)| v.2).fold(0.0_f64, f64::max);
    let top = if top <= 0.0 { 1.0 } else { top * 1.1 };
    let x = |ts: i64| ((ts - range.from) as f64 / span * W).clamp(0.0, W);
    let y = |v: f64| H - (v / top * H).clamp(0.0, H);
    let col = range.step as f64 / span * W;
    let mut band = String::new();
    let mut line = String::new();
    let mut hover = String::new();
    // Runs of consecutive buckets: a gap (nothing recorded) breaks the line.
    let mut runs: Vec<&[Span]> = Vec::new();
    let mut start = 0;
    for i in 1..=series.len() {
        if i == series.len() || series[i].0 - series[i - 1].0 > range.step {
            if i > start {
                runs.push(&series[start..i]);
            }
            start = i;
        }
    }
    for run in runs {
        if let [(ts, (lo, avg, hi))] = run {
            // A lone bucket: a bar as wide as the bucket (a path of one point draws nothing).
            let (x0, x1) = (x(*ts), (x(*ts) + col).max(x(*ts) + 2.0));
            let _ = write!(line, "M{x0:.1},{:.1}L{x1:.1},{:.1}", y(*avg), y(*avg));
            let _ = write!(
                band,
                "M{x0:.1},{:.1}L{x1:.1},{:.1}L{x1:.1},{:.1}L{x0:.1},{:.1}Z",
                y(*hi),
                y(*hi),
                y(*lo),
                y(*lo)
            );
            continue;
        }
        let mid = |ts: i64| x(ts) + col / 2.0;
        let _ = write!(line, "M{:.1},{:.1}", mid(run[0].0), y(run[0].1 .1));
        for (ts, v) in &run[1..] {
            let _ = write!(line, "L{:.1},{:.1}", mid(*ts), y(v.1));
        }
        let _ = write!(band, "M{:.1},{:.1}", mid(run[0].0), y(run[0].1 .2));
        for (ts, v) in &run[1..] {
            let _ = write!(band, "L{:.1},{:.1}", mid(*ts), y(v.2));
        }
        for (ts, v) in run.iter().rev() {
            let _ = write!(band, "L{:.1},{:.1}", mid(*ts), y(v.0));
        }
        band.push('Z');
    }
    for (ts, (lo, avg, hi)) in series {
        let readout = if lo == hi {
            format!("{}: {}", iso(*ts), human(unit, *avg))
        } else {
            format!("{}: mean {}, min {}, max {}", iso(*ts), human(unit, *avg), human(unit, *lo), human(unit, *hi))
        };
        let _ = write!(
            hover,
            r#"<rect x="{:.1}" y="0" width="{:.2}" height="{H}"><title>{}</title></rect>"#,
            x(*ts),
            col.max(0.5),
            escape(&readout)
        );
    }
    let mut marks_svg = String::new();
    for m in marks {
        let mx = x(m.ts);
        let _ = write!(
            marks_svg,
            r#"<line class="mark mark-{k}" x1="{mx:.1}" x2="{mx:.1}" y1="0" y2="{H}"><title>{t}: {k}: {d}</title></line>"#,
            k = escape(&m.kind),
            t = iso(m.ts),
            d = escape(&m.detail)
        );
    }
    format!(
        r#"<figure class="history-chart" data-chart="{id}" data-points="{n}"><figcaption>{title} <span class="muted">peak {peak}</span></figcaption><svg viewBox="0 0 {W} {H}" preserveAspectRatio="none" role="img" aria-label="{title}"><path class="band" d="{band}"/><path class="mean" d="{line}"/><g class="hover">{hover}</g>{marks_svg}</svg><div class="axis"><span>{from}</span><span>{to}</span></div></figure>"#,
        n = series.len(),
        peak = human(unit, top / 1.1),
        from = iso(range.from),
        to = iso(range.to),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_iso_utc() {
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(1_764_618_000), "2025-12-01T19:40:00Z");
        assert_eq!(iso(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn a_chart_breaks_at_gaps_and_titles_every_bucket() {
        let range = Range { from: 0, to: 100, step: 10 };
        let series = vec![(0, (1.0, 2.0, 3.0)), (10, (1.0, 2.0, 3.0)), (40, (5.0, 5.0, 5.0))];
        let marks = vec![Mark { ts: 20, kind: "restart".into(), detail: "<b>".into() }];
        let svg = chart("cpu", "CPU", Unit::Percent, range, &series, &marks);
        assert_eq!(svg.matches("<title>").count(), 4, "three buckets and a mark");
        assert_eq!(svg.matches('M').count(), 4, "two runs (one a lone bucket): line and band each");
        assert!(svg.contains("M400.0,") || svg.contains("M288.0,"), "the lone bucket is drawn as a bar: {svg}");
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"), "text is escaped");
        assert!(svg.contains(r#"data-points="3""#));
    }
}
