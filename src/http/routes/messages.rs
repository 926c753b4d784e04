//! `POST /v1/messages`: Anthropic's Messages API, served by any provider through the same
//! orchestrator as chat; errors in Anthropic's shape.

use actix_web::{HttpResponse, web};

use crate::auth::Caller;
use crate::domain::RequestId;
use crate::error::ApiError;
use crate::http::body::Body;
use crate::http::error::AnthropicError;
use crate::http::render;
use crate::pipeline::{self, Front};
use crate::state::AppState;

/// Anthropic messages, JSON or SSE.
pub async fn messages(
    state: web::Data<AppState>,
    id: web::ReqData<RequestId>,
    caller: Option<web::ReqData<Caller>>,
    body: Result<Body, ApiError>,
) -> Result<HttpResponse, AnthropicError> {
    let body = body?;
    let answer = pipeline::infer(&state, &id, caller.as_deref(), Front::Messages, body.0).await?;
    Ok(render::answer(answer))
}
