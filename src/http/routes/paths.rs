//! The catch-all (registered last): a path route's path goes to `pipeline::forward_path`, any other
//! POST to seed 000's GPU-node proxy.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::auth::Caller;
use crate::domain::RequestId;
use crate::error::ApiError;
use crate::http::body::Body;
use crate::pipeline::{self, PathAnswer, PathCall};
use crate::state::AppState;

/// Serves a path route, or hands a POST to the GPU-node proxy.
pub async fn dispatch(
    state: web::Data<AppState>,
    id: web::ReqData<RequestId>,
    caller: Option<web::ReqData<Caller>>,
    req: HttpRequest,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    // Looked up by the path the router saw (percent-decoded), forwarded as the client wrote it.
    let route_path = req.match_info().as_str().to_owned();
    if !pipeline::is_path_route(&state, &route_path) {
        return super::nodes::proxy(state, id, caller, req, body).await;
    }
    let call = PathCall {
        method: req.method().as_str().to_owned(),
        path: req.path().to_owned(),
        route_path,
        query: Some(req.query_string().to_owned()).filter(|q| !q.is_empty()),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect(),
        body: body.0,
    };
    Ok(relay(
        pipeline::forward_path(&state, &id, caller.as_deref(), call).await?,
    ))
}

/// The target's status, headers and streamed body, naming the target and the attempts made.
fn relay(a: PathAnswer) -> HttpResponse {
    let mut out = HttpResponse::build(StatusCode::from_u16(a.status).unwrap_or(StatusCode::BAD_GATEWAY));
    for (name, value) in &a.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value)) {
            out.append_header((n, v));
        }
    }
    out.insert_header(("x-ai-gateway-provider", a.target.as_str()));
    out.insert_header(("x-ai-gateway-attempts", a.attempts.to_string()));
    out.streaming(a.body)
}
