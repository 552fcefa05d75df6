//! A real OpenID provider for the console's sign-in tests: npm's certified
//! `oidc-provider` (testkit/oidc, installed by `scripts/test.sh` with `npm
//! ci`), run with Node.js on a loopback port. Its users: `alice`
//! (`dockward-admins`), `bob` (`dockward-viewers`), `carol` (`shop-team`,
//! `staff`) and `nameless` (no user name claim); its client `dockward` with
//! secret [`CLIENT_SECRET`]. Fails loudly when Node.js or the package is missing.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Proc;

pub const CLIENT_ID: &str = "dockward";
pub const CLIENT_SECRET: &str = "a-test-client-secret";

pub struct Provider {
    /// `http://localhost:<port>`: another site than the console's `127.0.0.1`,
    /// so the browser treats the hop to it and back as cross-site, as in life.
    pub issuer: String,
    _proc: Proc,
}

impl Provider {
    /// Starts the provider on `port`, which sends browsers back to `redirect_uri`.
    pub fn start(port: u16, redirect_uri: &str) -> Self {
        let dir: PathBuf = crate::repo_root().join("testkit/oidc");
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "the test OpenID provider is not installed: (cd testkit/oidc && npm ci)"
        );
        let issuer = format!("http://localhost:{port}");
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(&dir)
            .env("PORT", port.to_string())
            .env("HOST", "127.0.0.1")
            .env("ISSUER", &issuer)
            .env("REDIRECT_URI", redirect_uri)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node is not installed (the test OpenID provider runs on Node.js 20 or later)");
        let out = child.stdout.take().expect("the provider's output");
        let proc = Proc(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line.contains("ready") {
                    let _ = tx.send(());
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        while rx.recv_timeout(Duration::from_millis(100)).is_err() {
            assert!(Instant::now() < deadline, "the test OpenID provider did not start within 30 s");
        }
        Provider { issuer, _proc: proc }
    }
}
