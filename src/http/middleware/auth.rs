//! Credentials checks as `from_fn` middleware over `auth::Authenticator`: `client` for inference
//! and read endpoints, `admin` for operator endpoints, `worker` for node heartbeats. The caller is
//! left in the request's extensions for limits, history and handlers.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{AUTHORIZATION, HeaderMap};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};

use crate::auth::{AuthError, Caller, CallerKind, Credentials};
use crate::error::ApiError;
use crate::http::error::{dialect_of, respond};
use crate::state::AppState;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Reads every credential header a request may carry.
fn credentials(headers: &HeaderMap) -> Credentials<'_> {
    let bearer = header(headers, AUTHORIZATION.as_str()).and_then(|v| {
        let (scheme, token) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    Credentials {
        bearer,
        api_key: header(headers, "x-api-key"),
        admin_token: header(headers, "x-admin-token"),
        worker_token: header(headers, "x-worker-token"),
    }
}

fn refuse<B>(req: ServiceRequest, state: Option<&web::Data<AppState>>, e: AuthError) -> ServiceResponse<EitherBody<B>> {
    if let Some(s) = state {
        s.metrics.observe_auth_failure(e.reason());
    }
    let response = respond(&ApiError::Auth(e), dialect_of(req.request()));
    req.into_response(response).map_into_right_body()
}

/// Requires a client key or JWT (anyone, when auth is off).
pub async fn client(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(refuse(req, None, AuthError::Invalid));
    };
    let peer = req.peer_addr().map(|a| a.ip());
    // A path route's `auth` or a `security:` rule narrows who may call this endpoint.
    // The canonical path on the catch-all (so `/raw/%2e%2e/admin` cannot slip past a rule on
    // `/admin`), the matched one on built-in resources.
    let verdict = match state.live().paths.policy(&super::canonical::policy_path(&req)).auth {
        Some(scheme) => state.auth.client_as(scheme, credentials(req.headers()), peer),
        None => state.auth.client(credentials(req.headers()), peer),
    };
    match verdict {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(e) => Ok(refuse(req, Some(&state), e)),
    }
}

/// Marks a request made with the admin token on an endpoint that also serves clients.
#[derive(Debug, Clone, Copy)]
pub struct AdminAccess;

/// The admin token (every caller's data: `/history`, job status and download read `AdminAccess`)
/// or else a client's credentials (its own data). A wrong `X-Admin-Token` is refused, never taken
/// for a client.
pub async fn client_or_admin(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(refuse(req, None, AuthError::Invalid));
    };
    let creds = credentials(req.headers());
    // The admin token may come as `X-Admin-Token` or as the bearer token (as on the admin API);
    // a bearer that is not the admin token is a client's credential.
    if creds.admin_token.is_none() && state.auth.admin(creds).is_err() {
        return Ok(client(req, next).await?.map_into_boxed_body().map_into_left_body());
    }
    match state.auth.admin(credentials(req.headers())) {
        Ok(()) => {
            req.extensions_mut().insert(operator("admin"));
            req.extensions_mut().insert(AdminAccess);
            Ok(next.call(req).await?.map_into_boxed_body().map_into_left_body())
        }
        Err(e) => Ok(refuse(req, Some(&state), e)),
    }
}

/// Requires the admin token.
pub async fn admin(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(refuse(req, None, AuthError::AdminDisabled));
    };
    match state.auth.admin(credentials(req.headers())) {
        Ok(()) => {
            req.extensions_mut().insert(operator("admin"));
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(e) => Ok(refuse(req, Some(&state), e)),
    }
}

/// Requires the worker token.
pub async fn worker(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(refuse(req, None, AuthError::WorkerDisabled));
    };
    match state.auth.worker(credentials(req.headers())) {
        Ok(()) => {
            req.extensions_mut().insert(operator("worker"));
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(e) => Ok(refuse(req, Some(&state), e)),
    }
}

fn operator(id: &str) -> Caller {
    Caller {
        id: id.to_owned(),
        kind: CallerKind::StaticKey,
        rpm: None,
        tpm: None,
        models: None,
        user: None,
    }
}
