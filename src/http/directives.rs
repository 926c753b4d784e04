//! `pipeline::Directives` from the request's `x-ai-gateway-*` headers (`x-ai-gateway-cache`).

use std::convert::Infallible;
use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use crate::cache::{self, CacheDirective};
use crate::pipeline::Directives;

impl FromRequest for Directives {
    type Error = Infallible;
    type Future = Ready<Result<Self, Infallible>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let value = req.headers().get(cache::HEADER).and_then(|v| v.to_str().ok());
        ready(Ok(Self {
            cache: CacheDirective::from_header(value),
        }))
    }
}
