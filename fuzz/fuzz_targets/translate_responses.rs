//! The Responses API bridged to chat (`translate::responses`). The first byte picks the
//! direction:
//! 0: a Responses request → a chat request: a clean refusal, or JSON that keeps the model, with
//!    one tool message per `function_call_output` or `custom_tool_call_output` and one tool call per
//!    `function_call` or `custom_tool_call`;
//! 1: `<Responses request>\0<chat completion>` (or just the completion) → a `response` object
//!    echoing the request, whose output holds the completion's text and tool calls (function or
//!    custom tool calls);
//! 2: chat chunks (second byte: chunk size) → Responses events: numbered in sequence, named by
//!    their type, items (reasoning, message, function call) added, filled and done in order, ending once with `response.completed`
//!    / `response.incomplete` (whose output repeats every delta) or `error` + `response.failed`.
#![no_main]

mod common;

use ai_gateway::dialects::translate::responses::{self, BridgeOptions, Echo, ToResponseEvents};
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
    let (out, _) = match responses::request(body, &BridgeOptions::default()) {
        Ok(out) => out,
        Err(e) => return check_refusal(&e),
    };
    let req: Value = serde_json::from_slice(body).expect("an accepted body is JSON");
    let chat = object(&out);
    assert_eq!(chat["model"], req.get("model").cloned().unwrap_or(Value::Null));
    let list = chat["messages"].as_array().expect("messages");
    let items: &[Value] = req["input"].as_array().map_or(&[], Vec::as_slice);
    let outputs = items
        .iter()
        .filter(|i| i["type"] == "function_call_output" || i["type"] == "custom_tool_call_output")
        .count();
    let calls = items
        .iter()
        .filter(|i| i["type"] == "function_call" || i["type"] == "custom_tool_call")
        .count();
    assert_eq!(list.iter().filter(|m| m["role"] == "tool").count(), outputs);
    let chat_calls: usize = list
        .iter()
        .map(|m| m["tool_calls"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(chat_calls, calls);
    for m in list {
        assert!(m["role"].is_string(), "{m}");
    }
}

fn reply(body: &[u8]) {
    let (echo, completion) = match body.iter().position(|b| *b == 0) {
        Some(at) => {
            let echo = responses::request(&body[..at], &BridgeOptions::default())
                .map(|(_, echo)| echo)
                .unwrap_or_default();
            (echo, &body[at + 1..])
        }
        None => (Echo::default(), body),
    };
    let Some(out) = responses::reply(completion, &echo) else {
        return;
    };
    let c: Value = serde_json::from_slice(completion).expect("an accepted completion is JSON");
    let r = object(&out);
    assert_eq!(r["object"], "response");
    assert!(
        matches!(r["status"].as_str(), Some("completed" | "incomplete")),
        "{}",
        r["status"]
    );
    let message = &c["choices"][0]["message"];
    let output = r["output"].as_array().expect("output");
    let text: String = output
        .iter()
        .filter(|o| o["type"] == "message")
        .flat_map(|o| o["content"].as_array().into_iter().flatten())
        .filter_map(|p| p["text"].as_str())
        .collect();
    assert_eq!(text, content_text(message.get("content")));
    let calls = output
        .iter()
        .filter(|o| o["type"] == "function_call" || o["type"] == "custom_tool_call")
        .count();
    assert_eq!(calls, message["tool_calls"].as_array().map_or(0, Vec::len));
    for o in output.iter().filter(|o| o["type"] == "function_call") {
        assert!(o["arguments"].is_string());
    }
    for o in output.iter().filter(|o| o["type"] == "custom_tool_call") {
        assert!(o["input"].is_string());
    }
}

fn stream(body: &[u8]) {
    let Some((step, body)) = split(body) else { return };
    let step = usize::from(step % 32) + 1;
    let hi = br#"{"model":"gpt-4.1","input":"Hi","instructions":"Be brief.","temperature":0.2}"#;
    let echo = responses::request(hi, &BridgeOptions::default())
        .map(|(_, echo)| echo)
        .unwrap_or_default();
    let out = run(&mut ToResponseEvents::new(echo), body, step);
    check_response_events(&sse(&out));
}

/// An output item being streamed.
struct Open {
    index: u64,
    id: String,
    kind: &'static str,
    text: String,
}

fn check_response_events(events: &[Out]) {
    let mut seq = 0;
    let mut started = false;
    let mut open: Option<Open> = None;
    let mut added = 0;
    let mut deltas = String::new();
    let mut ended = false;
    let mut failed = false;
    for e in events {
        let name = e.name.as_deref().expect("Responses events are named");
        let v = json(&e.data);
        assert_eq!(v["type"], name, "event name and type agree");
        assert_eq!(v["sequence_number"], seq, "events are numbered in order");
        seq += 1;
        assert!(
            !ended || (failed && name == "response.failed"),
            "nothing follows the end, got {name}"
        );
        if name == "error" {
            assert!(v.get("message").is_some() && v.get("code").is_some(), "{v}");
            ended = true;
            failed = true;
            continue;
        }
        if name != "response.created" {
            assert!(started, "{name} before response.created");
        }
        let index = v["output_index"].as_u64();
        match name {
            "response.created" => {
                assert!(!started);
                started = true;
                assert_eq!(v["response"]["status"], "in_progress");
            }
            "response.in_progress" => assert_eq!(v["response"]["status"], "in_progress"),
            "response.output_item.added" => {
                assert!(open.is_none(), "one item streams at a time");
                assert_eq!(index, Some(added), "items are added in order");
                added += 1;
                let item = &v["item"];
                let kind = match item["type"].as_str() {
                    Some("message") => "message",
                    Some("function_call") => "function_call",
                    Some("reasoning") => "reasoning",
                    other => panic!("item type {other:?}"),
                };
                assert_eq!(item["status"], "in_progress");
                let id = item["id"].as_str().expect("item id").to_owned();
                open = Some(Open {
                    index: added - 1,
                    id,
                    kind,
                    text: String::new(),
                });
            }
            "response.reasoning_summary_part.added" | "response.reasoning_summary_part.done" => {
                let o = open.as_ref().expect("a summary part belongs to the open item");
                assert_eq!((o.kind, index), ("reasoning", Some(o.index)));
                assert_eq!(v["item_id"], o.id.as_str());
            }
            "response.reasoning_summary_text.delta" => {
                let o = open.as_mut().expect("a delta fills the open item");
                assert_eq!((o.kind, index), ("reasoning", Some(o.index)));
                o.text.push_str(v["delta"].as_str().expect("delta"));
            }
            "response.reasoning_summary_text.done" => {
                let o = open.as_ref().expect("done for the open item");
                assert_eq!((o.kind, index), ("reasoning", Some(o.index)));
                assert_eq!(v["text"], o.text.as_str(), "done repeats the deltas");
            }
            "response.content_part.added" | "response.content_part.done" => {
                let o = open.as_ref().expect("a part belongs to the open item");
                assert_eq!((o.kind, index), ("message", Some(o.index)));
                assert_eq!(v["item_id"], o.id.as_str());
            }
            "response.output_text.delta" | "response.function_call_arguments.delta" => {
                let o = open.as_mut().expect("a delta fills the open item");
                let kind = if name == "response.output_text.delta" {
                    "message"
                } else {
                    "function_call"
                };
                assert_eq!((o.kind, index), (kind, Some(o.index)));
                assert_eq!(v["item_id"], o.id.as_str());
                let delta = v["delta"].as_str().expect("delta");
                o.text.push_str(delta);
                if kind == "message" {
                    deltas.push_str(delta);
                }
            }
            "response.output_text.done" | "response.function_call_arguments.done" => {
                let o = open.as_ref().expect("done for the open item");
                assert_eq!(index, Some(o.index));
                let whole = if name == "response.output_text.done" {
                    &v["text"]
                } else {
                    &v["arguments"]
                };
                assert_eq!(whole, o.text.as_str(), "done repeats the deltas");
            }
            "response.output_item.done" => {
                let o = open.take().expect("done for the open item");
                assert_eq!(index, Some(o.index));
                assert_eq!(v["item"]["status"], "completed");
                assert_eq!(v["item"]["id"], o.id.as_str());
            }
            "response.completed" | "response.incomplete" => {
                assert!(open.is_none(), "items are done before the response");
                ended = true;
                let r = &v["response"];
                let status = name.trim_start_matches("response.");
                assert_eq!(r["status"], status);
                let output = r["output"].as_array().expect("output");
                assert_eq!(output.len() as u64, added, "every item added is in the output");
                assert!(output.iter().all(|o| o["status"] == "completed"), "{output:?}");
                let text: String = output
                    .iter()
                    .filter(|o| o["type"] == "message")
                    .flat_map(|o| o["content"].as_array().into_iter().flatten())
                    .filter_map(|p| p["text"].as_str())
                    .collect();
                assert_eq!(text, deltas, "the response repeats every delta");
                for k in ["input_tokens", "output_tokens", "total_tokens"] {
                    assert!(r["usage"][k].is_u64(), "usage {k}");
                }
            }
            "response.failed" => {
                assert!(failed, "response.failed follows error");
                failed = false;
                assert_eq!(v["response"]["status"], "failed");
                assert!(
                    v["response"]["output"]
                        .as_array()
                        .expect("output")
                        .iter()
                        .all(|o| !o.is_null())
                );
            }
            other => panic!("unexpected event {other}"),
        }
    }
}
