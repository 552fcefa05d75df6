//! Summarising repeated refusals. The first refusal of a (verb, reason,
//! client key, actor) in a window gets its own record; the rest are counted
//! and written as one `denied.summary` record per key when the window closes.
//! A flood of bad requests then costs the disk a bounded number of records per
//! window, and the counters a bounded amount of memory.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Distinct keys counted per window; refusals of further keys are counted together.
pub const MAX_KEYS: usize = 1024;

/// What a refusal is grouped by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DenialKey {
    pub verb: String,
    /// The HTTP status, e.g. `429`.
    pub reason: String,
    pub client: String,
    pub actor: Option<String>,
}

/// The refusals of one key that were counted, not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// `None` for refusals of keys beyond [`MAX_KEYS`], counted together.
    pub key: Option<DenialKey>,
    pub count: u64,
    pub window: Duration,
}

#[derive(Debug)]
pub struct Denials {
    window: Duration,
    started: Instant,
    /// Key → refusals counted (not recorded) in this window.
    seen: HashMap<DenialKey, u64>,
    overflow: u64,
}

impl Denials {
    pub fn new(window: Duration, now: Instant) -> Self {
        Self { window: window.max(Duration::from_secs(1)), started: now, seen: HashMap::new(), overflow: 0 }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// True when this refusal should get its own record (the first of its key
    /// in the window); false when it was counted for the summary.
    pub fn admit(&mut self, key: DenialKey, now: Instant) -> bool {
        if now.duration_since(self.started) >= self.window && self.seen.is_empty() && self.overflow == 0 {
            // Nothing to summarise: start a new window here.
            self.started = now;
        }
        let room = self.seen.len() < MAX_KEYS;
        match self.seen.get_mut(&key) {
            Some(n) => {
                *n += 1;
                false
            }
            None if room => {
                self.seen.insert(key, 0);
                true
            }
            None => {
                self.overflow += 1;
                false
            }
        }
    }

    /// When the window has closed (or `force`): the counts to write, and a new
    /// window. Keys whose only refusal was recorded produce nothing.
    pub fn take(&mut self, now: Instant, force: bool) -> Vec<Summary> {
        if !force && now.duration_since(self.started) < self.window {
            return Vec::new();
        }
        let window = now.duration_since(self.started);
        self.started = now;
        let mut out: Vec<Summary> = self
            .seen
            .drain()
            .filter(|(_, n)| *n > 0)
            .map(|(key, count)| Summary { key: Some(key), count, window })
            .collect();
        out.sort_by(|a, b| {
            a.key.as_ref().map(|k| (&k.verb, &k.reason)).cmp(&b.key.as_ref().map(|k| (&k.verb, &k.reason)))
        });
        if self.overflow > 0 {
            out.push(Summary { key: None, count: std::mem::take(&mut self.overflow), window });
        }
        self.seen.shrink_to(MAX_KEYS.min(64));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(verb: &str, reason: &str, actor: Option<&str>) -> DenialKey {
        DenialKey { verb: verb.into(), reason: reason.into(), client: "key:a".into(), actor: actor.map(Into::into) }
    }

    #[test]
    fn first_of_a_key_is_recorded_the_rest_counted() {
        let t0 = Instant::now();
        let mut d = Denials::new(Duration::from_secs(60), t0);
        assert!(d.admit(key("stats", "429", Some("bob")), t0));
        for _ in 0..99 {
            assert!(!d.admit(key("stats", "429", Some("bob")), t0));
        }
        // Another reason, verb or actor is its own key.
        assert!(d.admit(key("stats", "400", Some("bob")), t0));
        assert!(d.admit(key("logs", "429", Some("bob")), t0));
        assert!(d.admit(key("stats", "429", Some("eve")), t0));
        assert!(d.take(t0 + Duration::from_secs(59), false).is_empty(), "window still open");
        let s = d.take(t0 + Duration::from_secs(60), false);
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].key, Some(key("stats", "429", Some("bob"))));
        assert_eq!(s[0].count, 99);
        // A new window: the first one is recorded again.
        assert!(d.admit(key("stats", "429", Some("bob")), t0 + Duration::from_secs(61)));
    }

    #[test]
    fn memory_is_bounded_by_the_key_cap() {
        let t0 = Instant::now();
        let mut d = Denials::new(Duration::from_secs(60), t0);
        let mut recorded = 0;
        for i in 0..(MAX_KEYS + 500) {
            recorded += usize::from(d.admit(key("stats", "404", Some(&format!("u{i}"))), t0));
        }
        assert_eq!(recorded, MAX_KEYS);
        assert_eq!(d.seen.len(), MAX_KEYS);
        let s = d.take(t0, true);
        assert_eq!(s, vec![Summary { key: None, count: 500, window: Duration::ZERO }]);
        assert!(d.seen.is_empty());
    }

    #[test]
    fn forced_take_flushes_early() {
        let t0 = Instant::now();
        let mut d = Denials::new(Duration::from_secs(60), t0);
        d.admit(key("restart", "403", None), t0);
        d.admit(key("restart", "403", None), t0);
        assert_eq!(d.take(t0, false), vec![]);
        let s = d.take(t0 + Duration::from_secs(1), true);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].count, 1);
    }
}
