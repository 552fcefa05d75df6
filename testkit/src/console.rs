//! The web console as a subprocess: its users file and host secrets in a
//! temporary directory, the hosts it fans in, and its address.

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
}

/// Adds `name` with `role` and [`PASSWORD`] to a users file, with the CLI.
pub fn add_user(web_bin: &Path, users: &Path, name: &str, role: &str) {
    let mut child = Command::new(web_bin)
        .args(["user", "add", name, "--role", role, "--users-file"])
        .arg(users)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run dockward-web user add");
    writeln!(child.stdin.take().expect("stdin"), "{PASSWORD}").expect("write the password");
    assert!(child.wait().expect("user add exits").success(), "user add {name}");
}

impl Console {
    /// Starts `web_bin` (`env!("CARGO_BIN_EXE_dockward-web")` in the
    /// console's tests) reading `hosts`, with the users `admin1`, `operator1`
    /// and `viewer1` of their roles, polling every second; returns once it
    /// listens. `site_root` holds the browser assets, if the test needs them.
    pub fn start(web_bin: &Path, hosts: &[Host], site_root: Option<&Path>) -> Self {
        Self::start_with(web_bin, hosts, site_root, &[], true)
    }

    /// As [`Console::start`], with more environment for the console, and
    /// without the three test users when `users` is false (a first run: the
    /// console then makes its own admin).
    pub fn start_with(
        web_bin: &Path,
        hosts: &[Host],
        site_root: Option<&Path>,
        env: &[(&str, &str)],
        users: bool,
    ) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let secrets = dir.path().join("secrets");
        std::fs::create_dir_all(&secrets).expect("the secrets directory");
        for h in hosts {
            std::fs::write(secrets.join(h.name), format!("{}\n", h.secret)).expect("a host secret");
        }
        let users_file = dir.path().join("users.json");
        for (name, role) in [("admin1", "admin"), ("operator1", "operator"), ("viewer1", "viewer")] {
            if users {
                add_user(web_bin, &users_file, name, role);
            }
        }
        let port = free_port();
        let spec: Vec<String> = hosts.iter().map(|h| format!("{}={}", h.name, h.url)).collect();
        let site: PathBuf = site_root.map(Path::to_path_buf).unwrap_or_else(|| dir.path().join("no-site"));
        let mut cmd = Command::new(web_bin);
        cmd.envs(env.iter().copied());
        let child = cmd
            .env("DOCKWARD_WEB_LISTEN", format!("127.0.0.1:{port}"))
            .env("DOCKWARD_HOSTS", spec.join(","))
            .env("DOCKWARD_HOST_SECRETS_DIR", &secrets)
            .env("DOCKWARD_USERS_FILE", &users_file)
            .env("DOCKWARD_SITE_ROOT", site)
            .env("DOCKWARD_POLL_INTERVAL", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("web.log")).expect("the web log"))
            .spawn()
            .expect("start dockward-web");
        let proc = Proc(child);
        wait_port(port, "dockward-web");
        Self { base: format!("http://127.0.0.1:{port}"), dir, _proc: proc }
    }
}
