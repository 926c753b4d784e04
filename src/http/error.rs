//! `ApiError` → HTTP response: status, headers and the body in the client's dialect, logged once
//! here. Every route answers in OpenAI's shape except `/v1/messages`, whose handler returns
//! `AnthropicError` and whose middleware refusals find `Dialect::Anthropic` in the request's
//! extensions (set by `anthropic_dialect`).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpRequest, HttpResponse, ResponseError};

use crate::domain::Dialect;
use crate::error::{AnthropicErrorBody, ApiError, ErrorBody, ceil_secs};

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        respond(self, Dialect::OpenAi)
    }
}

/// An `ApiError` answered in Anthropic's error shape: what the `/v1/messages` handler returns.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct AnthropicError(#[from] pub ApiError);

impl ResponseError for AnthropicError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        respond(&self.0, Dialect::Anthropic)
    }
}

/// The dialect errors on this request must be answered in.
pub fn dialect_of(req: &HttpRequest) -> Dialect {
    req.extensions().get::<Dialect>().copied().unwrap_or_default()
}

/// Marks a route's requests as Anthropic-dialect, so that refusals by later middleware (keys,
/// limits) answer in Anthropic's error shape.
pub async fn anthropic_dialect(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    req.extensions_mut().insert(Dialect::Anthropic);
    next.call(req).await
}

/// The one renderer: logs (5xx at `error`, 4xx at `debug`), sets `Retry-After`, `x-ratelimit-*`,
/// `www-authenticate` and the gateway's headers, and writes the body in `dialect`'s shape.
pub fn respond(e: &ApiError, dialect: Dialect) -> HttpResponse {
    let status = e.status_code();
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), error = %e, cause = ?std::error::Error::source(e), "request failed");
    } else {
        tracing::debug!(status = status.as_u16(), error = %e, "request refused");
    }
    let mut builder = HttpResponse::build(status);
    if let Some(wait) = e.retry_after() {
        builder.insert_header(("retry-after", ceil_secs(wait).to_string()));
    }
    if let ApiError::RateLimited { decision, .. } = e {
        super::render::rate_limit_headers(&mut builder, decision);
    }
    if let ApiError::BudgetExceeded { remaining_usd, .. } = e {
        // SDKs and coding agents retry 429s on their own; a spent budget stays spent.
        builder.insert_header(("x-should-retry", "false"));
        builder.insert_header(("x-ai-gateway-budget-remaining-usd", format!("{remaining_usd:.6}")));
    }
    if let ApiError::Auth(a) = e
        && a.status() == 401
    {
        builder.insert_header(("www-authenticate", "Bearer"));
    }
    if let Some(provider) = e.provider() {
        builder.insert_header(("x-ai-gateway-provider", provider.as_str()));
    }
    builder.insert_header(("x-ai-gateway-attempts", e.attempts_made().to_string()));
    match dialect {
        Dialect::OpenAi | Dialect::Responses => builder.json(ErrorBody::from(e)),
        Dialect::Anthropic => builder.json(AnthropicErrorBody::from(e)),
    }
}
