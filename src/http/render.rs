//! `Answer` → `HttpResponse`: JSON forwarded as-is (with `x-ai-gateway-cache: hit|miss` when the
//! response cache applied), or `text/event-stream` relayed unbuffered; both say
//! `x-ai-gateway-dropped-tools` when a provider bridging `/v1/responses` left hosted tools out.

use actix_web::HttpResponse;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};

use crate::domain::Decision;
use crate::error::ceil_secs;
use crate::pipeline::Answer;

/// `x-ratelimit-limit`, `-remaining`, `-reset` (seconds until the full burst is back).
pub fn rate_limit_headers(builder: &mut actix_web::HttpResponseBuilder, d: &Decision) {
    builder.insert_header(("x-ratelimit-limit", d.limit.to_string()));
    builder.insert_header(("x-ratelimit-remaining", d.remaining.to_string()));
    builder.insert_header(("x-ratelimit-reset", ceil_secs(d.reset_after).to_string()));
}

/// Lists the hosted tool types a bridged `/v1/responses` left out, comma-separated.
const DROPPED_TOOLS: &str = "x-ai-gateway-dropped-tools";

fn dropped_tools(response: &mut actix_web::HttpResponseBuilder, dropped: &[String]) {
    if !dropped.is_empty() {
        response.insert_header((DROPPED_TOOLS, dropped.join(",")));
    }
}

/// Names the provider that answered and the attempts it took.
pub fn answer(answer: Answer) -> HttpResponse {
    match answer {
        Answer::Json {
            body,
            content_type,
            provider,
            attempts,
            cache,
            dropped_tools: dropped,
            cost_usd,
        } => {
            let mut response = HttpResponse::Ok();
            dropped_tools(&mut response, &dropped);
            if let Some(usd) = cost_usd {
                response.insert_header(("x-ai-gateway-cost-usd", format!("{usd:.9}")));
            }
            response
                .insert_header((CONTENT_TYPE, content_type))
                .insert_header(("x-ai-gateway-provider", provider.as_str()))
                .insert_header(("x-ai-gateway-attempts", attempts.to_string()));
            if let Some(status) = cache {
                response.insert_header((crate::cache::HEADER, status.as_str()));
            }
            response.body(body)
        }
        Answer::Stream {
            body,
            provider,
            attempts,
            dropped_tools: dropped,
        } => {
            let mut response = HttpResponse::Ok();
            response
                .insert_header((CONTENT_TYPE, "text/event-stream"))
                .insert_header((CACHE_CONTROL, "no-cache"))
                // Tells nginx-style proxies in front of us not to buffer the events either.
                .insert_header(("x-accel-buffering", "no"))
                .insert_header(("x-ai-gateway-provider", provider.as_str()))
                .insert_header(("x-ai-gateway-attempts", attempts.to_string()));
            dropped_tools(&mut response, &dropped);
            response.streaming(body)
        }
    }
}
