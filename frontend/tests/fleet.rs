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

use dockward_frontend::model::Fleet;
use serde_json::Value;
use shared::ContainerState;
use testkit::console::client::{call, http, login, User};
use testkit::console::{Console, Host, Options};
use testkit::scenarios::{scenario, Scenario};
use testkit::sidecar::{sidecar_bin, Sidecar, SseReader, SECRET};
use testkit::{docker, eventually, free_port, unique, TestContainer};

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

/// A live client's copy of the fleet, following the stream as a browser does.
struct Follower {
    sse: SseReader,
    fleet: Fleet,
    /// Bytes of `delta` data read so far.
    delta_bytes: usize,
    /// Events read so far, by name.
    events: Vec<String>,
}

impl Follower {
    async fn open(base: &str, cookie: &str, query: &str, last_id: Option<&str>) -> reqwest::Response {
        let mut req =
            http().get(format!("{base}/api/live{query}")).header("cookie", format!("dockward_session={cookie}"));
        if let Some(id) = last_id {
            req = req.header("last-event-id", id);
        }
        req.send().await.unwrap()
    }

    async fn connect(base: &str, cookie: &str, query: &str, last_id: Option<&str>) -> Self {
        let r = Self::open(base, cookie, query, last_id).await;
        assert_eq!(r.status(), 200);
        Self { sse: SseReader::new(r), fleet: Fleet::default(), delta_bytes: 0, events: Vec::new() }
    }

    /// Reads and applies events until `done` holds of the copy; false after `timeout`.
    async fn until(&mut self, timeout: Duration, done: impl Fn(&Fleet) -> bool) -> bool {
        tokio::time::timeout(timeout, async {
            while !done(&self.fleet) {
                let Some((event, data)) = self.sse.next().await else { return false };
                self.fleet.follow(&event, &data).unwrap_or_else(|e| panic!("{event}: {e}"));
                if event == "delta" {
                    self.delta_bytes += data.len();
                }
                self.events.push(event);
            }
            true
        })
        .await
        .unwrap_or(false)
    }

    /// Reads whatever arrives for `window`.
    async fn idle(&mut self, window: Duration) {
        self.until(window, |_| false).await;
    }
}

fn container_state(f: &Fleet, host: &str, name: &str) -> Option<ContainerState> {
    f.hosts.iter().find(|h| h.name == host)?.containers.iter().find(|c| c.name == name).map(|c| c.state)
}

/// How many stats requests a sidecar has answered (any status).
async fn stats_requests(sidecar: &Sidecar) -> u64 {
    let text = sidecar.get("/metrics").send().await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("dockward_requests_total{") && l.contains("verb=\"stats\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Issue #13: the live stream sends a snapshot, then only what changed.
/// An idle fleet costs its clients (almost) nothing; a new container is one
/// small delta, not the fleet; a killed one reaches them as exited. A client
/// back with its last event id gets exactly what it missed; an unknown id a
/// resync; bad ids and scopes a 400 with a JSON error. Stats are asked for
/// only while a live page shows them. A container's page gets that container.
async fn the_live_stream_sends_what_changed_and_resumes_without_a_gap(env: Arc<Env>) {
    let bin = Path::new(env!("CARGO_BIN_EXE_dockward-web"));
    // A sidecar of its own, so its stats requests are this console's alone.
    let scope_flag = format!("--scope-label={}", env.scope);
    let sidecar = Sidecar::start(&[&scope_flag]).await;
    let console = Console::start_with(
        bin,
        &[Host { name: "live", url: &sidecar.base, secret: SECRET }],
        Options { env: &[("DOCKWARD_POLL_INTERVAL", "1")], ..Options::default() },
    );
    let viewer = login(&console.base, "viewer1").await;
    let (base, cookie) = (console.base.as_str(), viewer.cookie.as_str());
    let web = env.web.name.clone();

    // No page open: no stats asked for (a heartbeat per poll instead).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = stats_requests(&sidecar).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(stats_requests(&sidecar).await, before, "stats asked for with no page open");

    let mut live = Follower::connect(base, cookie, "", None).await;
    assert!(live.until(Duration::from_secs(10), |f| container_state(f, "live", &web).is_some()).await);
    assert_eq!(live.events.first().map(String::as_str), Some("snapshot"));
    // Idle for 10 s, polled every second: at most a sparkline bucket's tick.
    live.delta_bytes = 0;
    let events_before = live.events.len();
    live.idle(Duration::from_secs(10)).await;
    let deltas = live.events.len() - events_before;
    assert!(deltas <= 2 && live.delta_bytes < 4_096, "{deltas} deltas, {} bytes from an idle fleet", live.delta_bytes);
    // The open overview asks for stats (a 304 when the round is the same).
    assert!(stats_requests(&sidecar).await >= before + 5, "no stats asked for while the overview is open");

    // Reconnecting with the current id: no copy.
    let have = live.sse.last_id.clone().expect("events carry an id");
    let mut again = Follower::connect(base, cookie, "", Some(&have)).await;
    again.idle(Duration::from_secs(2)).await;
    assert!(again.events.iter().all(|e| e == "delta"), "{:?}", again.events);
    // An id of another console process: a resync.
    let mut other = Follower::connect(base, cookie, "", Some("00000000-1")).await;
    assert!(other.until(Duration::from_secs(5), |f| container_state(f, "live", &web).is_some()).await);
    assert_eq!(other.events, ["resync"]);
    // Bad input: a 400 with a JSON error, each.
    for (query, id) in [
        ("", Some("not an id")),
        ("?scope=everything", None),
        ("?scope=container&host=live", None),
        ("?scope=container&host=nowhere&id=web", None),
        ("?scope=overview&host=live", None),
        ("?scope=network&open=app:shop", None),
        ("?scope=overview&open=shop", None),
        ("?scope=overview&filter=%07", None),
        ("?verbose=1", None),
    ] {
        let r = Follower::open(base, cookie, query, id).await;
        assert_eq!(r.status(), 400, "{query} {id:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bad_request", "{query}: {body}");
    }

    // A container page gets that container only.
    let mut page = Follower::connect(base, cookie, &format!("?scope=container&host=live&id={web}"), None).await;
    assert!(page.until(Duration::from_secs(10), |f| container_state(f, "live", &web).is_some()).await);
    assert_eq!(page.fleet.hosts[0].containers.len(), 1);

    // A new container: one small delta, not the fleet.
    let last = live.sse.last_id.clone().expect("an id");
    let new = TestContainer::run("fleet-delta-new", &["--label", &env.scope], "sleep 600");
    live.delta_bytes = 0;
    assert!(live.until(Duration::from_secs(10), |f| container_state(f, "live", &new.name).is_some()).await);
    assert!(live.events.iter().all(|e| e == "delta" || e == "snapshot"), "{:?}", live.events);
    assert!(live.delta_bytes < 8_192, "{} bytes for one new container", live.delta_bytes);
    page.idle(Duration::from_secs(2)).await;
    assert_eq!(page.fleet.hosts[0].containers.len(), 1, "another container is not this page's");
    // Killed: exited in the copy.
    docker(&["kill", &new.id]);
    assert!(
        live.until(Duration::from_secs(10), |f| container_state(f, "live", &new.name) == Some(ContainerState::Exited))
            .await,
        "the killed container never showed as exited"
    );
    // Back with the id from before the new container: exactly the deltas missed.
    let mut back = Follower::connect(base, cookie, "", Some(&last)).await;
    back.fleet = other.fleet.clone();
    assert!(
        back.until(Duration::from_secs(10), |f| container_state(f, "live", &new.name) == Some(ContainerState::Exited))
            .await
    );
    assert!(back.events.iter().all(|e| e == "delta"), "{:?}", back.events);
    let (status, now) = call(base, Some(cookie), "fleet", &[]).await;
    assert_eq!(status, 200);
    let now: Fleet = serde_json::from_value(now).unwrap();
    let names = |f: &Fleet| {
        f.hosts[0].containers.iter().map(|c| (c.name.clone(), c.state, c.restart_count)).collect::<Vec<_>>()
    };
    assert_eq!(names(&back.fleet), names(&now), "no gap");
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
    let mut live = Follower { sse: SseReader::new(r), fleet: Fleet::default(), delta_bytes: 0, events: Vec::new() };
    // Its one poll, made at start, shows what ran then.
    assert!(
        live.until(Duration::from_secs(20), |f| container_state(f, "live", &env.web.name).is_some()).await,
        "the hourly console's first poll to show the running container"
    );
    let name = unique("fleet-new");
    assert!(container_state(&live.fleet, "live", &name).is_none());
    let started = TestContainer::run(&name, &["--label", &env.scope], "sleep 600");
    // Well within the hour between polls.
    assert!(
        live.until(Duration::from_secs(60), |f| container_state(f, "live", &started.name).is_some()).await,
        "the new container never reached the hourly console"
    );
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
    for (bin, live, more) in
        [(web, env.console.addr(), &[][..]), (sidecar.as_path(), live_sidecar, &["--plain-http"][..])]
    {
        let what = bin.file_name().unwrap().to_string_lossy().into_owned();
        let out = run(bin, &[&["healthcheck", "--addr", live], more].concat());
        assert!(out.status.success(), "{what} against {live}: {}", String::from_utf8_lossy(&out.stderr));
        let out = run(bin, &[&["healthcheck", "--addr", &nothing], more].concat());
        assert_unhealthy(&out, &nothing, &format!("{what} against nothing"));
        let out = run(bin, &[&["healthcheck", "--addr", &env.stall.addr], more].concat());
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
        scenario(
            "the_live_stream_sends_what_changed_and_resumes_without_a_gap",
            the_live_stream_sends_what_changed_and_resumes_without_a_gap,
        ),
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
