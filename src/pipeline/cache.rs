//! The response cache on the inference path: whether it applies to a request, the lookup before
//! the orchestrator, and the store after a complete answer. One place for every front.

use std::time::Duration;

use super::Answer;
use super::observe::Trace;
use crate::auth::Caller;
use crate::cache::{self, CacheDirective, CacheKey, CacheStatus, CachedAnswer};
use crate::config::CacheScope;
use crate::domain::ClientHeaders;
use crate::state::{AppState, Live};

/// What the request's headers tell the gateway: the client's `x-ai-gateway-*` directives, the
/// Anthropic protocol headers forwarded to anthropic-kind providers, and the agent session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    /// `x-ai-gateway-cache: on | off`.
    pub cache: CacheDirective,
    /// `anthropic-beta` and `anthropic-version`, for anthropic-kind providers.
    pub forward: ClientHeaders,
    /// The coding agent's session (`x-claude-code-session-id`, `session_id`, `session-id`,
    /// `x-session-id`), recorded in history.
    pub session: Option<String>,
    /// `x-ai-gateway-tags: a,b`: recorded in history; declared ones count toward tag budgets.
    pub tags: Vec<String>,
    /// `x-ai-gateway-priority` as sent (`high | normal | low`, capped at the caller's own).
    pub priority: Option<String>,
}

/// A request the cache applies to: where its answer is (or will be) and for how long.
pub(super) struct Lookup {
    key: CacheKey,
    ttl: Duration,
}

/// `Some` when a non-streamed request's answer is cached: the client's header or the route says
/// so, and the body is JSON. `body` is what the client sent, before any bridging. Entries are the
/// caller's own unless `cache.scope: shared`.
pub(super) fn applies(
    live: &Live,
    directives: &Directives,
    caller: Option<&Caller>,
    model: &str,
    endpoint: &str,
    body: &[u8],
) -> Option<Lookup> {
    let settings = &live.config.settings;
    let ttl = cache::ttl_for(settings, model, directives.cache)?;
    let owner = match settings.cache.scope {
        CacheScope::Caller => caller.map_or("", |c| c.id.as_str()),
        CacheScope::Shared => "",
    };
    let key = CacheKey::new(cache::route_name(settings, model), endpoint, owner, body)?;
    Some(Lookup { key, ttl })
}

/// The stored answer, if any. A store that fails or is slow is counted and is a miss.
pub(super) async fn get(state: &AppState, lookup: &Lookup, trace: &mut Trace) -> Option<CachedAnswer> {
    let found = match state.cache.get(&lookup.key).await {
        Ok(found) => found,
        Err(e) => {
            store_failed(state, &e);
            None
        }
    };
    trace.cache = Some(if found.is_some() {
        CacheStatus::Hit
    } else {
        CacheStatus::Miss
    });
    found
}

/// Answers from the cache: the provider that first produced it, no upstream call, no tokens.
pub(super) fn hit(answer: CachedAnswer, mut trace: Trace) -> Answer {
    trace.provider = Some(answer.provider.clone());
    trace.upstream_model = Some(answer.upstream_model);
    trace.succeeded(None, None);
    Answer::Json {
        body: answer.body,
        content_type: answer.content_type,
        provider: answer.provider,
        attempts: 0,
        cache: Some(CacheStatus::Hit),
        dropped_tools: Vec::new(),
        cost_usd: None,
    }
}

/// Stores a successful JSON answer (larger ones than `cache.max_entry_bytes` are skipped).
/// Awaited, within the store's bound, so a client repeating a request at once gets the hit.
pub(super) async fn put(state: &AppState, lookup: Lookup, answer: CachedAnswer) {
    if !answer.content_type.to_ascii_lowercase().contains("json") {
        return;
    }
    if let Err(e) = state.cache.put(&lookup.key, answer, lookup.ttl).await {
        store_failed(state, &e);
    }
}

fn store_failed(state: &AppState, e: &cache::CacheError) {
    state.metrics.observe_cache_error();
    tracing::debug!(error = %e, "response cache unavailable; serving without it");
}
