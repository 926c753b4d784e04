//! The inference endpoints — `/v1/chat/completions`, `/v1/messages`, `/v1/responses`,
//! `/v1/completions` and `/v1/embeddings`: (bridge →) peek → plan → orchestrate → observe.

use bytes::Bytes;

use super::Answer;
use super::front::{Bridge, Front};
use super::observe::{StreamRecorder, Trace};
use crate::auth::Caller;
use crate::domain::{Dialect, EmbeddingsPeek, Peek, RequestId, request_stream_usage};
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
    infer(state, request_id, caller, Front::Chat, body).await
}

/// A request on any chat-like front (`front`), streamed or not, through the same orchestrator as
/// chat; answered in the front's own shape and recorded in history under its endpoint.
pub async fn infer(
    state: &AppState,
    request_id: &RequestId,
    caller: Option<&Caller>,
    front: Front,
    body: Bytes,
) -> Result<Answer, ApiError> {
    let live = state.live();
    let mut trace = Trace::start(
        state,
        front.endpoint(),
        front.metric_task(),
        request_id,
        caller,
        live.config.settings.logging.log_prompts,
        &body,
    );
    match infer_inner(state, &live, request_id, caller, front, body, &mut trace).await {
        Ok((Done::Json(success, attempts), bridge)) => json(success, attempts, trace, &bridge),
        Ok((Done::Stream(success, attempts, strip_usage), bridge)) => {
            let dialect = front.dialect();
            let recorder = StreamRecorder::new(trace, strip_usage, dialect);
            let source = stream::Source {
                provider: success.provider.clone(),
                dialect,
                idle: live.config.settings.routing.stream_idle_timeout(),
            };
            let relay = stream::relay(success.value, source, recorder);
            Ok(Answer::Stream {
                body: bridge.stream(Box::pin(relay)),
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

async fn infer_inner(
    state: &AppState,
    live: &Live,
    request_id: &RequestId,
    caller: Option<&Caller>,
    front: Front,
    body: Bytes,
    trace: &mut Trace,
) -> Result<(Done, Bridge), ApiError> {
    let (body, bridge) = Bridge::inbound(front, body)?;
    let dialect = front.dialect();
    let peek = match dialect {
        Dialect::OpenAi => Peek::chat(&body)?,
        Dialect::Anthropic => Peek::messages(&body)?,
    };
    trace.model = Some(peek.model.clone());
    trace.stream = peek.stream;
    allowed(caller, &peek.model)?;
    let plan = plan(state, live, &peek.model)?;
    let orchestrator = orchestrator(state, live, request_id, dialect);
    if !peek.stream {
        let outcome = orchestrator.run(&plan, Operation::Chat, &body).await;
        let calls = outcome.calls_made();
        trace.attempts = outcome.attempts;
        let success = outcome.result?;
        return Ok((Done::Json(success, calls), bridge));
    }
    // Token counts for every stream: ask for the usage chunk, hide it if the client did not ask.
    // Anthropic's events always carry usage (adapters translating into them ask for it).
    let ask_usage = dialect == Dialect::OpenAi && !peek.client_wants_stream_usage();
    let body = if ask_usage {
        request_stream_usage(&body, &peek)?
    } else {
        body
    };
    let strip_usage = ask_usage && !bridge.needs_usage_chunk();
    let outcome = orchestrator.open_stream(&plan, &body).await;
    let calls = outcome.calls_made();
    trace.attempts = outcome.attempts;
    let success = outcome.result?;
    trace.provider = Some(success.provider.clone());
    trace.upstream_model = Some(success.upstream_model.clone());
    Ok((Done::Stream(success, calls, strip_usage), bridge))
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
        let outcome = orchestrator(state, &live, request_id, Dialect::OpenAi)
            .run(&plan, Operation::Embeddings, &body)
            .await;
        let calls = outcome.calls_made();
        trace.attempts = outcome.attempts;
        Ok::<_, ApiError>((outcome.result?, calls))
    }
    .await;
    match result {
        Ok((success, calls)) => json(success, calls, trace, &Bridge::Direct),
        Err(e) => {
            trace.failed(&e);
            Err(e)
        }
    }
}

fn json(success: Success<Reply>, attempts: usize, mut trace: Trace, bridge: &Bridge) -> Result<Answer, ApiError> {
    trace.provider = Some(success.provider.clone());
    trace.upstream_model = Some(success.upstream_model);
    let reply = success.value;
    let (body, content_type) = match bridge.reply(reply.body, reply.content_type) {
        Ok(translated) => translated,
        Err(e) => {
            trace.failed(&e);
            return Err(e);
        }
    };
    trace.succeeded(reply.usage, reply.text.as_deref());
    Ok(Answer::Json {
        body,
        content_type,
        provider: success.provider,
        attempts,
    })
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

fn orchestrator<'a>(
    state: &'a AppState,
    live: &'a Live,
    request_id: &'a RequestId,
    dialect: Dialect,
) -> Orchestrator<'a> {
    Orchestrator {
        routing: &live.config.settings.routing,
        breakers: &live.breakers,
        http: &state.http,
        request_id,
        dialect,
        max_response_bytes: live.config.settings.limits.max_response_bytes,
    }
}
