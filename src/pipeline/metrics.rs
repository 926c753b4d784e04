//! `/metrics`: mirrors breaker and history-writer state into the registry, then renders it.

use crate::error::ApiError;
use crate::metrics::{BreakerSample, ScrapeSample};
use crate::orchestrator::breaker::BreakerState;
use crate::state::AppState;

/// The text exposition.
pub fn metrics_text(state: &AppState) -> Result<String, ApiError> {
    let live = state.live();
    let breakers: Vec<BreakerSample<'_>> = live
        .registry
        .providers()
        .iter()
        .map(|p| BreakerSample {
            provider: p.config.id.as_str(),
            state: match live.breakers.state(&p.config.id) {
                BreakerState::Closed => 0,
                BreakerState::Open => 1,
                BreakerState::HalfOpen => 2,
            },
        })
        .collect();
    let w = state.history.status();
    let history = ScrapeSample {
        queue_depth: w.queue_depth,
        written: w.written,
        dropped: w.dropped,
        redis_fallbacks: state.limiter.fallbacks(),
    };
    state.metrics.render(&breakers, history).map_err(ApiError::internal)
}
