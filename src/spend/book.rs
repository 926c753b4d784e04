//! The price of a provider's model: `pricing.models` entries first, then the prices fetched from
//! `pricing.url`, then the catalogue's.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::{Config, Price, PriceEntry, glob_match};

/// Prices fetched from `pricing.url`: provider id → model → price. Shared by every `Live`
/// snapshot, replaced whole by the refresh task.
pub type FetchedPrices = HashMap<String, HashMap<String, Arc<Price>>>;

/// The fetched prices' handle, outside `Live` so a reload keeps them.
pub type Fetched = Arc<ArcSwap<FetchedPrices>>;

/// Every price one configuration knows, built with its `Live` snapshot.
#[derive(Debug, Clone)]
pub struct PriceBook {
    /// `pricing.models`, in the order they are tried: exact provider and model first, then a
    /// pattern model, then a pattern provider, each kind in the order written.
    entries: Vec<(PriceEntry, Arc<Price>)>,
    /// The catalogue's prices (and a user provider's, when it kept a catalogue id).
    catalogue: HashMap<String, HashMap<String, Arc<Price>>>,
    fetched: Fetched,
}

impl PriceBook {
    /// The prices of `config`, over `fetched`.
    pub fn new(config: &Config, fetched: Fetched) -> Self {
        let mut entries: Vec<(PriceEntry, Arc<Price>)> = config
            .settings
            .pricing
            .models
            .iter()
            .map(|e| (e.clone(), Arc::new(e.price())))
            .collect();
        // A stable sort keeps the written order within each kind.
        entries.sort_by_key(|(e, _)| (e.provider.contains('*'), e.model.contains('*')));
        let catalogue = config
            .providers
            .iter()
            .filter(|p| !p.prices.is_empty())
            .map(|p| {
                let prices = p.prices.iter().map(|(m, pr)| (m.clone(), Arc::new(pr.clone())));
                (p.id.as_str().to_owned(), prices.collect())
            })
            .collect();
        Self {
            entries,
            catalogue,
            fetched,
        }
    }

    /// Whether `model` at `provider` is named by a price (not only matched by a pattern): such
    /// names are bounded by configuration, so they may label metrics.
    pub fn names(&self, provider: &str, model: &str) -> bool {
        self.entries
            .iter()
            .any(|(e, _)| e.model == model && glob_match(&e.provider, provider))
            || self.fetched.load().get(provider).is_some_and(|m| m.contains_key(model))
            || self.catalogue.get(provider).is_some_and(|m| m.contains_key(model))
    }

    /// The price of `model` as sent to `provider`, if anyone published or configured one.
    pub fn price(&self, provider: &str, model: &str) -> Option<Arc<Price>> {
        if let Some((_, p)) = self
            .entries
            .iter()
            .find(|(e, _)| glob_match(&e.provider, provider) && glob_match(&e.model, model))
        {
            return Some(p.clone());
        }
        if let Some(p) = self.fetched.load().get(provider).and_then(|m| m.get(model)) {
            return Some(p.clone());
        }
        self.catalogue.get(provider).and_then(|m| m.get(model)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(yaml: &str, fetched: FetchedPrices) -> PriceBook {
        let config = crate::config::load_str(yaml, &crate::config::Env::default()).unwrap();
        PriceBook::new(&config, Arc::new(ArcSwap::from_pointee(fetched)))
    }

    #[test]
    fn configuration_beats_fetched_beats_catalogue() {
        let yaml = r#"
providers:
  - {id: openai, api_key: k}
  - {id: local-vllm, kind: openai, base_url: "http://127.0.0.1:9/v1"}
pricing:
  models:
    - {provider: "*", model: "*", input: 9, output: 9}
    - {provider: local-vllm, model: "*", input: 0.05, output: 0.05}
    - {provider: openai, model: gpt-4o-mini, input: 0.15, output: 0.6, cached_input: 0.075}
"#;
        let mut fetched = FetchedPrices::new();
        let fetched_price = Price {
            input: 1.0,
            output: 2.0,
            cached_input: None,
            cache_write: None,
            reasoning: None,
            tiers: vec![],
            max_output_tokens: None,
        };
        fetched.insert(
            "openai".into(),
            HashMap::from([("gpt-4o".into(), Arc::new(fetched_price))]),
        );
        let b = book(yaml, fetched);
        assert_eq!(b.price("openai", "gpt-4o-mini").unwrap().cached_input, Some(0.075));
        assert_eq!(b.price("local-vllm", "llama").unwrap().input, 0.05);
        // The catch-all pattern is tried after every more specific entry.
        assert_eq!(b.price("openai", "gpt-4o").unwrap().input, 9.0);
        let b = book(
            "providers:\n  - {id: openai, api_key: k}\npricing:\n  models: [{provider: x, model: y, input: 1, output: 1}]\n",
            {
                let mut f = FetchedPrices::new();
                f.insert(
                    "openai".into(),
                    HashMap::from([(
                        "gpt-6-sol".into(),
                        Arc::new(Price {
                            input: 7.0,
                            output: 7.0,
                            cached_input: None,
                            cache_write: None,
                            reasoning: None,
                            tiers: vec![],
                            max_output_tokens: None,
                        }),
                    )]),
                );
                f
            },
        );
        assert_eq!(
            b.price("openai", "gpt-6-sol").unwrap().input,
            7.0,
            "fetched over catalogue"
        );
        assert_eq!(
            b.price("openai", "gpt-6.2-sol").unwrap().input,
            2.0,
            "the catalogue's own"
        );
        assert!(b.price("openai", "unknown-model").is_none());
    }
}
