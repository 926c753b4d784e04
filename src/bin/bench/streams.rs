//! `--scenario open-streams`: opens many streams through the gateway to the mock's `/slow` route,
//! which sends one event and then keeps the stream open and slow; samples the gateway's RSS,
//! descriptors and threads while they are all open; then the mock ends them and every client must
//! see `[DONE]`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::client::{Conn, Mode, request};
use crate::gateway::{Gateway, models};
use crate::mock::Mock;
use crate::procfs::{Sample, mib};
use crate::report::percentile;
use crate::report::progress;
use crate::scenarios::body;

/// Knobs (CLI flags).
#[derive(Clone, Debug)]
pub struct Params {
    /// Streams to hold open at once.
    pub streams: usize,
    /// Streams being opened (not yet answered) at once.
    pub opening: usize,
    /// How long to sample once all are open.
    pub hold: Duration,
    /// Pause between the mock's events on an open stream.
    pub slow_interval: Duration,
}

/// What the scenario came to.
#[derive(Debug)]
pub struct Outcome {
    /// Streams asked for.
    pub wanted: usize,
    /// Streams whose first event arrived.
    pub opened: usize,
    /// Streams that ended with `[DONE]`.
    pub completed: usize,
    /// Streams that failed.
    pub failed: usize,
    /// Time to open them all.
    pub open_time: Duration,
    /// TTFT p50 / p99 while opening, ns.
    pub ttft: (Option<u64>, Option<u64>),
    /// The gateway before, at its largest while all were open, and after.
    pub before: Sample,
    /// See `before`.
    pub open: Sample,
    /// See `before`.
    pub after: Sample,
    /// `VmHWM` over the scenario.
    pub peak: u64,
}

impl Outcome {
    /// The target: all open at once in ≤ 200 MB.
    pub fn pass(&self) -> bool {
        self.opened == self.wanted && self.completed == self.wanted && self.peak <= 200 * 1024 * 1024
    }

    /// A short report.
    pub fn render(&self) -> String {
        let per_stream = self.open.rss.saturating_sub(self.before.rss) as f64 / self.wanted.max(1) as f64 / 1024.0;
        let ms = |n: Option<u64>| n.map_or_else(|| "–".into(), |n| format!("{:.1} ms", n as f64 / 1e6));
        format!(
            "| streams | opened | completed | failed | time to open all | TTFT p50 / p99 | RSS before | RSS all open | per stream | peak RSS (VmHWM) | RSS after | fds open | threads |\n\
             | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n\
             | {} | {} | {} | {} | {:.1} s | {} / {} | {:.1} MiB | {:.1} MiB | {per_stream:.1} KiB | {:.1} MiB | {:.1} MiB | {} | {} |\n\
             {}  {} concurrent open streams in ≤ 200 MB: peak {:.1} MiB\n",
            self.wanted,
            self.opened,
            self.completed,
            self.failed,
            self.open_time.as_secs_f64(),
            ms(self.ttft.0),
            ms(self.ttft.1),
            mib(self.before.rss),
            mib(self.open.rss),
            mib(self.peak),
            mib(self.after.rss),
            self.open.fds,
            self.open.threads,
            if self.pass() { "PASS" } else { "FAIL" },
            self.wanted,
            mib(self.peak),
        )
    }
}

/// Runs the scenario against `gateway`.
pub async fn run(mock: &Arc<Mock>, gateway: &Gateway, p: &Params) -> Result<Outcome, String> {
    mock.slow_interval_ms.store(
        u64::try_from(p.slow_interval.as_millis()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
    let proc = gateway.proc;
    let before = proc.sample()?;
    proc.reset_peak();
    let req = Arc::new(request(
        gateway.addr,
        "/v1/chat/completions",
        Some(&gateway.key),
        &body(models::SLOW, true),
    ));
    let (tx, mut first) = mpsc::unbounded_channel();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(p.streams);
    let mut ttfts = Vec::with_capacity(p.streams);
    for _ in 0..p.streams {
        // Keep at most `opening` streams between "sent" and "first event".
        while tasks.len() - ttfts.len() >= p.opening.max(1) {
            match tokio::time::timeout(Duration::from_secs(30), first.recv()).await {
                Ok(Some(t)) => ttfts.push(crate::load::nanos(t)),
                _ => return Err(format!("no stream opened for 30 s ({} open)", ttfts.len())),
            }
        }
        let mut conn = Conn::new(gateway.addr);
        conn.on_first_event = Some(tx.clone());
        let req = req.clone();
        tasks.push(tokio::spawn(async move { conn.exchange(&req, Mode::Full).await }));
    }
    drop(tx);
    let deadline = Instant::now() + Duration::from_secs(60);
    while ttfts.len() < p.streams && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(1), first.recv()).await {
            Ok(Some(t)) => ttfts.push(crate::load::nanos(t)),
            Ok(None) => break,
            Err(_) if tasks.iter().all(tokio::task::JoinHandle::is_finished) => break,
            Err(_) => {}
        }
    }
    let open_time = started.elapsed();
    let opened = ttfts.len();
    let finished = tasks.iter().filter(|t| t.is_finished()).count();
    progress(&format!(
        "open-streams: {opened} of {} open after {:.1} s ({} at the mock, {finished} ended early); holding {:?}",
        p.streams,
        open_time.as_secs_f64(),
        mock.slow_open.load(Ordering::Relaxed),
        p.hold
    ));
    let mut open = proc.sample()?;
    let hold_end = Instant::now() + p.hold;
    while Instant::now() < hold_end {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let s = proc.sample()?;
        if s.rss > open.rss {
            open = s;
        }
    }
    let peak = proc.sample()?.hwm;
    mock.release_slow();
    let (mut completed, mut failed) = (0, 0);
    for task in tasks {
        match task.await {
            Ok(Ok(reply)) if reply.ok(true) => completed += 1,
            _ => failed += 1,
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = proc.sample()?;
    ttfts.sort_unstable();
    Ok(Outcome {
        wanted: p.streams,
        opened,
        completed,
        failed,
        open_time,
        ttft: (percentile(&ttfts, 50.0), percentile(&ttfts, 99.0)),
        before,
        open,
        after,
        peak,
    })
}
