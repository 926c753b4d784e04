//! `GET /metrics`: Prometheus text exposition, no credentials needed; `GET /api/v1/metrics`: JSON
//! summaries (seed 002), admin token.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

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

/// `GET /api/v1/metrics` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    /// `latency`, `errors`, `traffic` (or a comma list); all three when missing.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// Keep only endpoints whose name contains this (`/chat`).
    pub endpoint: Option<String>,
}

/// Latency (p50/p95/p99), error and traffic summaries per endpoint and provider, as JSON (admin).
#[utoipa::path(get, path = "/api/v1/metrics", tag = "operations", params(SummaryQuery), security(("admin_token" = [])), responses((status = 200, description = "The summaries asked for", body = crate::metrics::MetricsSummary), (status = 400, description = "Unknown type", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled (no INTERNAL_API_TOKEN)", body = crate::error::ErrorBody)))]
pub async fn summary(state: web::Data<AppState>, query: web::Query<SummaryQuery>) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    Ok(HttpResponse::Ok().json(pipeline::metrics_summary(
        &state,
        q.kind.as_deref(),
        q.endpoint.as_deref(),
    )?))
}
