//! Every metric family, with its name, help, labels and buckets. Names from seed 004 are kept
//! verbatim (`ai_request_count`, ...) even where Prometheus conventions would add `_total`; new ones
//! follow `gateway_<noun>_<unit>`.

use prometheus::{
    CounterVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::domain::{AttemptOutcome, ProviderId};

/// Routes whose HTTP series exist from the start.
pub const KNOWN_ROUTES: &[&str] = &[
    "/v1/chat/completions",
    "/v1/messages",
    "/v1/messages/count_tokens",
    "/v1/responses",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/models",
    "/api/u/{user}/chat/completions",
    "/api/u/{user}/models",
    "/livez",
    "/readyz",
    "/health",
    "/history",
    "/history/cleanup",
    "/ai/task",
    "/provider/status",
    "/metrics",
    "unmatched",
];

/// `result` of `gateway_cache_requests_total`.
pub const CACHE_RESULTS: &[&str] = &["hit", "miss"];

/// `result` of `gateway_idempotency_requests_total`.
pub const IDEMPOTENCY_RESULTS: &[&str] = &["executed", "replayed", "reused", "not_replayable", "in_progress"];

/// `result` of `gateway_webhook_deliveries_total`.
pub const WEBHOOK_RESULTS: &[&str] = &["delivered", "failed", "dropped"];

/// `outcome` of `gateway_stream_recoveries_total`.
pub const STREAM_RECOVERY_OUTCOMES: &[&str] = &["recovered", "failed", "not_recoverable"];

/// Reasons a limit refuses a request.
pub const LIMIT_REASONS: &[&str] = &["key", "route", "endpoint", "tokens"];

const OUTCOMES: &[AttemptOutcome] = &[
    AttemptOutcome::Success,
    AttemptOutcome::BreakerOpen,
    AttemptOutcome::Connect,
    AttemptOutcome::Timeout,
    AttemptOutcome::RateLimited,
    AttemptOutcome::ServerError,
    AttemptOutcome::Unauthorized,
    AttemptOutcome::NotFound,
    AttemptOutcome::Rejected,
    AttemptOutcome::ContextLengthExceeded,
    AttemptOutcome::Malformed,
    AttemptOutcome::Unsupported,
    AttemptOutcome::TooLarge,
    AttemptOutcome::Redirected,
    AttemptOutcome::KeysCooling,
    AttemptOutcome::StreamCut,
    AttemptOutcome::Overloaded,
];

const LATENCY_MS_BUCKETS: &[f64] = &[
    5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0,
];
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// The registered families.
#[derive(Debug)]
pub struct Families {
    /// Seed 004: requests by task, provider and status.
    pub ai_request_count: IntCounterVec,
    /// Seed 004: failed upstream attempts by provider.
    pub ai_error_count: IntCounterVec,
    /// Seed 004: upstream attempt latency in milliseconds.
    pub ai_provider_latency_ms: HistogramVec,
    /// Seed 004: moves from one provider to the next inside one request.
    pub ai_failover_count: IntCounterVec,
    /// Upstream attempts by provider and outcome.
    pub upstream_attempts: IntCounterVec,
    /// HTTP responses by route and status class.
    pub http_requests: IntCounterVec,
    /// HTTP response time by route.
    pub http_duration: HistogramVec,
    /// Streams: time to the first chunk, by provider.
    pub ttft: HistogramVec,
    /// Tokens by provider and kind (`prompt`, `completion`).
    pub tokens: IntCounterVec,
    /// Requests being served.
    pub in_flight: IntGauge,
    /// 0 closed, 1 open, 2 half-open.
    pub breaker_state: IntGaugeVec,
    /// Breaker transitions by provider and target state.
    pub breaker_transitions: IntCounterVec,
    /// Requests refused by limits, by reason.
    pub rate_limited: IntCounterVec,
    /// Requests refused by credentials checks, by reason.
    pub auth_failures: IntCounterVec,
    /// Limit checks Redis could not answer.
    pub redis_fallbacks: IntCounter,
    /// History rows waiting to be written.
    pub history_queue_depth: IntGauge,
    /// History rows written.
    pub history_written: IntCounter,
    /// History rows dropped (queue full, or lost at shutdown).
    pub history_dropped: IntCounter,
    /// GPU nodes online.
    pub nodes_online: IntGauge,
    /// GPU nodes busy.
    pub nodes_busy: IntGauge,
    /// Config file reloads by result (`ok`, `invalid`).
    pub config_reloads: IntCounterVec,
    /// Response-cache lookups by result (`hit`, `miss`).
    pub cache_requests: IntCounterVec,
    /// Response-cache calls Redis failed or answered too slowly (each served as a miss or not stored).
    pub cache_redis_errors: IntCounter,
    /// Webhook events by how their delivery ended (`delivered`, `failed`, `dropped`).
    pub webhook_deliveries: IntCounterVec,
    /// Requests with an idempotency key (or a client `x-request-id`) by what became of them.
    pub idempotency_requests: IntCounterVec,
    /// Idempotency calls Redis failed or answered too slowly (each decided by the replica's table).
    pub idempotency_redis_errors: IntCounter,
    /// Requests to named routes, by route, the target that answered (provider, model) and status.
    pub route_requests: IntCounterVec,
    /// USD spent, by provider and priced model (`other` for a model priced only by a pattern).
    pub cost_usd: CounterVec,
    /// Requests whose model has no price, by provider.
    pub cost_unpriced: IntCounterVec,
    /// Budget checks and settlements decided locally because Redis could not answer.
    pub budget_redis_fallbacks: IntCounter,
    pub trace_spans_dropped: IntCounter,
    /// Rests of pooled provider keys, by provider and key index.
    pub key_cooldowns: IntCounterVec,
    /// Streams cut after their text started, on a route that continues them: by the provider cut
    /// and the outcome (`recovered`, `failed`, `not_recoverable`).
    pub stream_recoveries: IntCounterVec,
    /// Requests waiting for a slot, by capped level (`provider:<id>`, `node:<id>`,
    /// `route:<name>:<index>`).
    pub queue_depth: IntGaugeVec,
    /// Time requests waited for a slot, by level (0 when one was free).
    pub queue_wait: HistogramVec,
    /// Requests a level's queue turned away, by level and reason (`full`, `timeout`).
    pub queue_rejections: IntCounterVec,
}

/// `reason` of `gateway_queue_rejections_total`.
pub const QUEUE_REJECTIONS: &[&str] = &["full", "timeout"];

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> Result<IntCounterVec, prometheus::Error> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn histogram(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> Result<HistogramVec, prometheus::Error> {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), labels)?;
    r.register(Box::new(h.clone()))?;
    Ok(h)
}

fn gauge(r: &Registry, name: &str, help: &str) -> Result<IntGauge, prometheus::Error> {
    let g = IntGauge::new(name, help)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

fn plain_counter(r: &Registry, name: &str, help: &str) -> Result<IntCounter, prometheus::Error> {
    let c = IntCounter::new(name, help)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

impl Families {
    /// Registers every family on `r`.
    pub fn register(r: &Registry) -> Result<Self, prometheus::Error> {
        let breaker_state = IntGaugeVec::new(
            Opts::new(
                "gateway_breaker_state",
                "Circuit breaker state: 0 closed, 1 open, 2 half-open",
            ),
            &["provider"],
        )?;
        r.register(Box::new(breaker_state.clone()))?;
        let queue_depth = IntGaugeVec::new(
            Opts::new(
                "gateway_queue_depth",
                "Requests waiting for a concurrency slot, by capped level",
            ),
            &["level"],
        )?;
        r.register(Box::new(queue_depth.clone()))?;
        Ok(Self {
            queue_depth,
            queue_wait: histogram(
                r,
                "gateway_queue_wait_seconds",
                "Time requests waited for a concurrency slot, by capped level",
                &["level"],
                SECONDS_BUCKETS,
            )?,
            queue_rejections: counter(
                r,
                "gateway_queue_rejections_total",
                "Requests a capped level's queue turned away, by level and reason (full, timeout)",
                &["level", "reason"],
            )?,
            ai_request_count: counter(
                r,
                "ai_request_count",
                "Requests processed, by task, provider and status",
                &["task", "provider", "status"],
            )?,
            ai_error_count: counter(
                r,
                "ai_error_count",
                "Failed upstream attempts, by provider",
                &["provider"],
            )?,
            ai_provider_latency_ms: histogram(
                r,
                "ai_provider_latency_ms",
                "Upstream attempt latency in milliseconds",
                &["provider"],
                LATENCY_MS_BUCKETS,
            )?,
            ai_failover_count: counter(
                r,
                "ai_failover_count",
                "Moves from one provider to the next within a request",
                &["from_provider", "to_provider"],
            )?,
            upstream_attempts: counter(
                r,
                "gateway_upstream_attempts_total",
                "Upstream attempts by provider and outcome",
                &["provider", "outcome"],
            )?,
            http_requests: counter(
                r,
                "gateway_http_requests_total",
                "HTTP responses by route and status class",
                &["route", "status"],
            )?,
            http_duration: histogram(
                r,
                "gateway_http_request_duration_seconds",
                "Time to the response head, by route",
                &["route"],
                SECONDS_BUCKETS,
            )?,
            ttft: histogram(
                r,
                "gateway_time_to_first_token_seconds",
                "Streams: time to the first chunk, by provider",
                &["provider"],
                SECONDS_BUCKETS,
            )?,
            tokens: counter(
                r,
                "gateway_tokens_total",
                "Tokens by provider and kind (prompt, completion)",
                &["provider", "kind"],
            )?,
            in_flight: gauge(r, "gateway_requests_in_flight", "Requests being served")?,
            breaker_state,
            breaker_transitions: counter(
                r,
                "gateway_breaker_transitions_total",
                "Circuit breaker transitions by provider and target state",
                &["provider", "to"],
            )?,
            rate_limited: counter(
                r,
                "gateway_rate_limited_total",
                "Requests refused by limits, by reason",
                &["reason"],
            )?,
            auth_failures: counter(
                r,
                "gateway_auth_failures_total",
                "Requests refused by credentials checks, by reason",
                &["reason"],
            )?,
            redis_fallbacks: plain_counter(
                r,
                "gateway_rate_limit_redis_fallbacks_total",
                "Limit checks decided locally because Redis could not answer",
            )?,
            history_queue_depth: gauge(r, "gateway_history_queue_depth", "History rows waiting to be written")?,
            history_written: plain_counter(r, "gateway_history_rows_written_total", "History rows written")?,
            history_dropped: plain_counter(r, "gateway_history_rows_dropped_total", "History rows dropped")?,
            nodes_online: gauge(r, "gateway_nodes_online", "GPU inference nodes online")?,
            nodes_busy: gauge(r, "gateway_nodes_busy", "GPU inference nodes busy")?,
            config_reloads: counter(
                r,
                "gateway_config_reloads_total",
                "Config file reloads (SIGHUP or a file change), by result: ok or invalid",
                &["result"],
            )?,
            cache_requests: counter(
                r,
                "gateway_cache_requests_total",
                "Response-cache lookups by result (hit, miss)",
                &["result"],
            )?,
            cache_redis_errors: plain_counter(
                r,
                "gateway_cache_redis_errors_total",
                "Response-cache calls Redis failed or answered too slowly",
            )?,
            idempotency_requests: counter(
                r,
                "gateway_idempotency_requests_total",
                "Requests with an Idempotency-Key or a client x-request-id, by result (executed, replayed, reused, not_replayable, in_progress)",
                &["result"],
            )?,
            idempotency_redis_errors: plain_counter(
                r,
                "gateway_idempotency_redis_errors_total",
                "Idempotency calls Redis failed or answered too slowly",
            )?,
            webhook_deliveries: counter(
                r,
                "gateway_webhook_deliveries_total",
                "Webhook events by how delivery ended (delivered, failed after retries, dropped)",
                &["result"],
            )?,
            route_requests: counter(
                r,
                "gateway_route_requests_total",
                "Requests to named routes, by route, answering target (provider, model) and status",
                &["route", "provider", "model", "status"],
            )?,
            cost_usd: {
                let c = CounterVec::new(
                    Opts::new(
                        "gateway_cost_usd_total",
                        "USD spent on upstream calls, by provider and model",
                    ),
                    &["provider", "model"],
                )?;
                r.register(Box::new(c.clone()))?;
                c
            },
            cost_unpriced: counter(
                r,
                "gateway_cost_unpriced_total",
                "Requests with usage whose model has no price (their cost is null), by provider",
                &["provider"],
            )?,
            trace_spans_dropped: plain_counter(
                r,
                "gateway_trace_spans_dropped_total",
                "Trace spans dropped: the export queue was full or the collector failed",
            )?,
            budget_redis_fallbacks: plain_counter(
                r,
                "gateway_budget_redis_fallbacks_total",
                "Budget checks and settlements decided by one replica because Redis could not answer",
            )?,
            key_cooldowns: counter(
                r,
                "gateway_key_cooldowns_total",
                "Rests of a provider's pooled keys after a 429, 401, 402 or 403, by provider and key index",
                &["provider", "key"],
            )?,
            stream_recoveries: counter(
                r,
                "gateway_stream_recoveries_total",
                "Streams cut after their text started where stream_recovery is continue, by the provider cut and outcome (recovered, failed, not_recoverable)",
                &["provider", "outcome"],
            )?,
        })
    }

    /// Creates the series whose labels are known now, at zero.
    pub fn precreate(&self, providers: &[ProviderId], tasks: &[&str]) {
        let mut ids: Vec<&str> = providers.iter().map(ProviderId::as_str).collect();
        for p in &ids {
            self.ai_error_count.with_label_values(&[p]);
            self.ai_provider_latency_ms.with_label_values(&[p]);
            self.ttft.with_label_values(&[p]);
            self.breaker_state.with_label_values(&[p]);
            for kind in ["prompt", "completion"] {
                self.tokens.with_label_values(&[p, kind]);
            }
            for to in ["open", "half_open", "closed"] {
                self.breaker_transitions.with_label_values(&[p, to]);
            }
            for outcome in OUTCOMES {
                self.upstream_attempts.with_label_values(&[p, outcome.as_str()]);
            }
            for outcome in STREAM_RECOVERY_OUTCOMES {
                self.stream_recoveries.with_label_values(&[p, outcome]);
            }
            for q in providers.iter().map(ProviderId::as_str).filter(|q| q != p) {
                self.ai_failover_count.with_label_values(&[p, q]);
            }
        }
        ids.push(super::NO_PROVIDER);
        for task in tasks {
            for p in &ids {
                for status in ["success", "error", "cancelled"] {
                    self.ai_request_count.with_label_values(&[task, p, status]);
                }
            }
        }
        for route in KNOWN_ROUTES {
            self.http_duration.with_label_values(&[route]);
            for class in ["2xx", "4xx", "5xx"] {
                self.http_requests.with_label_values(&[route, class]);
            }
        }
        for reason in LIMIT_REASONS {
            self.rate_limited.with_label_values(&[reason]);
        }
        for reason in ["missing", "invalid", "expired", "forbidden", "throttled"] {
            self.auth_failures.with_label_values(&[reason]);
        }
        for result in ["ok", "invalid"] {
            self.config_reloads.with_label_values(&[result]);
        }
        for result in CACHE_RESULTS {
            self.cache_requests.with_label_values(&[result]);
        }
        for result in IDEMPOTENCY_RESULTS {
            self.idempotency_requests.with_label_values(&[result]);
        }
        for result in WEBHOOK_RESULTS {
            self.webhook_deliveries.with_label_values(&[result]);
        }
    }
}
