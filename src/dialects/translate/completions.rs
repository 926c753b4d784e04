//! The legacy completions API (`POST /v1/completions`) bridged to chat completions: the prompt
//! becomes one user message, the answer a `text_completion`, each chunk a completion chunk.
//!
//! `echo`, `suffix`, `logprobs`, `best_of` and batched prompts have no chat equivalent and are
//! refused. `max_tokens` defaults to 16, as the legacy API does.
//! Reference: <https://platform.openai.com/docs/api-reference/completions>.

use serde_json::{Value, json};

use super::{Object, StreamTranslator, content_text, invalid, parse_object, to_bytes, unsupported};
use crate::dialects::BodyError;
use crate::dialects::sse;

/// The legacy API's default `max_tokens`.
pub const DEFAULT_MAX_TOKENS: u64 = 16;

/// A completions request body → a chat completions request body.
pub fn request(body: &[u8]) -> Result<bytes::Bytes, BodyError> {
    let req = parse_object(body)?;
    let prompt = match req.get("prompt") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) if items.len() == 1 && items[0].is_string() => {
            items[0].as_str().unwrap_or_default().to_owned()
        }
        Some(Value::Array(_)) => {
            return Err(unsupported(
                "send one prompt string per request: batched and token prompts cannot be bridged to chat",
                Some("prompt"),
            ));
        }
        None => {
            return Err(BodyError {
                message: "you must provide `prompt`".into(),
                param: Some("prompt".into()),
                code: "missing_required_parameter",
            });
        }
        Some(_) => return Err(invalid("`prompt` must be a string", Some("prompt"))),
    };
    for (key, refused) in [
        ("echo", req.get("echo").and_then(Value::as_bool) == Some(true)),
        ("suffix", req.get("suffix").is_some_and(|v| !v.is_null())),
        ("logprobs", req.get("logprobs").is_some_and(|v| !v.is_null())),
        (
            "best_of",
            req.get("best_of").and_then(Value::as_u64).is_some_and(|n| n > 1),
        ),
    ] {
        if refused {
            return Err(unsupported(
                format!("`{key}` has no chat-completions equivalent"),
                Some(key),
            ));
        }
    }
    let mut out = Object::new();
    out.insert("model".into(), req.get("model").cloned().unwrap_or(Value::Null));
    out.insert("messages".into(), json!([{ "role": "user", "content": prompt }]));
    out.insert(
        "max_tokens".into(),
        req.get("max_tokens")
            .filter(|v| v.is_u64())
            .cloned()
            .unwrap_or_else(|| DEFAULT_MAX_TOKENS.into()),
    );
    for key in [
        "temperature",
        "top_p",
        "n",
        "stream",
        "stream_options",
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "user",
        "seed",
    ] {
        if let Some(v) = req.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    Ok(to_bytes(&Value::Object(out)))
}

fn completion_id(chat_id: Option<&Value>) -> Value {
    match chat_id.and_then(Value::as_str) {
        Some(id) => json!(id.replacen("chatcmpl-", "cmpl-", 1)),
        None => json!(super::new_id("cmpl-")),
    }
}

/// A chat completion → a `text_completion`. `None` when the body is not a chat completion.
pub fn reply(body: &[u8]) -> Option<bytes::Bytes> {
    let c: Value = serde_json::from_slice(body).ok()?;
    let choices: Vec<Value> = c
        .get("choices")?
        .as_array()?
        .iter()
        .map(|ch| {
            json!({
                "text": content_text(ch.pointer("/message/content")),
                "index": ch.get("index").cloned().unwrap_or(json!(0)),
                "logprobs": null,
                "finish_reason": ch.get("finish_reason").cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    let mut out = json!({
        "id": completion_id(c.get("id")),
        "object": "text_completion",
        "created": c.get("created").cloned().unwrap_or_else(|| json!(super::now_secs())),
        "model": c.get("model").cloned().unwrap_or_default(),
        "choices": choices,
    });
    if let Some(u) = c.get("usage") {
        out["usage"] = u.clone();
    }
    Some(to_bytes(&out))
}

/// Chat chunks → completion chunks, one for one; `[DONE]` and error events pass as they are.
#[derive(Debug, Default)]
pub struct ToCompletionChunks;

impl StreamTranslator for ToCompletionChunks {
    fn event(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let Ok(c) = serde_json::from_slice::<Value>(data) else {
            sse::push_data_event(out, data);
            return;
        };
        if c.get("error").is_some() {
            sse::push_data_event(out, data);
            return;
        }
        let choices: Vec<Value> = c
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|ch| {
                let text = ch.pointer("/delta/content").and_then(Value::as_str).unwrap_or_default();
                !text.is_empty() || ch.get("finish_reason").is_some_and(|f| !f.is_null())
            })
            .map(|ch| {
                json!({
                    "text": ch.pointer("/delta/content").and_then(Value::as_str).unwrap_or_default(),
                    "index": ch.get("index").cloned().unwrap_or(json!(0)),
                    "logprobs": null,
                    "finish_reason": ch.get("finish_reason").cloned().unwrap_or(Value::Null),
                })
            })
            .collect();
        let usage = c.get("usage").filter(|u| !u.is_null());
        if choices.is_empty() && usage.is_none() {
            return;
        }
        let mut chunk = json!({
            "id": completion_id(c.get("id")),
            "object": "text_completion",
            "created": c.get("created").cloned().unwrap_or_default(),
            "model": c.get("model").cloned().unwrap_or_default(),
            "choices": choices,
        });
        if let Some(u) = usage {
            chunk["usage"] = u.clone();
        }
        sse::push_data_event(out, &to_bytes(&chunk));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialects::translate::stream::tests::{payloads, run};

    #[test]
    fn prompt_becomes_a_user_message_with_the_legacy_default() {
        let (body, _) = (
            request(br#"{"model":"gpt-3.5-turbo-instruct","prompt":"Say this is a test","temperature":0}"#).unwrap(),
            (),
        );
        let chat: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            chat["messages"],
            json!([{"role": "user", "content": "Say this is a test"}])
        );
        assert_eq!(chat["max_tokens"], json!(16));
        assert_eq!(chat["temperature"], json!(0));
        assert_eq!(
            request(br#"{"model":"m","prompt":"x","echo":true}"#)
                .unwrap_err()
                .param
                .as_deref(),
            Some("echo")
        );
        assert!(request(br#"{"model":"m","prompt":["a","b"]}"#).is_err());
    }

    #[test]
    fn chat_completion_becomes_a_text_completion() {
        let out = reply(br#"{"id":"chatcmpl-9","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"This is a test."},"finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["object"], json!("text_completion"));
        assert_eq!(v["id"], json!("cmpl-9"));
        assert_eq!(
            v["choices"][0],
            json!({"text": "This is a test.", "index": 0, "logprobs": null, "finish_reason": "length"})
        );
        assert_eq!(v["usage"]["total_tokens"], json!(12));
    }

    #[test]
    fn chunks_translate_one_for_one() {
        let upstream = concat!(
            "data: {\"id\":\"chatcmpl-1\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"chatcmpl-1\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"This\"},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"chatcmpl-1\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            "data: [DONE]\n\n",
        );
        let items = run(ToCompletionChunks, upstream);
        assert!(items[0].is_empty(), "the role-only chunk says nothing");
        let p = payloads(&items);
        assert_eq!(p[0]["choices"][0]["text"], json!("This"));
        assert_eq!(p[0]["object"], json!("text_completion"));
        assert_eq!(p[1]["choices"][0]["finish_reason"], json!("stop"));
        assert_eq!(p[2], json!("[DONE]"));
    }
}
