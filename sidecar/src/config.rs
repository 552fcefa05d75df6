//! Command line and environment configuration (clap). Every flag has an
//! environment variable; the README lists them with their defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub const DEFAULT_PROTECT_IMAGES: &str = "postgres,mysql,mariadb,mongo,redis,valkey,memcached,elasticsearch,opensearch,clickhouse,influxdb,cassandra,couchdb,neo4j";
pub const DEFAULT_MASK_PATTERN: &str = "(?i)PASS|_PWD|SECRET|TOKEN|KEY|PRIVATE|CREDENTIAL|AUTH|DSN|DATABASE_URL";

#[derive(Debug, Parser)]
#[command(
    name = "dockward-sidecar",
    version,
    about = "The one process that touches docker.sock: typed, allow-listed, audited verbs"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the sidecar (the default when no subcommand is given).
    Serve(Box<ServeArgs>),
    /// Enrol this host with a console in one step (the command the console's "Add a host" shows),
    /// then serve. Once enrolled (the secret file holds a secret), it only serves.
    Join(Box<JoinArgs>),
    /// Work with the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Create or replace shared-secret files (first run, more hosts, rotation).
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Probe a running sidecar's /healthz; exit 0 when it answers ok. Needs no shell or curl.
    /// Speaks TLS and pins the sidecar's own certificate, unless `--plain-http`.
    Healthcheck {
        /// The sidecar to probe.
        #[arg(long, env = "DOCKWARD_HEALTHCHECK_ADDR", default_value = "127.0.0.1:7700")]
        addr: SocketAddr,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// The sidecar's TLS identity: print its fingerprint, renew it.
    #[command(subcommand)]
    Tls(TlsCommand),
}

/// `join`: where the console is, how to recognise it, and the one-time token.
#[derive(Debug, Clone, Args)]
pub struct JoinArgs {
    /// The console's agent address, `https://host:port` (its port 7443 by default).
    #[arg(long, env = "DOCKWARD_CONSOLE")]
    pub console: String,
    /// The fingerprint of the console's agent certificate (`sha256:…`): the token is sent to
    /// nothing else.
    #[arg(long, env = "DOCKWARD_CONSOLE_PIN", value_parser = parse_fingerprint)]
    pub console_pin: tls::Fingerprint,
    /// The one-time join token (`dwj_…`; single use, valid 15 minutes at most). Ignored once this
    /// host is enrolled.
    #[arg(long, env = "DOCKWARD_JOIN_TOKEN")]
    pub token: String,
    /// An outbound agent: once enrolled, dial the console (the --console address) instead of
    /// waiting for it to connect; the host needs no inbound port.
    #[arg(long, env = "DOCKWARD_OUTBOUND", default_value_t = false)]
    pub outbound: bool,
    #[command(flatten)]
    pub serve: ServeArgs,
}

pub fn parse_node_name(s: &str) -> Result<String, String> {
    shared::valid_host_name(s)
        .then(|| s.to_owned())
        .ok_or_else(|| format!("{s:?}: use 1–64 letters, digits, '-', '_' or '.'"))
}

pub fn parse_fingerprint(s: &str) -> Result<tls::Fingerprint, String> {
    s.parse().map_err(|e: tls::FingerprintError| e.to_string())
}

/// The sidecar's TLS identity files and the plain-HTTP escape hatch; the
/// same flags for `serve`, `secret init`, `tls` and `healthcheck`.
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// The sidecar's TLS certificate (PEM, self-signed; made with the key when neither exists).
    #[arg(long, env = "DOCKWARD_TLS_CERT_FILE", default_value = "/var/lib/dockward-key/tls.crt")]
    pub tls_cert_file: PathBuf,
    /// The sidecar's TLS private key (PEM, mode 0600). Keep it where only the sidecar reads it.
    #[arg(long, env = "DOCKWARD_TLS_KEY_FILE", default_value = "/var/lib/dockward-key/tls.key")]
    pub tls_key_file: PathBuf,
    /// Serve plain HTTP instead of HTTPS: the secret crosses the network in clear. Only for a
    /// link that is private by other means; logged as a warning, and the console shows the host
    /// as "unencrypted".
    #[arg(long, env = "DOCKWARD_PLAIN_HTTP", default_value_t = false)]
    pub plain_http: bool,
}

/// An outbound agent: the sidecar dials its console and serves the verbs
/// over that connection, so its host needs no inbound port.
#[derive(Debug, Clone, Args)]
pub struct OutboundArgs {
    /// Dial the console's agent port at this address (`https://host:port`) and serve the verbs over
    /// that connection: same router, allow-list, audit and rate limits as the listener, and the host
    /// needs no inbound port. The console's pin and this host's name come from the enrolment
    /// (`join --outbound`) unless given below. Reconnects with backoff and jitter.
    #[arg(long, env = "DOCKWARD_CONNECT")]
    pub connect: Option<String>,
    /// The console's agent certificate fingerprint (`sha256:…`) for --connect; the enrolment's when unset.
    #[arg(long, env = "DOCKWARD_CONNECT_PIN", value_parser = parse_fingerprint)]
    pub connect_pin: Option<tls::Fingerprint>,
    /// This host's name in the console for --connect; the enrolment's when unset.
    #[arg(long, env = "DOCKWARD_CONNECT_AS")]
    pub connect_as: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Print the fingerprint the console pins (`sha256:…`), making the identity if it is missing.
    Fingerprint {
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Start a renewal: make the next identity beside the current one and print its fingerprint.
    /// Add it to the console's pin file (both are accepted), then run `tls activate`.
    Renew {
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Write FILE, a console's pin file for a host, from the fingerprints on standard input
    /// (one per line, as `tls fingerprint` prints them); each is checked first.
    Pin { file: PathBuf },
    /// End a renewal: serve the next identity (a running sidecar switches within seconds). Then
    /// remove the old fingerprint from the console's pin file.
    Activate {
        #[command(flatten)]
        tls: TlsArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain of an audit log (the active file; rotated siblings and the checkpoint are found beside it).
    Verify {
        file: PathBuf,
        /// The audit key, to check every record's MAC (without it only the chain is checked).
        #[arg(long, env = "DOCKWARD_AUDIT_KEY_FILE")]
        key_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Create FILE with a new random secret unless it already holds one (idempotent), and the
    /// sidecar's TLS identity unless it exists; write its fingerprint to FILE.pin for the console.
    Init {
        file: PathBuf,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Replace FILE with the secret read from standard input (one line, at least 32 bytes).
    Set { file: PathBuf },
    /// Start a rotation: FILE's secret moves to FILE.previous (still accepted), FILE gets a new one.
    Rotate { file: PathBuf },
    /// End a rotation: remove FILE.previous, so the old secret stops working.
    Retire { file: PathBuf },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "DOCKWARD_LISTEN", default_value = "0.0.0.0:7700")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub outbound: OutboundArgs,

    /// Shared secret (at least 32 bytes), from the environment variable
    /// `DOCKWARD_SECRET` only: never a flag, since argv is readable by every
    /// process on the host. Prefer --secret-file. Filled in by `main` before
    /// the variable is removed.
    #[arg(skip)]
    pub secret: Option<String>,
    /// File holding the shared secret (the Docker secrets convention).
    #[arg(long, env = "DOCKWARD_SECRET_FILE")]
    pub secret_file: Option<PathBuf>,
    /// Previous shared secret, still accepted during a rotation: from the
    /// environment variable `DOCKWARD_SECRET_PREVIOUS` only, like `secret`.
    #[arg(skip)]
    pub secret_previous: Option<String>,
    /// File holding the previous shared secret; if it does not exist there is none. Secret files
    /// are re-read when they change (rotation without a restart).
    #[arg(long, env = "DOCKWARD_SECRET_PREVIOUS_FILE")]
    pub secret_previous_file: Option<PathBuf>,

    /// This host's name as `/healthz` reports it (1–64 letters, digits, '-', '_' or '.'): a console
    /// that discovers its sidecars by DNS (Docker Swarm's `tasks.<service>`) shows the host so.
    /// stack.yaml sets the Swarm node's hostname. Unset, `/healthz` names nothing.
    #[arg(long, env = "DOCKWARD_NODE_NAME", value_parser = parse_node_name)]
    pub node_name: Option<String>,

    /// Docker endpoint (unix:// or tcp://).
    #[arg(long, env = "DOCKER_HOST", default_value = "unix:///var/run/docker.sock")]
    pub docker_host: String,
    /// When started as root: the unprivileged `uid:gid` to become before serving, after joining the
    /// Docker socket's group (whatever its gid). compose.yaml sets 65532:65532. Unset, a sidecar
    /// started as root stays root (with a warning).
    #[arg(long, env = "DOCKWARD_RUN_AS")]
    pub run_as: Option<crate::privilege::RunAs>,

    /// Append-only audit log (JSON Lines). Rotated files sit beside it.
    #[arg(long, env = "DOCKWARD_AUDIT_LOG", default_value = "/var/lib/dockward/audit.jsonl")]
    pub audit_log: PathBuf,
    /// Rotate the audit log when it grows past this many bytes.
    #[arg(long, env = "DOCKWARD_AUDIT_ROTATE_BYTES", default_value_t = 16 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(4096..=256 * 1024 * 1024))]
    pub audit_rotate_bytes: u64,
    /// Rotated audit files to keep; older ones are deleted (after a record of the deletion that keeps
    /// the chain provable). 0 keeps every file.
    #[arg(long, env = "DOCKWARD_AUDIT_KEEP_FILES", default_value_t = 64)]
    pub audit_keep_files: u32,
    /// The HMAC key that seals audit records (created, mode 0600, when absent). Keep it outside the
    /// audit log's volume: whoever can write the log but not read the key cannot forge records.
    #[arg(long, env = "DOCKWARD_AUDIT_KEY_FILE", default_value = "/var/lib/dockward-key/audit.key")]
    pub audit_key_file: PathBuf,
    /// Repeated refusals (same verb, status, client key and actor) within this window get one record
    /// for the first and one summary record with the count.
    #[arg(long, env = "DOCKWARD_AUDIT_DENIAL_WINDOW", default_value = "60s", value_parser = parse_duration)]
    pub audit_denial_window: Duration,

    /// The stats window while someone asks for stats: a round is published at least this often
    /// (with the engine as the source, at least 2 s).
    #[arg(long, env = "DOCKWARD_STATS_TTL", default_value = "1s", value_parser = parse_duration)]
    pub stats_ttl: Duration,
    /// The window once nobody has asked for stats for `DOCKWARD_STATS_IDLE_AFTER`.
    #[arg(long, env = "DOCKWARD_STATS_IDLE_TTL", default_value = "10s", value_parser = parse_duration)]
    pub stats_idle_ttl: Duration,
    /// How long after the last request for stats the idle window applies.
    #[arg(long, env = "DOCKWARD_STATS_IDLE_AFTER", default_value = "60s", value_parser = parse_duration)]
    pub stats_idle_after: Duration,
    /// How much stats history to keep per container (for sparklines).
    #[arg(long, env = "DOCKWARD_STATS_HISTORY", default_value = "15m", value_parser = parse_duration)]
    pub stats_history: Duration,
    /// One history point per container per this much time.
    #[arg(long, env = "DOCKWARD_STATS_HISTORY_STEP", default_value = "15s", value_parser = parse_duration)]
    pub stats_history_step: Duration,
    /// Where stats come from: `cgroup` reads the kernel's counters (the host's cgroup tree at
    /// `DOCKWARD_CGROUP_ROOT`), `engine` asks the engine's stats API, `auto` the first when it is
    /// readable.
    #[arg(long, env = "DOCKWARD_STATS_SOURCE", value_enum, default_value_t = crate::stats::SourceMode::Auto)]
    pub stats_source: crate::stats::SourceMode,
    /// The host's cgroup tree (mounted read-only when the sidecar runs in a container).
    #[arg(long, env = "DOCKWARD_CGROUP_ROOT", default_value = "/sys/fs/cgroup")]
    pub cgroup_root: PathBuf,
    /// The host's /proc, mounted read-only: network counters from each container's network
    /// namespace. Unset: from the engine every `DOCKWARD_STATS_NET_INTERVAL`.
    #[arg(long, env = "DOCKWARD_PROC_ROOT")]
    pub proc_root: Option<PathBuf>,
    /// How often network counters are asked of the engine when the host's /proc is not given.
    #[arg(long, env = "DOCKWARD_STATS_NET_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub stats_net_interval: Duration,
    /// How many stats calls may be in flight to the engine at once. The engine answers them at
    /// its collector's next one-second tick, so a round takes about one tick when this is at
    /// least the number of running containers.
    #[arg(long, env = "DOCKWARD_STATS_CONCURRENCY", default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub stats_concurrency: u16,
    /// How long volume sizes are cached (the engine walks disks to compute them).
    #[arg(long, env = "DOCKWARD_DISK_TTL", default_value = "60s", value_parser = parse_duration)]
    pub disk_ttl: Duration,

    /// Only containers carrying this label (key or key=value) are visible.
    #[arg(long, env = "DOCKWARD_SCOPE_LABEL")]
    pub scope_label: Option<String>,
    /// Images whose name makes a container protected (comma-separated; `name` or `namespace/name`).
    #[arg(long, env = "DOCKWARD_PROTECT_IMAGES", default_value = DEFAULT_PROTECT_IMAGES, value_delimiter = ',')]
    pub protect_images: Vec<String>,
    /// Environment keys whose values are masked in container detail (regex).
    #[arg(long, env = "DOCKWARD_MASK_ENV_PATTERN", default_value = DEFAULT_MASK_PATTERN)]
    pub mask_env_pattern: String,
    /// Registries `pull` may fetch from (comma-separated hosts; empty allows any).
    #[arg(long, env = "DOCKWARD_PULL_REGISTRIES", value_delimiter = ',')]
    pub pull_registries: Vec<String>,

    /// Read verbs per client key (N/s, N/min or N/h).
    #[arg(long, env = "DOCKWARD_RATE_READ", default_value = "50/s", value_parser = parse_rate)]
    pub rate_read: Rate,
    /// Restarts per client key and container.
    #[arg(long, env = "DOCKWARD_RATE_RESTART", default_value = "6/min", value_parser = parse_rate)]
    pub rate_restart: Rate,
    /// Restart requests per client key, any container, counted before any work.
    #[arg(long, env = "DOCKWARD_RATE_RESTART_CLIENT", default_value = "60/min", value_parser = parse_rate)]
    pub rate_restart_client: Rate,
    /// Prunes per client key.
    #[arg(long, env = "DOCKWARD_RATE_PRUNE", default_value = "10/h", value_parser = parse_rate)]
    pub rate_prune: Rate,
    /// Pulls per client key.
    #[arg(long, env = "DOCKWARD_RATE_PULL", default_value = "30/h", value_parser = parse_rate)]
    pub rate_pull: Rate,
    /// Failed authentications per remote address.
    #[arg(long, env = "DOCKWARD_RATE_AUTH_FAILURE", default_value = "10/min", value_parser = parse_rate)]
    pub rate_auth_failure: Rate,

    /// Longest a streaming response (log follow, events) stays open; clients reconnect.
    #[arg(long, env = "DOCKWARD_LOG_FOLLOW_MAX", default_value = "1h", value_parser = parse_duration)]
    pub log_follow_max: Duration,
    /// Most concurrent log follows. Event streams and pulls have pools of their own, so
    /// follows can never take their places.
    #[arg(long, env = "DOCKWARD_MAX_STREAMS", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_streams: u32,
    /// Most concurrent event streams (`GET /v1/events`; a console holds one per host).
    #[arg(long, env = "DOCKWARD_MAX_EVENT_STREAMS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_event_streams: u32,
    /// Most pulls in flight at once.
    #[arg(long, env = "DOCKWARD_MAX_PULLS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_pulls: u32,

    /// How long a registry's answer for an image tag is reused by `GET /v1/updates` (at least 15m).
    /// Failed checks are retried after 15 minutes.
    #[arg(long, env = "DOCKWARD_UPDATE_CHECK_INTERVAL", default_value = "6h", value_parser = parse_check_interval)]
    pub update_check_interval: Duration,
    /// Most registry checks in flight at once (through the engine's distribution endpoint).
    #[arg(long, env = "DOCKWARD_UPDATE_CHECK_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub update_check_concurrency: u32,
    /// Least time between two checks against the same registry.
    #[arg(long, env = "DOCKWARD_UPDATE_REGISTRY_PACE", default_value = "250ms", value_parser = parse_duration)]
    pub update_registry_pace: Duration,
    /// Most recreates in flight at once (each on its own container).
    #[arg(long, env = "DOCKWARD_MAX_RECREATES", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub max_recreates: u32,
    /// Where compose projects may be rebuilt from source (`recreate?build=true`): a directory
    /// mounted read-only into the sidecar at the same path as on the host. Unset: no rebuilds.
    #[arg(long, env = "DOCKWARD_BUILD_ROOT")]
    pub build_root: Option<std::path::PathBuf>,
    /// Largest build context sent to the engine (bytes of file content).
    #[arg(long, env = "DOCKWARD_BUILD_CONTEXT_MAX", default_value_t = 100 << 20, value_parser = clap::value_parser!(u64).range((1 << 20)..=(2 << 30)))]
    pub build_context_max: u64,
    /// Test hook: pause this long after stopping the old container of a recreate, so a test can
    /// kill the sidecar there. Unset in production.
    #[arg(long, env = "DOCKWARD_TEST_RECREATE_PAUSE", value_parser = parse_duration, hide = true)]
    pub test_recreate_pause: Option<Duration>,
    /// Most log tails (non-follow log reads) answered at once.
    #[arg(long, env = "DOCKWARD_MAX_LOG_READS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_log_reads: u32,

    /// Log format.
    #[arg(long, env = "DOCKWARD_LOG_FORMAT", value_enum, default_value = "human")]
    pub log_format: LogFormat,
}

impl ServeArgs {
    /// The stats refresher's settings. History keeps at most 10 000 points
    /// per container; the engine's network counters are asked at most every 5 s.
    pub fn stats_options(&self) -> crate::stats::StatsOptions {
        let step = self.stats_history_step.max(self.stats_history / 10_000).max(Duration::from_secs(1));
        crate::stats::StatsOptions {
            window: self.stats_ttl.max(Duration::from_millis(200)),
            idle_window: self.stats_idle_ttl,
            idle_after: self.stats_idle_after,
            history: self.stats_history,
            history_step: step,
            concurrency: self.stats_concurrency.into(),
            mode: self.stats_source,
            cgroup_root: self.cgroup_root.clone(),
            proc_root: self.proc_root.clone(),
            net_interval: self.stats_net_interval.max(Duration::from_secs(5)),
        }
    }
}

/// A rate: `count` events per `per`, with a burst of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

pub fn parse_rate(s: &str) -> Result<Rate, String> {
    let (n, unit) = s.split_once('/').ok_or("expected N/s, N/min or N/h")?;
    let count: u32 = n.trim().parse().map_err(|_| format!("not a count: {n:?}"))?;
    if count == 0 || count > 1_000_000 {
        return Err("count must be between 1 and 1000000".into());
    }
    let per = match unit.trim() {
        "s" | "sec" => Duration::from_secs(1),
        "m" | "min" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        other => return Err(format!("unknown unit {other:?}: use s, min or h")),
    };
    Ok(Rate { count, per })
}

/// `500ms`, `2s`, `15m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("not a duration: {s:?} (try 2s, 500ms, 15m)"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("unknown unit in {s:?}: use ms, s, m or h")),
    };
    if d.is_zero() || d > Duration::from_secs(7 * 24 * 3600) {
        return Err(format!("{s:?} must be more than 0 and at most 7 days"));
    }
    Ok(d)
}

/// `--update-check-interval`: a duration of at least 15 minutes.
pub fn parse_check_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(15 * 60) {
        return Err(format!("{s:?} is too short: registries are asked at most every 15m"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_intervals_are_at_least_fifteen_minutes() {
        assert_eq!(parse_check_interval("6h"), Ok(Duration::from_secs(6 * 3600)));
        assert_eq!(parse_check_interval("15m"), Ok(Duration::from_secs(900)));
        assert!(parse_check_interval("14m").unwrap_err().contains("too short"));
        assert!(parse_check_interval("soon").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("6/min"), Ok(Rate { count: 6, per: Duration::from_secs(60) }));
        assert_eq!(parse_rate("50/s").unwrap().count, 50);
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("5").is_err());
        assert!(parse_rate("5/week").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("2 days").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn cli_defaults_parse() {
        let cli = Cli::try_parse_from(["dockward-sidecar"]).unwrap();
        assert_eq!(cli.serve.listen.port(), 7700);
        assert_eq!(cli.serve.protect_images.len(), 14);
        assert!(cli.command.is_none());
        let cli = Cli::try_parse_from(["dockward-sidecar", "audit", "verify", "/tmp/x"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Audit(AuditCommand::Verify { .. }))));
    }
}
