//! Rate limits (governor), one keyed limiter per verb class.

use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::{Rate, ServeArgs};
use crate::error::ApiError;

/// A keyed limiter that answers with the `ApiError` a handler returns.
pub struct Limiter<K: std::hash::Hash + Eq + Clone> {
    inner: DefaultKeyedRateLimiter<K>,
    clock: DefaultClock,
}

impl<K: std::hash::Hash + Eq + Clone> Limiter<K> {
    pub fn new(rate: Rate) -> Self {
        let count = NonZeroU32::new(rate.count).unwrap_or(NonZeroU32::MIN);
        let period = rate.per / count.get();
        let quota = Quota::with_period(period).unwrap_or_else(|| Quota::per_second(count)).allow_burst(count);
        Self { inner: DefaultKeyedRateLimiter::keyed(quota), clock: DefaultClock::default() }
    }

    pub fn check(&self, key: &K) -> Result<(), ApiError> {
        self.inner.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            ApiError::RateLimited { retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0) }
        })
    }

    /// Forgets keys whose buckets are full again, bounding memory.
    pub fn forget_idle(&self) {
        self.inner.retain_recent();
        self.inner.shrink_to_fit();
    }
}

/// The sidecar's limiters. Keys are client key ids (never secrets), plus the
/// container id for restarts and the remote address for failed logins.
pub struct RateLimits {
    /// Addresses refused outright until the given time (after tripping `auth_failure`).
    blocked: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, std::time::Instant>>,
    pub read: Limiter<String>,
    pub restart: Limiter<(String, String)>,
    /// Restart requests per client key, any container: spent before any work.
    pub restart_client: Limiter<String>,
    pub prune: Limiter<String>,
    pub pull: Limiter<String>,
    pub auth_failure: Limiter<std::net::IpAddr>,
}

impl RateLimits {
    pub fn new(args: &ServeArgs) -> Self {
        Self {
            blocked: Default::default(),
            read: Limiter::new(args.rate_read),
            restart: Limiter::new(args.rate_restart),
            restart_client: Limiter::new(args.rate_restart_client),
            prune: Limiter::new(args.rate_prune),
            pull: Limiter::new(args.rate_pull),
            auth_failure: Limiter::new(args.rate_auth_failure),
        }
    }

    /// Seconds an address must still wait, if it is blocked.
    pub fn auth_blocked(&self, ip: std::net::IpAddr) -> Option<u64> {
        let now = std::time::Instant::now();
        let map = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&ip).filter(|until| **until > now).map(|until| (*until - now).as_secs().max(1))
    }

    pub fn block_auth(&self, ip: std::net::IpAddr, secs: u64) {
        let mut map = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: at most 10 000 blocked addresses are remembered.
        if map.len() >= 10_000 {
            let now = std::time::Instant::now();
            map.retain(|_, until| *until > now);
        }
        if map.len() < 10_000 {
            map.insert(ip, std::time::Instant::now() + std::time::Duration::from_secs(secs.max(1)));
        }
    }

    pub fn forget_idle(&self) {
        let now = std::time::Instant::now();
        self.blocked.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, until| *until > now);
        self.read.forget_idle();
        self.restart.forget_idle();
        self.restart_client.forget_idle();
        self.prune.forget_idle();
        self.pull.forget_idle();
        self.auth_failure.forget_idle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refuse_with_retry_after() {
        let l = Limiter::new(Rate { count: 3, per: Duration::from_secs(60) });
        let k = "a".to_string();
        for _ in 0..3 {
            l.check(&k).unwrap();
        }
        match l.check(&k) {
            Err(ApiError::RateLimited { retry_after_secs }) => assert!((1..=20).contains(&retry_after_secs)),
            other => panic!("expected rate limit, got {other:?}"),
        }
        // Another key has its own bucket.
        l.check(&"b".to_string()).unwrap();
    }
}
