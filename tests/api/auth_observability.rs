//! `observability.token`: `/metrics` and the detailed `/health` behind a bearer token; the probes
//! `/livez` and `/readyz` stay open.

use wiremock::MockServer;

use crate::helpers::{ProviderSpec, TestApp, upstream_url};

async fn get(app: &TestApp, path: &str, authorization: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(path));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn metrics_and_health_need_the_observability_token_when_one_is_set() {
    let alpha = MockServer::start().await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings("observability: {token: scrape-token-0123456789abcdef0123}\nauth: {api_keys: [sk-client]}")
        .spawn()
        .await;
    for path in ["/metrics", "/health"] {
        assert_eq!(get(&app, path, None).await.status(), 401, "{path} without a token");
        for wrong in [
            "Bearer nope",
            "Bearer sk-client",
            "Bearer ",
            "scrape-token-0123456789abcdef0123",
            "Basic c2NyYXBlOg==",
        ] {
            assert_eq!(get(&app, path, Some(wrong)).await.status(), 401, "{path} with {wrong}");
        }
        let ok = get(&app, path, Some("Bearer scrape-token-0123456789abcdef0123")).await;
        assert_eq!(ok.status(), 200, "{path} with the token");
    }
    let metrics = get(&app, "/metrics", Some("Bearer scrape-token-0123456789abcdef0123")).await;
    assert!(metrics.text().await.unwrap().contains("gateway_"));
    for path in ["/livez", "/readyz"] {
        assert_eq!(get(&app, path, None).await.status(), 200, "{path} stays open");
    }
}

#[tokio::test]
async fn without_an_observability_token_metrics_and_health_stay_open() {
    let alpha = MockServer::start().await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings("auth: {api_keys: [sk-client]}")
        .spawn()
        .await;
    for path in ["/metrics", "/health", "/livez", "/readyz"] {
        assert_eq!(get(&app, path, None).await.status(), 200, "{path}");
    }
}
