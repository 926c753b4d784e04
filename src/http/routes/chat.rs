//! `POST /v1/chat/completions` and `POST /v1/embeddings`.

use actix_web::{HttpResponse, web};

use crate::auth::Caller;
use crate::domain::RequestId;
use crate::error::ApiError;
use crate::http::body::Body;
use crate::http::render;
use crate::pipeline::{self, Directives};
use crate::state::AppState;

/// OpenAI chat completions, JSON or SSE.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "inference", request_body = crate::http::schemas::ChatCompletionRequest, security(("bearer" = []), ("api_key" = [])), responses((status = 200, description = "A chat completion (JSON), or `text/event-stream` chunks when `stream` is true", body = crate::http::schemas::ChatCompletion), (status = 400, description = "Bad request", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong credentials", body = crate::error::ErrorBody), (status = 403, description = "The key may not use this model", body = crate::error::ErrorBody), (status = 404, description = "No enabled provider serves the model", body = crate::error::ErrorBody), (status = 408, description = "The body arrived too slowly", body = crate::error::ErrorBody), (status = 413, description = "Body over limits.max_body_bytes", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody), (status = 502, description = "Every provider failed", body = crate::error::ErrorBody), (status = 503, description = "Every candidate breaker is open", body = crate::error::ErrorBody)))]
pub async fn chat_completions(
    state: web::Data<AppState>,
    id: web::ReqData<RequestId>,
    caller: Option<web::ReqData<Caller>>,
    directives: Directives,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    Ok(render::answer(
        pipeline::chat(&state, &id, caller.as_deref(), body.0, directives).await?,
    ))
}

/// OpenAI embeddings.
#[utoipa::path(post, path = "/v1/embeddings", tag = "inference", request_body = crate::http::schemas::EmbeddingsRequest, security(("bearer" = []), ("api_key" = [])), responses((status = 200, description = "Embeddings", body = crate::http::schemas::EmbeddingsResponse), (status = 400, description = "Bad request", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong credentials", body = crate::error::ErrorBody), (status = 403, description = "The key may not use this model", body = crate::error::ErrorBody), (status = 404, description = "No enabled provider serves the model", body = crate::error::ErrorBody), (status = 408, description = "The body arrived too slowly", body = crate::error::ErrorBody), (status = 413, description = "Body over limits.max_body_bytes", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody), (status = 502, description = "Every provider failed", body = crate::error::ErrorBody), (status = 503, description = "Every candidate breaker is open", body = crate::error::ErrorBody)))]
pub async fn embeddings(
    state: web::Data<AppState>,
    id: web::ReqData<RequestId>,
    caller: Option<web::ReqData<Caller>>,
    directives: Directives,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    Ok(render::answer(
        pipeline::embeddings(&state, &id, caller.as_deref(), body.0, directives).await?,
    ))
}
