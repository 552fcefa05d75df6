//! SECURITY.md's sidecar route table and the verb table (`shared::api::VERBS`)
//! must say the same thing: every route, its method and its least console
//! role, in both directions.

use shared::api::{VerbSpec, VERBS};

/// One row of SECURITY.md's route table: method, path template, role cell.
#[derive(Debug, PartialEq, Eq)]
struct DocRow {
    method: String,
    path: String,
    role: String,
}

/// The rows of the table whose header's first cell is `method and route`.
fn doc_rows(markdown: &str) -> Vec<DocRow> {
    let mut lines = markdown.lines().skip_while(|l| !l.starts_with("| method and route |"));
    let Some(header) = lines.next() else { return Vec::new() };
    let role_col = header.split('|').map(str::trim).position(|c| c == "console role").unwrap_or(usize::MAX);
    lines
        .skip(1) // |---|
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let route = cells.get(1)?.strip_prefix('`')?;
            let route = &route[..route.find('`')?];
            let (method, path) = route.split_once(' ')?;
            let path = path.split('?').next().unwrap_or(path);
            let role = cells.get(role_col).copied().unwrap_or("").trim_matches('`').to_owned();
            Some(DocRow { method: method.to_owned(), path: path.to_owned(), role })
        })
        .collect()
}

fn expected_role(s: &VerbSpec) -> String {
    if s.auth {
        s.role.as_str().to_owned()
    } else {
        "anyone".to_owned()
    }
}

/// Every difference between the document and the table, both ways.
fn drift(markdown: &str, table: &[VerbSpec]) -> Vec<String> {
    let rows = doc_rows(markdown);
    let mut out = Vec::new();
    if rows.is_empty() {
        out.push("no `| method and route |` table with routes".to_owned());
    }
    for s in table {
        match rows.iter().find(|r| r.method == s.method.as_str() && r.path == s.path) {
            None => out.push(format!("{} {} is in the verb table but not in SECURITY.md", s.method.as_str(), s.path)),
            Some(r) if r.role != expected_role(s) => out.push(format!(
                "{} {}: SECURITY.md says role {:?}, the verb table {:?}",
                s.method.as_str(),
                s.path,
                r.role,
                expected_role(s)
            )),
            Some(_) => {}
        }
    }
    for r in &rows {
        if !table.iter().any(|s| s.method.as_str() == r.method && s.path == r.path) {
            out.push(format!("{} {} is in SECURITY.md but not in the verb table", r.method, r.path));
        }
        if rows.iter().filter(|o| o.method == r.method && o.path == r.path).count() > 1 {
            out.push(format!("{} {} is listed more than once in SECURITY.md", r.method, r.path));
        }
    }
    out
}

#[test]
fn security_md_lists_exactly_the_verb_table() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../SECURITY.md"))
        .expect("SECURITY.md beside the workspace");
    let problems = drift(&doc, VERBS);
    assert!(problems.is_empty(), "SECURITY.md and shared::api::VERBS disagree:\n{}", problems.join("\n"));
}

const SAMPLE: &str = "\
Intro.

| method and route | console role | Docker calls | audited |
|---|---|---|---|
| `GET /healthz` | anyone | none | no |
| `GET /v1/stats?window=` | viewer | none | refusals |
| anything else | — | none | refusals |

Other text.
";

#[test]
fn drift_is_reported_in_both_directions() {
    use shared::api::{Role, Verb};
    let healthz = *Verb::Healthz.spec();
    let stats = *Verb::Stats.spec();
    assert_eq!(drift(SAMPLE, &[healthz, stats]), Vec::<String>::new());

    // A route only in the table.
    let restart = *Verb::Restart.spec();
    let d = drift(SAMPLE, &[healthz, stats, restart]);
    assert_eq!(d, ["POST /v1/containers/{ref}/restart is in the verb table but not in SECURITY.md"]);

    // A route only in the document.
    let d = drift(SAMPLE, &[healthz]);
    assert_eq!(d, ["GET /v1/stats is in SECURITY.md but not in the verb table"]);

    // A method that differs: missing both ways.
    let post_stats = VerbSpec { method: shared::api::Method::Post, ..stats };
    let d = drift(SAMPLE, &[healthz, post_stats]);
    assert_eq!(d.len(), 2, "{d:?}");

    // A role that differs.
    let admin_stats = VerbSpec { role: Role::Admin, ..stats };
    let d = drift(SAMPLE, &[healthz, admin_stats]);
    assert_eq!(d, ["GET /v1/stats: SECURITY.md says role \"viewer\", the verb table \"admin\""]);

    // A path that differs.
    let moved = VerbSpec { path: "/v1/statistics", ..stats };
    assert_eq!(drift(SAMPLE, &[healthz, moved]).len(), 2);

    // No table at all, and a route listed twice.
    assert_eq!(drift("nothing here", &[]), ["no `| method and route |` table with routes"]);
    let twice = SAMPLE.replace("| anything else", "| `GET /healthz` | anyone | none | no |\n| anything else");
    assert_eq!(drift(&twice, &[healthz, stats]).len(), 2);
}
