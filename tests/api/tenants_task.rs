//! Issue: `/ai/task` ignored the key's model allow-list, and skipped providers declared with
//! `models: ["*"]` and no `task_model` (then said "no provider is enabled" while one was).

use std::time::Duration;

use ai_gateway::auth::{digest, key_prefix};
use ai_gateway::store::{StoredKey, now_ms};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{ProviderSpec, TestApp, assert_openai_error, json, received, upstream_url};

fn answer() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "done"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    }))
}

async fn chat_mock() -> MockServer {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(answer())
        .mount(&mock)
        .await;
    mock
}

fn virtual_key(key: &str, models: &str) -> StoredKey {
    StoredKey {
        id: uuid::Uuid::now_v7().to_string(),
        name: format!("team-{key}"),
        key_hash: digest(key).hex(),
        key_prefix: key_prefix(key),
        rpm: None,
        tpm: None,
        models: Some(models.to_owned()),
        created_at: now_ms(),
        expires_at: None,
        revoked_at: None,
        team: None,
        priority: None,
        user_name: None,
    }
}

async fn task_as(app: &TestApp, key: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = app.client.post(app.url("/ai/task")).json(&body);
    if let Some(k) = key {
        request = request.bearer_auth(k);
    }
    request.send().await.unwrap()
}

/// Waits until the refresh task has installed `key`.
async fn until_accepted(app: &TestApp, key: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = app
            .client
            .get(app.url("/v1/models"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "key {key} never accepted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn chat_models(mock: &MockServer) -> Vec<Value> {
    received(mock)
        .await
        .iter()
        .filter(|r| r.url.path().ends_with("/chat/completions"))
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["model"].clone())
        .collect()
}

async fn two_providers(alpha: &MockServer, beta: &MockServer) -> TestApp {
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(alpha)).models(&["model-a"]))
        .provider(ProviderSpec::new("beta", upstream_url(beta)).models(&["model-b"]))
        .settings("auth: {api_keys: [sk-static], refresh_seconds: 0.1}")
        .spawn()
        .await;
    app.store
        .insert_key(&virtual_key("sk-only-b", "model-b"))
        .await
        .unwrap();
    app.store
        .insert_key(&virtual_key("sk-only-x", "model-x"))
        .await
        .unwrap();
    until_accepted(&app, "sk-only-b").await;
    until_accepted(&app, "sk-only-x").await;
    app
}

#[tokio::test]
async fn a_restricted_key_is_never_sent_to_a_model_it_may_not_use() {
    // Arrange: alpha comes first by priority, but the key may use only beta's model.
    let (alpha, beta) = (chat_mock().await, chat_mock().await);
    let app = two_providers(&alpha, &beta).await;

    // Act
    let response = task_as(&app, Some("sk-only-b"), json!({"task": "summarize", "text": "x"})).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await["provider_used"], json!("beta"));
    assert!(chat_models(&alpha).await.is_empty());
    assert_eq!(chat_models(&beta).await, [json!("model-b")]);
}

#[tokio::test]
async fn a_key_allowed_no_task_model_gets_403_in_openai_shape_and_no_provider_is_called() {
    let (alpha, beta) = (chat_mock().await, chat_mock().await);
    let app = two_providers(&alpha, &beta).await;

    let auto = task_as(&app, Some("sk-only-x"), json!({"task": "summarize", "text": "x"})).await;
    let named = task_as(
        &app,
        Some("sk-only-b"),
        json!({"task": "summarize", "text": "x", "provider": "alpha"}),
    )
    .await;

    assert_eq!(auto.status(), 403);
    let body = json(auto).await;
    assert_eq!(assert_openai_error(&body)["code"], json!("model_not_allowed"));
    assert_eq!(named.status(), 403);
    assert!(chat_models(&alpha).await.is_empty() && chat_models(&beta).await.is_empty());
    // An unrestricted key still reaches the first provider.
    let open = task_as(&app, Some("sk-static"), json!({"task": "summarize", "text": "x"})).await;
    assert_eq!(json(open).await["provider_used"], json!("alpha"));
}

#[tokio::test]
async fn an_any_model_provider_uses_the_first_model_the_upstream_lists() {
    // Arrange
    let any = chat_mock().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list",
            "data": [{"id": "upstream-first", "object": "model"}, {"id": "upstream-second", "object": "model"}]
        })))
        .mount(&any)
        .await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("anyone", upstream_url(&any)).models(&["*"]))
        .spawn()
        .await;

    // Act
    let response = task_as(&app, None, json!({"task": "summarize", "text": "x"})).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await["provider_used"], json!("anyone"));
    assert_eq!(chat_models(&any).await, [json!("upstream-first")]);
}

#[tokio::test]
async fn an_any_model_provider_without_a_listed_model_gets_503_naming_it_and_the_setting() {
    let any = chat_mock().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"object": "list", "data": []})))
        .mount(&any)
        .await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("anyone", upstream_url(&any)).models(&["*"]))
        .spawn()
        .await;

    let response = task_as(&app, None, json!({"task": "summarize", "text": "x"})).await;

    assert_eq!(response.status(), 503);
    let body = json(response).await;
    let message = assert_openai_error(&body)["message"].as_str().unwrap().to_owned();
    assert!(message.contains("`anyone`"), "{message}");
    assert!(
        message.contains("task_model") && message.contains("tasks.model"),
        "{message}"
    );
    assert!(!message.contains("no provider is enabled"), "{message}");
    assert!(chat_models(&any).await.is_empty());
}
