//! `GET /v1/openapi.json` against a real sidecar: behind the secret,
//! validated, rate-limited, counted and audited like every other verb, and
//! the document it serves lists the verb table.

use serde_json::Value;
use shared::api::{Method, VERBS};
use testkit::sidecar::*;

#[tokio::test]
async fn the_openapi_document_needs_the_secret_and_lists_every_verb() {
    let sc = Sidecar::start(&["--rate-read=6/min"]).await;

    // Without the secret, or with a wrong one: 401, the JSON error body, audited.
    let none = sc.http.get(sc.url("/v1/openapi.json")).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let body: Value = none.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let wrong = sc.http.get(sc.url("/v1/openapi.json")).bearer_auth(SECRET_B).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(!wrong.text().await.unwrap().contains("openapi\":"), "a refusal carried the document");

    // With it: an OpenAPI 3.x document with every row of the verb table.
    let r = sc.get("/v1/openapi.json").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let text = r.text().await.unwrap();
    let doc: Value = serde_json::from_str(&text).expect("the document is JSON");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().expect("paths");
    for row in VERBS {
        let m = match row.method {
            Method::Get => "get",
            Method::Post => "post",
        };
        assert_eq!(paths[row.path][m]["operationId"], row.name, "{} {}", row.method.as_str(), row.path);
    }
    let routes: std::collections::BTreeSet<&str> = VERBS.iter().map(|r| r.path).collect();
    assert_eq!(paths.len(), routes.len(), "paths beyond the verb table: {:?}", paths.keys());
    assert!(paths.contains_key("/v1/openapi.json"), "it describes itself");
    // Built once: the same bytes again.
    let again = sc.get("/v1/openapi.json").send().await.unwrap().text().await.unwrap();
    assert_eq!(again, text);

    // Like every verb: an unknown parameter is refused (and audited, naming the actor).
    let q = sc.get("/v1/openapi.json?format=yaml").send().await.unwrap();
    assert_eq!(q.status(), 400);
    let recs = sc.audit_records();
    let auth: Vec<&Value> = recs.iter().filter(|r| r["verb"] == "auth" && r["target"] == "/v1/openapi.json").collect();
    assert_eq!(auth.len(), 2, "each failed authentication is recorded");
    assert!(
        recs.iter().any(|r| r["verb"] == "openapi" && r["outcome"] == "denied" && r["actor"] == "tester"),
        "the refusal is not audited"
    );
    // Counted under its own name.
    let metrics = sc.get("/metrics").send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"dockward_requests_total{verb="openapi",status="200"} 2"#), "{metrics}");
    assert!(metrics.contains(r#"dockward_requests_total{verb="openapi",status="401"} 2"#), "{metrics}");
    // And it spends the read budget (6 a minute; four reads spent above).
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = sc.get("/v1/openapi.json").send().await.unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "never rate-limited: {statuses:?}");
}
