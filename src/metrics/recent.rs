//! Recent per-provider facts for `/provider/status`: the last error and the median latency of the
//! last attempts. Kept apart from Prometheus because a dashboard wants them now, not as rates.

use std::collections::VecDeque;

use dashmap::DashMap;

use crate::domain::{AttemptOutcome, AttemptSummary, ProviderId};

/// Attempts remembered per provider.
const WINDOW: usize = 100;

#[derive(Debug, Default)]
struct Recent {
    latencies_ms: VecDeque<u64>,
    last_error: Option<String>,
}

/// Per-provider recent stats.
#[derive(Debug, Default)]
pub struct RecentStats {
    by_provider: DashMap<ProviderId, Recent>,
}

impl RecentStats {
    /// Records every called attempt of one request.
    pub fn record(&self, attempts: &[AttemptSummary], now_rfc3339: &str) {
        for a in attempts.iter().filter(|a| a.was_called()) {
            let mut r = self.by_provider.entry(a.provider.clone()).or_default();
            if r.latencies_ms.len() == WINDOW {
                r.latencies_ms.pop_front();
            }
            r.latencies_ms
                .push_back(u64::try_from(a.latency.as_millis()).unwrap_or(u64::MAX));
            if a.outcome != AttemptOutcome::Success {
                let status = a.status.map(|s| format!(" HTTP {s}")).unwrap_or_default();
                r.last_error = Some(format!("{}{status} at {now_rfc3339}", a.outcome.as_str()));
            }
        }
    }

    /// The last error and the median latency over the recent attempts.
    pub fn get(&self, provider: &ProviderId) -> (Option<String>, Option<u64>) {
        let Some(r) = self.by_provider.get(provider) else {
            return (None, None);
        };
        let mut sorted: Vec<u64> = r.latencies_ms.iter().copied().collect();
        sorted.sort_unstable();
        let p50 = sorted.get(sorted.len() / 2).copied();
        (r.last_error.clone(), p50)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn attempt(outcome: AttemptOutcome, ms: u64) -> AttemptSummary {
        AttemptSummary {
            provider: ProviderId::new("p"),
            upstream_model: "m".into(),
            outcome,
            status: (outcome != AttemptOutcome::Success).then_some(503),
            latency: Duration::from_millis(ms),
        }
    }

    #[test]
    fn median_and_last_error_are_kept() {
        let s = RecentStats::default();
        s.record(
            &[
                attempt(AttemptOutcome::ServerError, 30),
                attempt(AttemptOutcome::Success, 10),
            ],
            "t1",
        );
        s.record(&[attempt(AttemptOutcome::Success, 20)], "t2");
        let (err, p50) = s.get(&ProviderId::new("p"));
        assert_eq!(p50, Some(20));
        assert_eq!(err.as_deref(), Some("server_error HTTP 503 at t1"));
        assert_eq!(s.get(&ProviderId::new("other")), (None, None));
    }
}
