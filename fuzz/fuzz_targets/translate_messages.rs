//! An Anthropic client (`POST /v1/messages`) in front of a chat upstream
//! (`translate::messages`). The first byte picks the direction:
//! 0: a Messages request → a chat request: a clean refusal, or a JSON body that keeps the model
//!    and that `anthropic::request` sends on with the same model, text and tool calls;
//! 1: a chat completion → a Message: valid JSON with a known stop reason, that
//!    `anthropic::reply` turns back into a chat completion with the same text and tool calls;
//! 2: chat chunks (second byte: chunk size) → Anthropic events following the streaming grammar,
//!    then back through `anthropic::ToChatChunks` into well-formed chat chunks with the same text.
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
    let out = match messages::request(body) {
        Ok(out) => out,
        Err(e) => return check_refusal(&e),
    };
    let req: Value = serde_json::from_slice(body).expect("an accepted body is JSON");
    let chat = object(&out);
    assert_eq!(chat["model"], req.get("model").cloned().unwrap_or(Value::Null));
    let list = chat["messages"].as_array().expect("messages");
    for m in list {
        assert!(
            matches!(m["role"].as_str(), Some("system" | "user" | "assistant" | "tool")),
            "{m}"
        );
    }
    if req.get("stream") == Some(&Value::Bool(true)) {
        assert_eq!(chat["stream_options"]["include_usage"], true, "streams ask for usage");
    }

    // The chat request is one the gateway's own chat → Anthropic translation accepts, and it
    // carries the same conversation.
    let a = anthropic::request(&out).unwrap_or_else(|e| panic!("the translation is a valid chat request: {e:?}"));
    let a = object(&a);
    assert_eq!(a["model"], chat["model"]);
    let (text, calls) = anthropic_summary(req["messages"].as_array().expect("accepted messages"));
    let (back_text, back_calls) = anthropic_summary(a["messages"].as_array().expect("messages"));
    assert_eq!(back_text, text, "conversation text survives");
    assert_eq!(back_calls, calls, "tool calls survive");
}

/// Bytes of text (message text, text blocks, tool results) and `tool_use` blocks in an Anthropic
/// conversation. A tool result flagged `is_error` reads `Error: <text>` in chat.
fn anthropic_summary(list: &[Value]) -> (usize, usize) {
    let mut text = 0;
    let mut calls = 0;
    for m in list {
        match &m["content"] {
            Value::String(s) => text += s.len(),
            Value::Array(blocks) => {
                for b in blocks {
                    match b["type"].as_str() {
                        Some("text") => text += b["text"].as_str().map_or(0, str::len),
                        Some("tool_use") => calls += 1,
                        // Results belong in user turns; an assistant turn's are dropped.
                        Some("tool_result") if m["role"] == "user" => {
                            text += content_text(b.get("content")).len();
                            if b["is_error"] == true {
                                text += "Error: ".len();
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    (text, calls)
}

fn reply(body: &[u8]) {
    let Some((out, usage, text)) = messages::reply(body) else {
        return;
    };
    let m = object(&out);
    assert_eq!(m["type"], "message");
    assert!(m["id"].as_str().is_some_and(|id| id.starts_with("msg_")));
    let stop = m["stop_reason"].as_str().expect("stop_reason");
    assert!(matches!(stop, "end_turn" | "max_tokens" | "tool_use" | "refusal"));
    let u = usage.unwrap_or_default();
    assert_eq!(m["usage"]["input_tokens"], u.prompt_tokens);
    assert_eq!(m["usage"]["output_tokens"], u.completion_tokens);
    let blocks = m["content"].as_array().expect("content");
    let calls = blocks.iter().filter(|b| b["type"] == "tool_use").count();
    let joined: String = blocks.iter().filter_map(|b| b["text"].as_str()).collect();
    assert_eq!(joined, text.clone().unwrap_or_default());

    let (c, _, back_text) = anthropic::reply(&out).expect("a Message becomes a chat completion");
    let c = object(&c);
    assert_eq!(c["model"], m["model"]);
    assert_eq!(back_text, text);
    assert_eq!(
        c["choices"][0]["message"]["tool_calls"].as_array().map_or(0, Vec::len),
        calls
    );
}

fn stream(body: &[u8]) {
    let Some((step, body)) = split(body) else { return };
    let step = usize::from(step % 32) + 1;
    let events = run(&mut messages::ToMessageEvents::new(), body, step);
    let text = check_anthropic_events(&sse(&events));
    let chunks = run(&mut anthropic::ToChatChunks::new(step % 2 == 0), &events, events.len());
    let back = check_chat_chunks(&sse(&chunks));
    assert_eq!(back, text, "the text survives the way there and back");
}
