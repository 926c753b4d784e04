"""Minimal Anthropic and Gemini upstreams for end-to-end checks, stdlib only.

`serve_anthropic` speaks the Messages API (https://docs.anthropic.com/en/api/messages): `POST
/v1/messages` answers a `message` object, or with `"stream": true` the named SSE events
message_start ... message_stop (https://docs.anthropic.com/en/docs/build-with-claude/streaming).
`serve_gemini` speaks `models/{model}:generateContent` and `:streamGenerateContent?alt=sse`
(https://ai.google.dev/api/generate-content). Both answer a `get_weather` tool call when the request
offers tools, else the text "hello from <name>". Every request is recorded in `.requests`.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WEATHER_ARGS = {"location": "Paris, France"}


class _Base(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    name = "mock"
    requests = None

    def log_message(self, *args):
        pass

    def _read(self):
        length = int(self.headers.get("content-length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        self.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        return body

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
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

    def _chunk(self, data):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class Anthropic(_Base):
    def do_POST(self):
        body = self._read()
        if self.path != "/v1/messages" or "max_tokens" not in body:
            self._json(400, {"type": "error", "error": {"type": "invalid_request_error",
                                                       "message": "max_tokens: Field required"}})
            return
        text = f"hello from {self.name}"
        tools = bool(body.get("tools"))
        if not body.get("stream"):
            content = [{"type": "text", "text": text}]
            if tools:
                content = [{"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather",
                            "input": WEATHER_ARGS}]
            self._json(200, {"id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "type": "message", "role": "assistant",
                             "model": body["model"], "content": content,
                             "stop_reason": "tool_use" if tools else "end_turn", "stop_sequence": None,
                             "usage": {"input_tokens": 12, "output_tokens": 6}})
            return
        self._start_stream()
        events = [("message_start", {"type": "message_start", "message": {
            "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant", "content": [],
            "model": body["model"], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 1}}}), ("ping", {"type": "ping"})]
        if tools:
            args = json.dumps(WEATHER_ARGS)
            events.append(("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
                "type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": {}}}))
            for piece in (args[:10], args[10:]):
                events.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                       "delta": {"type": "input_json_delta", "partial_json": piece}}))
        else:
            events.append(("content_block_start", {"type": "content_block_start", "index": 0,
                                                   "content_block": {"type": "text", "text": ""}}))
            for word in text.split():
                events.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                       "delta": {"type": "text_delta", "text": word + " "}}))
        events += [("content_block_stop", {"type": "content_block_stop", "index": 0}),
                   ("message_delta", {"type": "message_delta",
                                      "delta": {"stop_reason": "tool_use" if tools else "end_turn",
                                                "stop_sequence": None},
                                      "usage": {"output_tokens": 6}}),
                   ("message_stop", {"type": "message_stop"})]
        for name, data in events:
            self._chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        self._chunk(b"")


class Gemini(_Base):
    def do_POST(self):
        body = self._read()
        path = self.path.split("?")[0]
        if not path.startswith("/v1beta/models/") or ":" not in path:
            self._json(404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})
            return
        model, method = path[len("/v1beta/models/"):].split(":", 1)
        text = f"hello from {self.name}"
        tools = bool(body.get("tools"))
        usage = {"promptTokenCount": 10, "candidatesTokenCount": 3, "totalTokenCount": 13}

        def response(parts, finish):
            candidate = {"content": {"parts": parts, "role": "model"}, "index": 0}
            if finish:
                candidate["finishReason"] = "STOP"
            return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model,
                    "responseId": "Ja7DaJ2eKd3s1e8Pq6SbyAU"}

        call = [{"functionCall": {"name": "get_weather", "args": WEATHER_ARGS}}]
        if method == "generateContent":
            self._json(200, response(call if tools else [{"text": text}], True))
            return
        if method != "streamGenerateContent" or "alt=sse" not in self.path:
            self._json(400, {"error": {"code": 400, "message": "bad method", "status": "INVALID_ARGUMENT"}})
            return
        self._start_stream()
        if tools:
            events = [response(call, True)]
        else:
            words = [w + " " for w in text.split()]
            events = [response([{"text": w}], i == len(words) - 1) for i, w in enumerate(words)]
        for event in events:
            # Gemini frames its SSE events with CRLF.
            self._chunk(f"data: {json.dumps(event)}\r\n\r\n".encode())
        self._chunk(b"")


def _serve(handler, name):
    requests = []
    cls = type("H", (handler,), {"name": name, "requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), cls)
    server.requests = requests
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serve_anthropic(name="claude"):
    return _serve(Anthropic, name)


def serve_gemini(name="gemini"):
    return _serve(Gemini, name)
