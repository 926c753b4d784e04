//! Credentials checks as `from_fn` middleware over `auth::Authenticator`: `client` for inference
//! and read endpoints, `admin` for operator endpoints, `worker` for node heartbeats, and
//! `observability` for `/metrics` and `/health`. The caller is left in the request's extensions
//! for limits, history and handlers. Failed admin and worker authentications are throttled per
//! peer address (`auth::FailureThrottle`).

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{AUTHORIZATION, HeaderMap};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};

use std::net::IpAddr;
use std::time::Duration;

use secrecy::ExposeSecret;

use crate::auth::{AuthError, Caller, CallerKind, Credentials, FAILURE_BURST, digest, equal};
use crate::domain::Decision;
use crate::error::{ApiError, LimitKind};
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
    let live = state.live();
    let verdict = match live.paths.policy(&super::canonical::policy_path(&req)).auth {
        Some(scheme) => state.auth.client_as(scheme, credentials(req.headers()), peer),
        None => state.auth.client(credentials(req.headers()), peer),
    };
    match verdict {
        Ok(mut caller) => {
            caller.join_team(&live.config.settings.teams);
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
    // a bearer that is not the admin token is a client's credential. An `X-Admin-Token` goes
    // through the operator check, so wrong ones are throttled as on the admin API.
    if creds.admin_token.is_some() || state.auth.admin(creds).is_ok() {
        return Ok(operator_check(req, next, Operator::Admin)
            .await?
            .map_into_boxed_body()
            .map_into_left_body());
    }
    Ok(client(req, next).await?.map_into_boxed_body().map_into_left_body())
}

/// Requires the admin token.
pub async fn admin(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    operator_check(req, next, Operator::Admin).await
}

/// Requires the worker token.
pub async fn worker(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    operator_check(req, next, Operator::Worker).await
}

#[derive(Clone, Copy)]
enum Operator {
    Admin,
    Worker,
}

async fn operator_check(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
    who: Operator,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        let e = match who {
            Operator::Admin => AuthError::AdminDisabled,
            Operator::Worker => AuthError::WorkerDisabled,
        };
        return Ok(refuse(req, None, e));
    };
    let peer = req.peer_addr().map(|a| a.ip());
    // Checked before the token: while throttled, a right guess must not be confirmed either.
    if let Some(wait) = state.auth.throttle().blocked(peer) {
        return Ok(throttled(req, &state, wait));
    }
    let verdict = match who {
        Operator::Admin => state.auth.admin(credentials(req.headers())),
        Operator::Worker => state.auth.worker(credentials(req.headers())),
    };
    match verdict {
        Ok(()) => {
            let id = match who {
                Operator::Admin => "admin",
                Operator::Worker => "worker",
            };
            req.extensions_mut().insert(operator(id));
            if matches!(who, Operator::Admin) {
                req.extensions_mut().insert(AdminAccess);
            }
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(AuthError::Invalid) => match state.auth.throttle().failed(peer) {
            Some(wait) => Ok(throttled(req, &state, wait)),
            None => Ok(refuse(req, Some(&state), AuthError::Invalid)),
        },
        Err(e) => Ok(refuse(req, Some(&state), e)),
    }
}

fn throttled<B>(req: ServiceRequest, state: &web::Data<AppState>, wait: Duration) -> ServiceResponse<EitherBody<B>> {
    state.metrics.observe_auth_failure("throttled");
    let peer: Option<IpAddr> = req.peer_addr().map(|a| a.ip());
    tracing::warn!(peer = ?peer, retry_after_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "token guesses throttled");
    let e = ApiError::RateLimited {
        decision: Decision {
            allowed: false,
            limit: FAILURE_BURST,
            remaining: 0,
            retry_after: wait,
            reset_after: wait,
        },
        kind: LimitKind::Requests,
    };
    let response = respond(&e, dialect_of(req.request()));
    req.into_response(response).map_into_right_body()
}

/// Requires `observability.token` as `Authorization: Bearer <token>` when one is configured (what
/// Prometheus' `authorization` scrape setting sends); open otherwise.
pub async fn observability(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(refuse(req, None, AuthError::Invalid));
    };
    let expected = state
        .live()
        .config
        .settings
        .observability
        .token
        .as_ref()
        .map(|t| digest(t.expose_secret()));
    if let Some(expected) = expected {
        let peer = req.peer_addr().map(|a| a.ip());
        if let Some(wait) = state.auth.throttle().blocked(peer) {
            return Ok(throttled(req, &state, wait));
        }
        match credentials(req.headers()).bearer {
            None => return Ok(refuse(req, Some(&state), AuthError::Missing)),
            Some(t) if !equal(&expected, &digest(t)) => {
                return Ok(match state.auth.throttle().failed(peer) {
                    Some(wait) => throttled(req, &state, wait),
                    None => refuse(req, Some(&state), AuthError::Invalid),
                });
            }
            Some(_) => {}
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

fn operator(id: &str) -> Caller {
    Caller {
        id: id.to_owned(),
        kind: CallerKind::StaticKey,
        rpm: None,
        tpm: None,
        models: None,
        user: None,
        key_name: None,
        team: None,
        priority: None,
        team_models: None,
    }
}
