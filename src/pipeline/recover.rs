//! Streams that recover on the inference path: whether a stream may be continued at a cut (the
//! route's `stream_recovery`, else `routing.stream_recovery`; chat and Messages streams of one
//! choice), and the `Reopen` that runs the continuation through the request's own plan with an
//! `Orchestrator` of the request's snapshot.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;

use crate::config::{HostedTools, StreamRecovery};
use crate::dialects::resume::single_choice;
use crate::domain::{ClientHeaders, Dialect, Priority, RequestId};
use crate::orchestrator::recover::{Continued, Cut, Recovery, Reopen};
use crate::orchestrator::{Orchestrator, Outcome};
use crate::routing::RoutePlan;
use crate::state::{AppState, Live};
use crate::traffic::Traffic;

/// What continuing a stream takes from the request, gathered where it is planned.
pub(super) struct Parts {
    plan: RoutePlan,
    body: Bytes,
    dialect: Dialect,
    hosted_tools: HostedTools,
    caller: Option<String>,
    /// What keeps the request on one key of a key pool (`Orchestrator::affinity`).
    affinity: Option<String>,
    /// Its place in the concurrency caps' queues.
    priority: Priority,
    forward: ClientHeaders,
}

/// The request as one stream that may be continued, or `None`: recovery is off for its route (or
/// the gateway), its dialect is not continued (Responses), or it asks for several choices.
#[expect(clippy::too_many_arguments, reason = "each is one fact about the request")]
pub(super) fn parts(
    live: &Live,
    route: Option<&str>,
    dialect: Dialect,
    body: &Bytes,
    plan: &RoutePlan,
    hosted_tools: HostedTools,
    (caller, affinity, priority): (Option<&str>, Option<&str>, Priority),
    forward: &ClientHeaders,
) -> Option<Parts> {
    let settings = &live.config.settings;
    let setting = route
        .and_then(|name| settings.routes.iter().find(|r| r.name == name))
        .and_then(|r| r.stream_recovery)
        .unwrap_or(settings.routing.stream_recovery);
    let continued = setting == StreamRecovery::Continue
        && matches!(dialect, Dialect::OpenAi | Dialect::Anthropic)
        && single_choice(body);
    continued.then(|| Parts {
        plan: plan.clone(),
        body: body.clone(),
        dialect,
        hosted_tools,
        caller: caller.map(str::to_owned),
        affinity: affinity.map(str::to_owned),
        priority,
        forward: forward.clone(),
    })
}

/// The `Recovery` the relay keeps for a stream that `serving` answers.
pub(super) fn recovery(
    parts: Parts,
    state: &AppState,
    live: Arc<Live>,
    request_id: &RequestId,
    serving: Cut,
) -> Recovery {
    let body = parts.body.clone();
    let dialect = parts.dialect;
    let reopen = Continuer(Arc::new(Inner {
        parts,
        live,
        http: state.http.clone(),
        traffic: state.traffic.clone(),
        request_id: request_id.clone(),
    }));
    Recovery::new(Box::new(reopen), body, dialect, serving)
}

struct Inner {
    parts: Parts,
    /// The request's snapshot: its breakers and routing settings.
    live: Arc<Live>,
    http: reqwest::Client,
    /// The concurrency caps' queues, which a continuation waits in like any attempt.
    traffic: Arc<Traffic>,
    request_id: RequestId,
}

/// Runs continuations for one stream.
struct Continuer(Arc<Inner>);

impl Reopen for Continuer {
    fn reopen(&self, cut: Cut, sent: String) -> BoxFuture<'static, Outcome<Continued>> {
        let inner = self.0.clone();
        Box::pin(async move {
            let Inner {
                parts,
                live,
                http,
                traffic,
                request_id,
            } = &*inner;
            let orchestrator = Orchestrator {
                routing: &live.config.settings.routing,
                breakers: &live.breakers,
                http,
                request_id,
                dialect: parts.dialect,
                max_response_bytes: live.config.settings.limits.max_response_bytes,
                caller: parts.caller.as_deref(),
                forward: &parts.forward,
                affinity: parts.affinity.as_deref(),
                admission: Some(super::queue::admission(traffic, live, parts.priority)),
            };
            orchestrator
                .continue_stream(&parts.plan, &parts.body, &cut, &sent, parts.hosted_tools)
                .await
        })
    }
}
