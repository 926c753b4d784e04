//! `GET`/`DELETE /v1/responses/{id}`, `POST /v1/responses/{id}/cancel` and
//! `GET /v1/responses/{id}/input_items`: a response the gateway answered, for the caller that made
//! it (or the admin token), from the store or from the provider that keeps it.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::auth::{AuthError, Caller};
use crate::domain::RequestId;
use crate::error::ApiError;
use crate::http::middleware::auth::AdminAccess;
use crate::pipeline::{self, ListQuery, Relay, RelayBody, ResponseAsker, ResponseCall, ResponseOp};
use crate::state::AppState;

/// A response: the stored object of a bridged one, or the provider's answer for a native one
/// (`stream=true` relays its events).
#[utoipa::path(get, path = "/v1/responses/{response_id}", tag = "inference", params(("response_id" = String, Path, description = "The response's id (`resp_...`)")), security(("bearer" = []), ("api_key" = []), ("admin_token" = [])), responses((status = 200, description = "The response object (or its events with `stream=true`, from a provider that keeps it)", body = crate::http::routes::responses::Response), (status = 401, description = "Missing or wrong credentials", body = crate::error::ErrorBody), (status = 404, description = "No response with this id belongs to the caller", body = crate::error::ErrorBody), (status = 502, description = "The provider that made it did not answer", body = crate::error::ErrorBody), (status = 503, description = "The response store did not answer in time", body = crate::error::ErrorBody)))]
pub async fn retrieve(
    state: web::Data<AppState>,
    request_id: web::ReqData<RequestId>,
    caller: Option<web::ReqData<Caller>>,
    admin: Option<web::ReqData<AdminAccess>>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = call(ResponseOp::Get, &id, &req, ListQuery::default());
    let asker = asker(caller.as_deref(), admin.is_some())?;
    Ok(relay(
        pipeline::operate_response(&state, &request_id, asker, call).await?,
    ))
}

/// Deletes a response: from the store (a bridged one) or at the provider that keeps it.
#[utoipa::path(delete, path = "/v1/responses/{response_id}", tag = "inference", params(("response_id" = String, Path, description = "The response's id (`resp_...`)")), security(("bearer" = []), ("api_key" = []), ("admin_token" = [])), responses((status = 200, description = "`{\"id\", \"object\": \"response\", \"deleted\": true}`", body = serde_json::Value), (status = 401, description = "Missing or wrong credentials", body = crate::error::ErrorBody), (status = 404, description = "No response with this id belongs to the caller", body = crate::error::ErrorBody), (status = 502, description = "The provider that made it did not answer", body = crate::error::ErrorBody), (status = 503, description = "The response store did not answer in time", body = crate::error::ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    request_id: web::ReqData<RequestId>,
    caller: Option<web::ReqData<Caller>>,
    admin: Option<web::ReqData<AdminAccess>>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = call(ResponseOp::Delete, &id, &req, ListQuery::default());
    let asker = asker(caller.as_deref(), admin.is_some())?;
    Ok(relay(
        pipeline::operate_response(&state, &request_id, asker, call).await?,
    ))
}

/// Cancels a background response at the provider that runs it; a bridged response never runs in
/// the background, so cancelling one is refused (400).
#[utoipa::path(post, path = "/v1/responses/{response_id}/cancel", tag = "inference", params(("response_id" = String, Path, description = "The response's id (`resp_...`)")), security(("bearer" = []), ("api_key" = []), ("admin_token" = [])), responses((status = 200, description = "The response object, as the provider answered", body = crate::http::routes::responses::Response), (status = 400, description = "The response was not created with `background: true`", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong credentials", body = crate::error::ErrorBody), (status = 404, description = "No response with this id belongs to the caller", body = crate::error::ErrorBody), (status = 502, description = "The provider that made it did not answer", body = crate::error::ErrorBody), (status = 503, description = "The response store did not answer in time", body = crate::error::ErrorBody)))]
pub async fn cancel(
    state: web::Data<AppState>,
    request_id: web::ReqData<RequestId>,
    caller: Option<web::ReqData<Caller>>,
    admin: Option<web::ReqData<AdminAccess>>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = call(ResponseOp::Cancel, &id, &req, ListQuery::default());
    let asker = asker(caller.as_deref(), admin.is_some())?;
    Ok(relay(
        pipeline::operate_response(&state, &request_id, asker, call).await?,
    ))
}

/// The input items of a response, in OpenAI's list shape (`limit` 1–100, `order` `asc`|`desc`,
/// `after`).
#[utoipa::path(get, path = "/v1/responses/{response_id}/input_items", tag = "inference", params(("response_id" = String, Path, description = "The response's id (`resp_...`)"), ("limit" = Option<i64>, Query, description = "Items per page, 1 to 100 (default 20)"), ("order" = Option<String>, Query, description = "`asc` or `desc` (default)"), ("after" = Option<String>, Query, description = "Start after this item id")), security(("bearer" = []), ("api_key" = []), ("admin_token" = [])), responses((status = 200, description = "`{\"object\": \"list\", \"data\", \"first_id\", \"last_id\", \"has_more\"}`", body = serde_json::Value), (status = 400, description = "Bad parameter", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong credentials", body = crate::error::ErrorBody), (status = 404, description = "No response with this id belongs to the caller", body = crate::error::ErrorBody), (status = 502, description = "The provider that made it did not answer", body = crate::error::ErrorBody), (status = 503, description = "The response store did not answer in time", body = crate::error::ErrorBody)))]
pub async fn input_items(
    state: web::Data<AppState>,
    request_id: web::ReqData<RequestId>,
    caller: Option<web::ReqData<Caller>>,
    admin: Option<web::ReqData<AdminAccess>>,
    req: HttpRequest,
    id: web::Path<String>,
    list: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let call = call(ResponseOp::InputItems, &id, &req, list.into_inner());
    let asker = asker(caller.as_deref(), admin.is_some())?;
    Ok(relay(
        pipeline::operate_response(&state, &request_id, asker, call).await?,
    ))
}

fn call<'a>(op: ResponseOp, id: &'a str, req: &'a HttpRequest, list: ListQuery) -> ResponseCall<'a> {
    ResponseCall {
        op,
        id,
        query: Some(req.query_string()).filter(|q| !q.is_empty()),
        list,
    }
}

/// The admin token sees every response; anyone else is a client and sees its own.
fn asker(caller: Option<&Caller>, admin: bool) -> Result<ResponseAsker<'_>, ApiError> {
    match (admin, caller) {
        (true, _) => Ok(ResponseAsker::Admin),
        (false, Some(c)) => Ok(ResponseAsker::Client(c)),
        (false, None) => Err(ApiError::Auth(AuthError::Missing)),
    }
}

/// The answer with its status and content type, naming the provider that made the response.
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
