//! `GET /v1/models`.

use actix_web::{HttpResponse, web};

use crate::pipeline;
use crate::state::AppState;

/// Models of enabled providers, in OpenAI's list shape.
#[utoipa::path(get, path = "/v1/models", tag = "inference", security(("bearer" = []), ("api_key" = [])), responses((status = 200, description = "Models of enabled providers", body = crate::pipeline::ModelList), (status = 401, description = "Missing or wrong credentials", body = crate::error::ErrorBody)))]
pub async fn list(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(pipeline::models(&state).await)
}
