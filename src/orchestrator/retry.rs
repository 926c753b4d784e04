//! How long to wait before retrying the same provider: jittered exponential backoff that honours
//! an upstream's `Retry-After`, never longer than `routing.backoff_max_ms`.

use std::time::Duration;

/// Wait before retry number `retry` (0 = the first retry).
pub(super) fn backoff(retry: u32, base_ms: u64, max_ms: u64, retry_after: Option<Duration>) -> Duration {
    let exp = base_ms.saturating_mul(1u64 << retry.min(20)).min(max_ms);
    // Equal jitter: at least half the exponential step, so retries spread out but still back off.
    let half = exp / 2;
    let jittered = Duration::from_millis(half + fastrand::u64(0..=exp - half));
    let wanted = retry_after.map_or(jittered, |ra| ra.max(jittered));
    wanted.min(Duration::from_millis(max_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_within_bounds() {
        for retry in 0..6 {
            let d = backoff(retry, 100, 2_000, None).as_millis() as u64;
            let exp = (100u64 << retry).min(2_000);
            assert!(d >= exp / 2 && d <= exp, "retry {retry}: {d}ms");
        }
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        assert!(backoff(0, 100, 2_000, Some(Duration::from_millis(900))) >= Duration::from_millis(900));
        assert_eq!(
            backoff(0, 100, 2_000, Some(Duration::from_secs(60))),
            Duration::from_millis(2_000)
        );
    }
}
