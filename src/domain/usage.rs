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
        };
        let end = Usage {
            prompt_tokens: 0,
            completion_tokens: 15,
            total_tokens: 0,
        };
        let u = start.merge(end);
        assert_eq!((u.prompt_tokens, u.completion_tokens, u.total_tokens), (25, 15, 40));
    }

    #[test]
    fn merge_saturates_hostile_counts() {
        let huge = Usage {
            prompt_tokens: u64::MAX,
            completion_tokens: 1,
            total_tokens: 0,
        };
        assert_eq!(huge.merge(Usage::default()).total_tokens, u64::MAX);
    }
}
