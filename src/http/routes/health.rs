//! `GET /livez`, `GET /readyz` (and its `scope=process`), `GET /health`. No credentials needed.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::dialects::BodyError;
use crate::error::ApiError;

use crate::pipeline;
use crate::state::AppState;

/// 200 while the process runs.
#[utoipa::path(get, path = "/livez", tag = "operations", responses((status = 200, description = "The process runs")))]
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `/readyz` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadyQuery {
    /// `process`: ready once the config is loaded and the listener is up, whatever the providers'
    /// state (a Kubernetes readiness probe, so a provider outage never pulls every pod).
    /// Absent: ready when at least one provider is usable.
    pub scope: Option<String>,
}

/// 200 when at least one provider is usable, else 503; with `scope=process`, 200 while the
/// process serves. Either way 503 once shutdown has begun.
#[utoipa::path(get, path = "/readyz", tag = "operations", params(ReadyQuery), responses((status = 200, description = "At least one provider is usable; with `scope=process`, the process serves"), (status = 400, description = "Unknown scope", body = crate::error::ErrorBody), (status = 503, description = "No usable provider, or shutting down")))]
pub async fn readyz(state: web::Data<AppState>, query: web::Query<ReadyQuery>) -> Result<HttpResponse, ApiError> {
    let scope = query.scope.as_deref();
    if state.shutdown.draining() && matches!(scope, None | Some("process")) {
        // Shutting down: load balancers stop sending here while requests are still served.
        return Ok(HttpResponse::ServiceUnavailable().json(json!({"status": "not_ready", "reason": "shutting down"})));
    }
    match scope {
        // Answering at all proves the config loaded (the state is built from it) and the listener is up.
        Some("process") => Ok(HttpResponse::Ok().json(json!({"status": "ready", "scope": "process"}))),
        Some(other) => Err(ApiError::InvalidRequest(BodyError {
            message: format!("scope: unknown value `{other}`; the only scope is `process`"),
            param: Some("scope".into()),
            code: "invalid_value",
        })),
        None if pipeline::ready(&state) => Ok(HttpResponse::Ok().json(json!({"status": "ready"}))),
        None => {
            Ok(HttpResponse::ServiceUnavailable().json(json!({"status": "not_ready", "reason": "no usable provider"})))
        }
    }
}

/// Version, uptime and each provider's breaker.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, description = "Version, uptime, providers with breaker states, history writer", body = crate::pipeline::Health)))]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(pipeline::health(&state))
}
