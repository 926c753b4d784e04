//! `POST /ai/task` and `GET /provider/status` (seed 004).

use actix_web::{HttpResponse, web};

use crate::auth::Caller;
use crate::domain::RequestId;
use crate::error::ApiError;
use crate::http::body::Body;
use crate::pipeline;
use crate::state::AppState;

/// Runs a task: `{"task", "text", "provider"}` → `{"provider_used", "result", "confidence", "latency_ms", "decision"?}`.
#[utoipa::path(post, path = "/ai/task", tag = "tasks", request_body = crate::http::schemas::TaskRequest, security(("bearer" = []), ("api_key" = [])), responses((status = 200, description = "The answer, with a decision for invoice_check and document_review", body = crate::pipeline::TaskAnswer), (status = 400, description = "Bad request", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong credentials", body = crate::error::ErrorBody), (status = 403, description = "The key may not use this model", body = crate::error::ErrorBody), (status = 404, description = "No enabled provider serves the model", body = crate::error::ErrorBody), (status = 408, description = "The body arrived too slowly", body = crate::error::ErrorBody), (status = 413, description = "Body over limits.max_body_bytes", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody), (status = 503, description = "Every provider failed", body = crate::error::ErrorBody)))]
pub async fn task(
    state: web::Data<AppState>,
    id: web::ReqData<RequestId>,
    caller: Option<web::ReqData<Caller>>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let answer = pipeline::task(&state, &id, caller.as_deref(), body.0).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("x-ai-gateway-provider", answer.provider_used.clone()))
        .json(answer))
}

/// Providers with their breakers, last errors and latency.
#[utoipa::path(get, path = "/provider/status", tag = "tasks", security(("bearer" = []), ("api_key" = [])), responses((status = 200, description = "Every provider with its breaker, last error and median latency", body = crate::pipeline::StatusList), (status = 401, description = "Missing or wrong credentials", body = crate::error::ErrorBody)))]
pub async fn provider_status(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(pipeline::provider_status(&state))
}
