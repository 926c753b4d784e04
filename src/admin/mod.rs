//! The admin API's use cases (`/api/v1/routes`, `/security`, `/users`, `/providers`; teams,
//! budgets, tags and the spend report in `spend.rs`): list what runs, and change it for every
//! replica.
//!
//! A change is validated over the file's configuration exactly as the file itself is
//! (`Config::with_overrides`), written to the database (`config_overrides`), then applied to this
//! replica at once; the others apply it at their next sync (`reload.poll_seconds`).

pub mod audit;
pub mod keys;
pub mod reload;
pub mod spend;

pub use audit::{Actor, AuditEntry, AuditList, AuditQuery, Change};
pub use keys::{
    CreatedKey, KeyError, KeyList, KeyView, NewKey, api_create_key, api_list_keys, api_revoke_key, create_key,
    list_keys, parse_expiry, refresh_keys, revoke_key,
};
pub use reload::{ReloadCause, file_changed, file_stamp, reload_file, sync_overrides};
pub use spend::{
    BudgetList, BudgetView, SpendParams, SpendReport, create_budget, delete_budget, delete_tag, delete_team,
    list_budgets, list_tags, list_teams, put_budget, put_tag, put_team, spend_report,
};

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::config::{
    Override, OverrideKind, PathRouteConfig, ProviderToggle, RouteConfig, SecurityRule, Settings, UserGrant,
};
use crate::dialects::BodyError;
use crate::domain::ProviderId;
use crate::error::ApiError;
use crate::state::{AppState, Layers};

/// One configured item and where it comes from.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ItemView {
    /// `route`, `path_route`, `security`, `user`, `team`, `budget` or `tag`.
    pub kind: &'static str,
    /// Its key: the route's name, the path, the endpoint, the user's or team's name, the budget's
    /// id or the tag.
    pub name: String,
    /// `config` (the file) or `api` (changed through this API; stored in the database).
    pub source: &'static str,
    /// When the API last changed it, epoch ms.
    pub updated_at: Option<i64>,
    /// The item, in the config file's schema (an object; a tag's is the tag, a string).
    #[schema(value_type = Value)]
    pub item: Value,
}

/// `{"data": [...]}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ItemList {
    /// The items.
    pub data: Vec<ItemView>,
}

/// One provider as `/api/v1/providers` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProviderView {
    /// Provider id.
    pub id: String,
    /// Wire protocol, when known.
    pub kind: Option<String>,
    /// Whether it takes traffic now.
    pub enabled: bool,
    /// `closed`, `open` or `half_open`; null while disabled.
    pub breaker: Option<&'static str>,
    /// `config`, or `api` when its `enabled` was set through this API.
    pub source: &'static str,
    /// Lower is tried first; null while disabled.
    pub priority: Option<i32>,
}

/// `{"data": [...]}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProviderList {
    /// Every provider this configuration knows, enabled or not.
    pub data: Vec<ProviderView>,
}

/// Which route a `PUT`/`DELETE` addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteKey {
    /// A named route (`/api/v1/routes/{name}`).
    Name(String),
    /// A path route (`/api/v1/routes?path=/predict`).
    Path(String),
}

impl RouteKey {
    fn kind(&self) -> OverrideKind {
        match self {
            Self::Name(_) => OverrideKind::Route,
            Self::Path(_) => OverrideKind::PathRoute,
        }
    }

    fn name(&self) -> &str {
        match self {
            Self::Name(n) | Self::Path(n) => n,
        }
    }
}

/// Whether a `PUT` created the item or replaced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// It did not exist.
    Created,
    /// It existed.
    Replaced,
}

/// What a change expects of the item it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Absent,
    Present,
    Either,
}

/// Every named and path route.
pub async fn list_routes(state: &AppState) -> ItemList {
    list(state, &[OverrideKind::Route, OverrideKind::PathRoute]).await
}

/// One named route.
pub async fn get_route(state: &AppState, key: &RouteKey) -> Result<ItemView, ApiError> {
    one(state, key.kind(), key.name()).await
}

/// `POST /api/v1/routes`: a body with `path` is a path route, one with `name` a named route.
pub async fn create_route(state: &AppState, actor: &Actor, body: &[u8]) -> Result<ItemView, ApiError> {
    let object = object(body)?;
    let (kind, name, item) = if object.contains_key("path") {
        let route: PathRouteConfig = typed(object)?;
        (OverrideKind::PathRoute, route.path.clone(), to_json(&route)?)
    } else if object.contains_key("name") {
        let route: RouteConfig = typed(object)?;
        (OverrideKind::Route, route.name.clone(), to_json(&route)?)
    } else {
        return Err(bad(
            "a route needs `path` and `target` (a path route to a service) or `name`, `strategy` and `targets` (a named route of models)".into(),
        ));
    };
    change(state, actor, kind, &name, Some(item), Expect::Absent).await?;
    one(state, kind, &name).await
}

/// `PUT /api/v1/routes/{name}` or `?path=`: replaces an existing route.
pub async fn update_route(state: &AppState, actor: &Actor, key: &RouteKey, body: &[u8]) -> Result<ItemView, ApiError> {
    let mut object = object(body)?;
    let item = match key {
        RouteKey::Name(name) => {
            named(&mut object, "name", name)?;
            to_json(&typed::<RouteConfig>(object)?)?
        }
        RouteKey::Path(path) => {
            named(&mut object, "path", path)?;
            to_json(&typed::<PathRouteConfig>(object)?)?
        }
    };
    change(state, actor, key.kind(), key.name(), Some(item), Expect::Present).await?;
    one(state, key.kind(), key.name()).await
}

/// `DELETE`: removes a route, the file's included (until the file is edited or the API adds it
/// again).
pub async fn delete_route(state: &AppState, actor: &Actor, key: &RouteKey) -> Result<(), ApiError> {
    change(state, actor, key.kind(), key.name(), None, Expect::Present).await?;
    Ok(())
}

/// Every endpoint rule.
pub async fn list_security(state: &AppState) -> ItemList {
    list(state, &[OverrideKind::Security]).await
}

/// `PUT /api/v1/security/{endpoint}` with `{"authType": "jwt", "rateLimit": 100}`.
pub async fn put_security(
    state: &AppState,
    actor: &Actor,
    endpoint: &str,
    body: &[u8],
) -> Result<(ItemView, Written), ApiError> {
    let endpoint = endpoint_path(endpoint);
    let mut object = object(body)?;
    named(&mut object, "endpoint", &endpoint)?;
    let item = to_json(&typed::<SecurityRule>(object)?)?;
    let written = change(
        state,
        actor,
        OverrideKind::Security,
        &endpoint,
        Some(item),
        Expect::Either,
    )
    .await?;
    Ok((one(state, OverrideKind::Security, &endpoint).await?, written))
}

/// Removes an endpoint rule.
pub async fn delete_security(state: &AppState, actor: &Actor, endpoint: &str) -> Result<(), ApiError> {
    change(
        state,
        actor,
        OverrideKind::Security,
        &endpoint_path(endpoint),
        None,
        Expect::Present,
    )
    .await?;
    Ok(())
}

/// Every user grant.
pub async fn list_users(state: &AppState) -> ItemList {
    list(state, &[OverrideKind::User]).await
}

/// One user grant.
pub async fn get_user(state: &AppState, name: &str) -> Result<ItemView, ApiError> {
    one(state, OverrideKind::User, name).await
}

/// `PUT /api/v1/users/{name}` with `{"routes": [...], "providers": [...]}`.
pub async fn put_user(
    state: &AppState,
    actor: &Actor,
    name: &str,
    body: &[u8],
) -> Result<(ItemView, Written), ApiError> {
    let mut object = object(body)?;
    named(&mut object, "name", name)?;
    let item = to_json(&typed::<UserGrant>(object)?)?;
    let written = change(state, actor, OverrideKind::User, name, Some(item), Expect::Either).await?;
    Ok((one(state, OverrideKind::User, name).await?, written))
}

/// Removes a user grant.
pub async fn delete_user(state: &AppState, actor: &Actor, name: &str) -> Result<(), ApiError> {
    change(state, actor, OverrideKind::User, name, None, Expect::Present).await?;
    Ok(())
}

/// Every provider the configuration knows, with its run-time state.
pub async fn list_providers(state: &AppState) -> ProviderList {
    let layers = state.layers.lock().await;
    ProviderList {
        data: providers(state, &layers),
    }
}

pub async fn get_provider(state: &AppState, id: &str) -> Result<ProviderView, ApiError> {
    let layers = state.layers.lock().await;
    let id = ProviderId::new(id);
    providers(state, &layers)
        .into_iter()
        .find(|p| ProviderId::new(&p.id) == id)
        .ok_or_else(|| no_provider(id.as_str()))
}

/// `PUT /api/v1/providers/{id}` with `{"enabled": false}`: on or off for every replica.
pub async fn set_provider(state: &AppState, actor: &Actor, id: &str, body: &[u8]) -> Result<ProviderView, ApiError> {
    let toggle: ProviderToggle = typed(object(body)?)?;
    {
        let layers = state.layers.lock().await;
        let known = providers(state, &layers);
        let wanted = ProviderId::new(id);
        if !known.iter().any(|p| ProviderId::new(&p.id) == wanted) {
            return Err(no_provider(id));
        }
    }
    change(
        state,
        actor,
        OverrideKind::Provider,
        ProviderId::new(id).as_str(),
        Some(to_json(&toggle)?),
        Expect::Either,
    )
    .await?;
    get_provider(state, id).await
}

/// Validates a change over the file, stores it, applies it here. Returns whether the item was
/// new.
async fn change(
    state: &AppState,
    actor: &Actor,
    kind: OverrideKind,
    name: &str,
    item: Option<String>,
    expect: Expect,
) -> Result<Written, ApiError> {
    let mut layers = state.layers.lock().await;
    let existed = exists(&state.live().config.settings, kind, name);
    let before = existed.then(|| current(state, kind, name)).flatten();
    let removing = item.is_none();
    match (expect, existed) {
        (Expect::Absent, true) => {
            return Err(ApiError::Conflict {
                message: format!("{} `{name}` already exists; use PUT to replace it", label(kind)),
            });
        }
        (Expect::Present, false) => return Err(not_found(kind, name)),
        _ => {}
    }
    let mut overrides = layers.overrides.clone();
    overrides.set(Override {
        kind,
        name: name.to_owned(),
        item: item.clone(),
        updated_at: 0,
    });
    let config = layers.base.with_overrides(&overrides).map_err(ApiError::from)?;
    let stored = state
        .store
        .put_override(kind, name, item)
        .await
        .map_err(ApiError::from)?;
    overrides.set(stored);
    reload::apply(state, &mut layers, overrides, config);
    let after = current(state, kind, name);
    tracing::info!(
        kind = kind.as_str(),
        name,
        actor = actor.id(),
        "configuration changed through the admin API"
    );
    let action = match (existed, removing) {
        (_, true) => "delete",
        (true, false) => "update",
        (false, false) => "create",
    };
    audit::record(
        state,
        actor,
        Change {
            action,
            kind: kind.as_str(),
            name,
            before,
            after,
        },
    )
    .await;
    Ok(if existed { Written::Replaced } else { Written::Created })
}

/// The item as it runs now, for the audit trail (a provider: whether it is enabled).
fn current(state: &AppState, kind: OverrideKind, name: &str) -> Option<Value> {
    let live = state.live();
    if kind == OverrideKind::Provider {
        return Some(serde_json::json!({
            "enabled": live.registry.get(&ProviderId::new(name)).is_some()
        }));
    }
    items(&live.config.settings, kind)
        .into_iter()
        .find_map(|(n, item)| (n == name).then_some(item))
}

fn exists(s: &Settings, kind: OverrideKind, name: &str) -> bool {
    kind == OverrideKind::Provider || items(s, kind).iter().any(|(n, _)| n == name)
}

/// Every item of `kind` in `s`, by its key, in the config file's schema (none for providers,
/// which `providers` lists with their run-time state).
fn items(s: &Settings, kind: OverrideKind) -> Vec<(String, Value)> {
    match kind {
        OverrideKind::Route => s.routes.iter().map(|r| (r.name.clone(), json(r))).collect(),
        OverrideKind::PathRoute => s.path_routes.iter().map(|r| (r.path.clone(), json(r))).collect(),
        OverrideKind::Security => s.security.iter().map(|r| (r.endpoint.clone(), json(r))).collect(),
        OverrideKind::User => s.users.iter().map(|u| (u.name.clone(), json(u))).collect(),
        OverrideKind::Team => s.teams.iter().map(|t| (t.name.clone(), json(t))).collect(),
        OverrideKind::Budget => s.budgets.iter().map(|b| (b.id(), json(b))).collect(),
        OverrideKind::Tag => s.tags.iter().map(|t| (t.clone(), json(t))).collect(),
        OverrideKind::Provider => Vec::new(),
    }
}

async fn list(state: &AppState, kinds: &[OverrideKind]) -> ItemList {
    let layers = state.layers.lock().await;
    let live = state.live();
    let mut data = Vec::new();
    for kind in kinds {
        let items = items(&live.config.settings, *kind);
        data.extend(items.into_iter().map(|(name, item)| view(&layers, *kind, name, item)));
    }
    ItemList { data }
}

async fn one(state: &AppState, kind: OverrideKind, name: &str) -> Result<ItemView, ApiError> {
    list(state, &[kind])
        .await
        .data
        .into_iter()
        .find(|v| v.name == name)
        .ok_or_else(|| not_found(kind, name))
}

fn view(layers: &Layers, kind: OverrideKind, name: String, item: Value) -> ItemView {
    let stored = layers.overrides.get(kind, &name);
    ItemView {
        kind: kind.as_str(),
        source: if stored.is_some() { "api" } else { "config" },
        updated_at: stored.map(|o| o.updated_at),
        name,
        item,
    }
}

/// Providers the file resolves, declares (disabled ones too) or the API toggled.
fn providers(state: &AppState, layers: &Layers) -> Vec<ProviderView> {
    let live = state.live();
    let mut known: BTreeMap<ProviderId, Option<String>> = BTreeMap::new();
    for p in &layers.base.providers {
        known.insert(p.id.clone(), Some(p.kind.clone()));
    }
    for e in &layers.base.settings.providers {
        known.entry(ProviderId::new(&e.id)).or_insert_with(|| e.kind.clone());
    }
    for o in layers.overrides.iter().filter(|o| o.kind == OverrideKind::Provider) {
        known.entry(ProviderId::new(&o.name)).or_insert(None);
    }
    known
        .into_iter()
        .map(|(id, kind)| {
            let running = live.registry.get(&id);
            let toggled = layers
                .overrides
                .get(OverrideKind::Provider, id.as_str())
                .is_some_and(|o| o.item.is_some());
            ProviderView {
                kind: running.map(|p| p.config.kind.clone()).or(kind),
                enabled: running.is_some(),
                breaker: running.map(|_| live.breakers.state(&id).as_str()),
                source: if toggled { "api" } else { "config" },
                priority: running.map(|p| p.config.priority),
                id: id.as_str().to_owned(),
            }
        })
        .collect()
}

/// `/predict` from `predict`, `/predict` or `//predict`.
fn endpoint_path(raw: &str) -> String {
    format!("/{}", raw.trim_start_matches('/'))
}

fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(bad("the body must be a JSON object".into())),
        Err(e) => Err(ApiError::InvalidRequest(BodyError {
            message: format!("the body is not valid JSON: {e}"),
            param: None,
            code: "invalid_json",
        })),
    }
}

/// Fills the item's key from the URL, refusing a body that names another item.
fn named(object: &mut Map<String, Value>, field: &str, value: &str) -> Result<(), ApiError> {
    match object.get(field) {
        Some(Value::String(given)) if given != value => Err(bad(format!(
            "`{field}` in the body (`{given}`) differs from the URL's (`{value}`)"
        ))),
        _ => {
            object.insert(field.to_owned(), Value::String(value.to_owned()));
            Ok(())
        }
    }
}

fn typed<T: DeserializeOwned>(object: Map<String, Value>) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(Value::Object(object)).map_err(|e| {
        let path = e.path().to_string();
        let param = (path != ".").then_some(path);
        ApiError::InvalidRequest(BodyError {
            message: format!(
                "{}{}",
                param.as_deref().map(|p| format!("{p}: ")).unwrap_or_default(),
                e.inner()
            ),
            param,
            code: "invalid_value",
        })
    })
}

fn to_json<T: Serialize>(item: &T) -> Result<String, ApiError> {
    serde_json::to_string(item).map_err(ApiError::internal)
}

fn json<T: Serialize>(item: &T) -> Value {
    serde_json::to_value(item).unwrap_or(Value::Null)
}

fn label(kind: OverrideKind) -> &'static str {
    match kind {
        OverrideKind::Route => "route",
        OverrideKind::PathRoute => "path route",
        OverrideKind::Security => "security rule for",
        OverrideKind::User => "user",
        OverrideKind::Provider => "provider",
        OverrideKind::Team => "team",
        OverrideKind::Budget => "budget",
        OverrideKind::Tag => "tag",
    }
}

fn not_found(kind: OverrideKind, name: &str) -> ApiError {
    ApiError::NotFound {
        message: format!("no {} `{name}`", label(kind)),
    }
}

fn no_provider(id: &str) -> ApiError {
    ApiError::NotFound {
        message: format!("no provider `{id}` in this configuration"),
    }
}

fn bad(message: String) -> ApiError {
    ApiError::InvalidRequest(BodyError {
        message,
        param: None,
        code: "invalid_value",
    })
}
