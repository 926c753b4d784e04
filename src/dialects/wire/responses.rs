//! Read-only views of the Responses API's answers (a `response` object, or one stream event):
//! usage and the answer's text for history, metrics and token limits, without building the object.
//! Reference: <https://platform.openai.com/docs/api-reference/responses/object>.

use serde::Deserialize;

use super::Inspection;
use crate::domain::Usage;

/// The Responses API's `usage`: input and output, with cached input and reasoning output inside.
#[derive(Deserialize, Default, Clone, Copy)]
struct ResponsesUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default)]
    input_tokens_details: Option<InputDetails>,
    #[serde(default)]
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct InputDetails {
    #[serde(default)]
    cached_tokens: u64,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct OutputDetails {
    #[serde(default)]
    reasoning_tokens: u64,
}

impl ResponsesUsage {
    fn usage(self) -> Usage {
        Usage {
            prompt_tokens: self.input_tokens,
            completion_tokens: self.output_tokens,
            // Saturating: counts come from the upstream, and a hostile one must not overflow them.
            total_tokens: self
                .total_tokens
                .unwrap_or_else(|| self.input_tokens.saturating_add(self.output_tokens)),
            cached_tokens: self.input_tokens_details.map_or(0, |d| d.cached_tokens),
            cache_write_tokens: 0,
            reasoning_tokens: self.output_tokens_details.map_or(0, |d| d.reasoning_tokens),
        }
    }
}

#[derive(Deserialize)]
struct ResponseObject {
    object: String,
    #[serde(default)]
    output: Vec<OutputItem>,
    #[serde(default)]
    usage: Option<ResponsesUsage>,
}

#[derive(Deserialize)]
struct OutputItem {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    content: Option<Vec<ContentPart>>,
}

#[derive(Deserialize)]
struct ContentPart {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

/// A `response` object (`"object": "response"`): `None` when the body is not one (a malformed 2xx).
/// The text is every message item's `output_text`, in order.
pub fn responses_object(body: &[u8]) -> Option<Inspection> {
    let r: ResponseObject = serde_json::from_slice(body).ok()?;
    if r.object != "response" {
        return None;
    }
    let text: String = r
        .output
        .iter()
        .filter(|item| item.kind.as_deref() == Some("message"))
        .flat_map(|item| item.content.iter().flatten())
        .filter(|part| part.kind.as_deref() == Some("output_text"))
        .filter_map(|part| part.text.as_deref())
        .collect();
    Some(Inspection {
        usage: r.usage.map(ResponsesUsage::usage),
        text: (!text.is_empty()).then_some(text),
        has_choices: !r.output.is_empty(),
    })
}

#[derive(Deserialize)]
struct StreamEvent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    delta: Option<serde_json::Value>,
    #[serde(default)]
    response: Option<EventResponse>,
}

#[derive(Deserialize)]
struct EventResponse {
    #[serde(default)]
    usage: Option<ResponsesUsage>,
}

/// One Responses stream event's data: text from `response.output_text.delta`, usage from the
/// final `response.completed` (or `response.incomplete`, `response.failed`); `None` for anything
/// that is not a JSON event.
pub fn responses_event(data: &[u8]) -> Option<Inspection> {
    let e: StreamEvent = serde_json::from_slice(data).ok()?;
    let text = match (e.kind.as_str(), e.delta) {
        ("response.output_text.delta", Some(serde_json::Value::String(t))) => Some(t),
        _ => None,
    };
    let usage = match e.kind.as_str() {
        "response.completed" | "response.incomplete" | "response.failed" => {
            e.response.and_then(|r| r.usage).map(ResponsesUsage::usage)
        }
        _ => None,
    };
    Some(Inspection {
        usage,
        text,
        has_choices: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_object_yields_usage_and_text() {
        let body = br#"{"id":"resp_1","object":"response","status":"completed","output":[
            {"type":"reasoning","id":"rs_1","summary":[]},
            {"type":"message","id":"msg_1","role":"assistant","content":[{"type":"output_text","text":"Hi","annotations":[]}]}],
            "usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":4},"output_tokens":7,
                     "output_tokens_details":{"reasoning_tokens":5},"total_tokens":17}}"#;
        let i = responses_object(body).unwrap();
        assert_eq!(i.text.as_deref(), Some("Hi"));
        let u = i.usage.unwrap();
        assert_eq!(
            (
                u.prompt_tokens,
                u.completion_tokens,
                u.total_tokens,
                u.cached_tokens,
                u.reasoning_tokens
            ),
            (10, 7, 17, 4, 5)
        );
        assert!(responses_object(br#"{"object":"chat.completion","choices":[]}"#).is_none());
    }

    #[test]
    fn stream_events_yield_text_and_final_usage() {
        let delta = br#"{"type":"response.output_text.delta","item_id":"m","output_index":0,"content_index":0,"delta":"He","sequence_number":4}"#;
        assert_eq!(responses_event(delta).unwrap().text.as_deref(), Some("He"));
        let created = br#"{"type":"response.created","response":{"id":"r","object":"response","usage":null},"sequence_number":0}"#;
        assert_eq!(responses_event(created).unwrap(), Inspection::default());
        let done = br#"{"type":"response.completed","response":{"id":"r","object":"response","usage":{"input_tokens":3,"output_tokens":2,"total_tokens":5}},"sequence_number":9}"#;
        assert_eq!(responses_event(done).unwrap().usage.unwrap().total_tokens, 5);
    }
}
