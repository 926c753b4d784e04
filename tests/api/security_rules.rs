//! Per-endpoint auth and rate limits (seed 002's `secure --endpoint`): a path route's own `auth`
//! and `rate_limit`, and `security:` rules that apply the same to built-in endpoints.

use ai_gateway::config::{Env, load_str};
use ai_gateway::store::now_ms;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{
    ProviderSpec, TEST_MODEL, TestApp, assert_openai_error, chat_body, completion, json, mount_chat, upstream_url,
};

const SECRET: &str = "jwt-secret";

fn jwt(secret: &str) -> String {
    let claims = json!({"sub": "alice", "exp": now_ms() / 1000 + 300});
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// A gateway with key `sk-a`, JWT (HS256 `SECRET`) and the given settings.
async fn app_with(settings: Value) -> TestApp {
    let mut s = settings;
    s["auth"] = json!({"api_keys": ["sk-a"], "jwt": {"hs256_secret": SECRET}});
    TestApp::builder().settings(&s.to_string()).spawn().await
}

async fn service(calls: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/predict"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .expect(calls)
        .mount(&server)
        .await;
    server
}

async fn post(app: &TestApp, to: &str, bearer: Option<&str>) -> u16 {
    let mut req = app.client.post(app.url(to)).json(&json!({"input": 1}));
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    let response = req.send().await.unwrap();
    let status = response.status().as_u16();
    if status >= 400 {
        assert_openai_error(&json(response).await);
    }
    status
}

#[tokio::test]
async fn an_api_key_path_accepts_keys_only() {
    // Arrange
    let svc = service(1).await;
    let app = app_with(json!({"path_routes": [{"path": "/predict", "target": svc.uri(), "auth": "api-key"}]})).await;

    // Act
    let statuses = [
        post(&app, "/predict", None).await,
        post(&app, "/predict", Some("sk-wrong")).await,
        post(&app, "/predict", Some(&jwt(SECRET))).await,
        post(&app, "/predict", Some("sk-a")).await,
    ];

    // Assert
    assert_eq!(statuses, [401, 401, 401, 200]);
}

#[tokio::test]
async fn a_jwt_path_accepts_a_valid_jwt_only() {
    // Arrange
    let svc = service(1).await;
    let app = app_with(json!({"path_routes": [{"path": "/predict", "target": svc.uri(), "auth": "jwt"}]})).await;

    // Act
    let statuses = [
        post(&app, "/predict", None).await,
        post(&app, "/predict", Some("sk-a")).await,
        post(&app, "/predict", Some(&jwt("another-secret"))).await,
        post(&app, "/predict", Some(&jwt(SECRET))).await,
    ];

    // Assert
    assert_eq!(statuses, [401, 401, 401, 200]);
}

#[tokio::test]
async fn an_open_path_needs_no_credentials_while_other_endpoints_still_do() {
    // Arrange
    let svc = service(2).await;
    let app = app_with(json!({"path_routes": [{"path": "/predict", "target": svc.uri(), "auth": "none"}]})).await;

    // Act
    let statuses = [
        post(&app, "/predict", None).await,
        post(&app, "/predict", Some("anything")).await,
        post(&app, "/v1/chat/completions", None).await,
    ];

    // Assert
    assert_eq!(statuses, [200, 200, 401]);
}

#[tokio::test]
async fn a_path_rate_limit_lets_exactly_n_through_then_429_with_retry_after() {
    // Arrange
    let svc = service(3).await;
    let app =
        app_with(json!({"path_routes": [{"path": "/predict", "target": svc.uri(), "rate_limit": "3/min"}]})).await;
    for _ in 0..3 {
        assert_eq!(post(&app, "/predict", Some("sk-a")).await, 200);
    }

    // Act
    let refused = app
        .client
        .post(app.url("/predict"))
        .bearer_auth("sk-a")
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(refused.status(), 429);
    assert!(
        refused.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(refused.headers()["x-ratelimit-limit"], "3");
    assert_eq!(refused.headers()["x-ratelimit-remaining"], "0");
    let body = json(refused).await;
    assert_eq!(assert_openai_error(&body)["code"], json!("rate_limit_exceeded"));
}

#[tokio::test]
async fn a_security_rule_overrides_the_path_routes_own_limit() {
    // Arrange
    let svc = service(1).await;
    let app = app_with(json!({
        "path_routes": [{"path": "/predict", "target": svc.uri(), "rate_limit": "100/min"}],
        "security": [{"endpoint": "/predict", "rateLimit": 1}],
    }))
    .await;

    // Act
    let statuses = [
        post(&app, "/predict", Some("sk-a")).await,
        post(&app, "/predict", Some("sk-a")).await,
    ];

    // Assert
    assert_eq!(statuses, [200, 429]);
}

#[tokio::test]
async fn a_security_rule_makes_chat_completions_jwt_only() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let mut settings = json!({"security": [{"endpoint": "/v1/chat/completions", "auth": "jwt"}]});
    settings["auth"] = json!({"api_keys": ["sk-a"], "jwt": {"hs256_secret": SECRET}});
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings(&settings.to_string())
        .spawn()
        .await;
    let chat = |token: String| {
        app.client
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(token)
            .json(&chat_body(TEST_MODEL))
            .send()
    };

    // Act
    let with_key = chat("sk-a".into()).await.unwrap();
    let with_jwt = chat(jwt(SECRET)).await.unwrap();
    let models = app
        .client
        .get(app.url("/v1/models"))
        .bearer_auth("sk-a")
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(with_key.status(), 401);
    assert_openai_error(&json(with_key).await);
    assert_eq!(with_jwt.status(), 200);
    assert_eq!(models.status(), 200, "other endpoints keep accepting keys");
}

#[tokio::test]
async fn a_security_rule_limits_a_built_in_endpoint_per_caller() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 3).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .env("API_KEYS", "sk-a,sk-b")
        .settings(r#"{"security": [{"endpoint": "/v1/chat/completions", "rate_limit": "2/min"}]}"#)
        .spawn()
        .await;
    let chat = |key: &'static str| {
        app.client
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&chat_body(TEST_MODEL))
            .send()
    };

    // Act
    let a: Vec<u16> = vec![
        chat("sk-a").await.unwrap().status().as_u16(),
        chat("sk-a").await.unwrap().status().as_u16(),
        chat("sk-a").await.unwrap().status().as_u16(),
    ];
    let b = chat("sk-b").await.unwrap().status().as_u16();

    // Assert
    assert_eq!(a, [200, 200, 429]);
    assert_eq!(b, 200, "the limit is per caller");
}

#[test]
fn rules_on_open_or_operator_endpoints_and_jwt_without_jwt_settings_are_refused() {
    let yaml = "security:\n  - {endpoint: /health, auth: api-key}\n  - {endpoint: /api/v1/routes, rate_limit: 5}\n  - {endpoint: /predict, auth: jwt}\n  - {endpoint: /v1/embeddings}\n";
    let problems = load_str(yaml, &Env::default()).unwrap_err().problems;
    let about: Vec<&String> = problems.iter().filter(|p| p.starts_with("security[")).collect();
    assert_eq!(about.len(), 4, "{problems:#?}");
    assert!(about[0].contains("/health") && about[0].contains("open or operator"));
    assert!(about[2].contains("jwt"));
    assert!(about[3].contains("neither"));
}

#[tokio::test]
async fn a_percent_encoded_path_does_not_slip_past_a_rule() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 0).await;
    let svc = service(0).await;
    let mut settings = json!({
        "security": [{"endpoint": "/v1/chat/completions", "auth": "jwt"}],
        "path_routes": [{"path": "/predict", "target": svc.uri(), "auth": "jwt"}],
    });
    settings["auth"] = json!({"api_keys": ["sk-a"], "jwt": {"hs256_secret": SECRET}});
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings(&settings.to_string())
        .spawn()
        .await;

    // Act: actix routes `%63` as `c`, so the rule must see the path the router saw.
    let chat = app
        .client
        .post(app.url("/v1/chat/%63ompletions"))
        .bearer_auth("sk-a")
        .json(&chat_body(TEST_MODEL))
        .send()
        .await
        .unwrap();
    let predict = post(&app, "/pre%64ict", Some("sk-a")).await;

    // Assert
    assert_eq!(chat.status(), 401);
    assert_eq!(predict, 401);
}

#[tokio::test]
async fn two_gateways_on_one_redis_share_a_path_limit() {
    // Arrange
    let svc = service(2).await;
    let prefix = format!("aigw-test-{}:", uuid::Uuid::now_v7().simple());
    let settings = json!({
        "redis_url": "redis://127.0.0.1:6379",
        "redis_prefix": prefix,
        "path_routes": [{"path": "/predict", "target": svc.uri(), "rate_limit": "2/min"}],
    });
    let (one, two) = (app_with(settings.clone()).await, app_with(settings).await);

    // Act
    let statuses = [
        post(&one, "/predict", Some("sk-a")).await,
        post(&two, "/predict", Some("sk-a")).await,
        post(&one, "/predict", Some("sk-a")).await,
        post(&two, "/predict", Some("sk-a")).await,
    ];

    // Assert
    assert_eq!(statuses, [200, 200, 429, 429]);
}
