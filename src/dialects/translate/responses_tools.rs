//! The tools of a Responses request, bridged to chat completions: function tools pass, the
//! function tools of a `namespace` tool are flattened into chat functions (and their calls mapped
//! back), and OpenAI's hosted tools, which no chat upstream runs, are dropped or refused.
//!
//! A flat name is `<namespace>__<tool>`: chat function names allow only `[A-Za-z0-9_-]` and at
//! most 64 characters (OpenAI, Anthropic and Gemini agree on that much), so `.` or `/` cannot join
//! them, and a double underscore is what models trained on namespaced tools already see for them.
//! A name that would collide with another tool, or pass 64 characters, is cut and numbered
//! (`<prefix>_2`). The names depend only on the request's `tools`, which a client resends with
//! every turn, so the history it sends back maps to the same names as the tools it offers.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use super::{Object, invalid, unsupported};
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

/// Hosted tool types with a fixed name.
const HOSTED: &[&str] = &[
    "file_search",
    "code_interpreter",
    "image_generation",
    "mcp",
    "local_shell",
];

/// Hosted tool types that come in dated versions (`web_search_preview_2025_03_11`).
const HOSTED_PREFIXES: &[&str] = &["web_search", "computer_use"];

/// Whether `kind` is a tool type OpenAI runs itself.
pub(super) fn is_hosted(kind: &str) -> bool {
    HOSTED.contains(&kind) || HOSTED_PREFIXES.iter().any(|p| kind.starts_with(p))
}

/// A namespaced tool: its namespace and its name inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Namespaced {
    pub namespace: String,
    pub name: String,
}

/// The flat chat names given to namespaced tools, both ways.
#[derive(Debug, Clone, Default)]
pub(super) struct ToolNames {
    /// Flat chat name → the namespaced tool.
    by_flat: HashMap<String, Namespaced>,
    /// (namespace, name) → flat chat name.
    by_namespaced: HashMap<(String, String), String>,
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
}

/// The Responses `tools` array → chat tools.
pub(super) fn tools(tools: &[Value], hosted: HostedTools) -> Result<Tools, BodyError> {
    let mut out = Tools::default();
    // Plain function names are the client's own and keep their names; namespaced ones give way.
    let mut taken: HashSet<String> = tools
        .iter()
        .filter(|t| kind(t) == Some("function"))
        .filter_map(|t| t.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect();
    for (i, t) in tools.iter().enumerate() {
        match kind(t) {
            Some("function") => out.chat.push(function(t, None)),
            Some("namespace") => namespace(t, i, &mut taken, &mut out)?,
            Some(k) if is_hosted(k) => match hosted {
                HostedTools::Drop => {
                    if !out.dropped.iter().any(|d| d == k) {
                        out.dropped.push(k.to_owned());
                    }
                }
                HostedTools::Reject => {
                    return Err(unsupported(
                        format!(
                            "tool type `{k}` is hosted by OpenAI and cannot be bridged to chat completions; remove it from `tools`"
                        ),
                        Some(&format!("tools[{i}].type")),
                    ));
                }
            },
            Some(k) => {
                return Err(unsupported(
                    format!(
                        "tool type `{k}` cannot be bridged to chat completions; only function and namespace tools are"
                    ),
                    Some(&format!("tools[{i}].type")),
                ));
            }
            None => {
                return Err(invalid(
                    "each tool must be an object with a string `type`",
                    Some(&format!("tools[{i}].type")),
                ));
            }
        }
    }
    Ok(out)
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

fn namespace(t: &Value, i: usize, taken: &mut HashSet<String>, out: &mut Tools) -> Result<(), BodyError> {
    let Some(ns) = t.get("name").and_then(Value::as_str) else {
        return Err(invalid(
            "a namespace tool needs a string `name`",
            Some(&format!("tools[{i}].name")),
        ));
    };
    let Some(inner) = t.get("tools").and_then(Value::as_array) else {
        return Err(invalid(
            "a namespace tool needs a `tools` array",
            Some(&format!("tools[{i}].tools")),
        ));
    };
    for (j, f) in inner.iter().enumerate() {
        if kind(f) != Some("function") {
            return Err(unsupported(
                format!(
                    "tool type `{}` inside namespace `{ns}` cannot be bridged to chat completions; only function tools are",
                    kind(f).unwrap_or("?")
                ),
                Some(&format!("tools[{i}].tools[{j}].type")),
            ));
        }
        let Some(name) = f.get("name").and_then(Value::as_str) else {
            return Err(invalid(
                "a function tool needs a string `name`",
                Some(&format!("tools[{i}].tools[{j}].name")),
            ));
        };
        let flat = unique(&joined(ns, name), taken);
        taken.insert(flat.clone());
        out.chat.push(function(f, Some(&flat)));
        out.names
            .by_namespaced
            .insert((ns.to_owned(), name.to_owned()), flat.clone());
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

/// A Responses `tool_choice` → chat's, or `None` when chat should get none (it named a dropped
/// hosted tool: the model chooses, as with "auto").
pub(super) fn tool_choice(choice: &Value, names: &ToolNames, hosted: HostedTools) -> Result<Option<Value>, BodyError> {
    let kind = choice.get("type").and_then(Value::as_str);
    match (choice, kind) {
        (Value::String(_), _) => Ok(Some(choice.clone())),
        (_, Some("function")) => {
            let name = choice.get("name").and_then(Value::as_str).unwrap_or_default();
            let name = match choice.get("namespace").and_then(Value::as_str) {
                Some(ns) => names.flat(ns, name),
                None => name.to_owned(),
            };
            Ok(Some(json!({ "type": "function", "function": { "name": name } })))
        }
        (_, Some(k)) if is_hosted(k) && hosted == HostedTools::Drop => Ok(None),
        _ => Err(unsupported(
            "tool_choice may be auto, none, required or a function",
            Some("tool_choice"),
        )),
    }
}

/// The `name` (and `namespace`) fields of a function call item for chat's call `name`.
pub(super) fn call_name(names: &ToolNames, chat_name: &Value) -> Object {
    let mut out = Object::new();
    match chat_name.as_str().and_then(|n| names.namespaced(n)) {
        Some(n) => {
            out.insert("name".into(), json!(n.name));
            out.insert("namespace".into(), json!(n.namespace));
        }
        None => {
            out.insert("name".into(), chat_name.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let t = tools(&codex_tools(), HostedTools::Drop).unwrap();
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
        let e = tools(&codex_tools(), HostedTools::Reject).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools[5].type"));
        assert!(e.message.contains("web_search"), "{}", e.message);
        let e = tools(&[json!({"type": "custom", "name": "apply_patch"})], HostedTools::Drop).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools[0].type"));
        let nested = json!({"type": "namespace", "name": "n", "tools": [{"type": "custom", "name": "x"}]});
        let e = tools(&[nested], HostedTools::Drop).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools[0].tools[0].type"));
        for hosted in [
            "web_search_preview_2025_03_11",
            "computer_use_preview",
            "mcp",
            "local_shell",
        ] {
            let t = tools(&[json!({"type": hosted})], HostedTools::Drop).unwrap();
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
        let t = tools(&list, HostedTools::Drop).unwrap();
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
        let t = tools(&codex_tools(), HostedTools::Drop).unwrap();
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
        let t = tools(&codex_tools(), HostedTools::Drop).unwrap();
        assert_eq!(
            Value::Object(call_name(&t.names, &json!("multi_agent_v1__spawn_agent"))),
            json!({"name": "spawn_agent", "namespace": "multi_agent_v1"})
        );
        assert_eq!(
            Value::Object(call_name(&t.names, &json!("exec_command"))),
            json!({"name": "exec_command"})
        );
    }
}
