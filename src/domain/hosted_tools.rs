//! What a bridge does with hosted tools, a setting both the config and the bridge read.

use serde::Deserialize;

/// What the Responses bridge does with a hosted tool (`web_search`, `file_search`, ...): a tool
/// OpenAI runs on its own servers, which a chat completions upstream has no equivalent for
/// (`responses_bridge.hosted_tools`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HostedTools {
    /// Leave it out of the chat request and name it in `x-ai-gateway-dropped-tools`: the model
    /// answers without it (clients such as Codex offer web search with every request).
    #[default]
    Drop,
    /// Refuse the request (400, `tools[i].type`).
    Reject,
}
