//! `/v1/models`: declared models of enabled providers, plus the upstream's own list for `"*"`
//! providers (cached) and the models loaded on a node pool's online nodes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

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
    /// The provider id that serves it first.
    pub owned_by: String,
}

const UPSTREAM_LIST_TIMEOUT: Duration = Duration::from_secs(5);

/// Every model a client can ask for, each listed once under the first provider by priority.
pub async fn models(state: &AppState) -> ModelList {
    let live = state.live();
    let mut seen = HashSet::new();
    let mut data = Vec::new();
    for provider in live.registry.providers() {
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
                });
            }
        }
    }
    ModelList { object: "list", data }
}

/// A pool serves what its online nodes have loaded.
fn pool_models(state: &AppState, pool: &Provider) -> Arc<Vec<String>> {
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

async fn upstream_list(state: &AppState, provider: &Provider) -> Arc<Vec<String>> {
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
