//! `GET /livez`, `GET /readyz`, `GET /health`. No credentials needed.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::pipeline;
use crate::state::AppState;

/// 200 while the process runs.
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// 200 when at least one provider is usable, else 503.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if pipeline::ready(&state) {
        HttpResponse::Ok().json(json!({"status": "ready"}))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({"status": "not_ready", "reason": "no usable provider"}))
    }
}

/// Version, uptime and each provider's breaker.
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(pipeline::health(&state))
}
