//! The only code that speaks upstream LLM wire formats.
//!
//! Depends on `config` and `domain`. Adapters translate and transport: they never retry, sleep,
//! rate-limit, touch breakers, record metrics or write history — that is `orchestrator`'s and
//! `pipeline`'s work. One adapter per wire protocol, a file each under `adapters/`.

pub mod adapters;
mod error;
pub mod passthrough;
pub mod registry;

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;

pub use error::{ErrorDetail, UpstreamError, UpstreamErrorKind};
pub use registry::{Provider, Registry, RegistryError};

use crate::config::ProviderConfig;
use crate::domain::{ClientHeaders, Dialect, RequestId, Usage};

/// Which inference operation a unary call performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `/chat/completions`.
    Chat,
    /// `/embeddings`.
    Embeddings,
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
    /// The client's protocol headers (`anthropic-beta`, `anthropic-version`): an adapter sends them
    /// only when the call is in its own protocol's dialect.
    pub forward: &'a ClientHeaders,
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
        let _ = op;
        true
    }

    /// One non-streamed call. A 2xx whose body is not what the protocol promises is `Malformed`.
    async fn send(&self, call: &Call<'_>, op: Operation) -> Result<Reply, UpstreamError>;

    /// Opens a chat stream; returns once upstream headers say 2xx. Items are SSE bytes in the
    /// call's dialect.
    async fn open_stream(&self, call: &Call<'_>) -> Result<ByteStream, UpstreamError>;

    /// Model ids the upstream serves now (for `/v1/models` on `"*"` providers).
    async fn list_models(
        &self,
        provider: &ProviderConfig,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Result<Vec<String>, UpstreamError>;
}
