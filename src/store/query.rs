//! `/history` filters and the item shape (seed 004's fields first, then the rest of the row).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::row::Row;

/// Query parameters of `GET /history`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// At most this many rows (default 50, at most 1000).
    pub limit: Option<i64>,
    /// An id: return the page after it (older rows).
    pub before: Option<String>,
    /// `success`, `error` or `cancelled`.
    pub status: Option<String>,
    /// Provider id.
    pub provider: Option<String>,
    /// Model as requested.
    pub model: Option<String>,
    /// Only rows of this agent session (`session_id`).
    pub session: Option<String>,
    /// RFC 3339 time: only rows created at or after it.
    pub since: Option<String>,
    /// `since` parsed (set by `validate`).
    #[serde(skip)]
    #[param(ignore)]
    pub since_ms: Option<i64>,
    /// Only rows of these callers (set by the pipeline from the credentials, never by a client);
    /// `None` = every caller's rows (the admin token, or auth off).
    #[serde(skip)]
    #[param(ignore)]
    pub callers: Option<Vec<String>>,
}

impl HistoryQuery {
    /// Default page size.
    pub const DEFAULT_LIMIT: i64 = 50;
    /// Largest page.
    pub const MAX_LIMIT: i64 = 1000;

    /// The effective limit.
    pub fn limit(&self) -> i64 {
        self.limit.unwrap_or(Self::DEFAULT_LIMIT).clamp(1, Self::MAX_LIMIT)
    }

    /// Checks values and parses `since`; the error names the parameter.
    pub fn validate(mut self) -> Result<Self, (&'static str, String)> {
        if let Some(limit) = self.limit
            && !(1..=Self::MAX_LIMIT).contains(&limit)
        {
            return Err((
                "limit",
                format!("`limit` must be between 1 and {}, got {limit}", Self::MAX_LIMIT),
            ));
        }
        if let Some(status) = &self.status
            && !matches!(status.as_str(), "success" | "error" | "cancelled")
        {
            return Err((
                "status",
                format!("`status` must be success, error or cancelled, got `{status}`"),
            ));
        }
        // Filters are bound as parameters, never spliced into SQL; still, PostgreSQL refuses a NUL
        // in text, which used to surface as "database unavailable".
        for (param, value) in [
            ("before", &self.before),
            ("provider", &self.provider),
            ("model", &self.model),
            ("session", &self.session),
        ] {
            if let Some(v) = value
                && (v.chars().any(char::is_control) || v.chars().count() > super::MAX_NAME_CHARS)
            {
                return Err((
                    param,
                    format!(
                        "`{param}` must be at most {} characters without control characters",
                        super::MAX_NAME_CHARS
                    ),
                ));
            }
        }
        if let Some(since) = &self.since {
            let at = OffsetDateTime::parse(since, &Rfc3339).map_err(|e| {
                (
                    "since",
                    format!("`since` must be an RFC 3339 time like 2026-01-02T03:04:05Z: {e}"),
                )
            })?;
            self.since_ms = Some(i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MIN));
        }
        Ok(self)
    }
}

/// One `/history` item.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HistoryItem {
    /// Row id (UUIDv7).
    pub id: String,
    /// Creation time, RFC 3339.
    pub timestamp: String,
    /// Task type (`/ai/task`), else null.
    pub task: Option<String>,
    /// Provider that answered.
    pub provider: Option<String>,
    /// Total latency.
    pub latency_ms: i64,
    /// `success`, `error` or `cancelled`.
    pub status: String,
    /// The first 200 characters of the answer.
    pub result_summary: Option<String>,
    /// The caller.
    pub user_id: Option<String>,
    /// Why it failed.
    pub error_message: Option<String>,
    /// `x-request-id`.
    pub request_id: String,
    /// Endpoint path.
    pub endpoint: String,
    /// Model as requested.
    pub model: Option<String>,
    /// Model sent upstream.
    pub upstream_model: Option<String>,
    /// Streamed?
    pub stream: bool,
    /// Status given to the client.
    pub http_status: i32,
    /// Time to first token (streams).
    pub ttft_ms: Option<i64>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    /// Of `prompt_tokens`, those read from the provider's prompt cache.
    pub cached_tokens: Option<i64>,
    /// Of `prompt_tokens`, those written to the provider's prompt cache.
    pub cache_write_tokens: Option<i64>,
    /// Of `completion_tokens`, those spent on reasoning.
    pub reasoning_tokens: Option<i64>,
    /// The coding agent's session (`x-claude-code-session-id`, `session_id`, `session-id`,
    /// `x-session-id`, or Responses' `prompt_cache_key`), else null.
    pub session_id: Option<String>,
    /// Every attempt: provider, model, outcome, status, latency_ms.
    pub attempts: serde_json::Value,
    /// Prompt text (only stored with `LOG_PROMPTS=true`).
    pub prompt: Option<String>,
    /// Creation time, epoch milliseconds.
    pub created_at_ms: i64,
    /// `hit` or `miss` when the response cache applied, else null. A hit names the provider that
    /// first produced the answer and its own (cache) latency.
    pub cache: Option<String>,
    /// What the request cost in USD; null when its model has no price.
    pub cost_usd: Option<f64>,
    /// The cost was estimated from the relayed text (a stream cut before its usage came).
    pub cost_estimated: bool,
    /// The caller's team.
    pub team: Option<String>,
    /// The user the request was spent by.
    pub user: Option<String>,
    /// The tags the client sent in `x-ai-gateway-tags`.
    pub tags: Vec<String>,
    /// The request's W3C trace id (32 hex digits), when it had one: traces on, or a client
    /// `traceparent`.
    pub trace_id: Option<String>,
}

impl From<Row> for HistoryItem {
    fn from(r: Row) -> Self {
        let timestamp = OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.created_at) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default();
        Self {
            id: r.id,
            timestamp,
            task: r.task,
            provider: r.provider,
            latency_ms: r.latency_ms,
            status: r.status,
            result_summary: r.result_summary,
            user_id: r.caller,
            error_message: r.error_message,
            request_id: r.request_id,
            endpoint: r.endpoint,
            model: r.model,
            upstream_model: r.upstream_model,
            stream: r.stream,
            http_status: r.http_status,
            ttft_ms: r.ttft_ms,
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            total_tokens: r.total_tokens,
            cached_tokens: r.cached_tokens,
            cache_write_tokens: r.cache_write_tokens,
            reasoning_tokens: r.reasoning_tokens,
            session_id: r.session_id,
            attempts: serde_json::from_str(&r.attempts).unwrap_or(serde_json::Value::Null),
            prompt: r.prompt,
            created_at_ms: r.created_at,
            cache: r.cache,
            cost_usd: r.cost_usd,
            cost_estimated: r.cost_estimated,
            team: r.team,
            user: r.user_name,
            tags: r
                .tags
                .map(|t| t.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            trace_id: r.trace_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_parses_rfc3339_with_offsets() {
        let q = HistoryQuery {
            since: Some("1970-01-01T01:00:01+01:00".into()),
            ..Default::default()
        };
        assert_eq!(q.validate().unwrap().since_ms, Some(1000));
    }

    #[test]
    fn bad_parameters_are_named() {
        let q = HistoryQuery {
            since: Some("yesterday".into()),
            ..Default::default()
        };
        assert_eq!(q.validate().unwrap_err().0, "since");
        let q = HistoryQuery {
            limit: Some(0),
            ..Default::default()
        };
        assert_eq!(q.validate().unwrap_err().0, "limit");
        let q = HistoryQuery {
            status: Some("ok".into()),
            ..Default::default()
        };
        assert_eq!(q.validate().unwrap_err().0, "status");
        let q = HistoryQuery {
            model: Some("x\0y".into()),
            ..Default::default()
        };
        assert_eq!(q.validate().unwrap_err().0, "model");
        let q = HistoryQuery {
            before: Some("0".repeat(10_000)),
            ..Default::default()
        };
        assert_eq!(q.validate().unwrap_err().0, "before");
    }
}
