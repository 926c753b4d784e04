//! Checks of `path_routes:`, `security:` and `path_routes_allowed_networks`: a path route never
//! shadows a built-in endpoint, a security rule never touches an open or operator endpoint, and
//! with an allow-list every target must resolve inside it (the SSRF guard's load-time half; the
//! proxy checks again after DNS on every request).
//!
//! (`callback` URLs are checked with the other webhook settings in `validate`.) The admin API validates its changes through the same `load` path, so both report the same
//! problems. Resolving target hosts is the one blocking step (a DNS lookup per target, only when
//! the allow-list is set).

use std::collections::HashSet;
use std::net::ToSocketAddrs;

use super::nodes::{Network, check_addresses, parse_network, url_host_port};
use super::routes::{EndpointAuth, PathRouteConfig, SecurityRule};
use super::settings::Settings;

/// Built-in endpoints (and everything below them) that a path route may not take over.
pub const RESERVED_PATHS: &[&str] = &[
    "/v1",
    "/api",
    "/health",
    "/livez",
    "/readyz",
    "/metrics",
    "/history",
    "/ai",
    "/provider",
    "/docs",
    "/openapi.json",
    "/static",
    "/register",
    "/nodes",
    "/pulse",
    "/status",
    "/download",
];

/// Open and operator endpoints: probes, scrapes and the admin token's routes keep their own access
/// rules, so a security rule may not change them.
const UNSECURABLE: &[&str] = &[
    "/health",
    "/livez",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/static",
    "/register",
    "/nodes",
    "/pulse",
    "/history/cleanup",
    "/api/v1",
];

/// Methods a path route may serve.
pub const PATH_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Whether `path` is `base` or lies below it (`/predict/v2` under `/predict`).
pub fn path_is_under(path: &str, base: &str) -> bool {
    path == base || (path.starts_with(base) && path.as_bytes().get(base.len()) == Some(&b'/'))
}

pub(super) fn problems(s: &Settings) -> Vec<String> {
    let mut problems = Vec::new();
    let mut allowed = Vec::new();
    for net in &s.path_routes_allowed_networks {
        match parse_network(net) {
            Some(n) => allowed.push(n),
            None => problems.push(format!(
                "path_routes_allowed_networks: `{net}` is not a network like 10.0.0.0/8 or fd00::/8"
            )),
        }
    }
    for net in &s.trusted_proxies {
        if parse_network(net).is_none() {
            problems.push(format!(
                "trusted_proxies: `{net}` is not a network like 10.0.0.0/8 or fd00::/8"
            ));
        }
    }
    let jwt = s.auth.jwt.enabled();
    let mut seen = HashSet::new();
    for (i, route) in s.path_routes.iter().enumerate() {
        let at = format!("path_routes[{i}] (`{}`)", route.path);
        if !seen.insert(route.path.as_str()) {
            problems.push(format!("{at}: the path is declared twice"));
        }
        problems.extend(
            path_route(route, &allowed, jwt)
                .into_iter()
                .map(|p| format!("{at}: {p}")),
        );
    }
    let mut seen = HashSet::new();
    for (i, rule) in s.security.iter().enumerate() {
        let at = format!("security[{i}] (`{}`)", rule.endpoint);
        if !seen.insert(rule.endpoint.as_str()) {
            problems.push(format!("{at}: the endpoint has two rules"));
        }
        problems.extend(security_rule(rule, jwt).into_iter().map(|p| format!("{at}: {p}")));
    }
    problems
}

/// Problems of one path route (without its position).
pub fn path_route(route: &PathRouteConfig, allowed: &[Network], jwt_configured: bool) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(p) = path_problem(&route.path) {
        problems.push(p);
    } else if route.path == "/" || RESERVED_PATHS.iter().any(|r| path_is_under(&route.path, r)) {
        problems.push(format!(
            "path: `{}` would shadow a built-in endpoint (paths under {} are the gateway's)",
            route.path,
            RESERVED_PATHS.join(", ")
        ));
    }
    let targets = route.targets.to_vec();
    if targets.is_empty() {
        problems.push("targets: list at least one URL like http://ai-service:8080".into());
    }
    for t in &targets {
        match target_problem(t) {
            Some(p) => problems.push(format!("target `{t}`: {p}")),
            None if !allowed.is_empty() => {
                if let Err(reason) = resolve_checked(allowed, t) {
                    problems.push(format!(
                        "target `{t}` is outside path_routes_allowed_networks: {reason}"
                    ));
                }
            }
            None => {}
        }
    }
    let methods = route.methods.to_vec();
    if methods.is_empty() {
        problems.push("methods: list at least one, e.g. [POST]".into());
    }
    for m in &methods {
        if !PATH_METHODS.contains(&m.to_ascii_uppercase().as_str()) {
            problems.push(format!("methods: `{m}` is not one of {}", PATH_METHODS.join(", ")));
        }
    }
    if let Some(t) = route.timeout_seconds
        && !(t.is_finite() && t > 0.0 && t < 86_400.0)
    {
        problems.push(format!(
            "timeout_seconds: must be more than 0 and less than a day, got {t}"
        ));
    }
    if route.rate_limit.is_some_and(|r| r.requests == 0) {
        problems.push("rate_limit: must allow at least 1 request".into());
    }
    if route.auth == Some(EndpointAuth::Jwt) && !jwt_configured {
        problems.push("auth: jwt needs auth.jwt.hs256_secret or auth.jwt.rs256_public_key_file".into());
    }
    problems
}

/// Problems of one security rule (without its position).
pub fn security_rule(rule: &SecurityRule, jwt_configured: bool) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(p) = path_problem(&rule.endpoint) {
        problems.push(p.replacen("path", "endpoint", 1));
    } else if rule.endpoint == "/" || UNSECURABLE.iter().any(|u| path_is_under(&rule.endpoint, u)) {
        problems.push(format!(
            "endpoint: `{}` is an open or operator endpoint; rules apply to client endpoints and path routes",
            rule.endpoint
        ));
    }
    if rule.auth.is_none() && rule.rate_limit.is_none() {
        problems.push("sets neither auth nor rate_limit".into());
    }
    if rule.rate_limit.is_some_and(|r| r.requests == 0) {
        problems.push("rate_limit: must allow at least 1 request".into());
    }
    if rule.auth == Some(EndpointAuth::Jwt) && !jwt_configured {
        problems.push("auth: jwt needs auth.jwt.hs256_secret or auth.jwt.rs256_public_key_file".into());
    }
    problems
}

fn path_problem(path: &str) -> Option<String> {
    // `.` and `..` segments are refused like in requests: a rule on `/a/../b` could never match
    // a canonical request path, so it would protect nothing.
    let ok = path.starts_with('/')
        && !path.split('/').any(|s| s == "." || s == "..")
        && !path.contains("//")
        && (path == "/" || !path.ends_with('/'))
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~'));
    (!ok).then(|| {
        format!(
            "path: Invalid route path `{path}`: it must start with / and hold only letters, digits, -, _, ., ~ and single / between segments, and no `.` or `..` segment"
        )
    })
}

/// Problems of one node pool `worker_paths` entry (the same rules as a path route's path).
pub fn worker_path_problem(path: &str) -> Option<String> {
    path_problem(path).map(|p| p.replacen("path: Invalid route path", "worker_paths: invalid path", 1))
}

/// Why `url` is not a usable target base URL, if it is not.
fn target_problem(url: &str) -> Option<String> {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Some("must start with http:// or https://".into());
    }
    if url.contains(['?', '#', ' ']) {
        return Some("must not carry a query, a fragment or spaces".into());
    }
    match url_host_port(url) {
        Some((host, _)) if !host.is_empty() => None,
        _ => Some("has no usable host and port".into()),
    }
}

/// Blocking resolution for validation (load time, or the admin API's rare changes).
fn resolve_checked(allowed: &[Network], url: &str) -> Result<(), String> {
    let (host, port) = url_host_port(url).ok_or_else(|| "no host".to_owned())?;
    let addrs: Vec<std::net::IpAddr> = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("`{host}` does not resolve: {e}"))?
            .map(|a| a.ip())
            .collect(),
    };
    check_addresses(allowed, &host, &addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(yaml: &str) -> PathRouteConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn a_path_route_may_not_shadow_built_in_endpoints() {
        for path in ["/v1/predict", "/api/v1/routes", "/health", "/", "/metrics/x"] {
            let r = route(&format!("{{path: '{path}', target: 'http://s:1'}}"));
            let p = path_route(&r, &[], false);
            assert!(p.iter().any(|x| x.contains("shadow")), "{path}: {p:?}");
        }
        let ok = route("{path: /predict, target: 'http://s:1'}");
        assert!(path_route(&ok, &[], false).is_empty());
        // `/apix` is not below `/api`.
        assert!(path_route(&route("{path: /apix, target: 'http://s:1'}"), &[], false).is_empty());
    }

    #[test]
    fn every_problem_of_a_route_is_reported() {
        let r = route(
            "{path: 'predict/', targets: ['ftp://x', 'http://ok:1'], methods: [FETCH], timeout_seconds: 0, auth: jwt, rate_limit: 0}",
        );
        let p = path_route(&r, &[], false);
        assert_eq!(p.len(), 6, "{p:#?}");
    }

    #[test]
    fn targets_outside_the_allow_list_are_refused() {
        let allowed = vec![parse_network("10.0.0.0/8").unwrap()];
        let r = route("{path: /predict, targets: ['http://10.1.2.3:80', 'http://169.254.169.254']}");
        let p = path_route(&r, &allowed, false);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("169.254.169.254") && p[0].contains("path_routes_allowed_networks"));
    }

    #[test]
    fn security_rules_leave_open_and_operator_endpoints_alone() {
        let rule = |e: &str| SecurityRule {
            endpoint: e.into(),
            auth: Some(EndpointAuth::ApiKey),
            rate_limit: None,
        };
        assert!(security_rule(&rule("/v1/chat/completions"), false).is_empty());
        assert!(security_rule(&rule("/predict"), false).is_empty());
        for e in ["/health", "/api/v1/routes", "/nodes", "/"] {
            assert_eq!(security_rule(&rule(e), false).len(), 1, "{e}");
        }
    }

    #[test]
    fn dot_segments_are_refused_in_routes_rules_and_worker_paths() {
        assert!(path_problem("/raw/../admin").is_some());
        assert!(path_problem("/raw/./admin").is_some());
        assert!(path_problem("/raw/a.b").is_none());
        assert!(worker_path_problem("/generate/..").is_some());
        assert!(worker_path_problem("/generate").is_none());
    }

    #[test]
    fn paths_below_a_base_match_on_segment_boundaries() {
        assert!(path_is_under("/predict", "/predict"));
        assert!(path_is_under("/predict/v2", "/predict"));
        assert!(!path_is_under("/predictx", "/predict"));
    }
}
