//! dockward-web's configuration (clap, every flag with an env var).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::types::Role;

#[derive(Debug, Parser)]
#[command(
    name = "dockward-web",
    version,
    about = "dockward web console: the whole Docker fleet at a glance, no socket"
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
    /// Run the console (the default).
    Serve(Box<ServeArgs>),
    /// Manage local users (argon2id hashes in the users file).
    #[command(subcommand)]
    User(UserCommand),
    /// Add hosts with one-time join tokens, list them, revoke them.
    #[command(subcommand)]
    Host(HostCommand),
    /// Probe a running console's /healthz; exit 0 when it answers. Needs no shell or curl.
    Healthcheck {
        #[arg(long, env = "DOCKWARD_WEB_HEALTHCHECK_ADDR", default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
    },
}

/// `viewer`, `operator` or `admin`.
fn role_arg(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("{s:?} is not a role: use viewer, operator or admin"))
}

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Make a one-time join token for a new host and print the command to run on it.
    Add {
        /// The host's name in the console.
        name: String,
        /// Where the console will reach its sidecar: `https://address:port`, or `outbound` for a
        /// sidecar that dials the console (its host needs no inbound port).
        #[arg(long)]
        url: String,
        /// Minutes the token stays valid (1–15).
        #[arg(long, default_value_t = 15)]
        minutes: u64,
        /// The agent port's address as the new host reaches it.
        #[arg(long, env = "DOCKWARD_AGENT_URL", default_value = "https://localhost:7443")]
        agent_url: String,
        #[command(flatten)]
        enrol: EnrolArgs,
    },
    /// List enrolled hosts and waiting tokens.
    List {
        #[command(flatten)]
        enrol: EnrolArgs,
    },
    /// Revoke an enrolled host: its sidecar is told to forget its secret, and the console forgets
    /// the host (a running console drops it within seconds).
    Revoke {
        name: String,
        #[command(flatten)]
        enrol: EnrolArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from standard input (one line).
    Add {
        name: String,
        #[arg(long, value_parser = role_arg, default_value = "viewer")]
        role: Role,
        /// Where the role applies: `fleet`, `host:<name>`, `app:<project>` or `app:<host>/<project>`.
        #[arg(long, default_value = "fleet")]
        on: String,
        #[arg(long, env = "DOCKWARD_USERS_FILE", default_value = "/var/lib/dockward-web/users.json")]
        users_file: PathBuf,
    },
    /// Give a user a role on the fleet, a host or an app (replacing their role on that same scope).
    Grant {
        name: String,
        /// `viewer`, `operator` or `admin`.
        role: String,
        /// `fleet`, `host:<name>`, `app:<project>` or `app:<host>/<project>`.
        on: String,
        #[arg(long, env = "DOCKWARD_USERS_FILE", default_value = "/var/lib/dockward-web/users.json")]
        users_file: PathBuf,
        /// Where the console's audit log is (grant changes are recorded there).
        #[arg(long, env = "DOCKWARD_ENROL_DIR", default_value = "/var/lib/dockward-web/hosts")]
        enrol_dir: PathBuf,
    },
    /// Turn off a user's two-factor sign-in (a lost device); they set it up again at /access.
    TotpOff {
        name: String,
        #[arg(long, env = "DOCKWARD_USERS_FILE", default_value = "/var/lib/dockward-web/users.json")]
        users_file: PathBuf,
        #[arg(long, env = "DOCKWARD_ENROL_DIR", default_value = "/var/lib/dockward-web/hosts")]
        enrol_dir: PathBuf,
    },
    /// Take back a user's role on a scope.
    Ungrant {
        name: String,
        /// `fleet`, `host:<name>`, `app:<project>` or `app:<host>/<project>`.
        on: String,
        #[arg(long, env = "DOCKWARD_USERS_FILE", default_value = "/var/lib/dockward-web/users.json")]
        users_file: PathBuf,
        #[arg(long, env = "DOCKWARD_ENROL_DIR", default_value = "/var/lib/dockward-web/hosts")]
        enrol_dir: PathBuf,
    },
    /// Change a user's password (read from standard input) and optionally role.
    Passwd {
        name: String,
        #[arg(long, value_parser = role_arg)]
        role: Option<Role>,
        #[arg(long, env = "DOCKWARD_USERS_FILE", default_value = "/var/lib/dockward-web/users.json")]
        users_file: PathBuf,
    },
    /// Remove a user.
    Remove {
        name: String,
        #[arg(long, env = "DOCKWARD_USERS_FILE", default_value = "/var/lib/dockward-web/users.json")]
        users_file: PathBuf,
    },
    /// List users and their grants.
    List {
        #[arg(long, env = "DOCKWARD_USERS_FILE", default_value = "/var/lib/dockward-web/users.json")]
        users_file: PathBuf,
    },
}

/// Where hosts enrolled through the console are kept, and the agent port's
/// identity (the same flags for `serve` and `host …`).
#[derive(Debug, Clone, Args)]
pub struct EnrolArgs {
    /// Enrolled hosts (their secrets and pins), waiting join tokens, and the enrolment audit log.
    #[arg(long, env = "DOCKWARD_ENROL_DIR", default_value = "/var/lib/dockward-web/hosts")]
    pub enrol_dir: PathBuf,
    /// The agent port's certificate (PEM, self-signed; made with the key when neither exists).
    #[arg(long, env = "DOCKWARD_AGENT_TLS_CERT_FILE", default_value = "/var/lib/dockward-web/agent-tls.crt")]
    pub agent_tls_cert_file: PathBuf,
    /// The agent port's private key (PEM, 0600).
    #[arg(long, env = "DOCKWARD_AGENT_TLS_KEY_FILE", default_value = "/var/lib/dockward-web/agent-tls.key")]
    pub agent_tls_key_file: PathBuf,
}

/// An address to listen on, or none (`off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentListen(pub Option<SocketAddr>);

fn listen_or_off(s: &str) -> Result<AgentListen, String> {
    if s.trim().eq_ignore_ascii_case("off") {
        return Ok(AgentListen(None));
    }
    s.trim().parse().map(|a| AgentListen(Some(a))).map_err(|_| format!("{s:?} is not an address:port (or `off`)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_the_agent_port_parse() {
        let cli = Cli::try_parse_from(["dockward-web"]).unwrap();
        assert_eq!(cli.serve.agent_listen, AgentListen(Some("0.0.0.0:7443".parse().unwrap())));
        let cli = Cli::try_parse_from(["dockward-web", "--agent-listen", "off"]).unwrap();
        assert_eq!(cli.serve.agent_listen, AgentListen(None));
        assert!(Cli::try_parse_from(["dockward-web", "--agent-listen", "nowhere"]).is_err());
        let cli =
            Cli::try_parse_from(["dockward-web", "host", "add", "db1", "--url", "https://10.0.0.1:7700"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Host(HostCommand::Add { .. }))));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to serve on.
    #[arg(long, env = "DOCKWARD_WEB_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Sidecars: `name=url` pairs, comma-separated.
    #[arg(long, env = "DOCKWARD_HOSTS", default_value = "local=http://sidecar:7700")]
    pub hosts: String,
    /// Hosts found by DNS, `group=name:port`: every address `name` resolves to is a sidecar
    /// (Docker Swarm's `tasks.<service>`), looked up every 10 s; they share the secret
    /// `<secrets dir>/<group>` and the pins `<group>.pin`. Empty: none.
    #[arg(long, env = "DOCKWARD_DISCOVER", default_value = "")]
    pub discover: String,
    /// Directory holding one secret file per host, named after the host.
    #[arg(long, env = "DOCKWARD_HOST_SECRETS_DIR", default_value = "/run/secrets")]
    pub host_secrets_dir: PathBuf,
    /// Users file (argon2id hashes).
    #[arg(long, env = "DOCKWARD_USERS_FILE", default_value = "/var/lib/dockward-web/users.json")]
    pub users_file: PathBuf,
    #[command(flatten)]
    pub enrol: EnrolArgs,
    /// The agent port, where new hosts enrol (HTTPS with the console's own identity), or `off`.
    #[arg(long, env = "DOCKWARD_AGENT_LISTEN", default_value = "0.0.0.0:7443", value_parser = listen_or_off)]
    pub agent_listen: AgentListen,
    /// The agent port's address as new hosts reach it: the join command the console shows uses it.
    #[arg(long, env = "DOCKWARD_AGENT_URL", default_value = "https://localhost:7443")]
    pub agent_url: String,
    /// Where the wasm, JS and CSS assets are (contains `pkg/`).
    #[arg(long, env = "DOCKWARD_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,
    /// Seconds without fresh data before a host is shown as stale.
    #[arg(long, env = "DOCKWARD_STALE_AFTER", default_value_t = 10)]
    pub stale_after: u64,
    /// Seconds between polls of each sidecar: stats while a live page shows
    /// them, else a heartbeat (containers are listed on its events and at
    /// least every 30 s, or this interval if longer).
    #[arg(long, env = "DOCKWARD_POLL_INTERVAL", default_value_t = 2)]
    pub poll_interval: u64,
    /// Session lifetime in hours.
    #[arg(long, env = "DOCKWARD_SESSION_HOURS", default_value_t = 12)]
    pub session_hours: u64,
    /// Minutes a session may sit unused before it ends (besides its lifetime).
    #[arg(long, env = "DOCKWARD_SESSION_IDLE_MINUTES", default_value_t = 30)]
    pub session_idle_minutes: u64,
    /// The key sessions are sealed with (≥ 32 bytes; made, mode 0600, when missing). Replicas of
    /// the console that share it accept each other's sessions; it lets sessions outlive a restart.
    /// Default: `session.key` beside the users file.
    #[arg(long, env = "DOCKWARD_SESSION_KEY_FILE")]
    pub session_key_file: Option<PathBuf>,
    /// The revocations file of earlier versions: its live logouts are moved into the store once
    /// at start (the file is then renamed `*.imported`). Default: `sessions-revoked` beside the users file.
    #[arg(long, env = "DOCKWARD_SESSION_REVOCATIONS_FILE")]
    pub session_revocations_file: Option<PathBuf>,
    /// The console's store (revoked sessions, history): a SQLite file, or a `postgres://` URL
    /// shared by replicas. Default: `dockward.db` beside the users file.
    #[arg(long, env = "DOCKWARD_STORE")]
    pub store: Option<String>,
    /// A file holding the store's URL (a Docker secret, say: a PostgreSQL URL carries a password).
    #[arg(long, env = "DOCKWARD_STORE_FILE")]
    pub store_file: Option<PathBuf>,
    /// Tries per alert notification before it is marked failed (1 s, 2 s, 4 s… apart, at most 5 minutes).
    #[arg(long, env = "DOCKWARD_ALERT_ATTEMPTS", default_value_t = 6)]
    pub alert_attempts: u32,
    /// The console's address as its users reach it (`https://dockward.example.org`):
    /// notifications link to its alerts page. None by default.
    #[arg(long, env = "DOCKWARD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Most MiB of history kept; past it the oldest data is dropped first.
    #[arg(long, env = "DOCKWARD_HISTORY_MAX_MIB", default_value_t = 4096)]
    pub history_max_mib: u64,
    /// Served over HTTPS (directly or behind a proxy): cookies are `Secure` and
    /// the session cookie is named `__Host-dockward_session`.
    #[arg(long, env = "DOCKWARD_SECURE_COOKIES", default_value_t = false)]
    pub secure_cookies: bool,
    /// Admins (of the fleet, a host or an app) must set up two-factor sign-in (TOTP) before
    /// anything else; local users only (an identity provider does its own).
    #[arg(long, env = "DOCKWARD_REQUIRE_TOTP_FOR_ADMINS", default_value_t = false)]
    pub require_totp_for_admins: bool,
    /// Users of the users file may sign in with their password (`false`: the identity provider only).
    #[arg(long, env = "DOCKWARD_LOCAL_LOGIN", default_value_t = true, action = clap::ArgAction::Set)]
    pub local_login: bool,
    /// Sign-in with an OpenID provider: its issuer URL (discovery at `<issuer>/.well-known/openid-configuration`).
    #[arg(long, env = "DOCKWARD_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// The console's client id at the provider.
    #[arg(long, env = "DOCKWARD_OIDC_CLIENT_ID", default_value = "dockward")]
    pub oidc_client_id: String,
    /// A file holding the client secret (`DOCKWARD_OIDC_CLIENT_SECRET`, environment only, gives it directly).
    #[arg(long, env = "DOCKWARD_OIDC_CLIENT_SECRET_FILE")]
    pub oidc_client_secret_file: Option<PathBuf>,
    /// The scopes asked for.
    #[arg(long, env = "DOCKWARD_OIDC_SCOPES", default_value = "openid profile email groups")]
    pub oidc_scopes: String,
    /// The claim naming the user (a dotted path reaches into objects).
    #[arg(long, env = "DOCKWARD_OIDC_USERNAME_CLAIM", default_value = "preferred_username")]
    pub oidc_username_claim: String,
    /// The claim listing the user's groups (`realm_access.roles` for Keycloak's realm roles).
    #[arg(long, env = "DOCKWARD_OIDC_GROUPS_CLAIM", default_value = "groups")]
    pub oidc_groups_claim: String,
    /// Groups to grants: `group=role` (on the fleet) or `group=role@scope`, comma-separated.
    #[arg(long, env = "DOCKWARD_OIDC_GROUP_ROLES", default_value = "")]
    pub oidc_group_roles: String,
    /// Make a user at their first sign-in (`false`: only users made beforehand may sign in).
    #[arg(long, env = "DOCKWARD_OIDC_CREATE_USERS", default_value_t = true, action = clap::ArgAction::Set)]
    pub oidc_create_users: bool,
    /// The sign-in button's words: "Sign in with <label>".
    #[arg(long, env = "DOCKWARD_OIDC_LABEL", default_value = "single sign-on")]
    pub oidc_label: String,
    /// Registries (hosts, comma-separated) the console may ask for an image's tag list, to show
    /// newer versions; empty: any public registry name (never an address or a local name).
    #[arg(long, env = "DOCKWARD_TAG_REGISTRIES", value_delimiter = ',')]
    pub tag_registries: Vec<String>,
    /// Proxies (CIDRs, comma-separated) whose `X-Forwarded-For` names the client
    /// for login throttling (the right-most address that is not one of them).
    #[arg(long, env = "DOCKWARD_FORWARDED_FOR_PROXIES", value_delimiter = ',')]
    pub forwarded_for_proxies: Vec<String>,
    /// Log follows one user may have open at once.
    #[arg(long, env = "DOCKWARD_MAX_FOLLOWS_PER_USER", default_value_t = 4)]
    pub max_follows_per_user: usize,
    /// Requests per second one signed-in user may make on average (bursts of ten times that).
    #[arg(long, env = "DOCKWARD_USER_REQUESTS_PER_SECOND", default_value_t = 10)]
    pub user_requests_per_second: u32,
    /// Trust forward-auth headers from these proxy addresses (CIDRs, comma-separated).
    #[arg(long, env = "DOCKWARD_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Header naming the user (forward auth).
    #[arg(long, env = "DOCKWARD_AUTH_USER_HEADER", default_value = "Remote-User")]
    pub auth_user_header: String,
    /// Header listing the user's groups (forward auth), comma-separated.
    #[arg(long, env = "DOCKWARD_AUTH_GROUPS_HEADER", default_value = "Remote-Groups")]
    pub auth_groups_header: String,
    /// Group → role mapping for forward auth, e.g. `admins=admin,ops=operator,staff=viewer`.
    #[arg(long, env = "DOCKWARD_AUTH_GROUP_ROLES", default_value = "")]
    pub auth_group_roles: String,
    /// File holding the secret the proxy sends in `X-Dockward-Proxy-Secret`;
    /// when set, identity headers without it are ignored. (`DOCKWARD_FORWARD_AUTH_SECRET`
    /// gives the secret itself, from the environment only; the file is preferred.)
    #[arg(long, env = "DOCKWARD_FORWARD_AUTH_SECRET_FILE")]
    pub forward_auth_secret_file: Option<PathBuf>,
    /// File holding the bearer token (≥ 32 bytes) that lets a scraper read
    /// `/metrics` without a session; admins read it signed in. Without it
    /// (or `DOCKWARD_WEB_METRICS_TOKEN`, from the environment only), only admins can.
    #[arg(long, env = "DOCKWARD_WEB_METRICS_TOKEN_FILE")]
    pub metrics_token_file: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "DOCKWARD_LOG_FORMAT", value_enum, default_value = "human")]
    pub log_format: LogFormat,
}
