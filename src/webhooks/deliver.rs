//! The dispatcher: takes events off the queue, delivers several at once, retries what a retry can
//! fix, and drains briefly at shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{CONTENT_TYPE, USER_AGENT};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Delivery, DeliveryHook, DeliveryResult, EVENT_ID_HEADER, SIGNATURE_HEADER, Signer};

/// Attempts at once, over every receiver.
const MAX_IN_FLIGHT: usize = 8;
/// Deliveries at once to one receiver: a receiver that hangs holds no more than this.
const PER_DESTINATION: usize = 2;
/// Receivers remembered before idle ones are forgotten.
const MAX_DESTINATIONS: usize = 256;
/// At shutdown, how long queued and in-flight events may still take.
const DRAIN: Duration = Duration::from_secs(5);
/// First retry after 0.25–0.5 s, doubling, at most 30 s.
const BACKOFF_BASE_MS: u64 = 500;
const BACKOFF_MAX_MS: u64 = 30_000;

pub(super) struct Dispatcher {
    pub http: reqwest::Client,
    pub signer: Option<Signer>,
    pub timeout: Duration,
    pub max_retries: u32,
    /// Deliveries one receiver may have waiting behind those in flight (`webhooks.queue_capacity`);
    /// more are dropped and counted.
    pub waiting_per_destination: usize,
    pub hook: DeliveryHook,
    /// Whether the first unsigned event was logged already.
    pub warned_unsigned: AtomicBool,
}

enum Verdict {
    Delivered,
    Retry(String),
    GiveUp(String),
}

pub(super) async fn run(mut rx: mpsc::Receiver<Delivery>, d: Arc<Dispatcher>, cancel: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut destinations = Destinations::default();
    let mut running = JoinSet::new();
    loop {
        while running.try_join_next().is_some() {}
        let delivery = tokio::select! {
            next = rx.recv() => match next { Some(next) => next, None => break },
            () = cancel.cancelled() => break,
        };
        destinations.start(&mut running, &d, &slots, delivery);
    }
    rx.close();
    let drain = async {
        while let Some(delivery) = rx.recv().await {
            destinations.start(&mut running, &d, &slots, delivery);
        }
        while running.join_next().await.is_some() {}
    };
    if tokio::time::timeout(DRAIN, drain).await.is_err() {
        tracing::warn!(
            abandoned = running.len(),
            "webhook events still undelivered at shutdown"
        );
        for _ in 0..running.len() {
            (d.hook)(DeliveryResult::Failed);
        }
        running.abort_all();
    }
}

/// One gate per receiver (scheme, host and port): a dead or slow receiver holds at most
/// `PER_DESTINATION` deliveries in flight and `waiting_per_destination` waiting, so it can never
/// take every dispatcher slot from the healthy ones.
#[derive(Default)]
struct Destinations(HashMap<String, Arc<Semaphore>>);

impl Destinations {
    fn start(&mut self, running: &mut JoinSet<()>, d: &Arc<Dispatcher>, slots: &Arc<Semaphore>, delivery: Delivery) {
        if self.0.len() > MAX_DESTINATIONS {
            // Forget receivers with nothing in flight; callbacks come from the config, so few remain.
            self.0.retain(|_, gate| Arc::strong_count(gate) > 1);
        }
        let gate = self
            .0
            .entry(destination(&delivery.url))
            .or_insert_with(|| Arc::new(Semaphore::new(PER_DESTINATION)))
            .clone();
        // Every holder of the gate but the map and `gate` itself is a delivery waiting for, or
        // holding, a permit.
        let queued = Arc::strong_count(&gate).saturating_sub(2);
        if queued >= PER_DESTINATION + d.waiting_per_destination {
            (d.hook)(DeliveryResult::Dropped);
            tracing::warn!(event_id = %delivery.event_id, "webhook receiver backlog full; event dropped");
            return;
        }
        let (d, slots) = (d.clone(), slots.clone());
        running.spawn(async move {
            let Ok(_turn) = gate.acquire_owned().await else {
                return;
            };
            d.deliver(delivery, &slots).await;
        });
    }
}

/// The receiver a URL names: scheme, host and port (the whole URL when it does not parse).
fn destination(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}:{}",
            u.scheme(),
            u.host_str().unwrap_or_default(),
            u.port_or_known_default().unwrap_or_default()
        ),
        Err(_) => url.to_owned(),
    }
}

impl Dispatcher {
    /// Delivers with retries; a dispatcher slot is held for each attempt, never across a backoff.
    async fn deliver(&self, delivery: Delivery, slots: &Semaphore) {
        let host = reqwest::Url::parse(&delivery.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        for attempt in 0..=self.max_retries {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt - 1)).await;
            }
            let Ok(_slot) = slots.acquire().await else {
                return;
            };
            match self.attempt(&delivery).await {
                Verdict::Delivered => {
                    tracing::debug!(event_id = %delivery.event_id, host, attempts = attempt + 1, "webhook delivered");
                    (self.hook)(DeliveryResult::Delivered);
                    return;
                }
                Verdict::Retry(why) => {
                    tracing::debug!(event_id = %delivery.event_id, host, attempt = attempt + 1, why = %why, "webhook attempt failed");
                }
                Verdict::GiveUp(why) => {
                    tracing::warn!(event_id = %delivery.event_id, host, why = %why, "webhook refused; not retried");
                    (self.hook)(DeliveryResult::Failed);
                    return;
                }
            }
        }
        tracing::warn!(event_id = %delivery.event_id, host, attempts = self.max_retries + 1, "webhook not delivered");
        (self.hook)(DeliveryResult::Failed);
    }

    async fn attempt(&self, delivery: &Delivery) -> Verdict {
        let mut request = self
            .http
            .post(&delivery.url)
            .timeout(self.timeout)
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("ai-gateway-webhooks/", env!("CARGO_PKG_VERSION")))
            .header(EVENT_ID_HEADER, &delivery.event_id)
            .body(delivery.body.clone());
        if let Some(signer) = &self.signer {
            // Signed per attempt, so a receiver's freshness check accepts a late retry.
            request = request.header(SIGNATURE_HEADER, signer.header(unix_now(), &delivery.body));
        } else if !self.warned_unsigned.swap(true, Ordering::Relaxed) {
            tracing::warn!("webhooks.secret (WEBHOOK_SECRET) is not set: webhook events are sent unsigned");
        }
        match request.send().await {
            Ok(r) if r.status().is_success() => Verdict::Delivered,
            Ok(r) if r.status().is_server_error() || r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS => {
                Verdict::Retry(format!("status {}", r.status().as_u16()))
            }
            Ok(r) if r.status().is_redirection() => Verdict::GiveUp(format!(
                "status {}: redirects are not followed (the signed event would go to another host)",
                r.status().as_u16()
            )),
            Ok(r) => Verdict::GiveUp(format!("status {}", r.status().as_u16())),
            Err(e) if e.is_builder() => Verdict::GiveUp(format!("bad callback URL: {e}")),
            Err(e) => Verdict::Retry(if e.is_timeout() {
                "timed out".to_owned()
            } else {
                "connection failed".to_owned()
            }),
        }
    }
}

/// Wait before retry number `retry` (0 = the first): equal jitter, at least half the exponential
/// step, so retries from many events spread out but still back off.
fn backoff(retry: u32) -> Duration {
    let exp = BACKOFF_BASE_MS
        .saturating_mul(1u64 << retry.min(16))
        .min(BACKOFF_MAX_MS);
    let half = exp / 2;
    Duration::from_millis(half + fastrand::u64(0..=exp - half))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use bytes::Bytes;
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    #[tokio::test]
    async fn events_queued_when_the_server_stops_are_still_delivered() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let receiver = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(200)))
            .mount(&receiver)
            .await;
        let delivered = Arc::new(AtomicU64::new(0));
        let seen = delivered.clone();
        let dispatcher = Dispatcher {
            http: reqwest::Client::builder().build().unwrap(),
            signer: None,
            timeout: Duration::from_secs(5),
            max_retries: 0,
            waiting_per_destination: 16,
            hook: Arc::new(move |r| {
                if r == DeliveryResult::Delivered {
                    seen.fetch_add(1, Ordering::Relaxed);
                }
            }),
            warned_unsigned: AtomicBool::new(false),
        };
        let (tx, rx) = mpsc::channel(16);
        for i in 0..3 {
            tx.try_send(Delivery {
                url: format!("{}/hook", receiver.uri()),
                event_id: format!("e{i}"),
                body: Bytes::from_static(b"{}"),
            })
            .unwrap();
        }
        // Stopped before the dispatcher ever ran: everything queued goes out in the drain.
        let cancel = CancellationToken::new();
        cancel.cancel();
        run(rx, Arc::new(dispatcher), cancel).await;
        assert_eq!(delivered.load(Ordering::Relaxed), 3);
        assert_eq!(receiver.received_requests().await.unwrap().len(), 3);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for retry in 0..8 {
            let d = backoff(retry).as_millis() as u64;
            let exp = (BACKOFF_BASE_MS << retry).min(BACKOFF_MAX_MS);
            assert!(d >= exp / 2 && d <= exp, "retry {retry}: {d}ms");
        }
        assert!(backoff(40) <= Duration::from_millis(BACKOFF_MAX_MS));
    }
}
