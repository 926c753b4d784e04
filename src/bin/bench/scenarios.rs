//! The load scenarios. Each runs straight against the mock, then through the hop, then
//! through the gateway, back to back, with the same requests and stream shape; for the hop and the
//! gateway the bench also takes the process's CPU time over the measured window and its peak RSS
//! over the run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::client::request;
use crate::gateway::{Gateway, models};
use crate::hop::Hop;
use crate::load::{self, Req, Window};
use crate::mock::Mock;
use crate::procfs::Proc;
use crate::report::{Measured, Row, progress};

/// Knobs of the load scenarios (CLI flags).
#[derive(Clone, Debug)]
pub struct Params {
    /// Measured time per run.
    pub duration: Duration,
    /// Unrecorded time before it.
    pub warmup: Duration,
    /// Connections of the throughput and stream-max scenarios.
    pub connections: usize,
    /// Arrival rate of the fixed-rate scenario.
    pub rate: f64,
    /// Content chunks per stream (stream-max).
    pub stream_chunks: u32,
    /// Pause between events (stream-max).
    pub stream_delay: Duration,
    /// Content chunks per stream (TTFT scenarios).
    pub ttft_chunks: u32,
    /// Pause between events (TTFT scenarios).
    pub ttft_delay: Duration,
}

#[derive(Clone, Copy, Debug)]
enum Shape {
    /// N connections, each sending as soon as answered.
    Closed(usize),
    /// A constant arrival rate over this many connections.
    Open(f64, usize),
}

/// One load scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Short id, for `--scenario`.
    pub id: &'static str,
    title: String,
    stream: bool,
    shape: Shape,
    chunks: u32,
    delay: Duration,
}

/// Every load scenario, in order.
pub fn all(p: &Params) -> Vec<Scenario> {
    let json = |id, title: String, shape| Scenario {
        id,
        title,
        stream: false,
        shape,
        chunks: 0,
        delay: Duration::ZERO,
    };
    let stream = |id, title: String, shape, chunks, delay| Scenario {
        id,
        title,
        stream: true,
        shape,
        chunks,
        delay,
    };
    let shape = |c, d: Duration| format!("{c} chunks, {} µs apart", d.as_micros());
    vec![
        json("sequential", "JSON, 1 connection sequential".into(), Shape::Closed(1)),
        json(
            "throughput",
            format!("JSON, {} connections max", p.connections),
            Shape::Closed(p.connections),
        ),
        json(
            "fixed-rate",
            format!("JSON, open loop {} req/s", p.rate),
            Shape::Open(p.rate, p.connections),
        ),
        stream(
            "stream-max",
            format!(
                "SSE, {} streams max ({})",
                p.connections,
                shape(p.stream_chunks, p.stream_delay)
            ),
            Shape::Closed(p.connections),
            p.stream_chunks,
            p.stream_delay,
        ),
        stream(
            "ttft-1",
            format!("SSE TTFT, 1 stream ({})", shape(p.ttft_chunks, p.ttft_delay)),
            Shape::Closed(1),
            p.ttft_chunks,
            p.ttft_delay,
        ),
        stream(
            "ttft-32",
            format!("SSE TTFT, 32 streams ({})", shape(p.ttft_chunks, p.ttft_delay)),
            Shape::Closed(32),
            p.ttft_chunks,
            p.ttft_delay,
        ),
    ]
}

/// The chat body every scenario sends.
pub fn body(model: &str, stream: bool) -> Vec<u8> {
    let stream = if stream { r#","stream":true"# } else { "" };
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"Say hello."}}],"max_tokens":16{stream}}}"#)
        .into_bytes()
}

/// Runs `scenarios`, each direct, then through `hop`, then through `gateway`.
pub async fn run(mock: &Arc<Mock>, hop: &Hop, gateway: &Gateway, scenarios: &[Scenario], p: &Params) -> Vec<Row> {
    let direct_addr = SocketAddr::from(([127, 0, 0, 1], mock.port));
    let mut rows = Vec::new();
    for s in scenarios {
        mock.set_stream(s.chunks, s.delay);
        progress(&format!("{}: direct to the mock ...", s.id));
        let direct = once(direct_addr, None, s, p, None).await;
        progress(&format!("{}: through the hop ...", s.id));
        // The hop passes the key on to the mock, which ignores it: the same request bytes as the gateway's.
        let via_hop = once(hop.addr, Some(&gateway.key), s, p, Some(hop.proc)).await;
        progress(&format!("{}: through the gateway ...", s.id));
        let gw = once(gateway.addr, Some(&gateway.key), s, p, Some(gateway.proc)).await;
        for (path, m) in [("direct", &direct), ("hop", &via_hop), ("gateway", &gw)] {
            if let Some(e) = &m.first_error {
                progress(&format!("{}: {path}: {} errors, first: {e}", s.id, m.errors));
            }
        }
        rows.push(Row {
            id: s.id,
            title: s.title.clone(),
            stream: s.stream,
            direct,
            hop: via_hop,
            gateway: gw,
        });
    }
    rows
}

async fn once(addr: SocketAddr, key: Option<&str>, s: &Scenario, p: &Params, probe: Option<Proc>) -> Measured {
    let req = Req::full(
        request(addr, "/v1/chat/completions", key, &body(models::FAST, s.stream)),
        s.stream,
        1,
    );
    if let Some(proc) = probe {
        proc.reset_peak();
    }
    let window = Window::after(p.warmup, p.duration);
    let cpu = probe.map(|proc| {
        tokio::spawn(async move {
            tokio::time::sleep_until(window.start.into()).await;
            let before = (proc.thread_times(), proc.cpu());
            tokio::time::sleep_until(window.end.into()).await;
            match before {
                (Ok(threads), _) => Some(proc.thread_times().ok()?.since(&threads)),
                // Without schedstat, clock ticks.
                (_, Ok(total)) => Some(proc.cpu().ok()?.saturating_sub(total)),
                _ => None,
            }
        })
    });
    let rec = match s.shape {
        Shape::Closed(n) => load::closed(addr, Arc::new(vec![req]), n, window).await,
        Shape::Open(rate, n) => load::open(addr, req, rate, n, window).await,
    };
    let mut m = Measured::from(rec, window.length());
    if let Some(task) = cpu {
        m.cpu = task.await.ok().flatten();
    }
    if let Some(proc) = probe {
        m.peak_rss = proc.sample().ok().map(|s| s.hwm);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_chat_requests() {
        let b: serde_json::Value = serde_json::from_slice(&body("m", true)).unwrap();
        assert_eq!((b["model"].as_str(), b["stream"].as_bool()), (Some("m"), Some(true)));
        let b: serde_json::Value = serde_json::from_slice(&body("m", false)).unwrap();
        assert!(b.get("stream").is_none());
    }
}
