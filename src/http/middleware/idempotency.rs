//! Idempotency as `from_fn` middleware on the inference endpoints: a request carrying an
//! `Idempotency-Key`, or an `x-request-id` of the client's own, is claimed in
//! `idempotency::Idempotency` before it runs; a repeat waits for the first and gets its answer
//! (`x-ai-gateway-idempotent-replay: true`), never a second execution. An `Idempotency-Key` reused
//! with another body is refused 422; an `x-request-id` with another body is another request.
//!
//! Runs after the credentials check (the key is per caller) and before the limits (a replay is
//! not a new request). Only a whole non-streamed answer can be replayed: a repeat of a stream, or
//! of an answer over `limits.max_response_bytes`, is refused 409. A failure the client would
//! retry (5xx, 408, 409, 429) frees the key, so the retry runs.

use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, FromRequest, HttpMessage, HttpResponse, web};

use crate::auth::Caller;
use crate::domain::RequestId;
use crate::error::ApiError;
use crate::http::body::Body;
use crate::http::error::{dialect_of, respond};
use crate::idempotency::{Answer, Begin, Done, KEY_HEADER, Key, REPLAY_HEADER};
use crate::state::AppState;

/// The routes whose requests run a model: the only ones deduplicated.
const INFERENCE: &[&str] = &[
    "/v1/chat/completions",
    "/v1/messages",
    "/v1/responses",
    "/v1/completions",
    "/v1/embeddings",
    "/ai/task",
    "/api/u/{user}/chat/completions",
];

/// The longest a repeat waits for the first to finish.
const MAX_WAIT: Duration = Duration::from_secs(300);

/// Claims, waits for or replays the request.
pub async fn idempotency(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    // Most requests name no key: they pass after two header reads, before anything is cloned.
    let inference = || req.match_pattern().is_some_and(|p| INFERENCE.contains(&p.as_str()));
    let Some((kind, value)) = named_key(&req).filter(|_| inference()) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let caller = req.extensions().get::<Caller>().cloned();
    let (Some(state), Some(caller)) = (state, caller) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let (ttl_seconds, max_response_bytes) = {
        let live = state.live();
        let settings = &live.config.settings;
        (settings.idempotency.ttl_seconds, settings.limits.max_response_bytes)
    };
    let ttl = Duration::from_secs(ttl_seconds);
    if ttl.is_zero() {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let body = {
        let (http_req, payload) = req.parts_mut();
        match Body::from_request(http_req, payload).await {
            Ok(Body(bytes)) => bytes,
            Err(e) => return Ok(refuse(req, &e)),
        }
    };
    let key = if kind == KEY_HEADER {
        Key::new(&caller.id, kind, &value, req.path(), &body)
    } else {
        Key::with_body(&caller.id, kind, &value, req.path(), &body)
    };
    req.set_payload(Payload::from(body));
    let count = |result: &str| state.metrics.observe_idempotency(result);
    let claim = match state.idempotency.begin(&key, ttl, ttl.min(MAX_WAIT)).await {
        Begin::Execute(claim) => {
            count("executed");
            claim
        }
        Begin::Replay(Done::Answer(answer)) => {
            count("replayed");
            return Ok(replay(req, &answer));
        }
        Begin::Replay(Done::Unreplayable) => {
            count("not_replayable");
            return Ok(refuse(req, &unreplayable(kind)));
        }
        Begin::Mismatch => {
            count("reused");
            return Ok(refuse(req, &reused(kind)));
        }
        Begin::StillRunning => {
            count("in_progress");
            return Ok(refuse(req, &still_running(kind)));
        }
    };
    let res = match claim.hold(next.call(req)).await {
        Ok(res) => res,
        Err(e) => {
            claim.finish(None).await;
            return Err(e);
        }
    };
    let status = res.status();
    if !kept(status) {
        claim.finish(None).await;
        return Ok(res.map_into_boxed_body());
    }
    let streamed = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let whole = matches!(res.response().body().size(), BodySize::Sized(n) if n <= max_response_bytes as u64)
        || matches!(res.response().body().size(), BodySize::None);
    if streamed || !whole {
        // A stream is relayed as it runs: it cannot be replayed, only refused to a repeat.
        claim.finish(Some(Done::Unreplayable)).await;
        return Ok(res.map_into_boxed_body());
    }
    let headers = kept_headers(res.headers());
    let (http_req, res) = res.into_parts();
    let (res, body) = res.into_parts();
    let bytes = match actix_web::body::to_bytes(body).await {
        Ok(bytes) => bytes,
        Err(e) => {
            claim.finish(None).await;
            return Err(actix_web::error::ErrorInternalServerError(e.into().to_string()));
        }
    };
    claim
        .finish(Some(Done::Answer(std::sync::Arc::new(Answer {
            status: status.as_u16(),
            headers,
            body: bytes.clone(),
        }))))
        .await;
    Ok(ServiceResponse::new(
        http_req,
        res.set_body(bytes).map_into_boxed_body(),
    ))
}

/// The client's `Idempotency-Key`, else its own `x-request-id` (one the gateway made up never
/// repeats, so it is not worth a claim).
fn named_key(req: &ServiceRequest) -> Option<(&'static str, String)> {
    if let Some(v) = req.headers().get(KEY_HEADER).and_then(|v| v.to_str().ok())
        && !v.is_empty()
    {
        return Some((KEY_HEADER, v.to_owned()));
    }
    let sent = req.headers().get("x-request-id")?.as_bytes();
    let id = req.extensions().get::<RequestId>().cloned()?;
    (id.as_str().as_bytes() == sent).then(|| ("x-request-id", id.as_str().to_owned()))
}

/// Answers a client would retry leave no trace, so the retry runs.
fn kept(status: StatusCode) -> bool {
    !(status.is_server_error()
        || matches!(
            status,
            StatusCode::REQUEST_TIMEOUT | StatusCode::CONFLICT | StatusCode::TOO_MANY_REQUESTS
        ))
}

/// What a replay carries besides the body: its type and the gateway's own headers.
fn kept_headers(headers: &actix_web::http::header::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| *name == CONTENT_TYPE || name.as_str().starts_with("x-ai-gateway-"))
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
        .collect()
}

fn replay(req: ServiceRequest, answer: &Answer) -> ServiceResponse<BoxBody> {
    let mut res = HttpResponse::build(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK));
    for (name, value) in &answer.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name.as_str()), HeaderValue::from_str(value)) {
            res.insert_header((n, v));
        }
    }
    res.insert_header((REPLAY_HEADER, "true"));
    req.into_response(res.body(answer.body.clone()))
}

fn refuse(req: ServiceRequest, e: &ApiError) -> ServiceResponse<BoxBody> {
    let response = respond(e, dialect_of(req.request()));
    req.into_response(response)
}

fn reused(kind: &str) -> ApiError {
    ApiError::Idempotency {
        status: 422,
        code: "idempotency_key_reused",
        message: format!(
            "this {kind} was already used with a different request body; send a new {kind} for a new request"
        ),
    }
}

fn unreplayable(kind: &str) -> ApiError {
    ApiError::Idempotency {
        status: 409,
        code: "idempotency_stream_not_replayable",
        message: format!(
            "a request with this {kind} already ran as a stream (or its answer was too large to keep) and cannot be replayed; send a new {kind} to run it again"
        ),
    }
}

fn still_running(kind: &str) -> ApiError {
    ApiError::Idempotency {
        status: 409,
        code: "idempotency_in_progress",
        message: format!("a request with this {kind} is still running; retry later for its answer"),
    }
}
