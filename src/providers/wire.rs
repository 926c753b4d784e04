//! Read-only views of OpenAI response objects: just enough to validate a reply and pull out usage
//! and the start of the answer for history, without building the whole object.

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::domain::Usage;

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
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
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
    #[serde(default)]
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
}
