//! `POST /v1/responses` with Codex's default model: its tools arrive in an `additional_tools`
//! input item, one of them the JavaScript `exec` custom tool, and a chat upstream must get them as
//! functions and the client its custom tool calls back.

use serde_json::{Value, json};
use wiremock::{MockServer, ResponseTemplate};

use crate::helpers::{TEST_MODEL, fixtures, json, received, upstream_url};
use crate::responses::{app_with, named_events, strict_chat, strict_chat_times};

/// What Codex CLI 0.171.0 sends with `gpt-6.2-sol` (tests/fixtures/responses/README.md).
const CODEX_DEFAULT: &str = include_str!("../fixtures/responses/codex_default_request.json");

/// The JavaScript the model hands the `exec` tool.
const JS: &str = "text(await tools.exec_command({cmd: \"cat x.txt\"}));";

fn codex_default_body(stream: bool) -> Value {
    let mut body = fixtures::json(CODEX_DEFAULT);
    body["model"] = json!(TEST_MODEL);
    body["stream"] = json!(stream);
    body
}

fn exec_call_completion() -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1741476542, "model": "qwen3-coder",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
            "tool_calls": [{"id": "call_exec", "type": "function",
                            "function": {"name": "functions__exec", "arguments": json!({"input": JS}).to_string()}}]}}],
        "usage": {"prompt_tokens": 900, "completion_tokens": 30, "total_tokens": 930}})
}

#[tokio::test]
async fn codex_default_model_calls_its_exec_custom_tool_through_a_chat_upstream() {
    // Arrange
    let alpha = MockServer::start().await;
    strict_chat(&alpha, ResponseTemplate::new(200).set_body_json(exec_call_completion())).await;
    let app = app_with(upstream_url(&alpha)).await;

    // Act
    let response = app.post_json("/v1/responses", &codex_default_body(false)).await;

    // Assert
    assert_eq!(response.status(), 200);
    let r = json(response).await;
    let call = &r["output"][0];
    assert_eq!(call["type"], "custom_tool_call", "{r}");
    assert_eq!(
        (&call["namespace"], &call["name"], &call["call_id"], &call["input"]),
        (&json!("functions"), &json!("exec"), &json!("call_exec"), &json!(JS))
    );
    assert_eq!(r["text"], json!({"verbosity": "low"}), "the request's text is echoed");
    let sent: Value = received(&alpha).await[0].body_json().expect("chat body");
    let tools = sent["tools"].as_array().expect("tools");
    let exec = tools
        .iter()
        .find(|t| t["function"]["name"] == "functions__exec")
        .expect("the exec tool as a function");
    assert_eq!(exec["function"]["parameters"]["required"], json!(["input"]));
    assert_eq!(exec["function"]["parameters"]["properties"]["input"]["type"], "string");
    assert!(
        tools
            .iter()
            .any(|t| t["function"]["name"] == "collaboration__spawn_agent"),
        "{tools:?}"
    );
    assert_eq!(sent["reasoning_effort"], "low");
}

#[tokio::test]
async fn a_streamed_exec_call_arrives_as_custom_tool_call_input_events() {
    // Arrange
    let alpha = MockServer::start().await;
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "qwen3-coder",
                   "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
        )
    };
    let args = json!({"input": JS}).to_string();
    let (head, tail) = args.split_at(20);
    let sse = [
        chunk(json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": "call_exec", "type": "function",
                      "function": {"name": "functions__exec", "arguments": ""}}]}), Value::Null),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": head}}]}), Value::Null),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": tail}}]}), Value::Null),
        chunk(json!({}), json!("tool_calls")),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    strict_chat(
        &alpha,
        ResponseTemplate::new(200).set_body_raw(sse, "text/event-stream"),
    )
    .await;
    let app = app_with(upstream_url(&alpha)).await;

    // Act
    let response = app.post_json("/v1/responses", &codex_default_body(true)).await;

    // Assert
    assert_eq!(response.status(), 200);
    let events = named_events(response).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.custom_tool_call_input.delta",
            "response.custom_tool_call_input.delta",
            "response.custom_tool_call_input.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let deltas: String = events
        .iter()
        .filter(|(n, _)| n == "response.custom_tool_call_input.delta")
        .map(|(_, e)| e["delta"].as_str().expect("delta"))
        .collect();
    assert_eq!(deltas, JS);
    let done = &events.last().expect("completed").1["response"]["output"][0];
    assert_eq!(
        (&done["type"], &done["namespace"], &done["input"]),
        (&json!("custom_tool_call"), &json!("functions"), &json!(JS))
    );
}

#[tokio::test]
async fn a_stored_custom_tool_call_goes_back_to_chat_as_a_call_when_the_conversation_continues() {
    // Arrange
    let alpha = MockServer::start().await;
    strict_chat_times(
        &alpha,
        ResponseTemplate::new(200).set_body_json(exec_call_completion()),
        2,
    )
    .await;
    let app = app_with(upstream_url(&alpha)).await;
    let mut first = codex_default_body(false);
    first["store"] = json!(true);
    let stored = json(app.post_json("/v1/responses", &first).await).await;
    assert_eq!(stored["output"][0]["type"], "custom_tool_call", "{stored}");
    let next = json!({"model": TEST_MODEL, "previous_response_id": stored["id"],
        "input": [{"type": "custom_tool_call_output", "call_id": "call_exec",
                   "output": [{"type": "input_text", "text": "agents-secret-1"}]}]});

    // Act
    let response = app.post_json("/v1/responses", &next).await;

    // Assert
    assert_eq!(response.status(), 200);
    let sent: Value = received(&alpha).await[1].body_json().expect("chat body");
    assert!(
        sent["tools"]
            .as_array()
            .expect("the stored additional_tools item's tools")
            .iter()
            .any(|t| t["function"]["name"] == "functions__exec")
    );
    let messages = sent["messages"].as_array().expect("messages");
    let call = &messages[messages.len() - 2]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "functions__exec", "{sent}");
    let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().expect("arguments")).expect("JSON");
    assert_eq!(args, json!({"input": JS}));
    assert_eq!(
        messages[messages.len() - 1],
        json!({"role": "tool", "tool_call_id": "call_exec", "content": "agents-secret-1"})
    );
}
