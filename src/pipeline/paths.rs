//! Path routes (seed 002): a request under a configured path goes to the route's first healthy
//! target with its method, path, query, headers and body unchanged, failing over across targets
//! on connect errors, timeouts and 5xx before anything reaches the client; the answer's body is
//! streamed back as it arrives.
//!
//! The targets are walked by `Orchestrator::failover`, the walk every upstream call uses (breaker
//! per target, id `host:port`, as GPU nodes have; classification, backoff, `Retry-After`); this
//! module supplies only the attempt. With `path_routes_allowed_networks` set, every target is
//! resolved and checked before its calls (a refused one is passed by) and plain-HTTP calls connect
//! to the checked address (no DNS rebinding between check and connect).

use std::cell::Cell;
use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;

use super::observe::Trace;
use crate::auth::Caller;
use crate::domain::{AttemptOutcome, ClientHeaders, Dialect, ProviderId, RequestId};
use crate::error::ApiError;
use crate::orchestrator::{Answered, Failed, Gate, Orchestrator, Target, Upstream};
use crate::providers::passthrough::{self, PassBody, PassRequest, PassResponse};
use crate::providers::{UpstreamError, UpstreamErrorKind};
pub use crate::routing::paths::{CanonicalPath, canonical_path};
use crate::routing::paths::{PathRoute, PathTarget};
use crate::state::{AppState, Live};

/// A request to a path route, as the client made it.
#[derive(Debug)]
pub struct PathCall {
    pub method: String,
    /// The canonical path: the route, the policy, history and the upstream URL all use this one,
    /// so no spelling of a path can be checked under one name and served under another.
    pub path: CanonicalPath,
    /// The query string, if any (without `?`).
    pub query: Option<String>,
    /// The client's headers (credentials and hop-by-hop ones are dropped before sending).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body's bytes.
    pub body: Bytes,
}

/// A target's answer, relayed as it arrives.
pub struct PathAnswer {
    pub status: u16,
    /// Its headers, minus hop-by-hop ones.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: PassBody,
    /// The target that answered (`host:port`).
    pub target: ProviderId,
    /// Upstream calls made.
    pub attempts: usize,
}

impl std::fmt::Debug for PathAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PathAnswer")
            .field("status", &self.status)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// Whether a path route serves `path` in the current snapshot (the catch-all's guard).
pub fn is_path_route(state: &AppState, path: &str) -> bool {
    let live = state.live();
    !live.paths.is_empty() && live.paths.route(path).is_some()
}

/// The path route `path` falls under, as a bounded metrics label (its configured path).
pub fn path_route_label(state: &AppState, path: &str) -> Option<String> {
    let live = state.live();
    live.paths.route(path).map(|r| r.path.clone())
}

/// Forwards a request to its path route's targets. History and metrics record it once the answer's
/// head is known (`endpoint` = the request path, `provider` = the target's `host:port`).
pub async fn forward_path(
    state: &AppState,
    request_id: &RequestId,
    caller: Option<&Caller>,
    call: PathCall,
) -> Result<PathAnswer, ApiError> {
    let live = state.live();
    let Some(route) = live.paths.route(&call.path.path) else {
        return Err(ApiError::RouteNotFound {
            method: call.method,
            path: call.path.path,
        });
    };
    if !route.allows(&call.method) {
        return Err(ApiError::MethodNotAllowed {
            method: call.method,
            path: call.path.path,
        });
    }
    let log_prompts = live.config.settings.logging.log_prompts;
    let mut trace = Trace::start(
        state,
        call.path.path.clone(),
        "path",
        request_id,
        caller,
        log_prompts,
        &call.body,
    );
    // A route `callback` gets the completed request's event (signed, off the request path).
    trace.set_callback(&route.path, route.callback.as_deref());
    match try_targets(state, &live, route, request_id, &call, &mut trace).await {
        Ok(answer) => {
            trace.provider = Some(answer.target.clone());
            if (200..300).contains(&answer.status) {
                trace.succeeded(None, None);
            } else {
                trace.failed(&ApiError::UpstreamRejected {
                    status: answer.status,
                    message: format!("the target answered HTTP {}", answer.status),
                    error_type: None,
                    code: None,
                    param: None,
                    provider: answer.target.clone(),
                    attempts: answer.attempts,
                });
            }
            Ok(answer)
        }
        Err(e) => {
            trace.failed(&e);
            Err(e)
        }
    }
}

async fn try_targets(
    state: &AppState,
    live: &Live,
    route: &PathRoute,
    request_id: &RequestId,
    call: &PathCall,
    trace: &mut Trace,
) -> Result<PathAnswer, ApiError> {
    let routing = &live.config.settings.routing;
    let targets = Targets {
        http: &state.http,
        live,
        request_id,
        call,
        timeout: route
            .timeout
            .or_else(|| Duration::try_from_secs_f64(routing.timeout_seconds).ok())
            .unwrap_or(Duration::from_secs(60)),
        idle: Duration::try_from_secs_f64(routing.stream_idle_timeout_seconds).unwrap_or(Duration::from_secs(60)),
        refused: Cell::new(0),
    };
    let orchestrator = Orchestrator {
        forward: ClientHeaders::NONE,
        affinity: None,
        routing,
        breakers: &live.breakers,
        http: &state.http,
        request_id,
        dialect: Dialect::OpenAi,
        max_response_bytes: live.config.settings.limits.max_response_bytes,
        caller: trace.caller.as_deref(),
        admission: None,
    };
    let outcome = orchestrator.failover(&targets, &route.targets).await;
    let attempts = outcome.calls_made();
    trace.attempts.extend(outcome.attempts);
    match outcome.result {
        Ok(success) => {
            let resp = success.value;
            Ok(PathAnswer {
                status: resp.status,
                headers: resp.headers,
                body: resp.body,
                target: success.provider,
                attempts,
            })
        }
        Err(_) if targets.refused.get() == route.targets.len() => Err(ApiError::Unavailable {
            message: format!(
                "no target of path route `{}` may be called: they resolve outside path_routes_allowed_networks",
                route.path
            ),
        }),
        Err(e) => Err(e),
    }
}

/// A path route's targets, for the orchestrator's walk: each is checked against the allow-list
/// (a refused one is passed by), and an answer with a status worth no other target is the
/// service's answer, relayed as is.
struct Targets<'a> {
    http: &'a reqwest::Client,
    live: &'a Live,
    request_id: &'a RequestId,
    call: &'a PathCall,
    timeout: Duration,
    idle: Duration,
    /// Targets that may not be called (no base URL, or outside the allow-list).
    refused: Cell<usize>,
}

impl Upstream for Targets<'_> {
    type Candidate = PathTarget;
    type Ready = (String, Option<IpAddr>);
    type Answer = PassResponse;

    fn target<'a>(&'a self, t: &'a PathTarget) -> Target<'a> {
        Target {
            id: &t.id,
            model: "",
            provider: None,
        }
    }

    async fn gate(&self, t: &PathTarget) -> Gate<(String, Option<IpAddr>)> {
        let Some(url) = upstream_url(&t.base, &self.call.path, self.call.query.as_deref()) else {
            tracing::warn!(request_id = %self.request_id, target = %t.id, "path route target is not a base URL");
            self.refused.set(self.refused.get() + 1);
            return Gate::Skip(None);
        };
        match pinned_address(self.live, t, self.request_id).await {
            Ok(pin) => Gate::Go((url, pin)),
            Err(()) => {
                self.refused.set(self.refused.get() + 1);
                Gate::Skip(None)
            }
        }
    }

    async fn attempt(
        &self,
        t: &PathTarget,
        (url, pin): &(String, Option<IpAddr>),
    ) -> Result<Answered<PassResponse>, Failed<PassResponse>> {
        let req = PassRequest {
            method: &self.call.method,
            url: url.clone(),
            headers: &self.call.headers,
            body: self.call.body.clone(),
            request_id: self.request_id.as_str(),
            // Traces off: the client's headers pass as they came, like every other header.
            trace: if crate::telemetry::traces::enabled() {
                crate::telemetry::traces::upstream(self.request_id)
            } else {
                None
            },
            timeout: self.timeout,
            idle_timeout: self.idle,
            pin: *pin,
        };
        let resp = passthrough::send(self.http, &t.id, req).await?;
        if retryable_status(resp.status) {
            return Err(status_error(&t.id, &resp).into());
        }
        let status = Some(resp.status);
        let outcome = if resp.status < 400 {
            AttemptOutcome::Success
        } else {
            AttemptOutcome::Rejected
        };
        Ok(Answered {
            value: resp,
            outcome,
            status,
        })
    }
}

/// With an allow-list: the address to connect to, after resolving the target now and checking
/// every address (`Err` = refused, logged). Without one: no pin, reqwest resolves as usual.
async fn pinned_address(
    live: &Live,
    target: &PathTarget,
    request_id: &RequestId,
) -> Result<Option<std::net::IpAddr>, ()> {
    let allowed = live.paths.allowed_networks();
    if allowed.is_empty() {
        return Ok(None);
    }
    match crate::nodes::resolve_allowed(allowed, &target.base).await {
        Ok(addrs) => Ok(addrs.first().copied()),
        Err(reason) => {
            tracing::warn!(request_id = %request_id, target = %target.id, reason = %reason, "path route target refused: outside path_routes_allowed_networks");
            Err(())
        }
    }
}

/// `base` + the canonical path's segments (each encoded again as exactly one segment) + the query.
/// Never by concatenation: a client's bytes cannot add a segment, a `..`, an authority or a
/// fragment to the URL the gateway calls. `None` when `base` is not a URL with a path.
pub fn upstream_url(base: &str, path: &CanonicalPath, query: Option<&str>) -> Option<String> {
    // A canonical path has no dot segment, but a node's job id is the node's text: the URL
    // parser would resolve `..` rather than encode it.
    if path.segments.iter().any(|s| s == "." || s == "..") {
        return None;
    }
    let mut url = reqwest::Url::parse(base).ok()?;
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(path.segments.iter().filter(|s| !s.is_empty()));
    if path.segments.last().is_some_and(String::is_empty) && path.segments.len() > 1 {
        url.path_segments_mut().ok()?.push("");
    }
    url.set_query(query);
    url.set_fragment(None);
    Some(url.into())
}

/// 5xx, 408 and 429 are worth another target; any other status is the service's answer.
pub(super) fn retryable_status(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

fn status_error(id: &ProviderId, resp: &PassResponse) -> UpstreamError {
    let mut e = UpstreamError::new(id, UpstreamErrorKind::Status);
    e.status = Some(resp.status);
    e.retry_after = resp.retry_after;
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls_are_built_from_segments() {
        let path = canonical_path("/raw/a%20b/%3F%23x/").unwrap();
        assert_eq!(
            upstream_url("http://t:1", &path, Some("q=1")).as_deref(),
            Some("http://t:1/raw/a%20b/%3F%23x/?q=1")
        );
        let dots = CanonicalPath {
            path: String::new(),
            segments: vec!["status".into(), "..".into()],
        };
        assert_eq!(upstream_url("http://t:1", &dots, None), None);
        let slashes = CanonicalPath {
            path: String::new(),
            segments: vec!["status".into(), "../../api/pull".into()],
        };
        assert_eq!(
            upstream_url("http://t:1", &slashes, None).as_deref(),
            Some("http://t:1/status/..%2F..%2Fapi%2Fpull")
        );
        let root = canonical_path("/predict").unwrap();
        assert_eq!(
            upstream_url("http://t:1/base/", &root, None).as_deref(),
            Some("http://t:1/base/predict")
        );
    }

    #[test]
    fn only_server_errors_timeouts_and_rate_limits_move_to_the_next_target() {
        for s in [500, 502, 503, 504, 408, 429] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [200, 201, 204, 301, 400, 401, 404, 422] {
            assert!(!retryable_status(s), "{s}");
        }
    }
}
