//! `GET /v1/models`.

use actix_web::{HttpResponse, web};

use crate::pipeline;
use crate::state::AppState;

/// Models of enabled providers, in OpenAI's list shape.
pub async fn list(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(pipeline::models(&state).await)
}
