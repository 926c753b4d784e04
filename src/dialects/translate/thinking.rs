//! Extended thinking across dialects: which thinking blocks Anthropic will take back, the
//! gateway's own signature for reasoning another provider produced, and how much thinking an
//! effort asks for.
//!
//! Anthropic refuses a thinking block it did not sign. Reasoning from a chat upstream reaches an
//! Anthropic client as a `thinking` block signed `ai-gateway.reasoning.v1:…`, so when that
//! conversation later reaches Anthropic (after a failover, say) those blocks, and unsigned ones,
//! are removed first (`strip_foreign`, `keep_signed`).

use bytes::Bytes;
use serde_json::{Value, json};

use super::{Object, new_id, to_bytes};

/// Starts every signature the gateway writes on a thinking block it made from another provider's
/// reasoning: never a signature Anthropic would accept.
pub const GATEWAY_SIGNATURE_PREFIX: &str = "ai-gateway.reasoning.v1:";

/// A fresh gateway signature for a thinking block made from a chat upstream's reasoning.
pub(crate) fn gateway_signature() -> String {
    new_id(GATEWAY_SIGNATURE_PREFIX)
}

/// Whether Anthropic made `block`: a `thinking` block with a signature that is not the gateway's,
/// or a `redacted_thinking` block with its data. `false` for any other block.
pub(crate) fn signed_by_anthropic(block: &Value) -> bool {
    let field = |k: &str| block.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    match block.get("type").and_then(Value::as_str) {
        Some("thinking") => field("signature").is_some_and(|s| !s.starts_with(GATEWAY_SIGNATURE_PREFIX)),
        Some("redacted_thinking") => field("data").is_some(),
        _ => false,
    }
}

fn is_thinking(block: &Value) -> bool {
    matches!(
        block.get("type").and_then(Value::as_str),
        Some("thinking" | "redacted_thinking")
    )
}

/// Whether a Messages body may hold a thinking block: `"thinking"` or `"redacted_thinking"` as a
/// value, not as a key (the top-level `thinking` setting). A byte scan that may say yes wrongly,
/// never no wrongly.
pub(crate) fn may_hold_thinking_blocks(body: &[u8]) -> bool {
    const WORD: &[u8] = b"thinking\"";
    let mut from = 0;
    while let Some(at) = memchr::memmem::find(&body[from..], WORD) {
        let end = from + at + WORD.len();
        let is_key = body[end..].trim_ascii_start().starts_with(b":");
        if !is_key {
            return true;
        }
        from = end;
    }
    false
}

/// A Messages request body for Anthropic without the thinking blocks Anthropic did not sign. The
/// body is returned as it came (the same bytes) unless one had to go.
pub fn keep_signed(body: &Bytes) -> Bytes {
    if !may_hold_thinking_blocks(body) {
        return body.clone();
    }
    let Ok(Value::Object(mut req)) = serde_json::from_slice::<Value>(body) else {
        return body.clone();
    };
    let Some(Value::Array(messages)) = req.get_mut("messages") else {
        return body.clone();
    };
    if !strip_foreign(messages) {
        return body.clone();
    }
    if !final_tool_turn_thinks(messages) {
        req.remove("thinking");
    }
    to_bytes(&Value::Object(req))
}

/// Removes the thinking blocks Anthropic did not sign from Messages `messages`; an assistant turn
/// left empty goes too, and the turns around it are joined so roles still alternate. Whether any
/// block was removed.
pub(crate) fn strip_foreign(messages: &mut Vec<Value>) -> bool {
    let mut stripped = false;
    for m in messages.iter_mut() {
        if m.get("role").and_then(Value::as_str) != Some("assistant") {
            continue;
        }
        let Some(Value::Array(blocks)) = m.get_mut("content") else {
            continue;
        };
        let before = blocks.len();
        blocks.retain(|b| !is_thinking(b) || signed_by_anthropic(b));
        stripped |= blocks.len() != before;
    }
    if stripped {
        messages.retain(|m| m.get("content").and_then(Value::as_array).is_none_or(|c| !c.is_empty()));
        join_same_roles(messages);
    }
    stripped
}

fn join_same_roles(messages: &mut Vec<Value>) {
    let mut joined: Vec<Value> = Vec::with_capacity(messages.len());
    for m in messages.drain(..) {
        match joined.last_mut() {
            Some(last) if last.get("role") == m.get("role") => {
                let mut blocks = blocks_of(last.get("content"));
                blocks.extend(blocks_of(m.get("content")));
                last["content"] = Value::Array(blocks);
            }
            _ => joined.push(m),
        }
    }
    *messages = joined;
}

fn blocks_of(content: Option<&Value>) -> Vec<Value> {
    match content {
        Some(Value::Array(blocks)) => blocks.clone(),
        Some(Value::String(s)) => vec![json!({ "type": "text", "text": s })],
        _ => Vec::new(),
    }
}

/// Whether thinking may stay on for these Messages `messages`: Anthropic refuses thinking when the
/// last assistant turn called a tool without starting with a thinking block (a tool loop whose
/// thinking another provider did, or nobody kept).
pub(crate) fn final_tool_turn_thinks(messages: &[Value]) -> bool {
    let Some(last) = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
    else {
        return true;
    };
    let Some(blocks) = last.get("content").and_then(Value::as_array) else {
        return true;
    };
    let calls = blocks
        .iter()
        .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"));
    !calls || blocks.first().is_some_and(is_thinking)
}

/// The chat `reasoning_effort` for an Anthropic `thinking` setting: `enabled` by its budget (under
/// 4,096 → `low`, under 16,384 → `medium`, else `high`); `adaptive` by `output_config.effort`
/// (`low`, `medium`, `high`; `max` → `high`), else `medium`; `disabled` or none → none.
pub(crate) fn effort_for(thinking: Option<&Value>, output_config: Option<&Value>) -> Option<&'static str> {
    match thinking?.get("type").and_then(Value::as_str)? {
        "enabled" => {
            let budget = thinking?.get("budget_tokens").and_then(Value::as_u64).unwrap_or(0);
            Some(match budget {
                0..4_096 => "low",
                4_096..16_384 => "medium",
                _ => "high",
            })
        }
        "adaptive" => Some(
            match output_config.and_then(|c| c.get("effort")).and_then(Value::as_str) {
                Some("low") => "low",
                Some("high" | "max") => "high",
                _ => "medium",
            },
        ),
        _ => None,
    }
}

/// The thinking budget a chat `reasoning_effort` asks an Anthropic model for: `minimal` and `low`
/// 1,024 (Anthropic's least), `medium` 4,096, `high` 16,384, `xhigh` 32,768; `none` or anything
/// else, no thinking.
pub(crate) fn budget_for(effort: &str) -> Option<u64> {
    match effort {
        "minimal" | "low" => Some(1_024),
        "medium" => Some(4_096),
        "high" => Some(16_384),
        "xhigh" => Some(32_768),
        _ => None,
    }
}

/// The thinking blocks of a chat assistant message (`thinking_blocks`) that may go to Anthropic,
/// with only the fields Anthropic reads.
pub(crate) fn chat_blocks_for_anthropic(message: &Value) -> Vec<Value> {
    let Some(blocks) = message.get("thinking_blocks").and_then(Value::as_array) else {
        return Vec::new();
    };
    blocks
        .iter()
        .filter(|b| signed_by_anthropic(b))
        .map(|b| {
            let mut out = Object::new();
            for k in ["type", "thinking", "signature", "data"] {
                if let Some(v) = b.get(k) {
                    out.insert(k.into(), v.clone());
                }
            }
            Value::Object(out)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(text: &str) -> Value {
        json!({"type": "thinking", "thinking": text, "signature": "EqQBCgIYAhIM"})
    }

    #[test]
    fn only_anthropic_signed_blocks_count_as_signed() {
        assert!(signed_by_anthropic(&signed("a")));
        assert!(signed_by_anthropic(
            &json!({"type": "redacted_thinking", "data": "EmwKAhgB"})
        ));
        assert!(!signed_by_anthropic(&json!({"type": "thinking", "thinking": "a"})));
        assert!(!signed_by_anthropic(
            &json!({"type": "thinking", "thinking": "a", "signature": ""})
        ));
        let ours = json!({"type": "thinking", "thinking": "a", "signature": gateway_signature()});
        assert!(!signed_by_anthropic(&ours));
        assert!(!signed_by_anthropic(&json!({"type": "redacted_thinking"})));
    }

    #[test]
    fn the_byte_scan_tells_blocks_from_the_setting() {
        assert!(!may_hold_thinking_blocks(
            br#"{"thinking": {"type": "enabled"}, "messages": []}"#
        ));
        assert!(may_hold_thinking_blocks(br#"{"content":[{"type": "thinking"}]}"#));
        assert!(may_hold_thinking_blocks(
            br#"{"content":[{"type":"redacted_thinking"}]}"#
        ));
        assert!(!may_hold_thinking_blocks(br#"{"messages":[{"content":"hi"}]}"#));
    }

    #[test]
    fn a_body_without_foreign_thinking_is_forwarded_as_the_same_bytes() {
        let body = Bytes::from(
            json!({"model": "m", "thinking": {"type": "enabled", "budget_tokens": 2048}, "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [signed("t"), {"type": "text", "text": "a"}]},
                {"role": "user", "content": "more"}
            ]})
            .to_string(),
        );
        let out = keep_signed(&body);
        assert_eq!(out.as_ptr(), body.as_ptr(), "the same buffer, not a copy");
    }

    // A conversation an OpenAI-kind provider answered with reasoning (signed by the gateway),
    // then failed over to Anthropic: the foreign and unsigned blocks go, Anthropic's stay.
    #[test]
    fn foreign_and_unsigned_thinking_is_stripped_after_a_failover() {
        let body = Bytes::from(
            json!({"model": "m", "thinking": {"type": "enabled", "budget_tokens": 2048}, "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "other", "signature": format!("{GATEWAY_SIGNATURE_PREFIX}x")},
                    {"type": "text", "text": "a"}]},
                {"role": "user", "content": "more"},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "unsigned"}]},
                {"role": "user", "content": [{"type": "text", "text": "again"}]},
                {"role": "assistant", "content": [signed("mine"), {"type": "text", "text": "b"}]},
                {"role": "user", "content": "last"}
            ]})
            .to_string(),
        );
        let out: Value = serde_json::from_slice(&keep_signed(&body)).unwrap();
        let m = out["messages"].as_array().unwrap();
        assert_eq!(m[1]["content"], json!([{"type": "text", "text": "a"}]));
        assert_eq!(
            m[2],
            json!({"role": "user", "content": [{"type": "text", "text": "more"}, {"type": "text", "text": "again"}]}),
            "the emptied assistant turn went and its neighbours were joined"
        );
        assert_eq!(m[3]["content"][0], signed("mine"));
        assert_eq!(m.len(), 5);
        assert!(out["thinking"].is_object(), "thinking stays on");
    }

    #[test]
    fn thinking_goes_off_when_the_tool_turn_lost_its_thinking() {
        let body = Bytes::from(
            json!({"model": "m", "thinking": {"type": "enabled", "budget_tokens": 2048}, "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "other", "signature": format!("{GATEWAY_SIGNATURE_PREFIX}x")},
                    {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]}
            ]})
            .to_string(),
        );
        let out: Value = serde_json::from_slice(&keep_signed(&body)).unwrap();
        assert!(out.get("thinking").is_none(), "{out}");
        assert_eq!(out["messages"][1]["content"][0]["type"], "tool_use");
    }

    #[test]
    fn efforts_map_both_ways() {
        let e = |t: Value| effort_for(Some(&t), None);
        assert_eq!(e(json!({"type": "enabled", "budget_tokens": 1024})), Some("low"));
        assert_eq!(e(json!({"type": "enabled", "budget_tokens": 4096})), Some("medium"));
        assert_eq!(e(json!({"type": "enabled", "budget_tokens": 16_383})), Some("medium"));
        assert_eq!(e(json!({"type": "enabled", "budget_tokens": 31_999})), Some("high"));
        assert_eq!(e(json!({"type": "disabled"})), None);
        assert_eq!(e(json!({"type": "adaptive"})), Some("medium"));
        assert_eq!(
            effort_for(Some(&json!({"type": "adaptive"})), Some(&json!({"effort": "max"}))),
            Some("high")
        );
        assert_eq!(effort_for(None, None), None);
        assert_eq!(budget_for("low"), Some(1024));
        assert_eq!(budget_for("high"), Some(16_384));
        assert_eq!(budget_for("none"), None);
    }
}
