//! Doc-only types for the OpenAPI document: the request bodies the gateway forwards as bytes (it
//! reads only a few fields of them) and a few small answers. Handlers name them in their
//! `#[utoipa::path]` attributes; `openapi` collects the handlers, so these live apart from it.

use serde::Deserialize;
use utoipa::ToSchema;

/// An OpenAI chat completion request. Only `model`, `messages`, `stream` and the fallback lists
/// are read; every other field (vendor parameters included) reaches the upstream unchanged.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatCompletionRequest {
    /// Model name, an alias, `<provider>/<model>`, or a named route (`<route>` or
    /// `<strategy>:<route>`).
    pub model: String,
    /// The conversation: `{"role", "content"}` objects.
    pub messages: Vec<serde_json::Value>,
    /// Server-sent events when true.
    pub stream: Option<bool>,
    /// Models to try after `model`, in order (OpenRouter's name): each checked against the key's
    /// allow-list, none sent upstream. At most 10; not with `fallbacks`.
    pub models: Option<Vec<String>>,
    /// The same list under LiteLLM's name.
    pub fallbacks: Option<Vec<String>>,
}

/// An OpenAI chat completion (or, streamed, `chat.completion.chunk` events), forwarded as the
/// provider sent it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatCompletion {
    /// Upstream id.
    pub id: String,
    /// `chat.completion`.
    pub object: String,
    /// The answers.
    pub choices: Vec<serde_json::Value>,
    /// Token usage.
    pub usage: Option<serde_json::Value>,
}

/// An OpenAI embeddings request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmbeddingsRequest {
    /// Model name.
    pub model: String,
    /// A string, an array of strings, or of token arrays.
    pub input: serde_json::Value,
    /// Models to try after `model`, in order (as on chat completions).
    pub models: Option<Vec<String>>,
    /// The same list under LiteLLM's name.
    pub fallbacks: Option<Vec<String>>,
}

/// An OpenAI embeddings list, forwarded as the provider sent it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmbeddingsResponse {
    /// `list`.
    pub object: String,
    /// One embedding per input.
    pub data: Vec<serde_json::Value>,
}

/// `POST /ai/task` body (seed 004).
#[derive(Debug, Deserialize, ToSchema)]
pub struct TaskRequest {
    /// A task type: summarize, classify, extract, translate, invoice_check, document_review, or one
    /// from the config.
    pub task: String,
    /// The text to process.
    pub text: String,
    /// `auto` (default: priority fallback) or a provider id, tried alone.
    pub provider: Option<String>,
}

/// `POST /history/cleanup` body (optional; also accepted as query parameters).
#[derive(Debug, Deserialize, ToSchema)]
pub struct CleanupRequest {
    /// Only error rows older than this.
    pub older_than_minutes: Option<u64>,
}

/// `{"deleted": N}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CleanupResponse {
    /// Rows deleted.
    pub deleted: u64,
}
