//! The use cases handlers call: each composes routing → orchestrator → observe. No actix here.
//!
//! Depends on `state`, `routing`, `orchestrator`, `providers`, `nodes`, `error` and `domain`.

mod admit;
mod cache;
mod chat;
mod count_tokens;
mod front;
mod health;
mod history;
mod me;
mod metrics;
mod models;
mod nodes;
mod observe;
mod paths;
mod pricing;
mod queue;
mod recover;
mod resolve;
mod responses;
mod spend;
mod status;
mod task;
mod worker;

use std::convert::Infallible;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;

pub use admit::{admit, tokens_per_minute};
pub use cache::Directives;
pub use chat::{chat, embeddings, infer, user_chat};
pub use count_tokens::{TokenCount, count_tokens};
pub use front::Front;
pub use health::{Health, ProviderHealth, health, ready};
pub use history::{Viewer, cleanup, history, user_history};
pub use me::{Me, MyBudget, SpendToDate, me};
pub use metrics::{metrics_summary, metrics_text};
pub use models::{ModelCard, ModelList, models, user_models};
pub use nodes::{
    NodeHealth, NodeList, NodeView, Pulse, RegisterNode, expire as expire_nodes, list as list_nodes, node_item, pulse,
    register as register_node, remove as remove_node,
};
pub use paths::{
    CanonicalPath, PathAnswer, PathCall, canonical_path, forward_path, is_path_route, path_route_label, upstream_url,
};
pub use pricing::{FETCH_TIMEOUT, MAX_DOCUMENT_BYTES, PricingError, load_saved_prices, refresh_prices};
pub use queue::PRIORITY_HEADER;
pub use responses::{
    Expanded, ListQuery, ResponseAsker, ResponseCall, ResponseOp, expand as expand_response,
    operate as operate_response, remember as remember_response, remember_stream as remember_response_stream,
};
pub use spend::{parse_tags, refresh_ledger, threshold_event};
pub use status::{ProviderStatus, QueueStatus, StatusList, provider_status};
pub use task::{TaskAnswer, task, task_types};
pub use worker::{
    JobAsker, JobCall, ProvisionReport, ProvisionRequest, Relay, RelayBody, WorkerCall, job, provision, proxy,
};

use crate::domain::ProviderId;

/// A client body stream: infallible, since failures become SSE error events inside it.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, Infallible>> + Send>>;

/// What an inference endpoint answers.
pub enum Answer {
    /// A complete JSON body, forwarded as the upstream sent it.
    Json {
        body: Bytes,
        /// Upstream content type.
        content_type: String,
        /// Who answered.
        provider: ProviderId,
        /// Upstream calls made (0 for a cache hit).
        attempts: usize,
        /// `hit` or `miss` when the response cache applied.
        cache: Option<crate::cache::CacheStatus>,
        /// Hosted tool types a provider bridging `/v1/responses` left out
        /// (`x-ai-gateway-dropped-tools`); empty otherwise.
        dropped_tools: Vec<String>,
        /// What the request cost (`x-ai-gateway-cost-usd`), when its model has a price.
        cost_usd: Option<f64>,
    },
    /// Server-sent events, relayed chunk by chunk.
    Stream {
        body: BodyStream,
        /// Who answered.
        provider: ProviderId,
        /// Upstream calls made.
        attempts: usize,
        /// As for `Json`.
        dropped_tools: Vec<String>,
    },
}
