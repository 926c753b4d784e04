//! `Row`, the stored shape of a `HistoryRecord` in `ai_requests`: built once per record when it is
//! queued (so a retried batch keeps its ids), inserted by `db`, and read back by `query`.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use std::collections::HashMap;

use super::schema::ai_requests;
use super::{Charge, HistoryRecord};

/// The stored shape of a `HistoryRecord`.
/// Also what the spool keeps (`spool.rs`), as JSON.
#[derive(Debug, Clone, Insertable, Queryable, Selectable, Serialize, Deserialize)]
#[diesel(table_name = ai_requests, treat_none_as_default_value = false)]
pub(super) struct Row {
    pub id: String,
    pub created_at: i64,
    pub request_id: String,
    pub endpoint: String,
    pub task: Option<String>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub upstream_model: Option<String>,
    pub stream: bool,
    pub status: String,
    pub http_status: i32,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub attempts: String,
    pub caller: Option<String>,
    pub error_message: Option<String>,
    pub result_summary: Option<String>,
    pub prompt: Option<String>,
    pub cache: Option<String>,
    pub cached_tokens: Option<i64>,
    pub cache_write_tokens: Option<i64>,
    pub reasoning_tokens: Option<i64>,
    pub session_id: Option<String>,
    pub cost_usd: Option<f64>,
    pub cost_estimated: bool,
    pub team: Option<String>,
    pub user_name: Option<String>,
    pub tags: Option<String>,
    pub trace_id: Option<String>,
}

/// Each row's cost and the budgets it is charged to, by row id, for the spend ledger.
pub(super) type Charges = HashMap<String, (f64, Vec<Charge>)>;

impl Row {
    /// The row of `r`, noting its ledger charges in `charges` (a priced request with budgets).
    pub(super) fn with_charges(r: &mut HistoryRecord, charges: &mut Charges) -> Self {
        let row = Self::from(&*r);
        if let Some(cost) = r.cost_usd
            && !r.charges.is_empty()
        {
            charges.insert(row.id.clone(), (cost, std::mem::take(&mut r.charges)));
        }
        row
    }
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl From<&HistoryRecord> for Row {
    fn from(r: &HistoryRecord) -> Self {
        // Serialized straight from borrowed fields (keys in the order a `json!` map sorted them),
        // not through a `Value` tree per attempt.
        #[derive(Serialize)]
        struct Attempt<'a> {
            latency_ms: u64,
            model: &'a str,
            outcome: &'static str,
            provider: &'a str,
            status: Option<u16>,
        }
        let attempts: Vec<Attempt<'_>> = r
            .attempts
            .iter()
            .map(|a| Attempt {
                latency_ms: u64::try_from(a.latency.as_millis()).unwrap_or(u64::MAX),
                model: &a.upstream_model,
                outcome: a.outcome.as_str(),
                provider: a.provider.as_str(),
                status: a.status,
            })
            .collect();
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            created_at: r.created_at_ms,
            request_id: r.request_id.clone(),
            endpoint: r.endpoint.to_string(),
            task: r.task.clone(),
            model: r.model.clone(),
            provider: r.provider.clone(),
            upstream_model: r.upstream_model.clone(),
            stream: r.stream,
            status: r.status.as_str().to_owned(),
            http_status: i32::from(r.http_status),
            latency_ms: signed(r.latency_ms),
            ttft_ms: r.ttft_ms.map(signed),
            prompt_tokens: r.usage.map(|u| signed(u.prompt_tokens)),
            completion_tokens: r.usage.map(|u| signed(u.completion_tokens)),
            total_tokens: r.usage.map(|u| signed(u.total_tokens)),
            attempts: serde_json::to_string(&attempts).unwrap_or_else(|_| "[]".to_owned()),
            caller: r.caller.clone(),
            error_message: r.error_message.clone(),
            result_summary: r.result_summary.clone(),
            prompt: r.prompt.clone(),
            cache: r.cache.map(str::to_owned),
            cached_tokens: r.usage.map(|u| signed(u.cached_tokens)),
            cache_write_tokens: r.usage.map(|u| signed(u.cache_write_tokens)),
            reasoning_tokens: r.usage.map(|u| signed(u.reasoning_tokens)),
            session_id: r.session_id.clone(),
            cost_usd: r.cost_usd,
            cost_estimated: r.cost_estimated,
            team: r.team.clone(),
            user_name: r.user.clone(),
            tags: (!r.tags.is_empty()).then(|| r.tags.join(",")),
            trace_id: r.trace_id.clone(),
        }
    }
}
