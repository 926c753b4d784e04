//! Anthropic's Token Counting API (`POST /v1/messages/count_tokens`): the `{"input_tokens": N}`
//! answer, read from an upstream that counts or written by the gateway, and the gateway's own
//! estimate for providers that have no counting endpoint.
//!
//! The estimate encodes the request's text with OpenAI's `o200k_base` (tiktoken-rs, compiled in):
//! no other vendor publishes its tokenizer, so the count is close for OpenAI-family models and an
//! approximation for the rest, which is what the gateway says in `x-ai-gateway-token-count`.
//! Reference: <https://docs.anthropic.com/en/api/messages-count-tokens>.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use super::BodyError;

/// What a content block without text (an image, a document) counts for. Anthropic's vision guide
/// puts an image at about `width * height / 750` tokens, and images are scaled to about 1.15
/// megapixels at most, so about 1,600 tokens each: the estimate errs on the high side, as a
/// client deciding whether a prompt fits would want.
const OPAQUE_BLOCK_TOKENS: u64 = 1_600;

/// Framing every message adds around its content (role markers, separators), as chat formats do.
const PER_MESSAGE_TOKENS: u64 = 3;

/// The `input_tokens` of an upstream's count, or `None` when the body is not one.
pub fn input_tokens(body: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct Count {
        input_tokens: u64,
    }
    serde_json::from_slice::<Count>(body).ok().map(|c| c.input_tokens)
}

/// The answer body `{"input_tokens": n}`.
pub fn count_body(n: u64) -> Bytes {
    Bytes::from(format!("{{\"input_tokens\":{n}}}"))
}

/// Tokens of plain text in `o200k_base` (what an answer relayed so far is priced on when its
/// stream ended before the usage came).
pub fn text_tokens(text: &str) -> u64 {
    tiktoken_rs::o200k_base_singleton().encode_ordinary(text).len() as u64
}

/// The gateway's estimate of a count-tokens body's input tokens: `system`, every message's
/// content (text, thinking, tool calls' input, tool results), and every tool's name, description
/// and input schema. The body has been validated; a body that is not a JSON object is refused.
pub fn estimate(body: &[u8]) -> Result<u64, BodyError> {
    let request: Value = serde_json::from_slice(body).map_err(|e| BodyError {
        message: format!("the body is not valid JSON: {e}"),
        param: None,
        code: "invalid_json",
    })?;
    let mut counter = Counter::default();
    if let Some(system) = request.get("system") {
        counter.content(system);
    }
    for message in request.get("messages").and_then(Value::as_array).into_iter().flatten() {
        counter.fixed(PER_MESSAGE_TOKENS);
        if let Some(content) = message.get("content") {
            counter.content(content);
        }
    }
    for tool in request.get("tools").and_then(Value::as_array).into_iter().flatten() {
        for key in ["name", "description"] {
            if let Some(text) = tool.get(key).and_then(Value::as_str) {
                counter.text(text);
            }
        }
        if let Some(schema) = tool.get("input_schema") {
            counter.json(schema);
        }
    }
    Ok(counter.total)
}

#[derive(Default)]
struct Counter {
    total: u64,
}

impl Counter {
    fn text(&mut self, text: &str) {
        // `encode_ordinary`: text that looks like a special token is counted as the text it is.
        let n = tiktoken_rs::o200k_base_singleton().encode_ordinary(text).len();
        self.total = self.total.saturating_add(n as u64);
    }

    fn fixed(&mut self, n: u64) {
        self.total = self.total.saturating_add(n);
    }

    /// A value sent as JSON (a tool call's input, a schema) counts as its compact JSON text.
    fn json(&mut self, value: &Value) {
        self.text(&value.to_string());
    }

    /// A `content` or `system`: a string, or an array of blocks.
    fn content(&mut self, content: &Value) {
        match content {
            Value::String(text) => self.text(text),
            Value::Array(blocks) => blocks.iter().for_each(|b| self.block(b)),
            _ => {}
        }
    }

    fn block(&mut self, block: &Value) {
        let field = |key: &str| block.get(key).and_then(Value::as_str);
        match field("type") {
            Some("text") => self.text(field("text").unwrap_or_default()),
            Some("thinking") => self.text(field("thinking").unwrap_or_default()),
            Some("tool_use" | "server_tool_use") => {
                self.text(field("name").unwrap_or_default());
                if let Some(input) = block.get("input") {
                    self.json(input);
                }
            }
            Some("tool_result") => {
                if let Some(content) = block.get("content") {
                    self.content(content);
                }
            }
            // Signed or encrypted blocks (redacted thinking) go back to the model as they are, but
            // carry no text to count.
            Some("redacted_thinking") => {}
            Some(_) => self.fixed(OPAQUE_BLOCK_TOKENS),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> u64 {
        tiktoken_rs::o200k_base_singleton().encode_ordinary(text).len() as u64
    }

    #[test]
    fn counts_system_messages_tool_calls_results_and_tools() {
        let body = serde_json::json!({
            "model": "m",
            "system": [{"type": "text", "text": "Be brief."}],
            "messages": [
                {"role": "user", "content": "What is the weather in Paris?"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Paris"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "18C and sunny"}]}]}
            ],
            "tools": [{"name": "weather", "description": "Current weather", "input_schema": {"type": "object"}}]
        });
        let expected = tokens("Be brief.")
            + 3 * PER_MESSAGE_TOKENS
            + tokens("What is the weather in Paris?")
            + tokens("weather")
            + tokens(r#"{"city":"Paris"}"#)
            + tokens("18C and sunny")
            + tokens("weather")
            + tokens("Current weather")
            + tokens(r#"{"type":"object"}"#);
        assert_eq!(estimate(body.to_string().as_bytes()).unwrap(), expected);
        assert!(expected > 20, "a real tokenizer counted: {expected}");
    }

    #[test]
    fn images_count_a_fixed_amount_and_special_tokens_count_as_text() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}},{"type":"text","text":"<|endoftext|>"}]}]}"#;
        let n = estimate(body).unwrap();
        assert_eq!(n, PER_MESSAGE_TOKENS + OPAQUE_BLOCK_TOKENS + tokens("<|endoftext|>"));
        assert!(tokens("<|endoftext|>") > 1);
    }

    #[test]
    fn reads_and_writes_the_count() {
        assert_eq!(input_tokens(br#"{"input_tokens": 42}"#), Some(42));
        assert_eq!(input_tokens(br#"{"type":"error"}"#), None);
        assert_eq!(count_body(7), Bytes::from_static(br#"{"input_tokens":7}"#));
        assert!(estimate(b"[").is_err());
    }
}
