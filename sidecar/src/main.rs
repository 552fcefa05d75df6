use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sidecar::audit::chain;
use sidecar::config::{AuditCommand, Cli, Command, JoinArgs, LogFormat, SecretCommand, ServeArgs, TlsArgs, TlsCommand};
use sidecar::provision;
use sidecar::server::Server;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `docker compose exec sidecar /dockward-sidecar audit verify …` runs as the
    // container's user, root in compose.yaml: subcommands leave root first too
    // (no socket group: they do not use the engine). `serve` drops in `serve`.
    if !matches!(cli.command, None | Some(Command::Serve(_)) | Some(Command::Join(_))) {
        if let Err(code) = leave_root_for_a_subcommand() {
            return code;
        }
    }
    match cli.command {
        Some(Command::Audit(AuditCommand::Verify { file, key_file })) => verify(&file, key_file.as_deref()),
        Some(Command::Secret(cmd)) => secret(cmd),
        Some(Command::Healthcheck { addr, tls }) => healthcheck(addr, &tls),
        Some(Command::Tls(cmd)) => tls_command(cmd),
        Some(Command::Serve(args)) => serve(*args, None),
        Some(Command::Join(join)) => {
            let JoinArgs { console, console_pin, token, outbound, serve: mut args } = *join;
            if outbound && args.outbound.connect.is_none() {
                args.outbound.connect = Some(console.clone());
            }
            serve(args, Some((console, console_pin, token)))
        }
        None => serve(cli.serve, None),
    }
}

/// With `DOCKWARD_RUN_AS` set and started as root: become that user (see `sidecar::privilege`).
fn leave_root_for_a_subcommand() -> Result<(), ExitCode> {
    let Ok(value) = std::env::var("DOCKWARD_RUN_AS") else { return Ok(()) };
    let to = value.parse::<sidecar::privilege::RunAs>().map_err(|e| {
        eprintln!("dockward-sidecar: DOCKWARD_RUN_AS: {e}");
        ExitCode::from(2)
    })?;
    sidecar::privilege::drop_root(to, "").map(drop).map_err(|e| {
        eprintln!("dockward-sidecar: {e}");
        ExitCode::from(2)
    })
}

/// Serves; with `join` (console, its pin, the token), enrols first unless
/// this host already holds a secret.
fn serve(mut args: ServeArgs, join: Option<(String, tls::Fingerprint, String)>) -> ExitCode {
    init_tracing(args.log_format);
    // Secrets given as values come from the environment only (no flag: argv is
    // world-readable). They are read once into digests, then removed from the
    // environment that child processes or crash reporters could see. That does
    // not scrub /proc/1/environ or `docker inspect`: hence the warning, and the
    // _FILE variants. (Single-threaded here.)
    args.secret = take_env_secret("DOCKWARD_SECRET");
    args.secret_previous = take_env_secret("DOCKWARD_SECRET_PREVIOUS");
    // Before any file is read or thread started: leave root (sidecar::privilege).
    match args.run_as.map(|to| sidecar::privilege::drop_root(to, &args.docker_host)) {
        Some(Ok(Some(d))) => tracing::info!(
            uid = d.uid,
            gid = d.gid,
            socket_group = ?d.socket_group,
            "dropped root: joined the Docker socket's group, no capabilities left"
        ),
        Some(Ok(None)) => {}
        Some(Err(e)) => {
            tracing::error!(error = %e, "refusing to start");
            eprintln!("dockward-sidecar: {e}");
            return ExitCode::from(2);
        }
        // SAFETY: a getter.
        None if unsafe { libc::geteuid() } == 0 => tracing::warn!(
            "running as root: set DOCKWARD_RUN_AS=65532:65532 so the sidecar joins the Docker socket's group \
             and drops root before serving"
        ),
        None => {}
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dockward-sidecar: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    rt.block_on(async {
        if let Some((console, pin, token)) = join {
            match args.secret_file.as_deref() {
                Some(file) if sidecar::enrol::already_enrolled(file) => {
                    tracing::info!(secret = %file.display(), "already enrolled; the join token is not used again")
                }
                file => {
                    let (cert, key) = (&args.tls.tls_cert_file, &args.tls.tls_key_file);
                    if let Err(e) = sidecar::enrol::join(&console, pin, &token, cert, key, file).await {
                        tracing::error!(error = %e, "cannot join the console");
                        eprintln!("dockward-sidecar: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
        }
        let server = match Server::start(&args).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "refusing to start");
                eprintln!("dockward-sidecar: {e}");
                return ExitCode::from(2);
            }
        };
        match server.serve(shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("dockward-sidecar: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Reads and removes a secret variable, warning that the value stays visible
/// where removal cannot reach.
fn take_env_secret(var: &str) -> Option<String> {
    let value = std::env::var(var).ok();
    std::env::remove_var(var);
    if value.is_some() {
        tracing::warn!(
            variable = var,
            "a secret given in the environment stays readable in `docker inspect` and /proc/<pid>/environ; \
             prefer {var}_FILE"
        );
    }
    value
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DOCKWARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

/// `audit verify FILE [--key-file KEY]`: prints the report; exit 0 intact,
/// 1 broken, 2 unreadable (or the key named is missing).
fn verify(file: &Path, key_file: Option<&Path>) -> ExitCode {
    let key = match key_file.map(chain::AuditKey::load).transpose() {
        Ok(k) => k.flatten(),
        Err(e) => {
            eprintln!("dockward-sidecar: {e}");
            return ExitCode::from(2);
        }
    };
    if let (Some(path), None) = (key_file, &key) {
        eprintln!("dockward-sidecar: no audit key at {}", path.display());
        return ExitCode::from(2);
    }
    let notes = |r: &chain::VerifyReport| {
        for n in &r.notes {
            println!("  note: {n}");
        }
    };
    match chain::verify(file, key.as_ref()) {
        Ok(r) if r.ok() => {
            println!(
                "ok: {} records in {} file(s), chain intact up to record {} ({})",
                r.records,
                r.files,
                r.last_seq,
                r.last_hash.as_deref().unwrap_or("-")
            );
            notes(&r);
            ExitCode::SUCCESS
        }
        Ok(r) => {
            println!("FAILED: {} problem(s) in {} records, {} file(s):", r.problems.len(), r.records, r.files);
            for p in &r.problems {
                println!("  - {p}");
            }
            notes(&r);
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("dockward-sidecar: cannot verify {}: {e}", file.display());
            ExitCode::from(2)
        }
    }
}

/// `secret init FILE` / `secret set FILE`: a clear message and exit 2 on error.
fn secret(cmd: SecretCommand) -> ExitCode {
    let result = match &cmd {
        SecretCommand::Init { file, tls } => provision::init(file)
            .map(|outcome| match outcome {
                provision::Outcome::Created => format!("created a new secret in {}", file.display()),
                provision::Outcome::Kept => format!("{} already holds a secret; kept it", file.display()),
            })
            .and_then(|said| {
                if tls.plain_http {
                    return Ok(format!("{said}; no TLS identity (--plain-http)"));
                }
                let identity = provision::init_identity(&tls.tls_cert_file, &tls.tls_key_file, file)?;
                Ok(format!("{said}; {identity}"))
            }),
        SecretCommand::Rotate { file } => provision::rotate(file).map(|()| {
            format!(
                "new secret in {}; the old one stays accepted from {} until `secret retire`",
                file.display(),
                provision::previous_of(file).display()
            )
        }),
        SecretCommand::Retire { file } => provision::retire(file).map(|removed| {
            if removed {
                format!("removed {}; the old secret is no longer accepted", provision::previous_of(file).display())
            } else {
                "no rotation in progress; nothing to retire".to_owned()
            }
        }),
        SecretCommand::Set { file } => {
            let mut input = Vec::new();
            match std::io::stdin().lock().take(4096).read_to_end(&mut input) {
                Ok(_) => provision::set(file, &input).map(|()| format!("replaced the secret in {}", file.display())),
                Err(e) => {
                    eprintln!("dockward-sidecar: cannot read the secret from standard input: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    };
    match result {
        Ok(msg) => {
            eprintln!("dockward-sidecar: {msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dockward-sidecar: {e}");
            ExitCode::from(2)
        }
    }
}

/// `tls fingerprint|renew|pin|activate`: what the console pins on standard
/// output, what to do next on standard error; exit 2 with a message on error.
fn tls_command(cmd: TlsCommand) -> ExitCode {
    let said = |msg: &str| eprintln!("dockward-sidecar: {msg}");
    let result: Result<ExitCode, String> = match cmd {
        TlsCommand::Fingerprint { tls } => tls::Identity::load_or_create(&tls.tls_cert_file, &tls.tls_key_file)
            .map(|(id, _)| {
                println!("{}", id.fingerprint);
                ExitCode::SUCCESS
            })
            .map_err(|e| e.to_string()),
        TlsCommand::Renew { tls } => tls::identity::renew(&tls.tls_cert_file, &tls.tls_key_file)
            .map(|(fp, made)| {
                said(&format!(
                    "{}. Add this fingerprint to the console's pin file for this host (keep the old line), then run \
                     `dockward-sidecar tls activate`:",
                    if made { "made the next TLS identity" } else { "the next TLS identity is already waiting" }
                ));
                println!("{fp}");
                ExitCode::SUCCESS
            })
            .map_err(|e| e.to_string()),
        TlsCommand::Activate { tls } => tls::identity::activate(&tls.tls_cert_file, &tls.tls_key_file)
            .map(|fp| match fp {
                Some(fp) => {
                    said(
                        "serving the new identity within seconds; remove the old fingerprint from the console's pin \
                         file once the host shows connected",
                    );
                    println!("{fp}");
                    ExitCode::SUCCESS
                }
                None => {
                    said("no renewal waiting (run `tls renew` first); nothing changed");
                    ExitCode::FAILURE
                }
            })
            .map_err(|e| e.to_string()),
        TlsCommand::Pin { file } => {
            let mut input = String::new();
            std::io::stdin()
                .lock()
                .take(4096)
                .read_to_string(&mut input)
                .map_err(|e| format!("cannot read the fingerprints from standard input: {e}"))
                .and_then(|_| tls::pins::parse(&input, Path::new("<standard input>")).map_err(|e| e.to_string()))
                .and_then(|pins| {
                    let text: String = pins.iter().map(|p| format!("{p}\n")).collect();
                    tls::identity::write_new(&file, text.as_bytes(), 0o644).map_err(|e| e.to_string())?;
                    said(&format!("{} pins {} certificate(s)", file.display(), pins.len()));
                    Ok(ExitCode::SUCCESS)
                })
        }
    };
    result.unwrap_or_else(|e| {
        said(&e);
        ExitCode::from(2)
    })
}

/// `healthcheck`: GET /healthz, for images with no shell or curl. Over TLS
/// (pinning the sidecar's own certificate, read from its file) unless
/// `--plain-http`.
fn healthcheck(addr: SocketAddr, tls_args: &TlsArgs) -> ExitCode {
    const REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    fn exchange(mut s: impl Read + Write) -> std::io::Result<String> {
        s.write_all(REQUEST)?;
        let mut buf = Vec::new();
        // A TLS peer that closes without close_notify still gave us its answer.
        match s.take(4096).read_to_end(&mut buf) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => {}
            Err(e) => return Err(e),
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
    let probe = || -> std::io::Result<String> {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.set_write_timeout(Some(Duration::from_secs(3)))?;
        if tls_args.plain_http {
            return exchange(s);
        }
        let own = tls::identity::cert_fingerprint(&tls_args.tls_cert_file).map_err(std::io::Error::other)?;
        let verifier = std::sync::Arc::new(tls::PinVerifier::new(tls::Pins::fixed(vec![own])));
        let config = std::sync::Arc::new(tls::client_config(verifier));
        let name = rustls::pki_types::ServerName::from(addr.ip());
        let conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
        exchange(rustls::StreamOwned::new(conn, s))
    };
    match probe() {
        Ok(resp) if resp.starts_with("HTTP/1.1 200") => ExitCode::SUCCESS,
        Ok(resp) => {
            eprintln!("unhealthy: {}", resp.lines().next().unwrap_or(""));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("unhealthy: {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}
