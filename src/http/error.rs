//! `ApiError` → HTTP response: status, headers and the OpenAI-shaped body, logged once here.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::error::{ApiError, ErrorBody};

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
            // Whole seconds, rounded up, at least one: a client must never be told to retry at once.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            builder.insert_header(("retry-after", secs.max(1).to_string()));
        }
        if let Some(provider) = self.provider() {
            builder.insert_header(("x-ai-gateway-provider", provider.as_str()));
        }
        builder.insert_header(("x-ai-gateway-attempts", self.attempts_made().to_string()));
        builder.json(ErrorBody::from(self))
    }
}
