//! Checks that need more than types: every problem is collected, none stops the search.

use std::collections::HashSet;
use std::net::SocketAddr;

use super::catalogue::CatalogueEntry;
use super::nodes::{DEFAULT_POOL, NODE_POOL_KIND, NodePoolConfig, normalize_node_url};
use super::routes::split_route_model;
use super::settings::{ProviderConfig, ProviderEntry, Settings};
use crate::domain::ProviderId;

/// Wire protocols a provider may declare. Whether this build has an adapter for each is the
/// registry's business: `check-config` fails on a missing one, `serve` skips it with a warning.
pub const KNOWN_KINDS: &[&str] = &["openai", "anthropic", "gemini", "azure", "node_pool"];

pub(super) fn settings(s: &Settings) -> Vec<String> {
    let mut problems = Vec::new();
    if s.listen.parse::<SocketAddr>().is_err() {
        problems.push(format!(
            "listen (env AI_GATEWAY_LISTEN): `{}` is not an address like 127.0.0.1:8080",
            s.listen
        ));
    }
    if !(s.database_url.starts_with("sqlite://")
        || s.database_url.starts_with("postgres://")
        || s.database_url.starts_with("postgresql://"))
    {
        problems.push(format!(
            "database_url (env DATABASE_URL): `{}` must start with sqlite://, postgres:// or postgresql://",
            redact_url(&s.database_url)
        ));
    }
    let r = &s.routing;
    for (key, value) in [
        ("routing.timeout_seconds", r.timeout_seconds),
        ("routing.first_token_timeout_seconds", r.first_token_timeout_seconds),
        ("routing.stream_idle_timeout_seconds", r.stream_idle_timeout_seconds),
        ("routing.connect_timeout_seconds", r.connect_timeout_seconds),
        (
            "routing.circuit_breaker.reset_timeout_seconds",
            r.circuit_breaker.reset_timeout_seconds,
        ),
        ("limits.body_timeout_seconds", s.limits.body_timeout_seconds),
        ("limits.header_timeout_seconds", s.limits.header_timeout_seconds),
        ("limits.keep_alive_seconds", s.limits.keep_alive_seconds),
    ] {
        if !(value.is_finite() && value > 0.0 && value < 86_400.0) {
            problems.push(format!("{key}: must be more than 0 and less than a day, got {value}"));
        }
    }
    if r.circuit_breaker.failure_threshold == 0 {
        problems.push("routing.circuit_breaker.failure_threshold: must be at least 1".into());
    }
    if r.circuit_breaker.min_callers == 0 {
        problems.push("routing.circuit_breaker.min_callers: must be at least 1".into());
    }
    if r.max_retries > 10 {
        problems.push(format!("routing.max_retries: at most 10, got {}", r.max_retries));
    }
    if r.backoff_base_ms > r.backoff_max_ms {
        problems.push("routing.backoff_base_ms: must not exceed routing.backoff_max_ms".into());
    }
    // A key is kept in Redis with `PX`; a week is far past any retry.
    if s.idempotency.ttl_seconds > 7 * 86_400 {
        problems.push(format!(
            "idempotency.ttl_seconds: at most 604800 (a week), got {}",
            s.idempotency.ttl_seconds
        ));
    }
    let h = &s.history;
    if h.queue_capacity == 0 || h.batch_size == 0 || h.flush_interval_ms == 0 {
        problems.push("history: queue_capacity, batch_size and flush_interval_ms must be more than 0".into());
    }
    if !(h.shutdown_flush_seconds.is_finite() && h.shutdown_flush_seconds >= 0.0) {
        problems.push("history.shutdown_flush_seconds: must be 0 or more".into());
    }
    let sd = &s.shutdown;
    for (key, v) in [("drain_seconds", sd.drain_seconds), ("grace_seconds", sd.grace_seconds)] {
        if !(v.is_finite() && (0.0..=86_400.0).contains(&v)) {
            problems.push(format!("shutdown.{key}: must be from 0 to 86400"));
        }
    }
    let rl = &s.rate_limit;
    if rl.replicas == 0 {
        problems.push("rate_limit.replicas (env RATE_LIMIT_REPLICAS): must be at least 1".into());
    }
    if rl.rpm == 0 || rl.burst == 0 {
        problems.push(
            "rate_limit.rpm and rate_limit.burst (env RATE_LIMIT_RPM, RATE_LIMIT_BURST): must be at least 1".into(),
        );
    }
    for (route, n) in &rl.routes {
        if *n == 0 || !route.starts_with('/') {
            problems.push(format!(
                "rate_limit.routes: `{route}: {n}` needs a path starting with / and at least 1 per minute"
            ));
        }
    }
    if !(s.auth.refresh_seconds.is_finite() && s.auth.refresh_seconds > 0.0) {
        problems.push("auth.refresh_seconds: must be more than 0".into());
    }
    problems.extend(jwt_problems(&s.auth.jwt));
    if s.observability.token.as_ref().is_some_and(|t| {
        use secrecy::ExposeSecret;
        t.expose_secret().trim().is_empty()
    }) {
        problems.push("observability.token (env OBSERVABILITY_TOKEN): must not be empty".into());
    }
    if let Some(url) = &s.redis_url {
        use secrecy::ExposeSecret;
        let url = url.expose_secret();
        if !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("unix://")) {
            problems.push("redis_url (env REDIS_URL): must start with redis://, rediss:// or unix://".into());
        }
    }
    for (name, t) in &s.tasks.types {
        if !matches!(t.decision.as_deref(), None | Some("invoice" | "document")) {
            problems.push(format!("tasks.types.{name}.decision: must be `invoice` or `document`"));
        }
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            problems.push(format!("tasks.types: `{name}` must be letters, digits, `_` or `-`"));
        }
    }
    problems.extend(s.nodes.problems());
    problems.extend(super::paths::problems(s));
    if s.limits.max_body_bytes == 0 {
        problems.push("limits.max_body_bytes: must be more than 0".into());
    }
    if s.limits.max_model_bytes == 0 || s.limits.max_name_bytes == 0 {
        problems.push("limits.max_model_bytes and limits.max_name_bytes: must be more than 0".into());
    }
    problems.extend(cache_and_webhooks(s));
    if s.limits.max_response_bytes == 0 {
        problems.push("limits.max_response_bytes: must be more than 0".into());
    }
    problems
}

/// `cache:`, `webhooks:` and every `callback` URL.
fn cache_and_webhooks(s: &Settings) -> Vec<String> {
    let mut problems = Vec::new();
    if s.cache.max_entries == 0 || s.cache.max_entry_bytes == 0 || s.cache.max_bytes == 0 {
        problems.push("cache: max_entries, max_bytes and max_entry_bytes must be more than 0".into());
    }
    let w = &s.webhooks;
    if !(w.timeout_seconds.is_finite() && w.timeout_seconds > 0.0 && w.timeout_seconds < 3_600.0) {
        problems.push(format!(
            "webhooks.timeout_seconds: must be more than 0 and less than an hour, got {}",
            w.timeout_seconds
        ));
    }
    if w.queue_capacity == 0 {
        problems.push("webhooks.queue_capacity: must be at least 1".into());
    }
    if w.max_retries > 20 {
        problems.push(format!("webhooks.max_retries: at most 20, got {}", w.max_retries));
    }
    let callbacks = s
        .routes
        .iter()
        .map(|r| (format!("routes.{}", r.name), &r.callback))
        .chain(
            s.path_routes
                .iter()
                .map(|p| (format!("path_routes.{}", p.path), &p.callback)),
        );
    for (owner, callback) in callbacks {
        if let Some(url) = callback
            && !is_http_url(url)
        {
            problems.push(format!(
                "{owner}.callback: `{}` must be an http:// or https:// URL with a host",
                redact_url(url)
            ));
        }
    }
    problems
}

fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or("");
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    !host.is_empty() && !host.contains(char::is_whitespace)
}

pub(super) fn providers(entries: &[ProviderEntry], resolved: &[ProviderConfig]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    for (i, entry) in entries.iter().enumerate() {
        let is_pool = entry.kind.as_deref() == Some(NODE_POOL_KIND);
        if !is_pool && (entry.nodes.is_some() || entry.runtime.is_some() || entry.worker_paths.is_some()) {
            problems.push(format!(
                "providers[{i}] (`{}`): `nodes`, `runtime` and `worker_paths` belong to `kind: node_pool` providers",
                entry.id
            ));
        }
        for p in entry.worker_paths.iter().flatten() {
            if let Some(problem) = super::paths::worker_path_problem(p) {
                problems.push(format!("providers[{i}] (`{}`): {problem}", entry.id));
            }
        }
        let at = format!("providers[{i}]");
        problems.extend(super::concurrency::cap_problem(&at, entry.max_concurrency));
        problems.extend(entry.queue.iter().flat_map(|q| q.problems(&at)));
        if entry.id.trim().is_empty() {
            problems.push(format!("providers[{i}].id: must not be empty"));
        } else if !seen.insert(ProviderId::new(&entry.id)) {
            problems.push(format!("providers[{i}].id: `{}` is declared twice", entry.id));
        }
    }
    for p in resolved {
        if !KNOWN_KINDS.contains(&p.kind.as_str()) {
            problems.push(format!(
                "provider `{}`: unknown kind `{}` (expected one of: {})",
                p.id,
                p.kind,
                KNOWN_KINDS.join(", ")
            ));
        }
        if let Some(pool) = &p.node_pool {
            problems.extend(node_pool(p, pool));
        } else if !(p.base_url.starts_with("http://") || p.base_url.starts_with("https://")) {
            problems.push(format!(
                "provider `{}`: base_url `{}` must start with http:// or https://",
                p.id, p.base_url
            ));
        }
        if !(0.0..=1.0).contains(&p.confidence) {
            problems.push(format!(
                "provider `{}`: confidence must be between 0 and 1, got {}",
                p.id, p.confidence
            ));
        }
        if p.models.is_empty() {
            problems.push(format!(
                "provider `{}`: models must list at least one model, or \"*\"",
                p.id
            ));
        }
    }
    problems
}

/// Named routes and user grants: unique route names without `:`, at least one target, weights of
/// at least 1, target providers that exist. A provider known (declared or in the catalogue) but
/// not enabled is a warning: the route skips it until its key is set.
pub(super) fn routes(
    s: &Settings,
    entries: &[ProviderEntry],
    catalogue: &[CatalogueEntry],
    enabled: &[ProviderConfig],
    warnings: &mut Vec<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut names = HashSet::new();
    let is_enabled = |id: &ProviderId| enabled.iter().any(|p| &p.id == id);
    let is_known = |id: &ProviderId| {
        entries.iter().any(|e| &ProviderId::new(&e.id) == id) || catalogue.iter().any(|c| &ProviderId::new(&c.id) == id)
    };
    for (i, r) in s.routes.iter().enumerate() {
        let at = format!("routes[{i}] (`{}`)", r.name);
        if r.name.trim().is_empty() {
            problems.push(format!("routes[{i}].name: must not be empty"));
        } else if r.name.contains(':') {
            problems.push(format!(
                "{at}: a route name must not contain `:` (clients write `<strategy>:<name>`)"
            ));
        } else if !names.insert(r.name.as_str()) {
            problems.push(format!("{at}: the name is used by another route"));
        }
        if r.targets.is_empty() {
            problems.push(format!("{at}: needs at least one target"));
        }
        for (j, t) in r.targets.iter().enumerate() {
            let id = ProviderId::new(&t.provider);
            if t.weight == 0 {
                problems.push(format!("{at}.targets[{j}]: weight must be at least 1"));
            }
            problems.extend(super::concurrency::cap_problem(
                &format!("{at}.targets[{j}]"),
                t.max_concurrency,
            ));
            if !is_enabled(&id) {
                if is_known(&id) {
                    warnings.push(format!(
                        "{at}.targets[{j}]: provider `{}` is not enabled (no key?); the route skips it",
                        t.provider
                    ));
                } else {
                    problems.push(format!(
                        "{at}.targets[{j}]: provider `{}` is not a configured provider",
                        t.provider
                    ));
                }
            }
        }
        for f in &r.fallbacks {
            if f.trim().is_empty() {
                problems.push(format!("{at}.fallbacks: an entry is empty"));
            }
        }
        for f in &r.on_context_length_exceeded {
            if f.trim().is_empty() {
                problems.push(format!("{at}.on_context_length_exceeded: an entry is empty"));
            } else if split_route_model(f).1 == r.name {
                problems.push(format!(
                    "{at}.on_context_length_exceeded: `{f}` is the route itself; name a route or model with a larger context window"
                ));
            }
        }
    }
    let mut users = HashSet::new();
    for (i, u) in s.users.iter().enumerate() {
        if u.name.trim().is_empty() {
            problems.push(format!("users[{i}].name: must not be empty"));
        } else if !users.insert(u.name.as_str()) {
            problems.push(format!("users[{i}] (`{}`): the user is declared twice", u.name));
        }
        for route in &u.routes {
            if !s.routes.iter().any(|r| r.name == split_route_model(route).1) {
                problems.push(format!("users[{i}] (`{}`): route `{route}` is not configured", u.name));
            }
        }
        for p in &u.providers {
            if !is_known(&ProviderId::new(p)) {
                problems.push(format!("users[{i}] (`{}`): provider `{p}` is not configured", u.name));
            }
        }
    }
    problems
}

/// A pool's own checks: node URLs, no base URL, an id that can prefix node ids.
fn node_pool(p: &ProviderConfig, pool: &NodePoolConfig) -> Vec<String> {
    let mut problems = Vec::new();
    if !p.base_url.is_empty() {
        problems.push(format!(
            "provider `{}`: a node pool has no base_url; list its nodes under `nodes:`",
            p.id
        ));
    }
    if p.id.as_str().contains('/') {
        problems.push(format!("provider `{}`: a node pool's id must not contain `/`", p.id));
    }
    let source = if p.id.as_str() == DEFAULT_POOL {
        " (nodes.urls, env AI_NODES, fill this pool)"
    } else {
        ""
    };
    for (i, url) in pool.nodes.iter().enumerate() {
        if let Err(e) = normalize_node_url(url) {
            problems.push(format!("provider `{}`: nodes[{i}]{source}: {e}", p.id));
        }
    }
    problems
}

/// Hides a password in a URL before it is echoed in an error.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

fn jwt_problems(j: &super::JwtSettings) -> Vec<String> {
    let mut problems = Vec::new();
    if !(j.jwks_refresh_seconds.is_finite() && j.jwks_refresh_seconds > 0.0) {
        problems.push("auth.jwt.jwks_refresh_seconds: must be more than 0".into());
    }
    if let Some(url) = &j.jwks_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        problems.push(format!("auth.jwt.jwks_url: `{url}` must be an http:// or https:// URL"));
    }
    for (key, value) in [("audience", &j.audience), ("issuer", &j.issuer)] {
        if value.as_ref().is_some_and(|v| v.trim().is_empty()) {
            problems.push(format!("auth.jwt.{key}: must not be empty when set"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_must_be_http_urls_and_webhook_settings_sane() {
        let mut s = Settings::default();
        let route: super::super::RouteConfig =
            serde_yaml_ng::from_str("{name: r, targets: ['a:m'], callback: 'ftp://x/hook'}").unwrap();
        s.routes.push(route);
        let path: super::super::PathRouteConfig =
            serde_yaml_ng::from_str("{path: /predict, target: 'http://svc:8080', callback: 'https://ok.example/h'}")
                .unwrap();
        s.path_routes.push(path);
        s.webhooks.timeout_seconds = 0.0;
        let problems = cache_and_webhooks(&s);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("webhooks.timeout_seconds"), "{problems:?}");
        assert!(problems[1].starts_with("routes.r.callback"), "{problems:?}");
        assert!(is_http_url("http://127.0.0.1:9/hook?x=1"));
        assert!(!is_http_url("https:///nohost"));
    }

    #[test]
    fn an_idempotency_ttl_past_a_week_is_refused() {
        let mut s = Settings::default();
        assert!(!settings(&s).iter().any(|p| p.starts_with("idempotency")));
        s.idempotency.ttl_seconds = 7 * 86_400 + 1;
        assert!(settings(&s).iter().any(|p| p.starts_with("idempotency.ttl_seconds")));
        assert!(serde_yaml_ng::from_str::<super::super::IdempotencySettings>("{ttl: 5}").is_err());
    }
}
