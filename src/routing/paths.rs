//! The path-route table and endpoint policies, compiled once per `state::Live` snapshot from
//! `path_routes:`, `security:` and `path_routes_allowed_networks`, so a request only looks up.
//!
//! Pure: no I/O. The proxy (`pipeline::paths`) and the auth and limit middleware read it.

use std::time::Duration;

use crate::config::{
    EndpointAuth, Network, PathRouteConfig, Rate, Settings, parse_network, path_is_under, url_host_port,
};
use crate::domain::ProviderId;

/// One upstream of a path route.
#[derive(Debug, Clone)]
pub struct PathTarget {
    /// Base URL without a trailing `/`; the request's path and query are appended unchanged.
    pub base: String,
    /// `host:port`: the breaker, metrics and history id of this target.
    pub id: ProviderId,
}

/// A compiled path route.
#[derive(Debug, Clone)]
pub struct PathRoute {
    /// The path served (and everything below it).
    pub path: String,
    /// Upstreams, tried in order.
    pub targets: Vec<PathTarget>,
    /// Upper-case methods served.
    pub methods: Vec<String>,
    /// One attempt's time limit to the response head; `None` = `routing.timeout_seconds`.
    pub timeout: Option<Duration>,
    /// Where a completed request's event goes (delivered by the webhook sender, when present).
    pub callback: Option<String>,
}

impl PathRoute {
    /// Whether `method` is served.
    pub fn allows(&self, method: &str) -> bool {
        self.methods.iter().any(|m| m.eq_ignore_ascii_case(method))
    }
}

/// What applies to one endpoint: who may call it and how often.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointPolicy<'a> {
    /// Required credentials; `None` = the gateway's client auth.
    pub auth: Option<EndpointAuth>,
    /// Requests per caller, counted under `endpoint` (the rule's or route's path).
    pub rate: Option<(&'a str, Rate)>,
}

#[derive(Debug, Clone)]
struct Rule {
    endpoint: String,
    auth: Option<EndpointAuth>,
    rate: Option<Rate>,
}

/// Path routes and endpoint rules, longest path first so the most specific one wins.
#[derive(Debug, Clone, Default)]
pub struct PathTable {
    routes: Vec<(PathRoute, Rule)>,
    rules: Vec<Rule>,
    allowed: Vec<Network>,
}

impl PathTable {
    /// Compiles the table from validated settings.
    pub fn build(settings: &Settings) -> Self {
        let mut routes: Vec<(PathRoute, Rule)> = settings.path_routes.iter().map(compile).collect();
        routes.sort_by_key(|(r, _)| std::cmp::Reverse(r.path.len()));
        let mut rules: Vec<Rule> = settings
            .security
            .iter()
            .map(|r| Rule {
                endpoint: r.endpoint.clone(),
                auth: r.auth,
                rate: r.rate_limit,
            })
            .collect();
        rules.sort_by_key(|r| std::cmp::Reverse(r.endpoint.len()));
        let allowed = settings
            .path_routes_allowed_networks
            .iter()
            .filter_map(|n| parse_network(n))
            .collect();
        Self { routes, rules, allowed }
    }

    /// The path route serving `path`, if any.
    pub fn route(&self, path: &str) -> Option<&PathRoute> {
        self.routes
            .iter()
            .find(|(r, _)| path_is_under(path, &r.path))
            .map(|(r, _)| r)
    }

    /// Whether any path route exists (the catch-all consults the table only then).
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Every target's id (`host:port`), once each: their breakers show in `/metrics`.
    pub fn target_ids(&self) -> Vec<&ProviderId> {
        let mut ids: Vec<&ProviderId> = self
            .routes
            .iter()
            .flat_map(|(r, _)| r.targets.iter().map(|t| &t.id))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The networks targets must resolve into; empty = any.
    pub fn allowed_networks(&self) -> &[Network] {
        &self.allowed
    }

    /// The policy of `path`: a `security:` rule's fields first, then its path route's own.
    pub fn policy(&self, path: &str) -> EndpointPolicy<'_> {
        let rule = self.rules.iter().find(|r| path_is_under(path, &r.endpoint));
        let route = self
            .routes
            .iter()
            .find(|(r, _)| path_is_under(path, &r.path))
            .map(|(_, rule)| rule);
        let pick = |f: fn(&Rule) -> bool| rule.filter(|r| f(r)).or(route.filter(|r| f(r)));
        EndpointPolicy {
            auth: pick(|r| r.auth.is_some()).and_then(|r| r.auth),
            rate: pick(|r| r.rate.is_some()).and_then(|r| r.rate.map(|rate| (r.endpoint.as_str(), rate))),
        }
    }
}

fn compile(c: &PathRouteConfig) -> (PathRoute, Rule) {
    let targets = c
        .targets
        .to_vec()
        .into_iter()
        .map(|t| {
            let base = t.trim_end_matches('/').to_owned();
            let id = url_host_port(&base).map_or_else(|| base.clone(), |(h, p)| format!("{h}:{p}"));
            PathTarget {
                base,
                id: ProviderId::new(&id),
            }
        })
        .collect();
    let route = PathRoute {
        path: c.path.clone(),
        targets,
        methods: c.methods.to_vec().iter().map(|m| m.to_ascii_uppercase()).collect(),
        timeout: c.timeout_seconds.and_then(|s| Duration::try_from_secs_f64(s).ok()),
        callback: c.callback.clone(),
    };
    let rule = Rule {
        endpoint: c.path.clone(),
        auth: c.auth,
        rate: c.rate_limit,
    };
    (route, rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(yaml: &str) -> PathTable {
        PathTable::build(&serde_yaml_ng::from_str(yaml).unwrap())
    }

    #[test]
    fn the_longest_matching_path_route_serves_a_request() {
        let t = table(
            "path_routes:\n  - {path: /predict, target: 'http://a:1'}\n  - {path: /predict/big, targets: ['http://b:2/'], methods: [post, GET]}\n",
        );
        assert_eq!(t.route("/predict/v2").unwrap().targets[0].id.as_str(), "a:1");
        let big = t.route("/predict/big/x").unwrap();
        assert_eq!(big.targets[0].base, "http://b:2");
        assert!(big.allows("get") && big.allows("POST") && !big.allows("DELETE"));
        assert!(t.route("/predictor").is_none());
    }

    #[test]
    fn a_security_rule_overrides_what_it_sets_and_the_route_fills_the_rest() {
        let t = table(
            "path_routes:\n  - {path: /predict, target: 'http://a:1', auth: none, rate_limit: 10/min}\nsecurity:\n  - {endpoint: /predict, rateLimit: 50}\n  - {endpoint: /v1/chat/completions, auth: jwt}\n",
        );
        let p = t.policy("/predict/v2");
        assert_eq!(p.auth, Some(EndpointAuth::None));
        assert_eq!(p.rate.map(|(e, r)| (e, r.per_minute())), Some(("/predict", 50)));
        assert_eq!(t.policy("/v1/chat/completions").auth, Some(EndpointAuth::Jwt));
        assert_eq!(t.policy("/v1/embeddings"), EndpointPolicy::default());
    }
}
