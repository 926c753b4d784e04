//! The history database of a run: a fresh PostgreSQL database per run (`bench_<uuid>`), created
//! and dropped through the admin URL, and the reads the history check makes of `ai_requests`.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

/// A database made for this run.
#[derive(Clone, Debug)]
pub struct FreshDb {
    pub name: String,
    pub url: String,
    admin_url: String,
}

/// `admin_url` with its database name replaced by `name`.
pub fn with_database(admin_url: &str, name: &str) -> String {
    let base = admin_url.split('?').next().unwrap_or(admin_url);
    match base.rfind('/') {
        Some(i) if i > "postgres://".len() => format!("{}/{name}", &base[..i]),
        _ => format!("{base}/{name}"),
    }
}

/// The `host:port` of a PostgreSQL URL (port 5432 when none is given).
pub fn host_port(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() {
        return None;
    }
    Some(if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    })
}

impl FreshDb {
    /// Creates `bench_<uuid>` on the server of `admin_url`.
    pub async fn create(admin_url: &str) -> Result<Self, String> {
        let name = format!("bench_{}", uuid::Uuid::now_v7().simple());
        let mut admin = connect(admin_url).await?;
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
        Ok(Self {
            url: with_database(admin_url, &name),
            name,
            admin_url: admin_url.to_owned(),
        })
    }

    /// Drops it (after the gateway has stopped).
    pub async fn drop_db(&self) -> Result<(), String> {
        let mut admin = connect(&self.admin_url).await?;
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name))
            .await
            .map_err(|e| format!("DROP DATABASE {}: {e}", self.name))
    }
}

async fn connect(url: &str) -> Result<AsyncPgConnection, String> {
    AsyncPgConnection::establish(url).await.map_err(|e| {
        format!(
            "cannot reach PostgreSQL at {url}: {e}. The bench needs a server at 127.0.0.1:5432 with user `postgres` \
             (trust auth) and database `test`, or pass --postgres URL"
        )
    })
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Rows in `ai_requests` (0 while the table does not exist yet is an error, not a count).
pub async fn count(url: &str) -> Result<i64, String> {
    let mut conn = connect(url).await?;
    let rows: Vec<Count> = diesel::sql_query("SELECT count(*) AS n FROM ai_requests")
        .load(&mut conn)
        .await
        .map_err(|e| format!("count ai_requests: {e}"))?;
    Ok(rows.iter().map(|c| c.n).sum())
}

/// The columns the history check verifies.
#[derive(QueryableByName, Debug, Clone)]
pub struct HistoryRow {
    /// `x-request-id` of the request.
    #[diesel(sql_type = Text)]
    pub request_id: String,
    /// Model asked for.
    #[diesel(sql_type = Nullable<Text>)]
    pub model: Option<String>,
    /// Provider that answered.
    #[diesel(sql_type = Nullable<Text>)]
    pub provider: Option<String>,
    /// Streamed.
    #[diesel(sql_type = Bool)]
    pub stream: bool,
    /// `success`, `error`, `cancelled`.
    #[diesel(sql_type = Text)]
    pub status: String,
    /// HTTP status given to the client.
    #[diesel(sql_type = Integer)]
    pub http_status: i32,
    /// Token counts.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub prompt_tokens: Option<i64>,
    /// See `prompt_tokens`.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub completion_tokens: Option<i64>,
    /// See `prompt_tokens`.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub total_tokens: Option<i64>,
    /// Time to first token, streams.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub ttft_ms: Option<i64>,
    /// JSON array of attempts.
    #[diesel(sql_type = Text)]
    pub attempts: String,
}

/// Every row of `ai_requests`.
pub async fn rows(url: &str) -> Result<Vec<HistoryRow>, String> {
    let mut conn = connect(url).await?;
    diesel::sql_query(
        "SELECT request_id, model, provider, stream, status, http_status, prompt_tokens, completion_tokens, \
         total_tokens, ttft_ms, attempts FROM ai_requests",
    )
    .load(&mut conn)
    .await
    .map_err(|e| format!("read ai_requests: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fresh_database_replaces_the_admin_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "bench_1"),
            "postgres://postgres@127.0.0.1:5432/bench_1"
        );
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "b"),
            "postgres://postgres@127.0.0.1:5432/b"
        );
        assert_eq!(with_database("postgres://h", "b"), "postgres://h/b");
    }

    #[test]
    fn host_and_port_come_from_the_authority() {
        assert_eq!(
            host_port("postgres://postgres@127.0.0.1:5432/test").as_deref(),
            Some("127.0.0.1:5432")
        );
        assert_eq!(host_port("postgres://db/x?sslmode=disable").as_deref(), Some("db:5432"));
        assert_eq!(host_port("nonsense"), None);
    }
}
