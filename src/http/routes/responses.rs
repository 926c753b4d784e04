//! `POST /v1/responses` and `POST /v1/completions`: OpenAI's other dialects, bridged to
//! chat-completions providers through the same orchestrator.

use actix_web::{HttpResponse, web};

use crate::auth::Caller;
use crate::domain::RequestId;
use crate::error::ApiError;
use crate::http::body::Body;
use crate::http::render;
use crate::pipeline::{self, Front};
use crate::state::AppState;

/// The Responses API, JSON or SSE.
pub async fn responses(
    state: web::Data<AppState>,
    id: web::ReqData<RequestId>,
    caller: Option<web::ReqData<Caller>>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let answer = pipeline::infer(&state, &id, caller.as_deref(), Front::Responses, body.0).await?;
    Ok(render::answer(answer))
}

/// Legacy text completions, JSON or SSE.
pub async fn completions(
    state: web::Data<AppState>,
    id: web::ReqData<RequestId>,
    caller: Option<web::ReqData<Caller>>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let answer = pipeline::infer(&state, &id, caller.as_deref(), Front::Completions, body.0).await?;
    Ok(render::answer(answer))
}
