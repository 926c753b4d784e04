//! `POST /ai/task` (seed 004): a task type's prompt through the orchestrator (`provider: auto`) or
//! one named provider alone (no silent fallback), then the decision engine for decision tasks.

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::observe::Trace;
use crate::auth::Caller;
use crate::config::TaskSettings;
use crate::dialects::BodyError;
use crate::domain::{ClientHeaders, Dialect, ProviderId, RequestId};
use crate::error::ApiError;
use crate::nodes::NodeSnapshot;
use crate::orchestrator::Orchestrator;
use crate::providers::{Operation, Provider};
use crate::routing::{self, Candidate, RoutePlan};
use crate::state::{AppState, Live};
use crate::tasks::{Decision, DecisionKind, TaskSpec, builtin_tasks, decide, render_prompt};

/// The request body.
#[derive(Debug, Deserialize)]
struct TaskRequest {
    task: String,
    text: String,
    #[serde(default)]
    provider: Option<String>,
}

/// The answer (seed 004's shape, `decision` only for decision tasks).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskAnswer {
    /// The provider that answered.
    pub provider_used: String,
    /// The model's answer.
    pub result: String,
    /// The provider's configured confidence, lowered when a structured answer failed validation.
    pub confidence: f64,
    /// Time taken.
    pub latency_ms: u64,
    /// PASS / FAIL / NEEDS_INFO with reasons and evidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

/// Confidence is multiplied by this when the model's structured answer was not valid.
const UNVALIDATED_FACTOR: f64 = 0.7;

/// Every task type: built-in, then the config's additions and overrides.
pub fn task_types(settings: &TaskSettings) -> BTreeMap<String, TaskSpec> {
    let mut all = builtin_tasks();
    for (name, t) in &settings.types {
        let decision = match t.decision.as_deref() {
            Some("invoice") => Some(DecisionKind::Invoice),
            Some("document") => Some(DecisionKind::Document),
            _ => None,
        };
        all.insert(
            name.clone(),
            TaskSpec {
                system: t.system.clone(),
                prompt: t.prompt.clone(),
                decision,
            },
        );
    }
    all
}

fn bad(message: String, param: Option<&str>, code: &'static str) -> ApiError {
    ApiError::InvalidRequest(BodyError {
        message,
        param: param.map(str::to_owned),
        code,
    })
}

fn parse(body: &[u8]) -> Result<TaskRequest, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        bad(
            format!("the body is not JSON ({e}); send {{\"task\", \"text\"}}"),
            None,
            "invalid_json",
        )
    })?;
    for field in ["task", "text"] {
        if value.get(field).is_none() {
            return Err(bad(
                format!("you must provide `{field}`"),
                Some(field),
                "missing_required_parameter",
            ));
        }
    }
    let req: TaskRequest =
        serde_json::from_value(value).map_err(|e| bad(format!("invalid task request: {e}"), None, "invalid_value"))?;
    if req.text.trim().is_empty() {
        return Err(bad("`text` must not be empty".into(), Some("text"), "invalid_value"));
    }
    Ok(req)
}

/// Runs one task.
pub async fn task(
    state: &AppState,
    request_id: &RequestId,
    caller: Option<&Caller>,
    body: Bytes,
) -> Result<TaskAnswer, ApiError> {
    let live = state.live();
    let started = Instant::now();
    let log_prompts = live.config.settings.logging.log_prompts;
    let mut trace = Trace::start(state, "/ai/task", "task", request_id, caller, log_prompts, &body);
    let result = run(state, &live, request_id, caller, body, started, &mut trace).await;
    match result {
        Ok((answer, reply)) => {
            trace.succeeded(reply.usage, Some(&answer.result));
            Ok(answer)
        }
        Err(e) => {
            trace.failed(&e);
            Err(e)
        }
    }
}

async fn run(
    state: &AppState,
    live: &Live,
    request_id: &RequestId,
    caller: Option<&Caller>,
    body: Bytes,
    started: Instant,
    trace: &mut Trace,
) -> Result<(TaskAnswer, crate::providers::Reply), ApiError> {
    let req = parse(&body)?;
    let types = task_types(&live.config.settings.tasks);
    let Some(spec) = types.get(&req.task) else {
        let known: Vec<&str> = types.keys().map(String::as_str).collect();
        return Err(bad(
            format!("unknown task `{}`; known tasks: {}", req.task, known.join(", ")),
            Some("task"),
            "invalid_value",
        ));
    };
    trace.task = Some(req.task.clone());
    trace.set_metric_task(&req.task);
    let nodes = super::queue::node_snapshot(state);
    let mut plan = plan(state, live, &nodes, caller, req.provider.as_deref()).await?;
    trace.model = Some(plan.requested_model.clone());
    let mut messages = Vec::new();
    if let Some(system) = &spec.system {
        messages.push(serde_json::json!({"role": "system", "content": system}));
    }
    messages.push(serde_json::json!({"role": "user", "content": render_prompt(spec, &req.text)}));
    let chat = serde_json::json!({"model": plan.requested_model, "messages": messages, "temperature": 0});
    let chat = Bytes::from(serde_json::to_vec(&chat).map_err(ApiError::internal)?);
    let session = trace.session.clone();
    super::spend::admit(state, session.as_deref(), chat.len(), None, &mut plan, &mut trace.spend).await?;
    let orchestrator = Orchestrator {
        forward: ClientHeaders::NONE,
        affinity: session.as_deref().or(trace.caller.as_deref()),
        routing: &live.config.settings.routing,
        breakers: &live.breakers,
        http: &state.http,
        request_id,
        dialect: Dialect::OpenAi,
        max_response_bytes: live.config.settings.limits.max_response_bytes,
        caller: trace.caller.as_deref(),
        admission: Some(super::queue::admission(
            &state.traffic,
            live,
            super::queue::priority(None, caller)?,
        )),
    };
    let outcome = orchestrator.run(&plan, Operation::Chat, &chat).await;
    trace.attempts = outcome.attempts;
    let success = outcome.result.map_err(|e| match e {
        ApiError::AllProvidersFailed { attempts } => ApiError::TaskFailed { attempts },
        ApiError::ProvidersUnavailable { .. } => ApiError::TaskFailed {
            attempts: trace.attempts.clone(),
        },
        other => other,
    })?;
    // A node answers for its pool.
    let provider = plan.owner_of(&success.provider);
    trace.provider = Some(provider.clone());
    trace.upstream_model = Some(success.upstream_model.clone());
    let reply = success.value;
    let result = reply.text.clone().unwrap_or_default();
    let decision = spec.decision.map(|kind| decide(kind, &req.text, &result));
    let base = live.registry.get(&provider).map_or(0.8, |p| p.config.confidence);
    let validated = decision.as_ref().is_none_or(|d| d.model_answer_valid);
    let confidence = if validated { base } else { base * UNVALIDATED_FACTOR };
    let answer = TaskAnswer {
        provider_used: provider.to_string(),
        result,
        confidence: (confidence * 100.0).round() / 100.0,
        latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        decision,
    };
    Ok((answer, reply))
}

/// `auto`: every enabled provider that has a task model, by priority (or `tasks.model` routed as
/// chat is). A named provider: that one alone. Either way only models the caller's key may use.
async fn plan(
    state: &AppState,
    live: &Live,
    nodes: &[NodeSnapshot],
    caller: Option<&Caller>,
    provider: Option<&str>,
) -> Result<RoutePlan, ApiError> {
    let providers: Vec<&Provider> = match provider.filter(|p| *p != "auto") {
        Some(name) => {
            let Some(p) = live.registry.get(&ProviderId::new(name)) else {
                let known: Vec<&str> = live.registry.providers().iter().map(|p| p.config.id.as_str()).collect();
                return Err(bad(
                    format!(
                        "unknown or disabled provider `{name}`; enabled: auto, {}",
                        known.join(", ")
                    ),
                    Some("provider"),
                    "invalid_value",
                ));
            };
            vec![p]
        }
        None => live.registry.providers().iter().collect(),
    };
    let mut chosen = Vec::new();
    let mut modelless = Vec::new();
    for p in providers {
        match task_model(state, live, p).await {
            Some(model) => chosen.push((p, model)),
            None => modelless.push(p.config.id.as_str()),
        }
    }
    if chosen.is_empty() && !modelless.is_empty() {
        return Err(ApiError::Unavailable {
            message: format!(
                "no model for tasks: provider(s) {} name none (`models: [\"*\"]` without `task_model`, and the upstream's own model list is empty or unreachable); set the provider's `task_model` or `tasks.model`",
                modelless
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    if let Some(c) = caller
        && !chosen.is_empty()
    {
        let (allowed, refused): (Vec<_>, Vec<_>) = chosen.into_iter().partition(|(_, model)| c.may_use(model));
        if allowed.is_empty() {
            let mut models: Vec<String> = refused.into_iter().map(|(_, m)| m).collect();
            models.sort();
            models.dedup();
            return Err(ApiError::ModelNotAllowed {
                model: models.join("`, `"),
            });
        }
        chosen = allowed;
    }
    let candidates: Vec<Candidate> = chosen
        .into_iter()
        .flat_map(|(p, model)| routing::expand(p, &model, nodes, Some(&model), true))
        .collect();
    let Some(first) = candidates.first() else {
        return Err(ApiError::TaskFailed { attempts: Vec::new() });
    };
    Ok(RoutePlan {
        requested_model: first.upstream_model.clone(),
        candidates,
        overflow: Vec::new(),
    })
}

/// The model `/ai/task` sends to `p`: `tasks.model`, else its `task_model` or first declared model,
/// else — for a provider that serves any model — the first of the upstream's own list (the one
/// `/v1/models` caches) or, for a node pool, the first model its online nodes have loaded.
async fn task_model(state: &AppState, live: &Live, p: &Provider) -> Option<String> {
    if let Some(model) = live
        .config
        .settings
        .tasks
        .model
        .clone()
        .or_else(|| p.config.default_task_model().map(str::to_owned))
    {
        return Some(model);
    }
    let listed = if p.config.is_node_pool() {
        super::models::pool_models(state, p)
    } else if p.config.serves_any_model() {
        super::models::upstream_list(state, p).await
    } else {
        return None;
    };
    listed.first().cloned()
}
