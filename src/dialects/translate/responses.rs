//! The Responses API (`POST /v1/responses`) bridged to chat completions: request → chat request,
//! chat completion → `response` object (the stream half is in `responses_stream`).
//!
//! The gateway keeps no state, so `previous_response_id` and stored items are refused; hosted
//! tools (web search, file search...) have no chat equivalent and are refused too.
//! Reference: <https://platform.openai.com/docs/api-reference/responses>.

use serde_json::{Value, json};

use super::{Object, content_text, invalid, new_id, now_secs, parse_object, to_bytes, unsupported};
use crate::dialects::BodyError;
use crate::domain::Usage;

pub use super::responses_stream::ToResponseEvents;

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

/// What the reply needs from the request: the fields a `response` object repeats.
#[derive(Debug, Clone, Default)]
pub struct Echo {
    fields: Object,
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
}

/// A Responses request body → a chat completions request body, and what the reply must echo.
pub fn request(body: &[u8]) -> Result<(bytes::Bytes, Echo), BodyError> {
    let req = parse_object(body)?;
    if req.get("previous_response_id").is_some_and(|v| !v.is_null()) {
        return Err(unsupported(
            "the gateway stores no responses: send the whole conversation in `input` instead of previous_response_id",
            Some("previous_response_id"),
        ));
    }
    let mut messages = Vec::new();
    if let Some(instructions) = req.get("instructions").and_then(Value::as_str) {
        messages.push(json!({ "role": "system", "content": instructions }));
    }
    match req.get("input") {
        Some(Value::String(s)) => messages.push(json!({ "role": "user", "content": s })),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                input_item(item, i, &mut messages)?;
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
    let mut out = Object::new();
    out.insert("model".into(), req.get("model").cloned().unwrap_or(Value::Null));
    out.insert("messages".into(), Value::Array(messages));
    for (from, to) in [
        ("max_output_tokens", "max_tokens"),
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("parallel_tool_calls", "parallel_tool_calls"),
        ("user", "user"),
        ("stream", "stream"),
    ] {
        if let Some(v) = req.get(from).filter(|v| !v.is_null()) {
            out.insert(to.into(), v.clone());
        }
    }
    if let Some(effort) = req
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .filter(|v| v.is_string())
    {
        out.insert("reasoning_effort".into(), effort.clone());
    }
    if let Some(tools) = req.get("tools").and_then(Value::as_array) {
        out.insert(
            "tools".into(),
            Value::Array(tools.iter().map(tool).collect::<Result<_, _>>()?),
        );
    }
    if let Some(choice) = req.get("tool_choice").filter(|v| !v.is_null()) {
        out.insert("tool_choice".into(), tool_choice(choice)?);
    }
    if let Some(format) = req.get("text").and_then(|t| t.get("format")) {
        match format.get("type").and_then(Value::as_str) {
            Some("json_schema") => {
                let mut schema = Object::new();
                for k in ["name", "schema", "strict", "description"] {
                    if let Some(v) = format.get(k) {
                        schema.insert(k.into(), v.clone());
                    }
                }
                out.insert(
                    "response_format".into(),
                    json!({ "type": "json_schema", "json_schema": schema }),
                );
            }
            Some("json_object") => {
                out.insert("response_format".into(), json!({ "type": "json_object" }));
            }
            _ => {}
        }
    }
    let fields = ECHOED
        .iter()
        .filter_map(|k| req.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect();
    Ok((to_bytes(&Value::Object(out)), Echo { fields }))
}

fn input_item(item: &Value, i: usize, out: &mut Vec<Value>) -> Result<(), BodyError> {
    match item.get("type").and_then(Value::as_str) {
        None | Some("message") => {
            let role = item.get("role").and_then(Value::as_str).unwrap_or("user");
            let role = if role == "developer" { "system" } else { role };
            let content = match (role, item.get("content")) {
                (_, Some(Value::String(s))) => Value::String(s.clone()),
                ("user", Some(Value::Array(parts))) => {
                    Value::Array(parts.iter().map(|p| user_part(p, i)).collect::<Result<_, _>>()?)
                }
                (_, parts) => Value::String(content_text(parts)),
            };
            out.push(json!({ "role": role, "content": content }));
        }
        Some("function_call") => {
            let call = json!({
                "id": item.get("call_id").cloned().unwrap_or_default(),
                "type": "function",
                "function": {
                    "name": item.get("name").cloned().unwrap_or_default(),
                    "arguments": item.get("arguments").cloned().unwrap_or_else(|| json!("{}")),
                },
            });
            match out.last_mut() {
                Some(last) if last.get("role").and_then(Value::as_str) == Some("assistant") => {
                    if let Some(calls) = last.get_mut("tool_calls").and_then(Value::as_array_mut) {
                        calls.push(call);
                    } else {
                        last["tool_calls"] = json!([call]);
                    }
                }
                _ => out.push(json!({ "role": "assistant", "content": null, "tool_calls": [call] })),
            }
        }
        Some("function_call_output") => {
            let output = match item.get("output") {
                Some(Value::String(s)) => s.clone(),
                other => content_text(other),
            };
            out.push(json!({ "role": "tool", "tool_call_id": item.get("call_id").cloned().unwrap_or_default(), "content": output }));
        }
        // Reasoning items carry the model's hidden state, which chat has no place for.
        Some("reasoning") => {}
        Some(other) => {
            return Err(unsupported(
                format!("input[{i}]: item type `{other}` cannot be bridged to chat completions"),
                Some("input"),
            ));
        }
    }
    Ok(())
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

fn tool(t: &Value) -> Result<Value, BodyError> {
    if t.get("type").and_then(Value::as_str) != Some("function") {
        return Err(unsupported(
            format!(
                "tool type `{}` is hosted by OpenAI and cannot be bridged; only function tools are",
                t.get("type").and_then(Value::as_str).unwrap_or("?")
            ),
            Some("tools"),
        ));
    }
    let mut f = Object::new();
    for k in ["name", "description", "parameters", "strict"] {
        if let Some(v) = t.get(k).filter(|v| !v.is_null()) {
            f.insert(k.into(), v.clone());
        }
    }
    Ok(json!({ "type": "function", "function": f }))
}

fn tool_choice(choice: &Value) -> Result<Value, BodyError> {
    match choice {
        Value::String(_) => Ok(choice.clone()),
        v if v.get("type").and_then(Value::as_str) == Some("function") => {
            Ok(json!({ "type": "function", "function": { "name": v.get("name").cloned().unwrap_or_default() } }))
        }
        _ => Err(unsupported(
            "tool_choice may be auto, none, required or a function",
            Some("tool_choice"),
        )),
    }
}

/// Responses' `usage` for chat usage.
pub(super) fn usage(u: Option<Usage>) -> Value {
    let u = u.unwrap_or_default();
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": { "cached_tokens": 0 },
        "output_tokens": u.completion_tokens,
        "output_tokens_details": { "reasoning_tokens": 0 },
        "total_tokens": u.total_tokens,
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

/// A function call output item.
pub(super) fn function_item(id: &str, call_id: &Value, name: &Value, arguments: &str, status: &str) -> Value {
    json!({ "type": "function_call", "id": id, "call_id": call_id, "name": name, "arguments": arguments, "status": status })
}

/// A chat completion → a `response` object. `None` when the body is not a chat completion.
pub fn reply(body: &[u8], echo: &Echo) -> Option<bytes::Bytes> {
    let c: Value = serde_json::from_slice(body).ok()?;
    let choice = c.get("choices")?.as_array()?.first()?;
    let message = choice.get("message").unwrap_or(&Value::Null);
    let mut output = Vec::new();
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
        let name = call.pointer("/function/name").cloned().unwrap_or_default();
        output.push(function_item(
            &new_id("fc_"),
            call.get("id").unwrap_or(&Value::Null),
            &name,
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
    let u: Option<Usage> = c.get("usage").and_then(|u| serde_json::from_value(u.clone()).ok());
    r["usage"] = usage(u);
    Some(to_bytes(&r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(req: Value) -> (Value, Echo) {
        let (body, echo) = request(&to_bytes(&req)).unwrap();
        (serde_json::from_slice(&body).unwrap(), echo)
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
        assert_eq!(out["max_tokens"], json!(50));
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
    fn stateful_and_hosted_features_are_refused() {
        let prev = json!({"model": "m", "input": "x", "previous_response_id": "resp_1"});
        assert_eq!(
            request(&to_bytes(&prev)).unwrap_err().param.as_deref(),
            Some("previous_response_id")
        );
        let web = json!({"model": "m", "input": "x", "tools": [{"type": "web_search_preview"}]});
        assert_eq!(request(&to_bytes(&web)).unwrap_err().code, "unsupported_value");
        let missing = json!({"model": "m"});
        assert_eq!(
            request(&to_bytes(&missing)).unwrap_err().code,
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
}
