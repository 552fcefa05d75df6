//! The store's bad days, with the real console: a full disk pauses history
//! with a visible warning while the console keeps working, and history
//! resumes once there is room; a store on a read-only mount is opened
//! read-only (history shown, nothing recorded), never a panic. Both mount a
//! file system of their own (tmpfs, a read-only bind mount): they need root,
//! as the engine's tests do, and fail loudly without it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dockward_frontend::server::store::{Location, Store};
use testkit::console::client::{get, login};
use testkit::console::{Console, Host, Options};
use testkit::sidecar::{Sidecar, SECRET};
use testkit::{eventually, unique, TestContainer};

/// A mount of its own, unmounted on drop.
struct Mount(PathBuf);

impl Mount {
    fn run(args: &[&str]) {
        let out = Command::new(args[0]).args(&args[1..]).output().expect("run mount");
        assert!(
            out.status.success(),
            "{} failed (these tests need root, as the engine's do): {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn web_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_dockward-web"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_pauses_history_with_a_warning_and_the_console_keeps_working() {
    let scope = format!("dockward.full={}", unique("full"));
    let c = TestContainer::run("full", &["--label", &scope], "sleep 600");
    let sidecar = Sidecar::start(&[&format!("--scope-label={scope}")]).await;
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    Mount::run(&["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", disk.to_str().unwrap()]);
    let _mount = Mount(disk.clone());
    let store = disk.join("dockward.db").display().to_string();
    let console = Console::start_with(
        web_bin(),
        &[Host { name: "live", url: &sidecar.base, secret: SECRET }],
        Options { env: &[("DOCKWARD_STORE", &store)], ..Options::default() },
    );
    let base = console.base.clone();
    let viewer = login(&base, "viewer1").await;
    // Fill the disk: the next buckets find no room.
    let filler = disk.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=4k", "count=1000"])
        .arg(format!("of={}", filler.display()))
        .output();
    let page = format!("/history?host=live&container={}&range=1h", c.name);
    let warned = eventually(Duration::from_secs(60), "the full-disk warning on the history page", || async {
        let (status, body) = get(&base, &page, &viewer.cookie).await;
        (status == 200 && body.contains("the disk under the store is full")).then_some(body)
    })
    .await;
    assert!(warned.contains(r#"role="alert""#), "shown as a warning");
    // The console keeps working: the fleet, a new session.
    let (status, fleet) = testkit::console::client::call(&base, Some(&viewer.cookie), "fleet", &[]).await;
    assert_eq!(status, 200, "{fleet}");
    assert!(fleet.to_string().contains(&c.name), "{fleet}");
    login(&base, "admin1").await;
    // Room again: history resumes and the warning goes.
    std::fs::remove_file(&filler).unwrap();
    eventually(Duration::from_secs(60), "history to resume", || async {
        let (_, body) = get(&base, &page, &viewer.cookie).await;
        (!body.contains("the disk under the store is full")).then_some(())
    })
    .await;
    let log = console.log();
    assert!(log.contains("history is paused") && log.contains("history resumes"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_on_a_read_only_mount_is_opened_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let made = dir.path().join("made");
    std::fs::create_dir(&made).unwrap();
    // A store made and closed cleanly, then mounted read-only where the console looks.
    let s = Store::open(&Location::Sqlite(made.join("dockward.db"))).await.unwrap();
    s.revoke_session(&"e".repeat(32), 2_000_000_000).await.unwrap();
    s.close().await;
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    Mount::run(&["mount", "--bind", made.to_str().unwrap(), ro.to_str().unwrap()]);
    let _mount = Mount(ro.clone());
    Mount::run(&["mount", "-o", "remount,ro,bind", ro.to_str().unwrap()]);
    let gone = format!("http://127.0.0.1:{}", testkit::free_port());
    let store = ro.join("dockward.db").display().to_string();
    let console = Console::start_with(
        web_bin(),
        &[Host { name: "local", url: &gone, secret: SECRET }],
        Options { env: &[("DOCKWARD_STORE", &store)], ..Options::default() },
    );
    let viewer = login(&console.base, "viewer1").await;
    let (status, body) = get(&console.base, "/history?host=local&range=1h", &viewer.cookie).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("The history database is read-only"), "{body}");
    let log = console.log();
    assert!(log.contains("opened read-only"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    // A damaged file that cannot be moved aside: a clear start-up error naming it, no panic.
    drop(console);
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join("dockward.db"), b"not a database ".repeat(300)).unwrap();
    let rb = dir.path().join("rb");
    std::fs::create_dir(&rb).unwrap();
    Mount::run(&["mount", "--bind", bad.path().to_str().unwrap(), rb.to_str().unwrap()]);
    let _mount2 = Mount(rb.clone());
    Mount::run(&["mount", "-o", "remount,ro,bind", rb.to_str().unwrap()]);
    let users = tempfile::tempdir().unwrap();
    let out = Command::new(web_bin())
        .env("DOCKWARD_STORE", rb.join("dockward.db"))
        .env("DOCKWARD_USERS_FILE", users.path().join("users.json"))
        .env("DOCKWARD_HOSTS", "")
        .env("DOCKWARD_AGENT_LISTEN", "off")
        .env("DOCKWARD_ENROL_DIR", users.path().join("hosts"))
        .env("DOCKWARD_WEB_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused to start: {err}");
    assert!(err.contains("dockward.db") && err.contains("the store"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
