//! `DOCKWARD_SCOPE_LABEL`: containers without the label are invisible to
//! logs, stats and their history, disk and events; volume prune touches only
//! unused volumes in scope.

use std::time::Duration;

use serde_json::Value;
use testkit::sidecar::*;
use testkit::*;

/// True when an event about container `id` arrives within `within`; every
/// container id seen on the way is added to `seen`.
async fn wait_event(sse: &mut SseReader, id: &str, within: Duration, seen: &mut Vec<String>) -> bool {
    tokio::time::timeout(within, async {
        while let Some(data) = sse.next_named("container", within).await {
            let ev: Value = serde_json::from_str(&data).unwrap();
            let got = ev["id"].as_str().unwrap().to_owned();
            seen.push(got.clone());
            if got == id {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false)
}

#[tokio::test]
async fn out_of_scope_containers_are_invisible_to_logs_history_disk_and_events() {
    let scope = unique("scope");
    let label = format!("dockward.scope={scope}");
    let (vol_in, vol_out) = (unique("dw-scope-in"), unique("dw-scope-out"));
    let inside = TestContainer::run(
        "in-scope",
        &["--label", &label, "-v", &format!("{vol_in}:/data")],
        "echo inside; sleep 600",
    );
    let outside = TestContainer::run("out-of-scope", &["-v", &format!("{vol_out}:/data")], "echo outside; sleep 600");
    let sc = Sidecar::start(&[&format!("--scope-label={label}")]).await;

    for (path, what) in [
        (format!("/v1/containers/{}/logs?tail=10", outside.id), "logs"),
        (format!("/v1/containers/{}/logs?follow=true", outside.id), "log follow"),
        (format!("/v1/stats/history?ref={}", outside.id), "stats history"),
        (format!("/v1/containers/{}", outside.name), "detail"),
    ] {
        let r = sc.get(&path).send().await.unwrap();
        assert_eq!(r.status(), 404, "{what} of an out-of-scope container");
    }
    let page = sc.json(&format!("/v1/containers/{}/logs?tail=10", inside.id)).await;
    assert_eq!(page["id"], inside.id.as_str());
    let history = sc.get(&format!("/v1/stats/history?ref={}", inside.id)).send().await.unwrap();
    assert_eq!(history.status(), 200);
    let stats = eventually(Duration::from_secs(15), "the in-scope container in stats", || async {
        let s = sc.json("/v1/stats").await;
        let text = s.to_string();
        text.contains(&inside.id).then_some(text)
    })
    .await;
    assert!(!stats.contains(&outside.id), "stats show an out-of-scope container");
    let list = sc.json("/v1/containers").await.to_string();
    assert!(list.contains(&inside.id) && !list.contains(&outside.id), "{list}");

    let disk = sc.json("/v1/disk").await;
    let names: Vec<&str> = disk["volumes"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert!(names.contains(&vol_in.as_str()), "{names:?}");
    assert!(!names.contains(&vol_out.as_str()), "disk shows a volume of an out-of-scope container: {names:?}");
    assert!(!disk.to_string().contains(&outside.id));

    // Events: make the stream live with the in-scope container, then restart
    // the other one and then this one again; the engine reports them in that
    // order, so an out-of-scope event forwarded would arrive first.
    let mut sse = SseReader::new(sc.get("/v1/events").send().await.unwrap());
    let mut seen = Vec::new();
    let mut live = false;
    for _ in 0..15 {
        docker(&["restart", "-t", "0", &inside.id]);
        live = wait_event(&mut sse, &inside.id, Duration::from_secs(1), &mut seen).await;
        if live {
            break;
        }
    }
    assert!(live, "the event stream never delivered the in-scope container's events");
    docker(&["restart", "-t", "0", &outside.id]);
    docker(&["restart", "-t", "0", &inside.id]);
    seen.clear();
    assert!(wait_event(&mut sse, &inside.id, Duration::from_secs(15), &mut seen).await);
    assert!(!seen.contains(&outside.id), "an out-of-scope container's event was forwarded: {seen:?}");

    drop((inside, outside));
    docker(&["volume", "rm", &vol_in, &vol_out]);
}

#[tokio::test]
async fn volume_prune_keeps_in_use_and_out_of_scope_volumes() {
    require_docker();
    let scope = unique("vscope");
    let l = format!("dockward.scope={scope}");
    // Created without a name, a volume gets 64 hex digits: anonymous.
    let anon_unused = docker(&["volume", "create", "--label", &l]);
    let anon_used = docker(&["volume", "create", "--label", &l]);
    let (named_unused, named_used) = (unique("dw-named"), unique("dw-named-used"));
    docker(&["volume", "create", "--label", &l, &named_unused]);
    docker(&["volume", "create", "--label", &l, &named_used]);
    let other = format!("dockward.scope={}", unique("elsewhere"));
    let anon_elsewhere = docker(&["volume", "create", "--label", &other]);
    let named_elsewhere = unique("dw-named-elsewhere");
    docker(&["volume", "create", "--label", &other, &named_elsewhere]);
    assert_eq!(anon_unused.len(), 64);
    // A stopped container still uses its volumes.
    let user = TestContainer::run(
        "vol-user",
        &["-v", &format!("{anon_used}:/a"), "-v", &format!("{named_used}:/b")],
        "exit 0",
    );
    wait_for(Duration::from_secs(30), "the container to exit", || (user.state() == "exited").then_some(()));

    let sc = Sidecar::start(&[&format!("--scope-label={l}")]).await;
    let r: Value = sc.post("/v1/prune/volumes").send().await.unwrap().json().await.unwrap();
    assert_eq!(r["removed"], serde_json::json!([anon_unused]), "only the unused anonymous one in scope: {r}");
    let r: Value = sc.post("/v1/prune/volumes?all=true").send().await.unwrap().json().await.unwrap();
    assert_eq!(r["removed"], serde_json::json!([named_unused]), "then the unused named one in scope: {r}");
    for v in [&anon_used, &named_used, &anon_elsewhere, &named_elsewhere] {
        assert!(docker_ok(&["volume", "inspect", v]), "{v} was removed");
    }
    drop(user);
    docker(&["volume", "rm", &anon_used, &named_used, &anon_elsewhere, &named_elsewhere]);
}
