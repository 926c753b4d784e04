//! An OpenAI client in front of an Anthropic upstream (`translate::anthropic`). The first byte
//! picks the direction:
//! 0: a chat request → a Messages request: a clean refusal, or a JSON body that keeps the model,
//!    alternates user/assistant turns, and that `messages::request` reads back with the same
//!    model, text, tool calls and tool results;
//! 1: a Message reply → a chat completion: valid JSON whose usage adds up, and that
//!    `messages::reply` turns back into a Message with the same text and tool calls;
//! 2: Anthropic stream events (second byte: chunk size) → chat chunks, well-formed and ending at
//!    `[DONE]`, then back through `ToMessageEvents` into a valid Anthropic event stream carrying
//!    the same text.
#![no_main]

mod common;

use ai_gateway::dialects::translate::{anthropic, messages};
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
    let out = match anthropic::request(body) {
        Ok(out) => out,
        Err(e) => return check_refusal(&e),
    };
    let chat: Value = serde_json::from_slice(body).expect("an accepted body is JSON");
    let a = object(&out);
    assert_eq!(a["model"], chat.get("model").cloned().unwrap_or(Value::Null));
    assert!(a["max_tokens"].is_u64());
    if let Some(t) = a.get("temperature") {
        let t = t.as_f64().expect("temperature");
        assert!((0.0..=1.0).contains(&t));
    }
    let turns = a["messages"].as_array().expect("messages");
    for pair in turns.windows(2) {
        assert_ne!(pair[0]["role"], pair[1]["role"], "turns alternate");
    }
    for t in turns {
        assert!(matches!(t["role"].as_str(), Some("user" | "assistant")));
        let blocks = t["content"].as_array().expect("content blocks");
        assert!(!blocks.is_empty(), "no empty turn: {t}");
        for b in blocks.iter().filter(|b| b["type"] == "tool_use") {
            assert!(b["input"].is_object(), "tool input is an object: {b}");
        }
    }

    // What the gateway sends Anthropic is a Messages request its own Anthropic-dialect front
    // accepts, and nothing the conversation said is lost on the way.
    let back = messages::request(&out).unwrap_or_else(|e| panic!("the translation is a valid Messages request: {e:?}"));
    let back = object(&back);
    assert_eq!(back["model"], a["model"]);
    let list = chat["messages"].as_array().expect("accepted messages are an array");
    let back_list = back["messages"].as_array().expect("messages");
    let (text, calls, results) = summary(list);
    let (back_text, back_calls, back_results) = summary(back_list);
    assert_eq!(back_text, text, "conversation text survives");
    assert_eq!(back_calls, calls, "tool calls survive");
    assert_eq!(back_results, results, "tool results survive");
}

/// Bytes of non-system text, tool calls and tool results in a chat conversation.
fn summary(list: &[Value]) -> (usize, usize, usize) {
    let mut text = 0;
    let mut calls = 0;
    let mut results = 0;
    for m in list {
        let role = m["role"].as_str().unwrap_or_default();
        match role {
            "system" | "developer" => {}
            "tool" => {
                results += 1;
                text += content_text(m.get("content")).len();
            }
            _ => {
                text += content_text(m.get("content")).len();
                if role == "assistant" {
                    calls += m["tool_calls"].as_array().map_or(0, Vec::len);
                }
            }
        }
    }
    (text, calls, results)
}

fn reply(body: &[u8]) {
    let Some((out, usage, text)) = anthropic::reply(body) else {
        return;
    };
    let c = object(&out);
    assert_eq!(c["object"], "chat.completion");
    assert_eq!(
        usage.total_tokens,
        usage.prompt_tokens.saturating_add(usage.completion_tokens)
    );
    assert_eq!(c["usage"]["total_tokens"], usage.total_tokens);
    let message = &c["choices"][0]["message"];
    assert_eq!(
        text.as_deref().unwrap_or_default(),
        message["content"].as_str().unwrap_or_default()
    );
    let calls = message["tool_calls"].as_array().map_or(0, Vec::len);
    for call in message["tool_calls"].as_array().into_iter().flatten() {
        let args = call["function"]["arguments"].as_str().expect("arguments are a string");
        serde_json::from_str::<Value>(args).expect("arguments are JSON");
    }

    let (m, _, back_text) = messages::reply(&out).expect("a chat completion becomes a Message");
    let m = object(&m);
    assert_eq!(m["model"], c["model"]);
    assert_eq!(back_text, text);
    let back_calls = m["content"]
        .as_array()
        .expect("content")
        .iter()
        .filter(|b| b["type"] == "tool_use")
        .count();
    assert_eq!(back_calls, calls);
}

fn stream(body: &[u8]) {
    let Some((step, body)) = split(body) else { return };
    let step = usize::from(step % 32) + 1;
    let include_usage = step % 2 == 0;
    let chunks = run(&mut anthropic::ToChatChunks::new(include_usage), body, step);
    let text = check_chat_chunks(&sse(&chunks));
    let events = run(&mut messages::ToMessageEvents::new(), &chunks, chunks.len());
    let back = check_anthropic_events(&sse(&events));
    assert_eq!(back, text, "the text survives the way there and back");
}
