//! `pricing.url`: a models.dev-shaped document served by a mock prices requests; a refresh that
//! fails keeps the prices and says why in `/health`; a new gateway on the same database prices
//! from the saved copy while its URL cannot be fetched.
//!
//! Refreshes are triggered with `pipeline::refresh_prices`, the call the startup loop makes every
//! `pricing.refresh_hours`.

use std::time::Duration;

use ai_gateway::pipeline::{PricingError, refresh_prices};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{ProviderSpec, TestApp, header, mount_chat, upstream_url};

const FIXTURE: &str = include_str!("../fixtures/models_dev/api.json");

/// A chat completion whose usage is 10 prompt tokens (4 of them cached) and 10 completion tokens.
fn completion() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20,
                  "prompt_tokens_details": {"cached_tokens": 4}}
    }))
}

/// The fixture with models.dev's `openai/gpt-4o-mini` at `cost`, so a request's price can only
/// have come from the document (the catalogue has no price for it).
fn document(cost: Value) -> Value {
    let mut doc: Value = serde_json::from_str(FIXTURE).expect("the fixture is JSON");
    doc["openai"]["models"]["gpt-4o-mini"]["cost"] = cost;
    doc
}

async fn serve(server: &MockServer, response: ResponseTemplate) {
    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/api.json"))
        .respond_with(response)
        .mount(server)
        .await;
}

async fn gateway(upstream: &MockServer, settings: &str) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("openai", upstream_url(upstream)).models(&["gpt-4o-mini", "gpt-4o"]))
        .settings(settings)
        .spawn()
        .await
}

async fn cost_of(app: &TestApp, model: &str) -> f64 {
    let response = app
        .post_chat(&json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    assert_eq!(response.status(), 200);
    header(&response, "x-ai-gateway-cost-usd")
        .parse()
        .expect("the cost header is a number")
}

fn assert_usd(got: f64, want: f64) {
    assert!((got - want).abs() < 1e-12, "cost {got}, expected {want}");
}

/// Polls `/health` until `pricing` satisfies `done`; returns it.
async fn pricing_when(app: &TestApp, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let pricing = app.health().await["pricing"].clone();
        if done(&pricing) {
            return pricing;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} never happened: {pricing}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn requests_cost_the_fetched_price_and_a_failed_refresh_keeps_it_and_says_why() {
    // Arrange: gpt-4o-mini at 100 / cached 10 / output 1000 per million; gpt-4o in the document
    // too, but the configuration's own price for it wins.
    let prices = MockServer::start().await;
    serve(
        &prices,
        ResponseTemplate::new(200).set_body_json(document(json!({"input": 100, "output": 1000, "cache_read": 10}))),
    )
    .await;
    let upstream = MockServer::start().await;
    mount_chat(&upstream, completion(), 5).await;
    let url = format!("{}/api.json", prices.uri());
    let app = gateway(
        &upstream,
        &format!("pricing: {{url: '{url}', models: [{{provider: openai, model: gpt-4o, input: 1, output: 1}}]}}"),
    )
    .await;
    let first = pricing_when(&app, "the first fetch", |p| p["fetched_at_ms"].is_i64()).await;
    assert_eq!(first["url"], url);
    assert!(first["last_error"].is_null(), "{first}");
    let models = first["models"].as_u64().expect("models priced");
    assert_eq!(models, 13, "the fixture's priced models of mapped providers: {first}");

    // Act + Assert: 6 fresh × 100 + 4 cached × 10 + 10 × 1000, per million.
    assert_usd(cost_of(&app, "gpt-4o-mini").await, 0.010_64);
    // 20 tokens at 1 per million: the configuration over the document's 2.50 / 10.
    assert_usd(cost_of(&app, "gpt-4o").await, 0.000_02);

    // A refresh with new prices replaces them.
    serve(
        &prices,
        ResponseTemplate::new(200).set_body_json(document(json!({"input": 0, "output": 2000}))),
    )
    .await;
    refresh_prices(&app.state).await.expect("the new document validates");
    assert_usd(cost_of(&app, "gpt-4o-mini").await, 0.02);
    let fetched_at = app.health().await["pricing"]["fetched_at_ms"].clone();

    // The server fails: the prices stay and /health says why.
    serve(&prices, ResponseTemplate::new(500).set_body_string("upstream down")).await;
    let refused = refresh_prices(&app.state).await.unwrap_err();
    assert!(matches!(refused, PricingError::Status(500)), "{refused}");
    assert_usd(cost_of(&app, "gpt-4o-mini").await, 0.02);
    let pricing = app.health().await["pricing"].clone();
    assert!(
        pricing["last_error"].as_str().is_some_and(|e| e.contains("HTTP 500")),
        "{pricing}"
    );
    assert_eq!(pricing["fetched_at_ms"], fetched_at, "still the last good fetch");
    assert_eq!(pricing["models"], models);

    // Garbage with a 200 is refused as a document, and the prices stay.
    serve(
        &prices,
        ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"),
    )
    .await;
    assert!(matches!(
        refresh_prices(&app.state).await,
        Err(PricingError::Document(_))
    ));
    assert_usd(cost_of(&app, "gpt-4o-mini").await, 0.02);
    let pricing = app.health().await["pricing"].clone();
    assert!(
        pricing["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("not a models.dev api.json document")),
        "{pricing}"
    );

    // A good fetch clears the error.
    serve(
        &prices,
        ResponseTemplate::new(200).set_body_json(document(json!({"input": 0, "output": 2000}))),
    )
    .await;
    refresh_prices(&app.state).await.expect("valid again");
    assert!(app.health().await["pricing"]["last_error"].is_null());
}

#[tokio::test]
async fn a_new_gateway_on_the_same_database_prices_from_the_saved_copy_while_its_url_fails() {
    // Arrange: one gateway fetches and saves the document, then stops.
    let prices = MockServer::builder().start().await;
    serve(
        &prices,
        ResponseTemplate::new(200).set_body_json(document(json!({"input": 0, "output": 3000}))),
    )
    .await;
    let upstream = MockServer::start().await;
    mount_chat(&upstream, completion(), 2).await;
    // The query stands for a credential: it never shows in /health.
    let url = format!("{}/api.json?token=s3cret-price-token", prices.uri());
    let settings = format!(
        "database_url: {}\npricing: {{url: '{url}'}}",
        crate::helpers::db::fresh_postgres_database().await
    );
    let mut first = gateway(&upstream, &settings).await;
    let saved = pricing_when(&first, "the first fetch", |p| p["fetched_at_ms"].is_i64()).await;
    assert_usd(cost_of(&first, "gpt-4o-mini").await, 0.03);
    first.stop().await;

    // The URL stops answering: no mock left, then no server.
    prices.reset().await;
    drop(prices);

    // Act
    let second = gateway(&upstream, &settings).await;
    let pricing = pricing_when(&second, "the failed first fetch", |p| p["last_error"].is_string()).await;

    // Assert: the saved copy prices, and /health says both when it was fetched and why the
    // fetch failed, without the URL's query.
    assert_eq!(pricing["fetched_at_ms"], saved["fetched_at_ms"], "{pricing}");
    assert_eq!(pricing["models"], saved["models"]);
    assert_usd(cost_of(&second, "gpt-4o-mini").await, 0.03);
    let shown = pricing.to_string();
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(
        pricing["url"].as_str().is_some_and(|u| u.ends_with("/api.json")),
        "{pricing}"
    );
}

#[tokio::test]
async fn a_document_over_32_mib_is_refused_while_it_streams_in() {
    // Arrange: a server that streams JSON whitespace in chunks without a length, forever (each
    // connection stops once the gateway hangs up, at most 64 MiB later).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api.json", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        for _ in 0..4 {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut request).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("{:x}\r\n{}\r\n", 1 << 20, " ".repeat(1 << 20));
                for _ in 0..64 {
                    if socket.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let upstream = MockServer::start().await;
    let app = gateway(&upstream, &format!("pricing: {{url: '{url}'}}")).await;
    pricing_when(&app, "the first fetch's refusal", |p| p["last_error"].is_string()).await;

    // Act
    let refused = refresh_prices(&app.state).await.unwrap_err();

    // Assert
    assert!(matches!(refused, PricingError::TooLarge), "{refused}");
    let pricing = app.health().await["pricing"].clone();
    assert!(
        pricing["last_error"].as_str().is_some_and(|e| e.contains("32 MiB")),
        "{pricing}"
    );
    assert!(pricing["fetched_at_ms"].is_null());
    server.abort();
}

#[tokio::test]
async fn health_has_no_pricing_without_a_url() {
    let upstream = MockServer::start().await;
    let app = gateway(&upstream, "pricing: {refresh_hours: 1}").await;
    let health = app.health().await;
    assert!(health.get("pricing").is_none(), "{health}");
}
