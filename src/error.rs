//! `ApiError`: the one error type that becomes an HTTP response, and the single place that decides
//! what an inner failure means to a client (status, `type`, `code`, `param`).
//!
//! Depends on `domain`. Rendering to actix lives in `http/error.rs`; bodies are built only by
//! `ErrorBody::from(&ApiError)` (OpenAI's shape, every endpoint) and
//! `AnthropicErrorBody::from(&ApiError)` (Anthropic's, for `/v1/messages`).

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::config::ConfigError;
use crate::dialects::BodyError;
use crate::domain::{AttemptSummary, AuthError, Decision, ProviderId};
use crate::nodes::NodeError;
use crate::providers::UpstreamError;
use crate::routing::NoRoute;
use crate::store::{HistoryError, KeyError};

/// Which budget a 429 is about (OpenAI's `type` for rate limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// Requests per minute.
    Requests,
    /// Tokens per minute.
    Tokens,
}

impl LimitKind {
    /// `requests` or `tokens`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::Tokens => "tokens",
        }
    }
}

/// Whole seconds, rounded up, at least one: a client must never be told to retry at once.
pub fn ceil_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

/// Everything a request can fail with, as the client will see it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The client's body or parameters are wrong (400).
    #[error("{}", .0.message)]
    InvalidRequest(#[from] BodyError),
    /// The body is larger than `limits.max_body_bytes` (413).
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The client sent its body too slowly (408).
    #[error("the request body did not arrive within {seconds} s")]
    RequestTimeout {
        /// The configured limit.
        seconds: f64,
    },
    /// No route here (404).
    #[error("no route for {method} {path}")]
    RouteNotFound {
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
    },
    /// The route exists with other methods (405).
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed {
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
    },
    /// An admin API item (route, user, key, provider...) does not exist (404).
    #[error("{message}")]
    NotFound {
        /// What was not found.
        message: String,
    },
    /// An admin API create names an item that already exists (409).
    #[error("{message}")]
    Conflict {
        /// What already exists.
        message: String,
    },
    /// A repeated `Idempotency-Key` or `x-request-id` that cannot be answered from the first
    /// execution (409: a stream, or still running; 422: another body).
    #[error("{message}")]
    Idempotency {
        /// 409 or 422.
        status: u16,
        /// `idempotency_key_reused`, `idempotency_stream_not_replayable`, `idempotency_in_progress`.
        code: &'static str,
        /// What happened and what to do.
        message: String,
    },
    /// No enabled provider serves the model (404).
    #[error("the model `{model}` does not exist or no enabled provider serves it")]
    ModelNotFound {
        /// The model as requested.
        model: String,
    },
    /// An upstream refused the client's input (its 400/413/422...): returned as-is, never replayed.
    #[error("{message}")]
    UpstreamRejected {
        /// The upstream's status.
        status: u16,
        /// The upstream's own message, when it sent one in a known shape.
        message: String,
        /// The upstream's `type`, if any.
        error_type: Option<String>,
        /// The upstream's `code`, if any.
        code: Option<String>,
        /// The upstream's `param`, if any.
        param: Option<String>,
        /// Who refused.
        provider: ProviderId,
        /// Upstream calls made.
        attempts: usize,
    },
    /// Every candidate's breaker is open (503 + `Retry-After`).
    #[error("every provider for this model is temporarily unavailable (circuit breaker open)")]
    ProvidersUnavailable {
        /// When the earliest breaker lets a probe through.
        retry_after: Option<Duration>,
    },
    /// A candidate was passed by over its concurrency cap (its queue full, or no slot in time) and
    /// no other answered (503 + `Retry-After`).
    #[error("overloaded: {} at its concurrency cap; retry after {} s", .levels.join(", "), ceil_secs(*.retry_after))]
    Overloaded {
        /// Each level that refused, as `provider <id> (queue full)`, `node <url> (...)` or
        /// `route <name> target <n> (...)`.
        levels: Vec<String>,
        /// The refusing queues' shortest longest wait.
        retry_after: Duration,
        /// Every attempt (other candidates may have been called and failed).
        attempts: Vec<AttemptSummary>,
    },
    /// Every candidate was tried and failed (502).
    #[error("{}", describe_attempts(.attempts))]
    AllProvidersFailed {
        /// What each attempt came to.
        attempts: Vec<AttemptSummary>,
    },
    /// Every upstream that was called answered with a body over `limits.max_response_bytes` (502).
    #[error(
        "the upstream response is larger than limits.max_response_bytes ({limit} bytes) and was not read to its end; ask for a shorter answer (e.g. max_tokens) or raise the limit"
    )]
    ResponseTooLarge {
        /// `limits.max_response_bytes`.
        limit: usize,
        /// What each attempt came to.
        attempts: Vec<AttemptSummary>,
    },
    /// Missing or wrong credentials (401), or credentials without the needed permission (403).
    #[error("{0}")]
    Auth(#[from] AuthError),
    /// The caller may not use this model (403).
    #[error("this key may not use model `{model}`")]
    ModelNotAllowed {
        /// The model as requested.
        model: String,
    },
    /// `/api/u/{user}/...` names a user other than the caller (403).
    #[error("these credentials do not belong to user `{user}`")]
    WrongUser {
        /// The user in the path.
        user: String,
    },
    /// The user's grants (`users:`) do not include this route or any provider of this model (403).
    #[error("model `{model}` is not granted to user `{user}`")]
    NotGranted {
        /// The model as requested.
        model: String,
        /// The user in the path.
        user: String,
    },
    /// A request or token limit refused the request (429).
    #[error("rate limit reached for {}: retry after {} s", .kind.as_str(), ceil_secs(.decision.retry_after))]
    RateLimited {
        /// The refusing check.
        decision: Decision,
        /// Requests or tokens.
        kind: LimitKind,
    },
    /// A budget would be passed, or the model has no price under a budget (429, never retried).
    #[error("budget exceeded for {budget}: {reason}")]
    BudgetExceeded {
        /// The budget: `team research`, `session`, `gateway` (never a key itself).
        budget: String,
        /// Why: what remains against what the request may cost, or that the model has no price.
        reason: String,
        /// What remains of it, USD.
        remaining_usd: f64,
        /// Until the period ends (`None` for a `total` budget).
        retry_after: Option<Duration>,
    },
    /// `/ai/task`: no provider could answer (503, as seed 004 answers).
    #[error("{}", describe_attempts(.attempts))]
    TaskFailed {
        /// What each attempt came to.
        attempts: Vec<AttemptSummary>,
    },
    /// A dependency of the gateway itself (the history database) is down (503).
    #[error("{message}")]
    Unavailable {
        /// What is unavailable.
        message: String,
    },
    /// A bug or an unexpected local failure (500); the cause is logged, not shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

fn describe_attempts(attempts: &[AttemptSummary]) -> String {
    if attempts.is_empty() {
        return "no provider is enabled: set a provider key (e.g. OPENAI_API_KEY, MISTRAL_API_KEY) or declare `providers:` in the config".into();
    }
    let mut out = String::from("all providers failed:");
    for (i, a) in attempts.iter().enumerate() {
        let sep = if i == 0 { " " } else { "; " };
        let _ = write!(out, "{sep}{} ({})", a.provider, a.outcome.as_str());
        if let Some(status) = a.status {
            let _ = write!(out, " HTTP {status}");
        }
    }
    out
}

/// An upstream's refusal of the client's input (its 4xx, `classify`'s give-up) after `calls`
/// upstream calls: handed back in the OpenAI shape with the upstream's own fields.
#[derive(Debug)]
pub struct Rejection {
    /// The refusal.
    pub error: UpstreamError,
    /// Upstream calls made.
    pub calls: usize,
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        let detail = r.error.detail.map(|d| *d).unwrap_or_default();
        let status = r.error.status.unwrap_or(400);
        let message = if detail.message.is_empty() {
            format!("the upstream provider rejected the request (HTTP {status})")
        } else {
            detail.message
        };
        Self::UpstreamRejected {
            status,
            message,
            error_type: detail.error_type,
            code: detail.code,
            param: detail.param,
            provider: r.error.provider,
            attempts: r.calls,
        }
    }
}

/// An unknown model (404), or a model only node pools serve while none of their nodes is online
/// (503).
impl From<NoRoute> for ApiError {
    fn from(e: NoRoute) -> Self {
        if e.pools_without_nodes.is_empty() {
            return Self::ModelNotFound { model: e.model };
        }
        let pools: Vec<&str> = e.pools_without_nodes.iter().map(|p| p.as_str()).collect();
        Self::Unavailable {
            message: format!(
                "no node of {} is online to serve model `{}`; see GET /nodes",
                pools.join(", "),
                e.model
            ),
        }
    }
}

/// A node registration the client got wrong (400), with the field it concerns.
impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        let (param, code) = match &e {
            NodeError::NoPool => ("pool", "no_node_pool"),
            NodeError::UnknownPool { .. } => ("pool", "unknown_pool"),
            NodeError::BadUrl(_) => ("url", "invalid_value"),
            NodeError::NotAllowed { .. } => ("url", "network_not_allowed"),
        };
        Self::InvalidRequest(BodyError {
            message: e.to_string(),
            param: Some(param.into()),
            code,
        })
    }
}

/// The database is down (503): the cause is logged here, never shown to the client.
impl From<HistoryError> for ApiError {
    fn from(e: HistoryError) -> Self {
        tracing::warn!(error = %e, "database unavailable");
        Self::Unavailable {
            message: "the database is unavailable; try again later".into(),
        }
    }
}

/// A key that cannot be created or revoked: 400 naming what is wrong, or the database's 503.
impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Invalid(message) => Self::InvalidRequest(BodyError {
                message,
                param: None,
                code: "invalid_value",
            }),
            KeyError::Field { param, message } => Self::InvalidRequest(BodyError {
                message: format!("{param}: {message}"),
                param: Some(param.to_owned()),
                code: "invalid_value",
            }),
            KeyError::Store(e) => e.into(),
        }
    }
}

/// A configuration change that would leave the configuration invalid (400): every problem, in
/// one message (the CLI prints it as `Error: ...`).
impl From<ConfigError> for ApiError {
    fn from(e: ConfigError) -> Self {
        Self::InvalidRequest(BodyError {
            message: e.problems.join("; "),
            param: None,
            code: "invalid_value",
        })
    }
}

impl ApiError {
    /// Wraps an unexpected failure.
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(e))
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidRequest(_) => 400,
            Self::PayloadTooLarge { .. } => 413,
            Self::RequestTimeout { .. } => 408,
            Self::RouteNotFound { .. } | Self::ModelNotFound { .. } | Self::NotFound { .. } => 404,
            Self::Conflict { .. } => 409,
            Self::Idempotency { status, .. } => *status,
            Self::MethodNotAllowed { .. } => 405,
            Self::UpstreamRejected { status, .. } => *status,
            Self::ProvidersUnavailable { .. }
            | Self::Unavailable { .. }
            | Self::TaskFailed { .. }
            | Self::Overloaded { .. } => 503,
            Self::Auth(e) => e.status(),
            Self::ModelNotAllowed { .. } | Self::WrongUser { .. } | Self::NotGranted { .. } => 403,
            Self::RateLimited { .. } | Self::BudgetExceeded { .. } => 429,
            Self::AllProvidersFailed { .. } | Self::ResponseTooLarge { .. } => 502,
            Self::Internal(_) => 500,
        }
    }

    /// OpenAI's `error.type`.
    pub fn error_type(&self) -> &str {
        match self {
            Self::UpstreamRejected {
                error_type: Some(t), ..
            } => t,
            Self::Auth(e) if e.status() == 401 => "invalid_request_error",
            Self::Auth(_) | Self::ModelNotAllowed { .. } | Self::WrongUser { .. } | Self::NotGranted { .. } => {
                "permission_error"
            }
            Self::RateLimited { kind, .. } => kind.as_str(),
            Self::BudgetExceeded { .. } => "budget_exceeded",
            Self::Overloaded { .. } => "overloaded",
            Self::InvalidRequest(_)
            | Self::PayloadTooLarge { .. }
            | Self::RequestTimeout { .. }
            | Self::RouteNotFound { .. }
            | Self::MethodNotAllowed { .. }
            | Self::ModelNotFound { .. }
            | Self::NotFound { .. }
            | Self::Conflict { .. }
            | Self::Idempotency { .. }
            | Self::UpstreamRejected { .. } => "invalid_request_error",
            Self::ProvidersUnavailable { .. }
            | Self::AllProvidersFailed { .. }
            | Self::ResponseTooLarge { .. }
            | Self::Unavailable { .. }
            | Self::TaskFailed { .. }
            | Self::Internal(_) => "server_error",
        }
    }

    /// OpenAI's `error.code`; a closed set except for codes an upstream sent.
    pub fn code(&self) -> Option<&str> {
        Some(match self {
            Self::InvalidRequest(e) => e.code,
            Self::PayloadTooLarge { .. } => "request_too_large",
            Self::RequestTimeout { .. } => "request_timeout",
            Self::RouteNotFound { .. } | Self::NotFound { .. } => "not_found",
            Self::Conflict { .. } => "conflict",
            Self::Idempotency { code, .. } => code,
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::ModelNotFound { .. } => "model_not_found",
            Self::UpstreamRejected { code, .. } => return code.as_deref(),
            Self::ProvidersUnavailable { .. } => "providers_unavailable",
            Self::Overloaded { .. } => "overloaded",
            Self::AllProvidersFailed { .. } | Self::TaskFailed { .. } => "all_providers_failed",
            Self::ResponseTooLarge { .. } => "upstream_response_too_large",
            Self::Unavailable { .. } => "service_unavailable",
            Self::Auth(AuthError::NotAdmin) => "forbidden",
            Self::Auth(AuthError::AdminDisabled | AuthError::WorkerDisabled) => "admin_api_disabled",
            Self::Auth(_) => "invalid_api_key",
            Self::ModelNotAllowed { .. } => "model_not_allowed",
            Self::WrongUser { .. } => "user_mismatch",
            Self::NotGranted { .. } => "model_not_granted",
            Self::RateLimited { .. } => "rate_limit_exceeded",
            Self::BudgetExceeded { .. } => "budget_exceeded",
            Self::Internal(_) => "internal_error",
        })
    }

    /// OpenAI's `error.param`.
    pub fn param(&self) -> Option<&str> {
        match self {
            Self::InvalidRequest(e) => e.param.as_deref(),
            Self::ModelNotFound { .. } | Self::ModelNotAllowed { .. } | Self::NotGranted { .. } => Some("model"),
            Self::UpstreamRejected { param, .. } => param.as_deref(),
            _ => None,
        }
    }

    /// `Retry-After` to send, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::ProvidersUnavailable { retry_after } => *retry_after,
            Self::RateLimited { decision, .. } => Some(decision.retry_after),
            Self::BudgetExceeded { retry_after, .. } => *retry_after,
            Self::Overloaded { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The provider that produced this answer, for `x-ai-gateway-provider`.
    pub fn provider(&self) -> Option<&ProviderId> {
        match self {
            Self::UpstreamRejected { provider, .. } => Some(provider),
            _ => None,
        }
    }

    /// Upstream calls made, for `x-ai-gateway-attempts`.
    pub fn attempts_made(&self) -> usize {
        match self {
            Self::UpstreamRejected { attempts, .. } => *attempts,
            Self::AllProvidersFailed { attempts }
            | Self::TaskFailed { attempts }
            | Self::ResponseTooLarge { attempts, .. }
            | Self::Overloaded { attempts, .. } => attempts.iter().filter(|a| a.was_called()).count(),
            _ => 0,
        }
    }
}

/// `{"error": {"message", "type", "param", "code"}}` — `param` and `code` always present.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    /// The error object.
    pub error: ErrorDetail<'a>,
}

/// The inside of `ErrorBody`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail<'a> {
    /// Human-readable; says what was wrong and how to fix it.
    pub message: String,
    /// OpenAI error type.
    #[serde(rename = "type")]
    pub error_type: &'a str,
    /// Offending parameter or null.
    pub param: Option<&'a str>,
    /// Machine-readable code or null.
    pub code: Option<&'a str>,
}

impl<'a> From<&'a ApiError> for ErrorBody<'a> {
    fn from(e: &'a ApiError) -> Self {
        Self {
            error: ErrorDetail {
                message: e.to_string(),
                error_type: e.error_type(),
                param: e.param(),
                code: e.code(),
            },
        }
    }
}

impl ApiError {
    /// Anthropic's `error.type` for this error: the upstream's own when an Anthropic upstream
    /// sent one, else the type Anthropic uses for the status.
    pub fn anthropic_type(&self) -> &str {
        const KNOWN: &[&str] = &[
            "invalid_request_error",
            "authentication_error",
            "permission_error",
            "not_found_error",
            "request_too_large",
            "rate_limit_error",
            "api_error",
            "overloaded_error",
        ];
        if let Self::UpstreamRejected {
            error_type: Some(t), ..
        } = self
            && KNOWN.contains(&t.as_str())
        {
            return t;
        }
        match self.status() {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            503 | 529 => "overloaded_error",
            s if s >= 500 => "api_error",
            _ => "invalid_request_error",
        }
    }
}

/// Anthropic's error shape, `{"type": "error", "error": {"type", "message"}}`, built from the same
/// `ApiError` as `ErrorBody`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AnthropicErrorBody<'a> {
    /// Always `error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The error object.
    pub error: AnthropicErrorDetail<'a>,
}

/// The inside of `AnthropicErrorBody`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AnthropicErrorDetail<'a> {
    /// Anthropic error type (`invalid_request_error`, `authentication_error`, ...).
    #[serde(rename = "type")]
    pub error_type: &'a str,
    /// Human-readable; says what was wrong and how to fix it.
    pub message: String,
}

impl<'a> From<&'a ApiError> for AnthropicErrorBody<'a> {
    fn from(e: &'a ApiError) -> Self {
        Self {
            kind: "error",
            error: AnthropicErrorDetail {
                error_type: e.anthropic_type(),
                message: e.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AttemptOutcome;
    use serde_json::json;

    #[test]
    fn model_not_found_renders_in_openai_shape() {
        let e = ApiError::ModelNotFound { model: "x".into() };
        let body = serde_json::to_value(ErrorBody::from(&e)).unwrap();
        assert_eq!(e.status(), 404);
        assert_eq!(body["error"]["code"], json!("model_not_found"));
        assert_eq!(body["error"]["type"], json!("invalid_request_error"));
        assert_eq!(body["error"]["param"], json!("model"));
    }

    #[test]
    fn param_and_code_are_always_present() {
        let e = ApiError::PayloadTooLarge { limit: 1 };
        let body = serde_json::to_value(ErrorBody::from(&e)).unwrap();
        assert!(body["error"].as_object().unwrap().contains_key("param"));
        assert_eq!(body["error"]["param"], serde_json::Value::Null);
    }

    #[test]
    fn all_failed_names_each_attempt() {
        let a = |p: &str, o, s| AttemptSummary {
            provider: ProviderId::new(p),
            upstream_model: "m".into(),
            outcome: o,
            status: s,
            latency: Duration::ZERO,
        };
        let e = ApiError::AllProvidersFailed {
            attempts: vec![
                a("one", AttemptOutcome::ServerError, Some(500)),
                a("two", AttemptOutcome::Timeout, None),
            ],
        };
        assert_eq!(
            e.to_string(),
            "all providers failed: one (server_error) HTTP 500; two (timeout)"
        );
        assert_eq!(e.status(), 502);
        assert_eq!(e.attempts_made(), 2);
    }

    #[test]
    fn overloaded_is_a_503_naming_each_level_with_retry_after() {
        let e = ApiError::Overloaded {
            levels: vec![
                "provider openai (queue full)".into(),
                "route chat target 0 (no slot within 2000 ms)".into(),
            ],
            retry_after: Duration::from_millis(1500),
            attempts: vec![],
        };
        assert_eq!(e.status(), 503);
        assert_eq!((e.error_type(), e.code()), ("overloaded", Some("overloaded")));
        assert_eq!(e.retry_after(), Some(Duration::from_millis(1500)));
        assert_eq!(
            e.to_string(),
            "overloaded: provider openai (queue full), route chat target 0 (no slot within 2000 ms) at its concurrency cap; retry after 2 s"
        );
        assert_eq!(e.anthropic_type(), "overloaded_error");
    }

    #[test]
    fn anthropic_shape_names_anthropic_types() {
        let e = ApiError::ModelNotFound { model: "x".into() };
        let body = serde_json::to_value(AnthropicErrorBody::from(&e)).unwrap();
        assert_eq!(body["type"], json!("error"));
        assert_eq!(body["error"]["type"], json!("not_found_error"));
        assert!(body["error"]["message"].as_str().unwrap().contains("`x`"));
        assert_eq!(
            ApiError::Auth(AuthError::Missing).anthropic_type(),
            "authentication_error"
        );
        assert_eq!(
            ApiError::ProvidersUnavailable { retry_after: None }.anthropic_type(),
            "overloaded_error"
        );
        assert_eq!(
            ApiError::AllProvidersFailed { attempts: vec![] }.anthropic_type(),
            "api_error"
        );
    }
}
