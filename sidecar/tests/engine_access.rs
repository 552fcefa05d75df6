//! When the sidecar cannot use its engine it says why and what to do, in every
//! 503 (so the console's host panel can show it), and started as root with
//! `DOCKWARD_RUN_AS` it works whatever the gid of the Docker socket.
//!
//! Run as root (the test suite is): the sidecar is started as uid 65532 to be
//! refused, and as root to drop.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use testkit::sidecar::*;
use testkit::*;

/// A group no Debian system has: the socket's gid in the "any gid" test.
const ODD_GID: u32 = 4242;

async fn error_of(sc: &Sidecar, path: &str) -> (u16, Value) {
    let r = sc.get(path).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn without_the_sockets_group_every_503_says_why_and_how_to_fix_it() {
    let sc = Sidecar::start_with(&[], Sidecar::as_nobody).await;
    let gid = socket_gid();
    let (status, body) = eventually(Duration::from_secs(10), "a diagnosed 503", || async {
        let (status, body) = error_of(&sc, "/v1/containers").await;
        body["error"]["engine"].is_object().then_some((status, body))
    })
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "docker_unavailable");
    let engine = &body["error"]["engine"];
    assert_eq!(engine["kind"], "permission_denied", "{body}");
    let detail = engine["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("group {gid}")) && detail.contains("uid 65532"), "{detail}");
    let fix = engine["fix"].as_str().unwrap();
    assert!(fix.contains("start the sidecar as root") && fix.contains(&format!("group_add: [\"{gid}\"]")), "{fix}");
    assert!(body["error"]["message"].as_str().unwrap().contains("permission denied"), "{body}");
    // Mutations say the same; the unauthenticated probe says only the kind.
    let r = sc.post("/v1/containers/anything/restart").send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["engine"]["kind"], "permission_denied");
    let h: Value = sc.http.get(sc.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!((&h["status"], &h["engine"]), (&"degraded".into(), &"permission_denied".into()), "{h}");
    assert!(h["stats"]["source"].is_string(), "where stats come from, with no path or detail: {h}");
    assert!(sc.log().contains("the Docker engine cannot be used"), "the log says it too");
}

#[tokio::test]
async fn started_as_root_it_joins_the_sockets_group_whatever_its_gid_and_drops_root() {
    // The engine behind a socket of an unusual group, 0660: only that group opens it.
    let proxy = CountingProxy::start().await;
    std::os::unix::fs::chown(&proxy.socket, Some(0), Some(ODD_GID)).unwrap();
    std::fs::set_permissions(&proxy.socket, std::fs::Permissions::from_mode(0o660)).unwrap();
    let parent = proxy.socket.parent().unwrap();
    std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let host = proxy.docker_host();
    let sc = Sidecar::start_with(&[&host], |cmd, dir| {
        Sidecar::hand_to_nobody(dir);
        cmd.env("DOCKWARD_RUN_AS", "65532:65532");
    })
    .await;
    let list = sc.json("/v1/containers").await;
    assert!(list.is_array(), "{list}");
    assert!(proxy.count("list") >= 1, "the list went through the odd-group socket");
    // What the kernel says of the process: uid and gid 65532 (real, effective, saved, fs),
    // exactly the socket's group and its own, and no capability left.
    let pid = sc.pid();
    assert_eq!(proc_status_field(pid, "Uid").split_whitespace().collect::<Vec<_>>(), ["65532"; 4]);
    assert_eq!(proc_status_field(pid, "Gid").split_whitespace().collect::<Vec<_>>(), ["65532"; 4]);
    let groups = proc_status_field(pid, "Groups");
    let mut groups: Vec<u32> = groups.split_whitespace().map(|g| g.parse().unwrap()).collect();
    groups.sort_unstable();
    assert_eq!(groups, [ODD_GID, NOBODY]);
    assert_eq!(proc_status_field(pid, "CapEff"), "0000000000000000");
    assert_eq!(proc_status_field(pid, "CapPrm"), "0000000000000000");
    assert!(sc.log().contains("dropped root"), "{}", sc.log());
    // Files it made are 65532's, not root's.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(sc.audit_path()).unwrap().uid(), NOBODY);
}

#[test]
fn run_as_root_is_refused_with_a_clear_message() {
    let out = std::process::Command::new(sidecar_bin())
        .env("DOCKWARD_RUN_AS", "0:0")
        .env("DOCKWARD_SECRET", SECRET)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DOCKWARD_RUN_AS") || err.contains("--run-as"), "{err}");
    assert!(err.contains("does not run as root"), "{err}");
}

/// An engine too old to use. Docker before 20.10 cannot be installed here, so
/// this answers `/_ping` and `/version` over a unix socket as such an engine
/// does (Docker 1.12, API 1.24), and nothing else.
async fn old_engine(socket: &Path) {
    use axum::http::Uri;
    let listener = tokio::net::UnixListener::bind(socket).unwrap();
    let app = axum::Router::new().fallback(|uri: Uri| async move {
        let path = uri.path();
        if path.ends_with("/_ping") {
            ([("api-version", "1.24"), ("content-type", "text/plain")], "OK".to_owned())
        } else if path.ends_with("/version") {
            (
                [("api-version", "1.24"), ("content-type", "application/json")],
                r#"{"Version":"1.12.6","ApiVersion":"1.24","Os":"linux","Arch":"amd64"}"#.to_owned(),
            )
        } else {
            ([("api-version", "1.24"), ("content-type", "text/plain")], "not in this fake".to_owned())
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

#[tokio::test]
async fn an_engine_older_than_api_1_41_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("old.sock");
    old_engine(&socket).await;
    let host = format!("--docker-host=unix://{}", socket.display());
    let sc = Sidecar::start(&[&host]).await;
    let body = eventually(Duration::from_secs(10), "the too-old diagnosis", || async {
        let (_, body) = error_of(&sc, "/v1/containers").await;
        (body["error"]["engine"]["kind"] == "api_too_old").then_some(body)
    })
    .await;
    let detail = body["error"]["engine"]["detail"].as_str().unwrap();
    assert!(detail.contains("API 1.24 (Docker 1.12.6)") && detail.contains("1.41"), "{detail}");
    assert!(body["error"]["engine"]["fix"].as_str().unwrap().contains("upgrade"), "{body}");
    let r = sc.http.get(sc.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 503, "an engine too old is not healthy");
}

/// The diagnosis is made from the client's own error each probe, not from the
/// previous diagnosis: it does not grow, and it names the real cause.
#[tokio::test]
async fn a_tcp_engine_that_refuses_is_diagnosed_from_the_real_error_and_stays_bounded() {
    let host = format!("--docker-host=tcp://127.0.0.1:{}", free_port());
    let sc = Sidecar::start(&[&host]).await;
    let detail = |body: Value| body["error"]["engine"]["detail"].as_str().map(str::to_owned);
    let first = eventually(Duration::from_secs(10), "a diagnosis", || async {
        detail(error_of(&sc, "/v1/containers").await.1)
    })
    .await;
    // Several probes later (one a second), the same words.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = detail(error_of(&sc, "/v1/containers").await.1).unwrap();
    assert_eq!(later, first, "the diagnosis changed or grew");
    assert_eq!(later.matches("did not answer").count(), 1, "{later}");
    assert!(!later.contains("unreachable"), "made from our own 503, not the client's error: {later}");
    assert!(later.len() <= 520, "{}", later.len());
}
