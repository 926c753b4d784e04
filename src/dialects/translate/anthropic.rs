//! An OpenAI-dialect client in front of an Anthropic upstream: chat request → Messages request,
//! and the Message reply → chat completion (its events → chunks in `anthropic_stream`).
//!
//! Reference: Anthropic's Messages API (`POST /v1/messages`) and its streaming events
//! (`message_start`, `content_block_start|delta|stop`, `message_delta`, `message_stop`, `ping`,
//! `error`).

use serde_json::{Value, json};

use super::{Object, arguments_value, content_text, data_url, invalid, new_id, now_secs};
use super::{parse_object, stop_list, thinking, to_bytes, unsupported};
use crate::dialects::BodyError;
use crate::domain::Usage;

pub use super::anthropic_stream::ToChatChunks;

/// Anthropic requires `max_tokens`; OpenAI clients often omit it.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// A chat completions request body → a Messages request body.
pub fn request(body: &[u8]) -> Result<bytes::Bytes, BodyError> {
    let chat = parse_object(body)?;
    let mut out = Object::new();
    out.insert("model".into(), chat.get("model").cloned().unwrap_or(Value::Null));
    let (system, messages) = messages(chat.get("messages"))?;
    if let Some(system) = system {
        out.insert("system".into(), system);
    }
    let max_tokens = chat
        .get("max_completion_tokens")
        .or_else(|| chat.get("max_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    out.insert("max_tokens".into(), max_tokens.into());
    if let Some(t) = chat.get("temperature").and_then(Value::as_f64) {
        // OpenAI's range is 0..2, Anthropic's 0..1.
        out.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
    }
    for key in ["top_p", "top_k", "stream"] {
        if let Some(v) = chat.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(stop) = stop_list(chat.get("stop")) {
        out.insert("stop_sequences".into(), stop);
    }
    if let Some(user) = chat.get("user").and_then(Value::as_str) {
        out.insert("metadata".into(), json!({ "user_id": user }));
    }
    if chat.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Err(unsupported(
            "Anthropic models return one choice: `n` must be 1",
            Some("n"),
        ));
    }
    if let Some(tools) = chat.get("tools").and_then(Value::as_array) {
        out.insert(
            "tools".into(),
            Value::Array(tools.iter().map(tool).collect::<Result<_, _>>()?),
        );
    }
    if let Some(choice) = tool_choice(chat.get("tool_choice"), chat.get("parallel_tool_calls"))? {
        out.insert("tool_choice".into(), choice);
    }
    if let Some(budget) = chat
        .get("reasoning_effort")
        .and_then(Value::as_str)
        .and_then(thinking::budget_for)
        && thinking::final_tool_turn_thinks(&messages)
    {
        think(&mut out, budget, max_tokens);
    }
    out.insert("messages".into(), Value::Array(messages));
    Ok(to_bytes(&Value::Object(out)))
}

/// Turns extended thinking on with `budget` tokens, within what Anthropic allows with it: no
/// forced tool choice (then thinking stays off), no `temperature` or `top_k`, `top_p` at least
/// 0.95, and `max_tokens` above the budget (raised by the budget when it is not, so the answer
/// keeps the room the client asked for).
fn think(out: &mut Object, budget: u64, max_tokens: u64) {
    let forced = out
        .get("tool_choice")
        .and_then(|c| c.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t == "any" || t == "tool");
    if forced {
        return;
    }
    out.insert("thinking".into(), json!({ "type": "enabled", "budget_tokens": budget }));
    if max_tokens <= budget {
        out.insert("max_tokens".into(), json!(max_tokens.saturating_add(budget)));
    }
    out.remove("temperature");
    out.remove("top_k");
    if out.get("top_p").and_then(Value::as_f64).is_some_and(|p| p < 0.95) {
        out.remove("top_p");
    }
}

/// System and developer messages become `system`; the rest become alternating turns (same-role
/// neighbours merged, tool results carried in user turns).
fn messages(messages: Option<&Value>) -> Result<(Option<Value>, Vec<Value>), BodyError> {
    let list = messages
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("`messages` must be an array", Some("messages")))?;
    let mut system = Vec::new();
    let mut turns: Vec<(String, Vec<Value>)> = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        let (role, blocks) = match role {
            "system" | "developer" => {
                system.extend(text_blocks(m.get("content")));
                continue;
            }
            "user" => ("user", user_blocks(m.get("content"), i)?),
            "assistant" => ("assistant", assistant_blocks(m)),
            "tool" => ("user", vec![tool_result(m)]),
            other => {
                return Err(invalid(
                    format!("messages[{i}].role `{other}` is not one of system, developer, user, assistant, tool"),
                    Some("messages"),
                ));
            }
        };
        // An empty message is skipped before merging, or its neighbours would end up as two
        // turns of the same role.
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, content)) if last == role => content.extend(blocks),
            _ => turns.push((role.to_owned(), blocks)),
        }
    }
    let turns = turns
        .into_iter()
        .map(|(role, content)| json!({ "role": role, "content": content }))
        .collect();
    Ok((system_value(system), turns))
}

/// The system prompt: one string, or its text blocks when one marks a cache breakpoint.
fn system_value(blocks: Vec<Value>) -> Option<Value> {
    if blocks.iter().any(|b| b.get("cache_control").is_some()) {
        return Some(Value::Array(blocks));
    }
    let texts: Vec<&str> = blocks
        .iter()
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .filter(|t| !t.is_empty())
        .collect();
    (!texts.is_empty()).then(|| Value::String(texts.join("\n\n")))
}

/// Message content as Anthropic text blocks: a string is one, text parts one each with their
/// `cache_control`; empty text is left out (Anthropic refuses empty text blocks).
fn text_blocks(content: Option<&Value>) -> Vec<Value> {
    match content {
        Some(Value::String(s)) if !s.is_empty() => vec![json!({ "type": "text", "text": s })],
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| {
                let text = p.get("text").and_then(Value::as_str).filter(|t| !t.is_empty())?;
                Some(cached(json!({ "type": "text", "text": text }), p))
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `block` with the `cache_control` of the chat part (or tool) it came from, if any.
fn cached(mut block: Value, part: &Value) -> Value {
    if let Some(mark) = part.get("cache_control").filter(|m| !m.is_null()) {
        block["cache_control"] = mark.clone();
    }
    block
}

fn user_blocks(content: Option<&Value>, i: usize) -> Result<Vec<Value>, BodyError> {
    let parts = match content {
        Some(Value::String(s)) => return Ok(vec![json!({ "type": "text", "text": s })]),
        Some(Value::Array(parts)) => parts,
        _ => return Ok(Vec::new()),
    };
    parts
        .iter()
        .map(|p| match p.get("type").and_then(Value::as_str) {
            Some("text") => Ok(cached(
                json!({ "type": "text", "text": p.get("text").cloned().unwrap_or_default() }),
                p,
            )),
            Some("image_url") => {
                let url = p
                    .pointer("/image_url/url")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("image_url.url must be a string", Some("messages")))?;
                let source = match data_url(url) {
                    Some((mime, data)) => json!({ "type": "base64", "media_type": mime, "data": data }),
                    None => json!({ "type": "url", "url": url }),
                };
                Ok(cached(json!({ "type": "image", "source": source }), p))
            }
            other => Err(unsupported(
                format!(
                    "messages[{i}]: content part type `{}` cannot be sent to an Anthropic model",
                    other.unwrap_or("?")
                ),
                Some("messages"),
            )),
        })
        .collect()
}

/// An assistant turn: Anthropic's own thinking first (`thinking_blocks`, as it must come back),
/// then the text, then the tool calls.
fn assistant_blocks(m: &Value) -> Vec<Value> {
    let mut blocks = thinking::chat_blocks_for_anthropic(m);
    let parts = text_blocks(m.get("content"));
    if parts.iter().any(|b| b.get("cache_control").is_some()) {
        blocks.extend(parts);
    } else {
        let text = content_text(m.get("content"));
        if !text.is_empty() {
            blocks.push(json!({ "type": "text", "text": text }));
        }
    }
    for call in m.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
        blocks.push(json!({
            "type": "tool_use",
            "id": call.get("id").cloned().unwrap_or_default(),
            "name": call.pointer("/function/name").cloned().unwrap_or_default(),
            "input": arguments_value(call.pointer("/function/arguments")),
        }));
    }
    blocks
}

/// A tool message as a `tool_result` block; a breakpoint on its last part marks the block.
fn tool_result(m: &Value) -> Value {
    let result = json!({
        "type": "tool_result",
        "tool_use_id": m.get("tool_call_id").cloned().unwrap_or_default(),
        "content": content_text(m.get("content")),
    });
    match m.get("content").and_then(Value::as_array).and_then(|p| p.last()) {
        Some(last) => cached(result, last),
        None => result,
    }
}

fn tool(t: &Value) -> Result<Value, BodyError> {
    if t.get("type").and_then(Value::as_str) != Some("function") {
        return Err(unsupported(
            "only `function` tools can be sent to an Anthropic model",
            Some("tools"),
        ));
    }
    let f = t.get("function").unwrap_or(&Value::Null);
    let mut out = Object::new();
    out.insert("name".into(), f.get("name").cloned().unwrap_or_default());
    if let Some(d) = f.get("description") {
        out.insert("description".into(), d.clone());
    }
    let schema = f
        .get("parameters")
        .cloned()
        .unwrap_or_else(|| json!({ "type": "object", "properties": {} }));
    out.insert("input_schema".into(), schema);
    // LiteLLM puts a tool's breakpoint beside `function`; some clients put it inside.
    if let Some(mark) = t
        .get("cache_control")
        .or_else(|| f.get("cache_control"))
        .filter(|m| !m.is_null())
    {
        out.insert("cache_control".into(), mark.clone());
    }
    Ok(Value::Object(out))
}

fn tool_choice(choice: Option<&Value>, parallel: Option<&Value>) -> Result<Option<Value>, BodyError> {
    let mut out = match choice {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => json!({ "type": "auto" }),
            "none" => json!({ "type": "none" }),
            "required" => json!({ "type": "any" }),
            other => return Err(invalid(format!("unknown tool_choice `{other}`"), Some("tool_choice"))),
        }),
        Some(v) => match v.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => Some(json!({ "type": "tool", "name": name })),
            None => return Err(invalid("tool_choice must name a function", Some("tool_choice"))),
        },
    };
    if parallel == Some(&Value::Bool(false)) {
        let choice = out.get_or_insert_with(|| json!({ "type": "auto" }));
        if let Some(map) = choice.as_object_mut()
            && map.get("type").and_then(Value::as_str) != Some("none")
        {
            map.insert("disable_parallel_tool_use".into(), Value::Bool(true));
        }
    }
    Ok(out)
}

/// Anthropic's `stop_reason` as an OpenAI `finish_reason`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// Anthropic's `usage` as OpenAI's (cache reads and writes count as prompt tokens, cache reads are
/// also `cached_tokens`; `thinking_tokens`, when the client's beta asks for them, are reasoning).
pub fn usage(u: Option<&Value>) -> Usage {
    let n = |k: &str| u.and_then(|u| u.get(k)).and_then(Value::as_u64).unwrap_or(0);
    // Saturating: counts come from the upstream, and a hostile one must not overflow them.
    let prompt_tokens = n("input_tokens")
        .saturating_add(n("cache_creation_input_tokens"))
        .saturating_add(n("cache_read_input_tokens"));
    let completion_tokens = n("output_tokens");
    Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens.saturating_add(completion_tokens),
        cached_tokens: n("cache_read_input_tokens"),
        cache_write_tokens: n("cache_creation_input_tokens"),
        reasoning_tokens: u
            .and_then(|u| u.pointer("/output_tokens_details/thinking_tokens"))
            .and_then(Value::as_u64)
            .unwrap_or(0),
    }
}

/// A Message reply → a chat completion, with its usage and text for history. `None` when the
/// body is not a Message. Thinking becomes the message's `reasoning_content`, and its blocks, as
/// Anthropic signed them, its `thinking_blocks` (LiteLLM's names), so they can go back.
pub fn reply(body: &[u8]) -> Option<(bytes::Bytes, Usage, Option<String>)> {
    let m: Value = serde_json::from_slice(body).ok()?;
    if m.get("type").and_then(Value::as_str) != Some("message") {
        return None;
    }
    let blocks = m.get("content")?.as_array()?;
    let mut text = String::new();
    let mut calls = Vec::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or_default()),
            Some("thinking") => {
                reasoning.push_str(b.get("thinking").and_then(Value::as_str).unwrap_or_default());
                thinking_blocks.push(b.clone());
            }
            Some("redacted_thinking") => thinking_blocks.push(b.clone()),
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
    let mut message = json!({ "role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text.clone()) } });
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    if !thinking_blocks.is_empty() {
        message["reasoning_content"] = Value::String(reasoning);
        message["thinking_blocks"] = Value::Array(thinking_blocks);
    }
    let stop = m.get("stop_reason").and_then(Value::as_str).unwrap_or("end_turn");
    let usage = usage(m.get("usage"));
    let out = json!({
        "id": m.get("id").cloned().unwrap_or_else(|| Value::String(new_id("chatcmpl-"))),
        "object": "chat.completion",
        "created": now_secs(),
        "model": m.get("model").cloned().unwrap_or_default(),
        "choices": [{ "index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason(stop) }],
        "usage": crate::dialects::wire::chat_usage_json(&usage),
    });
    Some((to_bytes(&out), usage, (!text.is_empty()).then_some(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(chat: Value) -> Value {
        serde_json::from_slice(&request(&to_bytes(&chat)).unwrap()).unwrap()
    }

    #[test]
    fn system_roles_images_and_defaults_translate() {
        let out = translate(json!({
            "model": "claude-sonnet-4-5",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
                ]},
            ],
            "temperature": 1.5,
            "stop": "END",
            "user": "u-1"
        }));
        assert_eq!(out["system"], json!("Be brief."));
        assert_eq!(out["max_tokens"], json!(DEFAULT_MAX_TOKENS));
        assert_eq!(out["temperature"], json!(1.0));
        assert_eq!(out["stop_sequences"], json!(["END"]));
        assert_eq!(out["metadata"]["user_id"], json!("u-1"));
        let image = &out["messages"][0]["content"][1];
        assert_eq!(
            image["source"],
            json!({"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="})
        );
    }

    #[test]
    fn tool_calls_and_results_translate() {
        let out = translate(json!({
            "model": "m", "max_tokens": 100,
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"}
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "d",
                       "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "tool_choice": "required",
            "parallel_tool_calls": false
        }));
        assert_eq!(out["max_tokens"], json!(100));
        assert_eq!(
            out["messages"][1]["content"][0],
            json!({"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}})
        );
        assert_eq!(
            out["messages"][2],
            json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "18C"}]})
        );
        assert_eq!(
            out["tools"][0]["input_schema"]["properties"]["city"]["type"],
            json!("string")
        );
        assert_eq!(
            out["tool_choice"],
            json!({"type": "any", "disable_parallel_tool_use": true})
        );
    }

    #[test]
    fn untranslatable_requests_are_refused() {
        let audio = json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio"}]}]});
        assert_eq!(request(&to_bytes(&audio)).unwrap_err().code, "unsupported_value");
        let n = json!({"model": "m", "messages": [], "n": 2});
        assert_eq!(request(&to_bytes(&n)).unwrap_err().param.as_deref(), Some("n"));
    }

    #[test]
    fn message_reply_becomes_a_chat_completion() {
        let (body, usage, text) = reply(br#"{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5",
            "content":[{"type":"text","text":"Let me check."},{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{"city":"Paris"}}],
            "stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":20,"output_tokens":7}}"#).unwrap();
        let c: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(c["object"], json!("chat.completion"));
        assert_eq!(c["choices"][0]["finish_reason"], json!("tool_calls"));
        assert_eq!(c["choices"][0]["message"]["content"], json!("Let me check."));
        let call = &c["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(call["id"], json!("toolu_01"));
        assert_eq!(
            serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
            json!({"city": "Paris"})
        );
        assert_eq!(
            (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens),
            (20, 7, 27)
        );
        assert_eq!(text.as_deref(), Some("Let me check."));
    }

    // Found by the translate_anthropic fuzz target: an empty assistant message between two user
    // messages left two user turns in a row.
    #[test]
    fn an_empty_message_does_not_split_turns() {
        let out = translate(json!({"model": "m", "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": null},
            {"role": "tool", "tool_call_id": "call_1", "content": "b"}
        ]}));
        assert_eq!(out["messages"].as_array().unwrap().len(), 1);
        assert_eq!(out["messages"][0]["role"], json!("user"));
        assert_eq!(out["messages"][0]["content"].as_array().unwrap().len(), 2);
    }

    // Found by the translate_anthropic fuzz target: token counts near u64::MAX overflowed.
    #[test]
    fn hostile_token_counts_saturate() {
        let u = usage(Some(
            &json!({"input_tokens": u64::MAX, "cache_read_input_tokens": 5, "output_tokens": u64::MAX}),
        ));
        assert_eq!((u.prompt_tokens, u.total_tokens), (u64::MAX, u64::MAX));
    }

    #[test]
    fn cache_breakpoints_reach_their_blocks_and_tools() {
        let mark = json!({"type": "ephemeral"});
        let out = translate(json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": [{"type": "text", "text": "Long rules.", "cache_control": mark}]},
                {"role": "system", "content": "More."},
                {"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": mark}]},
                {"role": "assistant", "content": [{"type": "text", "text": "Calling.", "cache_control": mark}],
                 "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "ok", "cache_control": mark}]}
            ],
            "tools": [
                {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}, "cache_control": mark},
                {"type": "function", "function": {"name": "g", "cache_control": mark}},
                {"type": "function", "function": {"name": "h"}}
            ]
        }));
        assert_eq!(
            out["system"],
            json!([{"type": "text", "text": "Long rules.", "cache_control": mark}, {"type": "text", "text": "More."}])
        );
        assert_eq!(
            out["messages"][0]["content"],
            json!([{"type": "text", "text": "Hi", "cache_control": mark}])
        );
        assert_eq!(
            out["messages"][1]["content"][0],
            json!({"type": "text", "text": "Calling.", "cache_control": mark})
        );
        assert_eq!(
            out["messages"][2]["content"][0],
            json!({"type": "tool_result", "tool_use_id": "call_1", "content": "ok", "cache_control": mark})
        );
        assert_eq!(out["tools"][0]["cache_control"], mark);
        assert_eq!(out["tools"][1]["cache_control"], mark, "inside `function` too");
        assert!(out["tools"][2].get("cache_control").is_none());
    }

    #[test]
    fn signed_thinking_goes_back_first_and_foreign_thinking_does_not() {
        let signed = json!({"type": "thinking", "thinking": "Check the weather.", "signature": "EqQBCgIYAhIM"});
        let redacted = json!({"type": "redacted_thinking", "data": "EmwKAhgB"});
        let ours = json!({"type": "thinking", "thinking": "x", "signature": format!("{}1", thinking::GATEWAY_SIGNATURE_PREFIX)});
        let out = translate(json!({"model": "m", "reasoning_effort": "low", "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": "Earlier.", "reasoning_content": "x", "thinking_blocks": [ours, {"type": "thinking", "thinking": "unsigned"}]},
            {"role": "user", "content": "And now?"},
            {"role": "assistant", "content": null, "reasoning_content": "Check the weather.",
             "thinking_blocks": [signed, redacted],
             "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"}
        ]}));
        assert_eq!(
            out["messages"][1]["content"],
            json!([{"type": "text", "text": "Earlier."}])
        );
        let turn = out["messages"][3]["content"].as_array().unwrap();
        assert_eq!(turn[0], signed);
        assert_eq!(turn[1], redacted);
        assert_eq!(turn[2]["type"], "tool_use");
        assert_eq!(out["thinking"], json!({"type": "enabled", "budget_tokens": 1024}));
    }

    #[test]
    fn reasoning_effort_turns_thinking_on_within_anthropics_rules() {
        let out = translate(json!({"model": "m", "reasoning_effort": "high", "max_tokens": 1000,
            "temperature": 0.2, "top_p": 0.5, "messages": [{"role": "user", "content": "hi"}]}));
        assert_eq!(out["thinking"], json!({"type": "enabled", "budget_tokens": 16384}));
        assert_eq!(out["max_tokens"], json!(17384), "raised above the budget");
        assert!(out.get("temperature").is_none() && out.get("top_p").is_none());
        let roomy = translate(json!({"model": "m", "reasoning_effort": "medium", "max_tokens": 8000,
            "messages": [{"role": "user", "content": "hi"}]}));
        assert_eq!(
            (
                roomy["thinking"]["budget_tokens"].as_u64(),
                roomy["max_tokens"].as_u64()
            ),
            (Some(4096), Some(8000))
        );
        let none = translate(
            json!({"model": "m", "reasoning_effort": "none", "messages": [{"role": "user", "content": "hi"}]}),
        );
        assert!(none.get("thinking").is_none());
        let forced = translate(
            json!({"model": "m", "reasoning_effort": "low", "tool_choice": "required",
            "tools": [{"type": "function", "function": {"name": "f"}}], "messages": [{"role": "user", "content": "hi"}]}),
        );
        assert!(
            forced.get("thinking").is_none(),
            "Anthropic refuses thinking with a forced tool"
        );
        // The last tool turn's thinking came from another provider: thinking stays off.
        let lost = translate(json!({"model": "m", "reasoning_effort": "low", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": null, "reasoning_content": "elsewhere",
             "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "ok"}]}));
        assert!(lost.get("thinking").is_none(), "{lost}");
    }

    #[test]
    fn thinking_and_cache_usage_reach_the_chat_completion() {
        let (body, usage, text) = reply(
            br#"{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5",
            "content":[{"type":"thinking","thinking":"Six times seven.","signature":"EqQBCgIYAhIM"},
                       {"type":"redacted_thinking","data":"EmwKAhgB"},{"type":"text","text":"42"}],
            "stop_reason":"end_turn","stop_sequence":null,
            "usage":{"input_tokens":10,"cache_creation_input_tokens":30,"cache_read_input_tokens":60,"output_tokens":50,
                     "output_tokens_details":{"thinking_tokens":40}}}"#,
        )
        .unwrap();
        let c: Value = serde_json::from_slice(&body).unwrap();
        let message = &c["choices"][0]["message"];
        assert_eq!(message["content"], "42");
        assert_eq!(message["reasoning_content"], "Six times seven.");
        assert_eq!(
            message["thinking_blocks"],
            json!([{"type": "thinking", "thinking": "Six times seven.", "signature": "EqQBCgIYAhIM"},
                   {"type": "redacted_thinking", "data": "EmwKAhgB"}])
        );
        assert_eq!(c["usage"]["prompt_tokens"], 100);
        assert_eq!(c["usage"]["prompt_tokens_details"]["cached_tokens"], 60);
        assert_eq!(c["usage"]["completion_tokens_details"]["reasoning_tokens"], 40);
        assert_eq!(
            (usage.cached_tokens, usage.cache_write_tokens, usage.reasoning_tokens),
            (60, 30, 40)
        );
        assert_eq!(text.as_deref(), Some("42"));
    }
}
