//! Several hosts for real: a console reading a live sidecar, a second real
//! sidecar this test stops and then kills, an address where nothing listens,
//! and a listener that accepts connections and never answers. One host down
//! or stale never holds up the others, and each reads as it should on the
//! overview. A second console, polling once an hour, shows a new container
//! only because the sidecar's events made it refresh at once. And the
//! `healthcheck` subcommands of both binaries, against the live processes
//! and the dead ones.
//!
//! One environment, one trial per scenario (`testkit::scenarios`).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, ExitCode, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use testkit::console::client::{call, http, login, User};
use testkit::console::{Console, Host, Options};
use testkit::scenarios::{scenario, Scenario};
use testkit::sidecar::{sidecar_bin, Sidecar, SseReader, SECRET};
use testkit::{eventually, free_port, unique, TestContainer};

/// The console's own timeout for a sidecar's answer (`server/sidecar.rs`):
/// a stalled host's first poll ends no sooner.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts every connection and keeps it open, reading nothing and answering nothing.
struct Stall {
    addr: String,
}

impl Stall {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming().flatten() {
                held.push(conn);
            }
        });
        Self { addr }
    }
}

struct Env {
    /// Reads live, doomed, gone and stall; polls every second, stale after 3 s.
    console: Console,
    /// Reads live only; polls once an hour, never stale within the test.
    events_console: Console,
    live: Sidecar,
    /// Stopped (SIGSTOP), then killed, by the scenarios.
    doomed: Mutex<Option<Sidecar>>,
    gone: String,
    stall: Stall,
    scope: String,
    /// Running, in scope: what the live host shows.
    web: TestContainer,
    viewer: User,
    events_viewer: User,
}

/// How many event streams the sidecar has answered (its metrics).
async fn event_streams(sidecar: &Sidecar) -> u64 {
    let text = sidecar.get("/metrics").send().await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("dockward_requests_total{") && l.contains("verb=\"events\"") && l.contains("\"200\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

async fn start() -> Env {
    let scope = format!("dockward.fleet={}", unique("fleet"));
    let web = TestContainer::run("fleet-web", &["--label", &scope], "sleep 600");
    let scope_flag = format!("--scope-label={scope}");
    let live = Sidecar::start(&[&scope_flag]).await;
    let doomed = Sidecar::start(&[&scope_flag]).await;
    let gone = format!("http://127.0.0.1:{}", free_port());
    let stall = Stall::start();
    let bin = Path::new(env!("CARGO_BIN_EXE_dockward-web"));
    // First the console that polls once an hour, and only once it follows the
    // live sidecar's events (so a container started later cannot be missed).
    let events_console = Console::start_with(
        bin,
        &[Host { name: "live", url: &live.base, secret: SECRET }],
        Options { env: &[("DOCKWARD_POLL_INTERVAL", "3600"), ("DOCKWARD_STALE_AFTER", "3600")], ..Options::default() },
    );
    eventually(Duration::from_secs(30), "the hourly console to follow the live sidecar's events", || async {
        (event_streams(&live).await >= 1).then_some(())
    })
    .await;
    let stall_url = format!("http://{}", stall.addr);
    let console = Console::start_with(
        bin,
        &[
            Host { name: "live", url: &live.base, secret: SECRET },
            Host { name: "doomed", url: &doomed.base, secret: SECRET },
            Host { name: "gone", url: &gone, secret: SECRET },
            Host { name: "stall", url: &stall_url, secret: SECRET },
        ],
        Options { env: &[("DOCKWARD_STALE_AFTER", "3")], ..Options::default() },
    );
    let viewer = login(&console.base, "viewer1").await;
    let events_viewer = login(&events_console.base, "viewer1").await;
    Env {
        console,
        events_console,
        live,
        doomed: Mutex::new(Some(doomed)),
        gone,
        stall,
        scope,
        web,
        viewer,
        events_viewer,
    }
}

/// Issue #13, first slices: a poll that changes nothing a page shows sends
/// the live clients nothing (an idle fleet costs them keep-alives only);
/// frames carry ids, and a reconnect with the current one gets no copy; a
/// change still reaches them at once.
async fn an_idle_fleet_sends_no_frames_and_a_change_one(env: Arc<Env>) {
    let bin = Path::new(env!("CARGO_BIN_EXE_dockward-web"));
    // Polls every second: without the check, ten frames in ten seconds.
    let console = Console::start_with(
        bin,
        &[Host { name: "live", url: &env.live.base, secret: SECRET }],
        Options { env: &[("DOCKWARD_POLL_INTERVAL", "1")], ..Options::default() },
    );
    let viewer = login(&console.base, "viewer1").await;
    let live = http()
        .get(format!("{}/api/live", console.base))
        .header("cookie", format!("dockward_session={}", viewer.cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let mut sse = SseReader::new(live);
    let first = sse.next_named("fleet", Duration::from_secs(10)).await.expect("the first frame");
    assert!(first.contains(&env.web.name), "{first}");
    let window = Duration::from_secs(10);
    let until = std::time::Instant::now() + window;
    let mut frames = 0;
    while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
        match sse.next_named("fleet", left).await {
            Some(_) => frames += 1,
            None => break,
        }
    }
    // A new 30 s sparkline bucket or a minute more in a status text may each send one.
    assert!(frames <= 3, "{frames} frames in {window:?} of an idle fleet polled every second");
    // Event ids: a browser reconnecting with the version it has gets no copy
    // of it (only a newer one, if the fleet changed meanwhile); one with an
    // unknown or old id (another console process) gets the snapshot; a
    // malformed id is a 400 with a JSON error.
    let have = sse.last_id.clone().expect("frames carry an id");
    let reconnect = |id: &str| {
        http()
            .get(format!("{}/api/live", console.base))
            .header("cookie", format!("dockward_session={}", viewer.cookie))
            .header("last-event-id", id.to_owned())
            .send()
    };
    let mut again = SseReader::new(reconnect(&have).await.unwrap());
    if again.next_named("fleet", Duration::from_secs(3)).await.is_some() {
        assert_ne!(again.last_id.as_deref(), Some(have.as_str()), "a copy of the version it has");
    }
    let mut old = SseReader::new(reconnect("00000000-1").await.unwrap());
    let snapshot = old.next_named("fleet", Duration::from_secs(5)).await.expect("a snapshot for an old id");
    assert!(snapshot.contains(&env.web.name), "{snapshot}");
    let r = reconnect("not an id").await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request", "{body}");
    let new = TestContainer::run("fleet-idle-new", &["--label", &env.scope], "sleep 600");
    let changed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let f = sse.next_named("fleet", Duration::from_secs(10)).await.expect("a frame after the change");
            if f.contains(&new.name) {
                return f;
            }
        }
    })
    .await
    .expect("a frame with the new container within 10 s");
    assert!(changed.contains(&env.web.name), "the frame is the whole fleet");
}

async fn teardown(env: Env, all_passed: bool) {
    if !all_passed {
        eprintln!("--- console log ---\n{}", env.console.log());
        eprintln!("--- hourly console log ---\n{}", env.events_console.log());
    }
    drop(env);
}

async fn fleet(base: &str, user: &User) -> Value {
    let (status, body) = call(base, Some(&user.cookie), "fleet", &[]).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn host<'a>(fleet: &'a Value, name: &str) -> &'a Value {
    fleet["hosts"].as_array().unwrap().iter().find(|h| h["name"] == name).unwrap_or_else(|| panic!("no host {name}"))
}

fn state(fleet: &Value, name: &str) -> String {
    host(fleet, name)["status"]["state"].as_str().unwrap().to_owned()
}

fn shows(fleet: &Value, name: &str, container: &str) -> bool {
    host(fleet, name)["containers"].as_array().unwrap().iter().any(|c| c["name"] == container)
}

/// The overview as the server renders it: each host's chip, (class, words).
async fn chips(env: &Env) -> Vec<(String, String, String)> {
    let r = http()
        .get(format!("{}/", env.console.base))
        .header("cookie", format!("dockward_session={}", env.viewer.cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let attr = |tag: &str, name: &str| -> String {
        let key = format!("{name}=\"");
        tag.split(&key).nth(1).and_then(|rest| rest.split('"').next()).unwrap_or_default().to_owned()
    };
    html.split('<')
        .filter(|tag| tag.starts_with("span") && tag.contains("data-host="))
        .map(|tag| {
            let tag = tag.split('>').next().unwrap();
            (attr(tag, "data-host"), attr(tag, "class"), attr(tag, "title"))
        })
        .collect()
}

async fn chip(env: &Env, name: &str) -> (String, String) {
    let all = chips(env).await;
    let (_, class, words) =
        all.iter().find(|c| c.0 == name).unwrap_or_else(|| panic!("no chip for {name} on the overview: {all:?}"));
    (class.clone(), words.clone())
}

/// The live host's containers show while the stalled host's first poll is
/// still waiting (the console gives it 30 s): the stall held nothing up.
/// The dead address reads down with its error, the stall reads stale.
async fn a_stalled_or_dead_host_never_holds_up_the_live_one(env: Arc<Env>) {
    let f = eventually(CONSOLE_TIMEOUT * 2, "the live host's containers on the console", || async {
        let f = fleet(&env.console.base, &env.viewer).await;
        (state(&f, "live") == "connected" && shows(&f, "live", &env.web.name)).then_some(f)
    })
    .await;
    let stall = &host(&f, "stall")["status"];
    assert_eq!(
        (stall["state"].as_str(), stall["age_s"].as_u64()),
        (Some("stale"), Some(0)),
        "the stalled host's first poll already ended, so this proves nothing: {stall}"
    );
    let gone = eventually(Duration::from_secs(10), "the dead address to read down", || async {
        let f = fleet(&env.console.base, &env.viewer).await;
        (state(&f, "gone") == "down").then(|| host(&f, "gone")["status"].clone())
    })
    .await;
    assert!(!gone["error"].as_str().unwrap().is_empty(), "{gone}");
    assert_eq!(chip(&env, "live").await.0, "chip chip-ok");
    let (class, words) = chip(&env, "gone").await;
    assert_eq!(class, "chip chip-down");
    assert!(words.starts_with("down · "), "{words}");
    let (class, words) = chip(&env, "stall").await;
    // Stale until its first poll times out, down after.
    assert!(class == "chip chip-stale" || class == "chip chip-down", "{class}: {words}");
}

/// Once the console's own timeout passes, the stalled host reads down; the
/// live one stayed connected throughout.
async fn a_stalled_host_reads_down_after_the_console_timeout(env: Arc<Env>) {
    let status = eventually(CONSOLE_TIMEOUT * 2, "the stalled host to read down", || async {
        let f = fleet(&env.console.base, &env.viewer).await;
        assert_eq!(state(&f, "live"), "connected", "the live host suffered: {f}");
        (state(&f, "stall") == "down").then(|| host(&f, "stall")["status"].clone())
    })
    .await;
    assert!(!status["error"].as_str().unwrap().is_empty(), "{status}");
    let (class, words) = chip(&env, "stall").await;
    assert_eq!(class, "chip chip-down", "{words}");
}

/// A real sidecar stopped mid-run (SIGSTOP: its port still accepts, nothing
/// answers) reads stale once its data is older than the stale limit; killed,
/// it reads down. The live host stays connected.
async fn a_stopped_sidecar_reads_stale_then_down_once_killed(env: Arc<Env>) {
    eventually(Duration::from_secs(20), "the doomed sidecar to read connected", || async {
        let f = fleet(&env.console.base, &env.viewer).await;
        (state(&f, "doomed") == "connected" && shows(&f, "doomed", &env.web.name)).then_some(())
    })
    .await;
    env.doomed.lock().unwrap().as_ref().unwrap().signal("STOP");
    let stale = eventually(CONSOLE_TIMEOUT, "the stopped sidecar to read stale", || async {
        let f = fleet(&env.console.base, &env.viewer).await;
        assert_eq!(state(&f, "live"), "connected", "the live host suffered: {f}");
        (state(&f, "doomed") == "stale").then_some(f)
    })
    .await;
    let age = host(&stale, "doomed")["status"]["age_s"].as_u64();
    assert!(age.is_some_and(|a| a >= 3), "{stale}");
    assert!(shows(&stale, "doomed", &env.web.name), "a stale host keeps its last data: {stale}");
    let (class, words) = chip(&env, "doomed").await;
    assert_eq!(class, "chip chip-stale", "{words}");
    assert!(words.starts_with("stale · ") && words.ends_with("s old"), "{words}");
    // Killed: its connections close, the waiting poll fails at once.
    let doomed = env.doomed.lock().unwrap().take().unwrap();
    doomed.signal("KILL");
    drop(doomed);
    eventually(CONSOLE_TIMEOUT, "the killed sidecar to read down", || async {
        let f = fleet(&env.console.base, &env.viewer).await;
        (state(&f, "doomed") == "down").then_some(())
    })
    .await;
    let (class, words) = chip(&env, "doomed").await;
    assert_eq!(class, "chip chip-down", "{words}");
    let f = fleet(&env.console.base, &env.viewer).await;
    assert_eq!(state(&f, "live"), "connected");
}

/// The hourly console shows a container started after its one poll: only the
/// sidecar's event (which wakes the poller) can have brought it.
async fn an_event_refreshes_the_fleet_at_once(env: Arc<Env>) {
    let r = http()
        .get(format!("{}/api/live", env.events_console.base))
        .header("cookie", format!("dockward_session={}", env.events_viewer.cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut live = SseReader::new(r);
    // Its one poll, made at start, shows what ran then.
    let first = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let frame = live.next_named("fleet", Duration::from_secs(20)).await.expect("a fleet frame");
            let f: Value = serde_json::from_str(&frame).unwrap();
            if shows(&f, "live", &env.web.name) {
                return f;
            }
        }
    })
    .await
    .expect("the hourly console's first poll to show the running container");
    let name = unique("fleet-new");
    assert!(!shows(&first, "live", &name));
    let started = TestContainer::run(&name, &["--label", &env.scope], "sleep 600");
    // Well within the hour between polls.
    let seen = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(frame) = live.next_named("fleet", Duration::from_secs(60)).await {
            let f: Value = serde_json::from_str(&frame).unwrap();
            if shows(&f, "live", &started.name) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(seen, "the new container never reached the hourly console");
}

fn run(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin).args(args).env_clear().output().unwrap()
}

fn assert_unhealthy(out: &Output, addr: &str, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what}: the healthcheck passed");
    assert!(stderr.starts_with("unhealthy: "), "{what}: {stderr}");
    assert!(
        stderr.contains(addr) || stderr.contains("HTTP/1.1"),
        "{what}: the message names neither the address nor the answer: {stderr}"
    );
}

/// `dockward-web healthcheck` and `dockward-sidecar healthcheck` (what the
/// compose files run): exit 0 against the live process; against nothing or
/// a port that never answers, non-zero with one line saying why.
async fn the_healthcheck_subcommands_tell_live_from_dead(env: Arc<Env>) {
    let web = Path::new(env!("CARGO_BIN_EXE_dockward-web"));
    let sidecar = sidecar_bin();
    let live_sidecar = env.live.base.trim_start_matches("http://");
    let nothing = format!("127.0.0.1:{}", free_port());
    for (bin, live) in [(web, env.console.addr()), (sidecar.as_path(), live_sidecar)] {
        let what = bin.file_name().unwrap().to_string_lossy().into_owned();
        let out = run(bin, &["healthcheck", "--addr", live]);
        assert!(out.status.success(), "{what} against {live}: {}", String::from_utf8_lossy(&out.stderr));
        let out = run(bin, &["healthcheck", "--addr", &nothing]);
        assert_unhealthy(&out, &nothing, &format!("{what} against nothing"));
        let out = run(bin, &["healthcheck", "--addr", &env.stall.addr]);
        assert_unhealthy(&out, &env.stall.addr, &format!("{what} against a port that never answers"));
    }
    // The dead address the console was given, for good measure.
    let gone = env.gone.trim_start_matches("http://");
    assert_unhealthy(&run(web, &["healthcheck", "--addr", gone]), gone, "dockward-web against the gone host");
}

fn main() -> ExitCode {
    const STALL: &str = "a_stalled_or_dead_host_never_holds_up_the_live_one";
    let scenarios: Vec<Scenario<Env>> = vec![
        // First: it needs the stalled host's first poll still waiting.
        scenario(STALL, a_stalled_or_dead_host_never_holds_up_the_live_one),
        scenario("an_idle_fleet_sends_no_frames_and_a_change_one", an_idle_fleet_sends_no_frames_and_a_change_one),
        scenario("an_event_refreshes_the_fleet_at_once", an_event_refreshes_the_fleet_at_once),
        scenario("the_healthcheck_subcommands_tell_live_from_dead", the_healthcheck_subcommands_tell_live_from_dead),
        scenario(
            "a_stopped_sidecar_reads_stale_then_down_once_killed",
            a_stopped_sidecar_reads_stale_then_down_once_killed,
        ),
        scenario(
            "a_stalled_host_reads_down_after_the_console_timeout",
            a_stalled_host_reads_down_after_the_console_timeout,
        ),
    ];
    testkit::scenarios::run(start, scenarios, teardown)
}
