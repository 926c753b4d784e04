"""End-to-end check of streams that recover, with the official `openai` Python SDK.

Starts two mock OpenAI upstreams: the first drops the connection after three events of every
stream, the second answers. The gateway runs with `routing.stream_recovery: continue`; the SDK's
stream must end normally, with the first upstream's words followed by the second's continuation and
no word twice (the second starts over, as models asked to continue often do, and the gateway removes
the repeat). The history row names both attempts.
Usage: python tests/e2e/recovery_check.py path/to/ai-gateway
"""

import json
import os
import sys
import time
import urllib.request

import openai

sys.path.insert(0, os.path.dirname(__file__))
import mock_openai  # noqa: E402
from openai_sdk_check import free_port, start_gateway, wait_ready  # noqa: E402


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/debug/ai-gateway"
    # "hello from first ": the role, "hello ", "from ", then the cut.
    first = mock_openai.serve(0, False, "first", cut_after=3)
    second = mock_openai.serve(0, False, "second")
    port = free_port()
    config = f"""
listen: 127.0.0.1:{port}
providers:
  - id: first
    kind: openai
    base_url: http://127.0.0.1:{first.server_address[1]}/v1
    api_key: sk-first
    models: ["mock-model"]
    priority: 1
  - id: second
    kind: openai
    base_url: http://127.0.0.1:{second.server_address[1]}/v1
    api_key: sk-second
    models: ["mock-model"]
    priority: 2
routing:
  stream_recovery: continue
"""
    proc, db_path = start_gateway(binary, config)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="client-key", max_retries=0)
        pieces, finish, ids = [], None, set()
        stream = client.chat.completions.create(
            model="mock-model", messages=[{"role": "user", "content": "ping"}], stream=True,
            stream_options={"include_usage": True})
        usage = None
        for event in stream:
            ids.add(event.id)
            if event.usage:
                usage = event.usage
            if event.choices and event.choices[0].delta.content:
                pieces.append(event.choices[0].delta.content)
            if event.choices and event.choices[0].finish_reason:
                finish = event.choices[0].finish_reason
        text = "".join(pieces)
        assert text == "hello from second ", pieces
        assert finish == "stop", finish
        assert len(ids) == 1, ids
        assert usage is not None and usage.completion_tokens > 3, usage
        print("stream ok: one answer,", repr(text), "finish", finish, "usage", usage.total_tokens, "tokens")

        asked = second.RequestHandlerClass.bodies[-1]["messages"]
        assert asked[-2] == {"role": "assistant", "content": "hello from "}, asked
        assert asked[-1]["role"] == "user", asked
        print("continuation ok: the second upstream got the text and the instruction")

        time.sleep(0.5)  # the history writer flushes every 100 ms
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/history?limit=10") as r:
            rows = json.load(r)
        assert len(rows) == 1 and rows[0]["status"] == "success" and rows[0]["provider"] == "second", rows
        assert [a["outcome"] for a in rows[0]["attempts"]] == ["stream_cut", "success"], rows[0]
        print("history ok:", [(a["provider"], a["outcome"]) for a in rows[0]["attempts"]])
        print("stream recovery end-to-end check passed")
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
