//! In-process limits: one governor keyed limiter per quota, and per-minute token windows.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use governor::RateLimiter;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;

use super::{Decision, Quota};

/// A keyed limiter that reports the remaining burst on success.
type Keyed = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

#[derive(Debug, Default)]
pub(super) struct LocalLimiter {
    limiters: DashMap<Quota, Arc<Keyed>>,
    tokens: DashMap<String, (u64, u64)>,
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

fn current_minute() -> (u64, Duration) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let minute = now.as_secs() / 60;
    (minute, Duration::from_secs((minute + 1) * 60).saturating_sub(now))
}

impl LocalLimiter {
    pub(super) fn check(&self, scope: &str, key: &str, quota: Quota) -> Decision {
        let limiter = self
            .limiters
            .entry(quota)
            .or_insert_with(|| {
                let q = governor::Quota::per_minute(nz(quota.per_minute)).allow_burst(nz(quota.burst));
                Arc::new(RateLimiter::keyed(q).with_middleware::<StateInformationMiddleware>())
            })
            .clone();
        let emission = Duration::from_secs(60) / quota.per_minute.max(1);
        let burst = quota.burst.max(1);
        match limiter.check_key(&format!("{scope}:{key}")) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Decision {
                    allowed: true,
                    limit: burst,
                    remaining,
                    retry_after: Duration::ZERO,
                    reset_after: emission * (burst - remaining.min(burst)),
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Decision {
                    allowed: false,
                    limit: burst,
                    remaining: 0,
                    retry_after: wait,
                    reset_after: emission * burst,
                }
            }
        }
    }

    pub(super) fn tokens_exhausted(&self, key: &str, tpm: u64) -> Option<Duration> {
        let (minute, reset) = current_minute();
        let used = self.tokens.get(key).filter(|e| e.0 == minute).map_or(0, |e| e.1);
        (used >= tpm).then_some(reset)
    }

    pub(super) fn add_tokens(&self, key: &str, tokens: u64) {
        let (minute, _) = current_minute();
        let mut entry = self.tokens.entry(key.to_owned()).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 += tokens;
    }

    pub(super) fn housekeeping(&self) {
        for limiter in self.limiters.iter() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        let (minute, _) = current_minute();
        self.tokens.retain(|_, (m, _)| *m == minute);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_burst_requests_pass_then_retry_after_is_given() {
        let l = LocalLimiter::default();
        let q = Quota {
            per_minute: 60,
            burst: 3,
        };
        let decisions: Vec<Decision> = (0..4).map(|_| l.check("key", "a", q)).collect();
        assert_eq!(decisions.iter().filter(|d| d.allowed).count(), 3);
        assert_eq!(decisions.iter().map(|d| d.remaining).collect::<Vec<_>>(), [2, 1, 0, 0]);
        assert!(!decisions[3].allowed);
        assert!(decisions[3].retry_after > Duration::ZERO && decisions[3].retry_after <= Duration::from_secs(1));
        assert!(l.check("key", "b", q).allowed, "another caller has its own budget");
    }

    #[test]
    fn tokens_are_counted_per_minute() {
        let l = LocalLimiter::default();
        assert!(l.tokens_exhausted("a", 100).is_none());
        l.add_tokens("a", 60);
        assert!(l.tokens_exhausted("a", 100).is_none());
        l.add_tokens("a", 40);
        assert!(l.tokens_exhausted("a", 100).is_some());
        assert!(l.tokens_exhausted("b", 100).is_none());
    }
}
