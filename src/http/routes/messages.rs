//! `POST /v1/messages`: Anthropic's Messages API, served by any provider through the same
//! orchestrator as chat, and `POST /v1/messages/count_tokens`, its Token Counting API; errors in
//! Anthropic's shape, unknown paths under `/v1/messages/` included.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::domain::RequestId;
use crate::error::ApiError;
use crate::http::body::Body;
use crate::http::error::AnthropicError;
use crate::http::render;
use crate::pipeline::{self, Directives, Front, TokenCount};
use crate::state::AppState;

/// An Anthropic Messages request. Only `model`, `messages` and `stream` are read; the body goes to
/// Anthropic providers as sent and is translated for the others.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MessagesRequest {
    /// Model name, an alias, or `<provider>/<model>`.
    pub model: String,
    /// The conversation: `{"role": "user" | "assistant", "content"}` objects.
    pub messages: Vec<serde_json::Value>,
    /// Most tokens to generate (Anthropic providers require it).
    pub max_tokens: Option<u64>,
    /// Anthropic's named SSE events when true.
    pub stream: Option<bool>,
}

/// An Anthropic `message` (or, streamed, `message_start` ... `message_stop` events).
#[derive(Debug, Deserialize, ToSchema)]
pub struct Message {
    /// Message id.
    pub id: String,
    /// `message`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Content blocks (`text`, `tool_use`).
    pub content: Vec<serde_json::Value>,
    /// Why generation stopped.
    pub stop_reason: Option<String>,
    /// `input_tokens`, `output_tokens`.
    pub usage: serde_json::Value,
}

/// Anthropic messages, JSON or SSE.
#[utoipa::path(post, path = "/v1/messages", tag = "inference", request_body = MessagesRequest, security(("bearer" = []), ("api_key" = [])), responses((status = 200, description = "A message (JSON), or Anthropic's `text/event-stream` events when `stream` is true", body = Message), (status = 400, description = "Bad request", body = crate::error::AnthropicErrorBody), (status = 401, description = "Missing or wrong credentials", body = crate::error::AnthropicErrorBody), (status = 403, description = "The key may not use this model", body = crate::error::AnthropicErrorBody), (status = 404, description = "No enabled provider serves the model", body = crate::error::AnthropicErrorBody), (status = 408, description = "The body arrived too slowly", body = crate::error::AnthropicErrorBody), (status = 413, description = "Body over limits.max_body_bytes", body = crate::error::AnthropicErrorBody), (status = 429, description = "Rate limited", body = crate::error::AnthropicErrorBody), (status = 502, description = "Every provider failed", body = crate::error::AnthropicErrorBody), (status = 503, description = "Every candidate breaker is open", body = crate::error::AnthropicErrorBody)))]
pub async fn messages(
    state: web::Data<AppState>,
    id: web::ReqData<RequestId>,
    caller: Option<web::ReqData<Caller>>,
    directives: Directives,
    body: Result<Body, ApiError>,
) -> Result<HttpResponse, AnthropicError> {
    let body = body?;
    let answer = pipeline::infer(&state, &id, caller.as_deref(), Front::Messages, body.0, directives).await?;
    Ok(render::answer(answer))
}

/// Says that a `count_tokens` answer is the gateway's estimate, not the provider's own count.
const TOKEN_COUNT_HEADER: &str = "x-ai-gateway-token-count";

/// An Anthropic Token Counting request: a Messages request without `max_tokens` (`model`,
/// `messages`, `system`, `tools`, `tool_choice`, `thinking`). Only `model` and `messages` are read
/// for routing.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CountTokensRequest {
    /// Model name, an alias, or `<provider>/<model>`.
    pub model: String,
    /// The conversation, as on `/v1/messages`.
    pub messages: Vec<serde_json::Value>,
}

/// The input tokens the request would use.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenCountAnswer {
    /// Tokens in `system`, `messages` and `tools`.
    pub input_tokens: u64,
}

/// Counts a Messages request's input tokens: an Anthropic provider's own count, else the gateway's
/// estimate (o200k_base), marked `x-ai-gateway-token-count: estimate`.
#[utoipa::path(post, path = "/v1/messages/count_tokens", tag = "inference", request_body = CountTokensRequest, security(("bearer" = []), ("api_key" = [])), responses((status = 200, description = "The count; with `x-ai-gateway-token-count: estimate` when the gateway estimated it (the model's provider does not speak Anthropic's protocol)", body = TokenCountAnswer), (status = 400, description = "Bad request", body = crate::error::AnthropicErrorBody), (status = 401, description = "Missing or wrong credentials", body = crate::error::AnthropicErrorBody), (status = 403, description = "The key may not use this model", body = crate::error::AnthropicErrorBody), (status = 404, description = "No enabled provider serves the model", body = crate::error::AnthropicErrorBody), (status = 429, description = "Rate limited", body = crate::error::AnthropicErrorBody), (status = 502, description = "Every provider failed", body = crate::error::AnthropicErrorBody), (status = 503, description = "Every candidate breaker is open", body = crate::error::AnthropicErrorBody)))]
pub async fn count_tokens(
    state: web::Data<AppState>,
    id: web::ReqData<RequestId>,
    caller: Option<web::ReqData<Caller>>,
    directives: Directives,
    body: Result<Body, ApiError>,
) -> Result<HttpResponse, AnthropicError> {
    let body = body?;
    match pipeline::count_tokens(&state, &id, caller.as_deref(), body.0, directives).await? {
        TokenCount::Counted(answer) => Ok(render::answer(answer)),
        TokenCount::Estimated { body, provider } => {
            let mut response = HttpResponse::Ok();
            response
                .insert_header((CONTENT_TYPE, "application/json"))
                .insert_header((TOKEN_COUNT_HEADER, "estimate"))
                .insert_header(("x-ai-gateway-attempts", "0"));
            if let Some(provider) = provider {
                response.insert_header(("x-ai-gateway-provider", provider.as_str()));
            }
            Ok(response.body(body))
        }
    }
}

/// Any other path under `/v1/messages/` (batches, say, which the gateway does not serve): 404 in
/// Anthropic's shape, as Anthropic's SDKs expect there.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, AnthropicError> {
    Err(AnthropicError(ApiError::RouteNotFound {
        method: req.method().to_string(),
        path: req.path().to_owned(),
    }))
}
