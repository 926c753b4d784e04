//! The node registry's use cases: `POST /register` (and `/nodes`), `DELETE /nodes/{url}`,
//! `GET /nodes`, `POST /pulse`, and the node views `/nodes` and `/health` show.
//!
//! A change is written to the shared table first, then to this replica's memory; other replicas
//! pick it up when their health loop re-reads the table.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::NodeRuntime;
use crate::dialects::BodyError;
use crate::error::ApiError;
use crate::nodes::{NodeError, NodeRecord, NodeSnapshot};
use crate::state::AppState;
use crate::store::StoredNode;

/// `POST /register` and `POST /nodes` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterNode {
    /// The node's root URL, e.g. `http://gpu-1:8000` (a trailing `/v1` is dropped).
    pub url: String,
    /// The pool to join; default: the first pool by priority.
    pub pool: Option<String>,
    /// `openai`, `vllm`, `ollama`, `llamacpp`, `tgi`, `sglang`, `worker` or `detect`; default: the
    /// pool's.
    pub runtime: Option<String>,
}

/// `POST /pulse` body (seed 000's heartbeat).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Pulse {
    /// The worker's root URL.
    pub url: String,
    /// Whether it is working on something.
    #[serde(default)]
    pub busy: bool,
    /// Its loaded model, if any.
    pub model: Option<String>,
    /// Its loaded models, when several.
    pub models: Option<Vec<String>>,
    /// Ignored: a heartbeat never chooses a pool (kept so older workers' bodies still parse).
    pub pool: Option<String>,
}

/// One node as `GET /nodes` shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NodeView {
    /// Root URL.
    pub url: String,
    pub pool: String,
    /// `pool/host:port`: its id in attempts, breakers and `x-ai-gateway-provider`.
    pub id: String,
    /// The runtime (detected or configured).
    pub runtime: &'static str,
    /// Health checks pass or heartbeats are fresh.
    pub online: bool,
    /// Working (or queueing) requests.
    pub busy: bool,
    /// The first loaded model.
    pub model: Option<String>,
    /// Every loaded model.
    pub models: Vec<String>,
    /// Requests running on it.
    pub running: u32,
    /// Requests queued on it.
    pub queue_depth: u32,
    /// Requests this gateway has in flight to it.
    pub in_flight: usize,
    /// Requests it serves at once, where its runtime reports it (llama.cpp's slots, TGI's
    /// `max_concurrent_requests`): `nodes.max_concurrency_per_node: auto` caps it there.
    pub slots: Option<u32>,
    /// Requests waiting in this gateway's queue for it.
    pub queued: usize,
    /// Its circuit breaker: `closed`, `open` or `half_open`.
    pub breaker: &'static str,
    /// Last health answer or heartbeat (RFC 3339).
    pub last_seen: Option<String>,
    /// Last heartbeat (RFC 3339).
    pub last_heartbeat: Option<String>,
    /// Why the last health check failed.
    pub last_error: Option<String>,
    /// Who added it: `config`, `api`, `pulse` or `provision`.
    pub source: String,
}

/// `GET /nodes` body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NodeList {
    /// Every registered node.
    pub nodes: Vec<NodeView>,
}

/// One node in `/health` (seed 000's `url, online, busy, model`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NodeHealth {
    /// Root URL.
    pub url: String,
    /// Online?
    pub online: bool,
    /// Busy?
    pub busy: bool,
    /// The first loaded model.
    pub model: Option<String>,
    pub pool: String,
    /// Last health answer or heartbeat (RFC 3339).
    pub last_seen: Option<String>,
}

/// Registers (or re-registers) a node, checks its health once and returns it.
pub async fn register(state: &AppState, req: RegisterNode, source: &str) -> Result<NodeView, ApiError> {
    let runtime = match req.runtime.as_deref() {
        None => None,
        Some(name) => Some(NodeRuntime::parse(name).ok_or_else(|| {
            bad(
                format!("unknown runtime `{name}`: use openai, vllm, ollama, llamacpp, tgi, sglang, worker or detect"),
                "runtime",
                "invalid_value",
            )
        })?),
    };
    let pool = state
        .nodes
        .pool(req.pool.as_deref())
        .map_err(ApiError::from)?
        .id
        .to_string();
    let record = NodeRecord {
        url: req.url,
        pool,
        runtime,
        source: source.to_owned(),
    };
    let record = state.nodes.admit(record).await.map_err(ApiError::from)?;
    let row = StoredNode::new(&record.url, &record.pool, runtime.map(NodeRuntime::as_str), source);
    state.store.upsert_node(&row, true).await.map_err(ApiError::from)?;
    state.nodes.insert(&record).map_err(ApiError::from)?;
    let checked = state.nodes.check_url(&state.http, &record.url).await;
    let snapshot = checked
        .or_else(|| state.nodes.get(&record.url))
        .ok_or_else(|| ApiError::internal(std::io::Error::other("a registered node vanished")))?;
    Ok(view(state, &snapshot))
}

/// What `POST /nodes/provision` checks before it runs the command or probes anything: `host` and
/// `user` are plain names (no `-o...` option, no shell metacharacters), and both the SSH host and
/// the node URL resolve inside `nodes.allowed_networks`.
pub(super) async fn check_provision(
    state: &AppState,
    host: &str,
    user: Option<&str>,
    url: &str,
    pool: &str,
) -> Result<(), ApiError> {
    use crate::nodes::provision::{ssh_url, valid_host, valid_user};
    if !valid_host(host) {
        return Err(bad(
            format!("host `{host}` must be a plain host name or address"),
            "host",
            "invalid_value",
        ));
    }
    if let Some(user) = user
        && !valid_user(user)
    {
        return Err(bad(
            "user must be a plain login name: letters, digits, `.`, `_` and `-`, at most 32, not starting with `-` or `.`"
                .into(),
            "user",
            "invalid_value",
        ));
    }
    let record = |url: String| NodeRecord {
        url,
        pool: pool.to_owned(),
        runtime: None,
        source: "provision".into(),
    };
    state
        .nodes
        .admit(record(ssh_url(host).replacen("ssh://", "http://", 1)))
        .await
        .map_err(|e| match e {
            NodeError::NotAllowed { reason, .. } => bad(
                format!("host `{host}` is outside nodes.allowed_networks: {reason}"),
                "host",
                "network_not_allowed",
            ),
            other => other.into(),
        })?;
    state
        .nodes
        .admit(record(url.to_owned()))
        .await
        .map_err(ApiError::from)?;
    Ok(())
}

/// Removes a node from the table and this replica; 404 when neither knew it.
pub async fn remove(state: &AppState, url: &str) -> Result<(), ApiError> {
    let url = crate::config::normalize_node_url(url).map_err(|e| bad(format!("url: {e}"), "url", "invalid_value"))?;
    let stored = state.store.delete_node(&url).await.map_err(ApiError::from)?;
    let in_memory = state.nodes.remove(&url);
    if stored || in_memory {
        Ok(())
    } else {
        Err(ApiError::RouteNotFound {
            method: "DELETE".into(),
            path: format!("/nodes/{url} (no such node)"),
        })
    }
}

/// A node as the audit trail records it (its registration, not its changing health); `None`
/// when `url` is no registered node.
pub fn node_item(state: &AppState, url: &str) -> Option<serde_json::Value> {
    let n = state.nodes.get(url)?;
    Some(serde_json::json!({
        "url": n.url,
        "pool": n.pool.as_str(),
        "runtime": n.runtime.as_str(),
        "source": n.source,
    }))
}

/// Every node.
pub fn list(state: &AppState) -> NodeList {
    NodeList {
        nodes: state.nodes.snapshot().iter().map(|n| view(state, n)).collect(),
    }
}

/// Most models one heartbeat may report; a real node loads a handful.
const MAX_PULSE_MODELS: usize = 256;

/// Longest model name a heartbeat may report.
const MAX_MODEL_NAME: usize = 256;

/// A heartbeat. It only refreshes a node an operator registered (config, `AI_NODES`,
/// `/register`, provisioning): the worker token is shared by every worker, so a heartbeat from an
/// unknown URL must not add a node that would take traffic (and prompts) — 404, nothing stored.
pub async fn pulse(state: &AppState, req: Pulse) -> Result<NodeView, ApiError> {
    let mut models = req.models.unwrap_or_default();
    if let Some(m) = req.model.filter(|m| !m.is_empty())
        && !models.contains(&m)
    {
        models.insert(0, m);
    }
    if models.len() > MAX_PULSE_MODELS {
        return Err(bad(
            format!(
                "a heartbeat reports at most {MAX_PULSE_MODELS} models, got {}",
                models.len()
            ),
            "models",
            "too_many_models",
        ));
    }
    if let Some(long) = models
        .iter()
        .find(|m| m.len() > MAX_MODEL_NAME || m.chars().any(char::is_control))
    {
        return Err(bad(
            format!(
                "model names are at most {MAX_MODEL_NAME} printable characters; got one of {} bytes",
                long.len()
            ),
            "models",
            "invalid_value",
        ));
    }
    let url =
        crate::config::normalize_node_url(&req.url).map_err(|e| bad(format!("url: {e}"), "url", "invalid_value"))?;
    if !state.nodes.pulse(&url, req.busy, Some(models)) {
        tracing::warn!(node = %url, "heartbeat from an unregistered node refused");
        return Err(ApiError::NotFound {
            message: format!(
                "node `{url}` is not registered: heartbeats only refresh nodes an operator registered \
                 (POST /register with the admin token, AI_NODES, the config's node pools, or POST /nodes/provision); \
                 a node registered on another replica is known here within nodes.health_interval_seconds"
            ),
        });
    }
    let snapshot = state
        .nodes
        .get(&url)
        .ok_or_else(|| ApiError::internal(std::io::Error::other("a node vanished after its heartbeat")))?;
    Ok(view(state, &snapshot))
}

/// Removes the run-time nodes unseen for `nodes.expire_after_seconds` from the table and this
/// replica (the health loop's round; other replicas drop them when they re-read the table).
pub async fn expire(store: &crate::store::HistoryStore, nodes: &crate::nodes::Nodes, after: std::time::Duration) {
    if after.is_zero() {
        return;
    }
    for url in nodes.expired(after) {
        match store.delete_node(&url).await {
            Ok(_) => {
                nodes.remove(&url);
                tracing::warn!(node = %url, after_seconds = after.as_secs_f64(), "node expired: no health answer or heartbeat");
            }
            Err(e) => tracing::warn!(node = %url, error = %e, "expired node not removed; the database is unavailable"),
        }
    }
}

/// The node list of `/health`.
pub fn health_nodes(state: &AppState) -> Vec<NodeHealth> {
    state
        .nodes
        .snapshot()
        .into_iter()
        .map(|n| NodeHealth {
            model: n.models.first().cloned(),
            last_seen: n.last_seen_ms.and_then(rfc3339),
            url: n.url,
            online: n.online,
            busy: n.busy,
            pool: n.pool.to_string(),
        })
        .collect()
}

pub(super) fn view(state: &AppState, n: &NodeSnapshot) -> NodeView {
    NodeView {
        url: n.url.clone(),
        pool: n.pool.to_string(),
        id: n.id.to_string(),
        runtime: n.runtime.as_str(),
        online: n.online,
        busy: n.busy,
        model: n.models.first().cloned(),
        models: n.models.to_vec(),
        running: n.running,
        queue_depth: n.waiting,
        in_flight: n.in_flight,
        slots: n.slots,
        queued: state.traffic.queued(&crate::traffic::Level::Node(n.id.clone())),
        breaker: state.live().breakers.state(&n.id).as_str(),
        last_seen: n.last_seen_ms.and_then(rfc3339),
        last_heartbeat: n.last_heartbeat_ms.and_then(rfc3339),
        last_error: n.last_error.clone(),
        source: n.source.clone(),
    }
}

fn rfc3339(ms: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()?
        .format(&Rfc3339)
        .ok()
}

pub(super) fn bad(message: String, param: &str, code: &'static str) -> ApiError {
    ApiError::InvalidRequest(BodyError {
        message,
        param: Some(param.into()),
        code,
    })
}
