//! OpenTelemetry traces: one server span per request and one client span per upstream attempt, with
//! the GenAI semantic conventions' attributes, exported over OTLP by `export`.
//!
//! Spans are `tracing` spans with target `TARGET`, turned into OpenTelemetry spans by the
//! `tracing-opentelemetry` layer, which sees nothing else. With traces off (the default) `enabled`
//! is false and no span is built and no attribute formatted: a client's `traceparent` is still
//! parsed, recorded (its trace id) and passed upstream untouched.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};
use opentelemetry::{Context, KeyValue, SpanId, TraceId};
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::domain::{RequestId, RequestTrace, TraceContext, Usage};

/// The `tracing` target of every span exported; the exporting layer sees only these.
pub const TARGET: &str = "ai_gateway::traces";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported (set once, at start).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

pub(super) fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// `gen_ai.operation.name` for a gateway route; `None` for routes that are no GenAI operation.
pub fn operation(route: &str) -> Option<&'static str> {
    let route = route.strip_prefix("/api/u/{user}").unwrap_or(route);
    Some(match route {
        "/v1/chat/completions" | "/chat/completions" | "/v1/messages" | "/v1/responses" | "/ai/task" => "chat",
        "/v1/completions" | "/completions" => "text_completion",
        "/v1/embeddings" | "/embeddings" => "embeddings",
        _ => return None,
    })
}

/// `gen_ai.provider.name`: the convention's well-known value for a provider the gateway knows by
/// id (its catalogue name) or by protocol, else the provider's own id (a custom value, as the
/// convention allows for systems it does not list: local runtimes, node pools, named backends).
pub fn provider_name<'a>(id: &'a str, kind: &str) -> &'a str {
    // A node candidate is `pool/host:port`: the pool names the system.
    let id = id.split('/').next().unwrap_or(id);
    match id {
        "openai" => "openai",
        "anthropic" | "claude" => "anthropic",
        "gemini" | "google" => "gcp.gemini",
        "vertex" | "vertex_ai" => "gcp.vertex_ai",
        "azure" | "azure_openai" => "azure.ai.openai",
        "mistral" => "mistral_ai",
        "bedrock" | "aws" => "aws.bedrock",
        "deepseek" => "deepseek",
        "groq" => "groq",
        "cohere" => "cohere",
        "perplexity" => "perplexity",
        "xai" | "grok" => "x_ai",
        "watsonx" => "ibm.watsonx.ai",
        _ => match kind {
            "anthropic" => "anthropic",
            "gemini" => "gcp.gemini",
            "azure" => "azure.ai.openai",
            _ => id,
        },
    }
}

/// The request's trace from the client's `traceparent` / `tracestate`: with traces on, a new
/// server span (continuing the client's trace when it sent one); with traces off, the client's
/// context as it came, or `None`.
pub fn server(client: Option<TraceContext>, method: &str, route: &str) -> Option<RequestTrace> {
    if !enabled() {
        return client.map(|context| RequestTrace {
            context,
            span: tracing::Span::none(),
            operation: None,
        });
    }
    let op = operation(route);
    // Named for the operation until the model is known (`finish` renames it `{operation} {model}`).
    let name = op.map_or_else(|| format!("{method} {route}"), str::to_owned);
    let span = tracing::info_span!(
        target: TARGET,
        parent: None,
        "request",
        otel.name = %name,
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        gen_ai.operation.name = op,
    );
    let state = client.as_ref().and_then(|c| c.state.clone());
    if let Some(parent) = &client {
        let _ = span.set_parent(remote(parent));
    }
    let context = context_of(&span, state).or(client)?;
    Some(RequestTrace {
        context,
        span,
        operation: op,
    })
}

/// A span context we received, as OpenTelemetry's remote parent.
fn remote(c: &TraceContext) -> Context {
    let state = c
        .state
        .as_deref()
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    let sc = SpanContext::new(
        TraceId::from_bytes(c.trace_id),
        SpanId::from_bytes(c.span_id),
        TraceFlags::new(c.flags),
        true,
        state,
    );
    Context::new().with_remote_span_context(sc)
}

/// A started span's context in W3C terms; `tracestate` is the client's, passed on.
fn context_of(span: &tracing::Span, state: Option<std::sync::Arc<str>>) -> Option<TraceContext> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| TraceContext {
        trace_id: sc.trace_id().to_bytes(),
        span_id: sc.span_id().to_bytes(),
        flags: sc.trace_flags().to_u8(),
        state,
    })
}

/// Who an attempt calls, for its client span.
pub struct Attempt<'a> {
    /// The provider (or node, `pool/host:port`) id.
    pub provider: &'a str,
    /// Its protocol (`ProviderConfig::kind`); empty when the call has no provider config.
    pub kind: &'a str,
    /// The model it is asked for.
    pub model: &'a str,
    /// 1 for the request's first call.
    pub number: usize,
    /// The provider breaker's state when the call was let through.
    pub breaker: &'static str,
}

/// One upstream attempt's client span, child of the request's server span; `Span::none()` with
/// traces off or outside a traced request.
pub fn client(request: &RequestId, attempt: &Attempt<'_>) -> tracing::Span {
    if !enabled() {
        return tracing::Span::none();
    }
    let Some(parent) = request.trace().filter(|t| !t.span.is_none()) else {
        return tracing::Span::none();
    };
    let op = parent.operation;
    let name = match op {
        Some(op) if !attempt.model.is_empty() => format!("{op} {}", attempt.model),
        Some(op) => op.to_owned(),
        None => format!("call {}", attempt.provider),
    };
    tracing::info_span!(
        target: TARGET,
        parent: &parent.span,
        "attempt",
        otel.name = %name,
        otel.kind = "client",
        otel.status_code = Empty,
        gen_ai.operation.name = op,
        gen_ai.provider.name = provider_name(attempt.provider, attempt.kind),
        gen_ai.request.model = attempt.model,
        ai_gateway.provider.id = attempt.provider,
        ai_gateway.attempt = i64::try_from(attempt.number).unwrap_or(i64::MAX),
        ai_gateway.breaker.state = attempt.breaker,
        error.type = Empty,
        http.response.status_code = Empty,
    )
}

/// What goes upstream in `traceparent` / `tracestate`: the current attempt's client span's
/// context with traces on; with traces off the client's own headers, untouched.
pub fn upstream(request: &RequestId) -> Option<TraceContext> {
    let trace = request.trace()?;
    if !enabled() || trace.span.is_none() {
        return Some(trace.context.clone());
    }
    let current = tracing::Span::current();
    context_of(&current, trace.context.state.clone()).or_else(|| Some(trace.context.clone()))
}

/// An attempt's end on its client span: `error.type` (the attempt's outcome) when it failed.
pub fn attempt_ended(span: &tracing::Span, status: Option<u16>, error: Option<&'static str>) {
    if span.is_none() {
        return;
    }
    if let Some(s) = status {
        span.record("http.response.status_code", i64::from(s));
    }
    if let Some(e) = error {
        span.record("error.type", e);
        span.record("otel.status_code", "ERROR");
    }
}

/// What a finished request puts on its server span.
pub struct Finished<'a> {
    /// The model as requested.
    pub model: Option<&'a str>,
    /// The model the answering provider was asked for.
    pub response_model: Option<&'a str>,
    /// The provider that answered (or was tried last) and its protocol.
    pub provider: Option<(&'a str, &'a str)>,
    /// Upstream calls made.
    pub attempts: usize,
    /// Token usage.
    pub usage: Option<Usage>,
    /// USD.
    pub cost: Option<f64>,
    /// The HTTP status given to the client.
    pub status: u16,
    /// `error.type` when the request failed: the error's code (`all_providers_failed`, ...).
    pub error: Option<&'a str>,
}

/// Writes a finished request's attributes on its server span (nothing with traces off).
pub fn finish(request: &RequestId, f: &Finished<'_>) {
    let Some(trace) = request.trace().filter(|t| enabled() && !t.span.is_none()) else {
        return;
    };
    let cx = trace.span.context();
    let otel = cx.span();
    let op = trace.operation;
    if let (Some(op), Some(model)) = (op, f.model) {
        otel.update_name(format!("{op} {model}"));
    }
    let mut attrs = vec![
        KeyValue::new("http.response.status_code", i64::from(f.status)),
        KeyValue::new("ai_gateway.attempts", i64::try_from(f.attempts).unwrap_or(i64::MAX)),
    ];
    if let Some(m) = f.model {
        attrs.push(KeyValue::new("gen_ai.request.model", m.to_owned()));
    }
    if let Some(m) = f.response_model {
        attrs.push(KeyValue::new("gen_ai.response.model", m.to_owned()));
    }
    if let Some((id, kind)) = f.provider {
        attrs.push(KeyValue::new(
            "gen_ai.provider.name",
            provider_name(id, kind).to_owned(),
        ));
        attrs.push(KeyValue::new("ai_gateway.provider.id", id.to_owned()));
    }
    if let Some(u) = f.usage {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        attrs.push(KeyValue::new("gen_ai.usage.input_tokens", n(u.prompt_tokens)));
        attrs.push(KeyValue::new("gen_ai.usage.output_tokens", n(u.completion_tokens)));
    }
    if let Some(c) = f.cost {
        attrs.push(KeyValue::new("ai_gateway.cost_usd", c));
    }
    if let Some(e) = f.error {
        attrs.push(KeyValue::new("error.type", e.to_owned()));
        otel.set_status(opentelemetry::trace::Status::error(e.to_owned()));
    }
    otel.set_attributes(attrs);
}

/// Prompt or completion text on the server span: only called behind `LOG_PROMPTS`.
pub fn text(request: &RequestId, key: &'static str, text: &str) {
    if let Some(span) = traced(request) {
        span.set_attribute(key, text.to_owned());
    }
}

fn traced(request: &RequestId) -> Option<&tracing::Span> {
    if !enabled() {
        return None;
    }
    request.trace().map(|t| &t.span).filter(|s| !s.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_map_to_the_conventions_well_known_names() {
        assert_eq!(provider_name("openai", "openai"), "openai");
        assert_eq!(provider_name("anthropic", "anthropic"), "anthropic");
        assert_eq!(provider_name("gemini", "gemini"), "gcp.gemini");
        assert_eq!(provider_name("azure", "azure"), "azure.ai.openai");
        assert_eq!(provider_name("mistral", "openai"), "mistral_ai");
        assert_eq!(provider_name("bedrock", "openai"), "aws.bedrock");
        assert_eq!(provider_name("my-claude", "anthropic"), "anthropic", "by protocol");
        assert_eq!(
            provider_name("vllm", "openai"),
            "vllm",
            "a custom value for a local runtime"
        );
        assert_eq!(
            provider_name("gpu/10.0.0.5:8000", "openai"),
            "gpu",
            "a node names its pool"
        );
    }

    #[test]
    fn routes_map_to_operations() {
        assert_eq!(operation("/v1/chat/completions"), Some("chat"));
        assert_eq!(operation("/api/u/{user}/v1/embeddings"), Some("embeddings"));
        assert_eq!(operation("/v1/completions"), Some("text_completion"));
        assert_eq!(operation("/health"), None);
    }

    #[test]
    fn with_traces_off_the_clients_context_is_kept_untouched() {
        let parent = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let client = TraceContext::from_headers(Some(parent), Some(b"k=v"));
        let trace = server(client.clone(), "POST", "/v1/chat/completions").unwrap();
        assert!(trace.span.is_none());
        let id = RequestId::generate().with_trace(trace);
        assert_eq!(upstream(&id), client);
        assert!(server(None, "POST", "/v1/chat/completions").is_none());
    }
}
