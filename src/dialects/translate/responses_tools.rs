//! The tools of a Responses request, bridged to chat completions: function tools pass, custom
//! tools become functions of one string (`responses_custom`), the tools of a `namespace` tool are
//! flattened into chat functions (and their calls mapped back), and OpenAI's hosted tools, which no
//! chat upstream runs, are dropped or refused. Tools come from `tools` and from the input's
//! `additional_tools` items (Codex's newest models put theirs there); a tool offered twice is
//! offered once, as last described.
//!
//! A flat name is `<namespace>__<tool>`: chat function names allow only `[A-Za-z0-9_-]` and at
//! most 64 characters (OpenAI, Anthropic and Gemini agree on that much), so `.` or `/` cannot join
//! them, and a double underscore is what models trained on namespaced tools already see for them.
//! A name that would collide with another tool, or pass 64 characters, is cut and numbered
//! (`<prefix>_2`). The names depend only on the request's tools, which a client resends with
//! every turn, so the history it sends back maps to the same names as the tools it offers.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use super::responses_custom as custom;
use super::responses_items::call_item;
use super::{Object, invalid, new_id, unsupported};
use crate::dialects::BodyError;

pub use crate::domain::HostedTools;

/// How `responses::request` bridges what chat completions cannot express.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BridgeOptions {
    /// What to do with hosted tools.
    pub hosted_tools: HostedTools,
    /// The chat upstream is Anthropic's (through the gateway's translation), which takes its own
    /// signed thinking back as `thinking_blocks`; any other would refuse or ignore them.
    pub anthropic_thinking: bool,
}

/// The separator of a flattened namespace tool's name.
const SEPARATOR: &str = "__";

/// The longest function name chat upstreams accept.
const MAX_NAME: usize = 64;

/// Hosted tool types with a fixed name. `shell` and `apply_patch` are OpenAI's built-in tool
/// types (their calls are items of their own), and `tool_search` searches deferred tools: chat has
/// no equivalent for any of them, so a bridge treats them as hosted (Codex sends `apply_patch`
/// and `tool_search` with `gpt-5.5` beside plain function tools that still work).
const HOSTED: &[&str] = &[
    "file_search",
    "code_interpreter",
    "image_generation",
    "mcp",
    "local_shell",
    "shell",
    "apply_patch",
    "tool_search",
];

/// Hosted tool types that come in dated versions (`web_search_preview_2025_03_11`).
const HOSTED_PREFIXES: &[&str] = &["web_search", "computer_use"];

/// Whether `kind` is a tool type OpenAI runs itself, or one chat has no equivalent for.
pub(super) fn is_hosted(kind: &str) -> bool {
    HOSTED.contains(&kind) || HOSTED_PREFIXES.iter().any(|p| kind.starts_with(p))
}

/// A namespaced tool: its namespace and its name inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Namespaced {
    pub namespace: String,
    pub name: String,
}

/// The flat chat names given to namespaced tools, both ways, and which chat names are custom tools.
#[derive(Debug, Clone, Default)]
pub(super) struct ToolNames {
    /// Flat chat name → the namespaced tool.
    by_flat: HashMap<String, Namespaced>,
    /// (namespace, name) → flat chat name.
    by_namespaced: HashMap<(String, String), String>,
    /// The chat names of custom tools.
    custom: HashSet<String>,
}

impl ToolNames {
    /// The namespaced tool a chat call's `name` stands for, if it is one.
    pub(super) fn namespaced(&self, flat: &str) -> Option<&Namespaced> {
        self.by_flat.get(flat)
    }

    /// The chat name of `name` inside `namespace`: the one given to the offered tool, or, for a
    /// tool no longer offered (history), the plain joined name.
    pub(super) fn flat(&self, namespace: &str, name: &str) -> String {
        self.by_namespaced
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
            .unwrap_or_else(|| cut(&joined(namespace, name), MAX_NAME).to_owned())
    }

    /// Whether the chat name `chat` is a custom tool's.
    pub(super) fn is_custom(&self, chat: &str) -> bool {
        self.custom.contains(chat)
    }
}

/// A request's tools in chat terms.
#[derive(Debug, Default)]
pub(super) struct Tools {
    /// Chat `tools` entries.
    pub chat: Vec<Value>,
    /// The flat names of namespaced tools.
    pub names: ToolNames,
    /// The hosted tool types left out, each once, in request order.
    pub dropped: Vec<String>,
    /// (namespace, name) → its entry in `chat`, so a tool offered again replaces its entry.
    offered: HashMap<(Option<String>, String), usize>,
}

/// A request's tool lists: `tools`, then each `additional_tools` input item's, with the path of
/// each list for errors.
fn lists(req: &Object) -> Result<Vec<(String, &[Value])>, BodyError> {
    let mut out = Vec::new();
    match req.get("tools") {
        Some(Value::Array(list)) => out.push(("tools".to_owned(), list.as_slice())),
        None | Some(Value::Null) => {}
        Some(_) => return Err(invalid("`tools` must be an array", Some("tools"))),
    }
    let items = req.get("input").and_then(Value::as_array).into_iter().flatten();
    for (i, item) in items.enumerate() {
        if kind(item) != Some("additional_tools") {
            continue;
        }
        let Some(list) = item.get("tools").and_then(Value::as_array) else {
            return Err(invalid(
                "an additional_tools item needs a `tools` array",
                Some(&format!("input[{i}].tools")),
            ));
        };
        out.push((format!("input[{i}].tools"), list.as_slice()));
    }
    Ok(out)
}

/// A Responses request's tools (`tools` and `additional_tools` items) → chat tools.
pub(super) fn tools(req: &Object, hosted: HostedTools) -> Result<Tools, BodyError> {
    let lists = lists(req)?;
    let mut out = Tools::default();
    // Plain tool names are the client's own and keep their names; namespaced ones give way.
    let mut taken: HashSet<String> = lists
        .iter()
        .flat_map(|(_, list)| list.iter())
        .filter(|t| matches!(kind(t), Some("function" | "custom")))
        .filter_map(|t| t.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect();
    for (at, list) in &lists {
        for (i, t) in list.iter().enumerate() {
            let at = format!("{at}[{i}]");
            match kind(t) {
                Some("function" | "custom") => out.plain(t, &at)?,
                Some("namespace") => namespace(t, &at, &mut taken, &mut out)?,
                Some(k) if is_hosted(k) => out.hosted(k, &at, hosted)?,
                Some(k) => {
                    return Err(unsupported(
                        format!(
                            "tool type `{k}` cannot be bridged to chat completions; only function, custom and namespace tools are"
                        ),
                        Some(&format!("{at}.type")),
                    ));
                }
                None => {
                    return Err(invalid(
                        "each tool must be an object with a string `type`",
                        Some(&format!("{at}.type")),
                    ));
                }
            }
        }
    }
    Ok(out)
}

impl Tools {
    /// Offers `chat` for (namespace, name), in place of an earlier offer of the same tool.
    fn offer(&mut self, namespace: Option<&str>, name: &str, chat: Value) {
        let key = (namespace.map(str::to_owned), name.to_owned());
        match self.offered.get(&key) {
            Some(&at) => self.chat[at] = chat,
            None => {
                self.offered.insert(key, self.chat.len());
                self.chat.push(chat);
            }
        }
    }

    /// A function or custom tool outside any namespace, under its own name.
    fn plain(&mut self, t: &Value, at: &str) -> Result<(), BodyError> {
        let Some(name) = t.get("name").and_then(Value::as_str) else {
            return Err(invalid(
                "a function or custom tool needs a string `name`",
                Some(&format!("{at}.name")),
            ));
        };
        let chat = if kind(t) == Some("custom") {
            self.names.custom.insert(name.to_owned());
            custom::chat_tool(t, name)
        } else {
            function(t, None)
        };
        self.offer(None, name, chat);
        Ok(())
    }

    fn hosted(&mut self, k: &str, at: &str, hosted: HostedTools) -> Result<(), BodyError> {
        match hosted {
            HostedTools::Drop => {
                if !self.dropped.iter().any(|d| d == k) {
                    self.dropped.push(k.to_owned());
                }
                Ok(())
            }
            HostedTools::Reject => Err(unsupported(
                format!(
                    "tool type `{k}` is hosted by OpenAI and cannot be bridged to chat completions; remove it from `tools`"
                ),
                Some(&format!("{at}.type")),
            )),
        }
    }
}

fn kind(t: &Value) -> Option<&str> {
    t.get("type").and_then(Value::as_str)
}

/// A Responses function tool → a chat function tool, under `name` when given.
fn function(t: &Value, name: Option<&str>) -> Value {
    let mut f = Object::new();
    for k in ["name", "description", "parameters", "strict"] {
        if let Some(v) = t.get(k).filter(|v| !v.is_null()) {
            f.insert(k.into(), v.clone());
        }
    }
    if let Some(name) = name {
        f.insert("name".into(), json!(name));
    }
    json!({ "type": "function", "function": f })
}

fn namespace(t: &Value, at: &str, taken: &mut HashSet<String>, out: &mut Tools) -> Result<(), BodyError> {
    let Some(ns) = t.get("name").and_then(Value::as_str) else {
        return Err(invalid(
            "a namespace tool needs a string `name`",
            Some(&format!("{at}.name")),
        ));
    };
    let Some(inner) = t.get("tools").and_then(Value::as_array) else {
        return Err(invalid(
            "a namespace tool needs a `tools` array",
            Some(&format!("{at}.tools")),
        ));
    };
    for (j, f) in inner.iter().enumerate() {
        let custom = match kind(f) {
            Some("function") => false,
            Some("custom") => true,
            other => {
                return Err(unsupported(
                    format!(
                        "tool type `{}` inside namespace `{ns}` cannot be bridged to chat completions; only function and custom tools are",
                        other.unwrap_or("?")
                    ),
                    Some(&format!("{at}.tools[{j}].type")),
                ));
            }
        };
        let Some(name) = f.get("name").and_then(Value::as_str) else {
            return Err(invalid(
                "a function or custom tool needs a string `name`",
                Some(&format!("{at}.tools[{j}].name")),
            ));
        };
        let key = (ns.to_owned(), name.to_owned());
        let flat = match out.names.by_namespaced.get(&key) {
            Some(flat) => flat.clone(),
            None => unique(&joined(ns, name), taken),
        };
        taken.insert(flat.clone());
        let chat = if custom {
            out.names.custom.insert(flat.clone());
            custom::chat_tool(f, &flat)
        } else {
            function(f, Some(&flat))
        };
        out.offer(Some(ns), name, chat);
        out.names.by_namespaced.insert(key, flat.clone());
        out.names.by_flat.insert(
            flat,
            Namespaced {
                namespace: ns.to_owned(),
                name: name.to_owned(),
            },
        );
    }
    Ok(())
}

/// `<namespace>__<name>`, with characters chat names refuse replaced by `_`.
fn joined(namespace: &str, name: &str) -> String {
    format!("{namespace}{SEPARATOR}{name}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect()
}

/// `name`'s first `max` bytes (`name` is ASCII after `joined`).
fn cut(name: &str, max: usize) -> &str {
    name.get(..max.min(name.len())).unwrap_or(name)
}

/// `base` when free and short enough, else a cut of it numbered until free.
fn unique(base: &str, taken: &HashSet<String>) -> String {
    if base.len() <= MAX_NAME && !taken.contains(base) {
        return base.to_owned();
    }
    let mut k = 2usize;
    loop {
        let suffix = format!("_{k}");
        let candidate = format!("{}{suffix}", cut(base, MAX_NAME - suffix.len()));
        if !taken.contains(&candidate) {
            return candidate;
        }
        k += 1;
    }
}

/// The chat name of a call item (or tool choice) naming `name`, and `namespace` when it has one.
fn chat_name(item: &Value, names: &ToolNames) -> Value {
    match (
        item.get("namespace").and_then(Value::as_str),
        item.get("name").and_then(Value::as_str),
    ) {
        (Some(ns), Some(name)) => json!(names.flat(ns, name)),
        _ => item.get("name").cloned().unwrap_or_default(),
    }
}

/// A Responses `tool_choice` → chat's, or `None` when chat should get none (it named a dropped
/// hosted tool: the model chooses, as with "auto").
pub(super) fn tool_choice(choice: &Value, names: &ToolNames, hosted: HostedTools) -> Result<Option<Value>, BodyError> {
    let kind = choice.get("type").and_then(Value::as_str);
    match (choice, kind) {
        (Value::String(_), _) => Ok(Some(choice.clone())),
        (_, Some("function" | "custom")) => Ok(Some(
            json!({ "type": "function", "function": { "name": chat_name(choice, names) } }),
        )),
        (_, Some(k)) if is_hosted(k) && hosted == HostedTools::Drop => Ok(None),
        _ => Err(unsupported(
            "tool_choice may be auto, none, required, a function or a custom tool",
            Some("tool_choice"),
        )),
    }
}

/// A `function_call` or `custom_tool_call` input item → a chat tool call (a custom tool's raw
/// `input` becomes the arguments `{"input": ...}`).
pub(super) fn chat_call(item: &Value, names: &ToolNames) -> Value {
    let arguments = match (kind(item), item.get("input")) {
        (Some("custom_tool_call"), Some(Value::String(input))) => json!(custom::arguments(input)),
        _ => item.get("arguments").cloned().unwrap_or_else(|| json!("{}")),
    };
    json!({
        "id": item.get("call_id").cloned().unwrap_or_default(),
        "type": "function",
        "function": { "name": chat_name(item, names), "arguments": arguments },
    })
}

/// What a chat call becomes in Responses terms: its item's `name` (and `namespace`) fields, and
/// whether it is a custom tool's call.
#[derive(Debug, Clone, Default)]
pub(super) struct CallName {
    /// `name`, and `namespace` for a flattened tool.
    pub fields: Object,
    /// A custom tool's call: a `custom_tool_call` item whose `input` is the raw text.
    pub custom: bool,
}

impl CallName {
    /// A new output item id for this call: `ctc_` for a custom tool's, `fc_` for a function's.
    pub(super) fn item_id(&self) -> String {
        new_id(if self.custom { "ctc_" } else { "fc_" })
    }

    /// The completed (or `status`) output item for chat `arguments`.
    pub(super) fn item(&self, id: &str, call_id: &Value, arguments: &str, status: &str) -> Value {
        if self.custom {
            call_item(true, id, call_id, &self.fields, &custom::input(arguments), status)
        } else {
            call_item(false, id, call_id, &self.fields, arguments, status)
        }
    }
}

/// How the call item for chat's call `name` is named, and whether it is a custom tool's.
pub(super) fn call_name(names: &ToolNames, chat_name: &Value) -> CallName {
    let mut fields = Object::new();
    match chat_name.as_str().and_then(|n| names.namespaced(n)) {
        Some(n) => {
            fields.insert("name".into(), json!(n.name));
            fields.insert("namespace".into(), json!(n.namespace));
        }
        None => {
            fields.insert("name".into(), chat_name.clone());
        }
    }
    let custom = chat_name.as_str().is_some_and(|n| names.is_custom(n));
    CallName { fields, custom }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tools()` of a request with these `tools`.
    fn of(list: &[Value], hosted: HostedTools) -> Result<Tools, BodyError> {
        let req = json!({"model": "m", "input": "x", "tools": list});
        tools(req.as_object().unwrap(), hosted)
    }

    fn codex_tools() -> Vec<Value> {
        let f = |name: &str| {
            json!({"type": "function", "name": name, "description": "d", "strict": false,
                                    "parameters": {"type": "object", "properties": {}, "additionalProperties": false}})
        };
        let agents = ["spawn_agent", "send_input", "wait_agent", "resume_agent", "close_agent"];
        let mut tools: Vec<Value> = ["exec_command", "write_stdin", "request_user_input", "view_image"]
            .iter()
            .map(|n| f(n))
            .collect();
        tools.push(
            json!({"type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents.",
                          "tools": agents.iter().map(|n| f(n)).collect::<Vec<_>>()}),
        );
        tools.push(json!({"type": "web_search"}));
        tools
    }

    #[test]
    fn namespace_tools_flatten_and_hosted_ones_drop() {
        let t = of(&codex_tools(), HostedTools::Drop).unwrap();
        let names: Vec<&str> = t.chat.iter().map(|c| c["function"]["name"].as_str().unwrap()).collect();
        assert_eq!(names.len(), 9);
        assert!(names.contains(&"multi_agent_v1__spawn_agent"), "{names:?}");
        assert!(t.chat.iter().all(|c| c["type"] == "function"));
        assert_eq!(t.chat[4]["function"]["description"], "d");
        assert_eq!(t.dropped, ["web_search"]);
        let n = t.names.namespaced("multi_agent_v1__wait_agent").unwrap();
        assert_eq!(
            (n.namespace.as_str(), n.name.as_str()),
            ("multi_agent_v1", "wait_agent")
        );
        assert_eq!(
            t.names.flat("multi_agent_v1", "close_agent"),
            "multi_agent_v1__close_agent"
        );
    }

    #[test]
    fn hosted_tools_are_refused_when_asked_and_unknown_ones_always() {
        let e = of(&codex_tools(), HostedTools::Reject).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools[5].type"));
        assert!(e.message.contains("web_search"), "{}", e.message);
        let e = of(&[json!({"type": "holographic_display"})], HostedTools::Drop).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools[0].type"));
        let nested = json!({"type": "namespace", "name": "n", "tools": [{"type": "web_search"}]});
        let e = of(&[nested], HostedTools::Drop).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools[0].tools[0].type"));
        for hosted in [
            "web_search_preview_2025_03_11",
            "computer_use_preview",
            "mcp",
            "local_shell",
            "shell",
            "apply_patch",
            "tool_search",
        ] {
            let t = of(&[json!({"type": hosted})], HostedTools::Drop).unwrap();
            assert_eq!(t.dropped, [hosted]);
        }
    }

    #[test]
    fn flat_names_stay_unique_and_within_64_characters() {
        let long = "a".repeat(60);
        let list = [
            json!({"type": "function", "name": "ns__f"}),
            json!({"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "f"}]}),
            json!({"type": "namespace", "name": "mcp.server", "tools": [{"type": "function", "name": long}, {"type": "function", "name": format!("{long}b")}]}),
        ];
        let t = of(&list, HostedTools::Drop).unwrap();
        let names: Vec<&str> = t.chat.iter().map(|c| c["function"]["name"].as_str().unwrap()).collect();
        assert_eq!(names[0], "ns__f", "the client's own name is kept");
        assert_eq!(names[1], "ns__f_2");
        assert!(names.iter().all(|n| n.len() <= 64), "{names:?}");
        assert!(names[2].starts_with("mcp_server__"), "{names:?}");
        assert_ne!(names[2], names[3]);
        assert_eq!(t.names.namespaced(names[1]).unwrap().name, "f");
        assert_eq!(t.names.flat("ns", "f"), "ns__f_2");
    }

    #[test]
    fn tool_choice_maps_functions_and_forgets_dropped_tools() {
        let t = of(&codex_tools(), HostedTools::Drop).unwrap();
        assert_eq!(
            tool_choice(&json!("auto"), &t.names, HostedTools::Drop).unwrap(),
            Some(json!("auto"))
        );
        let ns = json!({"type": "function", "name": "spawn_agent", "namespace": "multi_agent_v1"});
        assert_eq!(
            tool_choice(&ns, &t.names, HostedTools::Drop).unwrap(),
            Some(json!({"type": "function", "function": {"name": "multi_agent_v1__spawn_agent"}}))
        );
        let web = json!({"type": "web_search_preview"});
        assert_eq!(tool_choice(&web, &t.names, HostedTools::Drop).unwrap(), None);
        assert!(tool_choice(&web, &t.names, HostedTools::Reject).is_err());
    }

    #[test]
    fn chat_call_names_map_back_to_namespaced_tools() {
        let t = of(&codex_tools(), HostedTools::Drop).unwrap();
        let spawn = call_name(&t.names, &json!("multi_agent_v1__spawn_agent"));
        assert_eq!(
            Value::Object(spawn.fields),
            json!({"name": "spawn_agent", "namespace": "multi_agent_v1"})
        );
        assert!(!spawn.custom);
        assert_eq!(
            Value::Object(call_name(&t.names, &json!("exec_command")).fields),
            json!({"name": "exec_command"})
        );
    }

    /// Codex's default model: no `tools`, an `additional_tools` item holding namespaces, one of
    /// them with the `exec` custom tool (tests/fixtures/responses/codex_default_request.json).
    fn additional_tools_request() -> Value {
        let f = |name: &str| json!({"type": "function", "name": name, "parameters": {"type": "object"}});
        json!({"model": "gpt-6.2-sol", "input": [
            {"type": "additional_tools", "id": "at_1", "role": "developer", "tools": [
                {"type": "namespace", "name": "functions", "description": "", "tools": [
                    {"type": "custom", "name": "exec", "description": "Run JavaScript.",
                     "format": {"type": "grammar", "syntax": "lark", "definition": "start: SOURCE\nSOURCE: /[\\s\\S]+/"}},
                    f("wait")]},
                {"type": "namespace", "name": "clock", "tools": [f("sleep")]},
                {"type": "web_search"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "read x.txt"}]}]})
    }

    #[test]
    fn additional_tools_items_join_the_request_tools_with_custom_tools_as_one_string_functions() {
        let req = additional_tools_request();
        let t = tools(req.as_object().unwrap(), HostedTools::Drop).unwrap();
        let names: Vec<&str> = t.chat.iter().map(|c| c["function"]["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["functions__exec", "functions__wait", "clock__sleep"]);
        assert_eq!(t.dropped, ["web_search"]);
        assert_eq!(t.chat[0]["function"]["parameters"]["required"], json!(["input"]));
        let exec = call_name(&t.names, &json!("functions__exec"));
        assert!(exec.custom);
        assert_eq!(
            Value::Object(exec.fields.clone()),
            json!({"name": "exec", "namespace": "functions"})
        );
        let item = exec.item("ctc_1", &json!("call_1"), r#"{"input":"text(1)"}"#, "completed");
        assert_eq!(
            item,
            json!({"type": "custom_tool_call", "id": "ctc_1", "call_id": "call_1", "input": "text(1)",
                   "status": "completed", "name": "exec", "namespace": "functions"})
        );
        assert!(!call_name(&t.names, &json!("functions__wait")).custom);
        let e = tools(req.as_object().unwrap(), HostedTools::Reject).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input[0].tools[2].type"));
    }

    #[test]
    fn a_tool_offered_again_is_offered_once_as_last_described() {
        let mut req = additional_tools_request();
        let again = json!({"type": "additional_tools", "role": "developer", "tools": [
            {"type": "namespace", "name": "clock", "tools": [{"type": "function", "name": "sleep", "description": "newer"}]},
            {"type": "custom", "name": "apply_patch"}]});
        req["input"].as_array_mut().unwrap().push(again);
        req["tools"] = json!([{"type": "custom", "name": "apply_patch", "description": "first"}]);
        let t = tools(req.as_object().unwrap(), HostedTools::Drop).unwrap();
        let names: Vec<&str> = t.chat.iter().map(|c| c["function"]["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            ["apply_patch", "functions__exec", "functions__wait", "clock__sleep"]
        );
        assert_eq!(t.chat[3]["function"]["description"], "newer");
        assert!(t.chat[0]["function"].get("description").is_none());
        assert!(call_name(&t.names, &json!("apply_patch")).custom);
    }

    #[test]
    fn custom_tool_calls_in_the_history_become_chat_calls_and_custom_choices_functions() {
        let req = additional_tools_request();
        let t = tools(req.as_object().unwrap(), HostedTools::Drop).unwrap();
        let item = json!({"type": "custom_tool_call", "call_id": "call_1", "namespace": "functions", "name": "exec",
                          "input": "text(\"a\")"});
        let call = chat_call(&item, &t.names);
        assert_eq!(call["function"]["name"], "functions__exec");
        let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, json!({"input": "text(\"a\")"}));
        assert_eq!(call["id"], "call_1");
        let choice = json!({"type": "custom", "name": "exec", "namespace": "functions"});
        assert_eq!(
            tool_choice(&choice, &t.names, HostedTools::Drop).unwrap(),
            Some(json!({"type": "function", "function": {"name": "functions__exec"}}))
        );
    }
}
