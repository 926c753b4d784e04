//! `HistoryStore`: PostgreSQL or SQLite behind one code path (an enum and a macro that expands the
//! same diesel query once per backend), with embedded migrations run at start.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::query::{HistoryItem, HistoryQuery};
use super::row::{Charges, Row};
use super::schema::ai_requests;
use super::{HistoryRecord, now_ms};

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// The PostgreSQL advisory lock key that serializes migrations across replicas.
const MIGRATION_LOCK: i64 = 0x6169_6777_6d69_6772;
/// Longest a new database connection may take; an unreachable server is an error, not a hang.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a query waits for a pooled connection (all in use, or none can be made).
pub(super) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

type Sqlite = SyncConnectionWrapper<SqliteConnection>;

/// Why a history operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// `DATABASE_URL` names no supported database.
    #[error("DATABASE_URL: `{0}` must start with sqlite://, postgres:// or postgresql://")]
    UnsupportedUrl(String),
    /// Connecting or migrating failed.
    #[error("cannot open the history database: {0}")]
    Connect(String),
    /// No pooled connection could be had.
    #[error("history database unavailable: {0}")]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
    /// A query failed.
    #[error("history query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// No pooled connection within `ACQUIRE_TIMEOUT`.
    #[error("history database unavailable: no connection within {} s", ACQUIRE_TIMEOUT.as_secs())]
    AcquireTimeout,
}

impl HistoryError {
    /// Whether the database could not be reached (or was busy), so the same statement may succeed
    /// later; otherwise the database refused the statement itself, and retrying it is pointless.
    pub fn is_transient(&self) -> bool {
        use diesel::result::{DatabaseErrorKind as Kind, Error};
        match self {
            Self::Pool(_) | Self::Connect(_) | Self::AcquireTimeout => true,
            Self::UnsupportedUrl(_) => false,
            Self::Query(Error::DatabaseError(
                Kind::UnableToSendCommand
                | Kind::ClosedConnection
                | Kind::SerializationFailure
                | Kind::ReadOnlyTransaction,
                _,
            )) => true,
            // PostgreSQL's connection and shutdown errors and SQLite's busy, lock and I/O errors
            // carry no kind of their own: their messages tell them from a refused value.
            Self::Query(Error::DatabaseError(Kind::Unknown, info)) => {
                let message = info.message().to_ascii_lowercase();
                TRANSIENT_MESSAGES.iter().any(|m| message.contains(m))
            }
            Self::Query(_) => false,
        }
    }
}

/// Message fragments of database errors that say "not now" rather than "not this row".
const TRANSIENT_MESSAGES: &[&str] = &[
    // SQLite: SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_READONLY.
    "database is locked",
    "database table is locked",
    "disk i/o error",
    "database or disk is full",
    "unable to open database",
    "readonly database",
    // PostgreSQL: connection failures (class 08), shutdowns (57P01-57P03), too many connections.
    "connection",
    "terminating",
    "shutting down",
    "starting up",
    "in recovery",
];

/// The history database.
#[derive(Clone)]
pub enum HistoryStore {
    /// PostgreSQL through tokio-postgres.
    Pg(Pool<AsyncPgConnection>),
    /// SQLite, each query on a blocking thread.
    Sqlite(Pool<Sqlite>),
}

impl std::fmt::Debug for HistoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Pg(_) => "HistoryStore::Pg",
            Self::Sqlite(_) => "HistoryStore::Sqlite",
        })
    }
}

/// A pooled connection, waiting at most `ACQUIRE_TIMEOUT`.
macro_rules! acquire {
    ($pool:expr) => {
        tokio::time::timeout($crate::store::db::ACQUIRE_TIMEOUT, $pool.get())
            .await
            .map_err(|_| $crate::store::HistoryError::AcquireTimeout)??
    };
}
pub(super) use acquire;

/// Runs the same diesel query body on whichever backend the store holds.
macro_rules! with_conn {
    ($store:expr, |$conn:ident| $body:expr) => {
        match $store {
            HistoryStore::Pg(pool) => {
                let mut $conn = $crate::store::db::acquire!(pool);
                $body
            }
            HistoryStore::Sqlite(pool) => {
                let mut $conn = $crate::store::db::acquire!(pool);
                $body
            }
        }
    };
}
pub(super) use with_conn;

impl HistoryStore {
    /// Opens the database named by `url` and applies pending migrations; fails when it cannot.
    pub async fn connect(url: &str) -> Result<Self, HistoryError> {
        match Self::open(url).await? {
            (store, None) => Ok(store),
            (_, Some(e)) => Err(e),
        }
    }

    /// Opens the database named by `url`. A PostgreSQL server that cannot be reached now is not
    /// fatal: the store is returned with the error, its pool connects when the server is back,
    /// and the first connection it makes applies pending migrations before any query runs.
    pub async fn open(url: &str) -> Result<(Self, Option<HistoryError>), HistoryError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let migrations = Arc::new(PgMigrations {
                url: url.to_owned(),
                done: AtomicBool::new(false),
                running: tokio::sync::Mutex::new(()),
            });
            let pending = migrations.clone();
            let mut config = ManagerConfig::<AsyncPgConnection>::default();
            config.custom_setup = Box::new(move |url| {
                let (url, pending) = (url.to_owned(), pending.clone());
                Box::pin(async move {
                    let conn = establish_pg(&url).await?;
                    pending
                        .ensure()
                        .await
                        .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
                    Ok(conn)
                })
            });
            let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
            let pool = Pool::builder(manager).max_size(8).build().map_err(connect_err)?;
            let unavailable = migrations.ensure().await.err();
            return Ok((Self::Pg(pool), unavailable));
        }
        let Some(path) = url.strip_prefix("sqlite://") else {
            return Err(HistoryError::UnsupportedUrl(url.to_owned()));
        };
        let path = path.to_owned();
        migrate(open_sqlite(&path).await.map_err(connect_err)?, SQLITE_MIGRATIONS).await?;
        let mut config = ManagerConfig::<Sqlite>::default();
        config.custom_setup = Box::new(|url| Box::pin(open_sqlite_owned(url.to_owned())));
        let manager = AsyncDieselConnectionManager::<Sqlite>::new_with_config(path, config);
        let pool = Pool::builder(manager).max_size(4).build().map_err(connect_err)?;
        Ok((Self::Sqlite(pool), None))
    }

    /// Whether the database answers now (PostgreSQL: connected and migrated).
    pub async fn ping(&self) -> Result<(), HistoryError> {
        with_conn!(self, |conn| {
            conn.batch_execute("SELECT 1").await?;
            Ok(())
        })
    }

    /// Inserts `records` in one multi-row statement, with their ledger lines.
    pub async fn insert(&self, records: &[HistoryRecord]) -> Result<usize, HistoryError> {
        let mut charges = Charges::new();
        let rows: Vec<Row> = records
            .iter()
            .map(|r| Row::with_charges(&mut r.clone(), &mut charges))
            .collect();
        self.insert_rows(rows, &charges).await
    }

    /// Inserts rows whose ids are already fixed, and adds the ledger lines of the rows it inserted
    /// in the same transaction. Idempotent: a batch retried after the database committed it but
    /// the acknowledgement was lost (a cut connection) adds nothing twice, to either table.
    pub(super) async fn insert_rows(&self, rows: Vec<Row>, charges: &Charges) -> Result<usize, HistoryError> {
        let now = now_ms();
        match self {
            Self::Pg(pool) => {
                let mut conn = acquire!(pool);
                let written = conn
                    .transaction::<_, diesel::result::Error, _>(async |c| {
                        let ids: Vec<String> = diesel::insert_into(ai_requests::table)
                            .values(&rows)
                            .on_conflict_do_nothing()
                            .returning(ai_requests::id)
                            .get_results(c)
                            .await?;
                        let lines = super::ledger::lines(&ids, charges, now);
                        if !lines.is_empty() {
                            super::ledger::upsert!(&lines).execute(c).await?;
                        }
                        Ok(ids.len())
                    })
                    .await?;
                Ok(written)
            }
            // diesel's multi-row insert for SQLite exists only on its synchronous connection.
            Self::Sqlite(pool) => {
                let mut conn = acquire!(pool);
                let charges = charges.clone();
                let insert = move |c: &mut SqliteConnection| {
                    c.transaction::<_, diesel::result::Error, _>(|c| {
                        let ids: Vec<String> = diesel::RunQueryDsl::get_results(
                            diesel::insert_into(ai_requests::table)
                                .values(&rows)
                                .on_conflict_do_nothing()
                                .returning(ai_requests::id),
                            c,
                        )?;
                        // diesel has no multi-row upsert for SQLite; each line is a local call there.
                        for line in super::ledger::lines(&ids, &charges, now) {
                            diesel::RunQueryDsl::execute(super::ledger::upsert!(&line), c)?;
                        }
                        Ok(ids.len())
                    })
                };
                Ok(conn.spawn_blocking(insert).await?)
            }
        }
    }

    /// Rows matching `q`, newest first.
    pub async fn list(&self, q: &HistoryQuery) -> Result<Vec<HistoryItem>, HistoryError> {
        let rows: Vec<Row> = with_conn!(self, |conn| {
            let mut query = ai_requests::table.select(Row::as_select()).into_boxed();
            if let Some(before) = &q.before {
                query = query.filter(ai_requests::id.lt(before.clone()));
            }
            if let Some(status) = &q.status {
                query = query.filter(ai_requests::status.eq(status.clone()));
            }
            if let Some(provider) = &q.provider {
                query = query.filter(ai_requests::provider.eq(provider.clone()));
            }
            if let Some(model) = &q.model {
                query = query.filter(ai_requests::model.eq(model.clone()));
            }
            if let Some(session) = &q.session {
                query = query.filter(ai_requests::session_id.eq(session.clone()));
            }
            if let Some(since) = q.since_ms {
                query = query.filter(ai_requests::created_at.ge(since));
            }
            if let Some(callers) = &q.callers {
                query = query.filter(ai_requests::caller.eq_any(callers.clone()));
            }
            query
                .order(ai_requests::id.desc())
                .limit(q.limit())
                .load(&mut conn)
                .await?
        });
        Ok(rows.into_iter().map(HistoryItem::from).collect())
    }

    /// Deletes error rows (older than `older_than_minutes` when given); returns how many.
    pub async fn cleanup_errors(&self, older_than_minutes: Option<u64>) -> Result<usize, HistoryError> {
        let cutoff = older_than_minutes.map_or(i64::MAX, |m| now_ms() - minutes_ms(m));
        let n = with_conn!(self, |conn| {
            diesel::delete(
                ai_requests::table
                    .filter(ai_requests::status.eq("error"))
                    .filter(ai_requests::created_at.lt(cutoff)),
            )
            .execute(&mut conn)
            .await?
        });
        Ok(n)
    }

    /// Deletes every row older than `days`.
    pub async fn purge_older_than_days(&self, days: u64) -> Result<usize, HistoryError> {
        let cutoff = now_ms() - minutes_ms(days.saturating_mul(24 * 60));
        let n = with_conn!(self, |conn| {
            diesel::delete(ai_requests::table.filter(ai_requests::created_at.lt(cutoff)))
                .execute(&mut conn)
                .await?
        });
        Ok(n)
    }

    /// Rows in the table (tests and load checks).
    pub async fn count(&self) -> Result<i64, HistoryError> {
        let n = with_conn!(self, |conn| ai_requests::table.count().get_result(&mut conn).await?);
        Ok(n)
    }
}

fn minutes_ms(minutes: u64) -> i64 {
    i64::try_from(minutes.saturating_mul(60_000)).unwrap_or(i64::MAX)
}

/// PostgreSQL's migrations, applied once per process by the first connection that can.
struct PgMigrations {
    url: String,
    done: AtomicBool,
    running: tokio::sync::Mutex<()>,
}

impl PgMigrations {
    async fn ensure(&self) -> Result<(), HistoryError> {
        if AtomicBool::load(&self.done, Ordering::Acquire) {
            return Ok(());
        }
        let _one_at_a_time = self.running.lock().await;
        if AtomicBool::load(&self.done, Ordering::Acquire) {
            return Ok(());
        }
        let mut conn = establish_pg(&self.url).await.map_err(connect_err)?;
        // Replicas started together on a fresh database would race to create the same tables;
        // a session lock (released when the migration's connection closes) lets one migrate
        // while the others wait and then find nothing pending.
        let locked = diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).execute(&mut conn);
        tokio::time::timeout(ACQUIRE_TIMEOUT, locked)
            .await
            .map_err(|_| HistoryError::Connect("the migration lock was not granted in time".into()))?
            .map_err(connect_err)?;
        migrate(conn, PG_MIGRATIONS).await?;
        self.done.store(true, Ordering::Release);
        tracing::info!("history database migrated");
        Ok(())
    }
}

/// One PostgreSQL connection within `CONNECT_TIMEOUT`.
async fn establish_pg(url: &str) -> diesel::ConnectionResult<AsyncPgConnection> {
    tokio::time::timeout(CONNECT_TIMEOUT, AsyncPgConnection::establish(url))
        .await
        .map_err(|_| diesel::ConnectionError::BadConnection("connect timed out".into()))?
}

fn connect_err(e: impl std::fmt::Display) -> HistoryError {
    HistoryError::Connect(e.to_string())
}

async fn open_sqlite(path: &str) -> diesel::ConnectionResult<Sqlite> {
    let mut conn = Sqlite::establish(path).await?;
    // WAL lets the writer and /history readers work at once; busy_timeout rides out their overlap.
    conn.batch_execute("PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000; PRAGMA synchronous=NORMAL;")
        .await
        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

async fn open_sqlite_owned(path: String) -> diesel::ConnectionResult<Sqlite> {
    open_sqlite(&path).await
}

/// Runs migrations on a blocking thread: the harness blocks on the async connection, which needs
/// a thread that is not a runtime worker (and works on any runtime flavour that way).
async fn migrate<C>(conn: C, migrations: EmbeddedMigrations) -> Result<(), HistoryError>
where
    C: AsyncConnection + Send + 'static,
    AsyncMigrationHarness<C>: MigrationHarness<C::Backend>,
{
    tokio::task::spawn_blocking(move || {
        let mut harness = AsyncMigrationHarness::new(conn);
        harness
            .run_pending_migrations(migrations)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(connect_err)?
    .map_err(HistoryError::Connect)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> HistoryRecord {
        crate::store::test_record("r", "m")
    }

    fn db_error(kind: diesel::result::DatabaseErrorKind, message: &str) -> HistoryError {
        HistoryError::Query(diesel::result::Error::DatabaseError(kind, Box::new(message.to_owned())))
    }

    #[test]
    fn busy_and_connection_errors_are_retried_refused_values_are_not() {
        use diesel::result::DatabaseErrorKind as Kind;
        for message in [
            "database is locked",
            "disk I/O error",
            "terminating connection due to administrator command",
        ] {
            assert!(db_error(Kind::Unknown, message).is_transient(), "{message}");
        }
        assert!(db_error(Kind::UnableToSendCommand, "broken pipe").is_transient());
        assert!(db_error(Kind::ClosedConnection, "closed").is_transient());
        for message in [
            "invalid byte sequence for encoding \"UTF8\": 0x00",
            "value too long for type character varying(8)",
        ] {
            assert!(!db_error(Kind::Unknown, message).is_transient(), "{message}");
        }
        assert!(!db_error(Kind::CheckViolation, "check").is_transient());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_retried_batch_is_not_written_twice() {
        // The regression the bench's outage run found: a batch committed just before the
        // connection was cut got retried with new ids and landed twice.
        let dir = tempfile::tempdir().unwrap();
        let store = HistoryStore::connect(&format!("sqlite://{}/h.db", dir.path().display()))
            .await
            .unwrap();
        // Nor are its ledger lines added twice: they go with the rows that were inserted.
        let mut charged = record();
        charged.cost_usd = Some(0.25);
        charged.charges = vec![super::super::Charge {
            scope: "team",
            name: "research".into(),
            period: "daily",
            period_start: 0,
        }];
        let mut charges = Charges::new();
        let rows: Vec<Row> = (0..3)
            .map(|_| Row::with_charges(&mut charged.clone(), &mut charges))
            .collect();
        assert_eq!(store.insert_rows(rows.clone(), &charges).await.unwrap(), 3);
        assert_eq!(store.insert_rows(rows, &charges).await.unwrap(), 0);
        assert_eq!(store.count().await.unwrap(), 3);
        let ledger = store.ledger_since(0).await.unwrap();
        assert_eq!(ledger.len(), 1);
        assert_eq!((ledger[0].amount_usd, ledger[0].requests), (0.75, 3));
    }
}
