//! `RouteStats`: what named routes remember between requests — each route's rotation turn, and per
//! target (provider + upstream model) an EWMA of recent attempt latency and the requests in flight.
//!
//! It lives in `AppState`, outside the `Live` snapshot, so a configuration reload (which swaps
//! `Live`) keeps what was measured. Entries are made only for configured route targets, when a
//! route is planned: a client's model name never creates one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;

use crate::domain::{InFlight, ProviderId};

/// Weight of the newest latency sample in the moving average: recent enough to follow a slowing
/// provider within a few requests, smooth enough that one outlier does not reorder a route.
const EWMA_ALPHA: f64 = 0.3;

/// Bit pattern meaning "not measured yet" (no real latency is NaN).
const UNMEASURED: u64 = u64::MAX;

/// Shared state of every named route; cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct RouteStats {
    targets: DashMap<(ProviderId, String), Arc<TargetCell>>,
    turns: DashMap<String, Arc<AtomicU64>>,
}

#[derive(Debug)]
struct TargetCell {
    latency_bits: AtomicU64,
    in_flight: InFlight,
}

impl Default for TargetCell {
    fn default() -> Self {
        Self {
            latency_bits: AtomicU64::new(UNMEASURED),
            in_flight: InFlight::default(),
        }
    }
}

/// One target's figures as ordering reads them.
#[derive(Debug, Clone, Default)]
pub struct TargetReading {
    /// EWMA of recent attempt latency in milliseconds; `None` until measured.
    pub latency_ms: Option<f64>,
    /// Its in-flight counter (the orchestrator holds a guard on it during attempts).
    pub in_flight: InFlight,
}

impl RouteStats {
    /// The figures of `provider` serving `model`, making the entry on first use.
    pub fn read(&self, provider: &ProviderId, model: &str) -> TargetReading {
        let cell = self.cell(provider, model);
        let bits = cell.latency_bits.load(Ordering::Acquire);
        TargetReading {
            latency_ms: (bits != UNMEASURED).then(|| f64::from_bits(bits)),
            in_flight: cell.in_flight.clone(),
        }
    }

    /// This request's turn on `route` (0, 1, 2, ...): rotation starts at target `turn % n`.
    pub fn next_turn(&self, route: &str) -> u64 {
        let counter = match self.turns.get(route) {
            Some(c) => c.clone(),
            None => self.turns.entry(route.to_owned()).or_default().clone(),
        };
        counter.fetch_add(1, Ordering::AcqRel)
    }

    /// Folds one attempt's latency into `provider`/`model`'s average. Ignored for a pair no route
    /// has planned, so unbounded client input never grows the map.
    pub fn observe(&self, provider: &ProviderId, model: &str, latency: Duration) {
        let Some(cell) = self
            .targets
            .get(&(provider.clone(), model.to_owned()))
            .map(|c| c.clone())
        else {
            return;
        };
        let sample = latency.as_secs_f64() * 1000.0;
        let _ = cell
            .latency_bits
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
                let next = if bits == UNMEASURED {
                    sample
                } else {
                    EWMA_ALPHA * sample + (1.0 - EWMA_ALPHA) * f64::from_bits(bits)
                };
                Some(next.to_bits())
            });
    }

    fn cell(&self, provider: &ProviderId, model: &str) -> Arc<TargetCell> {
        let key = (provider.clone(), model.to_owned());
        if let Some(c) = self.targets.get(&key) {
            return c.clone();
        }
        self.targets.entry(key).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_is_an_ewma_starting_at_the_first_sample() {
        let stats = RouteStats::default();
        let p = ProviderId::new("a");
        stats.observe(&p, "m", Duration::from_millis(100));
        assert_eq!(stats.read(&p, "m").latency_ms, None, "unplanned pairs are not recorded");
        stats.observe(&p, "m", Duration::from_millis(100));
        assert_eq!(stats.read(&p, "m").latency_ms, Some(100.0));
        stats.observe(&p, "m", Duration::from_millis(200));
        let ewma = stats.read(&p, "m").latency_ms.unwrap();
        assert!((ewma - 130.0).abs() < 1e-9, "{ewma}");
    }

    #[test]
    fn turns_count_per_route_and_in_flight_is_shared() {
        let stats = RouteStats::default();
        assert_eq!(
            (stats.next_turn("r"), stats.next_turn("r"), stats.next_turn("s")),
            (0, 1, 0)
        );
        let p = ProviderId::new("a");
        let guard = stats.read(&p, "m").in_flight.enter();
        assert_eq!(stats.read(&p, "m").in_flight.count(), 1);
        drop(guard);
        assert_eq!(stats.read(&p, "m").in_flight.count(), 0);
    }
}
