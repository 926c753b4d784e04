//! Token usage as providers report it.

use serde::{Deserialize, Serialize};

/// OpenAI's `usage` object (other protocols are translated into it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Tokens generated.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Their sum, as the provider reports it.
    #[serde(default)]
    pub total_tokens: u64,
}
