//! Requested model → `RoutePlan`: the ordered candidates (provider, upstream model) to try.
//!
//! Depends on `providers::registry`, `nodes`, `config` and `domain`. Pure: no I/O, no clocks;
//! breaker state is the orchestrator's concern, so an open provider still appears here and is
//! skipped there. A `node_pool` provider becomes one candidate per online node, in
//! `nodes::select_best` order, read from the node snapshot the caller passes in.
//!
//! Layout: this file plans a plain model name; `routes` orders a named route's targets by its
//! strategy and resolves its fallbacks; `stats` is the per-target state (rotation turns, latency
//! EWMA, in-flight counts) that outlives configuration reloads.

pub mod routes;
pub mod stats;

pub mod paths;

use crate::domain::{InFlight, ProviderId};
use crate::nodes::{NodeSnapshot, select_best};
use crate::providers::{Provider, Registry};

/// One provider to try and the model name it knows the request by.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The provider (for a node: the pool's settings with the node's id and base URL).
    pub provider: Provider,
    /// The model name sent upstream (differs from the request's when aliased or prefixed).
    pub upstream_model: String,
    /// Set when the candidate is one node of a pool.
    pub node: Option<NodeTarget>,
    /// Counters that count a request as in flight while an attempt on this candidate runs (a
    /// stream included): its node's, and its route target's. The orchestrator holds them.
    pub in_flight: Vec<InFlight>,
    /// Set when it is a named route's target with a `max_concurrency`.
    pub target_cap: Option<TargetCap>,
}

/// A named route's target with a `max_concurrency`: its level's name for the queue.
#[derive(Debug, Clone)]
pub struct TargetCap {
    /// The route's name.
    pub route: String,
    /// The target's index in the route's `targets`.
    pub index: usize,
    /// Its `max_concurrency`.
    pub max_concurrency: u32,
}

/// The node behind a candidate.
#[derive(Debug, Clone)]
pub struct NodeTarget {
    /// Its pool (the provider id history and metrics record).
    pub pool: ProviderId,
    /// Its root URL.
    pub url: String,
    /// What it runs (detected, or as configured): a vLLM node takes a continuation as a prefill.
    pub runtime: crate::config::NodeRuntime,
    /// Requests it serves at once, where its runtime reports it.
    pub slots: Option<u32>,
}

impl Candidate {
    /// A plain provider, no node.
    pub fn provider(provider: Provider, upstream_model: String) -> Self {
        Self {
            provider,
            upstream_model,
            node: None,
            in_flight: Vec::new(),
            target_cap: None,
        }
    }
}

/// Candidates in the order to try them.
#[derive(Debug, Clone)]
pub struct RoutePlan {
    /// The model as the client asked for it.
    pub requested_model: String,
    /// Lowest priority number first.
    pub candidates: Vec<Candidate>,
    /// Where a prompt goes when a candidate refuses it as too long for its context window, in
    /// order: the `on_context_length_exceeded` of the route asked for and of the routes its
    /// fallbacks reach, then the request's own fallback models. The orchestrator walks those not
    /// tried yet, and only after such a refusal.
    pub overflow: Vec<Candidate>,
}

/// No enabled provider serves the model (or only node pools do, and none of their nodes is
/// online).
#[derive(Debug, Clone, thiserror::Error)]
#[error("no enabled provider serves model `{model}`")]
pub struct NoRoute {
    /// The model as requested.
    pub model: String,
    /// Node pools that would serve it but have no online node (empty: nobody serves it at all).
    pub pools_without_nodes: Vec<ProviderId>,
}

/// Builds the plan for `model`.
///
/// Providers that list the model (or an alias of it) or serve `"*"` are candidates, by priority.
/// When none lists the exact name and it has the form `<provider id>/<model>`, only that provider
/// is tried, with the prefix stripped (so `openai/gpt-4o` pins OpenAI while Groq's
/// `openai/gpt-oss-20b` still routes by its full name). A node pool that does not list the model
/// is no candidate when another provider lists it by name: what a node reports loaded never takes
/// a model away from the provider an operator declared it on (a node could report `gpt-4o` and
/// receive its prompts); the pool must declare the model too.
pub fn plan(registry: &Registry, nodes: &[NodeSnapshot], model: &str) -> Result<RoutePlan, NoRoute> {
    let explicit =
        |p: &Provider| p.config.models.iter().any(|m| m == model) || p.config.model_aliases.contains_key(model);
    let any_explicit = registry.providers().iter().any(explicit);
    let matched: Vec<(&Provider, String, bool)> = match pinned(registry, model).filter(|_| !any_explicit) {
        Some((provider, upstream)) => vec![(provider, upstream, true)],
        None => registry
            .providers()
            .iter()
            .filter(|p| explicit(p) || (p.config.serves_any_model() && !(any_explicit && p.config.is_node_pool())))
            .map(|p| (p, upstream_name(p, model), true))
            .collect(),
    };
    let candidates: Vec<Candidate> = matched
        .iter()
        .flat_map(|(p, upstream, allow_unloaded)| expand(p, upstream, nodes, Some(upstream), *allow_unloaded))
        .collect();
    if candidates.is_empty() {
        return Err(NoRoute {
            model: model.to_owned(),
            pools_without_nodes: matched
                .iter()
                .filter(|(p, ..)| p.config.is_node_pool())
                .map(|(p, ..)| p.config.id.clone())
                .collect(),
        });
    }
    Ok(RoutePlan {
        requested_model: model.to_owned(),
        candidates,
        overflow: Vec::new(),
    })
}

/// The candidates one provider contributes: itself, or for a node pool each online node of it in
/// choice order for `model` (`None`: no model preference).
pub fn expand(
    provider: &Provider,
    upstream_model: &str,
    nodes: &[NodeSnapshot],
    model: Option<&str>,
    allow_unloaded: bool,
) -> Vec<Candidate> {
    if !provider.config.is_node_pool() {
        return vec![Candidate::provider(provider.clone(), upstream_model.to_owned())];
    }
    let pool = &provider.config.id;
    select_best(nodes.iter().filter(|n| &n.pool == pool), model, allow_unloaded)
        .into_iter()
        .filter_map(|n| {
            let mut config = (*provider.config).clone();
            config.id = n.id.clone();
            config.base_url = format!("{}/v1", n.url);
            // The node's own adapter: its URLs are the node's, not the pool's.
            let mut node_provider = Provider::new(config)?;
            // A pool's keys are the pool's: every node shares their rests.
            node_provider.keys.clone_from(&provider.keys);
            Some(Candidate {
                provider: node_provider,
                upstream_model: upstream_model.to_owned(),
                node: Some(NodeTarget {
                    pool: pool.clone(),
                    url: n.url.clone(),
                    runtime: n.runtime,
                    slots: n.slots,
                }),
                in_flight: vec![n.counter.clone()],
                target_cap: None,
            })
        })
        .collect()
}

impl RoutePlan {
    /// The provider id history and metrics record for `id`: a node's pool, else `id` itself.
    pub fn owner_of(&self, id: &ProviderId) -> ProviderId {
        self.candidates
            .iter()
            .chain(&self.overflow)
            .find(|c| &c.provider.config.id == id)
            .and_then(|c| c.node.as_ref())
            .map_or_else(|| id.clone(), |n| n.pool.clone())
    }
}

impl RoutePlan {
    /// Appends the plan of a model the request lists to fall back on (`models` or `fallbacks` in
    /// its body): its candidates after these, each provider + model pair once; and, since a model
    /// the client chose may also take a prompt too long for the ones before it, its candidates
    /// and then its own overflow after this plan's overflow.
    pub fn then(&mut self, next: RoutePlan) {
        for c in &next.candidates {
            push_unique(&mut self.candidates, c.clone());
        }
        for c in next.candidates.into_iter().chain(next.overflow) {
            push_unique(&mut self.overflow, c);
        }
    }
}

/// Adds `c` unless the same provider + model pair is there already.
pub(crate) fn push_unique(out: &mut Vec<Candidate>, c: Candidate) {
    let seen = out
        .iter()
        .any(|o| o.provider.config.id == c.provider.config.id && o.upstream_model == c.upstream_model);
    if !seen {
        out.push(c);
    }
}

pub(crate) fn upstream_name(p: &Provider, model: &str) -> String {
    p.config
        .model_aliases
        .get(model)
        .cloned()
        .unwrap_or_else(|| model.to_owned())
}

fn pinned<'a>(registry: &'a Registry, model: &str) -> Option<(&'a Provider, String)> {
    let (prefix, rest) = model.split_once('/')?;
    if rest.is_empty() {
        return None;
    }
    let provider = registry.get(&ProviderId::new(prefix))?;
    Some((provider, upstream_name(provider, rest)))
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
            key_pool: None,
            models: models.iter().map(|m| (*m).to_owned()).collect(),
            priority,
            max_concurrency: None,
            queue: Default::default(),
            auth: AuthScheme::Bearer,
            headers: vec![],
            model_aliases: [("fast".to_owned(), "llama-3.1-8b".to_owned())].into(),
            query: Vec::new(),
            confidence: 0.8,
            task_model: None,
            node_pool: None,
            responses: Default::default(),
            anthropic_beta: Vec::new(),
            prices: Default::default(),
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
        assert_eq!(ids(&plan(&r, &[], "m").unwrap()), ["a", "b", "any"]);
    }

    #[test]
    fn unknown_model_has_no_route() {
        let r = registry(vec![provider("a", 1, &["m"])]);
        assert!(plan(&r, &[], "nope").is_err());
    }

    #[test]
    fn aliases_rename_the_upstream_model() {
        let r = registry(vec![provider("a", 1, &["llama-3.1-8b"])]);
        let p = plan(&r, &[], "fast").unwrap();
        assert_eq!(p.candidates[0].upstream_model, "llama-3.1-8b");
    }

    #[test]
    fn provider_prefix_pins_one_provider_unless_a_provider_lists_the_full_name() {
        let r = registry(vec![
            provider("openai", 1, &["gpt-4o"]),
            provider("groq", 2, &["openai/gpt-oss-20b"]),
        ]);
        let p = plan(&r, &[], "openai/gpt-4o-mini").unwrap();
        assert_eq!(ids(&p), ["openai"]);
        assert_eq!(p.candidates[0].upstream_model, "gpt-4o-mini");
        assert_eq!(ids(&plan(&r, &[], "openai/gpt-oss-20b").unwrap()), ["groq"]);
    }

    fn pool(id: &str, priority: i32) -> ProviderConfig {
        let mut p = provider(id, priority, &["*"]);
        p.kind = "node_pool".into();
        p.base_url = String::new();
        p.node_pool = Some(crate::config::NodePoolConfig::default());
        p
    }

    fn node(url: &str, models: &[&str], online: bool) -> NodeSnapshot {
        NodeSnapshot {
            url: url.to_owned(),
            pool: ProviderId::new("gpus"),
            id: ProviderId::new(&format!("gpus/{url}")),
            runtime: crate::config::NodeRuntime::OpenAi,
            online,
            busy: false,
            models: models.iter().map(|m| (*m).to_owned()).collect(),
            running: 0,
            waiting: 0,
            in_flight: 0,
            queued: 0,
            slots: None,
            counter: InFlight::default(),
            last_seen_ms: None,
            last_heartbeat_ms: None,
            last_error: None,
            source: "config".into(),
        }
    }

    #[test]
    fn a_pool_becomes_one_candidate_per_online_node_in_choice_order() {
        let r = registry(vec![pool("gpus", 0), provider("cloud", 5, &["*"])]);
        let nodes = [node("a", &[], true), node("b", &["m"], true), node("c", &["m"], false)];
        let p = plan(&r, &nodes, "m").unwrap();
        assert_eq!(ids(&p), ["gpus/b", "gpus/a", "cloud"]);
        assert_eq!(p.candidates[0].provider.config.base_url, "b/v1");
        assert_eq!(p.owner_of(&ProviderId::new("gpus/b")).as_str(), "gpus");
        assert_eq!(p.owner_of(&ProviderId::new("cloud")).as_str(), "cloud");
    }

    #[test]
    fn a_pool_without_online_nodes_reports_itself() {
        let r = registry(vec![pool("gpus", 0)]);
        let err = plan(&r, &[node("a", &["m"], false)], "m").unwrap_err();
        assert_eq!(err.pools_without_nodes, [ProviderId::new("gpus")]);
        let none = plan(&registry(vec![provider("x", 1, &["y"])]), &[], "m").unwrap_err();
        assert!(none.pools_without_nodes.is_empty());
    }

    /// A node reporting `gpt-x` loaded must not take the model (and its prompts) from the provider
    /// that declares it, even from a pool tried first; a pool that declares it too keeps it.
    #[test]
    fn a_wildcard_pool_never_takes_a_model_another_provider_lists() {
        let r = registry(vec![pool("gpus", 0), provider("cloud", 5, &["gpt-x"])]);
        let nodes = [node("idle", &[], true), node("has", &["gpt-x"], true)];
        assert_eq!(ids(&plan(&r, &nodes, "gpt-x").unwrap()), ["cloud"]);
        assert_eq!(ids(&plan(&r, &nodes, "llama").unwrap()), ["gpus/has", "gpus/idle"]);
        let mut declaring = pool("gpus", 0);
        declaring.models = vec!["gpt-x".into()];
        let r = registry(vec![declaring, provider("cloud", 5, &["gpt-x"])]);
        assert_eq!(
            ids(&plan(&r, &nodes, "gpt-x").unwrap()),
            ["gpus/has", "gpus/idle", "cloud"]
        );
    }

    #[test]
    fn a_pool_can_be_pinned_by_prefix() {
        let r = registry(vec![pool("gpus", 0), provider("cloud", 5, &["*"])]);
        let p = plan(&r, &[node("a", &["llama3:latest"], true)], "gpus/llama3").unwrap();
        assert_eq!(ids(&p), ["gpus/a"]);
        assert_eq!(p.candidates[0].upstream_model, "llama3");
    }
}
