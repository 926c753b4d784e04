//! `Answer` → `HttpResponse`: JSON forwarded as-is, or `text/event-stream` relayed unbuffered.

use actix_web::HttpResponse;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};

use crate::pipeline::Answer;

/// Names the provider that answered and the attempts it took.
pub fn answer(answer: Answer) -> HttpResponse {
    match answer {
        Answer::Json {
            body,
            content_type,
            provider,
            attempts,
        } => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, content_type))
            .insert_header(("x-ai-gateway-provider", provider.as_str()))
            .insert_header(("x-ai-gateway-attempts", attempts.to_string()))
            .body(body),
        Answer::Stream {
            body,
            provider,
            attempts,
        } => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, "text/event-stream"))
            .insert_header((CACHE_CONTROL, "no-cache"))
            // Tells nginx-style proxies in front of us not to buffer the events either.
            .insert_header(("x-accel-buffering", "no"))
            .insert_header(("x-ai-gateway-provider", provider.as_str()))
            .insert_header(("x-ai-gateway-attempts", attempts.to_string()))
            .streaming(body),
    }
}
