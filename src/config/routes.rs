//! The routes schema: named routes (model groups), path routes for non-LLM services, endpoint
//! security rules, per-user grants, the response cache and webhooks. Key names are a user contract
//! (seeds 001 and 002): extend, never rename.
//!
//! Every type here also serializes, because the admin API answers with them and stores them (as
//! JSON) in the database every replica reads.

use std::fmt;
use std::str::FromStr;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// How a named route picks among its targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Targets in the order written; the next only when one fails (the core's behaviour).
    #[default]
    Priority,
    /// Round robin: each request starts at the next target.
    Rotation,
    /// Random by `weight`.
    Weighted,
    /// The target with the lowest recent latency (EWMA) first.
    LeastLatency,
    /// The target with the fewest requests in flight first.
    LeastBusy,
    /// The healthiest, fastest target that serves the request's needs (tools, context length),
    /// skipping open breakers.
    Autoselect,
}

impl Strategy {
    /// Every strategy, in documentation order.
    pub const ALL: [Strategy; 6] = [
        Self::Priority,
        Self::Rotation,
        Self::Weighted,
        Self::LeastLatency,
        Self::LeastBusy,
        Self::Autoselect,
    ];

    /// The name used in config, in `model: "<strategy>:<route>"` and on the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Priority => "priority",
            Self::Rotation => "rotation",
            Self::Weighted => "weighted",
            Self::LeastLatency => "least_latency",
            Self::LeastBusy => "least_busy",
            Self::Autoselect => "autoselect",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s || x.as_str().replace('_', "-") == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|x| x.as_str()).collect();
                format!("unknown strategy `{s}` (one of {})", names.join(", "))
            })
    }
}

/// One target of a named route: a provider and the model to ask it for.
///
/// Written either in full (`{provider: openai, model: gpt-4o-mini, weight: 3}`) or as the CLI's
/// `provider:model` string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "TargetSpec")]
pub struct RouteTarget {
    /// A provider id from the registry.
    pub provider: String,
    /// The model name sent to it (its aliases apply).
    pub model: String,
    /// Relative share for `weighted` (default 1).
    #[serde(default = "one")]
    pub weight: u32,
    /// Largest context (prompt tokens, estimated) this target accepts; `autoselect` skips it for
    /// larger requests. Unset = no limit known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u32>,
    /// Whether it supports `tools`; `autoselect` skips it for requests with tools when `false`.
    #[serde(default = "yes")]
    pub supports_tools: bool,
    /// Requests this target serves at once for this route (this replica); more wait in its
    /// provider's `queue`. Unset: no cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
enum TargetSpec {
    Short(String),
    #[serde(rename_all = "snake_case")]
    Full {
        provider: String,
        model: String,
        #[serde(default = "one")]
        weight: u32,
        #[serde(default)]
        context_window: Option<u32>,
        #[serde(default = "yes")]
        supports_tools: bool,
        #[serde(default)]
        max_concurrency: Option<u32>,
    },
}

impl TryFrom<TargetSpec> for RouteTarget {
    type Error = String;
    fn try_from(spec: TargetSpec) -> Result<Self, String> {
        match spec {
            TargetSpec::Short(s) => s.parse(),
            TargetSpec::Full {
                provider,
                model,
                weight,
                context_window,
                supports_tools,
                max_concurrency,
            } => Ok(Self {
                provider,
                model,
                weight,
                context_window,
                supports_tools,
                max_concurrency,
            }),
        }
    }
}

impl FromStr for RouteTarget {
    type Err = String;
    /// `provider:model` (the model may itself contain `:` or `/`).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some((provider, model)) if !provider.is_empty() && !model.is_empty() => Ok(Self {
                provider: provider.to_owned(),
                model: model.to_owned(),
                weight: 1,
                context_window: None,
                supports_tools: true,
                max_concurrency: None,
            }),
            _ => Err(format!("target `{s}` must be written provider:model")),
        }
    }
}

/// The response cache for one route: `cache: true` (the global TTL) or `cache: {ttl_seconds: N}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum RouteCache {
    /// On with the global `cache.ttl_seconds`, or off.
    Enabled(bool),
    /// On with its own TTL.
    Ttl {
        /// Seconds a cached answer is served.
        ttl_seconds: u64,
    },
}

/// `routes:` — a named model group with a strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// What clients put in `model`: the bare name, or `<strategy>:<name>`.
    pub name: String,
    /// How targets are ordered for each request.
    #[serde(default)]
    pub strategy: Strategy,
    /// Providers and models behind the route.
    pub targets: Vec<RouteTarget>,
    /// Tried after every target failed: other route names or plain model names, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<String>,
    /// Tried when an upstream refuses the prompt as longer than its context window: other route
    /// names or plain model names, in order (each route with its targets, its fallbacks and, if
    /// that refuses too, its own `on_context_length_exceeded`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_context_length_exceeded: Vec<String>,
    /// Response cache for non-streamed requests on this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<RouteCache>,
    /// URL that receives a signed JSON event for each completed request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<String>,
    /// Free text shown by `routes list` and `/v1/models`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What a stream cut after its text started does on this route; unset = `routing.stream_recovery`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_recovery: Option<StreamRecovery>,
}

/// What a stream cut (or stalled) after text reached the client does (`stream_recovery`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StreamRecovery {
    /// It ends with the dialect's error event.
    #[default]
    Error,
    /// The next candidate is asked to continue the same answer, spliced into the same stream.
    Continue,
}

impl RouteConfig {
    /// The cache TTL this route asks for, if its cache is on (`default_ttl` for `cache: true`).
    pub fn cache_ttl(&self, default_ttl: u64) -> Option<u64> {
        match self.cache {
            Some(RouteCache::Enabled(true)) => Some(default_ttl),
            Some(RouteCache::Ttl { ttl_seconds }) => Some(ttl_seconds),
            Some(RouteCache::Enabled(false)) | None => None,
        }
    }
}

/// Splits a requested model into an optional strategy prefix and a name:
/// `"rotation:support"` → `(Some(Rotation), "support")`; `"support"` → `(None, "support")`.
/// A prefix that is not a strategy name is part of the name (`"ollama:llama3"` stays whole).
pub fn split_route_model(model: &str) -> (Option<Strategy>, &str) {
    match model.split_once(':') {
        Some((prefix, name)) if !name.is_empty() => match prefix.parse::<Strategy>() {
            Ok(strategy) => (Some(strategy), name),
            Err(_) => (None, model),
        },
        _ => (None, model),
    }
}

/// How a path route or endpoint authenticates callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(transform = endpoint_auth_aliases)]
#[serde(rename_all = "kebab-case")]
pub enum EndpointAuth {
    /// A client key (static or virtual): `Authorization: Bearer`, `x-api-key`.
    #[serde(alias = "api_key", alias = "apikey", alias = "key")]
    ApiKey,
    /// A JWT only.
    Jwt,
    /// No credentials (a public endpoint).
    None,
}

/// The schema side of `EndpointAuth`'s serde aliases.
fn endpoint_auth_aliases(schema: &mut schemars::Schema) {
    super::schema::value_aliases(schema, "api-key", &["api_key", "apikey", "key"]);
}

/// The schema side of the serde aliases of `PathRouteConfig` and `SecurityRule`.
fn path_route_aliases(schema: &mut schemars::Schema) {
    for (alias, key) in [
        ("target", "targets"),
        ("method", "methods"),
        ("authType", "auth"),
        ("rateLimit", "rate_limit"),
    ] {
        super::schema::alias(schema, alias, key);
    }
}

impl FromStr for EndpointAuth {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "api-key" | "api_key" | "apikey" | "key" => Ok(Self::ApiKey),
            "jwt" => Ok(Self::Jwt),
            "none" => Ok(Self::None),
            _ => Err(format!("unknown auth `{s}` (one of api-key, jwt, none)")),
        }
    }
}

/// A request rate: `100` (per minute), `"100/min"`, `"10/s"`, `"1000/hour"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "RateSpec", into = "String")]
pub struct Rate {
    /// Requests allowed per `per_seconds`.
    pub requests: u32,
    /// The window: 1, 60 or 3600.
    pub per_seconds: u32,
}

impl Rate {
    /// The same rate per minute, rounded up (at least 1).
    pub fn per_minute(self) -> u32 {
        let scaled = u64::from(self.requests) * 60 / u64::from(self.per_seconds.max(1));
        u32::try_from(scaled.max(1)).unwrap_or(u32::MAX)
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
enum RateSpec {
    PerMinute(u32),
    Text(String),
}

impl TryFrom<RateSpec> for Rate {
    type Error = String;
    fn try_from(spec: RateSpec) -> Result<Self, String> {
        match spec {
            RateSpec::PerMinute(requests) => Ok(Self {
                requests,
                per_seconds: 60,
            }),
            RateSpec::Text(s) => s.parse(),
        }
    }
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (n, unit) = s.split_once('/').unwrap_or((s, "min"));
        let requests = n
            .trim()
            .parse::<u32>()
            .map_err(|_| format!("rate `{s}` must look like 100/min"))?;
        let per_seconds = match unit.trim() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3600,
            other => return Err(format!("rate `{s}`: unknown unit `{other}` (s, min or hour)")),
        };
        Ok(Self { requests, per_seconds })
    }
}

impl From<Rate> for String {
    fn from(r: Rate) -> String {
        let unit = match r.per_seconds {
            1 => "s",
            3600 => "hour",
            _ => "min",
        };
        format!("{}/{unit}", r.requests)
    }
}

/// One or several strings (`target: URL` or `targets: [URL, URL]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single value.
    One(String),
    /// A list.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values as a slice-like list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s.clone()],
            Self::Many(v) => v.clone(),
        }
    }
}

/// `path_routes:` — a non-LLM ML service behind a path: `/predict` →
/// `http://ai-service:8080`, failing over across `targets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = path_route_aliases)]
pub struct PathRouteConfig {
    /// The path served, starting with `/`; it and every path below it are forwarded unchanged.
    pub path: String,
    /// Upstream base URLs, tried in order (`target:` for one).
    #[serde(alias = "target")]
    pub targets: OneOrMany,
    /// Methods served (default `[POST]`; `method: POST` for one); others get 405.
    #[serde(default = "post_only", alias = "method")]
    pub methods: OneOrMany,
    /// Who may call it; unset = the gateway's client auth.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "authType")]
    pub auth: Option<EndpointAuth>,
    /// Requests per caller for this path.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "rateLimit")]
    pub rate_limit: Option<Rate>,
    /// One attempt's time limit (default `routing.timeout_seconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
    /// URL that receives a signed JSON event for each completed request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<String>,
}

fn post_only() -> OneOrMany {
    OneOrMany::One("POST".to_owned())
}

/// `security:` — auth and rate limit of one endpoint (`ai-gateway secure --endpoint`), for path
/// routes and the built-in endpoints alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = path_route_aliases)]
pub struct SecurityRule {
    /// The endpoint path (`/predict`, `/v1/chat/completions`).
    pub endpoint: String,
    /// Which credentials it accepts.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "authType")]
    pub auth: Option<EndpointAuth>,
    /// Requests per caller.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "rateLimit")]
    pub rate_limit: Option<Rate>,
}

/// `users:` — what one user of the per-user namespace `/api/u/{user}/...` may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserGrant {
    /// The user: a virtual key's name or a JWT `sub`.
    pub name: String,
    /// Named routes granted.
    #[serde(default)]
    pub routes: Vec<String>,
    /// Providers granted (their models usable directly).
    #[serde(default)]
    pub providers: Vec<String>,
}

/// `cache:` — the exact-match response cache.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// TTL for routes with `cache: true` and for `x-ai-gateway-cache: on`.
    pub ttl_seconds: u64,
    /// Entries kept in memory (when Redis is not used).
    pub max_entries: u64,
    /// Bytes of answers kept in memory (when Redis is not used); the least used go first.
    pub max_bytes: u64,
    /// Larger responses are not cached.
    pub max_entry_bytes: usize,
    /// Whose requests share answers.
    pub scope: CacheScope,
}

/// `cache.scope`: whether answers are shared between callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CacheScope {
    /// Each caller (key, JWT subject) has its own entries: `x-ai-gateway-cache: hit` never tells
    /// one tenant what another asked.
    #[default]
    Caller,
    /// Every caller shares the entries (the best hit rate, for a single tenant).
    Shared,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            ttl_seconds: 300,
            max_entries: 10_000,
            max_bytes: 256 * 1024 * 1024,
            max_entry_bytes: 1024 * 1024,
            scope: CacheScope::Caller,
        }
    }
}

/// `idempotency:` — a request repeated with the same `Idempotency-Key` (or the same client
/// `x-request-id`) within the TTL is answered from the first execution, never run twice.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct IdempotencySettings {
    /// How long a finished answer is replayed; 0 turns deduplication off.
    pub ttl_seconds: u64,
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        Self { ttl_seconds: 300 }
    }
}

/// `webhooks:` — delivery of `callback` events.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// HMAC-SHA256 key the events are signed with (`WEBHOOK_SECRET`).
    #[schemars(with = "Option<String>")]
    pub secret: Option<SecretString>,
    /// One delivery attempt's time limit.
    pub timeout_seconds: f64,
    /// Attempts after the first, with exponential backoff.
    pub max_retries: u32,
    /// Events waiting for delivery before new ones are dropped (and counted).
    pub queue_capacity: usize,
    /// Where `budget.threshold` events go (`alert_at` of a budget); unset = none are sent.
    pub budget_url: Option<String>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            secret: None,
            timeout_seconds: 5.0,
            max_retries: 5,
            queue_capacity: 1_000,
            budget_url: None,
        }
    }
}

/// `reload:` — how configuration changes reach a running process.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ReloadSettings {
    /// Re-read the config file when it changes (SIGHUP always does).
    pub watch_file: bool,
    /// How often the file and the admin API's changes in the database are checked.
    pub poll_seconds: f64,
}

impl Default for ReloadSettings {
    fn default() -> Self {
        Self {
            watch_file: true,
            poll_seconds: 2.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_prefix_splits_only_for_known_strategies() {
        assert_eq!(
            split_route_model("rotation:support-private-rotation"),
            (Some(Strategy::Rotation), "support-private-rotation")
        );
        assert_eq!(
            split_route_model("autoselect:chat-default"),
            (Some(Strategy::Autoselect), "chat-default")
        );
        assert_eq!(split_route_model("ollama:llama3"), (None, "ollama:llama3"));
        assert_eq!(split_route_model("gpt-4o"), (None, "gpt-4o"));
        assert_eq!(split_route_model("rotation:"), (None, "rotation:"));
    }

    #[test]
    fn stream_recovery_is_read_and_stored_only_when_set() {
        let route: RouteConfig =
            serde_yaml_ng::from_str("name: chat\ntargets: [a:m]\nstream_recovery: continue\n").unwrap();
        assert_eq!(route.stream_recovery, Some(StreamRecovery::Continue));
        let plain: RouteConfig = serde_yaml_ng::from_str("name: chat\ntargets: [a:m]\n").unwrap();
        assert_eq!(plain.stream_recovery, None);
        let stored = serde_json::to_value(&plain).unwrap();
        assert!(stored.get("stream_recovery").is_none(), "{stored}");
        assert!(serde_yaml_ng::from_str::<RouteConfig>("name: c\ntargets: [a:m]\nstream_recovery: retry\n").is_err());
    }

    #[test]
    fn targets_and_rates_read_both_forms() {
        let yaml = "name: r\nstrategy: weighted\ntargets:\n  - openai:gpt-4o-mini\n  - {provider: mistral, model: m, weight: 3}\n";
        let route: RouteConfig = serde_yaml_ng::from_str(yaml).unwrap();
        assert_eq!(route.targets[0].provider, "openai");
        assert_eq!(route.targets[1].weight, 3);
        let rule: SecurityRule =
            serde_json::from_str(r#"{"endpoint":"/predict","authType":"jwt","rateLimit":100}"#).unwrap();
        assert_eq!(rule.auth, Some(EndpointAuth::Jwt));
        assert_eq!(rule.rate_limit.map(Rate::per_minute), Some(100));
        assert_eq!("10/s".parse::<Rate>().map(Rate::per_minute), Ok(600));
        let path: PathRouteConfig =
            serde_json::from_str(r#"{"path":"/predict","target":"http://ai-service:8080","method":"POST"}"#).unwrap();
        assert_eq!(path.targets.to_vec(), vec!["http://ai-service:8080".to_owned()]);
    }
}
