//! Stored responses: `store: true` keeps a bridged response (for `responses_bridge.store_ttl_hours`,
//! bound to its caller), `previous_response_id` rebuilds the conversation from it, and
//! `GET`/`DELETE /v1/responses/{id}`, `POST .../cancel` and `GET .../input_items` answer from the
//! store or reach the provider that made a native response.

use std::time::Duration;

use ai_gateway::store::{HistoryStore, StoredResponse, now_ms};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{
    Database, ProviderSpec, SseMock, TEST_MODEL, TestApp, assert_openai_error, completion, fixtures, json, mount_chat,
    received, upstream_url,
};

const ADMIN: &str = "admin-token";

/// Runs a test once per backend, so both stay equal.
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

/// A gateway with keys `sk-a` and `sk-b`, the admin token, and one OpenAI-kind provider.
async fn keyed_app(db: Database, mock: &MockServer, settings: &str) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(mock)))
        .env("API_KEYS", "sk-a,sk-b")
        .env("INTERNAL_API_TOKEN", ADMIN)
        .database(db)
        .settings(settings)
        .spawn()
        .await
}

/// `method path` as the holder of `key` (a client key, or the admin token with `ADMIN`).
async fn call(app: &TestApp, verb: &str, path: &str, key: &str) -> reqwest::Response {
    let url = app.url(path);
    let request = match verb {
        "GET" => app.client.get(url),
        "DELETE" => app.client.delete(url),
        _ => app.client.post(url),
    };
    let request = if key == ADMIN {
        request.header("x-admin-token", ADMIN)
    } else {
        request.bearer_auth(key)
    };
    request.send().await.expect("request sent")
}

async fn create(app: &TestApp, key: &str, body: &Value) -> Value {
    let response = app
        .client
        .post(app.url("/v1/responses"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("POST /v1/responses");
    assert_eq!(response.status(), 200);
    json(response).await
}

fn row(id: &str, bridged: bool, caller: Option<&str>, expires_at: Option<i64>) -> StoredResponse {
    StoredResponse {
        id: id.into(),
        provider: "alpha".into(),
        caller: caller.map(str::to_owned),
        bridged,
        created_at: now_ms(),
        expires_at,
        body: bridged.then(|| r#"{"input":[],"response":{"id":"x"}}"#.to_owned()),
    }
}

async fn store_keeps_finds_expires_and_deletes_responses(db: Database) {
    // Arrange
    let mock = MockServer::start().await;
    let app = keyed_app(db, &mock, "{}").await;
    let store: &HistoryStore = &app.store;
    // The writer's first retention pass runs at start; let it pass before rows exist.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let now = now_ms();

    // Act
    store
        .insert_response(&row("resp_live", true, Some("key:a"), Some(now + 60_000)))
        .await
        .unwrap();
    store
        .insert_response(&row("resp_old", true, Some("key:a"), Some(now - 1)))
        .await
        .unwrap();
    store
        .insert_response(&row("resp_native", false, None, None))
        .await
        .unwrap();

    // Assert
    let live = store.find_response("resp_live").await.unwrap().expect("stored");
    assert_eq!(live.caller.as_deref(), Some("key:a"));
    assert!(live.bridged);
    assert!(live.body.is_some());
    assert!(store.find_response("resp_old").await.unwrap().is_none(), "expired");
    let native = store.find_response("resp_native").await.unwrap().expect("stored");
    assert!(!native.bridged && native.body.is_none());
    assert_eq!(store.purge_expired_responses().await.unwrap(), 1);
    assert!(store.delete_response("resp_live").await.unwrap());
    assert!(!store.delete_response("resp_live").await.unwrap());
    assert!(store.find_response("resp_live").await.unwrap().is_none());
}
on_both_databases!(the_store, store_keeps_finds_expires_and_deletes_responses);

async fn a_stored_response_is_served_and_continued(db: Database) {
    // Arrange
    let mock = MockServer::start().await;
    mount_chat(&mock, completion(), 2).await;
    let app = keyed_app(db, &mock, "{}").await;
    let first = create(
        &app,
        "sk-a",
        &json!({"model": TEST_MODEL, "instructions": "Be brief.", "input": "Hi, I am Ann.", "store": true}),
    )
    .await;
    let id = first["id"].as_str().expect("id").to_owned();

    // Act
    let got = call(&app, "GET", &format!("/v1/responses/{id}"), "sk-a").await;
    let items = call(&app, "GET", &format!("/v1/responses/{id}/input_items"), "sk-a").await;
    let second = create(
        &app,
        "sk-a",
        &json!({"model": TEST_MODEL, "previous_response_id": id, "instructions": "Answer in French.", "input": "What is my name?", "store": true}),
    )
    .await;

    // Assert
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["x-ai-gateway-provider"], "alpha");
    let got = json(got).await;
    assert_eq!(got["id"], first["id"]);
    assert_eq!(got["output"], first["output"]);
    assert_eq!(got["store"], true);
    assert_eq!(items.status(), 200);
    let items = json(items).await;
    assert_eq!(items["object"], "list");
    assert_eq!(items["data"][0]["content"][0]["text"], "Hi, I am Ann.");
    assert_eq!(items["has_more"], false);
    let sent: Value = received(&mock).await[1].body_json().expect("chat body");
    let answer = fixtures::json(fixtures::CHAT_COMPLETION)["choices"][0]["message"]["content"].clone();
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "Hi, I am Ann."},
            {"role": "assistant", "content": answer},
            {"role": "user", "content": "What is my name?"},
        ]),
        "the stored conversation, then the new input; the first instructions are not carried over"
    );
    let second_id = second["id"].as_str().expect("id");
    let chained = json(call(&app, "GET", &format!("/v1/responses/{second_id}"), "sk-a").await).await;
    assert_eq!(chained["previous_response_id"], first["id"]);
    let items = json(
        call(
            &app,
            "GET",
            &format!("/v1/responses/{second_id}/input_items?order=asc"),
            "sk-a",
        )
        .await,
    )
    .await;
    assert_eq!(items["data"].as_array().expect("items").len(), 3);
}
on_both_databases!(store_and_chain, a_stored_response_is_served_and_continued);

#[tokio::test]
async fn only_the_caller_that_made_a_response_or_the_admin_token_reaches_it() {
    // Arrange
    let mock = MockServer::start().await;
    mount_chat(&mock, completion(), 1).await;
    let app = keyed_app(Database::Sqlite, &mock, "{}").await;
    let first = create(
        &app,
        "sk-a",
        &json!({"model": TEST_MODEL, "input": "Hi", "store": true}),
    )
    .await;
    let id = first["id"].as_str().expect("id");
    let at = format!("/v1/responses/{id}");

    // Act
    let other = call(&app, "GET", &at, "sk-b").await;
    let other_items = call(&app, "GET", &format!("{at}/input_items"), "sk-b").await;
    let other_delete = call(&app, "DELETE", &at, "sk-b").await;
    let other_chain = app
        .client
        .post(app.url("/v1/responses"))
        .bearer_auth("sk-b")
        .json(&json!({"model": TEST_MODEL, "input": "again", "previous_response_id": id}))
        .send()
        .await
        .expect("POST");
    let admin = call(&app, "GET", &at, ADMIN).await;
    let anonymous = app.get(&at).await;

    // Assert
    assert_eq!(other.status(), 404);
    let body = json(other).await;
    let error = assert_openai_error(&body);
    assert_eq!(error["message"], format!("Response with id '{id}' not found."));
    assert_eq!(other_items.status(), 404);
    assert_eq!(other_delete.status(), 404);
    assert_eq!(other_chain.status(), 400);
    let body = json(other_chain).await;
    let error = assert_openai_error(&body);
    assert_eq!(error["code"], "previous_response_not_found");
    assert_eq!(error["param"], "previous_response_id");
    assert_eq!(admin.status(), 200);
    assert_eq!(json(admin).await["id"], first["id"]);
    assert_eq!(anonymous.status(), 401);
    assert_eq!(received(&mock).await.len(), 1, "a refused chain reaches no upstream");
}

#[tokio::test]
async fn a_deleted_response_is_gone_and_cannot_be_continued() {
    // Arrange
    let mock = MockServer::start().await;
    mount_chat(&mock, completion(), 1).await;
    let app = keyed_app(Database::Sqlite, &mock, "{}").await;
    let first = create(
        &app,
        "sk-a",
        &json!({"model": TEST_MODEL, "input": "Hi", "store": true}),
    )
    .await;
    let id = first["id"].as_str().expect("id");
    let at = format!("/v1/responses/{id}");

    // Act
    let deleted = call(&app, "DELETE", &at, "sk-a").await;
    let cancel = call(&app, "POST", &format!("{at}/cancel"), "sk-a").await;
    let after = call(&app, "GET", &at, "sk-a").await;

    // Assert
    assert_eq!(deleted.status(), 200);
    assert_eq!(
        json(deleted).await,
        json!({"id": id, "object": "response", "deleted": true})
    );
    assert_eq!(cancel.status(), 404, "deleted first");
    assert_eq!(after.status(), 404);
    // The write that was still queued or in flight (if any) does not bring it back: once it has
    // settled (a busy machine may take a while), the row is gone and stays gone.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.store.find_response(id).await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the deleted response is still stored"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.store.find_response(id).await.unwrap().is_none());
}

#[tokio::test]
async fn a_bridged_response_cannot_be_cancelled() {
    // Arrange
    let mock = MockServer::start().await;
    mount_chat(&mock, completion(), 1).await;
    let app = keyed_app(Database::Sqlite, &mock, "{}").await;
    let first = create(
        &app,
        "sk-a",
        &json!({"model": TEST_MODEL, "input": "Hi", "store": true}),
    )
    .await;

    // Act
    let id = first["id"].as_str().expect("id");
    let cancel = call(&app, "POST", &format!("/v1/responses/{id}/cancel"), "sk-a").await;

    // Assert
    assert_eq!(cancel.status(), 400);
    let body = json(cancel).await;
    assert_openai_error(&body);
}

#[tokio::test]
async fn a_response_without_store_is_kept_only_when_store_by_default_says_so() {
    // Arrange
    let mock = MockServer::start().await;
    mount_chat(&mock, completion(), 3).await;
    let plain = keyed_app(Database::Sqlite, &mock, "{}").await;
    let by_default = keyed_app(Database::Sqlite, &mock, "responses_bridge: {store_by_default: true}").await;

    // Act
    let omitted = create(&plain, "sk-a", &json!({"model": TEST_MODEL, "input": "Hi"})).await;
    let refused = create(
        &by_default,
        "sk-a",
        &json!({"model": TEST_MODEL, "input": "Hi", "store": false}),
    )
    .await;
    let kept = create(&by_default, "sk-a", &json!({"model": TEST_MODEL, "input": "Hi"})).await;

    // Assert
    async fn status(app: &TestApp, r: &Value) -> reqwest::StatusCode {
        let path = format!("/v1/responses/{}", r["id"].as_str().expect("id"));
        call(app, "GET", &path, "sk-a").await.status()
    }
    assert_eq!(status(&plain, &omitted).await, 404);
    assert_eq!(status(&by_default, &refused).await, 404);
    assert_eq!(status(&by_default, &kept).await, 200);
}

#[tokio::test]
async fn a_ttl_of_zero_stores_nothing() {
    // Arrange
    let mock = MockServer::start().await;
    mount_chat(&mock, completion(), 1).await;
    let app = keyed_app(Database::Sqlite, &mock, "responses_bridge: {store_ttl_hours: 0}").await;

    // Act
    let r = create(
        &app,
        "sk-a",
        &json!({"model": TEST_MODEL, "input": "Hi", "store": true}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Assert
    let id = r["id"].as_str().expect("id");
    assert_eq!(
        call(&app, "GET", &format!("/v1/responses/{id}"), "sk-a").await.status(),
        404
    );
    assert!(app.store.find_response(id).await.unwrap().is_none());
}

#[tokio::test]
async fn a_stored_response_expires_after_its_ttl() {
    // Arrange: about 0.7 s.
    let mock = MockServer::start().await;
    mount_chat(&mock, completion(), 1).await;
    let app = keyed_app(Database::Sqlite, &mock, "responses_bridge: {store_ttl_hours: 0.0002}").await;
    let r = create(
        &app,
        "sk-a",
        &json!({"model": TEST_MODEL, "input": "Hi", "store": true}),
    )
    .await;
    let id = r["id"].as_str().expect("id");
    let at = format!("/v1/responses/{id}");
    assert_eq!(call(&app, "GET", &at, "sk-a").await.status(), 200);

    // Act
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // Assert
    assert_eq!(call(&app, "GET", &at, "sk-a").await.status(), 404);
    assert_eq!(app.store.purge_expired_responses().await.unwrap(), 1);
}

#[tokio::test]
async fn a_streamed_response_is_stored_when_it_completes() {
    // Arrange
    let alpha = SseMock::start().await;
    alpha.autoplay_raw(fixtures::chunk_events()).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", alpha.base_url()))
        .env("API_KEYS", "sk-a")
        .spawn()
        .await;

    // Act
    let response = app
        .client
        .post(app.url("/v1/responses"))
        .bearer_auth("sk-a")
        .json(&json!({"model": TEST_MODEL, "input": "Hi", "stream": true, "store": true}))
        .send()
        .await
        .expect("POST");
    let text = response.text().await.expect("events");

    // Assert
    let completed: Value = text
        .split("\n\n")
        .find(|e| e.contains("event: response.completed"))
        .and_then(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).expect("JSON"))
        .expect("a response.completed event");
    let id = completed["response"]["id"].as_str().expect("id");
    let got = call(&app, "GET", &format!("/v1/responses/{id}"), "sk-a").await;
    assert_eq!(got.status(), 200);
    assert_eq!(json(got).await["output"], completed["response"]["output"]);
}

/// A native response made by `alpha` for the anonymous caller (auth off), as the pipeline
/// remembers one.
fn native_row(id: &str) -> StoredResponse {
    StoredResponse {
        id: id.into(),
        provider: "alpha".into(),
        caller: Some("ip:127.0.0.1".into()),
        bridged: false,
        created_at: now_ms(),
        expires_at: Some(now_ms() + 60_000),
        body: None,
    }
}

#[tokio::test]
async fn operations_on_a_native_response_reach_the_provider_that_made_it() {
    // Arrange
    let alpha = MockServer::start().await;
    let beta = MockServer::start().await;
    let key = format!("Bearer {}", ProviderSpec::key_for("alpha"));
    let object = json!({"id": "resp_n", "object": "response", "status": "completed", "output": []});
    let list = json!({"object": "list", "data": [], "first_id": null, "last_id": null, "has_more": false});
    for (verb, at, answer) in [
        ("GET", "/v1/responses/resp_n", object.clone()),
        ("POST", "/v1/responses/resp_n/cancel", object.clone()),
        ("GET", "/v1/responses/resp_n/input_items", list.clone()),
        (
            "DELETE",
            "/v1/responses/resp_n",
            json!({"id": "resp_n", "object": "response", "deleted": true}),
        ),
    ] {
        Mock::given(method(verb))
            .and(path(at))
            .and(header("authorization", key.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(answer))
            .expect(1)
            .mount(&alpha)
            .await;
    }
    let app = TestApp::builder()
        .provider(ProviderSpec::new("beta", upstream_url(&beta)))
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .spawn()
        .await;
    app.state.responses.record(native_row("resp_n"));

    // Act
    let got = app.get("/v1/responses/resp_n").await;
    let items = app.get("/v1/responses/resp_n/input_items?limit=5&order=asc").await;
    let cancelled = app.post_raw("/v1/responses/resp_n/cancel", "").await;
    let deleted = app
        .client
        .delete(app.url("/v1/responses/resp_n"))
        .send()
        .await
        .expect("DELETE");
    let after = app.get("/v1/responses/resp_n").await;

    // Assert
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["x-ai-gateway-provider"], "alpha");
    assert_eq!(json(got).await, object);
    assert_eq!(json(items).await, list);
    assert_eq!(cancelled.status(), 200);
    assert_eq!(deleted.status(), 200);
    assert_eq!(json(deleted).await["deleted"], true);
    assert_eq!(after.status(), 404, "deleted at the provider, forgotten here");
    let sent = received(&alpha).await;
    let listing = sent
        .iter()
        .find(|r| r.url.path().ends_with("/input_items"))
        .expect("input_items sent");
    assert_eq!(listing.url.query(), Some("limit=5&order=asc"));
    assert!(
        received(&beta).await.is_empty(),
        "only the provider that made it is asked"
    );
}

#[tokio::test]
async fn an_operation_on_a_native_response_is_retried_through_the_one_walk() {
    // Arrange: the provider that keeps the response is briefly overloaded.
    let alpha = MockServer::start().await;
    let object = json!({"id": "resp_busy", "object": "response", "status": "completed", "output": []});
    Mock::given(method("GET"))
        .and(path("/v1/responses/resp_busy"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"error": {"message": "overloaded"}})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&alpha)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/responses/resp_busy"))
        .respond_with(ResponseTemplate::new(200).set_body_json(object.clone()))
        .mount(&alpha)
        .await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings("routing: {max_retries: 1, backoff_base_ms: 1, backoff_max_ms: 5}")
        .spawn()
        .await;
    app.state.responses.record(native_row("resp_busy"));

    // Act
    let got = app.get("/v1/responses/resp_busy").await;

    // Assert
    assert_eq!(got.status(), 200);
    assert_eq!(
        got.headers()["x-ai-gateway-attempts"],
        "2",
        "a 503 is retried like any upstream call"
    );
    assert_eq!(json(got).await, object);
    assert_eq!(received(&alpha).await.len(), 2);
}

#[tokio::test]
async fn a_provider_answer_for_a_native_response_is_relayed_as_sent() {
    // Arrange
    let alpha = MockServer::start().await;
    let missing = json!({"error": {"message": "Response with id 'resp_gone' not found.", "type": "invalid_request_error", "param": null, "code": null}});
    Mock::given(method("GET"))
        .and(path("/v1/responses/resp_gone"))
        .and(query_param("include[]", "message.output_text.logprobs"))
        .respond_with(ResponseTemplate::new(404).set_body_json(missing.clone()))
        .expect(1)
        .mount(&alpha)
        .await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .spawn()
        .await;
    app.state.responses.record(native_row("resp_gone"));

    // Act
    let got = app
        .get("/v1/responses/resp_gone?include[]=message.output_text.logprobs")
        .await;

    // Assert
    assert_eq!(got.status(), 404);
    assert_eq!(json(got).await, missing);
}

#[tokio::test]
async fn a_chain_on_a_native_response_is_sent_unchanged() {
    // Today every provider is bridged, so a native response only exists when the pipeline
    // remembers one; the request keeps its `previous_response_id` for that provider.
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 0).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .spawn()
        .await;
    app.state.responses.record(native_row("resp_n"));

    // Act
    let response = app
        .post_json(
            "/v1/responses",
            &json!({"model": TEST_MODEL, "input": "x", "previous_response_id": "resp_n"}),
        )
        .await;

    // Assert: the bridge still refuses it, naming the parameter (not "not found").
    assert_eq!(response.status(), 400);
    let body = json(response).await;
    assert_ne!(assert_openai_error(&body)["code"], "previous_response_not_found");
}
