//! Redis down costs no request a wait (security issue, item 11): the limiter and the response
//! cache keep their connection in the background, requests read its current state only; the
//! limiter connects at start (start-up waits for it, so the first requests share the limit); while
//! Redis is unreachable each replica allows its `rate_limit.replicas` share; when Redis returns,
//! the shared limiter is used again.

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

/// A gateway limiting `sk-a` to a burst of 9 shared by 3 replicas, on Redis at `port`.
async fn replica(port: u16, prefix: &str, alpha: &MockServer) -> TestApp {
    let settings = format!(
        "{{redis_url: 'redis://127.0.0.1:{port}', redis_prefix: '{prefix}', rate_limit: {{enabled: true, rpm: 9, burst: 9, replicas: 3}}}}"
    );
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(alpha)))
        .env("API_KEYS", "sk-a")
        .settings(&settings)
        .spawn()
        .await
}

/// Statuses of `n` uncached chat requests as `sk-a`.
async fn burst(app: &TestApp, n: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..n {
        let response = app
            .client
            .post(app.url("/v1/chat/completions"))
            .bearer_auth("sk-a")
            .json(&chat_body(TEST_MODEL))
            .send()
            .await
            .expect("chat");
        statuses.push(response.status().as_u16());
    }
    statuses
}

#[tokio::test]
async fn with_redis_unreachable_each_of_three_replicas_allows_only_its_share_of_the_burst() {
    // Arrange: Redis cut off from the start.
    let proxy = TcpProxy::start("127.0.0.1:6379").await;
    proxy.cut();
    let alpha = alpha().await;
    let prefix = format!("share-{}:", Uuid::now_v7().simple());
    let (a, b, c) = tokio::join!(
        replica(proxy.port, &prefix, &alpha),
        replica(proxy.port, &prefix, &alpha),
        replica(proxy.port, &prefix, &alpha)
    );

    // Act: a burst of 9 at each replica.
    let (sa, sb, sc) = tokio::join!(burst(&a, 9), burst(&b, 9), burst(&c, 9));

    // Assert: 3 each, 9 together: never the whole burst per replica.
    for statuses in [sa, sb, sc] {
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 3, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 6, "{statuses:?}");
    }
    assert!(!a.state.limiter.redis_connected());
}

#[tokio::test]
async fn with_redis_up_the_shared_limit_holds_from_the_first_request_after_start() {
    // Arrange: two replicas start while Redis is slow to answer (the first connects hang for
    // 0.8 s), so only waiting for the connection at start keeps their first requests shared.
    let proxy = TcpProxy::start("127.0.0.1:6379").await;
    proxy.blackhole();
    let alpha = alpha().await;
    let prefix = format!("first-{}:", Uuid::now_v7().simple());
    let slow = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        proxy.restore();
    };
    let (a, b, ()) = tokio::join!(
        replica(proxy.port, &prefix, &alpha),
        replica(proxy.port, &prefix, &alpha),
        slow
    );

    // Act: at once, 9 requests at each.
    let (sa, sb) = tokio::join!(burst(&a, 9), burst(&b, 9));

    // Assert: the shared burst of 9, not 3 (each replica's share) and not 18.
    let passed = sa.iter().chain(&sb).filter(|s| **s == 200).count();
    assert_eq!(passed, 9, "{sa:?} {sb:?}");
    assert_eq!(a.state.limiter.fallbacks() + b.state.limiter.fallbacks(), 0);
}
