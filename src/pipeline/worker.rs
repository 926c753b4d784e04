//! Seed 000's worker APIs over the node pools: the catch-all `POST /{path}` (model-aware choice,
//! failover node to node with a breaker per node, job ids remembered), `GET /status/{job_id}` and
//! `GET /download/{job_id}` (to the node that owns the job, across restarts), and
//! `POST /nodes/provision`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::nodes::{RegisterNode, bad};
use super::observe::Trace;
use super::paths::{CanonicalPath, upstream_url};
use crate::auth::{Caller, CallerKind};
use crate::dialects::BodyError;
use crate::domain::{AttemptOutcome, AttemptSummary, ClientHeaders, Dialect, InFlight, ProviderId, RequestId};
use crate::error::ApiError;
use crate::nodes::JobOwner;
use crate::nodes::forward::{self, BodyStream, ForwardError};
use crate::nodes::provision::{self, Provision};
use crate::orchestrator::{Answered, Failed, Gate, Orchestrator, Target, Upstream};
use crate::providers::{UpstreamError, UpstreamErrorKind};
use crate::routing::{self, Candidate};
use crate::state::AppState;
use crate::store::{StoredJob, now_ms};

/// How long a job's node has to start answering `/status` or `/download`.
const JOB_HEADERS_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest the job map insert may hold up a worker's answer.
const JOB_STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// A worker call as the client made it.
#[derive(Debug)]
pub struct WorkerCall {
    /// The canonical path: pool choice, history and the node URL all use it.
    pub path: CanonicalPath,
    /// The query string, if any (without `?`).
    pub query: Option<String>,
    pub body: Bytes,
    pub content_type: Option<String>,
}

/// A node's answer, relayed as it sent it.
pub struct Relay {
    pub status: u16,
    /// Headers worth passing on.
    pub headers: Vec<(&'static str, String)>,
    pub body: RelayBody,
    /// The node that answered (`pool/host:port`).
    pub node: ProviderId,
    /// Upstream calls made.
    pub attempts: usize,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("status", &self.status)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// A relayed body.
pub enum RelayBody {
    /// Complete.
    Bytes(Bytes),
    /// Still arriving.
    Stream(BodyStream),
}

/// Which job endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobCall {
    /// `GET /status/{job_id}`.
    Status,
    /// `GET /download/{job_id}`.
    Download,
}

/// `POST /{path}` for a path no other route owns and a pool declares in `worker_paths`: to the
/// best node for the body's `model` (or `model_key`), failing over node to node.
pub async fn proxy(
    state: &AppState,
    request_id: &RequestId,
    caller: Option<&Caller>,
    call: WorkerCall,
) -> Result<Relay, ApiError> {
    let live = state.live();
    // Only a declared worker path goes to a node: the rest of a runtime's API (Ollama's
    // `/api/pull` and `/api/delete`, LoRA loading) is the operator's, not a client's.
    let declared = live.registry.providers().iter().any(|p| {
        p.config
            .node_pool
            .as_ref()
            .is_some_and(|pool| pool.serves_worker_path(&call.path.path))
    });
    if !state.nodes.has_pools() || !declared {
        return Err(ApiError::RouteNotFound {
            method: "POST".into(),
            path: call.path.path,
        });
    }
    let log_prompts = live.config.settings.logging.log_prompts;
    let mut trace = Trace::start(
        state,
        call.path.path.clone(),
        "worker",
        request_id,
        caller,
        log_prompts,
        &call.body,
    );
    let model = model_of(&call.body);
    trace.model = model.clone();
    let result = relay(state, request_id, caller, &call, model.as_deref(), &mut trace).await;
    match result {
        Ok((relay, pool)) if (200..300).contains(&relay.status) => {
            trace.provider = Some(pool);
            trace.upstream_model = model;
            trace.succeeded(None, None);
            Ok(relay)
        }
        Ok((relay, pool)) => {
            trace.provider = Some(pool);
            trace.failed(&ApiError::UpstreamRejected {
                status: relay.status,
                message: format!("the node answered HTTP {}", relay.status),
                error_type: None,
                code: None,
                param: None,
                provider: relay.node.clone(),
                attempts: relay.attempts,
            });
            Ok(relay)
        }
        Err(e) => {
            trace.failed(&e);
            Err(e)
        }
    }
}

async fn relay(
    state: &AppState,
    request_id: &RequestId,
    caller: Option<&Caller>,
    call: &WorkerCall,
    model: Option<&str>,
    trace: &mut Trace,
) -> Result<(Relay, ProviderId), ApiError> {
    if let Some(c) = caller {
        allowed_models(c, &call.body)?;
    }
    let live = state.live();
    let snapshot = state.nodes.snapshot();
    let candidates: Vec<Candidate> = live
        .registry
        .providers()
        .iter()
        .filter(|p| {
            p.config
                .node_pool
                .as_ref()
                .is_some_and(|pool| pool.serves_worker_path(&call.path.path))
        })
        .filter(|p| model.is_none_or(|m| p.config.serves_any_model() || p.config.models.iter().any(|x| x == m)))
        .flat_map(|p| routing::expand(p, model.unwrap_or_default(), &snapshot, model, true))
        .collect();
    if candidates.is_empty() {
        return Err(ApiError::Unavailable {
            message: "no GPU node is online; see GET /nodes".into(),
        });
    }
    let nodes = Nodes {
        http: &state.http,
        request_id,
        call,
        timeout: Duration::try_from_secs_f64(live.config.settings.nodes.proxy_timeout_seconds)
            .unwrap_or(Duration::from_secs(300)),
        max_bytes: live.config.settings.limits.max_response_bytes,
        model: model.unwrap_or_default(),
    };
    let orchestrator = Orchestrator {
        forward: ClientHeaders::NONE,
        affinity: None,
        routing: &live.config.settings.routing,
        breakers: &live.breakers,
        http: &state.http,
        request_id,
        dialect: Dialect::OpenAi,
        max_response_bytes: live.config.settings.limits.max_response_bytes,
        caller: caller.map(|c| c.id.as_str()),
        admission: None,
    };
    let outcome = orchestrator.failover(&nodes, &candidates).await;
    let attempts = outcome.calls_made();
    trace.attempts.extend(outcome.attempts);
    let (mut f, node) = outcome.result?.value;
    if (200..300).contains(&f.status)
        && let Some(job) = forward::job_id(&f.body)
    {
        let owner = JobOwner {
            node_url: node.url.clone(),
            pool: node.pool.clone(),
            node_job_id: job,
            caller: caller.map(|c| c.id.clone()),
        };
        f.body = issue_job_id(state, owner, &f.body).await?;
    }
    let relay = Relay {
        status: f.status,
        headers: f.headers,
        body: RelayBody::Bytes(f.body),
        node: node.id,
        attempts,
    };
    Ok((relay, node.pool))
}

/// The nodes of the pools serving a worker path, for the orchestrator's walk (a breaker per node,
/// `pool/host:port`): a 2xx is the node's answer, a client error it gives back is relayed as is.
struct Nodes<'a> {
    http: &'a reqwest::Client,
    request_id: &'a RequestId,
    call: &'a WorkerCall,
    timeout: Duration,
    /// Largest answer read from a node (`limits.max_response_bytes`).
    max_bytes: usize,
    model: &'a str,
}

/// The node that answered, as the job map and the trace need it.
struct Answerer {
    id: ProviderId,
    url: String,
    pool: ProviderId,
}

impl Upstream for Nodes<'_> {
    type Candidate = Candidate;
    type Ready = String;
    type Answer = (forward::Forwarded, Answerer);

    fn target<'a>(&'a self, c: &'a Candidate) -> Target<'a> {
        Target {
            id: &c.provider.config.id,
            model: self.model,
            provider: None,
        }
    }

    async fn gate(&self, c: &Candidate) -> Gate<String> {
        match c
            .node
            .as_ref()
            .and_then(|n| upstream_url(&n.url, &self.call.path, self.call.query.as_deref()))
        {
            Some(url) => Gate::Go(url),
            None => Gate::Skip(None),
        }
    }

    async fn attempt(&self, c: &Candidate, url: &String) -> Result<Answered<Self::Answer>, Failed<Self::Answer>> {
        let id = &c.provider.config.id;
        let _in_flight: Vec<_> = c.in_flight.iter().map(InFlight::enter).collect();
        let sent = forward::post(
            self.http,
            url,
            self.call.body.clone(),
            self.call.content_type.as_deref(),
            self.request_id.as_str(),
            self.timeout,
            self.max_bytes,
        )
        .await;
        let f = match sent {
            Ok(f) => f,
            Err(ForwardError::Connect(reason)) => {
                let e = UpstreamError::new(id, UpstreamErrorKind::Connect).with_source(std::io::Error::other(reason));
                return Err(e.into());
            }
            Err(ForwardError::Timeout) => return Err(UpstreamError::new(id, UpstreamErrorKind::Timeout).into()),
            Err(ForwardError::TooLarge) => return Err(UpstreamError::new(id, UpstreamErrorKind::TooLarge).into()),
        };
        let answerer = Answerer {
            id: id.clone(),
            url: c.node.as_ref().map(|n| n.url.clone()).unwrap_or_default(),
            pool: c.node.as_ref().map_or_else(|| id.clone(), |n| n.pool.clone()),
        };
        let status = f.status;
        if (200..300).contains(&status) {
            return Ok(Answered::ok((f, answerer), Some(status)));
        }
        Err(Failed {
            error: status_error(id, status),
            answer: Some((f, answerer)),
        })
    }
}

/// Who asks for a job: the client (its own jobs only) or the admin token (every job).
#[derive(Debug, Clone, Copy)]
pub enum JobAsker<'a> {
    /// A client key, JWT or (auth off) an anonymous caller.
    Client(&'a Caller),
    /// The admin token.
    Admin,
}

/// `GET /status/{job_id}` or `/download/{job_id}` from the node that accepted the job (this
/// process's memory first, then the shared table, so it works after a restart and on any replica).
/// `job_id` is the gateway's own id; a job the asker does not own is answered exactly like an
/// unknown one, so ids cannot be probed.
pub async fn job(
    state: &AppState,
    request_id: &RequestId,
    asker: JobAsker<'_>,
    call: JobCall,
    job_id: &str,
    query: Option<&str>,
) -> Result<Relay, ApiError> {
    let kind = match call {
        JobCall::Status => "status",
        JobCall::Download => "download",
    };
    let not_found = || ApiError::RouteNotFound {
        method: "GET".into(),
        path: format!("/{kind}/{{job_id}} (no job with this id is yours)"),
    };
    let owner = match state.nodes.job(job_id) {
        Some(o) => o,
        None => match state.store.find_job(job_id).await.map_err(ApiError::from)? {
            Some(j) => {
                let owner = JobOwner {
                    node_url: j.node_url,
                    pool: ProviderId::new(&j.pool),
                    node_job_id: j.node_job_id,
                    caller: j.caller,
                };
                state.nodes.remember_job(job_id, owner.clone());
                owner
            }
            None => return Err(not_found()),
        },
    };
    if !may_see(asker, &owner) {
        return Err(not_found());
    }
    let path = CanonicalPath {
        path: String::new(),
        segments: vec![kind.to_owned(), owner.node_job_id.clone()],
    };
    let url = upstream_url(&owner.node_url, &path, query).ok_or_else(not_found)?;
    let node = state.nodes.get(&owner.node_url).map_or_else(
        || ProviderId::new(&format!("{}/{}", owner.pool, owner.node_url)),
        |n| n.id,
    );
    match forward::get(&state.http, &url, request_id.as_str(), JOB_HEADERS_TIMEOUT).await {
        Ok(f) => Ok(Relay {
            status: f.status,
            headers: f.headers,
            body: RelayBody::Stream(f.body),
            node,
            attempts: 1,
        }),
        Err(e) => {
            tracing::warn!(request_id = %request_id, node = %owner.node_url, error = %e, "job's node did not answer");
            Err(ApiError::AllProvidersFailed {
                attempts: vec![attempt(
                    &node,
                    None,
                    match e {
                        ForwardError::Connect(_) => AttemptOutcome::Connect,
                        ForwardError::Timeout => AttemptOutcome::Timeout,
                        ForwardError::TooLarge => AttemptOutcome::TooLarge,
                    },
                    None,
                    Duration::ZERO,
                )],
            })
        }
    }
}

/// The `/history` rule for jobs: the admin token sees every job, a client only the jobs it
/// created. With auth off every caller is anonymous (known by address only), so any anonymous
/// caller may read an anonymous job: its unguessable id is then the only secret.
fn may_see(asker: JobAsker<'_>, owner: &JobOwner) -> bool {
    match (asker, owner.caller.as_deref()) {
        (JobAsker::Admin, _) => true,
        (JobAsker::Client(_), None) => false,
        (JobAsker::Client(c), Some(id)) => id == c.id || (c.kind == CallerKind::Anonymous && id.starts_with("ip:")),
    }
}

/// `POST /nodes/provision` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionRequest {
    /// The machine to set up (host name or address).
    #[serde(alias = "ip")]
    pub host: String,
    /// The SSH private key (PEM/OpenSSH text). Written to a 0600 file in memory for the command's
    /// run only; never logged or stored.
    #[schema(value_type = String)]
    pub ssh_key: SecretString,
    /// The SSH user, passed on as `AI_NODE_USER`.
    pub user: Option<String>,
    /// The port the worker will listen on (default 8000).
    pub port: Option<u16>,
    /// The node URL once it runs (default `http://<host>:<port>`).
    pub url: Option<String>,
    /// The pool it joins (default: the first).
    pub pool: Option<String>,
    /// Its runtime (default: the pool's).
    pub runtime: Option<String>,
}

/// `POST /nodes/provision` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProvisionReport {
    /// The command's exit code; null when it was killed.
    pub exit_status: Option<i32>,
    /// It ran out of `nodes.provision_timeout_seconds`.
    pub timed_out: bool,
    /// The last 4 KiB of its output.
    pub output_tail: String,
    /// The node URL.
    pub url: String,
    /// Whether the node answered a health check and was registered.
    pub registered: bool,
    /// The node, when registered.
    pub node: Option<super::nodes::NodeView>,
}

/// Runs the provisioning command, then registers the node once it answers a health check.
pub async fn provision(state: &AppState, req: ProvisionRequest) -> Result<ProvisionReport, ApiError> {
    let live = state.live();
    let settings = &live.config.settings.nodes;
    let Some(command) = settings.provision_command.as_deref() else {
        return Err(bad(
            "provisioning is not configured: set nodes.provision_command".into(),
            "host",
            "provisioning_disabled",
        ));
    };
    let pool = state
        .nodes
        .pool(req.pool.as_deref())
        .map_err(ApiError::from)?
        .id
        .to_string();
    let port = req.port.unwrap_or(8000);
    let url = req.url.clone().unwrap_or_else(|| format!("http://{}:{port}", req.host));
    let url = crate::config::normalize_node_url(&url).map_err(|e| bad(format!("url: {e}"), "url", "invalid_value"))?;
    super::nodes::check_provision(state, &req.host, req.user.as_deref(), &url, &pool).await?;
    let run = Provision {
        command,
        host: &req.host,
        key: &req.ssh_key,
        user: req.user.as_deref(),
        port,
        url: &url,
        timeout: Duration::try_from_secs_f64(settings.provision_timeout_seconds).unwrap_or(Duration::from_secs(600)),
    };
    tracing::info!(host = %req.host, node = %url, "provisioning a node");
    let done = provision::run(&run).await.map_err(ApiError::internal)?;
    tracing::info!(host = %req.host, exit_status = done.exit_status, timed_out = done.timed_out, "provisioning command finished");
    let mut report = ProvisionReport {
        exit_status: done.exit_status,
        timed_out: done.timed_out,
        output_tail: done.output_tail,
        url: url.clone(),
        registered: false,
        node: None,
    };
    if done.exit_status != Some(0) {
        return Ok(report);
    }
    let wait = Duration::try_from_secs_f64(settings.provision_wait_seconds).unwrap_or_default();
    if answers_health(state, &url, req.runtime.as_deref(), wait).await {
        let node = super::nodes::register(
            state,
            RegisterNode {
                url,
                pool: Some(pool),
                runtime: req.runtime,
            },
            "provision",
        )
        .await?;
        report.registered = true;
        report.node = Some(node);
    }
    Ok(report)
}

/// Polls the node's health until it answers or `wait` passes.
async fn answers_health(state: &AppState, url: &str, runtime: Option<&str>, wait: Duration) -> bool {
    let runtime = runtime.and_then(crate::config::NodeRuntime::parse).unwrap_or_default();
    let settings = &state.live().config.settings.nodes;
    let timeout = Duration::try_from_secs_f64(settings.health_timeout_seconds).unwrap_or(Duration::from_secs(3));
    let every = Duration::try_from_secs_f64(settings.health_interval_seconds)
        .unwrap_or(Duration::from_secs(10))
        .min(Duration::from_secs(2));
    let deadline = Instant::now() + wait;
    loop {
        if crate::nodes::probe(&state.http, url, runtime, timeout).await.is_ok() {
            return true;
        }
        if Instant::now() + every > deadline {
            return false;
        }
        tokio::time::sleep(every).await;
    }
}

/// Gives a job accepted by a node a new, unguessable gateway id, remembers (node, node's id,
/// caller) under it and returns the node's answer with that id in place of the node's.
/// The id is random and freshly made, so no later answer can re-own an existing job.
async fn issue_job_id(state: &AppState, owner: JobOwner, body: &Bytes) -> Result<Bytes, ApiError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ApiError::internal(std::io::Error::other("the system random source failed")))?;
    let job_id = format!("job_{}", hex::encode(bytes));
    let Some(rewritten) = forward::replace_job_id(body, &job_id) else {
        return Ok(body.clone());
    };
    let row = StoredJob {
        job_id: job_id.clone(),
        node_url: owner.node_url.clone(),
        pool: owner.pool.to_string(),
        created_at: now_ms(),
        node_job_id: owner.node_job_id.clone(),
        caller: owner.caller.clone(),
    };
    state.nodes.remember_job(&job_id, owner);
    // Awaited (briefly) so that another replica, or this one after a restart, finds the job as
    // soon as the client has its id; a slow database costs at most JOB_STORE_TIMEOUT.
    match tokio::time::timeout(JOB_STORE_TIMEOUT, state.store.insert_job(&row)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(job = %job_id, error = %e, "job not stored; only this process can route its status")
        }
        Err(_) => tracing::warn!(
            job = %job_id,
            "job store timed out; only this process can route its status"
        ),
    }
    Ok(rewritten)
}

/// A caller limited to some models must name them: every string `model` / `model_key` the body
/// holds must be allowed, and a body naming none (or naming one with another type) is refused,
/// since the worker would otherwise pick a model the key may not use.
fn allowed_models(caller: &Caller, body: &[u8]) -> Result<(), ApiError> {
    if caller.models.is_none() {
        return Ok(());
    }
    let names = model_names(body).ok_or_else(|| {
        ApiError::InvalidRequest(BodyError {
            message: "this key may use only its listed models: name one as a string in `model` (or `model_key`)".into(),
            param: Some("model".into()),
            code: "missing_required_parameter",
        })
    })?;
    match names.iter().find(|m| !caller.may_use(m)) {
        Some(m) => Err(ApiError::ModelNotAllowed { model: m.clone() }),
        None => Ok(()),
    }
}

/// Every model name the body gives (`model`, `model_key`), or `None` when it gives none, or gives
/// one that is not a non-empty string, or is not a JSON object (duplicate keys included).
fn model_names(body: &[u8]) -> Option<Vec<String>> {
    #[derive(Deserialize)]
    struct Names {
        model: Option<serde_json::Value>,
        model_key: Option<serde_json::Value>,
    }
    // serde reads a struct from an array too (`["m"]`); the worker would see no `model` there.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    let names: Names = serde_json::from_slice(body).ok()?;
    let mut out = Vec::new();
    for v in [names.model, names.model_key].into_iter().flatten() {
        match v {
            serde_json::Value::String(s) if !s.is_empty() => out.push(s),
            _ => return None,
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The body's `model`, else `model_key` (seed 000), when it is a JSON object naming one.
fn model_of(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Names {
        model: Option<serde_json::Value>,
        model_key: Option<serde_json::Value>,
    }
    let names: Names = serde_json::from_slice(body).ok()?;
    [names.model, names.model_key]
        .into_iter()
        .flatten()
        .find_map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
}

fn status_error(id: &ProviderId, status: u16) -> UpstreamError {
    let mut e = UpstreamError::new(id, UpstreamErrorKind::Status);
    e.status = Some(status);
    e
}

fn attempt(
    id: &ProviderId,
    model: Option<&str>,
    outcome: AttemptOutcome,
    status: Option<u16>,
    latency: Duration,
) -> AttemptSummary {
    AttemptSummary {
        provider: id.clone(),
        upstream_model: model.unwrap_or_default().to_owned(),
        outcome,
        status,
        latency,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_comes_from_model_then_model_key() {
        assert_eq!(model_of(br#"{"model":"a","model_key":"b"}"#).as_deref(), Some("a"));
        assert_eq!(model_of(br#"{"model_key":"b"}"#).as_deref(), Some("b"));
        assert_eq!(model_of(br#"{"model":""}"#), None);
        assert_eq!(model_of(b"not json"), None);
    }

    #[test]
    fn a_restricted_key_must_name_only_models_it_may_use() {
        let caller = Caller {
            id: "key:x".into(),
            kind: CallerKind::StaticKey,
            rpm: None,
            tpm: None,
            models: Some(vec!["ok".to_owned()].into()),
            user: None,
            key_name: None,
            team: None,
            priority: None,
            team_models: None,
        };
        assert!(allowed_models(&caller, br#"{"model":"ok"}"#).is_ok());
        for body in [
            &br#"{}"#[..],
            br#"{"model":7}"#,
            br#"{"model":"ok","model_key":["x"]}"#,
            br#"{"model":"ok","model":"other"}"#,
            br#"["ok"]"#,
            b"not json",
        ] {
            assert_eq!(allowed_models(&caller, body).unwrap_err().status(), 400, "{body:?}");
        }
        let other = allowed_models(&caller, br#"{"model":"ok","model_key":"other"}"#);
        assert_eq!(other.unwrap_err().status(), 403);
    }
}
