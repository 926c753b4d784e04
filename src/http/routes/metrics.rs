//! `GET /metrics`: Prometheus text exposition. No credentials needed.

use actix_web::{HttpResponse, web};

use crate::error::ApiError;
use crate::pipeline;
use crate::state::AppState;

/// Every metric family in Prometheus text format 0.0.4.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(pipeline::metrics_text(&state)?))
}
