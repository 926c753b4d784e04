//! `bench history-check --requests N [--outage]`: N requests as fast as 64 connections
//! go (70% JSON, 20% streamed, 10% falling over from a 503 provider), each with its own
//! `x-request-id`; then wait for the history writer and require exactly one correct row per
//! request in `ai_requests`. With `--outage` the gateway reaches PostgreSQL through a proxy the
//! bench cuts for a few seconds mid-run.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::client::{Conn, Mode, request_with_id};
use crate::db::{self, HistoryRow};
use crate::gateway::{API_KEY, Gateway, models};
use crate::mock::{JSON_COMPLETION_TOKENS, PROMPT_TOKENS};
use crate::proxy::TcpProxy;
use crate::report::progress;
use crate::scenarios::body;

/// Content chunks of each streamed answer (its `completion_tokens`).
pub const STREAM_CHUNKS: u32 = 8;

/// Knobs (CLI flags).
#[derive(Clone, Debug)]
pub struct Params {
    /// Requests to send.
    pub requests: usize,
    /// Connections.
    pub concurrency: usize,
    /// How long the database is cut off, if at all.
    pub outage: Option<Duration>,
    /// Longest wait for the rows after the load.
    pub flush_timeout: Duration,
}

/// The three kinds of request and what their rows must say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// JSON, one attempt.
    Json,
    /// Streamed, one attempt, token counts from the usage chunk.
    Stream,
    /// JSON; attempt 1 is `server_error` 503 at `mock-down`, attempt 2 succeeds at `mock-backup`.
    Fallback,
}

/// Request `i`'s kind: 7 in 10 JSON, 2 streamed, 1 fallback.
pub fn kind(i: usize) -> Kind {
    match i % 10 {
        7 | 8 => Kind::Stream,
        9 => Kind::Fallback,
        _ => Kind::Json,
    }
}

/// Request `i`'s id.
pub fn request_id(run: &str, i: usize) -> String {
    format!("hc-{run}-{i:06}")
}

/// What is wrong with `row` for a request of `kind`, if anything.
pub fn check_row(row: &HistoryRow, kind: Kind) -> Result<(), String> {
    if row.status != "success" || row.http_status != 200 {
        return Err(format!("status {} / {}", row.status, row.http_status));
    }
    let attempts: Vec<serde_json::Value> =
        serde_json::from_str(&row.attempts).map_err(|e| format!("attempts not JSON: {e}"))?;
    let attempt = |i: usize| {
        let a = attempts.get(i);
        let field = |k: &str| a.and_then(|a| a.get(k)).cloned().unwrap_or_default();
        (field("provider"), field("outcome"), field("status"))
    };
    let tokens = (row.prompt_tokens, row.completion_tokens, row.total_tokens);
    let (prompt, json_completion, stream_completion) = (
        PROMPT_TOKENS as i64,
        JSON_COMPLETION_TOKENS as i64,
        i64::from(STREAM_CHUNKS),
    );
    let (want_stream, want_provider, want_attempts, want_tokens) = match kind {
        Kind::Json => (false, "mock", 1, (prompt, json_completion)),
        Kind::Stream => (true, "mock", 1, (prompt, stream_completion)),
        Kind::Fallback => (false, "mock-backup", 2, (prompt, json_completion)),
    };
    let want_model = if kind == Kind::Fallback {
        models::FALLBACK
    } else {
        models::FAST
    };
    if row.model.as_deref() != Some(want_model) {
        return Err(format!("model {:?}", row.model));
    }
    if row.stream != want_stream {
        return Err(format!("stream = {}", row.stream));
    }
    if row.provider.as_deref() != Some(want_provider) {
        return Err(format!("provider {:?}", row.provider));
    }
    if tokens
        != (
            Some(want_tokens.0),
            Some(want_tokens.1),
            Some(want_tokens.0 + want_tokens.1),
        )
    {
        return Err(format!("tokens {tokens:?}"));
    }
    if kind == Kind::Stream && row.ttft_ms.is_none() {
        return Err("no ttft_ms".into());
    }
    if attempts.len() != want_attempts {
        return Err(format!("{} attempts: {}", attempts.len(), row.attempts));
    }
    if kind == Kind::Fallback && attempt(0) != ("mock-down".into(), "server_error".into(), 503.into()) {
        return Err(format!("first attempt {}", row.attempts));
    }
    let (provider, outcome, _) = attempt(want_attempts - 1);
    if provider != want_provider || outcome != "success" {
        return Err(format!("last attempt {}", row.attempts));
    }
    Ok(())
}

/// Runs the check; returns the report and whether it passed.
pub async fn run(
    mock: &Arc<crate::mock::Mock>,
    bin: &std::path::Path,
    setup: &crate::gateway::Setup,
    fresh: &db::FreshDb,
    p: &Params,
) -> Result<(String, bool), String> {
    mock.set_stream(STREAM_CHUNKS, Duration::ZERO);
    let target = db::host_port(&fresh.url).ok_or_else(|| format!("no host in {}", fresh.url))?;
    let proxy = match p.outage {
        Some(_) => Some(TcpProxy::start(&target).await.map_err(|e| format!("proxy: {e}"))?),
        None => None,
    };
    let mut setup = setup.clone();
    if let Some(proxy) = &proxy {
        setup.database_url = fresh.url.replacen(&target, &format!("127.0.0.1:{}", proxy.port), 1);
    }
    let gateway = Gateway::start(bin, &setup, "history-check").await?;
    let run_id = uuid::Uuid::now_v7().simple().to_string()[..12].to_owned();
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..p.concurrency)
        .map(|_| {
            let (next, done, errors, run_id) = (next.clone(), done.clone(), errors.clone(), run_id.clone());
            let (addr, total) = (gateway.addr, p.requests);
            tokio::spawn(async move {
                let mut conn = Conn::new(addr);
                let mut first_error = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return (first_error, Instant::now());
                    }
                    let (model, stream) = match kind(i) {
                        Kind::Json => (models::FAST, false),
                        Kind::Stream => (models::FAST, true),
                        Kind::Fallback => (models::FALLBACK, false),
                    };
                    let id = request_id(&run_id, i);
                    let req = request_with_id(
                        addr,
                        "/v1/chat/completions",
                        Some(API_KEY),
                        Some(&id),
                        &body(model, stream),
                    );
                    match conn.exchange(&req, Mode::Full).await {
                        Ok(r) if r.ok(stream) => {}
                        other => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            first_error.get_or_insert(format!("{id}: {other:?}"));
                        }
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let outage_log = match (&proxy, p.outage) {
        (Some(proxy), Some(length)) => outage(proxy, length, &done, p.requests, started).await,
        _ => String::new(),
    };
    let mut first_error = None;
    let mut finished = started;
    for w in workers {
        if let Ok((e, at)) = w.await {
            finished = finished.max(at);
            first_error = first_error.or(e);
        }
    }
    // The outage may outlast the load: the load's own end is when its last request was answered.
    let load_time = finished - started;
    progress(&format!(
        "history-check: {} requests sent in {:.1} s; waiting for the rows",
        p.requests,
        load_time.as_secs_f64()
    ));
    let flush_started = Instant::now();
    let deadline = flush_started + p.flush_timeout;
    let mut found = db::count(&fresh.url).await.unwrap_or(0);
    while found < p.requests as i64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        found = db::count(&fresh.url).await.unwrap_or(found);
    }
    // A few more polls: more rows than requests would be a failure too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    found = db::count(&fresh.url).await.unwrap_or(found);
    let flush_time = flush_started.elapsed();
    let health = gateway.health().await.ok();
    let history = health.as_ref().map(|h| h["history"].clone()).unwrap_or_default();
    let stopped = gateway.stop().await;
    let rows = db::rows(&fresh.url).await?;
    let mut report = String::new();
    let errors = errors.load(Ordering::Relaxed);
    let _ = writeln!(
        report,
        "history-check: {} requests ({} JSON, {} streamed, {} fallback) at concurrency {}{}",
        p.requests,
        (0..p.requests).filter(|&i| kind(i) == Kind::Json).count(),
        (0..p.requests).filter(|&i| kind(i) == Kind::Stream).count(),
        (0..p.requests).filter(|&i| kind(i) == Kind::Fallback).count(),
        p.concurrency,
        if p.outage.is_some() {
            ", with a database outage"
        } else {
            ""
        }
    );
    let _ = writeln!(
        report,
        "load: {:.2} s ({:.0} req/s), client errors: {errors}{}",
        load_time.as_secs_f64(),
        p.requests as f64 / load_time.as_secs_f64(),
        first_error.map(|e| format!(" (first: {e})")).unwrap_or_default()
    );
    report.push_str(&outage_log);
    let _ = writeln!(
        report,
        "rows: {found} found after a {:.2} s wait (expected exactly {}); /health history: written {}, dropped {}, queue depth {}; {stopped}",
        flush_time.as_secs_f64(),
        p.requests,
        history["written"],
        history["dropped"],
        history["queue_depth"]
    );
    let (checks, fields_ok) = verify(&rows, &run_id, p.requests);
    report.push_str(&checks);
    let pass = errors == 0 && found == p.requests as i64 && rows.len() == p.requests && fields_ok;
    let _ = writeln!(report, "{}  history-check", if pass { "PASS" } else { "FAIL" });
    Ok((report, pass))
}

/// Cuts the database off once a quarter of the requests are answered, restores it `length` later.
async fn outage(proxy: &TcpProxy, length: Duration, done: &AtomicUsize, total: usize, started: Instant) -> String {
    while done.load(Ordering::Relaxed) < total / 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    proxy.cut();
    let (cut_at, cut_done) = (started.elapsed(), done.load(Ordering::Relaxed));
    progress(&format!("history-check: database cut after {cut_done} requests"));
    tokio::time::sleep(length).await;
    proxy.restore();
    let (restored_at, restored_done) = (started.elapsed(), done.load(Ordering::Relaxed));
    progress(&format!(
        "history-check: database restored after {restored_done} requests"
    ));
    format!(
        "outage: database cut at {:.2} s ({cut_done} requests answered), restored at {:.2} s ({restored_done} answered)\n",
        cut_at.as_secs_f64(),
        restored_at.as_secs_f64()
    )
}

/// One line per field check; whether all held.
fn verify(rows: &[HistoryRow], run_id: &str, requests: usize) -> (String, bool) {
    let expected: HashMap<String, Kind> = (0..requests).map(|i| (request_id(run_id, i), kind(i))).collect();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut bad: HashMap<Kind, (usize, Option<String>)> = HashMap::new();
    let mut good: HashMap<Kind, usize> = HashMap::new();
    let mut unknown = 0;
    for row in rows {
        *seen.entry(row.request_id.as_str()).or_default() += 1;
        let Some(&k) = expected.get(&row.request_id) else {
            unknown += 1;
            continue;
        };
        match check_row(row, k) {
            Ok(()) => *good.entry(k).or_default() += 1,
            Err(e) => {
                let entry = bad.entry(k).or_default();
                entry.0 += 1;
                entry.1.get_or_insert(format!("{}: {e}", row.request_id));
            }
        }
    }
    let duplicates = seen.values().filter(|&&n| n > 1).count();
    let missing = expected.keys().filter(|id| !seen.contains_key(id.as_str())).count();
    let success = rows.iter().filter(|r| r.status == "success").count();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "request ids: {} unique of {} rows; missing {missing}, duplicated {duplicates}, unknown {unknown}",
        seen.len(),
        rows.len()
    );
    let _ = writeln!(out, "status success: {success} of {} rows", rows.len());
    let wants = [
        (
            Kind::Json,
            "JSON rows: stream=false, provider mock, 1 attempt (success), tokens 5/3/8",
        ),
        (
            Kind::Stream,
            "streamed rows: stream=true, ttft_ms set, tokens 5/8/13 from the usage chunk",
        ),
        (
            Kind::Fallback,
            "fallback rows: 2 attempts (mock-down server_error 503, then mock-backup success)",
        ),
    ];
    for (k, what) in wants {
        let want = expected.values().filter(|&&v| v == k).count();
        let (n_bad, example) = bad.get(&k).cloned().unwrap_or_default();
        let _ = writeln!(
            out,
            "{what}: {} of {want} correct{}",
            good.get(&k).copied().unwrap_or(0),
            if n_bad > 0 {
                format!(", {n_bad} wrong (first: {})", example.unwrap_or_default())
            } else {
                String::new()
            }
        );
    }
    let ok = duplicates == 0 && missing == 0 && unknown == 0 && bad.is_empty() && success == rows.len();
    (out, ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: Kind) -> HistoryRow {
        let (stream, provider, completion, attempts) = match kind {
            Kind::Json => (
                false,
                "mock",
                3,
                r#"[{"provider":"mock","outcome":"success","status":200}]"#,
            ),
            Kind::Stream => (
                true,
                "mock",
                8,
                r#"[{"provider":"mock","outcome":"success","status":200}]"#,
            ),
            Kind::Fallback => (
                false,
                "mock-backup",
                3,
                r#"[{"provider":"mock-down","outcome":"server_error","status":503},{"provider":"mock-backup","outcome":"success","status":200}]"#,
            ),
        };
        HistoryRow {
            request_id: "hc-x-000001".into(),
            model: Some(
                if kind == Kind::Fallback {
                    models::FALLBACK
                } else {
                    models::FAST
                }
                .into(),
            ),
            provider: Some(provider.into()),
            stream,
            status: "success".into(),
            http_status: 200,
            prompt_tokens: Some(5),
            completion_tokens: Some(completion),
            total_tokens: Some(5 + completion),
            ttft_ms: Some(1),
            attempts: attempts.into(),
        }
    }

    #[test]
    fn the_mix_is_seven_two_one() {
        let count = |k| (0..10_000).filter(|&i| kind(i) == k).count();
        assert_eq!(
            (count(Kind::Json), count(Kind::Stream), count(Kind::Fallback)),
            (7_000, 2_000, 1_000)
        );
    }

    #[test]
    fn correct_rows_pass_and_each_wrong_field_is_named() {
        for k in [Kind::Json, Kind::Stream, Kind::Fallback] {
            assert_eq!(check_row(&row(k), k), Ok(()), "{k:?}");
        }
        let mut r = row(Kind::Stream);
        r.completion_tokens = None;
        assert!(check_row(&r, Kind::Stream).unwrap_err().contains("tokens"));
        let mut r = row(Kind::Fallback);
        r.attempts = r#"[{"provider":"mock-backup","outcome":"success","status":200}]"#.into();
        assert!(check_row(&r, Kind::Fallback).unwrap_err().contains("1 attempts"));
        assert!(
            check_row(&row(Kind::Json), Kind::Stream)
                .unwrap_err()
                .contains("stream")
        );
    }

    #[test]
    fn verify_counts_missing_and_duplicated_ids() {
        let mut a = row(Kind::Json);
        a.request_id = request_id("r", 0);
        let (text, ok) = verify(&[a.clone(), a], "r", 2);
        assert!(!ok);
        assert!(text.contains("missing 1, duplicated 1"), "{text}");
    }
}
