//! `--scenario soak --minutes N`: a mixed load through the gateway (JSON, streams, requests that
//! fall over from a 503 provider to the next, streams the client abandons after the first event),
//! sampling the gateway's RSS, open descriptors and threads every 5 s. After warm-up, RSS must
//! stay within 10% of its first post-warm-up sample.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::client::{Mode, request};
use crate::gateway::{Gateway, models};
use crate::load::{self, Req, Window};
use crate::mock::Mock;
use crate::procfs::{Sample, mib};
use crate::report::Measured;
use crate::report::progress;
use crate::scenarios::body;

/// Knobs (CLI flags).
#[derive(Clone, Debug)]
pub struct Params {
    /// How long.
    pub duration: Duration,
    /// Closed-loop connections.
    pub connections: usize,
    /// Between samples.
    pub every: Duration,
}

/// One sample.
#[derive(Clone, Copy, Debug)]
pub struct Point {
    /// Since the start.
    pub at: Duration,
    /// The gateway then.
    pub sample: Sample,
}

/// What the soak came to.
#[derive(Debug)]
pub struct Outcome {
    /// Samples, every `every`.
    pub points: Vec<Point>,
    /// Where warm-up ends.
    pub warmup: Duration,
    /// The load's figures.
    pub load: Measured,
    /// `history.dropped` from `/health` at the end.
    pub dropped: Option<u64>,
}

impl Outcome {
    /// The first sample after warm-up, and the largest relative deviation from it after that.
    pub fn drift(&self) -> Option<(Sample, f64)> {
        let after: Vec<&Point> = self.points.iter().filter(|p| p.at >= self.warmup).collect();
        let base = after.first()?.sample;
        let worst = after
            .iter()
            .map(|p| (p.sample.rss as f64 - base.rss as f64) / base.rss.max(1) as f64)
            .fold(0.0_f64, |w, d| if d.abs() > w.abs() { d } else { w });
        Some((base, worst))
    }

    /// The soak criterion: RSS drifts at most 10% from its first sample.
    pub fn pass(&self) -> Option<bool> {
        self.drift().map(|(_, worst)| worst.abs() <= 0.10)
    }

    /// Samples (one a minute and the last) and the verdict.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "| t | RSS | VmHWM | fds | threads | gateway CPU s |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n",
        );
        let last = self.points.len().saturating_sub(1);
        let mut next_minute = Duration::ZERO;
        for (i, p) in self.points.iter().enumerate() {
            if p.at >= next_minute || i == last {
                next_minute = p.at + Duration::from_secs(60);
                let s = p.sample;
                let _ = writeln!(
                    out,
                    "| {:.0} s | {:.1} MiB | {:.1} MiB | {} | {} | {:.1} |",
                    p.at.as_secs_f64(),
                    mib(s.rss),
                    mib(s.hwm),
                    s.fds,
                    s.threads,
                    s.cpu.as_secs_f64()
                );
            }
        }
        let l = &self.load;
        let _ = writeln!(
            out,
            "\nload: {} requests ok ({:.0}/s), {} errors{}; history rows dropped: {}",
            l.ok,
            l.rate,
            l.errors,
            l.first_error
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default(),
            self.dropped.map_or_else(|| "unknown".into(), |d| d.to_string())
        );
        let (min, max) = self
            .points
            .iter()
            .filter(|p| p.at >= self.warmup)
            .fold((u64::MAX, 0), |(lo, hi), p| {
                (lo.min(p.sample.rss), hi.max(p.sample.rss))
            });
        let tag = match self.pass() {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "n/a ",
        };
        let drift = self.drift().map_or_else(String::new, |(base, worst)| {
            format!(
                "after {:.0} s warm-up: base {:.1} MiB, min {:.1}, max {:.1}, worst drift {:+.1}%",
                self.warmup.as_secs_f64(),
                mib(base.rss),
                mib(min),
                mib(max),
                worst * 100.0
            )
        });
        let _ = writeln!(out, "{tag}  soak RSS stays within 10% after warm-up: {drift}");
        out
    }
}

/// The mixed workload: 60% JSON, 25% streams, 10% fallback, 5% abandoned streams.
pub fn workload(gateway: &Gateway) -> Vec<Req> {
    let req = |model, stream| {
        request(
            gateway.addr,
            "/v1/chat/completions",
            Some(&gateway.key),
            &body(model, stream),
        )
    };
    vec![
        Req::full(req(models::FAST, false), false, 60),
        Req::full(req(models::FAST, true), true, 25),
        Req::full(req(models::FALLBACK, false), false, 10),
        Req {
            bytes: req(models::SLOW, true),
            stream: true,
            mode: Mode::CancelAfterFirstEvent,
            weight: 5,
        },
    ]
}

/// Runs the soak against `gateway`.
pub async fn run(mock: &Arc<Mock>, gateway: &Gateway, p: &Params) -> Result<Outcome, String> {
    mock.set_stream(20, Duration::from_micros(500));
    mock.slow_interval_ms.store(1_000, Ordering::Relaxed);
    let warmup = Duration::from_secs(60).min(p.duration / 5);
    let window = Window::after(Duration::ZERO, p.duration);
    let started = Instant::now();
    let load = tokio::spawn(load::closed(
        gateway.addr,
        Arc::new(workload(gateway)),
        p.connections,
        window,
    ));
    let mut points = Vec::new();
    let mut tick = tokio::time::interval(p.every);
    while Instant::now() < window.end {
        tick.tick().await;
        let sample = gateway.proc.sample()?;
        let at = started.elapsed();
        progress(&format!(
            "soak {:>4.0} s: RSS {:.1} MiB, fds {}, threads {}, CPU {:.1} s",
            at.as_secs_f64(),
            mib(sample.rss),
            sample.fds,
            sample.threads,
            sample.cpu.as_secs_f64()
        ));
        points.push(Point { at, sample });
    }
    let rec = load.await.map_err(|e| format!("soak load: {e}"))?;
    let dropped = gateway
        .health()
        .await
        .ok()
        .and_then(|h| h["history"]["dropped"].as_u64());
    Ok(Outcome {
        points,
        warmup,
        load: Measured::from(rec, window.length()),
        dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(secs: u64, rss_mib: u64) -> Point {
        Point {
            at: Duration::from_secs(secs),
            sample: Sample {
                rss: rss_mib * 1024 * 1024,
                ..Sample::default()
            },
        }
    }

    #[test]
    fn drift_is_measured_from_the_first_sample_after_warm_up() {
        let outcome = Outcome {
            points: vec![point(0, 10), point(5, 30), point(10, 20), point(15, 21), point(20, 18)],
            warmup: Duration::from_secs(10),
            load: Measured::default(),
            dropped: Some(0),
        };
        let (base, worst) = outcome.drift().unwrap();
        assert_eq!(base.rss, 20 * 1024 * 1024);
        assert!((worst - -0.10).abs() < 1e-9);
        assert_eq!(outcome.pass(), Some(true));
        assert!(outcome.render().contains("PASS"));
    }

    #[test]
    fn growth_beyond_ten_percent_fails() {
        let outcome = Outcome {
            points: vec![point(0, 20), point(5, 23)],
            warmup: Duration::ZERO,
            load: Measured::default(),
            dropped: None,
        };
        assert_eq!(outcome.pass(), Some(false));
    }
}
