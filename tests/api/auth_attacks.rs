//! The auth surface the issue does not list, probed as an attacker: header variants, duplicate and
//! empty credentials, other methods, the user namespace with encoded names, open routes.

use ai_gateway::auth::{digest, key_prefix};
use ai_gateway::store::{StoredKey, now_ms};
use reqwest::Method;
use wiremock::MockServer;
use wiremock::matchers::path;

use crate::helpers::{ProviderSpec, TEST_MODEL, TestApp, chat_body, completion, upstream_url};

const KEY: &str = "sk-static-attack-0123456789";
const ADMIN: &str = "admin-attack-token-0123456789abcdef0123";

async fn app() -> TestApp {
    let alpha = MockServer::start().await;
    wiremock::Mock::given(path("/v1/chat/completions"))
        .respond_with(completion())
        .mount(&alpha)
        .await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings(&format!(
            "auth: {{api_keys: ['{KEY}'], admin_token: {ADMIN}, refresh_seconds: 0.1}}\nobservability: {{token: obs-token-0123456789abcdef0123456789}}"
        ))
        .spawn()
        .await;
    std::mem::forget(alpha);
    app
}

async fn chat_with(app: &TestApp, headers: &[(&str, &str)]) -> u16 {
    let mut request = app
        .client
        .post(app.url("/v1/chat/completions"))
        .json(&chat_body(TEST_MODEL));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn header_variants_never_authenticate_a_wrong_or_empty_credential() {
    let app = app().await;
    let good = format!("Bearer {KEY}");
    assert_eq!(chat_with(&app, &[("authorization", &good)]).await, 200);
    for headers in [
        vec![("authorization", "Bearer")],
        vec![("authorization", "Bearer ")],
        vec![("authorization", "Bearer  ")],
        vec![("authorization", KEY)],
        vec![("authorization", &format!("Basic {KEY}"))],
        vec![("authorization", &format!("Bearer\t{KEY}"))],
        vec![("authorization", &format!("Bearer {KEY}x"))],
        vec![("authorization", &format!("Bearer {}", &KEY[..KEY.len() - 1]))],
        vec![("authorization", &format!("Bearer {}", KEY.to_uppercase()))],
        vec![("authorization", &format!("Bearer {KEY} {KEY}"))],
        vec![("x-api-key", "")],
        vec![("x-admin-token", ADMIN)],
        vec![("authorization", &format!("Bearer {ADMIN}"))],
        // A wrong bearer is not rescued by a right x-api-key: one credential is judged, not any.
        vec![("authorization", "Bearer wrong"), ("x-api-key", KEY)],
    ] {
        assert_eq!(chat_with(&app, &headers).await, 401, "{headers:?}");
    }
}

#[tokio::test]
async fn a_duplicate_authorization_header_cannot_smuggle_a_second_credential() {
    let app = app().await;
    let response = app
        .client
        .post(app.url("/v1/chat/completions"))
        .header("authorization", "Bearer wrong")
        .header("authorization", format!("Bearer {KEY}"))
        .json(&chat_body(TEST_MODEL))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn other_methods_on_protected_routes_reveal_nothing_without_credentials() {
    let app = app().await;
    for p in [
        "/history",
        "/v1/models",
        "/api/u/alice/models",
        "/api/v1/keys",
        "/metrics",
        "/health",
        "/nodes",
    ] {
        for m in [
            Method::GET,
            Method::HEAD,
            Method::OPTIONS,
            Method::POST,
            Method::PUT,
            Method::DELETE,
        ] {
            let response = app.client.request(m.clone(), app.url(p)).send().await.unwrap();
            let status = response.status().as_u16();
            assert!(
                !(200..300).contains(&status),
                "{m} {p} answered {status} without credentials"
            );
        }
    }
}

#[tokio::test]
async fn the_user_namespace_matches_the_decoded_name_only() {
    let app = app().await;
    let key = "sk-aigw-alice-attack";
    app.store
        .insert_key(&StoredKey {
            id: uuid::Uuid::now_v7().to_string(),
            name: "alice".into(),
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
        })
        .await
        .unwrap();
    let get = |p: &'static str| app.client.get(app.url(p)).bearer_auth(key).send();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while get("/api/u/alice/models").await.unwrap().status() != 200 {
        assert!(tokio::time::Instant::now() < deadline, "alice's key never loaded");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(get("/api/u/%61lice/models").await.unwrap().status(), 200);
    for p in [
        "/api/u/bob/models",
        "/api/u/Alice/models",
        "/api/u/alice%20/models",
        "/api/u/alice%2F..%2Fbob/models",
        "/api/u/%2e%2e/models",
        "/api/u/alice%00/models",
    ] {
        let status = get(p).await.unwrap().status().as_u16();
        assert!(status == 403 || status == 404, "{p}: {status}");
    }
    // A static key is nobody's user.
    let status = app
        .client
        .get(app.url("/api/u/alice/models"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_dashboard_and_docs_are_open_but_carry_no_data() {
    let app = app().await;
    for p in ["/", "/static/app.js", "/static/app.css", "/openapi.json"] {
        let response = app.client.get(app.url(p)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{p}");
        let text = response.text().await.unwrap();
        assert!(!text.contains(KEY) && !text.contains(ADMIN), "{p} leaks a credential");
    }
}

#[tokio::test]
async fn a_client_key_does_not_buy_unthrottled_admin_token_guesses() {
    // A valid client key next to a guessed X-Admin-Token used to answer 403 "not admin" without
    // counting the guess.
    let app = app().await;
    let mut last = 0;
    for i in 0..30 {
        last = app
            .client
            .post(app.url("/history/cleanup"))
            .bearer_auth(KEY)
            .header("x-admin-token", format!("guess-{i}"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
    }
    assert_eq!(last, 429);
}

#[tokio::test]
async fn guessing_the_observability_token_is_throttled() {
    let app = app().await;
    let mut last = 0;
    for i in 0..30 {
        last = app
            .client
            .get(app.url("/metrics"))
            .bearer_auth(format!("guess-{i}"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
    }
    assert_eq!(last, 429);
    let right = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("obs-token-0123456789abcdef0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 429);
}
