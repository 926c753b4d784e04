//! Issue: `/history` showed every tenant's requests (answers, ids, prompts with `LOG_PROMPTS`) to
//! any client key. A client key or JWT sees its own rows; a user sees theirs under
//! `/api/u/{user}/history`; only the admin token sees everyone's; cleanup stays admin-only.

use std::time::Duration;

use ai_gateway::auth::{digest, key_prefix};
use ai_gateway::store::{StoredKey, now_ms};
use serde_json::{Value, json};
use wiremock::MockServer;

use crate::helpers::{ProviderSpec, TEST_MODEL, TestApp, completion, json, upstream_url};

/// Two static tenants, the admin token, prompts kept, and virtual keys picked up every 0.1 s.
async fn two_tenants(mock: &MockServer) -> TestApp {
    wiremock::Mock::given(wiremock::matchers::path("/v1/chat/completions"))
        .respond_with(completion())
        .mount(mock)
        .await;
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(mock)))
        .settings(
            "{auth: {api_keys: [sk-tenant-a, sk-tenant-b], admin_token: adm-token, refresh_seconds: 0.1}, logging: {log_prompts: true}}",
        )
        .spawn()
        .await
}

fn chat(prompt: &str) -> Value {
    json!({"model": TEST_MODEL, "messages": [{"role": "user", "content": prompt}]})
}

async fn post(app: &TestApp, path: &str, key: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn get(app: &TestApp, path: &str, header: (&str, &str)) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header(header.0, header.1)
        .send()
        .await
        .unwrap()
}

fn bearer(key: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {key}"))
}

async fn rows(app: &TestApp, path: &str, key: &str) -> Vec<Value> {
    let (name, value) = bearer(key);
    let response = get(app, path, (name, &value)).await;
    assert_eq!(response.status(), 200, "GET {path}");
    json(response).await.as_array().unwrap().clone()
}

fn virtual_key(key: &str, name: &str) -> StoredKey {
    StoredKey {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_owned(),
        key_hash: digest(key).hex(),
        key_prefix: key_prefix(key),
        rpm: None,
        tpm: None,
        models: None,
        created_at: now_ms(),
        expires_at: None,
        revoked_at: None,
        team: None,
        priority: None,
        user_name: None,
    }
}

/// Waits until the refresh task has installed `key`.
async fn until_accepted(app: &TestApp, key: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let (name, value) = bearer(key);
    while get(app, "/v1/models", (name, &value)).await.status() != 200 {
        assert!(tokio::time::Instant::now() < deadline, "key {key} never accepted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_client_key_sees_only_its_own_history_rows_and_prompts() {
    // Arrange
    let alpha = MockServer::start().await;
    let app = two_tenants(&alpha).await;
    assert_eq!(
        post(&app, "/v1/chat/completions", "sk-tenant-a", &chat("secret of tenant A"))
            .await
            .status(),
        200
    );
    assert_eq!(
        post(&app, "/v1/chat/completions", "sk-tenant-b", &chat("secret of tenant B"))
            .await
            .status(),
        200
    );
    app.history_rows(2).await;

    // Act
    let a = rows(&app, "/history", "sk-tenant-a").await;
    let b = rows(&app, "/history?limit=1000", "sk-tenant-b").await;
    let a_filtered = rows(
        &app,
        "/history?provider=alpha&model=gpt-test&status=success",
        "sk-tenant-a",
    )
    .await;

    // Assert
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(b.len(), 1, "{b:#?}");
    assert_ne!(a[0]["user_id"], b[0]["user_id"]);
    let a_text = Value::Array(a.clone()).to_string();
    assert!(a_text.contains("secret of tenant A") && !a_text.contains("secret of tenant B"));
    assert!(!Value::Array(b).to_string().contains("secret of tenant A"));
    assert_eq!(a_filtered, a, "filters only narrow a tenant's own rows");
}

#[tokio::test]
async fn the_admin_token_sees_every_tenants_rows() {
    let alpha = MockServer::start().await;
    let app = two_tenants(&alpha).await;
    post(&app, "/v1/chat/completions", "sk-tenant-a", &chat("a")).await;
    post(&app, "/v1/chat/completions", "sk-tenant-b", &chat("b")).await;
    app.history_rows(2).await;

    let by_header = json(get(&app, "/history", ("x-admin-token", "adm-token")).await).await;
    let by_bearer = rows(&app, "/history", "adm-token").await;

    assert_eq!(by_header.as_array().map(Vec::len), Some(2), "{by_header}");
    assert_eq!(by_bearer.len(), 2);
    assert_eq!(get(&app, "/history", ("x-admin-token", "wrong")).await.status(), 401);
    assert_eq!(get(&app, "/history", ("x-api-key", "sk-nobody")).await.status(), 401);
}

#[tokio::test]
async fn history_cleanup_needs_the_admin_token() {
    let alpha = MockServer::start().await;
    let app = two_tenants(&alpha).await;
    let refused = post(&app, "/history/cleanup", "sk-tenant-a", &json!({})).await;
    assert_eq!(refused.status(), 403);
    let allowed = app
        .client
        .post(app.url("/history/cleanup"))
        .header("x-admin-token", "adm-token")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
}

#[tokio::test]
async fn a_user_sees_their_rows_under_their_namespace_and_nobody_elses() {
    // Arrange: alice has two virtual keys (a rotation), bob one.
    let alpha = MockServer::start().await;
    let app = two_tenants(&alpha).await;
    for (key, name) in [("sk-alice-1", "alice"), ("sk-alice-2", "alice"), ("sk-bob", "bob")] {
        app.store.insert_key(&virtual_key(key, name)).await.unwrap();
        until_accepted(&app, key).await;
    }
    post(&app, "/api/u/alice/chat/completions", "sk-alice-1", &chat("alice one")).await;
    post(&app, "/v1/chat/completions", "sk-alice-2", &chat("alice two")).await;
    post(&app, "/v1/chat/completions", "sk-bob", &chat("bob")).await;
    post(&app, "/v1/chat/completions", "sk-tenant-a", &chat("tenant a")).await;
    app.history_rows(4).await;

    // Act
    let alice = rows(&app, "/api/u/alice/history", "sk-alice-2").await;
    let bob_plain = rows(&app, "/history", "sk-bob").await;
    let (name, value) = bearer("sk-bob");
    let bob_as_alice = get(&app, "/api/u/alice/history", (name, &value)).await;
    let (name, value) = bearer("sk-tenant-a");
    let static_as_alice = get(&app, "/api/u/alice/history", (name, &value)).await;

    // Assert
    let prompts: Vec<&str> = alice.iter().map(|r| r["prompt"].as_str().unwrap()).collect();
    assert_eq!(alice.len(), 2, "{prompts:?}");
    assert!(prompts.iter().all(|p| p.contains("alice")));
    assert_eq!(bob_plain.len(), 1);
    assert_eq!(bob_as_alice.status(), 403);
    assert_eq!(json(bob_as_alice).await["error"]["code"], json!("user_mismatch"));
    assert_eq!(static_as_alice.status(), 403);
}

#[tokio::test]
async fn with_auth_off_history_shows_every_row_as_before() {
    let alpha = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path("/v1/chat/completions"))
        .respond_with(completion())
        .mount(&alpha)
        .await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .spawn()
        .await;
    app.post_chat(&chat("one")).await;
    app.post_chat(&chat("two")).await;
    app.history_rows(2).await;
    let all = json(app.get("/history").await).await;
    assert_eq!(all.as_array().map(Vec::len), Some(2));
    let user = json(app.get("/api/u/anyone/history").await).await;
    assert_eq!(user.as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn hostile_history_parameters_get_400_and_never_widen_a_tenants_view() {
    // Arrange: PostgreSQL, which refuses NUL in text (it used to answer 503 "unavailable").
    let alpha = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path("/v1/chat/completions"))
        .respond_with(completion())
        .mount(&alpha)
        .await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings("auth: {api_keys: [sk-tenant-a, sk-tenant-b]}")
        .database(crate::helpers::Database::Postgres)
        .spawn()
        .await;
    post(&app, "/v1/chat/completions", "sk-tenant-a", &chat("a")).await;
    post(&app, "/v1/chat/completions", "sk-tenant-b", &chat("b")).await;
    app.history_rows(2).await;
    let (name, value) = bearer("sk-tenant-a");

    // Act + Assert
    for (query, param) in [
        ("model=x%00y", Some("model")),
        ("provider=%00", Some("provider")),
        ("before=%00", Some("before")),
        ("limit=1e9", None),
        ("limit=1000000000", Some("limit")),
        ("limit=-1", Some("limit")),
        ("since=%2B275760-09-13T00:00:00Z", Some("since")),
        ("since=99999999999999999999", Some("since")),
        ("caller=key:anything", None),
        ("user_id=x", None),
    ] {
        let response = get(&app, &format!("/history?{query}"), (name, &value)).await;
        assert_eq!(response.status(), 400, "{query}");
        let body = json(response).await;
        if let Some(p) = param {
            assert_eq!(body["error"]["param"], json!(p), "{query}: {body}");
        }
    }
    for query in [
        "model=%27%20OR%20%271%27%3D%271",
        "provider=alpha%27%3B%20DROP%20TABLE%20ai_requests%3B--",
        "before=-1",
        "since=0000-01-01T00:00:00Z",
    ] {
        let response = get(&app, &format!("/history?{query}"), (name, &value)).await;
        assert_eq!(response.status(), 200, "{query}");
        let rows = json(response).await;
        assert!(rows.as_array().unwrap().len() <= 1, "{query}: {rows}");
    }
    let own = json(get(&app, "/history?since=0000-01-01T00:00:00Z", (name, &value)).await).await;
    assert_eq!(own.as_array().map(Vec::len), Some(1));
    assert_eq!(app.store.count().await.unwrap(), 2, "the table is intact");
}

#[tokio::test]
async fn a_security_rule_opening_history_does_not_show_the_tenants_rows() {
    let alpha = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path("/v1/chat/completions"))
        .respond_with(completion())
        .mount(&alpha)
        .await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings(
            "{auth: {api_keys: [sk-tenant-a], admin_token: adm-token}, security: [{endpoint: /history, auth: none}]}",
        )
        .spawn()
        .await;
    post(&app, "/v1/chat/completions", "sk-tenant-a", &chat("a")).await;
    app.history_rows(1).await;

    let anonymous = app.get("/history").await;

    assert_eq!(anonymous.status(), 200);
    assert_eq!(json(anonymous).await, json!([]));
    // `auth: none` identifies nobody, a key holder included; the operator still sees every row.
    assert_eq!(rows(&app, "/history", "adm-token").await.len(), 1);
}
