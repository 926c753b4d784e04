"""A minimal OpenAI-compatible upstream for end-to-end checks, stdlib only.

Speaks OpenAI's wire format (https://platform.openai.com/docs/api-reference/chat): a
`chat.completion` object for JSON requests and `chat.completion.chunk` SSE events ending in
`data: [DONE]` for streamed ones. `--fail` makes every chat call answer 500 in OpenAI's error shape.
A server started with `cut_after=N` drops the connection after the first N events of a stream, as a
crashed upstream would; every server keeps the bodies it was sent (`bodies`) and their headers
(`headers`, lower-cased names).
"""

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def completion(model, text):
    return {
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }


def chunk(model, delta, finish=None):
    return {
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fail = False
    name = "mock"
    cut_after = None
    bodies = []
    headers_seen = []
    calls = 0
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def _json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": "mock-model", "object": "model", "created": 0,
                                                          "owned_by": self.name}]})
        else:
            self._json(404, {"error": {"message": "not found", "type": "invalid_request_error", "param": None,
                                       "code": None}})

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        if not self.path.endswith(("/chat/completions", "/embeddings")):
            # A chat-only server, like vLLM before it served the Responses API: no such route.
            self._json(404, {"detail": "Not Found"})
            return
        with Handler.lock:
            Handler.calls += 1
            self.bodies.append(body)
            self.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
        if self.fail:
            self._json(500, {"error": {"message": "upstream exploded", "type": "server_error", "param": None,
                                       "code": None}})
            return
        model = body.get("model", "mock-model")
        if self.path.endswith("/embeddings"):
            inputs = body.get("input")
            inputs = inputs if isinstance(inputs, list) else [inputs]
            self._json(200, {"object": "list", "model": model,
                             "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                                      for i in range(len(inputs))],
                             "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}})
            return
        text = f"hello from {self.name}"
        if not body.get("stream"):
            self._json(200, completion(model, text))
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        events = [chunk(model, {"role": "assistant", "content": ""})]
        events += [chunk(model, {"content": word + " "}) for word in text.split()]
        events += [chunk(model, {}, "stop")]
        if (body.get("stream_options") or {}).get("include_usage"):
            # OpenAI's shape: every chunk carries "usage": null, then one chunk with empty choices.
            for event in events:
                event["usage"] = None
            usage_chunk = chunk(model, {})
            usage_chunk["choices"] = []
            usage_chunk["usage"] = {"prompt_tokens": 5, "completion_tokens": len(text.split()), "total_tokens": 5 + len(text.split())}
            events.append(usage_chunk)
        # A model named "slow-..." streams slowly, so a test can act while a stream is in flight.
        delay = 0.4 if model.startswith("slow") else 0.05
        for sent, event in enumerate(events):
            if self.cut_after is not None and sent == self.cut_after:
                # No [DONE], no terminating chunk: the connection just goes.
                self.close_connection = True
                return
            self._chunk(f"data: {json.dumps(event)}\n\n".encode())
            time.sleep(delay)
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _chunk(self, data):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def serve(port, fail, name, cut_after=None):
    handler = type("H", (Handler,), {"fail": fail, "name": name, "cut_after": cut_after, "bodies": [],
                                     "headers_seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--fail", action="store_true")
    parser.add_argument("--name", default="mock")
    args = parser.parse_args()
    srv = serve(args.port, args.fail, args.name)
    print(f"mock upstream {args.name} on 127.0.0.1:{srv.server_address[1]} (fail={args.fail})", flush=True)
    threading.Event().wait()
