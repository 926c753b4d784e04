//! `Dialect`: the API a client speaks, carried with every call so adapters answer in it.

/// The client's wire dialect for an inference request.
///
/// Adapters receive it with each call: a body already in the upstream's protocol is forwarded as
/// the original bytes; any other is translated, and the answer (JSON or events) is translated
/// back, so everything above the adapters sees the client's own dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// OpenAI chat completions (`/v1/chat/completions`, and the dialects bridged to it).
    #[default]
    OpenAi,
    /// Anthropic's Messages API (`/v1/messages`).
    Anthropic,
    /// OpenAI's Responses API (`/v1/responses`): forwarded as it is to an upstream that speaks it,
    /// else bridged to chat completions per provider (`providers::ProviderAdapter::send_responses`).
    Responses,
}
