//! `/v1/chat/completions` and `/v1/embeddings`.

use std::time::Instant;

use bytes::Bytes;

use super::Answer;
use super::observe::{StreamLog, log_text};
use crate::domain::{EmbeddingsPeek, Peek, RequestId};
use crate::error::ApiError;
use crate::orchestrator::{Orchestrator, Outcome, stream};
use crate::providers::{Operation, Reply};
use crate::routing::{self, RoutePlan};
use crate::state::{AppState, Live};

/// A chat completion, streamed or not, through the fallback orchestrator.
pub async fn chat(state: &AppState, request_id: &RequestId, body: Bytes) -> Result<Answer, ApiError> {
    let peek = Peek::chat(&body)?;
    let live = state.live();
    let log_prompts = live.config.settings.logging.log_prompts;
    log_text(log_prompts, request_id, "prompt", &body);
    let plan = plan(&live, &peek.model)?;
    let orchestrator = orchestrator(state, &live, request_id);
    if !peek.stream {
        let answer = unary(orchestrator.run(&plan, Operation::Chat, &body).await)?;
        if let Answer::Json { body, .. } = &answer {
            log_text(log_prompts, request_id, "completion", body);
        }
        return Ok(answer);
    }
    let outcome = orchestrator.open_stream(&plan, &body).await;
    let attempts = outcome.calls_made();
    let started = outcome.result?;
    let observer = StreamLog {
        request_id: request_id.clone(),
        provider: started.provider.clone(),
        started: Instant::now(),
        chunks: 0,
        bytes: 0,
        ended: false,
    };
    let idle = live.config.settings.routing.stream_idle_timeout();
    let relay = stream::relay(started.value, idle, started.provider.clone(), observer);
    Ok(Answer::Stream {
        body: Box::pin(relay),
        provider: started.provider,
        attempts,
    })
}

/// Embeddings through the same orchestrator.
pub async fn embeddings(state: &AppState, request_id: &RequestId, body: Bytes) -> Result<Answer, ApiError> {
    let peek = EmbeddingsPeek::parse(&body)?;
    let live = state.live();
    let plan = plan(&live, &peek.model)?;
    unary(
        orchestrator(state, &live, request_id)
            .run(&plan, Operation::Embeddings, &body)
            .await,
    )
}

fn plan(live: &Live, model: &str) -> Result<RoutePlan, ApiError> {
    routing::plan(&live.registry, model).map_err(|e| ApiError::ModelNotFound { model: e.model })
}

fn orchestrator<'a>(state: &'a AppState, live: &'a Live, request_id: &'a RequestId) -> Orchestrator<'a> {
    Orchestrator {
        routing: &live.config.settings.routing,
        breakers: &live.breakers,
        http: &state.http,
        request_id,
    }
}

fn unary(outcome: Outcome<Reply>) -> Result<Answer, ApiError> {
    let attempts = outcome.calls_made();
    let success = outcome.result?;
    Ok(Answer::Json {
        body: success.value.body,
        content_type: success.value.content_type,
        provider: success.provider,
        attempts,
    })
}
