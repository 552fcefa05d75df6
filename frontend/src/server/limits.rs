//! Per-user limits: a request rate (governor, per user name) and a cap on
//! concurrent log follows, so one user cannot take every streaming slot of
//! a sidecar or flood its audit log through the console.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::{DefaultKeyedRateLimiter, Quota};

use crate::error::ConsoleError;

pub struct UserLimits {
    requests: DefaultKeyedRateLimiter<String>,
    follows: Arc<Follows>,
}

struct Follows {
    max: usize,
    open: Mutex<HashMap<String, usize>>,
}

/// One open follow; the slot is given back when this is dropped (the
/// stream ended or the browser went away).
pub struct FollowSlot {
    follows: Arc<Follows>,
    user: String,
}

impl Drop for FollowSlot {
    fn drop(&mut self) {
        let mut open = self.follows.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}

impl UserLimits {
    /// `per_second` requests per user on average, bursts of ten times that;
    /// `follows` concurrent log follows per user.
    pub fn new(per_second: u32, follows: usize) -> Self {
        let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let burst = rate.saturating_mul(NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN));
        Self {
            requests: DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            follows: Arc::new(Follows { max: follows, open: Mutex::default() }),
        }
    }

    /// One request by `user`: refused while they are over their rate.
    pub fn request(&self, user: &str) -> Result<(), ConsoleError> {
        if self.requests.len() > 100_000 {
            self.requests.retain_recent();
        }
        self.requests
            .check_key(&user.to_owned())
            .map_err(|_| ConsoleError::Busy { what: "requests from you; slow down".into() })
    }

    /// A follow slot for `user`, or `Busy` when they hold the maximum.
    pub fn follow(&self, user: &str) -> Result<FollowSlot, ConsoleError> {
        let mut open = self.follows.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(user.to_owned()).or_insert(0);
        if *n >= self.follows.max {
            return Err(ConsoleError::Busy {
                what: format!("log follows open at once (at most {} per user); close one", self.follows.max),
            });
        }
        *n += 1;
        Ok(FollowSlot { follows: self.follows.clone(), user: user.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_are_capped_per_user_and_given_back_on_drop() {
        let l = UserLimits::new(10, 2);
        let a = l.follow("alice").unwrap();
        let _b = l.follow("alice").unwrap();
        assert!(matches!(l.follow("alice"), Err(ConsoleError::Busy { .. })));
        let _c = l.follow("bob").expect("other users have their own slots");
        drop(a);
        assert!(l.follow("alice").is_ok(), "a closed follow frees its slot");
    }

    #[test]
    fn requests_are_rate_limited_per_user() {
        let l = UserLimits::new(1, 1);
        let ok = (0..30).filter(|_| l.request("alice").is_ok()).count();
        assert_eq!(ok, 10, "a burst of ten, then refused");
        assert!(l.request("bob").is_ok());
        assert_eq!(l.request("alice").unwrap_err().status(), 429);
    }
}
