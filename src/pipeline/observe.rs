//! Observing outcomes: the one place that turns what a request came to into a history row and a
//! log line, and the one `LOG_PROMPTS` gate for prompt and completion text.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::Caller;
use crate::cache::CacheStatus;
use crate::config::Settings;
use crate::dialects::wire;
use crate::domain::{AttemptOutcome, AttemptSummary, Dialect, ProviderId, RequestId, Usage};
use crate::error::ApiError;
use crate::limits::Limiter;
use crate::metrics::{Metrics, RequestObservation};
use crate::nodes::Nodes;
use crate::orchestrator::recover::{Recovered, RecoveryOutcome};
use crate::orchestrator::stream::{StreamEnd, StreamObserver};
use crate::state::AppState;
use crate::store::{HistoryRecord, HistorySink, RequestStatus, now_ms, summarize};
use crate::telemetry::traces;
use crate::webhooks::{Event, Webhooks};

/// Largest prompt kept in a history row (with `LOG_PROMPTS=true`).
const MAX_PROMPT_BYTES: usize = 64 * 1024;

/// What is known about a request so far; finished exactly once into a history row.
pub(super) struct Trace {
    sink: HistorySink,
    metrics: Arc<Metrics>,
    /// The `task` label of `ai_request_count`: the endpoint family or an `/ai/task` type.
    metric_task: Cow<'static, str>,
    endpoint: Cow<'static, str>,
    /// Maps a GPU node's id to its pool: history and metrics name the pool.
    nodes: Arc<Nodes>,
    request_id: RequestId,
    created_at_ms: i64,
    started: Instant,
    log_prompts: bool,
    pub model: Option<String>,
    pub stream: bool,
    pub task: Option<String>,
    pub prompt: Option<String>,
    pub attempts: Vec<AttemptSummary>,
    pub provider: Option<ProviderId>,
    pub upstream_model: Option<String>,
    /// The named route the model resolved to (a configured name), for its metric.
    pub route: Option<String>,
    /// The caller's id, for the history row.
    pub caller: Option<String>,
    /// Set when the caller has a tokens-per-minute budget: usage is counted against it.
    pub token_budget: Option<Arc<Limiter>>,
    /// Set when the caller's team has a tokens-per-minute budget: the key it is counted under.
    team_tokens: Option<(Arc<Limiter>, String)>,
    /// `hit` or `miss` when the response cache applied.
    pub cache: Option<CacheStatus>,
    /// The coding agent's session, for the history row.
    pub session: Option<String>,
    /// The route named in the `callback` event (a named route, or a path route's path) and its
    /// URL (see `set_callback`).
    callback_route: Option<String>,
    callback: Option<String>,
    webhooks: Webhooks,
    /// Prices, who spends, and the budget reservation held.
    pub spend: super::spend::SpendTrace,
    shared_spend: Arc<crate::spend::Spend>,
    /// `error.type` on the server span: the failure's code.
    error_type: Option<String>,
}

impl Trace {
    /// Starts observing; logs the prompt only when `LOG_PROMPTS=true`.
    pub fn start(
        state: &AppState,
        endpoint: impl Into<Cow<'static, str>>,
        metric_task: &'static str,
        request_id: &RequestId,
        caller: Option<&Caller>,
        log_prompts: bool,
        body: &[u8],
    ) -> Self {
        let token_budget = caller
            .and_then(|c| super::tokens_per_minute(state, c))
            .map(|_| state.limiter.clone());
        let team_tokens = caller
            .and_then(|c| super::admit::team_tokens_per_minute(state, c))
            .map(|(key, _)| (state.limiter.clone(), key));
        let prompt = log_prompts.then(|| {
            let text = String::from_utf8_lossy(&body[..body.len().min(MAX_PROMPT_BYTES)]).into_owned();
            tracing::info!(request_id = %request_id, prompt = %text, "prompt");
            traces::text(request_id, "ai_gateway.prompt", &text);
            text
        });
        Self {
            sink: state.history.clone(),
            metrics: state.metrics.clone(),
            metric_task: Cow::Borrowed(metric_task),
            endpoint: endpoint.into(),
            nodes: state.nodes.clone(),
            request_id: request_id.clone(),
            created_at_ms: now_ms(),
            started: Instant::now(),
            log_prompts,
            model: None,
            stream: false,
            task: None,
            prompt,
            attempts: Vec::new(),
            provider: None,
            upstream_model: None,
            route: None,
            caller: caller.map(|c| c.id.clone()),
            token_budget,
            team_tokens,
            cache: None,
            session: None,
            callback_route: None,
            callback: None,
            webhooks: state.webhooks.clone(),
            spend: super::spend::SpendTrace::of(&state.live(), caller, &[]),
            shared_spend: state.spend.clone(),
            error_type: None,
        }
    }

    /// Sends `url` a `request.completed` event naming `route` when the request finishes: what a
    /// path route with a `callback` calls (named routes go through `set_route`).
    pub fn set_callback(&mut self, route: &str, url: Option<&str>) {
        self.callback_route = Some(route.to_owned());
        self.callback = url.map(str::to_owned);
    }

    /// Notes the named route `model` resolves to, so the event for its `callback` (if any) is
    /// sent when the request completes.
    pub fn set_route(&mut self, settings: &Settings, model: &str) {
        if let Some(route) = settings.route_for_model(model) {
            self.set_callback(&route.name, route.callback.as_deref());
        }
    }

    /// Counts this request under a task type's name (bounded: only configured task types).
    pub fn set_metric_task(&mut self, task: &str) {
        self.metric_task = Cow::Owned(task.to_owned());
    }

    /// A complete answer; returns its cost in USD when its model has a price.
    pub fn succeeded(self, usage: Option<Usage>, text: Option<&str>) -> Option<f64> {
        if self.log_prompts
            && let Some(t) = text
        {
            tracing::info!(request_id = %self.request_id, completion = %t, "completion");
            traces::text(&self.request_id, "ai_gateway.completion", t);
        }
        let summary = text.map(summarize);
        self.finish(RequestStatus::Success, 200, usage, summary, None, None, false)
    }

    /// A refusal or failure given to the client.
    pub fn failed(self, error: &ApiError) {
        let provider = self.provider.clone().or_else(|| error.provider().cloned());
        let mut this = self;
        this.provider = provider.or_else(|| this.attempts.last().map(|a| a.provider.clone()));
        this.error_type = Some(error.code().unwrap_or_else(|| error.error_type()).to_owned());
        this.finish(
            RequestStatus::Error,
            error.status(),
            None,
            None,
            Some(error.to_string()),
            None,
            false,
        );
    }

    #[expect(clippy::too_many_arguments, reason = "the one place a request's outcome is written")]
    fn finish(
        mut self,
        status: RequestStatus,
        http_status: u16,
        usage: Option<Usage>,
        result_summary: Option<String>,
        error_message: Option<String>,
        ttft_ms: Option<u64>,
        cost_estimated: bool,
    ) -> Option<f64> {
        let mut spend = std::mem::take(&mut self.spend);
        let priced_as = self
            .provider
            .as_ref()
            .map(|p| self.nodes.pool_of(p).unwrap_or_else(|| p.clone()));
        let (cost_usd, charges) = super::spend::settle(
            &self.shared_spend,
            &mut spend,
            priced_as.as_ref().map(ProviderId::as_str),
            self.upstream_model.as_deref(),
            usage.as_ref(),
        );
        if let Some(p) = &priced_as
            && usage.is_some()
        {
            let model = self.upstream_model.as_deref().unwrap_or_default();
            let named = spend.live.as_ref().is_some_and(|l| l.prices.names(p.as_str(), model));
            self.metrics.observe_cost(p.as_str(), model, named, cost_usd);
        }
        if let (Some(limiter), Some(caller), Some(u)) = (&self.token_budget, &self.caller, usage) {
            limiter.record_tokens(caller, u.total_tokens);
        }
        if let (Some((limiter, key)), Some(u)) = (&self.team_tokens, usage) {
            limiter.record_tokens(key, u.total_tokens);
        }
        if traces::enabled() {
            self.trace_finished(
                provider_kind(&spend, self.provider.as_ref()),
                http_status,
                usage,
                cost_usd,
            );
        }
        let provider = self.provider.map(|p| self.nodes.pool_of(&p).unwrap_or(p));
        self.metrics.observe_request(&RequestObservation {
            task: &self.metric_task,
            provider: provider.as_ref(),
            status: status.as_str(),
            attempts: &self.attempts,
            usage,
            ttft: ttft_ms.map(Duration::from_millis),
        });
        let cache = self.cache.map(CacheStatus::as_str);
        if let Some(result) = cache {
            self.metrics.observe_cache(result);
        }
        let latency_ms = millis(self.started);
        if let Some(url) = &self.callback {
            let mut event = Event::completed(self.request_id.as_str(), self.created_at_ms, self.endpoint.as_ref());
            event.route.clone_from(&self.callback_route);
            event.model.clone_from(&self.model);
            event.provider = provider.as_ref().map(|p| p.to_string());
            event.status = status.as_str();
            event.status_code = http_status;
            event.latency_ms = latency_ms;
            event.usage = usage;
            event.cache = cache;
            self.webhooks.emit(url, &event);
        }
        if let Some(route) = &self.route {
            let model = self.upstream_model.as_deref();
            self.metrics
                .observe_route(route, provider.as_ref(), model, status.as_str());
        }
        let record = HistoryRecord {
            endpoint: self.endpoint,
            request_id: self.request_id.to_string(),
            created_at_ms: self.created_at_ms,
            task: self.task,
            model: self.model,
            provider: provider.map(|p| p.to_string()),
            upstream_model: self.upstream_model,
            stream: self.stream,
            status,
            http_status,
            latency_ms,
            ttft_ms,
            usage,
            attempts: self.attempts,
            caller: self.caller,
            error_message,
            result_summary,
            prompt: self.prompt,
            cache,
            session_id: self.session,
            cost_usd,
            cost_estimated: cost_estimated && cost_usd.is_some(),
            team: spend.team,
            user: spend.user,
            tags: spend.tags,
            charges,
            trace_id: self.request_id.trace_id(),
        };
        self.sink.record(record);
        cost_usd
    }
}

impl Trace {
    /// The row a stream leaves if the gateway stops before it ends (the spool's `open` line): what
    /// is known at its start, as an error (headers were sent: HTTP 200), interrupted.
    fn interrupted(&self) -> HistoryRecord {
        let provider = self
            .provider
            .as_ref()
            .map(|p| self.nodes.pool_of(p).unwrap_or_else(|| p.clone()).to_string());
        HistoryRecord {
            endpoint: self.endpoint.clone(),
            request_id: self.request_id.to_string(),
            created_at_ms: self.created_at_ms,
            task: self.task.clone(),
            model: self.model.clone(),
            provider,
            upstream_model: self.upstream_model.clone(),
            stream: true,
            status: RequestStatus::Error,
            http_status: 200,
            latency_ms: millis(self.started),
            ttft_ms: None,
            usage: None,
            attempts: self.attempts.clone(),
            caller: self.caller.clone(),
            error_message: Some(crate::store::INTERRUPTED.to_owned()),
            result_summary: None,
            prompt: self.prompt.clone(),
            cache: None,
            session_id: self.session.clone(),
            cost_usd: None,
            cost_estimated: false,
            team: self.spend.team.clone(),
            user: self.spend.user.clone(),
            tags: self.spend.tags.clone(),
            charges: Vec::new(),
            trace_id: self.request_id.trace_id(),
        }
    }
}

impl Trace {
    /// The server span's attributes (traces on only: nothing here runs otherwise).
    fn trace_finished(&self, kind: &str, status: u16, usage: Option<Usage>, cost: Option<f64>) {
        let provider = self.provider.as_ref().map(|p| (p.as_str(), kind));
        traces::finish(
            &self.request_id,
            &traces::Finished {
                model: self.model.as_deref(),
                response_model: self.upstream_model.as_deref().filter(|_| self.error_type.is_none()),
                provider,
                attempts: self.attempts.iter().filter(|a| a.was_called()).count(),
                usage,
                cost,
                status,
                error: self.error_type.as_deref(),
            },
        );
    }
}

/// The protocol of the provider that answered, for `gen_ai.provider.name`.
fn provider_kind<'a>(spend: &'a super::spend::SpendTrace, provider: Option<&ProviderId>) -> &'a str {
    provider
        .and_then(|p| spend.live.as_ref()?.registry.get(p))
        .map_or("", |p| p.config.kind.as_str())
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Follows a relayed stream: counts usage and the answer's start, hides the usage chunk the client
/// did not ask for, and writes the row when the stream ends — or, on `Drop` before that, a
/// `cancelled` row with what was counted so far.
pub(super) struct StreamRecorder {
    trace: Option<Trace>,
    strip_usage: bool,
    dialect: Dialect,
    usage: Option<Usage>,
    text: String,
    /// `text` holds the summary's `SUMMARY_CHARS`: events are parsed only for usage from here on.
    text_full: bool,
    ttft_ms: Option<u64>,
    chunks: usize,
    /// The model has a price: every event's text is kept (up to `MAX_RELAYED_BYTES`), so a stream
    /// that ends before its usage is priced on what was relayed.
    priced: bool,
    relayed: String,
    /// Characters of text past `MAX_RELAYED_BYTES`, counted at `CHARS_PER_TOKEN`.
    relayed_overflow: usize,
    /// A continuation finished a cut stream: the cut attempts' share of the usage is estimated.
    recovered: bool,
}

/// Text kept for pricing a stream that ends without its usage.
const MAX_RELAYED_BYTES: usize = 1 << 20;
/// OpenAI's rule of thumb for text past what is kept.
const CHARS_PER_TOKEN: usize = 4;

impl StreamRecorder {
    /// `strip_usage`: the gateway asked for the usage chunk, so the client must not see it.
    /// `dialect`: what the events are in (usage and text are read accordingly).
    pub fn new(trace: Trace, strip_usage: bool, dialect: Dialect) -> Self {
        if trace.sink.spooling() {
            trace.sink.open_stream(trace.interrupted());
        }
        Self {
            priced: priced(&trace),
            recovered: false,
            relayed: String::new(),
            relayed_overflow: 0,
            trace: Some(trace),
            strip_usage,
            dialect,
            usage: None,
            text: String::new(),
            text_full: false,
            ttft_ms: None,
            chunks: 0,
        }
    }

    /// Whether the model serving the stream has a price.
    fn reprice(&mut self) {
        if let Some(t) = &self.trace {
            self.priced = priced(t);
        }
    }

    /// The usage of a stream that ended before its usage came (or with only its input counted):
    /// the prompt from the usage seen, else a token per four bytes of the body; the answer counted
    /// from the text relayed.
    fn estimate(&self, seen: Option<Usage>, body_bytes: usize) -> Usage {
        let prompt = match seen {
            Some(u) if u.prompt_tokens > 0 => u.prompt_tokens,
            _ => (body_bytes / CHARS_PER_TOKEN) as u64,
        };
        let completion =
            crate::dialects::tokens::text_tokens(&self.relayed) + (self.relayed_overflow / CHARS_PER_TOKEN) as u64;
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            ..seen.unwrap_or_default()
        }
    }

    fn write(&mut self, status: RequestStatus, error: Option<String>) {
        let Some(trace) = self.trace.take() else { return };
        let summary = (!self.text.is_empty()).then(|| summarize(&self.text));
        tracing::info!(
            request_id = %trace.request_id,
            provider = trace.provider.as_ref().map(ProviderId::as_str),
            chunks = self.chunks,
            status = status.as_str(),
            "stream finished"
        );
        if trace.log_prompts {
            tracing::info!(request_id = %trace.request_id, completion = %self.text, "completion");
        }
        let http = if status == RequestStatus::Cancelled { 499 } else { 200 };
        // A stream that ended before its usage came is priced on what was relayed.
        let (usage, estimated) = if status == RequestStatus::Success || !self.priced {
            (self.usage, self.recovered && self.usage.is_some())
        } else {
            let est = self.estimate(self.usage, trace.spend.body_bytes);
            match self.usage {
                // The upstream's own count of the answer so far (Anthropic's) stands when it is
                // not below what was relayed.
                Some(u) if u.completion_tokens >= est.completion_tokens => (Some(u), false),
                _ => (Some(est), true),
            }
        };
        trace.finish(status, http, usage, summary, error, self.ttft_ms, estimated);
    }
}

impl StreamObserver for StreamRecorder {
    fn on_event(&mut self, data: &[u8]) -> bool {
        self.chunks += 1;
        if self.ttft_ms.is_none()
            && let Some(t) = &self.trace
        {
            self.ttft_ms = Some(millis(t.started));
        }
        // Parsing every event cost more than relaying it: once the summary has its text, only an
        // event that may carry usage is read.
        if self.text_full && !self.priced && !wire::may_carry_usage(data) {
            return true;
        }
        let inspected = match self.dialect {
            Dialect::OpenAi => wire::chunk(data),
            Dialect::Anthropic => wire::anthropic_event(data),
            Dialect::Responses => wire::responses_event(data),
        };
        let Some(chunk) = inspected else { return true };
        if let Some(usage) = chunk.usage {
            // Anthropic reports input at the start and output at the end: keep both.
            self.usage = Some(self.usage.map_or(usage, |seen| seen.merge(usage)));
        }
        if let Some(text) = chunk.text {
            if self.priced {
                if self.relayed.len() + text.len() <= MAX_RELAYED_BYTES {
                    self.relayed.push_str(&text);
                } else {
                    self.relayed_overflow += text.chars().count();
                }
            }
            if !self.text_full {
                self.text.push_str(&text);
                self.text_full = self.text.chars().count() >= crate::store::SUMMARY_CHARS;
            }
        }
        !(self.strip_usage && chunk.usage.is_some() && !chunk.has_choices)
    }

    fn on_end(&mut self, end: StreamEnd) {
        match end {
            StreamEnd::Complete => self.write(RequestStatus::Success, None),
            // Not the client's doing, nor the upstream's: the gateway cut it when shutdown's grace
            // period ran out.
            StreamEnd::Shutdown => self.write(
                RequestStatus::Error,
                Some("stream ended: shutdown (cut by the gateway when its shutdown grace period ran out)".into()),
            ),
            other => self.write(RequestStatus::Error, Some(format!("stream ended: {}", other.as_str()))),
        }
    }

    fn on_recovery(&mut self, note: &Recovered) {
        let Some(trace) = &mut self.trace else { return };
        let cut = &note.cut.provider;
        let pool = trace.nodes.pool_of(cut).unwrap_or_else(|| cut.clone());
        trace
            .metrics
            .observe_stream_recovery(pool.as_str(), note.outcome.as_str());
        if note.outcome == RecoveryOutcome::NotRecoverable {
            return;
        }
        // The attempt that delivered the stream until the cut is no success any more.
        if let Some(a) = trace
            .attempts
            .iter_mut()
            .rev()
            .find(|a| a.outcome == AttemptOutcome::Success && &a.provider == cut)
        {
            a.outcome = AttemptOutcome::StreamCut;
        }
        trace.attempts.extend(note.attempts.iter().cloned());
        if let Some(by) = &note.by {
            trace.provider = Some(by.provider.clone());
            trace.upstream_model = Some(by.model.clone());
            self.recovered = true;
            self.reprice();
        }
    }
}

/// Whether the model a trace names has a price (a node priced as its pool).
fn priced(trace: &Trace) -> bool {
    match (&trace.provider, &trace.upstream_model) {
        (Some(p), Some(m)) => {
            let pool = trace.nodes.pool_of(p).unwrap_or_else(|| p.clone());
            trace.spend.price(pool.as_str(), m).is_some()
        }
        _ => false,
    }
}

impl Drop for StreamRecorder {
    fn drop(&mut self) {
        if self.trace.is_some() {
            self.write(RequestStatus::Cancelled, Some("client disconnected".into()));
        }
    }
}
