//! The admin REST API (seed 002), behind the admin token (`X-Admin-Token` or
//! `Authorization: Bearer`): routes, endpoint security, users, providers, virtual keys, teams,
//! budgets, tags and the spend report.
//! Changes are stored in the database and applied by every replica within `reload.poll_seconds`.
//!
//! Named routes are addressed by name (`/api/v1/routes/{name}`), path routes by their path
//! (`/api/v1/routes?path=/predict`), endpoint rules by their endpoint without or with its leading
//! slash (`/api/v1/security/predict`).

use crate::admin;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::admin::{Actor, Change};
use crate::admin::{RouteKey, Written};
use crate::error::ApiError;
use crate::http::body::Body;
use crate::state::AppState;

/// Who is calling: the admin middleware already checked the token; the trail gets its digest.
pub(crate) fn actor(req: &HttpRequest) -> Actor {
    let headers = req.headers();
    let admin = headers
        .get("x-admin-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let bearer = headers
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    admin
        .or(bearer)
        .map_or_else(|| Actor::named("admin"), Actor::from_token)
}

/// `?path=` on `/api/v1/routes`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PathQuery {
    /// A path route's path (`/predict`); absent = the whole list (GET).
    pub path: Option<String>,
}

/// Every named route and path route, with where each comes from (`config` or `api`); with
/// `?path=`, that path route alone.
#[utoipa::path(get, path = "/api/v1/routes", tag = "admin", params(PathQuery), security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "Routes (`kind`: `route` or `path_route`); one route with `?path=`", body = crate::admin::ItemList), (status = 404, description = "No path route at `?path=`", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled (no INTERNAL_API_TOKEN)", body = crate::error::ErrorBody)))]
pub async fn list_routes(state: web::Data<AppState>, query: web::Query<PathQuery>) -> Result<HttpResponse, ApiError> {
    match query.into_inner().path {
        Some(path) => {
            let one = admin::get_route(&state, &RouteKey::Path(path)).await?;
            Ok(HttpResponse::Ok().json(admin::ItemList { data: vec![one] }))
        }
        None => Ok(HttpResponse::Ok().json(admin::list_routes(&state).await)),
    }
}

/// Creates a route: a body with `path` and `target(s)` is a path route
/// (`{"path": "/predict", "target": "http://ai-service:8080", "method": "POST"}`), one with `name`
/// and `targets` a named route (`{"name": "support", "strategy": "rotation", "targets":
/// ["openai:gpt-4o-mini", "mistral:mistral-small"]}`).
#[utoipa::path(post, path = "/api/v1/routes", tag = "admin", request_body(content = Object, description = "A path route or a named route, in the config file's schema"), security(("admin_token" = []), ("bearer" = [])), responses((status = 201, description = "Created; every replica applies it within reload.poll_seconds", body = crate::admin::ItemView), (status = 400, description = "Every validation problem, in one message", body = crate::error::ErrorBody), (status = 409, description = "A route with this name or path exists", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody), (status = 503, description = "The database is unavailable; nothing changed", body = crate::error::ErrorBody)))]
pub async fn create_route(state: web::Data<AppState>, req: HttpRequest, body: Body) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(admin::create_route(&state, &actor(&req), &body.0).await?))
}

/// Replaces a path route (`?path=` required here).
#[utoipa::path(put, path = "/api/v1/routes", tag = "admin", params(PathQuery), request_body(content = Object, description = "The path route, in the config file's schema"), security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "Replaced", body = crate::admin::ItemView), (status = 400, description = "No `?path=`, or every validation problem", body = crate::error::ErrorBody), (status = 404, description = "No such path route", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody), (status = 503, description = "The database is unavailable", body = crate::error::ErrorBody)))]
pub async fn update_path_route(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<PathQuery>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let key = RouteKey::Path(path_param(query.into_inner())?);
    Ok(HttpResponse::Ok().json(admin::update_route(&state, &actor(&req), &key, &body.0).await?))
}

/// Removes a path route (`?path=` required here), the config file's included.
#[utoipa::path(delete, path = "/api/v1/routes", tag = "admin", params(PathQuery), security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "Removed", body = serde_json::Value), (status = 400, description = "No `?path=`", body = crate::error::ErrorBody), (status = 404, description = "No such path route", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody), (status = 503, description = "The database is unavailable", body = crate::error::ErrorBody)))]
pub async fn delete_path_route(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<PathQuery>,
) -> Result<HttpResponse, ApiError> {
    let path = path_param(query.into_inner())?;
    admin::delete_route(&state, &actor(&req), &RouteKey::Path(path.clone())).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "deleted": path })))
}

/// One named route.
#[utoipa::path(get, path = "/api/v1/routes/{name}", tag = "admin", params(("name" = String, Path, description = "The route's name")), security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "The route", body = crate::admin::ItemView), (status = 404, description = "No such route", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody)))]
pub async fn get_route(state: web::Data<AppState>, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let key = RouteKey::Name(name.into_inner());
    Ok(HttpResponse::Ok().json(admin::get_route(&state, &key).await?))
}

/// Replaces a named route.
#[utoipa::path(put, path = "/api/v1/routes/{name}", tag = "admin", params(("name" = String, Path, description = "The route's name")), request_body(content = Object, description = "The named route, in the config file's schema (`name` may be left out)"), security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "Replaced", body = crate::admin::ItemView), (status = 400, description = "Every validation problem", body = crate::error::ErrorBody), (status = 404, description = "No such route", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody), (status = 503, description = "The database is unavailable", body = crate::error::ErrorBody)))]
pub async fn update_route(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let key = RouteKey::Name(name.into_inner());
    Ok(HttpResponse::Ok().json(admin::update_route(&state, &actor(&req), &key, &body.0).await?))
}

/// Removes a named route, the config file's included.
#[utoipa::path(delete, path = "/api/v1/routes/{name}", tag = "admin", params(("name" = String, Path, description = "The route's name")), security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "Removed", body = serde_json::Value), (status = 404, description = "No such route", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody), (status = 503, description = "The database is unavailable", body = crate::error::ErrorBody)))]
pub async fn delete_route(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    admin::delete_route(&state, &actor(&req), &RouteKey::Name(name.clone())).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "deleted": name })))
}

/// Every endpoint rule (auth and rate limit per endpoint).
#[utoipa::path(get, path = "/api/v1/security", tag = "admin", security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "Endpoint rules", body = crate::admin::ItemList), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody)))]
pub async fn list_security(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(admin::list_security(&state).await)
}

/// Sets an endpoint's auth and rate limit: `{"authType": "jwt", "rateLimit": 100}` (per minute,
/// or `"10/s"`, `"1000/hour"`).
#[utoipa::path(put, path = "/api/v1/security/{endpoint}", tag = "admin", params(("endpoint" = String, Path, description = "The endpoint path, with or without its leading `/` (`predict` or `%2Fpredict`)")), request_body(content = Object, description = "`authType` (`api-key`, `jwt`, `none`) and `rateLimit`"), security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "Replaced", body = crate::admin::ItemView), (status = 201, description = "Created", body = crate::admin::ItemView), (status = 400, description = "Every validation problem", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody), (status = 503, description = "The database is unavailable", body = crate::error::ErrorBody)))]
pub async fn put_security(
    state: web::Data<AppState>,
    req: HttpRequest,
    endpoint: web::Path<String>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let (view, written) = admin::put_security(&state, &actor(&req), &endpoint, &body.0).await?;
    Ok(written_response(written).json(view))
}

/// Removes an endpoint rule.
#[utoipa::path(delete, path = "/api/v1/security/{endpoint}", tag = "admin", params(("endpoint" = String, Path, description = "The endpoint path, with or without its leading `/`")), security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "Removed", body = serde_json::Value), (status = 404, description = "No rule for this endpoint", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody), (status = 503, description = "The database is unavailable", body = crate::error::ErrorBody)))]
pub async fn delete_security(
    state: web::Data<AppState>,
    req: HttpRequest,
    endpoint: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admin::delete_security(&state, &actor(&req), &endpoint).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "deleted": endpoint.into_inner() })))
}

/// Every user grant of the `/api/u/{user}/...` namespace.
#[utoipa::path(get, path = "/api/v1/users", tag = "admin", security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "User grants", body = crate::admin::ItemList), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody)))]
pub async fn list_users(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(admin::list_users(&state).await)
}

/// One user's grant.
#[utoipa::path(get, path = "/api/v1/users/{name}", tag = "admin", params(("name" = String, Path, description = "The user")), security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "The grant", body = crate::admin::ItemView), (status = 404, description = "No such user", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody)))]
pub async fn get_user(state: web::Data<AppState>, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(admin::get_user(&state, &name).await?))
}

/// Grants a user routes and providers: `{"routes": ["support"], "providers": ["openai"]}`.
#[utoipa::path(put, path = "/api/v1/users/{name}", tag = "admin", params(("name" = String, Path, description = "The user: a virtual key's name or a JWT `sub`")), request_body(content = Object, description = "`routes` and `providers` granted"), security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "Replaced", body = crate::admin::ItemView), (status = 201, description = "Created", body = crate::admin::ItemView), (status = 400, description = "Every validation problem", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody), (status = 503, description = "The database is unavailable", body = crate::error::ErrorBody)))]
pub async fn put_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let (view, written) = admin::put_user(&state, &actor(&req), &name, &body.0).await?;
    Ok(written_response(written).json(view))
}

/// Removes a user's grant.
#[utoipa::path(delete, path = "/api/v1/users/{name}", tag = "admin", params(("name" = String, Path, description = "The user")), security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "Removed", body = serde_json::Value), (status = 404, description = "No such user", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody), (status = 503, description = "The database is unavailable", body = crate::error::ErrorBody)))]
pub async fn delete_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admin::delete_user(&state, &actor(&req), &name).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "deleted": name.into_inner() })))
}

/// Every provider the configuration knows, enabled or not, with its breaker.
#[utoipa::path(get, path = "/api/v1/providers", tag = "admin", security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "Providers", body = crate::admin::ProviderList), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody)))]
pub async fn list_providers(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(admin::list_providers(&state).await)
}

#[utoipa::path(get, path = "/api/v1/providers/{id}", tag = "admin", params(("id" = String, Path, description = "Provider id")), security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "The provider", body = crate::admin::ProviderView), (status = 404, description = "No such provider", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody)))]
pub async fn get_provider(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(admin::get_provider(&state, &id).await?))
}

/// Enables or disables a provider at run time, on every replica: `{"enabled": false}`.
#[utoipa::path(put, path = "/api/v1/providers/{id}", tag = "admin", params(("id" = String, Path, description = "Provider id")), request_body(content = Object, description = "`{\"enabled\": bool}`"), security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "The provider as it now runs here", body = crate::admin::ProviderView), (status = 400, description = "Not `{\"enabled\": bool}`, or the change leaves the configuration invalid", body = crate::error::ErrorBody), (status = 404, description = "No such provider", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody), (status = 503, description = "The database is unavailable", body = crate::error::ErrorBody)))]
pub async fn set_provider(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(admin::set_provider(&state, &actor(&req), &id, &body.0).await?))
}

/// Every virtual key (never the keys themselves).
#[utoipa::path(get, path = "/api/v1/keys", tag = "admin", security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "Keys, newest first", body = crate::admin::KeyList), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody), (status = 503, description = "The database is unavailable", body = crate::error::ErrorBody)))]
pub async fn list_keys(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(admin::api_list_keys(&state).await?))
}

/// Creates a virtual key; the answer is the only time the key is shown (only its hash is stored).
#[utoipa::path(post, path = "/api/v1/keys", tag = "admin", request_body = crate::admin::NewKey, security(("admin_token" = []), ("bearer" = [])), responses((status = 201, description = "The key, shown once; replicas accept it within auth.refresh_seconds", body = crate::admin::CreatedKey), (status = 400, description = "A bad name, expiry, team (not declared), priority or user, named in `param`", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody), (status = 503, description = "The database is unavailable", body = crate::error::ErrorBody)))]
pub async fn create_key(state: web::Data<AppState>, req: HttpRequest, body: Body) -> Result<HttpResponse, ApiError> {
    let created = admin::api_create_key(&state, &body.0).await?;
    // The view only: the key itself is shown once, to this caller, and never recorded.
    let after = serde_json::to_value(&created.view).ok();
    let change = Change {
        action: "create",
        kind: "key",
        name: &created.view.name,
        before: None,
        after,
    };
    admin::audit::record(&state, &actor(&req), change).await;
    Ok(HttpResponse::Created().json(created))
}

/// Revokes a virtual key by id or name.
#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "admin", params(("id" = String, Path, description = "The key's id or name")), security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "Revoked; replicas refuse it within auth.refresh_seconds", body = serde_json::Value), (status = 404, description = "No active key with this id or name", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody), (status = 503, description = "The database is unavailable", body = crate::error::ErrorBody)))]
pub async fn revoke_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let matching = |list: admin::KeyList| {
        let views: Vec<_> = list.data.into_iter().filter(|k| k.id == *id || k.name == *id).collect();
        // An object, like every other item: a name may match several keys.
        Some(serde_json::json!({ "keys": views }))
    };
    let before = admin::api_list_keys(&state).await.ok().and_then(matching);
    let n = admin::api_revoke_key(&state, &id).await?;
    let after = admin::api_list_keys(&state).await.ok().and_then(matching);
    let change = Change {
        action: "revoke",
        kind: "key",
        name: &id,
        before,
        after,
    };
    admin::audit::record(&state, &actor(&req), change).await;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "revoked": n })))
}

/// The admin audit trail: every change made through the admin API, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "admin", params(admin::AuditQuery), security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "Changes, newest first: who (a digest prefix of the admin token), when, the item before and after (secrets removed)", body = crate::admin::AuditList), (status = 400, description = "A bad `since`, `limit` or unknown parameter", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody), (status = 503, description = "The database is unavailable", body = crate::error::ErrorBody)))]
pub async fn audit(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<admin::AuditQuery>::from_query(req.query_string()).map_err(|e| {
        ApiError::InvalidRequest(crate::dialects::BodyError {
            message: format!("bad query: {e}; use since (RFC 3339), kind, actor and limit (1 to 1000)"),
            param: None,
            code: "invalid_value",
        })
    })?;
    Ok(HttpResponse::Ok().json(admin::audit::list(&state, query.into_inner()).await?))
}

/// Every team (`teams:`), with where each comes from (`config` or `api`).
#[utoipa::path(get, path = "/api/v1/teams", tag = "admin", security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "Teams (`kind` `team`, `item` in the config file's schema)", body = crate::admin::ItemList), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody)))]
pub async fn list_teams(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(admin::list_teams(&state).await)
}

/// Creates or replaces a team: `{"rpm": 600, "tpm": 200000, "models": ["gpt-4o*"], "priority": "high"}`.
#[utoipa::path(put, path = "/api/v1/teams/{name}", tag = "admin", params(("name" = String, Path, description = "The team's name")), request_body(content = Object, description = "The team, in the config file's schema (`name` may be left out; if given it must be the URL's)"), security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "Created or replaced; every replica applies it within reload.poll_seconds", body = crate::admin::ItemView), (status = 400, description = "Every validation problem", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody), (status = 503, description = "The database is unavailable; nothing changed", body = crate::error::ErrorBody)))]
pub async fn put_team(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(admin::put_team(&state, &actor(&req), &name, &body.0).await?))
}

/// Removes a team, the config file's included; refused while a budget names it.
#[utoipa::path(delete, path = "/api/v1/teams/{name}", tag = "admin", params(("name" = String, Path, description = "The team's name")), security(("admin_token" = []), ("bearer" = [])), responses((status = 204, description = "Removed"), (status = 400, description = "A budget still names this team", body = crate::error::ErrorBody), (status = 404, description = "No such team", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody), (status = 503, description = "The database is unavailable; nothing changed", body = crate::error::ErrorBody)))]
pub async fn delete_team(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admin::delete_team(&state, &actor(&req), &name).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every budget (`budgets:`), by id (`scope:name:period` or `scope:period`).
#[utoipa::path(get, path = "/api/v1/budgets", tag = "admin", security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "Budgets (`kind` `budget`, `name` the id, `status` the current period or null)", body = crate::admin::BudgetList), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody)))]
pub async fn list_budgets(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(admin::list_budgets(&state).await)
}

/// Creates a budget: `{"scope": "team", "name": "research", "limit_usd": 50, "period": "monthly"}`.
#[utoipa::path(post, path = "/api/v1/budgets", tag = "admin", request_body(content = Object, description = "The budget, in the config file's schema"), security(("admin_token" = []), ("bearer" = [])), responses((status = 201, description = "Created; every replica applies it within reload.poll_seconds", body = crate::admin::BudgetView), (status = 400, description = "Every validation problem", body = crate::error::ErrorBody), (status = 409, description = "A budget with this id exists", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody), (status = 503, description = "The database is unavailable; nothing changed", body = crate::error::ErrorBody)))]
pub async fn create_budget(state: web::Data<AppState>, req: HttpRequest, body: Body) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(admin::create_budget(&state, &actor(&req), &body.0).await?))
}

/// Creates or replaces the budget with this id; the body's scope, name and period must make it.
#[utoipa::path(put, path = "/api/v1/budgets/{id}", tag = "admin", params(("id" = String, Path, description = "The budget's id: `scope:name:period` or `scope:period`")), request_body(content = Object, description = "The budget, in the config file's schema"), security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "Created or replaced", body = crate::admin::BudgetView), (status = 400, description = "The body makes another id, or every validation problem", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody), (status = 503, description = "The database is unavailable; nothing changed", body = crate::error::ErrorBody)))]
pub async fn put_budget(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(admin::put_budget(&state, &actor(&req), &id, &body.0).await?))
}

/// Removes a budget, the config file's included.
#[utoipa::path(delete, path = "/api/v1/budgets/{id}", tag = "admin", params(("id" = String, Path, description = "The budget's id")), security(("admin_token" = []), ("bearer" = [])), responses((status = 204, description = "Removed"), (status = 404, description = "No such budget", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody), (status = 503, description = "The database is unavailable; nothing changed", body = crate::error::ErrorBody)))]
pub async fn delete_budget(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admin::delete_budget(&state, &actor(&req), &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every declared tag (`tags:`): tags budgets may name.
#[utoipa::path(get, path = "/api/v1/tags", tag = "admin", security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "Tags (`kind` `tag`, `item` the tag)", body = crate::admin::ItemList), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody)))]
pub async fn list_tags(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(admin::list_tags(&state).await)
}

/// Declares a tag (no body).
#[utoipa::path(put, path = "/api/v1/tags/{name}", tag = "admin", params(("name" = String, Path, description = "The tag: 1 to 64 visible characters, no comma")), security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "Declared", body = crate::admin::ItemView), (status = 400, description = "Not a valid tag", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody), (status = 503, description = "The database is unavailable; nothing changed", body = crate::error::ErrorBody)))]
pub async fn put_tag(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(admin::put_tag(&state, &actor(&req), &name).await?))
}

/// Removes a declared tag, the config file's included; refused while a budget names it.
#[utoipa::path(delete, path = "/api/v1/tags/{name}", tag = "admin", params(("name" = String, Path, description = "The tag")), security(("admin_token" = []), ("bearer" = [])), responses((status = 204, description = "Removed"), (status = 400, description = "A budget still names this tag", body = crate::error::ErrorBody), (status = 404, description = "No such tag", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody), (status = 503, description = "The database is unavailable; nothing changed", body = crate::error::ErrorBody)))]
pub async fn delete_tag(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admin::delete_tag(&state, &actor(&req), &name).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Spend from the request history over a range, grouped by key, team, user, tag, model,
/// provider or day.
#[utoipa::path(get, path = "/api/v1/spend", tag = "admin", params(admin::SpendParams), security(("admin_token" = []), ("bearer" = [])), responses((status = 200, description = "Cost, requests and tokens per group, and the range's total", body = crate::admin::SpendReport), (status = 400, description = "A bad `group_by`, `since` or `until` (named in `param`), or an unknown parameter", body = crate::error::ErrorBody), (status = 401, description = "Missing or wrong admin token", body = crate::error::ErrorBody), (status = 403, description = "A client key, or the admin API is disabled", body = crate::error::ErrorBody), (status = 503, description = "The database is unavailable", body = crate::error::ErrorBody)))]
pub async fn spend(
    state: web::Data<AppState>,
    query: web::Query<admin::SpendParams>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(admin::spend_report(&state, query.into_inner()).await?))
}

fn written_response(written: Written) -> actix_web::HttpResponseBuilder {
    match written {
        Written::Created => HttpResponse::Created(),
        Written::Replaced => HttpResponse::Ok(),
    }
}

fn path_param(query: PathQuery) -> Result<String, ApiError> {
    query.path.ok_or_else(|| {
        ApiError::InvalidRequest(crate::dialects::BodyError {
            message: "`?path=` names the path route (named routes are at /api/v1/routes/{name})".into(),
            param: Some("path".into()),
            code: "missing_required_parameter",
        })
    })
}
