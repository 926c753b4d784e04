//! Per-user namespaces (seed 001): `/api/u/{user}/chat/completions` and `/api/u/{user}/models`
//! answer only the user named in the path (a JWT `sub` or a virtual key's name), and show only the
//! routes and providers `users:` grants them.

use std::time::Duration;

use ai_gateway::auth::{digest, key_prefix};
use ai_gateway::store::{StoredKey, now_ms};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use wiremock::MockServer;

use crate::helpers::{
    ProviderSpec, SseReader, TEST_MODEL, TestApp, assert_openai_error, chat_body, completion, header, json, mount_chat,
    stream_body, upstream_url,
};

const SECRET: &str = "namespace-secret";

const ROUTES: &str = "routes: [{name: r-alpha, targets: [alpha:gpt-test]}, {name: r-beta, targets: [beta:gpt-test]}]";

fn token(sub: &str) -> String {
    let claims = json!({"sub": sub, "exp": now_ms() / 1000 + 300});
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// `alpha` and `beta` both serve `gpt-test` (alpha first); `extra` adds settings (grants).
async fn app(alpha: &MockServer, beta: &MockServer, extra: &str) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(alpha)))
        .provider(ProviderSpec::new("beta", upstream_url(beta)))
        .settings(&format!(
            "auth: {{jwt: {{hs256_secret: {SECRET}}}, refresh_seconds: 0.1}}\n{ROUTES}\n{extra}"
        ))
        .spawn()
        .await
}

async fn chat_as(app: &TestApp, bearer: &str, user: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/u/{user}/chat/completions")))
        .bearer_auth(bearer)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn model_ids(app: &TestApp, bearer: &str, user: &str) -> Vec<String> {
    let response = app
        .client
        .get(app.url(&format!("/api/u/{user}/models")))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let list = json(response).await;
    let mut ids: Vec<String> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

const GRANTS: &str = "users: [{name: alice, routes: [r-alpha], providers: [beta]}]";

#[tokio::test]
async fn the_user_named_in_the_path_is_served_and_another_gets_403() {
    // Arrange
    let (alpha, beta) = (MockServer::start().await, MockServer::start().await);
    mount_chat(&alpha, completion(), 1).await;
    mount_chat(&beta, completion(), 0).await;
    let app = app(&alpha, &beta, GRANTS).await;

    // Act
    let own = chat_as(&app, &token("alice"), "alice", &chat_body("autoselect:r-alpha")).await;
    let other = chat_as(&app, &token("alice"), "bob", &chat_body("r-alpha")).await;

    // Assert
    assert_eq!(own.status(), 200);
    assert_eq!(header(&own, "x-ai-gateway-provider"), "alpha");
    assert_eq!(other.status(), 403);
    let body = json(other).await;
    assert_eq!(assert_openai_error(&body)["code"], json!("user_mismatch"));
    let models = app
        .client
        .get(app.url("/api/u/bob/models"))
        .bearer_auth(token("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 403);
}

#[tokio::test]
async fn grants_filter_the_models_and_refuse_what_is_not_granted() {
    // Arrange
    let (alpha, beta) = (MockServer::start().await, MockServer::start().await);
    mount_chat(&alpha, completion(), 0).await;
    mount_chat(&beta, completion(), 1).await;
    let app = app(&alpha, &beta, GRANTS).await;
    let alice = token("alice");

    // Act + Assert: alice sees her route and beta's model, not r-beta; bob has no grant at all.
    assert_eq!(model_ids(&app, &alice, "alice").await, ["gpt-test", "r-alpha"]);
    assert!(model_ids(&app, &token("bob"), "bob").await.is_empty());

    // A route not granted is refused, and no upstream is asked.
    let refused = chat_as(&app, &alice, "alice", &chat_body("rotation:r-beta")).await;
    assert_eq!(refused.status(), 403);
    let body = json(refused).await;
    let error = assert_openai_error(&body);
    assert_eq!(error["code"], json!("model_not_granted"));
    assert_eq!(error["param"], json!("model"));

    // A plain model goes only to granted providers: beta, although alpha comes first.
    let plain = chat_as(&app, &alice, "alice", &chat_body(TEST_MODEL)).await;
    assert_eq!(plain.status(), 200);
    assert_eq!(header(&plain, "x-ai-gateway-provider"), "beta");
}

#[tokio::test]
async fn without_grants_every_user_sees_everything() {
    let (alpha, beta) = (MockServer::start().await, MockServer::start().await);
    let app = app(&alpha, &beta, "").await;
    assert_eq!(
        model_ids(&app, &token("zoe"), "zoe").await,
        ["gpt-test", "r-alpha", "r-beta"]
    );
}

#[tokio::test]
async fn streaming_works_under_the_user_namespace() {
    // Arrange
    let (alpha, beta) = (MockServer::start().await, MockServer::start().await);
    let sse = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n";
    mount_chat(
        &alpha,
        wiremock::ResponseTemplate::new(200).set_body_raw(sse, "text/event-stream"),
        1,
    )
    .await;
    let app = app(&alpha, &beta, GRANTS).await;

    // Act
    let response = chat_as(&app, &token("alice"), "alice", &stream_body("r-alpha")).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    let mut reader = SseReader::new(response);
    let mut data = Vec::new();
    while let Some(event) = reader.next_data().await {
        data.push(event);
    }
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
    let rows = app.history_rows(1).await;
    assert_eq!(rows[0]["model"], json!("r-alpha"));
    assert_eq!(rows[0]["user_id"], json!("jwt:alice"));
}

#[tokio::test]
async fn a_virtual_key_is_its_own_user_by_name_and_a_static_key_is_nobody() {
    // Arrange
    let (alpha, beta) = (MockServer::start().await, MockServer::start().await);
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .provider(ProviderSpec::new("beta", upstream_url(&beta)))
        .settings(&format!(
            "auth: {{api_keys: [sk-static], refresh_seconds: 0.1}}\n{ROUTES}"
        ))
        .spawn()
        .await;
    let key = "sk-aigw-carol";
    app.store
        .insert_key(&StoredKey {
            id: uuid::Uuid::now_v7().to_string(),
            name: "carol".into(),
            key_hash: digest(key).hex(),
            key_prefix: key_prefix(key),
            rpm: None,
            tpm: None,
            models: Some("r-alpha".into()),
            created_at: now_ms(),
            expires_at: None,
            revoked_at: None,
            team: None,
            priority: None,
            user_name: None,
        })
        .await
        .unwrap();

    // Act: wait for the key refresh to pick the key up.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let status = loop {
        let status = app
            .client
            .get(app.url("/api/u/carol/models"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .status();
        if status != 401 || tokio::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Assert
    assert_eq!(status, 200);
    let static_key = app
        .client
        .get(app.url("/api/u/carol/models"))
        .bearer_auth("sk-static")
        .send()
        .await
        .unwrap();
    assert_eq!(static_key.status(), 403);
    // The key's allow-list names the route, so any strategy prefix of it is allowed too.
    mount_chat(&alpha, completion(), 1).await;
    let routed = chat_as(&app, key, "carol", &chat_body("rotation:r-alpha")).await;
    assert_eq!(routed.status(), 200);
    let other = chat_as(&app, key, "carol", &chat_body("r-beta")).await;
    assert_eq!(json(other).await["error"]["code"], json!("model_not_allowed"));
}
