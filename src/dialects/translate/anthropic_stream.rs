//! Anthropic stream events → `chat.completion.chunk` events, for an OpenAI-dialect client served
//! by an Anthropic upstream: each event becomes its chunk at once. Thinking flows as
//! `reasoning_content` and as `thinking_blocks` pieces (text, then the signature that closes the
//! block; a `redacted_thinking` block whole), which `responses_items::merge_thinking` joins again.

use serde_json::{Value, json};

use super::anthropic::{finish_reason, usage};
use super::{StreamTranslator, new_id, now_secs, to_bytes};
use crate::dialects::sse;
use crate::domain::Usage;

/// Anthropic stream events → `chat.completion.chunk` events, one event at a time.
#[derive(Debug)]
pub struct ToChatChunks {
    id: String,
    model: Value,
    created: u64,
    include_usage: bool,
    /// Anthropic block index → OpenAI tool call index.
    tool_blocks: Vec<(u64, u64)>,
    input_tokens: Usage,
    usage: Usage,
    /// `message_stop` was translated into `[DONE]`: nothing may follow it.
    done: bool,
}

impl ToChatChunks {
    /// `include_usage`: the request asked for the final usage chunk (`stream_options`).
    pub fn new(include_usage: bool) -> Self {
        Self {
            id: new_id("chatcmpl-"),
            model: Value::Null,
            created: now_secs(),
            include_usage,
            tool_blocks: Vec::new(),
            input_tokens: Usage::default(),
            usage: Usage::default(),
            done: false,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>, out: &mut Vec<u8>) {
        super::push_chat_chunk(out, &self.id, self.created, &self.model, delta, finish);
    }

    fn tool_index(&self, block: u64) -> Option<u64> {
        self.tool_blocks.iter().find(|(b, _)| *b == block).map(|(_, t)| *t)
    }
}

impl StreamTranslator for ToChatChunks {
    fn event(&mut self, data: &[u8], out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        let Ok(e) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        let index = e.get("index").and_then(Value::as_u64).unwrap_or(0);
        match e.get("type").and_then(Value::as_str).unwrap_or_default() {
            "message_start" => {
                let m = e.get("message").unwrap_or(&Value::Null);
                if let Some(id) = m.get("id").and_then(Value::as_str) {
                    id.clone_into(&mut self.id);
                }
                self.model = m.get("model").cloned().unwrap_or_default();
                self.input_tokens = usage(m.get("usage"));
                self.chunk(json!({ "role": "assistant", "content": "" }), None, out);
            }
            "content_block_start" => {
                let block = e.get("content_block").unwrap_or(&Value::Null);
                match block.get("type").and_then(Value::as_str) {
                    Some("tool_use") => {
                        let n = self.tool_blocks.len() as u64;
                        self.tool_blocks.push((index, n));
                        let call = json!({
                            "index": n,
                            "id": block.get("id").cloned().unwrap_or_default(),
                            "type": "function",
                            "function": { "name": block.get("name").cloned().unwrap_or_default(), "arguments": "" },
                        });
                        self.chunk(json!({ "tool_calls": [call] }), None, out);
                    }
                    Some("text") => {
                        if let Some(t) = block.get("text").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                            self.chunk(json!({ "content": t }), None, out);
                        }
                    }
                    Some("thinking") => {
                        if let Some(t) = block.get("thinking").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                            self.chunk(thinking_piece(t), None, out);
                        }
                    }
                    Some("redacted_thinking") => {
                        let data = block.get("data").cloned().unwrap_or_default();
                        let piece = json!({ "type": "redacted_thinking", "data": data });
                        self.chunk(json!({ "thinking_blocks": [piece] }), None, out);
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let delta = e.get("delta").unwrap_or(&Value::Null);
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        let text = delta.get("text").cloned().unwrap_or_default();
                        self.chunk(json!({ "content": text }), None, out);
                    }
                    Some("thinking_delta") => {
                        let piece = delta.get("thinking").and_then(Value::as_str).unwrap_or_default();
                        self.chunk(thinking_piece(piece), None, out);
                    }
                    Some("signature_delta") => {
                        let signature = delta.get("signature").cloned().unwrap_or_default();
                        let piece = json!({ "type": "thinking", "signature": signature });
                        self.chunk(json!({ "thinking_blocks": [piece] }), None, out);
                    }
                    Some("input_json_delta") => {
                        let Some(n) = self.tool_index(index) else { return };
                        let part = delta.get("partial_json").cloned().unwrap_or_default();
                        self.chunk(
                            json!({ "tool_calls": [{ "index": n, "function": { "arguments": part } }] }),
                            None,
                            out,
                        );
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                self.usage = self.input_tokens.merge(usage(e.get("usage")));
                let stop = e
                    .pointer("/delta/stop_reason")
                    .and_then(Value::as_str)
                    .unwrap_or("end_turn");
                self.chunk(json!({}), Some(finish_reason(stop)), out);
            }
            "message_stop" => {
                if self.include_usage {
                    let chunk = json!({
                        "id": self.id,
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.model,
                        "choices": [],
                        "usage": crate::dialects::wire::chat_usage_json(&self.usage),
                    });
                    sse::push_data_event(out, &to_bytes(&chunk));
                }
                sse::push_data_event(out, b"[DONE]");
                self.done = true;
            }
            "error" => {
                let err = e.get("error").unwrap_or(&Value::Null);
                let body = json!({ "error": {
                    "message": err.get("message").cloned().unwrap_or_else(|| "upstream stream error".into()),
                    "type": err.get("type").cloned().unwrap_or_else(|| "api_error".into()),
                    "param": null,
                    "code": null,
                }});
                sse::push_data_event(out, &to_bytes(&body));
            }
            // `ping`, `content_block_stop`: nothing to say in chat chunks.
            _ => {}
        }
    }
}

/// A chat delta for a piece of Anthropic thinking: the text as `reasoning_content`, and as a
/// `thinking_blocks` piece that `signature_delta`'s piece closes.
fn thinking_piece(text: &str) -> Value {
    json!({ "reasoning_content": text, "thinking_blocks": [{ "type": "thinking", "thinking": text }] })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialects::translate::stream::tests::{payloads, run};

    #[test]
    fn stream_events_become_chunks_one_for_one() {
        let upstream = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude\",\"stop_reason\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: ping\ndata: {\"type\":\"ping\"}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"Paris\\\"}\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let items = run(ToChatChunks::new(true), upstream);
        // One output item per upstream event: role, nothing, nothing, text, nothing, tool start,
        // two argument pieces, nothing, finish, usage + [DONE], and nothing at the close.
        let sizes: Vec<usize> = items.iter().map(|i| payloads(std::slice::from_ref(i)).len()).collect();
        assert_eq!(sizes, [1, 0, 0, 1, 0, 1, 1, 1, 0, 1, 2, 0]);
        let p = payloads(&items);
        assert_eq!(p[0]["choices"][0]["delta"]["role"], json!("assistant"));
        assert_eq!(p[0]["id"], json!("msg_1"));
        assert_eq!(p[1]["choices"][0]["delta"]["content"], json!("Hi"));
        assert_eq!(
            p[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
            json!("get_weather")
        );
        let args: String = p[3..5]
            .iter()
            .map(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(serde_json::from_str::<Value>(&args).unwrap(), json!({"city": "Paris"}));
        assert_eq!(p[5]["choices"][0]["finish_reason"], json!("tool_calls"));
        assert_eq!(p[6]["usage"]["total_tokens"], json!(40));
        assert_eq!(p[7], json!("[DONE]"));
    }

    #[test]
    fn stream_error_event_becomes_an_openai_error_event() {
        let items = run(
            ToChatChunks::new(false),
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
        );
        let p = payloads(&items);
        assert_eq!(p[0]["error"]["type"], json!("overloaded_error"));
        assert!(sse::first_event_is_error(items[0].as_bytes()));
    }

    // Found by the translate_anthropic fuzz target: events after `message_stop` (a second one,
    // say) were translated after `[DONE]`.
    #[test]
    fn nothing_follows_done() {
        let upstream = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude\"}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"late\"}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let p = payloads(&run(ToChatChunks::new(false), upstream));
        assert_eq!(p.len(), 2);
        assert_eq!(p[1], json!("[DONE]"));
    }

    #[test]
    fn streamed_thinking_becomes_reasoning_and_thinking_block_pieces() {
        let upstream = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude\",\"stop_reason\":null,\"usage\":{\"input_tokens\":5,\"cache_read_input_tokens\":20,\"output_tokens\":1}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Six times\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQBCgIYAhIM\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"redacted_thinking\",\"data\":\"EmwKAhgB\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"text_delta\",\"text\":\"42\"}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let p = payloads(&run(ToChatChunks::new(true), upstream));
        let delta = |i: usize| p[i]["choices"][0]["delta"].clone();
        assert_eq!(
            delta(1),
            json!({"reasoning_content": "Six times", "thinking_blocks": [{"type": "thinking", "thinking": "Six times"}]})
        );
        assert_eq!(
            delta(2),
            json!({"thinking_blocks": [{"type": "thinking", "signature": "EqQBCgIYAhIM"}]})
        );
        assert_eq!(
            delta(3),
            json!({"thinking_blocks": [{"type": "redacted_thinking", "data": "EmwKAhgB"}]})
        );
        assert_eq!(delta(4), json!({"content": "42"}));
        assert_eq!(p[6]["usage"]["prompt_tokens"], 25);
        assert_eq!(p[6]["usage"]["prompt_tokens_details"]["cached_tokens"], 20);
        let mut blocks = Vec::new();
        for i in 1..4 {
            crate::dialects::translate::responses_items::merge_thinking(
                &mut blocks,
                delta(i)["thinking_blocks"].as_array().unwrap(),
            );
        }
        assert_eq!(
            blocks,
            [
                json!({"type": "thinking", "thinking": "Six times", "signature": "EqQBCgIYAhIM"}),
                json!({"type": "redacted_thinking", "data": "EmwKAhgB"})
            ],
            "the pieces merge back into Anthropic's blocks"
        );
    }
}
