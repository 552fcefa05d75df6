//! The audit export's formula defusing, end to end: fields that reach the
//! sidecar's audit log starting with `=`, `+`, `-`, `@`, a tab or a carriage
//! return — an actor named by the console (a user called `@ops`), and what
//! anyone holding a sidecar's secret can put there (a refused pull's raw
//! reference, the actor and request id it names) — come out of the console's
//! CSV export with a leading `'`, and no cell of the export starts a formula.

use std::sync::Arc;

use serde_json::Value;
use shared::{ACTOR_HEADER, REQUEST_ID_HEADER};
use testkit::console::client::{call, http, login};
use testkit::sidecar::SECRET;
use testkit::{unique, TestContainer};

use super::{Env, QUICK_TO_STOP};

/// What starts a formula in a spreadsheet (OWASP's list).
const LEADS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];
const COLUMNS: [&str; 11] = [
    "seq",
    "time",
    "actor",
    "client",
    "verb",
    "target",
    "target_name",
    "outcome",
    "message",
    "duration_ms",
    "request_id",
];

/// RFC 4180 records (every cell quoted, `""` for a quote, any byte inside quotes).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut cell, mut quoted, mut chars) = (Vec::new(), String::new(), false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    assert!(!quoted && cell.is_empty() && row.is_empty(), "the CSV ends inside a record");
    rows
}

/// A record's field as its CSV column shows it, before defusing.
fn field(record: &Value, column: &str) -> String {
    match &record[column] {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn export(env: &Env, cookie: &str, format: &str) -> String {
    let r = http()
        .get(format!("{}/api/audit/export", env.console.base))
        .query(&[("host", "local"), ("format", format)])
        .header("cookie", format!("dockward_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

pub async fn csv_cells_that_start_a_formula_are_defused(env: Arc<Env>) {
    // Through the console: a user whose name starts with `@` restarts a container.
    let ops = login(&env.console.base, "@ops").await;
    let target = TestContainer::run("authz-export", &["--label", &env.scope], QUICK_TO_STOP);
    let (status, body) = call(
        &env.console.base,
        Some(&ops.cookie),
        "restart",
        &[("host", "local"), ("id", &target.id), ("csrf", &ops.csrf)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Straight to the sidecar, as anyone with its secret: a pull it refuses
    // records the reference (escaped when it does not parse); the actor
    // (control characters dropped) and the request id are the caller's.
    let mut markers = Vec::new();
    for lead in LEADS {
        let marker = unique("formula");
        // A header value holds no carriage return; the sidecar drops control characters from actors.
        let actor = if lead.is_control() { marker.clone() } else { format!("{lead}{marker}") };
        let r = env
            .sidecar
            .http
            .post(env.sidecar.url("/v1/images/pull"))
            .bearer_auth(SECRET)
            .header(ACTOR_HEADER, actor)
            .header(REQUEST_ID_HEADER, format!("-{marker}"))
            .json(&serde_json::json!({ "image": format!("{lead}HYPERLINK(\"http://evil.example/{marker}\")") }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "the sidecar took a pull of a formula: {}", r.status());
        markers.push(marker);
    }
    let admin = &env.users[2];
    let records: Vec<Value> = serde_json::from_str(&export(&env, &admin.cookie, "json").await).unwrap();
    let csv = export(&env, &admin.cookie, "csv").await;
    let rows = parse_csv(&csv);
    assert_eq!(rows[0], COLUMNS, "the CSV header");
    let ours: Vec<&Value> = records
        .iter()
        .filter(|r| {
            let text = r.to_string();
            r["actor"] == "@ops" || markers.iter().any(|m| text.contains(m.as_str()))
        })
        .collect();
    assert!(ours.len() > LEADS.len(), "the test's records are not in the export: {ours:?}");
    let mut leads_seen = Vec::new();
    for record in ours {
        let seq = field(record, "seq");
        let row = rows.iter().find(|r| r[0] == seq).unwrap_or_else(|| panic!("no CSV row for record {seq}"));
        for (i, column) in COLUMNS.iter().enumerate() {
            let stored = field(record, column);
            let lead = stored.chars().next().filter(|c| LEADS.contains(c));
            let want = match lead {
                Some(c) => {
                    leads_seen.push(c);
                    format!("'{stored}")
                }
                None => stored,
            };
            assert_eq!(row[i], want, "record {seq}, column {column}");
        }
    }
    // No stored field can start with a tab or a carriage return any more
    // (actors lose control characters, a refused reference is stored escaped),
    // so those two leads are proven by the unit test
    // `server::routes::tests::csv_cells_are_quoted_and_formulas_defused`.
    for lead in LEADS.iter().copied().filter(|c| !c.is_control()) {
        assert!(leads_seen.contains(&lead), "no field of the test's records reached the export starting with {lead:?}");
    }
    for row in &rows {
        for cell in row {
            assert!(!cell.starts_with(LEADS), "a CSV cell starts a formula: {cell:?} in {row:?}");
        }
    }
}
