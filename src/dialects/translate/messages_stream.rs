//! `chat.completion.chunk` events → Anthropic stream events, for an Anthropic-dialect client
//! served by a chat-completions upstream.
//!
//! Each chunk becomes its events at once: the first opens the message (`message_start`),
//! reasoning (`reasoning_content` or `reasoning`), text and tool-call pieces open, fill and close
//! content blocks, and `[DONE]` ends the message with `message_delta` (stop reason and usage,
//! which OpenAI sends only at the end) and `message_stop`. A thinking block closes with a
//! `signature_delta` holding the gateway's own signature, so it can be told from Anthropic's later.

use serde_json::{Value, json};

use super::messages::{message_id, stop_reason};
use super::responses_items::reasoning_text;
use super::{ChatDelta, StreamTranslator};
use super::{thinking, to_bytes};
use crate::dialects::sse;
use crate::dialects::wire::anthropic_usage_json;
use crate::domain::Usage;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    /// The upstream's reasoning, signed by the gateway when it closes.
    Thinking,
    Text,
    /// An OpenAI tool-call index.
    Tool(u64),
}

/// Chat chunks → Anthropic events, one chunk at a time.
#[derive(Debug, Default)]
pub struct ToMessageEvents {
    started: bool,
    open: Option<(u64, Block)>,
    next_block: u64,
    stop_reason: Option<&'static str>,
    usage: Option<Usage>,
    finished: bool,
}

impl ToMessageEvents {
    /// A fresh translation for one stream.
    pub fn new() -> Self {
        Self::default()
    }

    fn emit(out: &mut Vec<u8>, event: &str, data: &Value) {
        sse::push_named_event(out, event, &to_bytes(data));
    }

    fn start(&mut self, chunk: &Value, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let message = json!({
            "id": message_id(chunk.get("id").and_then(Value::as_str)),
            "type": "message",
            "role": "assistant",
            "model": chunk.get("model").cloned().unwrap_or_default(),
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": { "input_tokens": 0, "output_tokens": 0 },
        });
        Self::emit(
            out,
            "message_start",
            &json!({ "type": "message_start", "message": message }),
        );
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some((index, Block::Thinking)) = self.open {
            let signature = thinking::gateway_signature();
            let delta = json!({ "type": "content_block_delta", "index": index, "delta": { "type": "signature_delta", "signature": signature } });
            Self::emit(out, "content_block_delta", &delta);
        }
        if let Some((index, _)) = self.open.take() {
            Self::emit(
                out,
                "content_block_stop",
                &json!({ "type": "content_block_stop", "index": index }),
            );
        }
    }

    /// Makes `block` the open content block, closing another one first.
    fn open(&mut self, block: Block, content_block: Value, out: &mut Vec<u8>) -> u64 {
        if let Some((index, open)) = self.open
            && open == block
        {
            return index;
        }
        self.close(out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some((index, block));
        Self::emit(
            out,
            "content_block_start",
            &json!({ "type": "content_block_start", "index": index, "content_block": content_block }),
        );
        index
    }

    fn thinking(&mut self, text: &str, out: &mut Vec<u8>) {
        let start = json!({ "type": "thinking", "thinking": "", "signature": "" });
        let index = self.open(Block::Thinking, start, out);
        let delta = json!({ "type": "content_block_delta", "index": index, "delta": { "type": "thinking_delta", "thinking": text } });
        Self::emit(out, "content_block_delta", &delta);
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        let index = self.open(Block::Text, json!({ "type": "text", "text": "" }), out);
        let delta =
            json!({ "type": "content_block_delta", "index": index, "delta": { "type": "text_delta", "text": text } });
        Self::emit(out, "content_block_delta", &delta);
    }

    fn tool_call(&mut self, call: &Value, out: &mut Vec<u8>) {
        let n = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        let start = json!({
            "type": "tool_use",
            "id": call.get("id").cloned().unwrap_or_default(),
            "name": call.pointer("/function/name").cloned().unwrap_or_default(),
            "input": {},
        });
        let index = self.open(Block::Tool(n), start, out);
        if let Some(args) = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        {
            let delta = json!({ "type": "content_block_delta", "index": index, "delta": { "type": "input_json_delta", "partial_json": args } });
            Self::emit(out, "content_block_delta", &delta);
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.start(&Value::Null, out);
        self.close(out);
        let u = self.usage.unwrap_or_default();
        let delta = json!({
            "type": "message_delta",
            "delta": { "stop_reason": self.stop_reason.unwrap_or("end_turn"), "stop_sequence": null },
            "usage": anthropic_usage_json(&u),
        });
        Self::emit(out, "message_delta", &delta);
        Self::emit(out, "message_stop", &json!({ "type": "message_stop" }));
    }
}

impl StreamTranslator for ToMessageEvents {
    fn event(&mut self, data: &[u8], out: &mut Vec<u8>) {
        // After `message_stop` an Anthropic client reads nothing more; an upstream that keeps
        // sending past `[DONE]` must not reopen the message.
        if self.finished {
            return;
        }
        if sse::is_done(data) {
            self.end(out);
            return;
        }
        let Ok(chunk) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        if let Some(err) = chunk.get("error") {
            let body = json!({ "type": "error", "error": {
                "type": "api_error",
                "message": err.get("message").cloned().unwrap_or_else(|| "upstream stream error".into()),
            }});
            Self::emit(out, "error", &body);
            return;
        }
        self.start(&chunk, out);
        let delta = ChatDelta::read(&chunk);
        if delta.usage.is_some() {
            self.usage = delta.usage;
        }
        if let Some(reasoning) = chunk.pointer("/choices/0/delta").and_then(reasoning_text) {
            self.thinking(reasoning, out);
        }
        if let Some(text) = delta.text {
            self.text(text, out);
        }
        for call in delta.tool_calls {
            self.tool_call(call, out);
        }
        if let Some(reason) = delta.finish {
            self.stop_reason = Some(stop_reason(reason));
            self.close(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialects::translate::stream::tests::{names, payloads, run};

    #[test]
    fn text_stream_becomes_anthropic_events() {
        let upstream = concat!(
            "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":12,\"total_tokens\":21}}\n\n",
            "data: [DONE]\n\n",
        );
        let items = run(ToMessageEvents::new(), upstream);
        assert_eq!(names(&items[..1]), ["message_start"]);
        assert_eq!(names(&items[1..2]), ["content_block_start", "content_block_delta"]);
        assert_eq!(names(&items[2..3]), ["content_block_stop"]);
        assert!(names(&items[3..4]).is_empty());
        assert_eq!(names(&items[4..]), ["message_delta", "message_stop"]);
        let p = payloads(&items);
        assert_eq!(p[0]["message"]["id"], json!("msg_chatcmpl-1"));
        assert_eq!(p[2]["delta"]["text"], json!("Hello"));
        assert_eq!(p[4]["delta"]["stop_reason"], json!("end_turn"));
        assert_eq!(p[4]["usage"]["output_tokens"], json!(12));
    }

    #[test]
    fn streamed_tool_calls_become_tool_use_blocks() {
        let upstream = concat!(
            "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"location\\\":\"}}]},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
            "data: [DONE]\n\n",
        );
        let items = run(ToMessageEvents::new(), upstream);
        let p = payloads(&items);
        assert_eq!(
            p[1]["content_block"],
            json!({"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}})
        );
        let args: String = p[2..4]
            .iter()
            .map(|e| e["delta"]["partial_json"].as_str().unwrap())
            .collect();
        assert_eq!(
            serde_json::from_str::<Value>(&args).unwrap(),
            json!({"location": "Paris"})
        );
        assert_eq!(p[4]["type"], json!("content_block_stop"));
        assert_eq!(p[5]["delta"]["stop_reason"], json!("tool_use"));
        assert_eq!(p[6]["type"], json!("message_stop"));
    }

    #[test]
    fn an_error_chunk_becomes_an_error_event() {
        let items = run(
            ToMessageEvents::new(),
            "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n",
        );
        assert_eq!(names(&items), ["error"]);
        assert!(sse::first_event_is_error(items[0].as_bytes()));
    }

    // Found by the translate_messages fuzz target: a chunk after `[DONE]` opened a content block
    // after `message_stop`.
    #[test]
    fn nothing_follows_message_stop() {
        let upstream = concat!(
            "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":\"stop\"}]}\n\n",
            "data: [DONE]\n\n",
            "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"late\"},\"finish_reason\":null}]}\n\n",
            "data: [DONE]\n\n",
        );
        let items = run(ToMessageEvents::new(), upstream);
        assert_eq!(names(&items).last().map(String::as_str), Some("message_stop"));
        assert!(items[2].is_empty() && items[3].is_empty());
    }

    #[test]
    fn streamed_reasoning_becomes_a_thinking_block_signed_before_it_closes() {
        let upstream = concat!(
            "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"reasoning_content\":\"Six \"},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning\":\"times seven.\"},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"42\"},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":20,\"total_tokens\":120,\"prompt_tokens_details\":{\"cached_tokens\":64}}}\n\n",
            "data: [DONE]\n\n",
        );
        let items = run(ToMessageEvents::new(), upstream);
        assert_eq!(
            names(&items[..1]),
            ["message_start", "content_block_start", "content_block_delta"],
            "the first reasoning piece goes out with the first chunk"
        );
        assert_eq!(names(&items[1..2]), ["content_block_delta"]);
        assert_eq!(
            names(&items[2..3]),
            [
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta"
            ]
        );
        let p = payloads(&items);
        assert_eq!(
            p[1]["content_block"],
            json!({"type": "thinking", "thinking": "", "signature": ""})
        );
        assert_eq!(p[2]["delta"], json!({"type": "thinking_delta", "thinking": "Six "}));
        assert_eq!(p[3]["delta"]["thinking"], "times seven.");
        assert_eq!(p[4]["delta"]["type"], "signature_delta");
        assert!(
            p[4]["delta"]["signature"]
                .as_str()
                .unwrap()
                .starts_with(thinking::GATEWAY_SIGNATURE_PREFIX)
        );
        assert_eq!(
            (p[5]["type"].as_str(), p[5]["index"].as_u64()),
            (Some("content_block_stop"), Some(0))
        );
        assert_eq!(p[6]["index"], 1);
        assert_eq!(p[7]["delta"]["text"], "42");
        let delta = p.iter().find(|e| e["type"] == "message_delta").unwrap();
        assert_eq!(
            delta["usage"],
            json!({"input_tokens": 36, "cache_read_input_tokens": 64, "cache_creation_input_tokens": 0, "output_tokens": 20})
        );
    }
}
