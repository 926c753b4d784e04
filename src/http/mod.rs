//! The only code that knows actix-web: route table, extractors, rendering, error responses.
//!
//! Depends on `pipeline`, `state`, `error` and `domain`. Handlers extract, make one pipeline call
//! and render; business rules live below this layer.

pub mod body;
mod directives;
pub mod error;
pub mod middleware;
pub mod openapi;
pub mod render;
pub mod routes;
pub mod schemas;

use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, Resource, Route, web};

use crate::dialects::BodyError;
use crate::error::ApiError;

/// Who may call a route (the issue-4 table): probes and docs are open, health and metrics too
/// unless `observability.token` is set; inference and
/// reads need a client key or JWT; operator routes need the admin token; heartbeats the worker
/// token.
#[derive(Debug, Clone, Copy)]
enum Access {
    Open,
    Client,
    /// `Client`, with every refusal in Anthropic's error shape (`/v1/messages`).
    AnthropicClient,
    /// `Client`, or the admin token, which sees every caller's data (`/history`, job status and
    /// download).
    ClientOrAdmin,
    Admin,
    Worker,
    /// Open unless `observability.token` is set (`/metrics`, `/health`).
    Observability,
}

/// Registers every route with its access level.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use routes::{chat, dashboard, health, history, messages, metrics, models, nodes, responses, task, users};
    add(
        cfg,
        "/v1/chat/completions",
        Access::Client,
        web::post().to(chat::chat_completions),
    );
    add(
        cfg,
        "/v1/messages",
        Access::AnthropicClient,
        web::post().to(messages::messages),
    );
    add(
        cfg,
        "/v1/messages/count_tokens",
        Access::AnthropicClient,
        web::post().to(messages::count_tokens),
    );
    // Other paths under `/v1/messages/` (batches, ...) are not served: 404 in Anthropic's shape.
    cfg.service(web::resource("/v1/messages/{tail:.*}").to(messages::not_found));
    add(
        cfg,
        "/v1/responses",
        Access::Client,
        web::post().to(responses::responses),
    );
    // Responses the gateway answered: the caller that made them, or the admin token.
    add_routes(
        cfg,
        "/v1/responses/{response_id}",
        Access::ClientOrAdmin,
        vec![
            web::get().to(routes::responses_stored::retrieve),
            web::delete().to(routes::responses_stored::delete),
        ],
    );
    add(
        cfg,
        "/v1/responses/{response_id}/cancel",
        Access::ClientOrAdmin,
        web::post().to(routes::responses_stored::cancel),
    );
    add(
        cfg,
        "/v1/responses/{response_id}/input_items",
        Access::ClientOrAdmin,
        web::get().to(routes::responses_stored::input_items),
    );
    add(
        cfg,
        "/v1/completions",
        Access::Client,
        web::post().to(responses::completions),
    );
    add(cfg, "/v1/embeddings", Access::Client, web::post().to(chat::embeddings));
    add(cfg, "/v1/models", Access::Client, web::get().to(models::list));
    // Per-user namespaces (seed 001).
    add(
        cfg,
        "/api/u/{user}/chat/completions",
        Access::Client,
        web::post().to(users::chat_completions),
    );
    add(
        cfg,
        "/api/u/{user}/models",
        Access::Client,
        web::get().to(users::models),
    );
    add(
        cfg,
        "/api/u/{user}/history",
        Access::Client,
        web::get().to(users::history),
    );
    add(cfg, "/history", Access::ClientOrAdmin, web::get().to(history::list));
    add(cfg, "/api/v1/me", Access::Client, web::get().to(routes::me::me));
    add(cfg, "/ai/task", Access::Client, web::post().to(task::task));
    add(
        cfg,
        "/provider/status",
        Access::Client,
        web::get().to(task::provider_status),
    );
    add(cfg, "/history/cleanup", Access::Admin, web::post().to(history::cleanup));
    add(cfg, "/livez", Access::Open, web::get().to(health::livez));
    add(cfg, "/readyz", Access::Open, web::get().to(health::readyz));
    add(cfg, "/health", Access::Observability, web::get().to(health::health));
    add(cfg, "/metrics", Access::Observability, web::get().to(metrics::metrics));
    add(cfg, "/api/v1/metrics", Access::Admin, web::get().to(metrics::summary));
    add(cfg, "/", Access::Open, web::get().to(dashboard::index));
    add(cfg, "/static/app.js", Access::Open, web::get().to(dashboard::script));
    add(cfg, "/static/app.css", Access::Open, web::get().to(dashboard::style));
    add(cfg, "/openapi.json", Access::Open, web::get().to(openapi::openapi_json));
    add(cfg, "/docs", Access::Open, web::get().to(redirect_to_docs));
    add(cfg, "/docs/", Access::Open, web::get().to(openapi::docs));
    add(cfg, "/docs/{tail:.*}", Access::Open, web::get().to(openapi::docs));
    // GPU node pool (seed 000).
    add(cfg, "/register", Access::Admin, web::post().to(nodes::register));
    add_routes(
        cfg,
        "/nodes",
        Access::Admin,
        vec![web::get().to(nodes::list), web::post().to(nodes::register_alias)],
    );
    add(cfg, "/nodes/provision", Access::Admin, web::post().to(nodes::provision));
    add(cfg, "/nodes/{url:.*}", Access::Admin, web::delete().to(nodes::remove));
    add(cfg, "/pulse", Access::Worker, web::post().to(nodes::pulse));
    add(
        cfg,
        "/status/{job_id}",
        Access::ClientOrAdmin,
        web::get().to(nodes::status),
    );
    add(
        cfg,
        "/download/{job_id}",
        Access::ClientOrAdmin,
        web::get().to(nodes::download),
    );
    admin_api(cfg);
    cfg.app_data(web::QueryConfig::default().error_handler(|e, _| query_error(e).into()));
    worker_catch_all(cfg);
}

/// Seed 002's admin REST API (`routes::admin`), all behind the admin token.
fn admin_api(cfg: &mut web::ServiceConfig) {
    use routes::admin;
    let admin_routes = |cfg: &mut web::ServiceConfig, path: &str, routes: Vec<Route>| {
        add_routes(cfg, path, Access::Admin, routes);
    };
    admin_routes(
        cfg,
        "/api/v1/routes",
        vec![
            web::get().to(admin::list_routes),
            web::post().to(admin::create_route),
            web::put().to(admin::update_path_route),
            web::delete().to(admin::delete_path_route),
        ],
    );
    admin_routes(
        cfg,
        "/api/v1/routes/{name}",
        vec![
            web::get().to(admin::get_route),
            web::put().to(admin::update_route),
            web::delete().to(admin::delete_route),
        ],
    );
    admin_routes(cfg, "/api/v1/security", vec![web::get().to(admin::list_security)]);
    admin_routes(
        cfg,
        "/api/v1/security/{endpoint:.*}",
        vec![
            web::put().to(admin::put_security),
            web::delete().to(admin::delete_security),
        ],
    );
    admin_routes(cfg, "/api/v1/users", vec![web::get().to(admin::list_users)]);
    admin_routes(
        cfg,
        "/api/v1/users/{name}",
        vec![
            web::get().to(admin::get_user),
            web::put().to(admin::put_user),
            web::delete().to(admin::delete_user),
        ],
    );
    admin_routes(cfg, "/api/v1/providers", vec![web::get().to(admin::list_providers)]);
    admin_routes(
        cfg,
        "/api/v1/providers/{id}",
        vec![web::get().to(admin::get_provider), web::put().to(admin::set_provider)],
    );
    admin_routes(
        cfg,
        "/api/v1/keys",
        vec![web::get().to(admin::list_keys), web::post().to(admin::create_key)],
    );
    admin_routes(cfg, "/api/v1/keys/{id}", vec![web::delete().to(admin::revoke_key)]);
    admin_routes(cfg, "/api/v1/audit", vec![web::get().to(admin::audit)]);
    spend_api(cfg);
}

/// The admin API's spend side: teams, budgets, tags and the spend report. A budget's id, a
/// user-scoped one's name especially, may hold a `/`, so item paths take the rest of the path.
fn spend_api(cfg: &mut web::ServiceConfig) {
    use routes::admin;
    let admin_routes = |cfg: &mut web::ServiceConfig, path: &str, routes: Vec<Route>| {
        add_routes(cfg, path, Access::Admin, routes);
    };
    admin_routes(cfg, "/api/v1/teams", vec![web::get().to(admin::list_teams)]);
    admin_routes(
        cfg,
        "/api/v1/teams/{name:.*}",
        vec![web::put().to(admin::put_team), web::delete().to(admin::delete_team)],
    );
    admin_routes(
        cfg,
        "/api/v1/budgets",
        vec![web::get().to(admin::list_budgets), web::post().to(admin::create_budget)],
    );
    admin_routes(
        cfg,
        "/api/v1/budgets/{id:.*}",
        vec![web::put().to(admin::put_budget), web::delete().to(admin::delete_budget)],
    );
    admin_routes(cfg, "/api/v1/tags", vec![web::get().to(admin::list_tags)]);
    admin_routes(
        cfg,
        "/api/v1/tags/{name:.*}",
        vec![web::put().to(admin::put_tag), web::delete().to(admin::delete_tag)],
    );
    admin_routes(cfg, "/api/v1/spend", vec![web::get().to(admin::spend)]);
}

/// The catch-all, registered last: a path under a path route (any method; the snapshot's table
/// decides per request, so routes added at run time apply at once) or, else, a POST for seed
/// 000's GPU nodes (404 without a node pool or outside every pool's `worker_paths`). Every
/// request it takes has its path canonicalised first (`middleware::canonical`). Other requests
/// do not match it and get the default 404, as before path routes existed.
fn worker_catch_all(cfg: &mut web::ServiceConfig) {
    use middleware::{auth, rate_limit::rate_limit};
    // A path without a canonical form is taken too, so the canonical middleware answers it 400
    // whatever its method (built-in routes were matched before this one, so none is shadowed).
    let serves = actix_web::guard::fn_guard(|ctx| {
        ctx.head().method == actix_web::http::Method::POST
            || match crate::pipeline::canonical_path(ctx.head().uri.path()) {
                Err(_) => true,
                Ok(path) => ctx
                    .app_data::<web::Data<crate::state::AppState>>()
                    .is_some_and(|s| crate::pipeline::is_path_route(s, &path.path)),
            }
    });
    cfg.service(
        web::resource("/{path:.*}")
            .guard(serves)
            .to(routes::paths::dispatch)
            .wrap(from_fn(rate_limit))
            .wrap(from_fn(auth::client))
            .wrap(from_fn(middleware::canonical::canonical)),
    );
}

/// Credentials first, then idempotency (it applies to the inference routes only), then limits
/// (actix runs the last `wrap` outermost); on `/v1/messages` the dialect marker runs before all,
/// so their refusals come in Anthropic's shape.
fn add(cfg: &mut web::ServiceConfig, path: &str, access: Access, route: Route) {
    add_routes(cfg, path, access, vec![route]);
}

/// `add` for a path served with several methods.
fn add_routes(cfg: &mut web::ServiceConfig, path: &str, access: Access, routes: Vec<Route>) {
    use middleware::{auth, idempotency::idempotency, rate_limit::rate_limit};
    let r = resource(path, routes);
    match access {
        Access::Open => cfg.service(r),
        Access::Client => cfg.service(
            r.wrap(from_fn(rate_limit))
                .wrap(from_fn(idempotency))
                .wrap(from_fn(auth::client)),
        ),
        Access::AnthropicClient => cfg.service(
            r.wrap(from_fn(rate_limit))
                .wrap(from_fn(idempotency))
                .wrap(from_fn(auth::client))
                .wrap(from_fn(error::anthropic_dialect)),
        ),
        Access::ClientOrAdmin => cfg.service(r.wrap(from_fn(rate_limit)).wrap(from_fn(auth::client_or_admin))),
        Access::Admin => cfg.service(r.wrap(from_fn(rate_limit)).wrap(from_fn(auth::admin))),
        Access::Worker => cfg.service(r.wrap(from_fn(rate_limit)).wrap(from_fn(auth::worker))),
        Access::Observability => cfg.service(r.wrap(from_fn(auth::observability))),
    };
}

/// `/docs` → `/docs/` (the UI's relative asset paths need the slash).
async fn redirect_to_docs() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("location", "/docs/"))
        .finish()
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
fn resource(path: &str, routes: Vec<Route>) -> Resource {
    routes
        .into_iter()
        .fold(web::resource(path), Resource::route)
        .default_service(web::to(method_not_allowed))
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let e = ApiError::MethodNotAllowed {
        method: req.method().to_string(),
        path: req.path().to_owned(),
    };
    error::respond(&e, error::dialect_of(&req))
}

/// The app's default service: 404 in the OpenAI error shape.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound {
        method: req.method().to_string(),
        path: req.path().to_owned(),
    })
}
