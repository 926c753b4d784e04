//! Issue: one request wedged the PostgreSQL history writer for good. A `NUL` in a client string
//! made the batch insert fail, the writer retried that batch for ever and nothing was written
//! until a restart. Rows are made storable before they are queued, and a row the database still
//! refuses is dropped alone (proven in `history::writer`'s unit tests with a row that bypasses the
//! sanitising).

use std::time::Duration;

use ai_gateway::store::HistoryQuery;
use serde_json::{Value, json};
use wiremock::MockServer;

use crate::helpers::{Database, ProviderSpec, TEST_MODEL, TestApp, chat_body, completion, mount_chat, upstream_url};

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

/// Waits until the history holds `n` rows of `request_id`s the test knows (newest first).
async fn rows_for(app: &TestApp, ids: &[String]) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let rows: Vec<Value> = app
            .store
            .list(&HistoryQuery {
                limit: Some(1000),
                ..Default::default()
            })
            .await
            .expect("history readable")
            .into_iter()
            .map(|r| serde_json::to_value(r).unwrap())
            .filter(|r| ids.iter().any(|id| r["request_id"] == json!(id)))
            .collect();
        if rows.len() == ids.len() {
            return rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {} rows arrived; /health says {}",
            rows.len(),
            ids.len(),
            app.health().await["history"]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

on_both_databases!(
    a_nul_in_a_request_does_not_stop_later_rows_from_being_written,
    nul_then_normal
);
async fn nul_then_normal(db: Database) {
    // Arrange: prompts are kept, so the raw body reaches the row too.
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 3).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings("logging: {log_prompts: true}")
        .database(db)
        .spawn()
        .await;
    let send = |body: reqwest::Body, id: &str| {
        app.client
            .post(app.url("/v1/chat/completions"))
            .header("content-type", "application/json")
            .header("x-request-id", id)
            .body(body)
            .send()
    };

    // Act: a NUL in the model (JSON escape), a raw NUL byte in the body, then normal requests.
    let nul_model = serde_json::to_vec(&chat_body("x\u{0}y")).unwrap();
    let first = send(nul_model.into(), "nul-model").await.unwrap();
    assert!(first.status().is_client_error(), "{}", first.status());
    let mut raw = br#"{"model":"gpt-test","messages":[{"role":"user","content":"a"#.to_vec();
    raw.push(0);
    raw.extend_from_slice(br#"b"}]}"#);
    assert!(raw.contains(&0));
    assert_eq!(send(raw.into(), "nul-byte").await.unwrap().status(), 400);
    let mut ids = vec!["nul-model".to_owned(), "nul-byte".to_owned()];
    for i in 0..3 {
        let id = format!("normal-{i}");
        let body = serde_json::to_vec(&chat_body(TEST_MODEL)).unwrap();
        assert_eq!(send(body.into(), &id).await.unwrap().status(), 200);
        ids.push(id);
    }

    // Assert: every row arrives, the NUL ones without their NUL.
    let rows = rows_for(&app, &ids).await;
    let normal = rows.iter().filter(|r| r["status"] == json!("success")).count();
    assert_eq!(normal, 3);
    let nul_model = rows.iter().find(|r| r["request_id"] == json!("nul-model")).unwrap();
    assert_eq!(nul_model["model"], json!("xy"));
    let mut texts = rows
        .iter()
        .flat_map(|r| r.as_object().unwrap().values().filter_map(Value::as_str));
    assert!(texts.all(|t| !t.contains('\0')), "{rows:#?}");
    // The prompt keeps the JSON escape as text; only real NUL characters are removed.
    let nul_byte = rows.iter().find(|r| r["request_id"] == json!("nul-byte")).unwrap();
    assert!(nul_byte["prompt"].as_str().unwrap().contains("\"content\":\"ab\""));
    let health = app.health().await;
    assert_eq!(health["history"]["state"], json!("ok"));
    assert_eq!(health["history"]["rejected"], json!(0));
}

on_both_databases!(an_overlong_model_name_is_capped_and_stored, long_model);
async fn long_model(db: Database) {
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .database(db)
        .spawn()
        .await;
    let long = "m".repeat(100_000);
    // Validation refuses the name before anything copies it; the refusal still gets its row.
    let refused = app.post_chat(&chat_body(&long)).await;
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["param"], json!("model"));
    assert_eq!(app.post_chat(&chat_body(TEST_MODEL)).await.status(), 200);
    let rows = app.history_rows(2).await;
    let stored = rows
        .iter()
        .find(|r| r["model"] != json!(TEST_MODEL))
        .unwrap_or_else(|| panic!("{rows:#?}"));
    let model = stored["model"].as_str().unwrap_or_default();
    assert!(model.chars().count() <= ai_gateway::store::MAX_NAME_CHARS);
    assert!(stored["error_message"].as_str().map_or(0, |e| e.chars().count()) <= ai_gateway::store::MAX_TEXT_CHARS);
}
