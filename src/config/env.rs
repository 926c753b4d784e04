//! The environment-variable contract: one table mapping each flat variable to its config key.
//!
//! Flat names come from the seeds and issues (`MAX_RETRIES`, `DATABASE_URL`, ...). Any key can also
//! be set as `AI_GATEWAY__SECTION__KEY`. Later sources win: file < nested env < flat env.

use std::collections::BTreeMap;

use serde_json::Value;

/// A snapshot of the environment, taken once so loading is a pure function of its inputs.
#[derive(Debug, Clone, Default)]
pub struct Env(BTreeMap<String, String>);

impl Env {
    /// The process environment. The only place the gateway reads it.
    #[expect(clippy::disallowed_methods, reason = "the one place that reads the environment")]
    pub fn from_process() -> Self {
        Self(std::env::vars().collect())
    }

    /// An explicit environment, for tests and embedding.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    /// A variable's value; empty counts as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// Adds or replaces one variable.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }

    fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }
}

/// How a flat variable's text becomes a config value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// Taken as text.
    Text,
    /// A whole number.
    Integer,
    /// A number, fractions allowed.
    Number,
    /// `true/false/1/0/yes/no/on/off`.
    Flag,
    /// Comma-separated; blanks dropped.
    List,
    /// One more item appended to a list.
    Append,
}

/// One row of the contract: variable name → config key path.
#[derive(Debug, Clone, Copy)]
pub struct FlatVar {
    /// The environment variable.
    pub name: &'static str,
    /// The config key it sets.
    pub path: &'static [&'static str],
    /// How its text is read.
    pub kind: ValueKind,
}

const fn row(name: &'static str, path: &'static [&'static str], kind: ValueKind) -> FlatVar {
    FlatVar { name, path, kind }
}

/// Every flat variable the gateway reads. The book's reference (docs/src/configuration.md) names each on its
/// key's row, which `tests/api/config_reference.rs` checks.
pub const FLAT_ENV: &[FlatVar] = &[
    row("AI_GATEWAY_LISTEN", &["listen"], ValueKind::Text),
    row("DATABASE_URL", &["database_url"], ValueKind::Text),
    row("MAX_RETRIES", &["routing", "max_retries"], ValueKind::Integer),
    row("TIMEOUT_SECONDS", &["routing", "timeout_seconds"], ValueKind::Number),
    row(
        "FIRST_TOKEN_TIMEOUT_SECONDS",
        &["routing", "first_token_timeout_seconds"],
        ValueKind::Number,
    ),
    row(
        "STREAM_IDLE_TIMEOUT_SECONDS",
        &["routing", "stream_idle_timeout_seconds"],
        ValueKind::Number,
    ),
    row(
        "CIRCUIT_BREAKER_THRESHOLD",
        &["routing", "circuit_breaker", "failure_threshold"],
        ValueKind::Integer,
    ),
    row(
        "CIRCUIT_BREAKER_RESET_TIMEOUT",
        &["routing", "circuit_breaker", "reset_timeout_seconds"],
        ValueKind::Number,
    ),
    row("MAX_BODY_BYTES", &["limits", "max_body_bytes"], ValueKind::Integer),
    row(
        "MAX_RESPONSE_BYTES",
        &["limits", "max_response_bytes"],
        ValueKind::Integer,
    ),
    row("LOG_FORMAT", &["logging", "format"], ValueKind::Text),
    row("LOG_PROMPTS", &["logging", "log_prompts"], ValueKind::Flag),
    row("RUST_LOG", &["logging", "filter"], ValueKind::Text),
    row("API_KEYS", &["auth", "api_keys"], ValueKind::List),
    row("API_KEY", &["auth", "api_keys"], ValueKind::Append),
    row("INTERNAL_API_TOKEN", &["auth", "admin_token"], ValueKind::Text),
    row("AI_CLUSTER_SECRET", &["auth", "worker_token"], ValueKind::Text),
    row("AUTH_REQUIRED", &["auth", "required"], ValueKind::Flag),
    row("OBSERVABILITY_TOKEN", &["observability", "token"], ValueKind::Text),
    row("RATE_LIMIT_ENABLED", &["rate_limit", "enabled"], ValueKind::Flag),
    row("RATE_LIMIT_RPM", &["rate_limit", "rpm"], ValueKind::Integer),
    row("RATE_LIMIT_BURST", &["rate_limit", "burst"], ValueKind::Integer),
    row("RATE_LIMIT_REPLICAS", &["rate_limit", "replicas"], ValueKind::Integer),
    row(
        "SHUTDOWN_DRAIN_SECONDS",
        &["shutdown", "drain_seconds"],
        ValueKind::Number,
    ),
    row(
        "SHUTDOWN_GRACE_SECONDS",
        &["shutdown", "grace_seconds"],
        ValueKind::Number,
    ),
    row("REDIS_URL", &["redis_url"], ValueKind::Text),
    row("REDIS_PREFIX", &["redis_prefix"], ValueKind::Text),
    row("AI_NODES", &["nodes", "urls"], ValueKind::List),
    row("WEBHOOK_SECRET", &["webhooks", "secret"], ValueKind::Text),
    row("BACKEND_KIND", &["backend", "kind"], ValueKind::Text),
    row("BACKEND_BASE_URL", &["backend", "base_url"], ValueKind::Text),
    row("BACKEND_API_KEY", &["backend", "api_key"], ValueKind::Text),
    row("MODEL_NAME", &["backend", "model"], ValueKind::Text),
    // The OpenTelemetry SDKs' own variables, so a collector set up for other services finds this one.
    row(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        &["telemetry", "otlp", "endpoint"],
        ValueKind::Text,
    ),
    row(
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        &["telemetry", "otlp", "protocol"],
        ValueKind::Text,
    ),
    row(
        "OTEL_EXPORTER_OTLP_HEADERS",
        &["telemetry", "otlp", "headers"],
        ValueKind::Text,
    ),
    row(
        "OTEL_SERVICE_NAME",
        &["telemetry", "otlp", "service_name"],
        ValueKind::Text,
    ),
    row(
        "OTEL_TRACES_SAMPLER_ARG",
        &["telemetry", "otlp", "sample_ratio"],
        ValueKind::Number,
    ),
];

const NESTED_PREFIX: &str = "AI_GATEWAY__";

/// Applies nested then flat variables onto the config tree; returns one problem per bad value.
pub(super) fn apply(tree: &mut Value, env: &Env) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, raw) in env.iter() {
        let Some(rest) = name.strip_prefix(NESTED_PREFIX) else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        let value = serde_yaml_ng::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.clone()));
        set_path(tree, &path, value);
    }
    for var in FLAT_ENV {
        let Some(raw) = env.get(var.name) else {
            continue;
        };
        let path: Vec<String> = var.path.iter().map(|s| (*s).to_owned()).collect();
        if var.kind == ValueKind::Append {
            append_path(tree, &path, Value::String(raw.trim().to_owned()));
            continue;
        }
        match parse(raw, var.kind) {
            Ok(value) => set_path(tree, &path, value),
            Err(expected) => problems.push(format!(
                "{} (from env {}): expected {expected}, got `{raw}`",
                var.path.join("."),
                var.name
            )),
        }
    }
    problems
}

fn parse(raw: &str, kind: ValueKind) -> Result<Value, &'static str> {
    let raw = raw.trim();
    match kind {
        ValueKind::Text => Ok(Value::String(raw.to_owned())),
        ValueKind::Integer => raw.parse::<u64>().map(Value::from).map_err(|_| "a whole number"),
        ValueKind::Number => raw
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Value::from)
            .ok_or("a number"),
        ValueKind::List | ValueKind::Append => Ok(Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        )),
        ValueKind::Flag => match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Value::Bool(true)),
            "false" | "0" | "no" | "off" => Ok(Value::Bool(false)),
            _ => Err("true or false"),
        },
    }
}

/// Adds `value` to the list at `path` (creating it), keeping what the file or another variable set.
fn append_path(tree: &mut Value, path: &[String], value: Value) {
    let mut node = &mut *tree;
    for key in path {
        if !node.is_object() {
            *node = Value::Object(serde_json::Map::new());
        }
        let Value::Object(map) = node else { return };
        node = map.entry(key.clone()).or_insert(Value::Null);
    }
    match node {
        Value::Array(items) => items.push(value),
        other => *other = Value::Array(vec![value]),
    }
}

fn set_path(tree: &mut Value, path: &[String], value: Value) {
    let mut node = tree;
    for key in path {
        if !node.is_object() {
            *node = Value::Object(serde_json::Map::new());
        }
        let Value::Object(map) = node else { return };
        node = map.entry(key.clone()).or_insert(Value::Null);
    }
    *node = value;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn applied(pairs: &[(&str, &str)]) -> (Value, Vec<String>) {
        let mut tree = json!({});
        let problems = apply(&mut tree, &Env::from_pairs(pairs.iter().copied()));
        (tree, problems)
    }

    #[test]
    fn every_flat_variable_sets_its_key() {
        let samples = [
            ("AI_GATEWAY_LISTEN", "0.0.0.0:9", json!("0.0.0.0:9")),
            ("DATABASE_URL", "postgres://x/y", json!("postgres://x/y")),
            ("MAX_RETRIES", "4", json!(4)),
            ("TIMEOUT_SECONDS", "2.5", json!(2.5)),
            ("FIRST_TOKEN_TIMEOUT_SECONDS", "3", json!(3.0)),
            ("STREAM_IDLE_TIMEOUT_SECONDS", "30", json!(30.0)),
            ("CIRCUIT_BREAKER_THRESHOLD", "5", json!(5)),
            ("CIRCUIT_BREAKER_RESET_TIMEOUT", "30", json!(30.0)),
            ("MAX_BODY_BYTES", "1024", json!(1024)),
            ("MAX_RESPONSE_BYTES", "2048", json!(2048)),
            ("LOG_FORMAT", "pretty", json!("pretty")),
            ("LOG_PROMPTS", "yes", json!(true)),
            ("RUST_LOG", "debug", json!("debug")),
            ("API_KEYS", "a, b,,c", json!(["a", "b", "c"])),
            ("API_KEY", "k", json!(["k"])),
            ("INTERNAL_API_TOKEN", "adm", json!("adm")),
            ("AI_CLUSTER_SECRET", "wrk", json!("wrk")),
            ("AUTH_REQUIRED", "false", json!(false)),
            ("OBSERVABILITY_TOKEN", "obs", json!("obs")),
            ("RATE_LIMIT_ENABLED", "true", json!(true)),
            ("RATE_LIMIT_RPM", "60", json!(60)),
            ("RATE_LIMIT_BURST", "3", json!(3)),
            ("RATE_LIMIT_REPLICAS", "3", json!(3)),
            ("SHUTDOWN_DRAIN_SECONDS", "5", json!(5.0)),
            ("SHUTDOWN_GRACE_SECONDS", "0.5", json!(0.5)),
            ("REDIS_URL", "redis://127.0.0.1:6379", json!("redis://127.0.0.1:6379")),
            ("REDIS_PREFIX", "test:", json!("test:")),
            (
                "AI_NODES",
                "http://gpu-1:8000, http://gpu-2:8000",
                json!(["http://gpu-1:8000", "http://gpu-2:8000"]),
            ),
            ("WEBHOOK_SECRET", "whsec", json!("whsec")),
            ("BACKEND_KIND", "vllm", json!("vllm")),
            ("BACKEND_BASE_URL", "http://vllm:8000/v1", json!("http://vllm:8000/v1")),
            ("BACKEND_API_KEY", "sk-b", json!("sk-b")),
            ("MODEL_NAME", "llama3.2", json!("llama3.2")),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://collector:4318",
                json!("http://collector:4318"),
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", json!("http/protobuf")),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=k", json!("api-key=k")),
            ("OTEL_SERVICE_NAME", "gw-eu", json!("gw-eu")),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25", json!(0.25)),
        ];
        assert_eq!(samples.len(), FLAT_ENV.len(), "one sample per contract row");
        for (name, raw, expected) in samples {
            let var = FLAT_ENV.iter().find(|v| v.name == name).unwrap();
            let (tree, problems) = applied(&[(name, raw)]);
            assert!(problems.is_empty(), "{name}: {problems:?}");
            let mut node = &tree;
            for key in var.path {
                node = &node[key];
            }
            assert_eq!(node, &expected, "{name}");
        }
    }

    #[test]
    fn api_keys_and_api_key_combine() {
        let (tree, _) = applied(&[("API_KEYS", "a,b"), ("API_KEY", "c")]);
        assert_eq!(tree["auth"]["api_keys"], json!(["a", "b", "c"]));
    }

    #[test]
    fn bad_values_name_the_variable_and_key() {
        let (_, problems) = applied(&[("MAX_RETRIES", "lots")]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("MAX_RETRIES") && problems[0].contains("routing.max_retries"));
    }

    #[test]
    fn nested_variables_reach_any_key_and_flat_ones_win() {
        let (tree, _) = applied(&[
            ("AI_GATEWAY__ROUTING__CIRCUIT_BREAKER__FAILURE_THRESHOLD", "9"),
            ("AI_GATEWAY__ROUTING__MAX_RETRIES", "7"),
            ("MAX_RETRIES", "2"),
        ]);
        assert_eq!(tree["routing"]["circuit_breaker"]["failure_threshold"], json!(9));
        assert_eq!(tree["routing"]["max_retries"], json!(2));
    }
}
