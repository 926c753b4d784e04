//! One adapter per wire protocol: `openai_compat` (with Azure's deployment URLs in `azure`),
//! `anthropic`, `gemini`. `http` is the transport they share; `responses_ops` sends the Responses
//! API's operations on a stored response to the provider that keeps it.

mod anthropic;
mod azure;
mod gemini;
mod http;
mod openai_compat;
pub mod responses_ops;

pub use anthropic::Anthropic;
pub use gemini::Gemini;
pub use openai_compat::{Flavor, OpenAiCompat};

/// Whether an OpenAI chat request asks for the final usage chunk (`stream_options.include_usage`),
/// which a translated stream then ends with.
fn wants_usage(body: &[u8]) -> bool {
    crate::dialects::Peek::chat(body).is_ok_and(|p| p.client_wants_stream_usage())
}
