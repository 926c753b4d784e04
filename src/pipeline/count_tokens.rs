//! `POST /v1/messages/count_tokens`: Anthropic's Token Counting API. The model resolves as on
//! `/v1/messages` (allow-list, routes, plan); when the provider that would serve it speaks
//! Anthropic's protocol the body goes to its own counting endpoint through the orchestrator's one
//! walk, and otherwise the gateway estimates the count (`dialects::tokens`) without calling anyone.
//! Either way the request gets its history row under its own endpoint.

use bytes::Bytes;

use super::Answer;
use super::cache::Directives;
use super::chat::{orchestrator, resolved};
use super::front::caps;
use super::observe::Trace;
use super::resolve::Scope;
use crate::auth::Caller;
use crate::dialects::{tokens, validate};
use crate::domain::{Dialect, ProviderId, RequestId};
use crate::error::ApiError;
use crate::providers::Operation;
use crate::routing::routes::Needs;
use crate::state::AppState;

/// The history endpoint of a count.
const ENDPOINT: &str = "/v1/messages/count_tokens";

/// A token count: the upstream's own, or the gateway's estimate.
pub enum TokenCount {
    /// An Anthropic-protocol provider counted: its JSON, as it sent it.
    Counted(Answer),
    /// No provider for the model counts tokens: the gateway's estimate (`{"input_tokens": n}`).
    Estimated {
        /// The answer body.
        body: Bytes,
        /// The provider the model would be served by.
        provider: Option<ProviderId>,
    },
}

/// Counts the input tokens of a Messages body (without `max_tokens`), as the model's provider
/// would.
pub async fn count_tokens(
    state: &AppState,
    request_id: &RequestId,
    caller: Option<&Caller>,
    body: Bytes,
    directives: Directives,
) -> Result<TokenCount, ApiError> {
    let live = state.live();
    let mut trace = Trace::start(
        state,
        ENDPOINT,
        "count_tokens",
        request_id,
        caller,
        live.config.settings.logging.log_prompts,
        &body,
    );
    trace.session.clone_from(&directives.session);
    let result = async {
        let priority = super::queue::priority(directives.priority.as_deref(), caller)?;
        // The same checks as a Messages body: `max_tokens` is optional there too.
        let peek = validate::messages(&body, caps(&live.config.settings.limits))?;
        trace.model = Some(peek.model.clone());
        let needs = Needs::estimate(body.len(), peek.tools);
        let resolved = resolved(state, &live, caller, &peek.model, needs, &Scope::All, &mut trace)?;
        let first = resolved.plan.candidates.first().map(|c| &c.provider.config);
        match first {
            Some(p) if p.kind == "anthropic" => {}
            _ => {
                let provider = first.map(|p| p.id.clone());
                let n = tokens::estimate(&body)?;
                return Ok(Err((n, provider)));
            }
        }
        let outcome = orchestrator(
            state,
            &live,
            request_id,
            Dialect::Anthropic,
            (caller, trace.session.as_deref()),
            &directives.forward,
            priority,
        )
        .run(&resolved.plan, Operation::CountTokens, &body)
        .await;
        let calls = outcome.calls_made();
        resolved.observe(state, &outcome.attempts);
        trace.attempts = outcome.attempts;
        Ok::<_, ApiError>(Ok((outcome.result?, calls)))
    }
    .await;
    match result {
        Ok(Ok((success, attempts))) => {
            trace.provider = Some(success.provider.clone());
            trace.upstream_model = Some(success.upstream_model);
            trace.succeeded(None, None);
            Ok(TokenCount::Counted(Answer::Json {
                body: success.value.body,
                content_type: success.value.content_type,
                provider: success.provider,
                attempts,
                cache: None,
                dropped_tools: Vec::new(),
                cost_usd: None,
            }))
        }
        Ok(Err((n, provider))) => {
            trace.succeeded(None, None);
            Ok(TokenCount::Estimated {
                body: tokens::count_body(n),
                provider,
            })
        }
        Err(e) => {
            trace.failed(&e);
            Err(e)
        }
    }
}
