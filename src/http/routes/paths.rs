//! The catch-all (registered last): a path route's path goes to `pipeline::forward_path`, any other
//! POST to seed 000's GPU-node proxy.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONNECTION, HeaderMap, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::auth::Caller;
use crate::dialects::BodyError;
use crate::domain::RequestId;
use crate::error::ApiError;
use crate::http::body::Body;
use crate::pipeline::{self, CanonicalPath, PathAnswer, PathCall};
use crate::state::AppState;

/// Serves a path route, or hands a POST to the GPU-node proxy.
pub async fn dispatch(
    state: web::Data<AppState>,
    id: web::ReqData<RequestId>,
    caller: Option<web::ReqData<Caller>>,
    path: Option<web::ReqData<CanonicalPath>>,
    req: HttpRequest,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    // The canonical middleware wraps this resource, so the path is always there; computing it
    // again is only a guard against a wiring mistake, never a second, different spelling.
    let path = match path {
        Some(p) => p.into_inner(),
        None => pipeline::canonical_path(req.uri().path()).map_err(|why| {
            ApiError::InvalidRequest(BodyError {
                message: format!("invalid request path: {why}"),
                param: None,
                code: "invalid_path",
            })
        })?,
    };
    if !pipeline::is_path_route(&state, &path.path) {
        return super::nodes::proxy(state, id, caller, req, path, body).await;
    }
    let trusted = req.peer_addr().is_some_and(|a| state.live().paths.trusts_proxy(a.ip()));
    let call = PathCall {
        method: req.method().as_str().to_owned(),
        path,
        query: Some(req.query_string().to_owned()).filter(|q| !q.is_empty()),
        headers: forwarded_headers(req.headers(), trusted),
        body: body.0,
    };
    Ok(relay(
        pipeline::forward_path(&state, &id, caller.as_deref(), call).await?,
    ))
}

/// Client-supplied forwarding headers (plus every `x-forwarded-*`): a client could claim any
/// address, host or prefix in them, and the service behind a path route may trust them for its
/// own allow-lists, links or logs.
const FORWARDING: &[&str] = &[
    "forwarded",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "x-cluster-client-ip",
    "cf-connecting-ip",
];

/// Headers some frameworks read as the real method or path (Symfony and IIS `X-Original-URL`,
/// `X-HTTP-Method-Override` in many): they would let a client reach a path or method the route and
/// its rules never saw, so they never pass.
const OVERRIDES: &[&str] = &[
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

fn is_forwarding(name: &str) -> bool {
    name.starts_with("x-forwarded-") || FORWARDING.contains(&name)
}

/// The client's headers as they go on: minus the headers its `Connection` names (hop-by-hop by
/// RFC 9110 §7.6.1, so `Connection: x-api-key` cannot be used to make a header vanish or pass in
/// ways the service does not expect), minus forwarding headers unless the peer is a trusted
/// proxy (`trusted_proxies`), and minus method and URL overrides. The transport drops the fixed
/// hop-by-hop set and credentials.
fn forwarded_headers(headers: &HeaderMap, trusted: bool) -> Vec<(String, Vec<u8>)> {
    let named: Vec<String> = headers
        .get_all(CONNECTION)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    headers
        .iter()
        .filter(|(n, _)| !named.iter().any(|c| c == n.as_str()))
        .filter(|(n, _)| trusted || !is_forwarding(n.as_str()))
        .filter(|(n, _)| !OVERRIDES.contains(&n.as_str()))
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect()
}

/// The target's status, headers and streamed body, naming the target and the attempts made.
fn relay(a: PathAnswer) -> HttpResponse {
    let mut out = HttpResponse::build(StatusCode::from_u16(a.status).unwrap_or(StatusCode::BAD_GATEWAY));
    for (name, value) in &a.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value)) {
            out.append_header((n, v));
        }
    }
    out.insert_header(("x-ai-gateway-provider", a.target.as_str()));
    out.insert_header(("x-ai-gateway-attempts", a.attempts.to_string()));
    out.streaming(a.body)
}
