"""End-to-end check of OpenTelemetry traces, against an OTLP/HTTP receiver built on the official
protobuf definitions (PyPI `opentelemetry-proto`).

Starts a receiver on POST /v1/traces that decodes `ExportTraceServiceRequest`, two mock OpenAI
upstreams (the first answers 500), and the gateway with `telemetry.otlp` pointing at the receiver.
Sends a non-streamed request, a streamed one that carries a client `traceparent`, and one that fails
over from the broken upstream to the good one; checks the server and client spans, their links, the
GenAI attributes, that no prompt text reaches a span, the trace id in the history row and in a log
line, and the `traceparent` the upstream received. Then checks that with traces off a client's
`traceparent` still goes upstream untouched, and that a collector that hangs neither slows nor fails
requests while `gateway_trace_spans_dropped_total` counts what was dropped.
Usage: python tests/e2e/otel_check.py path/to/ai-gateway
"""

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

sys.path.insert(0, os.path.dirname(__file__))
import mock_openai  # noqa: E402
from openai_sdk_check import free_port, start_gateway, wait_ready  # noqa: E402

PROMPT = "the secret prompt text"
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


class Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP trace receiver: keeps every span with its resource's attributes."""

    protocol_version = "HTTP/1.1"
    spans = []
    auth = []
    delay = 0.0
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.delay:
            time.sleep(self.delay)
        assert self.path == "/v1/traces", self.path
        assert self.headers.get("content-type") == "application/x-protobuf", self.headers
        request = trace_service_pb2.ExportTraceServiceRequest()
        request.ParseFromString(body)
        with Receiver.lock:
            self.auth.append(self.headers.get("authorization"))
            for rs in request.resource_spans:
                resource = {a.key: value(a.value) for a in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        self.spans.append((resource, span))
        data = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        try:
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the gateway gave up on a slow export, as it should


def value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def attrs(span):
    return {a.key: value(a.value) for a in span.attributes}


def serve_receiver(delay=0.0):
    handler = type("R", (Receiver,), {"spans": [], "auth": [], "delay": delay})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def post(port, body, headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, dict(r.headers), r.read()


def chat(model, stream=False):
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": PROMPT}]}


def spans_of(receiver, trace_hex, want, seconds=10):
    """The spans of one trace, once at least `want` arrived."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        with Receiver.lock:
            found = [s for _, s in receiver.RequestHandlerClass.spans if s.trace_id.hex() == trace_hex]
        if len(found) >= want:
            return found
        time.sleep(0.1)
    raise SystemExit(f"trace {trace_hex}: {len(found)} span(s), expected {want}")


def history(port, request_id):
    for _ in range(50):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/history?limit=50") as r:
            rows = [row for row in json.load(r) if row["request_id"] == request_id]
        if rows:
            return rows[0]
        time.sleep(0.1)
    raise SystemExit(f"no history row for {request_id}")


def config(port, broken, good, otlp=""):
    return f"""
listen: 127.0.0.1:{port}
providers:
  - id: primary
    kind: openai
    base_url: http://127.0.0.1:{broken.server_address[1]}/v1
    api_key: sk-primary
    models: ["mock-model"]
    priority: 1
  - id: secondary
    kind: openai
    base_url: http://127.0.0.1:{good.server_address[1]}/v1
    api_key: sk-secondary
    models: ["mock-model", "solo-model"]
    priority: 2
pricing:
  models:
    - {{provider: secondary, model: "*", input: 1.0, output: 2.0}}
routing:
  max_retries: 0
  circuit_breaker: {{failure_threshold: 1000}}
{otlp}"""


@contextlib.contextmanager
def gateway(binary, receiver=None, otlp=(), **start):
    """The gateway on a broken and a good mock upstream, exporting to `receiver` when one is given
    (`otlp`: more `telemetry.otlp` lines); yields its port and the good upstream, stops it on exit."""
    broken = mock_openai.serve(0, True, "primary")
    good = mock_openai.serve(0, False, "secondary")
    port = free_port()
    block = ""
    if receiver is not None:
        block = "telemetry:\n  otlp:\n" + "".join(
            f"    {line}\n" for line in (f"endpoint: http://127.0.0.1:{receiver.server_address[1]}", *otlp))
    proc, _ = start_gateway(binary, config(port, broken, good, block), **start)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        yield port, good
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def traces_on(binary):
    receiver = serve_receiver()
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    otlp = ('headers: {authorization: "Bearer otel-secret"}', "service_name: gw-e2e", "flush_interval_ms: 100")
    with gateway(binary, receiver, otlp, stderr=log,
                 env_extra={"LOG_PROMPTS": "", "LOG_FORMAT": "json"}) as (port, good):
        # 1. Non-streamed, no client context: a new trace, one server span, one client span.
        status, headers, _ = post(port, chat("solo-model"), {"x-request-id": "otel-unary"})
        assert status == 200, status
        row = history(port, "otel-unary")
        trace = row["trace_id"]
        assert trace and len(trace) == 32, row
        spans = spans_of(receiver, trace, 2)
        server = [s for s in spans if s.kind == trace_pb2.Span.SPAN_KIND_SERVER]
        client = [s for s in spans if s.kind == trace_pb2.Span.SPAN_KIND_CLIENT]
        assert len(server) == 1 and len(client) == 1, spans
        server, client = server[0], client[0]
        assert server.name == "chat solo-model", server.name
        assert client.name == "chat solo-model", client.name
        assert not server.parent_span_id, "a new trace starts at the server span"
        assert client.parent_span_id == server.span_id, "the client span is the server span's child"
        s, c = attrs(server), attrs(client)
        assert s["gen_ai.operation.name"] == "chat" and c["gen_ai.operation.name"] == "chat", (s, c)
        assert s["gen_ai.request.model"] == "solo-model" and c["gen_ai.request.model"] == "solo-model", (s, c)
        assert s["gen_ai.response.model"] == "solo-model", s
        assert s["gen_ai.provider.name"] == "secondary" and c["gen_ai.provider.name"] == "secondary", (s, c)
        assert s["gen_ai.usage.input_tokens"] == 5 and s["gen_ai.usage.output_tokens"] == 3, s
        assert abs(s["ai_gateway.cost_usd"] - (5 * 1.0 + 3 * 2.0) / 1e6) < 1e-12, s
        assert c["ai_gateway.provider.id"] == "secondary" and c["ai_gateway.attempt"] == 1, c
        assert c["ai_gateway.breaker.state"] == "closed", c
        assert "error.type" not in c and "error.type" not in s, (s, c)
        upstream = good.RequestHandlerClass.headers_seen[-1]["traceparent"]
        assert upstream == f"00-{trace}-{client.span_id.hex()}-01", (upstream, client.span_id.hex())
        resource = next(r for r, sp in receiver.RequestHandlerClass.spans if sp.trace_id.hex() == trace)
        assert resource["service.name"] == "gw-e2e", resource
        assert set(receiver.RequestHandlerClass.auth) == {"Bearer otel-secret"}, receiver.RequestHandlerClass.auth
        print("unary ok: trace", trace, "server + client span, upstream traceparent", upstream)

        # 2. Streamed, continuing the client's trace: its trace id, its span as the parent.
        parent = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions", data=json.dumps(chat("solo-model", True)).encode(),
            headers={"content-type": "application/json", "traceparent": parent, "tracestate": "vendor=abc",
                     "x-request-id": "otel-stream"})
        with urllib.request.urlopen(req, timeout=30) as r:
            streamed = r.read().decode()
        assert "data: [DONE]" in streamed, streamed
        assert history(port, "otel-stream")["trace_id"] == CLIENT_TRACE
        spans = spans_of(receiver, CLIENT_TRACE, 2)
        server = next(s for s in spans if s.kind == trace_pb2.Span.SPAN_KIND_SERVER)
        client = next(s for s in spans if s.kind == trace_pb2.Span.SPAN_KIND_CLIENT)
        assert server.parent_span_id.hex() == CLIENT_SPAN, "the server span continues the client's"
        assert client.parent_span_id == server.span_id
        sent = good.RequestHandlerClass.headers_seen[-1]
        assert sent["traceparent"] == f"00-{CLIENT_TRACE}-{client.span_id.hex()}-01", sent
        assert sent["tracestate"] == "vendor=abc", sent
        assert server.end_time_unix_nano > client.end_time_unix_nano, "the server span covers the whole stream"
        assert attrs(server)["gen_ai.usage.output_tokens"] > 0, attrs(server)
        print("stream ok: continued trace", CLIENT_TRACE, "upstream got", sent["traceparent"])

        # 3. Failover: two client spans, the first failed with error.type.
        status, headers, _ = post(port, chat("mock-model"), {"x-request-id": "otel-failover"})
        assert status == 200 and headers["x-ai-gateway-provider"] == "secondary", headers
        trace = history(port, "otel-failover")["trace_id"]
        spans = spans_of(receiver, trace, 3)
        server = next(s for s in spans if s.kind == trace_pb2.Span.SPAN_KIND_SERVER)
        clients = sorted((s for s in spans if s.kind == trace_pb2.Span.SPAN_KIND_CLIENT),
                         key=lambda s: attrs(s)["ai_gateway.attempt"])
        assert [attrs(c)["ai_gateway.provider.id"] for c in clients] == ["primary", "secondary"], clients
        assert all(c.parent_span_id == server.span_id for c in clients)
        first, second = attrs(clients[0]), attrs(clients[1])
        assert first["error.type"] == "server_error" and first["http.response.status_code"] == 500, first
        assert clients[0].status.code == trace_pb2.Status.STATUS_CODE_ERROR, clients[0].status
        assert "error.type" not in second and second["ai_gateway.attempt"] == 2, second
        assert attrs(server)["ai_gateway.attempts"] == 2, attrs(server)
        print("failover ok: attempts", [c.name for c in clients], "first", first["error.type"])

        # No prompt text anywhere without LOG_PROMPTS.
        with Receiver.lock:
            everything = [str(attrs(sp)) + sp.name for _, sp in receiver.RequestHandlerClass.spans]
        assert not any(PROMPT in text for text in everything), "prompt text reached a span"

        # The trace id in log lines: the failed attempt's warning and every access line.
        log.flush()
        lines = [json.loads(line) for line in open(log.name) if line.startswith("{")]
        failed = [line for line in lines if line.get("message") == "upstream attempt failed"]
        assert failed and failed[-1]["trace_id"] == trace, failed
        assert not any("otel-secret" in json.dumps(line) for line in lines), "an export header was logged"
        print("logs ok: the failed attempt's line carries trace_id", trace)


def prompts_with_log_prompts(binary):
    """With LOG_PROMPTS=true (and only then) the server span carries the prompt and the answer."""
    receiver = serve_receiver()
    with gateway(binary, receiver, ("flush_interval_ms: 100",), stderr=subprocess.DEVNULL,
                 env_extra={"LOG_PROMPTS": "true"}) as (port, _):
        post(port, chat("solo-model"), {"x-request-id": "otel-prompts"})
        trace = history(port, "otel-prompts")["trace_id"]
        server = next(s for s in spans_of(receiver, trace, 2) if s.kind == trace_pb2.Span.SPAN_KIND_SERVER)
        a = attrs(server)
        assert PROMPT in a["ai_gateway.prompt"] and a["ai_gateway.completion"] == "hello from secondary", a
        print("LOG_PROMPTS ok: the server span carries the prompt and the completion")


def traces_off(binary):
    """No `telemetry:`: the client's traceparent goes upstream untouched and into the history row."""
    with gateway(binary) as (port, good):
        parent = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
        post(port, chat("solo-model"), {"traceparent": parent, "tracestate": "vendor=abc",
                                        "x-request-id": "off-traced"})
        sent = good.RequestHandlerClass.headers_seen[-1]
        assert sent["traceparent"] == parent and sent["tracestate"] == "vendor=abc", sent
        assert history(port, "off-traced")["trace_id"] == CLIENT_TRACE
        post(port, chat("solo-model"), {"x-request-id": "off-plain"})
        assert "traceparent" not in good.RequestHandlerClass.headers_seen[-1]
        assert history(port, "off-plain")["trace_id"] is None
        print("traces off ok: traceparent forwarded untouched, trace id recorded")


def hanging_collector(binary):
    """A collector that takes 5 s per export: requests stay fast, spans are dropped and counted."""
    receiver = serve_receiver(delay=5.0)
    otlp = ("timeout_seconds: 0.5", "queue_size: 4", "batch_size: 2", "flush_interval_ms: 50")
    with gateway(binary, receiver, otlp) as (port, _):
        started = time.time()
        slowest = 0.0
        for _ in range(40):
            t = time.time()
            status, _, _ = post(port, chat("solo-model"))
            assert status == 200, status
            slowest = max(slowest, time.time() - t)
        took = time.time() - started
        assert slowest < 0.5, f"a request took {slowest:.2f}s behind a hanging collector"
        time.sleep(1.5)  # the export in flight times out
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as r:
            metrics = r.read().decode()
        dropped = [line for line in metrics.splitlines() if line.startswith("gateway_trace_spans_dropped_total")]
        assert dropped and float(dropped[0].split()[-1]) > 0, dropped
        print(f"hanging collector ok: 40 requests in {took:.2f}s (slowest {slowest:.3f}s), {dropped[0]}")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/debug/ai-gateway"
    traces_on(binary)
    prompts_with_log_prompts(binary)
    traces_off(binary)
    hanging_collector(binary)
    print("OpenTelemetry end-to-end check passed")


if __name__ == "__main__":
    main()
