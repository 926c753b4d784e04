//! The stored side of `/v1/responses`: which provider made each response and for whom, the
//! bridged responses the gateway keeps (`store: true`), chained requests (`previous_response_id`)
//! rebuilt from them, and `GET`/`DELETE`/`cancel`/`input_items` on a response, served from the
//! store or sent to the provider that made it.
//!
//! The request path never waits on the database to write: `remember` hands the row to
//! `store::ResponseSink` (memory at once, the database by its writer task). Reading a response a
//! client names (`previous_response_id`, the routes) is the client's explicit reference: memory
//! first, then the database, bounded by `READ_TIMEOUT`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::BodyStream;
use super::worker::{Relay, RelayBody};
use crate::auth::{Caller, CallerKind};
use crate::dialects::BodyError;
use crate::dialects::sse::{self, EventFramer};
use crate::dialects::translate::responses_chain;
pub use crate::dialects::translate::responses_chain::ListQuery;
use crate::domain::{AttemptOutcome, ClientHeaders, Dialect, ProviderId, RequestId};
use crate::error::ApiError;
use crate::orchestrator::{Answered, Failed, Gate, Orchestrator, Target, Upstream};
use crate::providers::adapters::responses_ops::{self, OpAnswer, OpCall};
use crate::providers::{UpstreamError, UpstreamErrorKind};
use crate::state::AppState;
use crate::store::{Remembered, ResponseSink, StoredResponse, now_ms};

pub use crate::providers::adapters::responses_ops::ResponseOp;

/// Longest a read of a named response waits for the database.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest response id looked up.
const MAX_ID_BYTES: usize = 256;
/// How long the gateway remembers which provider made a native response: as long as OpenAI
/// keeps one (30 days).
const NATIVE_TTL_MS: i64 = 30 * 86_400_000;

/// A Responses request after `expand`.
#[derive(Debug, Clone)]
pub struct Expanded {
    /// The body to route: the client's, or, when it continued a stored bridged response, the
    /// whole conversation in `input` and no `previous_response_id`.
    pub body: Bytes,
    /// The response it continues, as the client named it.
    pub previous_response_id: Option<String>,
    /// When that response was made natively: the provider that made it (and keeps it), which the
    /// request should reach.
    pub provider: Option<ProviderId>,
}

/// Who asks about a stored response.
#[derive(Debug, Clone, Copy)]
pub enum ResponseAsker<'a> {
    /// A client key, JWT or (auth off) an anonymous caller: its own responses only.
    Client(&'a Caller),
    /// The admin token: every response.
    Admin,
}

/// `body` with `previous_response_id` resolved: a stored bridged response is rebuilt into the
/// conversation; a native one is left for its provider, which is named. An unknown, expired or
/// another caller's id is refused as OpenAI refuses it (400 `previous_response_not_found`).
pub async fn expand(state: &AppState, caller: Option<&Caller>, body: Bytes) -> Result<Expanded, ApiError> {
    // A body that is not a Responses request is left to validation, which names what is wrong.
    let Ok(fields) = responses_chain::chain_fields(&body) else {
        return Ok(Expanded {
            body,
            previous_response_id: None,
            provider: None,
        });
    };
    let Some(previous) = fields.previous_response_id else {
        return Ok(Expanded {
            body,
            previous_response_id: None,
            provider: None,
        });
    };
    let not_found = || {
        ApiError::InvalidRequest(BodyError {
            message: format!("Previous response with id '{previous}' not found."),
            param: Some("previous_response_id".into()),
            code: "previous_response_not_found",
        })
    };
    let asker = caller.map(ResponseAsker::Client);
    let Some(row) = find(state, &previous).await? else {
        return Err(not_found());
    };
    if !asker.is_some_and(|a| may_see(a, &row)) {
        return Err(not_found());
    }
    if !row.bridged {
        return Ok(Expanded {
            body,
            provider: Some(ProviderId::new(&row.provider)),
            previous_response_id: Some(previous),
        });
    }
    let Some(stored) = &row.body else {
        return Err(not_found());
    };
    let body = responses_chain::rebuild(&body, stored)?;
    Ok(Expanded {
        body,
        previous_response_id: Some(previous),
        provider: None,
    })
}

/// Remembers a finished JSON answer (`response_json`, the Responses object the client got) to
/// `request`: a native response as id → provider and caller; a bridged one, when the request
/// asks to store it (`store`, else `responses_bridge.store_by_default`) and
/// `responses_bridge.store_ttl_hours` is not 0, with its JSON. Never waits.
pub fn remember(
    state: &AppState,
    caller: Option<&Caller>,
    provider: &ProviderId,
    bridged: bool,
    request: &Expanded,
    response_json: &[u8],
) {
    let Some(pending) = Pending::new(state, caller, provider, bridged, request) else {
        return;
    };
    if let Ok(response) = serde_json::from_slice::<Value>(response_json) {
        pending.record(&response);
    }
}

/// `stream` (Responses API events) as it is, remembering the response of its
/// `response.completed` event as `remember` does. Events are read as they pass, never held.
pub fn remember_stream(
    state: &AppState,
    caller: Option<&Caller>,
    provider: &ProviderId,
    bridged: bool,
    request: &Expanded,
    stream: BodyStream,
) -> BodyStream {
    let Some(pending) = Pending::new(state, caller, provider, bridged, request) else {
        return stream;
    };
    let mut pending = Some(pending);
    let mut framer = EventFramer::default();
    Box::pin(stream.map(move |chunk| {
        if let (Ok(bytes), Some(_)) = (&chunk, &pending)
            && let Some(run) = framer.push(bytes.clone())
        {
            for event in sse::events(&run) {
                if let Some(response) = event.data.and_then(responses_chain::completed_response)
                    && let Some(p) = pending.take()
                {
                    p.record(&response);
                }
            }
        }
        chunk
    }))
}

/// A response about to be remembered, with everything needed to store it.
struct Pending {
    sink: ResponseSink,
    caller: Option<String>,
    provider: ProviderId,
    /// The bridged request whose input is stored; `None` for a native response.
    stored_request: Option<(Bytes, Option<String>)>,
    expires_at: i64,
}

impl Pending {
    /// `None` when nothing is to be remembered.
    fn new(
        state: &AppState,
        caller: Option<&Caller>,
        provider: &ProviderId,
        bridged: bool,
        request: &Expanded,
    ) -> Option<Self> {
        let settings = &state.live().config.settings.responses_bridge;
        let store = responses_chain::chain_fields(&request.body).ok()?.store;
        let now = now_ms();
        let (stored_request, expires_at) = if bridged {
            let ttl_ms = settings.store_ttl_hours * 3_600_000.0;
            if !(store.unwrap_or(settings.store_by_default) && ttl_ms >= 1.0) {
                return None;
            }
            // The cast saturates; a TTL beyond i64 milliseconds is "for ever" anyway.
            let ttl_ms = ttl_ms as i64;
            let request = (request.body.clone(), request.previous_response_id.clone());
            (Some(request), now.saturating_add(ttl_ms))
        } else {
            // The provider keeps it unless told not to; nothing to reach otherwise.
            if store == Some(false) {
                return None;
            }
            (None, now.saturating_add(NATIVE_TTL_MS))
        };
        Some(Self {
            sink: state.responses.clone(),
            caller: caller.map(|c| c.id.clone()),
            provider: provider.clone(),
            stored_request,
            expires_at,
        })
    }

    fn record(self, response: &Value) {
        let Some(id) = response.get("id").and_then(Value::as_str) else {
            return;
        };
        let body = match &self.stored_request {
            Some((request, previous)) => {
                let Some(body) = responses_chain::stored_body(request, response, previous.as_deref()) else {
                    return;
                };
                Some(body)
            }
            None => None,
        };
        self.sink.record(StoredResponse {
            id: id.to_owned(),
            provider: self.provider.to_string(),
            caller: self.caller,
            bridged: self.stored_request.is_some(),
            created_at: now_ms(),
            expires_at: Some(self.expires_at),
            body,
        });
    }
}

/// The response `id` from memory, else the database (within `READ_TIMEOUT`), unless expired.
async fn find(state: &AppState, id: &str) -> Result<Option<Arc<StoredResponse>>, ApiError> {
    // No id the gateway stores is this long or holds a NUL (which PostgreSQL text refuses).
    if id.len() > MAX_ID_BYTES || id.contains('\0') {
        return Ok(None);
    }
    match state.responses.remembered(id) {
        Remembered::Found(row) => return Ok(Some(row)),
        Remembered::Deleted => return Ok(None),
        Remembered::Unknown => {}
    }
    match tokio::time::timeout(READ_TIMEOUT, state.store.find_response(id)).await {
        Ok(found) => Ok(found?.map(Arc::new)),
        Err(_) => Err(ApiError::Unavailable {
            message: "the response store did not answer in time; try again later".into(),
        }),
    }
}

/// The owner sees its responses; the admin token every one; an anonymous caller (auth off) those
/// anonymous callers made; nobody a response without an owner but the admin token.
fn may_see(asker: ResponseAsker<'_>, row: &StoredResponse) -> bool {
    match (asker, row.caller.as_deref()) {
        (ResponseAsker::Admin, _) => true,
        (ResponseAsker::Client(_), None) => false,
        (ResponseAsker::Client(c), Some(id)) => {
            id == c.id || (c.kind == CallerKind::Anonymous && id.starts_with("ip:"))
        }
    }
}

/// One operation on a response, as the client asked for it.
#[derive(Debug, Clone)]
pub struct ResponseCall<'a> {
    /// What to do.
    pub op: ResponseOp,
    /// The response id.
    pub id: &'a str,
    /// The query string as the client sent it (passed on to a provider).
    pub query: Option<&'a str>,
    /// `input_items`' paging parameters.
    pub list: ListQuery,
}

/// `GET`, `DELETE`, `POST .../cancel` or `GET .../input_items` on the response `id`: a stored
/// bridged one answered from the store, a native one sent to the provider that made it (its
/// answer relayed as sent). An unknown, expired or another caller's id is 404, as OpenAI answers
/// an unknown one.
pub async fn operate(
    state: &AppState,
    request_id: &RequestId,
    asker: ResponseAsker<'_>,
    call: ResponseCall<'_>,
) -> Result<Relay, ApiError> {
    let ResponseCall { op, id, query, list } = call;
    let not_found = || ApiError::NotFound {
        message: format!("Response with id '{id}' not found."),
    };
    let row = match find(state, id).await? {
        Some(row) if may_see(asker, &row) => row,
        _ => return Err(not_found()),
    };
    let provider = ProviderId::new(&row.provider);
    if !row.bridged {
        let caller = match asker {
            ResponseAsker::Client(c) => Some(c.id.as_str()),
            ResponseAsker::Admin => None,
        };
        return native(state, request_id, caller, &row, op, query).await;
    }
    let Some(stored) = &row.body else {
        return Err(not_found());
    };
    let answer = match op {
        ResponseOp::Get => responses_chain::stored_response(stored).ok_or_else(not_found)?,
        ResponseOp::InputItems => responses_chain::input_items_page(stored, id, &list)?,
        ResponseOp::Delete => {
            state.responses.forget(id);
            state.store.delete_response(id).await?;
            json!({ "id": id, "object": "response", "deleted": true })
        }
        ResponseOp::Cancel => {
            return Err(ApiError::InvalidRequest(BodyError {
                message: "Only responses created with background=true can be cancelled; this response was not.".into(),
                param: None,
                code: "response_not_cancellable",
            }));
        }
    };
    Ok(json_relay(&answer, provider))
}

fn json_relay(answer: &Value, provider: ProviderId) -> Relay {
    Relay {
        status: 200,
        headers: vec![("content-type", "application/json".into())],
        body: RelayBody::Bytes(Bytes::from(answer.to_string())),
        node: provider,
        attempts: 0,
    }
}

/// Sends `op` to the provider that made the response; after a deletion it answers (or no
/// longer knows the response) the row is deleted too.
async fn native(
    state: &AppState,
    request_id: &RequestId,
    caller: Option<&str>,
    row: &StoredResponse,
    op: ResponseOp,
    query: Option<&str>,
) -> Result<Relay, ApiError> {
    let live = state.live();
    let id = ProviderId::new(&row.provider);
    let Some(provider) = live.registry.get(&id) else {
        return Err(ApiError::Unavailable {
            message: format!("provider `{id}`, which made this response, is not enabled"),
        });
    };
    let routing = &live.config.settings.routing;
    let maker = Maker {
        call: OpCall {
            provider: &provider.config,
            http: &state.http,
            request_id,
            op,
            id: &row.id,
            query,
            timeout: routing.timeout(),
        },
    };
    // The one walk, over the one provider that keeps the response: its breaker, retries and
    // backoff apply as to any other call to it.
    let orchestrator = Orchestrator {
        forward: ClientHeaders::NONE,
        affinity: None,
        routing,
        breakers: &live.breakers,
        http: &state.http,
        request_id,
        dialect: Dialect::Responses,
        max_response_bytes: live.config.settings.limits.max_response_bytes,
        caller,
        admission: None,
    };
    let outcome = orchestrator.failover(&maker, std::slice::from_ref(&id)).await;
    let attempts = outcome.calls_made();
    let answer = outcome.result?.value;
    if op == ResponseOp::Delete && (answer.status < 300 || answer.status == 404) {
        state.responses.forget(&row.id);
        state.store.delete_response(&row.id).await?;
    }
    let mut headers = Vec::new();
    if let Some(ct) = answer.content_type {
        headers.push(("content-type", ct));
    }
    Ok(Relay {
        status: answer.status,
        headers,
        body: RelayBody::Stream(Box::pin(answer.body.map(|r| r.map_err(std::io::Error::other)))),
        node: id,
        attempts,
    })
}

/// The provider that made a response, as the walk's one candidate: its answer relayed as sent
/// unless it is one worth a retry (5xx, 408, 429).
struct Maker<'a> {
    call: OpCall<'a>,
}

impl Upstream for Maker<'_> {
    type Candidate = ProviderId;
    type Ready = ();
    type Answer = OpAnswer;

    fn target<'a>(&'a self, id: &'a ProviderId) -> Target<'a> {
        Target {
            id,
            model: "",
            provider: None,
        }
    }

    async fn gate(&self, _: &ProviderId) -> Gate<()> {
        Gate::Go(())
    }

    async fn attempt(&self, id: &ProviderId, (): &()) -> Result<Answered<OpAnswer>, Failed<OpAnswer>> {
        let answer = responses_ops::forward(&self.call).await?;
        let status = answer.status;
        if super::paths::retryable_status(status) {
            let mut e = UpstreamError::new(id, UpstreamErrorKind::Status);
            e.status = Some(status);
            return Err(e.into());
        }
        let outcome = if status < 400 {
            AttemptOutcome::Success
        } else {
            AttemptOutcome::Rejected
        };
        Ok(Answered {
            value: answer,
            outcome,
            status: Some(status),
        })
    }
}
