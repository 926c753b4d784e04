//! The only code that speaks upstream LLM wire formats.
//!
//! Depends on `config` and `domain`. Adapters translate and transport: they never retry, sleep,
//! rate-limit, touch breakers, record metrics or write history — that is `orchestrator`'s and
//! `pipeline`'s work. One adapter per wire protocol, a file each under `adapters/`.

pub mod adapters;
mod error;
pub mod keys;
pub mod passthrough;
pub mod registry;

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;

pub use error::{ErrorDetail, UpstreamError, UpstreamErrorKind};
pub use registry::{Provider, Registry, RegistryError};

pub use adapters::ResponsesProbe;

use crate::config::{HostedTools, ProviderConfig};
use crate::domain::{ClientHeaders, Dialect, RequestId, TraceContext, Usage};

/// Which inference operation a unary call performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `/chat/completions`.
    Chat,
    /// `/embeddings`.
    Embeddings,
    /// Anthropic's `/v1/messages/count_tokens`: only the Anthropic protocol counts upstream.
    CountTokens,
}

/// What one attempt needs, borrowed from the orchestrator.
pub struct Call<'a> {
    /// The provider's resolved settings (base URL, key, headers).
    pub provider: &'a ProviderConfig,
    /// The body to send: the client's bytes, with `model` spliced when routing renamed it.
    pub body: &'a Bytes,
    /// The dialect `body` is in, and the one the reply must come back in.
    pub dialect: Dialect,
    /// Propagated upstream as `x-request-id`.
    pub request_id: &'a RequestId,
    /// The one shared, pooled client.
    pub http: &'a reqwest::Client,
    /// Largest non-streamed 2xx body read (`limits.max_response_bytes`); a stream is never buffered.
    pub max_response_bytes: usize,
    /// The client's protocol headers (`anthropic-beta`, `anthropic-version`): the Anthropic adapter
    /// sends them, whichever dialect the call is in; other protocols have no use for them.
    pub forward: &'a ClientHeaders,
    /// What a Responses call bridged to chat does with hosted tools (`responses_bridge.hosted_tools`).
    pub hosted_tools: HostedTools,
    /// Which of the provider's pooled keys to send (`ProviderConfig::key_pool`); 0 without a pool.
    pub key: usize,
    /// Sent as `traceparent` / `tracestate`: this attempt's client span with traces on, else the
    /// client's own context untouched; `None`: no trace headers.
    pub trace: Option<TraceContext>,
}

impl<'a> Call<'a> {
    /// The same call with another body in another dialect (a Responses call bridged to chat).
    pub fn with_body<'b>(&self, body: &'b Bytes, dialect: Dialect) -> Call<'b>
    where
        'a: 'b,
    {
        Call {
            provider: self.provider,
            body,
            dialect,
            request_id: self.request_id,
            http: self.http,
            max_response_bytes: self.max_response_bytes,
            forward: self.forward,
            hosted_tools: self.hosted_tools,
            key: self.key,
            trace: self.trace.clone(),
        }
    }
}

/// How a `/v1/responses` call was served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Served {
    /// Not a Responses call: the body went as the client's dialect says.
    #[default]
    Direct,
    /// Forwarded as it is to the upstream's own Responses endpoint.
    Native,
    /// Translated to chat completions and back.
    Bridged {
        /// The hosted tool types left out of the chat request (`x-ai-gateway-dropped-tools`).
        dropped_tools: Vec<String>,
    },
}

impl Served {
    /// Whether a Responses call went through the chat bridge.
    pub fn bridged(&self) -> bool {
        matches!(self, Self::Bridged { .. })
    }
}

/// What `/provider/status` says about how a provider serves `/v1/responses`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ResponsesStatus {
    /// The configured mode: `auto`, `native` or `bridge`.
    pub mode: &'static str,
    /// How it is served now: `native` or `bridge`.
    pub serving: &'static str,
    /// In `auto`, why the provider was switched to the bridge (the upstream's answer), if it was.
    pub detected: Option<String>,
}

/// A complete upstream answer, already in the client's dialect (translated by the adapter when the
/// upstream speaks another protocol).
#[derive(Debug, Clone)]
pub struct Reply {
    /// Upstream status (2xx).
    pub status: u16,
    /// Upstream `content-type`.
    pub content_type: String,
    /// The body: the upstream's bytes untouched when the dialects match, else the translation.
    pub body: Bytes,
    /// Token usage, when the reply reports it.
    pub usage: Option<Usage>,
    /// The answer's text, for the history summary.
    pub text: Option<String>,
}

/// SSE bytes in the client's dialect, one item per upstream chunk: the upstream's own bytes when
/// the dialects match, else each chunk's complete events translated as soon as they arrive.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, UpstreamError>> + Send>>;

/// Speaks one upstream wire protocol.
#[async_trait::async_trait]
pub trait ProviderAdapter: Send + Sync + std::fmt::Debug {
    /// The protocol name, as in `kind:`.
    fn protocol(&self) -> &'static str;

    /// Whether the protocol can do `op` at all. The orchestrator skips a provider that cannot
    /// before it asks its breaker, so such a call never counts for (or against) the provider.
    fn supports(&self, op: Operation) -> bool {
        op != Operation::CountTokens
    }

    /// One non-streamed call. A 2xx whose body is not what the protocol promises is `Malformed`.
    async fn send(&self, call: &Call<'_>, op: Operation) -> Result<Reply, UpstreamError>;

    /// Opens a chat stream; returns once upstream headers say 2xx. Items are SSE bytes in the
    /// call's dialect.
    async fn open_stream(&self, call: &Call<'_>) -> Result<ByteStream, UpstreamError>;

    /// One non-streamed `/v1/responses` call (`call.dialect` is `Responses`): the reply is a
    /// `response` object. By default bridged: the body becomes a chat request for `send`, and its
    /// completion a `response` object.
    async fn send_responses(&self, call: &Call<'_>) -> Result<(Reply, Served), UpstreamError> {
        adapters::bridge_send(self, call).await
    }

    /// Opens a `/v1/responses` stream: items are Responses events. By default bridged: a chat
    /// stream from `open_stream`, each chunk turned into its Responses events as it arrives.
    async fn open_responses_stream(&self, call: &Call<'_>) -> Result<(ByteStream, Served), UpstreamError> {
        adapters::bridge_stream(self, call).await
    }

    /// How `/v1/responses` is served here, for `/provider/status`; `None`: always bridged.
    fn responses_status(&self) -> Option<ResponsesStatus> {
        None
    }

    /// The `auto` detection state, handed to the adapter that replaces this one on a reload.
    fn responses_probe(&self) -> Option<std::sync::Arc<ResponsesProbe>> {
        None
    }

    /// Model ids the upstream serves now (for `/v1/models` on `"*"` providers).
    async fn list_models(
        &self,
        provider: &ProviderConfig,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Result<Vec<String>, UpstreamError>;
}

/// Writes `trace` as the W3C `traceparent` and `tracestate` headers, replacing whatever `headers`
/// had (a `tracestate` without a value of ours is removed, so it never belongs to another trace).
pub(crate) fn write_trace(headers: &mut reqwest::header::HeaderMap, trace: &TraceContext) {
    use reqwest::header::{HeaderName, HeaderValue};
    if let Ok(v) = HeaderValue::from_str(&trace.traceparent()) {
        headers.insert(HeaderName::from_static("traceparent"), v);
    }
    match trace.state.as_deref().map(HeaderValue::from_str) {
        Some(Ok(v)) => {
            headers.insert(HeaderName::from_static("tracestate"), v);
        }
        _ => {
            headers.remove("tracestate");
        }
    }
}
