//! Prometheus metrics on an owned registry: typed families, observed from `pipeline` and the HTTP
//! middleware, exposed as text at `/metrics`.
//!
//! Depends on `domain`; the only module that knows the `prometheus` crate. Label values come only
//! from configured ids and closed sets — never from raw client strings — and every series whose
//! labels are known in advance is created at zero on start, so dashboards and alerts never query a
//! series that does not exist yet.

mod families;
mod recent;
mod summary;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus::{Encoder, IntCounter, Registry, TextEncoder};

pub use families::Families;
pub use recent::RecentStats;
pub use summary::{
    EndpointErrors, ErrorSummary, LatencyRow, LatencySummary, MetricsSummary, ProviderErrors, SummaryKind, TrafficRow,
    TrafficSummary,
};

use crate::domain::{AttemptOutcome, AttemptSummary, ProviderId, Usage};

/// Label for "no provider" (a request refused before any provider was chosen).
pub const NO_PROVIDER: &str = "none";

/// A breaker's state as the gauge encodes it: 0 closed, 1 open, 2 half-open.
#[derive(Debug, Clone, Copy)]
pub struct BreakerSample<'a> {
    /// Provider id.
    pub provider: &'a str,
    /// 0, 1 or 2.
    pub state: i64,
}

/// Totals kept elsewhere (the history writer, the limiter) and mirrored into the registry at scrape
/// time.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScrapeSample {
    /// Rows waiting.
    pub queue_depth: usize,
    /// Rows written since start.
    pub written: u64,
    /// Rows dropped since start.
    pub dropped: u64,
    /// Limit checks Redis could not answer (decided locally instead).
    pub redis_fallbacks: u64,
    /// Budget checks and settlements Redis could not answer.
    pub budget_redis_fallbacks: u64,
    /// Trace spans dropped since start (export queue full, or the collector failed).
    pub trace_spans_dropped: u64,
}

/// What one finished request contributes.
#[derive(Debug)]
pub struct RequestObservation<'a> {
    /// `chat`, `embeddings`, or an `/ai/task` task type.
    pub task: &'a str,
    /// The provider that answered (or was last tried).
    pub provider: Option<&'a ProviderId>,
    /// `success`, `error` or `cancelled`.
    pub status: &'a str,
    /// Every attempt.
    pub attempts: &'a [AttemptSummary],
    /// Tokens, when reported.
    pub usage: Option<Usage>,
    /// Streams: time to the first chunk.
    pub ttft: Option<Duration>,
}

/// The gateway's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// The metric families.
    pub f: Families,
    /// Last error and median latency per provider, for `/provider/status`.
    pub recent: RecentStats,
    history_written_seen: AtomicU64,
    history_dropped_seen: AtomicU64,
    trace_spans_dropped_seen: AtomicU64,
    redis_fallbacks_seen: AtomicU64,
    budget_fallbacks_seen: AtomicU64,
    /// Responses per second over the last minute, and the start time (for `summary`).
    last_minute: summary::LastMinute,
}

impl Metrics {
    /// Registers every family and creates the known series at zero.
    pub fn new(providers: &[ProviderId], tasks: &[&str]) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let f = Families::register(&registry)?;
        f.precreate(providers, tasks);
        Ok(Self {
            registry,
            f,
            recent: RecentStats::default(),
            history_written_seen: AtomicU64::new(0),
            history_dropped_seen: AtomicU64::new(0),
            trace_spans_dropped_seen: AtomicU64::new(0),
            redis_fallbacks_seen: AtomicU64::new(0),
            budget_fallbacks_seen: AtomicU64::new(0),
            last_minute: summary::LastMinute::new(),
        })
    }

    /// Adds series for providers that appeared after start (a reload).
    pub fn add_providers(&self, providers: &[ProviderId], tasks: &[&str]) {
        self.f.precreate(providers, tasks);
    }

    /// Counts one finished request and its attempts.
    pub fn observe_request(&self, o: &RequestObservation<'_>) {
        let provider = o.provider.map_or(NO_PROVIDER, ProviderId::as_str);
        self.f
            .ai_request_count
            .with_label_values(&[o.task, provider, o.status])
            .inc();
        if o.attempts.iter().any(AttemptSummary::was_called) {
            // Only a failed attempt's "last error" shows the time: not formatted for every success.
            let failed = o
                .attempts
                .iter()
                .any(|a| a.was_called() && a.outcome != AttemptOutcome::Success);
            let now = if failed {
                time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            } else {
                String::new()
            };
            self.recent.record(o.attempts, &now);
        }
        let mut previous: Option<&ProviderId> = None;
        for a in o.attempts {
            let p = a.provider.as_str();
            if let Some(prev) = previous
                && prev != &a.provider
            {
                self.f.ai_failover_count.with_label_values(&[prev.as_str(), p]).inc();
            }
            previous = Some(&a.provider);
            self.f
                .upstream_attempts
                .with_label_values(&[p, a.outcome.as_str()])
                .inc();
            if !a.was_called() {
                continue;
            }
            self.f
                .ai_provider_latency_ms
                .with_label_values(&[p])
                .observe(a.latency.as_secs_f64() * 1000.0);
            if a.outcome != AttemptOutcome::Success {
                self.f.ai_error_count.with_label_values(&[p]).inc();
            }
        }
        if let (Some(usage), Some(p)) = (o.usage, o.provider) {
            self.f
                .tokens
                .with_label_values(&[p.as_str(), "prompt"])
                .inc_by(usage.prompt_tokens);
            self.f
                .tokens
                .with_label_values(&[p.as_str(), "completion"])
                .inc_by(usage.completion_tokens);
        }
        if let (Some(ttft), Some(p)) = (o.ttft, o.provider) {
            self.f.ttft.with_label_values(&[p.as_str()]).observe(ttft.as_secs_f64());
        }
    }

    /// Counts one HTTP response (`route` is the matched pattern, never the raw path).
    pub fn observe_http(&self, route: &str, status: u16, elapsed: Duration) {
        let class = status_class(status);
        self.last_minute.add();
        self.f.http_requests.with_label_values(&[route, class]).inc();
        self.f
            .http_duration
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    /// A request refused by a limit (`reason`: a closed set chosen by the caller).
    pub fn observe_rate_limited(&self, reason: &str) {
        self.f.rate_limited.with_label_values(&[reason]).inc();
    }

    /// Counts a request as in flight until the guard drops.
    pub fn track_in_flight(&self) -> InFlightGuard {
        self.f.in_flight.inc();
        InFlightGuard(self.f.in_flight.clone())
    }

    /// Renders the text exposition, after mirroring state that lives elsewhere.
    pub fn render(&self, breakers: &[BreakerSample<'_>], history: ScrapeSample) -> Result<String, prometheus::Error> {
        for b in breakers {
            self.f.breaker_state.with_label_values(&[b.provider]).set(b.state);
        }
        self.f
            .history_queue_depth
            .set(i64::try_from(history.queue_depth).unwrap_or(i64::MAX));
        mirror(&self.f.history_written, &self.history_written_seen, history.written);
        mirror(&self.f.history_dropped, &self.history_dropped_seen, history.dropped);
        mirror(
            &self.f.trace_spans_dropped,
            &self.trace_spans_dropped_seen,
            history.trace_spans_dropped,
        );
        mirror(
            &self.f.redis_fallbacks,
            &self.redis_fallbacks_seen,
            history.redis_fallbacks,
        );
        mirror(
            &self.f.budget_redis_fallbacks,
            &self.budget_fallbacks_seen,
            history.budget_redis_fallbacks,
        );
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }

    /// A request refused by a credentials check (`reason`: missing, invalid, expired, forbidden).
    pub fn observe_auth_failure(&self, reason: &str) {
        self.f.auth_failures.with_label_values(&[reason]).inc();
    }

    /// GPU nodes online and busy now (`gateway_nodes_online`, `gateway_nodes_busy`).
    pub fn set_nodes(&self, online: usize, busy: usize) {
        self.f.nodes_online.set(i64::try_from(online).unwrap_or(i64::MAX));
        self.f.nodes_busy.set(i64::try_from(busy).unwrap_or(i64::MAX));
    }

    /// A config file reload was applied (`ok`) or refused as invalid.
    pub fn observe_config_reload(&self, applied: bool) {
        let result = if applied { "ok" } else { "invalid" };
        self.f.config_reloads.with_label_values(&[result]).inc();
    }

    /// A response-cache lookup (`result`: `hit` or `miss`).
    pub fn observe_cache(&self, result: &str) {
        self.f.cache_requests.with_label_values(&[result]).inc();
    }

    /// A response-cache call Redis failed or answered too slowly.
    pub fn observe_cache_error(&self) {
        self.f.cache_redis_errors.inc();
    }

    /// A request with an idempotency key: `executed`, `replayed`, `reused`, `not_replayable` or
    /// `in_progress`.
    pub fn observe_idempotency(&self, result: &str) {
        self.f.idempotency_requests.with_label_values(&[result]).inc();
    }

    /// An idempotency call Redis failed or answered too slowly.
    pub fn observe_idempotency_error(&self) {
        self.f.idempotency_redis_errors.inc();
    }

    /// A stream cut after its text started, where it may recover: `provider` the one cut (a node's
    /// pool), `outcome` one of `families::STREAM_RECOVERY_OUTCOMES`.
    pub fn observe_stream_recovery(&self, provider: &str, outcome: &str) {
        self.f.stream_recoveries.with_label_values(&[provider, outcome]).inc();
    }

    /// A webhook event's delivery ended (`result`: `delivered`, `failed` or `dropped`).
    pub fn observe_webhook(&self, result: &str) {
        self.f.webhook_deliveries.with_label_values(&[result]).inc();
    }

    /// Creates each named route's target series at zero (`targets`: route, provider, model).
    pub fn add_routes(&self, targets: &[(&str, &str, &str)]) {
        for (route, provider, model) in targets {
            for status in ["success", "error", "cancelled"] {
                self.f
                    .route_requests
                    .with_label_values(&[route, provider, model, status]);
            }
            for status in ["error", "cancelled"] {
                self.f
                    .route_requests
                    .with_label_values(&[route, NO_PROVIDER, NO_PROVIDER, status]);
            }
        }
    }

    /// Counts one request to a named route (`route`, `provider` and `model` are configured names:
    /// the route, and the target that answered or was last tried; `none` when no target was).
    pub fn observe_route(&self, route: &str, provider: Option<&ProviderId>, model: Option<&str>, status: &str) {
        let provider = provider.map_or(NO_PROVIDER, ProviderId::as_str);
        let model = model.unwrap_or(NO_PROVIDER);
        self.f
            .route_requests
            .with_label_values(&[route, provider, model, status])
            .inc();
    }

    /// What one request cost at `provider` (a configured id): `None` for an unpriced model.
    /// `model` is a label only when `known` (a price names it), else `other`, so clients cannot
    /// grow the series.
    pub fn observe_cost(&self, provider: &str, model: &str, known: bool, cost: Option<f64>) {
        match cost {
            Some(usd) => {
                let model = if known { model } else { "other" };
                self.f.cost_usd.with_label_values(&[provider, model]).inc_by(usd);
            }
            None => self.f.cost_unpriced.with_label_values(&[provider]).inc(),
        }
    }

    /// Advances `gateway_key_cooldowns_total` to each pooled key's count of rests (`provider`, key
    /// index, total); the pools keep the totals, so a scrape only mirrors them.
    pub fn mirror_key_cooldowns(&self, totals: &[(&str, usize, u64)]) {
        for (provider, index, total) in totals {
            let counter = self
                .f
                .key_cooldowns
                .with_label_values(&[*provider, index.to_string().as_str()]);
            let have = counter.get();
            if *total > have {
                counter.inc_by(total - have);
            }
        }
    }

    /// A breaker changed state (`to`: `open`, `half_open` or `closed`).
    pub fn observe_breaker_transition(&self, provider: &str, to: &str) {
        self.f.breaker_transitions.with_label_values(&[provider, to]).inc();
    }

    /// A capped level got its queue (`level`: a label made of configured ids): its series exist
    /// at zero from now on.
    pub fn open_queue(&self, level: &str) {
        self.f.queue_depth.with_label_values(&[level]);
        self.f.queue_wait.with_label_values(&[level]);
        for reason in families::QUEUE_REJECTIONS {
            self.f.queue_rejections.with_label_values(&[level, reason]);
        }
    }

    /// A request got a slot at `level` after `waited`.
    pub fn observe_queue_wait(&self, level: &str, waited: Duration) {
        self.f
            .queue_wait
            .with_label_values(&[level])
            .observe(waited.as_secs_f64());
    }

    /// A request got no slot at `level` (`reason`: `full` or `timeout`).
    pub fn observe_queue_rejection(&self, level: &str, reason: &str) {
        self.f.queue_rejections.with_label_values(&[level, reason]).inc();
    }

    /// Requests waiting at each capped level now, mirrored at scrape time.
    pub fn set_queue_depths(&self, depths: &[(&str, usize)]) {
        for (level, depth) in depths {
            self.f
                .queue_depth
                .with_label_values(&[level])
                .set(i64::try_from(*depth).unwrap_or(i64::MAX));
        }
    }
}

/// Holds one request in `gateway_requests_in_flight`.
#[derive(Debug)]
pub struct InFlightGuard(prometheus::IntGauge);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Advances a counter to a total kept elsewhere.
fn mirror(counter: &IntCounter, seen: &AtomicU64, total: u64) {
    let before = seen.swap(total, Ordering::Relaxed);
    if total > before {
        counter.inc_by(total - before);
    }
}

/// `2xx`, `4xx`, ... — a closed set.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}
