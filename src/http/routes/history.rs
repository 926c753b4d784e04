//! `GET /history` and `POST /history/cleanup` (seed 004's shapes).

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Caller;
use crate::dialects::BodyError;
use crate::error::ApiError;
use crate::http::body::Body;
use crate::http::middleware::auth::AdminAccess;
use crate::pipeline::{self, Viewer};
use crate::state::AppState;
use crate::store::HistoryQuery;

/// Recent requests, newest first; filters `limit`, `before`, `status`, `provider`, `model`,
/// `session` (the agent session recorded as `session_id`), `since`.
/// A client key or JWT sees its own requests; the admin token sees everyone's.
#[utoipa::path(get, path = "/history", tag = "operations", params(crate::store::HistoryQuery), security(("bearer" = []), ("api_key" = []), ("admin_token" = [])), responses((status = 200, description = "Recent requests, newest first: the caller's own, or every caller's with the admin token", body = Vec<crate::store::HistoryItem>), (status = 400, description = "Bad parameter", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong credentials", body = crate::error::ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Option<web::ReqData<Caller>>,
    admin: Option<web::ReqData<AdminAccess>>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let viewer = match admin {
        Some(_) => Viewer::Operator,
        None => Viewer::Client(caller.as_deref()),
    };
    Ok(HttpResponse::Ok().json(pipeline::history(&state, viewer, query.into_inner()).await?))
}

/// `POST /history/cleanup` parameters, as a query string or (seed 004) a JSON body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cleanup {
    /// Only error rows older than this.
    pub older_than_minutes: Option<u64>,
}

/// Deletes error rows; answers `{"deleted": N}`.
#[utoipa::path(post, path = "/history/cleanup", tag = "operations", params(("older_than_minutes" = Option<u64>, Query, description = "Only error rows older than this")), request_body(content = Option<crate::http::schemas::CleanupRequest>, description = "Optional, as seed 004 sends it"), security(("admin_token" = [])), responses((status = 200, description = "How many rows were deleted", body = crate::http::schemas::CleanupResponse), (status = 400, description = "Bad parameter", body = crate::error::ErrorBody), (status = 429, description = "Rate limited (5 per minute by default)", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody)))]
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
