//! Shared by the translation targets: running a stream translator the way the relay does, and
//! checking what comes out is well-formed SSE and follows the target protocol's event grammar.
//! Each target uses part of it.
#![allow(dead_code)]

use ai_gateway::dialects::sse::{EventFramer, events};
use ai_gateway::dialects::translate::StreamTranslator;
use bytes::Bytes;
use serde_json::Value;

/// The input's first byte picks the direction, the rest is the body.
pub fn split(data: &[u8]) -> Option<(u8, &[u8])> {
    data.split_first().map(|(&b, rest)| (b, rest))
}

/// Feeds `input` through `translator` as `translate` does: cut into chunks of `step` bytes,
/// framed into complete events, each event's data handed on, then the clean close.
pub fn run<T: StreamTranslator>(translator: &mut T, input: &[u8], step: usize) -> Vec<u8> {
    let mut framer = EventFramer::default();
    let mut out = Vec::new();
    for chunk in input.chunks(step.max(1)) {
        if let Some(run) = framer.push(Bytes::copy_from_slice(chunk)) {
            feed(translator, &run, &mut out);
        }
    }
    if let Some(tail) = framer.finish() {
        feed(translator, &tail, &mut out);
    }
    translator.finish(&mut out);
    out
}

fn feed<T: StreamTranslator>(translator: &mut T, run: &[u8], out: &mut Vec<u8>) {
    for event in events(run) {
        if let Some(data) = event.data {
            translator.event(data, out);
        }
    }
}

/// One event a translator wrote.
#[derive(Debug)]
pub struct Out {
    pub name: Option<String>,
    pub data: Vec<u8>,
}

/// Splits a translator's output into its events, asserting the framing: every event is
/// `[event: <name>\n]data: <payload>\n\n` with a one-line payload, and nothing else is written.
pub fn sse(out: &[u8]) -> Vec<Out> {
    if out.is_empty() {
        return Vec::new();
    }
    assert!(
        out.ends_with(b"\n\n"),
        "output ends at an event boundary: {:?}",
        String::from_utf8_lossy(out)
    );
    let body = &out[..out.len() - 2];
    let mut list = Vec::new();
    for event in body.split(|b| *b == b'\n').collect::<Vec<_>>().split(|l| l.is_empty()) {
        let (name, data) = match event {
            [data] => (None, *data),
            [name, data] => {
                let name = name
                    .strip_prefix(b"event: ")
                    .expect("a two-line event starts with its name");
                let name = std::str::from_utf8(name).expect("event names are UTF-8");
                assert!(!name.is_empty() && !name.contains('\r'), "event name {name:?}");
                (Some(name.to_owned()), *data)
            }
            other => panic!("an event is one or two lines, got {other:?}"),
        };
        let data = data.strip_prefix(b"data: ").expect("a data line");
        list.push(Out {
            name,
            data: data.to_vec(),
        });
    }
    list
}

/// An event's payload as JSON; translators write JSON everywhere but `[DONE]`.
pub fn json(data: &[u8]) -> Value {
    assert!(!data.contains(&b'\r'), "payloads are one line");
    serde_json::from_slice(data)
        .unwrap_or_else(|e| panic!("payload is JSON ({e}): {:?}", String::from_utf8_lossy(data)))
}

/// A body a translation produced: a JSON object.
pub fn object(body: &[u8]) -> serde_json::Map<String, Value> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => map,
        other => panic!("a translation produced {other:?}"),
    }
}

/// A refusal is a 400 with a message, a known code and, when given, a parameter name.
pub fn check_refusal(e: &ai_gateway::dialects::BodyError) {
    assert!(!e.message.is_empty());
    assert!(
        matches!(
            e.code,
            "invalid_json" | "invalid_value" | "unsupported_value" | "missing_required_parameter"
        ),
        "code {}",
        e.code
    );
    if let Some(p) = &e.param {
        assert!(!p.is_empty());
    }
}

/// The text of OpenAI message content (a string, or its parts' string `text`s), as the
/// translations read it.
pub fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// Checks a stream of `chat.completion.chunk` events (what an OpenAI-dialect client reads) and
/// returns the text its string `content` deltas carry.
pub fn check_chat_chunks(events: &[Out]) -> String {
    let mut done = false;
    let mut text = String::new();
    for e in events {
        assert!(e.name.is_none(), "chat chunks are unnamed events");
        assert!(!done, "nothing follows [DONE]");
        if e.data == b"[DONE]" {
            done = true;
            continue;
        }
        let v = json(&e.data);
        if let Some(err) = v.get("error") {
            assert!(v.get("choices").is_none());
            assert!(
                err.get("message").is_some() && err.get("type").is_some(),
                "error shape {v}"
            );
            continue;
        }
        assert_eq!(v["object"], "chat.completion.chunk", "{v}");
        assert!(v["id"].is_string(), "{v}");
        let choices = v["choices"].as_array().expect("choices");
        if choices.is_empty() {
            assert!(v.get("usage").is_some(), "a chunk without choices carries usage: {v}");
            let u = &v["usage"];
            if !u.is_null() {
                let n = |k: &str| u[k].as_u64().expect("token counts");
                assert!(
                    n("total_tokens") >= n("prompt_tokens").max(n("completion_tokens")),
                    "{u}"
                );
            }
        }
        for c in choices {
            assert!(c["delta"].is_object(), "{c}");
            if let Some(t) = c["delta"]["content"].as_str() {
                text.push_str(t);
            }
            for call in c["delta"]["tool_calls"].as_array().into_iter().flatten() {
                assert!(call["index"].is_u64(), "tool call index {call}");
            }
        }
    }
    text
}

/// Checks Anthropic stream events against the Messages streaming grammar (`message_start`, then
/// blocks opened, filled and closed in index order, then `message_delta`, `message_stop`, and
/// nothing after) and returns the text its `text_delta`s carry.
pub fn check_anthropic_events(events: &[Out]) -> String {
    let mut started = false;
    let mut open: Option<(u64, String)> = None;
    let mut next = 0;
    let mut delta_seen = false;
    let mut stopped = false;
    let mut text = String::new();
    for e in events {
        let name = e.name.as_deref().expect("Anthropic events are named");
        let v = json(&e.data);
        assert_eq!(v["type"], name, "event name and type agree");
        assert!(!stopped, "nothing follows message_stop, got {name}");
        match name {
            "error" => {
                assert!(
                    v["error"]["type"].is_string() && v["error"].get("message").is_some(),
                    "{v}"
                );
                continue;
            }
            "message_start" => {
                assert!(!started, "one message_start");
                started = true;
                let m = &v["message"];
                assert_eq!(m["type"], "message");
                assert!(m["id"].as_str().is_some_and(|id| id.starts_with("msg_")), "{m}");
                continue;
            }
            _ => assert!(started, "{name} before message_start"),
        }
        let index = v["index"].as_u64();
        match name {
            "content_block_start" => {
                assert!(open.is_none(), "a block opens only when none is open");
                assert_eq!(index, Some(next), "blocks open in index order");
                next += 1;
                let kind = v["content_block"]["type"].as_str().expect("block type");
                assert!(matches!(kind, "text" | "tool_use" | "thinking" | "redacted_thinking"), "{kind}");
                open = Some((next - 1, kind.to_owned()));
            }
            "content_block_delta" => {
                let (i, kind) = open.as_ref().expect("a delta fills the open block");
                assert_eq!(index, Some(*i));
                match (kind.as_str(), v["delta"]["type"].as_str()) {
                    ("text", Some("text_delta")) => text.push_str(v["delta"]["text"].as_str().expect("delta text")),
                    ("tool_use", Some("input_json_delta")) => assert!(v["delta"]["partial_json"].is_string()),
                    ("thinking", Some("thinking_delta")) => assert!(v["delta"]["thinking"].is_string()),
                    ("thinking", Some("signature_delta")) => assert!(v["delta"]["signature"].is_string()),
                    other => panic!("delta {other:?} in a block of its kind"),
                }
            }
            "content_block_stop" => {
                let (i, _) = open.take().expect("a stop closes the open block");
                assert_eq!(index, Some(i));
            }
            "message_delta" => {
                assert!(open.is_none(), "blocks are closed before message_delta");
                assert!(!delta_seen, "one message_delta");
                delta_seen = true;
                let stop = v["delta"]["stop_reason"].as_str().expect("stop_reason");
                assert!(
                    matches!(
                        stop,
                        "end_turn" | "max_tokens" | "tool_use" | "refusal" | "stop_sequence"
                    ),
                    "{stop}"
                );
                assert!(v["usage"]["output_tokens"].is_u64());
            }
            "message_stop" => {
                assert!(delta_seen, "message_delta comes before message_stop");
                stopped = true;
            }
            other => panic!("unexpected event {other}"),
        }
    }
    text
}
