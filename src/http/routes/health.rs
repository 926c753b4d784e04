//! `GET /livez`, `GET /readyz`, `GET /health`. No credentials needed.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::pipeline;
use crate::state::AppState;

/// 200 while the process runs.
#[utoipa::path(get, path = "/livez", tag = "operations", responses((status = 200, description = "The process runs")))]
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// 200 when at least one provider is usable, else 503.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "At least one provider is usable"), (status = 503, description = "No usable provider")))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if pipeline::ready(&state) {
        HttpResponse::Ok().json(json!({"status": "ready"}))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({"status": "not_ready", "reason": "no usable provider"}))
    }
}

/// Version, uptime and each provider's breaker.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, description = "Version, uptime, providers with breaker states, history writer", body = crate::pipeline::Health)))]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(pipeline::health(&state))
}
