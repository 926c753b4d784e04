//! Limits: the exact burst, `Retry-After` and `x-ratelimit-*`, per-route limits, tokens per minute,
//! one limit shared by two gateways through the real Redis, and local limits when Redis is gone.

use serde_json::json;
use wiremock::MockServer;

use crate::helpers::tcp_proxy::TcpProxy;
use crate::helpers::{
    ProviderSpec, TEST_MODEL, TestApp, assert_openai_error, chat_body, completion, header, json, mount_chat,
    upstream_url,
};

/// A Redis key prefix no other test (or environment) shares.
fn fresh_prefix() -> String {
    format!("aigw-test-{}:", uuid::Uuid::now_v7().simple())
}

async fn limited_app(mock: &MockServer, settings: &str) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(mock)))
        .env("API_KEYS", "sk-a,sk-b")
        .settings(settings)
        .spawn()
        .await
}

async fn chat_as(app: &TestApp, key: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&chat_body(TEST_MODEL))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn exactly_burst_rapid_requests_pass_and_the_next_gets_429_with_retry_after() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 4).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .env("API_KEYS", "sk-a,sk-b")
        .env("RATE_LIMIT_ENABLED", "true")
        .env("RATE_LIMIT_RPM", "60")
        .env("RATE_LIMIT_BURST", "3")
        .spawn()
        .await;

    // Act
    let mut statuses = Vec::new();
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let r = chat_as(&app, "sk-a").await;
        statuses.push(r.status().as_u16());
        remaining.push(header(&r, "x-ratelimit-remaining"));
    }
    let refused = chat_as(&app, "sk-a").await;
    let other_key = chat_as(&app, "sk-b").await;

    // Assert
    assert_eq!(statuses, [200, 200, 200]);
    assert_eq!(remaining, ["2", "1", "0"]);
    assert_eq!(refused.status(), 429);
    assert_eq!(header(&refused, "retry-after"), "1");
    assert_eq!(header(&refused, "x-ratelimit-limit"), "3");
    assert_eq!(header(&refused, "x-ratelimit-remaining"), "0");
    assert!(header(&refused, "x-ratelimit-reset").parse::<u64>().unwrap() >= 1);
    let body = json(refused).await;
    assert_eq!(assert_openai_error(&body)["code"], json!("rate_limit_exceeded"));
    assert_eq!(other_key.status(), 200, "each key has its own budget");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains(r#"gateway_rate_limited_total{reason="key"} 1"#));
}

#[tokio::test]
async fn limits_are_off_unless_enabled() {
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 5).await;
    let app = limited_app(&alpha, "rate_limit: {enabled: false, burst: 1}").await;
    for _ in 0..5 {
        assert_eq!(chat_as(&app, "sk-a").await.status(), 200);
    }
}

#[tokio::test]
async fn route_limit_applies_on_top_of_the_key_limit() {
    let alpha = MockServer::start().await;
    let app = limited_app(
        &alpha,
        "{auth: {admin_token: adm}, rate_limit: {enabled: true, rpm: 600, burst: 100, routes: {/history/cleanup: 2}}}",
    )
    .await;
    let cleanup = || {
        app.client
            .post(app.url("/history/cleanup"))
            .header("x-admin-token", "adm")
            .send()
    };
    assert_eq!(cleanup().await.unwrap().status(), 200);
    assert_eq!(cleanup().await.unwrap().status(), 200);
    let refused = cleanup().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(header(&refused, "retry-after").parse::<u64>().unwrap() >= 1);
}

#[tokio::test]
async fn tokens_per_minute_refuse_once_usage_is_spent() {
    // Arrange: the fixture completion reports 1163 tokens; the budget is 1000 a minute.
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = limited_app(&alpha, "rate_limit: {enabled: true, tpm: 1000}").await;

    // Act
    let first = chat_as(&app, "sk-a").await;
    app.history_rows(1).await;
    let mut second = chat_as(&app, "sk-a").await;
    for _ in 0..50 {
        if second.status() == 429 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        second = chat_as(&app, "sk-a").await;
    }

    // Assert
    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 429);
    let body = json(second).await;
    assert_eq!(body["error"]["type"], json!("tokens"));
}

#[tokio::test]
async fn two_gateways_on_one_redis_enforce_one_limit_together() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 3).await;
    let settings = format!(
        "{{redis_url: 'redis://127.0.0.1:6379', redis_prefix: '{}', rate_limit: {{enabled: true, rpm: 60, burst: 3}}}}",
        fresh_prefix()
    );
    let one = limited_app(&alpha, &settings).await;
    let two = limited_app(&alpha, &settings).await;

    // Act
    let statuses: Vec<u16> = vec![
        chat_as(&one, "sk-a").await.status().as_u16(),
        chat_as(&two, "sk-a").await.status().as_u16(),
        chat_as(&one, "sk-a").await.status().as_u16(),
        chat_as(&two, "sk-a").await.status().as_u16(),
        chat_as(&one, "sk-a").await.status().as_u16(),
    ];

    // Assert
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
}

#[tokio::test]
async fn redis_down_falls_back_to_local_limits_without_failing_requests() {
    // Arrange: Redis reachable only through a proxy the test owns, then cut.
    let proxy = TcpProxy::start("127.0.0.1:6379").await;
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 2).await;
    let settings = format!(
        "{{redis_url: 'redis://127.0.0.1:{}', redis_prefix: '{}', rate_limit: {{enabled: true, rpm: 60, burst: 2}}}}",
        proxy.port,
        fresh_prefix()
    );
    let app = limited_app(&alpha, &settings).await;
    proxy.cut();

    // Act
    let statuses: Vec<u16> = vec![
        chat_as(&app, "sk-a").await.status().as_u16(),
        chat_as(&app, "sk-a").await.status().as_u16(),
        chat_as(&app, "sk-a").await.status().as_u16(),
    ];

    // Assert: requests are served and the local limiter still holds the burst.
    assert_eq!(statuses, [200, 200, 429]);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let fallbacks = metrics
        .lines()
        .find_map(|l| l.strip_prefix("gateway_rate_limit_redis_fallbacks_total "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap();
    assert!(fallbacks >= 3, "{fallbacks}");
}
