//! The configuration schema. Key names are a user contract: extend, never rename.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::nodes::{NodePoolConfig, NodeRuntime, NodeSettings};
use super::routes::{
    CacheSettings, PathRouteConfig, ReloadSettings, RouteConfig, SecurityRule, StreamRecovery, UserGrant,
    WebhookSettings, split_route_model,
};
use super::spend::{BudgetConfig, PricingSettings, TeamConfig};
use crate::domain::ProviderId;

/// Everything a gateway process is configured with, as written in YAML.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address to bind (`AI_GATEWAY_LISTEN`).
    pub listen: String,
    /// History database (`DATABASE_URL`): `sqlite://PATH` or `postgres://...`.
    pub database_url: String,
    /// Providers declared or overridden by the user (merged over the built-in catalogue).
    pub providers: Vec<ProviderEntry>,
    /// Retries, timeouts, circuit breakers.
    pub routing: RoutingSettings,
    /// Request size limits.
    pub limits: LimitSettings,
    /// Log format, level and prompt logging.
    pub logging: LoggingSettings,
    /// The request-history writer.
    pub history: HistorySettings,
    /// Client keys, operator tokens, JWT.
    pub auth: AuthSettings,
    /// Request and token limits.
    pub rate_limit: RateLimitSettings,
    /// Shared state for several replicas (`REDIS_URL`); unset = in-process limits.
    #[schemars(with = "Option<String>")]
    pub redis_url: Option<SecretString>,
    /// Prefix of every Redis key (`REDIS_PREFIX`), so environments never share counters.
    pub redis_prefix: String,
    /// `/ai/task`: the model to use and task types added to the built-in ones.
    pub tasks: TaskSettings,
    /// The GPU node pool: health checks, heartbeats, provisioning, `AI_NODES`.
    pub nodes: NodeSettings,
    /// Named routes (model groups) with a strategy: `model: "rotation:<name>"` or the bare name.
    pub routes: Vec<RouteConfig>,
    /// Non-LLM services behind a path (`/predict` → `http://ai-service:8080`).
    pub path_routes: Vec<PathRouteConfig>,
    /// Per-endpoint auth and rate limits (`secure --endpoint`).
    pub security: Vec<SecurityRule>,
    /// Networks (CIDR) path route targets must resolve into; empty = any. Checked when the config
    /// is validated and again, after DNS, on every proxied request (SSRF guard).
    pub path_routes_allowed_networks: Vec<String>,
    /// Networks (CIDR) of proxies in front of the gateway whose `Forwarded` / `X-Forwarded-*`
    /// headers path routes pass on; from anyone else those headers are dropped. Empty = nobody.
    pub trusted_proxies: Vec<String>,
    /// What each user of `/api/u/{user}/...` may see; empty = every user sees everything.
    pub users: Vec<UserGrant>,
    /// The exact-match response cache.
    pub cache: CacheSettings,
    /// Delivery of route `callback` events.
    pub webhooks: WebhookSettings,
    /// Replaying a repeated request instead of running it twice.
    pub idempotency: super::IdempotencySettings,
    /// Hot reload: file watch and the admin API's changes from the database.
    pub reload: ReloadSettings,
    /// Who may read `/metrics` and the detailed `/health`.
    pub observability: ObservabilitySettings,
    /// How `/v1/responses` is served by providers that take it bridged to chat completions.
    pub responses_bridge: ResponsesBridgeSettings,
    /// Prices over the catalogue's, and what an unpriced model does under a budget.
    pub pricing: PricingSettings,
    /// Teams virtual keys belong to.
    pub teams: Vec<TeamConfig>,
    /// Tags clients may send in `x-ai-gateway-tags` that count toward budgets.
    pub tags: Vec<String>,
    /// Spend limits per key, team, user, tag, session, provider or the whole gateway.
    pub budgets: Vec<BudgetConfig>,
    /// One provider, id `backend`, from `BACKEND_KIND`, `BACKEND_BASE_URL` and `MODEL_NAME`.
    pub backend: super::backend::BackendSettings,
    /// What SIGTERM does: the drain, then the grace period for open streams.
    pub shutdown: ShutdownSettings,
    /// OpenTelemetry trace export (`OTEL_EXPORTER_OTLP_*`); off by default.
    pub telemetry: super::TelemetrySettings,
}

impl Settings {
    /// The named route a requested model refers to: `<strategy>:<name>` or the bare `<name>`.
    /// The prefix overrides the route's own strategy for this request.
    pub fn route_for_model(&self, model: &str) -> Option<&RouteConfig> {
        let (_, name) = split_route_model(model);
        self.routes.iter().find(|r| r.name == name)
    }
}

/// `tasks:`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TaskSettings {
    /// Route every task to this model; unset = each provider's `task_model` (or its first model).
    pub model: Option<String>,
    /// Task types by name, added to (or replacing) the built-in ones.
    pub types: BTreeMap<String, TaskType>,
}

/// One task type: a prompt template.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskType {
    /// The user prompt; `{text}` is replaced by the request's text.
    pub prompt: String,
    /// An optional system prompt.
    #[serde(default)]
    pub system: Option<String>,
    /// `invoice` or `document`: apply that decision engine to the answer.
    #[serde(default)]
    pub decision: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://ai-gateway.db".into(),
            providers: Vec::new(),
            routing: RoutingSettings::default(),
            limits: LimitSettings::default(),
            logging: LoggingSettings::default(),
            history: HistorySettings::default(),
            auth: AuthSettings::default(),
            rate_limit: RateLimitSettings::default(),
            redis_url: None,
            redis_prefix: "aigw:".into(),
            tasks: TaskSettings::default(),
            nodes: NodeSettings::default(),
            routes: Vec::new(),
            path_routes: Vec::new(),
            security: Vec::new(),
            path_routes_allowed_networks: Vec::new(),
            trusted_proxies: Vec::new(),
            users: Vec::new(),
            cache: CacheSettings::default(),
            webhooks: WebhookSettings::default(),
            idempotency: super::IdempotencySettings::default(),
            reload: ReloadSettings::default(),
            telemetry: super::TelemetrySettings::default(),
            observability: ObservabilitySettings::default(),
            responses_bridge: ResponsesBridgeSettings::default(),
            pricing: PricingSettings::default(),
            teams: Vec::new(),
            tags: Vec::new(),
            budgets: Vec::new(),
            backend: super::backend::BackendSettings::default(),
            shutdown: ShutdownSettings::default(),
        }
    }
}

/// One `providers:` entry. Every field but `id` is optional so that an entry naming a
/// catalogue provider overrides only what it sets.
#[derive(Debug, Clone, Deserialize, Default, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderEntry {
    /// The name clients see as the provider that answered.
    pub id: String,
    /// Wire protocol: `openai`, `anthropic`, `gemini`.
    pub kind: Option<String>,
    /// Upstream base URL, in the provider SDK's own convention.
    pub base_url: Option<String>,
    /// The provider's key; `${VAR}` expands from the environment.
    #[schemars(with = "Option<String>")]
    pub api_key: Option<SecretString>,
    /// A pool of keys (each a key, or `{key, weight}`), used with `api_key` if both are set; an
    /// entry whose `${VAR}` is unset is left out.
    pub api_keys: Option<Vec<Option<PoolKeyEntry>>>,
    /// How long a pooled key rests after a 429 (for that model) or a 401, 402 or 403 (the whole
    /// key) when the upstream sends no `Retry-After`; default 60.
    pub key_cooldown_seconds: Option<f64>,
    /// Models served; `"*"` = any.
    pub models: Option<Vec<String>>,
    /// Lower is tried first.
    pub priority: Option<i32>,
    /// Requests this provider serves at once (this replica); more wait in `queue`. Unset: no cap.
    pub max_concurrency: Option<u32>,
    /// Where requests over a cap wait (this provider's, its nodes' and its route targets').
    pub queue: Option<super::QueueSettings>,
    /// `false` disables a catalogue provider even when its key is set.
    pub enabled: Option<bool>,
    /// How the key is sent: `bearer` (default) or `{header: NAME}`.
    pub auth: Option<AuthScheme>,
    /// Extra static headers sent upstream.
    pub headers: Option<BTreeMap<String, String>>,
    /// Client-facing model name → the name this provider knows it by.
    pub model_aliases: Option<BTreeMap<String, String>>,
    /// Query parameters added to every upstream URL (Azure's `api-version`).
    pub query: Option<BTreeMap<String, String>>,
    /// `/ai/task` `confidence` reported for this provider's answers (0..1).
    pub confidence: Option<f64>,
    /// The model `/ai/task` uses on this provider.
    pub task_model: Option<String>,
    /// `kind: node_pool`: node root URLs.
    pub nodes: Option<Vec<String>>,
    /// `kind: node_pool`: what the nodes run (`detect` by default).
    pub runtime: Option<NodeRuntime>,
    /// `kind: node_pool`: the paths the catch-all `POST /{path}` may forward to its nodes (each
    /// path and everything below it); default `/generate`, `/hunyuan` and `/animatediff` (the worker API).
    pub worker_paths: Option<Vec<String>>,
    /// `kind: openai` or `azure`: how `/v1/responses` reaches it (`auto`, `native`, `bridge`).
    pub responses: Option<ResponsesMode>,
    /// `kind: anthropic`: beta names sent in `anthropic-beta` on every call, after the client's.
    pub anthropic_beta: Option<Vec<String>>,
}

/// One `api_keys:` entry: a key, or a key with its share of the traffic.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum PoolKeyEntry {
    /// A key with weight 1.
    Key(#[schemars(with = "String")] SecretString),
    /// `{key, weight}`; `key: ${VAR}` with the variable unset leaves the entry out.
    Weighted {
        /// The key.
        #[schemars(with = "Option<String>")]
        key: Option<SecretString>,
        /// Relative share (default 1).
        #[serde(default = "one")]
        weight: u32,
    },
}

fn one() -> u32 {
    1
}

/// A provider's keys when it has more than one: requests spread over them by weight, and a key
/// the upstream refuses rests while the others serve.
#[derive(Debug, Clone, Default)]
pub struct KeyPoolConfig {
    /// The keys in order (`api_key` first when set), each with its weight.
    pub keys: Vec<(SecretString, u32)>,
    /// Rest after a refusal without `Retry-After`.
    pub cooldown: Duration,
}

/// `key_cooldown_seconds` when unset.
pub const DEFAULT_KEY_COOLDOWN_SECONDS: f64 = 60.0;

/// How an OpenAI-protocol provider serves `/v1/responses`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResponsesMode {
    /// Try `{base_url}/responses`; a 405, or a 404 that is not about the model, switches the
    /// provider to the bridge from then on.
    #[default]
    Auto,
    /// Forward the Responses body as it is to `{base_url}/responses`.
    Native,
    /// Translate to chat completions and back.
    Bridge,
}

impl ResponsesMode {
    /// The name, as in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Native => "native",
            Self::Bridge => "bridge",
        }
    }
}

/// The kinds that take `responses:` (the OpenAI protocol's own endpoint).
pub const RESPONSES_KINDS: [&str; 2] = ["openai", "azure"];

/// `responses_bridge.hosted_tools`.
pub use crate::domain::HostedTools;

/// How a provider expects its key.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthScheme {
    /// `Authorization: Bearer <key>`.
    #[default]
    Bearer,
    /// `<header>: <key>` (Anthropic's `x-api-key`, Azure's `api-key`, Gemini's `x-goog-api-key`).
    Header(String),
}

/// A provider after merging catalogue, file and environment: what the registry is built from.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Canonical id.
    pub id: ProviderId,
    /// Wire protocol name.
    pub kind: String,
    /// Base URL without a trailing slash.
    pub base_url: String,
    /// Key sent upstream, if any (with a key pool: the pool's first key, for the calls outside a
    /// request such as listing models).
    pub api_key: Option<SecretString>,
    /// Set when the provider has two keys or more: every request picks one.
    pub key_pool: Option<KeyPoolConfig>,
    /// Models served; `"*"` = any.
    pub models: Vec<String>,
    /// Lower is tried first.
    pub priority: i32,
    /// Requests served at once by this replica (`None`: no cap).
    pub max_concurrency: Option<u32>,
    /// Where requests over a cap wait.
    pub queue: super::QueueSettings,
    /// How the key is sent.
    pub auth: AuthScheme,
    /// Extra static headers.
    pub headers: Vec<(String, String)>,
    /// Client model name → upstream model name.
    pub model_aliases: BTreeMap<String, String>,
    /// Query parameters added to every upstream URL.
    pub query: Vec<(String, String)>,
    /// `/ai/task` confidence for this provider's answers.
    pub confidence: f64,
    /// The model `/ai/task` uses here, if any.
    pub task_model: Option<String>,
    /// Set for `kind: node_pool`: the seeded nodes and their runtime.
    pub node_pool: Option<NodePoolConfig>,
    /// How `/v1/responses` reaches it (`kind: openai` and `azure`; others always bridge).
    pub responses: ResponsesMode,
    /// `kind: anthropic`: beta names merged after the client's into `anthropic-beta`.
    pub anthropic_beta: Vec<String>,
    /// The catalogue's published prices per model (USD per million tokens); `pricing:` overrides them.
    pub prices: BTreeMap<String, super::prices::Price>,
}

impl AuthScheme {
    /// How a protocol expects its key when the config does not say: Anthropic's `x-api-key`,
    /// Gemini's `x-goog-api-key`, Azure's `api-key`, else a bearer token.
    pub fn default_for(kind: &str) -> Self {
        match kind {
            "anthropic" => Self::Header("x-api-key".into()),
            "gemini" => Self::Header("x-goog-api-key".into()),
            "azure" => Self::Header("api-key".into()),
            _ => Self::Bearer,
        }
    }
}

impl ProviderConfig {
    /// The model `/ai/task` sends here: `task_model`, else the first declared model.
    pub fn default_task_model(&self) -> Option<&str> {
        self.task_model
            .as_deref()
            .or_else(|| self.models.iter().map(String::as_str).find(|m| *m != "*"))
    }

    /// Whether this provider is a pool of GPU nodes (expanded into one candidate per node).
    pub fn is_node_pool(&self) -> bool {
        self.node_pool.is_some()
    }

    /// Whether this provider accepts any model name.
    pub fn serves_any_model(&self) -> bool {
        self.models.iter().any(|m| m == "*")
    }
}

/// Retries, timeouts and breakers (`routing:`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingSettings {
    /// Retries on one provider before the next (`MAX_RETRIES`).
    pub max_retries: u32,
    /// A whole non-streamed attempt (`TIMEOUT_SECONDS`).
    pub timeout_seconds: f64,
    /// Streaming: no first chunk by then = a failed attempt.
    pub first_token_timeout_seconds: f64,
    /// Streaming: longest silence between chunks once started.
    pub stream_idle_timeout_seconds: f64,
    /// TCP + TLS connect to an upstream.
    pub connect_timeout_seconds: f64,
    /// First retry waits about this long (jittered, doubling).
    pub backoff_base_ms: u64,
    /// No single wait (backoff or `Retry-After`) exceeds this.
    pub backoff_max_ms: u64,
    /// Per-provider circuit breaker.
    pub circuit_breaker: BreakerSettings,
    /// What a stream cut after its text started does; a route's own `stream_recovery` wins.
    pub stream_recovery: StreamRecovery,
}

impl Default for RoutingSettings {
    fn default() -> Self {
        Self {
            max_retries: 1,
            timeout_seconds: 10.0,
            first_token_timeout_seconds: 10.0,
            stream_idle_timeout_seconds: 60.0,
            connect_timeout_seconds: 5.0,
            backoff_base_ms: 100,
            backoff_max_ms: 2_000,
            circuit_breaker: BreakerSettings::default(),
            stream_recovery: StreamRecovery::default(),
        }
    }
}

impl RoutingSettings {
    /// `timeout_seconds` as a Duration (validated positive).
    pub fn timeout(&self) -> Duration {
        secs(self.timeout_seconds)
    }
    /// `first_token_timeout_seconds` as a Duration.
    pub fn first_token_timeout(&self) -> Duration {
        secs(self.first_token_timeout_seconds)
    }
    /// `stream_idle_timeout_seconds` as a Duration.
    pub fn stream_idle_timeout(&self) -> Duration {
        secs(self.stream_idle_timeout_seconds)
    }
    /// `connect_timeout_seconds` as a Duration.
    pub fn connect_timeout(&self) -> Duration {
        secs(self.connect_timeout_seconds)
    }
}

/// `routing.circuit_breaker`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerSettings {
    /// Consecutive failed attempts that open the breaker (`CIRCUIT_BREAKER_THRESHOLD`).
    pub failure_threshold: u32,
    /// How long it stays open before one probe (`CIRCUIT_BREAKER_RESET_TIMEOUT`).
    pub reset_timeout_seconds: f64,
    /// Distinct callers (key ids, client addresses when auth is off) the failures that open a
    /// breaker must come from, so one client cannot open it for every tenant; 1 = any failures.
    pub min_callers: u32,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failure_threshold: 3,
            reset_timeout_seconds: 60.0,
            min_callers: 1,
        }
    }
}

impl BreakerSettings {
    /// `reset_timeout_seconds` as a Duration.
    pub fn reset_timeout(&self) -> Duration {
        secs(self.reset_timeout_seconds)
    }
}

/// `limits:` — what a client may send, and how slowly.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Largest accepted request body (`MAX_BODY_BYTES`); larger gets 413.
    pub max_body_bytes: usize,
    /// Largest non-streamed upstream answer read (`MAX_RESPONSE_BYTES`); larger is refused while
    /// reading and answered 502 `upstream_response_too_large`. Streams are relayed, never held.
    pub max_response_bytes: usize,
    /// Longest a client may take to send its body once headers are in; slower gets 408.
    pub body_timeout_seconds: f64,
    /// Longest a client may take to send its request head; slower is disconnected (slowloris).
    pub header_timeout_seconds: f64,
    /// How long an idle keep-alive connection is kept open.
    pub keep_alive_seconds: f64,
    /// Longest `model` a client may send, in bytes; longer gets 400 before anything copies it.
    pub max_model_bytes: usize,
    /// Longest identifier-like client string the gateway reads (`user`, a message's `name`, tool
    /// and call ids, tool `type` and `name`, a content part's `type`), in bytes.
    pub max_name_bytes: usize,
    /// Most entries in a request's `tools`.
    pub max_tools: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024 * 1024,
            max_response_bytes: 32 * 1024 * 1024,
            body_timeout_seconds: 30.0,
            header_timeout_seconds: 5.0,
            keep_alive_seconds: 5.0,
            max_model_bytes: 256,
            max_name_bytes: 256,
            max_tools: 128,
        }
    }
}

impl LimitSettings {
    /// `body_timeout_seconds` as a Duration.
    pub fn body_timeout(&self) -> Duration {
        secs(self.body_timeout_seconds)
    }
    /// `header_timeout_seconds` as a Duration.
    pub fn header_timeout(&self) -> Duration {
        secs(self.header_timeout_seconds)
    }
    /// `keep_alive_seconds` as a Duration.
    pub fn keep_alive(&self) -> Duration {
        secs(self.keep_alive_seconds)
    }
}

/// `responses_bridge:` — how `/v1/responses` is served by providers that take it bridged to chat
/// completions, and the bridged answers the gateway keeps so `GET /v1/responses/{id}` and
/// `previous_response_id` work on every provider.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ResponsesBridgeSettings {
    /// What a bridged provider does with hosted tools (web search, file search...), which chat
    /// completions cannot express: `drop` them (named in `x-ai-gateway-dropped-tools`) or `reject`.
    pub hosted_tools: HostedTools,
    /// How long a stored bridged response is kept, in hours (fractions allowed); 0 stores none.
    pub store_ttl_hours: f64,
    /// Whether a request without `store` is stored (OpenAI stores by default; the gateway does
    /// not, unless this is true).
    pub store_by_default: bool,
}

impl Default for ResponsesBridgeSettings {
    fn default() -> Self {
        Self {
            hosted_tools: HostedTools::default(),
            store_ttl_hours: 24.0,
            store_by_default: false,
        }
    }
}

/// `history:` — the writer that keeps one row per request off the hot path.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HistorySettings {
    /// Rows queued in memory before new ones are dropped (and counted).
    pub queue_capacity: usize,
    /// Rows per multi-row insert.
    pub batch_size: usize,
    /// Longest a row waits for its batch to fill.
    pub flush_interval_ms: u64,
    /// On shutdown, how long to keep trying to write what is queued.
    pub shutdown_flush_seconds: f64,
    /// Delete rows older than this many days; 0 keeps them forever.
    pub retention_days: u64,
    /// A local file every row is appended to before it is queued, replayed at start, so a killed
    /// process loses no row (a second file, `<path>.1`, alternates with it). Unset: no spool.
    pub spool_path: Option<std::path::PathBuf>,
}

impl Default for HistorySettings {
    fn default() -> Self {
        Self {
            queue_capacity: 10_000,
            batch_size: 256,
            flush_interval_ms: 100,
            shutdown_flush_seconds: 10.0,
            retention_days: 0,
            spool_path: None,
        }
    }
}

/// `auth:` — who may call the gateway. Whether client credentials are required comes from
/// `required`, else from what is configured and whether a virtual key was ever created.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Client keys (`API_KEYS`, comma-separated, plus `API_KEY`); several at once for rotation.
    #[schemars(with = "Vec<String>")]
    pub api_keys: Vec<SecretString>,
    /// Operator token for administrative endpoints (`INTERNAL_API_TOKEN`, header `X-Admin-Token`).
    #[schemars(with = "Option<String>")]
    pub admin_token: Option<SecretString>,
    /// Token for node heartbeats (`AI_CLUSTER_SECRET`, header `X-Worker-Token`).
    #[schemars(with = "Option<String>")]
    pub worker_token: Option<SecretString>,
    /// JWT as an alternative to keys.
    pub jwt: JwtSettings,
    /// How often virtual keys are reloaded from the database.
    pub refresh_seconds: f64,
    /// Whether client endpoints need a key or JWT (`AUTH_REQUIRED`). Unset: required once static
    /// keys, JWT or an admin token are configured or any virtual key was ever created (revoked and
    /// expired ones count); only an explicit `false` opens the gateway again.
    pub required: Option<bool>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            api_keys: Vec::new(),
            admin_token: None,
            worker_token: None,
            jwt: JwtSettings::default(),
            refresh_seconds: 2.0,
            required: None,
        }
    }
}

/// `auth.jwt`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct JwtSettings {
    /// Shared secret for HS256 tokens.
    #[schemars(with = "Option<String>")]
    pub hs256_secret: Option<SecretString>,
    /// PEM file with the RSA public key for RS256 tokens.
    pub rs256_public_key_file: Option<String>,
    /// A JWK set file (`{"keys": [...]}`) with the public keys tokens may be signed with.
    pub jwks_file: Option<String>,
    /// A JWK set URL (an identity provider's `jwks_uri`): fetched at start and every
    /// `jwks_refresh_seconds` in the background, never on the request path.
    pub jwks_url: Option<String>,
    /// How often `jwks_url` is fetched again.
    pub jwks_refresh_seconds: f64,
    /// The `aud` a token must carry; unset = tokens carrying any `aud` are refused (RFC 7519 §4.1.3).
    pub audience: Option<String>,
    /// The `iss` a token must carry; unset = not checked.
    pub issuer: Option<String>,
}

impl Default for JwtSettings {
    fn default() -> Self {
        Self {
            hs256_secret: None,
            rs256_public_key_file: None,
            jwks_file: None,
            jwks_url: None,
            jwks_refresh_seconds: 300.0,
            audience: None,
            issuer: None,
        }
    }
}

impl JwtSettings {
    /// Whether JWT is configured at all.
    pub fn enabled(&self) -> bool {
        self.hs256_secret.is_some()
            || self.rs256_public_key_file.is_some()
            || self.jwks_file.is_some()
            || self.jwks_url.is_some()
    }
}

/// `observability:`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ObservabilitySettings {
    /// When set, `/metrics` and `/health` need `Authorization: Bearer <token>`
    /// (`OBSERVABILITY_TOKEN`); `/livez` and `/readyz` stay open.
    #[schemars(with = "Option<String>")]
    pub token: Option<SecretString>,
}

/// `rate_limit:`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Off unless asked for (`RATE_LIMIT_ENABLED`); per-key limits of virtual keys apply regardless.
    pub enabled: bool,
    /// Sustained requests per minute per caller (`RATE_LIMIT_RPM`).
    pub rpm: u32,
    /// Requests that may come at once (`RATE_LIMIT_BURST`).
    pub burst: u32,
    /// Tokens per minute per caller; 0 = off.
    pub tpm: u64,
    /// Per-route requests per minute, on top of `rpm`.
    pub routes: BTreeMap<String, u32>,
    /// How many replicas share the limits (`RATE_LIMIT_REPLICAS`): whenever this replica decides
    /// alone (no Redis, Redis not yet connected or down) it allows 1/replicas of each rate and burst.
    pub replicas: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            rpm: 600,
            burst: 100,
            tpm: 0,
            routes: BTreeMap::from([("/ai/task".to_owned(), 30), ("/history/cleanup".to_owned(), 5)]),
            replicas: 1,
        }
    }
}

/// `shutdown:` — read at start. On SIGTERM `/readyz` answers 503 and every response carries
/// `Connection: close` for `drain_seconds` (load balancers and keep-alive clients move away while
/// requests are still served); then the listener closes and open streams get `grace_seconds`
/// before the gateway cuts them.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownSettings {
    /// Seconds of serving with `Connection: close` after SIGTERM (`SHUTDOWN_DRAIN_SECONDS`).
    pub drain_seconds: f64,
    /// Seconds open streams may run on once the listener is closed (`SHUTDOWN_GRACE_SECONDS`).
    pub grace_seconds: f64,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        Self {
            drain_seconds: 5.0,
            grace_seconds: 30.0,
        }
    }
}

impl ShutdownSettings {
    /// The drain, as validated (finite, 0 or more).
    pub fn drain(&self) -> Duration {
        secs(self.drain_seconds)
    }

    /// The grace period, as validated (finite, 0 or more).
    pub fn grace(&self) -> Duration {
        secs(self.grace_seconds)
    }
}

/// `logging:`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingSettings {
    /// `json` (one object a line) or `pretty` (`LOG_FORMAT`).
    pub format: LogFormat,
    /// Level filter in `RUST_LOG` syntax (`RUST_LOG`).
    pub filter: String,
    /// Log prompt and completion text (`LOG_PROMPTS`); off by default.
    pub log_prompts: bool,
}

impl Default for LoggingSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            filter: "info".into(),
            log_prompts: false,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One JSON object per line.
    #[default]
    Json,
    /// Human-readable.
    Pretty,
}

/// Seconds as configured (validated finite and positive before use).
fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)
}
