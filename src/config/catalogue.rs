//! The built-in provider catalogue: `providers/*.yaml`, compiled into the binary.
//!
//! A catalogue provider is enabled when its key variable (or base-URL variable) is set or when the
//! config names it; a config entry with a catalogue id overrides only the fields it sets.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::env::Env;
use super::nodes::{NODE_POOL_KIND, NodePoolConfig};
use super::prices::Price;
use super::settings::{AuthScheme, KeyPoolConfig, PoolKeyEntry, ProviderConfig, ProviderEntry};
use crate::domain::ProviderId;

/// One `providers/<id>.yaml` file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueEntry {
    /// Provider id.
    pub id: String,
    /// Wire protocol.
    pub kind: String,
    /// Default base URL.
    pub base_url: String,
    /// Variables the key may come from, first set wins.
    #[serde(default)]
    pub api_key_env: Vec<String>,
    /// Variable that overrides the base URL (and enables the provider).
    #[serde(default)]
    pub base_url_env: Option<String>,
    /// How the key is sent.
    #[serde(default)]
    pub auth: AuthScheme,
    /// Static headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Default priority (seed 004's order for the hosted five).
    pub priority: i32,
    /// Models served.
    pub models: Vec<String>,
    /// Client name → upstream name.
    #[serde(default)]
    pub model_aliases: BTreeMap<String, String>,
    /// Query parameters added to every upstream URL (Azure's `api-version`).
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// `/ai/task` confidence (seed 004's per-provider values).
    #[serde(default)]
    pub confidence: Option<f64>,
    /// The model `/ai/task` uses.
    #[serde(default)]
    pub task_model: Option<String>,
    /// How `/v1/responses` reaches it (`kind: openai` and `azure`).
    #[serde(default)]
    pub responses: Option<super::settings::ResponsesMode>,
    /// Model → the vendor's published price; a model not here has no known cost.
    #[serde(default)]
    pub prices: BTreeMap<String, Price>,
}

/// `/ai/task` confidence when neither catalogue nor config sets one.
pub const DEFAULT_CONFIDENCE: f64 = 0.8;

/// The embedded catalogue files, by name. `tests` checks this list against `providers/`.
pub const FILES: &[(&str, &str)] = &[
    ("anthropic.yaml", include_str!("../../providers/anthropic.yaml")),
    ("azure.yaml", include_str!("../../providers/azure.yaml")),
    ("deepseek.yaml", include_str!("../../providers/deepseek.yaml")),
    ("gemini.yaml", include_str!("../../providers/gemini.yaml")),
    ("groq.yaml", include_str!("../../providers/groq.yaml")),
    ("huggingface.yaml", include_str!("../../providers/huggingface.yaml")),
    ("llamacpp.yaml", include_str!("../../providers/llamacpp.yaml")),
    ("localai.yaml", include_str!("../../providers/localai.yaml")),
    ("mistral.yaml", include_str!("../../providers/mistral.yaml")),
    ("nvidia.yaml", include_str!("../../providers/nvidia.yaml")),
    ("ollama.yaml", include_str!("../../providers/ollama.yaml")),
    ("openai.yaml", include_str!("../../providers/openai.yaml")),
    ("openrouter.yaml", include_str!("../../providers/openrouter.yaml")),
    ("sglang.yaml", include_str!("../../providers/sglang.yaml")),
    ("tgi.yaml", include_str!("../../providers/tgi.yaml")),
    ("together.yaml", include_str!("../../providers/together.yaml")),
    ("vllm.yaml", include_str!("../../providers/vllm.yaml")),
];

/// Parses the embedded catalogue. A bad file is a build defect, reported with its name.
pub fn catalogue() -> Result<Vec<CatalogueEntry>, Vec<String>> {
    let mut entries = Vec::with_capacity(FILES.len());
    let mut problems = Vec::new();
    for (name, text) in FILES {
        // Through a JSON tree, as user config is, so enums read as `{header: x}` maps, not YAML tags.
        let parsed = serde_yaml_ng::from_str::<serde_json::Value>(text)
            .map_err(|e| e.to_string())
            .and_then(|tree| serde_path_to_error::deserialize::<_, CatalogueEntry>(tree).map_err(|e| e.to_string()));
        match parsed {
            Ok(entry) => {
                problems.extend(
                    price_problems(&entry)
                        .into_iter()
                        .map(|p| format!("providers/{name}: {p}")),
                );
                entries.push(entry);
            }
            Err(e) => problems.push(format!("providers/{name}: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(entries)
    } else {
        Err(problems)
    }
}

/// Every price must be sound and name a model the provider lists, so a renamed model cannot keep
/// a stale price under its old name.
fn price_problems(entry: &CatalogueEntry) -> Vec<String> {
    let mut out = Vec::new();
    for (model, price) in &entry.prices {
        if !entry.models.iter().any(|m| m == model) {
            out.push(format!("prices.{model}: `{model}` is not among the provider's models"));
        }
        out.extend(price.problems(&format!("prices.{model}")));
    }
    out
}

/// Merges catalogue, user entries and environment into the enabled providers, by priority.
pub(super) fn resolve(
    catalogue: &[CatalogueEntry],
    user: &[ProviderEntry],
    env: &Env,
    problems: &mut Vec<String>,
) -> Vec<ProviderConfig> {
    let mut out = Vec::new();
    for entry in catalogue {
        let id = ProviderId::new(&entry.id);
        let named = user.iter().find(|p| ProviderId::new(&p.id) == id);
        if named.and_then(|p| p.enabled) == Some(false) {
            continue;
        }
        let env_key = entry.api_key_env.iter().find_map(|v| env.get(v));
        let env_url = entry.base_url_env.as_deref().and_then(|v| env.get(v));
        if named.is_none() && env_key.is_none() && env_url.is_none() {
            continue;
        }
        let base = ProviderConfig {
            id,
            kind: entry.kind.clone(),
            base_url: env_url.unwrap_or(&entry.base_url).to_owned(),
            api_key: env_key.map(|k| SecretString::from(k.to_owned())),
            key_pool: None,
            models: entry.models.clone(),
            priority: entry.priority,
            max_concurrency: None,
            queue: Default::default(),
            auth: entry.auth.clone(),
            headers: entry.headers.clone().into_iter().collect(),
            model_aliases: entry.model_aliases.clone(),
            query: entry.query.clone().into_iter().collect(),
            confidence: entry.confidence.unwrap_or(DEFAULT_CONFIDENCE),
            task_model: entry.task_model.clone(),
            node_pool: None,
            responses: entry.responses.unwrap_or_default(),
            anthropic_beta: Vec::new(),
            prices: entry.prices.clone(),
        };
        out.push(match named {
            Some(over) => overlay(base, over),
            None => base,
        });
    }
    for (i, entry) in user.iter().enumerate() {
        let id = ProviderId::new(&entry.id);
        if catalogue.iter().any(|c| ProviderId::new(&c.id) == id) || entry.enabled == Some(false) {
            continue;
        }
        let is_pool = entry.kind.as_deref() == Some(NODE_POOL_KIND);
        // A node pool has no base URL of its own: each node has one.
        let base_url = entry.base_url.clone().or_else(|| is_pool.then(String::new));
        let (Some(kind), Some(base_url)) = (&entry.kind, base_url) else {
            problems.push(format!(
                "providers[{i}] (`{}`): not a catalogue provider, so `kind` and `base_url` are required",
                entry.id
            ));
            continue;
        };
        let base = ProviderConfig {
            id,
            kind: kind.clone(),
            base_url,
            api_key: None,
            key_pool: None,
            models: vec!["*".into()],
            priority: 100,
            max_concurrency: None,
            queue: Default::default(),
            auth: AuthScheme::default_for(kind),
            headers: Vec::new(),
            model_aliases: BTreeMap::new(),
            query: Vec::new(),
            confidence: DEFAULT_CONFIDENCE,
            task_model: None,
            node_pool: is_pool.then(|| NodePoolConfig {
                nodes: entry.nodes.clone().unwrap_or_default(),
                runtime: entry.runtime.unwrap_or_default(),
                worker_paths: entry.worker_paths.clone().unwrap_or_else(|| {
                    super::nodes::DEFAULT_WORKER_PATHS
                        .iter()
                        .map(|p| (*p).to_owned())
                        .collect()
                }),
            }),
            responses: Default::default(),
            anthropic_beta: Vec::new(),
            prices: BTreeMap::new(),
        };
        out.push(overlay(base, entry));
    }
    for p in &mut out {
        while p.base_url.ends_with('/') {
            p.base_url.pop();
        }
        responses_mode(p, user, problems);
        anthropic_beta(p, user, problems);
        key_pool(p, user, problems);
    }
    out.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.id.cmp(&b.id)));
    out
}

/// `api_keys:` (with the entry's own `api_key` first) replaces the key the catalogue found in the
/// environment: the operator listed exactly the keys to use. Two keys or more make a pool.
fn key_pool(p: &mut ProviderConfig, user: &[ProviderEntry], problems: &mut Vec<String>) {
    let Some((i, entry)) = user.iter().enumerate().find(|(_, e)| ProviderId::new(&e.id) == p.id) else {
        return;
    };
    let cooldown = entry
        .key_cooldown_seconds
        .unwrap_or(super::settings::DEFAULT_KEY_COOLDOWN_SECONDS);
    if !(cooldown.is_finite() && cooldown > 0.0 && cooldown <= 86_400.0) {
        problems.push(format!(
            "providers[{i}] (`{}`): `key_cooldown_seconds` must be more than 0 and at most 86400",
            entry.id
        ));
        return;
    }
    let Some(listed) = &entry.api_keys else {
        return;
    };
    let mut keys: Vec<(SecretString, u32)> = entry.api_key.iter().map(|k| (k.clone(), 1)).collect();
    for (j, item) in listed.iter().enumerate() {
        let (key, weight) = match item {
            None | Some(PoolKeyEntry::Weighted { key: None, .. }) => continue,
            Some(PoolKeyEntry::Key(key)) => (key, 1),
            Some(PoolKeyEntry::Weighted { key: Some(key), weight }) => (key, *weight),
        };
        if weight == 0 {
            problems.push(format!(
                "providers[{i}] (`{}`): api_keys[{j}]: `weight` must be at least 1",
                entry.id
            ));
        }
        // The same key twice would only skew the weights.
        if !keys.iter().any(|(k, _)| k.expose_secret() == key.expose_secret()) {
            keys.push((key.clone(), weight));
        }
    }
    p.api_key = keys.first().map(|(k, _)| k.clone());
    if keys.len() > 1 {
        p.key_pool = Some(KeyPoolConfig {
            keys,
            cooldown: std::time::Duration::from_secs_f64(cooldown),
        });
    }
}

/// `responses:` is the OpenAI protocol's own choice: set on another kind it is a config error, and
/// those kinds always bridge.
fn responses_mode(p: &mut ProviderConfig, user: &[ProviderEntry], problems: &mut Vec<String>) {
    let set = user
        .iter()
        .position(|e| ProviderId::new(&e.id) == p.id)
        .and_then(|i| user[i].responses.map(|mode| (i, mode)));
    if let Some((_, mode)) = set {
        p.responses = mode;
    }
    if super::settings::RESPONSES_KINDS.contains(&p.kind.as_str()) {
        return;
    }
    if let Some((i, mode)) = set {
        problems.push(format!(
            "providers[{i}] (`{}`): `responses: {}` is only for kind openai or azure (kind `{}` is always bridged)",
            user[i].id,
            mode.as_str(),
            p.kind
        ));
    }
    p.responses = super::settings::ResponsesMode::Bridge;
}

/// `anthropic_beta:` names betas of Anthropic's own API: set on another kind it is a config error,
/// and each name must be one comma-free header token.
fn anthropic_beta(p: &ProviderConfig, user: &[ProviderEntry], problems: &mut Vec<String>) {
    let Some((i, entry)) = user
        .iter()
        .enumerate()
        .find(|(_, e)| ProviderId::new(&e.id) == p.id && e.anthropic_beta.is_some())
    else {
        return;
    };
    if p.kind != "anthropic" {
        problems.push(format!(
            "providers[{i}] (`{}`): `anthropic_beta` is only for kind anthropic (kind `{}`)",
            entry.id, p.kind
        ));
        return;
    }
    for name in entry.anthropic_beta.iter().flatten() {
        let token = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b',');
        if !token {
            problems.push(format!(
                "providers[{i}] (`{}`): `anthropic_beta` entry {name:?} is not a beta name (no spaces or commas)",
                entry.id
            ));
        }
    }
}

fn overlay(mut base: ProviderConfig, over: &ProviderEntry) -> ProviderConfig {
    if let Some(kind) = &over.kind {
        base.kind = kind.clone();
    }
    if let Some(url) = &over.base_url {
        base.base_url = url.clone();
    }
    if let Some(key) = &over.api_key {
        base.api_key = Some(key.clone());
    }
    if let Some(models) = &over.models {
        base.models = models.clone();
    }
    if let Some(priority) = over.priority {
        base.priority = priority;
    }
    if over.max_concurrency.is_some() {
        base.max_concurrency = over.max_concurrency;
    }
    if let Some(queue) = over.queue {
        base.queue = queue;
    }
    if let Some(auth) = &over.auth {
        base.auth = auth.clone();
    }
    if let Some(headers) = &over.headers {
        base.headers.extend(headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if let Some(query) = &over.query {
        for (k, v) in query {
            base.query.retain(|(key, _)| key != k);
            base.query.push((k.clone(), v.clone()));
        }
    }
    if let Some(c) = over.confidence {
        base.confidence = c;
    }
    if let Some(m) = &over.task_model {
        base.task_model = Some(m.clone());
    }
    if let Some(betas) = &over.anthropic_beta {
        base.anthropic_beta = betas.clone();
    }
    if let Some(aliases) = &over.model_aliases {
        base.model_aliases
            .extend(aliases.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_file_is_embedded_and_parses() {
        let on_disk: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/providers"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        for name in &on_disk {
            assert!(FILES.iter().any(|(f, _)| f == name), "providers/{name} is not in FILES");
        }
        assert_eq!(on_disk.len(), FILES.len());
        let entries = catalogue().unwrap();
        for id in [
            "openai",
            "anthropic",
            "azure",
            "gemini",
            "mistral",
            "nvidia",
            "huggingface",
            "groq",
            "deepseek",
            "openrouter",
            "together",
            "ollama",
            "vllm",
            "llamacpp",
            "tgi",
            "sglang",
            "localai",
        ] {
            assert!(entries.iter().any(|e| e.id == id), "catalogue lacks {id}");
        }
    }

    /// Runtimes the operator runs: their cost is the operator's, set in the configuration.
    const SELF_HOSTED: &[&str] = &["vllm", "ollama", "llamacpp", "tgi", "sglang", "localai"];

    /// The hosted models without a catalogue price, by provider, with the reason the provider file
    /// gives. A model leaves this list when its price is read; a new model joins it only with a reason.
    const UNPRICED: &[(&str, &[&str], &str)] = &[
        (
            "openai",
            &["gpt-5.6-sol"],
            "its pages show only a promotional price, promised until 2026-11-21",
        ),
        (
            "openai",
            &[
                "gpt-6.2-astra",
                "gpt-6-astra",
                "gpt-6.1-sol",
                "gpt-5.5",
                "gpt-4o",
                "gpt-4o-mini",
                "gpt-4.1",
                "gpt-4.1-mini",
            ],
            "no copy of the model's page was read",
        ),
        ("anthropic", &["claude-fable-5-2"], "no copy of its page was read"),
        (
            "azure",
            &[
                "gpt-5.5",
                "gpt-5.4",
                "gpt-5.4-mini",
                "gpt-5.4-nano",
                "gpt-4o",
                "gpt-4o-mini",
                "gpt-4.1",
                "gpt-4.1-mini",
                "text-embedding-3-small",
                "text-embedding-3-large",
            ],
            "no copy of the Global Standard price list with its numbers was read",
        ),
        (
            "gemini",
            &[
                "gemini-3.8-flash",
                "gemini-3.7-flash",
                "gemini-3.6-flash",
                "gemini-3.5-flash",
                "gemini-3.5-flash-lite",
                "gemini-3.1-flash-lite",
                "gemini-3.1-pro-preview",
                "gemini-embedding-2",
                "gemini-embedding-001",
            ],
            "no copy of the Gemini API pricing page was read",
        ),
        (
            "mistral",
            &["open-mistral-nemo"],
            "its model card marks it retired on 2026-07-31",
        ),
        (
            "deepseek",
            &["deepseek-v4-flash", "deepseek-v4-pro"],
            "every rate has a peak and an off-peak value, and a price has no time of day",
        ),
        (
            "groq",
            &[
                "llama-3.1-8b-instant",
                "llama-3.3-70b-versatile",
                "openai/gpt-oss-20b",
                "openai/gpt-oss-120b",
            ],
            "no copy of the price table was read",
        ),
        (
            "together",
            &[
                "moonshotai/Kimi-K2.5",
                "meta-llama/Llama-3.3-70B-Instruct-Turbo",
                "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo",
                "Qwen/Qwen2.5-72B-Instruct-Turbo",
            ],
            "the copies read show no model's rate",
        ),
        ("openrouter", &["*"], "it serves any model, each at its own price"),
        (
            "huggingface",
            &[
                "meta-llama/Llama-3.1-8B-Instruct",
                "meta-llama/Llama-3.3-70B-Instruct",
                "Qwen/Qwen2.5-72B-Instruct",
                "mistralai/Mistral-7B-Instruct-v0.3",
            ],
            "a request costs what the inference provider serving it charges",
        ),
        (
            "nvidia",
            &[
                "meta/llama-3.1-8b-instruct",
                "meta/llama-3.1-70b-instruct",
                "meta/llama-3.3-70b-instruct",
                "mistralai/mistral-large-2-instruct",
                "nvidia/nv-embedqa-e5-v5",
            ],
            "the hosted API Catalog publishes no per-token price",
        ),
    ];

    fn unpriced_reason(id: &str, model: &str) -> Option<&'static str> {
        UNPRICED
            .iter()
            .find(|(p, models, _)| *p == id && models.contains(&model))
            .map(|(_, _, why)| *why)
    }

    #[test]
    fn catalogue_prices_are_sound_and_name_listed_models() {
        // `catalogue()` refuses a bad price or one for an unlisted model, so parsing is that check.
        let entries = catalogue().unwrap();
        for e in &entries {
            if SELF_HOSTED.contains(&e.id.as_str()) {
                assert!(
                    e.prices.is_empty(),
                    "{} is self-hosted: its prices are the operator's",
                    e.id
                );
                continue;
            }
            for model in &e.models {
                match (e.prices.contains_key(model), unpriced_reason(&e.id, model)) {
                    (true, Some(why)) => panic!("{}: {model} is priced, so UNPRICED must drop it ({why})", e.id),
                    (false, None) => panic!("{}: {model} has no price and no reason in UNPRICED", e.id),
                    _ => {}
                }
            }
        }
        // An exemption for a model the catalogue no longer lists would hide nothing and mislead.
        for (id, models, _) in UNPRICED {
            let entry = entries.iter().find(|e| e.id == *id);
            let entry = entry.unwrap_or_else(|| panic!("UNPRICED names {id}, which the catalogue lacks"));
            for model in *models {
                assert!(
                    entry.models.iter().any(|m| m == model),
                    "UNPRICED names {id}/{model}, which it does not list"
                );
            }
        }
        for id in ["openai", "anthropic"] {
            let entry = entries.iter().find(|e| e.id == id).unwrap();
            assert!(!entry.prices.is_empty(), "{id} publishes prices");
        }
    }

    #[test]
    fn a_bad_or_stray_price_is_reported() {
        let mut entry = catalogue().unwrap().into_iter().find(|e| e.id == "openai").unwrap();
        let bad: Price = serde_json::from_value(serde_json::json!({"input": -1, "output": 2})).unwrap();
        entry.prices.insert("gpt-4o".into(), bad.clone());
        entry.prices.insert("no-such-model".into(), bad);
        let problems = price_problems(&entry);
        assert!(
            problems.iter().any(|p| p.contains("prices.gpt-4o: `input`")),
            "{problems:#?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("`no-such-model` is not among")),
            "{problems:#?}"
        );
    }

    #[test]
    fn seed_004_priority_order_holds() {
        let entries = catalogue().unwrap();
        let prio = |id: &str| entries.iter().find(|e| e.id == id).unwrap().priority;
        assert!(prio("mistral") < prio("gemini"));
        assert!(prio("gemini") < prio("openai"));
        assert!(prio("openai") < prio("anthropic"));
        assert!(prio("anthropic") < prio("huggingface"));
    }

    #[test]
    fn catalogue_provider_is_enabled_by_its_key_variable_only() {
        let cat = catalogue().unwrap();
        let mut problems = vec![];
        assert!(resolve(&cat, &[], &Env::default(), &mut problems).is_empty());
        let env = Env::from_pairs([("CLAUDE_API_KEY", "k")]);
        let out = resolve(&cat, &[], &env, &mut problems);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].id.as_str(), "anthropic");
    }

    #[test]
    fn config_entry_overrides_only_what_it_sets() {
        let cat = catalogue().unwrap();
        let user = [ProviderEntry {
            id: "claude".into(),
            priority: Some(0),
            ..Default::default()
        }];
        let out = resolve(&cat, &user, &Env::default(), &mut vec![]);
        assert_eq!(out[0].id.as_str(), "anthropic");
        assert_eq!(out[0].priority, 0);
        assert_eq!(out[0].base_url, "https://api.anthropic.com");
        assert_eq!(out[0].auth, AuthScheme::Header("x-api-key".into()));
    }
}
