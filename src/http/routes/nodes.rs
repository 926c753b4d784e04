//! GPU node pool endpoints (seed 000): the registry (`/register`, `/nodes`), heartbeats (`/pulse`),
//! provisioning, job status and download, and the catch-all worker proxy.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::de::DeserializeOwned;

use crate::admin;
use crate::admin::Change;
use crate::auth::Caller;
use crate::dialects::BodyError;
use crate::domain::RequestId;
use crate::error::ApiError;
use crate::http::body::Body;
use crate::http::middleware::auth::AdminAccess;
use crate::http::routes::admin::actor;
use crate::pipeline::{self, CanonicalPath, JobAsker, JobCall, Relay, RelayBody, WorkerCall};
use crate::state::AppState;

/// Registers a node (admin).
#[utoipa::path(post, path = "/register", tag = "nodes", request_body = crate::pipeline::RegisterNode, security(("admin_token" = [])), responses((status = 200, description = "The node, after one health check", body = crate::pipeline::NodeView), (status = 400, description = "Bad URL, pool or runtime; no pool configured; outside nodes.allowed_networks", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled (no INTERNAL_API_TOKEN)", body = crate::error::ErrorBody)))]
pub async fn register(state: web::Data<AppState>, http: HttpRequest, body: Body) -> Result<HttpResponse, ApiError> {
    let req: pipeline::RegisterNode = json(&body)?;
    let before = pipeline::node_item(&state, &req.url);
    let node = pipeline::register_node(&state, req, "api").await?;
    let change = Change {
        action: "register",
        kind: "node",
        name: &node.url,
        before,
        after: pipeline::node_item(&state, &node.url),
    };
    admin::audit::record(&state, &actor(&http), change).await;
    Ok(HttpResponse::Ok().json(node))
}

/// Registers a node (admin); the same as `POST /register`.
#[utoipa::path(post, path = "/nodes", tag = "nodes", request_body = crate::pipeline::RegisterNode, security(("admin_token" = [])), responses((status = 200, description = "The node, after one health check", body = crate::pipeline::NodeView), (status = 400, description = "Bad URL, pool or runtime", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled (no INTERNAL_API_TOKEN)", body = crate::error::ErrorBody)))]
pub async fn register_alias(
    state: web::Data<AppState>,
    http: HttpRequest,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    register(state, http, body).await
}

/// Every node with its health (admin).
#[utoipa::path(get, path = "/nodes", tag = "nodes", security(("admin_token" = [])), responses((status = 200, description = "Registered nodes", body = crate::pipeline::NodeList), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled (no INTERNAL_API_TOKEN)", body = crate::error::ErrorBody)))]
pub async fn list(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(pipeline::list_nodes(&state))
}

/// Removes a node (admin); `{url}` is the node's URL, percent-encoded.
#[utoipa::path(delete, path = "/nodes/{url}", tag = "nodes", params(("url" = String, Path, description = "The node URL, percent-encoded (http%3A%2F%2Fgpu-1%3A8000)")), security(("admin_token" = [])), responses((status = 200, description = "Removed", body = serde_json::Value), (status = 400, description = "Not a node URL", body = crate::error::ErrorBody), (status = 404, description = "No such node", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled (no INTERNAL_API_TOKEN)", body = crate::error::ErrorBody)))]
pub async fn remove(
    state: web::Data<AppState>,
    http: HttpRequest,
    url: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let url = url.into_inner();
    // A client that did not encode the URL, behind a proxy that merged `//`, sends `http:/host`.
    let url = match url.split_once(":/") {
        Some((scheme, rest)) if !rest.starts_with('/') => format!("{scheme}://{rest}"),
        _ => url,
    };
    let before = pipeline::node_item(&state, &url);
    pipeline::remove_node(&state, &url).await?;
    let change = Change {
        action: "remove",
        kind: "node",
        name: &url,
        before,
        after: None,
    };
    admin::audit::record(&state, &actor(&http), change).await;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "removed": url })))
}

/// A worker's heartbeat (worker token).
#[utoipa::path(post, path = "/pulse", tag = "nodes", request_body = crate::pipeline::Pulse, security(("worker_token" = [])), responses((status = 200, description = "The node as now known", body = crate::pipeline::NodeView), (status = 400, description = "Bad body: not a node URL, more than 256 models or an overlong model name", body = crate::error::ErrorBody), (status = 404, description = "The URL is not a registered node: heartbeats only refresh nodes an operator registered", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong worker token", body = crate::error::ErrorBody), (status = 403, description = "The worker token is not configured (no AI_CLUSTER_SECRET)", body = crate::error::ErrorBody)))]
pub async fn pulse(state: web::Data<AppState>, body: Body) -> Result<HttpResponse, ApiError> {
    let req = json(&body)?;
    Ok(HttpResponse::Ok().json(pipeline::pulse(&state, req).await?))
}

/// Sets up a GPU machine over SSH with `nodes.provision_command`, then registers it (admin).
#[utoipa::path(post, path = "/nodes/provision", tag = "nodes", request_body = crate::pipeline::ProvisionRequest, security(("admin_token" = [])), responses((status = 200, description = "The command's exit status and output tail; whether the node was registered", body = crate::pipeline::ProvisionReport), (status = 400, description = "Bad host or body, or nodes.provision_command is not set", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled (no INTERNAL_API_TOKEN)", body = crate::error::ErrorBody)))]
pub async fn provision(state: web::Data<AppState>, http: HttpRequest, body: Body) -> Result<HttpResponse, ApiError> {
    let req: pipeline::ProvisionRequest = json(&body)?;
    // What was asked, without the SSH key.
    let asked = serde_json::json!({
        "host": req.host, "user": req.user, "port": req.port, "url": req.url, "pool": req.pool, "runtime": req.runtime,
    });
    let host = req.host.clone();
    let report = pipeline::provision(&state, req).await?;
    let change = Change {
        action: "provision",
        kind: "node",
        name: &host,
        before: None,
        after: Some(serde_json::json!({
            "request": asked,
            "exit_status": report.exit_status,
            "timed_out": report.timed_out,
            "url": report.url,
            "registered": report.registered,
        })),
    };
    admin::audit::record(&state, &actor(&http), change).await;
    Ok(HttpResponse::Ok().json(report))
}

/// A job's status, from the node that accepted it (the caller's own jobs; every job with the
/// admin token).
#[utoipa::path(get, path = "/status/{job_id}", tag = "nodes", params(("job_id" = String, Path, description = "The gateway's job id (the `job_id` of the catch-all's answer)")), security(("bearer" = []), ("api_key" = []), ("admin_token" = [])), responses((status = 200, description = "The node's answer, as it sent it"), (status = 401, description = "Missing or wrong credentials", body = crate::error::ErrorBody), (status = 404, description = "No job with this id belongs to the caller", body = crate::error::ErrorBody), (status = 502, description = "The node did not answer", body = crate::error::ErrorBody)))]
pub async fn status(
    state: web::Data<AppState>,
    id: web::ReqData<RequestId>,
    caller: Option<web::ReqData<Caller>>,
    admin: Option<web::ReqData<AdminAccess>>,
    req: HttpRequest,
    job_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let query = Some(req.query_string()).filter(|q| !q.is_empty());
    let asker = asker(caller.as_deref(), admin.is_some())?;
    Ok(relay(
        pipeline::job(&state, &id, asker, JobCall::Status, &job_id, query).await?,
    ))
}

/// A job's result, streamed from the node that accepted it (the caller's own jobs; every job
/// with the admin token).
#[utoipa::path(get, path = "/download/{job_id}", tag = "nodes", params(("job_id" = String, Path, description = "The gateway's job id (the `job_id` of the catch-all's answer)")), security(("bearer" = []), ("api_key" = []), ("admin_token" = [])), responses((status = 200, description = "The node's answer, streamed as it sent it"), (status = 401, description = "Missing or wrong credentials", body = crate::error::ErrorBody), (status = 404, description = "No job with this id belongs to the caller", body = crate::error::ErrorBody), (status = 502, description = "The node did not answer", body = crate::error::ErrorBody)))]
pub async fn download(
    state: web::Data<AppState>,
    id: web::ReqData<RequestId>,
    caller: Option<web::ReqData<Caller>>,
    admin: Option<web::ReqData<AdminAccess>>,
    req: HttpRequest,
    job_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let query = Some(req.query_string()).filter(|q| !q.is_empty());
    let asker = asker(caller.as_deref(), admin.is_some())?;
    Ok(relay(
        pipeline::job(&state, &id, asker, JobCall::Download, &job_id, query).await?,
    ))
}

/// The admin token sees every job; anyone else is a client and sees its own.
fn asker(caller: Option<&Caller>, admin: bool) -> Result<JobAsker<'_>, ApiError> {
    match (admin, caller) {
        (true, _) => Ok(JobAsker::Admin),
        (false, Some(c)) => Ok(JobAsker::Client(c)),
        (false, None) => Err(ApiError::Auth(crate::auth::AuthError::Missing)),
    }
}

/// Seed 000's catch-all: a POST to a declared worker path no other route owns goes to the best
/// GPU node (`path` is the request's canonical path, from the catch-all's middleware).
pub async fn proxy(
    state: web::Data<AppState>,
    id: web::ReqData<RequestId>,
    caller: Option<web::ReqData<Caller>>,
    req: HttpRequest,
    path: CanonicalPath,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let call = WorkerCall {
        path,
        query: Some(req.query_string().to_owned()).filter(|q| !q.is_empty()),
        body: body.0,
        content_type: req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    Ok(relay(pipeline::proxy(&state, &id, caller.as_deref(), call).await?))
}

/// A node's answer with its status and headers, naming the node and the attempts made.
fn relay(r: Relay) -> HttpResponse {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = HttpResponse::build(status);
    for (name, value) in r.headers {
        out.insert_header((name, value));
    }
    out.insert_header(("x-ai-gateway-provider", r.node.as_str()));
    out.insert_header(("x-ai-gateway-attempts", r.attempts.to_string()));
    match r.body {
        RelayBody::Bytes(b) => out.body(b),
        RelayBody::Stream(s) => out.streaming(s),
    }
}

fn json<T: DeserializeOwned>(body: &Body) -> Result<T, ApiError> {
    serde_json::from_slice(&body.0).map_err(|e| {
        ApiError::InvalidRequest(BodyError {
            message: format!("invalid JSON body: {e}"),
            param: None,
            code: "invalid_json",
        })
    })
}
