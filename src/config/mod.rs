//! Typed settings: compiled defaults, then an optional YAML file, then environment variables.
//!
//! Depends only on `domain`. The only module that reads the process environment (`std::env`),
//! so everything else receives resolved values. Loading reports every problem it can find at once.

mod backend;
mod catalogue;
mod concurrency;
mod env;
mod load;
mod nodes;
mod overrides;
mod paths;
mod prices;
mod remote;
mod routes;
mod schema;
mod settings;
mod spend;
mod telemetry;
mod validate;

pub use backend::{BACKEND_ID, BackendSettings};
pub use catalogue::{CatalogueEntry, catalogue};
pub use concurrency::{PerNode, QueueSettings};
pub use env::{Env, FLAT_ENV};
pub use load::{Config, ConfigError, Sources, load, load_str};
pub use nodes::{
    DEFAULT_POOL, NODE_POOL_KIND, Network, NodePoolConfig, NodeRuntime, NodeSettings, check_addresses,
    normalize_node_url, parse_network, url_host_port,
};
pub use overrides::{Override, OverrideKind, Overrides, ProviderToggle};
pub use paths::{
    PATH_METHODS, RESERVED_PATHS, path_is_under, path_route as path_route_problems,
    security_rule as security_rule_problems,
};
pub use prices::{Price, Tier, cost};
pub use remote::{DEFAULT_GATEWAY_URL, Remote};
pub use routes::{
    CacheScope, CacheSettings, EndpointAuth, IdempotencySettings, OneOrMany, PathRouteConfig, Rate, ReloadSettings,
    RouteCache, RouteConfig, RouteTarget, SecurityRule, Strategy, StreamRecovery, UserGrant, WebhookSettings,
    split_route_model,
};
pub use schema::schema;
pub use settings::{
    AuthScheme, AuthSettings, BreakerSettings, HistorySettings, HostedTools, JwtSettings, KeyPoolConfig, LimitSettings,
    LogFormat, LoggingSettings, ObservabilitySettings, ProviderConfig, ProviderEntry, RESPONSES_KINDS,
    RateLimitSettings, ResponsesBridgeSettings, ResponsesMode, RoutingSettings, Settings, ShutdownSettings,
    TaskSettings, TaskType,
};
pub use spend::{
    BudgetConfig, BudgetPeriod, BudgetScope, PriceEntry, PricingSettings, TeamConfig, Unpriced, glob_match, valid_tag,
};
pub use telemetry::{HTTP_PROTOBUF, OtlpHeaders, OtlpSettings, TelemetrySettings};
