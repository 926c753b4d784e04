//! One adapter per wire protocol: `openai_compat` (with Azure's deployment URLs in `azure`, and the
//! protocol's own `/responses` in `openai_responses`), `anthropic`, `gemini`. `http` is the
//! transport they share; `responses_bridge` serves `/v1/responses` through any adapter's chat path;
//! `responses_ops` sends the Responses API's operations on a stored response to the provider that
//! keeps it.

mod anthropic;
mod azure;
mod gemini;
mod http;
mod openai_compat;
mod openai_responses;
mod responses_bridge;
pub mod responses_ops;

pub use anthropic::Anthropic;
pub use gemini::Gemini;
pub use openai_compat::{Flavor, OpenAiCompat};
pub use openai_responses::ResponsesProbe;
pub(super) use responses_bridge::{bridge_send, bridge_stream};

/// Whether an OpenAI chat request asks for the final usage chunk (`stream_options.include_usage`),
/// which a translated stream then ends with.
fn wants_usage(body: &[u8]) -> bool {
    crate::dialects::Peek::chat(body).is_ok_and(|p| p.client_wants_stream_usage())
}
