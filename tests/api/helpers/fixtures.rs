//! OpenAI wire-format fixtures from `tests/fixtures/openai/` (see its README for sources).

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
