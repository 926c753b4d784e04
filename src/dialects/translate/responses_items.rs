//! The pieces a `response` object is made of, shared by the JSON reply (`responses`) and the
//! stream (`responses_stream`): output items, `usage`, the status a finish reason gives, and the
//! model's reasoning as chat carries it.
//!
//! Chat has no reasoning field of its own: vLLM, DeepSeek and the gateway's own Anthropic and
//! Gemini translations send `reasoning_content`, OpenRouter and Ollama `reasoning`; Anthropic's
//! signed thinking rides along as `thinking_blocks`. A signed block must come back to Anthropic
//! unchanged, so it leaves as the reasoning item's `encrypted_content` (opaque to the client, which
//! returns it with the next turn's input) and is read back into `thinking_blocks`.

use serde_json::{Value, json};

use super::Object;

/// Marks an `encrypted_content` this bridge wrote: thinking blocks, as JSON, after the marker.
const THINKING_MARKER: &str = "ai-gateway.thinking.v1:";

/// A message output item holding `text`.
pub(super) fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({
        "type": "message",
        "id": id,
        "status": status,
        "role": "assistant",
        "content": [{ "type": "output_text", "text": text, "annotations": [] }],
    })
}

/// A tool call output item: a function's (`function_call`, its `arguments`) or a custom tool's
/// (`custom_tool_call`, its raw `input`); `name` holds `name` and, for a namespaced tool,
/// `namespace`.
pub(super) fn call_item(custom: bool, id: &str, call_id: &Value, name: &Object, payload: &str, status: &str) -> Value {
    let (kind, key) = if custom {
        ("custom_tool_call", "input")
    } else {
        ("function_call", "arguments")
    };
    let mut item = json!({ "type": kind, "id": id, "call_id": call_id, key: payload, "status": status });
    for (k, v) in name {
        item[k.as_str()] = v.clone();
    }
    item
}

/// A reasoning output item: `summary` holds `text` (none when empty), then `encrypted_content`
/// when there is one.
pub(super) fn reasoning_item(id: &str, text: &str, encrypted: Option<&str>, status: &str) -> Value {
    let summary = if text.is_empty() {
        json!([])
    } else {
        json!([{ "type": "summary_text", "text": text }])
    };
    let mut item = json!({ "type": "reasoning", "id": id, "summary": summary, "status": status });
    if let Some(e) = encrypted {
        item["encrypted_content"] = json!(e);
    }
    item
}

/// The reasoning text a chat message or delta carries: `reasoning_content`, else `reasoning`
/// (never both: some servers send the same text under both names).
pub(super) fn reasoning_text(message: &Value) -> Option<&str> {
    message
        .get("reasoning_content")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .or_else(|| {
            message
                .get("reasoning")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
        })
}

/// The `encrypted_content` for a message's `thinking_blocks`: `None` unless one is signed or
/// redacted (an unsigned block cannot be sent back to Anthropic, so there is nothing to keep).
pub(super) fn seal_thinking(blocks: &[Value]) -> Option<String> {
    let blocks: Vec<Value> = blocks.iter().filter_map(thinking_block).collect();
    if blocks.is_empty() {
        return None;
    }
    Some(format!("{THINKING_MARKER}{}", Value::Array(blocks)))
}

/// The thinking blocks an `encrypted_content` from `seal_thinking` holds; `None` for any other
/// (OpenAI's own, or one this bridge cannot read).
pub(super) fn open_thinking(encrypted: &str) -> Option<Vec<Value>> {
    let json = encrypted.strip_prefix(THINKING_MARKER)?;
    let Ok(Value::Array(blocks)) = serde_json::from_str::<Value>(json) else {
        return None;
    };
    let blocks: Vec<Value> = blocks.iter().filter_map(thinking_block).collect();
    (!blocks.is_empty()).then_some(blocks)
}

/// A signed `thinking` or a `redacted_thinking` block, with only the fields Anthropic reads.
fn thinking_block(b: &Value) -> Option<Value> {
    match b.get("type").and_then(Value::as_str)? {
        "thinking" => {
            let signature = b.get("signature").and_then(Value::as_str).filter(|s| !s.is_empty())?;
            let thinking = b.get("thinking").and_then(Value::as_str).unwrap_or_default();
            Some(json!({ "type": "thinking", "thinking": thinking, "signature": signature }))
        }
        "redacted_thinking" => {
            let data = b.get("data").and_then(Value::as_str)?;
            Some(json!({ "type": "redacted_thinking", "data": data }))
        }
        _ => None,
    }
}

/// Merges streamed `thinking_blocks` pieces into whole blocks: a `thinking` piece adds its text to
/// the open block and a signature closes it; a `redacted_thinking` block stands alone.
pub(super) fn merge_thinking(blocks: &mut Vec<Value>, pieces: &[Value]) {
    for piece in pieces {
        match piece.get("type").and_then(Value::as_str) {
            Some("thinking") => {
                let open = blocks
                    .last()
                    .is_some_and(|b| b["type"] == "thinking" && b.get("signature").is_none_or(Value::is_null));
                if !open {
                    blocks.push(json!({ "type": "thinking", "thinking": "" }));
                }
                let Some(block) = blocks.last_mut() else { return };
                if let Some(text) = piece.get("thinking").and_then(Value::as_str) {
                    let joined = format!("{}{text}", block["thinking"].as_str().unwrap_or_default());
                    block["thinking"] = json!(joined);
                }
                if let Some(signature) = piece.get("signature").filter(|s| s.is_string()) {
                    block["signature"] = signature.clone();
                }
            }
            Some("redacted_thinking") => blocks.push(piece.clone()),
            _ => {}
        }
    }
}

/// The assistant message fields that carry sealed thinking back to chat.
pub(super) fn thinking_fields(blocks: Vec<Value>) -> Object {
    let text: String = blocks
        .iter()
        .filter_map(|b| b.get("thinking").and_then(Value::as_str))
        .collect();
    let mut out = Object::new();
    out.insert("reasoning_content".into(), json!(text));
    out.insert("thinking_blocks".into(), Value::Array(blocks));
    out
}

/// Responses' `usage` for a chat `usage` object (missing counts are 0).
pub(super) fn usage(u: Option<&Value>) -> Value {
    let count = |pointer: &str| u.and_then(|u| u.pointer(pointer)).and_then(Value::as_u64).unwrap_or(0);
    let (input, output) = (count("/prompt_tokens"), count("/completion_tokens"));
    let total = u
        .and_then(|u| u.get("total_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or_else(|| input.saturating_add(output));
    json!({
        "input_tokens": input,
        "input_tokens_details": { "cached_tokens": count("/prompt_tokens_details/cached_tokens") },
        "output_tokens": output,
        "output_tokens_details": { "reasoning_tokens": count("/completion_tokens_details/reasoning_tokens") },
        "total_tokens": total,
    })
}

/// A finish reason's `status` and `incomplete_details`.
pub(super) fn status(finish_reason: Option<&str>) -> (&'static str, Value) {
    match finish_reason {
        Some("length") => ("incomplete", json!({ "reason": "max_output_tokens" })),
        Some("content_filter") => ("incomplete", json!({ "reason": "content_filter" })),
        _ => ("completed", Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_carries_cached_and_reasoning_tokens() {
        let chat = json!({"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
                          "prompt_tokens_details": {"cached_tokens": 100},
                          "completion_tokens_details": {"reasoning_tokens": 12}});
        assert_eq!(
            usage(Some(&chat)),
            json!({"input_tokens": 120, "input_tokens_details": {"cached_tokens": 100},
                   "output_tokens": 30, "output_tokens_details": {"reasoning_tokens": 12}, "total_tokens": 150})
        );
        assert_eq!(
            usage(Some(&json!({"prompt_tokens": 2, "completion_tokens": 3})))["total_tokens"],
            5
        );
        assert_eq!(usage(None)["input_tokens_details"]["cached_tokens"], 0);
    }

    #[test]
    fn reasoning_is_read_under_either_name_never_twice() {
        assert_eq!(
            reasoning_text(&json!({"reasoning_content": "a", "reasoning": "a"})),
            Some("a")
        );
        assert_eq!(reasoning_text(&json!({"reasoning": "b"})), Some("b"));
        assert_eq!(reasoning_text(&json!({"reasoning_content": "", "content": "x"})), None);
    }

    #[test]
    fn signed_thinking_round_trips_through_encrypted_content() {
        let blocks = [
            json!({"type": "thinking", "thinking": "Let me think.", "signature": "EqQBCgIYAhIM"}),
            json!({"type": "redacted_thinking", "data": "EmwKAhgB"}),
            json!({"type": "thinking", "thinking": "unsigned"}),
        ];
        let sealed = seal_thinking(&blocks).unwrap();
        let opened = open_thinking(&sealed).unwrap();
        assert_eq!(opened, blocks[..2]);
        assert_eq!(
            Value::Object(thinking_fields(opened))["reasoning_content"],
            "Let me think."
        );
        assert_eq!(seal_thinking(&blocks[2..]), None, "nothing signed, nothing to keep");
        assert_eq!(open_thinking("gAAAAABo-openai-blob"), None);
        assert_eq!(open_thinking(&format!("{THINKING_MARKER}{{}}")), None);
    }

    #[test]
    fn streamed_thinking_pieces_merge_into_blocks() {
        let mut blocks = Vec::new();
        merge_thinking(&mut blocks, &[json!({"type": "thinking", "thinking": "Let "})]);
        merge_thinking(&mut blocks, &[json!({"type": "thinking", "thinking": "me."})]);
        merge_thinking(&mut blocks, &[json!({"type": "thinking", "signature": "sig"})]);
        merge_thinking(&mut blocks, &[json!({"type": "thinking", "thinking": "More."})]);
        assert_eq!(
            blocks[0],
            json!({"type": "thinking", "thinking": "Let me.", "signature": "sig"})
        );
        assert_eq!(blocks[1], json!({"type": "thinking", "thinking": "More."}));
    }
}
