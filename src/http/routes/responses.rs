//! `POST /v1/responses` and `POST /v1/completions`: OpenAI's other dialects, bridged to
//! chat-completions providers through the same orchestrator.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::domain::RequestId;
use crate::error::ApiError;
use crate::http::body::Body;
use crate::http::render;
use crate::pipeline::{self, Directives, Front};
use crate::state::AppState;

/// A Responses API request, translated to a chat completion request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResponsesRequest {
    /// Model name, an alias, or `<provider>/<model>`.
    pub model: String,
    /// A string, or an array of input items (messages, `function_call`, `function_call_output`).
    pub input: serde_json::Value,
    /// A system message put first.
    pub instructions: Option<String>,
    /// Function tools.
    pub tools: Option<Vec<serde_json::Value>>,
    /// The Responses API's SSE events when true.
    pub stream: Option<bool>,
}

/// A Responses API `response` object (or, streamed, `response.*` events).
#[derive(Debug, Deserialize, ToSchema)]
pub struct Response {
    /// Response id.
    pub id: String,
    /// `response`.
    pub object: String,
    /// `completed` or `incomplete`.
    pub status: String,
    /// `message` and `function_call` items.
    pub output: Vec<serde_json::Value>,
    /// Token usage.
    pub usage: Option<serde_json::Value>,
}

/// A legacy completions request, translated to a chat completion request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CompletionsRequest {
    /// Model name, an alias, or `<provider>/<model>`.
    pub model: String,
    /// One prompt string.
    pub prompt: serde_json::Value,
    /// Most tokens to generate (16 when absent).
    pub max_tokens: Option<u64>,
    /// Completion chunks when true.
    pub stream: Option<bool>,
}

/// A `text_completion` (or, streamed, its chunks).
#[derive(Debug, Deserialize, ToSchema)]
pub struct TextCompletion {
    /// Completion id.
    pub id: String,
    /// `text_completion`.
    pub object: String,
    /// `{"text", "index", "finish_reason"}` objects.
    pub choices: Vec<serde_json::Value>,
    /// Token usage.
    pub usage: Option<serde_json::Value>,
}

/// The Responses API, JSON or SSE.
#[utoipa::path(post, path = "/v1/responses", tag = "inference", request_body = ResponsesRequest, security(("bearer" = []), ("api_key" = [])), responses((status = 200, description = "A response (JSON), or `response.*` events when `stream` is true", body = Response), (status = 400, description = "Bad request", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong credentials", body = crate::error::ErrorBody), (status = 403, description = "The key may not use this model", body = crate::error::ErrorBody), (status = 404, description = "No enabled provider serves the model", body = crate::error::ErrorBody), (status = 408, description = "The body arrived too slowly", body = crate::error::ErrorBody), (status = 413, description = "Body over limits.max_body_bytes", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody), (status = 502, description = "Every provider failed", body = crate::error::ErrorBody), (status = 503, description = "Every candidate breaker is open", body = crate::error::ErrorBody)))]
pub async fn responses(
    state: web::Data<AppState>,
    id: web::ReqData<RequestId>,
    caller: Option<web::ReqData<Caller>>,
    directives: Directives,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let answer = pipeline::infer(&state, &id, caller.as_deref(), Front::Responses, body.0, directives).await?;
    Ok(render::answer(answer))
}

/// Legacy text completions, JSON or SSE.
#[utoipa::path(post, path = "/v1/completions", tag = "inference", request_body = CompletionsRequest, security(("bearer" = []), ("api_key" = [])), responses((status = 200, description = "A text completion (JSON), or its chunks when `stream` is true", body = TextCompletion), (status = 400, description = "Bad request", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong credentials", body = crate::error::ErrorBody), (status = 403, description = "The key may not use this model", body = crate::error::ErrorBody), (status = 404, description = "No enabled provider serves the model", body = crate::error::ErrorBody), (status = 408, description = "The body arrived too slowly", body = crate::error::ErrorBody), (status = 413, description = "Body over limits.max_body_bytes", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody), (status = 502, description = "Every provider failed", body = crate::error::ErrorBody), (status = 503, description = "Every candidate breaker is open", body = crate::error::ErrorBody)))]
pub async fn completions(
    state: web::Data<AppState>,
    id: web::ReqData<RequestId>,
    caller: Option<web::ReqData<Caller>>,
    directives: Directives,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let answer = pipeline::infer(&state, &id, caller.as_deref(), Front::Completions, body.0, directives).await?;
    Ok(render::answer(answer))
}
