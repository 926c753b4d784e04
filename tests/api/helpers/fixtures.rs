//! Wire-format fixtures from `tests/fixtures/<provider>/` (each folder's README names the sources).

use serde_json::Value;

/// A chat completion object, as bytes an upstream sends.
pub const CHAT_COMPLETION: &str = include_str!("../../fixtures/openai/chat_completion.json");
/// A whole streamed chat completion: chunk events, then `data: [DONE]`.
pub const CHAT_COMPLETION_CHUNKS: &str = include_str!("../../fixtures/openai/chat_completion_chunks.sse");
/// A create-embeddings response.
pub const EMBEDDINGS: &str = include_str!("../../fixtures/openai/embeddings.json");
/// A list-models response.
pub const MODELS: &str = include_str!("../../fixtures/openai/models.json");
/// An OpenAI error body for a bad parameter.
pub const ERROR_400: &str = include_str!("../../fixtures/openai/error_400.json");

/// Anthropic fixtures (`tests/fixtures/anthropic/`).
pub mod anthropic {
    /// A Messages request as the SDK sends it.
    pub const REQUEST: &str = include_str!("../../fixtures/anthropic/request.json");
    /// A text Message.
    pub const MESSAGE: &str = include_str!("../../fixtures/anthropic/message.json");
    /// A Message with a `get_weather` tool call.
    pub const MESSAGE_TOOL_USE: &str = include_str!("../../fixtures/anthropic/message_tool_use.json");
    /// A streamed text Message.
    pub const STREAM: &str = include_str!("../../fixtures/anthropic/message_stream.sse");
    /// A streamed Message with a tool call.
    pub const STREAM_TOOL_USE: &str = include_str!("../../fixtures/anthropic/message_stream_tool_use.sse");
    /// An Anthropic error body.
    pub const ERROR_400: &str = include_str!("../../fixtures/anthropic/error_400.json");
}

/// Gemini fixtures (`tests/fixtures/gemini/`).
pub mod gemini {
    /// A text answer.
    pub const GENERATE: &str = include_str!("../../fixtures/gemini/generate_content.json");
    /// A function call.
    pub const FUNCTION_CALL: &str = include_str!("../../fixtures/gemini/generate_content_function_call.json");
    /// A streamed text answer.
    pub const STREAM: &str = include_str!("../../fixtures/gemini/stream.sse");
    /// A streamed function call.
    pub const STREAM_FUNCTION_CALL: &str = include_str!("../../fixtures/gemini/stream_function_call.sse");
    /// One embedding.
    pub const EMBED: &str = include_str!("../../fixtures/gemini/embed_content.json");
    /// Several embeddings.
    pub const BATCH_EMBED: &str = include_str!("../../fixtures/gemini/batch_embed_contents.json");
    /// A prompt blocked by safety filters.
    pub const BLOCKED: &str = include_str!("../../fixtures/gemini/blocked_prompt.json");
}

/// The events of an SSE fixture, each with its blank line.
pub fn events(fixture: &str) -> Vec<String> {
    fixture
        .split_terminator("\n\n")
        .filter(|event| !event.trim().is_empty())
        .map(|event| format!("{event}\n\n"))
        .collect()
}

/// Parses one of the JSON fixtures.
pub fn json(fixture: &str) -> Value {
    serde_json::from_str(fixture).expect("fixture is valid JSON")
}

/// Each SSE event of the streamed fixture, with its terminating blank line (`data: ...\n\n`).
/// The last one is `data: [DONE]\n\n`.
pub fn chunk_events() -> Vec<String> {
    CHAT_COMPLETION_CHUNKS
        .split_terminator("\n\n")
        .filter(|event| !event.trim().is_empty())
        .map(|event| format!("{event}\n\n"))
        .collect()
}

/// The `data:` payload of each event of the streamed fixture, `[DONE]` included.
pub fn chunk_payloads() -> Vec<String> {
    chunk_events()
        .iter()
        .map(|event| {
            event
                .trim_end()
                .strip_prefix("data: ")
                .expect("every fixture event is one data line")
                .to_owned()
        })
        .collect()
}
