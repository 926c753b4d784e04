//! `streamGenerateContent?alt=sse` events → `chat.completion.chunk` events.
//!
//! Each Gemini event is a whole `GenerateContentResponse` holding the next piece of the answer.
//! Gemini has no end marker: the event carrying `finishReason` is the last, so its finish chunk,
//! the usage chunk (when asked for) and `[DONE]` follow it at once.

use serde_json::{Value, json};

use super::gemini::{Parts, blocked, finish_reason, parts, usage};
use super::{StreamTranslator, new_id, now_secs, to_bytes};
use crate::dialects::sse;
use crate::dialects::wire::chat_usage_json;
use crate::domain::Usage;

/// Gemini stream events → chat chunks, one event at a time.
#[derive(Debug)]
pub struct ToChatChunks {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    started: bool,
    calls: usize,
    usage: Option<Usage>,
    done: bool,
}

impl ToChatChunks {
    /// `model`: the name asked for (used until Gemini reports `modelVersion`); `include_usage`:
    /// the request asked for the final usage chunk.
    pub fn new(model: &str, include_usage: bool) -> Self {
        Self {
            id: new_id("chatcmpl-"),
            model: model.to_owned(),
            created: now_secs(),
            include_usage,
            started: false,
            calls: 0,
            usage: None,
            done: false,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>, out: &mut Vec<u8>) {
        super::push_chat_chunk(out, &self.id, self.created, &self.model, delta, finish);
    }
}

impl StreamTranslator for ToChatChunks {
    fn event(&mut self, data: &[u8], out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        let Ok(r) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        if let Some(message) =
            blocked(&r).or_else(|| r.pointer("/error/message").and_then(Value::as_str).map(str::to_owned))
        {
            let body = json!({ "error": { "message": message, "type": "invalid_request_error", "param": null, "code": "content_filter" } });
            sse::push_data_event(out, &to_bytes(&body));
            self.done = true;
            return;
        }
        if let Some(version) = r.get("modelVersion").and_then(Value::as_str) {
            version.clone_into(&mut self.model);
        }
        if !self.started {
            self.started = true;
            if let Some(id) = r.get("responseId").and_then(Value::as_str) {
                self.id = format!("chatcmpl-{id}");
            }
            self.chunk(json!({ "role": "assistant", "content": "" }), None, out);
        }
        if let Some(u) = usage(r.get("usageMetadata")) {
            self.usage = Some(u);
        }
        let Some(candidate) = r.pointer("/candidates/0") else {
            return;
        };
        let Parts { text, reasoning, calls } = parts(candidate, self.calls);
        // Thoughts come before the answer, and go out as they arrive, apart from its text.
        if !reasoning.is_empty() {
            self.chunk(json!({ "reasoning_content": reasoning }), None, out);
        }
        if !text.is_empty() {
            self.chunk(json!({ "content": text }), None, out);
        }
        if !calls.is_empty() {
            let calls: Vec<Value> = calls
                .into_iter()
                .enumerate()
                .map(|(i, mut c)| {
                    c["index"] = json!(self.calls + i);
                    c
                })
                .collect();
            self.calls += calls.len();
            self.chunk(json!({ "tool_calls": calls }), None, out);
        }
        let Some(reason) = candidate.get("finishReason").and_then(Value::as_str) else {
            return;
        };
        self.chunk(json!({}), Some(finish_reason(reason, self.calls > 0)), out);
        if self.include_usage {
            let chunk = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": self.usage.as_ref().map(chat_usage_json),
            });
            sse::push_data_event(out, &to_bytes(&chunk));
        }
        sse::push_data_event(out, b"[DONE]");
        self.done = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialects::translate::stream::tests::{payloads, run};

    #[test]
    fn text_events_become_chunks_and_the_last_ends_the_stream() {
        let upstream = concat!(
            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"The\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 8,\"totalTokenCount\": 8},\"modelVersion\": \"gemini-2.5-flash\"}\n\n",
            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" end\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 8,\"candidatesTokenCount\": 2,\"totalTokenCount\": 10},\"modelVersion\": \"gemini-2.5-flash\"}\n\n",
        );
        let items = run(ToChatChunks::new("gemini-2.5-flash", true), upstream);
        assert_eq!(payloads(&items[..1]).len(), 2, "role chunk and text, at once");
        let p = payloads(&items);
        assert_eq!(p[1]["choices"][0]["delta"]["content"], json!("The"));
        assert_eq!(p[2]["choices"][0]["delta"]["content"], json!(" end"));
        assert_eq!(p[3]["choices"][0]["finish_reason"], json!("stop"));
        assert_eq!(p[4]["usage"]["total_tokens"], json!(10));
        assert_eq!(p[5], json!("[DONE]"));
        assert!(items[2].is_empty(), "nothing left for the close");
    }

    #[test]
    fn function_calls_stream_whole_with_indexes() {
        let upstream = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"get_weather\",\"args\": {\"city\": \"Paris\"}}}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}]}\n\n";
        let p = payloads(&run(ToChatChunks::new("g", false), upstream));
        let call = &p[1]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(call["index"], json!(0));
        assert_eq!(call["id"], json!("call_0"));
        assert_eq!(call["function"]["arguments"], json!("{\"city\":\"Paris\"}"));
        assert_eq!(p[2]["choices"][0]["finish_reason"], json!("tool_calls"));
        assert_eq!(p[3], json!("[DONE]"));
    }

    #[test]
    fn thoughts_stream_as_reasoning_content_apart_from_the_text() {
        let upstream = concat!(
            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Thinking\",\"thought\": true}],\"role\": \"model\"},\"index\": 0}]}\n\n",
            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 8,\"candidatesTokenCount\": 1,\"thoughtsTokenCount\": 5,\"cachedContentTokenCount\": 4,\"totalTokenCount\": 14}}\n\n",
        );
        let items = run(ToChatChunks::new("g", true), upstream);
        let p = payloads(&items[..1]);
        assert_eq!(
            p[1]["choices"][0]["delta"],
            json!({"reasoning_content": "Thinking"}),
            "as it arrives"
        );
        let p = payloads(&items);
        assert_eq!(p[2]["choices"][0]["delta"], json!({"content": "Hi"}));
        assert_eq!(p[4]["usage"]["completion_tokens_details"]["reasoning_tokens"], json!(5));
        assert_eq!(p[4]["usage"]["prompt_tokens_details"]["cached_tokens"], json!(4));
    }

    #[test]
    fn a_blocked_prompt_is_an_error_event() {
        let items = run(
            ToChatChunks::new("g", false),
            "data: {\"promptFeedback\": {\"blockReason\": \"SAFETY\"}}\n\n",
        );
        assert!(sse::first_event_is_error(items[0].as_bytes()));
    }

    #[test]
    fn a_stream_without_finish_reason_gets_no_end_marker() {
        let items = run(
            ToChatChunks::new("g", false),
            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"a\"}]}}]}\n\n",
        );
        assert!(!items.concat().contains("[DONE]"));
    }
}
