//! The wire formats clients and upstreams speak, as pure code: the few fields routing reads from a
//! request (`peek`), request validation (`validate`), a request's own fallback models and their
//! removal (`fallbacks`), SSE framing (`sse`), the usage and error shapes read from answers
//! (`wire`), which refusals mean the prompt is too long for the model (`overflow`), Anthropic's
//! token counts and the gateway's estimate (`tokens`), the translations between dialects
//! (`translate`), and what continuing a cut stream asks and splices (`resume`).
//!
//! Depends on `domain` only. It does no I/O: `providers/` (the adapters) and `pipeline/` (the
//! bridges that answer a Responses or legacy completions client from a chat upstream) both call it,
//! so only this module knows what a wire format looks like.

mod fallbacks;
mod overflow;
mod peek;
pub mod resume;
pub mod sse;
pub mod tokens;
pub mod translate;
pub mod validate;
pub mod wire;

pub use translate::responses::{BridgeOptions, HostedTools};

pub use fallbacks::{FALLBACK_MEMBERS, Fallbacks, MAX_FALLBACKS, remove_fallbacks, remove_members};
pub use overflow::context_overflow;
pub use peek::{
    BodyError, EmbeddingsPeek, ModelSpan, Peek, StreamOptions, deserialize_body, prompt_cache_key,
    request_stream_usage, splice_model,
};
