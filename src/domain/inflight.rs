//! `InFlight`: a shared count of requests a target is serving now, held by an RAII guard.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Requests in flight to one target (a GPU node): routing reads it to break ties, the
/// orchestrator holds a guard while it calls the target.
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// Counts one request until the guard drops.
    pub fn enter(&self) -> InFlightGuard {
        self.0.fetch_add(1, Ordering::AcqRel);
        InFlightGuard(self.0.clone())
    }

    /// Requests in flight now.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// One request counted in an `InFlight`.
#[derive(Debug)]
pub struct InFlightGuard(Arc<AtomicUsize>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_while_they_live() {
        let n = InFlight::default();
        let a = n.enter();
        let b = n.clone().enter();
        assert_eq!(n.count(), 2);
        drop(a);
        assert_eq!(n.count(), 1);
        drop(b);
        assert_eq!(n.count(), 0);
    }
}
