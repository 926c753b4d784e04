//! Request history: one row per request with the right fields, on SQLite and on PostgreSQL; the
//! `/history` endpoints; rows kept while the database is unreachable; shutdown during a stream.

use std::time::Duration;

use serde_json::{Value, json};
use wiremock::MockServer;

use crate::helpers::db::fresh_postgres_database;
use crate::helpers::tcp_proxy::TcpProxy;
use crate::helpers::{
    Database, ProviderSpec, SseMock, SseReader, TEST_MODEL, TestApp, chat_body, completion, failure, fixtures, json,
    mount_chat, stream_body, upstream_url,
};

/// Runs a history test once per backend, so both stay equal.
macro_rules! on_both_databases {
    ($name:ident, $body:ident) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn on_sqlite() {
                $body(Database::Sqlite).await;
            }
            #[tokio::test]
            async fn on_postgres() {
                $body(Database::Postgres).await;
            }
        }
    };
}

const USAGE_CHUNK: &str = r#"{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}"#;

async fn one_provider(db: Database, mock: &MockServer) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(mock)))
        .database(db)
        .spawn()
        .await
}

on_both_databases!(success_leaves_one_row_with_usage_and_summary, success_leaves_one_row);
async fn success_leaves_one_row(db: Database) {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = one_provider(db, &alpha).await;

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;
    let request_id = crate::helpers::header(&response, "x-request-id");

    // Assert
    let rows = app.history_rows(1).await;
    let row = &rows[0];
    assert_eq!(row["status"], json!("success"));
    assert_eq!(row["http_status"], json!(200));
    assert_eq!(row["provider"], json!("alpha"));
    assert_eq!(row["model"], json!(TEST_MODEL));
    assert_eq!(row["upstream_model"], json!(TEST_MODEL));
    assert_eq!(row["endpoint"], json!("/v1/chat/completions"));
    assert_eq!(row["request_id"], json!(request_id));
    assert_eq!(row["stream"], json!(false));
    assert_eq!(
        (row["prompt_tokens"].clone(), row["completion_tokens"].clone()),
        (json!(1117), json!(46))
    );
    assert_eq!(row["total_tokens"], json!(1163));
    assert!(
        row["result_summary"]
            .as_str()
            .unwrap()
            .starts_with("The image shows a wooden boardwalk")
    );
    assert_eq!(row["result_summary"].as_str().unwrap().chars().count(), 200);
    assert_eq!(
        row["prompt"],
        Value::Null,
        "prompts are kept only with LOG_PROMPTS=true"
    );
    assert_eq!(row["attempts"][0]["outcome"], json!("success"));
    assert!(row["id"].as_str().unwrap().len() == 36 && row["timestamp"].as_str().unwrap().ends_with('Z'));
}

on_both_databases!(fallback_row_lists_both_attempts, fallback_row);
async fn fallback_row(db: Database) {
    // Arrange
    let (alpha, beta) = (MockServer::start().await, MockServer::start().await);
    mount_chat(&alpha, failure(503), 1).await;
    mount_chat(&beta, completion(), 1).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .provider(ProviderSpec::new("beta", upstream_url(&beta)))
        .database(db)
        .spawn()
        .await;

    // Act
    assert_eq!(app.post_chat(&chat_body(TEST_MODEL)).await.status(), 200);

    // Assert
    let row = &app.history_rows(1).await[0];
    assert_eq!(row["provider"], json!("beta"));
    let attempts: Vec<(Value, Value, Value)> = row["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["provider"].clone(), a["outcome"].clone(), a["status"].clone()))
        .collect();
    assert_eq!(
        attempts,
        [
            (json!("alpha"), json!("server_error"), json!(503)),
            (json!("beta"), json!("success"), Value::Null)
        ]
    );
}

on_both_databases!(errors_leave_rows_too, error_rows);
async fn error_rows(db: Database) {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, failure(500), 1).await;
    let app = one_provider(db, &alpha).await;

    // Act
    assert_eq!(app.post_chat(&chat_body(TEST_MODEL)).await.status(), 502);
    assert_eq!(app.post_chat(&chat_body("no-such-model")).await.status(), 404);
    assert_eq!(app.post_raw("/v1/chat/completions", "{not json").await.status(), 400);

    // Assert
    let rows = app.history_rows(3).await;
    let summary: Vec<(Value, Value)> = rows
        .iter()
        .map(|r| (r["status"].clone(), r["http_status"].clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (json!("error"), json!(400)),
            (json!("error"), json!(404)),
            (json!("error"), json!(502))
        ]
    );
    assert!(
        rows[2]["error_message"]
            .as_str()
            .unwrap()
            .contains("alpha (server_error) HTTP 500")
    );
    assert_eq!(rows[2]["provider"], json!("alpha"));
    assert_eq!(rows[1]["model"], json!("no-such-model"));
}

on_both_databases!(stream_row_counts_usage_the_client_never_sees, stream_row);
async fn stream_row(db: Database) {
    // Arrange
    let alpha = SseMock::start().await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", alpha.base_url()))
        .database(db)
        .spawn()
        .await;

    // Act
    let pending = tokio::spawn(app.post_chat(&stream_body(TEST_MODEL)));
    let upstream = alpha.next_connection().await;
    for payload in fixtures::chunk_payloads().iter().filter(|p| *p != "[DONE]") {
        upstream.send_event(payload);
    }
    upstream.send_event(USAGE_CHUNK);
    upstream.send_done();
    upstream.finish();
    let events = SseReader::new(pending.await.unwrap()).rest().await;

    // Assert
    assert!(
        !events.iter().any(|e| e.contains("\"usage\":{")),
        "the usage chunk is hidden: {events:?}"
    );
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let row = &app.history_rows(1).await[0];
    assert_eq!(row["stream"], json!(true));
    assert_eq!(row["status"], json!("success"));
    assert_eq!(row["total_tokens"], json!(12));
    assert_eq!(row["result_summary"], json!("Hello there!"));
    assert!(row["ttft_ms"].is_u64());
}

on_both_databases!(client_disconnect_leaves_a_cancelled_row, cancelled_row);
async fn cancelled_row(db: Database) {
    // Arrange
    let alpha = SseMock::start().await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", alpha.base_url()))
        .database(db)
        .spawn()
        .await;
    let pending = tokio::spawn(app.post_chat(&stream_body(TEST_MODEL)));
    let upstream = alpha.next_connection().await;
    upstream.send_event(&fixtures::chunk_payloads()[1]);
    let mut reader = SseReader::new(pending.await.unwrap());
    assert!(reader.next_data().await.is_some());

    // Act: the client goes away; actix notices when its next write fails, so keep producing.
    drop(reader);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !upstream.is_closed() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the upstream stayed open after the client left"
        );
        upstream.send_event(&fixtures::chunk_payloads()[2]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Assert
    let row = &app.history_rows(1).await[0];
    assert_eq!(row["status"], json!("cancelled"));
    assert!(
        row["result_summary"].as_str().unwrap().starts_with("Hello there"),
        "{row}"
    );
    assert_eq!(row["error_message"], json!("client disconnected"));
}

on_both_databases!(history_endpoint_filters_and_pages_newest_first, history_endpoint);
async fn history_endpoint(db: Database) {
    // Arrange: three successes, one failure
    let (alpha, beta) = (MockServer::start().await, MockServer::start().await);
    mount_chat(&alpha, completion(), 3).await;
    mount_chat(&beta, failure(500), 1).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .provider(ProviderSpec::new("beta", upstream_url(&beta)).models(&["other"]))
        .database(db)
        .spawn()
        .await;
    for _ in 0..3 {
        app.post_chat(&chat_body(TEST_MODEL)).await;
    }
    app.post_chat(&chat_body("other")).await;
    app.history_rows(4).await;

    // Act + Assert: seed 004's fields first, newest first, default page
    let text = app.get("/history").await.text().await.unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 4);
    let seed_fields = [
        "id",
        "timestamp",
        "task",
        "provider",
        "latency_ms",
        "status",
        "result_summary",
        "user_id",
        "error_message",
    ];
    let first_item = &text[..text.find('}').unwrap()];
    let positions: Vec<usize> = seed_fields
        .iter()
        .map(|f| first_item.find(&format!("\"{f}\":")).expect("field present"))
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "seed 004's fields come first, in order: {first_item}"
    );
    assert!(text.starts_with("[{\"id\":"));
    assert_eq!(all[0]["model"], json!("other"));

    let errors = json(app.get("/history?status=error").await).await;
    assert_eq!(errors.as_array().unwrap().len(), 1);
    let by_provider = json(app.get("/history?provider=alpha&model=gpt-test").await).await;
    assert_eq!(by_provider.as_array().unwrap().len(), 3);

    let page1 = json(app.get("/history?limit=2").await).await;
    let last_id = page1[1]["id"].as_str().unwrap();
    let page2 = json(app.get(&format!("/history?limit=2&before={last_id}")).await).await;
    let ids: Vec<&Value> = page1
        .as_array()
        .unwrap()
        .iter()
        .chain(page2.as_array().unwrap())
        .map(|r| &r["id"])
        .collect();
    let expected: Vec<&Value> = all.iter().map(|r| &r["id"]).collect();
    assert_eq!(ids, expected);

    let future = json(app.get("/history?since=2999-01-01T00:00:00Z").await).await;
    assert_eq!(future, json!([]));
    let bad = app.get("/history?since=yesterday").await;
    assert_eq!(bad.status(), 400);
    assert_eq!(json(bad).await["error"]["param"], json!("since"));
}

on_both_databases!(cleanup_deletes_error_rows_only, cleanup);
async fn cleanup(db: Database) {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings("auth: {admin_token: adm-secret, required: false}")
        .database(db)
        .spawn()
        .await;
    app.post_chat(&chat_body(TEST_MODEL)).await;
    app.post_chat(&chat_body("no-such-model")).await;
    app.history_rows(2).await;
    let cleanup = |query: &str| {
        app.client
            .post(app.url(&format!("/history/cleanup{query}")))
            .header("x-admin-token", "adm-secret")
            .send()
    };

    // Act
    let kept = json(cleanup("?older_than_minutes=60").await.unwrap()).await;
    let deleted = json(cleanup("").await.unwrap()).await;

    // Assert
    assert_eq!(kept, json!({"deleted": 0}));
    assert_eq!(deleted, json!({"deleted": 1}));
    let rows = app.history_rows(1).await;
    assert_eq!(rows[0]["status"], json!("success"));
}

#[tokio::test]
async fn requests_succeed_while_postgres_is_unreachable_and_rows_arrive_when_it_is_back() {
    // Arrange: the gateway reaches PostgreSQL only through a proxy this test owns.
    let direct = fresh_postgres_database().await;
    let database = direct.rsplit('/').next().unwrap().to_owned();
    let proxy = TcpProxy::start("127.0.0.1:5432").await;
    let through_proxy = format!("postgres://postgres@127.0.0.1:{}/{database}", proxy.port);
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 20).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings(&format!("database_url: {through_proxy}"))
        .spawn()
        .await;
    let reader = ai_gateway::store::HistoryStore::connect(&direct).await.unwrap();

    // Act: cut the database off, send traffic, then restore it.
    proxy.cut();
    for _ in 0..20 {
        assert_eq!(app.post_chat(&chat_body(TEST_MODEL)).await.status(), 200);
    }
    let during = json(app.get("/health").await).await;
    proxy.restore();

    // Assert: every request was answered, and every row arrives once the database is back.
    assert!(during["history"]["queue_depth"].as_u64().unwrap() + during["history"]["written"].as_u64().unwrap() <= 20);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while reader.count().await.unwrap() < 20 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(reader.count().await.unwrap(), 20);
    let health = json(app.get("/health").await).await;
    assert_eq!(health["history"]["dropped"], json!(0));
    assert_eq!(health["history"]["state"], json!("ok"));
}

#[tokio::test]
async fn full_queue_drops_rows_and_counts_them_without_failing_requests() {
    // Arrange: a one-row queue and a database that cannot be reached.
    let proxy = TcpProxy::start("127.0.0.1:5432").await;
    let direct = fresh_postgres_database().await;
    let database = direct.rsplit('/').next().unwrap().to_owned();
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 10).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings(&format!(
            "{{database_url: 'postgres://postgres@127.0.0.1:{}/{database}', history: {{queue_capacity: 1, batch_size: 1}}}}",
            proxy.port
        ))
        .spawn()
        .await;
    proxy.cut();

    // Act
    for _ in 0..10 {
        assert_eq!(app.post_chat(&chat_body(TEST_MODEL)).await.status(), 200);
    }

    // Assert: one row held by the writer, one in the queue, the rest dropped and counted.
    let health = json(app.get("/health").await).await;
    let h = &health["history"];
    assert_eq!(
        h["dropped"].as_u64().unwrap() + h["queue_depth"].as_u64().unwrap(),
        9,
        "{h}"
    );
    assert_eq!(h["state"], json!("retrying"));
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let dropped = h["dropped"].as_u64().unwrap();
    assert!(
        metrics.contains(&format!("gateway_history_rows_dropped_total {dropped}")),
        "{metrics}"
    );
}

#[tokio::test]
async fn shutdown_during_a_stream_lets_it_finish_and_flushes_its_row() {
    // Arrange
    let alpha = SseMock::start().await;
    let mut app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", alpha.base_url()))
        .spawn()
        .await;
    let pending = tokio::spawn(app.post_chat(&stream_body(TEST_MODEL)));
    let upstream = alpha.next_connection().await;
    upstream.send_event(&fixtures::chunk_payloads()[1]);
    let mut reader = SseReader::new(pending.await.unwrap());
    assert!(reader.next_data().await.is_some());

    // Act: stop as SIGTERM does while the stream is in flight, then let the stream end.
    let server = app.server.clone();
    let stopping = tokio::spawn(async move { server.stop(true).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        app.client.get(app.url("/livez")).send().await.is_err(),
        "no new connections once stopping"
    );
    upstream.send_event(&fixtures::chunk_payloads()[2]);
    upstream.send_done();
    upstream.finish();
    let rest = reader.rest().await;
    stopping.await.unwrap();
    app.stop().await;

    // Assert
    assert_eq!(rest.last().map(String::as_str), Some("[DONE]"));
    let rows = app.store.list(&Default::default()).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "success");
}

/// Replicas started together on a fresh database used to race to create the same tables ("type
/// ai_requests already exists"); migrations now take a PostgreSQL advisory lock.
#[tokio::test]
async fn replicas_starting_together_on_a_fresh_database_both_migrate() {
    let url = fresh_postgres_database().await;
    let connects = (0..4).map(|_| ai_gateway::store::HistoryStore::connect(&url));
    for result in futures_util::future::join_all(connects).await {
        assert!(result.is_ok(), "{:?}", result.err());
    }
}

on_both_databases!(
    a_client_traceparent_goes_upstream_untouched_and_into_the_row,
    client_trace
);
async fn client_trace(db: Database) {
    // Arrange: traces are off (no `telemetry.otlp`), as in every test app.
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 2).await;
    let app = one_provider(db, &alpha).await;
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    // Act
    let traced = app
        .client
        .post(app.url("/v1/chat/completions"))
        .header("traceparent", parent)
        .header("tracestate", "vendor=abc")
        .json(&chat_body(TEST_MODEL))
        .send()
        .await
        .unwrap();
    assert_eq!(traced.status(), 200);
    assert_eq!(app.post_chat(&chat_body(TEST_MODEL)).await.status(), 200);

    // Assert
    let sent = alpha.received_requests().await.unwrap();
    assert_eq!(sent[0].headers.get("traceparent").unwrap(), parent);
    assert_eq!(sent[0].headers.get("tracestate").unwrap(), "vendor=abc");
    assert!(sent[1].headers.get("traceparent").is_none(), "no trace, no header");
    let rows = app.history_rows(2).await;
    let trace_ids: Vec<&Value> = rows.iter().map(|r| &r["trace_id"]).collect();
    assert_eq!(trace_ids, [&Value::Null, &json!("4bf92f3577b34da6a3ce929d0e0e4736")]);
}
