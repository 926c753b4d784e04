//! The scenario engine: closed-loop workers (N connections, each sends its next request when the
//! last one is answered) and an open-loop schedule (a constant arrival rate, latency counted from
//! the scheduled arrival when the system, not the timer, made a request late). Requests that start
//! inside the measured window are recorded; warm-up traffic is not.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{Conn, Mode};

/// One kind of request a workload sends.
#[derive(Clone, Debug)]
pub struct Req {
    /// The whole request as written.
    pub bytes: Vec<u8>,
    /// Whether the answer is an SSE stream.
    pub stream: bool,
    /// Read it all, or leave after the first event.
    pub mode: Mode,
    /// Relative share in a mixed workload.
    pub weight: u32,
}

impl Req {
    /// A request read to the end.
    pub fn full(bytes: Vec<u8>, stream: bool, weight: u32) -> Self {
        Self {
            bytes,
            stream,
            mode: Mode::Full,
            weight,
        }
    }
}

/// The measured window: warm-up ends at `start`.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// First instant recorded.
    pub start: Instant,
    /// No request starts after this.
    pub end: Instant,
}

impl Window {
    /// `warmup` from now, then `measure`.
    pub fn after(warmup: Duration, measure: Duration) -> Self {
        let start = Instant::now() + warmup;
        Self {
            start,
            end: start + measure,
        }
    }

    pub fn length(&self) -> Duration {
        self.end - self.start
    }
}

/// What the measured window came to.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Latency of each successful request, ns.
    pub latencies: Vec<u64>,
    /// Time to first event of each successful stream, ns.
    pub ttfts: Vec<u64>,
    /// Requests answered successfully.
    pub ok: u64,
    /// Requests that failed (status, I/O, missing `[DONE]`).
    pub errors: u64,
    /// SSE events received.
    pub events: u64,
    /// The first error, to explain a count.
    pub first_error: Option<String>,
}

impl Recorded {
    fn merge(&mut self, other: Self) {
        self.latencies.extend(other.latencies);
        self.ttfts.extend(other.ttfts);
        self.ok += other.ok;
        self.errors += other.errors;
        self.events += other.events;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn error(&mut self, e: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e);
        }
    }

    /// Sends `req` on `conn` and records it (when `record`).
    pub async fn send(&mut self, conn: &mut Conn, req: &Req, record: bool, since: Option<Instant>) {
        let started = Instant::now();
        let result = conn.exchange(&req.bytes, req.mode).await;
        if !record {
            return;
        }
        match result {
            Ok(reply) if reply.ok(req.stream) || (req.mode == Mode::CancelAfterFirstEvent && reply.ttft.is_some()) => {
                self.ok += 1;
                self.events += u64::from(reply.events);
                // Open loop: a request queued behind a slow one counts from when it was due.
                let extra = since.map_or(Duration::ZERO, |s| started.saturating_duration_since(s));
                self.latencies.push(nanos(reply.latency + extra));
                if let Some(t) = reply.ttft {
                    self.ttfts.push(nanos(t + extra));
                }
            }
            Ok(reply) => self.error(format!(
                "status {} (events {}, done {}, error event {})",
                reply.status, reply.events, reply.done, reply.error_event
            )),
            Err(e) => self.error(e),
        }
    }

    /// Requests per second over `window`.
    pub fn rate(&self, window: Duration) -> f64 {
        self.ok as f64 / window.as_secs_f64().max(1e-9)
    }
}

/// Nanoseconds, saturating.
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Picks a request by weight.
pub fn pick(reqs: &[Req]) -> &Req {
    let total: u32 = reqs.iter().map(|r| r.weight).sum();
    let mut roll = fastrand::u32(0..total.max(1));
    for r in reqs {
        if roll < r.weight {
            return r;
        }
        roll -= r.weight;
    }
    &reqs[0]
}

/// `connections` closed-loop workers sending requests picked from `reqs` until `window.end`.
pub async fn closed(addr: SocketAddr, reqs: Arc<Vec<Req>>, connections: usize, window: Window) -> Recorded {
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let reqs = reqs.clone();
            tokio::spawn(async move {
                let mut rec = Recorded::default();
                let mut conn = Conn::new(addr);
                loop {
                    let now = Instant::now();
                    if now >= window.end || reqs.is_empty() {
                        return rec;
                    }
                    let errors = rec.errors;
                    rec.send(&mut conn, pick(&reqs), now >= window.start, None).await;
                    if rec.errors > errors {
                        // Do not spin on a refused connection.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            })
        })
        .collect();
    join(workers).await
}

/// Requests at a constant `rate` per second, spread over `workers` connections: worker k sends
/// arrivals k, k + workers, ... each at its scheduled time.
pub async fn open(addr: SocketAddr, req: Req, rate: f64, workers: usize, window: Window) -> Recorded {
    let period = Duration::from_secs_f64(1.0 / rate.max(1e-3));
    let origin = Instant::now();
    let req = Arc::new(req);
    let tasks: Vec<_> = (0..workers)
        .map(|k| {
            let req = req.clone();
            tokio::spawn(async move {
                let mut rec = Recorded::default();
                let mut conn = Conn::new(addr);
                let mut prev_done = origin;
                for i in (k..).step_by(workers.max(1)) {
                    let due = origin + period.mul_f64(i as f64);
                    if due >= window.end {
                        break;
                    }
                    tokio::time::sleep_until(due.into()).await;
                    // Late because our previous request was still running: that wait is the
                    // system's, counted from `due`. Late because the timer woke us late: ours, not.
                    let since = (prev_done > due).then_some(due);
                    rec.send(&mut conn, &req, due >= window.start, since).await;
                    prev_done = Instant::now();
                }
                rec
            })
        })
        .collect();
    join(tasks).await
}

async fn join(tasks: Vec<tokio::task::JoinHandle<Recorded>>) -> Recorded {
    let mut all = Recorded::default();
    for task in tasks {
        match task.await {
            Ok(rec) => all.merge(rec),
            Err(e) => all.error(format!("worker failed: {e}")),
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_follow_weights() {
        let reqs = vec![Req::full(b"a".to_vec(), false, 7), Req::full(b"b".to_vec(), true, 3)];
        let streams = (0..10_000).filter(|_| pick(&reqs).stream).count();
        assert!((2_500..3_500).contains(&streams), "{streams}");
    }

    #[tokio::test]
    async fn closed_and_open_loops_record_only_the_window() {
        let mock = crate::mock::Mock::start().await.unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], mock.port));
        let body = br#"{"model":"m","messages":[]}"#;
        let req = Req::full(
            crate::client::request(addr, "/v1/chat/completions", None, body),
            false,
            1,
        );
        let window = Window::after(Duration::from_millis(50), Duration::from_millis(200));
        let rec = closed(addr, Arc::new(vec![req.clone()]), 2, window).await;
        assert!(rec.ok >= 1 && rec.errors == 0, "{rec:?}");
        assert_eq!(rec.latencies.len() as u64, rec.ok);
        let window = Window::after(Duration::from_millis(50), Duration::from_millis(200));
        let rec = open(addr, req, 100.0, 4, window).await;
        // Arrivals 10 ms apart from the start: the 20 due inside the 200 ms window are recorded.
        assert!((15..=25).contains(&rec.ok) && rec.errors == 0, "{rec:?}");
    }
}
