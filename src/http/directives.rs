//! `pipeline::Directives` from the request's headers: `x-ai-gateway-*` (`-cache`, `-tags`, `-priority`), the
//! Anthropic protocol headers forwarded to anthropic-kind providers, and the agent's session id.

use std::convert::Infallible;
use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use crate::cache::{self, CacheDirective};
use crate::domain::ClientHeaders;
use crate::pipeline::Directives;

/// Where coding agents name their session, most specific first.
const SESSION_HEADERS: [&str; 4] = ["x-claude-code-session-id", "session_id", "session-id", "x-session-id"];

impl FromRequest for Directives {
    type Error = Infallible;
    type Future = Ready<Result<Self, Infallible>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let headers = req.headers();
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let owned = |name: &str| text(name).map(str::to_owned);
        ready(Ok(Self {
            cache: CacheDirective::from_header(text(cache::HEADER)),
            forward: ClientHeaders {
                anthropic_beta: owned("anthropic-beta"),
                anthropic_version: owned("anthropic-version"),
            },
            session: SESSION_HEADERS
                .iter()
                .find_map(|name| text(name))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            tags: text(TAGS_HEADER).map(crate::pipeline::parse_tags).unwrap_or_default(),
            // Unreadable bytes stay in, so the pipeline refuses them rather than ignoring them.
            priority: headers
                .get(crate::pipeline::PRIORITY_HEADER)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        }))
    }
}

/// The client's tags for spend reports and tag budgets: `a,b`.
const TAGS_HEADER: &str = "x-ai-gateway-tags";
