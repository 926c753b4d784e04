"""Contract test: schemathesis against the gateway's own /openapi.json.

Starts a healthy mock OpenAI upstream and the real binary (auth on with a known key, an admin
token), then runs schemathesis over every documented operation with the `not_a_server_error`
check: no input may produce a 5xx (the mock never fails, so a 502/503 would be the gateway's
fault) and responses must conform to the documented schema.
Usage: python tests/e2e/contract_check.py path/to/ai-gateway
"""

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import mock_openai  # noqa: E402
from openai_sdk_check import free_port, wait_ready  # noqa: E402


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/debug/ai-gateway"
    upstream = mock_openai.serve(0, False, "mock")
    port = free_port()
    data = tempfile.mkdtemp()
    config = f"""
listen: 127.0.0.1:{port}
database_url: sqlite://{data}/contract.db
auth: {{api_keys: [sk-contract], admin_token: adm-contract}}
providers:
  - id: mock
    kind: openai
    base_url: http://127.0.0.1:{upstream.server_address[1]}/v1
    models: ["mock-model"]
"""
    path = os.path.join(data, "gateway.yaml")
    with open(path, "w") as f:
        f.write(config)
    env = dict(os.environ, RUST_LOG="error")
    for name in ("API_KEYS", "API_KEY", "RATE_LIMIT_ENABLED", "RATE_LIMIT_RPM", "RATE_LIMIT_BURST", "REDIS_URL"):
        env.pop(name, None)
    proc = subprocess.Popen([binary, "serve", "--config", path], env=env)
    try:
        wait_ready(f"http://127.0.0.1:{port}/livez", proc)
        st = os.path.join(os.path.dirname(sys.executable), "schemathesis")
        result = subprocess.run([
            st, "run", f"http://127.0.0.1:{port}/openapi.json",
            "--checks", "not_a_server_error,response_schema_conformance,status_code_conformance",
            "-H", "Authorization: Bearer sk-contract",
            "-H", "X-Admin-Token: adm-contract",
            "--max-examples", os.environ.get("CONTRACT_MAX_EXAMPLES", "25"),
            "--seed", "1",
        ])
        if result.returncode != 0:
            raise SystemExit(f"schemathesis found failures (exit {result.returncode})")
        print("contract check passed: every documented operation answered per its schema, no 5xx")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
