//! An OpenAI client in front of Gemini (`translate::gemini`). The first byte picks the direction:
//! 0: a chat request → a `generateContent` body: a clean refusal, or JSON whose `contents`
//!    alternate user/model turns, none empty, with one `functionCall` per tool call and one
//!    `functionResponse` per tool message;
//! 1: a `GenerateContentResponse` → a chat completion (or a block message): valid JSON, usage
//!    that adds up, arguments that are JSON;
//! 2: Gemini stream events (second byte: chunk size) → well-formed chat chunks ending at `[DONE]`
//!    with the text the events carried; and through `Chain` on into Anthropic events (the
//!    Gemini → chat → Anthropic path) that follow the Messages streaming grammar;
//! 3: an embeddings request → `embedContent` / `batchEmbedContents` with one content per input;
//! 4: an embeddings answer → an OpenAI list with one embedding per vector, in order.
#![no_main]

mod common;

use ai_gateway::dialects::translate::gemini::{self, EmbedMethod, ReplyError};
use ai_gateway::dialects::translate::{Chain, messages};
use common::*;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((selector, body)) = split(data) else { return };
    match selector % 5 {
        0 => request(body),
        1 => reply(body),
        2 => stream(body),
        3 => embeddings_request(body),
        _ => embeddings_reply(body, selector),
    }
});

fn request(body: &[u8]) {
    let out = match gemini::request(body) {
        Ok(out) => out,
        Err(e) => return check_refusal(&e),
    };
    let chat: Value = serde_json::from_slice(body).expect("an accepted body is JSON");
    let g = object(&out);
    assert!(g.get("model").is_none(), "the model goes in the URL");
    let contents = g["contents"].as_array().expect("contents");
    for pair in contents.windows(2) {
        assert_ne!(pair[0]["role"], pair[1]["role"], "turns alternate");
    }
    let mut calls = 0;
    let mut responses = 0;
    for c in contents {
        assert!(matches!(c["role"].as_str(), Some("user" | "model")));
        let parts = c["parts"].as_array().expect("parts");
        assert!(!parts.is_empty(), "no empty turn");
        for p in parts {
            if let Some(call) = p.get("functionCall") {
                calls += 1;
                assert!(call["args"].is_object(), "args are an object: {call}");
            }
            if let Some(r) = p.get("functionResponse") {
                responses += 1;
                assert!(r["response"].is_object(), "a response is an object: {r}");
            }
        }
    }
    let list = chat["messages"].as_array().expect("accepted messages");
    let want_calls: usize = list
        .iter()
        .filter(|m| m["role"] == "assistant")
        .map(|m| m["tool_calls"].as_array().map_or(0, Vec::len))
        .sum();
    let want_responses = list.iter().filter(|m| m["role"] == "tool").count();
    assert_eq!(calls, want_calls);
    assert_eq!(responses, want_responses);
    if let Some(config) = g.get("generationConfig") {
        assert!(config.is_object());
    }
}

fn reply(body: &[u8]) {
    let (out, usage, text) = match gemini::reply(body, "gemini-fuzz") {
        Ok(r) => r,
        Err(ReplyError::Blocked(message)) => return assert!(!message.is_empty()),
        Err(ReplyError::Malformed) => return,
    };
    let c = object(&out);
    assert_eq!(c["object"], "chat.completion");
    assert!(c["model"].is_string());
    if let Some(u) = usage {
        assert!(u.total_tokens >= u.prompt_tokens && u.total_tokens >= u.completion_tokens);
    }
    let message = &c["choices"][0]["message"];
    assert_eq!(
        text.unwrap_or_default(),
        message["content"].as_str().unwrap_or_default()
    );
    for call in message["tool_calls"].as_array().into_iter().flatten() {
        let args = call["function"]["arguments"].as_str().expect("arguments are a string");
        serde_json::from_str::<Value>(args).expect("arguments are JSON");
        assert!(call["id"].is_string());
    }
}

fn stream(body: &[u8]) {
    let Some((step, body)) = split(body) else { return };
    let step = usize::from(step % 32) + 1;
    let chunks = run(&mut gemini::ToChatChunks::new("gemini-fuzz", step % 2 == 0), body, step);
    let text = check_chat_chunks(&sse(&chunks));
    assert_eq!(text, event_text(body), "the text of every event before the last");

    let mut chain = Chain::new(
        gemini::ToChatChunks::new("gemini-fuzz", true),
        messages::ToMessageEvents::new(),
    );
    let events = run(&mut chain, body, step);
    assert_eq!(check_anthropic_events(&sse(&events)), text);
}

/// The non-thought text Gemini events carry, up to the one that finishes or blocks the answer.
fn event_text(body: &[u8]) -> String {
    let mut text = String::new();
    let mut framer = ai_gateway::dialects::sse::EventFramer::default();
    let run = [framer.push(bytes::Bytes::copy_from_slice(body)), framer.finish()];
    for run in run.iter().flatten() {
        for e in ai_gateway::dialects::sse::events(run) {
            let Some(Ok(v)) = e.data.map(serde_json::from_slice::<Value>) else {
                continue;
            };
            let candidate = v.pointer("/candidates/0").unwrap_or(&Value::Null);
            let finish = candidate["finishReason"].as_str();
            let parts = candidate["content"]["parts"].as_array();
            let blocked = v["promptFeedback"]["blockReason"].is_string()
                || v["error"]["message"].is_string()
                || (parts.is_none_or(Vec::is_empty)
                    && matches!(
                        finish,
                        Some("SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY")
                    ));
            if blocked {
                break;
            }
            for p in parts.into_iter().flatten() {
                if p["thought"] != true {
                    text.push_str(p["text"].as_str().unwrap_or_default());
                }
            }
            if finish.is_some() {
                return text;
            }
        }
    }
    text
}

fn embeddings_request(body: &[u8]) {
    let (method, out) = match gemini::embeddings_request(body, "text-embedding-fuzz") {
        Ok(r) => r,
        Err(e) => return check_refusal(&e),
    };
    let req: Value = serde_json::from_slice(body).expect("an accepted body is JSON");
    let g = object(&out);
    match method {
        EmbedMethod::Single => {
            assert!(req["input"].is_string());
            assert_eq!(g["content"]["parts"][0]["text"], req["input"]);
        }
        EmbedMethod::Batch => {
            let inputs = req["input"].as_array().expect("a batch comes from a list");
            let requests = g["requests"].as_array().expect("requests");
            assert_eq!(requests.len(), inputs.len());
            for (r, input) in requests.iter().zip(inputs) {
                assert_eq!(&r["content"]["parts"][0]["text"], input);
                assert_eq!(r["model"], "models/text-embedding-fuzz");
            }
        }
    }
}

fn embeddings_reply(body: &[u8], selector: u8) {
    let method = if selector & 0x80 == 0 {
        EmbedMethod::Single
    } else {
        EmbedMethod::Batch
    };
    let Some(out) = gemini::embeddings_reply(body, method, "text-embedding-fuzz") else {
        return;
    };
    let r: Value = serde_json::from_slice(body).expect("an accepted body is JSON");
    let list = object(&out);
    assert_eq!(list["object"], "list");
    let data = list["data"].as_array().expect("data");
    let vectors: Vec<&Value> = match method {
        EmbedMethod::Single => vec![&r["embedding"]["values"]],
        EmbedMethod::Batch => r["embeddings"]
            .as_array()
            .expect("embeddings")
            .iter()
            .map(|e| &e["values"])
            .collect(),
    };
    assert_eq!(data.len(), vectors.len());
    for (i, (d, v)) in data.iter().zip(vectors).enumerate() {
        assert_eq!(d["index"], i);
        assert_eq!(&d["embedding"], v);
    }
}
