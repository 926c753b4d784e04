//! The shared PostgreSQL server at 127.0.0.1:5432 (user `postgres`, trust auth): each test gets a
//! fresh database of its own. A missing server fails the test loudly; it is never skipped.

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

/// Where the test server lives.
pub const POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// `postgres://postgres@127.0.0.1:5432/<db>`.
pub fn postgres_url(database: &str) -> String {
    format!("postgres://postgres@127.0.0.1:5432/{database}")
}

/// Creates `gw_<uuid>` and returns its URL (the gateway migrates it on start).
pub async fn fresh_postgres_database() -> String {
    let name = format!("gw_{}", uuid::Uuid::now_v7().simple());
    let mut admin = AsyncPgConnection::establish(POSTGRES_ADMIN_URL)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL must be running on 127.0.0.1:5432 with user `postgres` (trust auth) and database `test` \
             (see README › Test it): {e}"
            )
        });
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("create test database");
    postgres_url(&name)
}
