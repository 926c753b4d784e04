//! Reasoning reaching chat clients: a Gemini thinking model's thoughts become `reasoning_content`
//! (JSON and stream) apart from the answer, `reasoning_effort` becomes a `thinkingConfig`, thought
//! signatures survive a tool-call round trip, thinking and cached tokens reach usage and history;
//! OpenAI-compatible upstreams' own reasoning fields (vLLM, DeepSeek, OpenRouter) pass untouched.

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::{ProviderSpec, SseMock, SseReader, TestApp, json, received, upstream_url};

const MODEL: &str = "gemini-3-pro-preview";
const SIGNATURE: &str = "yMnKy8zNzs/Q0dLT1NXW19jZ2tvc3d7f4OHi4+Tl5ufo6err7O3u7w==";

/// A strict `generateContent`: it refuses what Gemini refuses (a function-call history without
/// the thought signature Gemini 3 gave, both a thinking level and a budget), and answers the first
/// turn with a thought, a signed function call and thinking usage, the second with text.
struct Gemini3;

fn gemini_error(message: &str) -> ResponseTemplate {
    ResponseTemplate::new(400)
        .set_body_json(json!({"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}))
}

impl Respond for Gemini3 {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return gemini_error("Invalid JSON payload received.");
        };
        let thinking = &body["generationConfig"]["thinkingConfig"];
        if thinking.get("thinkingLevel").is_some() && thinking.get("thinkingBudget").is_some() {
            return gemini_error("You can only set one of thinking budget and thinking level.");
        }
        let contents = body["contents"].as_array().cloned().unwrap_or_default();
        for (i, content) in contents.iter().enumerate() {
            for part in content["parts"].as_array().into_iter().flatten() {
                if part.get("functionCall").is_some() && part.get("thoughtSignature").is_none() {
                    return gemini_error(&format!(
                        "Function call is missing a thought_signature in functionCall parts. Additional data, function call `default_api:ls` , position {}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.",
                        i + 1
                    ));
                }
            }
        }
        let answered = contents.iter().any(|c| c["parts"][0].get("functionResponse").is_some());
        let parts = if answered {
            json!([{"text": "There is one file, a.txt."}])
        } else {
            json!([
                {"text": "**Listing files**\nThe user wants the directory listing, so I will call ls.", "thought": true},
                {"functionCall": {"name": "ls", "args": {"path": "."}}, "thoughtSignature": SIGNATURE}
            ])
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 12, "thoughtsTokenCount": 48,
                "cachedContentTokenCount": 96, "totalTokenCount": 180},
            "modelVersion": MODEL,
            "responseId": "mM7DaLi8NqKf1e8P2eKGkQU"
        }))
    }
}

async fn gemini_app(base_url: String) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("gemini", base_url).kind("gemini").models(&[MODEL]))
        .spawn()
        .await
}

fn tools() -> Value {
    json!([{"type": "function", "function": {"name": "ls", "description": "List files",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}])
}

#[tokio::test]
async fn thoughts_become_reasoning_content_and_signatures_round_trip() {
    // Arrange
    let google = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v1beta/models/{MODEL}:generateContent")))
        .respond_with(Gemini3)
        .expect(2)
        .mount(&google)
        .await;
    let app = gemini_app(format!("{}/v1beta", google.uri())).await;
    let mut messages = vec![json!({"role": "user", "content": "What files are here?"})];

    // Act: the first turn asks for high effort and gets a tool call.
    let first = json(
        app.post_chat(&json!({"model": MODEL, "messages": messages, "tools": tools(), "reasoning_effort": "high"}))
            .await,
    )
    .await;

    // Assert
    let message = &first["choices"][0]["message"];
    assert!(
        message["reasoning_content"]
            .as_str()
            .expect("reasoning")
            .starts_with("**Listing files**")
    );
    assert!(message["content"].is_null(), "thoughts never go into content");
    assert_eq!(first["usage"]["completion_tokens_details"]["reasoning_tokens"], 48);
    assert_eq!(first["usage"]["prompt_tokens_details"]["cached_tokens"], 96);
    let sent: Value = received(&google).await[0].body_json().expect("Gemini body");
    assert_eq!(
        sent["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 24576, "includeThoughts": true})
    );

    // Act: the second turn replays the call as a client that keeps only the id would.
    let call = &message["tool_calls"][0];
    let id = call["id"].as_str().expect("id").to_owned();
    messages.push(json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": id, "type": "function", "function": call["function"].clone()}
    ]}));
    messages.push(json!({"role": "tool", "tool_call_id": id, "content": "a.txt"}));
    let response = app
        .post_chat(&json!({"model": MODEL, "messages": messages, "tools": tools()}))
        .await;

    // Assert
    assert_eq!(response.status(), 200, "Gemini got its signature back");
    assert_eq!(
        json(response).await["choices"][0]["message"]["content"],
        "There is one file, a.txt."
    );
    let sent: Value = received(&google).await[1].body_json().expect("Gemini body");
    assert_eq!(sent["contents"][1]["parts"][0]["thoughtSignature"], SIGNATURE);
    let rows = app.history_rows(2).await;
    assert!(
        rows.iter()
            .all(|r| r["reasoning_tokens"] == 48 && r["cached_tokens"] == 96)
    );
}

#[tokio::test]
async fn streamed_thoughts_arrive_as_reasoning_deltas_before_the_answer() {
    // Arrange
    let google = SseMock::start().await;
    let app = gemini_app(google.root_url() + "/v1beta").await;
    let event = |parts: Value, last: bool| {
        let mut r =
            json!({"candidates": [{"content": {"parts": parts, "role": "model"}, "index": 0}], "modelVersion": MODEL});
        if last {
            r["candidates"][0]["finishReason"] = json!("STOP");
            r["usageMetadata"] = json!({"promptTokenCount": 20, "candidatesTokenCount": 4, "thoughtsTokenCount": 31, "totalTokenCount": 55});
        }
        format!("data: {r}\n\n")
    };
    let pending = tokio::spawn(
        app.post_chat(&json!({"model": MODEL, "stream": true, "reasoning_effort": "low",
        "messages": [{"role": "user", "content": "Why is the sky blue?"}]})),
    );
    let upstream = google.next_connection().await;

    // Act + Assert: the thought reaches the client before the answer is sent.
    upstream.send_raw(event(
        json!([{"text": "Rayleigh scattering, shorter wavelengths.", "thought": true}]),
        false,
    ));
    let response = pending.await.expect("request task");
    assert_eq!(response.status(), 200);
    let mut reader = SseReader::new(response);
    assert_eq!(reader.next_json().await["choices"][0]["delta"]["role"], "assistant");
    let thought = reader.next_json().await;
    assert_eq!(
        thought["choices"][0]["delta"],
        json!({"reasoning_content": "Rayleigh scattering, shorter wavelengths."})
    );
    upstream.send_raw(event(json!([{"text": "Scattering."}]), true));
    upstream.finish();
    let rest = reader.rest().await;
    assert_eq!(rest.last().map(String::as_str), Some("[DONE]"));
    let content: String = rest
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(content, "Scattering.");
    let sent: Value = serde_json::from_slice(&upstream.request.body).expect("Gemini body");
    assert_eq!(sent["generationConfig"]["thinkingConfig"]["thinkingBudget"], 1024);
    let row = &app.history_rows(1).await[0];
    assert_eq!(
        (&row["reasoning_tokens"], &row["completion_tokens"]),
        (&json!(31), &json!(35))
    );
}

// --- OpenAI-compatible upstreams: their reasoning fields pass through ------------------------

#[tokio::test]
async fn reasoning_fields_of_chat_upstreams_reach_the_client_untouched() {
    // Arrange: vLLM's and DeepSeek's `reasoning_content`, OpenRouter's and Ollama's `reasoning`.
    let upstream = MockServer::start().await;
    let reply = r#"{"id":"chatcmpl-9","object":"chat.completion","created":1730000000,"model":"deepseek-reasoner","choices":[{"index":0,"message":{"role":"assistant","reasoning_content":"9.11 < 9.9 since 11 < 90 in hundredths.","reasoning":"same thought","content":"9.9 is larger."},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":18,"completion_tokens":40,"total_tokens":58,"completion_tokens_details":{"reasoning_tokens":30},"prompt_cache_hit_tokens":0,"prompt_cache_miss_tokens":18}}"#;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(reply, "application/json"))
        .expect(1)
        .mount(&upstream)
        .await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("deepseek", upstream_url(&upstream)).models(&["deepseek-reasoner"]))
        .spawn()
        .await;

    // Act
    let response = app
        .post_chat(&json!({"model": "deepseek-reasoner", "messages": [{"role": "user", "content": "9.11 or 9.9?"}]}))
        .await;

    // Assert
    assert_eq!(response.text().await.expect("body"), reply, "byte for byte");
    assert_eq!(app.history_rows(1).await[0]["reasoning_tokens"], 30);
}

#[tokio::test]
async fn streamed_reasoning_deltas_of_chat_upstreams_reach_the_client_untouched() {
    // Arrange
    let upstream = SseMock::start().await;
    let chunk = |delta: Value| {
        json!({"id": "chatcmpl-7", "object": "chat.completion.chunk", "created": 1, "model": "qwen3",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": null}]})
        .to_string()
    };
    let sent = [
        chunk(json!({"role": "assistant", "content": ""})),
        chunk(json!({"reasoning_content": "Think about"})),
        chunk(json!({"reasoning": " it."})),
        chunk(json!({"content": "Done."})),
    ];
    let mut events: Vec<String> = sent.iter().map(|c| format!("data: {c}\n\n")).collect();
    events.push("data: [DONE]\n\n".to_owned());
    upstream.autoplay_raw(events).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("vllm", upstream.base_url()).models(&["qwen3"]))
        .spawn()
        .await;

    // Act
    let rest = SseReader::new(
        app.post_chat(&json!({"model": "qwen3", "stream": true,
            "messages": [{"role": "user", "content": "Hi"}]}))
            .await,
    )
    .rest()
    .await;

    // Assert
    assert_eq!(rest.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(&rest[..sent.len()], &sent[..], "each chunk as the upstream sent it");
}
