//! `ApiError` → HTTP response: status, headers and the OpenAI-shaped body, logged once here.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::error::{ApiError, ErrorBody, ceil_secs};

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self, cause = ?std::error::Error::source(self), "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %self, "request refused");
        }
        let mut builder = HttpResponse::build(status);
        if let Some(wait) = self.retry_after() {
            builder.insert_header(("retry-after", ceil_secs(wait).to_string()));
        }
        if let ApiError::RateLimited { decision, .. } = self {
            super::render::rate_limit_headers(&mut builder, decision);
        }
        if let ApiError::Auth(e) = self
            && e.status() == 401
        {
            builder.insert_header(("www-authenticate", "Bearer"));
        }
        if let Some(provider) = self.provider() {
            builder.insert_header(("x-ai-gateway-provider", provider.as_str()));
        }
        builder.insert_header(("x-ai-gateway-attempts", self.attempts_made().to_string()));
        builder.json(ErrorBody::from(self))
    }
}
