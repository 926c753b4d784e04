"""End-to-end check of traffic management with the official `openai` Python SDK.

Starts the gateway binary against a strict mock OpenAI upstream and drives it with the SDK, as a
user who changed only `base_url` would:
- a key pool whose first key is rate limited (the mock answers each key as OpenAI does: unknown
  keys 401, the limited key 429 with `Retry-After`): every request succeeds, and
  `/provider/status` shows the key resting by index and hash prefix;
- a provider capped at one request at a time with a queue of one: of three concurrent slow
  requests two are served and one is refused with 503 `overloaded`;
- `models: [...]` (OpenRouter's shape) through `extra_body`: the failing model's provider is
  passed over for the next model, and the mock refuses any body that still carries `models` or
  `fallbacks`, as OpenAI refuses unknown arguments;
- a prompt too long for the small route's model (OpenAI's `context_length_exceeded` 400) goes to
  `on_context_length_exceeded`'s route; another 400 comes back as it is;
- a stream cut after ten chunks with `stream_recovery: continue` reaches the SDK as one complete
  answer with no repeated text; without it the SDK sees the error event.
Usage: python tests/e2e/traffic_check.py path/to/ai-gateway
"""

import json
import os
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai

sys.path.insert(0, os.path.dirname(__file__))
from openai_sdk_check import free_port, start_gateway, wait_ready  # noqa: E402

# The whole answer of the streaming model, 16 words: a cut after ten chunks leaves six to continue.
ANSWER = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"
GOOD_KEYS = {"sk-limited", "sk-good", "sk-plain"}
# The small model's context window, in characters of the prompt (the mock's stand-in for tokens).
SMALL_WINDOW = 200


def error(message, type_, code, param=None):
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def chunk(model, delta, finish=None):
    return {"id": "chatcmpl-traffic", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}


def completion(model, text):
    return {"id": "chatcmpl-traffic", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}


class Upstream(BaseHTTPRequestHandler):
    """One strict OpenAI upstream; what it does depends on the model asked for."""

    protocol_version = "HTTP/1.1"
    lock = threading.Lock()
    seen = []  # (key, model, body) per chat call

    def log_message(self, *args):
        pass

    def _json(self, status, obj, headers=()):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, data):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        key = (self.headers.get("authorization") or "").removeprefix("Bearer ")
        model = body.get("model", "")
        with Upstream.lock:
            Upstream.seen.append((key, model, body))
        if key not in GOOD_KEYS:
            self._json(401, error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"))
            return
        if key == "sk-limited":
            self._json(429, error("Rate limit reached for requests", "requests", "rate_limit_exceeded"),
                       [("retry-after", "30")])
            return
        for unknown in ("models", "fallbacks"):
            if unknown in body:
                self._json(400, error(f"Unrecognized request argument supplied: {unknown}",
                                      "invalid_request_error", None))
                return
        prompt = "".join(m.get("content") or "" for m in body.get("messages", []) if isinstance(m.get("content"), str))
        if model == "broken-model":
            self._json(500, error("The server had an error while processing your request.", "server_error", None))
            return
        if model == "small-model" and len(prompt) > SMALL_WINDOW:
            self._json(400, error(
                f"This model's maximum context length is {SMALL_WINDOW} tokens. However, your messages resulted "
                f"in {len(prompt)} tokens. Please reduce the length of the messages.",
                "invalid_request_error", "context_length_exceeded", "messages"))
            return
        if model == "small-model" and "temperature" in body and body["temperature"] > 2:
            self._json(400, error("Invalid 'temperature': decimal above maximum value.", "invalid_request_error",
                                  "decimal_above_max_value", "temperature"))
            return
        if model == "slow-model":
            time.sleep(1.5)
        if not body.get("stream"):
            self._json(200, completion(model, f"{model} answered"))
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        words = [w + " " for w in ANSWER.split()]
        if model == "cut-model":
            # Ten chunks of the answer, then the connection drops mid-answer.
            for word in words[:10]:
                self._chunk(f"data: {json.dumps(chunk(model, {'content': word}))}\n\n".encode())
                time.sleep(0.02)
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        # A continuation: the text already sent rides in a final assistant message; answer the rest.
        sent = ""
        messages = body.get("messages", [])
        for m in messages:
            if m.get("role") == "assistant" and isinstance(m.get("content"), str):
                sent = m["content"]
        rest = ANSWER + " "
        if sent and rest.startswith(sent):
            rest = rest[len(sent):]
        events = [chunk(model, {"role": "assistant", "content": ""})]
        events += [chunk(model, {"content": w + " "}) for w in rest.split()]
        events += [chunk(model, {}, "stop")]
        for event in events:
            self._chunk(f"data: {json.dumps(event)}\n\n".encode())
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")


def provider(pid, port, models, extra=""):
    return f"""  - id: {pid}
    kind: openai
    base_url: http://127.0.0.1:{port}/v1
    models: {json.dumps(models)}
    responses: bridge
{extra}"""


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/debug/ai-gateway"
    mock = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=mock.serve_forever, daemon=True).start()
    up = mock.server_address[1]
    port = free_port()
    config = f"""
listen: 127.0.0.1:{port}
providers:
{provider("pooled", up, ["pool-model"], '    api_keys: ["sk-limited", "sk-good"]' + chr(10))}
{provider("capped", up, ["slow-model"], '    api_key: sk-plain' + chr(10) + '    max_concurrency: 1' + chr(10) + '    queue: {size: 1, max_wait_ms: 5000}' + chr(10))}
{provider("plain", up, ["broken-model", "mock-model", "small-model", "large-model", "cut-model", "continue-model"], '    api_key: sk-plain' + chr(10))}
routing:
  max_retries: 0
  backoff_base_ms: 10
routes:
  - name: long-context
    targets: [{{provider: plain, model: large-model}}]
  - name: chat
    targets: [{{provider: plain, model: small-model}}]
    on_context_length_exceeded: [long-context]
  - name: recovering
    targets: [{{provider: plain, model: cut-model}}, {{provider: plain, model: continue-model}}]
    stream_recovery: continue
  - name: cutting
    targets: [{{provider: plain, model: cut-model}}, {{provider: plain, model: continue-model}}]
"""
    proc, db_path = start_gateway(binary, config)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="client-key", max_retries=0)
        key_pool(client, port)
        concurrency_cap(client)
        per_request_fallbacks(client)
        context_window(client)
        stream_recovery(client)
        print("traffic end-to-end check passed")
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


def ask(client, model, session=None, prompt="ping", **kw):
    headers = {"x-session-id": session} if session else None
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": prompt}], extra_headers=headers, **kw)


def key_pool(client, port):
    for i in range(6):
        raw = ask(client, "pool-model", session=f"session-{i}")
        assert raw.parse().choices[0].message.content == "pool-model answered", raw.parse()
    keys = [k for k, m, _ in Upstream.seen if m == "pool-model"]
    assert keys.count("sk-limited") == 1, keys
    assert keys.count("sk-good") == 6, keys
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/provider/status") as r:
        status = next(p for p in json.load(r)["providers"] if p["id"] == "pooled")
    shown = json.dumps(status)
    assert "sk-limited" not in shown and "sk-good" not in shown, shown
    resting = [k for k in status["keys"] if k["resting_models"]]
    assert [k["index"] for k in resting] == [0], status["keys"]
    print("key pool ok: 6 requests served, the rate-limited key tried once and resting:", resting[0]["hash"])


def concurrency_cap(client):
    def one(_):
        try:
            return ask(client, "slow-model").http_response.status_code
        except openai.APIStatusError as e:
            return (e.status_code, e.body.get("code") if isinstance(e.body, dict) else e.body,
                    e.response.headers.get("retry-after"))

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(one, range(3)))
    served = [r for r in results if r == 200]
    refused = [r for r in results if r != 200]
    assert len(served) == 2 and len(refused) == 1, results
    status, code, retry_after = refused[0]
    assert status == 503 and code == "overloaded" and retry_after, refused
    print("concurrency cap ok: two served (one after waiting), one refused 503 overloaded, Retry-After", retry_after)


def per_request_fallbacks(client):
    raw = ask(client, "broken-model", extra_body={"models": ["broken-model", "mock-model"]})
    assert raw.parse().choices[0].message.content == "mock-model answered", raw.parse()
    assert raw.headers["x-ai-gateway-attempts"] == "2", raw.headers
    raw = ask(client, "broken-model", extra_body={"fallbacks": ["mock-model"]})
    assert raw.parse().choices[0].message.content == "mock-model answered", raw.parse()
    print("per-request fallbacks ok: models and fallbacks reached mock-model, and no upstream saw either field")


def context_window(client):
    raw = ask(client, "chat", prompt="x" * (SMALL_WINDOW + 50))
    assert raw.parse().choices[0].message.content == "large-model answered", raw.parse()
    try:
        ask(client, "chat", temperature=2.5)
        raise SystemExit("expected a 400")
    except openai.BadRequestError as e:
        assert e.body["code"] == "decimal_above_max_value", e.body
    assert not any(m == "large-model" and b.get("temperature") for _, m, b in Upstream.seen)
    print("context-window fallback ok: a too-long prompt went to long-context, another 400 came back as it is")


def streamed(client, model):
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "count to sixteen"}], stream=True)
    return "".join(e.choices[0].delta.content or "" for e in stream if e.choices)


def stream_recovery(client):
    text = streamed(client, "recovering")
    assert text.split() == ANSWER.split(), text
    print("stream recovery ok: the SDK read one complete answer of", len(text.split()), "words, none repeated")
    try:
        streamed(client, "cutting")
        raise SystemExit("expected the cut stream to end with an error")
    except openai.APIError as e:
        print("stream without recovery ok: the SDK raised", type(e).__name__)


if __name__ == "__main__":
    main()
