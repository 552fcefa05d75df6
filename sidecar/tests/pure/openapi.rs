//! `sidecar::openapi`: the document served at `/v1/openapi.json` describes
//! exactly the verb table, and everything it references is in it.

use serde_json::{json, Value};
use shared::api::{Method, VERBS};
use shared::{limits, ContainerRef, ErrorCode};

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

fn doc() -> Value {
    serde_json::from_slice(sidecar::openapi::json().expect("the document serialises")).expect("valid JSON")
}

fn method(m: Method) -> &'static str {
    match m {
        Method::Get => "get",
        Method::Post => "post",
    }
}

/// The `{…}` names of a path template, in order.
fn template_params(path: &str) -> Vec<&str> {
    path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).collect()
}

/// Follows a `$ref` (`#/components/…`) to what it names.
fn resolve<'a>(doc: &'a Value, r: &Value) -> &'a Value {
    let loc = r["$ref"].as_str().unwrap_or_else(|| panic!("not a reference: {r}"));
    let ptr = loc.strip_prefix('#').unwrap_or_else(|| panic!("not a local reference: {loc}"));
    doc.pointer(ptr).unwrap_or_else(|| panic!("{loc} resolves to nothing"))
}

/// An operation's parameters with references followed.
fn params<'a>(doc: &'a Value, op: &'a Value) -> Vec<&'a Value> {
    op["parameters"]
        .as_array()
        .map(|ps| ps.iter().map(|p| if p.get("$ref").is_some() { resolve(doc, p) } else { p }).collect())
        .unwrap_or_default()
}

fn query_param<'a>(doc: &'a Value, op: &'a Value, name: &str) -> &'a Value {
    params(doc, op)
        .into_iter()
        .find(|p| p["in"] == "query" && p["name"] == name)
        .unwrap_or_else(|| panic!("no query parameter {name}"))
}

#[test]
fn every_verb_has_one_operation_and_the_document_no_other() {
    let doc = doc();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths {
        for m in METHODS {
            if let Some(op) = item.get(m) {
                operations += 1;
                let row = VERBS
                    .iter()
                    .find(|s| s.path == path && method(s.method) == m)
                    .unwrap_or_else(|| panic!("{m} {path} is in the document but not in the verb table"));
                assert_eq!(op["operationId"], row.name, "{m} {path}");
            }
        }
    }
    assert_eq!(operations, VERBS.len(), "one operation per row, no more");
    let scheme = &doc["components"]["securitySchemes"][sidecar::openapi::BEARER];
    assert_eq!((&scheme["type"], &scheme["scheme"]), (&json!("http"), &json!("bearer")));
    for row in VERBS {
        let op = &doc["paths"][row.path][method(row.method)];
        assert!(op.is_object(), "{} {} is in the verb table but not in the document", row.method.as_str(), row.path);
        // The template's parameters, and only those, are required path parameters.
        let in_path: Vec<&Value> = params(&doc, op).into_iter().filter(|p| p["in"] == "path").collect();
        let names: Vec<&str> = in_path.iter().filter_map(|p| p["name"].as_str()).collect();
        assert_eq!(names, template_params(row.path), "{}", row.path);
        for p in in_path {
            assert_eq!(p["required"], true, "{}", row.path);
            assert!(p["schema"].get("$ref").is_some(), "{}: {} has no schema of its own", row.path, p["name"]);
        }
        // The secret where the row asks for it, and nowhere else.
        let security = if row.auth { json!([{ sidecar::openapi::BEARER: [] }]) } else { json!([]) };
        assert_eq!(op["security"], security, "{}", row.name);
        assert!(op["description"].as_str().is_some_and(|d| d.contains(if row.auth {
            row.role.as_str()
        } else {
            "anyone"
        })));
        assert_eq!(op.get("requestBody").is_some(), row.body, "{}: a request body where the row says", row.name);
        assert!(op["responses"]["200"].is_object(), "{} has no success answer", row.name);
    }
}

#[test]
fn every_reference_resolves() {
    let doc = doc();
    let mut refs = Vec::new();
    fn walk<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
        match v {
            Value::Object(m) => {
                if m.get("$ref").is_some_and(Value::is_string) {
                    out.push(v);
                }
                m.values().for_each(|x| walk(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(&doc, &mut refs);
    assert!(refs.len() > 100, "only {} references: is the document whole?", refs.len());
    for r in &refs {
        let target = resolve(&doc, r);
        assert!(target.is_object(), "{r} resolves to {target}");
    }
    // Every named schema is used: referenced, or named in a stream's description.
    let text = doc.to_string();
    for name in doc["components"]["schemas"].as_object().expect("schemas").keys() {
        let loc = format!("#/components/schemas/{name}");
        assert!(text.contains(&format!("{loc}\"")) || text.contains(&format!("{loc}`")), "{name} is never referenced");
    }
}

#[test]
fn query_parameters_are_each_verbs_own_with_the_bounds_the_handlers_check() {
    let doc = doc();
    let op = |path: &str, m: &str| doc["paths"][path][m].clone();
    let names = |op: &Value| -> Vec<String> {
        params(&doc, op)
            .into_iter()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect()
    };
    let logs = op("/v1/containers/{ref}/logs", "get");
    assert_eq!(names(&logs), ["tail", "since", "until", "timestamps", "follow"]);
    let tail = &query_param(&doc, &logs, "tail")["schema"];
    assert_eq!((&tail["minimum"], &tail["maximum"]), (&json!(0), &json!(limits::LOG_TAIL_MAX)));
    assert_eq!(tail["default"], limits::LOG_TAIL_DEFAULT);
    assert_eq!(query_param(&doc, &logs, "follow")["schema"]["default"], false);

    let restart = op("/v1/containers/{ref}/restart", "post");
    assert_eq!(names(&restart), ["timeout"]);
    assert_eq!(query_param(&doc, &restart, "timeout")["schema"]["maximum"], limits::RESTART_TIMEOUT_MAX);

    let audit = op("/v1/audit", "get");
    assert_eq!(names(&audit), ["since", "until", "actor", "verb", "target", "outcome", "limit", "cursor"]);
    let limit = &query_param(&doc, &audit, "limit")["schema"];
    assert_eq!((&limit["minimum"], &limit["maximum"]), (&json!(1), &json!(limits::AUDIT_PAGE_MAX)));
    assert_eq!(limit["default"], limits::AUDIT_PAGE_DEFAULT);
    let outcome = resolve(&doc, &query_param(&doc, &audit, "outcome")["schema"]);
    assert_eq!(outcome["enum"], json!(["ok", "denied", "error"]));

    let history = op("/v1/stats/history", "get");
    assert_eq!(names(&history), ["ref", "window"]);
    assert_eq!(query_param(&doc, &history, "ref")["required"], true);
    let window = &query_param(&doc, &history, "window")["schema"];
    assert_eq!((&window["minimum"], &window["maximum"]), (&json!(1), &json!(limits::HISTORY_WINDOW_MAX)));

    let prune = op("/v1/prune/{kind}", "post");
    assert_eq!(names(&prune), ["all", "until"]);
    let kind = params(&doc, &prune).into_iter().find(|p| p["name"] == "kind").expect("kind");
    assert_eq!(resolve(&doc, &kind["schema"])["enum"], json!(["containers", "images", "volumes", "build-cache"]));

    let recreate = op("/v1/containers/{ref}/recreate", "post");
    assert_eq!(names(&recreate), ["pull", "build", "timeout", "health_timeout", "grace"]);
    let gate = &query_param(&doc, &recreate, "health_timeout")["schema"];
    assert_eq!((&gate["minimum"], &gate["maximum"]), (&json!(1), &json!(limits::RECREATE_HEALTH_TIMEOUT_MAX)));
    assert_eq!(gate["default"], limits::RECREATE_HEALTH_TIMEOUT_DEFAULT);
    assert_eq!(query_param(&doc, &recreate, "grace")["schema"]["maximum"], limits::RECREATE_GRACE_MAX);
    assert_eq!(query_param(&doc, &recreate, "build")["schema"]["default"], false);

    // Every other verb takes no query parameter at all.
    let with_query = ["logs", "restart", "audit", "stats_history", "prune", "recreate"];
    for row in VERBS.iter().filter(|r| !with_query.contains(&r.name)) {
        assert_eq!(names(&op(row.path, method(row.method))), Vec::<String>::new(), "{}", row.name);
    }

    // The one body: pull's, its image required.
    let body = &op("/v1/images/pull", "post")["requestBody"];
    assert_eq!(body["required"], true);
    let schema = resolve(&doc, &body["content"]["application/json"]["schema"]);
    assert_eq!(schema["required"], json!(["image"]));
}

#[test]
fn errors_are_the_json_error_body_with_their_status() {
    let doc = doc();
    let mut seen = 0;
    for row in VERBS {
        let responses = doc["paths"][row.path][method(row.method)]["responses"].as_object().expect("responses");
        assert!(responses.contains_key("400"), "{}", row.name);
        if row.auth {
            for status in ["401", "429", "500"] {
                assert!(responses.contains_key(status), "{} lacks {status}", row.name);
            }
        }
        if row.path.contains("{ref}") {
            assert!(responses.contains_key("404") && responses.contains_key("409"), "{}", row.name);
        }
        for (status, r) in responses {
            let code: u16 = status.parse().expect("a numeric status");
            if code < 400 || (row.name == "healthz" && code == 503) {
                continue;
            }
            seen += 1;
            let name = r["$ref"].as_str().and_then(|l| l.strip_prefix("#/components/responses/"));
            let name = name.unwrap_or_else(|| panic!("{} {status} is not a shared error response", row.name));
            let error: ErrorCode = serde_json::from_value(json!(name)).expect("named after an ErrorCode");
            assert_eq!(error.status(), code, "{} {status} is {name}", row.name);
            let response = resolve(&doc, r);
            assert_eq!(response["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody");
        }
    }
    assert!(seen > 50, "{seen}");
    let limited = &doc["components"]["responses"]["rate_limited"];
    assert!(limited["headers"]["Retry-After"].is_object());
    let body = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(body["required"], json!(["error"]));
    let codes = resolve(&doc, &resolve(&doc, &body["properties"]["error"])["properties"]["code"]);
    assert!(codes["enum"].as_array().is_some_and(|c| c.contains(&json!("rate_limited"))), "{codes}");
}

#[test]
fn no_two_schemas_share_a_name() {
    // The probe's report was once `Health`, as is the containers' health enum: one hid the other.
    assert_eq!(sidecar::openapi::schema_name_clashes(), Vec::<String>::new());
    let doc = doc();
    let probe =
        resolve(&doc, &doc["paths"]["/healthz"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]);
    let status = resolve(&doc, &probe["properties"]["status"]);
    assert_eq!(status["enum"], json!(["ok", "degraded"]));
}

#[test]
fn the_container_reference_pattern_is_the_validators() {
    let doc = doc();
    let pattern = doc["components"]["schemas"]["ContainerRef"]["pattern"].as_str().expect("a pattern");
    let re = regex::Regex::new(pattern).expect("a valid regex");
    let long = "a".repeat(128);
    let too_long = "a".repeat(129);
    for s in [
        "web-1",
        "a",
        "0abc",
        "my_app.web-1",
        &long,
        &too_long,
        "",
        "-web",
        ".x",
        "_x",
        "a/b",
        "a b",
        "a:b",
        "é",
        "a\n",
    ] {
        assert_eq!(re.is_match(s), ContainerRef::parse(s).is_ok(), "{s:?}");
    }
}

#[test]
fn the_document_is_built_once() {
    let a = sidecar::openapi::json().expect("serialises");
    let b = sidecar::openapi::json().expect("serialises");
    assert!(std::ptr::eq(a, b), "the bytes are built again");
    assert_eq!(serde_json::to_vec(&sidecar::openapi::document()).expect("serialises"), a.as_ref());
}
