//! `Body`: the request body as bytes, refused with 413 past `limits.max_body_bytes`.
//!
//! actix's own `Bytes` extractor answers an oversized body in plain text; this one answers in the
//! OpenAI error shape and checks `Content-Length` before reading anything.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::dialects::BodyError;
use crate::error::ApiError;
use crate::state::AppState;

/// The whole request body.
pub struct Body(pub Bytes);

impl FromRequest for Body {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limits = req
            .app_data::<web::Data<AppState>>()
            .map(|s| s.live().config.settings.limits.clone());
        let limit = limits.as_ref().map_or(usize::MAX, |l| l.max_body_bytes);
        let timeout = limits
            .as_ref()
            .map_or(std::time::Duration::from_secs(30), |l| l.body_timeout());
        let declared = req
            .headers()
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if declared.is_some_and(|n| n > limit) {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            let mut buf = BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(limit));
            let deadline = tokio::time::Instant::now() + timeout;
            // A body trickled in (slowloris) must not hold a worker's memory and a connection forever.
            while let Some(chunk) =
                tokio::time::timeout_at(deadline, payload.next())
                    .await
                    .map_err(|_| ApiError::RequestTimeout {
                        seconds: timeout.as_secs_f64(),
                    })?
            {
                let chunk = chunk.map_err(|e| {
                    ApiError::InvalidRequest(BodyError {
                        message: format!("could not read the request body: {e}"),
                        param: None,
                        code: "invalid_body",
                    })
                })?;
                if buf.len() + chunk.len() > limit {
                    return Err(ApiError::PayloadTooLarge { limit });
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(Body(buf.freeze()))
        })
    }
}
