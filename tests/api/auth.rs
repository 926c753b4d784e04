//! Client keys (static and virtual), JWT and the operator tokens, as the issue-4 table says.

use std::time::Duration;

use ai_gateway::auth::{digest, key_prefix};
use ai_gateway::store::{StoredKey, now_ms};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use wiremock::MockServer;

use crate::helpers::{
    ProviderSpec, TEST_MODEL, TestApp, assert_openai_error, chat_body, completion, json, mount_chat, received,
    upstream_url,
};

async fn app_with(settings: &str, mock: &MockServer) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(mock)))
        .settings(settings)
        .spawn()
        .await
}

async fn chat_with(app: &TestApp, header: (&str, &str)) -> reqwest::Response {
    app.client
        .post(app.url("/v1/chat/completions"))
        .header(header.0, header.1)
        .json(&chat_body(TEST_MODEL))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_header_form_is_accepted_for_every_configured_key() {
    // Arrange: keys from API_KEYS and API_KEY together.
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 4).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .env("API_KEYS", "sk-team-a,sk-team-b")
        .env("API_KEY", "sk-single")
        .spawn()
        .await;

    // Act + Assert
    for header in [
        ("authorization", "Bearer sk-team-a"),
        ("x-api-key", "sk-team-b"),
        ("X-API-Key", "sk-single"),
        ("authorization", "bearer sk-single"),
    ] {
        assert_eq!(chat_with(&app, header).await.status(), 200, "{header:?}");
    }
}

#[tokio::test]
async fn wrong_or_missing_key_gets_401_in_openai_shape_and_upstream_is_not_called() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 0).await;
    let app = app_with("auth: {api_keys: [sk-right]}", &alpha).await;

    // Act
    let wrong = chat_with(&app, ("authorization", "Bearer sk-wrong")).await;
    let missing = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    for (response, code) in [(wrong, "invalid_api_key"), (missing, "invalid_api_key")] {
        assert_eq!(response.status(), 401);
        let body = json(response).await;
        assert_eq!(assert_openai_error(&body)["code"], json!(code));
    }
}

#[tokio::test]
async fn health_and_metrics_stay_open_when_auth_is_on() {
    let alpha = MockServer::start().await;
    let app = app_with("auth: {api_keys: [sk-right]}", &alpha).await;
    for path in ["/livez", "/readyz", "/health", "/metrics"] {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }
    assert_eq!(app.get("/v1/models").await.status(), 401);
    assert_eq!(app.get("/history").await.status(), 401);
}

#[tokio::test]
async fn the_client_key_never_reaches_the_upstream_history_or_metrics() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = app_with("auth: {api_keys: [sk-very-secret-client-key]}", &alpha).await;

    // Act
    chat_with(&app, ("authorization", "Bearer sk-very-secret-client-key")).await;

    // Assert
    let upstream = &received(&alpha).await[0];
    assert!(!format!("{:?}", upstream.headers).contains("sk-very-secret"));
    let rows = app.history_rows(1).await;
    assert!(!rows[0].to_string().contains("sk-very-secret"));
    assert!(rows[0]["user_id"].as_str().unwrap().starts_with("key:"));
    assert!(
        !app.get("/metrics")
            .await
            .text()
            .await
            .unwrap()
            .contains("sk-very-secret")
    );
}

fn stored_key(key: &str, name: &str, expires_at: Option<i64>, models: Option<&str>) -> StoredKey {
    StoredKey {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_owned(),
        key_hash: digest(key).hex(),
        key_prefix: key_prefix(key),
        rpm: None,
        tpm: None,
        models: models.map(str::to_owned),
        created_at: now_ms(),
        expires_at,
        revoked_at: None,
        team: None,
        priority: None,
        user_name: None,
    }
}

async fn wait_for_status(app: &TestApp, key: &str, want: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let status = chat_with(app, ("authorization", &format!("Bearer {key}")))
            .await
            .status()
            .as_u16();
        if status == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "key {key} still answers {status}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn virtual_key_works_until_revoked_and_its_id_reaches_history() {
    // Arrange
    let alpha = MockServer::start().await;
    // Until the revocation is picked up (within the refresh period) calls still go through.
    wiremock::Mock::given(wiremock::matchers::path("/v1/chat/completions"))
        .respond_with(completion())
        .expect(1..)
        .mount(&alpha)
        .await;
    let app = app_with("auth: {api_keys: [sk-static], refresh_seconds: 0.1}", &alpha).await;
    let key = stored_key("sk-aigw-virtual-1", "team-a", None, None);
    app.store.insert_key(&key).await.unwrap();

    // Act + Assert: picked up by the refresh, then refused after revocation.
    wait_for_status(&app, "sk-aigw-virtual-1", 200).await;
    let rows = app.history_rows(1).await;
    assert_eq!(rows[0]["user_id"], json!(key.id));
    assert_eq!(app.store.revoke_key("team-a").await.unwrap(), 1);
    wait_for_status(&app, "sk-aigw-virtual-1", 401).await;
}

#[tokio::test]
async fn expired_virtual_key_is_refused() {
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 0).await;
    let app = app_with("auth: {api_keys: [sk-static], refresh_seconds: 0.1}", &alpha).await;
    app.store
        .insert_key(&stored_key("sk-aigw-old", "old", Some(now_ms() - 1000), None))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        chat_with(&app, ("authorization", "Bearer sk-aigw-old")).await.status(),
        401
    );
}

#[tokio::test]
async fn virtual_key_limited_to_some_models_gets_403_for_others() {
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 0).await;
    let app = app_with("auth: {api_keys: [sk-static], refresh_seconds: 0.1}", &alpha).await;
    app.store
        .insert_key(&stored_key("sk-aigw-narrow", "narrow", None, Some("other-model")))
        .await
        .unwrap();
    wait_for_status(&app, "sk-aigw-narrow", 403).await;
    let response = chat_with(&app, ("authorization", "Bearer sk-aigw-narrow")).await;
    assert_eq!(json(response).await["error"]["code"], json!("model_not_allowed"));
}

fn hs256(secret: &str, exp_offset: i64) -> String {
    let exp = now_ms() / 1000 + exp_offset;
    let claims = json!({"sub": "alice", "exp": exp});
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn jwt_hs256_valid_is_accepted_and_its_subject_is_the_caller() {
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = app_with("auth: {jwt: {hs256_secret: jwt-secret}}", &alpha).await;
    let response = chat_with(&app, ("authorization", &format!("Bearer {}", hs256("jwt-secret", 300)))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.history_rows(1).await[0]["user_id"], json!("jwt:alice"));
}

#[tokio::test]
async fn jwt_expired_or_badly_signed_gets_401() {
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 0).await;
    let app = app_with("auth: {jwt: {hs256_secret: jwt-secret}}", &alpha).await;
    for token in [hs256("jwt-secret", -300), hs256("another-secret", 300)] {
        let response = chat_with(&app, ("authorization", &format!("Bearer {token}"))).await;
        assert_eq!(response.status(), 401);
    }
}

#[tokio::test]
async fn jwt_rs256_is_checked_against_the_public_key_file() {
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let dir = env!("CARGO_MANIFEST_DIR");
    let app = app_with(
        &format!("auth: {{jwt: {{rs256_public_key_file: {dir}/tests/fixtures/jwt/rs256_public.pem}}}}"),
        &alpha,
    )
    .await;
    let private = std::fs::read(format!("{dir}/tests/fixtures/jwt/rs256_private.pem")).unwrap();
    let claims = json!({"sub": "bob", "exp": now_ms() / 1000 + 300});
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(&private).unwrap(),
    )
    .unwrap();
    assert_eq!(
        chat_with(&app, ("authorization", &format!("Bearer {token}")))
            .await
            .status(),
        200
    );
    let forged = hs256("guess", 300);
    assert_eq!(
        chat_with(&app, ("authorization", &format!("Bearer {forged}")))
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn admin_endpoints_answer_403_when_no_admin_token_is_configured() {
    let alpha = MockServer::start().await;
    let app = app_with("{}", &alpha).await;
    let response = app.post_raw("/history/cleanup", "").await;
    assert_eq!(response.status(), 403);
    let body = json(response).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("admin API disabled")
    );
}

#[tokio::test]
async fn admin_endpoints_need_the_admin_token_not_a_client_key() {
    let alpha = MockServer::start().await;
    let app = app_with("auth: {api_keys: [sk-client], admin_token: adm-token}", &alpha).await;
    let post = |h: Option<(&str, &str)>| {
        let mut r = app.client.post(app.url("/history/cleanup"));
        if let Some((n, v)) = h {
            r = r.header(n, v);
        }
        r.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 401);
    assert_eq!(post(Some(("x-admin-token", "wrong"))).await.unwrap().status(), 401);
    assert_eq!(
        post(Some(("authorization", "Bearer sk-client")))
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(post(Some(("x-admin-token", "adm-token"))).await.unwrap().status(), 200);
    assert_eq!(
        post(Some(("authorization", "Bearer adm-token")))
            .await
            .unwrap()
            .status(),
        200
    );
}
