//! `GET /history` and `POST /history/cleanup` (seed 004's shapes).

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::domain::BodyError;
use crate::error::ApiError;
use crate::history::HistoryQuery;
use crate::http::body::Body;
use crate::pipeline;
use crate::state::AppState;

/// Recent requests, newest first; filters `limit`, `before`, `status`, `provider`, `model`, `since`.
pub async fn list(state: web::Data<AppState>, query: web::Query<HistoryQuery>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(pipeline::history(&state, query.into_inner()).await?))
}

/// `POST /history/cleanup` parameters, as a query string or (seed 004) a JSON body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cleanup {
    /// Only error rows older than this.
    pub older_than_minutes: Option<u64>,
}

/// Deletes error rows; answers `{"deleted": N}`.
pub async fn cleanup(
    state: web::Data<AppState>,
    query: web::Query<Cleanup>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let from_body: Cleanup = if body.0.iter().all(u8::is_ascii_whitespace) {
        Cleanup::default()
    } else {
        serde_json::from_slice(&body.0).map_err(|e| {
            ApiError::InvalidRequest(BodyError {
                message: format!("the body must be {{\"older_than_minutes\": N}} or empty: {e}"),
                param: Some("older_than_minutes".into()),
                code: "invalid_value",
            })
        })?
    };
    let older_than = query.older_than_minutes.or(from_body.older_than_minutes);
    let deleted = pipeline::cleanup(&state, older_than).await?;
    Ok(HttpResponse::Ok().json(json!({ "deleted": deleted })))
}
