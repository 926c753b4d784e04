//! Percentiles from recorded latencies, the results table (Markdown, so a run pastes straight into
//! the book's Benchmark page, docs/src/benchmark.md) with the gateway's figures as ratios to the hop
//! and to direct, and the PASS/FAIL lines for the targets.

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
    /// The process's CPU time over the window (hop and gateway paths).
    pub cpu: Option<Duration>,
    /// The process's peak RSS during the run, bytes (hop and gateway paths).
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

    /// The process's CPU µs per request, or per SSE event for streams.
    pub fn cpu_per_unit(&self, stream: bool) -> Option<f64> {
        let units = if stream { self.events } else { self.ok };
        self.cpu
            .filter(|_| units > 0)
            .map(|c| c.as_secs_f64() * 1e6 / units as f64)
    }
}

/// One scenario, run directly against the mock, through the hop and through the gateway.
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
    /// Through the hop (the yardstick).
    pub hop: Measured,
    /// Through the gateway.
    pub gateway: Measured,
}

fn ms(ns: Option<u64>) -> String {
    ns.map_or_else(|| "–".into(), |n| format!("{:.3}", n as f64 / 1e6))
}

/// `a ÷ b`, when `b` is positive.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// Milliseconds `a` adds over `b`, and `a ÷ b`.
fn added(a: Option<u64>, b: Option<u64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => {
            let x = ratio(a as f64, b as f64).map_or_else(String::new, |x| format!(" ({x:.1}×)"));
            format!("{:+.3}{x}", (a as f64 - b as f64) / 1e6)
        }
        _ => "–".into(),
    }
}

fn times(x: Option<f64>) -> String {
    x.map_or_else(|| "–".into(), |x| format!("{x:.2}×"))
}

/// The Markdown results table: each scenario's three paths, then the hop against direct and the
/// gateway against direct and against the hop.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| scenario | path | req/s | p50 ms | p99 ms | TTFT p50 ms | TTFT p99 ms | errors | CPU | peak RSS |\n",
    );
    out.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for r in rows {
        let unit = if r.stream { "event" } else { "req" };
        for (i, (path, m)) in [("direct", &r.direct), ("hop", &r.hop), ("gateway", &r.gateway)]
            .into_iter()
            .enumerate()
        {
            let cpu = m
                .cpu_per_unit(r.stream)
                .map_or_else(|| "–".into(), |c| format!("{c:.1} µs/{unit}"));
            let rss = m.peak_rss.map_or_else(|| "–".into(), |b| format!("{:.1} MiB", mib(b)));
            let title = if i == 0 { format!(" {} ", r.title) } else { " ".into() };
            let _ = writeln!(
                out,
                "|{title}| {path} | {:.0} | {} | {} | {} | {} | {} | {cpu} | {rss} |",
                m.rate,
                ms(m.p50),
                ms(m.p99),
                ms(m.ttft50),
                ms(m.ttft99),
                m.errors
            );
        }
        let cpu_ratio = r
            .gateway
            .cpu_per_unit(r.stream)
            .zip(r.hop.cpu_per_unit(r.stream))
            .and_then(|(g, h)| ratio(g, h));
        for (label, a, b, cpu) in [
            ("hop vs direct", &r.hop, &r.direct, " ".to_owned()),
            ("gateway vs direct", &r.gateway, &r.direct, " ".to_owned()),
            ("gateway vs hop", &r.gateway, &r.hop, format!(" {} ", times(cpu_ratio))),
        ] {
            let _ = writeln!(
                out,
                "| | {label} | {} | {} | {} | {} | {} | |{cpu}| |",
                times(ratio(a.rate, b.rate)),
                added(a.p50, b.p50),
                added(a.p99, b.p99),
                added(a.ttft50, b.ttft50),
                added(a.ttft99, b.ttft99)
            );
        }
    }
    out
}

/// A target's verdict.
#[derive(Debug)]
pub struct Verdict {
    /// The target.
    pub target: String,
    /// Met (None: not measured in this run).
    pub pass: Option<bool>,
    /// The figures behind it.
    pub detail: String,
}

fn delta_ms(a: Option<u64>, b: Option<u64>) -> Option<f64> {
    Some((a? as f64 - b? as f64) / 1e6)
}

fn row<'a>(rows: &'a [Row], id: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.id == id)
}

/// Gateway and hop CPU per request (per event for streams) of scenario `id`, and their ratio.
fn cpu_vs_hop(rows: &[Row], id: &str) -> Option<(f64, f64, f64)> {
    let r = row(rows, id)?;
    let (g, h) = (r.gateway.cpu_per_unit(r.stream)?, r.hop.cpu_per_unit(r.stream)?);
    Some((g, h, ratio(g, h)?))
}

fn cpu_verdict(rows: &[Row], id: &str, what: &str, limit: f64) -> Verdict {
    let figures = cpu_vs_hop(rows, id);
    Verdict {
        target: format!("{id}: gateway CPU per {what} ≤ {limit}× the hop's"),
        pass: figures.map(|(_, _, x)| x <= limit),
        detail: figures.map_or_else(String::new, |(g, h, x)| format!("{g:.1} vs {h:.1} µs = {x:.2}×")),
    }
}

/// Gateway and hop rate of scenario `id`, and their ratio.
fn rate_vs_hop(rows: &[Row], id: &str) -> Option<(f64, f64, f64)> {
    let r = row(rows, id)?;
    Some((r.gateway.rate, r.hop.rate, ratio(r.gateway.rate, r.hop.rate)?))
}

/// The targets, every one read against the hop except the added p99 at one connection and the
/// memory, which are absolute. "Streaming stays at the hop's cost" is read as CPU per event within
/// 1.1× the hop's and streams per second at least 0.9× the hop's.
pub fn verdicts(rows: &[Row]) -> Vec<Verdict> {
    let mut v = vec![cpu_verdict(rows, "throughput", "request", 1.5)];
    let rate = rate_vs_hop(rows, "throughput");
    v.push(Verdict {
        target: "throughput: gateway req/s ≥ 0.8× the hop's".into(),
        pass: rate.map(|(_, _, x)| x >= 0.8),
        detail: rate.map_or_else(String::new, |(g, h, x)| format!("{g:.0} vs {h:.0} req/s = {x:.2}×")),
    });
    let s = row(rows, "sequential");
    let p50 = s.and_then(|r| {
        Some((
            delta_ms(r.gateway.p50, r.direct.p50)?,
            delta_ms(r.hop.p50, r.direct.p50)?,
        ))
    });
    v.push(Verdict {
        target: "sequential: gateway's added p50 ≤ 2× the hop's".into(),
        pass: p50.map(|(g, h)| g <= 2.0 * h),
        detail: p50.map_or_else(String::new, |(g, h)| {
            let x = ratio(g, h).map_or_else(String::new, |x| format!(" = {x:.1}×"));
            format!("{g:+.3} vs {h:+.3} ms over direct{x}")
        }),
    });
    let p99 = s.and_then(|r| {
        Some((
            delta_ms(r.gateway.p99, r.direct.p99)?,
            delta_ms(r.hop.p99, r.direct.p99)?,
        ))
    });
    v.push(Verdict {
        target: "sequential: gateway's added p99 ≤ 0.3 ms".into(),
        pass: p99.map(|(g, _)| g <= 0.3),
        detail: p99.map_or_else(String::new, |(g, h)| format!("{g:+.3} ms over direct (hop {h:+.3} ms)")),
    });
    v.push(cpu_verdict(rows, "fixed-rate", "request", 1.5));
    let (cpu, rate) = (cpu_vs_hop(rows, "stream-max"), rate_vs_hop(rows, "stream-max"));
    v.push(Verdict {
        target: "stream-max: streaming at the hop's cost (CPU per event ≤ 1.1×, streams/s ≥ 0.9× the hop's)".into(),
        pass: cpu.zip(rate).map(|((_, _, c), (_, _, r))| c <= 1.1 && r >= 0.9),
        detail: cpu.zip(rate).map_or_else(String::new, |((g, h, c), (gr, hr, r))| {
            format!("{g:.1} vs {h:.1} µs = {c:.2}×; {gr:.0} vs {hr:.0} streams/s = {r:.2}×")
        }),
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

    fn measured(p50_us: u64, p99_us: u64, rate: f64, cpu_ms: u64, ok: u64) -> Measured {
        Measured {
            rate,
            p50: Some(p50_us * 1_000),
            p99: Some(p99_us * 1_000),
            ok,
            events: ok * 10,
            cpu: (cpu_ms > 0).then(|| Duration::from_millis(cpu_ms)),
            ..Measured::default()
        }
    }

    fn scenario(id: &'static str, stream: bool, direct: Measured, hop: Measured, gateway: Measured) -> Row {
        Row {
            id,
            title: id.into(),
            stream,
            direct,
            hop,
            gateway,
        }
    }

    fn verdict<'a>(v: &'a [Verdict], target: &str) -> &'a Verdict {
        v.iter().find(|v| v.target.starts_with(target)).unwrap()
    }

    #[test]
    fn ratios_divide_by_a_positive_base_only() {
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
        assert_eq!(ratio(3.0, 0.0), None);
        assert_eq!(added(Some(1_500_000), Some(500_000)), "+1.000 (3.0×)");
        assert_eq!(added(Some(500_000), Some(0)), "+0.500");
        assert_eq!(added(None, Some(1)), "–");
    }

    #[test]
    fn verdicts_read_the_gateway_against_the_hop() {
        let rows = vec![
            // Added p50: gateway +140 µs, hop +30 µs (4.7×); added p99: gateway +690 µs.
            scenario(
                "sequential",
                false,
                measured(100, 200, 1.0, 0, 1),
                measured(130, 270, 1.0, 0, 1),
                measured(240, 890, 1.0, 0, 1),
            ),
            // CPU: 55 vs 20 µs per request; rate 0.18 / 0.42 of direct = 0.43× the hop's.
            scenario(
                "throughput",
                false,
                measured(1, 1, 10_000.0, 0, 1),
                measured(1, 1, 4_200.0, 20, 1_000),
                measured(1, 1, 1_800.0, 55, 1_000),
            ),
            // 1.4× the hop's CPU: met.
            scenario(
                "fixed-rate",
                false,
                measured(1, 1, 50.0, 0, 1),
                measured(1, 1, 50.0, 100, 500),
                measured(1, 1, 50.0, 140, 500),
            ),
            // 5.3 vs 5.0 µs per event (1.06×), the same streams/s: met.
            scenario(
                "stream-max",
                true,
                measured(1, 1, 400.0, 0, 1),
                measured(1, 1, 100.0, 50, 1_000),
                measured(1, 1, 100.0, 53, 1_000),
            ),
        ];
        let v = verdicts(&rows);
        let cpu = verdict(&v, "throughput: gateway CPU");
        assert_eq!(
            (cpu.pass, cpu.detail.as_str()),
            (Some(false), "55.0 vs 20.0 µs = 2.75×")
        );
        let rate = verdict(&v, "throughput: gateway req/s");
        assert_eq!(
            (rate.pass, rate.detail.as_str()),
            (Some(false), "1800 vs 4200 req/s = 0.43×")
        );
        let p50 = verdict(&v, "sequential: gateway's added p50");
        assert_eq!(
            (p50.pass, p50.detail.as_str()),
            (Some(false), "+0.140 vs +0.030 ms over direct = 4.7×")
        );
        let p99 = verdict(&v, "sequential: gateway's added p99");
        assert_eq!(
            (p99.pass, p99.detail.as_str()),
            (Some(false), "+0.690 ms over direct (hop +0.070 ms)")
        );
        assert_eq!(verdict(&v, "fixed-rate").pass, Some(true));
        let stream = verdict(&v, "stream-max");
        assert_eq!(
            (stream.pass, stream.detail.as_str()),
            (Some(true), "5.3 vs 5.0 µs = 1.06×; 100 vs 100 streams/s = 1.00×")
        );
        assert_eq!(verdict(&v, "gateway peak RSS").pass, None, "not measured");
        let table = table(&rows);
        assert!(
            table.contains("| | hop vs direct | 1.00× | +0.030 (1.3×) | +0.070 (1.4×) | – | – | | | |"),
            "{table}"
        );
        assert!(table.contains("| | gateway vs direct | 0.18× |"), "{table}");
        assert!(
            table.contains("| | gateway vs hop | 0.43× | +0.000 (1.0×) | +0.000 (1.0×) | – | – | | 2.75× | |"),
            "{table}"
        );
        assert!(
            table.contains("| | hop | 4200 | 0.001 | 0.001 | – | – | 0 | 20.0 µs/req | – |"),
            "{table}"
        );
    }

    #[test]
    fn a_hop_that_added_nothing_makes_any_added_gateway_latency_fail() {
        let same = || measured(100, 200, 1.0, 0, 1);
        let rows = vec![scenario(
            "sequential",
            false,
            same(),
            same(),
            measured(101, 200, 1.0, 0, 1),
        )];
        let p50 = verdict(&verdicts(&rows), "sequential: gateway's added p50").pass;
        assert_eq!(p50, Some(false));
    }
}
