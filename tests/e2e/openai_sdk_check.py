"""End-to-end check with the official `openai` Python SDK, as a new user would run it.

Starts two mock OpenAI upstreams (the first answers 500), starts the gateway binary with a config
that lists both by priority, then points the SDK's `base_url` at the gateway and checks that
non-streamed and streamed completions come back, served by the second upstream after fallback.
Usage: python tests/e2e/openai_sdk_check.py path/to/ai-gateway
"""

import json
import os
import signal
import sqlite3
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import openai

sys.path.insert(0, os.path.dirname(__file__))
import mock_openai  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, proc, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gateway exited early with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"gateway not ready at {url}")


def start_gateway(binary, config, stderr=None, env_extra=None):
    """Writes `config` to a temporary file and starts `binary serve` on it with a fresh SQLite history
    and none of the environment's keys or limits (`env_extra` set over that, `stderr` where its log
    lines go); returns the process and the history file."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(config)
    db_path = f"{tempfile.mkdtemp()}/e2e.db"
    env = dict(os.environ, RUST_LOG="warn", DATABASE_URL=f"sqlite://{db_path}")
    for name in ("API_KEYS", "API_KEY", "RATE_LIMIT_ENABLED", "RATE_LIMIT_RPM", "RATE_LIMIT_BURST", "REDIS_URL"):
        env.pop(name, None)
    env.update(env_extra or {})
    return subprocess.Popen([binary, "serve", "--config", f.name], env=env, stderr=stderr), db_path


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/debug/ai-gateway"
    failing = mock_openai.serve(0, True, "primary")
    healthy = mock_openai.serve(0, False, "secondary")
    port = free_port()
    config = f"""
listen: 127.0.0.1:{port}
providers:
  - id: primary
    kind: openai
    base_url: http://127.0.0.1:{failing.server_address[1]}/v1
    api_key: sk-primary
    models: ["mock-model", "slow-model"]
    priority: 1
  - id: secondary
    kind: openai
    base_url: http://127.0.0.1:{healthy.server_address[1]}/v1
    api_key: sk-secondary
    models: ["mock-model", "slow-model"]
    priority: 2
routing:
  max_retries: 1
  backoff_base_ms: 10
"""
    proc, db_path = start_gateway(binary, config)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="client-key", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="mock-model", messages=[{"role": "user", "content": "ping"}])
        answer = raw.parse()
        assert answer.choices[0].message.content == "hello from secondary", answer
        assert raw.headers["x-ai-gateway-provider"] == "secondary", raw.headers
        assert raw.headers["x-ai-gateway-attempts"] == "3", raw.headers
        print("non-stream ok: served by", raw.headers["x-ai-gateway-provider"],
              "after", raw.headers["x-ai-gateway-attempts"], "attempts")

        pieces = []
        stream = client.chat.completions.create(
            model="mock-model", messages=[{"role": "user", "content": "ping"}], stream=True)
        for event in stream:
            if event.choices and event.choices[0].delta.content:
                pieces.append(event.choices[0].delta.content)
        assert "".join(pieces).strip() == "hello from secondary", pieces
        print("stream ok:", len(pieces), "content chunks:", "".join(pieces).strip())

        models = client.models.list()
        assert [m.id for m in models.data] == ["mock-model", "slow-model"], models
        print("models ok")

        try:
            client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
            raise SystemExit("expected NotFoundError")
        except openai.NotFoundError as e:
            assert e.body["code"] == "model_not_found", e.body
            print("unknown model ok: 404", e.body["code"])
        time.sleep(0.5)  # the history writer flushes every 100 ms
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/history?limit=10") as r:
            rows = json.load(r)
        statuses = [(row["stream"], row["status"], row["provider"]) for row in rows]
        assert statuses == [(False, "error", None), (True, "success", "secondary"),
                            (False, "success", "secondary")], statuses
        stream_row = rows[1]
        assert stream_row["total_tokens"] == 8 and stream_row["result_summary"] == "hello from secondary ", stream_row
        assert [a["outcome"] for a in rows[2]["attempts"]] == ["server_error", "server_error", "success"], rows[2]
        print("history ok:", len(rows), "rows, stream row counted", stream_row["total_tokens"], "tokens")
        sigterm_during_a_stream(client, proc, db_path)
        print("openai SDK end-to-end check passed")
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


def sigterm_during_a_stream(client, proc, db_path):
    """SIGTERM while a stream is in flight: the stream finishes, its row is flushed, exit 0."""
    stream = client.chat.completions.create(
        model="slow-model", messages=[{"role": "user", "content": "ping"}], stream=True)
    events = iter(stream)
    next(events)  # the stream has started
    proc.send_signal(signal.SIGTERM)
    rest = list(events)
    code = proc.wait(timeout=40)
    assert code == 0, f"gateway exited with {code}"
    text = "".join(e.choices[0].delta.content or "" for e in rest if e.choices)
    assert text.strip() == "hello from secondary", text
    with sqlite3.connect(db_path) as db:
        status, = db.execute("SELECT status FROM ai_requests WHERE model = 'slow-model'").fetchone()
    assert status == "success", status
    print("SIGTERM during a stream ok: stream completed, row flushed, exit code 0")


if __name__ == "__main__":
    main()
