//! `RedisLink`: one Redis connection kept by a background task, so the request path only reads
//! the current state and never waits on a connect.
//!
//! A request takes the connection if there is one (`current`) and otherwise decides without
//! Redis at once. A call that fails in a way a new connection could fix (an I/O error, a dropped
//! connection, a timeout) reports it (`failed`); the connection is dropped and the keeper task
//! reconnects with backoff, checking each new connection with a `PING` (a proxy or load balancer
//! may accept TCP for a Redis that is gone). The keeper also pings the live connection every
//! second, so a Redis that went silent is noticed without a request paying for it.

use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use tokio::sync::Notify;

/// The longest a connect (TCP and the first `PING`) may take in the background.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the keeper pings a live connection.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Reconnect backoff: from this, doubling, up to `BACKOFF_MAX`.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// A Redis connection kept up in the background. Cloning shares it.
#[derive(Clone)]
pub struct RedisLink {
    shared: Arc<Shared>,
}

struct Shared {
    client: redis::Client,
    conn: ArcSwapOption<MultiplexedConnection>,
    broken: Notify,
    /// Woken each time a connection is made.
    up: Notify,
    response_timeout: Duration,
    /// What the link serves, for logs (`rate limiter`, `response cache`).
    name: &'static str,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink")
            .field("name", &self.shared.name)
            .field("connected", &self.connected())
            .finish_non_exhaustive()
    }
}

impl RedisLink {
    /// A link to `url` (checked now), not connected until `start`.
    pub fn new(url: &str, name: &'static str, response_timeout: Duration) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("REDIS_URL: {e}"))?;
        Ok(Self {
            shared: Arc::new(Shared {
                client,
                conn: ArcSwapOption::empty(),
                broken: Notify::new(),
                up: Notify::new(),
                response_timeout,
                name,
            }),
        })
    }

    /// Starts the keeper task: it connects now and stays until the last clone of the link is
    /// dropped. Must be called inside a tokio runtime.
    pub fn start(&self) {
        tokio::spawn(keep(Arc::downgrade(&self.shared)));
    }

    /// The connection, if one is up; never waits.
    pub fn current(&self) -> Option<MultiplexedConnection> {
        self.shared.conn.load_full().map(|c| c.as_ref().clone())
    }

    /// Waits at most `within` for a connection (the keeper makes it); whether one is up.
    pub async fn connect_within(&self, within: Duration) -> bool {
        let wait = async {
            loop {
                let up = self.shared.up.notified();
                if self.connected() {
                    return;
                }
                up.await;
            }
        };
        tokio::time::timeout(within, wait).await.is_ok()
    }

    /// Whether a connection is up.
    pub fn connected(&self) -> bool {
        self.shared.conn.load().is_some()
    }

    /// A call failed with `e`: when a new connection could help, drop this one and wake the keeper.
    pub fn failed(&self, e: &redis::RedisError) {
        if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_unrecoverable_error() {
            self.broke();
        }
    }

    /// One call on the current connection, bounded by `timeout`; without a connection it fails at
    /// once (the keeper reconnects in the background, so no request waits on a connect), and an
    /// I/O error or a timeout drops the connection.
    pub async fn run<T>(
        &self,
        timeout: Duration,
        f: impl AsyncFnOnce(MultiplexedConnection) -> redis::RedisResult<T>,
    ) -> Result<T, String> {
        let conn = self
            .current()
            .ok_or_else(|| "not connected (reconnecting in the background)".to_owned())?;
        match tokio::time::timeout(timeout, f(conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.failed(&e);
                Err(e.to_string())
            }
            Err(_) => {
                self.timed_out();
                Err("redis call timed out".into())
            }
        }
    }

    /// A call got no answer in time: the connection may hang on a Redis that is gone.
    pub fn timed_out(&self) {
        self.broke();
    }

    fn broke(&self) {
        if self.shared.conn.swap(None).is_some() {
            tracing::warn!(
                link = self.shared.name,
                "redis connection lost; reconnecting in the background"
            );
        }
        self.shared.broken.notify_one();
    }
}

/// The keeper: (re)connects while the link lives, and watches a live connection.
async fn keep(link: Weak<Shared>) {
    let mut backoff = BACKOFF_MIN;
    let mut failures = 0u64;
    loop {
        let Some(shared) = link.upgrade() else {
            return;
        };
        if shared.conn.load().is_none() {
            match connect(&shared).await {
                Ok(conn) => {
                    shared.conn.store(Some(Arc::new(conn)));
                    shared.up.notify_waiters();
                    tracing::info!(link = shared.name, "redis connected");
                    backoff = BACKOFF_MIN;
                    failures = 0;
                }
                Err(e) => {
                    failures += 1;
                    // One line per power of two: a long outage must not flood the log.
                    if failures.is_power_of_two() {
                        tracing::warn!(link = shared.name, error = %e, failures, "redis unreachable; retrying");
                    }
                    drop(shared);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            }
        }
        let broken = shared.broken.notified();
        tokio::select! {
            () = broken => {}
            () = tokio::time::sleep(CHECK_EVERY) => {
                if let Some(mut conn) = shared.conn.load_full().map(|c| c.as_ref().clone()) {
                    let ping = redis::cmd("PING");
                    let answered = tokio::time::timeout(CONNECT_TIMEOUT, ping.query_async::<String>(&mut conn)).await;
                    if !matches!(answered, Ok(Ok(_))) && shared.conn.swap(None).is_some() {
                        tracing::warn!(link = shared.name, "redis stopped answering; reconnecting");
                    }
                }
            }
        }
    }
}

async fn connect(shared: &Shared) -> Result<MultiplexedConnection, String> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(shared.response_timeout));
    let attempt = async {
        let mut conn = shared
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| e.to_string())?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(conn)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| "connect timed out".to_owned())?
}
