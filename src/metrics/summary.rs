//! `GET /api/v1/metrics` (seed 002): latency, error and traffic summaries for people and scripts,
//! read from the same families `/metrics` exposes, so the two never disagree.
//!
//! Latency percentiles are estimated from the histogram buckets over the process lifetime, the way
//! PromQL's `histogram_quantile` does (linear within the bucket), so they are as coarse as the
//! buckets. Traffic's last minute comes from a 60-slot ring of per-second counts.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use prometheus::core::Collector;
use prometheus::proto::{Histogram, Metric};
use serde::Serialize;

use super::Metrics;

/// Which summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryKind {
    /// p50/p95/p99 and counts.
    Latency,
    /// Error counts and rates.
    Errors,
    /// Request counts and rates.
    Traffic,
}

impl SummaryKind {
    /// Every kind, in the answer's order.
    pub const ALL: [SummaryKind; 3] = [Self::Latency, Self::Errors, Self::Traffic];

    /// `latency`, `errors` or `traffic`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "latency" => Some(Self::Latency),
            "errors" => Some(Self::Errors),
            "traffic" => Some(Self::Traffic),
            _ => None,
        }
    }
}

/// The answer of `GET /api/v1/metrics`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MetricsSummary {
    /// Seconds since the process started.
    pub uptime_seconds: f64,
    /// The `endpoint` filter applied, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// With `type=latency` (or no type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySummary>,
    /// With `type=errors` (or no type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<ErrorSummary>,
    /// With `type=traffic` (or no type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficSummary>,
}

/// Latency per endpoint (time to the response head) and per provider (one upstream attempt).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LatencySummary {
    /// How the percentiles were computed.
    pub method: &'static str,
    /// By endpoint (route pattern or path route), busiest first.
    pub endpoints: Vec<LatencyRow>,
    /// By provider (or path route target), busiest first.
    pub providers: Vec<LatencyRow>,
}

/// One endpoint's or provider's latency.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LatencyRow {
    /// The endpoint or provider.
    pub name: String,
    /// Observations.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

/// Errors per endpoint (HTTP responses) and per provider (upstream attempts).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorSummary {
    /// By endpoint.
    pub endpoints: Vec<EndpointErrors>,
    /// By provider.
    pub providers: Vec<ProviderErrors>,
}

/// One endpoint's responses by status class.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointErrors {
    pub endpoint: String,
    /// Responses.
    pub requests: u64,
    /// 4xx responses.
    pub client_errors: u64,
    /// 5xx responses.
    pub server_errors: u64,
    /// (4xx + 5xx) / requests.
    pub error_rate: f64,
    /// 5xx / requests.
    pub server_error_rate: f64,
    /// Responses by status class (`2xx`, `4xx`, `5xx`, ...).
    pub by_status_class: BTreeMap<String, u64>,
}

/// One provider's upstream attempts by outcome.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProviderErrors {
    /// The provider (or path route target `host:port`).
    pub provider: String,
    /// Attempts (breaker-skipped ones included).
    pub attempts: u64,
    /// Attempts that did not succeed.
    pub errors: u64,
    /// errors / attempts.
    pub error_rate: f64,
    /// Attempts by outcome (`success`, `server_error`, `timeout`, ...).
    pub by_outcome: BTreeMap<String, u64>,
}

/// Request counts and rates.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TrafficSummary {
    /// Every HTTP response since start (all endpoints, whatever the filter).
    pub total_requests: u64,
    /// total_requests / uptime.
    pub rps_lifetime: f64,
    /// Responses in the last 60 seconds.
    pub requests_last_minute: u64,
    /// requests_last_minute / 60.
    pub rps_last_minute: f64,
    /// By endpoint, busiest first.
    pub endpoints: Vec<TrafficRow>,
    /// Finished requests by the provider that answered (or was last tried), busiest first.
    pub providers: Vec<TrafficRow>,
}

/// One endpoint's or provider's request count.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TrafficRow {
    /// The endpoint or provider.
    pub name: String,
    pub requests: u64,
    /// requests / uptime.
    pub rps_lifetime: f64,
}

/// Per-second counts of the last minute.
#[derive(Debug)]
pub(super) struct LastMinute {
    started: Instant,
    slots: [(AtomicU64, AtomicU64); 60],
}

impl LastMinute {
    pub(super) fn new() -> Self {
        Self {
            started: Instant::now(),
            slots: std::array::from_fn(|_| (AtomicU64::new(u64::MAX), AtomicU64::new(0))),
        }
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    pub(super) fn uptime(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Counts one response. A slot is reused every minute; two requests racing at a second's
    /// boundary may lose one count, which a summary can afford.
    pub(super) fn add(&self) {
        let now = self.now();
        let (second, count) = &self.slots[usize::try_from(now % 60).unwrap_or(0)];
        if second.swap(now, Ordering::AcqRel) != now {
            count.store(0, Ordering::Release);
        }
        count.fetch_add(1, Ordering::AcqRel);
    }

    fn total(&self) -> u64 {
        let now = self.now();
        self.slots
            .iter()
            .filter(|(s, _)| {
                let s = s.load(Ordering::Acquire);
                s != u64::MAX && s + 60 > now
            })
            .map(|(_, c)| c.load(Ordering::Acquire))
            .sum()
    }
}

fn label<'a>(m: &'a Metric, name: &str) -> &'a str {
    m.get_label()
        .iter()
        .find(|l| l.name() == name)
        .map_or("", |l| l.value())
}

fn series(c: &dyn Collector) -> Vec<Metric> {
    c.collect().into_iter().flat_map(|f| f.get_metric().to_vec()).collect()
}

fn counter(m: &Metric) -> u64 {
    // Counters are integers stored as f64; the cast is exact below 2^53.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "an IntCounter's value is a non-negative integer"
    )]
    let n = m.get_counter().get_value() as u64;
    n
}

/// `histogram_quantile`: linear interpolation inside the bucket holding the rank; past the last
/// finite bound, that bound.
fn quantile(h: &Histogram, q: f64) -> f64 {
    let count = h.get_sample_count();
    if count == 0 {
        return 0.0;
    }
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let rank = q * count as f64;
    let (mut lower, mut below) = (0.0, 0u64);
    for b in h.get_bucket() {
        let cum = b.cumulative_count();
        #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        if cum as f64 >= rank && cum > below {
            let inside = (cum - below) as f64;
            return lower + (b.upper_bound() - lower) * ((rank - below as f64) / inside);
        }
        lower = b.upper_bound();
        below = cum;
    }
    lower
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let r = part as f64 / whole as f64;
    (r * 10_000.0).round() / 10_000.0
}

fn per_second(n: u64, seconds: f64) -> f64 {
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let r = n as f64 / seconds.max(1.0);
    (r * 1000.0).round() / 1000.0
}

impl Metrics {
    /// The summaries asked for; `endpoint` keeps only endpoints whose name contains it.
    pub fn summary(&self, kinds: &[SummaryKind], endpoint: Option<&str>) -> MetricsSummary {
        let keep = |name: &str| endpoint.is_none_or(|e| name.contains(e));
        let uptime = self.last_minute.uptime();
        MetricsSummary {
            uptime_seconds: (uptime * 1000.0).round() / 1000.0,
            endpoint: endpoint.map(str::to_owned),
            latency: kinds.contains(&SummaryKind::Latency).then(|| self.latency(&keep)),
            errors: kinds.contains(&SummaryKind::Errors).then(|| self.errors(&keep)),
            traffic: kinds
                .contains(&SummaryKind::Traffic)
                .then(|| self.traffic(&keep, uptime)),
        }
    }

    fn latency(&self, keep: &dyn Fn(&str) -> bool) -> LatencySummary {
        let rows = |c: &dyn Collector, label_name: &str, to_ms: f64, keep: &dyn Fn(&str) -> bool| {
            let mut rows: Vec<LatencyRow> = series(c)
                .iter()
                .filter(|m| m.get_histogram().get_sample_count() > 0 && keep(label(m, label_name)))
                .map(|m| {
                    let h = m.get_histogram();
                    let ms = |q| (quantile(h, q) * to_ms * 100.0).round() / 100.0;
                    LatencyRow {
                        name: label(m, label_name).to_owned(),
                        count: h.get_sample_count(),
                        p50_ms: ms(0.5),
                        p95_ms: ms(0.95),
                        p99_ms: ms(0.99),
                    }
                })
                .collect();
            rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
            rows
        };
        LatencySummary {
            method: "histogram buckets since start, interpolated like PromQL histogram_quantile",
            endpoints: rows(&self.f.http_duration, "route", 1000.0, keep),
            providers: rows(&self.f.ai_provider_latency_ms, "provider", 1.0, &|_| true),
        }
    }

    fn by_label(c: &dyn Collector, key: &str, sub: &str) -> BTreeMap<String, BTreeMap<String, u64>> {
        let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for m in series(c) {
            *out.entry(label(&m, key).to_owned())
                .or_default()
                .entry(label(&m, sub).to_owned())
                .or_default() += counter(&m);
        }
        out
    }

    fn errors(&self, keep: &dyn Fn(&str) -> bool) -> ErrorSummary {
        let endpoints = Self::by_label(&self.f.http_requests, "route", "status")
            .into_iter()
            .filter(|(route, _)| keep(route))
            .filter_map(|(endpoint, classes)| {
                let requests: u64 = classes.values().sum();
                let get = |c: &str| classes.get(c).copied().unwrap_or(0);
                let (client_errors, server_errors) = (get("4xx"), get("5xx"));
                (requests > 0).then(|| EndpointErrors {
                    endpoint,
                    requests,
                    client_errors,
                    server_errors,
                    error_rate: ratio(client_errors + server_errors, requests),
                    server_error_rate: ratio(server_errors, requests),
                    by_status_class: classes.into_iter().filter(|(_, n)| *n > 0).collect(),
                })
            })
            .collect();
        let providers = Self::by_label(&self.f.upstream_attempts, "provider", "outcome")
            .into_iter()
            .filter_map(|(provider, outcomes)| {
                let attempts: u64 = outcomes.values().sum();
                let errors = attempts - outcomes.get("success").copied().unwrap_or(0);
                (attempts > 0).then(|| ProviderErrors {
                    provider,
                    attempts,
                    errors,
                    error_rate: ratio(errors, attempts),
                    by_outcome: outcomes.into_iter().filter(|(_, n)| *n > 0).collect(),
                })
            })
            .collect();
        ErrorSummary { endpoints, providers }
    }

    fn traffic(&self, keep: &dyn Fn(&str) -> bool, uptime: f64) -> TrafficSummary {
        let rows = |map: BTreeMap<String, BTreeMap<String, u64>>, keep: &dyn Fn(&str) -> bool| {
            let mut rows: Vec<TrafficRow> = map
                .into_iter()
                .map(|(name, by)| (name, by.values().sum::<u64>()))
                .filter(|(name, n)| *n > 0 && keep(name))
                .map(|(name, requests)| TrafficRow {
                    name,
                    requests,
                    rps_lifetime: per_second(requests, uptime),
                })
                .collect();
            rows.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.name.cmp(&b.name)));
            rows
        };
        let endpoints = Self::by_label(&self.f.http_requests, "route", "status");
        let total_requests = endpoints.values().flat_map(BTreeMap::values).sum();
        let requests_last_minute = self.last_minute.total();
        TrafficSummary {
            total_requests,
            rps_lifetime: per_second(total_requests, uptime),
            requests_last_minute,
            rps_last_minute: per_second(requests_last_minute, 60.0),
            endpoints: rows(endpoints, keep),
            providers: rows(Self::by_label(&self.f.ai_request_count, "provider", "status"), &|_| {
                true
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn percentiles_interpolate_inside_the_bucket_like_promql() {
        let m = Metrics::new(&[], &[]).unwrap();
        for ms in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] {
            m.observe_http("/x", 200, Duration::from_millis(ms));
        }
        let s = m.summary(&[SummaryKind::Latency], None);
        let row = &s.latency.unwrap().endpoints[0];
        assert_eq!((row.name.as_str(), row.count), ("/x", 10));
        // Buckets 1, 5, 10 ms hold 1, 5, 10 observations: the median falls in (1, 5].
        assert!(row.p50_ms > 1.0 && row.p50_ms <= 5.0, "{row:?}");
        assert!(row.p99_ms > 5.0 && row.p99_ms <= 10.0, "{row:?}");
    }

    #[test]
    fn errors_and_traffic_count_by_endpoint_and_class() {
        let m = Metrics::new(&[], &[]).unwrap();
        for status in [200, 200, 404, 503] {
            m.observe_http("/predict", status, Duration::from_millis(1));
        }
        m.observe_http("/v1/models", 200, Duration::from_millis(1));
        let s = m.summary(&SummaryKind::ALL, Some("/pred"));
        let e = &s.errors.unwrap().endpoints;
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].requests, e[0].client_errors, e[0].server_errors), (4, 1, 1));
        assert!((e[0].error_rate - 0.5).abs() < 1e-9);
        let t = s.traffic.unwrap();
        assert_eq!(t.total_requests, 5);
        assert_eq!(t.requests_last_minute, 5);
        assert_eq!(t.endpoints.len(), 1);
        assert_eq!(t.endpoints[0].requests, 4);
    }
}
