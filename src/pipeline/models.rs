//! `/v1/models`: the named routes, then declared models of enabled providers, plus the upstream's
//! own list for `"*"` providers (cached) and the models loaded on a node pool's online nodes.
//! `/api/u/{user}/models`: the same, only what is granted to the user.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::resolve::Scope;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::providers::Provider;
use crate::state::AppState;

/// OpenAI's model list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModelList {
    /// Always `list`.
    pub object: &'static str,
    /// The models.
    pub data: Vec<ModelCard>,
}

/// OpenAI's model object.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModelCard {
    /// Model id clients send.
    pub id: String,
    /// Always `model`.
    pub object: &'static str,
    /// Unknown for most providers; 0.
    pub created: u64,
    /// The provider id that serves it first; `ai-gateway` for a named route.
    pub owned_by: String,
    /// A named route's strategy (ask for `<strategy>:<id>` to use another).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<&'static str>,
    /// A named route's targets, as `provider:model`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<String>>,
    /// A named route's description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

const UPSTREAM_LIST_TIMEOUT: Duration = Duration::from_secs(5);

/// Every model a client can ask for: the named routes, then each model listed once under the
/// first provider by priority.
pub async fn models(state: &AppState) -> ModelList {
    list(state, &Scope::All).await
}

/// What user `user` may ask for under `/api/u/{user}/`: the routes and providers granted to them
/// (everything when no `users:` grants exist). The caller must be that user.
pub async fn user_models(state: &AppState, caller: Option<&Caller>, user: &str) -> Result<ModelList, ApiError> {
    let scope = Scope::of_user(&state.live(), caller, user)?;
    Ok(list(state, &scope).await)
}

async fn list(state: &AppState, scope: &Scope) -> ModelList {
    let live = state.live();
    let mut seen = HashSet::new();
    let mut data = Vec::new();
    for route in live.config.settings.routes.iter().filter(|r| scope.sees_route(&r.name)) {
        seen.insert(route.name.clone());
        data.push(ModelCard {
            id: route.name.clone(),
            object: "model",
            created: 0,
            owned_by: "ai-gateway".to_owned(),
            strategy: Some(route.strategy.as_str()),
            targets: Some(
                route
                    .targets
                    .iter()
                    .map(|t| format!("{}:{}", t.provider, t.model))
                    .collect(),
            ),
            description: route.description.clone(),
        });
    }
    for provider in live.registry.providers() {
        if !scope.sees_provider(&provider.config.id) {
            continue;
        }
        let owner = provider.config.id.as_str();
        let declared = provider.config.models.iter().filter(|m| *m != "*");
        let aliases = provider.config.model_aliases.keys();
        let upstream = if provider.config.is_node_pool() {
            pool_models(state, provider)
        } else if provider.config.serves_any_model() {
            upstream_list(state, provider).await
        } else {
            Arc::new(Vec::new())
        };
        for id in declared.chain(aliases).chain(upstream.iter()) {
            if seen.insert(id.clone()) {
                data.push(ModelCard {
                    id: id.clone(),
                    object: "model",
                    created: 0,
                    owned_by: owner.to_owned(),
                    strategy: None,
                    targets: None,
                    description: None,
                });
            }
        }
    }
    ModelList { object: "list", data }
}

/// A pool serves what its online nodes have loaded.
pub(super) fn pool_models(state: &AppState, pool: &Provider) -> Arc<Vec<String>> {
    let mut models: Vec<String> = state
        .nodes
        .snapshot()
        .into_iter()
        .filter(|n| n.online && n.pool == pool.config.id)
        .flat_map(|n| n.models.to_vec())
        .collect();
    models.sort();
    models.dedup();
    Arc::new(models)
}

pub(super) async fn upstream_list(state: &AppState, provider: &Provider) -> Arc<Vec<String>> {
    let id = &provider.config.id;
    if let Some(list) = state.models.get(id).await {
        return list;
    }
    match provider
        .adapter
        .list_models(&provider.config, &state.http, UPSTREAM_LIST_TIMEOUT)
        .await
    {
        Ok(list) => {
            let list = Arc::new(list);
            state.models.put(id, list.clone()).await;
            list
        }
        Err(e) => {
            tracing::warn!(provider = %id, error = %e, "could not list upstream models");
            Arc::new(Vec::new())
        }
    }
}
