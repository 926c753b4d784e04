#!/usr/bin/env python3
"""Writes the seed inputs of the translation targets into fuzz/corpus/<target>/seed-*.

Each input is <selector byte><body>; stream inputs are <selector><chunk-size byte><SSE body>.
The bodies are the unit tests' examples (src/dialects/translate/*) and the providers' documented
wire formats. Run from the repository root: python3 fuzz/seeds/make_seeds.py
"""
import json
import os

ROOT = os.path.join(os.path.dirname(__file__), "..", "corpus")


def j(v):
    return json.dumps(v, separators=(",", ":")).encode()


def sse(events, named=False):
    out = b""
    for e in events:
        if isinstance(e, bytes):
            out += b"data: " + e + b"\n\n"
        elif named:
            out += b"event: " + e["type"].encode() + b"\ndata: " + j(e) + b"\n\n"
        else:
            out += b"data: " + j(e) + b"\n\n"
    return out


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# --- OpenAI chat ---------------------------------------------------------------------------
chat_simple = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}]}
chat_vision = {
    "model": "claude-sonnet-4-5",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ]},
    ],
    "temperature": 1.5, "stop": "END", "user": "u-1",
}
chat_tools = {
    "model": "m", "max_tokens": 100,
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "d",
               "parameters": {"type": "object", "additionalProperties": False, "properties": {"city": {"type": "string"}}}}}],
    "tool_choice": "required", "parallel_tool_calls": False, "stream": True,
}
chat_gemini = {
    "model": "gemini-2.5-flash",
    "messages": [
        {"role": "system", "content": "You are a cat."},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
                                     {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}]},
        {"role": "assistant", "content": "Meow"},
        {"role": "user", "content": "Again"},
    ],
    "temperature": 0.5, "max_tokens": 100, "stop": ["x"], "response_format": {"type": "json_object"},
    "tool_choice": {"type": "function", "function": {"name": "set_light"}},
}
chat_refused = [
    {"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
    {"model": "m", "messages": [], "n": 2},
]

completion_tools = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}}]},
                        "finish_reason": "tool_calls"}],
                    "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}}
completion_text = {"id": "chatcmpl-9", "object": "chat.completion", "created": 1741476542, "model": "gpt-4.1",
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": "Arr", "tool_calls": [
                       {"id": "call_9", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 36, "completion_tokens": 87, "total_tokens": 123}}
completion_cut = {"model": "m", "choices": [{"index": 0, "message": {"content": "a"}, "finish_reason": "length"}]}


def chunk(delta, finish=None, cid="chatcmpl-1", model="gpt-4o"):
    return {"id": cid, "object": "chat.completion.chunk", "created": 1, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


chunks_text = sse([
    chunk({"role": "assistant", "content": ""}), chunk({"content": "Hello"}), chunk({"content": " there"}),
    chunk({}, "stop"),
    {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}},
    b"[DONE]",
])
chunks_tools = sse([
    chunk({"role": "assistant", "content": None, "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"location\":"}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
    chunk({"content": "and"}),
    chunk({"tool_calls": [{"index": 1, "id": "call_2", "type": "function", "function": {"name": "t", "arguments": "{}"}}]}),
    chunk({}, "tool_calls"),
    b"[DONE]",
])
chunks_length = sse([chunk({"content": "cut"}), chunk({}, "length"), b"[DONE]"])
chunks_error = sse([chunk({"content": "a"}), {"error": {"message": "boom", "type": "server_error", "code": "overloaded"}}])
chunks_crlf = chunks_text.replace(b"\n", b"\r\n")

# --- Anthropic --------------------------------------------------------------------------------
message_reply = {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                 "content": [{"type": "text", "text": "Let me check."},
                             {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}],
                 "stop_reason": "tool_use", "stop_sequence": None,
                 "usage": {"input_tokens": 20, "output_tokens": 7, "cache_read_input_tokens": 3}}
message_thinking = {"id": "msg_02", "type": "message", "role": "assistant", "model": "claude-opus-4",
                    "content": [{"type": "thinking", "thinking": "hmm", "signature": "x"}, {"type": "text", "text": "42"}],
                    "stop_reason": "max_tokens", "usage": {"input_tokens": 1, "output_tokens": 2}}
anthropic_events = sse([
    {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude",
                                          "stop_reason": None, "usage": {"input_tokens": 25, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}},
    {"type": "content_block_stop", "index": 1},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 15}},
    {"type": "message_stop"},
], named=True)
anthropic_thinking = sse([
    {"type": "message_start", "message": {"id": "msg_2", "type": "message", "role": "assistant", "content": [], "model": "claude",
                                          "usage": {"input_tokens": 5, "output_tokens": 0}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQB"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": "Yes"}},
    {"type": "content_block_stop", "index": 1},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}},
    {"type": "message_stop"},
], named=True)
anthropic_error = sse([{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}], named=True)

messages_request = {
    "model": "claude-sonnet-4-5", "max_tokens": 1024,
    "system": [{"type": "text", "text": "You are terse."}],
    "messages": [
        {"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
            {"type": "text", "text": "Describe this image."}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"location": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "18C", "is_error": True}]},
    ],
    "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    "stop_sequences": ["\n\nHuman:"], "stream": True, "metadata": {"user_id": "u"},
}
messages_simple = {"model": "claude-haiku", "max_tokens": 64, "system": "Be kind.", "temperature": 0.3,
                   "messages": [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi"},
                                {"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]}],
                   "tool_choice": {"type": "tool", "name": "get_weather"}}
messages_refused = [
    {"model": "m", "max_tokens": 1, "messages": [], "tools": [{"type": "web_search_20250305", "name": "web_search"}]},
    {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "document"}]}]},
]

# --- Gemini -------------------------------------------------------------------------------------
gemini_reply_call = {"candidates": [{"content": {"parts": [{"functionCall": {"name": "set_light", "args": {"on": True}}}], "role": "model"},
                                     "finishReason": "STOP", "index": 0}],
                     "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
                     "modelVersion": "gemini-2.5-flash", "responseId": "abc"}
gemini_reply_text = {"candidates": [{"content": {"parts": [{"text": "hmm", "thought": True}, {"text": "Hello"}], "role": "model"},
                                     "finishReason": "MAX_TOKENS", "index": 0}],
                     "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1, "thoughtsTokenCount": 4, "totalTokenCount": 8}}
gemini_blocked = [{"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 5}},
                  {"candidates": [{"finishReason": "SAFETY", "index": 0}]}]
gemini_stream = sse([
    {"candidates": [{"content": {"parts": [{"text": "The"}], "role": "model"}, "index": 0}],
     "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}, "modelVersion": "gemini-2.5-flash", "responseId": "r1"},
    {"candidates": [{"content": {"parts": [{"text": " end"}, {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}], "role": "model"},
                     "finishReason": "STOP", "index": 0}],
     "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 2, "totalTokenCount": 10}, "modelVersion": "gemini-2.5-flash"},
])
gemini_stream_blocked = sse([{"promptFeedback": {"blockReason": "SAFETY"}}])
gemini_stream_error = sse([{"candidates": [{"content": {"parts": [{"text": "a"}]}}]}, {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}])

# --- Responses / completions --------------------------------------------------------------------
responses_requests = [
    {"model": "gpt-4.1", "instructions": "Talk like a pirate.", "input": "Are semicolons optional?", "max_output_tokens": 50},
    {"model": "m", "input": [
        {"role": "developer", "content": "Be exact."},
        {"role": "user", "content": [{"type": "input_text", "text": "What is in this image?"}, {"type": "input_image", "image_url": "https://x/y.jpg", "detail": "low"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"location\":\"Paris\"}"},
        {"type": "function_call", "call_id": "call_2", "name": "get_time", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "{\"temperature\":18}"}],
     "tools": [{"type": "function", "name": "get_weather", "description": "d", "parameters": {"type": "object"}, "strict": True}],
     "tool_choice": {"type": "function", "name": "get_weather"}, "reasoning": {"effort": "low"},
     "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True}}},
    {"model": "m", "input": "x", "previous_response_id": "resp_1"},
    {"model": "m", "input": "x", "tools": [{"type": "web_search_preview"}]},
]
completions_requests = [
    {"model": "gpt-3.5-turbo-instruct", "prompt": "Say this is a test", "temperature": 0, "stream": True,
     "stream_options": {"include_usage": True}, "stop": ["\n"], "logit_bias": {"50256": -100}},
    {"model": "m", "prompt": ["one"], "max_tokens": 5},
    {"model": "m", "prompt": "x", "echo": True},
    {"model": "m", "prompt": ["a", "b"]},
]

# --- write ----------------------------------------------------------------------------------------
A, R, S = b"\x00", b"\x01", b"\x02"
STEP_WHOLE, STEP_SMALL = b"\x1f", b"\x04"

for i, c in enumerate([chat_simple, chat_vision, chat_tools] + chat_refused):
    write("translate_anthropic", f"request-{i}", A + j(c))
for i, m in enumerate([message_reply, message_thinking]):
    write("translate_anthropic", f"reply-{i}", R + j(m))
for i, s in enumerate([anthropic_events, anthropic_thinking, anthropic_error]):
    write("translate_anthropic", f"stream-{i}", S + (STEP_WHOLE if i else STEP_SMALL) + s)

for i, m in enumerate([messages_request, messages_simple] + messages_refused):
    write("translate_messages", f"request-{i}", A + j(m))
for i, c in enumerate([completion_tools, completion_text, completion_cut]):
    write("translate_messages", f"reply-{i}", R + j(c))
for i, s in enumerate([chunks_text, chunks_tools, chunks_error, chunks_crlf]):
    write("translate_messages", f"stream-{i}", S + (STEP_SMALL if i == 1 else STEP_WHOLE) + s)

for i, c in enumerate([chat_simple, chat_gemini, chat_tools] + chat_refused):
    write("translate_gemini", f"request-{i}", A + j(c))
for i, r in enumerate([gemini_reply_call, gemini_reply_text] + gemini_blocked):
    write("translate_gemini", f"reply-{i}", R + j(r))
for i, s in enumerate([gemini_stream, gemini_stream_blocked, gemini_stream_error]):
    write("translate_gemini", f"stream-{i}", S + (STEP_SMALL if i == 0 else STEP_WHOLE) + s)
for i, e in enumerate([{"model": "text-embedding-004", "input": "hello", "dimensions": 8}, {"model": "e", "input": ["a", "b"]},
                       {"model": "e", "input": [[1, 2]]}]):
    write("translate_gemini", f"embed-request-{i}", b"\x03" + j(e))
write("translate_gemini", "embed-reply-single", b"\x04" + j({"embedding": {"values": [0.1, -0.2, 0.3]}}))
write("translate_gemini", "embed-reply-batch", b"\x81" + j({"embeddings": [{"values": [0.1]}, {"values": [0.2]}]}))

for i, r in enumerate(responses_requests):
    write("translate_responses", f"request-{i}", A + j(r))
for i, c in enumerate([completion_text, completion_cut, completion_tools]):
    echo = j(responses_requests[i % 2]) + b"\x00" if i != 2 else b""
    write("translate_responses", f"reply-{i}", R + echo + j(c))
for i, s in enumerate([chunks_text, chunks_tools, chunks_length, chunks_error]):
    write("translate_responses", f"stream-{i}", S + (STEP_SMALL if i == 1 else STEP_WHOLE) + s)

for i, r in enumerate(completions_requests):
    write("translate_completions", f"request-{i}", A + j(r))
for i, c in enumerate([completion_text, completion_cut]):
    write("translate_completions", f"reply-{i}", R + j(c))
for i, s in enumerate([chunks_text, chunks_error, chunks_length]):
    write("translate_completions", f"stream-{i}", S + STEP_WHOLE + s)
