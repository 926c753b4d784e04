//! The Responses API (`POST /v1/responses`) bridged to chat completions: request → chat request,
//! chat completion → `response` object (the stream half is in `responses_stream`, tools in
//! `responses_tools`, output items and usage in `responses_items`).
//!
//! The bridge keeps no state: `previous_response_id` is refused, and fields only the Responses API
//! acts on (`store`, `include`, `client_metadata`, `prompt_cache_retention`, `truncation`...) are
//! not sent, since chat upstreams refuse fields they do not know. `metadata` stays out too: the
//! chat API takes it only with `store: true`, which would keep the completion upstream.
//! Reference: <https://platform.openai.com/docs/api-reference/responses>.

use serde_json::{Value, json};

use super::responses_items::{
    message_item, open_thinking, reasoning_item, reasoning_text, seal_thinking, status, thinking_fields, usage,
};
use super::responses_tools::{CallName, ToolNames, call_name, chat_call, tool_choice, tools};
use super::{Object, content_text, invalid, new_id, now_secs, parse_object, to_bytes, unsupported};
use crate::dialects::BodyError;

pub use super::responses_stream::ToResponseEvents;
pub use super::responses_tools::{BridgeOptions, HostedTools};

/// Request fields echoed in the `response` object.
const ECHOED: &[&str] = &[
    "instructions",
    "max_output_tokens",
    "metadata",
    "parallel_tool_calls",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_p",
    "user",
    "reasoning",
];

/// Request fields chat completions takes under the same name and meaning.
const SAME_IN_CHAT: &[&str] = &[
    "temperature",
    "top_p",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "stream",
];

/// The `include` value that asks for reasoning to come back as `encrypted_content`.
const ENCRYPTED_REASONING: &str = "reasoning.encrypted_content";

/// What the reply needs from the request: the fields a `response` object repeats, and how to
/// name the model's calls and reasoning in Responses terms.
#[derive(Debug, Clone, Default)]
pub struct Echo {
    fields: Object,
    /// The hosted tool types left out of the chat request (`HostedTools::Drop`), each once, in
    /// request order: what the `x-ai-gateway-dropped-tools` response header lists.
    pub dropped_tools: Vec<String>,
    names: ToolNames,
    encrypted_reasoning: bool,
}

impl Echo {
    /// A `response` object around `output`, in `status`, with the request's settings.
    pub(super) fn response(&self, id: &str, created_at: u64, model: &Value, status: &str) -> Value {
        let get = |k: &str, default: Value| self.fields.get(k).cloned().unwrap_or(default);
        json!({
            "id": id,
            "object": "response",
            "created_at": created_at,
            "status": status,
            "error": null,
            "incomplete_details": null,
            "instructions": get("instructions", Value::Null),
            "max_output_tokens": get("max_output_tokens", Value::Null),
            "model": model,
            "output": [],
            "parallel_tool_calls": get("parallel_tool_calls", Value::Bool(true)),
            "previous_response_id": null,
            "reasoning": get("reasoning", json!({ "effort": null, "summary": null })),
            "store": false,
            "temperature": get("temperature", json!(1.0)),
            "text": get("text", json!({ "format": { "type": "text" } })),
            "tool_choice": get("tool_choice", json!("auto")),
            "tools": get("tools", json!([])),
            "top_p": get("top_p", json!(1.0)),
            "truncation": "disabled",
            "usage": null,
            "user": get("user", Value::Null),
            "metadata": get("metadata", json!({})),
        })
    }

    /// How the call item for a chat call of `chat_name` is named, and which kind it is.
    pub(super) fn call_name(&self, chat_name: &Value) -> CallName {
        call_name(&self.names, chat_name)
    }

    /// The `encrypted_content` of a reasoning item made from these thinking blocks, when the
    /// client asked for it (`include`) and one of them is signed.
    pub(super) fn seal(&self, thinking_blocks: &[Value]) -> Option<String> {
        self.encrypted_reasoning
            .then(|| seal_thinking(thinking_blocks))
            .flatten()
    }
}

/// A Responses request body → a chat completions request body, and what the reply must echo.
pub fn request(body: &[u8], options: &BridgeOptions) -> Result<(bytes::Bytes, Echo), BodyError> {
    let req = parse_object(body)?;
    if req.get("previous_response_id").is_some_and(|v| !v.is_null()) {
        return Err(unsupported(
            "the gateway stores no responses: send the whole conversation in `input` instead of previous_response_id",
            Some("previous_response_id"),
        ));
    }
    let tools = tools(&req, options.hosted_tools)?;
    let mut out = Object::new();
    out.insert("model".into(), req.get("model").cloned().unwrap_or(Value::Null));
    out.insert(
        "messages".into(),
        Value::Array(messages(&req, &tools.names, options.anthropic_thinking)?),
    );
    if let Some(v) = req.get("max_output_tokens").filter(|v| !v.is_null()) {
        out.insert("max_completion_tokens".into(), v.clone());
    }
    for k in SAME_IN_CHAT {
        if let Some(v) = req.get(*k).filter(|v| !v.is_null()) {
            out.insert((*k).into(), v.clone());
        }
    }
    if let Some(effort) = req
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .filter(|v| v.is_string())
    {
        out.insert("reasoning_effort".into(), effort.clone());
    }
    let choice = match req.get("tool_choice").filter(|v| !v.is_null()) {
        Some(c) => tool_choice(c, &tools.names, options.hosted_tools)?,
        None => None,
    };
    // Chat refuses `tool_choice` and `parallel_tool_calls` without tools, and an empty `tools`:
    // when every tool was a dropped hosted one, the request goes without all three.
    if !tools.chat.is_empty() {
        out.insert("tools".into(), Value::Array(tools.chat));
        if let Some(choice) = choice {
            out.insert("tool_choice".into(), choice);
        }
        if let Some(v) = req.get("parallel_tool_calls").filter(|v| v.is_boolean()) {
            out.insert("parallel_tool_calls".into(), v.clone());
        }
    }
    if let Some(f) = req.get("text").and_then(|t| t.get("format")).and_then(response_format) {
        out.insert("response_format".into(), f);
    }
    let echo = Echo {
        fields: ECHOED
            .iter()
            .filter_map(|k| req.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .collect(),
        dropped_tools: tools.dropped,
        names: tools.names,
        encrypted_reasoning: req
            .get("include")
            .and_then(Value::as_array)
            .is_some_and(|i| i.iter().any(|v| v == ENCRYPTED_REASONING)),
    };
    Ok((to_bytes(&Value::Object(out)), echo))
}

/// `text.format` → chat `response_format` (`None` for plain text).
fn response_format(format: &Value) -> Option<Value> {
    match format.get("type").and_then(Value::as_str) {
        Some("json_schema") => {
            let mut schema = Object::new();
            for k in ["name", "schema", "strict", "description"] {
                if let Some(v) = format.get(k) {
                    schema.insert(k.into(), v.clone());
                }
            }
            Some(json!({ "type": "json_schema", "json_schema": schema }))
        }
        Some("json_object") => Some(json!({ "type": "json_object" })),
        _ => None,
    }
}

/// `instructions` and `input` → chat messages.
fn messages(req: &Object, names: &ToolNames, keep_thinking: bool) -> Result<Vec<Value>, BodyError> {
    let mut c = Conversation {
        messages: Vec::new(),
        thinking: Vec::new(),
        keep_thinking,
        names,
    };
    if let Some(instructions) = req.get("instructions").and_then(Value::as_str) {
        c.messages.push(json!({ "role": "system", "content": instructions }));
    }
    match req.get("input") {
        Some(Value::String(s)) => c.messages.push(json!({ "role": "user", "content": s })),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                c.item(item, i)?;
            }
        }
        None => {
            return Err(BodyError {
                message: "you must provide `input`".into(),
                param: Some("input".into()),
                code: "missing_required_parameter",
            });
        }
        Some(_) => return Err(invalid("`input` must be a string or an array of items", Some("input"))),
    }
    Ok(c.messages)
}

/// Input items turned into chat messages, one at a time.
struct Conversation<'a> {
    messages: Vec<Value>,
    /// Signed thinking from reasoning items, waiting for the assistant message it belongs to.
    thinking: Vec<Value>,
    /// The upstream takes thinking back (`BridgeOptions::anthropic_thinking`).
    keep_thinking: bool,
    names: &'a ToolNames,
}

impl Conversation<'_> {
    fn item(&mut self, item: &Value, i: usize) -> Result<(), BodyError> {
        match item.get("type").and_then(Value::as_str) {
            None | Some("message") => self.message(item, i)?,
            Some("function_call" | "custom_tool_call") => self.function_call(item),
            Some("function_call_output" | "custom_tool_call_output") => {
                let output = match item.get("output") {
                    Some(Value::String(s)) => s.clone(),
                    other => content_text(other),
                };
                let call_id = item.get("call_id").cloned().unwrap_or_default();
                self.push(json!({ "role": "tool", "tool_call_id": call_id, "content": output }));
            }
            // Reasoning items carry the model's hidden state, which chat has no place for; only
            // Anthropic's signed thinking, sealed by this bridge, goes back, on the next
            // assistant message, and only to Anthropic.
            Some("reasoning") => {
                if !self.keep_thinking {
                    return Ok(());
                }
                if let Some(blocks) = item
                    .get("encrypted_content")
                    .and_then(Value::as_str)
                    .and_then(open_thinking)
                {
                    self.thinking.extend(blocks);
                }
            }
            // Its tools joined the request's tools (`responses_tools::tools`).
            Some("additional_tools") => {}
            Some(other) => {
                return Err(unsupported(
                    format!("input[{i}]: item type `{other}` cannot be bridged to chat completions"),
                    Some(&format!("input[{i}].type")),
                ));
            }
        }
        Ok(())
    }

    fn message(&mut self, item: &Value, i: usize) -> Result<(), BodyError> {
        let role = item.get("role").and_then(Value::as_str).unwrap_or("user");
        let role = if role == "developer" { "system" } else { role };
        let content = match (role, item.get("content")) {
            (_, Some(Value::String(s))) => Value::String(s.clone()),
            ("user", Some(Value::Array(parts))) => {
                Value::Array(parts.iter().map(|p| user_part(p, i)).collect::<Result<_, _>>()?)
            }
            (_, parts) => Value::String(content_text(parts)),
        };
        self.push(json!({ "role": role, "content": content }));
        Ok(())
    }

    fn function_call(&mut self, item: &Value) {
        let call = chat_call(item, self.names);
        // Parallel calls arrive as one item each; chat wants them on one assistant message.
        match self.messages.last_mut() {
            Some(last) if last.get("role").and_then(Value::as_str) == Some("assistant") => {
                if let Some(calls) = last.get_mut("tool_calls").and_then(Value::as_array_mut) {
                    calls.push(call);
                } else {
                    last["tool_calls"] = json!([call]);
                }
                self.attach_thinking();
            }
            _ => self.push(json!({ "role": "assistant", "content": null, "tool_calls": [call] })),
        }
    }

    /// Appends a message; waiting thinking goes on it when it is the assistant's, and is
    /// forgotten at any other turn (it belonged to an answer the client did not send back).
    fn push(&mut self, message: Value) {
        let assistant = message.get("role").and_then(Value::as_str) == Some("assistant");
        self.messages.push(message);
        if assistant {
            self.attach_thinking();
        } else {
            self.thinking.clear();
        }
    }

    fn attach_thinking(&mut self) {
        if self.thinking.is_empty() {
            return;
        }
        let Some(last) = self.messages.last_mut() else { return };
        let mut blocks = last
            .get("thinking_blocks")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        blocks.append(&mut self.thinking);
        for (k, v) in thinking_fields(blocks) {
            last[k.as_str()] = v;
        }
    }
}

fn user_part(p: &Value, i: usize) -> Result<Value, BodyError> {
    match p.get("type").and_then(Value::as_str) {
        Some("input_text" | "output_text") => {
            Ok(json!({ "type": "text", "text": p.get("text").cloned().unwrap_or_default() }))
        }
        Some("input_image") => {
            let url = p
                .get("image_url")
                .and_then(Value::as_str)
                .ok_or_else(|| unsupported(format!("input[{i}]: images must be given by image_url"), Some("input")))?;
            let mut image = json!({ "url": url });
            if let Some(detail) = p.get("detail") {
                image["detail"] = detail.clone();
            }
            Ok(json!({ "type": "image_url", "image_url": image }))
        }
        other => Err(unsupported(
            format!(
                "input[{i}]: content type `{}` cannot be bridged to chat completions",
                other.unwrap_or("?")
            ),
            Some("input"),
        )),
    }
}

/// A chat completion → a `response` object. `None` when the body is not a chat completion.
pub fn reply(body: &[u8], echo: &Echo) -> Option<bytes::Bytes> {
    let c: Value = serde_json::from_slice(body).ok()?;
    let choice = c.get("choices")?.as_array()?.first()?;
    let message = choice.get("message").unwrap_or(&Value::Null);
    let mut output = Vec::new();
    let blocks = message
        .get("thinking_blocks")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let reasoning = reasoning_text(message).unwrap_or_default();
    let sealed = echo.seal(blocks);
    if !reasoning.is_empty() || sealed.is_some() {
        output.push(reasoning_item(
            &new_id("rs_"),
            reasoning,
            sealed.as_deref(),
            "completed",
        ));
    }
    let text = content_text(message.get("content"));
    if !text.is_empty() {
        output.push(message_item(&new_id("msg_"), &text, "completed"));
    }
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let arguments = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("{}");
        let name = echo.call_name(call.pointer("/function/name").unwrap_or(&Value::Null));
        output.push(name.item(
            &name.item_id(),
            call.get("id").unwrap_or(&Value::Null),
            arguments,
            "completed",
        ));
    }
    let (status, incomplete) = status(choice.get("finish_reason").and_then(Value::as_str));
    let created = c.get("created").and_then(Value::as_u64).unwrap_or_else(now_secs);
    let mut r = echo.response(
        &new_id("resp_"),
        created,
        c.get("model").unwrap_or(&Value::Null),
        status,
    );
    r["incomplete_details"] = incomplete;
    r["output"] = Value::Array(output);
    r["usage"] = usage(c.get("usage"));
    Some(to_bytes(&r))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODEX: &str = include_str!("../../../tests/fixtures/responses/codex_request.json");

    fn translate_with(req: &Value, hosted_tools: HostedTools) -> Result<(Value, Echo), BodyError> {
        let options = BridgeOptions {
            hosted_tools,
            ..BridgeOptions::default()
        };
        let (body, echo) = request(&to_bytes(req), &options)?;
        Ok((serde_json::from_slice(&body).unwrap(), echo))
    }

    fn translate(req: Value) -> (Value, Echo) {
        translate_with(&req, HostedTools::Drop).unwrap()
    }

    /// As the bridge translates for an Anthropic upstream.
    fn translate_for_anthropic(req: &Value) -> Value {
        let options = BridgeOptions {
            anthropic_thinking: true,
            ..BridgeOptions::default()
        };
        serde_json::from_slice(&request(&to_bytes(req), &options).unwrap().0).unwrap()
    }

    fn answer(echo: &Echo, message: Value, usage: Value) -> Value {
        let completion = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1741476542, "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": usage});
        serde_json::from_slice(&reply(&to_bytes(&completion), echo).unwrap()).unwrap()
    }

    #[test]
    fn string_input_and_instructions_become_messages() {
        let (out, _) = translate(
            json!({"model": "gpt-4.1", "instructions": "Talk like a pirate.", "input": "Are semicolons optional?", "max_output_tokens": 50}),
        );
        assert_eq!(
            out["messages"],
            json!([{"role": "system", "content": "Talk like a pirate."}, {"role": "user", "content": "Are semicolons optional?"}])
        );
        assert_eq!(out["max_completion_tokens"], json!(50));
    }

    #[test]
    fn items_function_calls_and_outputs_translate() {
        let (out, _) = translate(json!({
            "model": "m",
            "input": [
                {"role": "developer", "content": "Be exact."},
                {"role": "user", "content": [{"type": "input_text", "text": "What is in this image?"}, {"type": "input_image", "image_url": "https://x/y.jpg"}]},
                {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"location\":\"Paris\"}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "{\"temperature\":18}"}
            ],
            "tools": [{"type": "function", "name": "get_weather", "description": "d", "parameters": {"type": "object"}, "strict": true}],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": true}}
        }));
        assert_eq!(out["messages"][0]["role"], json!("system"));
        assert_eq!(
            out["messages"][1]["content"][1],
            json!({"type": "image_url", "image_url": {"url": "https://x/y.jpg"}})
        );
        assert_eq!(
            out["messages"][2]["tool_calls"][0]["function"]["name"],
            json!("get_weather")
        );
        assert_eq!(
            out["messages"][3],
            json!({"role": "tool", "tool_call_id": "call_1", "content": "{\"temperature\":18}"})
        );
        assert_eq!(out["tools"][0]["function"]["strict"], json!(true));
        assert_eq!(
            out["tool_choice"],
            json!({"type": "function", "function": {"name": "get_weather"}})
        );
        assert_eq!(out["response_format"]["json_schema"]["name"], json!("w"));
    }

    #[test]
    fn a_codex_request_becomes_a_chat_request_any_chat_api_takes() {
        let codex: Value = serde_json::from_str(CODEX).unwrap();
        let (out, echo) = translate(codex);
        let mut keys: Vec<&str> = out.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "messages",
                "model",
                "parallel_tool_calls",
                "prompt_cache_key",
                "reasoning_effort",
                "stream",
                "tool_choice",
                "tools"
            ],
            "nothing only the Responses API knows (store, include, client_metadata, reasoning, text)"
        );
        assert_eq!(out["reasoning_effort"], "medium");
        assert_eq!(out["parallel_tool_calls"], false);
        assert_eq!(echo.dropped_tools, ["web_search"]);
        let tools = out["tools"].as_array().unwrap();
        assert_eq!(tools.len(), 12, "7 functions and the namespace's 5; web_search dropped");
        assert!(tools.iter().all(|t| t["type"] == "function"));
        assert_eq!(tools[7]["function"]["name"], "multi_agent_v1__spawn_agent");
        assert_eq!(tools[7]["function"]["parameters"]["required"], json!(["message"]));
        let m = out["messages"].as_array().unwrap();
        let roles: Vec<&str> = m.iter().map(|m| m["role"].as_str().unwrap()).collect();
        assert_eq!(
            roles,
            [
                "system",
                "system",
                "user",
                "user",
                "assistant",
                "tool",
                "assistant",
                "tool",
                "assistant",
                "user"
            ],
            "OpenAI's own encrypted reasoning is not sent"
        );
        assert_eq!(m[4]["tool_calls"][0]["function"]["name"], "exec_command");
        assert!(m[4].get("thinking_blocks").is_none());
        assert_eq!(m[6]["tool_calls"][0]["function"]["name"], "multi_agent_v1__spawn_agent");
        assert_eq!(m[6]["tool_calls"][0]["id"], "call_spawn");
        assert_eq!(m[8]["content"], "A sub-agent is on it.");
    }

    #[test]
    fn hosted_tools_are_refused_when_the_bridge_is_told_to() {
        let codex: Value = serde_json::from_str(CODEX).unwrap();
        let e = translate_with(&codex, HostedTools::Reject).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools[8].type"));
        assert_eq!(e.code, "unsupported_value");
    }

    #[test]
    fn with_only_hosted_tools_the_chat_request_has_no_tool_fields() {
        let (out, echo) = translate(
            json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["vs_1"]}],
                                           "tool_choice": {"type": "web_search"}, "parallel_tool_calls": true}),
        );
        assert_eq!(echo.dropped_tools, ["web_search", "file_search"]);
        for k in ["tools", "tool_choice", "parallel_tool_calls"] {
            assert!(out.get(k).is_none(), "{k} without tools is refused by chat");
        }
    }

    #[test]
    fn stateful_and_unknown_features_are_refused() {
        let prev = json!({"model": "m", "input": "x", "previous_response_id": "resp_1"});
        assert_eq!(
            translate_with(&prev, HostedTools::Drop).unwrap_err().param.as_deref(),
            Some("previous_response_id")
        );
        let item = json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]});
        assert_eq!(
            translate_with(&item, HostedTools::Drop).unwrap_err().param.as_deref(),
            Some("input[0].type")
        );
        let missing = json!({"model": "m"});
        assert_eq!(
            translate_with(&missing, HostedTools::Drop).unwrap_err().code,
            "missing_required_parameter"
        );
    }

    #[test]
    fn chat_completion_becomes_a_response() {
        let (_, echo) = translate(json!({"model": "m", "input": "x", "temperature": 0.2}));
        let body = reply(br#"{"id":"chatcmpl-1","object":"chat.completion","created":1741476542,"model":"gpt-4.1",
            "choices":[{"index":0,"message":{"role":"assistant","content":"Arr","tool_calls":[{"id":"call_9","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}],
            "usage":{"prompt_tokens":36,"completion_tokens":87,"total_tokens":123}}"#, &echo).unwrap();
        let r: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(r["object"], json!("response"));
        assert_eq!(r["status"], json!("completed"));
        assert_eq!(r["temperature"], json!(0.2));
        assert_eq!(
            r["output"][0]["content"][0],
            json!({"type": "output_text", "text": "Arr", "annotations": []})
        );
        assert_eq!(r["output"][1]["call_id"], json!("call_9"));
        assert!(r["output"][1].get("namespace").is_none());
        assert_eq!(r["usage"]["total_tokens"], json!(123));
        let cut = reply(
            br#"{"model":"m","choices":[{"index":0,"message":{"content":"a"},"finish_reason":"length"}]}"#,
            &echo,
        )
        .unwrap();
        let r: Value = serde_json::from_slice(&cut).unwrap();
        assert_eq!(
            (r["status"].clone(), r["incomplete_details"]["reason"].clone()),
            (json!("incomplete"), json!("max_output_tokens"))
        );
    }

    #[test]
    fn calls_of_flattened_tools_come_back_namespaced() {
        let (_, echo) = translate(serde_json::from_str(CODEX).unwrap());
        let r = answer(
            &echo,
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_w", "type": "function", "function": {"name": "multi_agent_v1__wait_agent", "arguments": "{\"ids\":[\"agent-1\"]}"}}]}),
            json!({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}),
        );
        let call = &r["output"][0];
        assert_eq!(
            (&call["type"], &call["namespace"], &call["name"], &call["call_id"]),
            (
                &json!("function_call"),
                &json!("multi_agent_v1"),
                &json!("wait_agent"),
                &json!("call_w")
            )
        );
    }

    #[test]
    fn reasoning_and_usage_details_reach_the_response() {
        let (_, echo) = translate(json!({"model": "m", "input": "x"}));
        let r = answer(
            &echo,
            json!({"role": "assistant", "content": "42", "reasoning_content": "Six times seven."}),
            json!({"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
                   "prompt_tokens_details": {"cached_tokens": 100}, "completion_tokens_details": {"reasoning_tokens": 12}}),
        );
        assert_eq!(r["output"][0]["type"], "reasoning");
        assert!(r["output"][0]["id"].as_str().unwrap().starts_with("rs_"));
        assert_eq!(
            r["output"][0]["summary"],
            json!([{"type": "summary_text", "text": "Six times seven."}])
        );
        assert!(r["output"][0].get("encrypted_content").is_none());
        assert_eq!(r["output"][1]["content"][0]["text"], "42");
        assert_eq!(r["usage"]["input_tokens_details"]["cached_tokens"], 100);
        assert_eq!(r["usage"]["output_tokens_details"]["reasoning_tokens"], 12);
        let r = answer(
            &echo,
            json!({"role": "assistant", "content": "42", "reasoning": "Ollama's name."}),
            Value::Null,
        );
        assert_eq!(r["output"][0]["summary"][0]["text"], "Ollama's name.");
    }

    #[test]
    fn signed_thinking_goes_out_encrypted_and_comes_back_on_the_assistant_message() {
        let mut codex: Value = serde_json::from_str(CODEX).unwrap();
        let (_, echo) = translate(codex.clone());
        let blocks = json!([{"type": "thinking", "thinking": "List first.", "signature": "EqQBCgIYAhIM"}]);
        let r = answer(
            &echo,
            json!({"role": "assistant", "content": null, "reasoning_content": "List first.", "thinking_blocks": blocks,
                   "tool_calls": [{"id": "call_2", "type": "function", "function": {"name": "exec_command", "arguments": "{\"cmd\":\"ls\"}"}}]}),
            Value::Null,
        );
        let reasoning = r["output"][0].clone();
        assert!(reasoning["encrypted_content"].is_string(), "{reasoning}");
        // The next turn: Codex sends the output items back as input.
        let input = codex["input"].as_array_mut().unwrap();
        input.push(json!({"type": "reasoning", "summary": reasoning["summary"], "encrypted_content": reasoning["encrypted_content"]}));
        input.push(json!({"type": "function_call", "name": "exec_command", "arguments": "{\"cmd\":\"ls\"}", "call_id": "call_2"}));
        input.push(json!({"type": "function_call_output", "call_id": "call_2", "output": "a.txt"}));
        let out = translate_for_anthropic(&codex);
        let m = out["messages"].as_array().unwrap();
        let carrier = &m[m.len() - 2];
        assert_eq!(carrier["tool_calls"][0]["id"], "call_2");
        assert_eq!(carrier["reasoning_content"], "List first.");
        assert_eq!(carrier["thinking_blocks"], blocks);
        // After a failover to another kind of upstream, the same input carries no thinking.
        let (other, _) = translate(codex);
        let m = other["messages"].as_array().unwrap();
        let carrier = &m[m.len() - 2];
        assert_eq!(carrier["tool_calls"][0]["id"], "call_2");
        assert!(carrier.get("thinking_blocks").is_none() && carrier.get("reasoning_content").is_none());
        let (_, plain) = translate(json!({"model": "m", "input": "x"}));
        let r = answer(
            &plain,
            json!({"role": "assistant", "content": "a", "reasoning_content": "t", "thinking_blocks": blocks}),
            Value::Null,
        );
        assert!(
            r["output"][0].get("encrypted_content").is_none(),
            "not asked for in `include`"
        );
    }
}
