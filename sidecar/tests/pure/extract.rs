//! `sidecar::extract`: the query-string bound, the content-type check and
//! time parsing.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use sidecar::error::ApiError;
use sidecar::extract::{parse_time, JsonBody, NoQuery, Query};

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Q {
    #[allow(dead_code)]
    a: Option<String>,
}

async fn query(q: &str) -> Result<Q, ApiError> {
    let (mut parts, _) = Request::builder().uri(format!("/x?{q}")).body(()).unwrap().into_parts();
    Query::<Q>::from_request_parts(&mut parts, &()).await.map(|Query(q)| q)
}

#[tokio::test]
async fn query_strings_up_to_4096_bytes() {
    let at_limit = format!("a={}", "x".repeat(4094));
    assert_eq!(at_limit.len(), 4096);
    assert_eq!(query(&at_limit).await.unwrap().a.map(|a| a.len()), Some(4094));
    let over = format!("a={}", "x".repeat(4095));
    match query(&over).await {
        Err(ApiError::BadRequest(m)) => assert_eq!(m, "query string too long"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(query("b=1").await, Err(ApiError::BadRequest(m)) if m.starts_with("invalid query")));
    assert!(query("").await.unwrap().a.is_none());
}

#[tokio::test]
async fn no_query_means_none_or_empty() {
    for (uri, ok) in [("/x", true), ("/x?", true), ("/x?a=1", false)] {
        let (mut parts, _) = Request::builder().uri(uri).body(()).unwrap().into_parts();
        assert_eq!(NoQuery::from_request_parts(&mut parts, &()).await.is_ok(), ok, "{uri}");
    }
}

#[tokio::test]
async fn json_bodies_need_the_json_content_type() {
    let req = |ct: Option<&str>| {
        let mut b = Request::builder().method("POST").uri("/x");
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        b.body(Body::from(r#"{"image":"nginx"}"#)).unwrap()
    };
    for ct in ["application/json", "application/json; charset=utf-8"] {
        let JsonBody(body) = JsonBody::<shared::PullRequest>::from_request(req(Some(ct)), &()).await.unwrap();
        assert_eq!(body.image, "nginx");
    }
    for ct in [None, Some("text/plain"), Some("application/x-www-form-urlencoded")] {
        let r = JsonBody::<shared::PullRequest>::from_request(req(ct), &()).await;
        assert!(matches!(r, Err(ApiError::BadRequest(ref m)) if m.contains("Content-Type")), "{ct:?}");
    }
}

#[test]
fn times_are_unix_seconds_or_rfc3339() {
    assert_eq!(parse_time("since", "0").unwrap(), 0);
    assert_eq!(parse_time("since", "1795514400").unwrap(), 1_795_514_400);
    assert_eq!(parse_time("since", "253402300799").unwrap(), 253_402_300_799);
    assert_eq!(parse_time("since", "2026-11-24T10:00:00Z").unwrap(), 1_795_514_400);
    assert_eq!(parse_time("since", "2026-11-24T11:00:00+01:00").unwrap(), 1_795_514_400);
    for bad in ["-1", "253402300800", "yesterday", ""] {
        match parse_time("since", bad) {
            Err(ApiError::BadRequest(m)) => assert!(m.starts_with("since must be"), "{m}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
}
