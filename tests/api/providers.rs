//! The OpenAI-compatible catalogue with each vendor's own wire format: for every provider in
//! `providers/*.yaml` of kind `openai`, a mock at the catalogue's URL path answers with the
//! fixtures in `tests/fixtures/<provider>/` (taken from that vendor's API documentation), and the
//! gateway must forward the request and relay the reply, JSON and streamed, byte for byte.

use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::fixtures;
use crate::helpers::{ProviderSpec, SseMock, TestApp, received};

/// The path part of a catalogue base URL (`https://api.groq.com/openai/v1` → `/openai/v1`).
fn url_path(base_url: &str) -> String {
    let after_scheme = base_url.split_once("://").map_or(base_url, |(_, rest)| rest);
    after_scheme
        .find('/')
        .map_or_else(String::new, |i| after_scheme[i..].to_owned())
}

fn catalogue_path(id: &str) -> String {
    let entries = ai_gateway::config::catalogue().expect("catalogue parses");
    let entry = entries
        .iter()
        .find(|e| e.id == id)
        .unwrap_or_else(|| panic!("providers/{id}.yaml exists"));
    assert_eq!(entry.kind, "openai", "{id} speaks the OpenAI protocol");
    url_path(&entry.base_url)
}

async fn json_round_trip(id: &str, request: &'static str, reply: &'static str) {
    // Arrange
    let prefix = catalogue_path(id);
    let model = serde_json::from_str::<Value>(request).expect("request JSON")["model"]
        .as_str()
        .expect("model")
        .to_owned();
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{prefix}/chat/completions")))
        .respond_with(ResponseTemplate::new(200).set_body_raw(reply, "application/json"))
        .expect(1)
        .mount(&upstream)
        .await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new(id, format!("{}{prefix}", upstream.uri())).models(&[&model]))
        .spawn()
        .await;

    // Act
    let response = app.post_raw("/v1/chat/completions", request).await;

    // Assert
    assert_eq!(response.status(), 200, "{id}");
    assert_eq!(
        response.text().await.expect("body"),
        reply,
        "{id}: the reply passes untouched"
    );
    let got = &received(&upstream).await[0];
    assert_eq!(got.body, request.as_bytes(), "{id}: the request passes untouched");
    let bearer = format!("Bearer {}", ProviderSpec::key_for(id));
    assert_eq!(got.headers["authorization"], bearer.as_str(), "{id}");
    let expected: Value = serde_json::from_str(reply).expect("reply JSON");
    let row = &app.history_rows(1).await[0];
    assert_eq!(
        row["total_tokens"], expected["usage"]["total_tokens"],
        "{id}: usage counted"
    );
}

async fn stream_round_trip(id: &str, request: &'static str, chunks: &'static str) {
    // Arrange
    let prefix = catalogue_path(id);
    let mut body: Value = serde_json::from_str(request).expect("request JSON");
    let model = body["model"].as_str().expect("model").to_owned();
    body["stream"] = Value::Bool(true);
    body["stream_options"] = serde_json::json!({"include_usage": true});
    let upstream = SseMock::start().await;
    upstream.autoplay_raw(fixtures::events(chunks)).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new(id, format!("{}{prefix}", upstream.root_url())).models(&[&model]))
        .spawn()
        .await;

    // Act
    let response = app.post_chat(&body).await;

    // Assert
    assert_eq!(response.status(), 200, "{id}");
    assert_eq!(
        response.text().await.expect("body"),
        chunks,
        "{id}: every event relayed as sent"
    );
    let sent = upstream.next_connection().await.request;
    assert_eq!(sent.path, format!("{prefix}/chat/completions"), "{id}");
    let row = &app.history_rows(1).await[0];
    assert_eq!(row["status"], "success", "{id}");
}

macro_rules! provider {
    ($name:ident) => {
        mod $name {
            const DIR: &str = stringify!($name);
            const REQUEST: &str = include_str!(concat!("../fixtures/", stringify!($name), "/request.json"));
            const REPLY: &str = include_str!(concat!(
                "../fixtures/",
                stringify!($name),
                "/chat_completion.json"
            ));
            const CHUNKS: &str = include_str!(concat!(
                "../fixtures/",
                stringify!($name),
                "/chat_completion_chunks.sse"
            ));

            #[tokio::test]
            async fn chat_completion_round_trips_at_the_catalogue_path() {
                super::json_round_trip(DIR, REQUEST, REPLY).await;
            }

            #[tokio::test]
            async fn streamed_chat_completion_round_trips_at_the_catalogue_path() {
                super::stream_round_trip(DIR, REQUEST, CHUNKS).await;
            }
        }
    };
}

provider!(openai);
provider!(mistral);
provider!(nvidia);
provider!(huggingface);
provider!(groq);
provider!(deepseek);
provider!(openrouter);
provider!(together);
provider!(vllm);
provider!(ollama);
provider!(llamacpp);
provider!(tgi);
provider!(sglang);
provider!(localai);

#[test]
fn every_openai_kind_catalogue_provider_has_fixtures() {
    let entries = ai_gateway::config::catalogue().expect("catalogue parses");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    for entry in entries.iter().filter(|e| e.kind == "openai") {
        for file in [
            "README.md",
            "request.json",
            "chat_completion.json",
            "chat_completion_chunks.sse",
        ] {
            let at = format!("{root}/{}/{file}", entry.id);
            assert!(std::path::Path::new(&at).exists(), "{at} is missing");
        }
    }
}

#[test]
fn catalogue_paths_are_read_from_base_urls() {
    assert_eq!(url_path("https://api.groq.com/openai/v1"), "/openai/v1");
    assert_eq!(url_path("http://127.0.0.1:8080/v1"), "/v1");
    assert_eq!(url_path("https://api.anthropic.com"), "");
}
