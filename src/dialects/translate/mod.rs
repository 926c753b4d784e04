//! Pure translations between wire dialects: bodies in, bodies out, no I/O.
//!
//! Adapters use these when the client's dialect is not the upstream's protocol, so they stay
//! transport; the pipeline uses `responses` and `completions` to bridge those OpenAI dialects to
//! chat completions. Requests are translated as a JSON tree (they are rewritten anyway); streams
//! go event by event through a `StreamTranslator`, each upstream event turned into its
//! translation as soon as it arrives.
//!
//! | file | from | to |
//! |---|---|---|
//! | `anthropic` | OpenAI chat request; Anthropic reply and events | Anthropic request; chat completion and chunks |
//! | `messages` | Anthropic request; chat completion and chunks | OpenAI chat request; Anthropic message and events |
//! | `gemini` | OpenAI chat and embeddings requests; Gemini replies and events | Gemini requests; chat completion and chunks; embeddings list |
//! | `responses` (`responses_tools`, `responses_items`, `responses_stream`) | Responses API request; chat completion and chunks | chat request; Responses object and events |
//! | `responses_chain` | stored bridged response; chained Responses request | chained request with the stored items; `input_items` list |
//! | `completions` | legacy completions request; chat completion and chunks | chat request; text completion and chunks |
//! | `thinking` | thinking blocks and settings of either dialect | what Anthropic will take back; efforts and budgets |

pub mod anthropic;
mod anthropic_stream;
pub mod completions;
pub mod gemini;
mod gemini_schema;
mod gemini_stream;
pub mod messages;
mod messages_stream;
pub mod responses;
pub mod responses_chain;
mod responses_custom;
mod responses_items;
mod responses_stream;
mod responses_tools;
mod stream;
pub mod thinking;

pub use stream::{Chain, StreamTranslator, translate};

use serde_json::{Map, Value};

use crate::dialects::BodyError;

/// A JSON object, as translations read and build them.
pub type Object = Map<String, Value>;

/// Parses a body that must be a JSON object.
pub(crate) fn parse_object(body: &[u8]) -> Result<Object, BodyError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(invalid("the request body must be a JSON object", None)),
        Err(e) => Err(BodyError {
            message: format!("the request body is not valid JSON: {e}"),
            param: None,
            code: "invalid_json",
        }),
    }
}

/// A value the translation cannot accept (400 `invalid_value`).
pub(crate) fn invalid(message: impl Into<String>, param: Option<&str>) -> BodyError {
    BodyError {
        message: message.into(),
        param: param.map(str::to_owned),
        code: "invalid_value",
    }
}

/// A feature the target protocol has no equivalent for (400 `unsupported_value`).
pub(crate) fn unsupported(message: impl Into<String>, param: Option<&str>) -> BodyError {
    BodyError {
        message: message.into(),
        param: param.map(str::to_owned),
        code: "unsupported_value",
    }
}

/// Serializes a tree built by a translation.
/// Appends one OpenAI `chat.completion.chunk` SSE event: what every translator into chat emits.
pub(crate) fn push_chat_chunk(
    out: &mut Vec<u8>,
    id: &str,
    created: u64,
    model: &impl serde::Serialize,
    delta: Value,
    finish: Option<&str>,
) {
    let chunk = serde_json::json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }],
    });
    crate::dialects::sse::push_data_event(out, &to_bytes(&chunk));
}

/// What one OpenAI chat chunk carries, read the same way by every translator out of chat.
pub(crate) struct ChatDelta<'a> {
    /// The usage, when the chunk has one.
    pub usage: Option<crate::domain::Usage>,
    /// Non-empty text of the first choice.
    pub text: Option<&'a str>,
    /// The first choice's tool-call deltas.
    pub tool_calls: &'a [Value],
    /// The first choice's finish reason.
    pub finish: Option<&'a str>,
}

impl<'a> ChatDelta<'a> {
    /// Reads `chunk` (a parsed `chat.completion.chunk`).
    pub(crate) fn read(chunk: &'a Value) -> Self {
        let usage = chunk.get("usage").and_then(crate::dialects::wire::chat_usage);
        let choice = chunk.pointer("/choices/0");
        let delta = choice.and_then(|c| c.get("delta"));
        Self {
            usage,
            text: delta
                .and_then(|d| d.get("content"))
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty()),
            tool_calls: delta
                .and_then(|d| d.get("tool_calls"))
                .and_then(Value::as_array)
                .map_or(&[], Vec::as_slice),
            finish: choice.and_then(|c| c.get("finish_reason")).and_then(Value::as_str),
        }
    }
}

pub(crate) fn to_bytes(value: &Value) -> bytes::Bytes {
    // Serializing a `Value` cannot fail: its keys are strings and its numbers finite.
    bytes::Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// `data:<mime>;base64,<data>` → (mime, data).
pub(crate) fn data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    Some((mime, data))
}

/// The text of OpenAI message content: a string, or the `text` of its text parts.
pub(crate) fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// A tool call's `arguments` string as a JSON object (`{}` when empty; wrapped when not a JSON
/// object, as Anthropic's `input` and Gemini's `args` must be objects).
pub(crate) fn arguments_value(arguments: Option<&Value>) -> Value {
    match arguments {
        Some(Value::String(s)) if s.trim().is_empty() => Value::Object(Object::new()),
        Some(Value::String(s)) => match serde_json::from_str(s) {
            Ok(v @ Value::Object(_)) => v,
            _ => serde_json::json!({ "_raw": s }),
        },
        Some(v @ Value::Object(_)) => v.clone(),
        _ => Value::Object(Object::new()),
    }
}

/// Seconds since the epoch, for `created` fields.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fresh id with `prefix` (`msg_`, `resp_`, `call_`...): time-ordered, unique per process.
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::now_v7().simple())
}

/// `stop` as a list: a string becomes one entry.
pub(crate) fn stop_list(stop: Option<&Value>) -> Option<Value> {
    match stop {
        Some(Value::String(s)) => Some(Value::Array(vec![Value::String(s.clone())])),
        Some(v @ Value::Array(_)) => Some(v.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_urls_split_into_mime_and_data() {
        assert_eq!(data_url("data:image/png;base64,iVBO"), Some(("image/png", "iVBO")));
        assert_eq!(data_url("https://x/y.png"), None);
    }

    #[test]
    fn arguments_become_objects() {
        assert_eq!(arguments_value(Some(&json!("{\"a\":1}"))), json!({"a": 1}));
        assert_eq!(arguments_value(Some(&json!(""))), json!({}));
        assert_eq!(arguments_value(Some(&json!("nope"))), json!({"_raw": "nope"}));
        // Found by the translate_anthropic fuzz target: `[1]` became a tool_use `input` of `[1]`,
        // which Anthropic (and Gemini, for `args`) refuse.
        assert_eq!(arguments_value(Some(&json!("[1]"))), json!({"_raw": "[1]"}));
        assert_eq!(arguments_value(Some(&json!("7"))), json!({"_raw": "7"}));
    }

    #[test]
    fn content_text_joins_text_parts() {
        let parts = json!([{"type": "text", "text": "a"}, {"type": "image_url"}, {"type": "text", "text": "b"}]);
        assert_eq!(content_text(Some(&parts)), "ab");
        assert_eq!(content_text(Some(&json!("s"))), "s");
    }
}
