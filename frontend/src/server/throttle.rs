//! Login throttling: the client's address (behind trusted proxies, from
//! `X-Forwarded-For`), progressive back-off per address and per name, and
//! sampled logging of the attempts it refuses.
//!
//! Back-off, not lockout: after a few free failures each further failure
//! doubles the wait before the next attempt, up to a cap. An attempt during
//! the wait is refused without looking at the password and does not count,
//! so a correct password after the wait always works: nobody can keep a name
//! locked for longer than the cap.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

/// The address a login attempt is counted against: the peer, or — when the
/// peer is one of `proxies` — the right-most `X-Forwarded-For` hop that is
/// not itself a trusted proxy (hops left of it are the client's to invent).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, proxies: &[ipnet::IpNet]) -> IpAddr {
    let trusted = |ip: &IpAddr| proxies.iter().any(|n| n.contains(ip));
    if !trusted(&peer) {
        return peer;
    }
    // Several X-Forwarded-For headers are one list, in order.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut last = peer;
    for hop in hops.iter().rev() {
        // Something unparsable is not an address we can count: stop at the
        // last hop we could (a trusted proxy's own).
        let Ok(ip) = hop.parse::<IpAddr>() else { return last };
        if !trusted(&ip) {
            return ip;
        }
        last = ip;
    }
    last
}

/// The back-off's shape: `free` failures cost nothing, then the wait is
/// `base · 2^(n − free)`, at most `cap`; a key with no failure for `forget`
/// starts over.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub free: u32,
    pub base: Duration,
    pub cap: Duration,
    pub forget: Duration,
}

impl Policy {
    /// The wait after `failures` consecutive failures.
    pub fn delay(&self, failures: u32) -> Duration {
        if failures < self.free {
            return Duration::ZERO;
        }
        let doublings = (failures - self.free).min(30);
        self.base.saturating_mul(1u32 << doublings).min(self.cap)
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
}

/// Consecutive failures per key (an address or a name), bounded in size.
pub struct Backoff<K> {
    policy: Policy,
    map: Mutex<HashMap<K, Entry>>,
}

const MAX_KEYS: usize = 100_000;

impl<K: Hash + Eq + Clone> Backoff<K> {
    pub fn new(policy: Policy) -> Self {
        Self { policy, map: Mutex::default() }
    }

    /// `Err(wait)` while `key` must still wait before its next attempt.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let Some(e) = map.get(key) else { return Ok(()) };
        if now.saturating_duration_since(e.last) >= self.policy.forget {
            return Ok(());
        }
        let until = e.last + self.policy.delay(e.failures);
        if now < until {
            Err(until - now)
        } else {
            Ok(())
        }
    }

    pub fn fail(&self, key: &K, now: Instant) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_KEYS {
            let forget = self.policy.forget;
            map.retain(|_, e| now.saturating_duration_since(e.last) < forget);
            if map.len() >= MAX_KEYS {
                // Still full of fresh failures: drop the oldest.
                if let Some(k) = map.iter().min_by_key(|(_, e)| e.last).map(|(k, _)| k.clone()) {
                    map.remove(&k);
                }
            }
        }
        let e = map.entry(key.clone()).or_insert(Entry { failures: 0, last: now });
        if now.saturating_duration_since(e.last) >= self.policy.forget {
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.last = now;
    }

    pub fn succeed(&self, key: &K) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

/// At most one log line per `every`; the lines in between are counted and
/// the count goes with the next line.
pub struct Sampler {
    every: Duration,
    last: Mutex<Option<Instant>>,
    skipped: AtomicU64,
}

impl Sampler {
    pub fn new(every: Duration) -> Self {
        Self { every, last: Mutex::new(None), skipped: AtomicU64::new(0) }
    }

    /// `Some(skipped since the last line)` when this event should be logged.
    pub fn sample(&self, now: Instant) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match *last {
            Some(t) if now.saturating_duration_since(t) < self.every => {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                None
            }
            _ => {
                *last = Some(now);
                Some(self.skipped.swap(0, Ordering::Relaxed))
            }
        }
    }
}

/// Per name: a few tries, then 1 s doubling up to a minute.
pub const BY_NAME: Policy =
    Policy { free: 5, base: Duration::from_secs(1), cap: Duration::from_secs(60), forget: Duration::from_secs(900) };
/// Per address: more tries (several people may share one), then 1 s
/// doubling up to five minutes.
pub const BY_ADDRESS: Policy =
    Policy { free: 10, base: Duration::from_secs(1), cap: Duration::from_secs(300), forget: Duration::from_secs(900) };

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn nets(s: &[&str]) -> Vec<ipnet::IpNet> {
        s.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn client_address_is_the_right_most_untrusted_hop() {
        let proxies = nets(&["10.0.0.0/8"]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 203.0.113.7"));
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.9"));
        // From a trusted proxy: skip trusted hops from the right; the client's own claim (6.6.6.6) is ignored.
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &proxies), ip("203.0.113.7"));
        // From anyone else: the header is the client's to invent.
        assert_eq!(client_ip(ip("192.0.2.1"), &h, &proxies), ip("192.0.2.1"));
        // No proxies configured: never read.
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &[]), ip("10.0.0.2"));
        // No header: the proxy's address.
        assert_eq!(client_ip(ip("10.0.0.2"), &HeaderMap::new(), &proxies), ip("10.0.0.2"));
        // Garbage stops the walk at the last trusted hop.
        let mut g = HeaderMap::new();
        g.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.7, junk, 10.0.0.5"));
        assert_eq!(client_ip(ip("10.0.0.2"), &g, &proxies), ip("10.0.0.5"));
        // Every hop trusted: the left-most.
        let mut t = HeaderMap::new();
        t.insert("x-forwarded-for", HeaderValue::from_static("10.1.1.1, 10.2.2.2"));
        assert_eq!(client_ip(ip("10.0.0.2"), &t, &proxies), ip("10.1.1.1"));
        // IPv6 hops.
        let mut v6 = HeaderMap::new();
        v6.insert("x-forwarded-for", HeaderValue::from_static("2001:db8::1"));
        assert_eq!(client_ip(ip("10.0.0.2"), &v6, &proxies), ip("2001:db8::1"));
    }

    #[test]
    fn delay_doubles_after_the_free_tries_up_to_the_cap() {
        let p = Policy {
            free: 3,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(10),
            forget: Duration::from_secs(60),
        };
        let d: Vec<u64> = (0..9).map(|n| p.delay(n).as_secs()).collect();
        assert_eq!(d, [0, 0, 0, 1, 2, 4, 8, 10, 10]);
        assert_eq!(p.delay(u32::MAX), Duration::from_secs(10), "no overflow");
    }

    #[test]
    fn back_off_refuses_during_the_wait_then_lets_one_try_through() {
        let p = Policy {
            free: 2,
            base: Duration::from_secs(4),
            cap: Duration::from_secs(16),
            forget: Duration::from_secs(60),
        };
        let b = Backoff::new(p);
        let t0 = Instant::now();
        let k = "admin".to_string();
        b.fail(&k, t0);
        assert!(b.check(&k, t0).is_ok(), "the first failure is free");
        b.fail(&k, t0);
        assert_eq!(b.check(&k, t0), Err(Duration::from_secs(4)));
        assert_eq!(b.check(&k, t0 + Duration::from_secs(1)), Err(Duration::from_secs(3)));
        // Refused attempts do not count: after the wait a try goes through.
        assert!(b.check(&k, t0 + Duration::from_secs(4)).is_ok());
        b.fail(&k, t0 + Duration::from_secs(4));
        assert_eq!(b.check(&k, t0 + Duration::from_secs(4)), Err(Duration::from_secs(8)));
        for i in 0..10 {
            b.fail(&k, t0 + Duration::from_secs(5 + i));
        }
        let t1 = t0 + Duration::from_secs(14);
        assert_eq!(b.check(&k, t1), Err(Duration::from_secs(16)), "capped");
        assert!(b.check(&k, t1 + Duration::from_secs(16)).is_ok(), "never locked longer than the cap");
        // Other keys are untouched; success and time forget.
        assert!(b.check(&"alice".to_string(), t1).is_ok());
        b.succeed(&k);
        assert!(b.check(&k, t1).is_ok());
        b.fail(&k, t1);
        b.fail(&k, t1);
        b.fail(&k, t1);
        assert!(b.check(&k, t1).is_err());
        assert!(b.check(&k, t1 + Duration::from_secs(60)).is_ok(), "forgotten after a quiet spell");
        b.fail(&k, t1 + Duration::from_secs(60));
        assert!(b.check(&k, t1 + Duration::from_secs(60)).is_ok(), "counting starts over");
    }

    #[test]
    fn sampler_logs_one_line_per_period_with_the_count_skipped() {
        let s = Sampler::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(s.sample(t0), Some(0));
        for i in 1..=5 {
            assert_eq!(s.sample(t0 + Duration::from_secs(i)), None);
        }
        assert_eq!(s.sample(t0 + Duration::from_secs(10)), Some(5));
        assert_eq!(s.sample(t0 + Duration::from_secs(11)), None);
    }
}
