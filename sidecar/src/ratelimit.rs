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
    pub read: Limiter<String>,
    pub restart: Limiter<(String, String)>,
    pub prune: Limiter<String>,
    pub pull: Limiter<String>,
    pub auth_failure: Limiter<std::net::IpAddr>,
}

impl RateLimits {
    pub fn new(args: &ServeArgs) -> Self {
        Self {
            read: Limiter::new(args.rate_read),
            restart: Limiter::new(args.rate_restart),
            prune: Limiter::new(args.rate_prune),
            pull: Limiter::new(args.rate_pull),
            auth_failure: Limiter::new(args.rate_auth_failure),
        }
    }

    pub fn forget_idle(&self) {
        self.read.forget_idle();
        self.restart.forget_idle();
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
