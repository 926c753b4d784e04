//! `chat.completion.chunk` events → Responses API stream events.
//!
//! The first chunk opens the response (`response.created`, `response.in_progress`); text opens a
//! message item and flows as `response.output_text.delta`; each tool call opens a `function_call`
//! item and flows as `response.function_call_arguments.delta`; `[DONE]` closes what is open and
//! ends with `response.completed` (or `response.incomplete`) carrying the whole response. Deltas go
//! out as they arrive; the text is kept only to repeat it in the closing events, as the API does.

use serde_json::{Value, json};

use super::responses::{Echo, function_item, message_item, status, usage};
use super::{ChatDelta, StreamTranslator, new_id, now_secs, to_bytes};
use crate::dialects::sse;
use crate::domain::Usage;

#[derive(Debug)]
struct TextItem {
    output_index: usize,
    id: String,
    text: String,
}

#[derive(Debug)]
struct CallItem {
    output_index: usize,
    /// The chat tool-call index.
    chat_index: u64,
    id: String,
    call_id: Value,
    name: Value,
    arguments: String,
}

/// Chat chunks → Responses events, one chunk at a time.
#[derive(Debug)]
pub struct ToResponseEvents {
    echo: Echo,
    id: String,
    created_at: u64,
    model: Value,
    seq: u64,
    started: bool,
    text: Option<TextItem>,
    call: Option<CallItem>,
    output: Vec<Value>,
    finish: Option<String>,
    usage: Option<Usage>,
    ended: bool,
}

impl ToResponseEvents {
    /// `echo`: the request settings the response objects repeat.
    pub fn new(echo: Echo) -> Self {
        Self {
            echo,
            id: new_id("resp_"),
            created_at: now_secs(),
            model: Value::Null,
            seq: 0,
            started: false,
            text: None,
            call: None,
            output: Vec::new(),
            finish: None,
            usage: None,
            ended: false,
        }
    }

    fn emit(&mut self, kind: &str, mut data: Value, out: &mut Vec<u8>) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        sse::push_named_event(out, kind, &to_bytes(&data));
    }

    fn response(&self, status: &str) -> Value {
        self.echo.response(&self.id, self.created_at, &self.model, status)
    }

    fn start(&mut self, chunk: &Value, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        self.model = chunk.get("model").cloned().unwrap_or_default();
        let r = self.response("in_progress");
        self.emit("response.created", json!({ "response": r }), out);
        self.emit("response.in_progress", json!({ "response": r }), out);
    }

    fn text(&mut self, delta: &str, out: &mut Vec<u8>) {
        self.close_call(out);
        if self.text.is_none() {
            let item = TextItem {
                output_index: self.output.len(),
                id: new_id("msg_"),
                text: String::new(),
            };
            let mut added = message_item(&item.id, "", "in_progress");
            added["content"] = json!([]);
            self.emit(
                "response.output_item.added",
                json!({ "output_index": item.output_index, "item": added }),
                out,
            );
            let part = json!({ "item_id": item.id, "output_index": item.output_index, "content_index": 0,
                               "part": { "type": "output_text", "text": "", "annotations": [] } });
            self.emit("response.content_part.added", part, out);
            self.output.push(Value::Null);
            self.text = Some(item);
        }
        let Some(item) = self.text.as_mut() else { return };
        item.text.push_str(delta);
        let event = json!({ "item_id": item.id, "output_index": item.output_index, "content_index": 0, "delta": delta, "logprobs": [] });
        self.emit("response.output_text.delta", event, out);
    }

    fn close_text(&mut self, out: &mut Vec<u8>) {
        let Some(item) = self.text.take() else { return };
        let (id, index, text) = (item.id, item.output_index, item.text);
        self.emit(
            "response.output_text.done",
            json!({ "item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": [] }),
            out,
        );
        let part = json!({ "type": "output_text", "text": text, "annotations": [] });
        self.emit(
            "response.content_part.done",
            json!({ "item_id": id, "output_index": index, "content_index": 0, "part": part }),
            out,
        );
        let done = message_item(&id, &text, "completed");
        self.output[index] = done.clone();
        self.emit(
            "response.output_item.done",
            json!({ "output_index": index, "item": done }),
            out,
        );
    }

    fn tool_call(&mut self, call: &Value, out: &mut Vec<u8>) {
        let chat_index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        if self.call.as_ref().is_none_or(|c| c.chat_index != chat_index) {
            self.close_text(out);
            self.close_call(out);
            let item = CallItem {
                output_index: self.output.len(),
                chat_index,
                id: new_id("fc_"),
                call_id: call.get("id").cloned().unwrap_or_else(|| json!(new_id("call_"))),
                name: call.pointer("/function/name").cloned().unwrap_or_default(),
                arguments: String::new(),
            };
            let added = function_item(&item.id, &item.call_id, &item.name, "", "in_progress");
            self.emit(
                "response.output_item.added",
                json!({ "output_index": item.output_index, "item": added }),
                out,
            );
            self.output.push(Value::Null);
            self.call = Some(item);
        }
        let Some(piece) = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        else {
            return;
        };
        let Some(item) = self.call.as_mut() else { return };
        item.arguments.push_str(piece);
        let event = json!({ "item_id": item.id, "output_index": item.output_index, "delta": piece });
        self.emit("response.function_call_arguments.delta", event, out);
    }

    fn close_call(&mut self, out: &mut Vec<u8>) {
        let Some(item) = self.call.take() else { return };
        let event = json!({ "item_id": item.id, "output_index": item.output_index, "arguments": item.arguments });
        self.emit("response.function_call_arguments.done", event, out);
        let done = function_item(&item.id, &item.call_id, &item.name, &item.arguments, "completed");
        self.output[item.output_index] = done.clone();
        self.emit(
            "response.output_item.done",
            json!({ "output_index": item.output_index, "item": done }),
            out,
        );
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.start(&Value::Null, out);
        self.close_text(out);
        self.close_call(out);
        let (status, incomplete) = status(self.finish.as_deref());
        let mut r = self.response(status);
        r["incomplete_details"] = incomplete;
        r["output"] = Value::Array(self.output.clone());
        r["usage"] = usage(self.usage);
        let kind = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        self.emit(kind, json!({ "response": r }), out);
    }

    fn fail(&mut self, err: &Value, out: &mut Vec<u8>) {
        self.ended = true;
        let message = err
            .get("message")
            .cloned()
            .unwrap_or_else(|| json!("upstream stream error"));
        let code = err
            .get("code")
            .filter(|c| !c.is_null())
            .cloned()
            .unwrap_or_else(|| json!("server_error"));
        self.emit("error", json!({ "code": code, "message": message, "param": null }), out);
        if self.started {
            let mut r = self.response("failed");
            r["error"] = json!({ "code": code, "message": message });
            r["output"] = Value::Array(self.output.iter().filter(|o| !o.is_null()).cloned().collect());
            self.emit("response.failed", json!({ "response": r }), out);
        }
    }
}

impl StreamTranslator for ToResponseEvents {
    fn event(&mut self, data: &[u8], out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        if sse::is_done(data) {
            self.end(out);
            return;
        }
        let Ok(chunk) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        if let Some(err) = chunk.get("error") {
            self.fail(err, out);
            return;
        }
        self.start(&chunk, out);
        let delta = ChatDelta::read(&chunk);
        if delta.usage.is_some() {
            self.usage = delta.usage;
        }
        if let Some(text) = delta.text {
            self.text(text, out);
        }
        for call in delta.tool_calls {
            self.tool_call(call, out);
        }
        if let Some(reason) = delta.finish {
            self.finish = Some(reason.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialects::translate::stream::tests::{names, payloads, run};

    fn chunk(delta: Value, finish: Value) -> String {
        format!(
            "data: {}\n\n",
            json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    }

    #[test]
    fn text_stream_becomes_response_events() {
        let upstream = [
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": "Hi"}), Value::Null),
            chunk(json!({"content": " there"}), Value::Null),
            chunk(json!({}), json!("stop")),
            "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n".into(),
            "data: [DONE]\n\n".into(),
        ]
        .concat();
        let items = run(ToResponseEvents::new(Echo::default()), &upstream);
        assert_eq!(names(&items[..1]), ["response.created", "response.in_progress"]);
        assert_eq!(
            names(&items[1..2]),
            [
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta"
            ]
        );
        assert_eq!(names(&items[2..3]), ["response.output_text.delta"]);
        assert_eq!(
            names(&items[5..6]),
            [
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed"
            ]
        );
        let p = payloads(&items);
        let seqs: Vec<u64> = p.iter().map(|e| e["sequence_number"].as_u64().unwrap()).collect();
        assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
        let done = p.last().unwrap();
        assert_eq!(done["response"]["status"], json!("completed"));
        assert_eq!(done["response"]["output"][0]["content"][0]["text"], json!("Hi there"));
        assert_eq!(done["response"]["usage"]["total_tokens"], json!(5));
    }

    #[test]
    fn streamed_tool_calls_become_function_call_items() {
        let upstream = [
            chunk(json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}), Value::Null),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"location\":"}}]}), Value::Null),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}), Value::Null),
            chunk(json!({}), json!("tool_calls")),
            "data: [DONE]\n\n".into(),
        ]
        .concat();
        let items = run(ToResponseEvents::new(Echo::default()), &upstream);
        let p = payloads(&items);
        let added = p.iter().find(|e| e["type"] == "response.output_item.added").unwrap();
        assert_eq!(added["item"]["type"], json!("function_call"));
        assert_eq!(added["item"]["call_id"], json!("call_1"));
        let args = p
            .iter()
            .find(|e| e["type"] == "response.function_call_arguments.done")
            .unwrap();
        assert_eq!(args["arguments"], json!("{\"location\":\"Paris\"}"));
        let done = p.last().unwrap();
        assert_eq!(done["response"]["output"][0]["name"], json!("get_weather"));
        assert_eq!(done["response"]["output"][0]["status"], json!("completed"));
    }

    #[test]
    fn an_error_event_fails_the_response() {
        let upstream = [
            chunk(json!({"content": "a"}), Value::Null),
            "data: {\"error\":{\"message\":\"cut\",\"type\":\"server_error\",\"code\":\"stream_truncated\"}}\n\n"
                .into(),
        ]
        .concat();
        let items = run(ToResponseEvents::new(Echo::default()), &upstream);
        assert_eq!(names(&items[1..2]), ["error", "response.failed"]);
    }
}
