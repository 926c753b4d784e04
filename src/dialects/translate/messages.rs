//! An Anthropic-dialect client (`POST /v1/messages`) in front of a chat-completions upstream:
//! Messages request → chat request, and the chat completion → a Message. The stream half is in
//! `messages_stream`.
//!
//! Reference: Anthropic's Messages API request and response (`system`, content blocks `text`,
//! `image`, `tool_use`, `tool_result`, `tools`, `tool_choice`, `stop_reason`, `usage`).

use serde_json::{Value, json};

use super::responses_items::reasoning_text;
use super::{Object, arguments_value, content_text, invalid, new_id, parse_object, thinking, to_bytes, unsupported};
use crate::dialects::BodyError;
use crate::dialects::wire::anthropic_usage_json;
use crate::domain::Usage;

pub use super::messages_stream::ToMessageEvents;

/// A Messages request body → a chat completions request body. Streams ask for the usage chunk,
/// which the Anthropic events need for `message_delta`.
///
/// Only the fields chat has an equivalent for are read, so what an `anthropic-beta` enables
/// (`context_management`, `container`, `mcp_servers`, …) is never sent on. `thinking` becomes
/// `reasoning_effort` (`thinking::effort_for`); `cache_control` rides on the chat parts and tools
/// (as LiteLLM carries it), so a later hop to Anthropic keeps the cache breakpoints.
pub fn request(body: &[u8]) -> Result<bytes::Bytes, BodyError> {
    let req = parse_object(body)?;
    let mut out = Object::new();
    out.insert("model".into(), req.get("model").cloned().unwrap_or(Value::Null));
    let mut messages = Vec::new();
    if let Some(system) = system(req.get("system")) {
        messages.push(system);
    }
    let list = req
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("`messages` must be an array", Some("messages")))?;
    for (i, m) in list.iter().enumerate() {
        match m.get("role").and_then(Value::as_str) {
            Some("user") => user(m.get("content"), i, &mut messages)?,
            Some("assistant") => messages.push(assistant(m.get("content"))),
            // Claude Code puts its environment notes in a `system` turn between user turns.
            Some("system") => messages.extend(system(m.get("content"))),
            _ => {
                return Err(invalid(
                    format!("messages[{i}].role must be `user`, `assistant` or `system`"),
                    Some("messages"),
                ));
            }
        }
    }
    out.insert("messages".into(), Value::Array(messages));
    if let Some(n) = req.get("max_tokens").filter(|v| v.is_u64()) {
        out.insert("max_tokens".into(), n.clone());
    }
    for key in ["temperature", "top_p"] {
        if let Some(v) = req.get(key).filter(|v| v.is_number()) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(stop) = req.get("stop_sequences").filter(|v| v.is_array()) {
        out.insert("stop".into(), stop.clone());
    }
    if req.get("stream").and_then(Value::as_bool) == Some(true) {
        out.insert("stream".into(), Value::Bool(true));
        out.insert("stream_options".into(), json!({ "include_usage": true }));
    }
    if let Some(effort) = thinking::effort_for(req.get("thinking"), req.get("output_config")) {
        out.insert("reasoning_effort".into(), json!(effort));
    }
    if let Some(user) = req
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
    {
        out.insert("user".into(), Value::String(user.to_owned()));
    }
    if let Some(tools) = req.get("tools").and_then(Value::as_array) {
        out.insert(
            "tools".into(),
            Value::Array(tools.iter().map(tool).collect::<Result<_, _>>()?),
        );
    }
    if let Some(choice) = req.get("tool_choice").filter(|v| v.is_object()) {
        let mode = match choice.get("type").and_then(Value::as_str) {
            Some("auto") => json!("auto"),
            Some("any") => json!("required"),
            Some("none") => json!("none"),
            Some("tool") => {
                // Without a name the upstream would get `"name": null` and refuse it obscurely.
                let name = choice
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("tool_choice.name must name a tool", Some("tool_choice")))?;
                json!({ "type": "function", "function": { "name": name } })
            }
            _ => {
                return Err(invalid(
                    "tool_choice.type must be auto, any, tool or none",
                    Some("tool_choice"),
                ));
            }
        };
        out.insert("tool_choice".into(), mode);
        if choice.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
            out.insert("parallel_tool_calls".into(), Value::Bool(false));
        }
    }
    Ok(to_bytes(&Value::Object(out)))
}

/// A user turn: `tool_result` blocks become `tool` messages (first, as they answer the previous
/// turn's calls), the rest one user message.
fn user(content: Option<&Value>, i: usize, out: &mut Vec<Value>) -> Result<(), BodyError> {
    let blocks = match content {
        Some(Value::String(s)) => {
            out.push(json!({ "role": "user", "content": s }));
            return Ok(());
        }
        Some(Value::Array(blocks)) => blocks,
        _ => {
            return Err(invalid(
                format!("messages[{i}].content must be a string or an array"),
                Some("messages"),
            ));
        }
    };
    let mut parts = Vec::new();
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => parts.push(text_part(b)),
            Some("image") => parts.push(cached(image(b.get("source"), i)?, b)),
            Some("tool_result") => {
                let mut text = content_text(b.get("content"));
                if b.get("is_error") == Some(&Value::Bool(true)) {
                    text = format!("Error: {text}");
                }
                // A breakpoint on the result (or on its last block) needs parts to sit on.
                let mark = b.get("cache_control").or_else(|| {
                    b.get("content")
                        .and_then(Value::as_array)
                        .and_then(|c| c.last())
                        .and_then(|l| l.get("cache_control"))
                });
                let content = match mark {
                    Some(mark) => json!([{ "type": "text", "text": text, "cache_control": mark }]),
                    None => Value::String(text),
                };
                out.push(json!({ "role": "tool", "tool_call_id": b.get("tool_use_id").cloned().unwrap_or_default(), "content": content }));
            }
            other => {
                return Err(unsupported(
                    format!(
                        "messages[{i}]: content block `{}` has no chat-completions equivalent",
                        other.unwrap_or("?")
                    ),
                    Some("messages"),
                ));
            }
        }
    }
    if !parts.is_empty() {
        out.push(json!({ "role": "user", "content": parts }));
    }
    Ok(())
}

fn image(source: Option<&Value>, i: usize) -> Result<Value, BodyError> {
    let source = source.unwrap_or(&Value::Null);
    let url = match source.get("type").and_then(Value::as_str) {
        Some("base64") => format!(
            "data:{};base64,{}",
            source.get("media_type").and_then(Value::as_str).unwrap_or("image/png"),
            source.get("data").and_then(Value::as_str).unwrap_or_default()
        ),
        Some("url") => source.get("url").and_then(Value::as_str).unwrap_or_default().to_owned(),
        _ => {
            return Err(unsupported(
                format!("messages[{i}]: image source must be base64 or url"),
                Some("messages"),
            ));
        }
    };
    Ok(json!({ "type": "image_url", "image_url": { "url": url } }))
}

/// An assistant turn: text blocks joined (kept as parts when one marks a cache breakpoint),
/// `tool_use` blocks as `tool_calls`; thinking is not sent (no chat upstream takes it back).
fn assistant(content: Option<&Value>) -> Value {
    let mut text = String::new();
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    match content {
        Some(Value::String(s)) => text.push_str(s),
        Some(Value::Array(blocks)) => {
            for b in blocks {
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        text.push_str(b.get("text").and_then(Value::as_str).unwrap_or_default());
                        parts.push(text_part(b));
                    }
                    Some("tool_use") => calls.push(json!({
                        "id": b.get("id").cloned().unwrap_or_default(),
                        "type": "function",
                        "function": {
                            "name": b.get("name").cloned().unwrap_or_default(),
                            "arguments": b.get("input").map(Value::to_string).unwrap_or_else(|| "{}".into()),
                        },
                    })),
                    _ => {}
                }
            }
        }
        _ => {}
    }
    let content = if parts.iter().any(|p| p.get("cache_control").is_some()) {
        Value::Array(parts)
    } else if text.is_empty() && !calls.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    };
    let mut m = json!({ "role": "assistant", "content": content });
    if !calls.is_empty() {
        m["tool_calls"] = Value::Array(calls);
    }
    m
}

fn tool(t: &Value) -> Result<Value, BodyError> {
    if let Some(kind) = t.get("type").and_then(Value::as_str)
        && kind != "custom"
    {
        return Err(unsupported(
            format!("server tool `{kind}` runs only on Anthropic's own API"),
            Some("tools"),
        ));
    }
    let mut f = Object::new();
    f.insert("name".into(), t.get("name").cloned().unwrap_or_default());
    if let Some(d) = t.get("description") {
        f.insert("description".into(), d.clone());
    }
    f.insert(
        "parameters".into(),
        t.get("input_schema")
            .cloned()
            .unwrap_or_else(|| json!({ "type": "object" })),
    );
    Ok(cached(json!({ "type": "function", "function": f }), t))
}

/// The system prompt as a chat system message: one string, or text parts when a block marks a
/// cache breakpoint.
fn system(system: Option<&Value>) -> Option<Value> {
    if let Some(Value::Array(blocks)) = system
        && blocks.iter().any(|b| b.get("cache_control").is_some())
    {
        let parts: Vec<Value> = blocks.iter().map(text_part).collect();
        return Some(json!({ "role": "system", "content": parts }));
    }
    let text = content_text(system);
    (!text.is_empty()).then(|| json!({ "role": "system", "content": text }))
}

/// A text block as a chat text part, its `cache_control` kept.
fn text_part(b: &Value) -> Value {
    cached(
        json!({ "type": "text", "text": b.get("text").cloned().unwrap_or_default() }),
        b,
    )
}

/// `part` with the `cache_control` of the Anthropic `block` it came from, if any.
fn cached(mut part: Value, block: &Value) -> Value {
    if let Some(mark) = block.get("cache_control").filter(|m| !m.is_null()) {
        part["cache_control"] = mark.clone();
    }
    part
}

/// An OpenAI `finish_reason` as Anthropic's `stop_reason`.
pub fn stop_reason(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// A Message id for an OpenAI completion id.
pub(super) fn message_id(openai_id: Option<&str>) -> String {
    match openai_id {
        Some(id) if id.starts_with("msg_") => id.to_owned(),
        Some(id) if !id.is_empty() => format!("msg_{id}"),
        _ => new_id("msg_"),
    }
}

/// A chat completion → a Message, with its usage and text for history. `None` when the body is
/// not a chat completion. The upstream's reasoning (`reasoning_content` or `reasoning`) comes
/// first, as a `thinking` block with the gateway's signature.
pub fn reply(body: &[u8]) -> Option<(bytes::Bytes, Option<Usage>, Option<String>)> {
    let c: Value = serde_json::from_slice(body).ok()?;
    let choice = c.get("choices")?.as_array()?.first()?;
    let message = choice.get("message").unwrap_or(&Value::Null);
    let text = content_text(message.get("content"));
    let mut content = Vec::new();
    if let Some(reasoning) = reasoning_text(message) {
        content.push(json!({ "type": "thinking", "thinking": reasoning, "signature": thinking::gateway_signature() }));
    }
    if !text.is_empty() {
        content.push(json!({ "type": "text", "text": text }));
    }
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        content.push(json!({
            "type": "tool_use",
            "id": call.get("id").cloned().unwrap_or_else(|| Value::String(new_id("toolu_"))),
            "name": call.pointer("/function/name").cloned().unwrap_or_default(),
            "input": arguments_value(call.pointer("/function/arguments")),
        }));
    }
    let finish = choice.get("finish_reason").and_then(Value::as_str).unwrap_or("stop");
    let usage: Option<Usage> = c.get("usage").and_then(crate::dialects::wire::chat_usage);
    let u = usage.unwrap_or_default();
    let out = json!({
        "id": message_id(c.get("id").and_then(Value::as_str)),
        "type": "message",
        "role": "assistant",
        "model": c.get("model").cloned().unwrap_or_default(),
        "content": content,
        "stop_reason": stop_reason(finish),
        "stop_sequence": null,
        "usage": anthropic_usage_json(&u),
    });
    Some((to_bytes(&out), usage, (!text.is_empty()).then_some(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(req: Value) -> Value {
        serde_json::from_slice(&request(&to_bytes(&req)).unwrap()).unwrap()
    }

    #[test]
    fn system_blocks_images_and_tools_translate() {
        let out = translate(json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "system": [{"type": "text", "text": "You are terse."}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
                    {"type": "text", "text": "Describe this image."}
                ]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"location": "Paris"}}
                ]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "18C"}]}
            ],
            "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "stop_sequences": ["\n\nHuman:"],
            "stream": true
        }));
        assert_eq!(
            out["messages"][0],
            json!({"role": "system", "content": "You are terse."})
        );
        assert_eq!(
            out["messages"][1]["content"][0]["image_url"]["url"],
            json!("data:image/jpeg;base64,/9j/4AAQ")
        );
        assert_eq!(
            out["messages"][2]["tool_calls"][0]["function"]["name"],
            json!("get_weather")
        );
        assert_eq!(
            out["messages"][3],
            json!({"role": "tool", "tool_call_id": "toolu_01", "content": "18C"})
        );
        assert_eq!(
            out["tools"][0]["function"]["parameters"]["properties"]["location"]["type"],
            json!("string")
        );
        assert_eq!(out["tool_choice"], json!("required"));
        assert_eq!(out["parallel_tool_calls"], json!(false));
        assert_eq!(out["stop"], json!(["\n\nHuman:"]));
        assert_eq!(out["stream_options"], json!({"include_usage": true}));
        assert_eq!(out["max_tokens"], json!(1024));
    }

    #[test]
    fn server_tools_and_documents_are_refused() {
        let web = json!({"model": "m", "max_tokens": 1, "messages": [], "tools": [{"type": "web_search_20250305", "name": "web_search"}]});
        assert_eq!(request(&to_bytes(&web)).unwrap_err().code, "unsupported_value");
        let doc =
            json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "document"}]}]});
        assert!(request(&to_bytes(&doc)).is_err());
    }

    #[test]
    fn chat_completion_becomes_a_message() {
        let (body, usage, text) = reply(br#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o",
            "choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}}]},"finish_reason":"tool_calls"}],
            "usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}"#).unwrap();
        let m: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(m["type"], json!("message"));
        assert_eq!(m["id"], json!("msg_chatcmpl-1"));
        assert_eq!(m["stop_reason"], json!("tool_use"));
        assert_eq!(
            m["content"][0],
            json!({"type": "tool_use", "id": "call_1", "name": "f", "input": {"x": 1}})
        );
        assert_eq!(
            m["usage"],
            json!({"input_tokens": 9, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 3})
        );
        assert_eq!(usage.unwrap().total_tokens, 12);
        assert!(text.is_none());
    }

    // Found by the translate_messages fuzz target: `{"type": "tool"}` without a name went
    // upstream as a function choice named null.
    #[test]
    fn a_tool_choice_without_a_name_is_refused() {
        let req = json!({"model": "m", "max_tokens": 1, "messages": [], "tool_choice": {"type": "tool", "rame": "f"}});
        let e = request(&to_bytes(&req)).unwrap_err();
        assert_eq!((e.code, e.param.as_deref()), ("invalid_value", Some("tool_choice")));
        let ok = json!({"model": "m", "max_tokens": 1, "messages": [], "tool_choice": {"type": "tool", "name": "f"}});
        assert_eq!(
            translate(ok)["tool_choice"],
            json!({"type": "function", "function": {"name": "f"}})
        );
    }

    // What Claude Code sends: beta-only fields, adaptive or budgeted thinking, cache breakpoints
    // on the system prompt, the last block and a tool, and signed thinking in its history.
    #[test]
    fn claude_code_requests_keep_effort_user_and_cache_breakpoints() {
        let mark = json!({"type": "ephemeral"});
        let out = translate(json!({
            "model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": true,
            "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
            "container": "c", "mcp_servers": [],
            "thinking": {"type": "enabled", "budget_tokens": 31999},
            "metadata": {"user_id": "user_abc_session_1"},
            "system": [{"type": "text", "text": "You are Claude Code."},
                       {"type": "text", "text": "Be careful.", "cache_control": mark}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "list files", "cache_control": mark}]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "ls it", "signature": "EqQBCgIYAhIM"},
                    {"type": "redacted_thinking", "data": "EmwKAhgB"},
                    {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "a.txt"}], "cache_control": mark}]}
            ],
            "tools": [{"name": "Bash", "input_schema": {"type": "object"}, "cache_control": mark}]
        }));
        for beta in ["context_management", "container", "mcp_servers", "thinking", "metadata"] {
            assert!(out.get(beta).is_none(), "{beta} is not sent: {out}");
        }
        assert_eq!(out["reasoning_effort"], "high");
        assert_eq!(out["user"], "user_abc_session_1");
        assert_eq!(
            out["messages"][0]["content"],
            json!([{"type": "text", "text": "You are Claude Code."},
                   {"type": "text", "text": "Be careful.", "cache_control": mark}])
        );
        assert_eq!(out["messages"][1]["content"][0]["cache_control"], mark);
        let assistant = &out["messages"][2];
        assert_eq!(
            assistant["content"],
            Value::Null,
            "no thinking reaches a chat upstream: {assistant}"
        );
        assert!(assistant.get("thinking_blocks").is_none() && assistant.get("reasoning_content").is_none());
        assert_eq!(
            out["messages"][3]["content"],
            json!([{"type": "text", "text": "a.txt", "cache_control": mark}])
        );
        assert_eq!(out["tools"][0]["cache_control"], mark);
    }

    // Claude Code 2.1's second message is a `system` turn with its environment notes.
    #[test]
    fn a_system_turn_between_user_turns_stays_a_system_message_in_place() {
        let out = translate(json!({
            "model": "m", "max_tokens": 1, "system": "You are Claude Code.",
            "messages": [
                {"role": "user", "content": "read notes.txt"},
                {"role": "system", "content": [{"type": "text", "text": "# Environment\ncwd: /tmp"}]},
                {"role": "user", "content": "go on"}
            ]
        }));
        let roles: Vec<&str> = out["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["role"].as_str())
            .collect();
        assert_eq!(roles, ["system", "user", "system", "user"]);
        assert_eq!(out["messages"][2]["content"], "# Environment\ncwd: /tmp");
    }

    #[test]
    fn thinking_settings_become_reasoning_effort() {
        let effort = |thinking: Value| {
            let out = translate(json!({"model": "m", "max_tokens": 1, "messages": [], "thinking": thinking}));
            out.get("reasoning_effort").cloned()
        };
        assert_eq!(
            effort(json!({"type": "enabled", "budget_tokens": 2048})),
            Some(json!("low"))
        );
        assert_eq!(
            effort(json!({"type": "enabled", "budget_tokens": 8192})),
            Some(json!("medium"))
        );
        assert_eq!(effort(json!({"type": "adaptive"})), Some(json!("medium")));
        assert_eq!(effort(json!({"type": "disabled"})), None);
        let plain = translate(json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}));
        assert!(plain.get("reasoning_effort").is_none());
        assert_eq!(plain["messages"][0], json!({"role": "user", "content": "hi"}));
    }

    #[test]
    fn reasoning_becomes_a_signed_thinking_block_before_the_text() {
        for field in ["reasoning_content", "reasoning"] {
            let completion = json!({"id": "c", "model": "deepseek-reasoner", "choices": [{"index": 0,
                "message": {"role": "assistant", "content": "42", field: "Six times seven."}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                          "prompt_tokens_details": {"cached_tokens": 64, "cache_write_tokens": 30}}});
            let (body, _, text) = reply(&to_bytes(&completion)).unwrap();
            let m: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(m["content"][0]["type"], "thinking");
            assert_eq!(m["content"][0]["thinking"], "Six times seven.");
            let signature = m["content"][0]["signature"].as_str().unwrap();
            assert!(signature.starts_with(thinking::GATEWAY_SIGNATURE_PREFIX), "{signature}");
            assert_eq!(m["content"][1], json!({"type": "text", "text": "42"}));
            assert_eq!(
                m["usage"],
                json!({"input_tokens": 6, "cache_read_input_tokens": 64, "cache_creation_input_tokens": 30, "output_tokens": 20})
            );
            assert_eq!(text.as_deref(), Some("42"));
        }
    }
}
