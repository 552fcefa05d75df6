//! The web console as a subprocess: its users file and host secrets in a
//! temporary directory, the hosts it fans in, and its address.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{free_port, wait_port, Proc};

/// Every test user's password.
pub const PASSWORD: &str = "correct horse battery staple";

/// One host the console reads: its name, sidecar URL and shared secret.
pub struct Host<'a> {
    pub name: &'a str,
    pub url: &'a str,
    pub secret: &'a str,
}

pub struct Console {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub dir: tempfile::TempDir,
    _proc: Proc,
    /// What it was started with (binary, environment, port), to start it again.
    launch: (PathBuf, Vec<(String, OsString)>, u16),
}

/// Starts the console; its log is appended to `web.log` in `dir`.
fn spawn(bin: &Path, env: &[(String, OsString)], dir: &Path) -> Proc {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("web.log")).expect("the web log");
    let child = Command::new(bin)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start dockward-web");
    Proc(child)
}

/// Adds `name` with `role` and [`PASSWORD`] to a users file, with the CLI;
/// `role@scope` (`operator@app:shop`) grants the role on that scope only.
pub fn add_user(web_bin: &Path, users: &Path, name: &str, role: &str) {
    let (role, on) = role.split_once('@').unwrap_or((role, "fleet"));
    let mut child = Command::new(web_bin)
        .args(["user", "add", name, "--role", role, "--on", on, "--users-file"])
        .arg(users)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run dockward-web user add");
    writeln!(child.stdin.take().expect("stdin"), "{PASSWORD}").expect("write the password");
    assert!(child.wait().expect("user add exits").success(), "user add {name}");
}

/// What [`Console::start_with`] may change about the console it starts.
#[derive(Default)]
pub struct Options<'a> {
    /// Browser assets (a directory holding `pkg/`), if the test needs them.
    pub site_root: Option<&'a Path>,
    /// More users, as (name, role), beside `admin1`, `operator1` and `viewer1`
    /// (`role@scope` for a role on a host or app only).
    pub users: &'a [(&'a str, &'a str)],
    /// More environment for the console (set after the defaults, so they win:
    /// `DOCKWARD_POLL_INTERVAL`, `DOCKWARD_STALE_AFTER`, …).
    pub env: &'a [(&'a str, &'a str)],
    /// Start without `admin1`, `operator1` and `viewer1` (nor `users`): a
    /// first run, where the console makes its own admin.
    pub first_run: bool,
    /// Pin files, as (host name, text): what an `https://` host is trusted by.
    pub pins: &'a [(&'a str, &'a str)],
    /// The port to listen on, when the test must know it first (an identity
    /// provider sends browsers back there); a free one otherwise.
    pub port: Option<u16>,
}

impl Console {
    /// Starts `web_bin` (`env!("CARGO_BIN_EXE_dockward-web")` in the
    /// console's tests) reading `hosts`, with the users `admin1`, `operator1`
    /// and `viewer1` of their roles, polling every second; returns once it
    /// listens. `site_root` holds the browser assets, if the test needs them.
    pub fn start(web_bin: &Path, hosts: &[Host], site_root: Option<&Path>) -> Self {
        Self::start_with(web_bin, hosts, Options { site_root, ..Options::default() })
    }

    /// [`Console::start`] with more users or settings.
    pub fn start_with(web_bin: &Path, hosts: &[Host], options: Options) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let secrets = dir.path().join("secrets");
        std::fs::create_dir_all(&secrets).expect("the secrets directory");
        for h in hosts {
            std::fs::write(secrets.join(h.name), format!("{}\n", h.secret)).expect("a host secret");
        }
        for (name, text) in options.pins {
            std::fs::write(secrets.join(format!("{name}.pin")), text).expect("a pin file");
        }
        let users = dir.path().join("users.json");
        if !options.first_run {
            for (name, role) in [("admin1", "admin"), ("operator1", "operator"), ("viewer1", "viewer")] {
                add_user(web_bin, &users, name, role);
            }
            for (name, role) in options.users {
                add_user(web_bin, &users, name, role);
            }
        }
        let port = options.port.unwrap_or_else(free_port);
        let spec: Vec<String> = hosts.iter().map(|h| format!("{}={}", h.name, h.url)).collect();
        let site: PathBuf = options.site_root.map(Path::to_path_buf).unwrap_or_else(|| dir.path().join("no-site"));
        let mut env: Vec<(String, OsString)> = vec![
            ("DOCKWARD_WEB_LISTEN".into(), format!("127.0.0.1:{port}").into()),
            ("DOCKWARD_HOSTS".into(), spec.join(",").into()),
            ("DOCKWARD_HOST_SECRETS_DIR".into(), secrets.into()),
            ("DOCKWARD_USERS_FILE".into(), users.into()),
            ("DOCKWARD_SITE_ROOT".into(), site.into()),
            ("DOCKWARD_POLL_INTERVAL".into(), "1".into()),
            // Enrolment: its own directory and agent identity, the agent port on a free port.
            ("DOCKWARD_ENROL_DIR".into(), dir.path().join("hosts").into()),
            ("DOCKWARD_AGENT_TLS_CERT_FILE".into(), dir.path().join("agent-tls.crt").into()),
            ("DOCKWARD_AGENT_TLS_KEY_FILE".into(), dir.path().join("agent-tls.key").into()),
            ("DOCKWARD_AGENT_LISTEN".into(), "127.0.0.1:0".into()),
        ];
        env.extend(options.env.iter().map(|(k, v)| ((*k).to_owned(), OsString::from(v))));
        let proc = spawn(web_bin, &env, dir.path());
        wait_port(port, "dockward-web");
        Self { base: format!("http://127.0.0.1:{port}"), dir, _proc: proc, launch: (web_bin.to_path_buf(), env, port) }
    }

    /// Kills the console (SIGKILL: no shutdown of any kind) and starts it
    /// again with the same settings, state directory and address.
    pub fn restart(&mut self) {
        let _ = self._proc.0.kill();
        let _ = self._proc.0.wait();
        let (bin, env, port) = &self.launch;
        self._proc = spawn(bin, env, self.dir.path());
        wait_port(*port, "dockward-web (restarted)");
    }

    /// The console's process id.
    pub fn pid(&self) -> u32 {
        self._proc.0.id()
    }

    /// `127.0.0.1:<port>`, the address it listens on.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// The agent port's `host:port`, from the console's log.
    pub fn agent_addr(&self) -> String {
        crate::wait_for(std::time::Duration::from_secs(10), "the agent port's log line", || {
            self.log().lines().filter(|l| l.contains("agent port listening")).find_map(|l| {
                let rest = &l[l.find("addr=")? + 5..];
                Some(rest.split_whitespace().next()?.to_owned())
            })
        })
    }

    /// The agent port's certificate fingerprint (`sha256:…`).
    pub fn agent_fingerprint(&self) -> String {
        let _ = self.agent_addr();
        let log = self.log();
        let line = log.lines().find(|l| l.contains("agent port listening")).expect("the agent line");
        let rest = &line[line.find("fingerprint=").expect("a fingerprint") + 12..];
        rest.split_whitespace().next().expect("a fingerprint").to_owned()
    }

    /// The enrolment directory (enrolled hosts' secrets and pins, the enrolment audit log).
    pub fn enrol_dir(&self) -> PathBuf {
        self.dir.path().join("hosts")
    }

    /// What the console logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("web.log")).unwrap_or_default()
    }
}

/// Calling the console as a browser would: sessions and server functions.
#[cfg(feature = "sidecar")]
pub mod client {
    use serde_json::Value;

    use super::PASSWORD;

    /// A signed-in user: the session cookie and the CSRF token from `whoami`.
    #[derive(Debug, Clone)]
    pub struct User {
        pub name: String,
        pub cookie: String,
        pub csrf: String,
    }

    /// A client that follows no redirects (a redirect is an answer here).
    pub fn http() -> reqwest::Client {
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("an HTTP client")
    }

    /// Logs `name` in with [`PASSWORD`] through `POST /auth/login`.
    pub async fn login(base: &str, name: &str) -> User {
        let r = http()
            .post(format!("{base}/auth/login"))
            .form(&[("username", name), ("password", PASSWORD)])
            .send()
            .await
            .expect("POST /auth/login");
        let cookie = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("dockward_session="))
            .and_then(|v| v.split(';').next())
            .unwrap_or_else(|| panic!("no session cookie for {name}: {} {:?}", r.status(), r.headers().get("location")))
            .to_owned();
        let (status, who) = call(base, Some(&cookie), "whoami", &[]).await;
        assert_eq!(status, 200, "{who}");
        User { name: name.to_owned(), cookie, csrf: who["csrf"].as_str().expect("a CSRF token").to_owned() }
    }

    /// GETs a console path as a signed-in user (`cookie`): the status and the body as text.
    pub async fn get(base: &str, path: &str, cookie: &str) -> (u16, String) {
        let r = http()
            .get(format!("{base}{path}"))
            .header("cookie", format!("dockward_session={cookie}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        (r.status().as_u16(), r.text().await.expect("a body"))
    }

    /// GETs a console path as a signed-in user (`cookie`); the body as text.
    pub async fn page(base: &str, path: &str, cookie: &str) -> String {
        http()
            .get(format!("{base}{path}"))
            .header("cookie", format!("dockward_session={cookie}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .text()
            .await
            .expect("a body")
    }

    /// The join token in the command the console shows for a new host.
    pub fn join_token(command: &str) -> String {
        let at = command.find("--token ").expect("a token in the command") + 8;
        command[at..].split_whitespace().next().expect("a token").to_owned()
    }

    /// POSTs a server function's arguments as a form; the status and the JSON body.
    pub async fn call(base: &str, cookie: Option<&str>, endpoint: &str, args: &[(&str, &str)]) -> (u16, Value) {
        let mut req = http().post(format!("{base}/api/fn/{endpoint}")).form(args);
        if let Some(c) = cookie {
            req = req.header("cookie", format!("dockward_session={c}"));
        }
        let r = req.send().await.expect("POST a server function");
        let status = r.status().as_u16();
        let text = r.text().await.expect("a body");
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")))
    }
}
