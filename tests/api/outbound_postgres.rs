//! PostgreSQL down at start (security issue, item 10): the gateway starts and serves anyway, the
//! history writer says `retrying` in `/health`, `/readyz` does not depend on the database, and
//! when the database comes back it is migrated and the queued rows arrive.

use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::Value;
use wiremock::MockServer;

use crate::helpers::db::fresh_postgres_database;
use crate::helpers::tcp_proxy::TcpProxy;
use crate::helpers::{ProviderSpec, TEST_MODEL, TestApp, chat_body, completion, mount_chat, upstream_url};

const CLIENT_KEY: &str = "sk-outbound-postgres-client";

#[tokio::test]
async fn the_gateway_starts_and_serves_with_postgres_down_and_writes_when_it_returns() {
    // Arrange: a fresh, unmigrated database reachable only through a proxy that refuses.
    let direct = fresh_postgres_database().await;
    let proxy = TcpProxy::start("127.0.0.1:5432").await;
    proxy.cut();
    let through_proxy = direct.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port));
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 2).await;

    // Act: start and serve while the database is unreachable.
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings(&format!("{{database_url: '{through_proxy}'}}"))
        // A static key: without one, a replica that cannot read the key table refuses callers
        // (it cannot tell whether a virtual key was ever made), which is the safe default.
        .env("API_KEYS", CLIENT_KEY)
        .spawn()
        .await;
    let chat = || {
        app.client
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(CLIENT_KEY)
            .json(&chat_body(TEST_MODEL))
            .send()
    };
    let first = chat().await.unwrap().status().as_u16();
    let second = chat().await.unwrap().status().as_u16();
    let ready = app.get("/readyz").await.status();
    let health: Value = app.health().await;

    // Assert
    assert_eq!((first, second), (200, 200));
    assert_eq!(ready, 200, "/readyz does not depend on the database");
    assert_eq!(health["history"]["state"], "retrying", "{health}");

    // Act: the database comes back.
    proxy.restore();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let rows = loop {
        let rows = rows_in(&direct).await;
        if rows >= 2 || tokio::time::Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Assert: migrated, both rows written, the writer healthy again (the database watch pings once
    // a second, so `/health` may say `retrying` for up to a second after the rows landed).
    assert_eq!(rows, 2);
    let mut health: Value = app.health().await;
    while health["history"]["state"] != "ok" && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        health = app.health().await;
    }
    assert_eq!(health["history"]["state"], "ok", "{health}");
}

/// Rows in `ai_requests`, read straight from the server (0 while the table does not exist).
async fn rows_in(url: &str) -> i64 {
    use diesel::sql_types::BigInt;
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = AsyncPgConnection::establish(url).await.expect("connect directly");
    diesel::sql_query("SELECT count(*) AS n FROM ai_requests")
        .get_result::<Count>(&mut conn)
        .await
        .map(|c| c.n)
        .unwrap_or(0)
}
