//! Read-only views of response objects (OpenAI's chat completions and Anthropic's messages): just
//! enough to validate a reply and pull out usage and the start of the answer for history, without
//! building the whole object.

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::domain::Usage;

// The Responses API's answers (`response` objects and stream events) are read in `wire/responses.rs`.
mod responses;
pub use responses::{responses_event, responses_object};

/// What a reply (or one stream chunk) says about usage and its answer text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inspection {
    /// `usage`, when present and not null.
    pub usage: Option<Usage>,
    /// The first choice's text (a completion's `message.content`, a chunk's `delta.content`).
    pub text: Option<String>,
    /// Whether the object has a non-empty `choices` array.
    pub has_choices: bool,
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    #[serde(default, deserialize_with = "chat_usage_field")]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default, deserialize_with = "chat_usage_field")]
    usage: Option<Usage>,
}

/// OpenAI chat's `usage`, with the details that say which prompt tokens came from the cache and
/// which completion tokens were reasoning. Every count may be absent or `null` (providers differ).
#[derive(Deserialize, Default)]
struct ChatUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
    /// DeepSeek's name for cached prompt tokens.
    #[serde(default)]
    prompt_cache_hit_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
    /// OpenRouter's (and the gateway's own translations') count of prompt tokens written to the cache.
    #[serde(default)]
    cache_write_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl ChatUsage {
    fn usage(self) -> Usage {
        let prompt = self.prompt_tokens_details.unwrap_or_default();
        let completion = self.completion_tokens_details.unwrap_or_default();
        Usage {
            prompt_tokens: self.prompt_tokens.unwrap_or(0),
            completion_tokens: self.completion_tokens.unwrap_or(0),
            total_tokens: self.total_tokens.unwrap_or(0),
            cached_tokens: prompt.cached_tokens.or(self.prompt_cache_hit_tokens).unwrap_or(0),
            cache_write_tokens: prompt.cache_write_tokens.unwrap_or(0),
            reasoning_tokens: completion.reasoning_tokens.unwrap_or(0),
        }
    }
}

fn chat_usage_field<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Usage>, D::Error> {
    Ok(Option::<ChatUsage>::deserialize(d)?.map(ChatUsage::usage))
}

/// A chat `usage` value (already parsed) as `Usage`, details included; `None` when it is not one.
pub fn chat_usage(value: &Value) -> Option<Usage> {
    if value.is_null() {
        return None;
    }
    ChatUsage::deserialize(value).ok().map(ChatUsage::usage)
}

/// `Usage` as OpenAI chat writes it: the cached prompt tokens in `prompt_tokens_details` (with
/// OpenRouter's `cache_write_tokens` when some were written), reasoning in
/// `completion_tokens_details`.
pub fn chat_usage_json(u: &Usage) -> Value {
    let mut prompt_details = json!({ "cached_tokens": u.cached_tokens });
    if u.cache_write_tokens > 0 {
        prompt_details["cache_write_tokens"] = json!(u.cache_write_tokens);
    }
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": { "reasoning_tokens": u.reasoning_tokens },
    })
}

/// `Usage` as Anthropic writes it: `input_tokens` without the prompt tokens read from or written
/// to the cache, which go in `cache_read_input_tokens` and `cache_creation_input_tokens`.
pub fn anthropic_usage_json(u: &Usage) -> Value {
    let input = u
        .prompt_tokens
        .saturating_sub(u.cached_tokens)
        .saturating_sub(u.cache_write_tokens);
    json!({
        "input_tokens": input,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cached_tokens,
        "output_tokens": u.completion_tokens,
    })
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default, alias = "delta")]
    message: Option<Message>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    // Multi-part content is validated, not summarized.
    Other(IgnoredAny),
}

#[derive(Deserialize)]
struct Embeddings {
    #[serde(rename = "data")]
    _data: Vec<IgnoredAny>,
    #[serde(default, deserialize_with = "chat_usage_field")]
    usage: Option<Usage>,
}

fn first_text(choices: &[Choice]) -> Option<String> {
    match choices.first()?.message.as_ref()?.content.as_ref()? {
        Content::Text(t) => Some(t.clone()),
        Content::Other(_) => None,
    }
}

/// A `chat.completion`: `None` when the body is not one (a malformed 2xx).
pub fn completion(body: &[u8]) -> Option<Inspection> {
    let c: Completion = serde_json::from_slice(body).ok()?;
    Some(Inspection {
        usage: c.usage,
        text: first_text(&c.choices),
        has_choices: !c.choices.is_empty(),
    })
}

/// An embeddings list: `None` when the body is not one.
pub fn embeddings(body: &[u8]) -> Option<Inspection> {
    let e: Embeddings = serde_json::from_slice(body).ok()?;
    Some(Inspection {
        usage: e.usage,
        text: None,
        has_choices: false,
    })
}

/// A `chat.completion.chunk`'s data; `None` for anything that is not a JSON chunk.
pub fn chunk(data: &[u8]) -> Option<Inspection> {
    let c: Chunk = serde_json::from_slice(data).ok()?;
    Some(Inspection {
        usage: c.usage,
        text: first_text(&c.choices),
        has_choices: !c.choices.is_empty(),
    })
}

/// Whether a stream event's data could carry usage: it names a `"usage"` key whose value is not
/// `null`. A byte scan, so the events that cannot (OpenAI sends `"usage":null` on every chunk but
/// the last when usage is asked for) are never parsed for it. It may say yes wrongly (a string
/// that looks like the key), never no wrongly.
pub fn may_carry_usage(data: &[u8]) -> bool {
    const KEY: &[u8] = b"\"usage\"";
    let mut rest = data;
    while let Some(at) = memchr::memmem::find(rest, KEY) {
        rest = &rest[at + KEY.len()..];
        let value = rest.trim_ascii_start();
        let Some(value) = value.strip_prefix(b":") else {
            continue;
        };
        if !value.trim_ascii_start().starts_with(b"null") {
            return true;
        }
    }
    false
}

/// Anthropic's `usage`: input and output counted apart; cache reads and writes are input too.
#[derive(Deserialize, Default, Clone, Copy)]
struct AnthropicUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    /// Reported when the client asks for it (`thinking-token-count` beta).
    #[serde(default)]
    output_tokens_details: Option<AnthropicOutputDetails>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct AnthropicOutputDetails {
    #[serde(default)]
    thinking_tokens: Option<u64>,
}

impl AnthropicUsage {
    fn usage(self) -> Usage {
        // Saturating: counts come from the upstream, and a hostile one must not overflow them.
        let prompt_tokens = self
            .input_tokens
            .unwrap_or(0)
            .saturating_add(self.cache_creation_input_tokens.unwrap_or(0))
            .saturating_add(self.cache_read_input_tokens.unwrap_or(0));
        let completion_tokens = self.output_tokens.unwrap_or(0);
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
            cached_tokens: self.cache_read_input_tokens.unwrap_or(0),
            cache_write_tokens: self.cache_creation_input_tokens.unwrap_or(0),
            reasoning_tokens: self.output_tokens_details.and_then(|d| d.thinking_tokens).unwrap_or(0),
        }
    }
}

#[derive(Deserialize)]
struct AnthropicMessage {
    #[serde(rename = "type")]
    kind: String,
    content: Vec<AnthropicBlock>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

#[derive(Deserialize)]
struct AnthropicBlock {
    #[serde(default)]
    text: Option<String>,
}

fn anthropic_text(content: &[AnthropicBlock]) -> Option<String> {
    let text: String = content.iter().filter_map(|b| b.text.as_deref()).collect();
    (!text.is_empty()).then_some(text)
}

/// An Anthropic `message` object: `None` when the body is not one (a malformed 2xx).
pub fn anthropic_message(body: &[u8]) -> Option<Inspection> {
    let m: AnthropicMessage = serde_json::from_slice(body).ok()?;
    if m.kind != "message" {
        return None;
    }
    Some(Inspection {
        usage: m.usage.map(AnthropicUsage::usage),
        text: anthropic_text(&m.content),
        has_choices: !m.content.is_empty(),
    })
}

#[derive(Deserialize)]
struct AnthropicEvent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    message: Option<AnthropicStart>,
    #[serde(default)]
    delta: Option<AnthropicDelta>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

#[derive(Deserialize)]
struct AnthropicStart {
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

#[derive(Deserialize)]
struct AnthropicDelta {
    #[serde(default)]
    text: Option<String>,
}

/// One Anthropic stream event's data: `message_start` and `message_delta` carry usage (input at
/// the start, the output count so far at the end), `content_block_delta` carries text.
pub fn anthropic_event(data: &[u8]) -> Option<Inspection> {
    let e: AnthropicEvent = serde_json::from_slice(data).ok()?;
    let usage = match e.kind.as_str() {
        "message_start" => e.message.and_then(|m| m.usage),
        "message_delta" => e.usage,
        _ => None,
    };
    let text = match e.kind.as_str() {
        "content_block_delta" => e.delta.and_then(|d| d.text),
        _ => None,
    };
    Some(Inspection {
        usage: usage.map(AnthropicUsage::usage),
        text,
        has_choices: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_yields_usage_and_text() {
        let i = completion(
            br#"{"choices":[{"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#,
        )
        .unwrap();
        assert_eq!(i.text.as_deref(), Some("hi"));
        assert_eq!(i.usage.unwrap().total_tokens, 3);
    }

    #[test]
    fn malformed_completions_are_none() {
        assert!(completion(br#"{"object":"chat.completion"}"#).is_none());
        assert!(completion(br#"{"choices":[{"#).is_none());
        assert!(completion(br#"{"choices":[{"message":{"content":null,"tool_calls":[]}}]}"#).is_some());
    }

    #[test]
    fn usage_only_chunk_has_no_choices() {
        let i =
            chunk(br#"{"id":"x","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#)
                .unwrap();
        assert!(!i.has_choices);
        assert_eq!(i.usage.unwrap().completion_tokens, 7);
        let i = chunk(br#"{"choices":[{"index":0,"delta":{"content":"He"}}],"usage":null}"#).unwrap();
        assert_eq!(i.text.as_deref(), Some("He"));
        assert!(i.usage.is_none());
    }

    #[test]
    fn chat_usage_details_are_read_from_replies_and_chunks() {
        let i = completion(
            br#"{"choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,
                "prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":256,"audio_tokens":0}}}"#,
        )
        .unwrap();
        let u = i.usage.unwrap();
        assert_eq!(
            (u.prompt_tokens, u.cached_tokens, u.reasoning_tokens),
            (2006, 1920, 256)
        );
        let i = chunk(
            br#"{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,
                "prompt_tokens_details":{"cached_tokens":8,"cache_write_tokens":2},"completion_tokens_details":{"reasoning_tokens":3}}}"#,
        )
        .unwrap();
        let u = i.usage.unwrap();
        assert_eq!((u.cached_tokens, u.cache_write_tokens, u.reasoning_tokens), (8, 2, 3));
    }

    #[test]
    fn deepseek_cache_hits_and_null_details_are_read() {
        let u = chunk(
            br#"{"choices":[],"usage":{"prompt_tokens":64,"completion_tokens":8,"total_tokens":72,"prompt_cache_hit_tokens":48,"prompt_cache_miss_tokens":16}}"#,
        )
        .unwrap()
        .usage
        .unwrap();
        assert_eq!(u.cached_tokens, 48);
        let u = completion(
            br#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":null,"total_tokens":3,"prompt_tokens_details":null}}"#,
        )
        .unwrap()
        .usage
        .unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens, u.cached_tokens), (3, 0, 0));
    }

    #[test]
    fn chat_usage_json_round_trips() {
        let u = Usage {
            prompt_tokens: 30,
            completion_tokens: 12,
            total_tokens: 42,
            cached_tokens: 20,
            cache_write_tokens: 6,
            reasoning_tokens: 9,
        };
        let v = chat_usage_json(&u);
        assert_eq!(v["prompt_tokens_details"]["cached_tokens"], json!(20));
        assert_eq!(v["completion_tokens_details"]["reasoning_tokens"], json!(9));
        assert_eq!(chat_usage(&v), Some(u));
        assert!(
            chat_usage_json(&Usage::default())["prompt_tokens_details"]
                .get("cache_write_tokens")
                .is_none()
        );
        assert_eq!(chat_usage(&Value::Null), None);
    }

    #[test]
    fn only_events_naming_a_usage_value_may_carry_usage() {
        assert!(may_carry_usage(br#"{"choices":[],"usage":{"prompt_tokens":5}}"#));
        assert!(may_carry_usage(br#"{"usage" : {"output_tokens":15}}"#));
        assert!(may_carry_usage(
            br#"{"type":"message_start","message":{"usage":{"input_tokens":1}}}"#
        ));
        assert!(!may_carry_usage(
            br#"{"choices":[{"delta":{"content":"He"}}],"usage":null}"#
        ));
        assert!(!may_carry_usage(
            br#"{"choices":[{"delta":{"content":"usage"}}],"usage": null}"#
        ));
        assert!(!may_carry_usage(br#"{"choices":[{"delta":{"content":"He"}}]}"#));
    }

    #[test]
    fn anthropic_message_yields_usage_and_text() {
        let i = anthropic_message(
            br#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"Hi!"}],"model":"claude","stop_reason":"end_turn","usage":{"input_tokens":10,"output_tokens":4}}"#,
        )
        .unwrap();
        assert_eq!(i.text.as_deref(), Some("Hi!"));
        assert_eq!(i.usage.unwrap().total_tokens, 14);
        assert!(anthropic_message(br#"{"type":"error","error":{"type":"x","message":"m"}}"#).is_none());
    }

    // The same overflow the translate_anthropic fuzz target found in the translation's usage.
    #[test]
    fn hostile_anthropic_token_counts_saturate() {
        let i = anthropic_message(
            br#"{"type":"message","content":[],"usage":{"input_tokens":18446744073709551615,"cache_read_input_tokens":1,"output_tokens":18446744073709551615}}"#,
        )
        .unwrap();
        assert_eq!(i.usage.unwrap().total_tokens, u64::MAX);
    }

    #[test]
    fn anthropic_events_yield_usage_and_text() {
        let start = anthropic_event(
            br#"{"type":"message_start","message":{"id":"m","type":"message","role":"assistant","content":[],"usage":{"input_tokens":25,"output_tokens":1}}}"#,
        )
        .unwrap();
        assert_eq!(start.usage.unwrap().prompt_tokens, 25);
        let delta = anthropic_event(
            br#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
        )
        .unwrap();
        assert_eq!(delta.text.as_deref(), Some("Hello"));
        let end = anthropic_event(
            br#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#,
        )
        .unwrap();
        assert_eq!(end.usage.unwrap().completion_tokens, 15);
    }
}
