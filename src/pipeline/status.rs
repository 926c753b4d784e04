//! `GET /provider/status` (seed 004): every catalogue and configured provider, whether it is
//! enabled, whether it has a key, its breaker, last error and median latency, and for the OpenAI
//! protocol's kinds how `/v1/responses` reaches it; a key pool's keys by index and hash prefix; and each
//! capped level's slots and queue.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::{RESPONSES_KINDS, catalogue};
use crate::domain::ProviderId;
use crate::providers::ResponsesStatus;
use crate::providers::keys::KeyStatus;
use crate::state::AppState;

/// The body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatusList {
    /// Enabled providers first (by priority), then the catalogue's disabled ones.
    pub providers: Vec<ProviderStatus>,
    /// Every level with a concurrency cap that has served a request on this replica.
    pub queues: Vec<QueueStatus>,
}

/// One capped level on this replica: its slots and its queue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueStatus {
    /// `provider:<id>`, `node:<id>` or `route:<name>:<index>` (the metrics' `level`).
    pub level: String,
    /// As an `overloaded` error names it: `provider <id>`, `node <url>`, `route <name> target <n>`.
    pub name: String,
    /// Slots held now.
    pub in_use: usize,
    /// Its cap; null once a reload removed it.
    pub cap: Option<usize>,
    /// Requests waiting for a slot.
    pub queued: usize,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProviderStatus {
    pub id: String,
    /// Wire protocol.
    pub kind: String,
    /// Whether requests can be routed to it.
    pub enabled: bool,
    /// Whether a key is set for it.
    pub key_configured: bool,
    /// `closed`, `open`, `half_open`, or `disabled`: the provider's own breaker (connections,
    /// TLS, DNS, credentials; everything for a `"*"` provider), reading `open` also when every
    /// declared model's breaker is open.
    pub breaker: &'static str,
    /// Each declared model's breaker (429s, 5xx, first-token timeouts of that model); empty for a
    /// `"*"` provider, which breaks per provider only.
    pub model_breakers: BTreeMap<String, &'static str>,
    /// The last failed attempt (outcome, status, time), if any.
    pub last_error: Option<String>,
    /// Median latency of its last 100 attempts.
    pub latency_ms_p50: Option<u64>,
    /// `kind: openai` and `azure`: the `responses:` mode, whether `/v1/responses` is served
    /// natively or bridged now, and what `auto` detected.
    pub responses: Option<ResponsesStatus>,
    /// With `api_keys`: each key by index and hash prefix (never the key), its weight and rests.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeyStatus>,
}

/// The status of every provider the gateway knows.
pub fn provider_status(state: &AppState) -> StatusList {
    let live = state.live();
    let mut providers: Vec<ProviderStatus> = live
        .registry
        .providers()
        .iter()
        .map(|p| {
            let (last_error, latency_ms_p50) = state.metrics.recent.get(&p.config.id);
            ProviderStatus {
                id: p.config.id.to_string(),
                kind: p.config.kind.clone(),
                enabled: true,
                key_configured: p.config.api_key.is_some(),
                breaker: live.breakers.state(&p.config.id).as_str(),
                model_breakers: if p.config.serves_any_model() {
                    BTreeMap::new()
                } else {
                    p.config
                        .models
                        .iter()
                        .map(|m| (m.clone(), live.breakers.model_state(&p.config.id, m).as_str()))
                        .collect()
                },
                last_error,
                latency_ms_p50,
                responses: RESPONSES_KINDS
                    .contains(&p.config.kind.as_str())
                    .then(|| p.adapter.responses_status())
                    .flatten(),
                keys: p.keys.as_ref().map(|k| k.status()).unwrap_or_default(),
            }
        })
        .collect();
    for entry in catalogue().unwrap_or_default() {
        let id = ProviderId::new(&entry.id);
        if live.registry.get(&id).is_some() {
            continue;
        }
        providers.push(ProviderStatus {
            id: id.to_string(),
            kind: entry.kind,
            enabled: false,
            key_configured: false,
            breaker: "disabled",
            model_breakers: BTreeMap::new(),
            last_error: None,
            latency_ms_p50: None,
            responses: None,
            keys: Vec::new(),
        });
    }
    let queues = state
        .traffic
        .levels()
        .into_iter()
        .map(|l| QueueStatus {
            level: l.label,
            name: l.name,
            in_use: l.in_use,
            cap: (l.cap != usize::MAX).then_some(l.cap),
            queued: l.queued,
        })
        .collect();
    StatusList { providers, queues }
}
