//! `/health` and `/readyz`.

use serde::Serialize;

use crate::orchestrator::breaker::BreakerState;
use crate::state::AppState;
use crate::store::WriterStatus;

/// `/health` body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` when a provider is usable, else `degraded`.
    pub status: &'static str,
    /// Crate version.
    pub version: &'static str,
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// Enabled providers.
    pub providers: Vec<ProviderHealth>,
    /// The history writer: queue depth, rows written and dropped, last error.
    pub history: WriterStatus,
    /// GPU nodes (seed 000's `url, online, busy, model`); empty without a node pool.
    pub nodes: Vec<super::NodeHealth>,
    /// `pricing.url`: when its prices were fetched, how many models they price and why the last
    /// fetch failed; absent without a URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing: Option<crate::spend::FetchStatus>,
}

/// One provider in `/health`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProviderHealth {
    pub id: String,
    /// Wire protocol.
    pub kind: String,
    /// `closed`, `open` or `half_open`.
    pub breaker: &'static str,
    /// Declared models.
    pub models: Vec<String>,
    /// Lower is tried first.
    pub priority: i32,
}

/// Whether at least one provider can take a call now (breaker not open).
pub fn ready(state: &AppState) -> bool {
    let live = state.live();
    live.registry
        .providers()
        .iter()
        .any(|p| live.breakers.state(&p.config.id) != BreakerState::Open)
}

/// The health report.
pub fn health(state: &AppState) -> Health {
    let live = state.live();
    let providers = live
        .registry
        .providers()
        .iter()
        .map(|p| ProviderHealth {
            id: p.config.id.to_string(),
            kind: p.config.kind.clone(),
            breaker: live.breakers.state(&p.config.id).as_str(),
            models: p.config.models.clone(),
            priority: p.config.priority,
        })
        .collect();
    Health {
        status: if ready(state) { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs(),
        providers,
        history: state.history.status(),
        nodes: super::nodes::health_nodes(state),
        pricing: super::pricing::status(state),
    }
}
