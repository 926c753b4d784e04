//! An OpenAI-dialect client in front of Google's Gemini API: chat request → `generateContent`
//! request, `GenerateContentResponse` → chat completion (the stream half is in `gemini_stream`),
//! and embeddings requests → `embedContent` / `batchEmbedContents` and back.
//!
//! References: <https://ai.google.dev/api/generate-content>,
//! <https://ai.google.dev/gemini-api/docs/function-calling>, <https://ai.google.dev/api/embeddings>,
//! <https://ai.google.dev/gemini-api/docs/thinking>, <https://ai.google.dev/gemini-api/docs/thought-signatures>.

use serde_json::{Value, json};

use super::{Object, arguments_value, content_text, data_url, invalid, new_id, now_secs};
use super::{parse_object, stop_list, to_bytes, unsupported};
use crate::dialects::BodyError;
use crate::dialects::wire::chat_usage_json;
use crate::domain::Usage;

pub use super::gemini_stream::ToChatChunks;

/// A chat completions request body → a `generateContent` request body (the model goes in the
/// URL, not the body).
pub fn request(body: &[u8]) -> Result<bytes::Bytes, BodyError> {
    let chat = parse_object(body)?;
    let list = chat
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("`messages` must be an array", Some("messages")))?;
    let mut system = Vec::new();
    let mut contents: Vec<(String, Vec<Value>)> = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let (role, parts) = match m.get("role").and_then(Value::as_str).unwrap_or_default() {
            "system" | "developer" => {
                system.push(json!({ "text": content_text(m.get("content")) }));
                continue;
            }
            "user" => ("user", user_parts(m.get("content"), i)?),
            "assistant" => ("model", model_parts(m)),
            "tool" => ("user", vec![function_response(m, list)]),
            other => {
                return Err(invalid(
                    format!("messages[{i}].role `{other}` is not supported"),
                    Some("messages"),
                ));
            }
        };
        // An empty message is skipped before merging, or its neighbours would end up as two
        // turns of the same role.
        if parts.is_empty() {
            continue;
        }
        match contents.last_mut() {
            Some((last, existing)) if last == role => existing.extend(parts),
            _ => contents.push((role.to_owned(), parts)),
        }
    }
    let mut out = Object::new();
    let contents: Vec<Value> = contents
        .into_iter()
        .map(|(role, parts)| json!({ "role": role, "parts": parts }))
        .collect();
    out.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({ "parts": system }));
    }
    let config = generation_config(&chat)?;
    if !config.is_empty() {
        out.insert("generationConfig".into(), Value::Object(config));
    }
    if let Some(tools) = chat.get("tools").and_then(Value::as_array) {
        let declarations: Vec<Value> = tools.iter().map(declaration).collect::<Result<_, _>>()?;
        out.insert("tools".into(), json!([{ "functionDeclarations": declarations }]));
    }
    if let Some(config) = tool_config(chat.get("tool_choice"))? {
        out.insert("toolConfig".into(), config);
    }
    Ok(to_bytes(&Value::Object(out)))
}

fn generation_config(chat: &Object) -> Result<Object, BodyError> {
    let mut config = Object::new();
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ] {
        if let Some(v) = chat.get(from).filter(|v| v.is_number()) {
            config.insert(to.into(), v.clone());
        }
    }
    if let Some(n) = chat
        .get("max_completion_tokens")
        .or_else(|| chat.get("max_tokens"))
        .filter(|v| v.is_u64())
    {
        config.insert("maxOutputTokens".into(), n.clone());
    }
    if let Some(stop) = stop_list(chat.get("stop")) {
        config.insert("stopSequences".into(), stop);
    }
    if let Some(thinking) = thinking_config(chat.get("reasoning_effort"))? {
        config.insert("thinkingConfig".into(), thinking);
    }
    if chat.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Err(unsupported(
            "the gateway asks Gemini for one candidate: `n` must be 1",
            Some("n"),
        ));
    }
    match chat
        .get("response_format")
        .and_then(|f| f.get("type"))
        .and_then(Value::as_str)
    {
        Some("json_object") => {
            config.insert("responseMimeType".into(), json!("application/json"));
        }
        Some("json_schema") => {
            config.insert("responseMimeType".into(), json!("application/json"));
            if let Some(schema) = chat
                .get("response_format")
                .and_then(|f| f.pointer("/json_schema/schema"))
            {
                config.insert("responseJsonSchema".into(), schema.clone());
            }
        }
        _ => {}
    }
    Ok(config)
}

/// Chat's `reasoning_effort` as a `thinkingConfig`: the token budgets Gemini's own OpenAI
/// compatibility layer uses (low 1K, medium 8K, high 24K, `none` 0), which Gemini 3 models still
/// accept beside their `thinkingLevel`. Thoughts are asked for whenever the model may think, so
/// they reach the client as `reasoning_content`.
fn thinking_config(effort: Option<&Value>) -> Result<Option<Value>, BodyError> {
    let effort = match effort {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(invalid("`reasoning_effort` must be a string", Some("reasoning_effort"))),
    };
    let budget = match effort {
        "none" => return Ok(Some(json!({ "thinkingBudget": 0 }))),
        "minimal" => 512,
        "low" => 1024,
        "medium" => 8192,
        "high" => 24576,
        "xhigh" => 32768,
        other => {
            return Err(invalid(
                format!("`reasoning_effort` must be none, minimal, low, medium, high or xhigh, got `{other}`"),
                Some("reasoning_effort"),
            ));
        }
    };
    Ok(Some(json!({ "thinkingBudget": budget, "includeThoughts": true })))
}

/// Marks where a tool call's id ends and the Gemini thought signature of its call begins: clients
/// echo ids untouched (through every bridge), and Gemini 3 refuses a function-call history without
/// the signatures it gave. URL-safe base64 keeps the id within `[A-Za-z0-9_-]`.
const SIGNATURE_MARK: &str = "__ts_";

/// `id` carrying `signature` (standard base64, as Gemini sends it).
fn id_with_signature(id: &str, signature: &str) -> String {
    let safe: String = signature
        .chars()
        .filter(|c| *c != '=')
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    format!("{id}{SIGNATURE_MARK}{safe}")
}

/// The thought signature a chat tool call carries: Gemini's OpenAI-compatible
/// `extra_content.google.thought_signature`, else the one kept in its id.
fn signature_of(call: &Value) -> Option<String> {
    if let Some(s) = call
        .pointer("/extra_content/google/thought_signature")
        .and_then(Value::as_str)
    {
        return Some(s.to_owned());
    }
    let id = call.get("id").and_then(Value::as_str)?;
    let (_, safe) = id.split_once(SIGNATURE_MARK)?;
    let mut signature: String = safe
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while !signature.len().is_multiple_of(4) {
        signature.push('=');
    }
    (!signature.is_empty()).then_some(signature)
}

fn user_parts(content: Option<&Value>, i: usize) -> Result<Vec<Value>, BodyError> {
    let parts = match content {
        Some(Value::String(s)) => return Ok(vec![json!({ "text": s })]),
        Some(Value::Array(parts)) => parts,
        _ => return Ok(Vec::new()),
    };
    parts
        .iter()
        .map(|p| match p.get("type").and_then(Value::as_str) {
            Some("text") => Ok(json!({ "text": p.get("text").cloned().unwrap_or_default() })),
            Some("image_url") => {
                let url = p.pointer("/image_url/url").and_then(Value::as_str).unwrap_or_default();
                Ok(match data_url(url) {
                    Some((mime, data)) => json!({ "inlineData": { "mimeType": mime, "data": data } }),
                    None => json!({ "fileData": { "fileUri": url } }),
                })
            }
            Some("input_audio") => {
                let format = p
                    .pointer("/input_audio/format")
                    .and_then(Value::as_str)
                    .unwrap_or("wav");
                let data = p.pointer("/input_audio/data").cloned().unwrap_or_default();
                Ok(json!({ "inlineData": { "mimeType": format!("audio/{format}"), "data": data } }))
            }
            other => Err(unsupported(
                format!(
                    "messages[{i}]: content part type `{}` cannot be sent to Gemini",
                    other.unwrap_or("?")
                ),
                Some("messages"),
            )),
        })
        .collect()
}

fn model_parts(m: &Value) -> Vec<Value> {
    let mut parts = Vec::new();
    let text = content_text(m.get("content"));
    if !text.is_empty() {
        parts.push(json!({ "text": text }));
    }
    for call in m.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
        let mut part = json!({ "functionCall": {
            "name": call.pointer("/function/name").cloned().unwrap_or_default(),
            "args": arguments_value(call.pointer("/function/arguments")),
        }});
        if let Some(signature) = signature_of(call) {
            part["thoughtSignature"] = Value::String(signature);
        }
        parts.push(part);
    }
    parts
}

/// A `tool` message → a `functionResponse` part; Gemini wants the function's name, which chat
/// carries only on the call, so it is looked up by `tool_call_id`.
fn function_response(m: &Value, all: &[Value]) -> Value {
    let call_id = m.get("tool_call_id").and_then(Value::as_str).unwrap_or_default();
    let name = all
        .iter()
        .filter_map(|x| x.get("tool_calls").and_then(Value::as_array))
        .flatten()
        .find(|c| c.get("id").and_then(Value::as_str) == Some(call_id))
        .and_then(|c| c.pointer("/function/name").cloned())
        .unwrap_or_else(|| Value::String(call_id.to_owned()));
    let text = content_text(m.get("content"));
    // A JSON object answer is passed as is; anything else is wrapped, as the docs show.
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ "result": text }),
    };
    json!({ "functionResponse": { "name": name, "response": response } })
}

fn declaration(t: &Value) -> Result<Value, BodyError> {
    if t.get("type").and_then(Value::as_str) != Some("function") {
        return Err(unsupported(
            "only `function` tools can be sent to Gemini",
            Some("tools"),
        ));
    }
    let f = t.get("function").unwrap_or(&Value::Null);
    let mut d = Object::new();
    d.insert("name".into(), f.get("name").cloned().unwrap_or_default());
    if let Some(desc) = f.get("description") {
        d.insert("description".into(), desc.clone());
    }
    if let Some(params) = f.get("parameters") {
        d.insert("parameters".into(), super::gemini_schema::schema(params));
    }
    Ok(Value::Object(d))
}

fn tool_config(choice: Option<&Value>) -> Result<Option<Value>, BodyError> {
    let config = match choice {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => json!({ "mode": "AUTO" }),
            "none" => json!({ "mode": "NONE" }),
            "required" => json!({ "mode": "ANY" }),
            other => return Err(invalid(format!("unknown tool_choice `{other}`"), Some("tool_choice"))),
        },
        Some(v) => match v.pointer("/function/name") {
            Some(name) => json!({ "mode": "ANY", "allowedFunctionNames": [name] }),
            None => return Err(invalid("tool_choice must name a function", Some("tool_choice"))),
        },
    };
    Ok(Some(json!({ "functionCallingConfig": config })))
}

/// Gemini's `finishReason` as an OpenAI `finish_reason`.
pub fn finish_reason(reason: &str, called: bool) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => "content_filter",
        _ if called => "tool_calls",
        _ => "stop",
    }
}

/// Gemini's `usageMetadata` as OpenAI's usage (thinking tokens are output, and its
/// `reasoning_tokens`; cached content is part of the prompt, and its `cached_tokens`).
pub fn usage(meta: Option<&Value>) -> Option<Usage> {
    let meta = meta?;
    let n = |k: &str| meta.get(k).and_then(Value::as_u64).unwrap_or(0);
    // Saturating: counts come from the upstream, and a hostile one must not overflow them.
    let prompt_tokens = n("promptTokenCount");
    let completion_tokens = n("candidatesTokenCount").saturating_add(n("thoughtsTokenCount"));
    Some(Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: n("totalTokenCount").max(prompt_tokens.saturating_add(completion_tokens)),
        cached_tokens: n("cachedContentTokenCount"),
        cache_write_tokens: 0,
        reasoning_tokens: n("thoughtsTokenCount"),
    })
}

/// Why a Gemini answer cannot become a chat completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// A safety filter blocked the prompt or the whole answer: a message for the client.
    Blocked(String),
    /// Not a `GenerateContentResponse`.
    Malformed,
}

/// The safety block a response reports, if it blocked everything.
pub(super) fn blocked(r: &Value) -> Option<String> {
    if let Some(reason) = r.pointer("/promptFeedback/blockReason").and_then(Value::as_str) {
        return Some(format!(
            "Gemini blocked the prompt (blockReason {reason}); rephrase the request or use another model"
        ));
    }
    let candidate = r.pointer("/candidates/0")?;
    let reason = candidate.get("finishReason").and_then(Value::as_str)?;
    let empty = candidate
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    (empty && finish_reason(reason, false) == "content_filter").then(|| {
        format!("Gemini blocked the answer (finishReason {reason}); rephrase the request or use another model")
    })
}

/// What a candidate's parts say, in chat's terms.
#[derive(Debug, Default)]
pub(super) struct Parts {
    /// The answer's text.
    pub text: String,
    /// The thought summaries (`thought: true` parts), chat's `reasoning_content`; never in `text`.
    pub reasoning: String,
    /// Function calls as chat `tool_calls`, each carrying its part's `thoughtSignature`.
    pub calls: Vec<Value>,
}

/// A candidate's parts; tool calls without a Gemini id are numbered from `first_call`.
pub(super) fn parts(candidate: &Value, first_call: usize) -> Parts {
    let mut out = Parts::default();
    for p in candidate
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(t) = p.get("text").and_then(Value::as_str) {
            if p.get("thought") == Some(&Value::Bool(true)) {
                out.reasoning.push_str(t);
            } else {
                out.text.push_str(t);
            }
        }
        if let Some(call) = p.get("functionCall") {
            let mut id = call
                .get("id")
                .and_then(Value::as_str)
                .map_or_else(|| format!("call_{}", first_call + out.calls.len()), str::to_owned);
            let signature = p.get("thoughtSignature").and_then(Value::as_str);
            if let Some(s) = signature {
                id = id_with_signature(&id, s);
            }
            let mut tool_call = json!({
                "id": id,
                "type": "function",
                "function": {
                    "name": call.get("name").cloned().unwrap_or_default(),
                    "arguments": call.get("args").map_or_else(|| "{}".to_owned(), Value::to_string),
                },
            });
            if let Some(s) = signature {
                tool_call["extra_content"] = json!({ "google": { "thought_signature": s } });
            }
            out.calls.push(tool_call);
        }
    }
    out
}

/// A `GenerateContentResponse` → a chat completion, its usage and text.
pub fn reply(body: &[u8], model: &str) -> Result<(bytes::Bytes, Option<Usage>, Option<String>), ReplyError> {
    let r: Value = serde_json::from_slice(body).map_err(|_| ReplyError::Malformed)?;
    if let Some(message) = blocked(&r) {
        return Err(ReplyError::Blocked(message));
    }
    let candidate = r.pointer("/candidates/0").ok_or(ReplyError::Malformed)?;
    let Parts { text, reasoning, calls } = parts(candidate, 0);
    let reason = candidate.get("finishReason").and_then(Value::as_str).unwrap_or("STOP");
    let mut message = json!({ "role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text.clone()) } });
    if !reasoning.is_empty() {
        message["reasoning_content"] = Value::String(reasoning);
    }
    let finish = finish_reason(reason, !calls.is_empty());
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let usage = usage(r.get("usageMetadata"));
    let out = json!({
        "id": r.get("responseId").and_then(Value::as_str).map_or_else(|| new_id("chatcmpl-"), |id| format!("chatcmpl-{id}")),
        "object": "chat.completion",
        "created": now_secs(),
        "model": r.get("modelVersion").and_then(Value::as_str).unwrap_or(model),
        "choices": [{ "index": 0, "message": message, "logprobs": null, "finish_reason": finish }],
        "usage": usage.as_ref().map(chat_usage_json),
    });
    Ok((to_bytes(&out), usage, (!text.is_empty()).then_some(text)))
}

/// Which embeddings method a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedMethod {
    /// One text: `:embedContent`.
    Single,
    /// Several: `:batchEmbedContents`.
    Batch,
}

/// An OpenAI embeddings request → the Gemini method and body for `model`.
pub fn embeddings_request(body: &[u8], model: &str) -> Result<(EmbedMethod, bytes::Bytes), BodyError> {
    let req = parse_object(body)?;
    let dims = req.get("dimensions").filter(|v| v.is_u64());
    let content = |text: &Value| {
        let mut c = json!({ "content": { "parts": [{ "text": text }] } });
        if let Some(d) = dims {
            c["outputDimensionality"] = d.clone();
        }
        c
    };
    match req.get("input") {
        Some(text @ Value::String(_)) => Ok((EmbedMethod::Single, to_bytes(&content(text)))),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            let requests: Vec<Value> = items
                .iter()
                .map(|t| {
                    let mut r = content(t);
                    r["model"] = json!(format!("models/{model}"));
                    r
                })
                .collect();
            Ok((EmbedMethod::Batch, to_bytes(&json!({ "requests": requests }))))
        }
        _ => Err(unsupported(
            "Gemini embeds text: `input` must be a string or an array of strings",
            Some("input"),
        )),
    }
}

/// An `embedContent` / `batchEmbedContents` answer → an OpenAI embeddings list.
pub fn embeddings_reply(body: &[u8], method: EmbedMethod, model: &str) -> Option<bytes::Bytes> {
    let r: Value = serde_json::from_slice(body).ok()?;
    let vectors: Vec<&Value> = match method {
        EmbedMethod::Single => vec![r.pointer("/embedding/values")?],
        EmbedMethod::Batch => r
            .get("embeddings")?
            .as_array()?
            .iter()
            .map(|e| e.get("values"))
            .collect::<Option<_>>()?,
    };
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| json!({ "object": "embedding", "index": i, "embedding": v }))
        .collect();
    Some(to_bytes(&json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": { "prompt_tokens": 0, "total_tokens": 0 },
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(chat: Value) -> Value {
        serde_json::from_slice(&request(&to_bytes(&chat)).unwrap()).unwrap()
    }

    #[test]
    fn roles_system_config_and_images_translate() {
        let out = translate(json!({
            "model": "gemini-2.5-flash",
            "messages": [
                {"role": "system", "content": "You are a cat."},
                {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}}]},
                {"role": "assistant", "content": "Meow"},
                {"role": "user", "content": "Again"}
            ],
            "temperature": 0.5, "max_tokens": 100, "stop": ["x"],
            "response_format": {"type": "json_object"}
        }));
        assert_eq!(out["systemInstruction"], json!({"parts": [{"text": "You are a cat."}]}));
        assert_eq!(
            out["contents"][0]["parts"][1],
            json!({"inlineData": {"mimeType": "image/jpeg", "data": "/9j/"}})
        );
        assert_eq!(
            out["contents"][1],
            json!({"role": "model", "parts": [{"text": "Meow"}]})
        );
        assert_eq!(
            out["generationConfig"],
            json!({"temperature": 0.5, "maxOutputTokens": 100, "stopSequences": ["x"], "responseMimeType": "application/json"})
        );
    }

    #[test]
    fn tools_calls_and_results_translate() {
        let out = translate(json!({
            "model": "g",
            "messages": [
                {"role": "user", "content": "Lights?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": "set_light", "arguments": "{\"on\":true}"}}]},
                {"role": "tool", "tool_call_id": "call_0", "content": "{\"ok\":true}"}
            ],
            "tools": [{"type": "function", "function": {"name": "set_light", "description": "d",
                "parameters": {"type": "object", "additionalProperties": false, "properties": {"on": {"type": "boolean"}}}}}],
            "tool_choice": {"type": "function", "function": {"name": "set_light"}}
        }));
        assert_eq!(
            out["contents"][1]["parts"][0],
            json!({"functionCall": {"name": "set_light", "args": {"on": true}}})
        );
        assert_eq!(
            out["contents"][2]["parts"][0],
            json!({"functionResponse": {"name": "set_light", "response": {"ok": true}}})
        );
        let decl = &out["tools"][0]["functionDeclarations"][0];
        assert!(decl["parameters"].get("additionalProperties").is_none());
        assert_eq!(
            out["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["set_light"]}})
        );
    }

    #[test]
    fn reply_becomes_a_chat_completion() {
        let (body, usage, text) = reply(br#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"set_light","args":{"on":true}}}],"role":"model"},"finishReason":"STOP","index":0}],
            "usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":5,"totalTokenCount":15},"modelVersion":"gemini-2.5-flash","responseId":"abc"}"#, "gemini-2.5-flash").unwrap();
        let c: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(c["choices"][0]["finish_reason"], json!("tool_calls"));
        assert_eq!(
            c["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            json!("{\"on\":true}")
        );
        assert_eq!(usage.unwrap().total_tokens, 15);
        assert!(text.is_none());
    }

    #[test]
    fn safety_blocks_are_errors() {
        let e = reply(
            br#"{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":5}}"#,
            "g",
        )
        .unwrap_err();
        assert!(matches!(e, ReplyError::Blocked(m) if m.contains("SAFETY")));
        let e = reply(br#"{"candidates":[{"finishReason":"SAFETY","index":0}]}"#, "g").unwrap_err();
        assert!(matches!(e, ReplyError::Blocked(_)));
        assert_eq!(reply(b"{}", "g").unwrap_err(), ReplyError::Malformed);
    }

    #[test]
    fn embeddings_translate_both_ways() {
        let (m, body) = embeddings_request(
            br#"{"model":"text-embedding-004","input":"hello","dimensions":8}"#,
            "text-embedding-004",
        )
        .unwrap();
        assert_eq!(m, EmbedMethod::Single);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            json!({"content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 8})
        );
        let (m, body) = embeddings_request(br#"{"model":"e","input":["a","b"]}"#, "e").unwrap();
        assert_eq!(m, EmbedMethod::Batch);
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap()["requests"][1]["model"],
            json!("models/e")
        );
        let out = embeddings_reply(
            br#"{"embeddings":[{"values":[0.1]},{"values":[0.2]}]}"#,
            EmbedMethod::Batch,
            "e",
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["data"][1],
            json!({"object": "embedding", "index": 1, "embedding": [0.2]})
        );
        assert!(embeddings_request(br#"{"model":"e","input":[[1,2]]}"#, "e").is_err());
    }

    // Found by the translate_gemini fuzz target: an empty assistant message between a user
    // message and a tool result left two user turns in a row.
    #[test]
    fn an_empty_message_does_not_split_turns() {
        let out = translate(json!({"model": "g", "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"}
        ]}));
        let contents = out["contents"].as_array().unwrap();
        assert_eq!(contents.len(), 1);
        assert_eq!(contents[0]["parts"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn reasoning_effort_becomes_a_thinking_config() {
        let out = translate(
            json!({"model": "g", "messages": [{"role": "user", "content": "Hi"}], "reasoning_effort": "low"}),
        );
        assert_eq!(
            out["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": 1024, "includeThoughts": true})
        );
        let out = translate(json!({"model": "g", "messages": [], "reasoning_effort": "none"}));
        assert_eq!(out["generationConfig"]["thinkingConfig"], json!({"thinkingBudget": 0}));
        let e = request(br#"{"model":"g","messages":[],"reasoning_effort":"max"}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("reasoning_effort"));
    }

    #[test]
    fn thoughts_become_reasoning_content_and_usage_details() {
        let (body, usage, text) = reply(br#"{"candidates":[{"content":{"parts":[{"text":"Weighing the options.","thought":true},{"text":"Paris."}],"role":"model"},"finishReason":"STOP","index":0}],
            "usageMetadata":{"promptTokenCount":100,"candidatesTokenCount":3,"thoughtsTokenCount":40,"cachedContentTokenCount":64,"totalTokenCount":143}}"#, "g").unwrap();
        let c: Value = serde_json::from_slice(&body).unwrap();
        let message = &c["choices"][0]["message"];
        assert_eq!(message["content"], json!("Paris."));
        assert_eq!(message["reasoning_content"], json!("Weighing the options."));
        assert_eq!(c["usage"]["prompt_tokens_details"]["cached_tokens"], json!(64));
        assert_eq!(c["usage"]["completion_tokens_details"]["reasoning_tokens"], json!(40));
        assert_eq!(c["usage"]["completion_tokens"], json!(43));
        let u = usage.unwrap();
        assert_eq!((u.cached_tokens, u.reasoning_tokens), (64, 40));
        assert_eq!(text.as_deref(), Some("Paris."));
    }

    #[test]
    fn thought_signatures_round_trip_through_tool_call_ids() {
        let (body, ..) = reply(br#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"ls","args":{}},"thoughtSignature":"Cs8B+/x9Yw=="}],"role":"model"},"finishReason":"STOP","index":0}]}"#, "g").unwrap();
        let c: Value = serde_json::from_slice(&body).unwrap();
        let call = c["choices"][0]["message"]["tool_calls"][0].clone();
        let id = call["id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("call_0") && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
        assert_eq!(
            call["extra_content"]["google"]["thought_signature"],
            json!("Cs8B+/x9Yw==")
        );
        // A client that keeps only the id still gets the signature back to Gemini.
        let out = translate(json!({"model": "g", "messages": [
            {"role": "user", "content": "ls"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": id, "type": "function", "function": {"name": "ls", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": id, "content": "a.txt"}
        ]}));
        assert_eq!(
            out["contents"][1]["parts"][0]["thoughtSignature"],
            json!("Cs8B+/x9Yw==")
        );
        assert_eq!(out["contents"][2]["parts"][0]["functionResponse"]["name"], json!("ls"));
        let out = translate(json!({"model": "g", "messages": [
            {"role": "assistant", "tool_calls": [{"id": "x", "type": "function", "function": {"name": "ls", "arguments": "{}"}, "extra_content": {"google": {"thought_signature": "sig"}}}]}
        ]}));
        assert_eq!(out["contents"][0]["parts"][0]["thoughtSignature"], json!("sig"));
    }

    // Found by the translate_gemini fuzz target: token counts near u64::MAX overflowed.
    #[test]
    fn hostile_token_counts_saturate() {
        let u = usage(Some(
            &json!({"promptTokenCount": u64::MAX, "candidatesTokenCount": u64::MAX, "thoughtsTokenCount": 1}),
        ))
        .unwrap();
        assert_eq!((u.completion_tokens, u.total_tokens), (u64::MAX, u64::MAX));
    }
}
