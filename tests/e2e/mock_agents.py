"""Strict upstreams for the coding-agent check (`agents_check.py`), stdlib only.

Four servers, each as strict as the API it plays, each scripting one tool round trip: while the
conversation holds no tool result, the answer calls the agent's file tool on `secret_path`
(Claude Code's `Read` with `file_path`, else `Bash`; Codex's `exec_command` with `cat <path>`, or,
with Codex's default model, whose tools arrive in an `additional_tools` input item, its JavaScript
`exec` custom tool running `tools.exec_command`: a `custom_tool_call` from the Responses server, a
call of the flattened `functions__exec` with `{"input": <JavaScript>}` from the chat server); once a
tool result arrives, the answer quotes it ("The file says: ..."). Every request is recorded in
`.requests` (path, headers, body, status answered, error body, when it arrived), so a check can say
what an upstream refused and assert on what reached it. A server may take its time like a real
model: `latency` (seconds, a range) before it answers, `event_delay` between stream events; a caller
that hangs up meanwhile is noticed, as the real APIs notice it, and its request recorded with status
`"abandoned"` (so is a stream whose reader went away).

- `serve_anthropic`: Messages API (https://docs.anthropic.com/en/api/messages) and
  `/v1/messages/count_tokens`. Needs `x-api-key` and `anthropic-version`; refuses unknown top-level
  fields ("<field>: Extra inputs are not permitted"), `context_management` unless `anthropic-beta`
  lists `context-management-2025-06-27`, thinking blocks whose signature it did not issue, and the
  tool_use/tool_result pairing the real API refuses. With `thinking` on, it answers a signed
  thinking block before the tool call, and, like the real API, wants it back before that call.
  Streams the named SSE events of https://docs.anthropic.com/en/docs/build-with-claude/streaming.
- `serve_chat`: an OpenAI-compatible server with chat completions only (vLLM-like): `/v1/responses`
  is a 404 `{"detail": "Not Found"}`. Refuses unknown top-level and message fields (`thinking_blocks`),
  tool types other than `function`, function names outside `^[a-zA-Z0-9_-]{1,64}$`, and tool messages
  that answer no call.
- `serve_responses`: OpenAI itself, with native Responses (https://platform.openai.com/docs/api-reference/responses)
  streaming its semantic events, and chat completions as strict as `serve_chat`'s. Refuses unknown parameters and tool types, function outputs with no
  call, and reasoning `encrypted_content` it did not issue; with `include: ["reasoning.encrypted_content"]`
  it answers an encrypted reasoning item first, as OpenAI does.
- `serve_gemini`: `models/{model}:generateContent` and `:streamGenerateContent?alt=sse`
  (https://ai.google.dev/api/generate-content). Needs `x-goog-api-key`; refuses unknown fields
  (Gemini's "Unknown name ... Cannot find field."), schema keywords outside Gemini's `Schema`, and, on
  `gemini-3*` models, a function call sent back without the `thoughtSignature` it issued.
"""

import base64
import json
import random
import re
import secrets
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Abandoned(Exception):
    """The caller hung up before the answer was whole."""


class Refused(Exception):
    """A request the real API would refuse: status plus the vendor's error body."""

    def __init__(self, status, body):
        super().__init__(json.dumps(body))
        self.status, self.body = status, body


def exec_script(path):
    """JavaScript for Codex's `exec` tool: read `path` through the nested `exec_command` tool."""
    return f"const r = await tools.exec_command({{cmd: {json.dumps('cat ' + path)}}});\ntext(r.output);\n"


def tool_call_for(names, path):
    """The call that makes an agent read `path`, given the tool names it offers."""
    if "Read" in names:
        return "Read", {"file_path": path}
    if "exec_command" in names:
        return "exec_command", {"cmd": f"cat {path}"}
    if "functions__exec" in names:
        return "functions__exec", {"input": exec_script(path)}
    if "Bash" in names:
        return "Bash", {"command": f"cat {path}", "description": "Print the file"}
    return None


def quote(output):
    return f"The file says: {output.strip()}"


class _Base(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # per-server: requests, issued tokens, secret_path, keys

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        raw = self.rfile.read(length)
        record = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": None,
                  "at": time.monotonic()}
        self.state.requests.append(record)
        try:
            record["body"] = json.loads(raw or b"{}")
            if not isinstance(record["body"], dict):
                raise ValueError("not an object")
        except ValueError:
            record["status"] = 400
            self._json(400, self.invalid_json())
            return
        try:
            self.handle_request(record["body"])
            record["status"] = 200
        except Refused as refused:
            record["status"], record["error"] = refused.status, refused.body
            self._json(refused.status, refused.body)
        except (Abandoned, ConnectionError):
            record["status"] = "abandoned"
            self.close_connection = True

    def think(self):
        """Waits `latency` before an answer, and raises `Abandoned` if the caller hangs up meanwhile."""
        low, high = self.state.latency
        ready, _, _ = select.select([self.connection], [], [], random.uniform(low, high))
        if ready and not self.connection.recv(1, socket.MSG_PEEK):
            raise Abandoned()

    def _json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _start_stream(self):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

    def _chunk(self, data):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _event(self, data):
        """One stream event, `event_delay` after the last, as a model emits tokens."""
        if self.state.event_delay:
            time.sleep(self.state.event_delay)
        self._chunk(data)

    def _end_stream(self):
        self._chunk(b"")

    def issue(self, prefix, urlsafe=False):
        # Anthropic signatures and Gemini thought signatures are standard base64 (with + / =),
        # OpenAI's encrypted reasoning is URL-safe base64 (Fernet).
        # The prefix is raw bytes, so a token stays valid base64 as a whole.
        raw = prefix + secrets.token_bytes(48)
        token = (base64.urlsafe_b64encode(raw) if urlsafe else base64.b64encode(raw)).decode()
        self.state.issued.add(token)
        return token


# ---------------------------------------------------------------- Anthropic

ANTHROPIC_FIELDS = {"model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
                    "temperature", "top_k", "top_p", "tools", "tool_choice", "thinking", "service_tier",
                    "container", "mcp_servers", "context_management", "output_config"}
COUNT_FIELDS = {"model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers",
                "context_management", "output_config"}
CONTEXT_BETA = "context-management-2025-06-27"
ANTHROPIC_TOOL_FIELDS = {"type", "name", "description", "input_schema", "cache_control", "defer_loading",
                         "input_examples", "strict", "allowed_callers"}
ANTHROPIC_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")


def ant_error(status, kind, message):
    return Refused(status, {"type": "error", "error": {"type": kind, "message": message}})


class Anthropic(_Base):
    def invalid_json(self):
        return {"type": "error", "error": {"type": "invalid_request_error", "message": "invalid JSON body"}}

    def handle_request(self, body):
        path, _, query = self.path.partition("?")
        if query not in ("", "beta=true") or path not in ("/v1/messages", "/v1/messages/count_tokens"):
            raise ant_error(404, "not_found_error", f"Not found: {self.path}")
        if self.headers.get("x-api-key") != self.state.api_key:
            raise ant_error(401, "authentication_error", "invalid x-api-key")
        if not self.headers.get("anthropic-version"):
            raise ant_error(400, "invalid_request_error", "anthropic-version: header is required")
        counting = path.endswith("/count_tokens")
        self.check(body, COUNT_FIELDS if counting else ANTHROPIC_FIELDS, counting)
        if counting:
            tokens = max(1, len(json.dumps([body.get("system"), body["messages"], body.get("tools")])) // 4)
            self.state.counted.append(tokens)
            self._json(200, {"input_tokens": tokens})
            return
        self.answer(body)

    def check(self, body, fields, counting):
        for key in body:
            if key not in fields:
                raise ant_error(400, "invalid_request_error", f"{key}: Extra inputs are not permitted")
        betas = {b.strip() for b in self.headers.get("anthropic-beta", "").split(",")}
        if "context_management" in body and CONTEXT_BETA not in betas:
            raise ant_error(400, "invalid_request_error", "context_management: Extra inputs are not permitted")
        required = ("model", "messages") if counting else ("model", "messages", "max_tokens")
        for key in required:
            if key not in body:
                raise ant_error(400, "invalid_request_error", f"{key}: Field required")
        thinking_on = (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
        self.check_tools(body.get("tools") or [])
        self.check_messages(body["messages"], thinking_on)

    @staticmethod
    def check_tools(tools):
        for i, tool in enumerate(tools):
            kind = tool.get("type", "custom")
            if kind != "custom":
                if not re.match(r"^(web_search|web_fetch|code_execution|bash|text_editor|memory|tool_search_tool)_", kind):
                    raise ant_error(400, "invalid_request_error", f"tools.{i}: Input tag '{kind}' found using "
                                    "'type' does not match any of the expected tags")
                continue
            for key in tool:
                if key not in ANTHROPIC_TOOL_FIELDS:
                    raise ant_error(400, "invalid_request_error", f"tools.{i}.custom.{key}: Extra inputs are not permitted")
            if not ANTHROPIC_TOOL_NAME.match(tool.get("name", "")):
                raise ant_error(400, "invalid_request_error",
                                f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
            if not isinstance(tool.get("input_schema"), dict):
                raise ant_error(400, "invalid_request_error", f"tools.{i}.custom.input_schema: Field required")

    def check_messages(self, messages, thinking_on):
        pending = set()  # tool_use ids the previous assistant message opened
        last_assistant = None
        for i, message in enumerate(messages):
            role, content = message.get("role"), message.get("content")
            if role not in ("user", "assistant", "system"):
                raise ant_error(400, "invalid_request_error", f"messages.{i}.role: Input should be 'user' or 'assistant'")
            blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
            results = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
            if not pending <= results:
                missing = ", ".join(sorted(pending - results))
                raise ant_error(400, "invalid_request_error",
                                f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks "
                                f"immediately after: {missing}. Each `tool_use` block must have a corresponding "
                                "`tool_result` block in the next message.")
            for j, block in enumerate(blocks):
                kind = block.get("type")
                if kind == "tool_result" and block.get("tool_use_id") not in pending:
                    raise ant_error(400, "invalid_request_error",
                                    f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` "
                                    f"blocks: {block.get('tool_use_id')}. Each `tool_result` block must have a "
                                    "corresponding `tool_use` block in the previous message.")
                if kind == "thinking" and block.get("signature") not in self.state.issued:
                    raise ant_error(400, "invalid_request_error",
                                    f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block")
                if kind == "redacted_thinking" and block.get("data") not in self.state.issued:
                    raise ant_error(400, "invalid_request_error",
                                    f"messages.{i}.content.{j}: Invalid `data` in `redacted_thinking` block")
            pending = {b.get("id") for b in blocks if b.get("type") == "tool_use"} if role == "assistant" else set()
            if role == "assistant":
                last_assistant = (i, blocks)
        if thinking_on and last_assistant and any(b.get("type") == "tool_use" for b in last_assistant[1]):
            i, blocks = last_assistant
            if blocks[0].get("type") not in ("thinking", "redacted_thinking"):
                raise ant_error(400, "invalid_request_error",
                                f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but "
                                f"found `{blocks[0].get('type')}`. When `thinking` is enabled, a final `assistant` "
                                "message must start with a thinking block (preceeding the lastmost set of "
                                "`tool_use` and `tool_result` blocks).")

    def tool_output(self, messages):
        if not messages or not isinstance(messages[-1].get("content"), list):
            return None
        for block in messages[-1]["content"]:
            if block.get("type") == "tool_result":
                content = block.get("content")
                if isinstance(content, list):
                    content = "".join(p.get("text", "") for p in content)
                return content or ""
        return None

    def answer(self, body):
        output = self.tool_output(body["messages"])
        names = [t.get("name") for t in body.get("tools") or []]
        call = tool_call_for(names, self.state.secret_path) if output is None else None
        blocks = []
        thinking = body.get("thinking") or {}
        if call and thinking.get("type") in ("enabled", "adaptive"):
            text = "" if thinking.get("display") == "omitted" else "The user wants the file read."
            blocks.append({"type": "thinking", "thinking": text, "signature": self.issue(b"\x12")})
        if call:
            blocks.append({"type": "tool_use", "id": "toolu_" + secrets.token_hex(12), "name": call[0],
                           "input": call[1]})
        else:
            blocks.append({"type": "text", "text": quote(output) if output is not None else "ok"})
        stop = "tool_use" if call else "end_turn"
        message = {"id": "msg_" + secrets.token_hex(12), "type": "message", "role": "assistant",
                   "model": body["model"], "content": blocks, "stop_reason": stop, "stop_sequence": None,
                   "usage": {"input_tokens": 40, "output_tokens": 12}}
        if not body.get("stream"):
            self._json(200, message)
            return
        self._start_stream()
        start = dict(message, content=[], stop_reason=None, usage={"input_tokens": 40, "output_tokens": 1})
        events = [("message_start", {"type": "message_start", "message": start}), ("ping", {"type": "ping"})]
        for index, block in enumerate(blocks):
            events += self.block_events(index, block)
        events += [("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                      "usage": {"output_tokens": 12}}),
                   ("message_stop", {"type": "message_stop"})]
        for name, data in events:
            self._chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        self._end_stream()

    @staticmethod
    def block_events(index, block):
        kind = block["type"]
        empty = {"thinking": {"type": "thinking", "thinking": "", "signature": ""},
                 "tool_use": dict(block, input={}), "text": {"type": "text", "text": ""}}[kind]
        events = [("content_block_start", {"type": "content_block_start", "index": index, "content_block": empty})]
        if kind == "thinking":
            deltas = [{"type": "thinking_delta", "thinking": block["thinking"]}] if block["thinking"] else []
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif kind == "tool_use":
            args = json.dumps(block["input"])
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in (args[:7], args[7:])]
        else:
            words = block["text"].split(" ")
            deltas = [{"type": "text_delta", "text": w + (" " if k < len(words) - 1 else "")}
                      for k, w in enumerate(words)]
        events += [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
                   for d in deltas]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        return events


# ---------------------------------------------------------------- OpenAI chat completions only

CHAT_FIELDS = {"model", "messages", "stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls",
               "max_tokens", "max_completion_tokens", "temperature", "top_p", "n", "stop", "presence_penalty",
               "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "user", "seed", "response_format",
               "reasoning_effort", "metadata", "store", "service_tier", "modalities", "audio", "prediction",
               "verbosity", "prompt_cache_key", "safety_identifier", "web_search_options"}
MESSAGE_FIELDS = {"system": {"role", "content", "name"}, "developer": {"role", "content", "name"},
                  "user": {"role", "content", "name"},
                  "assistant": {"role", "content", "name", "tool_calls", "refusal", "audio", "function_call"},
                  "tool": {"role", "content", "tool_call_id"}}
FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def oai_error(status, message, param=None, code=None):
    return Refused(status, {"error": {"message": message, "type": "invalid_request_error", "param": param,
                                      "code": code}})


class Chat(_Base):
    def invalid_json(self):
        return {"error": {"message": "invalid JSON body", "type": "invalid_request_error", "param": None,
                          "code": None}}

    def handle_request(self, body):
        if self.path != "/v1/chat/completions":
            # What FastAPI-based servers (vLLM, SGLang) answer for a route they do not serve.
            raise Refused(404, {"detail": "Not Found"})
        if self.headers.get("authorization") != f"Bearer {self.state.api_key}":
            raise Refused(401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                          "param": None, "code": "invalid_api_key"}})
        for key in body:
            if key not in CHAT_FIELDS:
                raise oai_error(400, f"Unrecognized request argument supplied: {key}")
        names = self.check_tools(body.get("tools") or [])
        self.check_messages(body.get("messages") or [])
        output = None
        if body["messages"] and body["messages"][-1].get("role") == "tool":
            content = body["messages"][-1].get("content")
            output = content if isinstance(content, str) else "".join(p.get("text", "") for p in content or [])
        call = tool_call_for(names, self.state.secret_path) if output is None else None
        last = body["messages"][-1].get("content")
        # Without a tool in play, echo the last message, so a check can see which turn was answered.
        echo = last if isinstance(last, str) else " ".join(p.get("text", "") for p in last or [])
        self.reply(body, call, quote(output) if output is not None else f"echo: {echo}")

    def check_tools(self, tools):
        names = []
        for i, tool in enumerate(tools):
            if tool.get("type") != "function":
                raise oai_error(400, f"Invalid value: '{tool.get('type')}'. Supported values are: 'function'.",
                                f"tools[{i}].type", "invalid_value")
            name = (tool.get("function") or {}).get("name", "")
            if not FUNCTION_NAME.match(name):
                raise oai_error(400, f"Invalid 'tools[{i}].function.name': string does not match pattern. "
                                "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                                f"tools[{i}].function.name", "invalid_value")
            names.append(name)
        return names

    def check_messages(self, messages):
        if not messages:
            raise oai_error(400, "'messages' must contain at least one message.", "messages")
        pending = set()
        for i, message in enumerate(messages):
            role = message.get("role")
            allowed = MESSAGE_FIELDS.get(role)
            if allowed is None:
                raise oai_error(400, f"Invalid value: '{role}'.", f"messages[{i}].role", "invalid_value")
            extra = sorted(set(message) - allowed)
            if extra:
                raise oai_error(400, f"Additional properties are not allowed ('{extra[0]}' was unexpected) - "
                                f"'messages.{i}'", f"messages[{i}]")
            if role == "tool":
                if message.get("tool_call_id") not in pending:
                    raise oai_error(400, "Invalid parameter: messages with role 'tool' must be a response to a "
                                    "preceeding message with 'tool_calls'.", f"messages.[{i}].role")
                pending.discard(message["tool_call_id"])
                continue
            if pending:
                raise oai_error(400, "An assistant message with 'tool_calls' must be followed by tool messages "
                                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                                f"response messages: {', '.join(sorted(pending))}", "messages")
            pending = {c.get("id") for c in message.get("tool_calls") or []}

    def reply(self, body, call, text):
        self.think()
        model = body["model"]
        base = {"id": "chatcmpl-" + secrets.token_hex(8), "created": int(time.time()), "model": model}
        calls = None
        if call:
            calls = [{"id": "call_" + secrets.token_hex(8), "type": "function",
                      "function": {"name": call[0], "arguments": json.dumps(call[1])}}]
        finish = "tool_calls" if call else "stop"
        usage = {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}
        if not body.get("stream"):
            message = {"role": "assistant", "content": None if call else text, "refusal": None}
            if calls:
                message["tool_calls"] = calls
            self._json(200, dict(base, object="chat.completion", usage=usage, choices=[
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}]))
            return
        chunk = dict(base, object="chat.completion.chunk")
        deltas = [{"role": "assistant", "content": None if call else ""}]
        if calls:
            first = dict(calls[0], index=0, function={"name": call[0], "arguments": ""})
            args = calls[0]["function"]["arguments"]
            deltas += [{"tool_calls": [first]}] + [{"tool_calls": [{"index": 0, "function": {"arguments": p}}]}
                                                   for p in (args[:6], args[6:])]
        else:
            deltas += [{"content": w + " "} for w in text.split(" ")]
        events = [dict(chunk, choices=[{"index": 0, "delta": d, "logprobs": None, "finish_reason": None}])
                  for d in deltas]
        events.append(dict(chunk, choices=[{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}]))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(dict(chunk, choices=[], usage=usage))
        self._start_stream()
        for event in events:
            self._event(f"data: {json.dumps(event)}\n\n".encode())
        self._chunk(b"data: [DONE]\n\n")
        self._end_stream()


# ---------------------------------------------------------------- OpenAI native Responses

RESPONSES_FIELDS = {"background", "conversation", "include", "input", "instructions", "max_output_tokens",
                    "max_tool_calls", "metadata", "model", "parallel_tool_calls", "previous_response_id", "prompt",
                    "prompt_cache_key", "prompt_cache_retention", "reasoning", "safety_identifier", "service_tier",
                    "store", "stream", "stream_options", "temperature", "text", "tool_choice", "tools",
                    "top_logprobs", "top_p", "truncation", "user", "client_metadata"}
RESPONSES_TOOLS = ["function", "namespace", "custom", "web_search", "web_search_preview",
                   "web_search_preview_2025_03_11", "web_search_2025_08_26", "file_search", "code_interpreter",
                   "image_generation", "computer_use_preview", "mcp", "local_shell", "shell", "apply_patch",
                   "tool_search"]


class Responses(_Base):
    def invalid_json(self):
        return Chat.invalid_json(self)

    def handle_request(self, body):
        if self.path != "/v1/responses":
            raise oai_error(404, f"Invalid URL (POST {self.path})")
        if self.headers.get("authorization") != f"Bearer {self.state.api_key}":
            raise Refused(401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                          "param": None, "code": "invalid_api_key"}})
        for key in body:
            if key not in RESPONSES_FIELDS:
                raise oai_error(400, f"Unknown parameter: '{key}'.", key, "unknown_parameter")
        names = self.check_tools(body.get("tools") or [])
        items = body.get("input")
        items = [{"type": "message", "role": "user", "content": items}] if isinstance(items, str) else items or []
        for i, item in enumerate(items):
            if item.get("type") == "additional_tools":
                if item.get("role") != "developer":
                    raise oai_error(400, f"Invalid value: '{item.get('role')}'. Supported values are: 'developer'.",
                                    f"input[{i}].role", "invalid_value")
                names += self.check_tools(item.get("tools") or [], f"input[{i}].tools")
        output = self.check_input(items)
        call = None
        if output is None and "functions.exec" in names:
            call = ("exec", exec_script(self.state.secret_path))
        elif output is None:
            call = tool_call_for(names, self.state.secret_path)
        self.reply(body, call, quote(output) if output is not None else "ok")

    def check_tools(self, tools, where="tools", namespace=None):
        """Function names, and `<namespace>.<name>` for a namespace's custom tools."""
        names = []
        for i, tool in enumerate(tools):
            kind = tool.get("type")
            if kind not in RESPONSES_TOOLS or (namespace and kind not in ("function", "custom")):
                supported = ", ".join(f"'{t}'" for t in RESPONSES_TOOLS)
                raise oai_error(400, f"Invalid value: '{kind}'. Supported values are: {supported}.",
                                f"{where}[{i}].type", "invalid_value")
            if kind == "namespace":
                names += self.check_tools(tool.get("tools") or [], f"{where}[{i}].tools", tool.get("name"))
            if kind == "function":
                names.append(tool.get("name"))
            if kind == "custom" and namespace:
                names.append(f"{namespace}.{tool.get('name')}")
        return names

    def check_input(self, items):
        calls, output = set(), None
        for i, item in enumerate(items):
            kind = item.get("type", "message")
            if kind in ("function_call", "custom_tool_call"):
                calls.add((kind, item.get("call_id")))
            elif kind in ("function_call_output", "custom_tool_call_output"):
                call_kind = kind.removesuffix("_output")
                if (call_kind, item.get("call_id")) not in calls:
                    what = "function call" if call_kind == "function_call" else "custom tool call"
                    raise oai_error(400, f"No tool call found for {what} output with call_id "
                                    f"{item.get('call_id')}.", f"input[{i}]")
                output = item.get("output")
                if isinstance(output, list):
                    output = "".join(p.get("text", "") for p in output)
            elif kind == "reasoning" and item.get("encrypted_content") is not None:
                if item["encrypted_content"] not in self.state.issued:
                    raise oai_error(400, f"The encrypted content for item {item.get('id')} could not be verified.",
                                    None, "invalid_encrypted_content")
        return output

    def reply(self, body, call, text):
        response_id = "resp_" + secrets.token_hex(12)
        items = []
        if call and "reasoning.encrypted_content" in (body.get("include") or []):
            items.append({"id": "rs_" + secrets.token_hex(8), "type": "reasoning", "summary": [],
                          "encrypted_content": self.issue(b"\x80", urlsafe=True)})
        if call and isinstance(call[1], str):
            items.append({"id": "ctc_" + secrets.token_hex(8), "type": "custom_tool_call", "status": "completed",
                          "call_id": "call_" + secrets.token_hex(8), "namespace": "functions", "name": call[0],
                          "input": call[1]})
        elif call:
            items.append({"id": "fc_" + secrets.token_hex(8), "type": "function_call", "status": "completed",
                          "call_id": "call_" + secrets.token_hex(8), "name": call[0],
                          "arguments": json.dumps(call[1])})
        else:
            items.append({"id": "msg_" + secrets.token_hex(8), "type": "message", "status": "completed",
                          "role": "assistant", "content": [{"type": "output_text", "text": text,
                                                            "annotations": [], "logprobs": []}]})
        response = {"id": response_id, "object": "response", "created_at": int(time.time()), "status": "completed",
                    "error": None, "incomplete_details": None, "instructions": body.get("instructions"),
                    "model": body["model"], "output": items, "parallel_tool_calls": True,
                    "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
                    "store": body.get("store", True),
                    "usage": {"input_tokens": 40, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 12,
                              "output_tokens_details": {"reasoning_tokens": 4}, "total_tokens": 52}}
        if not body.get("stream"):
            self._json(200, response)
            return
        self._start_stream()
        pending = dict(response, status="in_progress", output=[], usage=None)
        events = [{"type": "response.created", "response": pending},
                  {"type": "response.in_progress", "response": pending}]
        for index, item in enumerate(items):
            events += self.item_events(index, item)
        events.append({"type": "response.completed", "response": response})
        for seq, event in enumerate(events):
            event["sequence_number"] = seq
            self._chunk(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
        self._end_stream()

    @staticmethod
    def item_events(index, item):
        at = {"output_index": index, "item_id": item["id"]}
        if item["type"] == "reasoning":
            return [{"type": "response.output_item.added", "output_index": index, "item": item},
                    {"type": "response.output_item.done", "output_index": index, "item": item}]
        if item["type"] == "custom_tool_call":
            text = item["input"]
            return [{"type": "response.output_item.added", "output_index": index,
                     "item": dict(item, input="", status="in_progress")},
                    *[dict(at, type="response.custom_tool_call_input.delta", delta=p) for p in (text[:9], text[9:])],
                    dict(at, type="response.custom_tool_call_input.done", input=text),
                    {"type": "response.output_item.done", "output_index": index, "item": item}]
        if item["type"] == "function_call":
            args = item["arguments"]
            return [{"type": "response.output_item.added", "output_index": index,
                     "item": dict(item, arguments="", status="in_progress")},
                    *[dict(at, type="response.function_call_arguments.delta", delta=p) for p in (args[:6], args[6:])],
                    dict(at, type="response.function_call_arguments.done", arguments=args),
                    {"type": "response.output_item.done", "output_index": index, "item": item}]
        part = item["content"][0]
        text = part["text"]
        return [{"type": "response.output_item.added", "output_index": index,
                 "item": dict(item, content=[], status="in_progress")},
                dict(at, type="response.content_part.added", content_index=0, part=dict(part, text="")),
                *[dict(at, type="response.output_text.delta", content_index=0, delta=w + " ", logprobs=[])
                  for w in text.split(" ")],
                dict(at, type="response.output_text.done", content_index=0, text=text, logprobs=[]),
                dict(at, type="response.content_part.done", content_index=0, part=part),
                {"type": "response.output_item.done", "output_index": index, "item": item}]


# ---------------------------------------------------------------- Gemini

GEMINI_FIELDS = {"contents", "tools", "toolConfig", "safetySettings", "systemInstruction", "generationConfig",
                 "cachedContent", "labels", "tool_config", "safety_settings", "system_instruction",
                 "generation_config", "cached_content"}
PART_FIELDS = {"text", "inlineData", "fileData", "functionCall", "functionResponse", "thought", "thoughtSignature",
               "executableCode", "codeExecutionResult", "videoMetadata", "partMetadata", "mediaResolution"}
DECLARATION_FIELDS = {"name", "description", "parameters", "parametersJsonSchema", "response", "responseJsonSchema",
                      "behavior"}
SCHEMA_FIELDS = {"type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties",
                 "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example",
                 "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum"}
GEMINI_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$")


class OpenAI(_Base):
    """OpenAI itself: chat completions and native Responses on one server, as api.openai.com serves them."""

    def invalid_json(self):
        return Chat.invalid_json(self)

    def handle_request(self, body):
        api = Chat if self.path == "/v1/chat/completions" else Responses
        # One request seen through the other handler class: same socket, same state.
        view = api.__new__(api)
        view.__dict__ = self.__dict__
        view.state = self.state
        api.handle_request(view, body)


def gem_error(status, message, code="INVALID_ARGUMENT"):
    return Refused(status, {"error": {"code": status, "message": message, "status": code}})


def unknown_name(name, where):
    at = f" at '{where}'" if where else ""
    return gem_error(400, f"Invalid JSON payload received. Unknown name \"{name}\"{at}: Cannot find field.")


class Gemini(_Base):
    def invalid_json(self):
        return {"error": {"code": 400, "message": "Invalid JSON payload received.", "status": "INVALID_ARGUMENT"}}

    def handle_request(self, body):
        path, _, query = self.path.partition("?")
        if not path.startswith("/v1beta/models/") or ":" not in path:
            raise gem_error(404, f"Requested entity was not found: {path}", "NOT_FOUND")
        model, method = path[len("/v1beta/models/"):].split(":", 1)
        if method not in ("generateContent", "streamGenerateContent"):
            raise gem_error(404, f"Method not found: {method}", "NOT_FOUND")
        if method == "streamGenerateContent" and "alt=sse" not in query.split("&"):
            raise gem_error(400, "this mock streams only with alt=sse")
        if self.headers.get("x-goog-api-key") != self.state.api_key:
            raise gem_error(400, "API key not valid. Please pass a valid API key.")
        for key in body:
            if key not in GEMINI_FIELDS:
                raise unknown_name(key, "")
        names = self.check_tools(body.get("tools") or [])
        output = self.check_contents(body.get("contents") or [], model)
        call = tool_call_for(names, self.state.secret_path) if output is None else None
        self.reply(model, method == "streamGenerateContent", call, quote(output) if output is not None else "ok")

    def check_tools(self, tools):
        names = []
        for i, tool in enumerate(tools):
            for j, decl in enumerate(tool.get("functionDeclarations") or tool.get("function_declarations") or []):
                where = f"tools[{i}].function_declarations[{j}]"
                for key in decl:
                    if key not in DECLARATION_FIELDS:
                        raise unknown_name(key, where)
                if not GEMINI_NAME.match(decl.get("name", "")):
                    raise gem_error(400, f"* GenerateContentRequest.{where}.name: Invalid function name. Must start "
                                    "with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores "
                                    "(_), dots (.), colons (:), or dashes (-), with a maximum length of 64.")
                if "parameters" in decl:
                    self.check_schema(decl["parameters"], f"{where}.parameters")
                names.append(decl["name"])
        return names

    def check_schema(self, schema, where):
        for key, value in schema.items():
            if key not in SCHEMA_FIELDS:
                raise unknown_name(key, where)
            if key == "properties":
                for name, sub in value.items():
                    self.check_schema(sub, f"{where}.properties[{name}].value")
            elif key == "items":
                self.check_schema(value, f"{where}.items")
            elif key == "anyOf":
                for k, sub in enumerate(value):
                    self.check_schema(sub, f"{where}.any_of[{k}]")

    def check_contents(self, contents, model):
        output = None
        for i, content in enumerate(contents):
            if content.get("role") not in ("user", "model"):
                raise gem_error(400, f"Please use a valid role: user, model. (contents[{i}])")
            for j, part in enumerate(content.get("parts") or []):
                for key in part:
                    if key not in PART_FIELDS:
                        raise unknown_name(key, f"contents[{i}].parts[{j}]")
                if "functionCall" in part and model.startswith("gemini-3") and \
                        part.get("thoughtSignature") not in self.state.issued:
                    raise gem_error(400, "Function call is missing a thought_signature in functionCall parts. This "
                                    "is required for tools to work correctly, and missing thought_signature may lead "
                                    "to degraded model performance. Additional data, function call "
                                    f"`default_api:{part['functionCall'].get('name')}` , position {j + 1}.")
                if "functionResponse" in part:
                    output = self.response_text(part["functionResponse"].get("response"))
        return output if contents and any("functionResponse" in p for p in contents[-1].get("parts") or []) else None

    @staticmethod
    def response_text(value):
        if isinstance(value, str):
            return value
        if isinstance(value, dict):
            return "".join(Gemini.response_text(v) for v in value.values())
        if isinstance(value, list):
            return "".join(Gemini.response_text(v) for v in value)
        return ""

    def reply(self, model, stream, call, text):
        usage = {"promptTokenCount": 40, "candidatesTokenCount": 12, "totalTokenCount": 52}

        def response(parts, finish):
            candidate = {"content": {"parts": parts, "role": "model"}, "index": 0}
            if finish:
                candidate["finishReason"] = "STOP"
            return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model,
                    "responseId": secrets.token_urlsafe(16)}

        if call:
            part = {"functionCall": {"name": call[0], "args": call[1]}, "thoughtSignature": self.issue(b"\n")}
            events = [response([part], True)]
        else:
            words = text.split(" ")
            events = [response([{"text": w + (" " if k < len(words) - 1 else "")}], k == len(words) - 1)
                      for k, w in enumerate(words)]
        if not stream:
            merged = events[0]
            merged["candidates"][0]["content"]["parts"] = [{"text": text}] if not call else \
                merged["candidates"][0]["content"]["parts"]
            merged["candidates"][0]["finishReason"] = "STOP"
            self._json(200, merged)
            return
        self._start_stream()
        for event in events:
            # Gemini frames its SSE events with CRLF.
            self._chunk(f"data: {json.dumps(event)}\r\n\r\n".encode())
        self._end_stream()


class State:
    """What one server remembers: its requests, the tokens it issued, what it expects."""

    def __init__(self, api_key, secret_path, latency=(0.0, 0.0), event_delay=0.0):
        self.api_key, self.secret_path = api_key, secret_path
        self.latency, self.event_delay = latency, event_delay
        self.requests, self.issued, self.counted = [], set(), []


def _serve(handler, api_key, secret_path, **pace):
    state = State(api_key, secret_path, **pace)
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (handler,), {"state": state}))
    server.daemon_threads = True
    server.state = state
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serve_anthropic(api_key, secret_path=""):
    return _serve(Anthropic, api_key, secret_path)


def serve_chat(api_key, secret_path="", latency=(0.0, 0.0), event_delay=0.0):
    return _serve(Chat, api_key, secret_path, latency=latency, event_delay=event_delay)


def serve_responses(api_key, secret_path=""):
    return _serve(OpenAI, api_key, secret_path)


def serve_gemini(api_key, secret_path=""):
    return _serve(Gemini, api_key, secret_path)
