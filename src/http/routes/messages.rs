//! `POST /v1/messages`: Anthropic's Messages API, served by any provider through the same
//! orchestrator as chat; errors in Anthropic's shape.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::domain::RequestId;
use crate::error::ApiError;
use crate::http::body::Body;
use crate::http::error::AnthropicError;
use crate::http::render;
use crate::pipeline::{self, Directives, Front};
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
