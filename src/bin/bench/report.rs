//! Percentiles from recorded latencies, the results table (Markdown, so a run pastes straight into
//! the book's Benchmark page, docs/src/benchmark.md) and the PASS/FAIL lines for the targets.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use crate::load::Recorded;
use crate::procfs::mib;

/// The nearest-rank percentile `p` (0–100) of sorted values: the smallest value with at least
/// p% of the values at or below it.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// One path's figures for one scenario.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    /// Successful requests per second.
    pub rate: f64,
    /// Latency p50 / p99, ns.
    pub p50: Option<u64>,
    /// See `p50`.
    pub p99: Option<u64>,
    /// Time to first event p50 / p99, ns.
    pub ttft50: Option<u64>,
    /// See `ttft50`.
    pub ttft99: Option<u64>,
    /// Successful requests.
    pub ok: u64,
    /// Failed requests.
    pub errors: u64,
    /// SSE events received.
    pub events: u64,
    /// The gateway's CPU time over the window (gateway path only).
    pub cpu: Option<Duration>,
    /// The gateway's peak RSS during the scenario, bytes (gateway path only).
    pub peak_rss: Option<u64>,
    /// The first error, if any.
    pub first_error: Option<String>,
}

impl Measured {
    /// Sorts and summarises a recording over a window of `length`.
    pub fn from(mut rec: Recorded, length: Duration) -> Self {
        rec.latencies.sort_unstable();
        rec.ttfts.sort_unstable();
        Self {
            rate: rec.rate(length),
            p50: percentile(&rec.latencies, 50.0),
            p99: percentile(&rec.latencies, 99.0),
            ttft50: percentile(&rec.ttfts, 50.0),
            ttft99: percentile(&rec.ttfts, 99.0),
            ok: rec.ok,
            errors: rec.errors,
            events: rec.events,
            cpu: None,
            peak_rss: None,
            first_error: rec.first_error,
        }
    }

    /// Gateway CPU µs per request, or per SSE event for streams.
    pub fn cpu_per_unit(&self, stream: bool) -> Option<f64> {
        let units = if stream { self.events } else { self.ok };
        self.cpu
            .filter(|_| units > 0)
            .map(|c| c.as_secs_f64() * 1e6 / units as f64)
    }
}

/// One scenario, run directly against the mock and through the gateway.
#[derive(Clone, Debug)]
pub struct Row {
    /// Short id (`sequential`, `throughput`, ...).
    pub id: &'static str,
    /// What it does.
    pub title: String,
    /// Whether it streams (CPU is then per SSE event).
    pub stream: bool,
    /// Straight to the mock.
    pub direct: Measured,
    /// Through the gateway.
    pub gateway: Measured,
}

fn ms(ns: Option<u64>) -> String {
    ns.map_or_else(|| "–".into(), |n| format!("{:.3}", n as f64 / 1e6))
}

fn added(gw: Option<u64>, direct: Option<u64>) -> String {
    match (gw, direct) {
        (Some(g), Some(d)) if d > 0 => format!("{:+.3} ({:.1}×)", (g as f64 - d as f64) / 1e6, g as f64 / d as f64),
        _ => "–".into(),
    }
}

/// The Markdown results table.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str("| scenario | path | req/s | p50 ms | p99 ms | TTFT p50 ms | TTFT p99 ms | errors | gateway CPU | gateway peak RSS |\n");
    out.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for r in rows {
        let (d, g) = (&r.direct, &r.gateway);
        let cpu = g.cpu_per_unit(r.stream).map_or_else(
            || "–".into(),
            |c| format!("{c:.1} µs/{}", if r.stream { "event" } else { "req" }),
        );
        let rss = g.peak_rss.map_or_else(|| "–".into(), |b| format!("{:.1} MiB", mib(b)));
        let _ = writeln!(
            out,
            "| {} | direct | {:.0} | {} | {} | {} | {} | {} | – | – |",
            r.title,
            d.rate,
            ms(d.p50),
            ms(d.p99),
            ms(d.ttft50),
            ms(d.ttft99),
            d.errors
        );
        let _ = writeln!(
            out,
            "| | gateway | {:.0} | {} | {} | {} | {} | {} | {cpu} | {rss} |",
            g.rate,
            ms(g.p50),
            ms(g.p99),
            ms(g.ttft50),
            ms(g.ttft99),
            g.errors
        );
        let ratio = if d.rate > 0.0 { g.rate / d.rate } else { 0.0 };
        let _ = writeln!(
            out,
            "| | gateway − direct | {ratio:.2}× | {} | {} | {} | {} | | | |",
            added(g.p50, d.p50),
            added(g.p99, d.p99),
            added(g.ttft50, d.ttft50),
            added(g.ttft99, d.ttft99)
        );
    }
    out
}

/// A target's verdict.
#[derive(Debug)]
pub struct Verdict {
    /// The target as stated in issue 9.
    pub target: String,
    /// Met (None: not measured in this run).
    pub pass: Option<bool>,
    /// The figures behind it.
    pub detail: String,
}

fn delta_ms(g: Option<u64>, d: Option<u64>) -> Option<f64> {
    Some((g? as f64 - d? as f64) / 1e6)
}

fn row<'a>(rows: &'a [Row], id: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.id == id)
}

/// Issue 9's targets for the load scenarios.
pub fn verdicts(rows: &[Row]) -> Vec<Verdict> {
    let mut v = Vec::new();
    for (stream, limit, what) in [(false, 40.0, "request"), (true, 10.0, "SSE event")] {
        let figures: Vec<(String, f64)> = rows
            .iter()
            .filter(|r| r.stream == stream)
            .filter_map(|r| Some((r.id.to_owned(), r.gateway.cpu_per_unit(stream)?)))
            .collect();
        v.push(Verdict {
            target: format!("gateway CPU per {what} ≤ {limit} µs (every scenario)"),
            pass: (!figures.is_empty()).then(|| figures.iter().all(|(_, c)| *c <= limit)),
            detail: figures
                .iter()
                .map(|(id, c)| format!("{id} {c:.1} µs"))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let t = row(rows, "throughput");
    let ratio = t
        .filter(|r| r.direct.rate > 0.0)
        .map(|r| r.gateway.rate / r.direct.rate);
    v.push(Verdict {
        target: "throughput at 64 connections ≥ 0.40× direct".into(),
        pass: ratio.map(|r| r >= 0.40),
        detail: t.map_or_else(String::new, |r| {
            format!(
                "{:.0} vs {:.0} req/s = {:.2}×",
                r.gateway.rate,
                r.direct.rate,
                ratio.unwrap_or(0.0)
            )
        }),
    });
    let s = row(rows, "sequential");
    let p50 = s.and_then(|r| delta_ms(r.gateway.p50, r.direct.p50));
    let p99 = s.and_then(|r| delta_ms(r.gateway.p99, r.direct.p99));
    v.push(Verdict {
        target: "added latency at 1 connection: p50 ≤ 0.1 ms".into(),
        pass: p50.map(|d| d <= 0.1),
        detail: p50.map_or_else(String::new, |d| format!("+{d:.3} ms")),
    });
    v.push(Verdict {
        target: "added latency at 1 connection: p99 ≤ 0.5 ms".into(),
        pass: p99.map(|d| d <= 0.5),
        detail: p99.map_or_else(String::new, |d| format!("+{d:.3} ms")),
    });
    let t32 = row(rows, "ttft-32").and_then(|r| delta_ms(r.gateway.ttft99, r.direct.ttft99));
    v.push(Verdict {
        target: "added TTFT at 32 streams: p99 ≤ 0.5 ms".into(),
        pass: t32.map(|d| d <= 0.5),
        detail: t32.map_or_else(String::new, |d| format!("+{d:.3} ms")),
    });
    let peak = rows.iter().filter_map(|r| r.gateway.peak_rss).max();
    v.push(Verdict {
        target: "gateway peak RSS ≤ 64 MB under the load scenarios".into(),
        pass: peak.map(|b| b <= 64 * 1024 * 1024),
        detail: peak.map_or_else(String::new, |b| format!("{:.1} MiB", mib(b))),
    });
    v
}

/// `PASS`/`FAIL` lines.
pub fn render_verdicts(verdicts: &[Verdict]) -> String {
    let mut out = String::new();
    for v in verdicts {
        let tag = match v.pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "n/a ",
        };
        let _ = writeln!(out, "{tag}  {}: {}", v.target, v.detail);
    }
    out
}

/// A progress line on stderr (the results go to stdout).
pub fn progress(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "bench: {line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[1, 2, 3], 50.0), Some(2));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn cpu_is_per_request_or_per_event() {
        let m = Measured {
            ok: 1_000,
            events: 20_000,
            cpu: Some(Duration::from_millis(40)),
            ..Measured::default()
        };
        assert_eq!(m.cpu_per_unit(false), Some(40.0));
        assert_eq!(m.cpu_per_unit(true), Some(2.0));
    }

    #[test]
    fn verdicts_compare_gateway_with_direct() {
        let ms = |p50: u64, p99: u64, rate: f64| Measured {
            rate,
            p50: Some(p50 * 1_000),
            p99: Some(p99 * 1_000),
            ..Measured::default()
        };
        let rows = vec![
            Row {
                id: "sequential",
                title: String::new(),
                stream: false,
                direct: ms(100, 200, 1.0),
                gateway: ms(150, 900, 1.0),
            },
            Row {
                id: "throughput",
                title: String::new(),
                stream: false,
                direct: ms(1, 1, 1000.0),
                gateway: ms(1, 1, 399.0),
            },
        ];
        let v = verdicts(&rows);
        let pass = |name: &str| v.iter().find(|v| v.target.contains(name)).and_then(|v| v.pass);
        assert_eq!(pass("p50 ≤ 0.1"), Some(true));
        assert_eq!(pass("p99 ≤ 0.5"), Some(false));
        assert_eq!(pass("0.40×"), Some(false));
        assert_eq!(pass("TTFT"), None);
        assert!(table(&rows).contains("| | gateway − direct | 1.00× | +0.050 (1.5×) | +0.700 (4.5×)"));
    }
}
