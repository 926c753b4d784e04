//! An OpenAI-dialect client in front of an Anthropic upstream: chat request → Messages request,
//! and the Message reply or its events → chat completion or chunks.
//!
//! Reference: Anthropic's Messages API (`POST /v1/messages`) and its streaming events
//! (`message_start`, `content_block_start|delta|stop`, `message_delta`, `message_stop`, `ping`,
//! `error`).

use serde_json::{Value, json};

use super::{Object, StreamTranslator, arguments_value, content_text, data_url, invalid, new_id, now_secs};
use super::{parse_object, stop_list, to_bytes, unsupported};
use crate::dialects::BodyError;
use crate::dialects::sse;
use crate::domain::Usage;

/// Anthropic requires `max_tokens`; OpenAI clients often omit it.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// A chat completions request body → a Messages request body.
pub fn request(body: &[u8]) -> Result<bytes::Bytes, BodyError> {
    let chat = parse_object(body)?;
    let mut out = Object::new();
    out.insert("model".into(), chat.get("model").cloned().unwrap_or(Value::Null));
    let (system, messages) = messages(chat.get("messages"))?;
    if !system.is_empty() {
        out.insert("system".into(), Value::String(system));
    }
    out.insert("messages".into(), Value::Array(messages));
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
    Ok(to_bytes(&Value::Object(out)))
}

/// System and developer messages become `system`; the rest become alternating turns (same-role
/// neighbours merged, tool results carried in user turns).
fn messages(messages: Option<&Value>) -> Result<(String, Vec<Value>), BodyError> {
    let list = messages
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("`messages` must be an array", Some("messages")))?;
    let mut system = Vec::new();
    let mut turns: Vec<(String, Vec<Value>)> = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        let (role, blocks) = match role {
            "system" | "developer" => {
                system.push(content_text(m.get("content")));
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
    Ok((system.join("\n\n"), turns))
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
            Some("text") => Ok(json!({ "type": "text", "text": p.get("text").cloned().unwrap_or_default() })),
            Some("image_url") => {
                let url = p
                    .pointer("/image_url/url")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("image_url.url must be a string", Some("messages")))?;
                let source = match data_url(url) {
                    Some((mime, data)) => json!({ "type": "base64", "media_type": mime, "data": data }),
                    None => json!({ "type": "url", "url": url }),
                };
                Ok(json!({ "type": "image", "source": source }))
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

fn assistant_blocks(m: &Value) -> Vec<Value> {
    let mut blocks = Vec::new();
    let text = content_text(m.get("content"));
    if !text.is_empty() {
        blocks.push(json!({ "type": "text", "text": text }));
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

fn tool_result(m: &Value) -> Value {
    json!({
        "type": "tool_result",
        "tool_use_id": m.get("tool_call_id").cloned().unwrap_or_default(),
        "content": content_text(m.get("content")),
    })
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

/// Anthropic's `usage` as OpenAI's (cache reads and writes count as prompt tokens).
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
        reasoning_tokens: 0,
    }
}

/// A Message reply → a chat completion, with its usage and text for history. `None` when the
/// body is not a Message.
pub fn reply(body: &[u8]) -> Option<(bytes::Bytes, Usage, Option<String>)> {
    let m: Value = serde_json::from_slice(body).ok()?;
    if m.get("type").and_then(Value::as_str) != Some("message") {
        return None;
    }
    let blocks = m.get("content")?.as_array()?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or_default()),
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

/// Anthropic stream events → `chat.completion.chunk` events, one event at a time.
#[derive(Debug)]
pub struct ToChatChunks {
    id: String,
    model: Value,
    created: u64,
    include_usage: bool,
    /// Anthropic block index → OpenAI tool call index.
    tool_blocks: Vec<(u64, u64)>,
    input_tokens: Usage,
    usage: Usage,
    /// `message_stop` was translated into `[DONE]`: nothing may follow it.
    done: bool,
}

impl ToChatChunks {
    /// `include_usage`: the request asked for the final usage chunk (`stream_options`).
    pub fn new(include_usage: bool) -> Self {
        Self {
            id: new_id("chatcmpl-"),
            model: Value::Null,
            created: now_secs(),
            include_usage,
            tool_blocks: Vec::new(),
            input_tokens: Usage::default(),
            usage: Usage::default(),
            done: false,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>, out: &mut Vec<u8>) {
        super::push_chat_chunk(out, &self.id, self.created, &self.model, delta, finish);
    }

    fn tool_index(&self, block: u64) -> Option<u64> {
        self.tool_blocks.iter().find(|(b, _)| *b == block).map(|(_, t)| *t)
    }
}

impl StreamTranslator for ToChatChunks {
    fn event(&mut self, data: &[u8], out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        let Ok(e) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        let index = e.get("index").and_then(Value::as_u64).unwrap_or(0);
        match e.get("type").and_then(Value::as_str).unwrap_or_default() {
            "message_start" => {
                let m = e.get("message").unwrap_or(&Value::Null);
                if let Some(id) = m.get("id").and_then(Value::as_str) {
                    id.clone_into(&mut self.id);
                }
                self.model = m.get("model").cloned().unwrap_or_default();
                self.input_tokens = usage(m.get("usage"));
                self.chunk(json!({ "role": "assistant", "content": "" }), None, out);
            }
            "content_block_start" => {
                let block = e.get("content_block").unwrap_or(&Value::Null);
                match block.get("type").and_then(Value::as_str) {
                    Some("tool_use") => {
                        let n = self.tool_blocks.len() as u64;
                        self.tool_blocks.push((index, n));
                        let call = json!({
                            "index": n,
                            "id": block.get("id").cloned().unwrap_or_default(),
                            "type": "function",
                            "function": { "name": block.get("name").cloned().unwrap_or_default(), "arguments": "" },
                        });
                        self.chunk(json!({ "tool_calls": [call] }), None, out);
                    }
                    Some("text") => {
                        if let Some(t) = block.get("text").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                            self.chunk(json!({ "content": t }), None, out);
                        }
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let delta = e.get("delta").unwrap_or(&Value::Null);
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        let text = delta.get("text").cloned().unwrap_or_default();
                        self.chunk(json!({ "content": text }), None, out);
                    }
                    Some("input_json_delta") => {
                        let Some(n) = self.tool_index(index) else { return };
                        let part = delta.get("partial_json").cloned().unwrap_or_default();
                        self.chunk(
                            json!({ "tool_calls": [{ "index": n, "function": { "arguments": part } }] }),
                            None,
                            out,
                        );
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                self.usage = self.input_tokens.merge(usage(e.get("usage")));
                let stop = e
                    .pointer("/delta/stop_reason")
                    .and_then(Value::as_str)
                    .unwrap_or("end_turn");
                self.chunk(json!({}), Some(finish_reason(stop)), out);
            }
            "message_stop" => {
                if self.include_usage {
                    let chunk = json!({
                        "id": self.id,
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.model,
                        "choices": [],
                        "usage": crate::dialects::wire::chat_usage_json(&self.usage),
                    });
                    sse::push_data_event(out, &to_bytes(&chunk));
                }
                sse::push_data_event(out, b"[DONE]");
                self.done = true;
            }
            "error" => {
                let err = e.get("error").unwrap_or(&Value::Null);
                let body = json!({ "error": {
                    "message": err.get("message").cloned().unwrap_or_else(|| "upstream stream error".into()),
                    "type": err.get("type").cloned().unwrap_or_else(|| "api_error".into()),
                    "param": null,
                    "code": null,
                }});
                sse::push_data_event(out, &to_bytes(&body));
            }
            // `ping`, `content_block_stop`, thinking deltas: nothing to say in chat chunks.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialects::translate::stream::tests::{payloads, run};

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

    #[test]
    fn stream_events_become_chunks_one_for_one() {
        let upstream = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude\",\"stop_reason\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: ping\ndata: {\"type\":\"ping\"}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"Paris\\\"}\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let items = run(ToChatChunks::new(true), upstream);
        // One output item per upstream event: role, nothing, nothing, text, nothing, tool start,
        // two argument pieces, nothing, finish, usage + [DONE], and nothing at the close.
        let sizes: Vec<usize> = items.iter().map(|i| payloads(std::slice::from_ref(i)).len()).collect();
        assert_eq!(sizes, [1, 0, 0, 1, 0, 1, 1, 1, 0, 1, 2, 0]);
        let p = payloads(&items);
        assert_eq!(p[0]["choices"][0]["delta"]["role"], json!("assistant"));
        assert_eq!(p[0]["id"], json!("msg_1"));
        assert_eq!(p[1]["choices"][0]["delta"]["content"], json!("Hi"));
        assert_eq!(
            p[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
            json!("get_weather")
        );
        let args: String = p[3..5]
            .iter()
            .map(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(serde_json::from_str::<Value>(&args).unwrap(), json!({"city": "Paris"}));
        assert_eq!(p[5]["choices"][0]["finish_reason"], json!("tool_calls"));
        assert_eq!(p[6]["usage"]["total_tokens"], json!(40));
        assert_eq!(p[7], json!("[DONE]"));
    }

    #[test]
    fn stream_error_event_becomes_an_openai_error_event() {
        let items = run(
            ToChatChunks::new(false),
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
        );
        let p = payloads(&items);
        assert_eq!(p[0]["error"]["type"], json!("overloaded_error"));
        assert!(sse::first_event_is_error(items[0].as_bytes()));
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

    // Found by the translate_anthropic fuzz target: events after `message_stop` (a second one,
    // say) were translated after `[DONE]`.
    #[test]
    fn nothing_follows_done() {
        let upstream = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude\"}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"late\"}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let p = payloads(&run(ToChatChunks::new(false), upstream));
        assert_eq!(p.len(), 2);
        assert_eq!(p[1], json!("[DONE]"));
    }
}
