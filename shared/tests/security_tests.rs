//! Every promise in SECURITY.md names the test that proves it: each table with
//! a "proved by" column has a test in every row, and every test named anywhere
//! in the document (`` `path/to/file.rs::test_name` ``) exists — as a `fn`, or
//! as a scenario name for the `harness = false` suites. A renamed or deleted
//! test fails here instead of leaving a promise unproved.

use std::path::Path;

/// A test named in the document: the file and the test's last path segment.
#[derive(Debug, PartialEq, Eq)]
struct TestRef {
    file: String,
    name: String,
}

/// Every backticked `file.rs::name` in `markdown`.
fn test_refs(markdown: &str) -> Vec<TestRef> {
    markdown
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|code| {
            let (file, path) = code.split_once(".rs::")?;
            let ok = |s: &str, extra: &str| {
                !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(c))
            };
            if !ok(file, "/-.") || !ok(path, ":") {
                return None;
            }
            let name = path.rsplit("::").next()?.to_owned();
            Some(TestRef { file: format!("{file}.rs"), name })
        })
        .collect()
}

/// The rows of every table that has a "proved by" column, with that cell.
fn proof_cells(markdown: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut column = None;
    for line in markdown.lines() {
        if !line.starts_with('|') {
            column = None;
            continue;
        }
        // `\|` inside a cell is a literal bar, not a column break.
        let line = line.replace("\\|", "\u{1}");
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.iter().all(|c| c.chars().all(|ch| ch == '-' || ch == ':')) {
            continue; // |---|---|
        }
        match column {
            None => column = Some(cells.iter().position(|c| *c == "proved by")),
            Some(Some(i)) => {
                out.push((cells.get(1).unwrap_or(&"").to_string(), cells.get(i).unwrap_or(&"").to_string()))
            }
            Some(None) => {}
        }
    }
    out
}

/// Whether `source` defines the test `name`: a function, or a scenario of a
/// libtest-mimic suite (named by a string literal).
fn defines(source: &str, name: &str) -> bool {
    source.contains(&format!("fn {name}("))
        || source.contains(&format!("mod {name} "))
        || source.contains(&format!("\"{name}\""))
}

/// Every problem: rows without a test, tests that do not exist.
fn problems(markdown: &str, root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for (row, cell) in proof_cells(markdown) {
        // A row that promises nothing (root on the host is root) says so.
        if cell == "no promise" {
            continue;
        }
        // A checked script step (e.g. the image size budget) proves a row too.
        let scripts: Vec<&str> =
            cell.split('`').skip(1).step_by(2).filter(|c| c.starts_with("scripts/") && c.ends_with(".sh")).collect();
        for script in &scripts {
            if !root.join(script).is_file() {
                out.push(format!("row {row:?} names {script}, which does not exist"));
            }
        }
        if test_refs(&cell).is_empty() && scripts.is_empty() {
            out.push(format!("row {row:?} names no test in its \"proved by\" cell"));
        }
    }
    for r in test_refs(markdown) {
        match std::fs::read_to_string(root.join(&r.file)) {
            Err(e) => out.push(format!("{}::{}: cannot read {}: {e}", r.file, r.name, r.file)),
            Ok(src) if !defines(&src, &r.name) => out.push(format!("{}::{} does not exist", r.file, r.name)),
            Ok(_) => {}
        }
    }
    out
}

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("shared/ has a parent")
}

#[test]
fn every_test_security_md_names_exists_and_every_row_names_one() {
    let root = workspace_root();
    let doc = std::fs::read_to_string(root.join("SECURITY.md")).expect("read SECURITY.md");
    assert!(proof_cells(&doc).len() >= 20, "SECURITY.md lost its \"proved by\" columns");
    let found = problems(&doc, root);
    assert!(found.is_empty(), "SECURITY.md names tests that do not prove it:\n{}", found.join("\n"));
}

#[test]
fn the_check_catches_a_missing_test_and_an_empty_row() {
    let root = workspace_root();
    let doc = "\
| what | proved by |
|---|---|
| real | `shared/tests/security_tests.rs::the_check_catches_a_missing_test_and_an_empty_row` |
| renamed | `shared/tests/security_tests.rs::no_such_test` |
| gone | `shared/tests/nowhere.rs::anything` |
| unproved | — |
| root | no promise |
| budget | `scripts/build-images.sh` |
| a\\|b | `scripts/nope.sh` |

Prose can name tests too: `shared/tests/route_table.rs::not_there`.
";
    let found = problems(doc, root);
    assert_eq!(found.len(), 5, "{found:#?}");
    assert!(found[0].contains("\"unproved\""));
    // An escaped bar stays inside its cell.
    assert!(found.iter().any(|p| p.contains("row \"a\\u{1}b\" names scripts/nope.sh, which does not exist")));
    assert!(found.iter().any(|p| p.contains("no_such_test does not exist")));
    assert!(found.iter().any(|p| p.contains("cannot read shared/tests/nowhere.rs")));
    assert!(found.iter().any(|p| p.contains("not_there does not exist")));
    // A table without the column asks nothing; a scenario name counts as a test.
    assert!(proof_cells("| a | b |\n|---|---|\n| x | y |\n").is_empty());
    assert!(defines("scenario(\"viewer_cannot_restart\", f)", "viewer_cannot_restart"));
}
