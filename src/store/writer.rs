//! The write path: `HistorySink::record` never waits; a writer task batches rows, retries while the
//! database is down, and drains the queue on shutdown.
//!
//! The writer wakes once per batch, not once per record: it sleeps until the batch's
//! `flush_interval` is up or the sink tells it (`Notify`) that a whole batch is queued, then takes
//! the queued records at once. A parked task woken for every request cost the request path more
//! than the writing did (docs/src/benchmark.md).
//!
//! With `history.spool_path`, `record` first appends the row to the spool (`spool.rs`), the writer
//! confirms each spooled row once written, and at start it writes what the spool held first.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use serde::Serialize;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::row::{Charges, Row};
use super::spool::{Spool, Spooled};
use super::{Charge, HistoryError, HistoryRecord, HistoryStore};

/// Writer tuning (`history:` in the config).
#[derive(Debug, Clone)]
pub struct WriterSettings {
    /// Rows the queue holds before new ones are dropped.
    pub queue_capacity: usize,
    /// Rows per insert.
    pub batch_size: usize,
    /// Longest a row waits for its batch to fill.
    pub flush_interval: Duration,
    /// On shutdown, how long to keep trying to write what is queued.
    pub shutdown_flush: Duration,
    /// Delete rows older than this many days (0 = keep forever).
    pub retention_days: u64,
    /// `history.spool_path`: rows are appended here before they are queued (`None`: no spool).
    pub spool_path: Option<PathBuf>,
}

/// Counters shared by the sink and the writer, read by `/health`.
#[derive(Debug, Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
    rejected: AtomicU64,
    failing: AtomicBool,
    last_error: ArcSwapOption<String>,
}

/// The writer's state as `/health` reports it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WriterStatus {
    /// `ok`, or `retrying` while the database refuses writes.
    pub state: &'static str,
    /// Rows waiting in the queue.
    pub queue_depth: usize,
    /// Queue size.
    pub queue_capacity: usize,
    /// Rows written since start.
    pub written: u64,
    /// Rows lost: the queue was full (or closed), the database was still down at shutdown, or the
    /// database refused the row itself (`rejected`).
    pub dropped: u64,
    /// Rows the database refused as data (each logged with its request id); counted in `dropped` too.
    pub rejected: u64,
    /// The last database error, if any.
    pub last_error: Option<String>,
}

/// Hands records to the writer. Cloning is cheap; `record` never blocks.
#[derive(Debug, Clone)]
pub struct HistorySink {
    tx: mpsc::Sender<Queued>,
    spool: Option<Arc<Spool>>,
    counters: Arc<Counters>,
    capacity: usize,
    /// Rows per batch: once that many are queued the writer is told at once.
    batch_size: usize,
    /// Wakes the writer before its interval is up when a batch is full.
    batch_full: Arc<Notify>,
}

impl HistorySink {
    /// Queues a record; when the queue is full the record is dropped, counted and logged. Its text
    /// is made storable first (`HistoryRecord::make_storable`), so one odd request cannot make a
    /// batch fail.
    pub fn record(&self, mut record: HistoryRecord) {
        record.make_storable();
        let queued = match &self.spool {
            None => Queued::Record(record),
            Some(spool) => {
                // The row (and its id) is built here so the spooled line and the insert agree.
                let mut charges = Charges::new();
                let row = Row::with_charges(&mut record, &mut charges);
                let charges = charges.remove(&row.id);
                match spool.append(&row, charges.as_ref()) {
                    Some(file) => Queued::Spooled(Spooled { row, charges, file }),
                    None => Queued::Row(row, charges),
                }
            }
        };
        if let Err(e) = self.tx.try_send(queued) {
            let why = match e {
                mpsc::error::TrySendError::Full(lost) => {
                    if let (Some(spool), Queued::Spooled(s)) = (&self.spool, &lost) {
                        // Counted as dropped: its line must not hold the file for ever.
                        spool.confirm(s.file, 1);
                    }
                    "queue full"
                }
                // The writer has drained for shutdown: a spooled row stays in the file for the
                // next start.
                mpsc::error::TrySendError::Closed(_) => "writer stopped",
            };
            let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // Logging every drop under overload would add a second flood; powers of two suffice.
            if dropped.is_power_of_two() {
                tracing::warn!(dropped_total = dropped, reason = why, "history row dropped");
            }
            return;
        }
        if self.capacity - self.tx.capacity() >= self.batch_size {
            self.batch_full.notify_one();
        }
    }

    /// Whether rows are spooled (`history.spool_path`): only then is `open_stream` worth calling.
    pub fn spooling(&self) -> bool {
        self.spool.is_some()
    }

    /// A stream started: `record` is the row it leaves (marked interrupted) if the gateway stops
    /// before the stream's own row is recorded. Without a spool, nothing.
    pub fn open_stream(&self, mut record: HistoryRecord) {
        if let Some(spool) = &self.spool {
            record.make_storable();
            spool.open_stream(Row::from(&record));
        }
    }

    /// Start-up's word on the database before the writer has written: `Some(error)` when it
    /// could not be reached (the writer reports `retrying`), `None` once it answers.
    pub fn set_database_down(&self, error: Option<String>) {
        self.counters.failing.store(error.is_some(), Ordering::Relaxed);
        if let Some(e) = error {
            self.counters.last_error.store(Some(Arc::new(e)));
        }
    }

    /// The writer's state.
    pub fn status(&self) -> WriterStatus {
        let c = &self.counters;
        WriterStatus {
            state: if c.failing.load(Ordering::Relaxed) {
                "retrying"
            } else {
                "ok"
            },
            queue_depth: self.capacity - self.tx.capacity(),
            queue_capacity: self.capacity,
            written: c.written.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            last_error: c.last_error.load_full().map(|e| e.as_ref().clone()),
        }
    }
}

/// The running writer (and retention task); `shutdown` drains the queue and waits for both.
#[derive(Debug)]
pub struct WriterHandle {
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl WriterHandle {
    /// Stops accepting new work, writes what is queued (within `shutdown_flush`), and returns.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Starts the writer and the hourly purge (expired stored responses; with `retention_days > 0`,
/// history older than that too). With a spool, its files are opened (or created) here and what
/// they hold is written first; a spool that cannot be opened is an error.
pub fn spawn_writer(store: HistoryStore, settings: WriterSettings) -> std::io::Result<(HistorySink, WriterHandle)> {
    let (spool, replay) = match &settings.spool_path {
        Some(path) => {
            let (spool, replay) = Spool::open(path)?;
            (Some(Arc::new(spool)), replay)
        }
        None => (None, Vec::new()),
    };
    let capacity = settings.queue_capacity.max(1);
    let (tx, rx) = mpsc::channel(capacity);
    let counters = Arc::new(Counters::default());
    let cancel = CancellationToken::new();
    let batch_full = Arc::new(Notify::new());
    let mut tasks = vec![tokio::spawn(run(
        store.clone(),
        Queue {
            rx,
            batch_full: batch_full.clone(),
            spool: spool.clone(),
            replay,
        },
        settings.clone(),
        counters.clone(),
        cancel.clone(),
    ))];
    // Expired stored responses are purged whatever the history's retention.
    tasks.push(tokio::spawn(purge_loop(store, settings.retention_days, cancel.clone())));
    let sink = HistorySink {
        tx,
        spool,
        counters,
        capacity,
        batch_size: settings.batch_size.max(1),
        batch_full,
    };
    Ok((sink, WriterHandle { cancel, tasks }))
}

/// What the sink queues.
#[derive(Debug)]
enum Queued {
    /// No spool: the row is built by the writer.
    Record(HistoryRecord),
    /// Built and spooled.
    Spooled(Spooled),
    /// Built for a spool that could not take it.
    Row(Row, Option<(f64, Vec<Charge>)>),
}

/// The writer's end of the queue.
struct Queue {
    rx: mpsc::Receiver<Queued>,
    batch_full: Arc<Notify>,
    spool: Option<Arc<Spool>>,
    /// What the spool held at start.
    replay: Vec<Spooled>,
}

/// Rows being written, their ledger charges by row id, and how many rows of each spool file
/// they are.
#[derive(Default)]
struct Batch {
    rows: Vec<Row>,
    charges: Charges,
    spooled: [u64; 2],
}

impl Batch {
    fn push(&mut self, queued: Queued) {
        let (row, charges) = match queued {
            Queued::Record(mut r) => {
                self.rows.push(Row::with_charges(&mut r, &mut self.charges));
                return;
            }
            Queued::Spooled(s) => {
                self.spooled[s.file] += 1;
                (s.row, s.charges)
            }
            Queued::Row(row, charges) => (row, charges),
        };
        if let Some(c) = charges {
            self.charges.insert(row.id.clone(), c);
        }
        self.rows.push(row);
    }
}

async fn run(
    store: HistoryStore,
    queue: Queue,
    settings: WriterSettings,
    counters: Arc<Counters>,
    cancel: CancellationToken,
) {
    let Queue {
        mut rx,
        batch_full,
        spool,
        replay,
    } = queue;
    let spool = spool.as_deref();
    let batch_size = settings.batch_size.max(1);
    let mut batch = Batch::default();
    // What the spool held goes first; rows recorded meanwhile wait in the queue (and the spool).
    let mut replay = replay.into_iter();
    while !cancel.is_cancelled() {
        replay
            .by_ref()
            .take(batch_size)
            .for_each(|s| batch.push(Queued::Spooled(s)));
        if batch.rows.is_empty() {
            break;
        }
        flush(&store, &mut batch, spool, &counters, &cancel, None).await;
    }
    let mut records = Vec::with_capacity(batch_size);
    loop {
        // Woken by the first record of a batch (or shutdown)...
        let received = tokio::select! {
            biased;
            n = rx.recv_many(&mut records, batch_size) => n,
            () = cancel.cancelled() => 0,
        };
        if received == 0 {
            break;
        }
        if records.len() < batch_size {
            // ...then not again until the batch is due: the receiver is not polled meanwhile, so
            // senders do not wake this task per record.
            let deadline = tokio::time::Instant::now() + settings.flush_interval;
            tokio::select! {
                () = batch_full.notified() => {}
                () = tokio::time::sleep_until(deadline) => {}
                () = cancel.cancelled() => {}
            }
            while records.len() < batch_size {
                let Ok(r) = rx.try_recv() else { break };
                records.push(r);
            }
        }
        // Each row (and its id) is built once, so a retried batch is recognised.
        records.drain(..).for_each(|q| batch.push(q));
        flush(&store, &mut batch, spool, &counters, &cancel, None).await;
    }
    // Shutdown: whatever is queued gets one bounded chance to reach the database (the spool keeps
    // what does not, and what was not replayed yet).
    rx.close();
    let give_up_at = Some(tokio::time::Instant::now() + settings.shutdown_flush);
    while let Some(r) = rx.recv().await {
        batch.push(r);
        if batch.rows.len() >= batch_size {
            flush(&store, &mut batch, spool, &counters, &cancel, give_up_at).await;
        }
    }
    flush(&store, &mut batch, spool, &counters, &cancel, give_up_at).await;
}

/// Writes `batch` (see `write`); once every row of it is in the database (or refused by it), its
/// spooled rows are confirmed. Rows dropped at the shutdown deadline stay in the spool.
async fn flush(
    store: &HistoryStore,
    batch: &mut Batch,
    spool: Option<&Spool>,
    counters: &Counters,
    cancel: &CancellationToken,
    deadline: Option<tokio::time::Instant>,
) {
    let complete = write(store, &mut batch.rows, &mut batch.charges, counters, cancel, deadline).await;
    if batch.rows.is_empty() {
        let spooled = std::mem::take(&mut batch.spooled);
        if complete && let Some(spool) = spool {
            for (file, n) in spooled.into_iter().enumerate() {
                spool.confirm(file, n);
            }
        }
    }
}

/// Writes `batch`, retrying with backoff while the database cannot be reached. Without a deadline
/// it holds the batch until the database comes back (the queue absorbs new rows meanwhile); with
/// one, rows still unwritten at the deadline are counted as dropped (and `false` returned). A row the database refuses as
/// data is dropped alone (`insert_splitting`): retrying it would wedge every row behind it.
async fn write(
    store: &HistoryStore,
    batch: &mut Vec<Row>,
    charges: &mut Charges,
    counters: &Counters,
    cancel: &CancellationToken,
    deadline: Option<tokio::time::Instant>,
) -> bool {
    if batch.is_empty() {
        charges.clear();
        return true;
    }
    let mut backoff = Duration::from_millis(100);
    loop {
        match insert_splitting(store, batch, charges, counters).await {
            Ok(n) => {
                charges.clear();
                if counters.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(rows = n, "history database reachable again; rows written");
                }
                return true;
            }
            Err(e) => {
                if !counters.failing.swap(true, Ordering::Relaxed) {
                    tracing::error!(error = %e, rows = batch.len(), "history database unreachable; retrying with backoff");
                }
                counters.last_error.store(Some(Arc::new(e.to_string())));
            }
        }
        let Some(d) = deadline else {
            if cancel.is_cancelled() {
                // Keep the batch: the shutdown drain retries it within its own deadline.
                return false;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            continue;
        };
        if tokio::time::Instant::now() + backoff > d {
            counters.dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
            tracing::error!(
                rows = batch.len(),
                "history rows lost: database unreachable at shutdown"
            );
            batch.clear();
            return false;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One retention pass: expired stored responses and, with `days > 0`, request rows, the job → node map and the admin audit trail age out
/// together, so a job's mapping never outlives the history that names it.
async fn purge(store: &HistoryStore, days: u64) -> Result<usize, super::HistoryError> {
    let responses = store.purge_expired_responses().await?;
    if days == 0 {
        return Ok(responses);
    }
    let rows = store.purge_older_than_days(days).await?;
    let jobs = store.purge_jobs_older_than_days(days).await?;
    let audit = store.purge_audit_older_than_days(days).await?;
    Ok(responses + rows + jobs + audit)
}

/// Inserts `batch` and empties it, returning how many rows were written. When the database refuses
/// the data, the batch is halved until the refused rows stand alone; those are dropped, counted and
/// logged with their request ids, and every other row is written. A connection error stops at once
/// with the rows not yet written left in `batch`, for the caller to retry.
async fn insert_splitting(
    store: &HistoryStore,
    batch: &mut Vec<Row>,
    charges: &Charges,
    counters: &Counters,
) -> Result<usize, HistoryError> {
    let mut written = 0;
    // Chunks still to write, the next one last.
    let mut pending = vec![std::mem::take(batch)];
    while let Some(chunk) = pending.pop() {
        // The rows (and their ids) were built once, so a retry of the same rows is recognised.
        match store.insert_rows(chunk.clone(), charges).await {
            Ok(n) => {
                counters.written.fetch_add(n as u64, Ordering::Relaxed);
                written += n;
            }
            Err(e) if e.is_transient() => {
                batch.extend(chunk);
                batch.extend(pending.into_iter().rev().flatten());
                return Err(e);
            }
            Err(e) if chunk.len() == 1 => {
                counters.rejected.fetch_add(1, Ordering::Relaxed);
                counters.dropped.fetch_add(1, Ordering::Relaxed);
                counters.last_error.store(Some(Arc::new(e.to_string())));
                for row in &chunk {
                    tracing::error!(request_id = %row.request_id, error = %e, "history row refused by the database; dropped");
                }
            }
            Err(_) => {
                let mut first = chunk;
                let second = first.split_off(first.len() / 2);
                pending.push(second);
                pending.push(first);
            }
        }
    }
    Ok(written)
}

async fn purge_loop(store: HistoryStore, days: u64, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = tick.tick() => match purge(&store, days).await {
                Ok(n) if n > 0 => tracing::info!(rows = n, days, "history retention purge"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "history retention purge failed"),
            },
            () = cancel.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

    use super::*;
    use crate::store::test_record as record;

    /// A fresh database on the test PostgreSQL server (README.md › Test it), as the API tests use.
    async fn fresh_postgres() -> HistoryStore {
        let name = format!("gw_{}", uuid::Uuid::now_v7().simple());
        let mut admin = AsyncPgConnection::establish("postgres://postgres@127.0.0.1:5432/test")
            .await
            .expect("PostgreSQL must be running on 127.0.0.1:5432 with user postgres (trust) and database test");
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap();
        HistoryStore::connect(&format!("postgres://postgres@127.0.0.1:5432/{name}"))
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_row_the_database_refuses_is_dropped_alone_and_the_rest_of_its_batch_is_written() {
        // Arrange: a row built straight from a record, bypassing `make_storable`, so the NUL reaches
        // PostgreSQL, which refuses it in a text column.
        let store = fresh_postgres().await;
        let mut batch: Vec<Row> = ["a", "b", "c", "bad", "d", "e", "f"]
            .iter()
            .map(|id| Row::from(&record(id, if *id == "bad" { "x\0y" } else { "m" })))
            .collect();
        let counters = Counters::default();
        let cancel = CancellationToken::new();

        // Act: the old writer retried this batch for ever.
        tokio::time::timeout(
            Duration::from_secs(20),
            write(&store, &mut batch, &mut Charges::new(), &counters, &cancel, None),
        )
        .await
        .expect("a refused row must not wedge the writer");

        // Assert
        assert!(batch.is_empty());
        assert_eq!(store.count().await.unwrap(), 6);
        assert_eq!(counters.written.load(Ordering::Relaxed), 6);
        assert_eq!(counters.rejected.load(Ordering::Relaxed), 1);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 1);
        assert!(
            !counters.failing.load(Ordering::Relaxed),
            "a refused row is not an outage"
        );
        let ids: Vec<String> = store
            .list(&crate::store::HistoryQuery::default())
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.request_id)
            .collect();
        assert!(!ids.contains(&"bad".to_owned()) && ids.len() == 6, "{ids:?}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_unreachable_database_keeps_the_batch_for_a_retry() {
        // Nothing listens on port 1: a connection error, which must be retried, never dropped.
        let store = HistoryStore::Pg(
            diesel_async::pooled_connection::deadpool::Pool::builder(
                diesel_async::pooled_connection::AsyncDieselConnectionManager::<AsyncPgConnection>::new(
                    "postgres://postgres@127.0.0.1:1/none",
                ),
            )
            .build()
            .unwrap(),
        );
        let mut batch = vec![Row::from(&record("a", "m")), Row::from(&record("b", "m"))];
        let counters = Counters::default();
        let err = insert_splitting(&store, &mut batch, &Charges::new(), &counters)
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert_eq!(batch.len(), 2);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_record_with_nul_characters_reaches_postgres_through_the_sink() {
        let store = fresh_postgres().await;
        let (sink, handle) = spawn_writer(
            store.clone(),
            WriterSettings {
                queue_capacity: 16,
                batch_size: 8,
                flush_interval: Duration::from_millis(10),
                shutdown_flush: Duration::from_secs(5),
                retention_days: 0,
                spool_path: None,
            },
        )
        .unwrap();
        let mut bad = record("nul", "x\0y");
        bad.prompt = Some("p\0q".into());
        bad.error_message = Some("e\0".into());
        sink.record(bad);
        sink.record(record("ok", "m"));
        handle.shutdown().await;
        let items = store.list(&crate::store::HistoryQuery::default()).await.unwrap();
        assert_eq!(items.len(), 2);
        let nul = items.iter().find(|i| i.request_id == "nul").unwrap();
        assert_eq!(nul.model.as_deref(), Some("xy"));
        assert_eq!(nul.prompt.as_deref(), Some("pq"));
        assert_eq!(sink.status().rejected, 0);
    }
}
