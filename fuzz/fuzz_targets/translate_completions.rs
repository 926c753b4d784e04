//! The legacy completions API bridged to chat (`translate::completions`). The first byte picks
//! the direction:
//! 0: a completions request → a chat request: a clean refusal, or JSON with the model and the
//!    prompt as the one user message, and a `max_tokens`;
//! 1: a chat completion → a `text_completion` with one choice per chat choice, same text;
//! 2: chat chunks (second byte: chunk size) → completion chunks: each event JSON (or an upstream
//!    event passed on as it came), carrying exactly the text of the chat deltas.
#![no_main]

mod common;

use ai_gateway::dialects::sse::{EventFramer, events};
use ai_gateway::dialects::translate::completions;
use common::*;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((selector, body)) = split(data) else { return };
    match selector % 3 {
        0 => request(body),
        1 => reply(body),
        _ => stream(body),
    }
});

fn request(body: &[u8]) {
    let out = match completions::request(body) {
        Ok(out) => out,
        Err(e) => return check_refusal(&e),
    };
    let req: Value = serde_json::from_slice(body).expect("an accepted body is JSON");
    let chat = object(&out);
    assert_eq!(chat["model"], req.get("model").cloned().unwrap_or(Value::Null));
    let prompt = match &req["prompt"] {
        Value::Array(items) => items[0].clone(),
        p => p.clone(),
    };
    assert!(prompt.is_string());
    assert_eq!(
        chat["messages"],
        serde_json::json!([{ "role": "user", "content": prompt }])
    );
    assert!(chat["max_tokens"].is_u64());
}

fn reply(body: &[u8]) {
    let Some(out) = completions::reply(body) else { return };
    let c: Value = serde_json::from_slice(body).expect("an accepted body is JSON");
    let t = object(&out);
    assert_eq!(t["object"], "text_completion");
    let choices = t["choices"].as_array().expect("choices");
    let chat_choices = c["choices"].as_array().expect("an accepted body has choices");
    assert_eq!(choices.len(), chat_choices.len());
    for (t, c) in choices.iter().zip(chat_choices) {
        assert_eq!(t["text"], content_text(c.pointer("/message/content")).as_str());
    }
    if let Some(id) = c["id"].as_str().filter(|id| id.starts_with("chatcmpl-")) {
        assert_eq!(t["id"], id.replacen("chatcmpl-", "cmpl-", 1).as_str());
    }
}

fn stream(body: &[u8]) {
    let Some((step, body)) = split(body) else { return };
    let step = usize::from(step % 32) + 1;
    let out = run(&mut completions::ToCompletionChunks, body, step);
    let mut text = String::new();
    for e in sse(&out) {
        assert!(e.name.is_none());
        let v = match serde_json::from_slice::<Value>(&e.data) {
            Ok(v) if v.get("error").is_none() => v,
            // Not ours to translate: an upstream event passed on byte for byte.
            _ => {
                assert!(body.windows(e.data.len().max(1)).any(|w| w == e.data.as_slice()) || e.data.is_empty());
                continue;
            }
        };
        assert_eq!(v["object"], "text_completion", "{v}");
        let choices = v["choices"].as_array().expect("choices");
        assert!(!choices.is_empty() || v.get("usage").is_some(), "no empty chunk: {v}");
        for c in choices {
            text.push_str(c["text"].as_str().expect("text"));
        }
    }
    assert_eq!(text, chat_text(body), "completion chunks carry the chat deltas' text");
}

/// The text of the chat deltas in a stream (error events aside).
fn chat_text(body: &[u8]) -> String {
    let mut framer = EventFramer::default();
    let runs = [framer.push(bytes::Bytes::copy_from_slice(body)), framer.finish()];
    let mut text = String::new();
    for run in runs.iter().flatten() {
        for e in events(run) {
            let Some(Ok(v)) = e.data.map(serde_json::from_slice::<Value>) else {
                continue;
            };
            if v.get("error").is_some() {
                continue;
            }
            for c in v.get("choices").and_then(Value::as_array).into_iter().flatten() {
                text.push_str(c.pointer("/delta/content").and_then(Value::as_str).unwrap_or_default());
            }
        }
    }
    text
}
