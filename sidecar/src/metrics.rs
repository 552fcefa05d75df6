//! Prometheus metrics (prometheus-client), served at /metrics in the
//! Prometheus text format 0.0.4: what Prometheus and `promtool check metrics`
//! read, counters named with their `_total` suffix on every line (the
//! OpenMetrics text names a counter's family without it).

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

type Labels = Vec<(&'static str, String)>;

pub struct Metrics {
    registry: Registry,
    pub requests: Family<Labels, Counter>,
    pub docker_latency: Family<Labels, Histogram, fn() -> Histogram>,
    pub cache: Family<Labels, Counter>,
    pub containers_tracked: Gauge,
    pub audit_records: Family<Labels, Counter>,
    pub docker_up: Gauge,
    pub auth_refused_blocked: Counter,
    pub stats_source: Family<Labels, Gauge>,
    pub stats_engine_fallbacks: Gauge,
    pub stats_window_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
}

fn latency_histogram() -> Histogram {
    Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("dockward");
        let requests = Family::<Labels, Counter>::default();
        registry.register("requests", "Requests by verb and HTTP status", requests.clone());
        let docker_latency = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "docker_call_duration_seconds",
            "Docker Engine API call latency by call",
            docker_latency.clone(),
        );
        let cache = Family::<Labels, Counter>::default();
        registry.register("cache", "Cache lookups by cache and result (hit/miss)", cache.clone());
        let containers_tracked = Gauge::default();
        registry.register(
            "containers_tracked",
            "Running containers in the latest stats round",
            containers_tracked.clone(),
        );
        let audit_records = Family::<Labels, Counter>::default();
        registry.register("audit_records", "Audit records written by outcome", audit_records.clone());
        let docker_up = Gauge::default();
        registry.register("docker_up", "1 when the Docker engine answered the last health probe", docker_up.clone());
        let auth_refused_blocked = Counter::default();
        registry.register(
            "auth_refused_blocked",
            "Requests refused unaudited because their address is over its failed-auth budget",
            auth_refused_blocked.clone(),
        );
        let stats_source = Family::<Labels, Gauge>::default();
        registry.register(
            "stats_source",
            "1 for the source of the latest stats round (kernel: cgroup files; engine: its stats API)",
            stats_source.clone(),
        );
        let stats_engine_fallbacks = Gauge::default();
        registry.register(
            "stats_engine_fallbacks",
            "Containers of the latest round read from the engine because their cgroup could not be",
            stats_engine_fallbacks.clone(),
        );
        let stats_window_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "stats_window_seconds",
            "The stats refresher's window now (short while someone asks for stats)",
            stats_window_seconds.clone(),
        );
        Self {
            registry,
            requests,
            docker_latency,
            cache,
            containers_tracked,
            audit_records,
            docker_up,
            auth_refused_blocked,
            stats_source,
            stats_engine_fallbacks,
            stats_window_seconds,
        }
    }
}

impl Metrics {
    pub fn cache_lookup(&self, cache: &'static str, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.cache.get_or_create(&vec![("cache", cache.to_owned()), ("result", result.to_owned())]).inc();
    }

    pub fn docker_call(&self, call: &'static str, seconds: f64) {
        self.docker_latency.get_or_create(&vec![("call", call.to_owned())]).observe(seconds);
    }

    /// The exposition, in the Prometheus text format ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_with_total_on_every_line() {
        let m = Metrics::default();
        m.requests.get_or_create(&vec![("verb", "stats".to_owned()), ("status", "200".to_owned())]).inc();
        m.docker_call("ping", 0.002);
        let text = m.render();
        assert!(text.contains("# HELP dockward_requests_total Requests by verb and HTTP status.\n"), "{text}");
        assert!(text.contains("# TYPE dockward_requests_total counter\n"), "{text}");
        assert!(text.contains("dockward_requests_total{verb=\"stats\",status=\"200\"} 1\n"), "{text}");
        assert!(text.contains("dockward_docker_call_duration_seconds_count{call=\"ping\"} 1\n"), "{text}");
        assert!(!text.contains("# EOF"), "{text}");
    }
}
