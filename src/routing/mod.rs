//! Requested model → `RoutePlan`: the ordered candidates (provider, upstream model) to try.
//!
//! Depends on `providers::registry`, `config` and `domain`. Pure: no I/O, no clocks; breaker state
//! is the orchestrator's concern, so an open provider still appears here and is skipped there.

use crate::domain::ProviderId;
use crate::providers::{Provider, Registry};

/// One provider to try and the model name it knows the request by.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The provider.
    pub provider: Provider,
    /// The model name sent upstream (differs from the request's when aliased or prefixed).
    pub upstream_model: String,
}

/// Candidates in the order to try them.
#[derive(Debug, Clone)]
pub struct RoutePlan {
    /// The model as the client asked for it.
    pub requested_model: String,
    /// Lowest priority number first.
    pub candidates: Vec<Candidate>,
}

/// No enabled provider serves the model.
#[derive(Debug, Clone, thiserror::Error)]
#[error("no enabled provider serves model `{model}`")]
pub struct NoRoute {
    /// The model as requested.
    pub model: String,
}

/// Builds the plan for `model`.
///
/// Providers that list the model (or an alias of it) or serve `"*"` are candidates, by priority.
/// When none lists the exact name and it has the form `<provider id>/<model>`, only that provider
/// is tried, with the prefix stripped (so `openai/gpt-4o` pins OpenAI while Groq's
/// `openai/gpt-oss-20b` still routes by its full name).
pub fn plan(registry: &Registry, model: &str) -> Result<RoutePlan, NoRoute> {
    let explicit =
        |p: &Provider| p.config.models.iter().any(|m| m == model) || p.config.model_aliases.contains_key(model);
    let any_explicit = registry.providers().iter().any(explicit);
    if !any_explicit && let Some(pinned) = pinned(registry, model) {
        return Ok(RoutePlan {
            requested_model: model.to_owned(),
            candidates: vec![pinned],
        });
    }
    let candidates: Vec<Candidate> = registry
        .providers()
        .iter()
        .filter(|p| explicit(p) || p.config.serves_any_model())
        .map(|p| Candidate {
            provider: p.clone(),
            upstream_model: p
                .config
                .model_aliases
                .get(model)
                .cloned()
                .unwrap_or_else(|| model.to_owned()),
        })
        .collect();
    if candidates.is_empty() {
        return Err(NoRoute {
            model: model.to_owned(),
        });
    }
    Ok(RoutePlan {
        requested_model: model.to_owned(),
        candidates,
    })
}

fn pinned(registry: &Registry, model: &str) -> Option<Candidate> {
    let (prefix, rest) = model.split_once('/')?;
    if rest.is_empty() {
        return None;
    }
    let provider = registry.get(&ProviderId::new(prefix))?;
    let upstream_model = provider
        .config
        .model_aliases
        .get(rest)
        .cloned()
        .unwrap_or_else(|| rest.to_owned());
    Some(Candidate {
        provider: provider.clone(),
        upstream_model,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AuthScheme, ProviderConfig};

    fn provider(id: &str, priority: i32, models: &[&str]) -> ProviderConfig {
        ProviderConfig {
            id: ProviderId::new(id),
            kind: "openai".into(),
            base_url: "http://x/v1".into(),
            api_key: None,
            models: models.iter().map(|m| (*m).to_owned()).collect(),
            priority,
            auth: AuthScheme::Bearer,
            headers: vec![],
            model_aliases: [("fast".to_owned(), "llama-3.1-8b".to_owned())].into(),
            confidence: 0.8,
            task_model: None,
            node_pool: None,
        }
    }

    fn registry(configs: Vec<ProviderConfig>) -> Registry {
        let mut configs = configs;
        configs.sort_by_key(|c| c.priority);
        Registry::build(&configs).0
    }

    fn ids(plan: &RoutePlan) -> Vec<&str> {
        plan.candidates.iter().map(|c| c.provider.config.id.as_str()).collect()
    }

    #[test]
    fn candidates_come_in_priority_order_with_wildcards() {
        let r = registry(vec![
            provider("b", 2, &["m"]),
            provider("a", 1, &["m"]),
            provider("any", 9, &["*"]),
            provider("c", 0, &["other"]),
        ]);
        assert_eq!(ids(&plan(&r, "m").unwrap()), ["a", "b", "any"]);
    }

    #[test]
    fn unknown_model_has_no_route() {
        let r = registry(vec![provider("a", 1, &["m"])]);
        assert!(plan(&r, "nope").is_err());
    }

    #[test]
    fn aliases_rename_the_upstream_model() {
        let r = registry(vec![provider("a", 1, &["llama-3.1-8b"])]);
        let p = plan(&r, "fast").unwrap();
        assert_eq!(p.candidates[0].upstream_model, "llama-3.1-8b");
    }

    #[test]
    fn provider_prefix_pins_one_provider_unless_a_provider_lists_the_full_name() {
        let r = registry(vec![
            provider("openai", 1, &["gpt-4o"]),
            provider("groq", 2, &["openai/gpt-oss-20b"]),
        ]);
        let p = plan(&r, "openai/gpt-4o-mini").unwrap();
        assert_eq!(ids(&p), ["openai"]);
        assert_eq!(p.candidates[0].upstream_model, "gpt-4o-mini");
        assert_eq!(ids(&plan(&r, "openai/gpt-oss-20b").unwrap()), ["groq"]);
    }
}
