//! Path routes (seed 002): a request under a configured path goes to the route's first healthy
//! target with its method, path, query, headers and body unchanged, failing over across targets
//! on connect errors, timeouts and 5xx before anything reaches the client; the answer's body is
//! streamed back as it arrives.
//!
//! Failures are classified by `orchestrator::classify`, waits come from `orchestrator::retry`, and
//! each target has a breaker (`BreakerSet::get_or_create`, id `host:port`), as GPU nodes do. With
//! `path_routes_allowed_networks` set, every target is resolved and checked before each call and
//! plain-HTTP calls connect to the checked address (no DNS rebinding between check and connect).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::observe::Trace;
use crate::auth::Caller;
use crate::domain::{AttemptOutcome, AttemptSummary, ProviderId, RequestId};
use crate::error::ApiError;
use crate::orchestrator::breaker::Permit;
use crate::orchestrator::classify::{Verdict, classify};
use crate::orchestrator::retry::backoff;
use crate::providers::passthrough::{self, PassBody, PassRequest, PassResponse};
use crate::providers::{UpstreamError, UpstreamErrorKind};
pub use crate::routing::paths::{CanonicalPath, canonical_path};
use crate::routing::paths::{PathRoute, PathTarget};
use crate::state::{AppState, Live};

/// A request to a path route, as the client made it.
#[derive(Debug)]
pub struct PathCall {
    /// The method.
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
    /// Its status.
    pub status: u16,
    /// Its headers, minus hop-by-hop ones.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Its body.
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
    let timeout = route
        .timeout
        .or_else(|| Duration::try_from_secs_f64(routing.timeout_seconds).ok())
        .unwrap_or(Duration::from_secs(60));
    let idle = Duration::try_from_secs_f64(routing.stream_idle_timeout_seconds).unwrap_or(Duration::from_secs(60));
    let mut refused = 0;
    for target in &route.targets {
        let Some(url) = upstream_url(&target.base, &call.path, call.query.as_deref()) else {
            tracing::warn!(request_id = %request_id, target = %target.id, "path route target is not a base URL");
            refused += 1;
            continue;
        };
        let pin = match pinned_address(live, target, request_id).await {
            Ok(pin) => pin,
            Err(()) => {
                refused += 1;
                continue;
            }
        };
        let breaker = live.breakers.get_or_create(&target.id);
        for retry in 0..=routing.max_retries {
            let Some(permit) = Permit::acquire(breaker.as_ref()) else {
                trace
                    .attempts
                    .push(attempt(&target.id, AttemptOutcome::BreakerOpen, None, Duration::ZERO));
                break;
            };
            let started = Instant::now();
            let req = PassRequest {
                method: &call.method,
                url: url.clone(),
                headers: &call.headers,
                body: call.body.clone(),
                request_id: request_id.as_str(),
                timeout,
                idle_timeout: idle,
                pin,
            };
            let failure = match passthrough::send(&state.http, &target.id, req).await {
                Ok(resp) if !retryable_status(resp.status) => {
                    permit.finish(false);
                    let outcome = if resp.status < 400 {
                        AttemptOutcome::Success
                    } else {
                        AttemptOutcome::Rejected
                    };
                    trace
                        .attempts
                        .push(attempt(&target.id, outcome, Some(resp.status), started.elapsed()));
                    return Ok(answer(resp, target, trace));
                }
                Ok(resp) => status_error(&target.id, &resp),
                Err(e) => e,
            };
            let class = classify(&failure);
            permit.finish(class.trips_breaker);
            trace
                .attempts
                .push(attempt(&target.id, class.outcome, failure.status, started.elapsed()));
            tracing::warn!(request_id = %request_id, target = %target.id, error = %failure, "path route call failed");
            if class.verdict != Verdict::Retry || retry == routing.max_retries {
                break;
            }
            let wait = backoff(
                retry,
                routing.backoff_base_ms,
                routing.backoff_max_ms,
                failure.retry_after,
            );
            tokio::time::sleep(wait).await;
        }
    }
    if refused == route.targets.len() {
        return Err(ApiError::Unavailable {
            message: format!(
                "no target of path route `{}` may be called: they resolve outside path_routes_allowed_networks",
                route.path
            ),
        });
    }
    Err(if trace.attempts.iter().all(|a| !a.was_called()) {
        ApiError::ProvidersUnavailable { retry_after: None }
    } else {
        ApiError::AllProvidersFailed {
            attempts: trace.attempts.clone(),
        }
    })
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
fn retryable_status(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

fn status_error(id: &ProviderId, resp: &PassResponse) -> UpstreamError {
    let mut e = UpstreamError::new(id, UpstreamErrorKind::Status);
    e.status = Some(resp.status);
    e.retry_after = resp.retry_after;
    e
}

fn answer(resp: PassResponse, target: &PathTarget, trace: &Trace) -> PathAnswer {
    PathAnswer {
        status: resp.status,
        headers: resp.headers,
        body: resp.body,
        target: target.id.clone(),
        attempts: trace.attempts.iter().filter(|a| a.was_called()).count(),
    }
}

fn attempt(id: &ProviderId, outcome: AttemptOutcome, status: Option<u16>, latency: Duration) -> AttemptSummary {
    AttemptSummary {
        provider: id.clone(),
        upstream_model: String::new(),
        outcome,
        status,
        latency,
    }
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
