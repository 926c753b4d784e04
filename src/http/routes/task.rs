//! `POST /ai/task` and `GET /provider/status` (seed 004).

use actix_web::{HttpResponse, web};

use crate::auth::Caller;
use crate::domain::RequestId;
use crate::error::ApiError;
use crate::http::body::Body;
use crate::pipeline;
use crate::state::AppState;

/// Runs a task: `{"task", "text", "provider"}` → `{"provider_used", "result", "confidence", "latency_ms", "decision"?}`.
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
pub async fn provider_status(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(pipeline::provider_status(&state))
}
