//! `/metrics`: mirrors breaker, node and history-writer state into the registry, then renders it.

use crate::error::ApiError;
use crate::metrics::{BreakerSample, ScrapeSample};
use crate::orchestrator::breaker::BreakerState;
use crate::state::AppState;

/// The text exposition.
pub fn metrics_text(state: &AppState) -> Result<String, ApiError> {
    let live = state.live();
    let nodes = state.nodes.snapshot();
    let ids = live.registry.providers().iter().map(|p| &p.config.id);
    // Each GPU node has a breaker of its own, under its id `pool/host:port`.
    let breakers: Vec<BreakerSample<'_>> = ids
        .chain(nodes.iter().map(|n| &n.id))
        .map(|id| BreakerSample {
            provider: id.as_str(),
            state: match live.breakers.state(id) {
                BreakerState::Closed => 0,
                BreakerState::Open => 1,
                BreakerState::HalfOpen => 2,
            },
        })
        .collect();
    state.metrics.set_nodes(
        nodes.iter().filter(|n| n.online).count(),
        nodes.iter().filter(|n| n.online && n.busy).count(),
    );
    let w = state.history.status();
    let history = ScrapeSample {
        queue_depth: w.queue_depth,
        written: w.written,
        dropped: w.dropped,
        redis_fallbacks: state.limiter.fallbacks(),
    };
    state.metrics.render(&breakers, history).map_err(ApiError::internal)
}
