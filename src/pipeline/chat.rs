//! `/v1/chat/completions` and `/v1/embeddings`: peek → plan → orchestrate → observe.

use bytes::Bytes;

use super::Answer;
use super::observe::{StreamRecorder, Trace};
use crate::auth::Caller;
use crate::domain::{EmbeddingsPeek, Peek, RequestId, request_stream_usage};
use crate::error::ApiError;
use crate::orchestrator::{Orchestrator, StreamStart, Success, stream};
use crate::providers::{Operation, Reply};
use crate::routing::{self, RoutePlan};
use crate::state::{AppState, Live};

enum Done {
    Json(Success<Reply>, usize),
    Stream(Success<StreamStart>, usize, bool),
}

/// A chat completion, streamed or not, through the fallback orchestrator; recorded in history.
pub async fn chat(
    state: &AppState,
    request_id: &RequestId,
    caller: Option<&Caller>,
    body: Bytes,
) -> Result<Answer, ApiError> {
    let live = state.live();
    let mut trace = Trace::start(
        state,
        "/v1/chat/completions",
        "chat",
        request_id,
        caller,
        live.config.settings.logging.log_prompts,
        &body,
    );
    match chat_inner(state, &live, request_id, caller, body, &mut trace).await {
        Ok(Done::Json(success, attempts)) => Ok(json(success, attempts, trace)),
        Ok(Done::Stream(success, attempts, strip_usage)) => {
            let recorder = StreamRecorder::new(trace, strip_usage);
            let idle = live.config.settings.routing.stream_idle_timeout();
            let relay = stream::relay(success.value, idle, success.provider.clone(), recorder);
            Ok(Answer::Stream {
                body: Box::pin(relay),
                provider: success.provider,
                attempts,
            })
        }
        Err(e) => {
            trace.failed(&e);
            Err(e)
        }
    }
}

async fn chat_inner(
    state: &AppState,
    live: &Live,
    request_id: &RequestId,
    caller: Option<&Caller>,
    body: Bytes,
    trace: &mut Trace,
) -> Result<Done, ApiError> {
    let peek = Peek::chat(&body)?;
    trace.model = Some(peek.model.clone());
    trace.stream = peek.stream;
    allowed(caller, &peek.model)?;
    let plan = plan(state, live, &peek.model)?;
    let orchestrator = orchestrator(state, live, request_id);
    if !peek.stream {
        let outcome = orchestrator.run(&plan, Operation::Chat, &body).await;
        let calls = outcome.calls_made();
        trace.attempts = outcome.attempts;
        let success = outcome.result?;
        return Ok(Done::Json(success, calls));
    }
    // Token counts for every stream: ask for the usage chunk, hide it if the client did not ask.
    let strip_usage = !peek.client_wants_stream_usage();
    let body = if strip_usage {
        request_stream_usage(&body, &peek)?
    } else {
        body
    };
    let outcome = orchestrator.open_stream(&plan, &body).await;
    let calls = outcome.calls_made();
    trace.attempts = outcome.attempts;
    let success = outcome.result?;
    trace.provider = Some(success.provider.clone());
    trace.upstream_model = Some(success.upstream_model.clone());
    Ok(Done::Stream(success, calls, strip_usage))
}

/// Embeddings through the same orchestrator; recorded in history.
pub async fn embeddings(
    state: &AppState,
    request_id: &RequestId,
    caller: Option<&Caller>,
    body: Bytes,
) -> Result<Answer, ApiError> {
    let live = state.live();
    let log_prompts = live.config.settings.logging.log_prompts;
    let mut trace = Trace::start(
        state,
        "/v1/embeddings",
        "embeddings",
        request_id,
        caller,
        log_prompts,
        &body,
    );
    let result = async {
        let peek = EmbeddingsPeek::parse(&body)?;
        trace.model = Some(peek.model.clone());
        allowed(caller, &peek.model)?;
        let plan = plan(state, &live, &peek.model)?;
        let outcome = orchestrator(state, &live, request_id)
            .run(&plan, Operation::Embeddings, &body)
            .await;
        let calls = outcome.calls_made();
        trace.attempts = outcome.attempts;
        Ok::<_, ApiError>((outcome.result?, calls))
    }
    .await;
    match result {
        Ok((success, calls)) => Ok(json(success, calls, trace)),
        Err(e) => {
            trace.failed(&e);
            Err(e)
        }
    }
}

fn json(success: Success<Reply>, attempts: usize, mut trace: Trace) -> Answer {
    trace.provider = Some(success.provider.clone());
    trace.upstream_model = Some(success.upstream_model);
    let reply = success.value;
    trace.succeeded(reply.usage, reply.text.as_deref());
    Answer::Json {
        body: reply.body,
        content_type: reply.content_type,
        provider: success.provider,
        attempts,
    }
}

/// A virtual key limited to some models may use only those.
fn allowed(caller: Option<&Caller>, model: &str) -> Result<(), ApiError> {
    match caller {
        Some(c) if !c.may_use(model) => Err(ApiError::ModelNotAllowed {
            model: model.to_owned(),
        }),
        _ => Ok(()),
    }
}

fn plan(state: &AppState, live: &Live, model: &str) -> Result<RoutePlan, ApiError> {
    routing::plan(&live.registry, &state.nodes.snapshot(), model).map_err(super::nodes::no_route)
}

fn orchestrator<'a>(state: &'a AppState, live: &'a Live, request_id: &'a RequestId) -> Orchestrator<'a> {
    Orchestrator {
        routing: &live.config.settings.routing,
        breakers: &live.breakers,
        http: &state.http,
        request_id,
    }
}
