//! A continuation's events rewritten into the client's stream, so the client sees one answer.
//!
//! OpenAI chat: the continuation's role-only first delta is dropped; every chunk takes the
//! client's `id`, `model` and `created`; text goes through `Dedup`; the usage chunk counts both
//! attempts. Anthropic: the continuation's `message_start` and `ping`s are dropped; its first text
//! block is merged into the client's open text block (when one is open: its `content_block_start`
//! is dropped, its deltas and stop take that block's index), other blocks are renumbered after the
//! client's; the final `message_delta`'s usage counts both attempts.
//!
//! Only continuations are rewritten (each event parsed and written again); a stream that was never
//! cut is never touched.

use serde_json::{Value, json};

use super::{Dedup, Progress, Style, add};
use crate::dialects::sse;
use crate::dialects::translate::to_bytes;
use crate::dialects::wire::{anthropic_event, anthropic_usage_json, chat_usage, chat_usage_json};
use crate::domain::{Dialect, Usage};

/// Rewrites one continuation's events for the client.
#[derive(Debug)]
pub struct Splicer {
    dialect: Dialect,
    id: Option<String>,
    model: Option<String>,
    created: Option<u64>,
    /// The client's open text block, which the continuation's first text block joins.
    open_text: Option<u64>,
    next_block: u64,
    /// Where the continuation's block 0 lands, once its first block has started.
    base: Option<u64>,
    /// The continuation's block whose text goes through `dedup`.
    deduped_block: Option<u64>,
    /// What the earlier attempts are counted for, added to the continuation's own usage.
    carried: Usage,
    /// The continuation's own `message_start` usage.
    start_usage: Option<Usage>,
    dedup: Dedup,
}

impl Splicer {
    /// For a continuation asked in `style` of the answer `progress` describes; `carried` is what the
    /// earlier attempts are counted for.
    pub fn new(progress: &Progress, style: Style, carried: Usage) -> Self {
        let sent = progress.text();
        let dedup = match style {
            Style::AnthropicPrefill => Dedup::whitespace(&sent[style.prefill(sent).len()..]),
            Style::ContinueFinalMessage => Dedup::off(),
            Style::Instruction => Dedup::repeat(sent),
        };
        Self {
            dialect: progress.dialect,
            id: progress.id.clone(),
            model: progress.model.clone(),
            created: progress.created,
            open_text: progress.open.and_then(|(i, text)| text.then_some(i)),
            next_block: progress.next_block,
            base: None,
            deduped_block: None,
            carried,
            start_usage: None,
            dedup,
        }
    }

    /// The usage the continuation reported at its start (Anthropic's `message_start`).
    pub fn start_usage(&self) -> Option<Usage> {
        self.start_usage
    }

    /// One continuation event's data → the client's events, appended to `out` (maybe none).
    pub fn event(&mut self, data: &[u8], out: &mut Vec<u8>) {
        match self.dialect {
            Dialect::OpenAi => self.chunk(data, out),
            Dialect::Anthropic => self.anthropic(data, out),
            Dialect::Responses => sse::push_data_event(out, data),
        }
    }

    fn chunk(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let Ok(Value::Object(mut chunk)) = serde_json::from_slice::<Value>(data) else {
            // `[DONE]`, or anything that is not a chunk, goes as it came.
            sse::push_data_event(out, data);
            return;
        };
        if chunk.contains_key("error") && !chunk.contains_key("choices") {
            sse::push_data_event(out, data);
            return;
        }
        for (key, value) in [
            ("id", self.id.clone().map(Value::String)),
            ("model", self.model.clone().map(Value::String)),
            ("created", self.created.map(Value::from)),
        ] {
            if let (Some(value), true) = (value, chunk.contains_key(key)) {
                chunk.insert(key.into(), value);
            }
        }
        let mut usage = false;
        if let Some(u) = chunk.get("usage").and_then(chat_usage) {
            chunk.insert("usage".into(), chat_usage_json(&add(self.carried, u)));
            usage = true;
        }
        let mut keep = usage;
        if let Some(choice) = chunk
            .get_mut("choices")
            .and_then(Value::as_array_mut)
            .and_then(|c| c.first_mut())
            .and_then(Value::as_object_mut)
        {
            let finish = choice.get("finish_reason").is_some_and(|f| !f.is_null());
            let delta = choice.get_mut("delta").and_then(Value::as_object_mut);
            let mut ends_text = finish;
            if let Some(delta) = delta {
                delta.remove("role");
                let text = match delta.remove("content") {
                    Some(Value::String(s)) => self.dedup.feed(&s),
                    _ => String::new(),
                };
                // Anything else in the delta (a tool call, reasoning) ends the text that could repeat.
                ends_text |= delta.values().any(|v| !v.is_null());
                let text = if ends_text { text + &self.dedup.flush() } else { text };
                if !text.is_empty() {
                    delta.insert("content".into(), Value::String(text));
                }
                keep |= delta.values().any(|v| !v.is_null());
            }
            keep |= finish;
        } else {
            keep = true;
        }
        if keep {
            sse::push_data_event(out, &to_bytes(&Value::Object(chunk)));
        }
    }

    fn anthropic(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let Ok(Value::Object(mut event)) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        let kind = event.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
        let index = event.get("index").and_then(Value::as_u64);
        match (kind.as_str(), index) {
            ("message_start", _) => {
                self.start_usage = anthropic_event(data).and_then(|i| i.usage);
                return;
            }
            ("ping", _) => return,
            ("content_block_start", Some(j)) => {
                let text = event
                    .get("content_block")
                    .and_then(|b| b.get("type"))
                    .and_then(Value::as_str)
                    == Some("text");
                if self.base.is_none() {
                    match self.open_text {
                        Some(k) if text => {
                            // Joins the client's open text block: no second start.
                            self.base = Some(k.saturating_sub(j));
                            self.deduped_block = Some(j);
                            return;
                        }
                        Some(k) => {
                            let stop = json!({ "type": "content_block_stop", "index": k });
                            sse::push_named_event(out, "content_block_stop", &to_bytes(&stop));
                            self.base = Some(self.next_block);
                        }
                        None => self.base = Some(self.next_block),
                    }
                }
                if text && self.deduped_block.is_none() {
                    self.deduped_block = Some(j);
                }
                self.renumber(&mut event, j);
            }
            ("content_block_delta", Some(j)) => {
                if self.deduped_block == Some(j)
                    && let Some(Value::String(t)) = event.get_mut("delta").and_then(|d| d.get_mut("text"))
                {
                    *t = self.dedup.feed(t);
                    if t.is_empty() {
                        return;
                    }
                }
                self.renumber(&mut event, j);
            }
            ("content_block_stop", Some(j)) => {
                if self.deduped_block == Some(j) {
                    self.flush_text(j, out);
                }
                self.renumber(&mut event, j);
            }
            ("message_delta", _) => {
                let own = anthropic_event(data).and_then(|i| i.usage).unwrap_or_default();
                let own = self.start_usage.map_or(own, |s| s.merge(own));
                event.insert("usage".into(), anthropic_usage_json(&add(self.carried, own)));
            }
            _ => {}
        }
        sse::push_named_event(out, &kind, &to_bytes(&Value::Object(event)));
    }

    /// What `dedup` still holds, as a text delta of the continuation's block `j`.
    fn flush_text(&mut self, j: u64, out: &mut Vec<u8>) {
        let text = self.dedup.flush();
        if text.is_empty() {
            return;
        }
        let mut delta =
            json!({ "type": "content_block_delta", "index": j, "delta": { "type": "text_delta", "text": text } });
        if let Some(event) = delta.as_object_mut() {
            self.renumber(event, j);
        }
        sse::push_named_event(out, "content_block_delta", &to_bytes(&delta));
    }

    fn renumber(&self, event: &mut serde_json::Map<String, Value>, j: u64) {
        let base = self.base.unwrap_or(self.next_block);
        event.insert("index".into(), Value::from(base.saturating_add(j)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(dialect: Dialect, events: &[&str]) -> Progress {
        let mut p = Progress::new(dialect);
        for e in events {
            p.observe(e.as_bytes());
        }
        p
    }

    /// The client's events for `events`, as (event name, data) pairs.
    fn spliced(splicer: &mut Splicer, events: &[&str]) -> Vec<(Option<String>, Value)> {
        let mut out = Vec::new();
        for e in events {
            splicer.event(e.as_bytes(), &mut out);
        }
        let mut parsed = Vec::new();
        for block in String::from_utf8(out).unwrap().split("\n\n").filter(|b| !b.is_empty()) {
            let mut name = None;
            let mut data = Value::Null;
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).unwrap_or(Value::String(d.to_owned()));
                }
            }
            parsed.push((name, data));
        }
        parsed
    }

    const FIRST: &str = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":100,"model":"gpt-a","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;

    fn chat_progress(text: &str) -> Progress {
        let delta = json!({"id":"chatcmpl-1","choices":[{"index":0,"delta":{"content":text},"finish_reason":null}]});
        progress(Dialect::OpenAi, &[FIRST, &delta.to_string()])
    }

    fn cont(content: &str) -> String {
        json!({"id":"chatcmpl-2","object":"chat.completion.chunk","created":200,"model":"llama",
               "choices":[{"index":0,"delta":{"content":content},"finish_reason":null}]})
        .to_string()
    }

    #[test]
    fn a_chat_continuation_becomes_the_same_answer() {
        // Arrange: "One, two, " reached the client; vLLM continues the final message.
        let mut s = Splicer::new(
            &chat_progress("One, two, "),
            Style::ContinueFinalMessage,
            Usage::default(),
        );
        let role = r#"{"id":"chatcmpl-2","object":"chat.completion.chunk","created":200,"model":"llama","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
        let finish = r#"{"id":"chatcmpl-2","object":"chat.completion.chunk","created":200,"model":"llama","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;

        // Act
        let out = spliced(&mut s, &[role, &cont("three."), finish, "[DONE]"]);

        // Assert: no role chunk, the client's identity on every chunk, then [DONE].
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(out[0].1["choices"][0]["delta"], json!({"content": "three."}));
        for (_, chunk) in &out[..2] {
            assert_eq!(
                (&chunk["id"], &chunk["model"], &chunk["created"]),
                (&json!("chatcmpl-1"), &json!("gpt-a"), &json!(100))
            );
        }
        assert_eq!(out[1].1["choices"][0]["finish_reason"], "stop");
        assert_eq!(out[2].1, json!("[DONE]"));
    }

    #[test]
    fn a_restarted_chat_continuation_loses_its_repeat_and_its_usage_counts_both() {
        // Arrange
        let sent = "The answer has three parts. First, ";
        let carried = Usage {
            prompt_tokens: 20,
            completion_tokens: 8,
            total_tokens: 28,
            ..Usage::default()
        };
        let mut s = Splicer::new(&chat_progress(sent), Style::Instruction, carried);
        let finish = json!({"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}).to_string();
        let usage =
            json!({"id":"x","choices":[],"usage":{"prompt_tokens":40,"completion_tokens":10,"total_tokens":50}})
                .to_string();

        // Act: the model starts over, in pieces.
        let out = spliced(
            &mut s,
            &[
                &cont("The answer has "),
                &cont("three parts. First, the"),
                &cont(" setup."),
                &finish,
                &usage,
            ],
        );

        // Assert
        let text: String = out
            .iter()
            .filter_map(|(_, c)| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "the setup.");
        let last = &out.last().unwrap().1;
        assert_eq!(last["usage"]["prompt_tokens"], 60);
        assert_eq!(last["usage"]["completion_tokens"], 18);
        assert_eq!(last["usage"]["total_tokens"], 78);
    }

    #[test]
    fn held_back_text_goes_out_with_the_finish() {
        let mut s = Splicer::new(&chat_progress("Count: one, two"), Style::Instruction, Usage::default());
        let finish = json!({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}).to_string();
        // ", t" could be the start of a repeat: held until the finish says the text is over.
        let out = spliced(&mut s, &[&cont(", t"), &finish]);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].1["choices"][0]["delta"]["content"], ", t");
        assert_eq!(out[0].1["choices"][0]["finish_reason"], "stop");
    }

    fn anthropic_progress() -> Progress {
        progress(
            Dialect::Anthropic,
            &[
                r#"{"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":30,"output_tokens":1}}}"#,
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello, "}}"#,
            ],
        )
    }

    #[test]
    fn an_anthropic_continuation_joins_the_open_text_block() {
        // Arrange: the prefill was "Hello," (its trailing space left out).
        let carried = Usage {
            prompt_tokens: 30,
            completion_tokens: 3,
            ..Usage::default()
        };
        let mut s = Splicer::new(&anthropic_progress(), Style::AnthropicPrefill, carried);

        // Act
        let out = spliced(
            &mut s,
            &[
                r#"{"type":"message_start","message":{"id":"msg_2","usage":{"input_tokens":33,"output_tokens":1}}}"#,
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
                r#"{"type":"ping"}"#,
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" world"}}"#,
                r#"{"type":"content_block_stop","index":0}"#,
                r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":2}}"#,
                r#"{"type":"message_stop"}"#,
            ],
        );

        // Assert
        let names: Vec<_> = out.iter().map(|(n, _)| n.as_deref().unwrap_or_default()).collect();
        assert_eq!(
            names,
            [
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(out[0].1["index"], 0);
        assert_eq!(
            out[0].1["delta"]["text"], "world",
            "the space the client has is not sent again"
        );
        assert_eq!(out[1].1["index"], 0);
        assert_eq!(out[2].1["index"], 1);
        assert_eq!(out[3].1["usage"]["output_tokens"], 5);
        assert_eq!(out[3].1["usage"]["input_tokens"], 63);
        assert_eq!(out[3].1["delta"]["stop_reason"], "end_turn");
    }

    #[test]
    fn a_continuation_that_starts_with_another_block_closes_the_clients_text_first() {
        let mut s = Splicer::new(&anthropic_progress(), Style::AnthropicPrefill, Usage::default());
        let out = spliced(
            &mut s,
            &[r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#],
        );
        assert_eq!(out[0].0.as_deref(), Some("content_block_stop"));
        assert_eq!(out[0].1["index"], 0);
        assert_eq!(out[1].1["index"], 1);
        assert_eq!(out[1].1["content_block"]["type"], "thinking");
    }
}
