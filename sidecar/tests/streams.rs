//! Stream and resource limits: the pools of streaming slots (follows cannot
//! take the places of event streams and pulls), the follow maximum, the log
//! page cap counted in encoded bytes, the log-read limit, and pulls whose
//! client does not read.

use std::time::Duration;

use serde_json::Value;
use testkit::sidecar::*;
use testkit::*;

/// The page cap of `GET /v1/containers/{ref}/logs` (non-follow), in bytes of JSON.
const PAGE_MAX_BYTES: usize = 8 * 1024 * 1024;

async fn follow(sc: &Sidecar, c: &TestContainer) -> reqwest::Response {
    sc.get(&format!("/v1/containers/{}/logs?follow=true&tail=0", c.id)).send().await.unwrap()
}

async fn assert_rate_limited(r: reqwest::Response, what: &str) {
    assert_eq!(r.status(), 429, "{what}");
    assert!(r.headers().contains_key("retry-after"), "{what}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{what}: {body}");
}

#[tokio::test]
async fn follows_at_their_maximum_leave_room_for_events_and_pulls() {
    let c = TestContainer::run("streams", &[], "sleep 600");
    // An allowed registry where nothing listens: the pull gets its slot, then fails.
    let sc = Sidecar::start(&["--max-streams=2", "--max-event-streams=1", "--pull-registries=127.0.0.1:9"]).await;
    let mut held = vec![follow(&sc, &c).await, follow(&sc, &c).await];
    assert!(held.iter().all(|r| r.status() == 200));
    assert_rate_limited(follow(&sc, &c).await, "a follow past DOCKWARD_MAX_STREAMS").await;

    // Follows are at their maximum; the console can still subscribe to events …
    let events = sc.get("/v1/events").send().await.unwrap();
    assert_eq!(events.status(), 200, "events were refused while follows were full");
    assert_rate_limited(sc.get("/v1/events").send().await.unwrap(), "events past DOCKWARD_MAX_EVENT_STREAMS").await;
    // … and an operator can still pull.
    let pull = sc.post("/v1/images/pull").json(&serde_json::json!({"image": "127.0.0.1:9/x:1"})).send().await.unwrap();
    assert_eq!(pull.status(), 200, "a pull was refused while follows were full");
    let text = pull.text().await.unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "error", "{text}");

    // A follow that ends gives its place back.
    drop(held.pop());
    eventually(Duration::from_secs(10), "a follow slot to free up", || async {
        let r = follow(&sc, &c).await;
        (r.status() == 200).then_some(())
    })
    .await;
    let refusals = sc.audit_records().into_iter().filter(|r| r["outcome"] == "denied").count();
    assert!(refusals >= 2, "the refusals are audited");
}

#[tokio::test]
async fn follows_and_event_streams_end_at_the_follow_maximum() {
    let c = TestContainer::run("followmax", &[], "while true; do echo tick; sleep 0.2; done");
    let sc = Sidecar::start(&["--log-follow-max=2s"]).await;
    let mut logs = SseReader::new(follow(&sc, &c).await);
    let mut events = SseReader::new(sc.get("/v1/events").send().await.unwrap());
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        let mut last = None;
        while let Some((event, _)) = logs.next().await {
            last = Some(event);
        }
        last
    })
    .await
    .expect("the follow outlived DOCKWARD_LOG_FOLLOW_MAX");
    assert_eq!(ended.as_deref(), Some("end"), "a follow ends with an `end` event");
    tokio::time::timeout(Duration::from_secs(30), async { while events.next().await.is_some() {} })
        .await
        .expect("the event stream outlived DOCKWARD_LOG_FOLLOW_MAX");
}

/// A container whose log holds 150 lines of 16 000 control characters:
/// 2.4 MB as logged, 14 MB as JSON (each is `\u0001` there).
fn noisy_container() -> TestContainer {
    let c = TestContainer::run(
        "ctrl",
        &[],
        "i=0; while [ $i -lt 150 ]; do busybox head -c 16000 /dev/zero | busybox tr '\\000' '\\001'; echo; \
         i=$((i+1)); done; touch /tmp/done; sleep 600",
    );
    wait_for(Duration::from_secs(60), "the container to write its log", || {
        docker_ok(&["exec", &c.id, "ls", "/tmp/done"]).then_some(())
    });
    c
}

#[tokio::test]
async fn a_log_page_is_cut_by_its_encoded_size() {
    let c = noisy_container();
    let sc = Sidecar::start(&[]).await;
    let r = sc.get(&format!("/v1/containers/{}/logs?tail=10000", c.id)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.bytes().await.unwrap();
    assert!(body.len() <= PAGE_MAX_BYTES, "the page is {} bytes, over the {PAGE_MAX_BYTES} cap", body.len());
    let page: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(page["truncated"], true);
    assert_eq!(page["id"], c.id.as_str());
    let lines = page["lines"].as_array().unwrap();
    assert!(!lines.is_empty() && lines.len() < 150, "{} lines", lines.len());
    assert!(lines.iter().all(|l| l["line"].as_str().unwrap().chars().all(|ch| ch == '\u{1}')));
}

#[tokio::test]
async fn log_tails_beyond_the_limit_get_429_until_one_ends() {
    let c = noisy_container();
    let sc = Sidecar::start(&["--max-log-reads=1"]).await;
    let path = format!("/v1/containers/{}/logs?tail=10000", c.id);
    // A client that does not read its (8 MiB) answer keeps its place.
    let unread = sc.get(&path).send().await.unwrap();
    assert_eq!(unread.status(), 200);
    let rid = unread.headers()["x-request-id"].to_str().unwrap().to_owned();
    let r = sc.get(&path).header("x-request-id", "second-tail").send().await.unwrap();
    assert_rate_limited(r, "a tail past DOCKWARD_MAX_LOG_READS").await;
    let rec = sc.audit_records().into_iter().find(|r| r["request_id"] == "second-tail").expect("the 429 is audited");
    assert_eq!(rec["outcome"], "denied");
    assert_ne!(rid, "second-tail");
    // Hanging up gives the place back.
    drop(unread);
    eventually(Duration::from_secs(60), "a log read slot to free up", || async {
        let r = sc.get(&path).send().await.unwrap();
        (r.status() == 200).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_pull_whose_client_does_not_read_finishes_and_is_audited() {
    let registry = Registry::start();
    let (remote, _) = registry.push_test_image();
    let sc = Sidecar::start(&[&registry.allow_flag()]).await;
    let r = sc.post("/v1/images/pull").json(&serde_json::json!({"image": remote})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    // Nothing of the body is read: the pull and its record do not wait for the client.
    let rec = eventually(Duration::from_secs(60), "the pull's outcome record", || {
        let rec = sc.audit_records().into_iter().find(|x| x["request_id"] == rid.as_str() && x["verb"] == "pull");
        std::future::ready(rec)
    })
    .await;
    assert_eq!(rec["outcome"], "ok", "{rec}");
    assert!(docker_ok(&["image", "inspect", &remote]), "the image is local before the client read anything");
    // Progress may have been dropped for the slow reader; the final line is not.
    let text = r.text().await.unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "done", "{text}");
    docker(&["rmi", &remote]);
}
