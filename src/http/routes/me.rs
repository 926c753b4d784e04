//! `GET /api/v1/me`: the calling key's own spend and budgets.

use actix_web::{HttpResponse, web};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::pipeline;
use crate::state::AppState;

/// The caller's spend today and this month, and every budget that applies to it with what remains.
#[utoipa::path(get, path = "/api/v1/me", tag = "operations", security(("bearer" = []), ("api_key" = [])), responses((status = 200, description = "The caller's spend and budgets", body = crate::pipeline::Me), (status = 401, description = "Missing or wrong credentials", body = crate::error::ErrorBody)))]
pub async fn me(state: web::Data<AppState>, caller: web::ReqData<Caller>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(pipeline::me(&state, &caller).await?))
}
