//! Continuing a cut stream (`stream_recovery: continue`), as pure wire code: what the client has
//! been handed so far (`Progress`), the body that asks another upstream for the rest of the same
//! answer (`continuation_body`), and the rewrite of that upstream's events into the client's
//! stream (`Splicer`, with `Dedup` for text the continuation repeats).
//!
//! How the rest is asked for depends on what the upstream can take (`Style`):
//! - Anthropic's Messages API treats a final assistant message as a prefill and writes on from
//!   its last character; Anthropic refuses one that ends in whitespace, so that whitespace is left
//!   out and, when the continuation starts with it again, not repeated to the client.
//! - vLLM's chat API does the same with `continue_final_message: true` and
//!   `add_generation_prompt: false`.
//! - Anyone else gets the text as an assistant turn and a user turn asking to go on exactly from
//!   where it stopped; models often start over instead, so the part of the continuation that
//!   repeats the end of the text is removed (see `Dedup`).
//!
//! Only the OpenAI chat and Anthropic Messages dialects are continued; Responses streams are not.

mod dedup;
mod progress;
mod splice;

pub use dedup::Dedup;
pub use progress::{Progress, Stuck};
pub use splice::Splicer;

use bytes::Bytes;
use serde_json::{Value, json};

use super::BodyError;
use super::translate::{Object, parse_object, to_bytes, unsupported};
use crate::domain::{Dialect, Usage};

/// The user turn that asks an upstream without a prefill to continue.
pub const INSTRUCTION: &str = "Your previous message was cut off. Continue it from exactly where it \
stopped, as if you had never been interrupted: do not repeat any of it, do not comment, write only \
the rest.";

/// How a candidate is asked for the rest of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A final assistant message, which Anthropic continues (without its trailing whitespace).
    AnthropicPrefill,
    /// A final assistant message with `continue_final_message: true` and
    /// `add_generation_prompt: false` (vLLM).
    ContinueFinalMessage,
    /// The text as an assistant turn, then a user turn with `INSTRUCTION`.
    Instruction,
}

impl Style {
    /// The style for an upstream: `anthropic` when it speaks Anthropic's protocol, `vllm` when it
    /// is a vLLM server. vLLM's flag is a chat field, so an Anthropic-dialect body (translated to
    /// chat on the way, where unknown fields are dropped) asks vLLM with the instruction.
    pub fn for_upstream(dialect: Dialect, anthropic: bool, vllm: bool) -> Self {
        if anthropic {
            Self::AnthropicPrefill
        } else if vllm && dialect == Dialect::OpenAi {
            Self::ContinueFinalMessage
        } else {
            Self::Instruction
        }
    }

    /// The snake_case name, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AnthropicPrefill => "anthropic_prefill",
            Self::ContinueFinalMessage => "continue_final_message",
            Self::Instruction => "instruction",
        }
    }

    /// The text the continuation body carries: Anthropic refuses a prefill ending in whitespace.
    pub fn prefill(self, sent: &str) -> &str {
        match self {
            Self::AnthropicPrefill => sent.trim_end(),
            Self::ContinueFinalMessage | Self::Instruction => sent,
        }
    }
}

/// The request that asks for the rest of an answer: the client's `body` (in `dialect`, chat or
/// Messages) for `model`, with the text already `sent` to the client appended as `style` says.
/// A last message that is already the assistant's (the client's own prefill) is extended rather
/// than followed by a second one.
pub fn continuation_body(
    body: &[u8],
    dialect: Dialect,
    model: &str,
    sent: &str,
    style: Style,
) -> Result<Bytes, BodyError> {
    let mut req = parse_object(body)?;
    req.insert("model".into(), Value::String(model.to_owned()));
    let text = style.prefill(sent);
    let messages = req
        .get_mut("messages")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| unsupported("only chat and Messages bodies can be continued", Some("messages")))?;
    match dialect {
        Dialect::OpenAi => {
            append_assistant(messages, text, false);
            if style == Style::Instruction {
                messages.push(json!({ "role": "user", "content": INSTRUCTION }));
            }
        }
        Dialect::Anthropic => {
            append_assistant(messages, text, true);
            if style == Style::Instruction {
                messages.push(json!({ "role": "user", "content": [{ "type": "text", "text": INSTRUCTION }] }));
            }
        }
        Dialect::Responses => return Err(unsupported("a Responses stream is not continued", None)),
    }
    if style == Style::ContinueFinalMessage {
        req.insert("continue_final_message".into(), Value::Bool(true));
        req.insert("add_generation_prompt".into(), Value::Bool(false));
    }
    Ok(to_bytes(&Value::Object(req)))
}

/// Puts `text` at the end of the conversation as the assistant's: appended to a last assistant
/// message, else a new one (`blocks`: Anthropic's content as a list of blocks).
fn append_assistant(messages: &mut Vec<Value>, text: &str, blocks: bool) {
    let last = messages
        .last_mut()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
        .and_then(Value::as_object_mut);
    if let Some(last) = last {
        extend_content(last, text);
        return;
    }
    let content = if blocks {
        json!([{ "type": "text", "text": text }])
    } else {
        Value::String(text.to_owned())
    };
    messages.push(json!({ "role": "assistant", "content": content }));
}

/// Adds `text` after a message's content: to a string, as a last text part, or as the content.
fn extend_content(message: &mut Object, text: &str) {
    match message.get_mut("content") {
        Some(Value::String(s)) => s.push_str(text),
        Some(Value::Array(parts)) => match parts.last_mut() {
            Some(Value::Object(part))
                if part.get("type").and_then(Value::as_str) == Some("text") && !part.contains_key("cache_control") =>
            {
                if let Some(Value::String(s)) = part.get_mut("text") {
                    s.push_str(text);
                }
            }
            _ => parts.push(json!({ "type": "text", "text": text })),
        },
        _ => {
            message.insert("content".into(), Value::String(text.to_owned()));
        }
    }
}

/// Whether a request asks for one answer only (`n` absent or 1): only those are continued.
pub fn single_choice(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct N {
        #[serde(default)]
        n: Option<u64>,
    }
    serde_json::from_slice::<N>(body).is_ok_and(|b| b.n.is_none_or(|n| n == 1))
}

/// What a cut attempt is counted for: its prompt from the usage it reported (Anthropic's
/// `message_start`), else the gateway's estimate of `body` plus the text it was given as a prefill
/// (`before`); its answer from the usage it reported when that is not less, else the tokens of the
/// text it handed on (`own`).
pub fn cut_usage(seen: Option<Usage>, body: &[u8], before: &str, own: &str) -> Usage {
    let seen = seen.unwrap_or_default();
    let prompt = if seen.prompt_tokens > 0 {
        seen.prompt_tokens
    } else {
        let body = super::tokens::estimate(body).unwrap_or((body.len() / 4) as u64);
        body.saturating_add(super::tokens::text_tokens(before))
    };
    let completion = seen.completion_tokens.max(super::tokens::text_tokens(own));
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt.saturating_add(completion),
        ..seen
    }
}

/// Two attempts' usage added up.
pub fn add(a: Usage, b: Usage) -> Usage {
    let prompt_tokens = a.prompt_tokens.saturating_add(b.prompt_tokens);
    let completion_tokens = a.completion_tokens.saturating_add(b.completion_tokens);
    Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens.saturating_add(completion_tokens),
        cached_tokens: a.cached_tokens.saturating_add(b.cached_tokens),
        cache_write_tokens: a.cache_write_tokens.saturating_add(b.cache_write_tokens),
        reasoning_tokens: a.reasoning_tokens.saturating_add(b.reasoning_tokens),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(dialect: Dialect, original: Value, sent: &str, style: Style) -> Value {
        let out = continuation_body(original.to_string().as_bytes(), dialect, "m2", sent, style).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    fn chat() -> Value {
        json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
               "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Count."}]})
    }

    #[test]
    fn vllm_gets_the_text_as_a_final_message_to_continue() {
        let b = body(Dialect::OpenAi, chat(), "One, two, ", Style::ContinueFinalMessage);
        assert_eq!(b["model"], "m2");
        assert_eq!(b["continue_final_message"], true);
        assert_eq!(b["add_generation_prompt"], false);
        assert_eq!(b["messages"][2], json!({"role": "assistant", "content": "One, two, "}));
        assert_eq!(b["messages"].as_array().unwrap().len(), 3);
        assert_eq!(
            b["stream_options"]["include_usage"], true,
            "the rest of the body is kept"
        );
    }

    #[test]
    fn anthropic_gets_a_prefill_without_trailing_whitespace() {
        let messages = json!({"model": "m", "max_tokens": 100, "stream": true,
                              "messages": [{"role": "user", "content": "Count."}]});
        let b = body(Dialect::Anthropic, messages, "One, two,\n ", Style::AnthropicPrefill);
        assert_eq!(
            b["messages"][1],
            json!({"role": "assistant", "content": [{"type": "text", "text": "One, two,"}]})
        );
        assert!(b.get("continue_final_message").is_none());
        // A chat body bound for Anthropic ends with the assistant's text, which the adapter's
        // translation keeps as the final assistant turn: the prefill.
        let b = body(Dialect::OpenAi, chat(), "One, two, ", Style::AnthropicPrefill);
        assert_eq!(b["messages"][2], json!({"role": "assistant", "content": "One, two,"}));
    }

    #[test]
    fn others_get_the_text_and_an_instruction() {
        let b = body(Dialect::OpenAi, chat(), "One, two, ", Style::Instruction);
        assert_eq!(b["messages"][2], json!({"role": "assistant", "content": "One, two, "}));
        assert_eq!(b["messages"][3], json!({"role": "user", "content": INSTRUCTION}));
        assert!(b.get("continue_final_message").is_none());
        let messages = json!({"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "Count."}]});
        let b = body(Dialect::Anthropic, messages, "One", Style::Instruction);
        assert_eq!(b["messages"][2]["content"][0]["text"], INSTRUCTION);
    }

    #[test]
    fn a_clients_own_prefill_is_extended() {
        let mut original = chat();
        original["messages"]
            .as_array_mut()
            .unwrap()
            .push(json!({"role": "assistant", "content": "Sure: "}));
        let b = body(Dialect::OpenAi, original, "one, two", Style::ContinueFinalMessage);
        assert_eq!(
            b["messages"][2],
            json!({"role": "assistant", "content": "Sure: one, two"})
        );
        let messages = json!({"model": "m", "messages": [{"role": "user", "content": "Count."},
                              {"role": "assistant", "content": [{"type": "text", "text": "Sure:"}]}]});
        let b = body(Dialect::Anthropic, messages, " one", Style::AnthropicPrefill);
        assert_eq!(
            b["messages"][1]["content"],
            json!([{"type": "text", "text": "Sure: one"}])
        );
    }

    #[test]
    fn the_style_follows_the_upstream_and_the_dialect() {
        assert_eq!(
            Style::for_upstream(Dialect::OpenAi, true, false),
            Style::AnthropicPrefill
        );
        assert_eq!(
            Style::for_upstream(Dialect::OpenAi, false, true),
            Style::ContinueFinalMessage
        );
        assert_eq!(Style::for_upstream(Dialect::Anthropic, false, true), Style::Instruction);
        assert_eq!(Style::for_upstream(Dialect::OpenAi, false, false), Style::Instruction);
    }

    #[test]
    fn only_one_choice_is_continued() {
        assert!(single_choice(br#"{"model":"m","messages":[]}"#));
        assert!(single_choice(br#"{"model":"m","n":1}"#));
        assert!(!single_choice(br#"{"model":"m","n":2}"#));
    }

    #[test]
    fn a_cut_attempt_is_counted_on_what_it_sent() {
        let u = cut_usage(
            None,
            br#"{"messages":[{"role":"user","content":"Count to ten."}]}"#,
            "",
            "one two",
        );
        assert!(u.prompt_tokens > 0 && u.completion_tokens == 2, "{u:?}");
        let seen = Usage {
            prompt_tokens: 40,
            completion_tokens: 1,
            ..Usage::default()
        };
        let u = cut_usage(Some(seen), b"{}", "", "one two three");
        assert_eq!((u.prompt_tokens, u.completion_tokens, u.total_tokens), (40, 3, 43));
    }
}
