//! Responses the gateway answered on `/v1/responses` (the `responses` table): which provider made
//! each one and for which caller, and, for a bridged response stored with `store: true`, its JSON
//! (the response object and the conversation input that led to it) until it expires.
//!
//! Written off the request path: `ResponseSink::record` keeps the row in this replica's memory at
//! once (so a chained request that follows at once finds it) and hands it to a bounded queue that
//! `ResponseWriter::run`, a task `startup` owns, drains into the database; a row leaves memory once
//! it is written. A full queue drops the row from the queue (it stays in memory until evicted) and
//! counts it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use moka::sync::Cache;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::db::{HistoryError, HistoryStore, with_conn};
use super::now_ms;
use super::schema::responses;

/// Rows the write queue holds before new ones are dropped from it.
const QUEUE_CAPACITY: usize = 4096;
/// Bytes of rows kept in memory until written (the body's size, at least 1 KiB each).
const MEMORY_BYTES: u64 = 64 * 1024 * 1024;
/// Longest a row stays in memory: long enough to ride out a database outage of that length,
/// short enough that a deletion on another replica is not contradicted for long.
const MEMORY_TTL: Duration = Duration::from_secs(3600);
/// On shutdown, how long the writer keeps writing what is queued.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(5);

/// One answered response as stored.
#[derive(Debug, Clone, PartialEq, Eq, Insertable, Queryable, Selectable)]
#[diesel(table_name = responses, treat_none_as_default_value = false)]
pub struct StoredResponse {
    /// The response's `id` (`resp_...`), as the client was given it.
    pub id: String,
    /// The provider that made it.
    pub provider: String,
    /// The caller that made it (`Caller::id`); null when nobody was authenticated.
    pub caller: Option<String>,
    /// Whether the gateway bridged it to chat completions (so it, not the provider, keeps it).
    pub bridged: bool,
    /// When, epoch ms.
    pub created_at: i64,
    /// When it stops being served, epoch ms; null = never.
    pub expires_at: Option<i64>,
    /// For a stored bridged response: `{"response": {...}, "input": [...]}`.
    pub body: Option<String>,
}

impl StoredResponse {
    /// Whether it has expired at `now` (epoch ms).
    pub fn expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

impl HistoryStore {
    /// Stores a response row; an id already stored keeps its row.
    pub async fn insert_response(&self, row: &StoredResponse) -> Result<(), HistoryError> {
        with_conn!(self, |conn| {
            diesel::insert_into(responses::table)
                .values(row)
                .on_conflict(responses::id)
                .do_nothing()
                .execute(&mut conn)
                .await?
        });
        Ok(())
    }

    /// The response `id`, unless it is unknown or expired.
    pub async fn find_response(&self, id: &str) -> Result<Option<StoredResponse>, HistoryError> {
        let now = now_ms();
        let row = with_conn!(self, |conn| {
            responses::table
                .select(StoredResponse::as_select())
                .filter(responses::id.eq(id))
                .filter(responses::expires_at.is_null().or(responses::expires_at.gt(now)))
                .first(&mut conn)
                .await
                .optional()?
        });
        Ok(row)
    }

    /// Deletes the response `id`; returns whether it existed.
    pub async fn delete_response(&self, id: &str) -> Result<bool, HistoryError> {
        let n = with_conn!(self, |conn| {
            diesel::delete(responses::table.filter(responses::id.eq(id)))
                .execute(&mut conn)
                .await?
        });
        Ok(n > 0)
    }

    /// Deletes every expired response; returns how many.
    pub async fn purge_expired_responses(&self) -> Result<usize, HistoryError> {
        let now = now_ms();
        let n = with_conn!(self, |conn| {
            diesel::delete(responses::table.filter(responses::expires_at.le(now)))
                .execute(&mut conn)
                .await?
        });
        Ok(n)
    }
}

/// What this replica's memory knows of a response.
#[derive(Debug, Clone)]
enum Memo {
    /// Answered here and not yet written (or written and not yet forgotten).
    Pending(Arc<StoredResponse>),
    /// Deleted here: a write still queued must not bring it back.
    Deleted,
}

/// What this replica's memory says about an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remembered {
    /// Memory has the row.
    Found(Arc<StoredResponse>),
    /// It was deleted here.
    Deleted,
    /// Memory does not know it: ask the database.
    Unknown,
}

/// Hands response rows to the writer and keeps them in memory until written. Cloning is cheap;
/// nothing here waits.
#[derive(Debug, Clone)]
pub struct ResponseSink {
    tx: mpsc::Sender<Arc<StoredResponse>>,
    memory: Cache<String, Memo>,
    dropped: Arc<AtomicU64>,
}

/// The writer's end: drained by `run`, which `startup` spawns.
#[derive(Debug)]
pub struct ResponseWriter {
    rx: mpsc::Receiver<Arc<StoredResponse>>,
    memory: Cache<String, Memo>,
    store: HistoryStore,
}

/// A sink and the writer that drains it into `store`.
pub fn response_queue(store: HistoryStore) -> (ResponseSink, ResponseWriter) {
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    let memory = Cache::builder()
        .max_capacity(MEMORY_BYTES)
        .weigher(|_, memo: &Memo| match memo {
            Memo::Pending(row) => u32::try_from(row.body.as_ref().map_or(0, String::len).max(1024)).unwrap_or(u32::MAX),
            Memo::Deleted => 64,
        })
        .time_to_live(MEMORY_TTL)
        .build();
    let sink = ResponseSink {
        tx,
        memory: memory.clone(),
        dropped: Arc::new(AtomicU64::new(0)),
    };
    (sink, ResponseWriter { rx, memory, store })
}

impl ResponseSink {
    /// Keeps `row` in memory and queues it for the database; never waits.
    pub fn record(&self, row: StoredResponse) {
        let row = Arc::new(row);
        self.memory.insert(row.id.clone(), Memo::Pending(row.clone()));
        if self.tx.try_send(row).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(
                    dropped_total = dropped,
                    "response row not queued for the database; kept in memory only"
                );
            }
        }
    }

    /// What memory knows of `id` (an expired row counts as deleted).
    pub fn remembered(&self, id: &str) -> Remembered {
        match self.memory.get(id) {
            Some(Memo::Pending(row)) if row.expired(now_ms()) => Remembered::Deleted,
            Some(Memo::Pending(row)) => Remembered::Found(row),
            Some(Memo::Deleted) => Remembered::Deleted,
            None => Remembered::Unknown,
        }
    }

    /// Marks `id` deleted here, so a write still queued does not store it.
    pub fn forget(&self, id: &str) {
        self.memory.insert(id.to_owned(), Memo::Deleted);
    }

    /// Rows that could not be queued since start.
    pub fn dropped(&self) -> u64 {
        AtomicU64::load(&self.dropped, Ordering::Relaxed)
    }
}

impl ResponseWriter {
    /// Writes queued rows until `cancel`, then what is still queued within `SHUTDOWN_FLUSH`.
    /// A row the database cannot take now is retried with backoff; one it refuses is dropped.
    pub async fn run(mut self, cancel: CancellationToken) {
        loop {
            let row = tokio::select! {
                biased;
                row = self.rx.recv() => row,
                () = cancel.cancelled() => None,
            };
            let Some(row) = row else { break };
            self.write(&row, &cancel, None).await;
        }
        self.rx.close();
        let give_up_at = Instant::now() + SHUTDOWN_FLUSH;
        while let Some(row) = self.rx.recv().await {
            self.write(&row, &cancel, Some(give_up_at)).await;
        }
    }

    async fn write(&self, row: &Arc<StoredResponse>, cancel: &CancellationToken, deadline: Option<Instant>) {
        let mut backoff = Duration::from_millis(100);
        let mut deadline = deadline;
        loop {
            // Shutdown while this row waits for the database: it gets the drain's bounded chance.
            if deadline.is_none() && cancel.is_cancelled() {
                deadline = Some(Instant::now() + SHUTDOWN_FLUSH);
            }
            if matches!(self.memory.get(&row.id), Some(Memo::Deleted)) {
                return;
            }
            match self.store.insert_response(row).await {
                Ok(()) => {
                    match self.memory.get(&row.id) {
                        // Deleted while the insert was in flight: the deletion may have reached
                        // the database first, so the row just written must go again.
                        Some(Memo::Deleted) => {
                            if let Err(e) = self.store.delete_response(&row.id).await {
                                tracing::error!(error = %e, "a response deleted while it was written is still stored");
                            }
                        }
                        // Written: the database answers for it from now on (and a deletion on
                        // another replica is no longer contradicted by this memory).
                        Some(Memo::Pending(_)) => self.memory.invalidate(&row.id),
                        None => {}
                    }
                    return;
                }
                Err(e) if !e.is_transient() => {
                    tracing::error!(error = %e, "response row refused by the database; dropped");
                    return;
                }
                Err(e) if backoff == Duration::from_millis(100) => {
                    tracing::warn!(error = %e, "response row not written yet; retrying with backoff");
                }
                Err(_) => {}
            }
            if deadline.is_some_and(|d| Instant::now() + backoff > d) {
                tracing::error!("response row lost: the database was still unreachable at shutdown");
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = cancel.cancelled(), if deadline.is_none() => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> StoredResponse {
        StoredResponse {
            id: id.into(),
            provider: "p".into(),
            caller: Some("key:a".into()),
            bridged: true,
            created_at: now_ms(),
            expires_at: Some(now_ms() + 60_000),
            body: Some("{}".into()),
        }
    }

    async fn sqlite() -> (HistoryStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = HistoryStore::connect(&format!("sqlite://{}/r.db", dir.path().display()))
            .await
            .unwrap();
        (store, dir)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_recorded_row_is_in_memory_at_once_and_in_the_database_once_written() {
        let (store, _dir) = sqlite().await;
        let (sink, writer) = response_queue(store.clone());
        sink.record(row("resp_a"));
        assert!(matches!(sink.remembered("resp_a"), Remembered::Found(_)));
        // A cancelled writer drains what is queued.
        let cancel = CancellationToken::new();
        cancel.cancel();
        writer.run(cancel).await;
        assert!(store.find_response("resp_a").await.unwrap().is_some());
        assert_eq!(sink.remembered("resp_a"), Remembered::Unknown, "forgotten once written");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_row_deleted_before_its_write_is_never_stored() {
        let (store, _dir) = sqlite().await;
        let (sink, writer) = response_queue(store.clone());
        sink.record(row("resp_b"));
        sink.forget("resp_b");
        let cancel = CancellationToken::new();
        cancel.cancel();
        writer.run(cancel).await;
        assert_eq!(sink.remembered("resp_b"), Remembered::Deleted);
        assert!(store.find_response("resp_b").await.unwrap().is_none());
    }

    #[test]
    fn an_expired_row_in_memory_counts_as_gone() {
        let (tx, _rx) = mpsc::channel(1);
        let sink = ResponseSink {
            tx,
            memory: Cache::new(10),
            dropped: Arc::new(AtomicU64::new(0)),
        };
        let mut old = row("resp_c");
        old.expires_at = Some(now_ms() - 1);
        sink.record(old);
        assert_eq!(sink.remembered("resp_c"), Remembered::Deleted);
    }
}
