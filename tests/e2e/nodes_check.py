"""Issue 7's Done-when against the real binary, stdlib only.

Starts two mock GPU nodes (`mock_node.py`) loading different models and the gateway with
`AI_NODES` pointing at them (health period 2 s), then checks that
1. requests for each model land on the node that has it loaded;
2. a stopped node is marked offline within one health period and its traffic moves to the other;
3. `/status/{job_id}` reaches the node that owns the job, also after the gateway restarts.

    python3 tests/e2e/nodes_check.py target/debug/ai-gateway
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
PERIOD = 2.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method, url, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json",
                                                                         **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def wait_until(what, check, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"FAIL: {what} (waited {timeout} s)")


def node_states(gw):
    _, _, body = call("GET", f"{gw}/health")
    return {n["url"]: n for n in json.loads(body)["nodes"]}


def chat(gw, model):
    status, headers, _ = call("POST", f"{gw}/v1/chat/completions",
                              {"model": model, "messages": [{"role": "user", "content": "hi"}]})
    return status, headers.get("x-ai-gateway-provider")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/debug/ai-gateway"
    ports = [free_port(), free_port()]
    models = ["llama-3.1-8b", "qwen2.5-7b"]
    nodes = [subprocess.Popen([sys.executable, os.path.join(HERE, "mock_node.py"), "--port", str(p), "--model", m],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for p, m in zip(ports, models)]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    gw_port = free_port()
    gw = f"http://127.0.0.1:{gw_port}"
    data = tempfile.TemporaryDirectory()
    env = dict(os.environ, AI_NODES=",".join(urls), AI_GATEWAY_LISTEN=f"127.0.0.1:{gw_port}",
               DATABASE_URL=f"sqlite://{data.name}/gw.db", AI_GATEWAY__NODES__HEALTH_INTERVAL_SECONDS=str(PERIOD),
               RUST_LOG="warn")

    def start_gateway():
        proc = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until("the gateway answers /livez", lambda: call("GET", f"{gw}/livez")[0] == 200, 30)
        return proc

    gateway = start_gateway()
    try:
        wait_until("both nodes online", lambda: all(n["online"] for n in node_states(gw).values()), 10)
        for model, url in list(zip(models, urls)) * 2:
            status, provider = chat(gw, model)
            assert status == 200 and provider == f"nodes/{url[7:]}", (model, status, provider)
        print("ok: each model lands on the node that has it loaded")

        status, _, body = call("POST", f"{gw}/generate", {"model_key": models[1], "prompt": "a cat"})
        job = json.loads(body)["job_id"]
        assert status == 202, status

        nodes[0].terminate()
        nodes[0].wait()
        stopped = time.monotonic()
        wait_until("the stopped node offline", lambda: not node_states(gw)[urls[0]]["online"], PERIOD + 3)
        took = time.monotonic() - stopped
        assert took <= PERIOD + 1.0, f"offline after {took:.1f} s, more than one period ({PERIOD} s)"
        status, provider = chat(gw, models[0])
        assert status == 200 and provider == f"nodes/{urls[1][7:]}", (status, provider)
        print(f"ok: the stopped node was offline after {took:.1f} s (period {PERIOD} s); its model moved over")

        gateway.terminate()
        gateway.wait(timeout=40)
        gateway = start_gateway()
        status, headers, body = call("GET", f"{gw}/status/{job}")
        assert status == 200 and headers.get("x-ai-gateway-provider") == f"nodes/{urls[1][7:]}", (status, headers)
        assert json.loads(body)["node"] == urls[1], body
        print("ok: /status/{job_id} reaches the owning node after a gateway restart")
    finally:
        gateway.terminate()
        for n in nodes:
            n.terminate()
        gateway.wait(timeout=40)
        for n in nodes:
            n.wait()


if __name__ == "__main__":
    main()
