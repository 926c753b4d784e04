//! The inference endpoints — `/v1/chat/completions`, `/v1/messages`, `/v1/responses`,
//! `/v1/completions` and `/v1/embeddings`: validate → (bridge →) peek → plan → orchestrate → observe.

use bytes::Bytes;

use super::Answer;
use super::cache::{self, Directives, Lookup};
use super::front::{Bridge, Front, caps};
use super::observe::{StreamRecorder, Trace};
use super::resolve::{Resolved, Scope, resolve};
use crate::auth::Caller;
use crate::cache::CachedAnswer;
use crate::dialects::validate;
use crate::dialects::{remove_fallbacks, request_stream_usage};
use crate::domain::{ClientHeaders, Dialect, Priority, ProviderId, RequestId};
use crate::error::ApiError;
use crate::orchestrator::recover::Cut;
use crate::orchestrator::{Orchestrator, StreamStart, Success, stream};
use crate::providers::{Operation, Reply, Served};
use crate::routing::routes::Needs;
use crate::state::{AppState, Live};

enum Done {
    Json(Success<Reply>, usize, Option<Lookup>),
    Cached(CachedAnswer),
    Stream(Success<StreamStart>, usize, bool, Option<super::recover::Parts>),
}

/// A chat completion, streamed or not, through the fallback orchestrator; recorded in history.
pub async fn chat(
    state: &AppState,
    request_id: &RequestId,
    caller: Option<&Caller>,
    body: Bytes,
    directives: Directives,
) -> Result<Answer, ApiError> {
    infer(state, request_id, caller, Front::Chat, body, directives).await
}

/// A chat completion in user `user`'s namespace (`/api/u/{user}/chat/completions`): the caller must
/// be that user, and only the routes and providers granted to them are reachable.
pub async fn user_chat(
    state: &AppState,
    request_id: &RequestId,
    caller: Option<&Caller>,
    user: &str,
    body: Bytes,
    directives: Directives,
) -> Result<Answer, ApiError> {
    infer_as(state, request_id, caller, Front::Chat, body, directives, Some(user)).await
}

/// A request on any chat-like front (`front`), streamed or not, through the same orchestrator as
/// chat; answered in the front's own shape and recorded in history under its endpoint.
pub async fn infer(
    state: &AppState,
    request_id: &RequestId,
    caller: Option<&Caller>,
    front: Front,
    body: Bytes,
    directives: Directives,
) -> Result<Answer, ApiError> {
    infer_as(state, request_id, caller, front, body, directives, None).await
}

/// `infer`, in user `user`'s namespace when one is given.
async fn infer_as(
    state: &AppState,
    request_id: &RequestId,
    caller: Option<&Caller>,
    front: Front,
    body: Bytes,
    directives: Directives,
    user: Option<&str>,
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
    trace.session.clone_from(&directives.session);
    trace.spend.tags.clone_from(&directives.tags);
    // Stored responses: `previous_response_id` is resolved before routing.
    let (body, chain) = match front {
        Front::Responses => match super::responses::expand(state, caller, body).await {
            Ok(expanded) => (expanded.body.clone(), Some(expanded)),
            Err(e) => {
                trace.failed(&e);
                return Err(e);
            }
        },
        _ => (body, None),
    };
    let scope = user.map_or(Ok(Scope::All), |u| Scope::of_user(&live, caller, u));
    let inner = match scope {
        Ok(scope) => {
            let request = Request {
                front,
                body,
                directives,
                scope: &scope,
                pin: chain.as_ref().and_then(|c| c.provider.as_ref()),
            };
            infer_inner(state, &live, request_id, caller, request, &mut trace).await
        }
        Err(e) => Err(e),
    };
    match inner {
        Ok((Done::Json(success, attempts, lookup), bridge)) => {
            let bridged = success.served.bridged();
            let answer = json(state, success, attempts, trace, &bridge, lookup).await;
            if let (Some(chain), Ok(Answer::Json { body, provider, .. })) = (&chain, &answer) {
                super::responses::remember(state, caller, provider, bridged, chain, body);
            }
            answer
        }
        Ok((Done::Cached(answer), _)) => Ok(cache::hit(answer, trace)),
        Ok((Done::Stream(success, attempts, strip_usage, recover), bridge)) => {
            let dialect = front.dialect();
            let recorder = StreamRecorder::new(trace, strip_usage, dialect);
            let source = stream::Source {
                provider: success.provider.clone(),
                dialect,
                idle: live.config.settings.routing.stream_idle_timeout(),
                // The OpenAI dialect's usage chunk stays on the wire only when it was asked for.
                usage_required: dialect == Dialect::OpenAi && !strip_usage,
                shutdown: Some(state.shutdown.grace_over()),
            };
            let recovery = recover.map(|parts| {
                let serving = Cut {
                    provider: success.provider.clone(),
                    model: success.upstream_model.clone(),
                };
                super::recover::recovery(parts, state, live.clone(), request_id, serving)
            });
            let relay = stream::relay_recovering(success.value, source, recorder, recovery);
            let mut body = bridge.stream(Box::pin(relay));
            if let Some(chain) = &chain {
                let bridged = success.served.bridged();
                body = super::responses::remember_stream(state, caller, &success.provider, bridged, chain, body);
            }
            Ok(Answer::Stream {
                body,
                provider: success.provider,
                attempts,
                dropped_tools: dropped_tools(success.served),
            })
        }
        Err(e) => {
            trace.failed(&e);
            Err(e)
        }
    }
}

/// What the client asked for, on which front, in which namespace.
struct Request<'a> {
    front: Front,
    body: Bytes,
    directives: Directives,
    scope: &'a Scope,
    /// The provider that keeps the native response this request continues: only it can.
    pin: Option<&'a ProviderId>,
}

async fn infer_inner(
    state: &AppState,
    live: &Live,
    request_id: &RequestId,
    caller: Option<&Caller>,
    request: Request<'_>,
    trace: &mut Trace,
) -> Result<(Done, Bridge), ApiError> {
    let Request {
        front,
        body,
        directives,
        scope,
        pin,
    } = request;
    let priority = super::queue::priority(directives.priority.as_deref(), caller)?;
    // The cache key is built on what the client sent, before any bridging (a cheap clone).
    let original = body.clone();
    // A refused body never reaches the bridge, an upstream or a breaker; its row is still written.
    let checked = front.validate(&body, caps(&live.config.settings.limits))?;
    if trace.session.is_none() && front == Front::Responses {
        // Codex names its session in the body when no header does.
        trace.session = crate::dialects::prompt_cache_key(&body);
    }
    let (body, bridge) = Bridge::inbound(front, body)?;
    let dialect = front.dialect();
    let peek = checked.peek(&body)?;
    // The request's own fallback list is the gateway's to follow; no upstream sees it.
    let body = if peek.fallbacks.present {
        remove_fallbacks(&body)?
    } else {
        body
    };
    trace.model = Some(peek.model.clone());
    trace.stream = peek.stream;
    let needs = Needs::estimate(body.len(), peek.tools);
    let mut resolved = resolved(state, live, caller, &peek.model, needs, scope, trace)?;
    resolved.with_fallbacks(state, live, caller, &peek.fallbacks.models, needs, scope)?;
    if let Some(pin) = pin
        && resolved.plan.candidates.iter().any(|c| &c.provider.config.id == pin)
    {
        // Only the provider that keeps the response can continue it, however long the prompt.
        resolved.plan.candidates.retain(|c| &c.provider.config.id == pin);
        resolved.plan.overflow.retain(|c| &c.provider.config.id == pin);
    }
    trace.spend.body_bytes = body.len();
    let session = trace.session.clone();
    super::spend::admit(
        state,
        session.as_deref(),
        body.len(),
        peek.max_tokens,
        &mut resolved.plan,
        &mut trace.spend,
    )
    .await?;
    let plan = &resolved.plan;
    let orchestrator = orchestrator(
        state,
        live,
        request_id,
        dialect,
        (caller, session.as_deref()),
        &directives.forward,
        priority,
    );
    if !peek.stream {
        let lookup = cache::applies(live, &directives, caller, &peek.model, front.endpoint(), &original);
        if let Some(l) = &lookup
            && let Some(hit) = cache::get(state, l, trace).await
        {
            return Ok((Done::Cached(hit), bridge));
        }
        let hosted_tools = live.config.settings.responses_bridge.hosted_tools;
        let outcome = orchestrator
            .run_bridging(plan, Operation::Chat, &body, hosted_tools)
            .await;
        let calls = outcome.calls_made();
        resolved.observe(state, &outcome.attempts);
        trace.attempts = outcome.attempts;
        let success = outcome.result?;
        return Ok((Done::Json(success, calls, lookup), bridge));
    }
    // Token counts for every stream: ask for the usage chunk, hide it if the client did not ask.
    // Anthropic's events always carry usage (adapters translating into them ask for it).
    let ask_usage = dialect == Dialect::OpenAi && !peek.client_wants_stream_usage();
    let body = if ask_usage {
        request_stream_usage(&body, &peek)?
    } else {
        body
    };
    let strip_usage = ask_usage;
    let hosted_tools = live.config.settings.responses_bridge.hosted_tools;
    let outcome = orchestrator.open_stream_bridging(plan, &body, hosted_tools).await;
    let calls = outcome.calls_made();
    resolved.observe(state, &outcome.attempts);
    trace.attempts = outcome.attempts;
    let success = outcome.result?;
    trace.provider = Some(success.provider.clone());
    trace.upstream_model = Some(success.upstream_model.clone());
    let caller = caller.map(|c| c.id.as_str());
    let route = resolved.route.as_deref();
    let recover = super::recover::parts(
        live,
        route,
        dialect,
        &body,
        plan,
        hosted_tools,
        (caller, orchestrator.affinity, priority),
        &directives.forward,
    );
    Ok((Done::Stream(success, calls, strip_usage, recover), bridge))
}

/// Embeddings through the same orchestrator; recorded in history.
pub async fn embeddings(
    state: &AppState,
    request_id: &RequestId,
    caller: Option<&Caller>,
    body: Bytes,
    directives: Directives,
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
    trace.session.clone_from(&directives.session);
    trace.spend.tags.clone_from(&directives.tags);
    let result = async {
        let priority = super::queue::priority(directives.priority.as_deref(), caller)?;
        let peek = validate::embeddings(&body, caps(&live.config.settings.limits))?;
        // The cache key is the client's body; what goes upstream has no fallback list.
        let sent = if peek.fallbacks.present {
            remove_fallbacks(&body)?
        } else {
            body.clone()
        };
        trace.model = Some(peek.model.clone());
        let needs = Needs::estimate(sent.len(), false);
        let mut resolved = resolved(state, &live, caller, &peek.model, needs, &Scope::All, &mut trace)?;
        resolved.with_fallbacks(state, &live, caller, &peek.fallbacks.models, needs, &Scope::All)?;
        let session = trace.session.clone();
        let plan = &mut resolved.plan;
        super::spend::admit(state, session.as_deref(), sent.len(), Some(0), plan, &mut trace.spend).await?;
        let lookup = cache::applies(&live, &directives, caller, &peek.model, "/v1/embeddings", &body);
        if let Some(l) = &lookup
            && let Some(hit) = cache::get(state, l, &mut trace).await
        {
            return Ok(Err(hit));
        }
        let outcome = orchestrator(
            state,
            &live,
            request_id,
            Dialect::OpenAi,
            (caller, session.as_deref()),
            &directives.forward,
            priority,
        )
        .run(&resolved.plan, Operation::Embeddings, &sent)
        .await;
        let calls = outcome.calls_made();
        resolved.observe(state, &outcome.attempts);
        trace.attempts = outcome.attempts;
        Ok::<_, ApiError>(Ok((outcome.result?, calls, lookup)))
    }
    .await;
    match result {
        Ok(Ok((success, calls, lookup))) => json(state, success, calls, trace, &Bridge::Direct, lookup).await,
        Ok(Err(hit)) => Ok(cache::hit(hit, trace)),
        Err(e) => {
            trace.failed(&e);
            Err(e)
        }
    }
}

async fn json(
    state: &AppState,
    success: Success<Reply>,
    attempts: usize,
    mut trace: Trace,
    bridge: &Bridge,
    lookup: Option<Lookup>,
) -> Result<Answer, ApiError> {
    trace.provider = Some(success.provider.clone());
    trace.upstream_model = Some(success.upstream_model.clone());
    let reply = success.value;
    let dropped_tools = dropped_tools(success.served);
    let (body, content_type) = match bridge.reply(reply.body, reply.content_type) {
        Ok(translated) => translated,
        Err(e) => {
            trace.failed(&e);
            return Err(e);
        }
    };
    let cache = trace.cache;
    let cost_usd = trace.succeeded(reply.usage, reply.text.as_deref());
    if let Some(lookup) = lookup {
        let answer = CachedAnswer {
            provider: success.provider.clone(),
            upstream_model: success.upstream_model,
            content_type: content_type.clone(),
            body: body.clone(),
        };
        cache::put(state, lookup, answer).await;
    }
    Ok(Answer::Json {
        body,
        content_type,
        provider: success.provider,
        attempts,
        cache,
        dropped_tools,
        cost_usd,
    })
}

/// The hosted tools a bridged provider left out of a Responses request, for
/// `x-ai-gateway-dropped-tools`.
fn dropped_tools(served: Served) -> Vec<String> {
    match served {
        Served::Bridged { dropped_tools } => dropped_tools,
        Served::Direct | Served::Native => Vec::new(),
    }
}

/// The plan for `model`, with the named route (if any) noted on the trace for metrics and its
/// `callback`.
pub(super) fn resolved(
    state: &AppState,
    live: &Live,
    caller: Option<&Caller>,
    model: &str,
    needs: Needs,
    scope: &Scope,
    trace: &mut Trace,
) -> Result<Resolved, ApiError> {
    let resolved = resolve(state, live, caller, model, needs, scope)?;
    trace.route.clone_from(&resolved.route);
    trace.set_route(&live.config.settings, model);
    Ok(resolved)
}

/// The orchestrator for one model request; `session` (the agent's session, else the Responses
/// `prompt_cache_key`), else the caller, keeps the request on one key of a key pool.
pub(super) fn orchestrator<'a>(
    state: &'a AppState,
    live: &'a Live,
    request_id: &'a RequestId,
    dialect: Dialect,
    (caller, session): (Option<&'a Caller>, Option<&'a str>),
    forward: &'a ClientHeaders,
    priority: Priority,
) -> Orchestrator<'a> {
    let caller = caller.map(|c| c.id.as_str());
    Orchestrator {
        admission: Some(super::queue::admission(&state.traffic, live, priority)),
        forward,
        caller,
        affinity: session.or(caller),
        routing: &live.config.settings.routing,
        breakers: &live.breakers,
        http: &state.http,
        request_id,
        dialect,
        max_response_bytes: live.config.settings.limits.max_response_bytes,
    }
}
