//! Limits as `from_fn` middleware: runs after a credentials check, asks `pipeline::admit`, answers
//! 429 with `Retry-After` and `x-ratelimit-*`, and puts the same headers on admitted responses.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};

use crate::auth::Caller;
use crate::error::ceil_secs;
use crate::http::error::{dialect_of, respond};
use crate::pipeline;
use crate::state::AppState;

/// Admits or refuses the request by the caller's limits.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let caller = req.extensions().get::<Caller>().cloned();
    let (Some(state), Some(caller)) = (state, caller) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let route = req.match_pattern().unwrap_or_default();
    let path = super::canonical::policy_path(&req);
    match pipeline::admit(&state, &caller, &route, &path).await {
        Ok(decision) => {
            let mut res = next.call(req).await?;
            if let Some(d) = decision {
                let headers = res.headers_mut();
                for (name, value) in [
                    ("x-ratelimit-limit", d.limit.to_string()),
                    ("x-ratelimit-remaining", d.remaining.to_string()),
                    ("x-ratelimit-reset", ceil_secs(d.reset_after).to_string()),
                ] {
                    if let Ok(v) = HeaderValue::from_str(&value) {
                        headers.insert(HeaderName::from_static(name), v);
                    }
                }
            }
            Ok(res.map_into_left_body())
        }
        Err(e) => {
            let response = respond(&e, dialect_of(req.request()));
            Ok(req.into_response(response).map_into_right_body())
        }
    }
}
