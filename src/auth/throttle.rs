//! Throttling of operator-token guesses per peer address: a governor keyed limiter counts failed
//! admin and worker authentications; once a peer's burst is spent it is refused (429) until the
//! next failure would be allowed, whatever it sends, so a right guess is not confirmed either.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use dashmap::DashMap;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Failures allowed at once before a peer is throttled.
pub const FAILURE_BURST: u32 = 10;
/// One more failure is allowed every this often.
const FAILURE_PERIOD: Duration = Duration::from_secs(6);
/// Past this many blocked peers, expired entries are dropped on the next block.
const PRUNE_AT: usize = 4096;

/// Failed operator authentications per peer.
#[derive(Debug)]
pub struct FailureThrottle {
    failures: DefaultKeyedRateLimiter<IpAddr>,
    blocked: DashMap<IpAddr, Instant>,
}

impl Default for FailureThrottle {
    fn default() -> Self {
        let burst = NonZeroU32::new(FAILURE_BURST).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(FAILURE_PERIOD)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        Self {
            failures: RateLimiter::keyed(quota),
            blocked: DashMap::new(),
        }
    }
}

impl FailureThrottle {
    /// How long `peer` must still wait, if it is throttled now.
    pub fn blocked(&self, peer: Option<IpAddr>) -> Option<Duration> {
        let until = *self.blocked.get(&peer?)?;
        until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
    }

    /// Records a failure from `peer`; returns how long it is now throttled, if it is.
    pub fn failed(&self, peer: Option<IpAddr>) -> Option<Duration> {
        let peer = peer?;
        let not_until = self.failures.check_key(&peer).err()?;
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        if self.blocked.len() >= PRUNE_AT {
            let now = Instant::now();
            self.blocked.retain(|_, until| *until > now);
        }
        self.blocked.insert(peer, Instant::now() + wait);
        Some(wait)
    }

    /// Forgets peers with nothing left to remember (memory stays flat under address churn).
    pub fn housekeeping(&self) {
        self.failures.retain_recent();
        let now = Instant::now();
        self.blocked.retain(|_, until| *until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_failures_blocks_the_peer_and_only_that_peer() {
        let t = FailureThrottle::default();
        let a = Some("10.0.0.1".parse().unwrap());
        let b = Some("10.0.0.2".parse().unwrap());
        for _ in 0..FAILURE_BURST {
            assert!(t.failed(a).is_none());
        }
        assert!(t.blocked(a).is_none());
        let wait = t.failed(a).unwrap();
        assert!(wait > Duration::ZERO && wait <= FAILURE_PERIOD);
        assert!(t.blocked(a).is_some());
        assert!(t.blocked(b).is_none());
        assert!(t.failed(None).is_none());
    }
}
