//! `POST /v1/chat/completions` and `POST /v1/embeddings`.

use actix_web::{HttpResponse, web};

use crate::auth::Caller;
use crate::domain::RequestId;
use crate::error::ApiError;
use crate::http::body::Body;
use crate::http::render;
use crate::pipeline;
use crate::state::AppState;

/// OpenAI chat completions, JSON or SSE.
pub async fn chat_completions(
    state: web::Data<AppState>,
    id: web::ReqData<RequestId>,
    caller: Option<web::ReqData<Caller>>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    Ok(render::answer(
        pipeline::chat(&state, &id, caller.as_deref(), body.0).await?,
    ))
}

/// OpenAI embeddings.
pub async fn embeddings(
    state: web::Data<AppState>,
    id: web::ReqData<RequestId>,
    caller: Option<web::ReqData<Caller>>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    Ok(render::answer(
        pipeline::embeddings(&state, &id, caller.as_deref(), body.0).await?,
    ))
}
