//! The catch-all's path, canonicalised once before auth, limits and dispatch
//! (`routing::paths::canonical_path`): a path that has no canonical form (dot segments, encoded
//! separators, `//`, `;`) gets 400 here, and every later step reads the one `CanonicalPath` left
//! in the request's extensions.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};

use crate::dialects::BodyError;
use crate::error::ApiError;
use crate::http::error::{dialect_of, respond};
use crate::routing::paths::canonical_path;

/// Refuses a path without a canonical form; else leaves its `CanonicalPath` for the next steps.
pub async fn canonical(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    // The path exactly as written on the request line: actix's matched path is already
    // percent-decoded once, which would make `%252e` look like `%2e`.
    match canonical_path(req.uri().path()) {
        Ok(path) => {
            req.extensions_mut().insert(path);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(why) => {
            let e = ApiError::InvalidRequest(BodyError {
                message: format!("invalid request path: {why}; send the path in its plain form"),
                param: None,
                code: "invalid_path",
            });
            let response = respond(&e, dialect_of(req.request()));
            Ok(req.into_response(response).map_into_right_body())
        }
    }
}

/// The path a request's policy is looked up by: its canonical form on the catch-all, else the
/// path the router matched (built-in resources only match their own fixed spelling).
pub fn policy_path(req: &ServiceRequest) -> String {
    req.extensions()
        .get::<crate::routing::paths::CanonicalPath>()
        .map_or_else(|| req.match_info().as_str().to_owned(), |c| c.path.clone())
}
