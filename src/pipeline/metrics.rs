//! `/metrics`: mirrors breaker, key pool, node, queue and history-writer state into the registry, then renders it;
//! `/api/v1/metrics`: the JSON summaries.

use crate::dialects::BodyError;
use crate::error::ApiError;
use crate::metrics::{BreakerSample, MetricsSummary, ScrapeSample, SummaryKind};
use crate::orchestrator::breaker::BreakerState;
use crate::state::AppState;

/// The text exposition.
pub fn metrics_text(state: &AppState) -> Result<String, ApiError> {
    let live = state.live();
    let nodes = state.nodes.snapshot();
    let ids = live.registry.providers().iter().map(|p| &p.config.id);
    // Each GPU node has a breaker of its own, under its id `pool/host:port`, and so has each path
    // route target, under `host:port`.
    let breakers: Vec<BreakerSample<'_>> = ids
        .chain(nodes.iter().map(|n| &n.id))
        .chain(live.paths.target_ids())
        .map(|id| BreakerSample {
            provider: id.as_str(),
            state: match live.breakers.state(id) {
                BreakerState::Closed => 0,
                BreakerState::Open => 1,
                BreakerState::HalfOpen => 2,
            },
        })
        .collect();
    let key_totals: Vec<(&str, usize, u64)> = live
        .registry
        .providers()
        .iter()
        .filter_map(|p| p.keys.as_ref().map(|k| (p.config.id.as_str(), k)))
        .flat_map(|(id, keys)| keys.cooldown_totals().map(move |(i, n)| (id, i, n)))
        .collect();
    state.metrics.mirror_key_cooldowns(&key_totals);
    state.metrics.set_nodes(
        nodes.iter().filter(|n| n.online).count(),
        nodes.iter().filter(|n| n.online && n.busy).count(),
    );
    let levels = state.traffic.levels();
    let depths: Vec<(&str, usize)> = levels.iter().map(|l| (l.label.as_str(), l.queued)).collect();
    state.metrics.set_queue_depths(&depths);
    let w = state.history.status();
    let history = ScrapeSample {
        queue_depth: w.queue_depth,
        written: w.written,
        dropped: w.dropped,
        redis_fallbacks: state.limiter.fallbacks(),
        budget_redis_fallbacks: state
            .spend
            .counters
            .fallbacks
            .load(std::sync::atomic::Ordering::Relaxed),
        trace_spans_dropped: crate::telemetry::trace_spans_dropped(),
    };
    state.metrics.render(&breakers, history).map_err(ApiError::internal)
}

/// `GET /api/v1/metrics`: `kind` is `latency`, `errors`, `traffic` or a comma list of them (all
/// three when missing); `endpoint` keeps the endpoints whose name contains it.
pub fn metrics_summary(
    state: &AppState,
    kind: Option<&str>,
    endpoint: Option<&str>,
) -> Result<MetricsSummary, ApiError> {
    let kinds = match kind.map(str::trim).filter(|k| !k.is_empty()) {
        None => SummaryKind::ALL.to_vec(),
        Some(k) => k
            .split(',')
            .map(|one| {
                SummaryKind::parse(one.trim()).ok_or_else(|| {
                    ApiError::InvalidRequest(BodyError {
                        message: format!("unknown metrics type `{one}`: use latency, errors or traffic"),
                        param: Some("type".into()),
                        code: "invalid_value",
                    })
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let endpoint = endpoint.map(str::trim).filter(|e| !e.is_empty());
    Ok(state.metrics.summary(&kinds, endpoint))
}
