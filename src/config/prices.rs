//! Token prices (USD per million tokens) and the cost of one request's usage.
//!
//! The catalogue carries each hosted vendor's published prices beside its models; the field names
//! are the ones a configuration price entry uses too. A model without a price costs `None`, never
//! 0, so an unknown cost is never mistaken for a free one.

use serde::{Deserialize, Serialize};

use crate::domain::Usage;

/// One model's prices, USD per million tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Prompt tokens neither read from nor written to the prompt cache.
    pub input: f64,
    /// Generated tokens (reasoning included unless `reasoning` is set).
    pub output: f64,
    /// Prompt tokens read from the cache, when the vendor charges them apart (else `input`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<f64>,
    /// Prompt tokens written to the cache, when the vendor charges them apart (else `input`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<f64>,
    /// Reasoning tokens, when they differ from `output`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<f64>,
    /// Prices for the whole request once the prompt is longer than a threshold, ascending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<Tier>,
    /// The most tokens the model generates in one answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
}

/// Prices that replace the base ones for a request whose prompt exceeds `above_input_tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// The tier applies when `prompt_tokens` is greater than this.
    pub above_input_tokens: u64,
    /// As `Price::input`.
    pub input: f64,
    /// As `Price::output`.
    pub output: f64,
    /// As `Price::cached_input` (else this tier's `input`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<f64>,
    /// As `Price::cache_write` (else this tier's `input`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<f64>,
    /// As `Price::reasoning` (else this tier's `output`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<f64>,
}

/// The five rates one request is charged at, after the tier is chosen.
struct Rates {
    input: f64,
    output: f64,
    cached_input: Option<f64>,
    cache_write: Option<f64>,
    reasoning: Option<f64>,
}

impl Price {
    /// Every problem with these prices, each prefixed with `at` (negative or non-finite numbers,
    /// tiers out of order, a zero output cap).
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |field: &str, value: Option<f64>| {
            if let Some(v) = value
                && !(v.is_finite() && v >= 0.0)
            {
                out.push(format!("{at}: `{field}` must be a non-negative number, not {v}"));
            }
        };
        check("input", Some(self.input));
        check("output", Some(self.output));
        check("cached_input", self.cached_input);
        check("cache_write", self.cache_write);
        check("reasoning", self.reasoning);
        for (i, t) in self.tiers.iter().enumerate() {
            check(&format!("tiers[{i}].input"), Some(t.input));
            check(&format!("tiers[{i}].output"), Some(t.output));
            check(&format!("tiers[{i}].cached_input"), t.cached_input);
            check(&format!("tiers[{i}].cache_write"), t.cache_write);
            check(&format!("tiers[{i}].reasoning"), t.reasoning);
        }
        for (i, pair) in self.tiers.windows(2).enumerate() {
            if pair[1].above_input_tokens <= pair[0].above_input_tokens {
                out.push(format!(
                    "{at}: `tiers[{}].above_input_tokens` must be greater than the tier before it",
                    i + 1
                ));
            }
        }
        if self.max_output_tokens == Some(0) {
            out.push(format!("{at}: `max_output_tokens` must be at least 1"));
        }
        out
    }

    fn rates(&self, prompt_tokens: u64) -> Rates {
        match self.tiers.iter().rev().find(|t| prompt_tokens > t.above_input_tokens) {
            Some(t) => Rates {
                input: t.input,
                output: t.output,
                cached_input: t.cached_input,
                cache_write: t.cache_write,
                reasoning: t.reasoning,
            },
            None => Rates {
                input: self.input,
                output: self.output,
                cached_input: self.cached_input,
                cache_write: self.cache_write,
                reasoning: self.reasoning,
            },
        }
    }
}

/// What `usage` cost in USD at `price`; `None` when the model has no price.
///
/// `prompt_tokens` includes the cached and cache-write tokens and `completion_tokens` the
/// reasoning ones, so each part is taken out of its total (clamped, since a vendor's counts are
/// not trusted to add up); the tier is chosen by the whole prompt.
pub fn cost(usage: &Usage, price: Option<&Price>) -> Option<f64> {
    let price = price?;
    let r = price.rates(usage.prompt_tokens);
    let cached = usage.cached_tokens.min(usage.prompt_tokens);
    let written = usage.cache_write_tokens.min(usage.prompt_tokens - cached);
    let fresh = usage.prompt_tokens - cached - written;
    let reasoning = usage.reasoning_tokens.min(usage.completion_tokens);
    let answer = usage.completion_tokens - reasoning;
    // u64 → f64 is exact below 2^53 tokens, far beyond any one request.
    let per_million = fresh as f64 * r.input
        + cached as f64 * r.cached_input.unwrap_or(r.input)
        + written as f64 * r.cache_write.unwrap_or(r.input)
        + reasoning as f64 * r.reasoning.unwrap_or(r.output)
        + answer as f64 * r.output;
    Some(per_million / 1_000_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(input: f64, output: f64) -> Price {
        Price {
            input,
            output,
            cached_input: None,
            cache_write: None,
            reasoning: None,
            tiers: Vec::new(),
            max_output_tokens: None,
        }
    }

    fn usage(prompt: u64, cached: u64, written: u64, completion: u64, reasoning: u64) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            cached_tokens: cached,
            cache_write_tokens: written,
            reasoning_tokens: reasoning,
        }
    }

    fn assert_usd(got: Option<f64>, want: f64) {
        let got = got.expect("a priced model has a cost");
        assert!((got - want).abs() < 1e-12, "cost {got}, expected {want}");
    }

    #[test]
    fn an_unpriced_model_costs_nothing_known_not_zero() {
        assert_eq!(cost(&usage(1_000, 0, 0, 500, 0), None), None);
    }

    #[test]
    fn cached_input_is_charged_at_its_own_rate() {
        // gpt-4o-mini's prices: 800 fresh × 0.15 + 200 cached × 0.075 + 500 × 0.60, per million.
        let p = Price {
            cached_input: Some(0.075),
            ..price(0.15, 0.60)
        };
        assert_usd(cost(&usage(1_000, 200, 0, 500, 0), Some(&p)), 0.000_435);
    }

    #[test]
    fn without_a_cached_rate_cached_tokens_cost_input() {
        assert_usd(cost(&usage(1_000, 200, 0, 500, 0), Some(&price(2.0, 10.0))), 0.007);
    }

    #[test]
    fn cache_writes_and_reasoning_have_their_rates_and_fall_back() {
        let p = Price {
            cached_input: Some(0.5),
            cache_write: Some(6.25),
            reasoning: Some(30.0),
            ..price(5.0, 25.0)
        };
        // 600 fresh × 5 + 100 cached × 0.5 + 300 written × 6.25 + 40 reasoning × 30 + 160 × 25.
        let expected = (3_000.0 + 50.0 + 1_875.0 + 1_200.0 + 4_000.0) / 1e6;
        assert_usd(cost(&usage(1_000, 100, 300, 200, 40), Some(&p)), expected);
        // Without write or reasoning rates, writes cost input and reasoning costs output.
        let plain = Price {
            cached_input: Some(0.5),
            ..price(5.0, 25.0)
        };
        let expected = (900.0 * 5.0 + 100.0 * 0.5 + 200.0 * 25.0) / 1e6;
        assert_usd(cost(&usage(1_000, 100, 300, 200, 40), Some(&plain)), expected);
    }

    #[test]
    fn the_tier_is_chosen_by_the_whole_prompt() {
        let p = Price {
            cached_input: Some(0.2),
            tiers: vec![
                Tier {
                    above_input_tokens: 200_000,
                    input: 4.0,
                    output: 18.0,
                    cached_input: Some(0.4),
                    cache_write: None,
                    reasoning: None,
                },
                Tier {
                    above_input_tokens: 500_000,
                    input: 8.0,
                    output: 30.0,
                    cached_input: None,
                    cache_write: None,
                    reasoning: None,
                },
            ],
            ..price(2.0, 12.0)
        };
        // At the threshold the base prices still apply: 150k × 2 + 50k × 0.2 + 1k × 12.
        assert_usd(cost(&usage(200_000, 50_000, 0, 1_000, 0), Some(&p)), 0.322);
        // One token more and every token is at the tier's prices: 150_001 × 4 + 50k × 0.4 + 1k × 18.
        assert_usd(cost(&usage(200_001, 50_000, 0, 1_000, 0), Some(&p)), 0.638_004);
        // The highest tier passed wins; without its own cached rate cached tokens cost its input.
        assert_usd(cost(&usage(600_000, 100_000, 0, 0, 0), Some(&p)), 4.8);
    }

    #[test]
    fn counts_that_do_not_add_up_are_clamped() {
        // More cached than prompt tokens and more reasoning than completion tokens.
        let p = Price {
            cached_input: Some(1.0),
            reasoning: Some(100.0),
            ..price(10.0, 20.0)
        };
        assert_usd(cost(&usage(100, 500, 50, 10, 99), Some(&p)), (100.0 + 1_000.0) / 1e6);
        assert_usd(cost(&Usage::default(), Some(&p)), 0.0);
    }

    #[test]
    fn a_config_price_entry_parses_into_the_type() {
        let p: Price = serde_json::from_value(serde_json::json!({
            "input": 0.15, "output": 0.60, "cached_input": 0.075,
            "tiers": [{"above_input_tokens": 272000, "input": 0.3, "output": 0.9}],
            "max_output_tokens": 16384
        }))
        .unwrap();
        assert_eq!(p.cached_input, Some(0.075));
        assert_eq!(p.tiers[0].above_input_tokens, 272_000);
        assert_eq!(p.max_output_tokens, Some(16_384));
        assert!(p.problems("x").is_empty());
        let typo = serde_json::from_value::<Price>(serde_json::json!({"input": 1, "output": 2, "cache_read": 0.1}));
        assert!(typo.is_err(), "an unknown field is refused");
    }

    #[test]
    fn bad_prices_are_each_reported() {
        let p = Price {
            cached_input: Some(-0.1),
            reasoning: Some(f64::NAN),
            max_output_tokens: Some(0),
            tiers: vec![
                Tier {
                    above_input_tokens: 200_000,
                    input: 1.0,
                    output: f64::INFINITY,
                    cached_input: None,
                    cache_write: None,
                    reasoning: None,
                },
                Tier {
                    above_input_tokens: 100_000,
                    input: 1.0,
                    output: 1.0,
                    cached_input: None,
                    cache_write: None,
                    reasoning: None,
                },
            ],
            ..price(1.0, 2.0)
        };
        let problems = p.problems("m");
        assert_eq!(problems.len(), 5, "{problems:#?}");
        for needle in [
            "`cached_input`",
            "`reasoning`",
            "tiers[0].output",
            "tiers[1].above_input_tokens",
            "max_output_tokens",
        ] {
            assert!(
                problems.iter().any(|p| p.contains(needle)),
                "no problem names {needle}: {problems:#?}"
            );
        }
    }
}
