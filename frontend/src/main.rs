use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use dockward_frontend::server::config::{Cli, Command, HostCommand, LogFormat, ServeArgs, UserCommand};
use dockward_frontend::server::routes::Server;
use dockward_frontend::server::users::UserStore;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::User(cmd)) => user(cmd),
        Some(Command::Host(cmd)) => host(cmd),
        Some(Command::Healthcheck { addr }) => healthcheck(addr),
        Some(Command::Serve(args)) => serve(*args),
        None => serve(cli.serve),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DOCKWARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Json => b.json().init(),
        LogFormat::Human => b.init(),
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dockward-web: {e}");
            return ExitCode::from(2);
        }
    };
    rt.block_on(async {
        let server = match Server::start(&args).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("dockward-web: {e}");
                return ExitCode::from(2);
            }
        };
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = shutdown => {},
                _ = async { if let Some(t) = term.as_mut() { t.recv().await; } else { std::future::pending::<()>().await } } => {},
            }
        };
        match server.serve(shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("dockward-web: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

fn read_password() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| format!("cannot read the password: {e}"))?;
    let pw = line.trim_end_matches(['\n', '\r']).to_owned();
    if pw.is_empty() {
        return Err("no password on standard input (try: echo 'long password' | dockward-web user add NAME)".into());
    }
    Ok(pw)
}

/// `user add|passwd|grant|ungrant|totp-off|remove|list`: clear messages and a
/// non-zero exit on error. Grant changes go to the console's audit log.
fn user(cmd: UserCommand) -> ExitCode {
    use dockward_frontend::server::access::Grant;
    use dockward_frontend::server::enrol::Enrolment;
    let by = std::env::var("USER").map(|u| format!("cli:{u}")).unwrap_or_else(|_| "cli".into());
    let audit = |dir: &std::path::Path, action: &str, detail: &str| -> Result<(), String> {
        Enrolment::open(dir).and_then(|e| e.audit(action, "-", &by, detail)).map_err(|e| e.to_string())
    };
    let run = || -> Result<String, String> {
        match cmd {
            UserCommand::Add { name, role, on, users_file } => {
                let grant = Grant::parse(role.as_str(), &on)?;
                let store = UserStore::load(&users_file).map_err(|e| e.to_string())?;
                store.add_user(&name, grant.clone(), &read_password()?, false).map_err(|e| e.to_string())?;
                Ok(format!("added {name} ({grant})"))
            }
            UserCommand::Passwd { name, role, users_file } => {
                let store = UserStore::load(&users_file).map_err(|e| e.to_string())?;
                store.passwd(&name, &read_password()?, role).map_err(|e| e.to_string())?;
                Ok(format!("updated {name}"))
            }
            UserCommand::Grant { name, role, on, users_file, enrol_dir } => {
                let grant = Grant::parse(&role, &on)?;
                let store = UserStore::load(&users_file).map_err(|e| e.to_string())?;
                store.grant(&name, grant.clone()).map_err(|e| e.to_string())?;
                audit(&enrol_dir, "user.granted", &format!("{name}: {grant}"))?;
                Ok(format!("{name} now has {grant}"))
            }
            UserCommand::Ungrant { name, on, users_file, enrol_dir } => {
                let on = dockward_frontend::server::scope::Scope::parse(&on)?;
                let store = UserStore::load(&users_file).map_err(|e| e.to_string())?;
                if !store.ungrant(&name, &on).map_err(|e| e.to_string())? {
                    return Err(format!("{name} has no role on {on}"));
                }
                audit(&enrol_dir, "user.ungranted", &format!("{name}: {on}"))?;
                Ok(format!("{name} has no role on {on} any more"))
            }
            UserCommand::TotpOff { name, users_file, enrol_dir } => {
                let store = UserStore::load(&users_file).map_err(|e| e.to_string())?;
                store.totp_off(&name).map_err(|e| e.to_string())?;
                audit(&enrol_dir, "totp.off", &name)?;
                Ok(format!("two-factor sign-in is off for {name}"))
            }
            UserCommand::Remove { name, users_file } => {
                let store = UserStore::load(&users_file).map_err(|e| e.to_string())?;
                store.remove(&name).map_err(|e| e.to_string())?;
                Ok(format!("removed {name}"))
            }
            UserCommand::List { users_file } => {
                let store = UserStore::load(&users_file).map_err(|e| e.to_string())?;
                Ok(store
                    .list()
                    .into_iter()
                    .map(|(n, a)| format!("{n}\t{}", a.describe()))
                    .collect::<Vec<_>>()
                    .join("\n"))
            }
        }
    };
    report(run())
}

/// `host add|list|revoke`: clear messages and a non-zero exit on error. A
/// running console picks the change up within seconds.
fn host(cmd: HostCommand) -> ExitCode {
    use dockward_frontend::server::enrol::{self, Enrolment};
    let by = std::env::var("USER").map(|u| format!("cli:{u}")).unwrap_or_else(|_| "cli".into());
    let open = |dir: &std::path::Path| Enrolment::open(dir).map_err(|e| e.to_string());
    let run = || -> Result<String, String> {
        match cmd {
            HostCommand::Add { name, url, minutes, agent_url, enrol } => {
                let e = open(&enrol.enrol_dir)?;
                let (identity, _) =
                    tls::Identity::load_or_create(&enrol.agent_tls_cert_file, &enrol.agent_tls_key_file)
                        .map_err(|e| e.to_string())?;
                let issued =
                    e.issue(&name, &url, minutes.saturating_mul(60), &by, |_| false).map_err(|e| e.to_string())?;
                let pin = identity.fingerprint.to_string();
                let outbound = if url == shared::OUTBOUND { " --outbound" } else { "" };
                Ok(format!(
                    "join token for {name} (single use, valid {minutes} min):\n  {}\n\nOn the new host, run:\n\n{}\n\n\
                     (or, with the binary: DOCKWARD_SECRET_FILE=… dockward-sidecar join --console {agent_url} \
                     --console-pin {pin} --token {}{outbound})",
                    issued.token.as_str(),
                    enrol::join_command(&url, &agent_url, &pin, issued.token.as_str()),
                    issued.token.as_str(),
                ))
            }
            HostCommand::List { enrol } => {
                let e = open(&enrol.enrol_dir)?;
                let mut lines: Vec<String> = e
                    .hosts()
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|h| format!("{}\t{}\t{}\tenrolled by {}", h.name, h.url, h.fingerprint, h.by))
                    .collect();
                let now = enrol::now_s();
                lines.extend(e.pending().map_err(|e| e.to_string())?.into_iter().map(|p| {
                    format!("{}\t{}\t(token waiting, {} s left)", p.host, p.url, p.expires_at.saturating_sub(now))
                }));
                Ok(lines.join("\n"))
            }
            HostCommand::Revoke { name, enrol } => {
                let e = open(&enrol.enrol_dir)?;
                let host = e
                    .hosts()
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .find(|h| h.name == name)
                    .ok_or_else(|| format!("{name} is not a host enrolled through the console"))?;
                // An outbound host's tunnel lives in the console's process: from here it is not
                // connected, and its secret is deleted here only (the console then closes its tunnel).
                let links = Default::default();
                let sidecar = dockward_frontend::server::sidecar::host(&host.name, &host.url, e.dir(), &links)?;
                let rt =
                    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
                rt.block_on(enrol::revoke(&e, Some(&sidecar), &name, &by)).map_err(|e| e.to_string())
            }
        }
    };
    report(run())
}

/// A CLI command's outcome: its message on stdout and exit 0, or the error
/// on stderr and exit 2.
fn report(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dockward-web: {e}");
            ExitCode::from(2)
        }
    }
}

fn healthcheck(addr: SocketAddr) -> ExitCode {
    let probe = || -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut buf = Vec::new();
        s.take(4096).read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    match probe() {
        Ok(r) if r.starts_with("HTTP/1.1 200") => ExitCode::SUCCESS,
        Ok(r) => {
            eprintln!("unhealthy: {}", r.lines().next().unwrap_or(""));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("unhealthy: {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}
