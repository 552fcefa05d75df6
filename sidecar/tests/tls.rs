//! HTTPS, the sidecar's default, against the real engine: a pinned client
//! gets answers; plain HTTP on the TLS port gets a readable refusal; a client
//! pinning another certificate never gets to send its request; renewal with
//! two pins at once; the identity made at set-up and printed by the CLI; bad
//! identity files stop the sidecar with a message.

use std::process::Command;
use std::time::Duration;

use testkit::eventually;
use testkit::sidecar::{pinned_client, sidecar_bin, Sidecar, SECRET};

fn cli(sc: &Sidecar, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(sidecar_bin()).args(args).args(sc.transport_args()).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A fresh client (so a fresh handshake) pinning `pins`, asking for the container list.
async fn list_with(sc: &Sidecar, pins: &[&str]) -> Result<u16, String> {
    pinned_client(pins)
        .get(sc.url("/v1/containers"))
        .bearer_auth(SECRET)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("{e:?}"))
}

#[tokio::test]
async fn pinned_https_works_and_nothing_else_does() {
    let sc = Sidecar::start_https(&[]).await;
    assert!(sc.base.starts_with("https://"), "{}", sc.base);
    let fp = sc.fingerprint.clone().unwrap();
    assert_eq!(cli(&sc, &["tls", "fingerprint"]).1.trim(), fp, "the CLI prints the fingerprint served");
    assert_eq!(list_with(&sc, &[&fp]).await, Ok(200));

    // Plain HTTP to the TLS port: a 400 that says what to do, in JSON.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/v1/containers", sc.addr()))
        .bearer_auth(SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 400);
    let body: serde_json::Value = plain.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    assert!(body["error"]["message"].as_str().unwrap().contains("HTTPS only"), "{body}");

    // Another pin: the handshake fails, the request never reaches the sidecar.
    let before = sc.audit_records().len();
    let other = "sha256:".to_owned() + &"ab".repeat(32);
    let refused = list_with(&sc, &[&other]).await;
    assert!(refused.is_err(), "{refused:?}");
    let restart = pinned_client(&[&other])
        .post(sc.url("/v1/containers/nothing-here/restart"))
        .bearer_auth(SECRET)
        .header("x-dockward-actor", "mallory")
        .send()
        .await;
    assert!(restart.is_err(), "{restart:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sc.audit_records().len(), before, "a refused handshake reached no verb: {:?}", sc.audit_records());
    assert!(sc.log().contains("TLS handshake failed"), "the sidecar logs the refused handshake");
}

#[tokio::test]
async fn renewal_accepts_old_and_new_pins_until_the_old_is_retired() {
    let sc = Sidecar::start_https(&[]).await;
    let old = sc.fingerprint.clone().unwrap();
    let (code, next, err) = cli(&sc, &["tls", "renew"]);
    assert_eq!(code, Some(0), "{err}");
    let next = next.trim().to_owned();
    assert!(next.starts_with("sha256:") && next != old, "{next}");
    assert!(err.contains("tls activate"), "the CLI says what comes next: {err}");
    // Renewing again keeps the identity that waits.
    assert_eq!(cli(&sc, &["tls", "renew"]).1.trim(), next);
    // Until activated, the old certificate is served: both pins, or the old alone, work.
    assert_eq!(list_with(&sc, &[&old, &next]).await, Ok(200));
    assert!(list_with(&sc, &[&next]).await.is_err(), "the next identity is not served yet");

    let (code, activated, err) = cli(&sc, &["tls", "activate"]);
    assert_eq!((code, activated.trim()), (Some(0), next.as_str()), "{err}");
    // The running sidecar switches within seconds, without a restart.
    eventually(Duration::from_secs(15), "the sidecar to serve the renewed identity", || async {
        list_with(&sc, &[&next]).await.ok()
    })
    .await;
    assert_eq!(list_with(&sc, &[&old, &next]).await, Ok(200), "both pins during the overlap");
    assert!(list_with(&sc, &[&old]).await.is_err(), "the old identity is retired");
    assert!(sc.log().contains("serving a new TLS identity"), "{}", sc.log());
    // Nothing more to activate: said, with a non-zero exit.
    let (code, _, err) = cli(&sc, &["tls", "activate"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no renewal waiting"), "{err}");
}

#[test]
fn secret_init_makes_the_identity_and_the_pin_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("local");
    let tls = [
        format!("--tls-cert-file={}", dir.path().join("key/tls.crt").display()),
        format!("--tls-key-file={}", dir.path().join("key/tls.key").display()),
    ];
    let init = || Command::new(sidecar_bin()).args(["secret", "init"]).arg(&secret).args(&tls).output().unwrap();
    let out = init();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pin = std::fs::read_to_string(dir.path().join("local.pin")).unwrap();
    let fp = Command::new(sidecar_bin()).args(["tls", "fingerprint"]).args(&tls).output().unwrap();
    assert_eq!(pin.trim(), String::from_utf8_lossy(&fp.stdout).trim());
    assert!(pin.trim().starts_with("sha256:"), "{pin}");
    // Again: nothing changes.
    let out = init();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("kept the TLS identity"));
    assert_eq!(std::fs::read_to_string(dir.path().join("local.pin")).unwrap(), pin);
    // A pin file that does not name the identity is left alone, with a warning.
    std::fs::write(dir.path().join("local.pin"), format!("sha256:{}\n", "00".repeat(32))).unwrap();
    let err = String::from_utf8_lossy(&init().stderr).into_owned();
    assert!(err.contains("does not pin it"), "{err}");
}

#[test]
fn broken_identity_files_stop_the_sidecar_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let serve = |what: &str| {
        let out = Command::new(sidecar_bin())
            .env("DOCKWARD_SECRET", SECRET)
            .env("DOCKWARD_LISTEN", "127.0.0.1:0")
            .env("DOCKWARD_AUDIT_LOG", dir.path().join("audit.jsonl"))
            .env("DOCKWARD_AUDIT_KEY_FILE", dir.path().join("audit.key"))
            .env("DOCKWARD_TLS_CERT_FILE", &cert)
            .env("DOCKWARD_TLS_KEY_FILE", &key)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{what}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // A good identity, then its certificate garbled.
    let made = Command::new(sidecar_bin())
        .args(["tls", "fingerprint"])
        .env("DOCKWARD_TLS_CERT_FILE", &cert)
        .env("DOCKWARD_TLS_KEY_FILE", &key)
        .output()
        .unwrap();
    assert!(made.status.success());
    std::fs::write(&cert, "this is not a certificate\n").unwrap();
    let err = serve("a garbled certificate");
    assert!(err.contains("TLS certificate") && err.contains("tls.crt"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    std::fs::remove_file(&cert).unwrap();
    let err = serve("a key without its certificate");
    assert!(err.contains("exists but") && err.contains("tls.crt"), "{err}");
    let out = Command::new(sidecar_bin())
        .args(["tls", "fingerprint"])
        .env("DOCKWARD_TLS_CERT_FILE", &cert)
        .env("DOCKWARD_TLS_KEY_FILE", &key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists but"));
}

#[test]
fn tls_pin_writes_checked_fingerprints_and_refuses_bad_ones() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("db1.pin");
    let pin = |input: &str| {
        let mut child = Command::new(sidecar_bin())
            .args(["tls", "pin"])
            .arg(&file)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let a = format!("sha256:{}", "ab".repeat(32));
    let openssl = vec!["CD"; 32].join(":");
    assert_eq!(pin(&format!("{a}\n{openssl}\n")).0, Some(0));
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(written, format!("{a}\nsha256:{}\n", "cd".repeat(32)), "normalised");
    for (bad, says) in [("sha256:12\n", "line 1"), (&*format!("{a}\nmd5:00\n"), "line 2"), ("\n", "no fingerprint")] {
        let (code, err) = pin(bad);
        assert_eq!(code, Some(2), "{bad:?}: {err}");
        assert!(err.contains(says), "{bad:?}: {err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), written, "a refused input changes nothing");
    }
}

#[tokio::test]
async fn revocation_takes_effect_on_the_next_request() {
    let sc = Sidecar::start_https(&[]).await;
    assert_eq!(sc.get("/v1/containers").send().await.unwrap().status(), 200);
    let r = sc.post("/v1/revoke").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let report: serde_json::Value = r.json().await.unwrap();
    assert_eq!(report["keys_forgotten"], 1, "{report}");
    // The very next request with the same secret: refused.
    let r = sc.get("/v1/containers").send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Audited before and after, naming who revoked it.
    let verbs: Vec<String> = sc.audit_records().iter().map(|r| r["verb"].as_str().unwrap_or("").to_owned()).collect();
    let (start, done) =
        (verbs.iter().position(|v| v == "host.revoke.start"), verbs.iter().position(|v| v == "host.revoke"));
    assert!(start.is_some() && done.is_some() && done < start, "newest first: {verbs:?}");
    let rec = &sc.audit_records()[done.unwrap()];
    assert_eq!(rec["actor"], "tester", "{rec}");
    // Kept for good: the digest is on disk beside the audit log, not the secret.
    let revoked = std::fs::read_to_string(sc.dir.path().join("revoked-keys")).unwrap();
    assert_eq!(revoked.lines().count(), 1);
    assert!(!revoked.contains(testkit::sidecar::SECRET));
    // A secret file rewritten with the same secret does not bring it back…
    std::fs::write(sc.dir.path().join("secret"), format!("{SECRET}\n\n")).unwrap();
    tokio::time::sleep(Duration::from_millis(5500)).await;
    assert_eq!(sc.get("/v1/containers").send().await.unwrap().status(), 401);
    // …a new one (a new enrolment) does.
    let fresh = "a-fresh-secret-0123456789abcdef0123456789abcdef";
    std::fs::write(sc.dir.path().join("secret"), format!("{fresh}\n")).unwrap();
    eventually(Duration::from_secs(15), "the new secret to be accepted", || async {
        let r = sc.http.get(sc.url("/v1/containers")).bearer_auth(fresh).send().await.unwrap();
        (r.status() == 200).then_some(())
    })
    .await;
}
