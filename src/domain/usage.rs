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
    /// Of `prompt_tokens`, those read from the provider's prompt cache (chat
    /// `prompt_tokens_details.cached_tokens`, Anthropic `cache_read_input_tokens`).
    #[serde(default)]
    pub cached_tokens: u64,
    /// Of `prompt_tokens`, those written to the provider's prompt cache (Anthropic
    /// `cache_creation_input_tokens`); priced apart from plain input.
    #[serde(default)]
    pub cache_write_tokens: u64,
    /// Of `completion_tokens`, those spent on reasoning (`completion_tokens_details.reasoning_tokens`).
    #[serde(default)]
    pub reasoning_tokens: u64,
}

impl Usage {
    /// Counts from two reports of the same answer (a stream's start and its end), each field the
    /// larger; the total is at least prompt plus completion.
    pub fn merge(self, other: Usage) -> Usage {
        let prompt_tokens = self.prompt_tokens.max(other.prompt_tokens);
        let completion_tokens = self.completion_tokens.max(other.completion_tokens);
        let total_tokens = self
            .total_tokens
            .max(other.total_tokens)
            .max(prompt_tokens.saturating_add(completion_tokens));
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens,
            cached_tokens: self.cached_tokens.max(other.cached_tokens),
            cache_write_tokens: self.cache_write_tokens.max(other.cache_write_tokens),
            reasoning_tokens: self.reasoning_tokens.max(other.reasoning_tokens),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_the_larger_counts() {
        let start = Usage {
            prompt_tokens: 25,
            completion_tokens: 1,
            total_tokens: 0,
            cached_tokens: 20,
            ..Usage::default()
        };
        let end = Usage {
            prompt_tokens: 0,
            completion_tokens: 15,
            total_tokens: 0,
            reasoning_tokens: 4,
            ..Usage::default()
        };
        let u = start.merge(end);
        assert_eq!((u.prompt_tokens, u.completion_tokens, u.total_tokens), (25, 15, 40));
        assert_eq!((u.cached_tokens, u.reasoning_tokens), (20, 4));
    }

    #[test]
    fn merge_saturates_hostile_counts() {
        let huge = Usage {
            prompt_tokens: u64::MAX,
            completion_tokens: 1,
            ..Usage::default()
        };
        assert_eq!(huge.merge(Usage::default()).total_tokens, u64::MAX);
    }
}
