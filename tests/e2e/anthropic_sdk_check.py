"""End-to-end check of the gateway's other dialects with the official SDKs, against the real binary.

- The official `anthropic` SDK on `/v1/messages`, streamed and not, answered by an OpenAI-kind
  upstream (the gateway translates both ways).
- The official `openai` SDK on `chat.completions` and `responses`, streamed and not, tool calls
  included, answered by an Anthropic-kind and by a Gemini-kind upstream.

Upstreams are stdlib mocks speaking each vendor's wire format (`mock_openai.py`, `mock_native.py`).
Usage: python tests/e2e/anthropic_sdk_check.py path/to/ai-gateway
"""

import json
import os
import sys

import anthropic
import openai

sys.path.insert(0, os.path.dirname(__file__))
import mock_native  # noqa: E402
import mock_openai  # noqa: E402
from openai_sdk_check import free_port, start_gateway, wait_ready  # noqa: E402

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a given location",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}]
RESPONSES_TOOLS = [{"type": "function", "name": "get_weather", "description": "Get the current weather",
                    "parameters": TOOLS[0]["function"]["parameters"]}]
WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]


def anthropic_sdk_via_openai_upstream(port):
    client = anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}", api_key="client-key", max_retries=0)
    raw = client.messages.with_raw_response.create(
        model="gpt-mock", max_tokens=100, system="Be brief.", messages=[{"role": "user", "content": "ping"}])
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant", message
    assert message.content[0].text == "hello from openai-upstream", message
    assert message.stop_reason == "end_turn", message
    assert (message.usage.input_tokens, message.usage.output_tokens) == (5, 3), message.usage
    assert raw.headers["x-ai-gateway-provider"] == "openai-upstream", raw.headers
    print("anthropic SDK non-stream ok:", message.content[0].text)

    with client.messages.stream(model="gpt-mock", max_tokens=100,
                                messages=[{"role": "user", "content": "ping"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.strip() == "hello from openai-upstream", text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 3, final
    print("anthropic SDK stream ok:", text.strip(), "| output tokens", final.usage.output_tokens)

    try:
        client.messages.create(model="no-such-model", max_tokens=10, messages=[{"role": "user", "content": "x"}])
        raise SystemExit("expected NotFoundError")
    except anthropic.NotFoundError as e:
        assert e.body["type"] == "error" and e.body["error"]["type"] == "not_found_error", e.body
        print("anthropic SDK error ok: 404", e.body["error"]["type"])


def openai_sdk_via(port, model, name):
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="client-key", max_retries=0)

    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "ping"}])
    assert reply.choices[0].message.content == f"hello from {name}", reply

    reply = client.chat.completions.create(model=model, messages=WEATHER, tools=TOOLS)
    call = reply.choices[0].message.tool_calls[0]
    assert reply.choices[0].finish_reason == "tool_calls", reply
    assert call.function.name == "get_weather", call
    assert json.loads(call.function.arguments) == mock_native.WEATHER_ARGS, call

    args, names = "", ""
    for chunk in client.chat.completions.create(model=model, messages=WEATHER, tools=TOOLS, stream=True):
        for c in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            names += c.function.name or ""
            args += c.function.arguments or ""
    assert names == "get_weather" and json.loads(args) == mock_native.WEATHER_ARGS, (names, args)

    pieces = []
    for chunk in client.chat.completions.create(model=model, messages=[{"role": "user", "content": "ping"}],
                                                stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
    assert "".join(pieces).strip() == f"hello from {name}", pieces
    print(f"openai SDK chat.completions via {name} ok: text, tool call, streamed tool call, streamed text")

    response = client.responses.create(model=model, input="What is the weather in Paris?", tools=RESPONSES_TOOLS)
    calls = [o for o in response.output if o.type == "function_call"]
    assert response.status == "completed" and calls, response
    assert calls[0].name == "get_weather" and json.loads(calls[0].arguments) == mock_native.WEATHER_ARGS, calls

    response = client.responses.create(model=model, input="ping", instructions="Be brief.")
    assert response.output_text == f"hello from {name}", response

    deltas, completed = [], None
    for event in client.responses.create(model=model, input="ping", stream=True):
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
        elif event.type == "response.completed":
            completed = event.response
    assert "".join(deltas).strip() == f"hello from {name}", deltas
    assert completed is not None and completed.output_text.strip() == f"hello from {name}", completed

    fn_args = ""
    for event in client.responses.create(model=model, input="What is the weather in Paris?", tools=RESPONSES_TOOLS,
                                         stream=True):
        if event.type == "response.function_call_arguments.delta":
            fn_args += event.delta
    assert json.loads(fn_args) == mock_native.WEATHER_ARGS, fn_args
    print(f"openai SDK responses via {name} ok: tool call, text, streamed text, streamed tool call")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/debug/ai-gateway"
    upstream = mock_openai.serve(0, False, "openai-upstream")
    claude = mock_native.serve_anthropic("claude")
    gemini = mock_native.serve_gemini("gemini")
    port = free_port()
    config = f"""
listen: 127.0.0.1:{port}
providers:
  - id: openai-upstream
    kind: openai
    base_url: http://127.0.0.1:{upstream.server_address[1]}/v1
    api_key: sk-openai
    models: ["gpt-mock"]
  - id: claude
    kind: anthropic
    base_url: http://127.0.0.1:{claude.server_address[1]}
    api_key: sk-ant-test
    models: ["claude-mock"]
  - id: gemini
    kind: gemini
    base_url: http://127.0.0.1:{gemini.server_address[1]}/v1beta
    api_key: gemini-test-key
    models: ["gemini-mock"]
routing:
  max_retries: 0
"""
    proc, db_path = start_gateway(binary, config)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        anthropic_sdk_via_openai_upstream(port)
        openai_sdk_via(port, "claude-mock", "claude")
        openai_sdk_via(port, "gemini-mock", "gemini")
        sent = claude.requests[0]
        assert sent["headers"].get("x-api-key") == "sk-ant-test", sent["headers"]
        assert sent["headers"].get("anthropic-version") == "2023-06-01", sent["headers"]
        assert gemini.requests[0]["headers"].get("x-goog-api-key") == "gemini-test-key", gemini.requests[0]
        print("anthropic and openai SDK end-to-end check passed")
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
