//! models.dev's `api.json` turned into fetched prices: a pure parser, bytes and a provider-id
//! mapping in, `FetchedPrices` out.
//!
//! The document is an object keyed by models.dev's provider id, each with a `models` object keyed
//! by the model id its API takes; a model's `cost` is USD per million tokens (`input`, `output`,
//! `cache_read`, `cache_write`, `reasoning`, context `tiers` or the older `context_over_200k`) and
//! `limit.output` its longest answer. Only providers the mapping names are read; a model whose
//! entry cannot be read or whose price fails `Price::problems` is skipped and counted, never
//! approximated.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::FetchedPrices;
use crate::config::{Price, Tier};

/// models.dev's provider id → ours, for every provider both know. A provider of ours that is not
/// here gets no fetched prices (the book lists this table: docs/src/providers.md).
pub const PROVIDER_IDS: &[(&str, &str)] = &[
    ("openai", "openai"),
    ("anthropic", "anthropic"),
    ("google", "gemini"),
    ("mistral", "mistral"),
    ("deepseek", "deepseek"),
    ("groq", "groq"),
    ("togetherai", "together"),
    ("openrouter", "openrouter"),
    ("nvidia", "nvidia"),
    ("huggingface", "huggingface"),
    ("azure", "azure"),
];

/// The prompt length above which `context_over_200k` applies.
const CONTEXT_OVER_200K: u64 = 200_000;

/// How many reasons for skipped entries a `Parsed` keeps for the log.
const PROBLEMS_KEPT: usize = 5;

/// What one document gave.
#[derive(Debug)]
pub struct Parsed {
    /// Our provider id → model → price.
    pub prices: FetchedPrices,
    /// Models priced.
    pub models: usize,
    /// Entries of mapped providers that could not be used (malformed, or a price that fails
    /// validation).
    pub skipped: usize,
    /// Models of mapped providers that publish no `cost` (image or speech models, say).
    pub unpriced: usize,
    /// Why the first few skipped entries were skipped.
    pub problems: Vec<String>,
}

/// Why a document was refused whole; the prices in use stay.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// Not JSON, or not an object of providers.
    #[error("not a models.dev api.json document: {0}")]
    Shape(String),
    /// Nothing in it can price a model of ours.
    #[error(
        "no usable price in the document: no provider it shares with the gateway has a model with a valid `cost` ({skipped} entries skipped{first})"
    )]
    NoPrices {
        /// Entries skipped.
        skipped: usize,
        /// The first reason, when there is one (`: ...`).
        first: String,
    },
}

#[derive(Deserialize)]
struct Provider<'a> {
    #[serde(borrow)]
    models: HashMap<String, &'a RawValue>,
}

#[derive(Deserialize)]
struct Model {
    #[serde(default)]
    cost: Option<Cost>,
    #[serde(default)]
    limit: Option<Limit>,
}

#[derive(Deserialize)]
struct Limit {
    #[serde(default)]
    output: Option<f64>,
}

/// One rate card: the base prices, a context tier's, or `context_over_200k`. Audio rates are
/// ignored: the gateway prices text tokens.
#[derive(Deserialize)]
struct Rates {
    input: f64,
    output: f64,
    #[serde(default)]
    cache_read: Option<f64>,
    #[serde(default)]
    cache_write: Option<f64>,
    #[serde(default)]
    reasoning: Option<f64>,
}

#[derive(Deserialize)]
struct Cost {
    #[serde(flatten)]
    base: Rates,
    #[serde(default)]
    tiers: Option<Vec<CostTier>>,
    #[serde(default)]
    context_over_200k: Option<Rates>,
}

#[derive(Deserialize)]
struct CostTier {
    #[serde(flatten)]
    rates: Rates,
    tier: TierKind,
}

#[derive(Deserialize)]
struct TierKind {
    /// `context` (the default) is the only kind models.dev defines.
    #[serde(rename = "type", default)]
    kind: Option<String>,
    size: u64,
}

/// Parses `bytes` as models.dev's `api.json`, keeping the providers `mapping` names (theirs →
/// ours) with their prices under our ids.
pub fn parse(bytes: &[u8], mapping: &[(&str, &str)]) -> Result<Parsed, DocumentError> {
    let providers: HashMap<String, &RawValue> =
        serde_json::from_slice(bytes).map_err(|e| DocumentError::Shape(e.to_string()))?;
    let mut out = Parsed {
        prices: FetchedPrices::new(),
        models: 0,
        skipped: 0,
        unpriced: 0,
        problems: Vec::new(),
    };
    for (theirs, ours) in mapping {
        let Some(raw) = providers.get(*theirs) else { continue };
        let provider: Provider<'_> = match serde_json::from_str(raw.get()) {
            Ok(p) => p,
            Err(e) => {
                out.skip(format!("provider `{theirs}`: {e}"));
                continue;
            }
        };
        for (id, raw) in provider.models {
            match price(&id, raw) {
                Ok(Some(p)) => {
                    let models = out.prices.entry((*ours).to_owned()).or_default();
                    if models.insert(id, Arc::new(p)).is_none() {
                        out.models += 1;
                    }
                }
                Ok(None) => out.unpriced += 1,
                Err(why) => out.skip(format!("`{theirs}/{id}`: {why}")),
            }
        }
    }
    if out.models == 0 {
        let first = out.problems.first().map(|p| format!(": {p}")).unwrap_or_default();
        return Err(DocumentError::NoPrices {
            skipped: out.skipped,
            first,
        });
    }
    Ok(out)
}

impl Parsed {
    fn skip(&mut self, why: String) {
        self.skipped += 1;
        if self.problems.len() < PROBLEMS_KEPT {
            self.problems.push(why);
        }
    }
}

/// One model's price: `None` when it publishes no cost, an error when its entry cannot be used.
fn price(id: &str, raw: &RawValue) -> Result<Option<Price>, String> {
    if id.is_empty() {
        return Err("an empty model id".into());
    }
    let model: Model = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
    let Some(cost) = model.cost else { return Ok(None) };
    let max_output_tokens = match model.limit.and_then(|l| l.output) {
        None => None,
        // 0 is what models.dev writes for a model that generates no text (image models).
        Some(0.0) => None,
        Some(n) if n.is_finite() && n >= 1.0 => Some(n as u64),
        Some(n) => return Err(format!("`limit.output` is {n}")),
    };
    let tiers = match (cost.tiers, cost.context_over_200k) {
        (Some(tiers), _) if !tiers.is_empty() => {
            let mut out = Vec::with_capacity(tiers.len());
            for t in tiers {
                if let Some(kind) = t.tier.kind.as_deref().filter(|k| *k != "context") {
                    return Err(format!("a `{kind}` tier, which the gateway cannot price"));
                }
                out.push(tier(t.tier.size, &t.rates));
            }
            out.sort_by_key(|t| t.above_input_tokens);
            out
        }
        (_, Some(over)) => vec![tier(CONTEXT_OVER_200K, &over)],
        _ => Vec::new(),
    };
    let price = Price {
        input: cost.base.input,
        output: cost.base.output,
        cached_input: cost.base.cache_read,
        cache_write: cost.base.cache_write,
        reasoning: cost.base.reasoning,
        tiers,
        max_output_tokens,
    };
    let problems = price.problems("cost");
    if let Some(first) = problems.into_iter().next() {
        return Err(first);
    }
    Ok(Some(price))
}

fn tier(above_input_tokens: u64, r: &Rates) -> Tier {
    Tier {
        above_input_tokens,
        input: r.input,
        output: r.output,
        cached_input: r.cache_read,
        cache_write: r.cache_write,
        reasoning: r.reasoning,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../tests/fixtures/models_dev/api.json");

    fn parsed() -> Parsed {
        parse(FIXTURE.as_bytes(), PROVIDER_IDS).unwrap()
    }

    fn get<'a>(p: &'a Parsed, provider: &str, model: &str) -> &'a Price {
        p.prices
            .get(provider)
            .and_then(|m| m.get(model))
            .unwrap_or_else(|| panic!("{provider}/{model} is priced: {:?}", p.prices.keys()))
    }

    #[test]
    fn the_fixture_prices_every_mapped_provider_under_our_ids() {
        let p = parsed();
        let mut ours: Vec<&str> = p.prices.keys().map(String::as_str).collect();
        ours.sort_unstable();
        assert_eq!(
            ours,
            [
                "anthropic",
                "azure",
                "deepseek",
                "gemini",
                "groq",
                "huggingface",
                "mistral",
                "nvidia",
                "openai",
                "openrouter",
                "together"
            ]
        );
        assert!(!p.prices.contains_key("google"), "models.dev's ids never leak through");
        assert!(
            !p.prices.contains_key("xai"),
            "a provider outside the table gets nothing"
        );
        let all: usize = p.prices.values().map(HashMap::len).sum();
        assert_eq!(p.models, all);
        assert_eq!((p.skipped, p.unpriced), (0, 1), "{:?}", p.problems);
    }

    #[test]
    fn rates_map_field_by_field_with_the_output_limit() {
        let p = parsed();
        let mini = get(&p, "openai", "gpt-4o-mini");
        assert_eq!((mini.input, mini.output, mini.cached_input), (0.15, 0.6, Some(0.075)));
        assert_eq!((mini.cache_write, mini.reasoning), (None, None));
        assert_eq!(mini.max_output_tokens, Some(16_384));
        assert!(mini.tiers.is_empty());
        let sonnet = get(&p, "anthropic", "claude-sonnet-4-5");
        assert_eq!((sonnet.cached_input, sonnet.cache_write), (Some(0.3), Some(3.75)));
        let routed = get(&p, "openrouter", "openai/gpt-4o-mini");
        assert_eq!(routed.input, 0.15, "a model id with a slash stays whole");
        let free = get(&p, "nvidia", "meta/llama-3.3-70b-instruct");
        assert_eq!(
            (free.input, free.output),
            (0.0, 0.0),
            "a free model is priced at 0, not dropped"
        );
    }

    #[test]
    fn tiers_win_over_context_over_200k_which_is_used_alone() {
        let p = parsed();
        // gemini-2.5-pro carries both, as models.dev publishes a single tier of 200K or more.
        let pro = get(&p, "gemini", "gemini-2.5-pro");
        assert_eq!(pro.tiers.len(), 1);
        let t = &pro.tiers[0];
        assert_eq!(
            (t.above_input_tokens, t.input, t.output, t.cached_input),
            (200_000, 2.5, 15.0, Some(0.25))
        );
        // gpt-5.4's only tier is above 272K: the tier's own threshold, not 200K.
        let big = get(&p, "openai", "gpt-5.4");
        assert_eq!(big.tiers[0].above_input_tokens, 272_000);
        let doc = br#"{"openai": {"models": {"m": {"cost": {"input": 1, "output": 2,
            "context_over_200k": {"input": 3, "output": 4}}}}}}"#;
        let legacy = parse(doc, PROVIDER_IDS).unwrap();
        let t = &get(&legacy, "openai", "m").tiers[0];
        assert_eq!((t.above_input_tokens, t.input, t.output), (200_000, 3.0, 4.0));
    }

    #[test]
    fn a_model_without_cost_is_unpriced_not_free() {
        let p = parsed();
        assert!(!p.prices["openai"].contains_key("chatgpt-image-latest"));
        assert_eq!(p.unpriced, 1);
    }

    #[test]
    fn malformed_and_invalid_entries_are_skipped_and_counted() {
        let doc = br#"{
          "openai": {"models": {
            "good": {"cost": {"input": 1, "output": 2}, "limit": {"context": 10, "output": 5}},
            "no-output-rate": {"cost": {"input": 1}},
            "negative": {"cost": {"input": -1, "output": 2}},
            "text-rate": {"cost": {"input": "1", "output": 2}},
            "tiers-twice": {"cost": {"input": 1, "output": 2, "tiers": [
              {"input": 2, "output": 3, "tier": {"type": "context", "size": 1000}},
              {"input": 3, "output": 4, "tier": {"size": 1000}}]}},
            "other-tier": {"cost": {"input": 1, "output": 2, "tiers": [
              {"input": 2, "output": 3, "tier": {"type": "batch", "size": 0}}]}},
            "bad-limit": {"cost": {"input": 1, "output": 2}, "limit": {"output": -3}},
            "not-an-object": 7
          }},
          "anthropic": {"name": "no models here"},
          "xai": {"models": {"grok": {"cost": {"input": 1, "output": 2}}}}
        }"#;
        let p = parse(doc, PROVIDER_IDS).unwrap();
        assert_eq!(p.models, 1);
        assert_eq!(get(&p, "openai", "good").max_output_tokens, Some(5));
        assert_eq!(p.skipped, 8, "seven models and one provider: {:?}", p.problems);
        assert_eq!(p.problems.len(), PROBLEMS_KEPT);
        assert!(!p.prices.contains_key("xai"));
    }

    #[test]
    fn a_document_with_no_usable_price_is_refused() {
        for (doc, says) in [
            (&b"<html>models</html>"[..], "not a models.dev api.json document"),
            (b"[1, 2]", "not a models.dev api.json document"),
            (b"{}", "no usable price"),
            (
                br#"{"xai": {"models": {"grok": {"cost": {"input": 1, "output": 2}}}}}"#,
                "no usable price",
            ),
            (
                br#"{"openai": {"models": {"m": {"cost": {"input": -1, "output": 2}}}}}"#,
                "1 entries skipped: `openai/m`",
            ),
        ] {
            let e = parse(doc, PROVIDER_IDS).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn the_mapping_decides_which_providers_are_read() {
        let p = parse(FIXTURE.as_bytes(), &[("google", "my-gemini")]).unwrap();
        assert_eq!(p.prices.keys().collect::<Vec<_>>(), ["my-gemini"]);
        assert!(p.prices["my-gemini"].contains_key("gemini-2.5-pro"));
    }
}
