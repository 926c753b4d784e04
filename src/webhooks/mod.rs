//! Webhooks: a route's `callback` URL receives a signed JSON event for each completed request.
//!
//! Depends on `config` and `domain`; no actix. `Webhooks::emit` is a `try_send` on a bounded queue
//! (`webhooks.queue_capacity`), so the request path never waits on a receiver; a full queue drops
//! the event and counts it. The dispatcher task (started and stopped by `startup`) delivers up to
//! `MAX_IN_FLIGHT` events at once, each attempt bounded by `webhooks.timeout_seconds`, retrying
//! connection errors, timeouts, 5xx and 429 with jittered exponential backoff up to
//! `webhooks.max_retries` times, never other 4xx. Events carry no prompt, completion or secret.
//! Besides `providers/` and `nodes/`, the only module that makes outbound HTTP.

mod deliver;
mod sign;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use secrecy::ExposeSecret;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use sign::{EVENT_ID_HEADER, SIGNATURE_HEADER, Signer};

use crate::config::WebhookSettings;
use crate::domain::Usage;

/// The `type` of the event sent when a request completes.
pub const REQUEST_COMPLETED: &str = "request.completed";

/// How an event's delivery ended (the `result` label of `gateway_webhook_deliveries_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryResult {
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed, or the receiver refused it with a 4xx other than 429.
    Failed,
    /// The queue was full; never sent.
    Dropped,
}

impl DeliveryResult {
    /// Every result, for series created at zero.
    pub const ALL: [Self; 3] = [Self::Delivered, Self::Failed, Self::Dropped];

    /// `delivered`, `failed` or `dropped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Dropped => "dropped",
        }
    }
}

/// Told of every delivery's end (startup points it at the metrics).
pub type DeliveryHook = Arc<dyn Fn(DeliveryResult) + Send + Sync>;

/// The JSON body of a `request.completed` event. Outcome and timing only: never a prompt, a
/// completion or a credential.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// `request.completed`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The request id (`x-request-id`).
    pub id: String,
    /// When the request started, RFC 3339 (UTC, milliseconds).
    pub created_at: String,
    /// The named route the request used, if any.
    pub route: Option<String>,
    /// The endpoint path (`/v1/chat/completions`, a path route's path).
    pub endpoint: String,
    /// The model as requested.
    pub model: Option<String>,
    /// The provider that answered (or was last tried; for a cache hit, the one that answered first).
    pub provider: Option<String>,
    /// `success`, `error` or `cancelled` (a stream the client left).
    pub status: &'static str,
    /// The HTTP status the client got (499 for a cancelled stream).
    pub status_code: u16,
    /// Total time the gateway spent on the request.
    pub latency_ms: u64,
    /// Tokens, when the provider reported them (none on a cache hit).
    pub usage: Option<Usage>,
    /// `hit` or `miss` when the response cache applied, else null.
    pub cache: Option<&'static str>,
}

/// The JSON body of a `budget.threshold` event: a budget's spend crossed one of its `alert_at`
/// fractions (sent once per period and threshold, by the replica whose request crossed it).
#[derive(Debug, Clone, Serialize)]
pub struct BudgetThreshold {
    /// `budget.threshold`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The budget's id (`team:research:monthly`).
    pub budget: String,
    /// `key`, `team`, `user`, `tag`, `session`, `provider` or `gateway`.
    pub scope: &'static str,
    /// The subject within the scope (empty for `gateway`).
    pub name: String,
    /// `daily`, `weekly`, `monthly` or `total`.
    pub period: &'static str,
    /// The period's start and end (null for `total`), epoch milliseconds.
    pub period_start_ms: i64,
    pub period_end_ms: Option<i64>,
    /// The fraction of the limit crossed.
    pub threshold: f64,
    pub limit_usd: f64,
    pub spent_usd: f64,
}

impl Event {
    /// A `request.completed` event for request `id`, started at `created_at_ms` (epoch ms); the
    /// caller fills in the rest.
    pub fn completed(id: impl Into<String>, created_at_ms: i64, endpoint: impl Into<String>) -> Self {
        let created_at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(created_at_ms) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default();
        Self {
            kind: REQUEST_COMPLETED,
            id: id.into(),
            created_at,
            route: None,
            endpoint: endpoint.into(),
            model: None,
            provider: None,
            status: "success",
            status_code: 200,
            latency_ms: 0,
            usage: None,
            cache: None,
        }
    }
}

/// One event on its way: the URL, its id (the same on every attempt) and the serialized body.
#[derive(Debug)]
struct Delivery {
    url: String,
    event_id: String,
    body: Bytes,
}

/// The sending side: cheap to clone, never blocks.
#[derive(Clone)]
pub struct Webhooks {
    queue: mpsc::Sender<Delivery>,
    hook: DeliveryHook,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("queued", &(self.queue.max_capacity() - self.queue.capacity()))
            .finish_non_exhaustive()
    }
}

impl Webhooks {
    /// Queues `event` for `url`; `false` when the queue is full (the event is dropped and counted)
    /// or the dispatcher has stopped.
    pub fn emit(&self, url: &str, event: &impl Serialize) -> bool {
        let body = match serde_json::to_vec(event) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                tracing::warn!(error = %e, "webhook event not serialized");
                return false;
            }
        };
        let delivery = Delivery {
            url: url.to_owned(),
            event_id: uuid::Uuid::now_v7().to_string(),
            body,
        };
        if self.queue.try_send(delivery).is_ok() {
            return true;
        }
        (self.hook)(DeliveryResult::Dropped);
        let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        // Once per power of two: a flood of drops must not become a flood of log lines.
        if n.is_power_of_two() {
            tracing::warn!(dropped_total = n, "webhook queue full; event dropped");
        }
        false
    }
}

/// Starts the dispatcher; it stops when `cancel` fires, after delivering what is queued and in
/// flight for at most a few seconds.
pub fn spawn(
    settings: &WebhookSettings,
    http: reqwest::Client,
    hook: DeliveryHook,
    cancel: CancellationToken,
) -> (Webhooks, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(settings.queue_capacity.max(1));
    let dispatcher = deliver::Dispatcher {
        http,
        signer: settings
            .secret
            .as_ref()
            .map(|s| Signer::new(s.expose_secret().as_bytes())),
        timeout: Duration::try_from_secs_f64(settings.timeout_seconds).unwrap_or(Duration::from_secs(5)),
        max_retries: settings.max_retries,
        waiting_per_destination: settings.queue_capacity.max(1),
        hook: hook.clone(),
        warned_unsigned: std::sync::atomic::AtomicBool::new(false),
    };
    let task = tokio::spawn(deliver::run(rx, Arc::new(dispatcher), cancel));
    let webhooks = Webhooks {
        queue: tx,
        hook,
        dropped: Arc::new(AtomicU64::new(0)),
    };
    (webhooks, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_serializes_with_its_contract_names() {
        let mut event = Event::completed("req-1", 1_700_000_000_123, "/v1/chat/completions");
        event.route = Some("chat-default".into());
        event.cache = Some("hit");
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "request.completed");
        assert_eq!(json["id"], "req-1");
        assert_eq!(json["created_at"], "2023-11-14T22:13:20.123Z");
        assert_eq!(json["route"], "chat-default");
        assert_eq!(json["status"], "success");
        assert_eq!(json["status_code"], 200);
        assert_eq!(json["cache"], "hit");
        assert!(json["usage"].is_null());
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts() {
        let dropped = Arc::new(AtomicU64::new(0));
        let seen = dropped.clone();
        let hook: DeliveryHook = Arc::new(move |r| {
            if r == DeliveryResult::Dropped {
                seen.fetch_add(1, Ordering::Relaxed);
            }
        });
        // No dispatcher: the queue (capacity 1) fills with the first event.
        let (tx, _rx) = mpsc::channel(1);
        let webhooks = Webhooks {
            queue: tx,
            hook,
            dropped: Arc::new(AtomicU64::new(0)),
        };
        let event = Event::completed("r", 0, "/v1/chat/completions");
        assert!(webhooks.emit("http://127.0.0.1:9/hook", &event));
        assert!(!webhooks.emit("http://127.0.0.1:9/hook", &event));
        assert_eq!(dropped.load(Ordering::Relaxed), 1);
    }
}
