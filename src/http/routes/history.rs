//! `GET /history` and `POST /history/cleanup` (seed 004's shapes).

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::history::HistoryQuery;
use crate::pipeline;
use crate::state::AppState;

/// Recent requests, newest first; filters `limit`, `before`, `status`, `provider`, `model`, `since`.
pub async fn list(state: web::Data<AppState>, query: web::Query<HistoryQuery>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(pipeline::history(&state, query.into_inner()).await?))
}

/// `POST /history/cleanup` parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cleanup {
    /// Only error rows older than this.
    pub older_than_minutes: Option<u64>,
}

/// Deletes error rows; answers `{"deleted": N}`.
pub async fn cleanup(state: web::Data<AppState>, query: web::Query<Cleanup>) -> Result<HttpResponse, ApiError> {
    let deleted = pipeline::cleanup(&state, query.older_than_minutes).await?;
    Ok(HttpResponse::Ok().json(json!({ "deleted": deleted })))
}
