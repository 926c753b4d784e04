//! `chat.completion.chunk` events → Responses API stream events.
//!
//! The first chunk opens the response (`response.created`, `response.in_progress`); reasoning
//! (`reasoning_content` or `reasoning` deltas) opens a reasoning item and flows as
//! `response.reasoning_summary_text.delta`; text opens a message item and flows as
//! `response.output_text.delta`; each tool call opens a `function_call` item (named back into its
//! namespace when the bridge flattened it) and flows as `response.function_call_arguments.delta`,
//! or, for a custom tool, opens a `custom_tool_call` item whose decoded input flows as
//! `response.custom_tool_call_input.delta`;
//! `[DONE]` closes what is open and ends with `response.completed` (or `response.incomplete`)
//! carrying the whole response. Deltas go out as they arrive; the text is kept only to repeat it
//! in the closing events, as the API does.

use serde_json::{Value, json};

use super::responses::Echo;
use super::responses_custom::{InputDecoder, input};
use super::responses_items::{merge_thinking, message_item, reasoning_item, reasoning_text, status, usage};
use super::responses_tools::CallName;
use super::{ChatDelta, StreamTranslator, new_id, now_secs, to_bytes};
use crate::dialects::sse;

#[derive(Debug)]
struct ReasoningItem {
    output_index: usize,
    id: String,
    text: String,
    /// Anthropic's thinking blocks, as the chat deltas carry them (for `encrypted_content`).
    thinking: Vec<Value>,
}

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
    /// `name`, and `namespace` for a flattened tool; whether it is a custom tool's call.
    name: CallName,
    arguments: String,
    /// A custom tool's input, decoded from the arguments as they arrive.
    input: InputDecoder,
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
    reasoning: Option<ReasoningItem>,
    text: Option<TextItem>,
    call: Option<CallItem>,
    output: Vec<Value>,
    finish: Option<String>,
    /// The chat `usage` object of the usage chunk.
    usage: Option<Value>,
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
            reasoning: None,
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

    fn reasoning(&mut self, delta: Option<&str>, thinking: &[Value], out: &mut Vec<u8>) {
        if self.reasoning.is_none() {
            self.close_text(out);
            self.close_call(out);
            let item = ReasoningItem {
                output_index: self.output.len(),
                id: new_id("rs_"),
                text: String::new(),
                thinking: Vec::new(),
            };
            self.emit(
                "response.output_item.added",
                json!({ "output_index": item.output_index, "item": reasoning_item(&item.id, "", None, "in_progress") }),
                out,
            );
            self.output.push(Value::Null);
            self.reasoning = Some(item);
        }
        let Some(item) = self.reasoning.as_mut() else { return };
        merge_thinking(&mut item.thinking, thinking);
        let Some(delta) = delta else { return };
        let (id, index, first) = (item.id.clone(), item.output_index, item.text.is_empty());
        item.text.push_str(delta);
        if first {
            let part = json!({ "item_id": id, "output_index": index, "summary_index": 0,
                               "part": { "type": "summary_text", "text": "" } });
            self.emit("response.reasoning_summary_part.added", part, out);
        }
        let event = json!({ "item_id": id, "output_index": index, "summary_index": 0, "delta": delta });
        self.emit("response.reasoning_summary_text.delta", event, out);
    }

    fn close_reasoning(&mut self, out: &mut Vec<u8>) {
        let Some(item) = self.reasoning.take() else { return };
        let (id, index, text) = (item.id, item.output_index, item.text);
        if !text.is_empty() {
            self.emit(
                "response.reasoning_summary_text.done",
                json!({ "item_id": id, "output_index": index, "summary_index": 0, "text": text }),
                out,
            );
            let part = json!({ "type": "summary_text", "text": text });
            self.emit(
                "response.reasoning_summary_part.done",
                json!({ "item_id": id, "output_index": index, "summary_index": 0, "part": part }),
                out,
            );
        }
        let sealed = self.echo.seal(&item.thinking);
        let done = reasoning_item(&id, &text, sealed.as_deref(), "completed");
        self.output[index] = done.clone();
        self.emit(
            "response.output_item.done",
            json!({ "output_index": index, "item": done }),
            out,
        );
    }

    fn text(&mut self, delta: &str, out: &mut Vec<u8>) {
        self.close_reasoning(out);
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
            self.close_reasoning(out);
            self.close_text(out);
            self.close_call(out);
            let name = self
                .echo
                .call_name(call.pointer("/function/name").unwrap_or(&Value::Null));
            let item = CallItem {
                output_index: self.output.len(),
                chat_index,
                id: name.item_id(),
                call_id: call.get("id").cloned().unwrap_or_else(|| json!(new_id("call_"))),
                name,
                arguments: String::new(),
                input: InputDecoder::default(),
            };
            let added = item.name.item(&item.id, &item.call_id, "", "in_progress");
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
        if !item.name.custom {
            let event = json!({ "item_id": item.id, "output_index": item.output_index, "delta": piece });
            self.emit("response.function_call_arguments.delta", event, out);
            return;
        }
        let text = item.input.push(piece);
        if !text.is_empty() {
            let event = json!({ "item_id": item.id, "output_index": item.output_index, "delta": text });
            self.emit("response.custom_tool_call_input.delta", event, out);
        }
    }

    fn close_call(&mut self, out: &mut Vec<u8>) {
        let Some(item) = self.call.take() else { return };
        let at = json!({ "item_id": item.id, "output_index": item.output_index });
        if item.name.custom {
            let rest = item.input.finish(&item.arguments);
            if !rest.is_empty() {
                let mut event = at.clone();
                event["delta"] = json!(rest);
                self.emit("response.custom_tool_call_input.delta", event, out);
            }
            let mut event = at;
            event["input"] = json!(input(&item.arguments));
            self.emit("response.custom_tool_call_input.done", event, out);
        } else {
            let mut event = at;
            event["arguments"] = json!(item.arguments);
            self.emit("response.function_call_arguments.done", event, out);
        }
        let done = item.name.item(&item.id, &item.call_id, &item.arguments, "completed");
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
        self.close_reasoning(out);
        self.close_text(out);
        self.close_call(out);
        let (status, incomplete) = status(self.finish.as_deref());
        let mut r = self.response(status);
        r["incomplete_details"] = incomplete;
        r["output"] = Value::Array(self.output.clone());
        r["usage"] = usage(self.usage.as_ref());
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
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(u.clone());
        }
        let chat = chunk.pointer("/choices/0/delta").unwrap_or(&Value::Null);
        let thinking = chat
            .get("thinking_blocks")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let reasoning = reasoning_text(chat);
        if reasoning.is_some() || !thinking.is_empty() {
            self.reasoning(reasoning, thinking, out);
        }
        let delta = ChatDelta::read(&chunk);
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

    fn codex_echo() -> Echo {
        let codex = include_str!("../../../tests/fixtures/responses/codex_request.json");
        let options = super::super::responses::BridgeOptions::default();
        super::super::responses::request(codex.as_bytes(), &options).unwrap().1
    }

    #[test]
    fn reasoning_deltas_stream_as_a_reasoning_item_before_the_message() {
        let upstream = [
            chunk(json!({"role": "assistant", "content": null, "reasoning_content": "Six"}), Value::Null),
            chunk(json!({"reasoning_content": " times seven."}), Value::Null),
            chunk(json!({"content": "42"}), Value::Null),
            chunk(json!({}), json!("stop")),
            "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":30,\"total_tokens\":150,\"prompt_tokens_details\":{\"cached_tokens\":100},\"completion_tokens_details\":{\"reasoning_tokens\":12}}}\n\n".into(),
            "data: [DONE]\n\n".into(),
        ]
        .concat();
        let items = run(ToResponseEvents::new(Echo::default()), &upstream);
        assert_eq!(
            names(&items[..1]),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta"
            ]
        );
        assert_eq!(names(&items[1..2]), ["response.reasoning_summary_text.delta"]);
        assert_eq!(
            names(&items[2..3]),
            [
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta"
            ]
        );
        let p = payloads(&items);
        assert_eq!(
            p[2]["item"],
            json!({"type": "reasoning", "id": p[2]["item"]["id"], "summary": [], "status": "in_progress"})
        );
        assert_eq!(p[4]["summary_index"], 0);
        let done = p
            .iter()
            .find(|e| e["type"] == "response.reasoning_summary_text.done")
            .unwrap();
        assert_eq!(done["text"], "Six times seven.");
        let completed = &p.last().unwrap()["response"];
        assert_eq!(completed["output"][0]["type"], "reasoning");
        assert_eq!(completed["output"][0]["summary"][0]["text"], "Six times seven.");
        assert_eq!(completed["output"][1]["content"][0]["text"], "42");
        assert_eq!(completed["usage"]["input_tokens_details"]["cached_tokens"], 100);
        assert_eq!(completed["usage"]["output_tokens_details"]["reasoning_tokens"], 12);
    }

    #[test]
    fn streamed_calls_of_flattened_tools_come_back_namespaced_and_signed_thinking_sealed() {
        let upstream = [
            chunk(json!({"reasoning": "Wait.", "thinking_blocks": [{"type": "thinking", "thinking": "Wait."}]}), Value::Null),
            chunk(json!({"thinking_blocks": [{"type": "thinking", "signature": "EqQB"}]}), Value::Null),
            chunk(json!({"tool_calls": [{"index": 0, "id": "call_w", "type": "function", "function": {"name": "multi_agent_v1__wait_agent", "arguments": ""}}]}), Value::Null),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}), Value::Null),
            chunk(json!({}), json!("tool_calls")),
            "data: [DONE]\n\n".into(),
        ]
        .concat();
        let p = payloads(&run(ToResponseEvents::new(codex_echo()), &upstream));
        let added: Vec<&Value> = p.iter().filter(|e| e["type"] == "response.output_item.added").collect();
        assert_eq!(added[1]["item"]["namespace"], "multi_agent_v1");
        assert_eq!(added[1]["item"]["name"], "wait_agent");
        let output = &p.last().unwrap()["response"]["output"];
        assert_eq!(output[1]["name"], "wait_agent");
        assert_eq!(output[1]["namespace"], "multi_agent_v1");
        let sealed = output[0]["encrypted_content"].as_str().unwrap();
        let opened = super::super::responses_items::open_thinking(sealed).unwrap();
        assert_eq!(
            opened,
            [json!({"type": "thinking", "thinking": "Wait.", "signature": "EqQB"})]
        );
    }

    #[test]
    fn a_streamed_call_of_a_namespaced_custom_tool_streams_its_decoded_input() {
        let codex = include_str!("../../../tests/fixtures/responses/codex_default_request.json");
        let options = super::super::responses::BridgeOptions::default();
        let echo = super::super::responses::request(codex.as_bytes(), &options).unwrap().1;
        let args = [
            "{\"input\": \"text(await ",
            "tools.exec_command({cmd: \\\"cat",
            " x.txt\\\"}));\"}",
        ];
        let upstream = [
            chunk(json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": "call_x", "type": "function",
                          "function": {"name": "functions__exec", "arguments": ""}}]}), Value::Null),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": args[0]}}]}), Value::Null),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": args[1]}}]}), Value::Null),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": args[2]}}]}), Value::Null),
            chunk(json!({}), json!("tool_calls")),
            "data: [DONE]\n\n".into(),
        ]
        .concat();
        let items = run(ToResponseEvents::new(echo), &upstream);
        assert_eq!(
            names(&items[1..4]),
            [
                "response.custom_tool_call_input.delta",
                "response.custom_tool_call_input.delta",
                "response.custom_tool_call_input.delta"
            ]
        );
        assert_eq!(
            names(&items[5..6]),
            [
                "response.custom_tool_call_input.done",
                "response.output_item.done",
                "response.completed"
            ]
        );
        let p = payloads(&items);
        let added = &p[2]["item"];
        assert_eq!(
            added,
            &json!({"type": "custom_tool_call", "id": added["id"], "call_id": "call_x", "input": "",
                    "status": "in_progress", "name": "exec", "namespace": "functions"})
        );
        let js = "text(await tools.exec_command({cmd: \"cat x.txt\"}));";
        let deltas: String = p
            .iter()
            .filter(|e| e["type"] == "response.custom_tool_call_input.delta")
            .map(|e| e["delta"].as_str().unwrap())
            .collect();
        assert_eq!(deltas, js);
        let done = p
            .iter()
            .find(|e| e["type"] == "response.custom_tool_call_input.done")
            .unwrap();
        assert_eq!((&done["input"], &done["item_id"]), (&json!(js), &added["id"]));
        let output = &p.last().unwrap()["response"]["output"][0];
        assert_eq!(output["type"], "custom_tool_call");
        assert_eq!(output["input"], js);
        assert_eq!(output["status"], "completed");
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
