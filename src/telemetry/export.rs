//! The span export path: ended spans go on a bounded queue (`QueueProcessor::on_end`, a `try_send`
//! that never waits) and one task batches them to the OTLP/HTTP exporter. A full queue and a failed
//! export drop spans and count them (`dropped`, `gateway_trace_spans_dropped_total`), so a slow or
//! dead collector never slows a request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_otlp::SpanExporter;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter as _, SpanProcessor};
use tokio::sync::{mpsc, oneshot};

static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Spans dropped since start: the queue was full or their export failed.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

fn drop_spans(n: usize) {
    DROPPED.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
}

pub(super) enum Message {
    Span(Box<SpanData>),
    /// Export what is queued, then answer (shutdown).
    Flush(oneshot::Sender<()>),
}

/// Hands ended spans to the export task.
#[derive(Debug)]
pub(super) struct QueueProcessor {
    tx: mpsc::Sender<Message>,
}

impl QueueProcessor {
    /// The processor, and the task that exports what it queues (spawn it on a runtime that lives
    /// as long as the process).
    pub(super) fn new(
        exporter: SpanExporter,
        queue: usize,
        batch: usize,
        interval: Duration,
    ) -> (Self, impl Future<Output = ()> + Send) {
        let (tx, rx) = mpsc::channel(queue);
        (Self { tx }, run(rx, exporter, batch, interval))
    }
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.tx.try_send(Message::Span(Box::new(span))).is_err() {
            drop_spans(1);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// Exports what is queued and waits for it, at most `within` (at shutdown).
pub(super) async fn flush(processor_tx: &mpsc::Sender<Message>, within: Duration) {
    let (done, wait) = oneshot::channel();
    if processor_tx.try_send(Message::Flush(done)).is_ok() {
        let _ = tokio::time::timeout(within, wait).await;
    }
}

impl QueueProcessor {
    pub(super) fn sender(&self) -> mpsc::Sender<Message> {
        self.tx.clone()
    }
}

async fn run(mut rx: mpsc::Receiver<Message>, exporter: SpanExporter, batch: usize, interval: Duration) {
    let mut spans: Vec<SpanData> = Vec::with_capacity(batch);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = rx.recv() => match message {
                Some(Message::Span(span)) => {
                    spans.push(*span);
                    if spans.len() >= batch {
                        export(&exporter, &mut spans).await;
                    }
                }
                Some(Message::Flush(done)) => {
                    export(&exporter, &mut spans).await;
                    let _ = done.send(());
                }
                None => {
                    export(&exporter, &mut spans).await;
                    return;
                }
            },
            _ = tick.tick() => export(&exporter, &mut spans).await,
        }
    }
}

/// One export request; the exporter's HTTP client bounds it (`telemetry.otlp.timeout_seconds`).
async fn export(exporter: &SpanExporter, spans: &mut Vec<SpanData>) {
    if spans.is_empty() {
        return;
    }
    let batch = std::mem::take(spans);
    let n = batch.len();
    if let Err(e) = exporter.export(batch).await {
        drop_spans(n);
        tracing::debug!(spans = n, error = %e, "trace export failed; spans dropped");
    }
}
