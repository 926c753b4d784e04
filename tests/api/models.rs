//! `GET /v1/models`: the models clients may ask for, in OpenAI's list shape.

use std::collections::BTreeMap;

use reqwest::header::AUTHORIZATION;
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{ProviderSpec, TestApp, fixtures, json, received, upstream_url};

/// `id → owned_by` of every listed model, checking each entry's OpenAI shape on the way.
fn owners(list: &Value) -> BTreeMap<String, String> {
    assert_eq!(list["object"], "list");
    let data = list["data"].as_array().expect("data is an array");
    let mut owners = BTreeMap::new();
    for model in data {
        assert_eq!(model["object"], "model", "{model}");
        assert!(model["created"].is_u64(), "{model}");
        let id = model["id"].as_str().expect("id").to_owned();
        let owner = model["owned_by"].as_str().expect("owned_by").to_owned();
        assert!(owners.insert(id, owner).is_none(), "each model is listed once: {list}");
    }
    owners
}

async fn mount_models(server: &MockServer, calls: u64) {
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixtures::MODELS, "application/json"))
        .expect(calls)
        .named("GET /v1/models")
        .mount(server)
        .await;
}

#[tokio::test]
async fn models_lists_declared_models_and_aliases_under_the_first_provider_serving_them() {
    // Arrange: neither upstream is asked, both declare their models.
    let alpha = MockServer::start().await;
    let beta = MockServer::start().await;
    let app = TestApp::builder()
        .provider(
            ProviderSpec::new("alpha", upstream_url(&alpha))
                .models(&["gpt-test", "gpt-other"])
                .alias("fast", "gpt-test"),
        )
        .provider(ProviderSpec::new("beta", upstream_url(&beta)).models(&["gpt-test", "beta-only"]))
        .spawn()
        .await;

    // Act
    let response = app.get("/v1/models").await;

    // Assert
    assert_eq!(response.status(), 200);
    let expected: BTreeMap<String, String> = [
        ("gpt-test", "alpha"),
        ("gpt-other", "alpha"),
        ("fast", "alpha"),
        ("beta-only", "beta"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_owned(), p.to_owned()))
    .collect();
    assert_eq!(owners(&json(response).await), expected);
    assert!(received(&alpha).await.is_empty() && received(&beta).await.is_empty());
}

#[tokio::test]
async fn models_for_a_wildcard_provider_lists_the_upstreams_own_models() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_models(&alpha, 1).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)).models(&["*"]))
        .spawn()
        .await;

    // Act
    let response = app.get("/v1/models").await;

    // Assert
    assert_eq!(response.status(), 200);
    let listed = owners(&json(response).await);
    let upstream = fixtures::json(fixtures::MODELS);
    let expected: BTreeMap<String, String> = upstream["data"]
        .as_array()
        .expect("fixture data")
        .iter()
        .map(|m| (m["id"].as_str().expect("id").to_owned(), "alpha".to_owned()))
        .collect();
    assert_eq!(listed, expected, "`*` itself is never listed");
    let requests = received(&alpha).await;
    let expected_key = format!("Bearer {}", ProviderSpec::key_for("alpha"));
    assert_eq!(
        requests[0].headers.get(AUTHORIZATION).expect("authorization"),
        expected_key.as_str()
    );
}

#[tokio::test]
async fn wildcard_upstream_model_list_is_reused_between_calls() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_models(&alpha, 1).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)).models(&["*"]))
        .spawn()
        .await;
    let first = json(app.get("/v1/models").await).await;

    // Act
    let second = json(app.get("/v1/models").await).await;

    // Assert: same list, one upstream call in all.
    assert_eq!(first, second);
}

#[tokio::test]
async fn models_still_lists_declared_models_when_a_wildcard_upstream_cannot_list_its_own() {
    // Arrange
    let alpha = MockServer::start().await;
    let beta = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&beta)
        .await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)).models(&["gpt-test"]))
        .provider(ProviderSpec::new("beta", upstream_url(&beta)).models(&["*"]))
        .spawn()
        .await;

    // Act
    let response = app.get("/v1/models").await;

    // Assert
    assert_eq!(response.status(), 200);
    let expected: BTreeMap<String, String> = [("gpt-test".to_owned(), "alpha".to_owned())].into();
    assert_eq!(owners(&json(response).await), expected);
}
