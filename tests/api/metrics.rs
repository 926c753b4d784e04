//! The ops files query only metrics the gateway exposes.
//!
//! [`metric_names_used_by_ops_files`] reads every PromQL expression in `grafana/dashboards/*.json`
//! (each `expr`, and the metric of each `label_values(metric, label)` template variable) and in
//! `prometheus/alerts.yml` (each rule's `expr`), and returns the metric names they reference, as
//! they appear in the text exposition. Histogram series are queried as `name_bucket` (or `_sum`,
//! `_count`), and `GET /metrics` prints exactly those sample names, so they are kept as written;
//! nothing is stripped (stripping `_count` would also break the counters whose family name ends in
//! `_count`, such as `ai_request_count`). Series that Prometheus itself creates (`up`, ...) are left
//! out.
//!
//! # How the test uses it
//!
//! Start the gateway in-process with at least two providers (so the precreated
//! `ai_failover_count{from_provider, to_provider}` series exist), send some traffic (a successful
//! chat completion, a streamed one, a failed attempt that fails over), then scrape `GET /metrics`
//! and assert that every name is there:
//!
//! ```ignore
//! let used = metrics::metric_names_used_by_ops_files();
//! assert!(used.len() > 10, "no metric found in the ops files: {used:?}");
//! let text = client.get(format!("{base}/metrics")).send().await?.text().await?;
//! let missing = metrics::missing_from_exposition(&used, &text);
//! assert!(missing.is_empty(), "queried by grafana/ or prometheus/ but not exposed at /metrics: {missing:?}");
//! ```
//!
//! A name in the ops files that the gateway does not expose is a dashboard panel that stays empty
//! or an alert that can never fire; this test fails instead.
//!
//! Wire it in with `mod metrics;` in `tests/api/main.rs`: that crate's `#![cfg(test)]` is what lets
//! clippy accept the `expect`/`panic!` here (a missing or malformed ops file fails the test).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Series Prometheus adds on its own; the gateway does not expose them.
const PROMETHEUS_SYNTHETIC: &[&str] = &[
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
    "ALERTS",
    "ALERTS_FOR_STATE",
];

/// PromQL words that are not metric names when not followed by `(`: binary operators and
/// modifiers, literals, and `le` in case it appears outside a `by (...)` list.
const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "le"];

/// Aggregation operators: followed by `(`, or by `by (...)` / `without (...)` before their `(`.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// Modifiers whose parenthesised list holds label names, not expressions.
const LABEL_LIST_MODIFIERS: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every metric name referenced by `grafana/dashboards/*.json` and `prometheus/alerts.yml`.
pub fn metric_names_used_by_ops_files() -> BTreeSet<String> {
    let root = repo_root();
    let mut names = BTreeSet::new();

    let dashboards = root.join("grafana/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dashboards)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dashboards.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboard in {}", dashboards.display());
    for file in &files {
        let dashboard: serde_json::Value =
            serde_json::from_str(&read(file)).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut exprs = Vec::new();
        json_exprs(&dashboard, &mut exprs);
        for expr in exprs {
            names.extend(metric_names_in_expr(&expr));
        }
        for query in json_variable_queries(&dashboard) {
            names.extend(metric_names_in_variable_query(&query));
        }
    }

    let alerts = root.join("prometheus/alerts.yml");
    let rules: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&read(&alerts)).unwrap_or_else(|e| panic!("{}: {e}", alerts.display()));
    let mut exprs = Vec::new();
    yaml_exprs(&rules, &mut exprs);
    assert!(!exprs.is_empty(), "no rule expr in {}", alerts.display());
    for expr in exprs {
        names.extend(metric_names_in_expr(&expr));
    }
    names
}

/// Sample names in a Prometheus text exposition (`name_bucket`, `name_sum`, `name_count` for
/// histograms), including series whose value is 0.
pub fn exposition_sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim_start)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split(['{', ' ', '\t']).next())
        .map(str::to_owned)
        .collect()
}

/// The names in `used` that `exposition` has no sample of, in order.
pub fn missing_from_exposition(used: &BTreeSet<String>, exposition: &str) -> Vec<String> {
    let exposed = exposition_sample_names(exposition);
    used.iter().filter(|name| !exposed.contains(*name)).cloned().collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every string under an `expr` key, at any depth (panel targets, rows' nested panels, rules).
fn json_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match v {
                    serde_json::Value::String(s) if key == "expr" => out.push(s.clone()),
                    _ => json_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| json_exprs(v, out)),
        _ => {}
    }
}

/// The query of each `templating.list[]` variable (a string, or `{"query": "..."}`).
fn json_variable_queries(dashboard: &serde_json::Value) -> Vec<String> {
    let Some(list) = dashboard
        .pointer("/templating/list")
        .and_then(serde_json::Value::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .filter(|v| v.get("type").and_then(serde_json::Value::as_str) == Some("query"))
        .filter_map(|v| {
            let q = v.get("query")?;
            q.as_str()
                .or_else(|| q.get("query").and_then(serde_json::Value::as_str))
                .map(str::to_owned)
        })
        .collect()
}

fn yaml_exprs(value: &serde_yaml_ng::Value, out: &mut Vec<String>) {
    match value {
        serde_yaml_ng::Value::Mapping(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    (Some("expr"), serde_yaml_ng::Value::String(s)) => out.push(s.clone()),
                    _ => yaml_exprs(v, out),
                }
            }
        }
        serde_yaml_ng::Value::Sequence(items) => items.iter().for_each(|v| yaml_exprs(v, out)),
        serde_yaml_ng::Value::Tagged(tagged) => yaml_exprs(&tagged.value, out),
        _ => {}
    }
}

/// Grafana's Prometheus variable queries: `label_values(metric, label)` names a metric,
/// `query_result(expr)` holds an expression; `label_values(label)`, `label_names()` and
/// `metrics(regex)` name none.
fn metric_names_in_variable_query(query: &str) -> BTreeSet<String> {
    let query = query.trim();
    let inner = |prefix: &str| {
        query
            .strip_prefix(prefix)
            .and_then(|rest| rest.trim_start().strip_prefix('('))
            .and_then(|rest| rest.trim_end().strip_suffix(')'))
    };
    if let Some(args) = inner("label_values") {
        return match args.rsplit_once(',') {
            Some((selector, _label)) => metric_names_in_expr(selector),
            None => BTreeSet::new(),
        };
    }
    if let Some(expr) = inner("query_result") {
        return metric_names_in_expr(expr);
    }
    BTreeSet::new()
}

/// Metric names in one PromQL expression (Grafana variables such as `$provider` or
/// `$__rate_interval` may appear: they sit inside strings or `[...]`, which are skipped).
///
/// A small tokenizer, not a parser: identifiers outside string literals, `{...}` matchers and
/// `[...]` ranges, not followed by `(` (functions), not an aggregation or keyword, and not inside
/// the label list of `by`, `without`, `on`, `ignoring`, `group_left` or `group_right`. Names
/// selected as `{__name__="..."}` are not seen.
pub fn metric_names_in_expr(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
        } else if c == '{' {
            i = skip_group(&chars, i, '{', '}');
        } else if c == '[' {
            i = skip_group(&chars, i, '[', ']');
        } else if c == '#' {
            // a comment runs to the end of the line
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            i = skip_number(&chars, i);
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let called = chars.get(next) == Some(&'(');
            if LABEL_LIST_MODIFIERS.contains(&word.as_str()) {
                if called {
                    i = skip_group(&chars, next, '(', ')');
                }
            } else if !called
                && !AGGREGATIONS.contains(&word.as_str())
                && !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(&word))
                && !PROMETHEUS_SYNTHETIC.contains(&word.as_str())
            {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Index just past the string literal opening at `start` (backslash escapes, except in raw
/// backtick strings).
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        if chars[i] == '\\' && quote != '`' {
            i += 2;
        } else if chars[i] == quote {
            return i + 1;
        } else {
            i += 1;
        }
    }
    chars.len()
}

/// Index just past the group opening at `start`, nesting and string literals included.
fn skip_group(chars: &[char], start: usize, open: char, close: char) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(chars, i);
            continue;
        }
        if c == open {
            depth += 1;
        } else if c == close {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                return i + 1;
            }
        }
        i += 1;
    }
    chars.len()
}

/// Index just past a number or duration: `0.99`, `1e-3`, `0x1f`, `5m`, `1h30m`.
fn skip_number(chars: &[char], start: usize) -> usize {
    let mut i = start;
    while i < chars.len() {
        let c = chars[i];
        let exponent_sign =
            (c == '+' || c == '-') && i > start && matches!(chars[i - 1], 'e' | 'E') && !is_hex(chars, start);
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' || exponent_sign {
            i += 1;
        } else {
            break;
        }
    }
    i
}

fn is_hex(chars: &[char], start: usize) -> bool {
    chars.get(start) == Some(&'0') && matches!(chars.get(start + 1), Some('x' | 'X'))
}

#[test]
fn tokenizer_finds_metric_names_and_skips_the_rest() {
    let names = |e: &str| metric_names_in_expr(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (le, provider) (rate(ai_provider_latency_ms_bucket{provider=~"$provider"}[$__rate_interval]))) > 10000"#
        ),
        ["ai_provider_latency_ms_bucket"]
    );
    assert_eq!(
        names(
            r#"(sum by (job) (rate(gateway_http_requests_total{route=~"/v1/.*", status="5xx"}[5m])) / sum(rate(gateway_http_requests_total[5m]))) > 0.05 and sum by (job) (increase(ai_request_count[5m])) >= 1e-3"#
        ),
        ["ai_request_count", "gateway_http_requests_total"]
    );
    assert_eq!(
        names("min by (job, instance) (gateway_breaker_state) > 0"),
        ["gateway_breaker_state"]
    );
    assert_eq!(
        names("count(gateway_breaker_state == 0) or vector(0)"),
        ["gateway_breaker_state"]
    );
    assert_eq!(
        names("sum(gateway_nodes_busy) / on (job) group_left (x) sum(gateway_nodes_online) offset 5m"),
        ["gateway_nodes_busy", "gateway_nodes_online"]
    );
    assert_eq!(names(r#"up{job="ai-gateway"} == 0"#), Vec::<String>::new());
    assert_eq!(names("sum(rate(x[5m:30s])) without (instance)"), ["x"]);
    assert_eq!(names("topk by (provider) (3, rate(y_total[1h]))"), ["y_total"]);
    assert_eq!(names("max\n  by (provider)\n  (z)"), ["z"]);
    assert_eq!(
        metric_names_in_variable_query("label_values(ai_request_count, provider)")
            .into_iter()
            .collect::<Vec<_>>(),
        ["ai_request_count"]
    );
    assert!(metric_names_in_variable_query("label_values(provider)").is_empty());
}

#[test]
fn exposition_names_include_histogram_series() {
    let text = "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 0\nh_sum 0\nh_count 0\ng 3\nc{a=\"b\"} 1\n";
    let names: Vec<_> = exposition_sample_names(text).into_iter().collect();
    assert_eq!(names, ["c", "g", "h_bucket", "h_count", "h_sum"]);
    let used: BTreeSet<String> = ["h_bucket", "g", "absent_one"].into_iter().map(str::to_owned).collect();
    assert_eq!(missing_from_exposition(&used, text), ["absent_one"]);
}

#[test]
fn ops_files_reference_gateway_metrics() {
    let used = metric_names_used_by_ops_files();
    for name in [
        "ai_request_count",
        "ai_provider_latency_ms_bucket",
        "gateway_breaker_state",
    ] {
        assert!(used.contains(name), "{name} not found in the ops files: {used:?}");
    }
    for name in &used {
        assert!(
            name.starts_with("ai_") || name.starts_with("gateway_"),
            "{name}: not a gateway metric (a PromQL word the tokenizer should skip?)"
        );
    }
}

mod after_real_traffic {
    use wiremock::MockServer;

    use crate::helpers::{
        ProviderSpec, SseMock, SseReader, TEST_MODEL, TestApp, chat_body, completion, failure, fixtures, mount_chat,
        stream_body, upstream_url,
    };

    #[tokio::test]
    async fn every_metric_a_dashboard_panel_or_alert_queries_is_exposed_after_traffic() {
        // Arrange: two providers (one failing) and a streaming one, so failovers, errors, TTFT and
        // tokens all have samples.
        let (alpha, beta) = (MockServer::start().await, MockServer::start().await);
        mount_chat(&alpha, failure(503), 1).await;
        mount_chat(&beta, completion(), 1).await;
        let streamer = SseMock::start().await;
        streamer.autoplay_raw(fixtures::chunk_events()).await;
        // Beta has a key pool and a concurrency cap, so the traffic management series exist too.
        let app = TestApp::builder()
            .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
            .provider(
                ProviderSpec::new("beta", upstream_url(&beta))
                    .set("api_keys", serde_json::json!(["sk-beta-2"]))
                    .set("max_concurrency", serde_json::json!(8)),
            )
            .provider(ProviderSpec::new("gamma", streamer.base_url()).models(&["streamed"]))
            .spawn()
            .await;

        // Act
        assert_eq!(app.post_chat(&chat_body(TEST_MODEL)).await.status(), 200);
        let streamed = app.post_chat(&stream_body("streamed")).await;
        drop(SseReader::new(streamed).rest().await);
        app.history_rows(2).await;
        let text = app.get("/metrics").await.text().await.expect("metrics text");

        // Assert
        let used = super::metric_names_used_by_ops_files();
        assert!(used.len() > 10, "no metric found in the ops files: {used:?}");
        let missing = super::missing_from_exposition(&used, &text);
        assert!(
            missing.is_empty(),
            "queried by grafana/ or prometheus/ but not exposed at /metrics: {missing:?}"
        );
        for seed_name in [
            "ai_request_count",
            "ai_error_count",
            "ai_provider_latency_ms_bucket",
            "ai_failover_count",
        ] {
            assert!(text.contains(seed_name), "seed 004 metric {seed_name} missing");
        }
        assert!(
            text.contains(r#"ai_failover_count{from_provider="alpha",to_provider="beta"} 1"#),
            "{text}"
        );
    }
}
