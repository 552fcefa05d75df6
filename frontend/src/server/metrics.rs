//! The console's Prometheus metrics (prometheus-client), served at
//! `GET /metrics` in the Prometheus text format 0.0.4 to an admin or to a
//! scraper holding the metrics token: hosts by status, open live streams,
//! sidecar call latency by host and verb, failed logins and server-function
//! errors. Every label takes its values from a fixed set (the configured
//! hosts, the verb table, the registered server functions, the error kinds),
//! so no request can add a series.

use prometheus_client::encoding::{prometheus_text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ConsoleError;
use crate::model::HostStatus;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Where server functions live (`server_fns.rs`).
const FN_PREFIX: &str = "/api/fn/";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HostStatusLabels {
    host: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabel {
    stream: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    host: String,
    verb: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FnErrorLabels {
    function: &'static str,
    error: &'static str,
}

/// A host's status as a label value.
pub fn status_label(s: &HostStatus) -> &'static str {
    match s {
        HostStatus::Connected => "up",
        HostStatus::Stale { .. } => "stale",
        HostStatus::Down { .. } => "down",
        HostStatus::IdentityChanged { .. } => "identity_changed",
    }
}

const STATUSES: [&str; 4] = ["up", "stale", "down", "identity_changed"];

/// An error's kind: its tag on the wire (`{"error": "<kind>", …}`).
pub fn error_kind(e: &ConsoleError) -> &'static str {
    match e {
        ConsoleError::NotSignedIn => "not_signed_in",
        ConsoleError::Forbidden { .. } => "forbidden",
        ConsoleError::NotGranted { .. } => "not_granted",
        ConsoleError::Csrf => "csrf",
        ConsoleError::PasswordChangeRequired => "password_change_required",
        ConsoleError::TotpRequired => "totp_required",
        ConsoleError::HostUnreachable { .. } => "host_unreachable",
        ConsoleError::SidecarRefused { .. } => "sidecar_refused",
        ConsoleError::BadInput { .. } => "bad_input",
        ConsoleError::NotFound { .. } => "not_found",
        ConsoleError::Busy { .. } => "busy",
        ConsoleError::Internal { .. } => "internal",
    }
}

/// Why a login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    /// No such user, or the wrong password.
    Invalid,
    /// During the back-off after earlier failures (the password is not checked).
    Throttled,
    /// A name or password too long to be checked.
    Malformed,
}

impl LoginFailure {
    fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::Throttled => "throttled",
            Self::Malformed => "malformed",
        }
    }
}

/// Which kind of long-lived stream a browser holds open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// `GET /api/live`: the fleet as Server-Sent Events.
    Fleet,
    /// `GET /api/logs/follow`: a container's log.
    Follow,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Self::Fleet => "fleet",
            Self::Follow => "follow",
        }
    }
}

/// Counts one open stream for as long as it lives.
pub struct StreamGuard(Gauge);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
}

pub struct Metrics {
    registry: Registry,
    hosts: Family<StatusLabel, Gauge>,
    host_status: Family<HostStatusLabels, Gauge>,
    streams: Family<StreamLabel, Gauge>,
    sidecar_calls: Family<CallLabels, Histogram, fn() -> Histogram>,
    login_failures: Family<ReasonLabel, Counter>,
    server_fn_errors: Family<FnErrorLabels, Counter>,
    /// The registered server functions' paths (the `function` label's values).
    server_fns: Vec<&'static str>,
    alert_evaluation: Counter<f64, std::sync::atomic::AtomicU64>,
    alerts_firing: Gauge,
    alert_sends: Family<OutcomeLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("dockward_web");
        let hosts = Family::<StatusLabel, Gauge>::default();
        registry.register("hosts", "Configured hosts by status (up, stale, down)", hosts.clone());
        let host_status = Family::<HostStatusLabels, Gauge>::default();
        registry.register(
            "host_status",
            "1 for each host's current status (up, stale or down), 0 for the others",
            host_status.clone(),
        );
        let streams = Family::<StreamLabel, Gauge>::default();
        registry.register(
            "live_streams",
            "Long-lived streams open to browsers: fleet (/api/live) and log follows",
            streams.clone(),
        );
        let sidecar_calls = Family::<CallLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "sidecar_call_duration_seconds",
            "Calls to sidecars by host and verb, until the answer was read (streams: until it began), failures included",
            sidecar_calls.clone(),
        );
        let login_failures = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "login_failures",
            "Refused logins by reason (invalid, throttled, malformed)",
            login_failures.clone(),
        );
        let server_fn_errors = Family::<FnErrorLabels, Counter>::default();
        registry.register(
            "server_fn_errors",
            "Server functions (/api/fn/*) answered with an error, by function and error kind",
            server_fn_errors.clone(),
        );
        let alert_evaluation = Counter::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "alert_evaluation_seconds",
            "Time spent evaluating alert rules over the fleet (the leading replica only)",
            alert_evaluation.clone(),
        );
        let alerts_firing = Gauge::default();
        registry.register("alerts_firing", "Alert incidents firing now", alerts_firing.clone());
        let alert_sends = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "alert_notifications",
            "Alert notifications tried, by outcome (sent, retry: failed and tried again later, failed: given up)",
            alert_sends.clone(),
        );
        for o in ["sent", "retry", "failed"] {
            let _ = alert_sends.get_or_create(&OutcomeLabel { outcome: o });
        }
        // Zero from the start, so a rate is defined before the first event.
        for s in [Stream::Fleet, Stream::Follow] {
            let _ = streams.get_or_create(&StreamLabel { stream: s.as_str() });
        }
        for r in [LoginFailure::Invalid, LoginFailure::Throttled, LoginFailure::Malformed] {
            let _ = login_failures.get_or_create(&ReasonLabel { reason: r.as_str() });
        }
        let server_fns = leptos::server_fn::axum::server_fn_paths().map(|(path, _)| path).collect();
        Self {
            registry,
            hosts,
            host_status,
            streams,
            sidecar_calls,
            login_failures,
            server_fns,
            server_fn_errors,
            alert_evaluation,
            alerts_firing,
            alert_sends,
        }
    }
}

impl Metrics {
    /// One round of alert rules took `seconds`.
    pub fn alert_evaluated(&self, seconds: f64) {
        self.alert_evaluation.inc_by(seconds);
    }

    pub fn alerts_firing(&self, n: i64) {
        self.alerts_firing.set(n);
    }

    /// A notification was tried: `sent`, `retry` or `failed`.
    pub fn alert_sent(&self, outcome: &'static str) {
        self.alert_sends.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// One call to a sidecar took `seconds`.
    pub fn sidecar_call(&self, host: &str, verb: shared::Verb, seconds: f64) {
        self.sidecar_calls
            .get_or_create(&CallLabels { host: host.to_owned(), verb: verb.spec().name })
            .observe(seconds);
    }

    pub fn login_failed(&self, why: LoginFailure) {
        self.login_failures.get_or_create(&ReasonLabel { reason: why.as_str() }).inc();
    }

    /// A server function at `path` answered `e`; a path that names no
    /// registered function counts as `other`.
    pub fn server_fn_error(&self, path: &str, e: &ConsoleError) {
        let function =
            self.server_fns.iter().find(|p| **p == path).map_or("other", |p| p.strip_prefix(FN_PREFIX).unwrap_or(p));
        self.server_fn_errors.get_or_create(&FnErrorLabels { function, error: error_kind(e) }).inc();
    }

    /// Counts a stream open until the guard is dropped.
    pub fn stream_opened(&self, stream: Stream) -> StreamGuard {
        let g = self.streams.get_or_create(&StreamLabel { stream: stream.as_str() }).clone();
        g.inc();
        StreamGuard(g)
    }

    /// The exposition, with the hosts' gauges set from `hosts` (name and
    /// status of every configured host, as the fleet sees them now).
    pub fn render<'a>(&self, hosts: impl IntoIterator<Item = (&'a str, &'static str)>) -> String {
        let mut counts = [0i64; STATUSES.len()];
        for (host, status) in hosts {
            for (i, s) in STATUSES.iter().enumerate() {
                let on = *s == status;
                counts[i] += i64::from(on);
                self.host_status
                    .get_or_create(&HostStatusLabels { host: host.to_owned(), status: s })
                    .set(i64::from(on));
            }
        }
        for (s, n) in STATUSES.iter().zip(counts) {
            self.hosts.get_or_create(&StatusLabel { status: s }).set(n);
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut text, &self.registry);
        text
    }
}

/// The bearer token that lets a scraper read `/metrics`, kept as its
/// SHA-256 digest: a presented token is hashed and compared in constant time,
/// so neither its bytes nor its length show in the timing.
pub struct MetricsToken([u8; 32]);

impl MetricsToken {
    /// From a token file's text (or the variable's value): one line of at
    /// least 32 bytes (a trailing newline is dropped).
    pub fn new(text: &str) -> Result<Self, String> {
        let token = text.trim_end_matches(['\n', '\r']);
        if token.len() < 32 {
            return Err("the metrics token must be at least 32 bytes".into());
        }
        if token.contains(['\n', '\r']) || token.trim() != token {
            return Err("the metrics token must be one line without surrounding spaces".into());
        }
        Ok(Self(Sha256::digest(token.as_bytes()).into()))
    }

    pub fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        bool::from(digest.ct_eq(&self.0))
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_are_the_wire_tags() {
        let all = [
            ConsoleError::NotSignedIn,
            ConsoleError::Forbidden { needed: shared::Role::Admin, have: shared::Role::Viewer },
            ConsoleError::NotGranted { needed: shared::Role::Admin, on: "fleet".into() },
            ConsoleError::Csrf,
            ConsoleError::PasswordChangeRequired,
            ConsoleError::TotpRequired,
            ConsoleError::HostUnreachable { host: "h".into(), reason: "r".into() },
            ConsoleError::SidecarRefused { host: "h".into(), status: 404, code: "c".into(), message: "m".into() },
            ConsoleError::bad_input("f", "m"),
            ConsoleError::NotFound { what: "w".into() },
            ConsoleError::Busy { what: "w".into() },
            ConsoleError::internal("m"),
        ];
        for e in all {
            let wire = serde_json::to_value(&e).unwrap();
            assert_eq!(wire["error"], error_kind(&e), "{e:?}");
        }
    }

    #[test]
    fn the_exposition_counts_hosts_streams_logins_and_errors() {
        let m = Metrics::default();
        m.sidecar_call("db1", shared::Verb::ListContainers, 0.02);
        m.login_failed(LoginFailure::Invalid);
        m.login_failed(LoginFailure::Invalid);
        m.server_fn_error("/api/fn/fleet", &ConsoleError::NotSignedIn);
        m.server_fn_error("/api/fn/no-such-function", &ConsoleError::Csrf);
        let open = m.stream_opened(Stream::Fleet);
        let _other = m.stream_opened(Stream::Fleet);
        drop(open);
        let text = m.render([("db1", "up"), ("db2", "down"), ("db3", "up")]);
        for line in [
            "# TYPE dockward_web_hosts gauge",
            "dockward_web_hosts{status=\"up\"} 2",
            "dockward_web_hosts{status=\"stale\"} 0",
            "dockward_web_hosts{status=\"down\"} 1",
            "dockward_web_host_status{host=\"db2\",status=\"down\"} 1",
            "dockward_web_host_status{host=\"db2\",status=\"up\"} 0",
            "dockward_web_live_streams{stream=\"fleet\"} 1",
            "dockward_web_live_streams{stream=\"follow\"} 0",
            "# TYPE dockward_web_sidecar_call_duration_seconds histogram",
            "dockward_web_sidecar_call_duration_seconds_count{host=\"db1\",verb=\"list_containers\"} 1",
            "# TYPE dockward_web_login_failures_total counter",
            "dockward_web_login_failures_total{reason=\"invalid\"} 2",
            "dockward_web_login_failures_total{reason=\"throttled\"} 0",
            "dockward_web_server_fn_errors_total{function=\"fleet\",error=\"not_signed_in\"} 1",
            "dockward_web_server_fn_errors_total{function=\"other\",error=\"csrf\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
        }
        // A host's status moves: its old one drops to 0.
        let text = m.render([("db1", "up"), ("db2", "up"), ("db3", "stale")]);
        assert!(text.contains("dockward_web_host_status{host=\"db2\",status=\"down\"} 0\n"), "{text}");
        assert!(text.contains("dockward_web_hosts{status=\"up\"} 2\n"), "{text}");
        assert!(text.contains("dockward_web_hosts{status=\"down\"} 0\n"), "{text}");
    }

    #[test]
    fn the_token_is_long_one_line_and_compared_whole() {
        assert!(MetricsToken::new("short").is_err());
        assert!(MetricsToken::new(" padded-token-0123456789abcdef0123456789").is_err());
        assert!(MetricsToken::new("two\nlines-0123456789abcdef0123456789abcdef").is_err());
        let t = MetricsToken::new("the-metrics-token-0123456789abcdef0123\n").unwrap();
        assert!(t.matches("the-metrics-token-0123456789abcdef0123"));
        assert!(!t.matches("the-metrics-token-0123456789abcdef012"), "a prefix");
        assert!(!t.matches("the-metrics-token-0123456789abcdef01234"), "longer");
        assert!(!t.matches(""));
        assert_eq!(format!("{t:?}"), "MetricsToken(..)");
    }
}
