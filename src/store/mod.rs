//! Request history: one `ai_requests` row per inference request, written off the hot path.
//!
//! Depends on `config` and `domain`; the only module that knows diesel. Handlers' pipeline hands a
//! `HistoryRecord` to `HistorySink::record` (a `try_send` on a bounded channel, never awaited); the
//! writer task batches rows into multi-row inserts, retries while the database is down, and drains
//! on shutdown. A full channel drops the row and counts it. With `history.spool_path` each row is
//! also appended to a local file first and replayed at start (`spool.rs`), so a killed process
//! loses none. It also keeps the GPU node registry and
//! the job → node map (`nodes.rs`) and the admin API's configuration changes (`overrides.rs`), which
//! every replica shares, the admin audit trail (`audit.rs`), which provider made each
//! `/v1/responses` answer, with the stored bridged ones (`responses.rs`), the spend report's
//! grouped sums over the history (`spend.rs`), the spend ledger (`ledger.rs`) and the last good
//! copy of the `pricing.url` document (`prices.rs`).

mod audit;
mod db;
mod keys;
mod ledger;
mod nodes;
mod overrides;
mod prices;
mod query;
mod responses;
mod row;
mod schema;
mod spend;
mod spool;
mod writer;

use std::borrow::Cow;

use serde::Serialize;

pub use audit::{AuditFilter, AuditRow};
pub use db::{HistoryError, HistoryStore};
pub use keys::{KeyError, StoredKey};
pub use ledger::LedgerRow;
pub use nodes::{StoredJob, StoredNode};
pub use prices::SavedPrices;
pub use query::{HistoryItem, HistoryQuery};
pub use responses::{Remembered, ResponseSink, ResponseWriter, StoredResponse, response_queue};
pub use spend::{Spend, SpendGroup, SpendRow};
pub use spool::INTERRUPTED;
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
    /// The coding agent's session (a session header, or Responses' `prompt_cache_key`).
    pub session_id: Option<String>,
    /// What the request cost in USD; `None` when its model has no price (or nothing was used).
    pub cost_usd: Option<f64>,
    /// The cost was estimated from relayed text: the stream ended before its usage came.
    pub cost_estimated: bool,
    /// The caller's team.
    pub team: Option<String>,
    /// The user the request is spent by (a JWT `sub`, or a virtual key's `user`).
    pub user: Option<String>,
    /// The client's `x-ai-gateway-tags`, as sent (declared or not).
    pub tags: Vec<String>,
    /// The budgets this request's cost counts toward, for the spend ledger.
    pub charges: Vec<Charge>,
    /// The W3C trace id (32 hex digits): the server span's, else the client's `traceparent`'s.
    pub trace_id: Option<String>,
}

/// One budget a request's cost is charged to: written to the spend ledger with the history row.
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    /// `key`, `team`, `user`, `tag`, `session`, `provider` or `gateway`.
    pub scope: &'static str,
    /// The subject within the scope (the key's name, the session id, ...; empty for `gateway`).
    pub name: String,
    /// `daily`, `weekly`, `monthly` or `total`.
    pub period: &'static str,
    /// The period's start, epoch milliseconds.
    pub period_start: i64,
}

/// Longest model, provider, task, caller name or session id kept in a row, in characters: these
/// come from clients, and nothing legitimate is longer.
pub const MAX_NAME_CHARS: usize = 256;
/// Longest endpoint path or error message kept in a row, in characters.
pub const MAX_TEXT_CHARS: usize = 2048;
/// Longest prompt kept in a row, in bytes (with `LOG_PROMPTS=true`).
pub const MAX_PROMPT_BYTES: usize = 64 * 1024;

impl HistoryRecord {
    /// Makes every text field storable in any backend: NUL characters removed (PostgreSQL text
    /// cannot hold them, and one such row would fail its whole batch) and client-supplied strings
    /// capped.
    pub fn make_storable(&mut self) {
        if let Cow::Owned(e) = storable(&self.endpoint, MAX_TEXT_CHARS) {
            self.endpoint = Cow::Owned(e);
        }
        cap(&mut self.request_id, MAX_NAME_CHARS);
        for name in [
            &mut self.task,
            &mut self.model,
            &mut self.provider,
            &mut self.upstream_model,
            &mut self.caller,
            &mut self.session_id,
            &mut self.team,
            &mut self.user,
        ]
        .into_iter()
        .flatten()
        {
            cap(name, MAX_NAME_CHARS);
        }
        for charge in &mut self.charges {
            cap(&mut charge.name, MAX_NAME_CHARS);
        }
        for text in [&mut self.error_message, &mut self.result_summary]
            .into_iter()
            .flatten()
        {
            cap(text, MAX_TEXT_CHARS);
        }
        if let Some(prompt) = &mut self.prompt {
            cap(prompt, usize::MAX);
            truncate_bytes(prompt, MAX_PROMPT_BYTES);
        }
    }
}

fn cap(text: &mut String, max_chars: usize) {
    if let Cow::Owned(t) = storable(text, max_chars) {
        *text = t;
    }
}

/// `text` without NUL characters and at most `max_chars` characters long; borrowed when it already is.
pub fn storable(text: &str, max_chars: usize) -> Cow<'_, str> {
    let has_nul = text.as_bytes().contains(&0);
    // Byte length bounds character count, so most strings skip the count.
    let too_long = text.len() > max_chars && text.chars().count() > max_chars;
    if !has_nul && !too_long {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.chars().filter(|c| *c != '\0').take(max_chars).collect())
}

fn truncate_bytes(text: &mut String, max_bytes: usize) {
    if text.len() > max_bytes {
        let mut cut = max_bytes;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
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

/// A successful chat record for the store's own tests.
#[cfg(test)]
pub(crate) fn test_record(request_id: &str, model: &str) -> HistoryRecord {
    HistoryRecord {
        endpoint: "/v1/chat/completions".into(),
        request_id: request_id.into(),
        created_at_ms: 1,
        task: None,
        model: Some(model.into()),
        provider: None,
        upstream_model: None,
        stream: false,
        status: RequestStatus::Success,
        http_status: 200,
        latency_ms: 1,
        ttft_ms: None,
        usage: None,
        attempts: Vec::new(),
        caller: None,
        error_message: None,
        result_summary: None,
        prompt: None,
        cache: None,
        session_id: None,
        cost_usd: None,
        cost_estimated: false,
        team: None,
        user: None,
        tags: Vec::new(),
        charges: Vec::new(),
        trace_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storable_text_has_no_nul_and_is_capped_by_characters() {
        assert!(matches!(storable("plain", 10), Cow::Borrowed("plain")));
        assert_eq!(storable("x\0y", 10), "xy");
        assert_eq!(storable("ééééé", 3), "ééé");
        assert!(matches!(storable("ééé", 3), Cow::Borrowed(_)));
    }

    #[test]
    fn a_prompt_is_cut_on_a_character_boundary() {
        let mut text = "é".repeat(MAX_PROMPT_BYTES);
        truncate_bytes(&mut text, MAX_PROMPT_BYTES - 1);
        assert_eq!(text.len(), MAX_PROMPT_BYTES - 2);
    }
}
