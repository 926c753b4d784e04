//! What a stream has handed the client so far, read event by event (only on streams that may be
//! continued): the answer's text (choice 0's `content` deltas; Anthropic's `text_delta`s), whether
//! a tool call started or a second choice appeared (then it cannot be continued), and what a
//! continuation's events must be made to look like (the chunk's `id`, `model` and `created`; the
//! Anthropic content block that is open and the next free index).

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::dialects::{sse, wire};
use crate::domain::{Dialect, Usage};

/// Why a cut stream cannot be continued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stuck {
    /// No answer text reached the client (nothing yet, or only reasoning), or it was cut inside
    /// a reasoning block.
    NoText,
    /// A tool call had started.
    ToolCall,
    /// The answer has more than one choice.
    SeveralChoices,
}

impl Stuck {
    /// The snake_case name, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoText => "no_text",
            Self::ToolCall => "tool_call",
            Self::SeveralChoices => "several_choices",
        }
    }
}

/// What the client has been handed.
#[derive(Debug)]
pub struct Progress {
    pub(super) dialect: Dialect,
    text: String,
    stuck: Option<Stuck>,
    /// OpenAI: the first chunk's `id`, `model` and `created`, which continued chunks take.
    pub(super) id: Option<String>,
    pub(super) model: Option<String>,
    pub(super) created: Option<u64>,
    /// Anthropic: the open content block (index, whether it is text), and the next free index.
    pub(super) open: Option<(u64, bool)>,
    pub(super) next_block: u64,
    /// Anthropic: the usage `message_start` reported.
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    created: Option<u64>,
    #[serde(default, borrow)]
    choices: Vec<Choice<'a>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default)]
    index: u64,
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    function_call: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    index: Option<u64>,
    #[serde(default, borrow)]
    content_block: Option<Block<'a>>,
    #[serde(default, borrow)]
    delta: Option<BlockDelta<'a>>,
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

#[derive(Deserialize)]
struct BlockDelta<'a> {
    #[serde(default, rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
}

impl Progress {
    /// Nothing handed on yet, in the client's `dialect`.
    pub fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            text: String::new(),
            stuck: None,
            id: None,
            model: None,
            created: None,
            open: None,
            next_block: 0,
            usage: None,
        }
    }

    /// Notes one event's data as the client receives it.
    pub fn observe(&mut self, data: &[u8]) {
        match self.dialect {
            Dialect::OpenAi => self.chunk(data),
            Dialect::Anthropic => self.event(data),
            Dialect::Responses => {}
        }
    }

    fn chunk(&mut self, data: &[u8]) {
        if sse::is_done(data) {
            return;
        }
        let Ok(chunk) = serde_json::from_slice::<Chunk<'_>>(data) else {
            return;
        };
        if self.id.is_none() {
            self.id = chunk.id.map(Cow::into_owned);
            self.model = chunk.model.map(Cow::into_owned);
            self.created = chunk.created;
        }
        for choice in chunk.choices {
            if choice.index != 0 {
                self.stuck = Some(Stuck::SeveralChoices);
                continue;
            }
            let Some(delta) = choice.delta else { continue };
            if delta.tool_calls.is_some_and(|c| !c.is_empty()) || delta.function_call.is_some() {
                self.stuck.get_or_insert(Stuck::ToolCall);
            }
            if let Some(text) = delta.content {
                self.text.push_str(&text);
            }
        }
    }

    fn event(&mut self, data: &[u8]) {
        let Ok(event) = serde_json::from_slice::<Event<'_>>(data) else {
            return;
        };
        match &*event.kind {
            "message_start" => self.usage = wire::anthropic_event(data).and_then(|i| i.usage),
            "content_block_start" => {
                let index = event.index.unwrap_or(self.next_block);
                let kind = event.content_block.map(|b| b.kind).unwrap_or_default();
                let text = kind == "text";
                // Thinking blocks may be open when the cut comes; every other block is a call.
                if !text && !kind.contains("thinking") {
                    self.stuck.get_or_insert(Stuck::ToolCall);
                }
                self.open = Some((index, text));
                self.next_block = self.next_block.max(index.saturating_add(1));
            }
            "content_block_delta" => {
                let delta = event.delta;
                let is_text = delta.as_ref().and_then(|d| d.kind.as_deref()) == Some("text_delta");
                if is_text && let Some(text) = delta.and_then(|d| d.text) {
                    self.text.push_str(&text);
                }
            }
            "content_block_stop" => self.open = None,
            _ => {}
        }
    }

    /// The answer's text handed to the client so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The usage the upstream reported at the start (Anthropic's `message_start`).
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Whether the answer can be continued from here.
    pub fn check(&self) -> Result<(), Stuck> {
        if let Some(stuck) = self.stuck {
            return Err(stuck);
        }
        if self.text.trim().is_empty() || self.open.is_some_and(|(_, text)| !text) {
            return Err(Stuck::NoText);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(dialect: Dialect, events: &[&str]) -> Progress {
        let mut p = Progress::new(dialect);
        for e in events {
            p.observe(e.as_bytes());
        }
        p
    }

    #[test]
    fn chat_text_and_identity_are_kept() {
        let p = fed(
            Dialect::OpenAi,
            &[
                r#"{"id":"c1","model":"m","created":7,"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
                r#"{"id":"c1","choices":[{"index":0,"delta":{"content":"Hello"}}]}"#,
                r#"{"id":"c1","choices":[{"index":0,"delta":{"content":", world","tool_calls":null}}]}"#,
                r#"{"id":"c1","choices":[{"index":0,"delta":{"content":"","tool_calls":[]}}]}"#,
            ],
        );
        assert_eq!(p.text(), "Hello, world");
        assert_eq!(
            (p.id.as_deref(), p.model.as_deref(), p.created),
            (Some("c1"), Some("m"), Some(7))
        );
        assert_eq!(p.check(), Ok(()));
    }

    #[test]
    fn a_chat_tool_call_or_a_second_choice_cannot_be_continued() {
        let call = r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{"}}]}}]}"#;
        let p = fed(
            Dialect::OpenAi,
            &[r#"{"choices":[{"index":0,"delta":{"content":"Let me"}}]}"#, call],
        );
        assert_eq!(p.check(), Err(Stuck::ToolCall));
        let p = fed(
            Dialect::OpenAi,
            &[r#"{"choices":[{"index":1,"delta":{"content":"B"}}]}"#],
        );
        assert_eq!(p.check(), Err(Stuck::SeveralChoices));
        let p = fed(
            Dialect::OpenAi,
            &[r#"{"choices":[{"index":0,"delta":{"reasoning_content":"hm"}}]}"#],
        );
        assert_eq!(p.check(), Err(Stuck::NoText));
    }

    #[test]
    fn anthropic_text_blocks_and_their_indices_are_followed() {
        let p = fed(
            Dialect::Anthropic,
            &[
                r#"{"type":"message_start","message":{"usage":{"input_tokens":12,"output_tokens":1}}}"#,
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hm"}}"#,
                r#"{"type":"content_block_stop","index":0}"#,
                r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hi "}}"#,
                r#"{"type":"ping"}"#,
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"there"}}"#,
            ],
        );
        assert_eq!(p.text(), "Hi there");
        assert_eq!((p.open, p.next_block), (Some((1, true)), 2));
        assert_eq!(p.usage().map(|u| u.prompt_tokens), Some(12));
        assert_eq!(p.check(), Ok(()));
    }

    #[test]
    fn an_anthropic_tool_use_or_an_open_thinking_block_cannot_be_continued() {
        let text = r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me look."}}"#;
        let p = fed(
            Dialect::Anthropic,
            &[
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
                text,
                r#"{"type":"content_block_stop","index":0}"#,
                r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}"#,
            ],
        );
        assert_eq!(p.check(), Err(Stuck::ToolCall));
        let p = fed(
            Dialect::Anthropic,
            &[r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#],
        );
        assert_eq!(p.check(), Err(Stuck::NoText));
    }
}
