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
    /// Whether `method` is served. Methods are case-sensitive (RFC 9110 §9.1): `get` is another
    /// method than `GET`, and passing it on would let a service that folds case see a method the
    /// route does not allow.
    pub fn allows(&self, method: &str) -> bool {
        self.methods.iter().any(|m| m == method)
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
    trusted: Vec<Network>,
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
        let trusted = settings
            .trusted_proxies
            .iter()
            .filter_map(|n| parse_network(n))
            .collect();
        Self {
            routes,
            rules,
            allowed,
            trusted,
        }
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

    /// Whether `peer` is a proxy whose forwarding headers path routes pass on (`trusted_proxies`).
    pub fn trusts_proxy(&self, peer: std::net::IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(peer))
    }

    /// The policy of `path`: each field from the most specific `security:` rule that sets it, else
    /// from its path route. A sub-rule that only sets a rate limit keeps its parents' `auth` (a
    /// most-specific-rule-wins-whole lookup would drop it and open the endpoint).
    pub fn policy(&self, path: &str) -> EndpointPolicy<'_> {
        let route = self
            .routes
            .iter()
            .find(|(r, _)| path_is_under(path, &r.path))
            .map(|(_, rule)| rule);
        let pick = |f: fn(&Rule) -> bool| {
            self.rules
                .iter()
                .filter(|r| path_is_under(path, &r.endpoint))
                .find(|r| f(r))
                .or(route.filter(|r| f(r)))
        };
        EndpointPolicy {
            auth: pick(|r| r.auth.is_some()).and_then(|r| r.auth),
            rate: pick(|r| r.rate.is_some()).and_then(|r| r.rate.map(|rate| (r.endpoint.as_str(), rate))),
        }
    }
}

/// A request path in its one canonical form: the route, the policy, history and the upstream URL
/// all use it, so no spelling of a path can reach one place under one name and another under
/// another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalPath {
    /// `/` + the decoded segments joined by `/` (a decoded segment never holds `/`, so this is
    /// unambiguous).
    pub path: String,
    /// The decoded segments; the last is empty for a trailing `/`. Upstream URLs are built from
    /// these, each encoded again as one segment.
    pub segments: Vec<String>,
}

/// Why a path has no canonical form (the client gets 400 with this reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathRefusal {
    /// It does not start with `/`.
    #[error("the path must start with /")]
    NotAbsolute,
    /// `.` or `..`, written or percent-encoded.
    #[error("the path holds a `.` or `..` segment")]
    DotSegment,
    /// `//`, or an empty segment anywhere but at the end.
    #[error("the path holds an empty segment (`//`)")]
    EmptySegment,
    /// `;` (path parameters), raw or encoded.
    #[error("the path holds `;`")]
    Semicolon,
    /// An encoded `/` or `\`, a raw `\`, an encoded `%` (double encoding) or a control character.
    #[error("the path holds an encoded `/`, a `\\`, a double-encoded `%` or a control character")]
    Separator,
    /// A `%` not followed by two hex digits.
    #[error("the path holds a malformed percent escape")]
    BadEscape,
    /// Decoded bytes that are not UTF-8 (overlong forms included).
    #[error("the path does not decode to UTF-8")]
    NotUtf8,
}

/// The canonical form of a raw request path (as written on the request line, before any
/// decoding), or why there is none. Refusing is deliberate: a gateway that normalised `..` itself
/// would still disagree with some upstream about what a path means.
pub fn canonical_path(raw: &str) -> Result<CanonicalPath, PathRefusal> {
    let rest = raw.strip_prefix('/').ok_or(PathRefusal::NotAbsolute)?;
    let raw_segments: Vec<&str> = rest.split('/').collect();
    let last = raw_segments.len() - 1;
    let mut segments = Vec::with_capacity(raw_segments.len());
    for (i, seg) in raw_segments.iter().enumerate() {
        if seg.is_empty() {
            if i == last {
                segments.push(String::new());
                continue;
            }
            return Err(PathRefusal::EmptySegment);
        }
        let decoded = percent_decode(seg)?;
        if decoded == "." || decoded == ".." {
            return Err(PathRefusal::DotSegment);
        }
        if decoded.contains(';') {
            return Err(PathRefusal::Semicolon);
        }
        if decoded.chars().any(|c| matches!(c, '/' | '\\' | '%') || c.is_control()) {
            return Err(PathRefusal::Separator);
        }
        segments.push(decoded);
    }
    if segments.len() == 1 && segments[0].is_empty() {
        return Ok(CanonicalPath {
            path: "/".into(),
            segments,
        });
    }
    Ok(CanonicalPath {
        path: format!("/{}", segments.join("/")),
        segments,
    })
}

fn percent_decode(seg: &str) -> Result<String, PathRefusal> {
    let bytes = seg.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |b: u8| char::from(b).to_digit(16);
            let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(PathRefusal::BadEscape);
            };
            out.push(u8::try_from(h * 16 + l).map_err(|_| PathRefusal::BadEscape)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PathRefusal::NotUtf8)
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
        assert!(big.allows("GET") && big.allows("POST") && !big.allows("DELETE") && !big.allows("get"));
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

    #[test]
    fn a_rate_only_sub_rule_keeps_its_parents_auth() {
        let t = table(
            "path_routes:\n  - {path: /raw, target: 'http://a:1', auth: none}\nsecurity:\n  - {endpoint: /raw/admin, auth: api-key, rate_limit: 100/min}\n  - {endpoint: /raw/admin/hot, rate_limit: 5/min}\n",
        );
        let p = t.policy("/raw/admin/hot/x");
        assert_eq!(p.auth, Some(EndpointAuth::ApiKey));
        assert_eq!(p.rate.map(|(e, r)| (e, r.per_minute())), Some(("/raw/admin/hot", 5)));
        assert_eq!(t.policy("/raw/other").auth, Some(EndpointAuth::None));
    }

    #[test]
    fn canonical_paths_decode_once_and_keep_segments() {
        let c = canonical_path("/raw/a%20b/%41dmin/").unwrap();
        assert_eq!(c.path, "/raw/a b/Admin/");
        assert_eq!(c.segments, ["raw", "a b", "Admin", ""]);
        assert_eq!(canonical_path("/").unwrap().path, "/");
        assert_eq!(canonical_path("/a%252e").unwrap_err(), PathRefusal::Separator);
    }

    #[test]
    fn every_spelling_of_a_dot_segment_or_separator_is_refused() {
        for (raw, why) in [
            ("/raw/x/../admin", PathRefusal::DotSegment),
            ("/raw/./admin", PathRefusal::DotSegment),
            ("/raw/%2e%2e/raw/admin", PathRefusal::DotSegment),
            ("/raw/%2E/admin", PathRefusal::DotSegment),
            ("/raw/.%2e/admin", PathRefusal::DotSegment),
            ("/raw/..", PathRefusal::DotSegment),
            ("//raw/admin", PathRefusal::EmptySegment),
            ("/raw//admin", PathRefusal::EmptySegment),
            ("/raw;x=1/admin", PathRefusal::Semicolon),
            ("/raw/admin%3bx", PathRefusal::Semicolon),
            ("/raw%2fadmin", PathRefusal::Separator),
            ("/raw%5cadmin", PathRefusal::Separator),
            ("/raw\\admin", PathRefusal::Separator),
            ("/raw/%00", PathRefusal::Separator),
            ("/raw/%zz", PathRefusal::BadEscape),
            ("/raw/%2", PathRefusal::BadEscape),
            ("/raw/%c0%ae%c0%ae/admin", PathRefusal::NotUtf8),
            ("raw/admin", PathRefusal::NotAbsolute),
            ("http://evil/raw", PathRefusal::NotAbsolute),
        ] {
            assert_eq!(canonical_path(raw), Err(why), "{raw}");
        }
    }
}
