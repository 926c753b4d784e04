//! The OpenAPI document (utoipa), served at `/openapi.json`, and the Swagger UI at `/docs/`
//! (compiled into the binary with `utoipa-swagger-ui`'s `vendored` feature: no download at build
//! time, renders offline).
//!
//! Request bodies that the gateway forwards as bytes are described by the doc-only types of
//! `schemas`; every response type is the one the handler really returns.

use std::sync::Arc;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::routes;

/// Declares the credentials the gateway accepts.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
        );
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Admin-Token"))),
        );
        components.add_security_scheme(
            "worker_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Worker-Token"))),
        );
    }
}

/// The whole API.
#[derive(OpenApi)]
#[openapi(
    info(title = "ai-gateway", description = "An OpenAI-compatible LLM gateway: priority fallback, retries, circuit breakers, history and metrics."),
    paths(
        routes::chat::chat_completions,
        routes::chat::embeddings,
        routes::messages::messages,
        routes::messages::count_tokens,
        routes::responses::responses,
        routes::responses::completions,
        routes::responses_stored::retrieve,
        routes::responses_stored::delete,
        routes::responses_stored::cancel,
        routes::responses_stored::input_items,
        routes::models::list,
        routes::users::chat_completions,
        routes::users::models,
        routes::users::history,
        routes::task::task,
        routes::task::provider_status,
        routes::history::list,
        routes::me::me,
        routes::history::cleanup,
        routes::health::livez,
        routes::health::readyz,
        routes::health::health,
        routes::metrics::metrics,
        routes::metrics::summary,
        routes::dashboard::index,
        routes::nodes::register,
        routes::nodes::register_alias,
        routes::nodes::list,
        routes::nodes::remove,
        routes::nodes::pulse,
        routes::nodes::provision,
        routes::nodes::status,
        routes::nodes::download,
        routes::admin::list_routes,
        routes::admin::create_route,
        routes::admin::update_path_route,
        routes::admin::delete_path_route,
        routes::admin::get_route,
        routes::admin::update_route,
        routes::admin::delete_route,
        routes::admin::list_security,
        routes::admin::put_security,
        routes::admin::delete_security,
        routes::admin::list_users,
        routes::admin::get_user,
        routes::admin::put_user,
        routes::admin::delete_user,
        routes::admin::list_providers,
        routes::admin::get_provider,
        routes::admin::set_provider,
        routes::admin::list_keys,
        routes::admin::create_key,
        routes::admin::revoke_key,
        routes::admin::audit,
        routes::admin::list_teams,
        routes::admin::put_team,
        routes::admin::delete_team,
        routes::admin::list_budgets,
        routes::admin::create_budget,
        routes::admin::put_budget,
        routes::admin::delete_budget,
        routes::admin::list_tags,
        routes::admin::put_tag,
        routes::admin::delete_tag,
        routes::admin::spend,
        openapi_json,
        docs,
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail)),
    modifiers(&Security),
    tags((name = "inference", description = "OpenAI-compatible endpoints, and Anthropic's Messages API"), (name = "tasks"), (name = "operations"), (name = "nodes", description = "GPU node pool: registry, heartbeats, provisioning, worker jobs"), (name = "admin", description = "Seed 002's admin API: routes, endpoint security, users, providers, keys, teams, budgets and tags, stored in the database and applied by every replica; the spend report"))
)]
pub struct ApiDoc;

/// The document as JSON.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "This OpenAPI document")))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

/// The Swagger UI (`/docs/`), served from the binary.
#[utoipa::path(get, path = "/docs/", tag = "operations", responses((status = 200, description = "Swagger UI")))]
pub async fn docs(tail: Option<web::Path<String>>) -> HttpResponse {
    let config = Arc::new(utoipa_swagger_ui::Config::from("/openapi.json"));
    let tail = tail.map(|t| t.into_inner()).unwrap_or_default();
    match utoipa_swagger_ui::serve(&tail, config) {
        Ok(Some(file)) => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, file.content_type))
            .body(file.bytes.to_vec()),
        Ok(None) => HttpResponse::NotFound().finish(),
        Err(e) => {
            tracing::error!(error = %e, "swagger ui");
            HttpResponse::InternalServerError().finish()
        }
    }
}
