//! The gateway driven by a real OpenAI SDK client (`async-openai`), as applications will use it.

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequestArgs};
use futures_util::StreamExt;
use wiremock::MockServer;

use crate::helpers::{ProviderSpec, SseMock, TEST_MODEL, TestApp, completion, fixtures, mount_chat, upstream_url};

fn sdk_client(app: &TestApp) -> Client<OpenAIConfig> {
    ai_gateway::startup::init_crypto();
    Client::with_config(
        OpenAIConfig::new()
            .with_api_base(format!("http://127.0.0.1:{}/v1", app.port))
            .with_api_key("client-key"),
    )
}

fn request(model: &str) -> async_openai::types::chat::CreateChatCompletionRequest {
    let message = ChatCompletionRequestUserMessageArgs::default()
        .content("Hello!")
        .build()
        .expect("user message");
    CreateChatCompletionRequestArgs::default()
        .model(model)
        .messages([message.into()])
        .build()
        .expect("chat request")
}

#[tokio::test]
async fn openai_sdk_creates_a_chat_completion_through_the_gateway() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .spawn()
        .await;

    // Act
    let reply = sdk_client(&app)
        .chat()
        .create(request(TEST_MODEL))
        .await
        .expect("the SDK accepts the gateway's answer");

    // Assert
    let expected = fixtures::json(fixtures::CHAT_COMPLETION);
    assert_eq!(reply.id, expected["id"].as_str().expect("id"));
    assert_eq!(
        reply.choices[0].message.content.as_deref(),
        expected["choices"][0]["message"]["content"].as_str()
    );
}

#[tokio::test]
async fn openai_sdk_streams_a_chat_completion_through_the_gateway() {
    // Arrange
    let alpha = SseMock::start().await;
    alpha.autoplay_raw(fixtures::chunk_events()).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", alpha.base_url()))
        .spawn()
        .await;
    let mut streamed = request(TEST_MODEL);
    // With the `byot` feature the SDK does not set this itself.
    streamed.stream = Some(true);

    // Act
    let mut stream = sdk_client(&app)
        .chat()
        .create_stream(streamed)
        .await
        .expect("stream opens");
    let mut chunks = 0;
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("the SDK parses every chunk");
        chunks += 1;
        if let Some(content) = chunk.choices.first().and_then(|c| c.delta.content.as_deref()) {
            text.push_str(content);
        }
    }

    // Assert: every chunk before [DONE] arrived, and the SDK saw the stream end cleanly.
    assert_eq!(chunks, fixtures::chunk_events().len() - 1);
    assert_eq!(text, "Hello there!");
}

#[tokio::test]
async fn openai_sdk_reads_gateway_errors_as_api_errors() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 0).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .spawn()
        .await;

    // Act
    let error = sdk_client(&app)
        .chat()
        .create(request("no-such-model"))
        .await
        .expect_err("an unknown model is refused");

    // Assert
    let OpenAIError::ApiError(response) = error else {
        panic!("expected an API error, got {error:?}");
    };
    assert_eq!(response.status_code.as_u16(), 404);
    assert_eq!(response.api_error.code.as_deref(), Some("model_not_found"));
    assert_eq!(response.api_error.param.as_deref(), Some("model"));
}
