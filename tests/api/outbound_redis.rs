//! Redis down costs no request a wait (security issue, item 11): the limiter and the response
//! cache keep their connection in the background, requests read its current state only; the
//! limiter connects at start; when Redis returns, the shared limiter is used again.

use std::time::{Duration, Instant};

use uuid::Uuid;
use wiremock::MockServer;
use wiremock::matchers::method;

use crate::helpers::tcp_proxy::TcpProxy;
use crate::helpers::{ProviderSpec, TEST_MODEL, TestApp, chat_body, completion, upstream_url};

async fn app_behind(proxy: &TcpProxy, alpha: &MockServer) -> TestApp {
    let settings = format!(
        "{{redis_url: 'redis://127.0.0.1:{}', redis_prefix: 'outbound-{}:', rate_limit: {{enabled: true, rpm: 100000, burst: 100000}}}}",
        proxy.port,
        Uuid::now_v7().simple()
    );
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(alpha)))
        .env("API_KEYS", "sk-a")
        .settings(&settings)
        .spawn()
        .await
}

async fn alpha() -> MockServer {
    let alpha = MockServer::start().await;
    wiremock::Mock::given(method("POST"))
        .respond_with(completion())
        .mount(&alpha)
        .await;
    alpha
}

/// One cached chat request (the cache and the limiter both use Redis); its status.
async fn chat(app: &TestApp) -> u16 {
    app.client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth("sk-a")
        .header("x-ai-gateway-cache", "on")
        .json(&chat_body(TEST_MODEL))
        .send()
        .await
        .expect("chat")
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_redis_limiter_connects_at_start_not_on_the_first_request() {
    // Arrange
    let proxy = TcpProxy::start("127.0.0.1:6379").await;
    let alpha = alpha().await;

    // Act: no request at all.
    let app = app_behind(&proxy, &alpha).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while !app.state.limiter.redis_connected() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Assert
    assert!(
        proxy.accepted() >= 1,
        "nothing connected to Redis before the first request"
    );
    assert!(app.state.limiter.redis_connected());
}

#[tokio::test]
async fn a_silent_redis_costs_requests_no_wait_and_the_shared_limiter_returns() {
    // Arrange
    let proxy = TcpProxy::start("127.0.0.1:6379").await;
    let alpha = alpha().await;
    let app = app_behind(&proxy, &alpha).await;
    assert_eq!(chat(&app).await, 200);
    let before = app.state.limiter.fallbacks();

    // Act: Redis stops answering (connections stay open, nothing comes back).
    proxy.blackhole();
    // The first request after the cut may be the one that finds out; the keeper notices within
    // its one-second check anyway.
    assert_eq!(chat(&app).await, 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let started = Instant::now();
    for _ in 0..10 {
        assert_eq!(chat(&app).await, 200);
    }
    let took = started.elapsed();

    // Assert: ten requests, none waiting on Redis (before: 250 ms limiter + 2 x 50 ms cache each).
    assert!(
        took < Duration::from_millis(1500),
        "10 requests took {took:?} with Redis silent"
    );
    assert!(app.state.limiter.fallbacks() >= before + 10, "fallbacks are counted");

    // Act: Redis answers again.
    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(10);
    let recovered = loop {
        let seen = app.state.limiter.fallbacks();
        assert_eq!(chat(&app).await, 200);
        if app.state.limiter.fallbacks() == seen {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Assert
    assert!(recovered, "the shared limiter was not used again after Redis returned");
    assert!(app.state.limiter.redis_connected());
}
