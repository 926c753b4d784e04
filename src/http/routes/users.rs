//! Per-user namespaces (seed 001): `POST /api/u/{user}/chat/completions`,
//! `GET /api/u/{user}/models` and `GET /api/u/{user}/history`. `{user}` must be the caller (a virtual key's name or a JWT `sub`);
//! the user sees only the routes and providers `users:` grants them.

use actix_web::{HttpResponse, web};

use crate::auth::Caller;
use crate::domain::RequestId;
use crate::error::ApiError;
use crate::http::body::Body;
use crate::http::render;
use crate::pipeline::{self, Directives};
use crate::state::AppState;
use crate::store::HistoryQuery;

/// Chat completions in a user's namespace, JSON or SSE: the same pipeline as
/// `/v1/chat/completions`, limited to what is granted to the user.
#[utoipa::path(post, path = "/api/u/{user}/chat/completions", tag = "inference", params(("user" = String, Path, description = "The caller's user name: its virtual key's name or its JWT `sub`")), request_body = crate::http::schemas::ChatCompletionRequest, security(("bearer" = []), ("api_key" = [])), responses((status = 200, description = "A chat completion (JSON), or `text/event-stream` chunks when `stream` is true", body = crate::http::schemas::ChatCompletion), (status = 400, description = "Bad request", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong credentials", body = crate::error::ErrorBody), (status = 403, description = "The caller is not this user, or the model is not granted to them", body = crate::error::ErrorBody), (status = 404, description = "No enabled provider serves the model", body = crate::error::ErrorBody), (status = 408, description = "The body arrived too slowly", body = crate::error::ErrorBody), (status = 413, description = "Body over limits.max_body_bytes", body = crate::error::ErrorBody), (status = 429, description = "Rate limited", body = crate::error::ErrorBody), (status = 502, description = "Every provider failed", body = crate::error::ErrorBody), (status = 503, description = "Every candidate breaker is open", body = crate::error::ErrorBody)))]
pub async fn chat_completions(
    state: web::Data<AppState>,
    id: web::ReqData<RequestId>,
    caller: Option<web::ReqData<Caller>>,
    user: web::Path<String>,
    directives: Directives,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    Ok(render::answer(
        pipeline::user_chat(&state, &id, caller.as_deref(), &user, body.0, directives).await?,
    ))
}

/// The routes and models a user may ask for, in OpenAI's list shape.
#[utoipa::path(get, path = "/api/u/{user}/models", tag = "inference", params(("user" = String, Path, description = "The caller's user name: its virtual key's name or its JWT `sub`")), security(("bearer" = []), ("api_key" = [])), responses((status = 200, description = "Routes and models granted to the user", body = crate::pipeline::ModelList), (status = 401, description = "Missing or wrong credentials", body = crate::error::ErrorBody), (status = 403, description = "The caller is not this user", body = crate::error::ErrorBody)))]
pub async fn models(
    state: web::Data<AppState>,
    caller: Option<web::ReqData<Caller>>,
    user: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(pipeline::user_models(&state, caller.as_deref(), &user).await?))
}

/// The user's own requests, newest first, with `/history`'s filters.
#[utoipa::path(get, path = "/api/u/{user}/history", tag = "operations", params(("user" = String, Path, description = "The caller's user name: its virtual key's name or its JWT `sub`"), crate::store::HistoryQuery), security(("bearer" = []), ("api_key" = [])), responses((status = 200, description = "The user's requests (those of every virtual key issued under the name, and of the JWT subject), newest first", body = Vec<crate::store::HistoryItem>), (status = 400, description = "Bad parameter", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong credentials", body = crate::error::ErrorBody), (status = 403, description = "The caller is not this user", body = crate::error::ErrorBody)))]
pub async fn history(
    state: web::Data<AppState>,
    caller: Option<web::ReqData<Caller>>,
    user: web::Path<String>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let rows = pipeline::user_history(&state, caller.as_deref(), &user, query.into_inner()).await?;
    Ok(HttpResponse::Ok().json(rows))
}
