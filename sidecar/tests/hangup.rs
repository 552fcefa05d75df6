//! A client that hangs up mid-mutation cuts nothing: the verb runs to the
//! end in its own task, and the audit log holds its intent record (written
//! before the engine is asked) and its outcome, whatever the client did.

use std::time::Duration;

use serde_json::Value;
use testkit::sidecar::*;
use testkit::*;

/// The verbs of the records with `request_id`, oldest first.
fn verbs_of(sc: &Sidecar, request_id: &str) -> Vec<(String, String)> {
    let mut recs: Vec<Value> = sc.audit_records().into_iter().filter(|r| r["request_id"] == request_id).collect();
    recs.reverse();
    recs.iter()
        .map(|r| (r["verb"].as_str().unwrap_or("").to_owned(), r["outcome"].as_str().unwrap_or("").to_owned()))
        .collect()
}

/// Sends `path` as a POST with `request_id` and gives up after `patience`:
/// the answer must not have arrived by then (the hang-up is the scenario).
async fn post_and_hang_up(sc: &Sidecar, path: &str, request_id: &str, patience: Duration) {
    let r = sc.post(path).header("x-request-id", request_id).timeout(patience).send().await;
    let e = r.expect_err("the verb answered before the client hung up; nothing was tested");
    assert!(e.is_timeout(), "{e}");
}

#[tokio::test]
async fn a_restart_the_client_abandons_still_finishes_and_is_audited() {
    // PID 1 ignores SIGTERM: the engine waits out the whole stop timeout.
    let c = TestContainer::run("hangup", &[], "sleep 600");
    let before = c.started_at();
    let sc = Sidecar::start(&[]).await;
    let rid = format!("hangup-restart-{}", free_port());
    post_and_hang_up(&sc, &format!("/v1/containers/{}/restart?timeout=2", c.id), &rid, Duration::from_millis(500))
        .await;
    // The intent is on disk before the engine was asked, so by now.
    assert_eq!(verbs_of(&sc, &rid).first().map(|v| v.0.as_str()), Some("restart.start"));
    let verbs = eventually(Duration::from_secs(30), "the restart's outcome record", || {
        let v = verbs_of(&sc, &rid);
        std::future::ready((v.len() >= 2).then_some(v))
    })
    .await;
    assert_eq!(verbs, [("restart.start".into(), "ok".into()), ("restart".into(), "ok".into())]);
    assert_ne!(c.started_at(), before, "the abandoned restart did not happen");
}

#[tokio::test]
async fn a_prune_the_client_abandons_still_finishes_and_is_audited() {
    let scope = unique("hangup-prune");
    let label = format!("dockward.hangup={scope}");
    let stopped: Vec<TestContainer> =
        (0..20).map(|i| TestContainer::run(&format!("hp{i}"), &["--label", &label], "exit 0")).collect();
    for c in &stopped {
        wait_for(Duration::from_secs(30), "the container to exit", || (c.state() == "exited").then_some(()));
    }
    let sc = Sidecar::start(&[&format!("--scope-label={label}")]).await;
    let rid = format!("hangup-prune-{}", free_port());
    post_and_hang_up(&sc, "/v1/prune/containers", &rid, Duration::from_millis(50)).await;
    let verbs = eventually(Duration::from_secs(60), "the prune's outcome record", || {
        let v = verbs_of(&sc, &rid);
        std::future::ready((v.len() >= 2).then_some(v))
    })
    .await;
    assert_eq!(verbs, [("prune.containers.start".into(), "ok".into()), ("prune.containers".into(), "ok".into())]);
    let outcome = sc.audit_records().into_iter().find(|r| r["request_id"] == rid.as_str()).unwrap();
    assert_eq!(outcome["verb"], "prune.containers");
    for c in &stopped {
        assert!(!docker_ok(&["inspect", &c.id]), "{} survived the abandoned prune", c.name);
    }
}
