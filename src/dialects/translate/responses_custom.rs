//! Responses `custom` tools (freeform input, optionally held to a grammar) bridged to chat
//! completions, which only knows JSON-argument functions.
//!
//! A custom tool becomes a function taking one string, `input`, whose description carries the
//! tool's format (a Lark or regex grammar, trimmed), so the model knows what to write there. The
//! model's call, `{"input": "..."}`, comes back as a `custom_tool_call` item holding the raw
//! text, and a `custom_tool_call` in the history goes back to chat as that same call. In a
//! stream, the `input` string is decoded as the JSON arguments arrive, so
//! `response.custom_tool_call_input.delta` carries the text itself, piece by piece.
//! Reference: <https://platform.openai.com/docs/guides/function-calling#custom-tools>.

use serde_json::{Value, json};

use super::Object;

/// The one parameter a bridged custom tool takes.
const INPUT: &str = "input";

/// The most of a grammar's definition the parameter's description quotes: enough for the
/// shape of the input, without letting a large grammar crowd the model's context.
const MAX_GRAMMAR: usize = 2000;

/// A Responses custom tool → a chat function tool named `name`, taking the raw text as `input`.
pub(super) fn chat_tool(t: &Value, name: &str) -> Value {
    let mut f = Object::new();
    f.insert("name".into(), json!(name));
    if let Some(d) = t.get("description").filter(|d| d.is_string()) {
        f.insert("description".into(), d.clone());
    }
    f.insert(
        "parameters".into(),
        json!({
            "type": "object",
            "properties": { INPUT: { "type": "string", "description": input_description(t.get("format")) } },
            "required": [INPUT],
            "additionalProperties": false,
        }),
    );
    json!({ "type": "function", "function": f })
}

/// What the `input` parameter must hold, from the tool's `format`.
fn input_description(format: Option<&Value>) -> String {
    const RAW: &str =
        "The tool's raw input text, as the tool description asks for it (not JSON-encoded, no markdown fences).";
    let Some(format) = format.filter(|f| f.get("type").and_then(Value::as_str) == Some("grammar")) else {
        return RAW.to_owned();
    };
    let syntax = format.get("syntax").and_then(Value::as_str).unwrap_or("lark");
    let definition = format
        .get("definition")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim();
    if definition.is_empty() {
        return RAW.to_owned();
    }
    let (shown, cut) = match definition.char_indices().nth(MAX_GRAMMAR) {
        Some((at, _)) => (&definition[..at], " [grammar cut short]"),
        None => (definition, ""),
    };
    format!("{RAW} It must match this {syntax} grammar:\n{shown}{cut}")
}

/// The chat `arguments` for a custom tool call's raw `input`.
pub(super) fn arguments(input: &str) -> String {
    json!({ INPUT: input }).to_string()
}

/// The raw input of a chat call of a bridged custom tool: its `input` string; a lone string
/// under another name; else the arguments as they are (a model that wrote the text bare).
pub(super) fn input(arguments: &str) -> String {
    let Ok(Value::Object(args)) = serde_json::from_str::<Value>(arguments) else {
        return arguments.to_owned();
    };
    if let Some(s) = args.get(INPUT).and_then(Value::as_str) {
        return s.to_owned();
    }
    match args.values().collect::<Vec<_>>().as_slice() {
        [Value::String(s)] => s.clone(),
        _ => arguments.to_owned(),
    }
}

/// Where the decoder of streamed arguments is.
#[derive(Debug, Default)]
enum Scan {
    /// Before the `input` string opens (the text so far could still be `{"input": "`).
    #[default]
    Opening,
    /// Inside the string; the escape or characters not decoded yet.
    Inside,
    /// The string closed.
    Closed,
    /// The arguments are not `{"input": "...` : nothing is decoded until they are whole.
    Off,
}

/// Decodes the `input` string of streamed chat arguments (`{"input": "..."}`) as they arrive.
#[derive(Debug, Default)]
pub(super) struct InputDecoder {
    scan: Scan,
    /// Arguments text not consumed yet.
    pending: String,
    /// The input text handed out so far.
    emitted: String,
}

impl InputDecoder {
    /// The input text `piece` completes (empty when it completes none yet).
    pub(super) fn push(&mut self, piece: &str) -> String {
        self.pending.push_str(piece);
        if matches!(self.scan, Scan::Opening) {
            match opening(&self.pending) {
                Opened::Not => self.scan = Scan::Off,
                Opened::Maybe => {}
                Opened::At(at) => {
                    self.pending.drain(..at);
                    self.scan = Scan::Inside;
                }
            }
        }
        if !matches!(self.scan, Scan::Inside) {
            return String::new();
        }
        let (end, closed) = decodable(&self.pending);
        let Ok(text) = serde_json::from_str::<String>(&format!("\"{}\"", &self.pending[..end])) else {
            self.scan = Scan::Off;
            return String::new();
        };
        self.pending.drain(..end);
        if closed {
            self.scan = Scan::Closed;
        }
        self.emitted.push_str(&text);
        text
    }

    /// The rest of the input once `arguments` (the whole of them) are known: what the pieces
    /// did not hand out yet. Empty when the final input does not continue what went out (the
    /// closing events carry the whole input anyway).
    pub(super) fn finish(&self, arguments: &str) -> String {
        let whole = input(arguments);
        whole.strip_prefix(self.emitted.as_str()).unwrap_or_default().to_owned()
    }
}

enum Opened {
    Not,
    Maybe,
    /// The string's characters start at this byte.
    At(usize),
}

/// Whether `s` opens with `{"input":"` (any JSON whitespace between the tokens).
fn opening(s: &str) -> Opened {
    let mut rest = s;
    for token in ["{", "\"input\"", ":", "\""] {
        rest = rest.trim_start_matches([' ', '\t', '\n', '\r']);
        if rest.len() < token.len() {
            return if token.starts_with(rest) {
                Opened::Maybe
            } else {
                Opened::Not
            };
        }
        match rest.strip_prefix(token) {
            Some(after) => rest = after,
            None => return Opened::Not,
        }
    }
    Opened::At(s.len() - rest.len())
}

/// How much of a JSON string's inside can be decoded now: up to the closing quote (then `true`)
/// or up to an escape not whole yet (a `\uD83D` high surrogate waits for its pair).
fn decodable(s: &str) -> (usize, bool) {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return (i, true),
            b'\\' => {
                let len = match bytes.get(i + 1) {
                    None => return (i, false),
                    Some(b'u') => {
                        let high = s
                            .get(i + 2..i + 6)
                            .and_then(|h| u16::from_str_radix(h, 16).ok())
                            .is_some_and(|c| (0xD800..0xDC00).contains(&c));
                        if high { 12 } else { 6 }
                    }
                    Some(_) => 2,
                };
                if i + len > bytes.len() {
                    return (i, false);
                }
                i += len;
            }
            _ => i += 1,
        }
    }
    (i, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_custom_tool_becomes_a_function_of_one_string_with_its_grammar_described() {
        let exec = json!({"type": "custom", "name": "exec", "description": "Run JavaScript.",
            "format": {"type": "grammar", "syntax": "lark", "definition": "start: SOURCE\nSOURCE: /[\\s\\S]+/\n"}});
        let t = chat_tool(&exec, "functions__exec");
        assert_eq!(t["type"], "function");
        assert_eq!(t["function"]["name"], "functions__exec");
        assert_eq!(t["function"]["description"], "Run JavaScript.");
        let params = &t["function"]["parameters"];
        assert_eq!(params["required"], json!(["input"]));
        assert_eq!(params["properties"]["input"]["type"], "string");
        let hint = params["properties"]["input"]["description"].as_str().unwrap();
        assert!(hint.contains("lark grammar:\nstart: SOURCE"), "{hint}");
        let plain = chat_tool(&json!({"type": "custom", "name": "note"}), "note");
        assert!(plain["function"].get("description").is_none());
        let long = json!({"type": "custom", "name": "g", "format": {"type": "grammar", "syntax": "regex", "definition": "é".repeat(5000)}});
        let hint = chat_tool(&long, "g")["function"]["parameters"]["properties"]["input"]["description"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            hint.ends_with("[grammar cut short]") && hint.len() < 4500,
            "{}",
            hint.len()
        );
    }

    #[test]
    fn the_raw_input_is_read_from_the_arguments_and_written_back() {
        let js = "text(await tools.exec_command({cmd: \"cat x.txt\"}));\n";
        assert_eq!(input(&arguments(js)), js);
        assert_eq!(input(r#"{"code": "1+1"}"#), "1+1");
        assert_eq!(input("1+1"), "1+1", "a bare text is the input");
        assert_eq!(input(r#"{"a": 1, "b": "x"}"#), r#"{"a": 1, "b": "x"}"#);
    }

    #[test]
    fn streamed_arguments_decode_into_input_pieces() {
        let js = "a = \"q\\u00e9\";\n😀 done";
        let args = arguments(js);
        // Every split point, pieces of 3 bytes on char boundaries.
        let mut pieces = Vec::new();
        let mut start = 0;
        while start < args.len() {
            let mut end = (start + 3).min(args.len());
            while !args.is_char_boundary(end) {
                end += 1;
            }
            pieces.push(&args[start..end]);
            start = end;
        }
        let mut d = InputDecoder::default();
        let streamed: String = pieces.iter().map(|p| d.push(p)).collect();
        assert_eq!(streamed, js);
        assert_eq!(d.finish(&args), "");
        let spaced = "{ \"input\" :\n \"ab\\ud83d\\ude00c\" }";
        let mut d = InputDecoder::default();
        let parts: Vec<String> = ["{ \"in", "put\" :\n \"a", "b\\ud83d", "\\ude00", "c\" }"]
            .iter()
            .map(|p| d.push(p))
            .collect();
        assert_eq!(parts, ["", "a", "b", "😀", "c"]);
        assert_eq!(d.finish(spaced), "");
    }

    #[test]
    fn arguments_of_another_shape_come_out_whole_at_the_end() {
        let mut d = InputDecoder::default();
        assert_eq!(d.push("{\"code\": \"1+"), "");
        assert_eq!(d.push("1\"}"), "");
        assert_eq!(d.finish("{\"code\": \"1+1\"}"), "1+1");
        let item = super::super::responses_items::call_item(
            true,
            "ctc_1",
            &json!("call_1"),
            &Object::new(),
            "1+1",
            "completed",
        );
        assert_eq!(
            item,
            json!({"type": "custom_tool_call", "id": "ctc_1", "call_id": "call_1", "input": "1+1", "status": "completed"})
        );
    }
}

#[cfg(test)]
mod bridge_tests {
    //! The whole bridge, both ways, for Codex's default model's request.
    use serde_json::{Value, json};

    use super::super::responses::{BridgeOptions, reply, request};
    use super::super::to_bytes;

    const CODEX_DEFAULT: &str = include_str!("../../../tests/fixtures/responses/codex_default_request.json");

    fn bridge(req: &Value) -> (Value, super::super::responses::Echo) {
        let (body, echo) = request(&to_bytes(req), &BridgeOptions::default()).unwrap();
        (serde_json::from_slice(&body).unwrap(), echo)
    }

    #[test]
    fn codex_default_model_request_bridges_with_its_additional_tools() {
        let codex: Value = serde_json::from_str(CODEX_DEFAULT).unwrap();
        let (out, echo) = bridge(&codex);
        let mut keys: Vec<&str> = out.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "messages",
                "model",
                "parallel_tool_calls",
                "prompt_cache_key",
                "reasoning_effort",
                "stream",
                "tool_choice",
                "tools"
            ],
            "reasoning.context, text.verbosity and client_metadata stay out"
        );
        let names: Vec<&str> = out["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["function"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "functions__exec",
                "functions__wait",
                "clock__sleep",
                "collaboration__spawn_agent"
            ]
        );
        let exec = &out["tools"][0]["function"];
        assert!(exec["description"].as_str().unwrap().starts_with("Run JavaScript code"));
        let hint = exec["parameters"]["properties"]["input"]["description"]
            .as_str()
            .unwrap();
        assert!(hint.contains("lark grammar:") && hint.contains("PRAGMA_LINE"), "{hint}");
        let roles: Vec<&str> = out["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(
            roles,
            ["system", "user", "user"],
            "the additional_tools item is no message"
        );
        assert!(echo.dropped_tools.is_empty());
    }

    #[test]
    fn a_call_of_the_exec_tool_comes_back_custom_and_goes_back_to_chat_as_a_call() {
        let mut codex: Value = serde_json::from_str(CODEX_DEFAULT).unwrap();
        let (_, echo) = bridge(&codex);
        let js = "text(await tools.exec_command({cmd: \"cat x.txt\"}));";
        let completion = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
                "tool_calls": [{"id": "call_x", "type": "function",
                                "function": {"name": "functions__exec", "arguments": super::arguments(js)}}]}}]});
        let r: Value = serde_json::from_slice(&reply(&to_bytes(&completion), &echo).unwrap()).unwrap();
        let call = &r["output"][0];
        assert_eq!(call["type"], "custom_tool_call");
        assert!(call["id"].as_str().unwrap().starts_with("ctc_"));
        assert_eq!(
            (
                &call["call_id"],
                &call["name"],
                &call["namespace"],
                &call["input"],
                &call["status"]
            ),
            (
                &json!("call_x"),
                &json!("exec"),
                &json!("functions"),
                &json!(js),
                &json!("completed")
            )
        );
        assert!(call.get("arguments").is_none());
        // The next turn: Codex sends the call back with its output.
        let input = codex["input"].as_array_mut().unwrap();
        input.push(call.clone());
        input.push(json!({"type": "custom_tool_call_output", "call_id": "call_x",
                          "output": [{"type": "input_text", "text": "secret-42"}]}));
        let (out, _) = bridge(&codex);
        let m = out["messages"].as_array().unwrap();
        let assistant = &m[m.len() - 2];
        assert_eq!(assistant["role"], "assistant");
        assert_eq!(assistant["tool_calls"][0]["id"], "call_x");
        assert_eq!(assistant["tool_calls"][0]["function"]["name"], "functions__exec");
        let args: Value =
            serde_json::from_str(assistant["tool_calls"][0]["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, json!({"input": js}));
        assert_eq!(
            m[m.len() - 1],
            json!({"role": "tool", "tool_call_id": "call_x", "content": "secret-42"})
        );
    }
}
