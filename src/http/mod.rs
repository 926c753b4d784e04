//! The only code that knows actix-web: route table, extractors, rendering, error responses.
//!
//! Depends on `pipeline`, `state`, `error` and `domain`. Handlers extract, make one pipeline call
//! and render; business rules live below this layer.

pub mod body;
pub mod error;
pub mod middleware;
pub mod render;
pub mod routes;

use actix_web::{HttpRequest, HttpResponse, Resource, Route, web};

use crate::domain::BodyError;
use crate::error::ApiError;

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource(
        "/v1/chat/completions",
        web::post().to(routes::chat::chat_completions),
    ))
    .service(resource("/v1/embeddings", web::post().to(routes::chat::embeddings)))
    .service(resource("/v1/models", web::get().to(routes::models::list)))
    .service(resource("/livez", web::get().to(routes::health::livez)))
    .service(resource("/readyz", web::get().to(routes::health::readyz)))
    .service(resource("/health", web::get().to(routes::health::health)))
    .service(resource("/history", web::get().to(routes::history::list)))
    .service(resource("/history/cleanup", web::post().to(routes::history::cleanup)))
    .service(resource("/metrics", web::get().to(routes::metrics::metrics)))
    .app_data(web::QueryConfig::default().error_handler(|e, _| query_error(e).into()));
}

/// actix's query rejections, in the OpenAI error shape.
fn query_error(e: actix_web::error::QueryPayloadError) -> ApiError {
    ApiError::InvalidRequest(BodyError {
        message: format!("invalid query parameters: {e}"),
        param: None,
        code: "invalid_value",
    })
}

/// A resource whose other methods get 405 in the OpenAI error shape instead of actix's empty body.
fn resource(path: &str, route: Route) -> Resource {
    web::resource(path)
        .route(route)
        .default_service(web::to(method_not_allowed))
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed {
        method: req.method().to_string(),
        path: req.path().to_owned(),
    })
}

/// The app's default service: 404 in the OpenAI error shape.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound {
        method: req.method().to_string(),
        path: req.path().to_owned(),
    })
}
