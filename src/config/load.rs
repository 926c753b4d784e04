//! Layered loading: defaults → YAML file (with `${VAR}` expansion) → environment → validation.

use std::path::PathBuf;

use serde_json::Value;

use super::catalogue::{self, catalogue};
use super::env::{self, Env};
use super::nodes::{DEFAULT_POOL, NODE_POOL_KIND, NodeSettings};
use super::settings::{ProviderConfig, ProviderEntry, Settings};
use super::validate;

/// Where configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Optional YAML file (`--config` or `AI_GATEWAY_CONFIG`).
    pub file: Option<PathBuf>,
    /// The environment snapshot.
    pub env: Env,
}

impl Sources {
    /// The process environment plus `--config`, falling back to `AI_GATEWAY_CONFIG`.
    pub fn from_process(file: Option<PathBuf>) -> Self {
        let env = Env::from_process();
        let file = file.or_else(|| env.get("AI_GATEWAY_CONFIG").map(PathBuf::from));
        Self { file, env }
    }
}

/// A loaded, validated configuration: what one swap of the live settings installs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The settings as written.
    pub settings: Settings,
    /// Enabled providers after merging the catalogue, by priority.
    pub providers: Vec<ProviderConfig>,
    /// Things worth telling the operator that do not stop the start.
    pub warnings: Vec<String>,
    /// Where it was loaded from: a reload reads the same file with the same environment.
    pub sources: Sources,
}

/// Every problem found, each naming the key (and variable) it concerns.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .problems.join("\n  - "))]
pub struct ConfigError {
    /// One line per problem.
    pub problems: Vec<String>,
}

/// Loads and validates configuration from `sources`.
pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();
    let tree = match &sources.file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => parse_yaml(&text, &path.display().to_string(), &mut problems),
            Err(e) => {
                problems.push(format!("{}: cannot read: {e}", path.display()));
                empty()
            }
        },
        None => empty(),
    };
    resolve(tree, sources.clone(), problems)
}

/// Loads and validates configuration from YAML text (what `load` does after reading the file).
pub fn load_str(yaml: &str, env: &Env) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();
    let tree = parse_yaml(yaml, "config", &mut problems);
    let sources = Sources {
        file: None,
        env: env.clone(),
    };
    resolve(tree, sources, problems)
}

fn empty() -> Value {
    Value::Object(serde_json::Map::new())
}

fn resolve(mut tree: Value, sources: Sources, mut problems: Vec<String>) -> Result<Config, ConfigError> {
    let mut warnings = Vec::new();
    expand_vars(&mut tree, &sources.env, &mut warnings);
    problems.extend(env::apply(&mut tree, &sources.env));
    enable_limits_when_asked(&mut tree);
    let settings: Settings = match serde_path_to_error::deserialize(tree) {
        Ok(s) => s,
        Err(e) => {
            problems.push(format!("{}: {}", e.path(), e.inner()));
            return Err(ConfigError { problems });
        }
    };
    finish(settings, sources, warnings, problems)
}

/// Validates typed settings and resolves providers against the catalogue: the part of loading
/// that the admin API's overrides (`Config::with_overrides`) go through again.
pub(super) fn finish(
    settings: Settings,
    sources: Sources,
    mut warnings: Vec<String>,
    mut problems: Vec<String>,
) -> Result<Config, ConfigError> {
    let env = &sources.env;
    problems.extend(validate::settings(&settings));
    problems.extend(settings.telemetry.otlp.problems());
    problems.extend(super::spend::problems(
        &settings.pricing,
        &settings.teams,
        &settings.tags,
        &settings.budgets,
    ));
    let cat = catalogue().unwrap_or_else(|errs| {
        problems.extend(errs);
        Vec::new()
    });
    let mut entries = settings.providers.clone();
    add_default_pool(&settings.nodes, &mut entries);
    problems.extend(super::backend::add_backend(
        &settings.backend,
        &cat,
        &mut entries,
        &mut warnings,
    ));
    let providers = catalogue::resolve(&cat, &entries, env, &mut problems);
    problems.extend(validate::providers(&entries, &providers));
    problems.extend(validate::routes(&settings, &entries, &cat, &providers, &mut warnings));
    if providers.is_empty() && !warnings.iter().any(|w| w.starts_with(NO_PROVIDER)) {
        warnings.push(format!(
            "{NO_PROVIDER}: set a provider key (e.g. OPENAI_API_KEY) or declare `providers:` in the config"
        ));
    }
    if problems.is_empty() {
        Ok(Config {
            settings,
            providers,
            warnings,
            sources,
        })
    } else {
        Err(ConfigError { problems })
    }
}

const NO_PROVIDER: &str = "no provider is enabled";

/// Limits are off unless asked for: setting a rate (`rpm`, `burst`, `tpm`, in the file or through
/// `RATE_LIMIT_RPM` / `RATE_LIMIT_BURST`) asks for them, unless `enabled` is set explicitly.
fn enable_limits_when_asked(tree: &mut Value) {
    let Some(Value::Object(rl)) = tree.get_mut("rate_limit") else {
        return;
    };
    if !rl.contains_key("enabled") && ["rpm", "burst", "tpm"].iter().any(|k| rl.contains_key(*k)) {
        rl.insert("enabled".into(), Value::Bool(true));
    }
}

fn parse_yaml(text: &str, origin: &str, problems: &mut Vec<String>) -> Value {
    match serde_yaml_ng::from_str::<Value>(text) {
        Ok(Value::Null) => empty(),
        Ok(v) => v,
        Err(e) => {
            problems.push(format!("{origin}: not valid YAML: {e}"));
            empty()
        }
    }
}

/// Expands `${VAR}` and `${VAR:-default}` in every string. A string that is exactly one unset
/// `${VAR}` becomes null, so optional keys like `api_key: ${VLLM_API_KEY}` simply stay unset.
fn expand_vars(node: &mut Value, env: &Env, warnings: &mut Vec<String>) {
    match node {
        Value::String(s) if s.contains("${") => {
            let (expanded, all_unset) = expand(s, env, warnings);
            *node = if all_unset && expanded.is_empty() {
                Value::Null
            } else {
                Value::String(expanded)
            };
        }
        Value::Array(items) => items.iter_mut().for_each(|v| expand_vars(v, env, warnings)),
        Value::Object(map) => map.values_mut().for_each(|v| expand_vars(v, env, warnings)),
        _ => {}
    }
}

fn expand(s: &str, env: &Env, warnings: &mut Vec<String>) -> (String, bool) {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut all_unset = true;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return (out, false);
        };
        let spec = &after[..end];
        let (name, default) = match spec.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (spec, None),
        };
        match (env.get(name), default) {
            (Some(v), _) => {
                all_unset = false;
                out.push_str(v);
            }
            (None, Some(d)) => {
                all_unset = false;
                out.push_str(d);
            }
            (None, None) => warnings.push(format!("${{{name}}} is not set; it expands to nothing")),
        }
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        all_unset = false;
    }
    out.push_str(rest);
    (out, all_unset)
}

/// Adds the default pool to the provider entries when `nodes.urls` is set: a new `node_pool`
/// entry `nodes`, or more nodes for an entry that already has that id.
fn add_default_pool(settings: &NodeSettings, entries: &mut Vec<ProviderEntry>) {
    if settings.urls.is_empty() {
        return;
    }
    if let Some(entry) = entries.iter_mut().find(|e| e.id == DEFAULT_POOL) {
        let nodes = entry.nodes.get_or_insert_with(Vec::new);
        nodes.extend(settings.urls.iter().cloned());
        entry.kind.get_or_insert_with(|| NODE_POOL_KIND.to_owned());
        entry.runtime = entry.runtime.or(Some(settings.runtime));
        return;
    }
    entries.push(ProviderEntry {
        id: DEFAULT_POOL.to_owned(),
        kind: Some(NODE_POOL_KIND.to_owned()),
        nodes: Some(settings.urls.clone()),
        runtime: Some(settings.runtime),
        priority: Some(settings.priority),
        ..ProviderEntry::default()
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::io::Write;

    fn load_yaml(yaml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(yaml.as_bytes()).unwrap();
        load(&Sources {
            file: Some(file.path().into()),
            env: Env::from_pairs(env.iter().copied()),
        })
    }

    #[test]
    fn defaults_load_with_nothing_set() {
        let cfg = load(&Sources::default()).unwrap();
        assert_eq!(cfg.settings.listen, "127.0.0.1:8080");
        assert_eq!(cfg.settings.database_url, "sqlite://ai-gateway.db");
        assert_eq!(cfg.settings.routing.max_retries, 1);
        assert!(cfg.providers.is_empty());
    }

    #[test]
    fn the_issue_example_loads_and_expands_keys() {
        let yaml = r#"
listen: 127.0.0.1:8080
database_url: sqlite://ai-gateway.db
providers:
  - id: local-vllm
    kind: openai
    base_url: http://10.0.0.5:8000/v1
    api_key: ${VLLM_API_KEY}
    models: ["llama-3.1-8b"]
    priority: 1
routing:
  max_retries: 1
  timeout_seconds: 10
  first_token_timeout_seconds: 10
  stream_idle_timeout_seconds: 60
  circuit_breaker: { failure_threshold: 3, reset_timeout_seconds: 60 }
limits: { max_body_bytes: 16777216 }
"#;
        let cfg = load_yaml(yaml, &[("VLLM_API_KEY", "sk-v")]).unwrap();
        let p = &cfg.providers[0];
        assert_eq!(p.id.as_str(), "local-vllm");
        assert_eq!(p.api_key.as_ref().unwrap().expose_secret(), "sk-v");
        let cfg = load_yaml(yaml, &[]).unwrap();
        assert!(
            cfg.providers[0].api_key.is_none(),
            "unset ${{VAR}} leaves the key unset"
        );
    }

    #[test]
    fn api_keys_make_a_pool_with_weights_and_skip_unset_variables() {
        let yaml = r#"
providers:
  - id: openai
    api_key: ${KEY_A}
    api_keys: ["${KEY_A}", {key: "${KEY_B}", weight: 2}, "${KEY_UNSET}", {key: "${KEY_UNSET}"}]
    key_cooldown_seconds: 30
"#;
        let cfg = load_yaml(
            yaml,
            &[("KEY_A", "sk-a"), ("KEY_B", "sk-b"), ("OPENAI_API_KEY", "sk-env")],
        )
        .unwrap();
        let p = &cfg.providers[0];
        let pool = p.key_pool.as_ref().unwrap();
        let keys: Vec<(&str, u32)> = pool.keys.iter().map(|(k, w)| (k.expose_secret(), *w)).collect();
        // The environment's key is replaced by the listed ones, and a key listed twice counts once.
        assert_eq!(keys, [("sk-a", 1), ("sk-b", 2)]);
        assert_eq!(pool.cooldown, std::time::Duration::from_secs(30));
        assert_eq!(p.api_key.as_ref().unwrap().expose_secret(), "sk-a");

        let one = load_yaml(
            "providers:\n  - id: openai\n    api_keys: [\"${KEY_A}\", \"${KEY_UNSET}\"]\n",
            &[("KEY_A", "sk-a")],
        )
        .unwrap();
        assert!(one.providers[0].key_pool.is_none(), "one key is no pool");
        assert_eq!(one.providers[0].api_key.as_ref().unwrap().expose_secret(), "sk-a");

        let bad = "providers:\n  - id: openai\n    api_keys: [{key: a, weight: 0}, b]\n    key_cooldown_seconds: 0\n";
        let err = load_yaml(bad, &[]).unwrap_err();
        assert!(
            err.problems.iter().any(|p| p.contains("key_cooldown_seconds")),
            "{:?}",
            err.problems
        );
        let bad = "providers:\n  - id: openai\n    api_keys: [{key: a, weight: 0}, b]\n";
        let err = load_yaml(bad, &[]).unwrap_err();
        assert!(
            err.problems
                .iter()
                .any(|p| p.contains("api_keys[0]") && p.contains("weight")),
            "{:?}",
            err.problems
        );
    }

    #[test]
    fn stream_recovery_is_off_unless_asked_for() {
        let off = load_yaml("{}", &[]).unwrap();
        assert_eq!(
            off.settings.routing.stream_recovery,
            crate::config::StreamRecovery::Error
        );
        let on = load_yaml("routing:\n  stream_recovery: continue\n", &[]).unwrap();
        assert_eq!(
            on.settings.routing.stream_recovery,
            crate::config::StreamRecovery::Continue
        );
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        let err = load_yaml("routing:\n  max_retriez: 2\n", &[]).unwrap_err();
        assert!(
            err.problems[0].contains("routing") && err.problems[0].contains("max_retriez"),
            "{err}"
        );
    }

    #[test]
    fn shutdown_and_replicas_load_with_defaults_and_are_checked() {
        let defaults = load_yaml("{}", &[]).unwrap().settings;
        assert_eq!(
            (defaults.shutdown.drain_seconds, defaults.shutdown.grace_seconds),
            (5.0, 30.0)
        );
        assert_eq!(defaults.rate_limit.replicas, 1);
        let set = load_yaml(
            "shutdown: {drain_seconds: 2, grace_seconds: 0.5}\nrate_limit: {replicas: 3}\n",
            &[],
        )
        .unwrap()
        .settings;
        assert_eq!(set.shutdown.grace(), std::time::Duration::from_millis(500));
        assert_eq!(set.rate_limit.replicas, 3);
        let err = load_yaml("shutdown: {drain_seconds: -1}\nrate_limit: {replicas: 0}\n", &[]).unwrap_err();
        assert!(
            err.problems.iter().any(|p| p.starts_with("shutdown.drain_seconds")),
            "{err}"
        );
        assert!(
            err.problems.iter().any(|p| p.starts_with("rate_limit.replicas")),
            "{err}"
        );
        let err = load_yaml("shutdown: {grace: 3}\n", &[]).unwrap_err();
        assert!(err.problems[0].contains("grace"), "{err}");
    }

    #[test]
    fn route_problems_are_all_reported() {
        let yaml = r#"
providers: [{id: a, kind: openai, base_url: "http://a/v1", models: ["*"]}]
routes:
  - {name: ok, targets: ["a:m"]}
  - {name: ok, targets: ["a:m"]}
  - {name: "rotation:x", targets: ["a:m"]}
  - {name: empty, targets: []}
  - {name: heavy, targets: [{provider: a, model: m, weight: 0}, "nobody:m", "openai:gpt-4o"]}
users: [{name: u, routes: [ok, missing], providers: [ghost]}]
"#;
        let err = load_yaml(yaml, &[]).unwrap_err();
        for needle in [
            "used by another route",
            "must not contain `:`",
            "at least one target",
            "weight must be at least 1",
            "`nobody` is not a configured provider",
            "route `missing` is not configured",
            "provider `ghost` is not configured",
        ] {
            assert!(err.problems.iter().any(|p| p.contains(needle)), "{needle}: {err}");
        }
        assert_eq!(err.problems.len(), 7, "{err}");
        let good = "providers: [{id: a, kind: openai, base_url: \"http://a/v1\", models: [\"*\"]}]\nroutes: [{name: r, targets: [\"a:m\", \"openai:gpt-4o\"]}]\n";
        let cfg = load_yaml(good, &[]).unwrap();
        assert!(
            cfg.warnings.iter().any(|w| w.contains("`openai` is not enabled")),
            "{:?}",
            cfg.warnings
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let yaml = "listen: nope\ndatabase_url: mysql://x\nrouting: { timeout_seconds: 0 }\nproviders: [{id: x}]\n";
        let err = load_yaml(yaml, &[]).unwrap_err();
        assert!(err.problems.len() >= 4, "{err}");
    }

    #[test]
    fn setting_a_rate_turns_limits_on_unless_enabled_is_explicit() {
        let on = load(&Sources {
            file: None,
            env: Env::from_pairs([("RATE_LIMIT_BURST", "3")]),
        })
        .unwrap();
        assert!(on.settings.rate_limit.enabled);
        assert_eq!(on.settings.rate_limit.burst, 3);
        let off = load(&Sources {
            file: None,
            env: Env::from_pairs([("RATE_LIMIT_BURST", "3"), ("RATE_LIMIT_ENABLED", "false")]),
        })
        .unwrap();
        assert!(!off.settings.rate_limit.enabled);
        let explicit = load_yaml("rate_limit: {enabled: false, rpm: 600}\n", &[]).unwrap();
        assert!(!explicit.settings.rate_limit.enabled);
        assert!(!load(&Sources::default()).unwrap().settings.rate_limit.enabled);
    }

    #[test]
    fn ai_nodes_make_a_default_pool_and_pools_load_from_the_file() {
        let cfg = load(&Sources {
            file: None,
            env: Env::from_pairs([("AI_NODES", "http://gpu-1:8000,http://gpu-2:8000/v1")]),
        })
        .unwrap();
        let pool = &cfg.providers[0];
        assert_eq!(pool.id.as_str(), "nodes");
        assert_eq!(pool.kind, "node_pool");
        assert_eq!(pool.models, ["*"]);
        assert_eq!(pool.node_pool.as_ref().unwrap().nodes.len(), 2);
        let yaml = "providers:\n  - {id: gpus, kind: node_pool, nodes: [http://a:1], runtime: vllm, models: [llama]}\n";
        let cfg = load_yaml(yaml, &[]).unwrap();
        let pool = cfg.providers[0].node_pool.as_ref().unwrap();
        assert_eq!(pool.runtime, crate::config::NodeRuntime::Vllm);
        let bad = "providers:\n  - {id: gpus, kind: node_pool, nodes: [gpu-1]}\n  - {id: x, kind: openai, base_url: http://x, nodes: [http://a:1]}\n";
        let err = load_yaml(bad, &[]).unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
    }

    #[test]
    fn env_beats_the_file() {
        let cfg = load_yaml("routing: { max_retries: 5 }\n", &[("MAX_RETRIES", "0")]).unwrap();
        assert_eq!(cfg.settings.routing.max_retries, 0);
    }

    #[test]
    fn ai_nodes_become_the_default_pool_or_join_a_declared_one() {
        let settings = NodeSettings {
            urls: vec!["http://a:1".into()],
            ..NodeSettings::default()
        };
        let mut entries = Vec::new();
        add_default_pool(&settings, &mut entries);
        assert_eq!(entries[0].id, DEFAULT_POOL);
        assert_eq!(entries[0].kind.as_deref(), Some(NODE_POOL_KIND));
        assert_eq!(entries[0].priority, Some(0));
        let mut declared = vec![ProviderEntry {
            id: DEFAULT_POOL.into(),
            kind: Some(NODE_POOL_KIND.into()),
            nodes: Some(vec!["http://b:2".into()]),
            priority: Some(40),
            ..ProviderEntry::default()
        }];
        add_default_pool(&settings, &mut declared);
        assert_eq!(declared.len(), 1);
        assert_eq!(declared[0].nodes.as_ref().unwrap().len(), 2);
        assert_eq!(declared[0].priority, Some(40));
    }
}
