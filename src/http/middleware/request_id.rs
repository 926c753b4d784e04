//! Request id, access log and HTTP metrics: every request gets an `x-request-id` (the client's when
//! safe, else a UUIDv7), a root span carrying it, one log line and one metrics observation when its
//! response starts. While shutdown drains, every response closes its connection.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};
use tracing::Instrument;

use crate::domain::{RequestId, TraceContext};
use crate::state::AppState;
use crate::telemetry::traces;

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// Assigns the request id, runs the request inside its span, echoes the id, logs and counts it.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let mut id = RequestId::from_client(req.headers().get(&X_REQUEST_ID).map(HeaderValue::as_bytes));
    let method = req.method().clone();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    // A path route is labelled by its configured path (bounded), not the catch-all's pattern.
    let route = state
        .as_ref()
        .and_then(|s| crate::pipeline::path_route_label(s, req.match_info().as_str()))
        .or_else(|| req.match_pattern())
        .unwrap_or_else(|| "unmatched".to_owned());
    // The client's W3C context is read whether traces are on or not: with traces off it still goes
    // upstream untouched and its trace id into the history row.
    let client = req.headers().get(&TRACEPARENT).and_then(|parent| {
        TraceContext::from_headers(
            Some(parent.as_bytes()),
            req.headers().get(&TRACESTATE).map(HeaderValue::as_bytes),
        )
    });
    if let Some(trace) = traces::server(client, method.as_str(), &route) {
        id = id.with_trace(trace);
    }
    let trace_id = id.trace_id();
    req.extensions_mut().insert(id.clone());
    let metrics = state.as_ref().map(|s| s.metrics.clone());
    let _in_flight = metrics.as_ref().map(|m| m.track_in_flight());
    let started = Instant::now();
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    let mut res = next.call(req).instrument(span.clone()).await?;
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        res.headers_mut().insert(X_REQUEST_ID, value);
    }
    if state.as_ref().is_some_and(|s| s.shutdown.draining()) {
        // Draining: the client's next request opens a new connection, which the load balancer
        // sends to another replica.
        res.response_mut()
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
    }
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    if let Some(m) = &metrics {
        m.observe_http(&route, status, elapsed);
    }
    let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let provider = header("x-ai-gateway-provider");
    let attempts = header("x-ai-gateway-attempts");
    tracing::info!(
        parent: &span,
        request_id = %id,
        method = %method,
        route = %route,
        trace_id = trace_id.as_deref(),
        status,
        provider = provider.as_deref(),
        attempts = attempts.as_deref(),
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    Ok(res)
}
