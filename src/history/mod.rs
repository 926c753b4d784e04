//! Request history: one `ai_requests` row per inference request, written off the hot path.
//!
//! Depends on `config` and `domain`; the only module that knows diesel. Handlers' pipeline hands a
//! `HistoryRecord` to `HistorySink::record` (a `try_send` on a bounded channel, never awaited); the
//! writer task batches rows into multi-row inserts, retries while the database is down, and drains
//! on shutdown. A full channel drops the row and counts it. It also keeps the GPU node registry and
//! the job → node map (`nodes.rs`) and the admin API's configuration changes (`overrides.rs`), which
//! every replica shares, and the admin audit trail (`audit.rs`).

mod audit;
mod keys;
mod nodes;
mod overrides;
mod query;
mod schema;
mod store;
mod writer;

use serde::Serialize;

pub use audit::{AuditFilter, AuditRow};
pub use keys::StoredKey;
pub use nodes::{StoredJob, StoredNode};
pub use query::{HistoryItem, HistoryQuery};
pub use store::{HistoryError, HistoryStore};
pub use writer::{HistorySink, WriterHandle, WriterSettings, WriterStatus, spawn_writer};

use crate::domain::{AttemptSummary, Usage};

/// How a request ended, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Answered (a stream that reached `[DONE]`).
    Success,
    /// Refused or failed (a stream cut by the upstream included).
    Error,
    /// The client went away first.
    Cancelled,
}

impl RequestStatus {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Everything one row says about a request.
#[derive(Debug, Clone)]
pub struct HistoryRecord {
    /// `/v1/chat/completions`, `/v1/embeddings`, ... (a worker path for the node catch-all).
    pub endpoint: std::borrow::Cow<'static, str>,
    /// `x-request-id`.
    pub request_id: String,
    /// Wall-clock start, epoch milliseconds.
    pub created_at_ms: i64,
    /// The `/ai/task` task type, when any.
    pub task: Option<String>,
    /// Model as requested.
    pub model: Option<String>,
    /// Provider that answered (or the last one tried).
    pub provider: Option<String>,
    /// Model name sent to that provider.
    pub upstream_model: Option<String>,
    /// Streamed?
    pub stream: bool,
    /// How it ended.
    pub status: RequestStatus,
    /// HTTP status given to the client.
    pub http_status: u16,
    /// Total time.
    pub latency_ms: u64,
    /// Streams: time to the first chunk.
    pub ttft_ms: Option<u64>,
    /// Token usage, when reported.
    pub usage: Option<Usage>,
    /// Every attempt, in order.
    pub attempts: Vec<AttemptSummary>,
    /// Key id or user, once authentication exists.
    pub caller: Option<String>,
    /// Why it failed.
    pub error_message: Option<String>,
    /// The first 200 characters of the answer.
    pub result_summary: Option<String>,
    /// Prompt text, only with `LOG_PROMPTS=true`.
    pub prompt: Option<String>,
    /// `hit` or `miss` when the response cache applied.
    pub cache: Option<&'static str>,
}

/// Characters of the answer kept in `result_summary`.
pub const SUMMARY_CHARS: usize = 200;

/// The first `SUMMARY_CHARS` characters of `text`.
pub fn summarize(text: &str) -> String {
    match text.char_indices().nth(SUMMARY_CHARS) {
        Some((cut, _)) => text[..cut].to_owned(),
        None => text.to_owned(),
    }
}

/// Now, in epoch milliseconds.
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}
